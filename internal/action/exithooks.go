package action

import (
	"slices"
	"sync"
)

// exitHooks are cleanups that must run however the process ends: on return and,
// when a signal arrives, once the cancelled command has stopped.
type exitHooks struct {
	mu    sync.Mutex
	next  int
	hooks []exitHook // in order of registration
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
