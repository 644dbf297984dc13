package repair

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
)

// Restoring is what a restore that replays into the live database in place
// (a whole PostgreSQL or MySQL server: it cannot be swapped in) writes beside
// the stack's lock before it starts, and removes once the database holds a
// whole backup again (the one restored, or the safety backup put back). Found
// by a later run, it means the database holds part of Backup.
type Restoring struct {
	Backup  string    `json:"backup"`  // what was being restored
	Safety  string    `json:"safety"`  // the backup of what was there before
	PutBack string    `json:"putback"` // the command that puts Safety back
	Since   time.Time `json:"since"`
	JobURL  string    `json:"job_url,omitempty"`
}

// RestoringPath is the mark beside the lock file lockPath.
func RestoringPath(lockPath string) string {
	return strings.TrimSuffix(lockPath, ".lock") + ".restoring"
}

// Bytes is the mark's content.
func (m Restoring) Bytes() []byte {
	data, _ := json.Marshal(m) // strings and a time: never fails
	return data
}

// MarkRestoring writes the mark (never through a symlink; the lock is held).
func MarkRestoring(lockPath string, m Restoring) error {
	data := m.Bytes()
	path := RestoringPath(lockPath)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("marking %s: %w", path, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(path)
	}
	return err
}

// DoneRestoring removes the mark.
func DoneRestoring(lockPath string) error {
	err := os.Remove(RestoringPath(lockPath))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// HalfRestored reads the mark: nil when the database holds a whole backup.
func HalfRestored(lockPath string) (*Restoring, error) {
	path := RestoringPath(lockPath)
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if m := ParseRestoring(data); m != nil {
		return m, nil
	}
	return &Restoring{}, nil // empty: still a mark
}

// ParseRestoring reads a mark's content: nil for none (empty), a mark
// without details for one that does not parse.
func ParseRestoring(data []byte) *Restoring {
	if len(data) == 0 {
		return nil
	}
	var m Restoring
	if json.Unmarshal(data, &m) != nil {
		return &Restoring{}
	}
	return &m
}

// Refusal is the error of a run that must not change a stack whose database
// a restore left half-restored.
func (m Restoring) Refusal(stack string) error {
	what := "a backup"
	if m.Backup != "" {
		what = m.Backup
	}
	s := fmt.Sprintf("the database of %s holds part of %s: a restore (since %s) was cancelled or killed while it replayed it into the live database; "+
		"put the database back first — the safety backup %s, with: %s — or restore a backup again; then deploy",
		stack, what, m.Since.UTC().Format(time.RFC3339), m.Safety, m.PutBack)
	return errors.New(s)
}

func syncDir(path string) error {
	d, err := os.Open(dirOf(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		return path[:i]
	}
	return "."
}
