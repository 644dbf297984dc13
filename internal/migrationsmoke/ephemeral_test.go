package migrationsmoke_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/testenv"
)

// smokeContainers lists the ephemeral database containers of one run id.
func smokeContainers(t *testing.T, runID string) string {
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=org.deploykit.role=migration-smoke",
		"--filter", "label=org.deploykit.run-id="+runID).Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

// TestEphemeralDatabase runs without database-url: a Postgres container is started
// through the Engine API and removed afterwards — also when the job is cancelled.
func TestEphemeralDatabase(t *testing.T) {
	t.Parallel()
	image := testenv.PostgresImage(t)
	r := newRepo(t)
	r.realistic(t, 6)
	// The containers of this test's runs carry this run id.
	runID := fmt.Sprintf("smoke-test-%d", os.Getpid())
	r.Env = append(r.Env, "GITHUB_RUN_ID="+runID)

	run := r.Raw("migration-smoke", "--path", "migrations", "--postgres-image", image)
	require.Equal(t, 0, run.Code, run.Log)
	assert.Equal(t, "6", run.Outputs["applied"])
	assert.Empty(t, smokeContainers(t, runID), "the container is gone")

	// A migration that takes long, cancelled as GitHub's runner cancels (SIGINT
	// to the step's process): the run ends within the budget, its container
	// gone. Then killed as Gitea's runner kills (SIGKILL to the step's group):
	// the container stays, and the next run on this host removes it first.
	r.write(t, "000007_slow.up.sql", "SELECT pg_sleep(60);")
	start := func() *testenv.Step {
		step := testenv.StartStep(t, testenv.StepCommand(t, r.Dir, r.BaseEnv(), "migration-smoke", "--path", "migrations", "--postgres-image", image))
		step.WaitLog("applied 000006_table_6.up.sql", 2*time.Minute)
		require.NotEmpty(t, smokeContainers(t, runID))
		return step
	}
	step := start()
	last, took := step.CancelGitHub()
	assert.Equal(t, "SIGINT", last, step.Log())
	assert.Less(t, took, action.CancelBudget)
	assert.Equal(t, 1, step.Wait(), step.Log())
	assert.Contains(t, step.Log(), "deploykit: received interrupt: stopping within 7s")
	assert.Empty(t, smokeContainers(t, runID), "the container is gone after the cancel")

	step = start()
	step.KillGitea()
	left := smokeContainers(t, runID)
	require.NotEmpty(t, left, "a SIGKILL leaves the container")
	require.NoError(t, os.Remove(filepath.Join(r.dir, "000007_slow.up.sql")))
	run = r.Raw("migration-smoke", "--path", "migrations", "--postgres-image", image)
	require.Equal(t, 0, run.Code, run.Log)
	assert.Contains(t, run.Log, "removed what a killed run left: containers ")
	assert.Empty(t, smokeContainers(t, runID), "the killed run's container went first, the run's own after")
}

// TestEachRunGetsItsOwnDatabase runs twice on one server: the second applies
// everything again on a database of its own, and both are dropped afterwards.
func TestEachRunGetsItsOwnDatabase(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	r := newRepo(t)
	r.realistic(t, 4)
	for range 2 {
		run := r.Raw("migration-smoke", "--path", "migrations", "--database-url", url)
		require.Equal(t, 0, run.Code, run.Log)
		assert.Equal(t, "4", run.Outputs["applied"])
	}
	psql := testenv.RequireTool(t, "psql")
	out, err := exec.Command(psql, url, "-XAtc", "SELECT count(*) FROM pg_database WHERE datname LIKE 'deploykit_smoke_%'").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "0", strings.TrimSpace(string(out)), "every run's database was dropped")
}
