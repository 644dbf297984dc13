package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/command/commandtest"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/verify"
)

// switchEngine is the fake engine of a rolling deploy: each service of the
// stack runs one container (<service>-old); after the compose command that
// creates them, each switched service has one more (<service>-new). Every
// call is one line of events, in the order made, commands included.
type switchEngine struct {
	*fakeEngine
	mu        sync.Mutex
	events    []string
	created   bool
	unhealthy map[string]bool // containers whose healthcheck fails
	failAfter string          // … once an event containing this was made
	noConnect map[string]bool // containers a reconnect fails for
	services  []string
	switched  []string
	log       *bytes.Buffer // the deploy's log
	// cancel is called once the cancelAtth event (the first when 0)
	// containing one of cancelAfter's |-separated parts was made: a job
	// cancelled at that point, or a deadline that ends there.
	cancelAfter string
	cancelAt    int
	cancel      context.CancelFunc
	held        map[string]bool // containers whose healthcheck never ends: WaitHealthy waits for the cancel
	buildErr    error           // what docker compose build fails with
}

func (f *switchEngine) event(s ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := strings.Join(s, " ")
	f.events = append(f.events, e)
	if f.cancelAfter != "" && slices.ContainsFunc(strings.Split(f.cancelAfter, "|"), func(part string) bool { return strings.Contains(e, part) }) {
		if f.cancelAt--; f.cancelAt <= 0 {
			f.cancel()
		}
	}
}

func (f *switchEngine) ProjectContainers(context.Context, string) ([]docker.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []docker.Container
	for _, svc := range f.services {
		out = append(out, docker.Container{ID: svc + "-old", Name: svc + "-old", Service: svc, State: "running", ImageID: "sha256:" + svc})
		if f.created && slices.Contains(f.switched, svc) {
			out = append(out, docker.Container{ID: svc + "-new", Name: svc + "-new", Service: svc, State: "created"})
		}
	}
	return out, nil
}

func (f *switchEngine) Endpoint(_ context.Context, id, network string) (docker.Endpoint, bool, error) {
	return docker.Endpoint{IP: "10.0.0." + id, Aliases: []string{strings.Split(id, "-")[0]}}, true, nil
}

// Reconnect, as the engine's, starts only while ctx lasts.
func (f *switchEngine) Reconnect(ctx context.Context, id, network string, e docker.Endpoint) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not reconnecting %s: %w", id, err)
	}
	f.event("reconnect", id, network, fmt.Sprint(e.Aliases))
	if f.noConnect[id] {
		return errors.New("the engine refused")
	}
	return nil
}

func (f *switchEngine) Start(_ context.Context, id string) error {
	f.event("start", id)
	return nil
}

func (f *switchEngine) WaitHealthy(ctx context.Context, id string, _ time.Duration) error {
	if f.held[id] {
		<-ctx.Done() // held starting until the job is cancelled
		return ctx.Err()
	}
	if f.unhealthy[id] {
		for f.failAfter != "" {
			f.mu.Lock()
			seen := index(f.events, f.failAfter) >= 0
			f.mu.Unlock()
			if seen {
				break
			}
			time.Sleep(time.Millisecond)
		}
		return errors.New("its healthcheck failed")
	}
	return nil
}

func (f *switchEngine) Remove(_ context.Context, id string) error {
	f.event("remove", id)
	return nil
}

// StopAndRemove is how the old containers go after a verified deploy, and the
// new ones after a switch back: with their grace.
func (f *switchEngine) StopAndRemove(_ context.Context, id string, grace time.Duration) error {
	f.event("stop", id, grace.String())
	return nil
}

// switchExec is the seam's recorder whose commands go into the engine's events
// too, and whose compose up --no-start makes the new containers.
type switchExec struct {
	*commandtest.Recorder
	f *switchEngine
}

func (x switchExec) Run(ctx context.Context, c command.Cmd) error {
	argv := strings.Join(c.Argv, " ")
	if strings.Contains(argv, " build ") && x.f.buildErr != nil {
		x.f.event("compose build")
		return x.f.buildErr
	}
	i := strings.Index(argv, " up ")
	if i < 0 {
		return x.Recorder.Run(ctx, c)
	}
	x.f.event("compose" + argv[i:])
	if strings.Contains(argv, "--no-start") {
		x.f.mu.Lock()
		x.f.created = true
		x.f.mu.Unlock()
	}
	return x.Recorder.Run(ctx, c)
}

// rollingSeam is a stack of db, api (depends on db), web (on api), worker (on
// db, not on the route network) and cron (not on it): strategy rolling with
// route-network edge, its preflight done, on a switchEngine.
func rollingSeam(t *testing.T, parallel int) (*State, *switchEngine) {
	t.Helper()
	sm := newSeam(t)
	img := "    image: registry.example.com/shop:${DEPLOY_TAG}\n"
	edge := "    networks: [edge, default]\n"
	require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "compose.yaml"), []byte("name: shop\nservices:\n"+
		"  web:\n"+img+edge+"    depends_on: [api]\n  api:\n"+img+edge+"    depends_on: [db]\n  db:\n"+img+edge+
		"  worker:\n"+img+"    depends_on: [db]\n  cron:\n"+img+
		"networks:\n  edge: {external: true, name: edge}\n"), 0o644))
	o := DefaultOptions()
	o.Strategy, o.RouteNetwork, o.AppPort, o.RollingParallel = "rolling", "edge", 0, parallel
	o.HealthURL, o.SmokeBaseURL, o.SmokeChecks = "", "", nil
	s := sm.state(t, o)
	s.Runner.Logf = func(string, ...any) {}
	f := &switchEngine{fakeEngine: sm.engine, unhealthy: map[string]bool{},
		services: []string{"api", "cron", "db", "web", "worker"}, switched: []string{"api", "db", "web"}, log: &sm.log}
	s.Docker = f
	require.NoError(t, s.One(context.Background(), PreflightStep, s))
	s.Exec = switchExec{Recorder: sm.exec, f: f}
	s.Snapshot = Snapshot{Services: map[string]ServiceImage{}}
	for _, svc := range f.services {
		s.Snapshot.Services[svc] = ServiceImage{Image: "registry.example.com/shop:old", ImageID: "sha256:" + svc, Ref: "deploykit-snapshot/shop-" + svc + ":" + svc}
	}
	return s, f
}

// index is where the first event containing what is, or -1.
func index(events []string, what string) int {
	return slices.IndexFunc(events, func(e string) bool { return strings.Contains(e, what) })
}

// TestSeamRollingWaitsOnlyForDependencies: every new container is created by
// one compose command; a service starts once the services it depends on have
// switched (api after db, web after api), and a service with no route network
// is replaced in place (compose up --wait) once the services it depends on and
// the switched ones of its level have passed. The apply row shows each.
func TestSeamRollingWaitsOnlyForDependencies(t *testing.T) {
	s, f := rollingSeam(t, 4)
	notes, err := s.Strategy.Preflight(context.Background(), s)
	require.NoError(t, err)
	assert.Equal(t, []string{"api switched on edge", "cron replaced in place (not on edge)", "db switched on edge", "web switched on edge", "worker replaced in place (not on edge)"}, notes)
	require.NoError(t, s.Strategy.Apply(context.Background(), s))
	ev := f.events
	creates := slices.DeleteFunc(slices.Clone(ev), func(e string) bool { return !strings.Contains(e, "--no-start") })
	assert.Equal(t, []string{"compose up --no-start --remove-orphans --no-build --pull never --no-deps --no-recreate --scale api=2 --scale db=2 --scale web=2 db api web"}, creates, "one command creates every new container")
	switchedTo := func(svc string) int { return index(ev, "reconnect "+svc+"-new edge ["+svc+"]") }
	for _, step := range []struct{ after, before string }{
		{"reconnect db-new edge [db]", "start api-new"},
		{"reconnect api-new edge [api]", "start web-new"},
		{"reconnect db-new edge [db]", "compose up -d --wait"},
	} {
		assert.Less(t, index(ev, step.after), index(ev, step.before), "%s before %s: %v", step.after, step.before, ev)
	}
	assert.Less(t, switchedTo("api"), index(ev, "--no-deps worker"), "worker (level 2) waits for api, switched on its level")
	assert.Less(t, switchedTo("db"), index(ev, "--no-deps cron"), "cron (level 1) waits for db")
	assert.Equal(t, -1, index(ev, "start worker"), "replaced in place, not switched")
	assert.False(t, slices.ContainsFunc(ev, func(e string) bool { return strings.HasPrefix(e, "remove ") }), "nothing removed: %v", ev)
	assert.Regexp(t, `^switched cron \(level 1\): replaced in place, started \S+, healthy \S+; db \(level 1\): created \S+, started \S+, healthy \S+, checked \S+, switched \S+; api \(level 2\): .*; worker \(level 2\): replaced in place, .*; web \(level 3\): created `, s.Strategy.Detail())
}

// TestSeamRollingStopsAtAFailure: when api's new container fails its
// healthcheck (after cron, beside it, was replaced), what waits for it never
// starts (web; worker, replaced in place after api's level) and loses its new
// containers; the switch back then gives db's old container its alias first and
// puts cron, replaced in place, back on its snapshot's image.
func TestSeamRollingStopsAtAFailure(t *testing.T) {
	s, f := rollingSeam(t, 2)
	f.unhealthy["api-new"], f.failAfter = true, "--no-deps cron"
	err := s.Strategy.Apply(context.Background(), s)
	require.Error(t, err)
	assert.Equal(t, "the new api containers did not pass (api-new: its healthcheck failed); removed 1 new container(s), the old ones kept serving", err.Error())
	ev := f.events
	assert.Equal(t, -1, index(ev, "start web-new"))
	assert.Equal(t, -1, index(ev, "--no-deps worker"))
	assert.NotEqual(t, -1, index(ev, "remove web-new"), "web's new container removed: %v", ev)
	assert.NotEqual(t, -1, index(ev, "remove api-new"))
	assert.True(t, s.Strategy.Moved())
	assert.False(t, s.Strategy.OldServing(), "db was switched and cron replaced")

	f.events = nil
	s.Opts.DrainTimeout = 0
	require.NoError(t, s.Strategy.Restore(context.Background(), s))
	ev = f.events
	assert.Less(t, index(ev, "reconnect db-old edge [db]"), index(ev, "reconnect db-new edge []"), "old first: %v", ev)
	assert.Less(t, index(ev, "reconnect db-new edge []"), index(ev, "stop db-new 10s"), "stopped with its grace once off the alias, never killed: %v", ev)
	assert.Equal(t, -1, index(ev, "remove db-new"), "never killed: %v", ev)
	assert.Regexp(t, `compose up -d --wait --remove-orphans --wait-timeout \d+ --no-build --pull never --no-deps cron$`, ev[len(ev)-1], "cron back on its snapshot: %v", ev)
	assert.Equal(t, -1, index(ev, "worker"), "worker never changed")
}

// TestSeamRollingSwitchBackKeepsAnAliasHeld: when an old container cannot get
// its alias back, its service's new containers keep theirs and keep running,
// the error names both; the other services switch back and lose their new ones.
func TestSeamRollingSwitchBackKeepsAnAliasHeld(t *testing.T) {
	s, f := rollingSeam(t, 4)
	require.NoError(t, s.Strategy.Apply(context.Background(), s))
	f.events, f.noConnect = nil, map[string]bool{"api-old": true}
	s.Opts.DrainTimeout = 0
	err := s.Strategy.Restore(context.Background(), s)
	require.Error(t, err)
	assert.Equal(t, "switching back: api-old: the engine refused; api keeps its new container(s) on the alias, its old ones did not get it back", err.Error())
	ev := f.events
	assert.Equal(t, -1, index(ev, "reconnect api-new"), "api's new container keeps its alias: %v", ev)
	assert.Equal(t, -1, index(ev, "stop api-new"), "and keeps running: %v", ev)
	for _, svc := range []string{"db", "web"} {
		assert.Less(t, index(ev, "reconnect "+svc+"-old edge ["+svc+"]"), index(ev, "reconnect "+svc+"-new edge []"), "old first: %v", ev)
		assert.Less(t, index(ev, "reconnect "+svc+"-new edge []"), index(ev, "stop "+svc+"-new 10s"), ev)
	}
}

// TestSeamRollingCancelLeavesWhatDoesNotServe: a job cancelled while api's new
// container starts (db has switched, cron was replaced in place) removes nothing: api's and web's new
// containers, off the aliases, are left for the next run, so that the
// cancelled job's seconds go to switching db back, which gives db's old
// container its alias and takes the new one's away, and stops nothing.
func TestSeamRollingCancelLeavesWhatDoesNotServe(t *testing.T) {
	s, f := rollingSeam(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancelled once api's new container started (it never gets healthy) and
	// cron, beside db on its level, was replaced.
	f.cancelAfter, f.cancelAt, f.cancel, f.held = "start api-new|--no-deps cron", 2, cancel, map[string]bool{"api-new": true}
	err := s.Strategy.Apply(ctx, s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the new api containers did not pass (api-new: context canceled); 1 new container(s) left off the alias for the next run, the old ones kept serving")
	ev := f.events
	assert.False(t, slices.ContainsFunc(ev, func(e string) bool { return strings.HasPrefix(e, "remove ") }), "nothing removed: %v", ev)
	assert.Equal(t, -1, index(ev, "start web-new"), "nothing started after the cancel: %v", ev)
	assert.Contains(t, f.log.String(), "web not started (api did not pass): its new container(s) left, created and off the alias, for the next run")
	assert.True(t, s.Strategy.Moved())

	f.events, f.cancelAfter = nil, ""
	s.Out.Cancelled = true
	back, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	require.NoError(t, s.Strategy.Restore(back, s))
	assert.Equal(t, []string{"reconnect db-old edge [db]", "reconnect db-new edge []", "compose up -d --remove-orphans --no-build --pull never --no-deps cron"}, f.events,
		"db switched back, cron (replaced in place beside it) started on its snapshot, not waited for; nothing stopped")
}

// TestSeamRollingBuildFailureRestartsNothing: a rolling deploy whose build
// fails (or is cancelled) has switched nothing: the old containers serve as
// they did, and the rollback leaves them be — restoring the snapshot would
// recreate them under their requests.
func TestSeamRollingBuildFailureRestartsNothing(t *testing.T) {
	s, f := rollingSeam(t, 4)
	f.buildErr = context.Canceled
	s.Out.FailedErr = s.Strategy.Apply(context.Background(), s)
	require.ErrorIs(t, s.Out.FailedErr, context.Canceled)
	assert.True(t, s.Strategy.OldServing())
	s.Out.FailedStep, s.Opts.AutoRollback = "apply", true
	err := rollbackStep{}.Run(context.Background(), s)
	require.Error(t, err)
	assert.Equal(t, "nothing switched: the old containers never stopped serving", err.Error())
	assert.Equal(t, []string{"compose build"}, f.events, "nothing but the build")
}

// TestSeamRollingSwitchBackOldFirstEverywhere: the switch back gives every
// service's old containers their aliases before any new one leaves its own; a
// deadline that ends in between (a cancelled job's seconds) leaves the new
// ones serving beside the old, never an alias empty, and says so.
func TestSeamRollingSwitchBackOldFirstEverywhere(t *testing.T) {
	s, f := rollingSeam(t, 4)
	require.NoError(t, s.Strategy.Apply(context.Background(), s))
	f.events = nil
	s.Opts.DrainTimeout = 0
	require.NoError(t, s.Strategy.Restore(context.Background(), s))
	lastOld, firstNew := -1, len(f.events)
	for i, e := range f.events {
		if strings.HasPrefix(e, "reconnect ") && strings.Contains(e, "-old ") {
			lastOld = i
		}
		if strings.HasPrefix(e, "reconnect ") && strings.Contains(e, "-new ") {
			firstNew = min(firstNew, i)
		}
	}
	assert.Less(t, lastOld, firstNew, "every old container back before a new one leaves: %v", f.events)

	s, f = rollingSeam(t, 4)
	require.NoError(t, s.Strategy.Apply(context.Background(), s))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The deadline ends once the last old container got its alias back.
	f.events, f.cancelAfter, f.cancelAt, f.cancel = nil, "-old edge [", 3, cancel
	s.Out.Cancelled = true
	err := s.Strategy.Restore(ctx, s)
	require.Error(t, err)
	for _, svc := range []string{"api", "db", "web"} {
		assert.Contains(t, f.events, "reconnect "+svc+"-old edge ["+svc+"]")
		assert.Contains(t, err.Error(), svc+"-new: not reconnecting "+svc+"-new: context canceled; it serves beside "+svc+"'s old container(s), the next run takes both off the alias")
	}
	assert.False(t, slices.ContainsFunc(f.events, func(e string) bool { return strings.Contains(e, "-new") }), "no new container touched: %v", f.events)
}

// TestSeamRollingMendsLostAliases: after the switch, the proxy finds no
// container (as when Docker's DNS lost an alias a reconnect gave): once the
// deploy's health check through it has failed twice, the new containers get
// their aliases again, once, and the check passes.
func TestSeamRollingMendsLostAliases(t *testing.T) {
	s, f := rollingSeam(t, 4)
	require.NoError(t, s.Strategy.Apply(context.Background(), s))
	given := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		n := 0
		for _, e := range f.events {
			if e == "reconnect web-new edge [web]" {
				n++
			}
		}
		return n
	}
	require.Equal(t, 1, given(), "the switch gave web's alias: %v", f.events)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if given() < 2 {
			http.Error(w, "no upstream", http.StatusBadGateway)
		}
	}))
	defer proxy.Close()
	s.Opts.HealthURL, s.Opts.HealthAttempts, s.Opts.HealthInitialDelay = proxy.URL+"/health", 5, time.Millisecond
	require.NoError(t, s.verify(context.Background()))
	assert.Equal(t, 2, given(), "given again once: %v", f.events)
	for _, svc := range []string{"api", "db"} {
		assert.Equal(t, 2, strings.Count(strings.Join(f.events, "\n"), "reconnect "+svc+"-new edge ["+svc+"]"), "every switched service's: %v", f.events)
	}
	assert.Equal(t, 1, strings.Count(f.log.String(), "warning: the proxy does not reach the new containers after the switch, which answered at their own address: giving them their aliases again\n"), f.log.String())
}

// TestSeamRollingBlamesNoProxyWhenNothingAnswers: a health-url where nothing
// listens (the runner's own loopback, a wrong port) is no lost alias: no
// alias is given again, and the error says what refused, where.
func TestSeamRollingBlamesNoProxyWhenNothingAnswers(t *testing.T) {
	s, f := rollingSeam(t, 4)
	require.NoError(t, s.Strategy.Apply(context.Background(), s))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	before := len(f.events)
	s.Opts.HealthURL, s.Opts.HealthAttempts, s.Opts.HealthInitialDelay = "http://"+addr+"/health", 3, time.Millisecond
	err = s.verify(context.Background())
	require.Error(t, err)
	assert.Equal(t, "health check http://"+addr+"/health failed after 3 attempts: nothing answers at "+addr+" from the runner (connection refused)", err.Error())
	assert.NotContains(t, strings.Join(f.events[before:], "\n"), "reconnect", "no alias given again")
	assert.NotContains(t, f.log.String(), "the proxy does not reach")
	defer func(b verify.Backoff) { proxyRecheck = b }(proxyRecheck)
	proxyRecheck.InitialDelay, proxyRecheck.MaxDelay, s.Opts.DrainTimeout = time.Millisecond, time.Millisecond, 0 // the pauses are not what is tested
	err = s.Strategy.Verify(context.Background(), s)
	require.Error(t, err)
	assert.Equal(t, "after the switch health check http://"+addr+"/health failed after 3 attempts: nothing answers at "+addr+" from the runner (connection refused): is health-url the proxy's address as the runner reaches it?", err.Error())
}

// TestSeamRollingRouteNetwork: route-network names the network the proxy finds
// services on; those not on it (and those with a network_mode) are replaced in
// place, and may publish a host port or have a container_name, which a switched
// service may not. A route-network no deployed service is on is bad input.
func TestSeamRollingRouteNetwork(t *testing.T) {
	compose := "name: shop\nservices:\n" +
		"  web:\n    image: shop:1\n    networks: [edge]\n" +
		"  cron:\n    image: shop:1\n    container_name: shop-cron\n    ports: [\"9090:9090\"]\n" +
		"  sidecar:\n    image: shop:1\n    network_mode: \"service:web\"\n" +
		"networks:\n  edge: {external: true, name: proxy-edge}\n"
	for _, tc := range []struct {
		name, route, want string
		notes             []string
	}{
		{"by its name", "proxy-edge", "", []string{"cron replaced in place (not on proxy-edge)", "sidecar replaced in place (network_mode service:web)", "web switched on proxy-edge"}},
		{"by its key", "edge", "", []string{"cron replaced in place (not on edge)", "sidecar replaced in place (network_mode service:web)", "web switched on proxy-edge"}},
		{"on none", "elsewhere", "input route-network: no service deployed is on the network elsewhere (cron is on default; sidecar is on none; web is on edge)", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sm := newSeam(t)
			require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "compose.yaml"), []byte(compose), 0o644))
			o := DefaultOptions()
			o.Strategy, o.RouteNetwork, o.AppPort = "rolling", tc.route, 8080
			s := sm.state(t, o)
			s.Runner.Logf = func(string, ...any) {}
			require.NoError(t, s.loadProject(context.Background()), "cron's port and name are no problem: it is not switched")
			notes, err := s.Strategy.Preflight(context.Background(), s)
			if tc.want != "" {
				require.Error(t, err)
				assert.Equal(t, tc.want, err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.notes, notes)
		})
	}

	// Without route-network, cron's only network is its route: it is switched,
	// and its port and name refuse the deploy.
	sm := newSeam(t)
	require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "compose.yaml"), []byte(compose), 0o644))
	o := DefaultOptions()
	o.Strategy, o.AppPort = "rolling", 8080
	s := sm.state(t, o)
	err := s.loadProject(context.Background())
	require.Error(t, err)
	assert.Equal(t, "strategy rolling runs two containers of a service at once, which cannot be: service cron has container_name shop-cron; service cron publishes host port 9090. Remove them and route to the service through a reverse proxy on a shared network (see examples/rolling), or use strategy recreate", err.Error())
}

// TestNetGate: starts go side by side, reconnects too, the two kinds never at
// once.
func TestNetGate(t *testing.T) {
	var g netGate
	// Two of a kind inside together: each waits inside for the other.
	for _, kind := range []int{starting, reconnecting} {
		var both sync.WaitGroup
		both.Add(2)
		done := make(chan struct{})
		go func() {
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					defer g.enter(kind)()
					both.Done()
					both.Wait()
				})
			}
			wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("two of kind %d never inside together", kind)
		}
	}
	// Many of both kinds: never one of each inside.
	var mu sync.Mutex
	in := map[int]int{}
	var wg sync.WaitGroup
	for i := range 200 {
		kind := starting + i%2
		wg.Go(func() {
			defer g.enter(kind)()
			mu.Lock()
			in[kind]++
			mixed := in[starting] > 0 && in[reconnecting] > 0
			mu.Unlock()
			assert.False(t, mixed, "a start and a reconnect inside at once")
			time.Sleep(100 * time.Microsecond)
			mu.Lock()
			in[kind]--
			mu.Unlock()
		})
	}
	wg.Wait()
}

// repairEngine is a stack after a killed rolling deploy: which containers
// hold their service's aliases on the route network.
type repairEngine struct {
	*fakeEngine
	containers []docker.Container
	aliased    map[string]bool
	mu         sync.Mutex // Repair removes services side by side
	removed    []string
}

func (f *repairEngine) ProjectContainers(context.Context, string) ([]docker.Container, error) {
	return f.containers, nil
}

func (f *repairEngine) Endpoint(_ context.Context, id, _ string) (docker.Endpoint, bool, error) {
	if f.aliased[id] {
		return docker.Endpoint{IP: "10.0.0.2", Aliases: []string{"web"}}, true, nil
	}
	return docker.Endpoint{IP: "10.0.0.3"}, true, nil
}

func (f *repairEngine) StopAndRemove(_ context.Context, id string, grace time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, id+" "+grace.String())
	return nil
}

func (f *repairEngine) removedNow() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.removed)
}

// repairSeam is a two-service rolling stack after a killed deploy: web's old
// container holds the aliases, a new one runs off them, another was created
// and never started; none of api's holds its aliases.
func repairSeam(t *testing.T, drain time.Duration) (*seam, *State, *repairEngine) {
	sm := newSeam(t)
	require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "compose.yaml"), []byte("name: shop\nservices:\n"+
		"  web:\n    image: shop:1\n    networks: [edge]\n    stop_grace_period: 3s\n    scale: 2\n"+
		"  api:\n    image: shop:1\n    networks: [edge]\n"+
		"networks:\n  edge: {external: true, name: proxy-edge}\n"), 0o644))
	o := DefaultOptions()
	o.Strategy, o.AppPort, o.RouteNetwork, o.DrainTimeout = "rolling", 8080, "proxy-edge", drain
	s := sm.state(t, o)
	e := &repairEngine{fakeEngine: sm.engine, aliased: map[string]bool{"web-old": true},
		containers: []docker.Container{
			{ID: "web-old", Name: "shop-web-1", Service: "web", State: "running"},
			{ID: "web-new", Name: "shop-web-2", Service: "web", State: "running"},
			{ID: "web-created", Name: "shop-web-3", Service: "web", State: "created"},
			{ID: "api-a", Name: "shop-api-1", Service: "api", State: "running"},
			{ID: "api-b", Name: "shop-api-2", Service: "api", State: "running"},
		}}
	s.Docker = e
	s.Runner.Logf = func(string, ...any) {}
	require.NoError(t, s.One(context.Background(), PreflightStep, s))
	return sm, s, e
}

// TestSeamRollingRepair: before the switch, the containers a killed rolling
// deploy left off a service's aliases go while one holds the aliases: one
// created and never started at once; a running one — it may have left the
// aliases a moment before the kill — is counted by the switch, which creates
// as many new containers as the service declares beside it and the one that
// serves, and is stopped with the old ones once drained. A service none of
// whose containers holds them is left as it is, and said.
func TestSeamRollingRepair(t *testing.T) {
	sm, s, e := repairSeam(t, 50*time.Millisecond)
	notes, err := s.Strategy.Repair(context.Background(), s)
	require.NoError(t, err)
	assert.Equal(t, []string{"web-created 3s"}, e.removedNow(), "not running: removed at once; running: left to drain")
	assert.Equal(t, []string{
		"no container of api holds its aliases on proxy-edge: its 2 container(s) kept",
		"removed 1 container(s) of web that an interrupted run left off its aliases, not running (shop-web-3); 1 serve",
		"1 running container(s) of web that an interrupted run left off its aliases (shop-web-2) stopped with the old ones, once drained (drain-timeout 50ms); 1 serve",
	}, notes)

	// The switch: beside the web that serves and the one draining, the two
	// it declares; api's two kept.
	e.containers = slices.DeleteFunc(e.containers, func(c docker.Container) bool { return c.ID == "web-created" })
	s.Opts.DryRun = true
	require.NoError(t, s.Strategy.Apply(context.Background(), s))
	assert.Contains(t, strings.Join(sm.exec.Lines("docker", "compose"), "\n"), "--scale api=3 --scale web=4")

	// Once verified: the draining one goes with the old one, after the drain.
	r := s.Strategy.(*rolling)
	r.switches = []*serviceSwitch{{service: "web", drained: time.Now(),
		old:      []placed{{Container: e.containers[0]}},
		leftover: r.leftovers["web"]}}
	s.Strategy.Finish(context.Background(), s)
	assert.ElementsMatch(t, []string{"web-created 3s", "web-old 3s", "web-new 3s"}, e.removedNow())
	w := &serviceSwitch{before: e.containers[:1], leftover: r.leftovers["web"]}
	assert.Equal(t, []string{"web-old", "web-new"}, []string{w.kept()[0].ID, w.kept()[1].ID}, "a failed switch removes neither")
}
