package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// TestBackupActionOnScheduleAndDispatch runs the backup action through act as
// the nightly schedule and as a manual run that keeps a copy on the host.
func TestBackupActionOnScheduleAndDispatch(t *testing.T) {
	t.Parallel()
	image := testenv.PostgresImage(t)
	db := fmt.Sprintf("dk-e2e-backup-%d", os.Getpid())
	out, err := exec.Command("docker", "run", "-d", "--name", db, "-e", "POSTGRES_PASSWORD=e2e-postgres-password", image).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", db).Run() })
	testapp.WaitFor(t, "postgres", func() bool {
		return exec.Command("docker", "exec", "-e", "PGPASSWORD=e2e-postgres-password", db, "psql", "-h", "127.0.0.1", "-U", "postgres",
			"-c", "CREATE TABLE IF NOT EXISTS notes AS SELECT g AS id, md5(g::text) AS body FROM generate_series(1, 5000) g").Run() == nil
	})

	repo, _ := kitRepo(t, "chore: backups", "backup.yaml")
	dir := t.TempDir()
	vars := []string{"--var", "DB_CONTAINER=" + db, "--var", "BACKUP_DIR=" + dir}

	check := func(log string) string {
		t.Helper()
		seen := later(log)
		path := seen["path"]
		require.True(t, strings.HasPrefix(path, filepath.Join(dir, "nightly-")), log)
		st, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(st.Size()), seen["size"])
		sum, err := os.ReadFile(path + ".sha256")
		require.NoError(t, err)
		assert.Equal(t, seen["sha256"]+"  "+filepath.Base(path)+"\n", string(sum))
		assert.Equal(t, filepath.Join(dir, "nightly-"+seen["id"]+".sql.gz"), path)
		assert.NotEmpty(t, seen["duration"])
		assert.Contains(t, log, "### deploykit backup: succeeded — postgres")
		assert.Contains(t, log, "| Restore check | restored into a scratch container of "+image+": row counts of 1 tables (5000 rows) equal the source |")
		assert.Contains(t, log, "gunzip -c "+path+" | docker exec -i "+db+" psql -X -U postgres -d postgres")
		return path
	}

	log, err := runAct(t, repo, "backup.yaml", "schedule", map[string]any{"schedule": "17 3 * * *"}, vars...)
	require.NoError(t, err, log)
	nightly := check(log)
	assert.Contains(t, log, "| host-copy | skipped |  | no host-path |")

	// act sets up the workflow's upload steps (their "Pre" phase) before the job; none
	// of them runs unless the backup asked for it.
	assert.Contains(t, log, `::set-output:: upload-artifact=false`)
	assert.NotContains(t, log, "Run Main Upload artifact", "no artifact unless asked for")

	host := filepath.Join(t.TempDir(), "offsite")
	artifacts := t.TempDir()
	log, err = runAct(t, repo, "backup.yaml", "workflow_dispatch", map[string]any{
		"inputs": map[string]any{"keep_on_host": "true", "host_backup_path": host, "artifact": "true"},
	}, append(vars, "--env", "DEPLOYKIT_ARTIFACTS="+artifacts)...)
	require.NoError(t, err, log)
	manual := check(log)
	assert.NotEqual(t, nightly, manual)
	assert.FileExists(t, filepath.Join(host, filepath.Base(manual)))
	assert.FileExists(t, filepath.Join(host, filepath.Base(manual)+".sha256"))
	assert.NoFileExists(t, nightly, "retention keeps one backup a day, the newest")

	// On GitHub, @v4 uploads the backup and its checksum, named after the backup.
	id := later(log)["id"]
	uploaded := filepath.Join(artifacts, "v4", "nightly-"+id)
	assert.FileExists(t, filepath.Join(uploaded, filepath.Base(manual)))
	assert.FileExists(t, filepath.Join(uploaded, filepath.Base(manual)+".sha256"))
	days, err := os.ReadFile(filepath.Join(uploaded, "retention-days"))
	require.NoError(t, err)
	assert.Equal(t, "30\n", string(days))
	assert.NoDirExists(t, filepath.Join(artifacts, "v3"))

	// On Gitea, @v3; artifact: yes (through a variable: act turns a boolean
	// input's "yes" into false) is true to the binary, and so to the upload step.
	log, err = runAct(t, repo, "backup.yaml", "workflow_dispatch", map[string]any{"inputs": map[string]any{"keep_on_host": "false", "host_backup_path": host, "artifact": "false"}},
		append(vars, "--env", "DEPLOYKIT_ARTIFACTS="+artifacts, "--env", "GITEA_ACTIONS=true", "--var", "ARTIFACT=yes")...)
	require.NoError(t, err, log)
	gitea := check(log)
	assert.Contains(t, log, "| host-copy | skipped |  | no host-path |", "keep_on_host: false")
	assert.FileExists(t, filepath.Join(artifacts, "v3", "nightly-"+later(log)["id"], filepath.Base(gitea)), log)
}
