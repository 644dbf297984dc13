// Package lock makes sure only one deploy of a stack and environment runs at a time
// on a host: a lock file created atomically (O_EXCL) that names its holder, released
// on every way out. A lock whose holder process is gone is taken over.
package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// Holder is what a lock file says about who holds it.
type Holder struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Version string    `json:"version,omitempty"`
	JobURL  string    `json:"job_url,omitempty"`
	Since   time.Time `json:"since"`
}

func (h Holder) String() string {
	s := fmt.Sprintf("pid %d on %s since %s", h.PID, h.Host, h.Since.UTC().Format(time.RFC3339))
	if h.Version != "" {
		s += ", deploying " + h.Version
	}
	if h.JobURL != "" {
		s += ", job " + h.JobURL
	}
	return s
}

// Lock is a held lock.
type Lock struct {
	Path string
	once sync.Once
	err  error
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// PathFor is the lock file for a stack and environment under dir.
func PathFor(dir, stack, env string) string {
	return filepath.Join(dir, unsafe.ReplaceAllString(stack, "_")+"--"+unsafe.ReplaceAllString(env, "_")+".lock")
}

// PollInterval is how often a waiting deploy retries.
var PollInterval = 500 * time.Millisecond

// Acquire takes the lock at path, waiting up to timeout for the current holder.
// onWait is called once, with the holder, when it has to wait.
func Acquire(ctx context.Context, path string, me Holder, timeout time.Duration, onWait func(Holder)) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock directory: %w", err)
	}
	data, err := json.Marshal(me)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	waited := false
	for {
		err := create(path, data)
		if err == nil {
			return &Lock{Path: path}, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		holder, readErr := read(path)
		if readErr == nil && holder.Host == me.Host && !Alive(holder.PID) {
			// The holder died without releasing (SIGKILL, host crash): take over.
			if os.Remove(path) == nil {
				continue
			}
		}
		if !waited && onWait != nil {
			onWait(holder)
			waited = true
		}
		if time.Now().After(deadline) {
			return nil, &HeldError{Path: path, Holder: holder, Waited: timeout}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(PollInterval):
		}
	}
}

// HeldError says the lock stayed held for the whole wait.
type HeldError struct {
	Path   string
	Holder Holder
	Waited time.Duration
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("another deploy holds the lock %s (%s); waited %s: try again when it has finished, or raise lock-timeout", e.Path, e.Holder, e.Waited)
}

func create(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

func read(path string) (Holder, error) {
	var h Holder
	data, err := os.ReadFile(path)
	if err != nil {
		return h, err
	}
	return h, json.Unmarshal(data, &h)
}

// Update rewrites the holder details (e.g. once the version is known).
func (l *Lock) Update(h Holder) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	tmp := l.Path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, l.Path)
}

// Release removes the lock; it runs once and is safe from a signal handler.
func (l *Lock) Release() error {
	l.once.Do(func() {
		if err := os.Remove(l.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.err = fmt.Errorf("releasing lock %s: %w", l.Path, err)
		}
	})
	return l.err
}

// Alive reports whether a process with this id exists on this host (EPERM: it
// does, as another user). Files named after a dead process are stale.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
