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
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/git"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/notify"
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
	Docker docker.Engine
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
	Lock            *lock.Lock
	lockHolder      lock.Holder
	Snapshot        Snapshot
	BackupPath      string            // the pre-deploy backup, when one was made
	schemaBefore    map[string]string // golang-migrate's state before apply, where it can be read (degraded.go)
	Degraded        string            // why production is degraded after a failure, when it is
	rehearsal       *rehearsal        // what preflight found for the rehearsal (rehearse.go)

	// Outcome; the step runner keeps each step's result.
	steps.Runner[*State]
	Skipped     bool
	FailedStep  string
	FailedErr   error
	Cancelled   bool // the job was cancelled (SIGINT/SIGTERM)
	RolledBack  bool
	RollbackErr error
	// Strategy replaces the containers (compose): recreate, or rolling with
	// its route networks and the switches made so far (switch.go).
	Strategy Strategy
	HandOff  string    // Markdown for a person, on failure
	trend    string    // the stack's figures over the last 30 days, for the summary
	Plan     *PlanDiff // what apply changes, from the plan step
	notify   *notify.Target
	notified string // how the notification went, for the summary

	plan Plan
}

var (
	commitAuthor = regexp.MustCompile(`^([^<>\x00-\x1f]+) <([^<>\s@]+@[^<>\s@]+)>$`)
	projectName  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	envName      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

// cancelledRestoreTimeout bounds the restore after a cancelled job, counted from
// when the restore begins; the CLI waits up to 40 s after the signal for a
// cancelled command (its running step's commands get 10 s to stop, then this).
const cancelledRestoreTimeout = 25 * time.Second

// Plan is what a run of the pipeline is for.
type Plan struct {
	Action string // the history action: deploy or rollback
	Steps  []Step
	// ImageTemplate, when set, pins every service deployed to this image, with
	// {sha}, {short}, {tag} (sha-<short>) and {version} filled in.
	ImageTemplate string
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
	defer s.Cleanup()
	return s.run(ctx)
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
	if s.notify, err = o.Notify.Checked(); err != nil {
		return nil, err
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

func (s *State) run(ctx context.Context) error {
	failed, stepErr := s.Run(ctx, s.plan.Steps, s, func() string {
		if s.Skipped {
			return "the guard skipped this deploy"
		}
		return ""
	})
	if stepErr != nil {
		s.FailedStep, s.FailedErr = failed.String(), stepErr
	}
	s.Cancelled = ctx.Err() != nil
	switch {
	case stepErr != nil && !s.Cancelled:
		_ = s.One(ctx, rollbackStep{}, s)
		if changedSteps[s.FailedStep] && !s.Opts.DryRun {
			s.checkDegraded(ctx)
		}
	case s.Cancelled && (s.Strategy.Moved() || changedSteps[s.FailedStep]):
		// A job cancelled after the stack changed restores what ran before, with a
		// deadline of its own that ends before the CLI stops waiting for it.
		back, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelledRestoreTimeout)
		if s.Strategy.Moved() {
			_ = s.One(back, cancelledSwitchStep{}, s)
		} else {
			_ = s.One(back, rollbackStep{}, s)
		}
		cancel()
	}
	if stepErr == nil && !s.Skipped && s.Docker != nil {
		s.Target.Finish(ctx, s)
	}
	if !s.Skipped {
		_ = s.One(context.WithoutCancel(ctx), historyStep{}, s)
	}
	s.notified = s.sendNotification(ctx)
	if err := s.finish(ctx); err != nil {
		return err
	}
	switch {
	case stepErr == nil:
		return nil
	case action.ExitCode(stepErr) == action.ExitUsage:
		return stepErr
	case s.Degraded != "":
		return action.Failedf("%s of %s failed at %s (%v), and production is degraded: %s; the summary has the command that restores the pre-deploy backup", s.plan.Action, orUnknown(s.Version), s.FailedStep, stepErr, s.Degraded)
	case s.RolledBack:
		return action.Failedf("%s of %s failed at %s (%v); rolled back to %s", s.plan.Action, s.Version, s.FailedStep, stepErr, s.rollbackVersion())
	default:
		return action.Failedf("%s of %s failed at %s: %v", s.plan.Action, orUnknown(s.Version), s.FailedStep, stepErr)
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
	case s.Skipped:
		return "skipped"
	case s.FailedErr == nil:
		return action.StatusSuccess
	case s.RolledBack:
		return "rolled-back"
	case action.ExitCode(s.FailedErr) == action.ExitUsage:
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
		action.Out{Name: "skipped", Value: strconv.FormatBool(s.Skipped)},
		action.Out{Name: "rolled-back", Value: strconv.FormatBool(s.RolledBack)},
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
	env := append([]string(nil), s.A.Environ()...)
	return append(env,
		"DEPLOY_VERSION="+version,
		"DEPLOY_SHA="+sha,
		"DEPLOY_TAG="+git.ImageTag(sha),
		"DEPLOY_ENV="+s.Opts.Environment,
	)
}

// since is a duration for the log.
func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }

// trendLine is the stack and environment's figures over the last 30 days from the
// history file (README "history"), or "" when there is nothing to say.
func (s *State) trendLine(ctx context.Context) string {
	if s.Skipped || s.Opts.DryRun || s.History.Path == "" || s.Compose.Name == "" {
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
	ok := s.FailedErr == nil
	if s.Skipped || s.Opts.DryRun || !s.notify.Wants(ok) {
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
	case s.HandOff != "":
		text.WriteString(s.HandOff)
	default:
		fmt.Fprintf(&text, "Failed at %s: %v\n", s.FailedStep, s.FailedErr)
		if job := s.A.JobURL(); job != "" {
			fmt.Fprintf(&text, "\nJob: %s\n", job)
		}
	}
	m := notify.Message{Action: s.plan.Action, Stack: name, Env: s.Opts.Environment, Version: s.Version, Status: s.status(), OK: ok,
		Title: title, Text: text.String(), JobURL: s.A.JobURL()}
	return notify.Tell(ctx, s.A, s.notify, m, s.plan.Action)
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
