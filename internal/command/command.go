// Package command runs the external CLIs a user would run by hand (git, docker
// compose, docker stack). Commands are built elsewhere as data — argv slices, never
// shell strings — and run here, in one place that logs, masks and times them, and
// that prints instead of running in a dry run.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/org/deploy-kit/internal/action"
)

// Cmd is one command line.
type Cmd struct {
	Argv  []string
	Dir   string
	Env   []string // the complete environment; nil inherits the process's
	Stdin io.Reader
}

// String renders the command for logs, quoting arguments a shell would split.
func (c Cmd) String() string { return Join(c.Argv) }

// Join renders argv as one shell command line, each argument quoted when a shell
// would split or expand it: for logs and for commands a person pastes.
func Join(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = Quote(a)
	}
	return strings.Join(parts, " ")
}

// Quote quotes s for a POSIX shell when it needs it (” for the empty string).
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@%+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Executor is the seam every package runs external commands through
// (ARCHITECTURE.md, "Rules every package keeps"): Runner is the real one;
// commandtest.Recorder records argv for tests without running anything.
type Executor interface {
	// Run runs a command that changes something, its output in the log; in a dry
	// run it only prints it.
	Run(ctx context.Context, c Cmd) error
	// Output runs a read-only query (also in a dry run) and returns its stdout.
	Output(ctx context.Context, c Cmd) (string, error)
	// Stream runs a tool whose input and output are data, not log (a dump, a
	// restore): c.Stdin in, stdout and stderr the caller's. The tool's own
	// error comes back unwrapped (an *exec.ExitError when it exited non-zero),
	// for the caller to say what failed.
	Stream(ctx context.Context, c Cmd, stdout, stderr io.Writer) error
}

var _ Executor = (*Runner)(nil)

// Runner executes commands.
type Runner struct {
	Log    io.Writer           // where commands and their output are shown (already masked)
	Mask   func(string) string // masks secrets in what Runner itself prints; nil: none
	DryRun bool                // Run prints the command instead of running it
	// Grace is how long a cancelled command gets between SIGTERM and SIGKILL
	// (default 2 s: a cancelled job has seconds, action.CancelBudget).
	Grace time.Duration
	// Temp, when set, is the runner's temp directory, shown as $RUNNER_TEMP
	// in a failed command line (Error.Command).
	Temp string
}

// Error is a command that failed. Its text leads with the reason: which
// tool, how it ended, and the last line it printed; Command is the whole
// command line (masked, the runner's temp directory shortened to
// $RUNNER_TEMP), for a person who wants to run it again.
type Error struct {
	Name    string // the tool and its subcommand, e.g. docker compose up
	Command string
	Err     error  // how it ended (an *exec.ExitError, a context's error)
	Output  string // the last line it printed (masked), or ""
}

func (e *Error) Error() string {
	s := e.Name + " failed (" + e.Err.Error() + ")"
	if e.Output != "" {
		s += ": " + e.Output
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// failed wraps err, the end of c, as an *Error.
func (r *Runner) failed(c Cmd, err error, output string) error {
	line := r.mask(c.String())
	if r.Temp != "" {
		line = strings.ReplaceAll(line, r.Temp, "$RUNNER_TEMP")
	}
	return &Error{Name: Name(c.Argv), Command: line, Err: err, Output: r.mask(lastLine(output))}
}

// valued are the flags of git, docker and docker compose that take the next
// argument as their value: Name skips both.
var valued = map[string]bool{"-p": true, "-f": true, "-c": true, "-C": true, "--env-file": true, "--project-name": true, "--file": true, "--project-directory": true, "--context": true, "-H": true, "--host": true}

// Name is a command's tool and subcommand, without flags and paths: docker
// compose up, git push origin.
func Name(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	words := []string{filepathBase(argv[0])}
	for i := 1; i < len(argv) && len(words) < 3; i++ {
		a := argv[i]
		switch {
		case valued[a]:
			i++
		case strings.HasPrefix(a, "-"), strings.Contains(a, "/"):
		default:
			words = append(words, a)
		}
	}
	return strings.Join(words, " ")
}

func filepathBase(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// lastLine is the last non-empty line of output.
func lastLine(output string) string {
	lines := strings.Split(strings.TrimSpace(output), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// tail keeps the last bytes written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-2048:]
	}
	return len(p), nil
}

func (r *Runner) mask(s string) string {
	if r.Mask == nil {
		return s
	}
	return r.Mask(s)
}

func (r *Runner) command(ctx context.Context, c Cmd) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdin = c.Dir, c.Env, c.Stdin
	// On cancel (SIGINT/SIGTERM to deploykit) ask the child to stop cleanly first.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = r.Grace
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 2 * time.Second
	}
	return cmd
}

// Run runs a command that changes something, streaming its output to the log. In a
// dry run it only prints what it would run.
func (r *Runner) Run(ctx context.Context, c Cmd) error {
	if r.DryRun {
		fmt.Fprintf(r.Log, "would run: %s\n", r.mask(c.String()))
		return nil
	}
	fmt.Fprintf(r.Log, "$ %s\n", r.mask(c.String()))
	cmd := r.command(ctx, c)
	var last tail
	out := io.MultiWriter(r.Log, &last)
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := cmd.Run()
	fmt.Fprintf(r.Log, "  (%s, %s)\n", c.Argv[0], time.Since(start).Round(time.Millisecond))
	if err != nil {
		return r.failed(c, err, string(last.b))
	}
	return nil
}

// Output runs a read-only query (also in a dry run) and returns its standard
// output. A failure carries the command's standard error.
func (r *Runner) Output(ctx context.Context, c Cmd) (string, error) {
	cmd := r.command(ctx, c)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			msg = ""
		}
		return stdout.String(), r.failed(c, err, msg)
	}
	return stdout.String(), nil
}

// Stream runs c with the caller's standard output and error; a cancelled tool
// gets SIGTERM, then SIGKILL after the grace, like every other.
func (r *Runner) Stream(ctx context.Context, c Cmd, stdout, stderr io.Writer) error {
	cmd := r.command(ctx, c)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd.Run()
}

// For is the executor of one run of a subcommand: it logs to the run's masked log
// and masks its secrets in what it prints itself.
func For(a *action.Context, dryRun bool) *Runner {
	r := &Runner{Log: a.Log, Mask: a.MaskString, DryRun: dryRun}
	if a.Getenv("RUNNER_TEMP") != "" {
		r.Temp = a.TempDir()
	}
	return r
}
