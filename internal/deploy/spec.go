// Package deploy is the compose deploy pipeline (ARCHITECTURE.md, "Each action's steps").
package deploy

import (
	"slices"
	"time"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/notify"
	"github.com/org/deploy-kit/internal/remote"
	"github.com/org/deploy-kit/internal/stackcopy"
	"github.com/org/deploy-kit/internal/verify"
)

// TargetOptions are the TargetInputs.
type TargetOptions struct {
	Target          string        `input:"target"`
	ResolveImage    string        `input:"resolve-image"`
	StrictSwarm     bool          `input:"strict-swarm"`
	ComposeFile     string        `input:"compose-file"`
	ProjectName     string        `input:"project-name"`
	Environment     string        `input:"environment"`
	Service         string        `input:"service"`
	PullOnly        bool          `input:"pull-only"`
	AppPort         int           `input:"app-port"`
	Strategy        string        `input:"strategy"`
	RouteNetwork    string        `input:"route-network"`
	DrainTimeout    time.Duration `input:"drain-timeout"`
	RollingParallel int           `input:"rolling-parallel"`
	WaitTimeout     time.Duration `input:"wait-timeout"`
}

// VerifyOptions are the VerifyInputs.
type VerifyOptions struct {
	HealthURL          string        `input:"health-url"`
	HealthAttempts     int           `input:"health-attempts"`
	HealthInitialDelay time.Duration `input:"health-initial-delay"`
	HealthMaxDelay     time.Duration `input:"health-max-delay"`
	SmokeBaseURL       string        `input:"smoke-base-url"`
	SmokeChecks        []string      `input:"smoke-checks"`
}

// Checks validates the verify inputs and returns the smoke checks; a problem is
// a usage error naming the input.
func (o VerifyOptions) Checks() ([]verify.Check, error) {
	for _, f := range []struct{ name, u string }{{"health-url", o.HealthURL}, {"smoke-base-url", o.SmokeBaseURL}} {
		if name, u := f.name, f.u; u != "" {
			if err := verify.ValidateURL(u); err != nil {
				return nil, action.Usagef("input %s: %v", name, err)
			}
		}
	}
	checks, err := verify.ParseChecks(o.SmokeChecks)
	if err != nil {
		return nil, action.Usagef("input smoke-checks: %v", err)
	}
	if len(checks) > 0 && o.SmokeBaseURL == "" {
		return nil, action.Usagef("input smoke-checks: set smoke-base-url too (the checks' paths are relative to it)")
	}
	if o.HealthMaxDelay < o.HealthInitialDelay {
		return nil, action.Usagef("input health-max-delay (%s) is shorter than health-initial-delay (%s)", o.HealthMaxDelay, o.HealthInitialDelay)
	}
	return checks, nil
}

// RecordOptions are the RecordInputs.
type RecordOptions struct {
	SecretPrefix string        `input:"secret-prefix"`
	HistoryFile  string        `input:"history-file"`
	LockTimeout  time.Duration `input:"lock-timeout"`
	DryRun       bool          `input:"dry-run"`
	Notify       notify.Webhook
}

// BackupOptions are the BackupInputs.
type BackupOptions struct {
	Enabled     bool   `input:"backup"`
	Engine      string `input:"backup-engine"`
	Container   string `input:"backup-container"`
	DatabaseURL string `input:"backup-database-url"`
	DBUser      string `input:"backup-db-user"`
	DBPassword  string `input:"backup-db-password"`
	SQLitePath  string `input:"backup-sqlite-path"`
	Dir         string `input:"backup-dir"`
	KeepDaily   int    `input:"backup-keep-daily"`
	KeepWeekly  int    `input:"backup-keep-weekly"`
	KeepMonthly int    `input:"backup-keep-monthly"`
}

// Options are deploy's inputs, decoded at the edge; rollback builds them from its
// own (DefaultOptions, then its values).
type Options struct {
	TargetOptions
	GitRef           string        `input:"git-ref"`
	MigrationsPath   string        `input:"migrations-path"`
	DatabaseURL      string        `input:"database-url"`
	VersionBump      string        `input:"version-bump"`
	CommitAuthor     string        `input:"commit-author"`
	NoCache          bool          `input:"no-cache"`
	AutoRollback     bool          `input:"auto-rollback"`
	Verifies         string        `input:"verifies"`
	RequiresVerified string        `input:"requires-verified"`
	Force            bool          `input:"force"`
	MinFreeDisk      float64       `input:"min-free-disk"`
	Rehearse         bool          `input:"rehearse"`
	LockLimit        time.Duration `input:"rehearse-lock-limit"`
	LockRefuse       bool          `input:"rehearse-lock-refuse"`
	VerifyOptions
	RecordOptions
	Backup BackupOptions
	Copy   stackcopy.Options // the rehearsal's copy of the stack
	Remote remote.Options    // the Docker host, over SSH from a runner elsewhere
}

// DefaultOptions are the options of a deploy given no input at all: every
// input's default.
func DefaultOptions() Options {
	var o Options
	action.Defaults(&Spec, &o)
	return o
}

// TargetInputs say what to deploy and where; rollback takes them too.
var TargetInputs = []action.Input{
	{Name: "target", Kind: action.Enum, Enum: []string{"compose", "swarm"}, Default: "compose", Description: "compose runs the stack with docker compose on this engine; swarm deploys it with docker stack deploy to the swarm this engine manages."},
	{Name: "resolve-image", Kind: action.Enum, Enum: []string{"always", "changed", "never"}, Default: "always", Description: "Target swarm: docker stack deploy --resolve-image (query the registry for digests; never for images only on the nodes)."},
	{Name: "strict-swarm", Kind: action.Bool, Default: "true", Description: "Target swarm: refuse services without update_config (start-first, failure_action rollback, monitor) or a healthcheck; false only warns."},
	{Name: "compose-file", Default: "compose.yaml", Description: "Compose file of the stack, relative to the workspace."},
	{Name: "project-name", Description: "Compose project (stack) name; defaults to the compose file's name: or its directory."},
	{Name: "environment", Default: "production", Description: "Environment name used for history and promotion (e.g. staging, production). The deploy lock is per stack, whatever the environment is called."},
	{Name: "service", Description: "Deploy only this service; empty deploys every service."},
	{Name: "pull-only", Kind: action.Bool, Default: "false", Description: "Pull images instead of building; refuses build: sections and :latest or untagged images."},
	{Name: "app-port", Kind: action.Int, Description: "Port the service listens on inside its containers; with strategy rolling, each new container must answer health-url's path and every smoke-checks path there before it takes traffic (required then)."},
	{Name: "strategy", Kind: action.Enum, Enum: []string{"recreate", "rolling"}, Default: "recreate", Description: "recreate replaces containers in place; rolling starts new ones beside the old, off the proxy's network alias until they pass every check, then switches the alias and drains the old (zero downtime behind a proxy; docs/traffic-switch.md)."},
	{Name: "route-network", Description: "Strategy rolling: the network your proxy finds the services on (its key or engine name); services not on it (workers, schedulers) are replaced in place. Empty picks each service's only external network, or its only network."},
	{Name: "rolling-parallel", Kind: action.Int, Default: "10", Description: "Strategy rolling: how many services are started, checked and switched side by side (docker compose itself starts every service at once); a service starts once the services it depends on have switched."},
	{Name: "drain-timeout", Kind: action.Duration, Default: "5s", Description: "Strategy rolling: how long an old container keeps answering after it left the route network's alias, before it is stopped with its stop_grace_period."},
	{Name: "wait-timeout", Kind: action.Duration, Default: "2m", Description: "How long containers get to be running and healthy: docker compose up --wait, a rolling service's new containers, or a swarm update to complete."},
}

// VerifyInputs drive the health and smoke checks after a change; rollback takes them too.
var VerifyInputs = []action.Input{
	{Name: "health-url", Description: "URL that must answer 2xx after the change, polled with exponential backoff."},
	{Name: "health-attempts", Kind: action.Int, Min: 1, Default: "10", Description: "How many times to poll health-url before giving up."},
	{Name: "health-initial-delay", Kind: action.Duration, Default: "2s", Description: "Delay before the second health poll; doubles each time."},
	{Name: "health-max-delay", Kind: action.Duration, Default: "30s", Description: "Cap on the delay between health polls."},
	{Name: "smoke-base-url", Description: "Base URL the smoke checks are made against."},
	{Name: "smoke-checks", Kind: action.List, Description: "One check per line: path=status[,status], e.g. /health=200."},
}

// RecordInputs cover secrets, history and promotion; rollback takes them too.
// BackupInputs configure the backup before the change (the backup action's
// engine; its other settings keep the backup action's defaults).
var BackupInputs = []action.Input{
	{Name: "backup", Kind: action.Bool, Default: "false", Description: "Back up the database before the change, with the backup action's engine; the deploy stops if the backup fails."},
	{Name: "backup-engine", Kind: action.Enum, Enum: []string{"postgres", "mysql", "mariadb", "sqlite"}, Default: "postgres", Description: "Database engine of the backup."},
	{Name: "backup-container", Description: "Running container of the database server (the dump runs inside it)."},
	{Name: "backup-database-url", Secret: true, Description: "Database URL to dump from the runner instead of a container."},
	{Name: "backup-db-user", Description: "Database user inside the container (default: postgres, or root for mysql and mariadb)."},
	{Name: "backup-db-password", Secret: true, Description: "Password of backup-db-user inside the container, if it needs one."},
	{Name: "backup-sqlite-path", Description: "SQLite database file (backup-engine sqlite)."},
	{Name: "backup-dir", Default: "/var/backups/deploy-kit", Description: "Directory of the backups, named pre-deploy-<project>-<timestamp>."},
	{Name: "backup-keep-daily", Kind: action.Int, Default: "7", Description: "Pre-deploy backups kept: the newest of each of the last N days (older ones are deleted only after a good backup)."},
	{Name: "backup-keep-weekly", Kind: action.Int, Default: "4", Description: "Pre-deploy backups kept: the newest of each of the last N ISO weeks."},
	{Name: "backup-keep-monthly", Kind: action.Int, Default: "6", Description: "Pre-deploy backups kept: the newest of each of the last N months."},
}

var RecordInputs = slices.Concat([]action.Input{
	{Name: "secret-prefix", Default: "ENV_", Description: "Job variables with this prefix become KEY=value lines of a 0600 env file passed to compose."},
	{Name: "history-file", Default: "/var/lib/deploy-kit/history.log", Description: "Deploy history file on the Docker host."},
	{Name: "lock-timeout", Kind: action.Duration, Default: "10m", Description: "How long to wait for another deploy of the same stack (compose project or swarm stack) to finish."},
	{Name: "dry-run", Kind: action.Bool, Default: "false", Description: "Print the plan and the commands it would run; change nothing."},
}, notify.Inputs)

// Spec is the deploy subcommand and action.
var Spec = action.Spec{
	Name:        "deploy",
	Description: "Deploy a Docker Compose stack: guard, version, lock, preflight, secrets, backup, snapshot, apply, verify, roll back on failure, record history.",
	Inputs: slices.Concat(TargetInputs, []action.Input{
		{Name: "git-ref", Description: "Ref to deploy; empty deploys the checked-out commit."},
		{Name: "migrations-path", Description: "Migrations directory of the app (golang-migrate), relative to the checkout: with database-url, the plan lists those the database does not have yet."},
		{Name: "database-url", Secret: true, Description: "Database the app migrates, read (schema_migrations only) for the plan."},
		{Name: "version-bump", Kind: action.Enum, Enum: []string{"none", "patch", "minor", "major"}, Default: "none", Description: "On the default branch: bump VERSION, commit with [skip ci], tag and push."},
		{Name: "commit-author", Description: "Author of the version-bump commit, as Name <email>. Empty: whoever triggered the run (GITHUB_ACTOR, with the forge's noreply address); outside a runner, git's own configuration."},
		{Name: "no-cache", Kind: action.Bool, Default: "false", Description: "Build images without the build cache."},
		{Name: "auto-rollback", Kind: action.Bool, Default: "true", Description: "Restore the previous images when apply or verify fails."},
		{Name: "verifies", Description: "On success, record the version as verified under this name (e.g. staging), for requires-verified elsewhere."},
		{Name: "requires-verified", Description: "Refuse a version not verified under this name first (e.g. staging), unless force is true."},
		{Name: "force", Kind: action.Bool, Default: "false", Description: "Deploy an unverified version anyway; recorded as FORCED."},
		{Name: "min-free-disk", Kind: action.Percent, Default: "20%", Description: "Refuse to deploy when Docker's data root has less free space than this."},
		{Name: "rehearse", Kind: action.Bool, Default: "false", Description: "Before production changes, restore the pre-deploy backup into a private copy of the stack (its own project, networks and volumes, no published ports, no route out unless copy-outbound; docs/rehearsal.md), start this release there and check it (health-url's and smoke-checks' paths, at the service's own address), then the running release against the migrated copy; any failure stops the deploy. Needs backup-container (the stack's database service; implies backup); target compose only."},
		{Name: "rehearse-lock-limit", Kind: action.Duration, Default: "5s", Description: "With rehearse on PostgreSQL: the longest a migration may hold a lock that blocks the app's writes (or reads) on a table, as measured on the copy's production-sized data; a longer one is a warning, or stops the deploy with rehearse-lock-refuse. 0: no limit (the longest lock is still reported)."},
		{Name: "rehearse-lock-refuse", Kind: action.Bool, Default: "false", Description: "Stop the deploy, before production changes, when a rehearsed migration held a lock longer than rehearse-lock-limit."},
	}, VerifyInputs, RecordInputs, BackupInputs, stackcopy.Inputs, remote.Inputs),
	Outputs: []action.Output{
		{Name: "version", Description: "Version that was deployed."},
		{Name: "previous-version", Description: "Version that ran before."},
		{Name: "status", Description: "success, rolled-back (failed, previous version restored), failed, skipped, or bad-input (refused before anything was changed)."},
		{Name: "skipped", Description: "true when the guard skipped the deploy."},
		{Name: "rolled-back", Description: "true when a failed deploy was rolled back."},
		{Name: "url", Description: "URL of the deployed stack (health-url, else smoke-base-url)."},
		{Name: "plan", Description: "What the deploy changed (or, with dry-run, would change), as JSON: per service the image and its ID, environment variable names added, removed or changed (never values), ports, volumes, networks, the healthcheck (as a short SHA-256 of its text, which may hold a password: never the command), replicas and limits."},
	},
}
