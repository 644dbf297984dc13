package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// TestBackupWaitsForTheStacksLock: a database container of a compose project
// is backed up under that project's lock, the one deploy, rollback and
// restore take: while a deploy holds it the backup waits, then fails having
// written nothing; once it is free the backup holds it, says so, and lets it go.
func TestBackupWaitsForTheStacksLock(t *testing.T) {
	t.Parallel()
	name := fmt.Sprintf("dk-backup-lock-%d", os.Getpid())
	project := name + "-app"
	dockerRun(t, name, testenv.PostgresImage(t), "-e", "POSTGRES_PASSWORD=pgsecret-"+name, "--label", "com.docker.compose.project="+project)
	testapp.WaitFor(t, name+" to take connections", func() bool {
		return exec.Command("docker", "exec", name, "psql", "-U", "postgres", "-c", "SELECT 1").Run() == nil
	})
	seedPostgres(containerSQL(t, name), false)
	hist := filepath.Join(t.TempDir(), "history.log")
	path := lock.PathFor(lock.Dir(hist), project)
	held, err := lock.Acquire(context.Background(), path, lock.Holder{Host: "ci-host", PID: 4242, Version: "v2", Since: time.Now(), Action: "deploy"}, 0, nil)
	require.NoError(t, err)

	dir := t.TempDir()
	args := []string{"--container", name, "--dir", dir, "--history-file", hist, "--restore-check"}
	r := backup(t, []string{"GITHUB_RUN_ID=" + runID(t)}, append(args, "--lock-timeout", "1s")...)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "    waiting up to 1s for the run holding "+path+": pid 4242 on ci-host since ")
	assert.Contains(t, r.Log, "::error::another deploy, rollback, restore or backup holds the lock "+path+" (pid 4242 on ci-host since ")
	assert.Contains(t, r.Summary, "### deploykit backup: failed")
	assert.Empty(t, files(t, dir), "nothing written while the deploy held the lock")
	assert.Empty(t, scratchContainers(t), "no scratch container started")
	require.NoError(t, held.Release())

	r = backup(t, []string{"GITHUB_RUN_ID=" + runID(t)}, args...)
	require.Equal(t, 0, r.Code, r.Log)
	checkPublished(t, r, dir, "backup", "sql")
	assert.Contains(t, r.Log, "lock: took "+path+" (stack "+project+") after ")
	assert.Contains(t, r.Summary, "| Lock | stack "+project+": "+path+" |")
	assert.Empty(t, scratchContainers(t))
	_, err = os.Stat(path)
	assert.True(t, errors.Is(err, os.ErrNotExist), "the lock is let go with its file")
}
