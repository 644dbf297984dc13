// Package steps runs an action as an ordered list of named steps (ARCHITECTURE.md,
// "Each action's steps"): each step is logged, timed and recorded as done, skipped
// (with the reason) or failed, for the summary; a failure records the rest as
// skipped; cleanups registered by the steps run once, newest first, when the run
// ends or — after the cancelled step has stopped — when the job is cancelled.
package steps

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/org/deploy-kit/internal/action"
)

// Outcome of a step.
const (
	Done    = "done"
	Skipped = "skipped"
	Failed  = "failed"
)

// Result is how one step went, for the summary.
type Result struct {
	Step     string
	Outcome  string
	Detail   string // skip reason, failure, or what was done
	Duration time.Duration
}

// Table is the results as the summary's Markdown table: step, outcome, time
// (not for a skipped step) and details.
func Table(results []Result) string {
	var b strings.Builder
	b.WriteString("| step | outcome | time | details |\n|---|---|---|---|\n")
	for _, r := range results {
		took := ""
		if r.Outcome != Skipped {
			took = r.Duration.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.Step, r.Outcome, took, action.Cell(r.Detail))
	}
	return b.String()
}

// String is the result as "step: outcome", for logs and tests.
func (r Result) String() string { return r.Step + ": " + r.Outcome }

// Outcomes are the results as "step: outcome", in order.
func Outcomes(rs []Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// Step is one stage of a run over the state S.
type Step[S any] interface {
	fmt.Stringer
	Run(ctx context.Context, s S) error
}

type funcStep[S any] struct {
	name string
	run  func(context.Context, S) error
}

func (f funcStep[S]) String() string                     { return f.name }
func (f funcStep[S]) Run(ctx context.Context, s S) error { return f.run(ctx, s) }

// Func makes a step of a name and a function.
func Func[S any](name string, run func(context.Context, S) error) Step[S] {
	return funcStep[S]{name, run}
}

type skipError struct{ reason string }

func (e skipError) Error() string { return e.reason }

// Skip is what a step that does not apply returns, with the reason the summary
// shows.
func Skip(format string, args ...any) error { return skipError{fmt.Sprintf(format, args...)} }

// IsSkip reports whether err is a step's Skip.
func IsSkip(err error) bool { return errors.As(err, new(skipError)) }

// Names lists the steps' names, in order.
func Names[S any](list []Step[S]) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.String()
	}
	return out
}

// Exit registers a cleanup that must also run if the job is cancelled before the
// returned release is called: action.Context.OnExit.
type Exit func(fn func()) (release func())

// Runner runs steps over S and keeps their results.
type Runner[S any] struct {
	Logf   func(format string, args ...any)
	OnExit Exit // nil: cleanups run only when the run ends
	// OnStep, when set, is told each step's name as it starts (the lock
	// file says which step its holder is in, for the run after a kill).
	OnStep  func(name string)
	Results []Result

	detail   string   // what the running step did (Did)
	added    []string // and what it noted besides (AddDetail), kept whatever Did says
	cleanups []func()
}

// Did records what the running step did, for its row in the summary, and logs it.
func (r *Runner[S]) Did(format string, args ...any) {
	r.detail = fmt.Sprintf(format, args...)
	r.Logf("    %s", r.detail)
}

// AddDetail adds a note to the running step's row: it stays there whatever
// the step says it did (Did, before or after) and when the step fails.
func (r *Runner[S]) AddDetail(more string) {
	r.added = append(r.added, more)
}

// row is a step's detail with the notes added to it.
func (r *Runner[S]) row(detail string) string {
	parts := append([]string{detail}, r.added...)
	return strings.TrimPrefix(strings.Join(parts, "; "), "; ")
}

// One runs a single step and records its result; a skip is not an error.
func (r *Runner[S]) One(ctx context.Context, step Step[S], s S) error {
	r.Logf("==> %s", step)
	if r.OnStep != nil {
		r.OnStep(step.String())
	}
	start := time.Now()
	err := step.Run(ctx, s)
	res := Result{Step: step.String(), Outcome: Done, Detail: r.row(r.detail), Duration: time.Since(start)}
	var sk skipError
	switch {
	case errors.As(err, &sk):
		res.Outcome, res.Detail = Skipped, sk.reason
		r.Logf("    skipped: %s", sk.reason)
		err = nil
	case err != nil:
		res.Outcome, res.Detail = Failed, r.row(err.Error())
	}
	r.detail, r.added = "", nil
	r.Results = append(r.Results, res)
	return err
}

// Run runs list in order. At the first failure it records the rest as skipped
// ("an earlier step failed") and returns the failed step and its error. After
// each step stop, when not nil, may end the run early without failure: the
// reason it returns is recorded for the rest.
func (r *Runner[S]) Run(ctx context.Context, list []Step[S], s S, stop func() string) (Step[S], error) {
	for i, step := range list {
		if err := r.One(ctx, step, s); err != nil {
			r.SkipRest(list[i+1:], "an earlier step failed")
			return step, err
		}
		if stop != nil {
			if why := stop(); why != "" {
				r.SkipRest(list[i+1:], why)
				return nil, nil
			}
		}
	}
	return nil, nil
}

// SkipRest records steps that will not run, with the reason.
func (r *Runner[S]) SkipRest(list []Step[S], reason string) {
	for _, step := range list {
		r.Results = append(r.Results, Result{Step: step.String(), Outcome: Skipped, Detail: reason})
	}
}

// Defer registers a cleanup: it runs when Cleanup is called and, if the job is
// cancelled first, from the signal handler once the running step has stopped.
// Cleanups run once each, newest first.
func (r *Runner[S]) Defer(fn func()) {
	once := sync.OnceFunc(fn)
	release := func() {}
	if r.OnExit != nil {
		release = r.OnExit(once)
	}
	r.cleanups = append(r.cleanups, func() { once(); release() })
}

// Cleanup runs the registered cleanups, newest first.
func (r *Runner[S]) Cleanup() {
	for _, fn := range slices.Backward(r.cleanups) {
		fn()
	}
	r.cleanups = nil
}
