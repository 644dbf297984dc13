package migrationsmoke_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
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

	// A migration that takes long, and a SIGTERM while it runs.
	r.write(t, "000007_slow.up.sql", "SELECT pg_sleep(60);")
	cmd := exec.Command(testenv.Deploykit(t), "migration-smoke", "--path", "migrations", "--postgres-image", image)
	cmd.Dir = r.Dir
	cmd.Env = r.BaseEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	testapp.WaitFor(t, "migration 7 to start", func() bool { return strings.Contains(out.String(), "applied 000006_table_6.up.sql") })
	require.NotEmpty(t, smokeContainers(t, runID))
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(45 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("migration-smoke did not stop after SIGTERM")
	}
	assert.Equal(t, 1, cmd.ProcessState.ExitCode(), out.String())
	assert.Contains(t, out.String(), "deploykit: received terminated: cleaning up")
	assert.Empty(t, smokeContainers(t, runID), "the container is gone after SIGTERM")
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
