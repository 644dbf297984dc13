package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Step is one stage of the deploy. A step that does not apply returns skip(reason).
type Step interface {
	fmt.Stringer
	Run(ctx context.Context, s *State) error
}

// Pipeline is the deploy, top to bottom (ARCHITECTURE.md, "Each action's steps"). Preflight, which only reads,
// runs before lock and version: a deploy that preflight refuses must not leave a
// pushed release commit and tag behind, so everything that can refuse the deploy
// runs before the first write.
var Pipeline = []Step{
	GuardStep,     // loop protection: skip markers, a workflow_run that did not succeed or came from a pull request
	PreflightStep, // version plan, compose file, pull-only rules, engine, disk, networks, promotion
	LockStep,      // one deploy per stack (compose project or swarm stack) at a time
	VersionStep,   // on the clean tip of the default branch: bump VERSION, commit [skip ci], tag, push — else read-only
	SecretsStep,   // ENV_* variables into a 0600 env file, shredded on every exit
	BackupStep,    // the backup engine before the change (hook)
	SnapshotStep,  // what runs now, to roll back to
	PlanStep,      // what the deploy changes, service by service (read-only)
	ApplyStep,     // docker compose up -d --wait
	VerifyStep,    // health URL with backoff, smoke checks
}

// After the pipeline, whatever happened: rollbackStep when a step failed, then
// historyStep.

// The steps, for pipelines built on this one (rollback).
var (
	GuardStep     Step = guardStep{}
	PreflightStep Step = preflightStep{}
	LockStep      Step = lockStep{}
	VersionStep   Step = versionStep{}
	SecretsStep   Step = secretsStep{}
	BackupStep    Step = backupStep{}
	SnapshotStep  Step = snapshotStep{}
	PlanStep      Step = planStep{}
	ApplyStep     Step = applyStep{}
	VerifyStep    Step = verifyStep{}
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

type skipError struct{ reason string }

func (e skipError) Error() string { return e.reason }

// Skip marks a step as not applying, with the reason shown in the summary.
func Skip(format string, args ...any) error { return skipError{fmt.Sprintf(format, args...)} }

// runStep runs one step and records its result.
func (s *State) runStep(ctx context.Context, step Step) error {
	s.A.Logf("==> %s", step)
	start := time.Now()
	err := step.Run(ctx, s)
	r := Result{Step: step.String(), Outcome: Done, Detail: s.detail, Duration: time.Since(start)}
	s.detail = ""
	var sk skipError
	switch {
	case errors.As(err, &sk):
		r.Outcome, r.Detail = Skipped, sk.reason
		s.A.Logf("    skipped: %s", sk.reason)
		err = nil
	case err != nil:
		r.Outcome, r.Detail = Failed, err.Error()
	}
	s.Results = append(s.Results, r)
	return err
}

// skipRest records the steps after a stop as skipped.
func (s *State) skipRest(steps []Step, reason string) {
	for _, step := range steps {
		s.Results = append(s.Results, Result{Step: step.String(), Outcome: Skipped, Detail: reason})
	}
}
