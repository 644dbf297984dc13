package deploy_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	assert.Contains(t, r.Log, "another deploy or restore holds the lock "+a.LockFile()+fmt.Sprintf(" (pid %d on ci-host ", os.Getpid()))
	assert.Contains(t, r.Log, "deploying 1.0.0, job https://git.example.com/team/hello/actions/runs/4242); waited 300ms")

	// The lock is the project's, whatever the environment is called.
	r = a.Deploy("--lock-timeout", "300ms", "--environment", "Production")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "another deploy or restore holds the lock "+a.LockFile()+fmt.Sprintf(" (pid %d on ci-host ", os.Getpid()))

	// One with a longer timeout waits for it, and deploys once it is released.
	log, wait := a.Watched("--lock-timeout", "2m")
	testapp.WaitFor(t, "the deploy to wait for the lock", func() bool {
		return strings.Contains(log(), "waiting up to 2m0s for the deploy holding "+a.LockFile())
	})
	require.NoError(t, held.Release())
	r = wait()
	require.Equal(t, 0, r.Code, r.Log)
	assert.NoFileExists(t, a.LockFile())
}

func TestSIGTERMReleasesTheLockAndShredsSecrets(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	proc, wait := a.Background()
	testapp.WaitFor(t, "the deploy to write its secret env file", func() bool {
		m, _ := filepath.Glob(filepath.Join(secretfile.Dir(a.Tmp), secretfile.FilePrefix+"*"))
		return len(m) == 1
	})
	require.FileExists(t, a.LockFile())
	require.NoError(t, proc.Signal(syscall.SIGTERM))
	start := time.Now()
	r := wait()
	assert.Less(t, time.Since(start), 30*time.Second)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "deploykit: received terminated: cleaning up")
	assert.Contains(t, r.Log, "::error::deploykit deploy was cancelled (terminated)")
	assert.NoFileExists(t, a.LockFile())
	a.NoSecretsLeft(t)
	lines := a.HistoryLines()
	require.NotEmpty(t, lines)
	assert.Regexp(t, `\| deploy \| 1\.0\.0 \| cancelled \| sha=[0-9a-f]{40}; cancelled at `, lines[len(lines)-1])
	assert.NotContains(t, r.Log, testapp.Secret)
}

// TestSIGTERMDuringApplyRestoresWhatRanBefore: a job cancelled while the new
// version is being applied puts the version that ran before back (with a deadline
// of its own) and says so.
func TestSIGTERMDuringApplyRestoresWhatRanBefore(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	require.Equal(t, 0, a.Deploy().Code)
	a.Release("2.0.0", true) // never healthy: apply waits for it
	newImage := "deploykit-hello:sha-" + a.Git("rev-parse", "--short=7", "HEAD")
	proc, wait := a.Background()
	testapp.WaitFor(t, "the 2.0.0 container to start", func() bool {
		out, _ := exec.Command("docker", "ps", "--filter", "label=com.docker.compose.project="+a.Name, "--format", "{{.Image}}").Output()
		return strings.Contains(string(out), newImage)
	})
	require.NoError(t, proc.Signal(syscall.SIGTERM))
	r := wait()
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::deploykit deploy was cancelled (terminated)")
	assert.Regexp(t, `\| rollback \| done \| \S+ \| restored 1\.0\.0 and verified it \|`, r.Summary)
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0", v)
	assert.NoFileExists(t, a.LockFile())
	a.NoSecretsLeft(t)
	lines := a.HistoryLines()
	assert.Regexp(t, `\| deploy \| 2\.0\.0 \| cancelled \| `, strings.Join(lines, "\n"))
}
