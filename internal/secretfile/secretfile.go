// Package secretfile turns prefixed environment variables (the job's secrets) into
// an env file for `docker compose --env-file` (DESIGN §4): mode 0600, outside the
// workspace, overwritten and removed on every way out, and swept up by the next run
// when a killed run could not remove it.
package secretfile

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/org/deploy-kit/internal/lock"
)

// Var is one secret: the variable name it gets in the file and its value.
type Var struct {
	Key   string
	Value string
	From  string // the job variable it came from
}

var namePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Collect returns the variables of environ whose name starts with prefix, with the
// prefix removed (ENV_DB_PASSWORD → DB_PASSWORD), sorted by key.
func Collect(environ []string, prefix string) ([]Var, error) {
	if !namePattern.MatchString(prefix) {
		return nil, fmt.Errorf("secret prefix %q: want letters, digits and underscores, such as ENV_", prefix)
	}
	var vars []Var
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, prefix) {
			continue
		}
		key := strings.TrimPrefix(name, prefix)
		if !namePattern.MatchString(key) {
			return nil, fmt.Errorf("secret variable %s: %q after the prefix %s is not a valid variable name", name, key, prefix)
		}
		if strings.ContainsRune(value, 0) {
			return nil, fmt.Errorf("secret variable %s: the value contains a NUL byte, which no env file can carry", name)
		}
		vars = append(vars, Var{Key: key, Value: value, From: name})
	}
	slices.SortFunc(vars, func(a, b Var) int { return cmp.Compare(a.Key, b.Key) })
	return vars, nil
}

// Encode renders vars as an env file that Docker Compose reads back byte for byte:
// every value double-quoted with \ " $ and line breaks escaped, so quotes, #, =,
// $VAR, spaces and newlines all survive.
func Encode(vars []Var) []byte {
	var b strings.Builder
	for _, v := range vars {
		b.WriteString(v.Key)
		b.WriteString(`="`)
		b.WriteString(escaper.Replace(v.Value))
		b.WriteString("\"\n")
	}
	return []byte(b.String())
}

var escaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "\n", `\n`, "\r", `\r`)

// FilePrefix starts the name of every env file the kit writes; the process id
// follows, so the next run can tell a live file from a stale one.
const FilePrefix = "deploykit-env-"

// File is a written env file. Remove it on every way out; Remove is safe to call
// more than once and from a signal handler.
type File struct {
	Path string
	Vars []Var
	// Swept lists stale files of dead runs that Write removed.
	Swept []string

	once    sync.Once
	err     error
	release func() // drops the cancel hook of WriteForJob
}

// Write creates the env file in dir (the runner's temp dir), refusing a dir that
// resolves into the workspace, where the checkout could upload or commit it. Stale
// files of dead runs in dir are removed first.
func Write(dir, workspace string, vars []Var) (*File, error) {
	realDir, err := resolve(dir)
	if err != nil {
		return nil, fmt.Errorf("secret env file directory %s: %w", dir, err)
	}
	if workspace != "" {
		if ws, err := resolve(workspace); err == nil && within(realDir, ws) {
			return nil, fmt.Errorf("secret env file directory %s is inside the workspace %s: set RUNNER_TEMP to a directory outside it", dir, workspace)
		}
	}
	swept, err := RemoveStale(realDir)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(realDir, fmt.Sprintf("%s%d-*.env", FilePrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("creating the secret env file: %w", err)
	}
	file := &File{Path: f.Name(), Vars: vars, Swept: swept}
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(Encode(vars))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = file.Remove()
		return nil, fmt.Errorf("writing the secret env file: %w", err)
	}
	return file, nil
}

func resolve(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// Remove overwrites the file's contents and deletes it. It runs once; later calls
// return the first result.
func (f *File) Remove() error {
	f.once.Do(func() {
		f.err = shred(f.Path)
		if f.release != nil {
			f.release()
		}
	})
	return f.err
}

// shred overwrites a file with zeros, syncs, and unlinks it. A file already gone is
// not an error.
func shred(path string) error {
	fh, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		var info os.FileInfo
		if info, err = fh.Stat(); err == nil {
			_, err = fh.Write(make([]byte, info.Size()))
		}
		if err == nil {
			err = fh.Sync()
		}
		fh.Close()
	}
	if rmErr := os.Remove(path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		return fmt.Errorf("removing secret env file %s: %w", path, rmErr)
	}
	if err != nil {
		return fmt.Errorf("overwriting secret env file %s before removing it: %w", path, err)
	}
	return nil
}

// RemoveStale shreds env files in dir left by runs that no longer exist (a
// SIGKILLed job cannot clean up after itself) and returns their paths.
func RemoveStale(dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, FilePrefix+"*.env"))
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, m := range matches {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(m), FilePrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || lock.Alive(pid) {
			continue
		}
		if err := shred(m); err != nil {
			return removed, err
		}
		removed = append(removed, m)
	}
	return removed, nil
}
