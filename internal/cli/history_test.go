package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHistoryCommand lists, filters and sums up a history file with a corrupt
// line, as a person and as a script would read it.
func TestHistoryCommand(t *testing.T) {
	day := func(ago int) string {
		return time.Now().UTC().Add(-time.Duration(ago) * 24 * time.Hour).Format(time.RFC3339)
	}
	lines := []string{
		day(40) + " | app | production | deploy | 0.9.0 | success | sha=a",
		day(10) + " | app | production | deploy | 1.0.0 | failed | sha=b",
		day(10) + " | app | production | rollback | 0.9.0 | success | from 1.0.0; sha=a",
		"not a history line",
		day(3) + " | app | production | deploy | 1.0.1 | success | sha=c",
		day(2) + " | web | staging | deploy | 2.0.0 | success | sha=d",
	}
	file := filepath.Join(t.TempDir(), "history.log")
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := Main(append([]string{"history", "--history-file", file}, args...), []string{"PATH=" + os.Getenv("PATH"), "GITHUB_WORKSPACE=" + t.TempDir()}, &out, &out)
		return code, out.String()
	}

	code, out := run("--stack", "app", "--since", "7d")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "warning: 1 line(s) of "+file+" are not history lines and were skipped")
	assert.Contains(t, out, "time                  stack  environment  action  version  status   notes")
	assert.Contains(t, out, "app    production   deploy  1.0.1    success  sha=c")
	assert.NotContains(t, out, "1.0.0", "older than 7 days")
	assert.NotContains(t, out, "web")

	code, out = run("--action", "rollback", "--format", "json")
	require.Equal(t, 0, code, out)
	var entries []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out[strings.Index(out, "["):]), &entries), out)
	require.Len(t, entries, 1)
	assert.Equal(t, "0.9.0", entries[0]["version"])
	assert.Equal(t, "a", entries[0]["sha"])

	code, out = run("--stats", "--format", "json")
	require.Equal(t, 0, code, out)
	var stats []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out[strings.Index(out, "["):]), &stats), out)
	require.Len(t, stats, 2)
	// app on production over 30 days: 1.0.0 failed (restored by the rollback at the
	// same second), 1.0.1 succeeded; 0.9.0 is older.
	assert.Equal(t, "app", stats[0]["stack"])
	assert.EqualValues(t, 2, stats[0]["deploys"])
	assert.EqualValues(t, 0.5, stats[0]["change_failure_rate"])
	assert.EqualValues(t, 1, stats[0]["restored"])
	assert.EqualValues(t, 0, stats[0]["time_to_restore_seconds"])
	assert.EqualValues(t, 0, stats[0]["lead_times"], "no checkout: no commit times")

	code, out = run("--stats", "--window", "5d")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "stack  environment  deploys  a week  failed  time to restore  not restored  lead time")
	assert.Contains(t, out, fmt.Sprintf("app    production   1        %.1f     0%%      -                0             -", 7/5.0))

	code, out = run("--window", "soon")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, `input window: invalid value "soon"`)
}

// TestHistoryTableEscapesControlCharacters (defects audit, item 9): a carriage
// return (or an escape sequence) in a history line's field reaches the table
// escaped, as the JSON output already has it, so it can neither end the line on
// a runner nor move the cursor.
func TestHistoryTableEscapesControlCharacters(t *testing.T) {
	line := time.Now().UTC().Format(time.RFC3339) + " | app | production | restore | x\rFAKE 9.9.9 success | success | sha=c; \x1b[2Jcleared"
	file := filepath.Join(t.TempDir(), "history.log")
	require.NoError(t, os.WriteFile(file, []byte(line+"\n"), 0o644))
	var out bytes.Buffer
	code := Main([]string{"history", "--history-file", file}, []string{"PATH=" + os.Getenv("PATH"), "GITHUB_WORKSPACE=" + t.TempDir()}, &out, &out)
	require.Equal(t, 0, code, out.String())
	assert.Contains(t, out.String(), `x\rFAKE 9.9.9 success`)
	assert.Contains(t, out.String(), `sha=c; \x1b[2Jcleared`)
	assert.NotContains(t, out.String(), "\r")
	assert.NotContains(t, out.String(), "\x1b")
}
