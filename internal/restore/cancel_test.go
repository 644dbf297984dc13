package restore_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/repair"
	"github.com/org/deploy-kit/internal/testenv"
)

// TestRestoreCancelledOrKilledMidReplay: a restore of a whole PostgreSQL
// server, with the app's service stopped around it, stuck in its replay (the
// backup holds a long pg_sleep before its trailer).
//
// Cancelled as GitHub's runner cancels (SIGINT to the step's process): the
// restore ends within the budget, the stopped service runs again, and the
// summary says the database holds part of the backup, with the command that
// puts the safety backup back; the stack stays marked half-restored (deploys
// refuse) until that command has run, which it is, row for row.
//
// Killed as Gitea's runner kills (SIGKILL to its group): the service stays
// stopped; the next restore starts it first (the lock file said what was
// stopped), records the killed restore, and restores.
func TestRestoreCancelledOrKilledMidReplay(t *testing.T) {
	t.Parallel()
	name := fmt.Sprintf("dk-restore-cancel-%d", os.Getpid())
	q := pgContainer(t, name)
	q("postgres", "CREATE DATABASE app")
	q("app", "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'backed up')")
	project := "dk-restore-cancel-" + fmt.Sprint(os.Getpid())
	web := project + "-web-1"
	out, err := exec.Command("docker", "run", "-d", "--name", web, "--label", "com.docker.compose.project="+project,
		"--label", "com.docker.compose.service=web", "--entrypoint", "sleep", testenv.PostgresImage(t), "600").CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", web).Run() })
	running := func() bool { return strings.HasSuffix(startedAt(t, web), " true") }

	root := t.TempDir()
	dir, hist := filepath.Join(root, "backups"), filepath.Join(root, "history.log")
	r := deploykit(t, "backup", "--container", name, "--dir", dir, "--prefix", "app")
	require.Equal(t, 0, r.Code, r.Log)
	stuck := failingBackup(t, gunzip(t, r.Outputs["path"]), "-- PostgreSQL database cluster dump complete", "SELECT pg_sleep(600);\n\n--\n", "app-stuck.sql.gz")
	q("app", "UPDATE notes SET body = 'live' WHERE id = 1")
	mark := repair.RestoringPath(lock.PathFor(lock.Dir(hist), project))
	restore := func(file string) *testenv.Step {
		cmd, _ := deploykitCmd(t, nil, "restore")
		step := testenv.StartStep(t, testenv.StepCommand(t, cmd.Dir, cmd.Env, "restore", "--confirm", "RESTORE", "--container", name,
			"--file", file, "--dir", dir, "--project-name", project, "--stop-services", "web", "--history-file", hist))
		step.WaitLog("==> restore app-stuck.sql.gz into", 2*time.Minute)
		require.False(t, running(), "the service is stopped meanwhile")
		return step
	}

	step := restore(stuck)
	last, took := step.CancelGitHub()
	assert.Equal(t, "SIGINT", last, step.Log())
	assert.Less(t, took, action.CancelBudget)
	assert.Equal(t, 1, step.Wait())
	assert.True(t, running(), "the stopped service runs again")
	assert.Regexp(t, `the restore was cancelled half-way \([^)]*context canceled\): the database holds part of app-stuck\.sql\.gz; put the safety backup `+dir+`/pre-restore-\S+ back with: deploykit restore --confirm RESTORE `, step.Log())
	require.FileExists(t, mark, "the stack is marked half-restored")
	m, err := repair.HalfRestored(lock.PathFor(lock.Dir(hist), project))
	require.NoError(t, err)
	require.NotNil(t, m)
	assert.Equal(t, "app-stuck.sql.gz", m.Backup)
	putBack := strings.Fields(m.PutBack)
	require.Equal(t, "deploykit", putBack[0], m.PutBack)
	i := slices.Index(putBack, "--file")
	require.Positive(t, i, m.PutBack)
	safety := putBack[i+1] // the data from before the cancelled restore
	r = deploykit(t, putBack[1], append(putBack[2:], "--history-file", hist)...)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, "live", q("app", "SELECT body FROM notes"), "the safety backup, put back: the data from before")
	assert.NoFileExists(t, mark, "whole again")
	assert.True(t, running())

	step = restore(stuck)
	step.KillGitea()
	assert.False(t, running(), "a SIGKILL leaves the service stopped")
	require.FileExists(t, mark)
	// The data from before, again: the put-back's own safety backup holds
	// what the cancelled replay had got to, which depends on when the cancel
	// came.
	r = deploykit(t, "restore", "--confirm", "RESTORE", "--container", name, "--file", safety, "--dir", dir,
		"--project-name", project, "--stop-services", "web", "--history-file", hist)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "started "+web+" again, which a killed restore had stopped")
	assert.Regexp(t, `a killed restore of app-stuck\.sql\.gz recorded \(killed in step restore `, r.Summary)
	assert.True(t, running())
	assert.NoFileExists(t, mark)
	assert.Equal(t, "live", q("app", "SELECT body FROM notes"))
	data, err := os.ReadFile(hist)
	require.NoError(t, err)
	assert.Regexp(t, `\| production \| restore \| app-stuck\.sql\.gz \| killed \| killed in step restore `, string(data))
}
