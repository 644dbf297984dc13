package history

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTripAndQueries(t *testing.T) {
	f := File{Path: filepath.Join(t.TempDir(), "deep", "history.log")}
	entries, err := f.Read()
	require.NoError(t, err)
	assert.Empty(t, entries, "a missing file is an empty history")

	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	require.NoError(t, f.Append(
		Entry{Time: at, Stack: "app", Env: "production", Action: ActionDeploy, Version: "1.0.0", Status: StatusSuccess, Notes: "sha=abc"},
		Entry{Time: at, Stack: "app", Env: "staging", Action: ActionVerified, Version: "1.1.0", Status: StatusSuccess},
		Entry{Time: at, Stack: "app", Env: "production", Action: ActionDeploy, Version: "1.1.0", Status: StatusFailed, Notes: "failed at verify: a | b\nc"},
		Entry{Time: at, Stack: "app", Env: "production", Action: ActionRollback, Version: "1.0.0", Status: StatusSuccess, Notes: "from 1.1.0"},
		Entry{Time: at, Stack: "other", Env: "production", Action: ActionDeploy, Version: "9.0.0", Status: StatusSuccess},
	))
	data, err := os.ReadFile(f.Path)
	require.NoError(t, err)
	assert.Contains(t, string(data), "2026-11-23T12:00:00Z | app | production | deploy | 1.1.0 | failed | failed at verify: a / b c\n")

	// Hand edits that do not parse are skipped.
	fh, err := os.OpenFile(f.Path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, _ = fh.WriteString("not a history line\n")
	fh.Close()

	entries, err = f.Read()
	require.NoError(t, err)
	require.Len(t, entries, 5)
	cur, ok := Current(entries, "app", "production")
	require.True(t, ok)
	assert.Equal(t, "1.0.0", cur.Version)
	assert.Equal(t, ActionRollback, cur.Action)
	_, ok = Current(entries, "app", "qa")
	assert.False(t, ok)
	assert.True(t, Verified(entries, "app", "staging", "1.1.0", "any"), "an old entry without a commit: same stack")
	assert.False(t, Verified(entries, "app", "staging", "1.0.0", "any"))
	assert.False(t, Verified(entries, "app", "production", "1.1.0", "any"))
	assert.False(t, Verified(entries, "other", "staging", "1.1.0", "any"), "an old entry of another stack")

	// A verification that names its commit counts for that commit only, under
	// whatever project name staging runs it.
	withSHA := []Entry{{Time: at, Stack: "app-staging", Env: "staging", Action: ActionVerified, Version: "1.0.3", Status: StatusSuccess,
		Notes: "deployed and verified on staging; sha=aaaa"}}
	assert.True(t, Verified(withSHA, "app", "staging", "1.0.3", "aaaa"))
	assert.False(t, Verified(withSHA, "other-app", "staging", "1.0.3", "bbbb"), "another app's 1.0.3")
	assert.False(t, Verified(withSHA, "app-staging", "staging", "1.0.3", "bbbb"), "same stack, other commit")
}

// TestNeverThroughASymlink: a history path that is a symlink is refused for
// appends and reads; the file it points at is untouched.
func TestNeverThroughASymlink(t *testing.T) {
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o644))
	path := filepath.Join(t.TempDir(), "history.log")
	require.NoError(t, os.Symlink(victim, path))
	f := File{Path: path}
	err := f.Append(Entry{Time: time.Now(), Stack: "app", Env: "production", Action: ActionDeploy, Version: "1.0.0", Status: StatusSuccess})
	require.EqualError(t, err, "history file "+path+" is a symbolic link: set history-file to the file itself")
	_, err = f.Read()
	require.EqualError(t, err, "history file "+path+" is a symbolic link: set history-file to the file itself")
	data, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "precious\n", string(data))
}
