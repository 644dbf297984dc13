package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/schema"
)

// The plan diff (docs/actions/deploy.md, step plan): before apply, what the deploy changes in
// each service, from the running containers to the compose model. Environment
// variables are compared by value but shown by name only; a healthcheck, whose
// command may hold a password, as a digest.

// PlanDiff is the plan: every service the deploy touches or removes.
type PlanDiff struct {
	Services []ServiceChange `json:"services"`
	Changes  int             `json:"changes"` // services added, removed or changed
	// Migrations the version deployed carries and the database does not have yet
	// (with migrations-path and database-url); DatabaseVersion is where it is.
	Migrations      []string `json:"migrations_pending,omitempty"`
	DatabaseVersion *uint    `json:"database_version,omitempty"`
	MigrationsNote  string   `json:"migrations_note,omitempty"` // why they were not read
	// With rehearse: what the rehearsal on a copy of production's data found.
	Rehearsal *RehearsalReport `json:"rehearsal,omitempty"`
}

// ServiceChange is one service's part of the plan.
type ServiceChange struct {
	Service     string       `json:"service"`
	Change      string       `json:"change"` // added, removed, changed, unchanged
	Image       *ImageChange `json:"image,omitempty"`
	Environment *SetChange   `json:"environment,omitempty"` // names only
	Ports       *SetChange   `json:"ports,omitempty"`
	Volumes     *SetChange   `json:"volumes,omitempty"`
	Networks    *SetChange   `json:"networks,omitempty"`
	Healthcheck *ValueChange `json:"healthcheck,omitempty"`
	Replicas    *ValueChange `json:"replicas,omitempty"`
	Limits      *ValueChange `json:"limits,omitempty"`
}

// ImageChange is the image before and after, with IDs where they are known.
type ImageChange struct {
	From   string `json:"from,omitempty"`
	FromID string `json:"from_id,omitempty"`
	To     string `json:"to"`
	ToID   string `json:"to_id,omitempty"` // or why it is not known yet
}

// SetChange lists what is added, removed and (for keyed sets) changed.
type SetChange struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Changed []string `json:"changed,omitempty"`
}

// ValueChange is a setting before and after.
type ValueChange struct{ From, To string }

// MarshalJSON writes a ValueChange as {"from": …, "to": …}.
func (v ValueChange) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"from": v.From, "to": v.To})
}

// running is what runs of one service.
type running struct {
	details docker.Details
	count   int
}

// wanted is the model's side of one service.
type wanted struct {
	image, imageID string
	env            map[string]string
	ports, mounts  []string
	networks       []string
	healthcheck    string // "" when the model leaves it to the image
	replicas       int
	nanoCPUs       int64
	memory         int64
}

// wantedOf reads the model's side of a service. image is the image it will run;
// imageID its local ID or why there is none yet.
func wantedOf(p *types.Project, svc types.ServiceConfig, image, imageID string) wanted {
	w := wanted{image: image, imageID: imageID, env: map[string]string{}, replicas: svc.GetScale()}
	for k, v := range svc.Environment {
		if v != nil {
			w.env[k] = *v
		}
	}
	for _, port := range svc.Ports {
		if port.Published != "" {
			w.ports = append(w.ports, docker.PortString(port.HostIP, port.Published, fmt.Sprint(port.Target), port.Protocol))
		}
	}
	for _, v := range svc.Volumes {
		src := v.Source
		if v.Type == types.VolumeTypeVolume {
			if vol, ok := p.Volumes[v.Source]; ok && vol.Name != "" {
				src = vol.Name
			}
		}
		w.mounts = append(w.mounts, docker.MountString(v.Type, src, v.Target))
	}
	nets := slices.Collect(maps.Keys(svc.Networks))
	if len(nets) == 0 {
		nets = []string{"default"}
	}
	for _, key := range nets {
		if n, ok := p.Networks[key]; ok && n.Name != "" {
			w.networks = append(w.networks, n.Name)
		}
	}
	if hc := svc.HealthCheck; hc != nil && !hc.Disable && len(hc.Test) > 0 {
		d := func(p *types.Duration) time.Duration {
			if p == nil {
				return 0
			}
			return time.Duration(*p)
		}
		retries := 0
		if hc.Retries != nil {
			retries = int(*hc.Retries)
		}
		w.healthcheck = docker.HealthcheckString(hc.Test, d(hc.Interval), d(hc.Timeout), retries)
	}
	if svc.Deploy != nil && svc.Deploy.Resources.Limits != nil {
		w.nanoCPUs = int64(float64(svc.Deploy.Resources.Limits.NanoCPUs) * 1e9)
		w.memory = int64(svc.Deploy.Resources.Limits.MemoryBytes)
	}
	for _, l := range [][]string{w.ports, w.mounts, w.networks} {
		slices.Sort(l)
	}
	return w
}

// diffService compares what runs (nil: nothing) with what is wanted (nil: the
// service is going away).
func diffService(name string, r *running, w *wanted) ServiceChange {
	c := ServiceChange{Service: name, Change: "changed"}
	switch {
	case r == nil:
		c.Change = "added"
		c.Image = &ImageChange{To: w.image, ToID: w.imageID}
		return c
	case w == nil:
		c.Change = "removed"
		c.Image = &ImageChange{From: r.details.Image, FromID: r.details.ImageID}
		return c
	}
	d := r.details
	if d.Image != w.image || d.ImageID != w.imageID {
		c.Image = &ImageChange{From: d.Image, FromID: d.ImageID, To: w.image, ToID: w.imageID}
	}
	have := map[string]string{}
	for _, kv := range d.Env {
		k, v, _ := strings.Cut(kv, "=")
		have[k] = v
	}
	env := &SetChange{}
	for _, k := range slices.Sorted(maps.Keys(w.env)) {
		old, ok := have[k]
		switch {
		case !ok:
			env.Added = append(env.Added, k)
		case old != w.env[k]:
			env.Changed = append(env.Changed, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := w.env[k]; !ok {
			env.Removed = append(env.Removed, k)
		}
	}
	c.Environment = orNil(env)
	c.Ports = setDiff(d.Ports, w.ports)
	c.Volumes = setDiff(d.Mounts, w.mounts)
	c.Networks = setDiff(d.Networks, w.networks)
	if w.healthcheck != "" && w.healthcheck != d.Healthcheck {
		// A healthcheck's command may carry a password (mysqladmin -p…, curl -H
		// "Authorization: …"): shown as a digest, never as text.
		c.Healthcheck = &ValueChange{From: textDigest(d.Healthcheck), To: textDigest(w.healthcheck)}
	}
	if r.count != w.replicas {
		c.Replicas = &ValueChange{From: fmt.Sprint(r.count), To: fmt.Sprint(w.replicas)}
	}
	if d.NanoCPUs != w.nanoCPUs || d.Memory != w.memory {
		c.Limits = &ValueChange{From: limits(d.NanoCPUs, d.Memory), To: limits(w.nanoCPUs, w.memory)}
	}
	if c.Image == nil && c.Environment == nil && c.Ports == nil && c.Volumes == nil && c.Networks == nil &&
		c.Healthcheck == nil && c.Replicas == nil && c.Limits == nil {
		c.Change = "unchanged"
	}
	return c
}

func setDiff(have, want []string) *SetChange {
	c := &SetChange{}
	for _, x := range want {
		if !slices.Contains(have, x) {
			c.Added = append(c.Added, x)
		}
	}
	for _, x := range have {
		if !slices.Contains(want, x) {
			c.Removed = append(c.Removed, x)
		}
	}
	return orNil(c)
}

func orNil(c *SetChange) *SetChange {
	if len(c.Added)+len(c.Removed)+len(c.Changed) == 0 {
		return nil
	}
	return c
}

func limits(nanoCPUs, memory int64) string {
	var parts []string
	if nanoCPUs > 0 {
		parts = append(parts, fmt.Sprintf("cpus %g", float64(nanoCPUs)/1e9))
	}
	if memory > 0 {
		parts = append(parts, fmt.Sprintf("memory %d MiB", memory>>20))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Markdown renders the plan for the summary and the log.
func (p PlanDiff) Markdown() string {
	var b strings.Builder
	switch {
	case len(p.Migrations) > 0:
		fmt.Fprintf(&b, "- migrations the database (at %d) does not have yet: %s\n", *p.DatabaseVersion, strings.Join(p.Migrations, ", "))
	case p.DatabaseVersion != nil:
		fmt.Fprintf(&b, "- migrations: the database (at %d) has every one this version carries\n", *p.DatabaseVersion)
	case p.MigrationsNote != "":
		fmt.Fprintf(&b, "- migrations: %s\n", p.MigrationsNote)
	}
	if r := p.Rehearsal; r != nil {
		fmt.Fprintf(&b, "- rehearsed on a copy of production's data: restore %s; this release started and passed its checks in %s", r.Restore, r.NewRelease)
		if r.Migrations != "" {
			fmt.Fprintf(&b, " (migrations: %s)", r.Migrations)
		}
		if r.LongestLock != "" {
			fmt.Fprintf(&b, "; longest lock: %s", action.Name(r.LongestLock))
		}
		if r.Running != "" {
			fmt.Fprintf(&b, "; the running release on the migrated copy in %s", r.Running)
		}
		b.WriteString("\n")
	}
	if p.Changes == 0 {
		b.WriteString("Nothing changes: every service already runs as the compose file says.\n")
		return b.String()
	}
	for _, c := range p.Services {
		if c.Change == "unchanged" {
			fmt.Fprintf(&b, "- **%s**: unchanged\n", c.Service)
			continue
		}
		fmt.Fprintf(&b, "- **%s** (%s)", c.Service, c.Change)
		var parts []string
		if im := c.Image; im != nil {
			switch c.Change {
			case "removed":
				parts = append(parts, fmt.Sprintf("ran %s (%s); it is removed", im.From, shortID(im.FromID)))
			case "added":
				parts = append(parts, fmt.Sprintf("image %s (%s)", im.To, shortID(im.ToID)))
			default:
				parts = append(parts, fmt.Sprintf("image %s (%s) → %s (%s)", im.From, shortID(im.FromID), im.To, shortID(im.ToID)))
			}
		}
		if e := c.Environment; e != nil {
			parts = append(parts, "environment "+setText(e))
		}
		for _, s := range []struct {
			name string
			c    *SetChange
		}{{"ports", c.Ports}, {"volumes", c.Volumes}, {"networks", c.Networks}} {
			if s.c != nil {
				parts = append(parts, s.name+" "+setText(s.c))
			}
		}
		for _, v := range []struct {
			name string
			c    *ValueChange
		}{{"healthcheck", c.Healthcheck}, {"replicas", c.Replicas}, {"limits", c.Limits}} {
			if v.c != nil {
				parts = append(parts, fmt.Sprintf("%s %s → %s", v.name, v.c.From, v.c.To))
			}
		}
		if len(parts) > 0 {
			b.WriteString(": " + strings.Join(parts, "; "))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// textDigest stands for a setting whose text may hold a secret: a short
// SHA-256 of it, enough to see that it changed; none when it is not set.
func textDigest(s string) string {
	if s == "" {
		return "none"
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

func setText(c *SetChange) string {
	var parts []string
	for _, p := range []struct {
		sign string
		list []string
	}{{"+", c.Added}, {"−", c.Removed}, {"~", c.Changed}} {
		for _, x := range p.list {
			parts = append(parts, p.sign+action.Name(x)) // a name may hold control characters
		}
	}
	return strings.Join(parts, " ")
}

func shortID(id string) string {
	if s, ok := strings.CutPrefix(id, "sha256:"); ok && len(s) >= 12 {
		return "sha256:" + s[:12]
	}
	if id == "" {
		return "not here yet"
	}
	return id
}

// planDiff builds the plan of a compose deploy from the engine and the model.
func (s *State) planDiff(ctx context.Context) (PlanDiff, error) {
	all, err := s.Docker.ProjectContainers(ctx, s.Compose.Name)
	if err != nil {
		return PlanDiff{}, err
	}
	runs := map[string]*running{}
	for _, c := range all {
		if c.State != "running" || c.Service == "" {
			continue
		}
		if r, ok := runs[c.Service]; ok {
			r.count++
			continue
		}
		d, err := s.Docker.Details(ctx, c.ID)
		if err != nil {
			return PlanDiff{}, fmt.Errorf("inspecting %s: %w", c.Name, err)
		}
		runs[c.Service] = &running{details: d, count: 1}
	}
	return s.diffAgainst(ctx, runs, false)
}

// swarmPlanDiff builds the plan of a swarm deploy from the stack's service specs.
// The image's digest is resolved by docker stack deploy: the same name and tag
// counts as the same image.
func (s *State) swarmPlanDiff(ctx context.Context) (PlanDiff, error) {
	services, err := s.Docker.StackServices(ctx, s.Compose.Name)
	if err != nil {
		return PlanDiff{}, err
	}
	runs := map[string]*running{}
	for _, svc := range services {
		d, replicas, err := s.Docker.ServiceDetails(ctx, svc.ID)
		if err != nil {
			return PlanDiff{}, fmt.Errorf("inspecting %s: %w", svc.Name, err)
		}
		runs[svc.Short] = &running{details: d, count: replicas}
	}
	return s.diffAgainst(ctx, runs, true)
}

// diffAgainst compares what runs, by service, with the model.
func (s *State) diffAgainst(ctx context.Context, runs map[string]*running, swarm bool) (PlanDiff, error) {
	var plan PlanDiff
	deployed := s.deployedServices()
	built := map[string]bool{} // images a service of this deploy builds
	for _, name := range deployed {
		if svc, err := s.Project.GetService(name); err == nil && svc.Build != nil && !s.Opts.PullOnly && s.plan.ImageTemplate == "" {
			built[svc.Image] = true
		}
	}
	for _, name := range deployed {
		svc, err := s.Project.GetService(name)
		if err != nil {
			return PlanDiff{}, err
		}
		image := svc.Image
		if s.plan.ImageTemplate != "" {
			image = s.templateImage()
		}
		id, err := s.Docker.ImageID(ctx, image)
		if err != nil {
			return PlanDiff{}, err
		}
		switch {
		case swarm && runs[name] != nil && runs[name].details.Image == image:
			id = runs[name].details.ImageID
		case swarm:
			id = "resolved at deploy"
		case built[image]:
			id = "built at apply"
		case id == "":
			id = "pulled at apply"
		}
		w := wantedOf(s.Project, svc, image, id)
		plan.Services = append(plan.Services, diffService(name, runs[name], &w))
	}
	if s.Opts.Service == "" { // orphans: up --remove-orphans and stack deploy --prune remove them
		for _, name := range slices.Sorted(maps.Keys(runs)) {
			if !slices.Contains(deployed, name) {
				plan.Services = append(plan.Services, diffService(name, runs[name], nil))
			}
		}
	}
	for _, c := range plan.Services {
		if c.Change != "unchanged" {
			plan.Changes++
		}
	}
	s.pendingMigrations(&plan)
	return plan, nil
}

// pendingMigrations adds the migrations the database does not have yet, when
// migrations-path and database-url say where to look.
func (s *State) pendingMigrations(plan *PlanDiff) {
	dir, url := s.Opts.MigrationsPath, s.Opts.DatabaseURL
	if dir == "" || url == "" {
		return
	}
	list, err := schema.List(filepath.Join(s.Git.Dir, dir))
	if err != nil {
		plan.MigrationsNote = fmt.Sprintf("not read: %v", err)
		return
	}
	db, err := schema.DatabaseVersion(url)
	if err != nil {
		plan.MigrationsNote = fmt.Sprintf("not read: %v", s.A.MaskString(err.Error()))
		return
	}
	if db.Dirty {
		plan.MigrationsNote = fmt.Sprintf("the database is dirty at %d: a migration failed half-way", db.Version)
		return
	}
	v := db.Version
	plan.DatabaseVersion = &v
	for _, m := range schema.Between(list, db.Version, schema.Newest(list)) {
		plan.Migrations = append(plan.Migrations, m.String())
	}
}

type planStep struct{}

func (planStep) String() string { return "plan" }

// Run shows, before apply, what the deploy changes. It never stops a deploy: a
// plan that cannot be made is a warning.
func (planStep) Run(ctx context.Context, s *State) error {
	plan, err := s.Target.PlanDiff(ctx, s)
	if err != nil {
		s.A.Warningf("the plan diff could not be made: %v", err)
		return Skip("could not be made: %v", err)
	}
	if s.rehearsal != nil {
		plan.Rehearsal = s.rehearsal.report
	}
	s.Plan = &plan
	for _, line := range strings.Split(strings.TrimRight(plan.Markdown(), "\n"), "\n") {
		s.A.Logf("    %s", line)
	}
	if plan.Changes == 0 {
		s.Did("nothing changes")
	} else {
		s.Did("%d of %d service(s) change", plan.Changes, len(plan.Services))
	}
	return nil
}
