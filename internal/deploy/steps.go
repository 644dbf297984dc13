package deploy

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/compose"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/guard"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/remote"
	"github.com/org/deploy-kit/internal/repair"
	"github.com/org/deploy-kit/internal/secretfile"
	"github.com/org/deploy-kit/internal/steps"
	"github.com/org/deploy-kit/internal/verify"
)

type guardStep struct{}

func (guardStep) String() string { return "guard" }

func (guardStep) Run(ctx context.Context, s *State) error {
	d, err := guard.Check(ctx, s.A, s.Exec)
	if err != nil {
		return action.Failedf("%w", err)
	}
	if d.Warning != "" {
		s.A.Warningf("%s", d.Warning)
	}
	s.Out.Skipped = d.Skip
	if d.Skip {
		s.Did("skip: %s", d.Reason)
	} else {
		s.Did("%s", d.Reason)
	}
	return nil
}

type preflightStep struct{}

func (preflightStep) String() string { return "preflight" }

// Run checks everything that can refuse the deploy, changing nothing: bad input
// (the compose file and what pull-only forbids) exits 2, an environment that is
// not ready exits 1.
func (preflightStep) Run(ctx context.Context, s *State) error {
	// A host elsewhere first: compose and the Engine API reach it through the
	// run's socket from now on, and its lock and history are read there.
	if s.Remote == nil && s.Opts.Remote.Remote() {
		conn, err := remote.Connect(ctx, s.A, s.Opts.Remote)
		if err != nil {
			return action.Failedf("%w", err)
		}
		s.Remote = conn
		s.Defer(conn.End)
		s.History.Host = conn
	}
	if t, ok := s.Target.(interface{ Begin(context.Context, *State) }); ok {
		t.Begin(ctx, s) // its slow checks, beside git and the compose model
	}
	if err := s.planGit(ctx); err != nil {
		return err
	}
	if err := s.loadProject(ctx); err != nil {
		return err
	}
	var notes []string
	if s.Docker == nil {
		c, err := docker.New(s.A.Environ())
		if err != nil {
			return action.Failedf("%w", err)
		}
		s.Docker = c
		s.Defer(func() { _ = c.Close() })
	}
	if err := s.Docker.Ping(ctx); err != nil {
		return action.Failedf("%v: check DOCKER_HOST and that the engine runs", err)
	}
	targetNotes, err := s.Target.Preflight(ctx, s)
	if err != nil {
		return err
	}
	notes = append(notes, targetNotes...)
	if s.Remote != nil {
		root, err := s.Docker.DataRoot(ctx)
		if err != nil {
			return action.Failedf("%w", err)
		}
		free, err := s.Remote.FreeDisk(ctx, root)
		if err != nil {
			return action.Failedf("free space of %s: %w", root, err)
		}
		if min := s.Opts.MinFreeDisk; free < min {
			return action.Failedf("only %.1f%% of %s (Docker's data root on %s) is free, below min-free-disk %g%%: free space (docker system prune, old images) or lower min-free-disk", free, root, s.Remote.Host, min)
		}
		notes = append(notes, fmt.Sprintf("%.0f%% free on %s of %s", free, root, s.Remote.Host))
	} else if s.Docker.IsLocal() {
		root, free, err := s.Docker.FreeDisk(ctx)
		if err != nil {
			return action.Failedf("%w", err)
		}
		if min := s.Opts.MinFreeDisk; free < min {
			return action.Failedf("only %.1f%% of %s (Docker's data root) is free, below min-free-disk %g%%: free space (docker system prune, old images) or lower min-free-disk", free, root, min)
		}
		notes = append(notes, fmt.Sprintf("%.0f%% free on %s", free, root))
	} else {
		notes = append(notes, "disk not checked (remote engine "+s.Docker.Host()+")")
	}
	for _, n := range s.Project.Networks {
		if !bool(n.External) {
			continue
		}
		ok, err := s.Docker.NetworkExists(ctx, n.Name)
		if err != nil {
			return action.Failedf("inspecting network %s: %v", n.Name, err)
		}
		if !ok {
			return action.Failedf("external network %s does not exist: create it (docker network create %s) or remove external: true", n.Name, n.Name)
		}
	}
	strategyNotes, err := s.Strategy.Preflight(ctx, s)
	if err != nil {
		return err
	}
	notes = append(notes, strategyNotes...)
	if err := s.planRehearsal(ctx); err != nil {
		return err
	}
	s.Did("version %s of %s on %s; %s", s.Version, s.Compose.Name, s.Opts.Environment, strings.Join(notes, "; "))
	return nil
}

// loadProject parses the compose file with compose-go exactly as docker compose
// will see it, and applies the pull-only rules.
func (s *State) loadProject(ctx context.Context) error {
	p, err := compose.Load(ctx, s.ComposeFile, s.Opts.ProjectName, s.loadEnv(), compose.DotEnv(s.ComposeFile))
	if err != nil {
		return action.Usagef("compose file %s is not valid: %v", s.ComposeFile, err)
	}
	s.Project = p
	s.Compose = compose.Project{File: s.ComposeFile, Name: p.Name, Env: s.composeEnv(s.Version, s.Git.SHA), EnvFiles: compose.DotEnv(s.ComposeFile)}
	services := p.ServiceNames()
	if s.Opts.Service != "" {
		if _, err := p.GetService(s.Opts.Service); err != nil {
			return action.Usagef("input service: %q is not a service of %s (services: %s)", s.Opts.Service, s.ComposeFile, strings.Join(services, ", "))
		}
		services = []string{s.Opts.Service}
	}
	if err := s.Strategy.Fits(s, p, services); err != nil {
		return err
	}
	if !s.Opts.PullOnly {
		return nil
	}
	var problems []string
	for _, name := range services {
		svc, _ := p.GetService(name)
		if svc.Build != nil {
			problems = append(problems, fmt.Sprintf("service %s has a build: section", name))
		}
		if s.plan.ImageTemplate != "" {
			svc.Image = s.templateImage()
		}
		if svc.Image == "" {
			problems = append(problems, fmt.Sprintf("service %s has no image", name))
			continue
		}
		ref, err := reference.ParseNormalizedNamed(svc.Image)
		if err != nil {
			problems = append(problems, fmt.Sprintf("service %s: image %q: %v", name, svc.Image, err))
			continue
		}
		_, digested := ref.(reference.Digested)
		tagged, isTagged := ref.(reference.Tagged)
		switch {
		case digested:
		case !isTagged:
			problems = append(problems, fmt.Sprintf("service %s: image %s has no tag (it means :latest)", name, svc.Image))
		case tagged.Tag() == "latest":
			problems = append(problems, fmt.Sprintf("service %s: image %s uses :latest", name, svc.Image))
		}
	}
	if len(problems) > 0 {
		return action.Usagef("pull-only deploys need pinned images: %s; pin each image to a version or sha- tag (e.g. image: registry/app:${DEPLOY_TAG})", strings.Join(problems, "; "))
	}
	return nil
}

// loadEnv is the environment the compose model is loaded with: docker
// compose's, plus the secrets it reads from the env file.
func (s *State) loadEnv() []string {
	env := s.composeEnv(s.Version, s.Git.SHA)
	for _, v := range s.Secrets {
		env = append(env, v.Key+"="+v.Value)
	}
	return env
}

// rollingFits refuses services that cannot run twice at once, which the
// traffic switch needs: a fixed container_name, or a fixed host port. (A
// service replaced in place, switchless, may have them.)
func rollingFits(p *types.Project, services []string) error {
	var problems []string
	for _, name := range services {
		svc, _ := p.GetService(name)
		if svc.ContainerName != "" {
			problems = append(problems, fmt.Sprintf("service %s has container_name %s", name, svc.ContainerName))
		}
		for _, port := range svc.Ports {
			if port.Published != "" {
				problems = append(problems, fmt.Sprintf("service %s publishes host port %s", name, port.Published))
			}
		}
	}
	if len(problems) > 0 {
		return action.Usagef("strategy rolling runs two containers of a service at once, which cannot be: %s. Remove them and route to the service through a reverse proxy on a shared network (see examples/rolling), or use strategy recreate", strings.Join(problems, "; "))
	}
	return nil
}

// checkPromotion refuses a version that was not verified where requires-verified
// says, unless force; it also finds the version that runs now.
func (s *State) checkPromotion() error {
	entries, err := s.History.Read()
	if err != nil {
		return action.Failedf("%w", err)
	}
	if cur, ok := history.Current(entries, s.Compose.Name, s.Opts.Environment); ok {
		s.Previous, s.PreviousVersion = &cur, cur.Version
	}
	need := s.Opts.RequiresVerified
	if need == "" || history.Verified(entries, s.Compose.Name, need, s.Version, s.Git.SHA) {
		return nil
	}
	if !s.Opts.Force {
		return action.Failedf("version %s was not verified on %s: deploy it there first (with verifies: %s), or set force: true to deploy it anyway (recorded as FORCED)", s.Version, need, need)
	}
	s.Forced = fmt.Sprintf("FORCED: %s not verified on %s", s.Version, need)
	s.A.Warningf("%s (force: true)", s.Forced)
	return nil
}

type lockStep struct{}

func (lockStep) String() string { return "lock" }

func (lockStep) Run(ctx context.Context, s *State) error {
	path := lock.PathFor(s.LockDir, s.Compose.Name)
	if s.Opts.DryRun {
		return Skip("dry run: would take %s", path)
	}
	held := s.plan.Lock
	if held == nil {
		start := time.Now()
		var err error
		if held, err = TakeLock(ctx, s.A, s.Opts, s.Compose.Name, s.plan.Action, s.Remote); err != nil {
			return err
		}
		s.Did("took %s after %s", held.Lock.Path, since(start))
	} else {
		s.Did("held %s since before the %s's target was read from the history", held.Lock.Path, s.plan.Action)
	}
	s.Lock = *held
	s.Defer(func() { _ = held.Lock.Release() })
	// The lock file says which step this run is in: the run after a kill
	// records where it was killed.
	s.Runner.OnStep = func(step string) {
		s.Lock.Holder.Step, s.Lock.Holder.StepSince, s.Lock.Holder.Version = step, time.Now(), s.Version
		_ = s.Lock.Lock.Update(s.Lock.Holder)
	}
	return nil
}

// Held is a stack's lock, held, and what its file says about the holder.
type Held struct {
	Lock   *lock.Lock
	Holder lock.Holder
}

// TakeLock takes the lock of stack (beside history-file: one deploy,
// rollback or restore of a stack at a time) for a run of act, waiting up to
// lock-timeout and saying so in the log; on the Docker host conn reaches,
// when the run is elsewhere.
func TakeLock(ctx context.Context, a *action.Context, o Options, stack, act string, conn *remote.Conn) (*Held, error) {
	path := lock.PathFor(lock.Dir(o.HistoryFile), stack)
	host, _ := os.Hostname()
	me := lock.Holder{Host: host, PID: os.Getpid(), JobURL: a.JobURL(), Since: time.Now(), Action: act, Env: o.Environment}
	l, err := remote.AcquireLock(ctx, conn, path, me, o.LockTimeout, a.Logf)
	if err != nil {
		return nil, action.Failedf("%w", err)
	}
	return &Held{Lock: l, Holder: me}, nil
}

type repairStep struct{}

func (repairStep) String() string { return "repair" }

// Run makes the stack whole from what it finds before this run changes it
// (ARCHITECTURE.md, "Repair first"): a run killed holding the lock is
// recorded in the history as killed, what runs of the stack left (copies,
// throwaway containers) is removed, what a killed restore stopped runs again,
// and the strategy's own leftovers go (rolling: containers off the aliases).
// A database a restore left half-restored stops the run before anything
// changes.
func (repairStep) Run(ctx context.Context, s *State) error {
	if s.Opts.DryRun {
		return Skip("dry run: would remove what a killed run of %s left", s.Compose.Name)
	}
	var done []string
	rep, err := repair.Stack(ctx, s.Docker, s.History, s.Lock.Lock, s.Compose.Name, s.Opts.Environment)
	if err != nil {
		s.A.Warningf("%v", err)
	}
	if rep.Killed != nil {
		s.A.Warningf("the %s of %s that held the lock before this run was killed (%s): recorded in %s", rep.Killed.Action, rep.Killed.Version, rep.Killed.Notes, s.History.Path)
		done = append(done, fmt.Sprintf("a killed %s of %s recorded (%s)", rep.Killed.Action, rep.Killed.Version, rep.Killed.Notes))
	}
	done = append(done, rep.Done...)
	notes, err := s.Strategy.Repair(ctx, s)
	if err != nil {
		return action.Failedf("repairing %s before the deploy: %w", s.Compose.Name, err)
	}
	done = append(done, notes...)
	m, err := s.halfRestored(ctx)
	if err != nil {
		return action.Failedf("%w", err)
	}
	if m != nil {
		return action.Failedf("%w", m.Refusal(s.Compose.Name))
	}
	if len(done) == 0 {
		s.Did("nothing to repair")
		return nil
	}
	s.Did("%s", strings.Join(done, "; "))
	return nil
}

// halfRestored is the mark a restore left beside the stack's lock, on the host.
func (s *State) halfRestored(ctx context.Context) (*repair.Restoring, error) {
	lockPath := lock.PathFor(s.LockDir, s.Compose.Name)
	if s.Remote == nil {
		return repair.HalfRestored(lockPath)
	}
	data, err := s.Remote.ReadFile(ctx, repair.RestoringPath(lockPath))
	if err != nil {
		return nil, err
	}
	return repair.ParseRestoring(data), nil
}

type promotionStep struct{}

func (promotionStep) String() string { return "promotion" }

// Run reads, under the lock, the version that runs now from the history and
// refuses a version not verified where requires-verified says (unless force).
func (promotionStep) Run(_ context.Context, s *State) error {
	if err := s.checkPromotion(); err != nil {
		return err
	}
	switch {
	case s.Forced != "":
		s.Did("%s; running now: %s", s.Forced, cmp.Or(s.PreviousVersion, "nothing recorded"))
	case s.Opts.RequiresVerified != "":
		s.Did("%s was verified on %s; running now: %s", s.Version, s.Opts.RequiresVerified, cmp.Or(s.PreviousVersion, "nothing recorded"))
	default:
		s.Did("running now: %s", cmp.Or(s.PreviousVersion, "nothing recorded"))
	}
	return nil
}

type secretsStep struct{}

func (secretsStep) String() string { return "secrets" }

func (secretsStep) Run(_ context.Context, s *State) error {
	prefix := s.Opts.SecretPrefix
	if len(s.Secrets) == 0 {
		return Skip("no %s* variables in the job", prefix)
	}
	keys := strings.Join(secretfile.Keys(s.Secrets), ", ")
	if s.Opts.DryRun {
		s.Compose.EnvFiles = append(s.Compose.EnvFiles, "<secret env file>")
		return Skip("dry run: would write %d variable(s) to a 0600 env file: %s", len(s.Secrets), keys)
	}
	f, err := secretfile.WriteForJob(s.A, s.Secrets)
	if err != nil {
		return err
	}
	s.EnvFile = f
	s.Defer(func() { _ = f.Remove() })
	s.Compose.EnvFiles = append(s.Compose.EnvFiles, f.Path)
	s.Did("%d variable(s) from %s* in a 0600 env file: %s", len(s.Secrets), prefix, keys)
	return nil
}

type backupStep struct{}

func (backupStep) String() string { return "backup" }

func (backupStep) Run(ctx context.Context, s *State) error {
	if !s.Opts.Backup.Enabled {
		return Skip("not requested (backup: false)")
	}
	opts := s.Opts.Backup.options("pre-deploy-" + s.Compose.Name)
	opts.Stack = s.Compose.Name // its throwaway containers: the next run removes what a killed one left
	if s.Opts.DryRun {
		return Skip("dry run: would back up with the %s engine to %s", opts.Engine, opts.Dir)
	}
	if s.Remote != nil {
		// Made on the runner (the dump streams over the connection), kept on
		// the host: backup-dir is the host's, and so is its retention.
		opts.Host = s.Remote
	}
	if opts.Container != "" || s.Opts.Backup.sqliteNotMade() {
		// The stack's own database (or its SQLite file, not made yet) on its
		// first deploy: there is nothing yet.
		if running, err := s.Docker.ProjectContainers(ctx, s.Compose.Name); err == nil && len(running) == 0 {
			return Skip("first deploy: nothing of %s runs yet, so there is no data to back up", s.Compose.Name)
		}
	}
	r, err := backup.Make(ctx, s.A, opts)
	if err != nil {
		return err
	}
	s.Defer(r.Discard)                             // the runner's copy, when it is kept on the host
	s.Backup.Path, s.Backup.Kept = r.Local, r.Path // the rehearsal restores the runner's copy
	s.Did("%s (%d bytes, sha256 %s), verified", r.Where, r.Size, r.SHA256)
	// A restore by URL that was killed may have left databases beside the live
	// one: say so where someone looks, since this deploy may migrate the database.
	if t, err := backup.NewLiveDB(s.A, opts); err == nil {
		left, _ := t.Leftovers(ctx)
		for _, l := range left {
			s.A.Warningf("%s", l)
		}
		_ = t.Close()
	}
	return nil
}

type snapshotStep struct{}

func (snapshotStep) String() string { return "snapshot" }

func (snapshotStep) Run(ctx context.Context, s *State) error {
	snap, err := s.Target.Snapshot(ctx, s)
	if err != nil {
		return action.Failedf("recording what runs now: %v", err)
	}
	s.Snapshot = snap
	// The database's migration state too, where it can be read: after a failure,
	// a schema that moved means production is degraded (degraded.go). On a first
	// deploy the stack's own database does not exist yet.
	if !s.Opts.DryRun && (len(snap.Services) > 0 || s.Opts.DatabaseURL != "") {
		if m, err := s.schemas(ctx); err != nil {
			s.A.Warningf("reading the database's migration state before the change: %v", err)
		} else {
			s.schemaBefore = m
		}
	}
	if len(snap.Services) == 0 {
		s.Did("nothing of %s runs yet: first deploy", s.Compose.Name)
		return nil
	}
	var parts []string
	for _, svc := range snap.Names() {
		parts = append(parts, svc+"="+snap.Services[svc].Ref)
	}
	if s.schemaBefore != nil {
		parts = append(parts, "migrations: "+schemaText(s.schemaBefore))
	}
	s.Did("%s", strings.Join(parts, ", "))
	return nil
}

type applyStep struct{}

func (applyStep) String() string { return "apply" }

func (applyStep) Run(ctx context.Context, s *State) error {
	if err := s.Target.Apply(ctx, s); err != nil {
		return action.Failedf("%w", err)
	}
	if s.Opts.DryRun {
		s.Did("dry run: printed the commands above")
	} else {
		s.Did("%s %s is up", s.Compose.Name, s.Version)
		if d := s.Strategy.Detail(); d != "" {
			s.AddDetail(d)
		}
	}
	return nil
}

type verifyStep struct{}

func (verifyStep) String() string { return "verify" }

func (verifyStep) Run(ctx context.Context, s *State) error {
	if s.Opts.DryRun {
		return Skip("dry run")
	}
	if err := s.verify(ctx); err != nil {
		return err
	}
	return s.Strategy.Verify(ctx, s)
}

// verify runs the health and smoke checks (after apply, and after a rollback).
func (s *State) verify(ctx context.Context) error {
	health, base := s.Opts.HealthURL, s.Opts.SmokeBaseURL
	if health == "" && len(s.Checks) == 0 {
		return Skip("no health-url or smoke-checks: the containers' own healthchecks decided (up --wait, or the swarm update)")
	}
	var retry func(int, bool)
	if health != "" {
		retry = s.Strategy.CheckRetry(ctx, s)
	}
	done, err := s.checkAt(ctx, health, base, retry)
	if err != nil {
		return action.Failedf("%w", err)
	}
	s.Did("%s", strings.Join(done, ", "))
	return nil
}

// checkAt polls health (when set) with the health-* backoff, then runs the smoke
// checks against base (when set), and says what passed: the deploy's checks
// against production's URLs (verify), or the rehearsal's against a copy's
// container addresses. retry (may be nil) is the backoff's Retry.
func (s *State) checkAt(ctx context.Context, health, base string, retry func(int, bool)) ([]string, error) {
	logf := func(format string, args ...any) { s.A.Logf("    "+format, args...) }
	var done []string
	if health != "" {
		b := verify.Backoff{Attempts: s.Opts.HealthAttempts, InitialDelay: s.Opts.HealthInitialDelay, MaxDelay: s.Opts.HealthMaxDelay, Retry: retry}
		if err := verify.Health(ctx, health, b, logf); err != nil {
			return nil, err
		}
		done = append(done, "healthy")
	}
	if base != "" && len(s.Checks) > 0 {
		if err := verify.Smoke(ctx, base, s.Checks, logf); err != nil {
			return nil, err
		}
		done = append(done, fmt.Sprintf("%d smoke check(s) passed", len(s.Checks)))
	}
	return done, nil
}

type rollbackStep struct{}

func (rollbackStep) String() string { return "rollback" }

// changedSteps are the steps that touch the running stack; a failure before them
// left it as it was.
var changedSteps = map[string]bool{"apply": true, "verify": true}

func (rollbackStep) Run(ctx context.Context, s *State) error {
	if !changedSteps[s.Out.FailedStep] {
		return Skip("nothing to undo: the deploy stopped at %s, before changing the stack", s.Out.FailedStep)
	}
	if s.Opts.DryRun {
		return Skip("dry run")
	}
	// Collect the hand-off before the failing containers are replaced.
	s.Out.HandOff = s.handOff(ctx)
	switch {
	case s.Strategy.OldServing():
		return Skip("nothing switched: the old containers never stopped serving")
	case !s.Opts.AutoRollback:
		return Skip("auto-rollback is false: the failed version is left running for inspection")
	case len(s.Snapshot.Services) == 0:
		return Skip("nothing ran before this deploy: no previous version to restore")
	}
	if err := s.Target.Restore(ctx, s); err != nil {
		s.Out.RollbackErr = err
		return action.Failedf("restoring %s: %w", s.rollbackVersion(), err)
	}
	if s.Out.Cancelled {
		s.Out.RolledBack = true
		s.Did("cancelled: %s started again (not verified: a cancelled job has seconds); the next run repairs what is left", s.rollbackVersion())
		return nil
	}
	if err := s.verify(ctx); err != nil && !steps.IsSkip(err) {
		s.Out.RollbackErr = err
		return action.Failedf("restored %s, but it does not pass verify either: %v", s.rollbackVersion(), err)
	}
	s.Out.RolledBack = true
	s.Did("restored %s and verified it", s.rollbackVersion())
	return nil
}

// rollbackVersion names what a rollback restores.
func (s *State) rollbackVersion() string {
	if s.PreviousVersion != "" {
		return s.PreviousVersion
	}
	return "the images that ran before"
}

type historyStep struct{}

func (historyStep) String() string { return "history" }

func (historyStep) Run(_ context.Context, s *State) error {
	if action.ExitCode(s.Out.FailedErr) == action.ExitUsage {
		return Skip("bad input: nothing was attempted")
	}
	if s.Opts.Remote.Remote() && s.Remote == nil {
		return Skip("the Docker host %s was not reached: its history is there", s.Opts.Remote.Host)
	}
	entries := s.historyEntries()
	if s.Opts.DryRun {
		lines := make([]string, len(entries))
		for i, e := range entries {
			lines[i] = e.String()
		}
		return Skip("dry run: would append to %s: %s", s.History.Path, strings.Join(lines, " / "))
	}
	if err := s.History.Append(entries...); err != nil {
		s.A.Warningf("%v", err)
		return err
	}
	s.Did("%d line(s) appended to %s", len(entries), s.History.Path)
	return nil
}

func (s *State) historyEntries() []history.Entry {
	now := time.Now()
	stack := s.Compose.Name
	if stack == "" {
		stack = s.Opts.ProjectName
	}
	e := history.Entry{Time: now, Stack: stack, Env: s.Opts.Environment, Action: s.plan.Action, Version: orUnknown(s.Version), Status: history.StatusSuccess}
	var notes []string
	if s.plan.Action == history.ActionRollback && s.PreviousVersion != "" {
		notes = append(notes, "from "+s.PreviousVersion)
	}
	if s.Git.SHA != "" {
		notes = append(notes, "sha="+s.Git.SHA)
	}
	if s.Forced != "" {
		notes = append(notes, s.Forced)
	}
	switch {
	case s.Out.Cancelled:
		e.Status = history.StatusCancelled
		notes = append(notes, "cancelled at "+s.Out.FailedStep)
	case s.Out.FailedErr != nil:
		e.Status = history.StatusFailed
		notes = append(notes, fmt.Sprintf("failed at %s: %v", s.Out.FailedStep, s.Out.FailedErr))
	}
	if job := s.A.JobURL(); job != "" {
		notes = append(notes, "job "+job)
	}
	e.Notes = strings.Join(notes, "; ")
	entries := []history.Entry{e}
	if s.Out.FailedErr == nil && s.Opts.Verifies != "" {
		entries = append(entries, history.Entry{Time: now, Stack: stack, Env: s.Opts.Verifies, Action: history.ActionVerified,
			Version: s.Version, Status: history.StatusSuccess, Notes: "deployed and verified on " + s.Opts.Environment + "; sha=" + s.Git.SHA})
	}
	if s.Out.RolledBack || s.Out.RollbackErr != nil {
		r := history.Entry{Time: now, Stack: stack, Env: s.Opts.Environment, Action: history.ActionRollback,
			Version: s.rollbackVersion(), Status: history.StatusSuccess, Notes: "from " + s.Version + " (automatic)"}
		if sha := s.previousSHA(); sha != "" {
			r.Notes += "; sha=" + sha
		}
		if s.Out.RollbackErr != nil {
			r.Status = history.StatusFailed
			r.Notes += fmt.Sprintf("; %v", s.Out.RollbackErr)
		}
		entries = append(entries, r)
	}
	return entries
}
