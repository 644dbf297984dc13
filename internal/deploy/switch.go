package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/compose"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/verify"
)

// The traffic switch of strategy rolling (docs/traffic-switch.md). A proxy
// finds a service's containers by their network aliases on one network, the route
// network, asking Docker's DNS. For the deployed services:
//
//  1. create every service's new containers beside the old ones, in one
//     `docker compose up --no-start --scale`;
//  2. for each service once the services it depends on have switched, side by
//     side (rolling-parallel at most): take its new containers' aliases off the
//     route network, start them and check each one directly, at its own
//     address: its healthcheck, then health-url's path and every smoke-checks
//     path at app-port;
//  3. switch: give the new containers their aliases, then take the old ones' away
//     (same address, so their requests in flight finish), and note when;
//  4. keep the old containers running, off the alias, until the whole stack has
//     passed verify; then (Finish) wait out drain-timeout and stop them with their
//     stop_grace_period.
//
// A service with no switch (switchless: a worker, a scheduler) is replaced in
// place as recreate does, once the services it depends on and the switched
// services of its level have passed.
//
// A failure before a service's switch removes its new containers, and no
// service starts after it; a failure after a switch (a later service, verify)
// or a cancelled job switches back: every old container gets its aliases again
// first, then the new ones leave theirs and are removed; a service replaced in
// place gets its snapshot's image back. Nothing switched is recreated. A
// cancelled job (seconds: action.CancelBudget) removes nothing: it switches
// back, and what serves no request is left for the next run, which repairs
// first.

// serviceSwitch is one service's switch in progress.
type serviceSwitch struct {
	service  string
	network  string // the route network's engine name; "" when replaced in place
	old, new []placed
	routed   bool      // the new containers hold the aliases, the old ones drain
	replaced bool      // replaced in place (no route network): Restore puts the snapshot back
	passed   bool      // switched or replaced; read by the services waiting for it
	drained  time.Time // when the old ones left the alias
	level    int       // its place in depends_on order (levels)
	before   []docker.Container
	// leftover: running containers an interrupted run left off the aliases
	// (Repair): counted by compose's scale, never switched back, stopped with
	// the old ones once drained.
	leftover []docker.Container
	done     chan struct{} // closed when it passed, failed or was never started
	// How long after the switch began: its new containers were created, it
	// started (the services it waits for had passed), its new containers were
	// healthy (their healthcheck), checked (health-url and smoke at their
	// address) and switched.
	created, started, healthy, checked, switched time.Duration
}

// kept are the service's containers a failed switch keeps: those that ran
// before, and those an interrupted run left draining (the next run stops them).
func (w *serviceSwitch) kept() []docker.Container {
	return append(slices.Clone(w.before), w.leftover...)
}

// placed is a container and its endpoint on the route network as it was created.
type placed struct {
	docker.Container
	at docker.Endpoint
	// moved: the switch began to move its aliases (a new one's in, an old
	// one's out), so switching back must move them again; one not moved still
	// holds what it held before the switch.
	moved bool
}

// switchless says why a deployed service gets no switch ("" when it gets one):
// it shares another's network stack (network_mode), or route-network is set and
// it is not on that network. Nothing finds such a service by an alias the kit
// could move — a worker, a scheduler — so it is replaced in place, the way
// strategy recreate replaces it (rolling.replace).
func (s *State) switchless(name string) string {
	svc, err := s.Project.GetService(name)
	if err != nil {
		return ""
	}
	if svc.NetworkMode != "" {
		return "network_mode " + svc.NetworkMode
	}
	if want := s.Opts.RouteNetwork; want != "" && s.onNetwork(svc, want) == "" {
		return "not on " + want
	}
	return ""
}

// onNetwork is the key of svc's network whose key or engine name is want, or "".
func (s *State) onNetwork(svc types.ServiceConfig, want string) string {
	for key := range svc.Networks {
		if key == want || s.Project.Networks[key].Name == want {
			return key
		}
	}
	return ""
}

// routeNetworks picks, for each deployed service that gets a switch, the
// network its proxy finds it on (route-network, or the service's only external
// network, or its only network) and checks that the kit can switch aliases
// there without moving a container. A service with no switch (switchless) maps
// to "".
func (s *State) routeNetworks(ctx context.Context) (map[string]string, error) {
	if s.Opts.AppPort == 0 && (s.Opts.HealthURL != "" || len(s.Checks) > 0) {
		return nil, action.Usagef("strategy rolling checks each new container at its own address before it takes traffic: set app-port to the port the service listens on inside its containers")
	}
	want := s.Opts.RouteNetwork
	routes := map[string]string{}
	var elsewhere []string
	for _, name := range s.deployedServices() {
		svc, _ := s.Project.GetService(name)
		var keys, external []string
		for key := range svc.Networks {
			keys = append(keys, key)
			if s.Project.Networks[key].External {
				external = append(external, key)
			}
		}
		if len(keys) == 0 && svc.NetworkMode == "" {
			if _, ok := s.Project.Networks["default"]; ok {
				keys = []string{"default"}
			}
		}
		sort.Strings(keys)
		if why := s.switchless(name); why != "" {
			routes[name] = ""
			elsewhere = append(elsewhere, fmt.Sprintf("%s is on %s", name, cmp.Or(strings.Join(keys, ", "), "none")))
			continue
		}
		key := ""
		switch {
		case want != "":
			key = s.onNetwork(svc, want)
		case len(external) == 1:
			key = external[0]
		case len(keys) == 1:
			key = keys[0]
		default:
			return nil, action.Usagef("strategy rolling: service %s is on the networks %s; set route-network to the one your proxy finds it on (services not on it are replaced in place)", name, strings.Join(keys, ", "))
		}
		n := s.Project.Networks[key]
		if bool(n.External) && !slices.Contains(slices.Collect(maps.Values(routes)), n.Name) { // once per network
			sure, err := s.Docker.UserSubnet(ctx, n.Name)
			if err != nil {
				return nil, action.Failedf("inspecting network %s: %v", n.Name, err)
			}
			if !sure {
				s.A.Warningf("strategy rolling: the route network %s shows a gateway with its subnet, as a network with an automatic subnet does; the switch needs one created with --subnet (docker network create --subnet 172.30.0.0/24 %s). If it has none, the deploy stops before any traffic moves", n.Name, n.Name)
			}
		} else if !bool(n.External) && !slices.ContainsFunc(n.Ipam.Config, func(c *types.IPAMPool) bool { return c != nil && c.Subnet != "" }) {
			return nil, action.Usagef("strategy rolling: the route network %s of service %s has no subnet of its own, and only on such a network can the kit keep a container's address while it moves the alias: give it ipam: {config: [{subnet: …}]} in the compose file, or use an external network made with docker network create --subnet", key, name)
		}
		routes[name] = n.Name
	}
	if want != "" && len(elsewhere) == len(routes) {
		return nil, action.Usagef("input route-network: no service deployed is on the network %s (%s)", want, strings.Join(elsewhere, "; "))
	}
	return routes, nil
}

// rolling is strategy rolling: the traffic switch. It owns the route network of
// each service and the switches made so far.
type rolling struct {
	routes     map[string]string
	switches   []*serviceSwitch
	oldServing bool // failed before any switch: the old containers never stopped serving
	net        netGate
	leftovers  map[string][]docker.Container // what Repair found draining, by service
}

// reconnect is Docker.Reconnect, beside other reconnects only (netGate).
func (r *rolling) reconnect(ctx context.Context, s *State, id, network string, e docker.Endpoint) error {
	defer r.net.enter(reconnecting)()
	return s.Docker.Reconnect(ctx, id, network, e)
}

// start is Docker.Start, beside other starts only (netGate).
func (r *rolling) start(ctx context.Context, s *State, id string) error {
	defer r.net.enter(starting)()
	return s.Docker.Start(ctx, id)
}

// netGate keeps what takes any free address on a route network apart from what
// lets one go for a moment, while services switch side by side: a reconnect
// releases a container's address and asks for that same address back, and a
// start, which takes any free one, could take it in between. Reconnects ask
// only for their own addresses, so they go side by side with each other, as
// starts do; the two kinds never overlap, and a kind waiting lets no more of
// the other in.
type netGate struct {
	mu      sync.Mutex
	cond    *sync.Cond
	kind    int    // of those inside
	inside  int    // how many
	waiting [3]int // by kind
}

const (
	starting = iota + 1
	reconnecting
)

// enter waits until kind may go and returns the function that leaves.
func (g *netGate) enter(kind int) func() {
	g.mu.Lock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	other := starting + reconnecting - kind
	g.waiting[kind]++
	for g.inside > 0 && (g.kind != kind || g.waiting[other] > 0) {
		g.cond.Wait()
	}
	g.waiting[kind]--
	g.kind = kind
	g.inside++
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.inside--
		if g.inside == 0 {
			g.cond.Broadcast()
		}
		g.mu.Unlock()
	}
}

// Preflight finds each deployed service's route network.
func (r *rolling) Preflight(ctx context.Context, s *State) ([]string, error) {
	routes, err := s.routeNetworks(ctx)
	if err != nil {
		return nil, err
	}
	r.routes = routes
	var notes []string
	for _, svc := range s.deployedServices() {
		if routes[svc] == "" {
			notes = append(notes, fmt.Sprintf("%s replaced in place (%s)", svc, s.switchless(svc)))
		} else {
			notes = append(notes, fmt.Sprintf("%s switched on %s", svc, routes[svc]))
		}
	}
	return notes, nil
}

// Repair makes each switched service whole before this deploy switches it: a
// killed deploy leaves containers off the aliases (new ones it had not
// switched yet, old ones still draining, ones it created and never started).
// While at least one of a service's containers holds its aliases on the route
// network, every other container of the service goes, so the switch starts
// from what serves and adds what the service declares, not one more container
// per kill: at once when it is not running; when it is, once this run's switch
// has drained — it may have left the aliases a moment ago, and a proxy may still
// send it what it resolved before (the drain the interrupted run did not
// finish). Until then the switch counts it (compose's scale) and never puts it
// back on the aliases; a run that ends before its switch leaves it for the next.
// A service none of whose containers holds its aliases is left as it is (there
// is nothing to tell serving from leftover), and said.
func (r *rolling) Repair(ctx context.Context, s *State) ([]string, error) {
	all, err := s.Docker.ProjectContainers(ctx, s.Compose.Name)
	if err != nil {
		return nil, err
	}
	var notes []string
	for _, name := range s.deployedServices() {
		network := r.routes[name]
		if network == "" {
			continue // replaced in place: compose converges it
		}
		var serving, running, idle []docker.Container
		for _, c := range all {
			if c.Service != name {
				continue
			}
			at, ok, err := s.Docker.Endpoint(ctx, c.ID, network)
			if err != nil {
				return notes, err
			}
			switch {
			case c.State == "running" && ok && len(at.Aliases) > 0:
				serving = append(serving, c)
			case c.State == "running":
				running = append(running, c)
			default:
				idle = append(idle, c)
			}
		}
		switch {
		case len(running)+len(idle) == 0:
		case len(serving) == 0:
			notes = append(notes, fmt.Sprintf("no container of %s holds its aliases on %s: its %d container(s) kept", name, network, len(running)+len(idle)))
		default:
			grace := s.stopGrace(name)
			if len(idle) > 0 {
				if err := stopAll(ctx, s, idle, grace); err != nil {
					return notes, fmt.Errorf("removing the containers of %s off its aliases: %w", name, err)
				}
				notes = append(notes, fmt.Sprintf("removed %d container(s) of %s that an interrupted run left off its aliases, not running (%s); %d serve", len(idle), name, names(idle), len(serving)))
			}
			if len(running) > 0 {
				if r.leftovers == nil {
					r.leftovers = map[string][]docker.Container{}
				}
				r.leftovers[name] = running
				notes = append(notes, fmt.Sprintf("%d running container(s) of %s that an interrupted run left off its aliases (%s) stopped with the old ones, once drained (drain-timeout %s); %d serve", len(running), name, names(running), s.Opts.DrainTimeout, len(serving)))
			}
		}
	}
	return notes, nil
}

// stopAll stops and removes cs side by side, each with grace.
func stopAll(ctx context.Context, s *State, cs []docker.Container, grace time.Duration) error {
	var g sync.WaitGroup
	errs := make([]error, len(cs))
	for i, c := range cs {
		g.Go(func() { errs[i] = s.Docker.StopAndRemove(ctx, c.ID, grace) })
	}
	g.Wait()
	return errors.Join(errs...)
}

// names lists containers' names.
func names(cs []docker.Container) string {
	n := make([]string, len(cs))
	for i, c := range cs {
		n[i] = c.Name
	}
	return strings.Join(n, ", ")
}

func (r *rolling) Moved() bool      { return len(r.switches) > 0 }
func (r *rolling) OldServing() bool { return r.oldServing }

// Apply replaces each service's containers through the traffic switch. A
// failure (or a cancel) before any service switched or was replaced in place
// leaves the old containers serving as they were: nothing to restore, and
// restoring would recreate them (OldServing).
func (r *rolling) Apply(ctx context.Context, s *State) (err error) {
	defer func() {
		if err != nil && !slices.ContainsFunc(r.switches, func(w *serviceSwitch) bool { return w.routed || w.replaced }) {
			r.oldServing = true
		}
	}()
	pullOnly := s.Opts.PullOnly
	services := s.deployedServices()
	if !pullOnly {
		if err := s.Exec.Run(ctx, s.Compose.Build(services, s.Opts.NoCache)); err != nil {
			return fmt.Errorf("docker compose build failed: %w", err)
		}
	}
	// What the services depend on but is not deployed (the database, when service
	// names the app) is started if it is not running — a first deploy — and
	// otherwise left as it is.
	if deps := s.dependencies(services); len(deps) > 0 {
		up := compose.UpOptions{Services: deps, NoRecreate: true, PullMissing: pullOnly, WaitTimeout: s.Opts.WaitTimeout}
		if err := s.Exec.Run(ctx, s.Compose.Up(up)); err != nil {
			return fmt.Errorf("starting %s, which %s depend(s) on: %w", strings.Join(deps, ", "), strings.Join(services, ", "), err)
		}
	}
	return r.roll(ctx, s, services, pullOnly)
}

// levels orders services by depends_on among them: level 1 depends on none of
// them, level n on some of level n-1 and none later. The summary shows each
// service's level; a service replaced in place waits for the switched services
// of its level.
func (s *State) levels(services []string) [][]string {
	level := map[string]int{}
	var depth func(name string, seen map[string]bool) int
	depth = func(name string, seen map[string]bool) int {
		if l, ok := level[name]; ok {
			return l
		}
		l := 0
		if svc, err := s.Project.GetService(name); err == nil && !seen[name] {
			seen[name] = true
			for dep := range svc.DependsOn {
				if slices.Contains(services, dep) {
					l = max(l, depth(dep, seen)+1)
				}
			}
		}
		level[name] = l
		return l
	}
	var out [][]string
	for _, name := range services {
		l := depth(name, map[string]bool{})
		for len(out) <= l {
			out = append(out, nil)
		}
		out[l] = append(out[l], name)
	}
	for _, l := range out {
		sort.Strings(l)
	}
	return out
}

// Detail is each service's switch in order, for the apply row: from when the
// switch began to when its new containers were created, when it started (what
// it waits for had passed), and when its new containers were healthy, checked
// and switched — or when it was replaced in place.
func (r *rolling) Detail() string {
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	var parts []string
	for _, w := range r.switches {
		switch {
		case w.routed:
			parts = append(parts, fmt.Sprintf("%s (level %d): created %s, started %s, healthy %s, checked %s, switched %s", w.service, w.level,
				ms(w.created), ms(w.started), ms(w.healthy), ms(w.checked), ms(w.switched)))
		case w.replaced && w.passed:
			parts = append(parts, fmt.Sprintf("%s (level %d): replaced in place, started %s, healthy %s", w.service, w.level, ms(w.started), ms(w.healthy)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "switched " + strings.Join(parts, "; ")
}

// injectSecrets writes into a container created by `up --no-start` the secrets
// of its service that compose writes into containers itself (environment: and
// content: sources; file: ones are bind mounts, already there): compose does
// that only when its own up starts a container, and the switch starts the new
// ones itself. Each goes where compose puts it (/run/secrets/<target>, or the
// absolute target), with its uid, gid and mode (default 0444), through the
// Engine API: never onto the runner's disk.
func (s *State) injectSecrets(ctx context.Context, service, id string) error {
	svc, err := s.Project.GetService(service)
	if err != nil {
		return err
	}
	for _, ref := range svc.Secrets {
		def, ok := s.Project.Secrets[ref.Source]
		if !ok || bool(def.External) || (def.Environment == "" && def.Content == "") {
			continue
		}
		value := def.Content
		if value == "" {
			value = s.Project.Environment[def.Environment]
		}
		target := cmp.Or(ref.Target, ref.Source)
		if !path.IsAbs(target) {
			target = "/run/secrets/" + target
		}
		owner := docker.FileOwner{Mode: 0o444}
		if ref.Mode != nil {
			owner.Mode = os.FileMode(*ref.Mode)
		}
		owner.UID, _ = strconv.Atoi(ref.UID)
		owner.GID, _ = strconv.Atoi(ref.GID)
		if err := s.Docker.CopyFile(ctx, id, "/", strings.TrimPrefix(path.Clean(target), "/"), strings.NewReader(value), int64(len(value)), owner); err != nil {
			return fmt.Errorf("giving it the secret %s: %w", ref.Source, err)
		}
	}
	return nil
}

// dependencies are the services that services depend on (depends_on, through
// each other), which are not among them, sorted.
func (s *State) dependencies(services []string) []string {
	var deps []string
	_ = s.Project.ForEachService(services, func(name string, _ *types.ServiceConfig) error {
		if !slices.Contains(services, name) {
			deps = append(deps, name)
		}
		return nil
	}, types.IncludeDependencies)
	sort.Strings(deps)
	return deps
}

// roll is steps 1 to 3 for the deployed services: every new container created
// by one compose command, then each service started, checked and switched once
// the services it waits for have passed, side by side (rolling-parallel at
// most). After a failure no service starts; those that never started lose
// their new containers.
func (r *rolling) roll(ctx context.Context, s *State, services []string, pullOnly bool) error {
	all, err := s.Docker.ProjectContainers(ctx, s.Compose.Name)
	if err != nil {
		return err
	}
	var ws []*serviceSwitch
	up := compose.UpOptions{NoDeps: true, NoRecreate: true, PullMissing: pullOnly, NoStart: true, Scale: map[string]int{}}
	for i, level := range s.levels(services) {
		for _, name := range level {
			w := &serviceSwitch{service: name, network: r.routes[name], level: i + 1, done: make(chan struct{})}
			for _, c := range all {
				switch {
				case c.Service != name || c.State != "running":
				case slices.ContainsFunc(r.leftovers[name], func(l docker.Container) bool { return l.ID == c.ID }):
					w.leftover = append(w.leftover, c)
				default:
					w.before = append(w.before, c)
				}
			}
			ws = append(ws, w)
			if w.network == "" {
				continue // replaced in place
			}
			up.Services = append(up.Services, name)
			for _, c := range w.before {
				at, ok, err := s.Docker.Endpoint(ctx, c.ID, w.network)
				if err != nil {
					return err
				}
				if ok {
					w.old = append(w.old, placed{Container: c, at: at})
				}
			}
			if len(w.before) > 0 {
				// As many new containers as the service declares, beside the
				// ones that run: those that serve, and those an interrupted
				// run left draining (Repair).
				svc, _ := s.Project.GetService(name)
				up.Scale[name] = len(w.before) + len(w.leftover) + max(1, svc.GetScale())
			}
		}
	}
	if s.Opts.DryRun {
		if len(up.Services) > 0 {
			_ = s.Exec.Run(ctx, s.Compose.Up(up)) // a dry run's Run only prints the command
		}
		for _, w := range ws {
			if w.network == "" {
				s.A.Logf("    dry run: then replace %s in place (%s), once the services it waits for have passed:", w.service, s.switchless(w.service))
				_ = s.Exec.Run(ctx, s.Compose.Up(r.inPlace(s, w.service, pullOnly)))
				continue
			}
			s.A.Logf("    dry run: then start the new %s containers off the alias on %s, check each at its own address, give them the alias, take it from the %d old one(s), and stop those after verify and drain-timeout %s", w.service, w.network, len(w.old), s.Opts.DrainTimeout)
		}
		return nil
	}
	r.switches = ws
	began := time.Now()
	if len(up.Services) > 0 {
		if err := s.Exec.Run(ctx, s.Compose.Up(up)); err != nil {
			var errs []string
			for _, w := range ws {
				if w.network != "" {
					errs = append(errs, s.dropNew(ctx, w, fmt.Errorf("docker compose up --no-start failed: %w", err)).Error())
				}
			}
			return errors.New(strings.Join(errs, "; "))
		}
		if all, err = s.Docker.ProjectContainers(ctx, s.Compose.Name); err != nil {
			for _, w := range ws {
				if w.network != "" {
					_ = s.dropNew(ctx, w, err)
				}
			}
			return err
		}
	}
	created := time.Since(began)
	slots := make(chan struct{}, max(1, s.Opts.RollingParallel))
	var stop atomic.Bool // a service failed: no other starts
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		waits := r.waitsFor(s, w, ws)
		wg.Go(func() {
			defer close(w.done)
			blocked := ""
			for _, d := range waits {
				<-d.done
				if !d.passed && blocked == "" {
					blocked = d.service + " did not pass"
				}
			}
			if blocked == "" {
				slots <- struct{}{}
				defer func() { <-slots }()
			}
			switch {
			case blocked != "":
			case stop.Load():
				blocked = "another service did not pass"
			case ctx.Err() != nil:
				blocked = "cancelled"
			}
			if blocked != "" {
				switch {
				case w.network == "":
				case ctx.Err() != nil: // seconds left: the next run removes them
					s.A.Logf("    %s not started (%s): its new container(s) left, created and off the alias, for the next run", w.service, blocked)
				default:
					removed := s.removeNew(ctx, w.service, w.kept())
					s.A.Logf("    %s not started (%s): removed its %d new container(s)", w.service, blocked, removed)
				}
				return
			}
			w.started = time.Since(began)
			if w.network == "" {
				errs[i] = r.replace(ctx, s, w, pullOnly, began)
			} else {
				w.created = created
				errs[i] = r.switchService(ctx, s, w, all, began)
			}
			if errs[i] != nil {
				stop.Store(true)
				return
			}
			w.passed = true
		})
	}
	wg.Wait()
	var failed []string
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return ctx.Err()
}

// waitsFor are the switches w starts after: those of the deployed services it
// depends on and, when it is replaced in place, the switched ones of its level.
func (r *rolling) waitsFor(s *State, w *serviceSwitch, ws []*serviceSwitch) []*serviceSwitch {
	svc, _ := s.Project.GetService(w.service)
	var out []*serviceSwitch
	for _, o := range ws {
		_, dep := svc.DependsOn[o.service]
		if dep || (w.network == "" && o.network != "" && o.level == w.level) {
			out = append(out, o)
		}
	}
	return out
}

// inPlace is the compose command that replaces a switchless service in place.
func (r *rolling) inPlace(s *State, service string, pullOnly bool) compose.UpOptions {
	return compose.UpOptions{Services: []string{service}, NoDeps: true, PullMissing: pullOnly, WaitTimeout: s.Opts.WaitTimeout}
}

// replace replaces a switchless service's containers in place, as strategy
// recreate does, and waits for them to be healthy; Restore puts the snapshot's
// image back if the deploy fails later (or this does).
func (r *rolling) replace(ctx context.Context, s *State, w *serviceSwitch, pullOnly bool, began time.Time) error {
	w.replaced = true
	if err := s.Exec.Run(ctx, s.Compose.Up(r.inPlace(s, w.service, pullOnly))); err != nil {
		return fmt.Errorf("replacing %s in place (%s): %w", w.service, s.switchless(w.service), err)
	}
	w.healthy = time.Since(began)
	s.A.Logf("    replaced %s in place (%s)", w.service, s.switchless(w.service))
	return nil
}

// switchService takes a service's new containers (those of all that were not
// running before) off the alias before they start, gives them their secrets,
// starts them, checks each at its own address, and switches. A failure
// before the switch removes them. Services run it side by side (roll).
func (r *rolling) switchService(ctx context.Context, s *State, w *serviceSwitch, all []docker.Container, began time.Time) error {
	name := w.service
	for _, c := range all {
		there := func(b docker.Container) bool { return b.ID == c.ID }
		if c.Service != name || slices.ContainsFunc(w.before, there) || slices.ContainsFunc(w.leftover, there) {
			continue
		}
		at, _, err := s.Docker.Endpoint(ctx, c.ID, w.network)
		if err == nil {
			w.new = append(w.new, placed{Container: c, at: at})
			// Off the alias before it ever starts: no request reaches it yet.
			err = r.reconnect(ctx, s, c.ID, w.network, docker.Endpoint{})
		}
		if err != nil {
			return s.dropNew(ctx, w, err)
		}
	}
	for i := range w.new {
		n := &w.new[i]
		if err := s.injectSecrets(ctx, name, n.ID); err != nil {
			return s.dropNew(ctx, w, fmt.Errorf("%s: %w", n.Name, err))
		}
		if err := r.start(ctx, s, n.ID); err != nil {
			return s.dropNew(ctx, w, fmt.Errorf("starting %s: %w", n.Name, err))
		}
	}
	for i := range w.new {
		n := &w.new[i]
		if err := s.Docker.WaitHealthy(ctx, n.ID, s.Opts.WaitTimeout); err != nil {
			return s.dropNew(ctx, w, fmt.Errorf("%s: %w", n.Name, err))
		}
	}
	w.healthy = time.Since(began)
	for i := range w.new {
		n := &w.new[i]
		if err := s.checkDirect(ctx, n, w.network); err != nil {
			return s.dropNew(ctx, w, fmt.Errorf("%s: %w", n.Name, err))
		}
	}
	w.checked = time.Since(began)
	// The switch: new containers take the aliases, then the old ones leave them,
	// each keeping its address. Once one new container holds them, the
	// service is routed: what fails from then on is switched back (Restore),
	// never removed under the requests it answers.
	for i := range w.new {
		n := &w.new[i]
		if err := ctx.Err(); err != nil {
			if !w.routed {
				return s.dropNew(ctx, w, err)
			}
			return fmt.Errorf("giving %s the alias: %w", n.Name, err)
		}
		if err := r.reconnect(ctx, s, n.ID, w.network, n.at); err != nil {
			// It did not get the alias (it may be off the network): with no
			// new container on the alias yet, this is a failure before the
			// switch.
			if !w.routed {
				return s.dropNew(ctx, w, err)
			}
			n.moved = true
			return fmt.Errorf("giving %s the alias: %w", n.Name, err)
		}
		n.moved, w.routed = true, true
	}
	for i := range w.old {
		o := &w.old[i]
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("taking %s off the alias: %w", o.Name, err)
		}
		o.moved = true
		if err := r.reconnect(ctx, s, o.ID, w.network, docker.Endpoint{IP: o.at.IP}); err != nil {
			return fmt.Errorf("taking %s off the alias: %w", o.Name, err)
		}
	}
	w.drained = time.Now()
	w.switched = time.Since(began)
	aliases := "its aliases"
	if len(w.new) > 0 && len(w.new[0].at.Aliases) > 0 {
		aliases = strings.Join(w.new[0].at.Aliases, ", ")
	}
	s.A.Logf("    switched %s on %s (%s): %d new container(s) in, %d old draining until verify has passed", name, w.network, aliases, len(w.new), len(w.old))
	return nil
}

// checkDirect asks a new container, healthy, for health-url's path and every
// smoke-checks path at its own address and app-port.
func (s *State) checkDirect(ctx context.Context, n *placed, network string) error {
	at, _, err := s.Docker.Endpoint(ctx, n.ID, network)
	if err != nil {
		return err
	}
	n.at.IP = at.IP
	port := s.Opts.AppPort
	if port == 0 {
		return nil
	}
	return s.checkApp(ctx, "http://"+net.JoinHostPort(at.IP, strconv.Itoa(port)))
}

// checkApp asks the app at base (http://<address>:<app-port>) for health-url's
// path, then every smoke-checks path: how strategy rolling checks a new
// container before it takes traffic, and the rehearsal a service of its copy.
func (s *State) checkApp(ctx context.Context, base string) error {
	ctx = s.fromHost(ctx)
	health := ""
	if s.Opts.HealthURL != "" {
		u, err := url.Parse(s.Opts.HealthURL)
		if err != nil {
			return err
		}
		health = base + u.RequestURI()
	}
	_, err := s.checkAt(ctx, health, base, nil)
	return err
}

// fromHost is ctx for checks at a container's own address: from a runner
// elsewhere, made from the Docker host over the run's SSH connection (the
// runner has no route to the host's container networks).
func (s *State) fromHost(ctx context.Context) context.Context {
	if s.Remote == nil {
		return ctx
	}
	return verify.From(ctx, s.Remote.DialContext)
}

// dropNew removes a service's new containers after a failure before its switch
// and returns why. A cancelled job leaves them (off the aliases, they take no
// request) for the next run, which repairs first: its seconds go to what
// serves (action.CancelBudget).
func (s *State) dropNew(ctx context.Context, w *serviceSwitch, why error) error {
	if strings.Contains(why.Error(), "user configured subnets") {
		why = fmt.Errorf("%w (the route network %s needs a subnet of its own: docker network create --subnet …)", why, w.network)
	}
	if ctx.Err() != nil {
		left := len(w.new)
		w.new = nil
		return fmt.Errorf("the new %s containers did not pass (%w); %d new container(s) left off the alias for the next run, the old ones kept serving", w.service, why, left)
	}
	removed := s.removeNew(ctx, w.service, w.kept())
	w.new = nil
	return fmt.Errorf("the new %s containers did not pass (%w); removed %d new container(s), the old ones kept serving", w.service, why, removed)
}

// Restore undoes the switches, services side by side (rolling-parallel at a
// time), in two passes: first every old container that left its aliases gets
// them back, then every new one that took them leaves them (keeping its
// address, so what it is answering finishes), and after drain-timeout the new
// ones are stopped with their stop_grace_period and removed. Between the
// passes old and new serve side by side, so a deadline that ends the second
// (a cancelled job's seconds) leaves no alias empty and no service on the
// release that failed alone. The alias is never empty: a service whose old
// containers did not get it back keeps its new ones on it, and the error says
// so. Services replaced in place get the snapshot's image back (or, new in
// this release, lose their containers).
func (r *rolling) Restore(ctx context.Context, s *State) error {
	var mu sync.Mutex
	var errs []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Sprintf(format, args...))
	}
	var routed []*serviceSwitch
	for _, w := range r.switches {
		if w.routed {
			routed = append(routed, w)
		}
	}
	back := r.sideBySide(s, routed, func(w *serviceSwitch) error {
		for i := range w.old {
			if o := &w.old[i]; o.moved {
				if err := s.Docker.Reconnect(ctx, o.ID, w.network, o.at); err != nil {
					return fmt.Errorf("%s: %w; %s keeps its new container(s) on the alias, its old ones did not get it back", o.Name, err, w.service)
				}
				o.moved = false
			}
		}
		return nil
	}, fail)
	leaving := r.sideBySide(s, back, func(w *serviceSwitch) error {
		for i := range w.new {
			if n := &w.new[i]; n.moved {
				if err := s.Docker.Reconnect(ctx, n.ID, w.network, docker.Endpoint{IP: n.at.IP}); err != nil {
					return fmt.Errorf("%s: %w; it serves beside %s's old container(s), the next run takes both off the alias", n.Name, err, w.service)
				}
				n.moved = false
			}
		}
		return nil
	}, fail)
	if s.Out.Cancelled {
		// A cancelled job has seconds (action.CancelBudget): the old containers
		// serve again, the new ones are off the aliases and are left for the
		// next run, which repairs first; what was replaced in place is started
		// again on its snapshot's image, not waited for.
		restored := len(leaving)
		var inPlace []string
		for _, w := range r.switches {
			if w.replaced {
				inPlace = append(inPlace, w.service)
				restored++
			}
		}
		if err := s.restoreInPlace(ctx, inPlace); err != nil {
			errs = append(errs, err.Error())
		}
		r.switches = slices.DeleteFunc(r.switches, func(w *serviceSwitch) bool { return slices.Contains(leaving, w) || w.replaced })
		if len(errs) > 0 {
			return fmt.Errorf("switching back: %s", strings.Join(errs, "; "))
		}
		s.A.Logf("    switched %d service(s) back to the containers that ran before; their new containers are left for the next run", restored)
		return nil
	}
	if len(leaving) > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(s.Opts.DrainTimeout):
		}
	}
	// Stopped, not killed: a request a new container took before the switch
	// back and still answers after the drain (a slow one, or a busy host)
	// finishes within the service's stop_grace_period.
	var wg sync.WaitGroup
	slots := make(chan struct{}, max(1, s.Opts.RollingParallel))
	restored := len(leaving)
	var inPlace []string
	for _, w := range r.switches {
		if w.routed && !slices.Contains(leaving, w) {
			continue // still serving: kept
		}
		grace := s.stopGrace(w.service)
		for _, n := range w.new {
			wg.Go(func() {
				slots <- struct{}{}
				defer func() { <-slots }()
				if err := s.Docker.StopAndRemove(context.WithoutCancel(ctx), n.ID, grace); err != nil {
					fail("removing %s: %v", n.Name, err)
				}
			})
		}
		if w.replaced {
			inPlace = append(inPlace, w.service)
			restored++
		}
	}
	wg.Wait()
	if err := s.restoreInPlace(ctx, inPlace); err != nil {
		errs = append(errs, err.Error())
	}
	r.switches = nil
	if len(errs) > 0 {
		return fmt.Errorf("switching back: %s", strings.Join(errs, "; "))
	}
	s.A.Logf("    switched %d service(s) back to the containers that ran before", restored)
	return nil
}

// sideBySide runs undo for each of ws, rolling-parallel at a time, and returns
// those it undid, in order; what it could not undo, it tells fail.
func (r *rolling) sideBySide(s *State, ws []*serviceSwitch, undo func(*serviceSwitch) error, fail func(string, ...any)) []*serviceSwitch {
	slots := make(chan struct{}, max(1, s.Opts.RollingParallel))
	done := make([]bool, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			if err := undo(w); err != nil {
				fail("%v", err)
				return
			}
			done[i] = true
		})
	}
	wg.Wait()
	var ok []*serviceSwitch
	for i, w := range ws {
		if done[i] {
			ok = append(ok, w)
		}
	}
	return ok
}

// Verify, once the deploy's checks have passed, waits until drain-timeout has passed
// since the old containers left the alias — by then a proxy sees only the new
// ones — and asks health-url again through the proxy: Docker's DNS has been seen
// to lose an alias a reconnect gave (moby/moby#24322, #37376), which would leave
// the proxy with no container once the old ones stop. If the proxy cannot reach
// them, the aliases are given again once; if it still cannot, verify fails and the
// deploy switches back to the old containers, which are still running.
func (r *rolling) Verify(ctx context.Context, s *State) error {
	health := s.Opts.HealthURL
	if len(r.switches) == 0 || health == "" {
		return nil
	}
	drain := s.Opts.DrainTimeout
	for _, w := range r.switches {
		if wait := drain - time.Since(w.drained); wait > 0 && len(w.old) > 0 {
			s.A.Logf("    draining the old %s containers for %s", w.service, wait.Round(time.Millisecond))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
	}
	logf := func(format string, args ...any) { s.A.Logf("    "+format, args...) }
	b := proxyRecheck
	err := verify.Health(ctx, health, b, logf)
	if err == nil {
		s.AddDetail("after drain-timeout the proxy reaches the new containers")
		return nil
	}
	if verify.Unreachable(err) {
		// Nothing answers at health-url at all: no alias can mend that.
		return fmt.Errorf("after the switch %w: is health-url the proxy's address as the runner reaches it?", err)
	}
	s.A.Warningf("after the switch the proxy does not reach the new containers (%v): giving them their aliases again", err)
	if rerr := r.giveAliases(ctx, s); rerr != nil {
		return fmt.Errorf("after the switch the proxy does not reach the new containers (%v), and %w", err, rerr)
	}
	if err := verify.Health(ctx, health, b, logf); err != nil {
		return fmt.Errorf("after the switch the proxy does not reach the new containers, even with their aliases given again: %w", err)
	}
	s.AddDetail("the proxy reaches the new containers after their aliases were given again")
	return nil
}

// proxyRecheck is how Verify asks health-url again after the drain.
var proxyRecheck = verify.Backoff{Attempts: 3, InitialDelay: time.Second, MaxDelay: 2 * time.Second}

// giveAliases gives every switched service's new containers their aliases
// again, as the switch gave them.
func (r *rolling) giveAliases(ctx context.Context, s *State) error {
	for _, w := range r.switches {
		if !w.routed {
			continue
		}
		for _, n := range w.new {
			if err := s.Docker.Reconnect(ctx, n.ID, w.network, n.at); err != nil {
				return fmt.Errorf("giving %s its aliases again failed: %w", n.Name, err)
			}
		}
	}
	return nil
}

// mendAliases is the Retry of the deploy's health check through the proxy
// after a switch: when its second attempt has failed too, the new containers
// get their aliases again, once (Docker's DNS can lose an alias a reconnect
// gave, see Verify; a proxy that finds no container would fail every attempt
// left). The new containers passed the same check at their own address before
// the switch.
func (r *rolling) mendAliases(ctx context.Context, s *State) func(int, bool) {
	if !r.Moved() {
		return nil
	}
	return func(attempt int, answered bool) {
		if attempt != 2 || !answered {
			return // nothing answers at health-url at all: no alias can mend that
		}
		s.A.Warningf("the proxy does not reach the new containers after the switch, which answered at their own address: giving them their aliases again")
		if err := r.giveAliases(ctx, s); err != nil {
			s.A.Warningf("%v", err)
		}
	}
}

// Finish stops the old containers once the deploy has been verified (and
// drained, see Verify), each with its stop_grace_period. Every service's old
// containers drain drain-timeout from their own switch and are stopped then,
// side by side with the others' drains: a service switched early is gone
// while the last one still drains.
func (r *rolling) Finish(ctx context.Context, s *State) {
	slots := make(chan struct{}, max(1, s.Opts.RollingParallel))
	var wg sync.WaitGroup
	for _, w := range r.switches {
		// The old containers, and those an interrupted run left draining
		// (Repair), off the aliases since before the switch.
		old := slices.Clone(w.leftover)
		for _, o := range w.old {
			old = append(old, o.Container)
		}
		if len(old) == 0 {
			continue
		}
		grace := s.stopGrace(w.service)
		drained := w.drained.Add(s.Opts.DrainTimeout)
		if wait := time.Until(drained); wait > 0 {
			s.A.Logf("    draining the old %s containers for %s more", w.service, wait.Round(time.Millisecond))
		}
		for _, o := range old {
			wg.Go(func() {
				time.Sleep(time.Until(drained)) // even when cancelled: the deploy was verified, the old ones must finish
				slots <- struct{}{}
				defer func() { <-slots }()
				s.A.Logf("    stopping old %s (grace %s)", o.Name, grace)
				if err := s.Docker.StopAndRemove(context.WithoutCancel(ctx), o.ID, grace); err != nil {
					s.A.Warningf("stopping the old container %s: %v (it is off the alias; remove it by hand)", o.Name, err)
				}
			})
		}
	}
	wg.Wait()
	r.switches = nil
}

// stopGrace is how long a service's containers get to finish what they are
// answering when stopped: its stop_grace_period, or Docker's 10 s.
func (s *State) stopGrace(service string) time.Duration {
	if svc, err := s.Project.GetService(service); err == nil && svc.StopGracePeriod != nil {
		return time.Duration(*svc.StopGracePeriod)
	}
	return 10 * time.Second
}

// cancelledSwitchStep switches a cancelled rolling deploy back (shown as the
// rollback row of the summary).
type cancelledSwitchStep struct{}

func (cancelledSwitchStep) String() string { return "rollback" }

func (cancelledSwitchStep) Run(ctx context.Context, s *State) error {
	if err := s.Strategy.Restore(ctx, s); err != nil {
		s.Out.RollbackErr = err
		return action.Failedf("cancelled: %v", err)
	}
	s.Out.RolledBack = true
	s.Did("cancelled: the containers that ran before have their aliases back; the new ones are left for the next run to remove")
	return nil
}

// Fits refuses services that cannot run twice at once, which the switch
// needs (rollingFits); a service replaced in place (switchless) may.
func (r *rolling) Fits(s *State, p *types.Project, services []string) error {
	switched := slices.DeleteFunc(slices.Clone(services), func(name string) bool { return s.switchless(name) != "" })
	return rollingFits(p, switched)
}

// CheckRetry gives the new containers their aliases again between the
// deploy's health check attempts (mendAliases).
func (r *rolling) CheckRetry(ctx context.Context, s *State) func(int, bool) {
	return r.mendAliases(ctx, s)
}

// Rehearsed: each switched service is checked at its container's address in
// the copy, as the switch checks a new container before it takes traffic.
func (r *rolling) Rehearsed(s *State, db string) ([]string, bool) {
	direct := []string{}
	for _, name := range s.deployedServices() {
		if name != db && s.switchless(name) == "" {
			direct = append(direct, name)
		}
	}
	return direct, true
}
