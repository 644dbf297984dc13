package cli

import (
	"bytes"
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/steps"
)

// TestSIGTERMCleansUpAfterTheStepStopped: on SIGTERM the running step is cancelled
// first and the cleanups it registered run only once it has returned, newest
// first — never while the step may still read the env file or hold the lock.
func TestSIGTERMCleansUpAfterTheStepStopped(t *testing.T) {
	var mu sync.Mutex
	var events []string
	record := func(e string) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	started := make(chan struct{})
	spec := &action.Spec{Name: "signal-test", Description: "test only"}
	Commands = append(Commands, typed(spec, func(ctx context.Context, a *action.Context, _ struct{}) error {
		a.OnExit(func() { record("release the lock") })
		a.OnExit(func() { record("shred the env file") })
		close(started)
		<-ctx.Done()
		time.Sleep(300 * time.Millisecond) // a command winding down after its SIGTERM
		record("step stopped")
		return ctx.Err()
	}))
	t.Cleanup(func() { Commands = Commands[:len(Commands)-1] })

	var out bytes.Buffer
	code := make(chan int, 1)
	go func() { code <- Main([]string{"signal-test"}, nil, &out, &out) }()
	<-started
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM))
	select {
	case c := <-code:
		assert.Equal(t, action.ExitFailed, c)
	case <-time.After(time.Minute):
		t.Fatal("Main did not return after SIGTERM")
	}
	assert.Equal(t, []string{"step stopped", "shred the env file", "release the lock"}, events)
	assert.Contains(t, out.String(), "deploykit: received terminated: cleaning up\n")
	assert.Contains(t, out.String(), "error: deploykit signal-test was cancelled (terminated)")
}

// TestSIGTERMStepRunnerCleansUpAfterTheStepStopped: the same through the shared
// step runner that deploy and backup use: cleanups registered by earlier steps
// run after the cancelled step stopped, newest first, once.
func TestSIGTERMStepRunnerCleansUpAfterTheStepStopped(t *testing.T) {
	var mu sync.Mutex
	var events []string
	record := func(e string) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	started := make(chan struct{})
	spec := &action.Spec{Name: "signal-steps-test", Description: "test only"}
	Commands = append(Commands, typed(spec, func(ctx context.Context, a *action.Context, _ struct{}) error {
		r := &steps.Runner[*struct{}]{Logf: a.Logf, OnExit: a.OnExit}
		defer r.Cleanup()
		list := []steps.Step[*struct{}]{
			steps.Func("lock", func(context.Context, *struct{}) error {
				r.Defer(func() { record("release the lock") })
				return nil
			}),
			steps.Func("secrets", func(context.Context, *struct{}) error {
				r.Defer(func() { record("shred the env file") })
				return nil
			}),
			steps.Func("apply", func(ctx context.Context, _ *struct{}) error {
				close(started)
				<-ctx.Done()
				time.Sleep(300 * time.Millisecond) // compose winding down after its SIGTERM
				record("step stopped")
				return ctx.Err()
			}),
			steps.Func("verify", func(context.Context, *struct{}) error { record("verify ran"); return nil }),
		}
		_, err := r.Run(ctx, list, &struct{}{}, nil)
		return err
	}))
	t.Cleanup(func() { Commands = Commands[:len(Commands)-1] })

	var out bytes.Buffer
	code := make(chan int, 1)
	go func() { code <- Main([]string{"signal-steps-test"}, nil, &out, &out) }()
	<-started
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM))
	select {
	case c := <-code:
		assert.Equal(t, action.ExitFailed, c)
	case <-time.After(time.Minute):
		t.Fatal("Main did not return after SIGTERM")
	}
	assert.Equal(t, []string{"step stopped", "shred the env file", "release the lock"}, events)
}
