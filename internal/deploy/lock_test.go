package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/secretfile"
)

func (a *app) lockFile() string {
	return filepath.Join(filepath.Dir(a.history), "locks", a.name+"--production.lock")
}

// background starts a deploy and returns a function that waits for its result.
func (a *app) background(extra ...string) (*os.Process, func() run) {
	cmd, output, summary := a.command(extra...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	require.NoError(a.t, cmd.Start())
	return cmd.Process, func() run {
		_ = cmd.Wait()
		return a.result(cmd, buf.String(), output, summary)
	}
}

func TestConcurrentDeploysOfOneStack(t *testing.T) {
	t.Parallel()
	a := newApp(t, "1.0.0")
	first, wait := a.background()
	waitFor(t, "the first deploy to take the lock", func() bool { _, err := os.Stat(a.lockFile()); return err == nil })

	// A second deploy gives up after lock-timeout, naming the holder.
	r := a.deploy("--lock-timeout", "300ms")
	assert.Equal(t, 1, r.code, r.log)
	assert.Contains(t, r.log, "another deploy holds the lock "+a.lockFile()+fmt.Sprintf(" (pid %d on ", first.Pid))
	assert.Contains(t, r.log, "deploying 1.0.0, job https://git.example.com/team/hello/actions/runs/4242); waited 300ms")

	// A third one waits for it and then deploys.
	r = a.deploy("--lock-timeout", "2m")
	require.Equal(t, 0, r.code, r.log)
	assert.Contains(t, r.log, "waiting up to 2m0s for the deploy holding "+a.lockFile())
	require.Equal(t, 0, wait().code)
	assert.NoFileExists(t, a.lockFile())
}

func TestSIGTERMReleasesTheLockAndShredsSecrets(t *testing.T) {
	t.Parallel()
	a := newApp(t, "1.0.0")
	proc, wait := a.background()
	waitFor(t, "the deploy to write its secret env file", func() bool {
		m, _ := filepath.Glob(filepath.Join(a.tmp, secretfile.FilePrefix+"*"))
		return len(m) == 1
	})
	require.FileExists(t, a.lockFile())
	require.NoError(t, proc.Signal(syscall.SIGTERM))
	start := time.Now()
	r := wait()
	assert.Less(t, time.Since(start), 30*time.Second)
	assert.Equal(t, 1, r.code, r.log)
	assert.Contains(t, r.log, "deploykit: received terminated: cleaning up")
	assert.Contains(t, r.log, "::error::deploykit deploy was cancelled (terminated)")
	assert.NoFileExists(t, a.lockFile())
	a.noSecretsLeft(t)
	lines := a.historyLines()
	require.NotEmpty(t, lines)
	assert.Regexp(t, `\| deploy \| 1\.0\.0 \| cancelled \| sha=[0-9a-f]{40}; cancelled at `, lines[len(lines)-1])
	assert.NotContains(t, r.log, secret)
}
