package lock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAcquireWaitRelease(t *testing.T) {
	path := PathFor(t.TempDir(), "my app", "prod/eu")
	assert.Equal(t, "my_app--prod_eu.lock", filepath.Base(path))
	me := Holder{Host: "h", PID: os.Getpid(), Version: "1.0.0", Since: time.Now()}
	l, err := Acquire(context.Background(), path, me, time.Second, nil)
	require.NoError(t, err)

	var seen Holder
	_, err = Acquire(context.Background(), path, Holder{Host: "h", PID: os.Getpid()}, 100*time.Millisecond, func(h Holder) { seen = h })
	var held *HeldError
	require.True(t, errors.As(err, &held), "%v", err)
	assert.Equal(t, "1.0.0", seen.Version)
	assert.Contains(t, err.Error(), "another deploy holds the lock "+path+" (pid ")
	assert.Contains(t, err.Error(), "deploying 1.0.0); waited 100ms")

	go func() { time.Sleep(200 * time.Millisecond); _ = l.Release() }()
	l2, err := Acquire(context.Background(), path, me, 5*time.Second, nil)
	require.NoError(t, err)
	require.NoError(t, l2.Release())
	require.NoError(t, l2.Release())
	assert.NoFileExists(t, path)
}

func TestTakeOverFromADeadHolder(t *testing.T) {
	path := PathFor(t.TempDir(), "app", "prod")
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	_, err := Acquire(context.Background(), path, Holder{Host: "h", PID: dead.Process.Pid}, time.Second, nil)
	require.NoError(t, err)
	l, err := Acquire(context.Background(), path, Holder{Host: "h", PID: os.Getpid()}, 0, nil)
	require.NoError(t, err, "the dead holder's lock is taken over")
	require.NoError(t, l.Release())
}

func TestCancelWhileWaiting(t *testing.T) {
	path := PathFor(t.TempDir(), "app", "prod")
	_, err := Acquire(context.Background(), path, Holder{Host: "h", PID: os.Getpid()}, time.Second, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Acquire(ctx, path, Holder{Host: "h", PID: os.Getpid()}, time.Minute, nil)
	assert.ErrorIs(t, err, context.Canceled)
}
