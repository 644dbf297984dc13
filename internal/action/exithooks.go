package action

import "sync"

// exitHooks are cleanups that must run however the process ends: on return and,
// when a signal arrives, straight from the signal handler.
type exitHooks struct {
	mu    sync.Mutex
	next  int
	hooks map[int]func()
}

// OnExit registers fn to run if the process is interrupted (SIGINT, SIGTERM) before
// the returned release is called. Call release after running fn yourself on the
// normal path (typically: defer release(); defer fn()).
func (c *Context) OnExit(fn func()) (release func()) {
	h := &c.exit
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hooks == nil {
		h.hooks = map[int]func(){}
	}
	id := h.next
	h.next++
	h.hooks[id] = fn
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.hooks, id)
	}
}

// RunExitHooks runs every registered cleanup once; the signal handler calls it.
func (c *Context) RunExitHooks() {
	h := &c.exit
	h.mu.Lock()
	hooks := h.hooks
	h.hooks = nil
	h.mu.Unlock()
	for _, fn := range hooks {
		fn()
	}
}
