package deploy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/testenv/testapp"

	"github.com/org/deploy-kit/internal/secretfile"
)

// TestConcurrentDeploysOfOneStack: while the stack's lock is held — here by the
// test itself, so that no deploy's duration decides what the others see — a
// deploy gives up after lock-timeout naming the holder, and one with a longer
// timeout waits for it and then deploys.
func TestConcurrentDeploysOfOneStack(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	holder := lock.Holder{Host: "ci-host", PID: os.Getpid(), Version: "1.0.0", JobURL: "https://git.example.com/team/hello/actions/runs/4242", Since: time.Now()}
	held, err := lock.Acquire(context.Background(), a.LockFile(), holder, time.Second, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = held.Release() })

	// A deploy gives up after lock-timeout, naming the holder.
	r := a.Deploy("--lock-timeout", "300ms")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "another deploy, rollback, restore or backup holds the lock "+a.LockFile()+fmt.Sprintf(" (pid %d on ci-host ", os.Getpid()))
	assert.Contains(t, r.Log, "deploying 1.0.0, job https://git.example.com/team/hello/actions/runs/4242); waited 300ms")

	// The lock is the project's, whatever the environment is called.
	r = a.Deploy("--lock-timeout", "300ms", "--environment", "Production")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "another deploy, rollback, restore or backup holds the lock "+a.LockFile()+fmt.Sprintf(" (pid %d on ci-host ", os.Getpid()))

	// One with a longer timeout waits for it, and deploys once it is released.
	log, wait := a.Watched("--lock-timeout", "2m")
	testapp.WaitFor(t, "the deploy to wait for the lock", func() bool {
		return strings.Contains(log(), "waiting up to 2m0s for the run holding "+a.LockFile())
	})
	require.NoError(t, held.Release())
	r = wait()
	require.Equal(t, 0, r.Code, r.Log)
	assert.NoFileExists(t, a.LockFile())
}

// TestCancelledOrKilledDeployLeavesNoSecret: cancelled as GitHub's runner
// cancels (SIGINT to the step's process) while its secret env file exists,
// the deploy shreds it, releases the lock and records "cancelled" within the
// budget. Killed as Gitea's runner kills (SIGKILL to the group), it leaves
// both: the next run removes the stale env file, takes the lock, records the
// killed run and deploys.
func TestCancelledOrKilledDeployLeavesNoSecret(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	envFile := func() bool {
		m, _ := filepath.Glob(filepath.Join(secretfile.Dir(a.Tmp), secretfile.FilePrefix+"*"))
		return len(m) == 1
	}
	step, result := a.Step("deploy")
	testapp.WaitFor(t, "the deploy to write its secret env file", envFile)
	require.FileExists(t, a.LockFile())
	last, took := step.CancelGitHub()
	r := result()
	assert.Equal(t, "SIGINT", last, r.Log)
	assert.Less(t, took, action.CancelBudget)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "deploykit: received interrupt: stopping within 7s")
	assert.Contains(t, r.Log, "::error::deploykit deploy was cancelled (interrupt)")
	assert.NoFileExists(t, a.LockFile())
	a.NoSecretsLeft(t)
	lines := a.HistoryLines()
	require.NotEmpty(t, lines)
	assert.Regexp(t, `\| deploy \| 1\.0\.0 \| cancelled \| sha=[0-9a-f]{40}; cancelled at `, lines[len(lines)-1])
	assert.NotContains(t, r.Log, testapp.Secret)

	step, _ = a.Step("deploy")
	testapp.WaitFor(t, "the deploy to write its secret env file", envFile)
	step.KillGitea()
	require.True(t, envFile(), "a SIGKILL leaves the env file")
	require.FileExists(t, a.LockFile(), "and the lock file")
	r = a.Deploy()
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Log, "removed a stale secret env file left by a killed run: ")
	assert.Regexp(t, `\| repair \| done \| \S+ \| a killed deploy of 1\.0\.0 recorded \(killed in step `, r.Summary)
	a.NoSecretsLeft(t)
	assert.NoFileExists(t, a.LockFile())
}
