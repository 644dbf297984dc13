package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type state struct{ ran []string }

func step(name string, err error) Step[*state] {
	return Func(name, func(_ context.Context, s *state) error {
		s.ran = append(s.ran, name)
		return err
	})
}

func newRunner(log *strings.Builder) *Runner[*state] {
	return &Runner[*state]{Logf: func(f string, args ...any) { fmt.Fprintf(log, f+"\n", args...) }}
}

func outcomes(r []Result) []string {
	var out []string
	for _, x := range r {
		out = append(out, x.Step+":"+x.Outcome+":"+x.Detail)
	}
	return out
}

func TestRunInOrderSkipsAndFailures(t *testing.T) {
	var log strings.Builder
	r, s := newRunner(&log), &state{}
	boom := errors.New("boom")
	list := []Step[*state]{step("a", nil), step("b", Skip("not %s", "wanted")), step("c", boom), step("d", nil)}
	failed, err := r.Run(context.Background(), list, s, nil)
	assert.Equal(t, boom, err)
	assert.Equal(t, "c", failed.String())
	assert.Equal(t, []string{"a", "b", "c"}, s.ran, "d never runs after c failed")
	assert.Equal(t, []string{"a:done:", "b:skipped:not wanted", "c:failed:boom", "d:skipped:an earlier step failed"}, outcomes(r.Results))
	assert.Equal(t, []string{"a: done", "b: skipped", "c: failed", "d: skipped"}, Outcomes(r.Results))
	assert.Equal(t, "==> a\n==> b\n    skipped: not wanted\n==> c\n", log.String())
	assert.Equal(t, []string{"a", "b", "c", "d"}, Names(list))
	assert.True(t, IsSkip(fmt.Errorf("wrapped: %w", Skip("x"))))
	assert.False(t, IsSkip(boom))
}

func TestStopEndsTheRunWithoutFailure(t *testing.T) {
	var log strings.Builder
	r, s := newRunner(&log), &state{}
	list := []Step[*state]{step("guard", nil), step("apply", nil)}
	failed, err := r.Run(context.Background(), list, s, func() string { return "the guard skipped this run" })
	require.NoError(t, err)
	assert.Nil(t, failed)
	assert.Equal(t, []string{"guard:done:", "apply:skipped:the guard skipped this run"}, outcomes(r.Results))
}

func TestDidIsTheRunningStepsDetail(t *testing.T) {
	var log strings.Builder
	r := newRunner(&log)
	s := &state{}
	did := Func("a", func(context.Context, *state) error { r.Did("wrote %d", 3); r.AddDetail("verified"); return nil })
	require.NoError(t, r.One(context.Background(), did, s))
	require.NoError(t, r.One(context.Background(), step("b", nil), s))
	assert.Equal(t, []string{"a:done:wrote 3; verified", "b:done:"}, outcomes(r.Results), "a detail belongs to its step only")
	assert.Contains(t, log.String(), "    wrote 3\n")
	assert.Contains(t, Table(r.Results), "| a | done | ")
	assert.Contains(t, Table(r.Results), " | wrote 3; verified |\n")
}

// Cleanups run newest first, once each: on the normal path, and from the exit
// hooks (the signal handler's path) — never twice when both happen.
func TestCleanupsRunNewestFirstOnce(t *testing.T) {
	var hooks []func()
	released := 0
	onExit := func(fn func()) func() {
		hooks = append(hooks, fn)
		return func() { released++ }
	}
	var ran []string
	var log strings.Builder
	r := newRunner(&log)
	r.OnExit = onExit
	r.Defer(func() { ran = append(ran, "release the lock") })
	r.Defer(func() { ran = append(ran, "shred the env file") })
	// The signal handler ran the hooks, newest first, after the step stopped …
	for i := len(hooks) - 1; i >= 0; i-- {
		hooks[i]()
	}
	// … and then the run returned and cleaned up too.
	r.Cleanup()
	r.Cleanup()
	assert.Equal(t, []string{"shred the env file", "release the lock"}, ran)
	assert.Equal(t, 2, released)
}
