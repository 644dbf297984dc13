package deploy

import (
	"context"
	"fmt"
	"os"
	"slices"
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
	"github.com/org/deploy-kit/internal/secretfile"
	"github.com/org/deploy-kit/internal/steps"
	"github.com/org/deploy-kit/internal/verify"
)

type guardStep struct{}

func (guardStep) String() string { return "guard" }

func (guardStep) Run(ctx context.Context, s *State) error {
	d, err := guard.Check(ctx, s.A, s.Exec)
	if err != nil {
		return action.Failedf("%v", err)
	}
	if d.Warning != "" {
		s.A.Warningf("%s", d.Warning)
	}
	s.Skipped = d.Skip
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
			return action.Failedf("%v", err)
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
	if s.Docker.IsLocal() {
		root, free, err := s.Docker.FreeDisk(ctx)
		if err != nil {
			return action.Failedf("%v", err)
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
	if err := s.checkPromotion(); err != nil {
		return err
	}
	if err := s.planRehearsal(); err != nil {
		return err
	}
	s.Did("version %s of %s on %s; %s", s.Version, s.Compose.Name, s.Opts.Environment, strings.Join(notes, "; "))
	return nil
}

// loadProject parses the compose file with compose-go exactly as docker compose
// will see it, and applies the pull-only rules.
func (s *State) loadProject(ctx context.Context) error {
	env := s.composeEnv(s.Version, s.Git.SHA)
	for _, v := range s.Secrets {
		env = append(env, v.Key+"="+v.Value)
	}
	p, err := compose.Load(ctx, s.ComposeFile, s.Opts.ProjectName, env, compose.DotEnv(s.ComposeFile))
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
	if s.Opts.Strategy == "rolling" {
		switched := slices.DeleteFunc(slices.Clone(services), func(name string) bool { return s.switchless(name) != "" })
		if err := rollingFits(p, switched); err != nil {
			return err
		}
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
		return action.Failedf("%v", err)
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
	host, _ := os.Hostname()
	me := lock.Holder{Host: host, PID: os.Getpid(), Version: s.Version, JobURL: s.A.JobURL(), Since: time.Now()}
	start := time.Now()
	l, err := lock.Acquire(ctx, path, me, s.Opts.LockTimeout, func(h lock.Holder) {
		s.A.Logf("    waiting up to %s for the deploy holding %s: %s", s.Opts.LockTimeout, path, h)
	})
	if err != nil {
		return action.Failedf("%v", err)
	}
	s.Lock, s.lockHolder = l, me
	s.Defer(func() { _ = l.Release() })
	s.Did("took %s after %s", path, since(start))
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
	if s.Opts.DryRun {
		return Skip("dry run: would back up with the %s engine to %s", opts.Engine, opts.Dir)
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
	s.BackupPath = r.Path
	s.Did("%s (%d bytes, sha256 %s), verified", r.Path, r.Size, r.SHA256)
	// A restore by URL that was killed may have left databases beside the live
	// one: say so where someone looks, since this deploy may migrate the database.
	if t, err := backup.NewTarget(s.A, opts); err == nil {
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
		return action.Failedf("%v", err)
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
	var retry func(int)
	if r, ok := s.Strategy.(*rolling); ok && health != "" {
		retry = r.mendAliases(ctx, s)
	}
	done, err := s.checkAt(ctx, health, base, retry)
	if err != nil {
		return action.Failedf("%v", err)
	}
	s.Did("%s", strings.Join(done, ", "))
	return nil
}

// checkAt polls health (when set) with the health-* backoff, then runs the smoke
// checks against base (when set), and says what passed: the deploy's checks
// against production's URLs (verify), or the rehearsal's against a copy's
// container addresses. retry (may be nil) is the backoff's Retry.
func (s *State) checkAt(ctx context.Context, health, base string, retry func(int)) ([]string, error) {
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
	if !changedSteps[s.FailedStep] {
		return Skip("nothing to undo: the deploy stopped at %s, before changing the stack", s.FailedStep)
	}
	if s.Opts.DryRun {
		return Skip("dry run")
	}
	// Collect the hand-off before the failing containers are replaced.
	s.HandOff = s.handOff(ctx)
	switch {
	case s.Strategy.OldServing():
		return Skip("the rolling deploy removed its new containers; the old ones never stopped serving")
	case !s.Opts.AutoRollback:
		return Skip("auto-rollback is false: the failed version is left running for inspection")
	case len(s.Snapshot.Services) == 0:
		return Skip("nothing ran before this deploy: no previous version to restore")
	}
	if err := s.Target.Restore(ctx, s); err != nil {
		s.RollbackErr = err
		return action.Failedf("restoring %s: %v", s.rollbackVersion(), err)
	}
	if err := s.verify(ctx); err != nil && !steps.IsSkip(err) {
		s.RollbackErr = err
		return action.Failedf("restored %s, but it does not pass verify either: %v", s.rollbackVersion(), err)
	}
	s.RolledBack = true
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
	if action.ExitCode(s.FailedErr) == action.ExitUsage {
		return Skip("bad input: nothing was attempted")
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
	case s.Cancelled:
		e.Status = history.StatusCancelled
		notes = append(notes, "cancelled at "+s.FailedStep)
	case s.FailedErr != nil:
		e.Status = history.StatusFailed
		notes = append(notes, fmt.Sprintf("failed at %s: %v", s.FailedStep, s.FailedErr))
	}
	if job := s.A.JobURL(); job != "" {
		notes = append(notes, "job "+job)
	}
	e.Notes = strings.Join(notes, "; ")
	entries := []history.Entry{e}
	if s.FailedErr == nil && s.Opts.Verifies != "" {
		entries = append(entries, history.Entry{Time: now, Stack: stack, Env: s.Opts.Verifies, Action: history.ActionVerified,
			Version: s.Version, Status: history.StatusSuccess, Notes: "deployed and verified on " + s.Opts.Environment + "; sha=" + s.Git.SHA})
	}
	if s.RolledBack || s.RollbackErr != nil {
		r := history.Entry{Time: now, Stack: stack, Env: s.Opts.Environment, Action: history.ActionRollback,
			Version: s.rollbackVersion(), Status: history.StatusSuccess, Notes: "from " + s.Version + " (automatic)"}
		if sha := s.previousSHA(); sha != "" {
			r.Notes += "; sha=" + sha
		}
		if s.RollbackErr != nil {
			r.Status = history.StatusFailed
			r.Notes += fmt.Sprintf("; %v", s.RollbackErr)
		}
		entries = append(entries, r)
	}
	return entries
}
