package deploy_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// edge is the sample app's rolling stack (examples/rolling) behind two proxies on
// its own route network: the example's Caddy (a.Port: health, smoke and the
// kit's checks go through it) and a plain proxy that resolves the alias for every
// request and never retries (plain).
type edge struct {
	*testapp.App
	plain   int
	network string
}

// behindProxy makes the stack and both proxies, each on a loopback port.
func behindProxy(t testing.TB, version string) *edge {
	testenv.NoSwarmChange(t)
	a := testapp.NewTracked(t, version) // rollback builds an earlier commit
	root := testenv.RepoRoot(t)
	e := &edge{App: a, network: "dk-edge-" + a.Name}
	alias := "web-" + a.Name

	stack, err := os.ReadFile(filepath.Join(root, "examples", "rolling", "compose.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "rolling.yaml"), []byte(strings.Replace(string(stack), "build: ../hello", "build: .", 1)), 0o644))
	a.Git("add", "rolling.yaml")
	a.Git("commit", "-q", "-m", "the rolling stack")
	a.Git("tag", "-f", "v"+version)

	a.Port, e.plain = testenv.Proxies(t, a.Name, e.network, alias, a.Cleanup)
	a.Env = append(a.Env, "EDGE_NETWORK="+e.network, "APP_ALIAS="+alias)
	return e
}

// loads is a load loop through each proxy.
type loads struct{ caddy, plain *load }

func (e *edge) startLoads() loads { return startLoads(e.Port, e.plain) }

func startLoads(caddy, plain int, hosts ...string) loads {
	return loads{startLoad(caddy, hosts...), startLoad(plain, hosts...)}
}

// startLoadsAt is startLoads through proxies at base URLs (another machine's).
func startLoadsAt(caddy, plain string) loads {
	return loads{startLoadAt(caddy), startLoadAt(plain)}
}

func (l loads) finish() loads {
	l.caddy.finish()
	l.plain.finish()
	return l
}

// check asserts that no request failed through either proxy and that none was
// answered by one of the versions that must never take traffic.
func (l loads) check(t *testing.T, what string, never ...string) {
	t.Helper()
	for name, ld := range map[string]*load{"caddy": l.caddy, "plain proxy": l.plain} {
		t.Logf("%s through %s: %d ok, %d failed, answered by %v, slowest %s", what, name, ld.ok, ld.fail, ld.answered, ld.slowest)
		assert.Zero(t, ld.fail, "%s: failed requests through %s: %v", what, name, ld.failures[:min(len(ld.failures), 5)])
		assert.Greater(t, ld.ok, 20, "%s: requests through %s", what, name)
		for _, v := range never {
			assert.Zero(t, ld.answered[v], "%s: answers from %s through %s", what, v, name)
		}
	}
}

// load sends GET /version through the proxy every 20 ms (50 requests a second)
// until stopped, and counts what failed.
type load struct {
	mu       sync.Mutex
	ok, fail int
	failures []string
	versions []string
	answered map[string]int            // requests answered, by version
	byHost   map[string]map[string]int // with hosts: requests answered, by host and version
	last     map[string]string         // with hosts: the version that answered last, by host
	first    map[string]time.Time      // when each version first answered
	slowest  time.Duration
	stop     context.CancelFunc
	done     chan struct{}
}

// startLoad sends the load to the proxy at port on loopback; with hosts, each
// request names the next of them in its Host header (the service a proxy for
// several picks), in turn.
func startLoad(port int, hosts ...string) *load {
	return startLoadAt(fmt.Sprintf("http://127.0.0.1:%d", port), hosts...)
}

// startLoadAt is startLoad through the proxy at base.
func startLoadAt(base string, hosts ...string) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{stop: cancel, done: make(chan struct{}), answered: map[string]int{}, first: map[string]time.Time{},
		byHost: map[string]map[string]int{}, last: map[string]string{}}
	// Its own connections, kept alive: loads side by side through one proxy
	// must not run the loopback out of ports.
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	go func() {
		defer close(l.done)
		defer client.CloseIdleConnections()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var wg sync.WaitGroup
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-tick.C:
			}
			host := ""
			if len(hosts) > 0 {
				host = hosts[i%len(hosts)]
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				req, _ := http.NewRequest(http.MethodGet, base+"/version", nil)
				if host != "" {
					req.Host = host
				}
				resp, err := client.Do(req)
				took := time.Since(start)
				l.mu.Lock()
				defer l.mu.Unlock()
				l.slowest = max(l.slowest, took)
				if err != nil {
					l.fail++
					l.failures = append(l.failures, start.Format("15:04:05.000 ")+err.Error())
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					l.fail++
					l.failures = append(l.failures, fmt.Sprintf("%s %d %s", start.Format("15:04:05.000"), resp.StatusCode, body))
					return
				}
				l.ok++
				v := strings.TrimSpace(string(body))
				if l.answered[v] == 0 {
					l.first[v] = start
				}
				l.answered[v]++
				if host != "" {
					if l.byHost[host] == nil {
						l.byHost[host] = map[string]int{}
					}
					l.byHost[host][v]++
					l.last[host] = v
				}
				if len(l.versions) == 0 || l.versions[len(l.versions)-1] != v {
					l.versions = append(l.versions, v)
				}
			}()
		}
	}()
	return l
}

func (l *load) finish() *load {
	l.stop()
	<-l.done
	return l
}

// TestRollingKeepsServing: through both proxies under load, a healthy release
// takes over with no failed request; a release whose /health fails and one whose
// smoke check fails never answer a request and leave the old one serving; a
// rollback switches the same way.
func TestRollingKeepsServing(t *testing.T) {
	t.Parallel()
	a := behindProxy(t, "1.0.0")
	args := []string{"--compose-file", "rolling.yaml", "--strategy", "rolling", "--app-port", "8080", "--drain-timeout", "2s"}
	r := a.Deploy(args...)
	require.Equal(t, 0, r.Code, r.Log)
	testapp.WaitFor(t, "the proxy to serve 1.0.0", func() bool { _, v := a.Get("/version"); return v == "1.0.0" })

	// A healthy new version: no request fails, and the version switches.
	a.Release("2.0.0", false)
	l := a.startLoads()
	r = a.Deploy(args...)
	time.Sleep(500 * time.Millisecond) // let the load see the new version settle
	l.finish()
	require.Equal(t, 0, r.Code, r.Log)
	l.check(t, "rolling, healthy 2.0.0")
	for _, ld := range []*load{l.caddy, l.plain} {
		assert.Equal(t, "2.0.0", ld.versions[len(ld.versions)-1], "versions seen: %v", ld.versions)
	}
	assert.Regexp(t, `switched web on `+a.network+` \([^)]*web-`+a.Name+`[^)]*\): 1 new container\(s\) in, 1 old draining until verify has passed`, r.Log)
	assert.Contains(t, r.Log, "stopping old ")
	assert.Regexp(t, `\| verify \| done \| \S+ \| healthy, 2 smoke check\(s\) passed; after drain-timeout the proxy reaches the new containers \|`, r.Summary)
	assert.Len(t, strings.Fields(a.Containers()), 1, "only the new container is left")

	// Releases that must never take traffic: /health fails, or /version (a smoke
	// check) does.
	for _, bad := range []struct{ version, build, want string }{
		{"3.0.0", testapp.Broken, "its healthcheck failed"},
		{"4.0.0", testapp.SmokeBroken, "smoke checks failed: /version: got 500, want 200"},
	} {
		a.ReleaseBuild(bad.version, bad.build)
		l = a.startLoads()
		r = a.Deploy(args...)
		l.finish()
		assert.Equal(t, 1, r.Code, r.Log)
		l.check(t, "rolling, failing "+bad.version, bad.version)
		assert.Contains(t, r.Log, "the new web containers did not pass (")
		assert.Contains(t, r.Log, bad.want)
		assert.Contains(t, r.Summary, "| rollback | skipped |  | nothing switched: the old containers never stopped serving |")
		_, v := a.Get("/version")
		assert.Equal(t, "2.0.0", v)
		assert.Len(t, strings.Fields(a.Containers()), 1, "no new container is left behind")
	}

	// rollback switches the same way.
	l = a.startLoads()
	r = a.Rollback(append(args, "--confirm", "ROLLBACK", "--target-tag", "v1.0.0")...)
	time.Sleep(500 * time.Millisecond)
	l.finish()
	require.Equal(t, 0, r.Code, r.Log)
	l.check(t, "rollback to 1.0.0")
	assert.Contains(t, r.Log, "switched web on ")
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0", v)
	assert.Len(t, strings.Fields(a.Containers()), 1)
}

// TestRollingSwitchesBackAfterALaterServiceFails: a stack of two services; the
// first is switched, the second's new container never gets healthy. The first is
// switched back (its old container takes the alias again, nothing is recreated),
// under load, and a cancelled deploy does the same.
func TestRollingSwitchesBackAfterALaterServiceFails(t *testing.T) {
	t.Parallel()
	a := behindProxy(t, "1.0.0")
	data, err := os.ReadFile(filepath.Join(a.Dir, "rolling.yaml"))
	require.NoError(t, err)
	stack := string(data)
	web := stack[strings.Index(stack, "  web:\n"):strings.Index(stack, "networks:\n  edge:\n    external")]
	second := strings.Replace(web, "  web:\n", "  worker:\n", 1)
	second = strings.Replace(second, `test: ["CMD", "/hello", "healthcheck"]`, `test: ["CMD", "/hello", "healthcheck", "${WORKER_HEALTH_PATH:-/health}"]`, 1)
	second = strings.Replace(second, `aliases: ["${APP_ALIAS:-hello-web}"]`, `aliases: ["${APP_ALIAS:-hello-web}-worker"]`, 1)
	// WORKER_START: a start period during which worker's failing probes do not
	// count, so a deploy can be held until the test signals it.
	second = strings.Replace(second, "start_period: 1s", "start_period: ${WORKER_START:-1s}", 1)
	require.Contains(t, second, "${WORKER_START:-1s}")
	stack = strings.Replace(stack, web, web+second, 1)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "two.yaml"), []byte(stack), 0o644))
	args := []string{"--compose-file", "two.yaml", "--strategy", "rolling", "--app-port", "8080", "--drain-timeout", "1s", "--route-network", a.network}
	r := a.Deploy(args...)
	require.Equal(t, 0, r.Code, r.Log)
	testapp.WaitFor(t, "the proxy to serve 1.0.0", func() bool { _, v := a.Get("/version"); return v == "1.0.0" })
	ids := strings.Fields(a.Containers())
	require.Len(t, ids, 2)

	// worker's new container fails its healthcheck after web was switched.
	a.Release("2.0.0", false)
	a.Env = append(a.Env, "WORKER_HEALTH_PATH=/nope")
	l := a.startLoads()
	r = a.Deploy(args...)
	time.Sleep(500 * time.Millisecond)
	l.finish()
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "switched web on ")
	assert.Contains(t, r.Log, "the new worker containers did not pass (")
	assert.Contains(t, r.Log, "switched 1 service(s) back to the containers that ran before")
	assert.Regexp(t, `\| rollback \| done \| \S+ \| restored 1\.0\.0 and verified it \|`, r.Summary)
	l.check(t, "a later service failing")
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0", v)
	assert.ElementsMatch(t, ids, strings.Fields(a.Containers()), "the containers that ran before, not recreated, and nothing else")

	// Cancelled while worker's new container is being checked, after web's
	// switch: held starting (a start period longer than the test, failures do
	// not count), the deploy cannot end before the signal, however slow the
	// machine.
	a.Env = append(a.Env, "WORKER_START=600s")
	step, result := a.Step("deploy", append(args, "--wait-timeout", "300s")...)
	testapp.WaitWithin(t, 300*time.Second, "web's new container to take the alias", func() bool {
		return len(strings.Fields(a.Containers())) >= 4 && a.aliasHolders() == 1 && !slices.Contains(ids, a.aliasHolder())
	})
	l = a.startLoads()
	last, took := step.CancelGitHub() // SIGINT to the step's process, as GitHub's runner cancels
	r = result()
	time.Sleep(500 * time.Millisecond)
	l.finish()
	assert.Equal(t, "SIGINT", last, r.Log)
	assert.Less(t, took, action.CancelBudget)
	assert.NotEqual(t, 0, r.Code, r.Log)
	assert.Regexp(t, `\| rollback \| done \| \S+ \| cancelled: the containers that ran before have their aliases back; the new ones are left for the next run to remove \|`, r.Summary)
	l.check(t, "a cancelled deploy")
	_, v = a.Get("/version")
	assert.Equal(t, "1.0.0", v)
	assert.Subset(t, strings.Fields(a.Containers()), ids, "the containers that ran before serve again")
	assert.Regexp(t, `\| rollback \| [0-9.]+ \| cancelled|\| deploy \| 2\.0\.0 \| cancelled`, strings.Join(a.HistoryLines(), "\n"))
	a.Env = slices.DeleteFunc(a.Env, func(e string) bool { return strings.HasPrefix(e, "WORKER_") })
	r = a.Deploy(args...)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "that an interrupted run left off its aliases", "the next deploy removed what the cancel left")
	assert.Len(t, strings.Fields(a.Containers()), 2, "one container per service")
}

// aliasHolders counts the containers that hold web's alias on the route network;
// aliasHolder is one of them.
func (e *edge) aliasHolders() int { return len(e.holders()) }
func (e *edge) aliasHolder() string {
	if h := e.holders(); len(h) > 0 {
		return h[0]
	}
	return ""
}

func (e *edge) holders() []string {
	out, err := exec.Command("docker", "network", "inspect", e.network, "--format", "{{range $id, $c := .Containers}}{{$id}} {{end}}").Output()
	if err != nil {
		return nil
	}
	var ids []string
	for _, id := range strings.Fields(string(out)) {
		aliases, err := exec.Command("docker", "inspect", id, "--format", `{{json (index .NetworkSettings.Networks "`+e.network+`").Aliases}}`).Output()
		if err == nil && strings.Contains(string(aliases), `"web-`+e.Name+`"`) {
			ids = append(ids, id)
		}
	}
	return ids
}

// TestRollingRefusesBadInput: what the traffic switch needs is checked before
// anything changes.
func TestRollingRefusesBadInput(t *testing.T) {
	t.Parallel()
	a := behindProxy(t, "1.0.0")
	base := []string{"--compose-file", "rolling.yaml", "--strategy", "rolling"}
	flat := "flat-" + a.Name
	out, err := exec.Command("docker", "network", "create", flat).CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() { _ = exec.Command("docker", "network", "rm", flat).Run() })
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"drain-timeout", []string{"--app-port", "8080", "--drain-timeout", "soon"}, nil, `input drain-timeout: invalid value "soon": want a duration such as 30s, 5m, 1h30m or 7d (or whole seconds)`},
		{"no app-port", nil, nil, "strategy rolling checks each new container at its own address before it takes traffic: set app-port to the port the service listens on inside its containers"},
		{"route-network the service is not on", []string{"--app-port", "8080", "--route-network", "elsewhere"}, nil, "input route-network: no service deployed is on the network elsewhere (web is on edge)"},
		{"route network without a subnet", []string{"--app-port", "8080"}, []string{"EDGE_NETWORK=" + flat}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := a.Env
			a.Env = append(slices.Clone(a.Env), tc.env...)
			defer func() { a.Env = saved }()
			r := a.Deploy(append(slices.Clone(base), tc.args...)...)
			if tc.want == "" {
				// The engine reports an automatic subnet like a chosen one with a
				// gateway: a warning, then the switch stops before traffic moves.
				assert.Equal(t, 1, r.Code, r.Log)
				assert.Contains(t, r.Log, "::warning::strategy rolling: the route network "+flat+" shows a gateway with its subnet")
				assert.Contains(t, r.Log, "user specified IP address is supported only when connecting to networks with user configured subnets (the route network "+flat+" needs a subnet of its own: docker network create --subnet …))")
				assert.Empty(t, a.Containers(), "the new container was removed")
				return
			}
			assert.Equal(t, 2, r.Code, r.Log)
			assert.Contains(t, r.Log, tc.want)
			assert.Equal(t, "bad-input", r.Outputs["status"])
			assert.Empty(t, a.Containers(), "nothing was started")
		})
	}

	// dry-run shows the switch plan and changes nothing.
	r := a.Deploy(append(slices.Clone(base), "--app-port", "8080", "--dry-run")...)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Log, "would run: docker compose -p "+a.Name)
	assert.Contains(t, r.Log, "up --no-start --remove-orphans --no-build --pull never --no-deps --no-recreate web")
	assert.Contains(t, r.Log, "dry run: then start the new web containers off the alias on "+a.network+", check each at its own address, give them the alias, take it from the 0 old one(s), and stop those after verify and drain-timeout 5s")
	assert.Empty(t, a.Containers())
}

func TestRollingRefusesWhatCannotRunTwice(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	// The sample app's own compose file publishes a host port.
	r := a.Deploy("--strategy", "rolling")
	assert.Equal(t, 2, r.Code, r.Log)
	assert.Contains(t, r.Log, "strategy rolling runs two containers of a service at once, which cannot be: service web publishes host port ")
	assert.Contains(t, r.Log, "route to the service through a reverse proxy on a shared network (see examples/rolling)")
	assert.Empty(t, a.Containers())
}

// BenchmarkDeployUnderLoad measures, side by side, what requests see through each
// proxy (the example's Caddy, which retries, and a plain DNS-per-request proxy,
// which does not; 50 a second each) while deploying a healthy release, one whose
// /health fails and one whose smoke check fails, with strategy recreate and with
// rolling. Recreate is the baseline: it stops the old container before the new
// one has proved itself.
func BenchmarkDeployUnderLoad(b *testing.B) {
	for _, strategy := range []string{"recreate", "rolling"} {
		b.Run(strategy, func(b *testing.B) {
			m := map[string]float64{}
			var switchTime time.Duration
			for b.Loop() {
				b.StopTimer()
				a := behindProxy(b, "1.0.0")
				args := []string{"--compose-file", "rolling.yaml", "--strategy", strategy, "--app-port", "8080"}
				require.Equal(b, 0, a.Deploy(args...).Code)
				testapp.WaitFor(b, "the proxy to serve 1.0.0", func() bool { _, v := a.Get("/version"); return v == "1.0.0" })
				b.StartTimer()

				for _, rel := range []struct{ version, build, kind string }{
					{"2.0.0", testapp.Healthy, "healthy"},
					{"3.0.0", testapp.Broken, "broken"},
					{"4.0.0", testapp.SmokeBroken, "smoke-broken"},
				} {
					a.ReleaseBuild(rel.version, rel.build)
					l := a.startLoads()
					start := time.Now()
					r := a.Deploy(args...)
					time.Sleep(500 * time.Millisecond)
					l.finish()
					if rel.kind == "healthy" {
						require.Equal(b, 0, r.Code, r.Log)
						switchTime += l.plain.first[rel.version].Sub(start)
					} else {
						require.Equal(b, 1, r.Code, r.Log)
					}
					for name, ld := range map[string]*load{"caddy": l.caddy, "plain": l.plain} {
						m["failed/"+rel.kind+"-"+name] += float64(ld.fail)
						m["ms-slowest-"+name] = max(m["ms-slowest-"+name], float64(ld.slowest.Milliseconds()))
						if rel.kind != "healthy" {
							m["answered-by-failing-"+name] += float64(ld.answered[rel.version])
						}
					}
				}
			}
			for k, v := range m {
				if !strings.HasPrefix(k, "ms-") {
					v /= float64(b.N)
				}
				b.ReportMetric(v, k)
			}
			b.ReportMetric(float64(switchTime.Milliseconds())/float64(b.N), "ms-to-switch")
		})
	}
}

// TestRollingChecksNewContainersOverHTTP: a new container whose own healthcheck
// passes (it only checks /version here) is still checked over HTTP — health-url's
// path, directly at app-port — before any old container stops.
func TestRollingChecksNewContainersOverHTTP(t *testing.T) {
	t.Parallel()
	a := behindProxy(t, "1.0.0")
	stack, err := os.ReadFile(filepath.Join(a.Dir, "rolling.yaml"))
	require.NoError(t, err)
	noCheck := strings.Replace(string(stack), `test: ["CMD", "/hello", "healthcheck"]`, `test: ["CMD", "/hello", "healthcheck", "/version"]`, 1)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "nocheck.yaml"), []byte(noCheck), 0o644))
	args := []string{"--compose-file", "nocheck.yaml", "--strategy", "rolling", "--app-port", "8080"}
	// The first deploy only sets the scene: it keeps the default health attempts,
	// since the proxy can take a while to find a container that has just started
	// on a busy engine.
	r := a.Deploy(args...)
	require.Equal(t, 0, r.Code, r.Log)
	args = append(args, "--health-attempts", "3")
	testapp.WaitFor(t, "the proxy to serve 1.0.0", func() bool { _, v := a.Get("/version"); return v == "1.0.0" })

	a.Release("2.0.0", true)
	r = a.Deploy(args...)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Regexp(t, `the new web containers did not pass \(\S+: health check http://[0-9.]+:8080/health failed after 3 attempts: HTTP 500 this build is broken on purpose\)`, r.Log)
	assert.Len(t, strings.Fields(a.Containers()), 1, "the new container was removed")
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0", v)
}

// onRouteNetwork is the sample app's checkout (1.0.0) and a route network of
// its own with a subnet, for a stack that chainStack or stackOf writes; the
// test never overlaps a swarm change, and the app's containers go before the
// network does.
func onRouteNetwork(tb testing.TB) (*testapp.App, string) {
	tb.Helper()
	testenv.NoSwarmChange(tb)
	a := testapp.New(tb, "1.0.0")
	network := "dk-edge-" + a.Name
	testenv.SubnetNetwork(tb, network)
	tb.Cleanup(a.Cleanup) // before the network goes
	return a, network
}

// chainStack is a compose file of hello services on the route network, each
// with its own alias, depending on each other as deps says (service → the
// services it depends on); the first service builds the image the others use.
func chainStack(network, name string, services []string, deps map[string][]string) string {
	return stackOf(network, name, services, deps, "1s", true)
}

// stackOf is chainStack with the healthcheck's interval, and with the first
// service building the image (build) or none (the image is there).
func stackOf(network, name string, services []string, deps map[string][]string, interval string, build bool) string {
	var b strings.Builder
	b.WriteString("services:\n")
	for i, svc := range services {
		fmt.Fprintf(&b, "  %s:\n    image: deploykit-hello:${DEPLOY_TAG:-dev}\n", svc)
		if i == 0 && build {
			b.WriteString("    build: .\n")
		}
		b.WriteString("    environment:\n      APP_VERSION: ${DEPLOY_VERSION:-dev}\n      DB_PASSWORD: ${DB_PASSWORD:-}\n")
		// HEALTH_<SERVICE> makes one service's healthcheck ask another path;
		// START_<SERVICE>, a start period during which failures do not count
		// (the container stays starting: a deploy held for a test, or a
		// probe on a busy machine that took longer than its timeout). A probe
		// is an exec in the container: on a busy machine it can take seconds.
		fmt.Fprintf(&b, "    healthcheck:\n      test: [\"CMD\", \"/hello\", \"healthcheck\", \"${HEALTH_%s:-/health}\"]\n      interval: %s\n      timeout: 10s\n      retries: 5\n      start_period: ${START_%s:-0s}\n", strings.ToUpper(svc), interval, strings.ToUpper(svc))
		fmt.Fprintf(&b, "    networks:\n      edge:\n        aliases: [\"%s-%s\"]\n", svc, name)
		if len(deps[svc]) > 0 {
			fmt.Fprintf(&b, "    depends_on: [%s]\n", strings.Join(deps[svc], ", "))
		}
	}
	fmt.Fprintf(&b, "networks:\n  edge:\n    external: true\n    name: %s\n", network)
	return b.String()
}

// rollingStack commits the compose file name (text) into a's checkout as part
// of its release 1.0.0 and returns the deploy arguments that switch it with
// strategy rolling, the containers' healthchecks deciding.
func rollingStack(t *testing.T, a *testapp.App, name, text string) []string {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, name), []byte(text), 0o644))
	a.Git("add", name)
	a.Git("commit", "-q", "-m", "the stack "+name)
	a.Git("tag", "-f", "v1.0.0")
	return []string{"--compose-file", name, "--strategy", "rolling", "--app-port", "8080", "--health-url", "", "--smoke-base-url", "", "--smoke-checks", ""}
}

// TestRollingSwitchesInDependsOnOrder: a chain web → api → db is switched in
// that order, db first, each service once the one it depends on has switched, and the
// summary's apply row shows the order and each service's timings.
func TestRollingSwitchesInDependsOnOrder(t *testing.T) {
	t.Parallel()
	a, network := onRouteNetwork(t)
	stack := chainStack(network, a.Name, []string{"db", "api", "web"}, map[string][]string{"web": {"api"}, "api": {"db"}})
	args := rollingStack(t, a, "chain.yaml", stack)
	r := a.Deploy(args...)
	require.Equal(t, 0, r.Code, r.Log)

	a.Release("2.0.0", false)
	r = a.Deploy(args...)
	require.Equal(t, 0, r.Code, r.Log)
	timing := `created \S+, started \S+, healthy \S+, checked \S+, switched \S+`
	assert.Regexp(t, `\| apply \| done \| \S+ \| .*switched db \(level 1\): `+timing+`; api \(level 2\): `+timing+`; web \(level 3\): `+timing, r.Summary)
	db, api, web := strings.Index(r.Log, "switched db on "), strings.Index(r.Log, "switched api on "), strings.Index(r.Log, "switched web on ")
	assert.True(t, db >= 0 && db < api && api < web, "db, then api, then web: %d %d %d", db, api, web)
	out, err := exec.Command("docker", "ps", "--filter", "label=com.docker.compose.project="+a.Name, "--format", `{{.Label "com.docker.compose.service"}}`).Output()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"db", "api", "web"}, strings.Fields(string(out)), "one new container of each runs, the old ones stopped")
}

// BenchmarkStackOf10: a stack of 10 independent services (the sample app, a
// 2 s healthcheck interval, each with its own alias on the route network),
// every round a new release of all 10, in the same run: the bare
// `docker compose up -d --wait`, deploykit deploy with strategy recreate, and
// with strategy rolling (health and smoke URLs off: the containers'
// healthchecks decide; drain-timeout at its default 5s, and at 2s, enough for
// a proxy that resolves every second as the example's Caddy does). The image
// of each release is built before the clock starts. Reported: ms per deploy of
// each and the ratios to bare (targets: recreate ≤ 1.05, rolling ≤ 1.5).
func BenchmarkStackOf10(b *testing.B) {
	a, network := onRouteNetwork(b)
	var services []string
	for i := 1; i <= 10; i++ {
		services = append(services, fmt.Sprintf("s%02d", i))
	}
	require.NoError(b, os.WriteFile(filepath.Join(a.Dir, "stack.yaml"), []byte(stackOf(network, a.Name, services, nil, "2s", false)), 0o644))
	n := 1
	release := func() (version, tag string) {
		n++
		version = fmt.Sprintf("1.%d.0", n)
		a.Release(version, false)
		tag = "sha-" + a.Git("rev-parse", "--short=7", "HEAD")
		out, err := exec.Command("docker", "build", "-q", "-t", "deploykit-hello:"+tag, a.Dir).CombinedOutput()
		require.NoError(b, err, "%s", out)
		return version, tag
	}
	bare := func(version, tag string) {
		envFile := filepath.Join(b.TempDir(), "secrets.env")
		require.NoError(b, os.WriteFile(envFile, []byte("DB_PASSWORD=\"x\"\n"), 0o600))
		cmd := exec.Command("docker", "compose", "-p", a.Name, "-f", filepath.Join(a.Dir, "stack.yaml"), "--env-file", envFile,
			"up", "-d", "--wait", "--remove-orphans", "--wait-timeout", "120", "--pull", "never")
		cmd.Dir = a.Dir
		cmd.Env = append(a.BaseEnv(), "DEPLOY_VERSION="+version, "DEPLOY_TAG="+tag)
		out, err := cmd.CombinedOutput()
		require.NoError(b, err, string(out))
	}
	kit := func(extra ...string) {
		r := a.Deploy(append([]string{"--compose-file", "stack.yaml", "--pull-only", "--wait-timeout", "120s", "--health-url", "", "--smoke-base-url", "", "--smoke-checks", ""}, extra...)...)
		require.Equal(b, 0, r.Code, r.Log)
		if os.Getenv("DEPLOYKIT_BENCH_SUMMARY") != "" { // where the time goes, step by step
			fmt.Fprintln(os.Stderr, r.Summary, r.Log)
		}
	}
	bare(release())
	testenv.Deploykit(b) // built before the clock starts
	var tBare, tRecreate, tRolling, tRolling2s time.Duration
	for b.Loop() {
		v, tag := release()
		start := time.Now()
		bare(v, tag)
		tBare += time.Since(start)

		release()
		start = time.Now()
		kit("--strategy", "recreate")
		tRecreate += time.Since(start)

		release()
		start = time.Now()
		kit("--strategy", "rolling", "--app-port", "8080")
		tRolling += time.Since(start)

		release()
		start = time.Now()
		kit("--strategy", "rolling", "--app-port", "8080", "--drain-timeout", "2s")
		tRolling2s += time.Since(start)
	}
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
	b.ReportMetric(ms(tBare), "ms-bare/op")
	b.ReportMetric(ms(tRecreate), "ms-recreate/op")
	b.ReportMetric(ms(tRolling), "ms-rolling/op")
	b.ReportMetric(ms(tRecreate)/ms(tBare), "recreate/bare")
	b.ReportMetric(ms(tRolling)/ms(tBare), "rolling/bare")
	b.ReportMetric(ms(tRolling2s), "ms-rolling-drain2s/op")
	b.ReportMetric(ms(tRolling2s)/ms(tBare), "rolling-drain2s/bare")
}

// TestRollingStackOf10UnderLoad: ten independent services, each with its own
// alias, behind Caddy and a proxy that never retries, 50 requests a second
// through each proxy, each request to the next service in turn. A healthy
// release takes over with no failed request. A release whose 7th service never
// gets healthy: the services already switched go back, the others' new
// containers are removed, every alias is held by the container that held it
// before, and no request fails or is answered by the 7th's failing
// containers. A deploy cancelled while services are switched does the same.
func TestRollingStackOf10UnderLoad(t *testing.T) {
	t.Parallel()
	testenv.NoSwarmChange(t)
	a := testapp.New(t, "1.0.0")
	network := "dk-edge-" + a.Name
	var services, aliases []string
	for i := 1; i <= 10; i++ {
		services = append(services, fmt.Sprintf("s%02d", i))
		aliases = append(aliases, fmt.Sprintf("s%02d-%s", i, a.Name))
	}
	caddy, plain := testenv.ProxiesFor(t, a.Name, network, aliases, a.Cleanup)
	// On a busy machine ten containers probed every second can miss a probe
	// or five: failures count only for the service a phase makes fail.
	for _, svc := range services {
		a.Env = append(a.Env, "START_"+strings.ToUpper(svc)+"=300s")
	}
	args := rollingStack(t, a, "stack.yaml", stackOf(network, a.Name, services, nil, "1s", true))
	args = append(args, "--drain-timeout", "2s")
	r := a.Deploy(args...)
	require.Equal(t, 0, r.Code, r.Log)
	holders := func() map[string]string { return aliasHolders(t, network, aliases, true) }
	for _, alias := range aliases {
		testapp.WaitFor(t, "both proxies to serve "+alias, func() bool {
			return answers(caddy, alias) == "1.0.0" && answers(plain, alias) == "1.0.0"
		})
	}
	// finish stops the loads and checks them: no failed request, each service
	// answered through each proxy, last by version last, never by never (the
	// failing 7th service's version).
	finish := func(l loads, what, last, never string) {
		t.Helper()
		time.Sleep(500 * time.Millisecond) // let the load see what serves after the deploy
		l.finish().check(t, what)
		for name, ld := range map[string]*load{"caddy": l.caddy, "plain proxy": l.plain} {
			for _, alias := range aliases {
				assert.NotEmpty(t, ld.byHost[alias], "%s: %s answered through %s", what, alias, name)
				assert.Equal(t, last, ld.last[alias], "%s: %s through %s answered last by %s (%v)", what, alias, name, ld.last[alias], ld.byHost[alias])
			}
			if never != "" {
				assert.Zero(t, ld.byHost[aliases[6]][never], "%s: answers from the failing %s through %s", what, aliases[6], name)
			}
		}
	}

	// A healthy release: every service switches, not one request fails.
	a.Release("2.0.0", false)
	l := startLoads(caddy, plain, aliases...)
	r = a.Deploy(args...)
	finish(l, "healthy 2.0.0", "2.0.0", "")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Regexp(t, `\| apply \| done \| \S+ \| [^|]*switched (s\d\d \(level 1\): created \S+, started \S+, healthy \S+, checked \S+, switched \S+(; )?){10} \|`, r.Summary)
	before := holders()
	require.Len(t, before, 10)

	// The 7th service's new containers never get healthy.
	a.Release("3.0.0", false)
	a.Env = append(a.Env, "HEALTH_S07=/nope", "START_S07=0s")
	l = startLoads(caddy, plain, aliases...)
	r = a.Deploy(append(args, "--wait-timeout", "20s")...)
	finish(l, "the 7th of 10 services failing", "2.0.0", "3.0.0")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Equal(t, "rolled-back", r.Outputs["status"])
	assert.Contains(t, r.Log, "the new s07 containers did not pass (")
	assert.Contains(t, r.Log, "switched s01 on ", "the others switched side by side")
	assert.Equal(t, before, holders(), "every alias is back on the container that held it before")
	assert.Len(t, strings.Fields(a.Containers()), 10, "the new containers were removed")

	// Cancelled once some services have switched, while s07's new container is
	// held starting (a start period longer than the test: failures do not
	// count), so the deploy cannot end before the signal: as GitHub's runner
	// cancels (SIGINT to the step's process), then as Gitea's kills (SIGKILL to
	// its group). GitHub's cancel puts every alias back within the budget; what
	// either leaves, the next deploy removes, and it is green with the ten
	// containers the stack declares. Not one request fails meanwhile.
	base := append(slices.DeleteFunc(slices.Clone(a.Env), func(e string) bool {
		return strings.HasPrefix(e, "HEALTH_S07=") || strings.HasPrefix(e, "START_S07=")
	}), "START_S07=300s") // the next deploy's s07 is healthy
	a.Env = append(a.Env, "START_S07=600s")
	held := func(what string) *testenv.Step {
		step, _ := a.Step("deploy", append(args, "--wait-timeout", "300s")...)
		// Held by s07 (which never gets healthy), the deploy cannot end before
		// the signal: wait for a switch as long as the deploy itself would wait.
		testapp.WaitWithin(t, 300*time.Second, what+": a service to switch", func() bool {
			now := aliasHolders(t, network, aliases, false) // mid-switch, two hold an alias for a moment
			return len(now) == 10 && !maps.Equal(now, before)
		})
		return step
	}
	l = startLoads(caddy, plain, aliases...)
	step := held("GitHub's cancel")
	last, took := step.CancelGitHub()
	t.Logf("the cancelled deploy ended %s after the first signal (%s)", took.Round(time.Millisecond), last)
	assert.Equal(t, "SIGINT", last, step.Log())
	assert.Less(t, took, action.CancelBudget)
	assert.Contains(t, step.Log(), "cancelled: the containers that ran before have their aliases back; the new ones are left for the next run to remove")
	assert.Equal(t, before, holders(), "every alias is back on the container that held it before")

	step = held("Gitea's kill")
	step.KillGitea()
	assert.Greater(t, len(strings.Fields(a.Containers())), 10, "the killed deploy left its new containers")

	a.Env = base
	r = a.Deploy(args...)
	finish(l, "a cancelled and a killed deploy, then the next", "3.0.0", "")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Regexp(t, `\| repair \| done \| \S+ \| a killed deploy of 3\.0\.0 recorded \(killed in step apply [^|]*(removed \d+|\d+ running) container\(s\) of s\d\d that an interrupted run left off its aliases`, r.Summary)
	assert.Len(t, strings.Fields(a.Containers()), 10, "the declared scale: one container per service")
	assert.Len(t, holders(), 10)
}

// aliasHolders maps each of aliases to the container holding it on network;
// with one, each must have a single holder (else the last one read counts).
func aliasHolders(t *testing.T, network string, aliases []string, one bool) map[string]string {
	t.Helper()
	out, err := exec.Command("docker", "network", "inspect", network, "--format", "{{range $id, $c := .Containers}}{{$id}} {{end}}").Output()
	require.NoError(t, err)
	got := map[string]string{}
	for _, id := range strings.Fields(string(out)) {
		held, err := exec.Command("docker", "inspect", id, "--format", `{{json (index .NetworkSettings.Networks "`+network+`").Aliases}}`).Output()
		if err != nil {
			continue // gone since the network was read: a deploy removed it
		}
		for _, alias := range aliases {
			if strings.Contains(string(held), `"`+alias+`"`) {
				if one {
					require.Empty(t, got[alias], "one holder of %s", alias)
				}
				got[alias] = id
			}
		}
	}
	return got
}

// answers is what GET /version answers through the proxy at port for host, or "".
func answers(port int, host string) string {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/version", port), nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return strings.TrimSpace(string(body))
}

// TestRollingReplacesWorkersInPlace: with route-network set, a service not on
// it (worker) gets no switch: it is replaced in place, once web (switched, on
// its level) has passed, and one container of it runs at a time. When a later
// service (api, which depends on worker) fails, worker is started again on the
// image and version it ran before, and web is switched back.
func TestRollingReplacesWorkersInPlace(t *testing.T) {
	t.Parallel()
	a, network := onRouteNetwork(t)
	stack := chainStack(network, a.Name, []string{"web", "worker", "api"}, map[string][]string{"api": {"worker"}})
	onEdge := "    networks:\n      edge:\n        aliases: [\"worker-" + a.Name + "\"]\n"
	require.Contains(t, stack, onEdge)
	stack = strings.Replace(stack, onEdge, "    networks: [default]\n", 1)
	args := append(rollingStack(t, a, "workers.yaml", stack), "--route-network", network, "--drain-timeout", "1s")
	r := a.Deploy(args...)
	require.Equal(t, 0, r.Code, r.Log)
	workerEnv := func() []string {
		out, err := exec.Command("docker", "ps", "-q", "--filter", "label=com.docker.compose.project="+a.Name, "--filter", "label=com.docker.compose.service=worker").Output()
		require.NoError(t, err)
		ids := strings.Fields(string(out))
		require.Len(t, ids, 1, "one worker container")
		env, err := exec.Command("docker", "inspect", ids[0], "--format", `{{range .Config.Env}}{{println .}}{{end}}`).Output()
		require.NoError(t, err)
		return []string{ids[0], strings.TrimSpace(string(env))}
	}
	first := workerEnv()
	assert.Contains(t, first[1], "APP_VERSION=1.0.0")

	a.Release("2.0.0", false)
	r = a.Deploy(args...)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "worker replaced in place (not on "+network+")")
	assert.Regexp(t, `\| apply \| done \| \S+ \| [^|]*switched web \(level 1\): created \S+, started \S+, healthy \S+, checked \S+, switched \S+; worker \(level 1\): replaced in place, started \S+, healthy \S+; api \(level 2\): created `, r.Summary)
	web, worker := strings.Index(r.Log, "switched web on "), strings.Index(r.Log, "replaced worker in place")
	assert.True(t, web >= 0 && web < worker, "worker after web, switched on its level: %d %d", web, worker)
	second := workerEnv()
	assert.NotEqual(t, first[0], second[0], "a new worker container")
	assert.Contains(t, second[1], "APP_VERSION=2.0.0")

	// api's new containers never get healthy: worker goes back to 2.0.0.
	a.Release("3.0.0", false)
	a.Env = append(a.Env, "HEALTH_API=/nope")
	r = a.Deploy(append(args, "--wait-timeout", "15s")...)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "replaced worker in place")
	assert.Contains(t, r.Log, "the new api containers did not pass (")
	back := workerEnv()
	assert.Contains(t, back[1], "APP_VERSION=2.0.0", "worker runs the version it ran before")
	out, err := exec.Command("docker", "ps", "--filter", "label=com.docker.compose.project="+a.Name, "--format", `{{.Label "com.docker.compose.service"}}`).Output()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"web", "worker", "api"}, strings.Fields(string(out)), "one container of each, the new ones removed")
}
