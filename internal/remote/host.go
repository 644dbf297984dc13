package remote

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/lock"
)

// What a run keeps on the Docker host — the stack's lock, its history — lives
// in files there, read and written through commands of the host's own shell
// (sh, cat, mkdir, mv, wc, tr, find; bash and util-linux's flock for the lock) over the run's
// SSH connection. Paths are quoted for the shell; data travels on stdin.

// run runs script on the host with stdin, and returns its stdout.
func (c *Conn) run(ctx context.Context, script string, stdin io.Reader) ([]byte, error) {
	var stdout bytes.Buffer
	err := c.stream(ctx, script, stdin, &stdout)
	return stdout.Bytes(), err
}

// StallTimeout ends a command on the host that moves no data, in or out, for
// this long: a connection that stopped carrying data (a link gone without a
// word, a host that froze) fails the step instead of hanging it.
var StallTimeout = 2 * time.Minute

// stream runs script on the host, stdin to its standard input and its
// standard output to stdout, and ends it with an error when ctx ends or no
// data has moved for StallTimeout.
func (c *Conn) stream(ctx context.Context, script string, stdin io.Reader, stdout io.Writer) error {
	client, err := c.ssh(ctx)
	if err != nil {
		return err
	}
	session, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("a command on %s: %w", c.Host, err)
	}
	c.chans.Add(1)
	defer session.Close()
	var moved atomic.Int64
	var stderr bytes.Buffer
	if stdin != nil {
		session.Stdin = &counting{r: stdin, n: &moved}
	}
	session.Stdout, session.Stderr = &counting{w: stdout, n: &moved}, &stderr
	if err := session.Start(script); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- session.Wait() }()
	tick := time.NewTicker(StallTimeout / 8)
	defer tick.Stop()
	last, lastMoved := time.Now(), int64(0)
	for {
		select {
		case err = <-done:
			if err != nil {
				return fmt.Errorf("on %s: %w: %s", c.Host, err, strings.TrimSpace(stderr.String()))
			}
			return nil
		case <-ctx.Done():
			session.Close()
			return ctx.Err()
		case now := <-tick.C:
			if n := moved.Load(); n != lastMoved {
				last, lastMoved = now, n
			} else if now.Sub(last) >= StallTimeout {
				session.Close()
				return fmt.Errorf("on %s: no data moved for %s (after %d bytes): the connection stalled", c.Host, StallTimeout, n)
			}
		}
	}
}

// counting counts the bytes read from r or written to w into n.
type counting struct {
	r io.Reader
	w io.Writer
	n *atomic.Int64
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *counting) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// ReadFile reads a file on the host (empty when there is none).
func (c *Conn) ReadFile(ctx context.Context, file string) ([]byte, error) {
	q := command.Quote(file)
	return c.run(ctx, "if [ -e "+q+" ]; then cat -- "+q+"; fi", nil)
}

// AppendFile appends data to a file on the host, making its directory.
func (c *Conn) AppendFile(ctx context.Context, file string, data []byte) error {
	_, err := c.run(ctx, "mkdir -p -- "+command.Quote(path.Dir(file))+" && cat >> "+command.Quote(file), bytes.NewReader(data))
	return err
}

// leaseScript holds the lock at $L with an flock, for as long as the run
// sends a line at least every leaseTime: each line is the holder's details
// (written into the file), "beat" keeps it, "release" removes the file and
// lets go. A run that stops sending — killed, its machine gone — loses the
// lock leaseTime after its last line, its file left for the next run (as a
// killed holder's is on one host).
const leaseScript = `set -u
L=%s
mkdir -p -- "$(dirname -- "$L")"
exec 9>>"$L"
if ! flock -n 9; then
  printf 'deploykit-lock-busy\n'; cat -- "$L"; printf '\n'
  flock -w %d 9 || { printf 'deploykit-lock-timeout\n'; cat -- "$L"; exit 75; }
fi
printf 'deploykit-lock-held\n'; cat -- "$L"; printf '\ndeploykit-lock-end\n'
while IFS= read -r -t %d line; do
  case "$line" in
  release) rm -f -- "$L"; printf 'released\n'; exit 0 ;;
  beat) ;;
  *) printf '%%s\n' "$line" > "$L"; printf 'ok\n' ;;
  esac
done
exit 0
`

// leaseTime is how long the host keeps the lock of a run it hears nothing from.
const leaseTime = 60 * time.Second

// Lock takes the lock file lockPath on the host, as lock.Acquire does on this
// one: exclusive across runners, waiting up to timeout (onWait told once who
// holds it), what a killed holder left reported as the lock's Left. It is a
// lease: the kit keeps it alive every 20 s; the host lets go of a holder it has
// not heard from for a minute.
func (c *Conn) Lock(ctx context.Context, lockPath string, me lock.Holder, timeout time.Duration, onWait func(lock.Holder)) (*lock.Lock, error) {
	details, err := json.Marshal(me)
	if err != nil {
		return nil, err
	}
	client, err := c.ssh(ctx)
	if err != nil {
		return nil, err
	}
	session, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("taking the lock %s on %s: %w", lockPath, c.Host, err)
	}
	c.chans.Add(1)
	stdin, err := session.StdinPipe()
	if err != nil {
		session.Close()
		return nil, err
	}
	out, err := session.StdoutPipe()
	if err != nil {
		session.Close()
		return nil, err
	}
	var stderr bytes.Buffer
	session.Stderr = &stderr
	script := fmt.Sprintf(leaseScript, command.Quote(lockPath), max(0, int(timeout.Seconds())), int(leaseTime.Seconds()))
	if err := session.Start("bash -c " + command.Quote(script)); err != nil {
		session.Close()
		return nil, fmt.Errorf("taking the lock %s on %s: %w", lockPath, c.Host, err)
	}
	lines := bufio.NewReader(out)
	type result struct {
		left *lock.Holder
		err  error
	}
	got := make(chan result, 1)
	go func() {
		var left *lock.Holder
		for {
			line, err := lines.ReadString('\n')
			if err != nil {
				got <- result{err: fmt.Errorf("taking the lock %s on %s: the command ended (%v): %s", lockPath, c.Host, err, strings.TrimSpace(stderr.String()))}
				return
			}
			switch strings.TrimSpace(line) {
			case "deploykit-lock-busy":
				h, _ := lines.ReadString('\n')
				if onWait != nil {
					onWait(holder(h))
				}
			case "deploykit-lock-timeout":
				h, _ := lines.ReadString('\n')
				got <- result{err: &lock.HeldError{Path: c.Host + ":" + lockPath, Holder: holder(h), Waited: timeout}}
				return
			case "deploykit-lock-held":
				var text strings.Builder
				for {
					l, err := lines.ReadString('\n')
					if err != nil || strings.TrimSpace(l) == "deploykit-lock-end" {
						break
					}
					text.WriteString(l)
				}
				if t := strings.TrimSpace(text.String()); t != "" {
					h := holder(t)
					left = &h
				}
				got <- result{left: left}
				return
			}
		}
	}()
	var r result
	select {
	case r = <-got:
	case <-ctx.Done():
		session.Close()
		return nil, ctx.Err()
	}
	if r.err != nil {
		session.Close()
		return nil, r.err
	}
	h := &lease{session: session, stdin: stdin, lines: lines, done: make(chan struct{})}
	if err := h.Write(details); err != nil {
		session.Close()
		return nil, fmt.Errorf("lock %s on %s: %w", lockPath, c.Host, err)
	}
	go h.beat()
	return lock.Held(c.Host+":"+lockPath, r.left, h), nil
}

// holder reads the holder's details a lock file holds.
func holder(text string) lock.Holder {
	var h lock.Holder
	if json.Unmarshal([]byte(strings.TrimSpace(text)), &h) != nil {
		return lock.Holder{}
	}
	return h
}

// lease is a lock held by a command on the Docker host.
type lease struct {
	mu      sync.Mutex
	session *ssh.Session
	stdin   io.WriteCloser
	lines   *bufio.Reader
	done    chan struct{}
	once    sync.Once
}

// say sends a line and waits for the host's answer to it, when it has one.
func (h *lease) say(line, want string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := io.WriteString(h.stdin, line+"\n"); err != nil {
		return err
	}
	if want == "" {
		return nil
	}
	got, err := h.lines.ReadString('\n')
	if err != nil {
		return fmt.Errorf("the host did not answer: %w", err)
	}
	if strings.TrimSpace(got) != want {
		return fmt.Errorf("the host answered %q", strings.TrimSpace(got))
	}
	return nil
}

func (h *lease) Write(details []byte) error {
	if bytes.ContainsAny(details, "\n\r") {
		return errors.New("holder details with a line break")
	}
	return h.say(string(details), "ok")
}

// beat keeps the lease alive until it is released.
func (h *lease) beat() {
	tick := time.NewTicker(20 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-tick.C:
			_ = h.say("beat", "")
		}
	}
}

func (h *lease) Release() error {
	var err error
	h.once.Do(func() {
		close(h.done)
		err = h.say("release", "released")
		_ = h.stdin.Close()
		_ = h.session.Wait()
		_ = h.session.Close()
	})
	return err
}

// FreeDisk is the percentage of dir's filesystem on the host that is free
// (df -P).
func (c *Conn) FreeDisk(ctx context.Context, dir string) (float64, error) {
	out, err := c.run(ctx, "df -P -- "+command.Quote(dir), nil)
	if err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 {
		return 0, fmt.Errorf("df %s on %s: %q", dir, c.Host, out)
	}
	f := strings.Fields(lines[len(lines)-1])
	if len(f) < 5 {
		return 0, fmt.Errorf("df %s on %s: %q", dir, c.Host, out)
	}
	var size, avail float64
	if _, err := fmt.Sscan(f[1], &size); err != nil || size == 0 {
		return 0, fmt.Errorf("df %s on %s: %q", dir, c.Host, out)
	}
	if _, err := fmt.Sscan(f[3], &avail); err != nil {
		return 0, fmt.Errorf("df %s on %s: %q", dir, c.Host, out)
	}
	return 100 * avail / size, nil
}

// Upload copies the local file src to dst on the host, under a temporary
// name first, renamed only once it holds all of src; dst's directory is made.
func (c *Conn) Upload(ctx context.Context, src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = c.run(ctx, uploadScript(dst, st.Size()), f)
	return err
}

// stalePartial is the age of a temporary upload on the host that no upload
// still writes: a live one writes at least every StallTimeout, or fails.
const stalePartial = 10 * time.Minute

// uploadScript writes its input to a temporary name beside dst and renames it
// to dst only when it holds size bytes. A runner killed mid-way ends the
// input early, and the host's cat takes that for the end of the file: the
// short copy is removed, never given dst's name. Temporary uploads in the
// directory older than stalePartial, which killed runs left, go first.
func uploadScript(dst string, size int64) string {
	dir, tmp := command.Quote(path.Dir(dst)), command.Quote(path.Join(path.Dir(dst), "."+path.Base(dst)+".partial"))
	return fmt.Sprintf("set -e; mkdir -p -- %[1]s; umask 077; "+
		"find %[1]s -maxdepth 1 -type f -name '.*.partial' -mmin +%[5]d -exec rm -f -- {} +; "+
		"cat > %[2]s; n=$(wc -c < %[2]s | tr -d ' '); "+
		"if [ \"$n\" -ne %[4]d ]; then rm -f -- %[2]s; echo \"received $n of %[4]d bytes: the upload was cut short\" >&2; exit 1; fi; "+
		"mv -f -- %[2]s %[3]s",
		dir, tmp, command.Quote(dst), size, int(stalePartial/time.Minute))
}

// RemoveFile removes a file on the host (none there is fine).
func (c *Conn) RemoveFile(ctx context.Context, file string) error {
	_, err := c.run(ctx, "rm -f -- "+command.Quote(file), nil)
	return err
}

// Download copies the file src on the host to the local file dst (made 0600,
// under a temporary name first, renamed when complete).
func (c *Conn) Download(ctx context.Context, src, dst string) (err error) {
	tmp := dst + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = c.stream(ctx, "cat -- "+command.Quote(src), nil, f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// List names the regular files in dir on the host (none when dir does not
// exist), as the shell's glob sorts them.
func (c *Conn) List(ctx context.Context, dir string) ([]string, error) {
	out, err := c.run(ctx, "cd -- "+command.Quote(dir)+" 2>/dev/null || exit 0; for f in * .[!.]* ..?*; do if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then printf '%s\\0' \"$f\"; fi; done", nil)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range strings.Split(string(out), "\x00") {
		if n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}

// SHA256 is the SHA-256 of file on the host, computed there (sha256sum): a
// copy's proof that it arrived whole.
func (c *Conn) SHA256(ctx context.Context, file string) (string, error) {
	out, err := c.run(ctx, "sha256sum -- "+command.Quote(file), nil)
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(out))
	if len(f) == 0 || len(f[0]) != 64 {
		return "", fmt.Errorf("sha256sum %s on %s: %q", file, c.Host, out)
	}
	return f[0], nil
}

// String is user@host:port.
func (c *Conn) String() string { return c.Host }

// WriteFile replaces file on the host with data (under a temporary name
// first, renamed when complete), making its directory.
func (c *Conn) WriteFile(ctx context.Context, file string, data []byte) error {
	tmp := path.Join(path.Dir(file), "."+path.Base(file)+".partial")
	script := "set -e; mkdir -p -- " + command.Quote(path.Dir(file)) + "; cat > " + command.Quote(tmp) + "; mv -f -- " + command.Quote(tmp) + " " + command.Quote(file)
	_, err := c.run(ctx, script, bytes.NewReader(data))
	return err
}

// AcquireLock takes the lock file lockPath on the Docker host over c (a
// lease: Conn.Lock), or on this machine when c is nil (lock.Acquire). When it
// has to wait, logf says for whom and for how long at most.
func AcquireLock(ctx context.Context, c *Conn, lockPath string, me lock.Holder, timeout time.Duration, logf func(string, ...any)) (*lock.Lock, error) {
	onWait := func(h lock.Holder) {
		logf("    waiting up to %s for the run holding %s: %s", timeout, lockPath, h)
	}
	if c != nil {
		return c.Lock(ctx, lockPath, me, timeout, onWait)
	}
	return lock.Acquire(ctx, lockPath, me, timeout, onWait)
}
