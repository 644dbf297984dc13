// Package commandtest is the test side of the command seam: a Recorder that
// stands in for command.Runner, recording every command line and answering with
// scripted output, so a step's argv, order and error paths are tested without
// running anything (ARCHITECTURE.md, "Rules every package keeps").
package commandtest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/org/deploy-kit/internal/command"
)

// Call is one command the code under test ran.
type Call struct {
	Argv   []string
	Dir    string
	Env    []string
	Output bool // a read-only query (Output) rather than a change (Run)
}

// String is the command line, as a log shows it.
func (c Call) String() string { return command.Join(c.Argv) }

// answer is what commands starting with prefix return.
type answer struct {
	prefix []string
	out    string
	err    error
	left   int // > 0: the answer is used this many times, then forgotten
}

// Recorder records commands and answers them. A command no answer matches
// succeeds with no output; with Strict it fails instead, naming itself.
type Recorder struct {
	Strict bool

	mu      sync.Mutex
	calls   []Call
	answers []answer
}

var _ command.Executor = (*Recorder)(nil)

// On makes commands whose argv starts with prefix print out and succeed. Later
// answers win over earlier ones for the same command.
func (r *Recorder) On(out string, prefix ...string) *Recorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers = append(r.answers, answer{prefix: prefix, out: out})
	return r
}

// Fail makes commands whose argv starts with prefix fail with err.
func (r *Recorder) Fail(err error, prefix ...string) *Recorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers = append(r.answers, answer{prefix: prefix, err: err})
	return r
}

// FailFirst makes the next n commands whose argv starts with prefix fail with
// err; later ones get the other answers (a push rejected once, then accepted).
func (r *Recorder) FailFirst(n int, err error, prefix ...string) *Recorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers = append(r.answers, answer{prefix: prefix, err: err, left: n})
	return r
}

func (r *Recorder) answer(c command.Cmd, output bool) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, Call{Argv: slices.Clone(c.Argv), Dir: c.Dir, Env: c.Env, Output: output})
	for i, a := range slices.Backward(r.answers) {
		if len(c.Argv) >= len(a.prefix) && slices.Equal(c.Argv[:len(a.prefix)], a.prefix) {
			if a.left > 0 {
				if r.answers[i].left--; r.answers[i].left == 0 {
					r.answers = slices.Delete(r.answers, i, i+1)
				}
			}
			if a.err != nil {
				// As command.Runner fails: the tool, and the whole line apart.
				return "", &command.Error{Name: command.Name(c.Argv), Command: c.String(), Err: a.err}
			}
			return a.out, nil
		}
	}
	if r.Strict {
		return "", fmt.Errorf("%s: not expected by the test", c)
	}
	return "", nil
}

// Run records a command that changes something.
func (r *Recorder) Run(_ context.Context, c command.Cmd) error {
	_, err := r.answer(c, false)
	return err
}

// Output records a query and returns its scripted output.
func (r *Recorder) Output(_ context.Context, c command.Cmd) (string, error) {
	return r.answer(c, true)
}

// Stream records a data tool's run and writes its scripted output to stdout.
func (r *Recorder) Stream(_ context.Context, c command.Cmd, stdout, _ io.Writer) error {
	out, err := r.answer(c, false)
	if err == nil && stdout != nil {
		_, err = io.WriteString(stdout, out)
	}
	return err
}

// Calls returns the commands run so far, in order.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Lines returns the commands run so far as command lines; with only, just those
// whose argv starts with it (e.g. "git", "commit").
func (r *Recorder) Lines(only ...string) []string {
	var out []string
	for _, c := range r.Calls() {
		if len(c.Argv) >= len(only) && slices.Equal(c.Argv[:len(only)], only) {
			out = append(out, c.String())
		}
	}
	return out
}

// Changes returns the command lines of the commands that change something (Run),
// in order: what a dry run would have printed.
func (r *Recorder) Changes() []string {
	var out []string
	for _, c := range r.Calls() {
		if !c.Output {
			out = append(out, c.String())
		}
	}
	return out
}

// Has reports whether a command line containing every word in words ran.
func (r *Recorder) Has(words ...string) bool {
	for _, c := range r.Calls() {
		line := " " + strings.Join(c.Argv, " ") + " "
		if !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(line, " "+w+" ") }) {
			return true
		}
	}
	return false
}
