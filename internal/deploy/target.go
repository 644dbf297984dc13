package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/compose"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/git"
)

// Target is where a stack runs. Each target (compose, swarm) implements these few
// operations; the steps never ask which target they have.
type Target interface {
	// Preflight checks what this target needs before anything changes and
	// returns notes for the summary.
	Preflight(ctx context.Context, s *State) ([]string, error)
	// Snapshot records what runs now, so that Restore can bring it back.
	Snapshot(ctx context.Context, s *State) (Snapshot, error)
	// Apply brings the new version up and waits until it is running and healthy.
	Apply(ctx context.Context, s *State) error
	// Restore brings the snapshot back.
	Restore(ctx context.Context, s *State) error
	// Failing lists the containers to show logs of in a hand-off.
	Failing(ctx context.Context, s *State) ([]docker.Container, error)
	// ManualRollback is what a person types to restore the snapshot by hand.
	ManualRollback(s *State) []string
	// Finish tidies up after a deploy that succeeded and was verified.
	Finish(ctx context.Context, s *State)
	// PlanDiff is what the deploy changes, from what runs now (the plan step).
	PlanDiff(ctx context.Context, s *State) (PlanDiff, error)
}

// Snapshot is what ran before the deploy, per service.
type Snapshot struct {
	Services map[string]ServiceImage
}

// ServiceImage is the image a service ran.
type ServiceImage struct {
	Image   string // as the container was created with
	ImageID string
	Ref     string // the kit's tag on that image, kept for rollback
}

// Names are the snapshot's services, sorted.
func (s Snapshot) Names() []string {
	var names []string
	for n := range s.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// composeTarget deploys with docker compose; State.Strategy replaces the
// containers.
type composeTarget struct {
	version func() (string, error) // docker compose version, asked once (Begin)
}

// Begin asks docker compose for its version while preflight reads git and the
// compose file: starting the plugin's process is the slowest of preflight's
// checks, and on a stack of many services the kit's own steps should cost
// little beside compose's (BENCHMARKS.md).
func (t *composeTarget) Begin(ctx context.Context, s *State) {
	t.version = sync.OnceValues(func() (string, error) { return s.Exec.Output(ctx, compose.Version()) })
	go func() { _, _ = t.version() }()
}

// services are the services this deploy touches.
func (s *State) services() []string {
	if s.Opts.Service != "" {
		return []string{s.Opts.Service}
	}
	return nil
}

// snapshotRef is the kit's tag for the image a service ran before a deploy; tagging
// keeps the image from being pruned or lost when the new build takes its name.
func snapshotRef(project, service, imageID string) string {
	id := strings.TrimPrefix(imageID, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return "deploykit-snapshot/" + project + "-" + service + ":" + id
}

func (*composeTarget) Snapshot(ctx context.Context, s *State) (Snapshot, error) {
	containers, err := s.Docker.ProjectContainers(ctx, s.Compose.Name)
	if err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Services: map[string]ServiceImage{}}
	for _, c := range containers {
		if c.Service == "" || (s.Opts.Service != "" && c.Service != s.Opts.Service) || c.State != "running" {
			continue
		}
		if _, seen := snap.Services[c.Service]; seen {
			continue
		}
		ref := snapshotRef(s.Compose.Name, c.Service, c.ImageID)
		if !s.Opts.DryRun {
			if err := s.Docker.Tag(ctx, c.ImageID, ref); err != nil {
				return Snapshot{}, fmt.Errorf("tagging %s's image %s as %s: %w", c.Service, c.ImageID, ref, err)
			}
		}
		snap.Services[c.Service] = ServiceImage{Image: c.Image, ImageID: c.ImageID, Ref: ref}
		if !s.Opts.DryRun {
			pruneSnapshots(ctx, s, ref)
		}
	}
	return snap, nil
}

// pruneSnapshots drops a service's older snapshot tags, so that only the image that
// ran before the latest deploy stays pinned and disk use does not grow.
func pruneSnapshots(ctx context.Context, s *State, keep string) {
	refs, err := s.Docker.References(ctx, strings.SplitN(keep, ":", 2)[0]+":*")
	if err != nil {
		s.A.Warningf("listing old snapshot tags to prune: %v", err)
		return
	}
	for _, r := range refs {
		if r == keep {
			continue
		}
		if err := s.Docker.Untag(ctx, r); err != nil {
			s.A.Warningf("removing the old snapshot tag %s: %v", r, err)
		}
	}
}

func (*composeTarget) Apply(ctx context.Context, s *State) error { return s.Strategy.Apply(ctx, s) }

// Strategy is how the compose target replaces the containers of the services it
// deploys (ARCHITECTURE.md, "Variants"): recreate in place, or rolling through the
// traffic switch (switch.go).
type Strategy interface {
	// Preflight checks what the strategy needs and returns notes for the summary.
	Preflight(ctx context.Context, s *State) ([]string, error)
	// Apply replaces the containers.
	Apply(ctx context.Context, s *State) error
	// Detail is what Apply did, for the apply row of the summary ("": nothing
	// to add).
	Detail() string
	// Verify runs after the deploy's own checks passed.
	Verify(ctx context.Context, s *State) error
	// Moved reports whether traffic moved in a way that Restore must undo itself
	// (else the target restores the snapshot).
	Moved() bool
	// OldServing reports a failure before anything moved: nothing to restore.
	OldServing() bool
	// Restore moves traffic back to what ran before (when Moved).
	Restore(ctx context.Context, s *State) error
	// Finish tidies up after a verified deploy.
	Finish(ctx context.Context, s *State)
	// Repair removes what a killed run of this strategy left, before this
	// run changes the stack (or has this run remove it once safe: rolling's
	// draining containers go with its own old ones), and says what.
	Repair(ctx context.Context, s *State) ([]string, error)
	// Fits refuses services of p the strategy cannot replace, before
	// anything changes.
	Fits(s *State, p *types.Project, services []string) error
	// CheckRetry is called between the attempts of the deploy's health check
	// (nil: nothing to do between them).
	CheckRetry(ctx context.Context, s *State) func(attempt int, answered bool)
	// Rehearsed are the services a rehearsal checks at their own address in
	// the copy, as this strategy checks them before they take traffic, all but
	// db; direct is false when the strategy checks the published URLs
	// instead (then services is nil).
	Rehearsed(s *State, db string) (services []string, direct bool)
}

// recreate is strategy recreate: docker compose up replaces the containers in
// place. It has nothing of its own to check, undo or finish.
type recreate struct{}

func (recreate) Preflight(context.Context, *State) ([]string, error) { return nil, nil }
func (recreate) Verify(context.Context, *State) error                { return nil }
func (recreate) Moved() bool                                         { return false }
func (recreate) OldServing() bool                                    { return false }
func (recreate) Restore(context.Context, *State) error               { return nil }
func (recreate) Finish(context.Context, *State)                      {}
func (recreate) Detail() string                                      { return "" }

// Repair has nothing to do: docker compose up converges each service to its
// declared scale itself.
func (recreate) Repair(context.Context, *State) ([]string, error) { return nil, nil }

// Fits: compose replaces any service in place.
func (recreate) Fits(*State, *types.Project, []string) error { return nil }

func (recreate) CheckRetry(context.Context, *State) func(int, bool) { return nil }

// Rehearsed: the rehearsal checks the copy at its published health and smoke
// URLs, as the deploy checks production.
func (recreate) Rehearsed(*State, string) ([]string, bool) { return nil, false }

func (recreate) Apply(ctx context.Context, s *State) error {
	pullOnly, noCache := s.Opts.PullOnly, s.Opts.NoCache
	if noCache && !pullOnly {
		if err := s.Exec.Run(ctx, s.Compose.Build(s.services(), true)); err != nil {
			return fmt.Errorf("docker compose build failed: %w", err)
		}
	}
	up := compose.UpOptions{
		Services:    s.services(),
		Build:       !pullOnly && !noCache,
		PullMissing: pullOnly,
		WaitTimeout: s.Opts.WaitTimeout,
	}
	p := s.Compose
	if s.plan.ImageTemplate != "" {
		images := map[string]string{}
		for _, svc := range s.deployedServices() {
			images[svc] = s.templateImage()
		}
		override, err := s.imageOverride(images)
		if err != nil {
			return err
		}
		defer os.Remove(override)
		p.Overrides = []string{override}
	}
	if err := s.Exec.Run(ctx, p.Up(up)); err != nil {
		return err // docker compose up failed (…): its last line
	}
	return nil
}

// removeNew removes a service's containers that were not among before.
func (s *State) removeNew(ctx context.Context, service string, before []docker.Container) int {
	all, err := s.Docker.ProjectContainers(context.WithoutCancel(ctx), s.Compose.Name)
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range all {
		if c.Service != service || slices.ContainsFunc(before, func(b docker.Container) bool { return b.ID == c.ID }) {
			continue
		}
		if s.Docker.Remove(context.WithoutCancel(ctx), c.ID) == nil {
			n++
		}
	}
	return n
}

// deployedServices are the services this deploy changes: the one asked for, or all.
func (s *State) deployedServices() []string {
	if s.Opts.Service != "" {
		return []string{s.Opts.Service}
	}
	return s.Project.ServiceNames()
}

// templateImage fills the plan's image template in for the version deployed.
func (s *State) templateImage() string {
	short := s.Git.SHA[:min(7, len(s.Git.SHA))]
	return strings.NewReplacer("{sha}", s.Git.SHA, "{short}", short, "{tag}", git.ImageTag(s.Git.SHA), "{version}", s.Version).Replace(s.plan.ImageTemplate)
}

// imageOverride writes a compose file that pins services to images, to pass with
// -f after the stack's own; the caller removes it. In a dry run nothing is written.
func (s *State) imageOverride(images map[string]string) (string, error) {
	return s.overrideFile(images, nil)
}

// Restore starts the snapshot's images again: an override file pins each service
// to its snapshot tag, and compose runs with the previous version's DEPLOY_*
// variables, never building or pulling.
func (*composeTarget) Restore(ctx context.Context, s *State) error {
	if s.Strategy.Moved() { // strategy rolling: route the old containers back
		return s.Strategy.Restore(ctx, s)
	}
	return s.restoreSnapshot(ctx, s.Snapshot.Names(), s.Opts.Service != "")
}

// restoreSnapshot brings services back up on their snapshot tags (noDeps: only
// them).
func (s *State) restoreSnapshot(ctx context.Context, services []string, noDeps bool) error {
	images := map[string]string{}
	for _, svc := range services {
		images[svc] = s.Snapshot.Services[svc].Ref
	}
	override, err := s.imageOverride(images)
	if err != nil {
		return err
	}
	defer os.Remove(override)
	p := s.Compose
	p.Overrides = []string{override}
	p.Env = s.composeEnv(s.previousVersionOr(""), s.previousSHA())
	// Cancelled: started, not waited for (the job has seconds left).
	return s.Exec.Run(ctx, p.Up(compose.UpOptions{Services: services, NoDeps: noDeps, WaitTimeout: s.Opts.WaitTimeout, NoWait: s.Out.Cancelled}))
}

// restoreInPlace puts back services that strategy rolling replaced in place:
// those in the snapshot on its image, those that did not run before removed.
func (s *State) restoreInPlace(ctx context.Context, services []string) error {
	var back, gone []string
	for _, svc := range services {
		if _, ok := s.Snapshot.Services[svc]; ok {
			back = append(back, svc)
		} else {
			gone = append(gone, svc)
		}
	}
	var errs []string
	if len(back) > 0 {
		if err := s.restoreSnapshot(ctx, back, true); err != nil {
			errs = append(errs, fmt.Sprintf("putting back %s: %v", strings.Join(back, ", "), err))
		}
	}
	for _, svc := range gone {
		if n := s.removeNew(ctx, svc, nil); n > 0 {
			s.A.Logf("    removed %d container(s) of %s, which did not run before", n, svc)
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// previousVersionOr is the version that ran before, or def.
func (s *State) previousVersionOr(def string) string {
	if s.PreviousVersion != "" {
		return s.PreviousVersion
	}
	return def
}

// previousSHA is the commit of the version that ran before, from its history notes.
func (s *State) previousSHA() string {
	if s.Previous == nil {
		return ""
	}
	return s.Previous.SHA()
}

func (*composeTarget) Failing(ctx context.Context, s *State) ([]docker.Container, error) {
	all, err := s.Docker.ProjectContainers(ctx, s.Compose.Name)
	if err != nil {
		return nil, err
	}
	var failing, touched []docker.Container
	for _, c := range all {
		if s.Opts.Service != "" && c.Service != s.Opts.Service {
			continue
		}
		touched = append(touched, c)
		if c.State != "running" || c.Health == "unhealthy" || c.Health == "starting" {
			failing = append(failing, c)
		}
	}
	if len(failing) == 0 {
		return touched, nil // verify failed on healthy containers: show them all
	}
	return failing, nil
}

// Preflight: the Compose v2 plugin is installed.
// PlanDiff is built from the containers that run now (planDiff).
func (t *composeTarget) PlanDiff(ctx context.Context, s *State) (PlanDiff, error) {
	return s.planDiff(ctx)
}

func (t *composeTarget) Preflight(ctx context.Context, s *State) ([]string, error) {
	if t.version == nil {
		t.Begin(ctx, s)
	}
	if v, err := t.version(); err != nil || !strings.HasPrefix(strings.TrimPrefix(strings.TrimSpace(v), "v"), "2.") {
		return nil, action.Failedf("docker compose v2 is required (docker compose version: %q %v): install the Compose plugin", strings.TrimSpace(v), err)
	}
	return nil, nil
}

func (*composeTarget) Finish(ctx context.Context, s *State) { s.Strategy.Finish(ctx, s) }

func (*composeTarget) ManualRollback(s *State) []string {
	var cmds []string
	for _, svc := range s.Snapshot.Names() {
		img := s.Snapshot.Services[svc]
		cmds = append(cmds, fmt.Sprintf("docker tag %s %s", img.Ref, img.Image))
	}
	p := s.Compose
	p.Env, p.EnvFiles = nil, slices.Clone(p.EnvFiles)
	for i, f := range p.EnvFiles {
		if s.EnvFile != nil && f == s.EnvFile.Path {
			p.EnvFiles[i] = "<env file with your " + s.Opts.SecretPrefix + "* secrets, without the prefix>"
		}
	}
	up := compose.ManualCommand(p.Up(compose.UpOptions{Services: s.Snapshot.Names(), NoDeps: s.Opts.Service != ""}))
	vars := []string{"DEPLOY_VERSION=" + command.Quote(s.previousVersionOr(""))}
	if sha := s.previousSHA(); sha != "" {
		vars = append(vars, "DEPLOY_SHA="+sha, "DEPLOY_TAG="+git.ImageTag(sha))
	}
	vars = append(vars, "DEPLOY_ENV="+command.Quote(s.Opts.Environment))
	cmds = append(cmds, "cd "+command.Quote(filepath.Dir(s.ComposeFile))+" && "+strings.Join(vars, " ")+" "+up)
	return cmds
}
