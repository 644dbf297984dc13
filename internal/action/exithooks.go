package action

import (
	"context"
	"slices"
	"sync"
	"time"
)

// exitHooks are cleanups that must run however the process ends: on return and,
// when a signal arrives, once the cancelled command has stopped.
type exitHooks struct {
	mu        sync.Mutex
	next      int
	hooks     []exitHook // in order of registration
	cancelled time.Time  // when the first signal arrived
}

type exitHook struct {
	id int
	fn func()
}

// OnExit registers fn to run if the process is interrupted (SIGINT, SIGTERM) before
// the returned release is called. Call release after running fn yourself on the
// normal path (typically: defer release(); defer fn()).
func (c *Context) OnExit(fn func()) (release func()) {
	h := &c.exit
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.next
	h.next++
	h.hooks = append(h.hooks, exitHook{id, fn})
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.hooks = slices.DeleteFunc(h.hooks, func(e exitHook) bool { return e.id == id })
	}
}

// RunExitHooks runs every cleanup still registered once, newest first (a file
// written under a lock is removed before the lock is released). The signal handler
// calls it after the cancelled command has stopped.
func (c *Context) RunExitHooks() {
	h := &c.exit
	h.mu.Lock()
	hooks := h.hooks
	h.hooks = nil
	h.mu.Unlock()
	for _, e := range slices.Backward(hooks) {
		e.fn()
	}
}

// CancelBudget is how long a cancelled run has, from the first signal, to put
// production back in a serving state, write its history line and hand-off and
// exit: GitHub's runner sends SIGINT, then SIGTERM 7.5 s later and SIGKILL 2.5 s
// after that, to the step's entry process (docs/cancel.md). What is
// not needed to serve is left for the next run, which repairs first.
const CancelBudget = 7 * time.Second

// Cancelling records that a signal arrived at: from now on the run starts
// nothing new, and what it does to serve again ends by CancelDeadline.
func (c *Context) Cancelling(at time.Time) {
	c.exit.mu.Lock()
	defer c.exit.mu.Unlock()
	if c.exit.cancelled.IsZero() {
		c.exit.cancelled = at
	}
}

// CancelDeadline is when what a cancelled run does to serve again must end:
// 5 s after the signal, so that the history line and the summary are written
// and the process has ended before CancelBudget runs out, on a busy machine
// too. ok is false while no signal has arrived.
func (c *Context) CancelDeadline() (deadline time.Time, ok bool) {
	c.exit.mu.Lock()
	defer c.exit.mu.Unlock()
	if c.exit.cancelled.IsZero() {
		return time.Time{}, false
	}
	return c.exit.cancelled.Add(CancelBudget - 2*time.Second), true
}

// CancelWait is how long the edge waits for a cancelled run to end before it
// exits anyway: the budget, less what the exit hooks and the exit take.
const CancelWait = CancelBudget - 500*time.Millisecond

// CancelContext is a context for what a run does after it was cancelled to
// put production back in a serving state: not cancelled with parent, but
// ending at CancelDeadline (or after budget when no signal arrived: a
// timeout, a failure).
func (c *Context) CancelContext(parent context.Context, budget time.Duration) (context.Context, context.CancelFunc) {
	if d, ok := c.CancelDeadline(); ok {
		return context.WithDeadline(context.WithoutCancel(parent), d)
	}
	return context.WithTimeout(context.WithoutCancel(parent), budget)
}
