package backup_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBackupNotifies: a backup posts its outcome to notify-url (here ntfy's
// format) when notify-on asks for it.
func TestBackupNotifies(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var titlesSeen, bodiesSeen []string
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		titlesSeen = append(titlesSeen, r.Header.Get("Title"))
		bodiesSeen = append(bodiesSeen, string(body))
	}))
	t.Cleanup(srv.Close)
	// got is what the server received so far: its handler runs on its own
	// goroutine, and an HTTP answer is no happens-before for the race detector.
	got := func() (titles, bodies []string) {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), titlesSeen...), append([]string(nil), bodiesSeen...)
	}
	root := t.TempDir()
	path := filepath.Join(root, "app.db")
	sqliteDB(t, path, 100)
	dir := filepath.Join(root, "backups")

	r := backup(t, nil, "--engine", "sqlite", "--sqlite-path", path, "--dir", dir, "--min-size", "0",
		"--notify-url", srv.URL+"/backups", "--notify-format", "ntfy", "--notify-on", "success")
	require.Equal(t, 0, r.Code, r.Log)
	titles, bodies := got()
	require.Len(t, bodies, 1)
	assert.Equal(t, "deploykit backup: succeeded - SQLite database "+path+" (VACUUM INTO)", titles[0])
	assert.Contains(t, bodies[0], r.Outputs["path"]+" (")
	assert.Contains(t, bodies[0], "sha256 "+r.Outputs["sha256"]+"), verified")
	assert.Contains(t, r.Summary, "\nNotified (ntfy).\n")

	// notify-on failure (the default): nothing for a success.
	r = backup(t, nil, "--engine", "sqlite", "--sqlite-path", path, "--dir", filepath.Join(root, "second"), "--min-size", "0", "--notify-url", srv.URL+"/backups")
	require.Equal(t, 0, r.Code, r.Log)
	_, bodies = got()
	assert.Len(t, bodies, 1)

	// A failed backup is told, with what was kept.
	r = backup(t, nil, "--engine", "sqlite", "--sqlite-path", path, "--dir", filepath.Join(root, "third"), "--min-size", "999999999", "--notify-url", srv.URL+"/backups", "--notify-format", "ntfy")
	require.Equal(t, 1, r.Code, r.Log)
	titles, bodies = got()
	require.Len(t, bodies, 2)
	assert.Equal(t, "deploykit backup: failed - SQLite database "+path+" (VACUUM INTO)", titles[1])
	assert.Contains(t, bodies[1], "No backup file was kept and nothing was deleted.")
	assert.Contains(t, bodies[1], "Job: https://git.example.com/team/app/actions/runs/")
}
