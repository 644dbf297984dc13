package deploy

import "github.com/org/deploy-kit/internal/steps"

// Step is one stage of the deploy. A step that does not apply returns Skip(reason).
type Step = steps.Step[*State]

// Pipeline is the deploy, top to bottom (ARCHITECTURE.md, "Each action's steps"). Preflight, which only reads,
// runs before lock and version, and promotion (the history, read under the
// lock) before version: a deploy that is refused must not leave a pushed
// release commit and tag behind, so everything that can refuse the deploy runs
// before the first write.
var Pipeline = []Step{
	GuardStep,     // loop protection: skip markers, a workflow_run that did not succeed or came from a pull request
	PreflightStep, // version plan, compose file, pull-only rules, engine, disk, networks
	LockStep,      // one deploy per stack (compose project or swarm stack) at a time
	RepairStep,    // what a killed run left: recorded, removed, started again; a half-restored database refuses
	PromotionStep, // the running release from the history, under the lock; requires-verified
	VersionStep,   // on the clean tip of the default branch: bump VERSION, commit [skip ci], tag, push — else read-only
	SecretsStep,   // ENV_* variables into a 0600 env file, shredded on every exit
	BackupStep,    // the backup engine before the change (hook)
	SnapshotStep,  // what runs now, to roll back to
	RehearseStep,  // with rehearse: this release, then the running one, on a copy of production's data
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
	RepairStep    Step = repairStep{}
	PromotionStep Step = promotionStep{}
	VersionStep   Step = versionStep{}
	SecretsStep   Step = secretsStep{}
	BackupStep    Step = backupStep{}
	SnapshotStep  Step = snapshotStep{}
	RehearseStep  Step = rehearseStep{}
	PlanStep      Step = planStep{}
	ApplyStep     Step = applyStep{}
	VerifyStep    Step = verifyStep{}
)

// Outcome of a step, and how it went (the shared step runner's).
const (
	Done    = steps.Done
	Skipped = steps.Skipped
	Failed  = steps.Failed
)

// Result is how one step went, for the summary.
type Result = steps.Result

// Skip marks a step as not applying, with the reason shown in the summary.
func Skip(format string, args ...any) error { return steps.Skip(format, args...) }
