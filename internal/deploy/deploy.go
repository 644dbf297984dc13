package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/compose"
	"github.com/org/deploy-kit/internal/git"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/notify"
	"github.com/org/deploy-kit/internal/remote"
	"github.com/org/deploy-kit/internal/secretfile"
	"github.com/org/deploy-kit/internal/steps"
	"github.com/org/deploy-kit/internal/verify"
)

// State is everything the steps share: inputs, what was learnt along the way, and
// what must be undone.
type State struct {
	A      *action.Context
	Opts   Options
	Exec   command.Executor
	Docker engine
	Target Target

	// From the inputs, validated before any step runs.
	Workspace   string // git checkout the deploy runs from
	ComposeFile string // absolute
	Checks      []verify.Check
	Secrets     []secretfile.Var
	History     history.File
	LockDir     string

	// Learnt by the steps.
	Project         *types.Project
	Compose         compose.Project
	Git             GitInfo
	Version         string
	PreviousVersion string
	Previous        *history.Entry // the last live deploy of this stack+environment
	Forced          string         // why the deploy was forced, when it was
	EnvFile         *secretfile.File
	Lock            Held // the stack's lock, from the lock step on
	Snapshot        Snapshot
	Backup          madeBackup        // the pre-deploy backup, when one was made
	schemaBefore    map[string]string // golang-migrate's state before apply, where it can be read (degraded.go)
	rehearsal       *rehearsal        // what preflight found for the rehearsal (rehearse.go)

	// The step runner keeps each step's result; Out is how the run ended.
	steps.Runner[*State]
	Out Outcome
	// Strategy replaces the containers (compose): recreate, or rolling with
	// its route networks and the switches made so far (switch.go).
	Strategy Strategy
	// Remote is the Docker host reached over SSH from a runner elsewhere
	// (docker-host), nil on the host itself: its lock and history are there.
	Remote *remote.Conn
	trend  string    // the stack's figures over the last 30 days, for the summary
	Plan   *PlanDiff // what apply changes, from the plan step
	notify notification

	plan Plan
}

// Outcome is how a run ended: what the rollback, the history line, the
// notification, the outputs and the summary report.
type Outcome struct {
	Skipped     bool // the guard skipped the deploy
	FailedStep  string
	FailedErr   error
	Cancelled   bool // the job was cancelled (SIGINT/SIGTERM)
	RolledBack  bool
	RollbackErr error
	Degraded    string // why production is degraded after a failure, when it is
	HandOff     string // Markdown for a person, on failure
}

// madeBackup is the pre-deploy backup a run made.
type madeBackup struct {
	Path string // on the runner
	Kept string // where it is kept: Path, or its path on the Docker host
}

// notification is where the run's outcome is sent, and how sending went.
type notification struct {
	to   *notify.Webhook
	sent string // for the summary
}

var (
	commitAuthor = regexp.MustCompile(`^([^<>\x00-\x1f]+) <([^<>\s@]+@[^<>\s@]+)>$`)
	projectName  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	envName      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

// cancelledRestoreTimeout bounds the restore after a job cancelled without a
// signal (a context ended); after a signal, action.Context.CancelDeadline
// bounds it (docs/cancel.md).
const cancelledRestoreTimeout = 25 * time.Second

// Plan is what a run of the pipeline is for.
type Plan struct {
	Action string // the history action: deploy or rollback
	Steps  []Step
	// ImageTemplate, when set, pins every service deployed to this image, with
	// {sha}, {short}, {tag} (sha-<short>) and {version} filled in.
	ImageTemplate string
	// Lock, when set, is the stack's lock, taken before the pipeline (a
	// rollback reads its target from the history under it).
	Lock *Held
	// Remote, when set, is the connection to the Docker host a rollback made
	// before the pipeline (to take the lock there).
	Remote *remote.Conn
}

// Run is `deploykit deploy`.
func Run(ctx context.Context, a *action.Context, o Options) error {
	return RunPlan(ctx, a, o, Plan{Action: history.ActionDeploy, Steps: Pipeline})
}

// RunPlan runs steps with the options o (rollback derives them from its own), then
// rollback-on-failure and history, and writes the outputs a.Spec declares and the
// summary.
func RunPlan(ctx context.Context, a *action.Context, o Options, plan Plan) error {
	s, err := newState(a, o)
	if err != nil {
		return err
	}
	s.plan = plan
	if plan.Remote != nil {
		s.Remote, s.History.Host = plan.Remote, plan.Remote
	}
	defer s.Cleanup()
	return s.runPlan(ctx)
}

// newState validates every input — a bad one stops the deploy before anything is
// touched, with exit 2 — and masks the secrets before anything is printed.
func newState(a *action.Context, o Options) (*State, error) {
	s := &State{A: a, Opts: o}
	s.Runner = steps.Runner[*State]{Logf: a.Logf, OnExit: a.OnExit}

	secrets, err := secretfile.FromJob(a, o.SecretPrefix)
	if err != nil {
		return nil, err
	}
	s.Secrets = secrets
	s.Exec = command.For(a, s.Opts.DryRun)

	s.Workspace = a.Workspace()
	file := o.ComposeFile
	if !filepath.IsAbs(file) {
		file = filepath.Join(s.Workspace, file)
	}
	if fi, err := os.Stat(file); err != nil || fi.IsDir() {
		return nil, action.Usagef("input compose-file: %s does not exist (paths are relative to the workspace %s)", o.ComposeFile, s.Workspace)
	}
	s.ComposeFile = file
	if n := o.ProjectName; n != "" && !projectName.MatchString(n) {
		return nil, action.Usagef("input project-name: %q is not a compose project name: lowercase letters, digits, - and _, starting with a letter or digit", n)
	}
	for _, f := range []struct{ name, v string }{{"environment", o.Environment}, {"verifies", o.Verifies}, {"requires-verified", o.RequiresVerified}} {
		if name, v := f.name, f.v; v != "" && !envName.MatchString(v) {
			return nil, action.Usagef("input %s: %q is not an environment name: letters, digits, ., - and _", name, v)
		}
	}
	if author := o.CommitAuthor; author != "" && !commitAuthor.MatchString(author) {
		return nil, action.Usagef("input commit-author: %q is not Name <email>, e.g. Release Bot <release-bot@example.com>", author)
	}
	if ref := o.GitRef; ref != "" && !git.ValidRef(ref) {
		return nil, action.Usagef("input git-ref: %q is not a branch, tag or commit name", ref)
	}
	if s.Checks, err = o.VerifyOptions.Checks(); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(o.HistoryFile) {
		return nil, action.Usagef("input history-file: %q must be an absolute path on the Docker host", o.HistoryFile)
	}
	if o.RollingParallel < 1 {
		return nil, action.Usagef("input rolling-parallel: %d: want 1 or more (how many services strategy rolling switches side by side)", o.RollingParallel)
	}
	if o.LockRefuse && (!o.Rehearse || o.LockLimit == 0) {
		return nil, action.Usagef("input rehearse-lock-refuse: it stops a deploy whose rehearsed migrations held a lock longer than rehearse-lock-limit; set rehearse: true and a rehearse-lock-limit above 0 (now rehearse: %t, rehearse-lock-limit: %s)", o.Rehearse, o.LockLimit)
	}
	if o.Rehearse {
		switch {
		case o.Target == "swarm":
			return nil, action.Usagef("input rehearse: target swarm is not rehearsed (a copy of a stack would be a second stack of swarm services on the cluster's overlay networks); rehearse on a compose staging host, or set rehearse: false")
		case o.Backup.Engine == "sqlite":
			if o.Backup.SQLitePath == "" {
				return nil, action.Usagef("input rehearse: set backup-sqlite-path to the SQLite file the app's service bind-mounts: the rehearsal restores the pre-deploy backup into that mount of a copy of the stack")
			}
		case o.Backup.Container == "":
			return nil, action.Usagef("input rehearse: set backup-container to the stack's database container: the rehearsal restores the pre-deploy backup into that service of a copy of the stack (backup-database-url is outside the stack)")
		}
		o.Backup.Enabled = true // the rehearsal restores the pre-deploy backup
		s.Opts.Backup.Enabled = true
	}
	// A SQLite file the app has not made yet (a first deploy) is looked for
	// again by the backup step, once it knows whether the stack runs.
	if o.Backup.Enabled && !o.Backup.sqliteNotMade() {
		if err := backup.Check(a, o.Backup.options("pre-deploy")); err != nil {
			return nil, err
		}
	}
	if s.notify.to, err = o.Notify.Checked(); err != nil {
		return nil, err
	}
	if o.Remote.Remote() {
		if _, _, err := remote.Parse(o.Remote, a.TempDir()); err != nil {
			return nil, err
		}
		if o.Backup.Engine == "sqlite" && (o.Backup.Enabled || o.Rehearse) {
			return nil, action.Usagef("input docker-host: a SQLite file is on the host, where a runner elsewhere cannot back it up or rehearse on it; run this deploy on the host (a self-hosted runner), or without backup and rehearse")
		}
	}
	s.History = history.File{Path: o.HistoryFile}
	s.LockDir = lock.Dir(s.History.Path)
	s.Target, s.Strategy = &composeTarget{}, Strategy(recreate{})
	if o.Strategy == "rolling" {
		s.Strategy = &rolling{}
	}
	if o.Target == "swarm" {
		if o.Strategy != "recreate" {
			return nil, action.Usagef("input strategy: %s applies to target compose; on swarm each service's update_config decides how tasks are replaced", o.Strategy)
		}
		s.Target = &swarmTarget{}
	}
	return s, nil
}

// options is the backup before the change, from the backup-* inputs.
// sqliteNotMade reports a SQLite file backup-sqlite-path that does not exist
// (yet: the app makes it on its first start).
func (o BackupOptions) sqliteNotMade() bool {
	if o.Engine != "sqlite" || o.SQLitePath == "" {
		return false
	}
	_, err := os.Stat(o.SQLitePath)
	return errors.Is(err, fs.ErrNotExist)
}

func (o BackupOptions) options(prefix string) backup.Options {
	return backup.Options{
		Engine: o.Engine, Container: o.Container, DatabaseURL: o.DatabaseURL,
		DBUser: o.DBUser, DBPassword: o.DBPassword, SQLitePath: o.SQLitePath,
		Dir: o.Dir, Prefix: prefix, Level: backup.DefaultLevel, MinSize: 0,
		Keep:        backup.Keep{Daily: o.KeepDaily, Weekly: o.KeepWeekly, Monthly: o.KeepMonthly},
		InputPrefix: "backup-",
	}
}

// runPlan runs the plan's steps (with the embedded steps.Runner's Run), then
// the rollback a failure or a cancel asks for, the history line, the
// notification, the outputs and summary, and returns the run's error.
func (s *State) runPlan(ctx context.Context) error {
	failed, stepErr := s.Run(ctx, s.plan.Steps, s, func() string {
		if s.Out.Skipped {
			return "the guard skipped this deploy"
		}
		return ""
	})
	if stepErr != nil {
		s.Out.FailedStep, s.Out.FailedErr = failed.String(), stepErr
	}
	s.Out.Cancelled = ctx.Err() != nil
	switch {
	case stepErr != nil && !s.Out.Cancelled:
		_ = s.One(ctx, rollbackStep{}, s)
		if changedSteps[s.Out.FailedStep] && !s.Opts.DryRun {
			s.checkDegraded(ctx)
		}
	case s.Out.Cancelled && (s.Strategy.Moved() || changedSteps[s.Out.FailedStep]):
		// A job cancelled after the stack changed restores what ran before, with a
		// deadline of its own that ends before the CLI stops waiting for it; one
		// cancelled before anything switched restores nothing (rollbackStep says
		// so): the containers that ran before never stopped serving.
		back, cancel := s.A.CancelContext(ctx, cancelledRestoreTimeout)
		if s.Strategy.Moved() && !s.Strategy.OldServing() {
			_ = s.One(back, cancelledSwitchStep{}, s)
		} else {
			_ = s.One(back, rollbackStep{}, s)
		}
		cancel()
	}
	if stepErr == nil && !s.Out.Skipped && s.Docker != nil {
		s.Target.Finish(ctx, s)
	}
	if !s.Out.Skipped {
		_ = s.One(context.WithoutCancel(ctx), historyStep{}, s)
	}
	notifyCtx, cancelNotify := s.A.CancelContext(ctx, time.Minute)
	s.notify.sent = s.sendNotification(notifyCtx)
	cancelNotify()
	if err := s.finish(ctx); err != nil {
		return err
	}
	switch {
	case stepErr == nil:
		return nil
	case action.ExitCode(stepErr) == action.ExitUsage:
		return stepErr
	case s.Out.Degraded != "":
		return action.Failedf("%s of %s failed at %s (%v), and production is degraded: %s; the summary has the command that restores the pre-deploy backup", s.plan.Action, orUnknown(s.Version), s.Out.FailedStep, stepErr, s.Out.Degraded)
	case s.Out.RolledBack:
		return action.Failedf("%s of %s failed at %s (%v); rolled back to %s", s.plan.Action, s.Version, s.Out.FailedStep, stepErr, s.rollbackVersion())
	default:
		return action.Failedf("%s of %s failed at %s: %v", s.plan.Action, orUnknown(s.Version), s.Out.FailedStep, stepErr)
	}
}

func orUnknown(v string) string {
	if v == "" {
		return "(version not determined)"
	}
	return v
}

// status is the deploy's status output.
func (s *State) status() string {
	switch {
	case s.Out.Skipped:
		return "skipped"
	case s.Out.FailedErr == nil:
		return action.StatusSuccess
	case s.Out.RolledBack:
		return "rolled-back"
	case action.ExitCode(s.Out.FailedErr) == action.ExitUsage:
		return action.StatusBadInput // refused in preflight, before anything changed
	}
	return action.StatusFailed
}

// finish writes the outputs and the summary.
func (s *State) finish(ctx context.Context) error {
	url := s.Opts.HealthURL
	if url == "" {
		url = s.Opts.SmokeBaseURL
	}
	errs := []error{s.A.SetOutputs(
		action.Out{Name: "version", Value: s.Version},
		action.Out{Name: "previous-version", Value: s.PreviousVersion},
		action.Out{Name: "status", Value: s.status()},
		action.Out{Name: "skipped", Value: strconv.FormatBool(s.Out.Skipped)},
		action.Out{Name: "rolled-back", Value: strconv.FormatBool(s.Out.RolledBack)},
		action.Out{Name: "url", Value: url},
		action.Out{Name: "plan", Value: s.planJSON()},
	)}
	s.trend = s.trendLine(ctx)
	errs = append(errs, s.A.Summary(s.summary()))
	return errors.Join(errs...)
}

// composeEnv is the environment docker compose runs with: the job's, plus the
// DEPLOY_* variables a compose file may interpolate.
func (s *State) composeEnv(version, sha string) []string {
	return ComposeEnv(s.A.Environ(), version, sha, s.Opts.Environment)
}

// ComposeEnv is environ plus the DEPLOY_* variables the kit gives a compose
// file to interpolate (docs/actions/deploy.md).
func ComposeEnv(environ []string, version, sha, environment string) []string {
	env := append([]string(nil), environ...)
	return append(env,
		"DEPLOY_VERSION="+version,
		"DEPLOY_SHA="+sha,
		"DEPLOY_TAG="+git.ImageTag(sha),
		"DEPLOY_ENV="+environment,
	)
}

// since is a duration for the log.
func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }

// trendLine is the stack and environment's figures over the last 30 days from the
// history file (docs/history.md), or "" when there is nothing to say.
func (s *State) trendLine(ctx context.Context) string {
	if s.Out.Skipped || s.Opts.DryRun || s.History.Path == "" || s.Compose.Name == "" || (s.Opts.Remote.Remote() && s.Remote == nil) {
		return ""
	}
	entries, err := s.History.Read()
	if err != nil {
		return ""
	}
	var commitTime func(string) (time.Time, bool)
	if s.Exec != nil {
		commitTime = git.CommitTimes(ctx, s.Exec, s.Workspace)
	}
	f := history.Filter{Stack: s.Compose.Name, Env: s.Opts.Environment}
	var mine []history.Entry
	for _, e := range entries {
		if f.Match(e) {
			mine = append(mine, e)
		}
	}
	for _, st := range history.Compute(mine, time.Now(), 30*24*time.Hour, commitTime) {
		return st.Trend()
	}
	return ""
}

// sendNotification tells notify-url how the run went, when notify-on asks for it,
// and returns a line for the summary. A failed notification is a warning: it never
// changes the result.
func (s *State) sendNotification(ctx context.Context) string {
	ok := s.Out.FailedErr == nil
	if s.Out.Skipped || s.Opts.DryRun || !s.notify.to.Wants(ok) {
		return ""
	}
	name := s.Compose.Name
	if name == "" {
		name = s.Opts.ProjectName
	}
	title := fmt.Sprintf("deploykit %s: %s", s.plan.Action, s.status())
	if s.Version != "" {
		title += fmt.Sprintf(" — %s %s on %s", name, s.Version, s.Opts.Environment)
	}
	var text strings.Builder
	switch {
	case ok && s.PreviousVersion != "":
		fmt.Fprintf(&text, "%s is live on %s (was %s).\n", s.Version, s.Opts.Environment, s.PreviousVersion)
	case ok:
		fmt.Fprintf(&text, "%s is live on %s.\n", s.Version, s.Opts.Environment)
	case s.Out.HandOff != "":
		text.WriteString(s.Out.HandOff)
	default:
		fmt.Fprintf(&text, "Failed at %s: %v\n", s.Out.FailedStep, s.Out.FailedErr)
		if job := s.A.JobURL(); job != "" {
			fmt.Fprintf(&text, "\nJob: %s\n", job)
		}
	}
	m := notify.Message{Action: s.plan.Action, Stack: name, Env: s.Opts.Environment, Version: s.Version, Status: s.status(), OK: ok,
		Title: title, Text: text.String(), JobURL: s.A.JobURL()}
	return notify.Tell(ctx, s.A, s.notify.to, m, s.plan.Action)
}

// planJSON is the plan output: the plan diff as JSON, or "" when none was made.
func (s *State) planJSON() string {
	if s.Plan == nil {
		return ""
	}
	data, err := json.Marshal(s.Plan)
	if err != nil {
		return ""
	}
	return string(data)
}
