package e2e

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/org/deploy-kit/internal/testenv"
)

// TestRestoreActionThroughAct runs the restore action as a dispatch would: a
// wrong confirmation changes nothing and says what to type; RESTORE puts the
// newest backup back, with its outputs for a later step.
func TestRestoreActionThroughAct(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	path, dir, hist := filepath.Join(root, "app.db"), filepath.Join(root, "backups"), filepath.Join(root, "history.log")
	exec1 := func(q string) {
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		defer db.Close()
		_, err = db.Exec(q)
		require.NoError(t, err)
	}
	rows := func() string {
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		defer db.Close()
		var s string
		require.NoError(t, db.QueryRow("SELECT group_concat(id || ':' || body, ',') FROM (SELECT * FROM notes ORDER BY id)").Scan(&s))
		return s
	}
	exec1("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'one'), (2, 'two')")
	out, err := exec.Command(testenv.Deploykit(t), "backup", "--engine", "sqlite", "--sqlite-path", path, "--dir", dir, "--prefix", "app", "--min-size", "0").CombinedOutput()
	require.NoError(t, err, "%s", out)
	exec1("DELETE FROM notes WHERE id = 2")

	repo, _ := kitRepo(t, "chore: restore", "restore.yaml")
	vars := []string{"--var", "BACKUP_DIR=" + dir, "--var", "SQLITE_PATH=" + path, "--var", "HISTORY_FILE=" + hist}

	log, err := runAct(t, repo, "restore.yaml", "workflow_dispatch", map[string]any{"inputs": map[string]any{"confirm": "yes", "file": "latest"}}, vars...)
	require.Error(t, err, log)
	assert.Contains(t, log, `input confirm: "yes" is not RESTORE: type RESTORE, in capitals, to confirm the restore`)
	assert.Equal(t, "bad-input", later(log)["status"])
	assert.Equal(t, "1:one", rows(), "nothing changed")

	log, err = runAct(t, repo, "restore.yaml", "workflow_dispatch", map[string]any{"inputs": map[string]any{"confirm": "RESTORE", "file": "latest"}}, vars...)
	require.NoError(t, err, log)
	seen := later(log)
	assert.Equal(t, "success", seen["status"])
	assert.True(t, strings.HasPrefix(seen["file"], filepath.Join(dir, "app-")), seen["file"])
	assert.Len(t, seen["sha256"], 64)
	assert.True(t, strings.HasPrefix(seen["safety"], filepath.Join(dir, "pre-restore-")), seen["safety"])
	assert.FileExists(t, seen["safety"])
	assert.Equal(t, "1:one,2:two", rows(), "the backup's rows are back")
	assert.Contains(t, log, "### deploykit restore: success — "+filepath.Base(seen["file"]))
	data, err := os.ReadFile(hist)
	require.NoError(t, err)
	assert.Contains(t, string(data), "| restore | "+filepath.Base(seen["file"])+" | success |")
}
