// Package history keeps the deploy history file on the host (deploy's history step):
// one line per event, `timestamp | stack | env | action | version | status | notes`,
// and answers the questions deploys ask of it: what ran last, and was a version
// verified on another environment.
package history

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Actions and statuses written by the kit.
const (
	ActionDeploy   = "deploy"
	ActionRollback = "rollback"
	ActionVerified = "verified"
	ActionRestore  = "restore"
	ActionDrill    = "drill"  // a restore into a copy of the stack: production untouched
	ActionBackup   = "backup" // only as a run killed holding the stack's lock

	StatusSuccess   = "success"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
	StatusKilled    = "killed" // ended without a word (SIGKILL, a machine gone): written by the run after it
	StatusForced    = "FORCED"
)

// Entry is one history line.
type Entry struct {
	Time    time.Time
	Stack   string
	Env     string
	Action  string
	Version string
	Status  string
	Notes   string
}

const sep = " | "

// String renders the entry as its line (without the newline). A "|" or line break
// inside a field is replaced, so one entry is always one parseable line.
func (e Entry) String() string {
	clean := strings.NewReplacer("|", "/", "\n", " ", "\r", " ")
	fields := []string{e.Time.UTC().Format(time.RFC3339), e.Stack, e.Env, e.Action, e.Version, e.Status, e.Notes}
	for i, f := range fields {
		fields[i] = clean.Replace(f)
	}
	return strings.Join(fields, sep)
}

// Parse reads one line.
func Parse(line string) (Entry, error) {
	f := strings.SplitN(line, sep, 7)
	if len(f) < 6 {
		return Entry{}, fmt.Errorf("not a history line: %q", line)
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(f[0]))
	if err != nil {
		return Entry{}, fmt.Errorf("history line %q: bad timestamp: %w", line, err)
	}
	e := Entry{Time: t, Stack: f[1], Env: f[2], Action: f[3], Version: f[4], Status: f[5]}
	if len(f) == 7 {
		e.Notes = f[6]
	}
	return e, nil
}

// File is a history file: on the runner's disk, which is the Docker host's
// when the runner runs there, or on the Docker host reached over SSH (Host).
type File struct {
	Path string
	Host Host // nil: this machine's disk
}

// Host is a Docker host whose files the kit reads and appends to from a
// runner elsewhere (remote.Conn).
type Host interface {
	ReadFile(ctx context.Context, path string) ([]byte, error)
	AppendFile(ctx context.Context, path string, data []byte) error
}

// hostTimeout bounds one read or append of a history file on a Docker host.
const hostTimeout = time.Minute

// Append adds entries, creating the file and its directory when missing. Each
// entry is written with one write call on an O_APPEND file and synced.
func (f File) Append(entries ...Entry) error {
	if f.Host != nil {
		var b strings.Builder
		for _, e := range entries {
			b.WriteString(e.String() + "\n")
		}
		ctx, cancel := context.WithTimeout(context.Background(), hostTimeout)
		defer cancel()
		if err := f.Host.AppendFile(ctx, f.Path, []byte(b.String())); err != nil {
			return fmt.Errorf("history file %s: %w", f.Path, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
		return fmt.Errorf("history file %s: %w", f.Path, err)
	}
	fh, err := f.open(os.O_WRONLY | os.O_APPEND | os.O_CREATE)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, err = fh.WriteString(e.String() + "\n"); err != nil {
			break
		}
	}
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("history file %s: %w", f.Path, err)
	}
	return nil
}

// open opens the history file itself: never through a symlink (whoever can write
// the directory must not be able to point the kit's appends at another file), and
// only a regular file.
func (f File) open(flag int) (*os.File, error) {
	fh, err := os.OpenFile(f.Path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o644)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("history file %s is a symbolic link: set history-file to the file itself", f.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("history file %s: %w", f.Path, err)
	}
	if info, err := fh.Stat(); err != nil || !info.Mode().IsRegular() {
		fh.Close()
		return nil, fmt.Errorf("history file %s is not a regular file", f.Path)
	}
	return fh, nil
}

// Read returns every entry, oldest first; a missing file is an empty history.
// Lines that do not parse (hand edits) are skipped.
func (f File) Read() ([]Entry, error) {
	entries, _, err := f.ReadCounting()
	return entries, err
}

// ReadCounting is Read that also says how many lines it skipped.
func (f File) ReadCounting() (entries []Entry, skipped int, err error) {
	var r io.Reader
	if f.Host != nil {
		ctx, cancel := context.WithTimeout(context.Background(), hostTimeout)
		defer cancel()
		data, err := f.Host.ReadFile(ctx, f.Path)
		if err != nil {
			return nil, 0, fmt.Errorf("history file %s: %w", f.Path, err)
		}
		r = bytes.NewReader(data)
	} else {
		fh, err := f.open(os.O_RDONLY)
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, nil
		}
		if err != nil {
			return nil, 0, err
		}
		defer fh.Close()
		r = fh
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		if e, err := Parse(sc.Text()); err == nil {
			entries = append(entries, e)
		} else {
			skipped++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, skipped, fmt.Errorf("history file %s: %w", f.Path, err)
	}
	return entries, skipped, nil
}

// SHA is the commit recorded in the entry's notes (sha=…), or "".
func (e Entry) SHA() string {
	for _, part := range strings.Split(e.Notes, "; ") {
		if sha, ok := strings.CutPrefix(part, "sha="); ok {
			return sha
		}
	}
	return ""
}

// Live reports whether an entry put a version live: a successful (or forced)
// deploy or rollback.
func (e Entry) Live() bool {
	return (e.Action == ActionDeploy || e.Action == ActionRollback) && (e.Status == StatusSuccess || e.Status == StatusForced)
}

// Current is the version live on stack+env according to entries (the last live
// entry), or false when there is none.
func Current(entries []Entry, stack, env string) (Entry, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Stack == stack && e.Env == env && e.Live() {
			return e, true
		}
	}
	return Entry{}, false
}

// Verified reports whether this release — version at commit sha — was verified
// under the name env (a success on an environment deployed with `verifies: <env>`).
// A verification names the commit it verified, so another stack's verification
// of the same version number proves nothing; one written before commits were
// recorded counts only for the same stack.
func Verified(entries []Entry, stack, env, version, sha string) bool {
	for _, e := range entries {
		if e.Action != ActionVerified || e.Env != env || e.Version != version || e.Status != StatusSuccess {
			continue
		}
		if recorded := e.SHA(); recorded != "" {
			if recorded == sha {
				return true
			}
		} else if e.Stack == stack {
			return true
		}
	}
	return false
}
