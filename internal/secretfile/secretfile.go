// Package secretfile turns prefixed environment variables (the job's secrets) into
// an env file for `docker compose --env-file`: mode 0600, in a 0700 directory of
// the user's own outside the workspace, overwritten and removed on every way out,
// and swept up by the next run when a killed run could not remove it.
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
	"syscall"

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

// Dir is the kit's own directory for env files under a temp dir: one per user,
// mode 0700, so no other user can plant or read anything in it.
func Dir(tempDir string) string {
	return filepath.Join(tempDir, fmt.Sprintf("deploykit-secrets-%d", os.Geteuid()))
}

// Write creates the env file in the kit's own directory under tempDir (the
// runner's temp dir), refusing one that resolves into the workspace or the git
// checkout around it, where the checkout could upload or commit it. Stale files of
// dead runs in that directory are removed first.
func Write(tempDir, workspace string, vars []Var) (*File, error) {
	realTemp, err := resolve(tempDir)
	if err != nil {
		return nil, fmt.Errorf("secret env file directory %s: %w", tempDir, err)
	}
	for _, ws := range checkout(workspace) {
		if within(realTemp, ws) {
			return nil, fmt.Errorf("secret env file directory %s is inside the workspace %s: set RUNNER_TEMP to a directory outside it", tempDir, ws)
		}
	}
	dir, err := ownDir(realTemp)
	if err != nil {
		return nil, err
	}
	swept, err := RemoveStale(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, fmt.Sprintf("%s%d-*.env", FilePrefix, os.Getpid()))
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

// checkout is the workspace (resolved) and the top of the git checkout it is in,
// when it is in one: neither may hold an env file.
func checkout(workspace string) []string {
	if workspace == "" {
		return nil
	}
	ws, err := resolve(workspace)
	if err != nil {
		return nil
	}
	dirs := []string{ws}
	if top := GitTop(ws); top != "" && top != ws {
		dirs = append(dirs, top)
	}
	return dirs
}

// GitTop is the top of the git checkout dir is in (the nearest directory up with a
// .git entry), or "".
func GitTop(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// ownDir creates (or checks) Dir(tempDir): a real directory, not a symlink, owned
// by this user, mode 0700. Anything else is refused rather than used.
func ownDir(tempDir string) (string, error) {
	dir := Dir(tempDir)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("secret env file directory %s: %w", dir, err)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("secret env file directory %s: %w", dir, err)
	}
	if err := Own(info, true, 0o700); err != nil {
		hint := "remove it"
		if errors.Is(err, errNotMine) {
			hint += ", or set RUNNER_TEMP to a directory of your own"
		}
		return "", fmt.Errorf("secret env file directory %s %w: %s", dir, err, hint)
	}
	return dir, nil
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
// not an error. Only a regular file of this user's with mode 0600 — what Write
// makes — is touched: never a symlink's target, never another user's file.
func shred(path string) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("overwriting secret env file %s before removing it: %w", path, err)
	}
	info, err := fh.Stat()
	if err == nil {
		err = Own(info, false, 0o600)
	}
	if err != nil {
		fh.Close()
		return fmt.Errorf("not touching %s, which %w", path, err)
	}
	_, err = fh.Write(make([]byte, info.Size()))
	if err == nil {
		err = fh.Sync()
	}
	fh.Close()
	if rmErr := os.Remove(path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		return fmt.Errorf("removing secret env file %s: %w", path, rmErr)
	}
	if err != nil {
		return fmt.Errorf("overwriting secret env file %s before removing it: %w", path, err)
	}
	return nil
}

// errNotMine is Own's answer for a file of another user's.
var errNotMine = errors.New("belongs to another user")

// Own says why info is not what the kit itself makes on a shared path — a
// directory (dir) or a regular file, of this user's, with exactly mode perm — or
// nil. The reason reads after the path: "<path> has mode 644, not 600".
func Own(info os.FileInfo, dir bool, perm os.FileMode) error {
	st, _ := info.Sys().(*syscall.Stat_t)
	switch {
	case dir && !info.IsDir():
		return fmt.Errorf("is not a directory (%s)", info.Mode().Type())
	case !dir && !info.Mode().IsRegular():
		return fmt.Errorf("is not a regular file (%s)", info.Mode().Type())
	case st == nil || int(st.Uid) != os.Geteuid():
		return errNotMine
	case info.Mode().Perm() != perm:
		return fmt.Errorf("has mode %o, not %o", info.Mode().Perm(), perm)
	}
	return nil
}

// RemoveStale shreds env files in dir (the kit's own directory, Dir) left by runs
// that no longer exist (a SIGKILLed job cannot clean up after itself) and returns
// their paths. Entries that are not env files of this user's are left alone.
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
		if info, err := os.Lstat(m); err != nil || Own(info, false, 0o600) != nil {
			continue
		}
		if err := shred(m); err != nil {
			return removed, err
		}
		removed = append(removed, m)
	}
	return removed, nil
}
