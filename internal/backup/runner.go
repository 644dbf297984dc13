package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"

	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/docker"
)

// execer runs a command in a container (docker exec).
type execer interface {
	Exec(ctx context.Context, container string, spec docker.ExecSpec) (int, error)
}

// serverEngine is what the engines ask of the Docker Engine for a database in
// a container: exec into it, read its image, start and remove throwaway
// containers (a restore check's scratch server), and sweep what killed runs
// left.
type serverEngine interface {
	execer
	ContainerImage(ctx context.Context, name string) (string, error)
	Run(ctx context.Context, spec docker.RunSpec) (id, hostPort string, err error)
	Remove(ctx context.Context, id string) error
	RemoveDeadOwners(ctx context.Context, alive func(pid int) bool) (docker.Removed, error)
	Close() error
}

// program is one run of a database tool: argv, extra environment (passwords go
// here, never into argv), stdin and stdout.
type program struct {
	Argv   []string
	Env    []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer // besides the tail kept for the error message
}

// stderr is where a program's error output goes: a tail for the error message,
// and p.Stderr when set.
func (p program) stderr(tail *tailBuffer) io.Writer {
	if p.Stderr == nil {
		return tail
	}
	return io.MultiWriter(tail, p.Stderr)
}

// runner runs database tools where the database's tools are: inside its container
// (docker exec through the Engine API) or on the runner (the URL case).
type runner interface {
	run(ctx context.Context, p program) error
	// where is "in container X" or "on the runner", for messages.
	where() string
	// shell is how a user types p's argv, e.g. "docker exec -i X psql …".
	shell(argv []string, envNames ...string) string
}

// execRunner runs tools in a running container.
type execRunner struct {
	client    execer
	container string
	mask      func(string) string
}

func (r execRunner) where() string { return "in container " + r.container }

func (r execRunner) shell(argv []string, envNames ...string) string {
	cmd := []string{"docker", "exec", "-i"}
	for _, n := range envNames {
		cmd = append(cmd, "-e", n)
	}
	return command.Join(append(append(cmd, r.container), argv...))
}

func (r execRunner) run(ctx context.Context, p program) error {
	stderr := &tailBuffer{max: 4096}
	code, err := r.client.Exec(ctx, r.container, docker.ExecSpec{
		Cmd: p.Argv, Env: p.Env, Stdin: p.Stdin, Stdout: p.Stdout, Stderr: p.stderr(stderr),
	})
	if err != nil {
		return err
	}
	if code > 128 {
		return fmt.Errorf("%s was killed (status %d, signal %d) in container %s: did the container stop or run out of memory? %s", p.Argv[0], code, code-128, r.container, r.mask(stderr.last()))
	}
	if code != 0 {
		return fmt.Errorf("%s exited with status %d in container %s: %s", p.Argv[0], code, r.container, r.mask(stderr.last()))
	}
	return nil
}

// localRunner runs tools installed on the runner, through the command seam.
type localRunner struct {
	exec command.Executor
	env  []string // the job's environment
	mask func(string) string
}

func (localRunner) where() string { return "on the runner" }

func (localRunner) shell(argv []string, _ ...string) string { return command.Join(argv) }

func (r localRunner) run(ctx context.Context, p program) error {
	path, err := exec.LookPath(p.Argv[0])
	if err != nil {
		return fmt.Errorf("%s is not installed on the runner (it dumps and restores a database-url): %w", p.Argv[0], err)
	}
	stderr := &tailBuffer{max: 4096}
	stdout := p.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	c := command.Cmd{Argv: append([]string{path}, p.Argv[1:]...), Env: append(append([]string{}, r.env...), p.Env...), Stdin: p.Stdin}
	err = r.exec.Stream(ctx, c, stdout, p.stderr(stderr))
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return fmt.Errorf("%s exited with %s: %s", p.Argv[0], exitErr.ProcessState, r.mask(stderr.last()))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p.Argv[0], err)
	}
	return nil
}

// output runs p and returns its stdout, trimmed.
func output(ctx context.Context, r runner, p program) (string, error) {
	var out bytes.Buffer
	p.Stdout = &out
	err := r.run(ctx, p)
	return strings.TrimSpace(out.String()), err
}

// tailBuffer keeps the last max bytes written to it: a tool's error message
// without holding a chatty stderr in memory, or a dump's trailer. Safe for the
// goroutines of docker exec's stream copier.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(p) >= b.max {
		b.buf = append(b.buf[:0], p[len(p)-b.max:]...)
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// bytes are the last bytes written.
func (b *tailBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf
}

// last is the tail as an error message.
func (b *tailBuffer) last() string {
	if s := strings.TrimSpace(string(b.bytes())); s != "" {
		return s
	}
	return "(no error output)"
}
