package cli

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/steps"
	"github.com/org/deploy-kit/internal/testenv"
)

// recorder is the order of events a test's subcommand reports.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) record(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// sigterm runs a test-only subcommand through Main, sends the process SIGTERM
// once the subcommand closed started, and returns Main's log.
func sigterm(t *testing.T, name string, run func(ctx context.Context, a *action.Context, started chan<- struct{}) error) string {
	t.Helper()
	return signalled(t, name, run, syscall.SIGTERM)
}

// signalled is sigterm with the signals given, sent one after the other (the
// next once Main logged that it received the one before).
func signalled(t *testing.T, name string, run func(ctx context.Context, a *action.Context, started chan<- struct{}) error, sigs ...syscall.Signal) string {
	t.Helper()
	started := make(chan struct{})
	Commands = append(Commands, typed(&action.Spec{Name: name, Description: "test only"}, func(ctx context.Context, a *action.Context, _ struct{}) error {
		return run(ctx, a, started)
	}))
	t.Cleanup(func() { Commands = Commands[:len(Commands)-1] })
	out := &testenv.SyncBuffer{}
	code := make(chan int, 1)
	go func() { code <- Main([]string{name}, nil, out, out) }()
	<-started
	for i, sig := range sigs {
		require.NoError(t, syscall.Kill(syscall.Getpid(), sig))
		if i < len(sigs)-1 {
			require.Eventually(t, func() bool { return strings.Count(out.String(), "deploykit: received") > i }, 10*time.Second, 5*time.Millisecond)
		}
	}
	select {
	case c := <-code:
		assert.Equal(t, action.ExitFailed, c)
	case <-time.After(time.Minute):
		t.Fatal("Main did not return after SIGTERM")
	}
	return out.String()
}

// windDown is a step that runs until it is cancelled, then takes a while to stop,
// like a command winding down after its SIGTERM.
func windDown(ctx context.Context, started chan<- struct{}, r *recorder) error {
	close(started)
	<-ctx.Done()
	time.Sleep(300 * time.Millisecond)
	r.record("step stopped")
	return ctx.Err()
}

// TestSIGTERMCleansUpAfterTheStepStopped: on SIGTERM the running step is cancelled
// first and the cleanups it registered run only once it has returned, newest
// first — never while the step may still read the env file or hold the lock.
func TestSIGTERMCleansUpAfterTheStepStopped(t *testing.T) {
	var r recorder
	out := sigterm(t, "signal-test", func(ctx context.Context, a *action.Context, started chan<- struct{}) error {
		a.OnExit(func() { r.record("release the lock") })
		a.OnExit(func() { r.record("shred the env file") })
		return windDown(ctx, started, &r)
	})
	assert.Equal(t, []string{"step stopped", "shred the env file", "release the lock"}, r.events)
	assert.Contains(t, out, "deploykit: received terminated: stopping within 7s; what is left, the next run repairs\n")
	assert.Contains(t, out, "error: deploykit signal-test was cancelled (terminated)")
}

// TestSecondSignalExitsAtOnce: GitHub's runner sends SIGTERM 7.5 s after the
// SIGINT; a run still busy then exits at once, its cleanups run, and the run's
// cancel deadline, set at the first signal, is what it had to end by.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	var r recorder
	deadlines := make(chan time.Time, 1)
	start := time.Now()
	out := signalled(t, "signal-twice-test", func(ctx context.Context, a *action.Context, started chan<- struct{}) error {
		a.OnExit(func() { r.record("shred the env file") })
		close(started)
		<-ctx.Done()
		deadline, _ := a.CancelDeadline()
		deadlines <- deadline
		select {} // never stops by itself
	}, syscall.SIGINT, syscall.SIGTERM)
	assert.Less(t, time.Since(start), action.CancelBudget, "exited at the second signal, not at the end of the budget")
	assert.Equal(t, []string{"shred the env file"}, r.events)
	assert.Contains(t, out, "deploykit: received interrupt: stopping within 7s; what is left, the next run repairs\n")
	assert.Contains(t, out, "deploykit: received terminated again: exiting now; the next run repairs what is left\n")
	// The step goroutine outlives Main by design; it hands over what it saw.
	select {
	case deadline := <-deadlines:
		assert.WithinDuration(t, start.Add(action.CancelBudget-2*time.Second), deadline, time.Second)
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled step never saw its context end")
	}
}

// TestSIGTERMStepRunnerCleansUpAfterTheStepStopped: the same through the shared
// step runner every action runs on: cleanups registered by earlier steps run
// after the cancelled step stopped, newest first, once; later steps never run.
func TestSIGTERMStepRunnerCleansUpAfterTheStepStopped(t *testing.T) {
	var r recorder
	sigterm(t, "signal-steps-test", func(ctx context.Context, a *action.Context, started chan<- struct{}) error {
		run := &steps.Runner[*recorder]{Logf: a.Logf, OnExit: a.OnExit}
		defer run.Cleanup()
		list := []steps.Step[*recorder]{
			steps.Func("lock", func(context.Context, *recorder) error {
				run.Defer(func() { r.record("release the lock") })
				return nil
			}),
			steps.Func("secrets", func(context.Context, *recorder) error {
				run.Defer(func() { r.record("shred the env file") })
				return nil
			}),
			steps.Func("apply", func(ctx context.Context, r *recorder) error { return windDown(ctx, started, r) }),
			steps.Func("verify", func(_ context.Context, r *recorder) error { r.record("verify ran"); return nil }),
		}
		_, err := run.Run(ctx, list, &r, nil)
		return err
	})
	assert.Equal(t, []string{"step stopped", "shred the env file", "release the lock"}, r.events)
}
