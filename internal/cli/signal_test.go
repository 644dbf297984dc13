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
