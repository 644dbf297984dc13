package lock

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAcquireWaitRelease(t *testing.T) {
	path := PathFor(t.TempDir(), "my app")
	assert.Equal(t, "my_app.lock", filepath.Base(path))
	me := Holder{Host: "h", PID: os.Getpid(), Version: "1.0.0", Since: time.Now()}
	l, err := Acquire(context.Background(), path, me, time.Second, nil)
	require.NoError(t, err)

	var seen Holder
	_, err = Acquire(context.Background(), path, Holder{Host: "h", PID: os.Getpid()}, 100*time.Millisecond, func(h Holder) { seen = h })
	var held *HeldError
	require.True(t, errors.As(err, &held), "%v", err)
	assert.Equal(t, "1.0.0", seen.Version)
	assert.Contains(t, err.Error(), "another deploy, rollback, restore or backup holds the lock "+path+" (pid ")
	assert.Contains(t, err.Error(), "deploying 1.0.0); waited 100ms")

	go func() { time.Sleep(200 * time.Millisecond); _ = l.Release() }()
	l2, err := Acquire(context.Background(), path, me, 5*time.Second, nil)
	require.NoError(t, err)
	require.NoError(t, l2.Release())
	require.NoError(t, l2.Release())
	assert.NoFileExists(t, path)
}

// TestTakeOverFromADeadHolder: what a holder that died (SIGKILL, host crash)
// leaves is a file with no flock on it — whatever it says, on this host or
// another, empty or not — and it is taken at once.
func TestTakeOverFromADeadHolder(t *testing.T) {
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	stale, err := json.Marshal(Holder{Host: "h", PID: dead.Process.Pid})
	require.NoError(t, err)
	other, err := json.Marshal(Holder{Host: "another-host", PID: 1})
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		content []byte
		left    *Holder
	}{
		"dead pid":     {stale, &Holder{Host: "h", PID: dead.Process.Pid}},
		"another host": {other, &Holder{Host: "another-host", PID: 1}},
		"empty":        {nil, nil},
		"garbage":      {[]byte("{"), &Holder{}},
	} {
		t.Run(name, func(t *testing.T) {
			path := PathFor(t.TempDir(), "app")
			require.NoError(t, os.WriteFile(path, tc.content, 0o644))
			l, err := Acquire(context.Background(), path, Holder{Host: "h", PID: os.Getpid(), Version: "2.0.0"}, 0, nil)
			require.NoError(t, err, "the dead holder's lock is taken over")
			assert.Equal(t, tc.left, l.Left, "what the dead holder left is reported")
			h, err := read(path)
			require.NoError(t, err)
			assert.Equal(t, "2.0.0", h.Version)
			require.NoError(t, l.Release())
		})
	}
}

// TestLeftSaysWhatAKilledHolderWasDoing: a holder that ends removes its file,
// so the next one finds nothing; one killed holding the lock (its file closed
// by the kernel, never removed) leaves its last details — its step, what it
// stopped — for the next holder.
func TestLeftSaysWhatAKilledHolderWasDoing(t *testing.T) {
	path := PathFor(t.TempDir(), "app")
	me := Holder{Host: "h", PID: os.Getpid(), Action: "deploy", Version: "1.0.0", Since: time.Now().UTC().Truncate(time.Second)}
	l, err := Acquire(context.Background(), path, me, 0, nil)
	require.NoError(t, err)
	assert.Nil(t, l.Left)
	require.NoError(t, l.Release())

	l, err = Acquire(context.Background(), path, me, 0, nil)
	require.NoError(t, err)
	assert.Nil(t, l.Left, "a holder that ended left nothing")
	me.Step, me.StepSince, me.Stopped = "restore", me.Since, []string{"abc"}
	require.NoError(t, l.Update(me))
	require.NoError(t, l.h.(fileHandle).f.Close()) // killed: the kernel drops the flock, the file stays

	next, err := Acquire(context.Background(), path, Holder{Host: "h", PID: os.Getpid()}, 0, nil)
	require.NoError(t, err)
	require.NotNil(t, next.Left)
	assert.Equal(t, me, *next.Left)
	require.NoError(t, next.Release())
}

// TestOneHolderAtATime: acquirers racing for a lock a dead holder left, round
// after round, never hold it together.
func TestOneHolderAtATime(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	stale, err := json.Marshal(Holder{Host: "h", PID: dead.Process.Pid})
	require.NoError(t, err)
	for round := range 200 {
		path := PathFor(dir, "app")
		require.NoError(t, os.WriteFile(path, stale, 0o644))
		var holders, most atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				<-start
				l, err := Acquire(context.Background(), path, Holder{Host: "h", PID: os.Getpid()}, 0, nil)
				if err != nil {
					return
				}
				n := holders.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(time.Millisecond)
				holders.Add(-1)
				_ = l.Release()
			})
		}
		close(start)
		wg.Wait()
		require.LessOrEqual(t, most.Load(), int32(1), "round %d: two holders at once", round)
	}
}

func TestNeverThroughASymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o644))
	path := PathFor(dir, "app")
	require.NoError(t, os.Symlink(victim, path))
	_, err := Acquire(context.Background(), path, Holder{Host: "h", PID: os.Getpid()}, 0, nil)
	require.EqualError(t, err, "lock "+path+" is a symbolic link: remove it")
	data, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "precious\n", string(data))

	// Update writes through the held descriptor: no <lock>.tmp to plant a link at.
	path = PathFor(dir, "other")
	l, err := Acquire(context.Background(), path, Holder{Host: "h", PID: os.Getpid()}, 0, nil)
	require.NoError(t, err)
	require.NoError(t, os.Symlink(victim, path+".tmp"))
	require.NoError(t, l.Update(Holder{Host: "h", PID: os.Getpid(), Version: "3.0.0"}))
	h, err := read(path)
	require.NoError(t, err)
	assert.Equal(t, "3.0.0", h.Version)
	data, err = os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "precious\n", string(data))
	require.NoError(t, l.Release())
}

func TestHolderNotYetWritten(t *testing.T) {
	assert.Equal(t, "a holder that has not written its details yet", Holder{}.String())
}

func TestCancelWhileWaiting(t *testing.T) {
	path := PathFor(t.TempDir(), "app")
	_, err := Acquire(context.Background(), path, Holder{Host: "h", PID: os.Getpid()}, time.Second, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Acquire(ctx, path, Holder{Host: "h", PID: os.Getpid()}, time.Minute, nil)
	assert.ErrorIs(t, err, context.Canceled)
}
