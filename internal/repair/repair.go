// Package repair makes a stack whole before a run changes it (ARCHITECTURE.md,
// "Repair first"): it decides from what it finds, not from what the last run
// meant to do. A run that changes a stack takes the stack's lock, then calls
// Stack: what a killed run's lock file says (lock.Lock.Left) is recorded in
// the history as killed, everything labelled for the stack (copies of it,
// throwaway containers: docker.LabelStack) is removed — no run of the stack
// is using them while the lock is held — and containers a killed restore
// stopped run again. A database a restore left half-restored is marked
// beside the lock (Restoring) until a restore succeeds; deploys and
// rollbacks refuse to change the stack meanwhile.
package repair

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/lock"
)

// Engine is what a repair needs of the Docker Engine (docker.Client).
type Engine interface {
	RemoveLabelled(ctx context.Context, label, value string) (docker.Removed, error)
	StartStopped(ctx context.Context, id string) (started bool, name string, err error)
}

// Report is what a repair found and did, for the log and the summary.
type Report struct {
	// Killed is the history line of the run that was killed holding the
	// lock, when there was one.
	Killed *history.Entry
	Done   []string // what was removed or started again
}

// Empty reports that there was nothing to repair.
func (r Report) Empty() bool { return r.Killed == nil && len(r.Done) == 0 }

// String is the report as one line.
func (r Report) String() string {
	var parts []string
	if r.Killed != nil {
		parts = append(parts, "found a killed "+r.Killed.Action+" of "+r.Killed.Version+" ("+r.Killed.Notes+"), recorded in the history")
	}
	parts = append(parts, r.Done...)
	if len(parts) == 0 {
		return "nothing to repair"
	}
	return strings.Join(parts, "; ")
}

// Stack repairs stack before a run changes it; l is the stack's lock, held.
// env is the run's environment, for a killed run whose lock file does not say
// its own. A killed run is appended to the history file h.
func Stack(ctx context.Context, d Engine, h history.File, l *lock.Lock, stack, env string) (Report, error) {
	var r Report
	var errs []error
	if left := l.Left; left != nil {
		e := Killed(*left, stack, env, time.Now())
		r.Killed = &e
		if err := h.Append(e); err != nil {
			errs = append(errs, fmt.Errorf("recording the killed run: %w", err))
		}
		for _, id := range left.Stopped {
			started, name, err := d.StartStopped(ctx, id)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("starting %s, which a killed restore stopped: %w", cmp.Or(name, id), err))
			case started:
				r.Done = append(r.Done, "started "+name+" again, which a killed restore had stopped")
			}
		}
	}
	gone, err := d.RemoveLabelled(ctx, docker.LabelStack, stack)
	if err != nil {
		errs = append(errs, fmt.Errorf("removing what killed runs of %s left: %w", stack, err))
	}
	if !gone.Empty() {
		r.Done = append(r.Done, "removed what a killed run left: "+gone.String())
	}
	return r, errors.Join(errs...)
}

// Killed is the history line of a run that was killed holding the lock, as
// its lock file describes it.
func Killed(left lock.Holder, stack, env string, now time.Time) history.Entry {
	var notes []string
	if left.Step != "" {
		step := "killed in step " + left.Step
		if !left.StepSince.IsZero() {
			step += " (at it since " + left.StepSince.UTC().Format(time.RFC3339) + ")"
		}
		notes = append(notes, step)
	} else {
		notes = append(notes, "killed before it said which step it was in")
	}
	if left.PID != 0 {
		notes = append(notes, fmt.Sprintf("pid %d on %s since %s", left.PID, left.Host, left.Since.UTC().Format(time.RFC3339)))
	}
	if left.Doing != "" {
		notes = append(notes, left.Doing)
	}
	if left.JobURL != "" {
		notes = append(notes, "job "+left.JobURL)
	}
	notes = append(notes, "found by the next run")
	return history.Entry{Time: now.UTC(), Stack: stack, Env: cmp.Or(left.Env, env), Action: cmp.Or(left.Action, "run"),
		Version: cmp.Or(left.Version, "(unknown)"), Status: history.StatusKilled, Notes: strings.Join(notes, "; ")}
}
