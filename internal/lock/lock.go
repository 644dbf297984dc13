// Package lock makes sure only one deploy of a stack runs at a time on a host: an
// flock(2) on the stack's lock file, which the kernel drops when the holder exits
// however it exits (SIGKILL included), so a dead holder never blocks anyone and
// there is no takeover to race. The file names its holder for whoever waits,
// and what it is doing (its step, what it stopped): a holder that ends removes
// the file, so a file found when the lock is taken is what a killed holder left
// (Lock.Left), for the next run to repair (docs/cancel.md).
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
	Doing   string    `json:"doing,omitempty"` // what a holder other than a deploy is doing, e.g. "restoring app-….sql.gz"
	JobURL  string    `json:"job_url,omitempty"`
	Since   time.Time `json:"since"`

	// What the next run needs when this holder is killed.
	Action    string    `json:"action,omitempty"` // deploy, rollback, restore, drill
	Env       string    `json:"env,omitempty"`
	Step      string    `json:"step,omitempty"` // the step it was in
	StepSince time.Time `json:"step_since,omitzero"`
	// Stopped are the containers a restore stopped (IDs), to start again.
	Stopped []string `json:"stopped,omitempty"`
}

func (h Holder) String() string {
	if h.PID == 0 {
		return "a holder that has not written its details yet"
	}
	s := fmt.Sprintf("pid %d on %s since %s", h.PID, h.Host, h.Since.UTC().Format(time.RFC3339))
	if h.Version != "" {
		s += ", deploying " + h.Version
	}
	if h.Doing != "" {
		s += ", " + h.Doing
	}
	if h.JobURL != "" {
		s += ", job " + h.JobURL
	}
	return s
}

// Lock is a held lock.
type Lock struct {
	Path string
	// Left is what the file said when the lock was taken: a holder that ends
	// removes its file, so one still there was killed (or its machine
	// stopped) holding the lock. nil when there was none.
	Left *Holder
	h    Handle
	mu   sync.Mutex
	err  error
	done bool
}

// Handle is where a held lock lives: the lock file this process flocked, or
// a process on the Docker host that holds it for a run elsewhere (remote).
type Handle interface {
	// Write replaces the holder's details in the lock file.
	Write(details []byte) error
	// Release removes the lock file, then lets the lock go.
	Release() error
}

// Held is a lock h holds at path; left is what a killed holder left there.
func Held(path string, left *Holder, h Handle) *Lock { return &Lock{Path: path, Left: left, h: h} }

// fileHandle is a lock file this process holds an flock on.
type fileHandle struct {
	path string
	f    *os.File
}

func (h fileHandle) Write(data []byte) error {
	if err := h.f.Truncate(0); err != nil {
		return err
	}
	_, err := h.f.WriteAt(data, 0)
	return err
}

// Release removes the file first, while still holding it: a waiter that
// opened the old file sees it is gone and locks the new one.
func (h fileHandle) Release() error {
	var err error
	if rerr := os.Remove(h.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = fmt.Errorf("releasing lock %s: %w", h.path, rerr)
	}
	_ = h.f.Close()
	return err
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Dir is the directory of the stack locks beside a history file: deploy,
// rollback and restore, which share the history, share the locks.
func Dir(historyFile string) string { return filepath.Join(filepath.Dir(historyFile), "locks") }

// PathFor is the lock file of a stack (a compose project or swarm stack) under
// dir. It does not depend on the environment's name: two environments that deploy
// the same project are the same deploy target.
func PathFor(dir, stack string) string {
	return filepath.Join(dir, unsafe.ReplaceAllString(stack, "_")+".lock")
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
		f, err := tryLock(path)
		if err != nil {
			return nil, err
		}
		if f != nil {
			l := Held(path, left(f), fileHandle{path: path, f: f})
			if err := l.h.Write(data); err != nil {
				_ = l.Release()
				return nil, fmt.Errorf("lock %s: %w", path, err)
			}
			return l, nil
		}
		holder, _ := read(path)
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

// tryLock opens path (never through a symlink) and takes the flock without
// waiting: the open file when it got it, nil when someone else holds it. A lock
// whose file was released (unlinked) between the open and the flock is tried
// again on the file that path names now.
func tryLock(path string) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("lock %s is a symbolic link: remove it", path)
		}
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, nil
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		held, herr := f.Stat()
		now, nerr := os.Lstat(path)
		if herr == nil && nerr == nil && os.SameFile(held, now) {
			if !held.Mode().IsRegular() {
				f.Close()
				return nil, fmt.Errorf("lock %s is not a regular file: remove it", path)
			}
			return f, nil
		}
		f.Close() // the holder released it meanwhile: lock the new file
	}
}

// left reads what a killed holder left in the file just locked: nil when it
// is empty (made now) or not a holder's details.
func left(f *os.File) *Holder {
	info, err := f.Stat()
	if err != nil || info.Size() == 0 || info.Size() > 1<<20 {
		return nil
	}
	data := make([]byte, info.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil
	}
	var h Holder
	if json.Unmarshal(data, &h) != nil || h.PID == 0 {
		return &Holder{} // a holder killed before it wrote its details
	}
	return &h
}

func read(path string) (Holder, error) {
	var h Holder
	data, err := os.ReadFile(path)
	if err != nil {
		return h, err
	}
	return h, json.Unmarshal(data, &h)
}

// HeldError says the lock stayed held for the whole wait.
type HeldError struct {
	Path   string
	Holder Holder
	Waited time.Duration
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("another deploy, rollback, restore or backup holds the lock %s (%s); waited %s: try again when it has finished, or raise lock-timeout", e.Path, e.Holder, e.Waited)
}

// Update rewrites the holder details (e.g. once the version is known).
func (l *Lock) Update(h Holder) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return fmt.Errorf("lock %s: already released", l.Path)
	}
	return l.h.Write(data)
}

// Release removes the lock file and then drops the lock; it runs once and is
// safe to call again.
func (l *Lock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return l.err
	}
	l.done = true
	l.err = l.h.Release()
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
