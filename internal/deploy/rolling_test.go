package deploy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// behindProxy makes the sample app's rolling stack (examples/rolling) with its own
// network and alias, and the example's Caddy proxy in front of it on a loopback
// port, which becomes the app's port (health, smoke and load all go through it).
func behindProxy(t testing.TB, version string) *testapp.App {
	caddy := testenv.CaddyImage(t)
	a := testapp.New(t, version)
	root := testenv.RepoRoot(t)
	network := "dk-edge-" + a.Name
	alias := "web-" + a.Name
	out, err := exec.Command("docker", "network", "create", network).CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() { _ = exec.Command("docker", "network", "rm", network).Run() })

	stack, err := os.ReadFile(filepath.Join(root, "examples", "rolling", "compose.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "rolling.yaml"), []byte(strings.Replace(string(stack), "build: ../hello", "build: .", 1)), 0o644))

	proxyDir := t.TempDir()
	for _, f := range []string{"proxy.yaml", "Caddyfile"} {
		data, err := os.ReadFile(filepath.Join(root, "examples", "rolling", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(proxyDir, f), data, 0o644))
	}
	a.Port = testenv.FreePort(t)
	a.Env = append(a.Env, "EDGE_NETWORK="+network, "APP_ALIAS="+alias)
	proxy := exec.Command("docker", "compose", "-p", "proxy-"+a.Name, "-f", filepath.Join(proxyDir, "proxy.yaml"), "up", "-d", "--no-build", "--wait")
	proxy.Env = append(os.Environ(), "EDGE_NETWORK="+network, "APP_ALIAS="+alias, fmt.Sprintf("PROXY_PORT=%d", a.Port), "CADDY_TAG="+strings.TrimPrefix(caddy, "deploykit-caddy:"))
	out, err = proxy.CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() {
		down := exec.Command("docker", "compose", "-p", "proxy-"+a.Name, "-f", filepath.Join(proxyDir, "proxy.yaml"), "down", "--timeout", "1")
		down.Env = proxy.Env
		_ = down.Run()
		a.Cleanup() // before the network goes
	})
	return a
}

// load sends GET /version through the proxy every 20 ms (50 requests a second)
// until stopped, and counts what failed.
type load struct {
	mu       sync.Mutex
	ok, fail int
	failures []string
	versions []string
	answered map[string]int // requests answered, by version
	slowest  time.Duration
	stop     context.CancelFunc
	done     chan struct{}
}

func startLoad(port int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{stop: cancel, done: make(chan struct{}), answered: map[string]int{}}
	client := &http.Client{Timeout: 15 * time.Second}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var wg sync.WaitGroup
		for {
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/version", port))
				took := time.Since(start)
				l.mu.Lock()
				defer l.mu.Unlock()
				l.slowest = max(l.slowest, took)
				if err != nil {
					l.fail++
					l.failures = append(l.failures, err.Error())
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					l.fail++
					l.failures = append(l.failures, fmt.Sprintf("%d %s", resp.StatusCode, body))
					return
				}
				l.ok++
				v := strings.TrimSpace(string(body))
				l.answered[v]++
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

func TestRollingKeepsServing(t *testing.T) {
	t.Parallel()
	a := behindProxy(t, "1.0.0")
	args := []string{"--compose-file", "rolling.yaml", "--strategy", "rolling", "--app-port", "8080"}
	r := a.Deploy(args...)
	require.Equal(t, 0, r.Code, r.Log)
	testapp.WaitFor(t, "the proxy to serve 1.0.0", func() bool { _, v := a.Get("/version"); return v == "1.0.0" })

	// A healthy new version: no request fails, and the version switches.
	a.Release("2.0.0", false)
	l := startLoad(a.Port)
	r = a.Deploy(args...)
	time.Sleep(500 * time.Millisecond) // let the load see the new version settle
	l.finish()
	require.Equal(t, 0, r.Code, r.Log)
	t.Logf("rolling, healthy 2.0.0: %d requests ok, %d failed, answered by %v, slowest %s", l.ok, l.fail, l.answered, l.slowest)
	assert.Zero(t, l.fail, "failed requests during a rolling deploy: %v", l.failures)
	assert.Greater(t, l.ok, 50)
	assert.Equal(t, "2.0.0", l.versions[len(l.versions)-1], "versions seen: %v", l.versions)
	assert.Contains(t, r.Log, "stopping old ")
	assert.Len(t, strings.Fields(a.Containers()), 1, "only the new container is left")

	// A broken version: no request fails, the deploy fails, the old one serves on.
	a.Release("3.0.0", true)
	l = startLoad(a.Port)
	r = a.Deploy(args...)
	l.finish()
	assert.Equal(t, 1, r.Code, r.Log)
	t.Logf("rolling, broken 3.0.0: %d requests ok, %d failed, answered by %v, slowest %s", l.ok, l.fail, l.answered, l.slowest)
	assert.Zero(t, l.fail, "failed requests during a failed rolling deploy: %v", l.failures)
	assert.Contains(t, r.Log, "the new web containers did not get healthy")
	assert.Contains(t, r.Summary, "| rollback | skipped |  | the rolling deploy removed its new containers; the old ones never stopped serving |")
	_, v := a.Get("/version")
	assert.Equal(t, "2.0.0", v)
	assert.Len(t, strings.Fields(a.Containers()), 1, "no new container is left behind")
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

// BenchmarkDeployUnderLoad measures, side by side, the requests that fail through
// the proxy (50 a second) while deploying a healthy and then a broken version, with
// strategy recreate and with rolling. Recreate is the baseline: it stops the old
// container before the new one has proved itself.
func BenchmarkDeployUnderLoad(b *testing.B) {
	for _, strategy := range []string{"recreate", "rolling"} {
		b.Run(strategy, func(b *testing.B) {
			var healthyFail, brokenFail, requests, brokenAnswers int
			var slowest time.Duration
			for b.Loop() {
				b.StopTimer()
				a := behindProxy(b, "1.0.0")
				args := []string{"--compose-file", "rolling.yaml", "--strategy", strategy}
				require.Equal(b, 0, a.Deploy(args...).Code)
				testapp.WaitFor(b, "the proxy to serve 1.0.0", func() bool { _, v := a.Get("/version"); return v == "1.0.0" })
				b.StartTimer()

				a.Release("2.0.0", false)
				l := startLoad(a.Port)
				r := a.Deploy(args...)
				l.finish()
				require.Equal(b, 0, r.Code, r.Log)
				healthyFail += l.fail
				requests += l.ok + l.fail
				slowest = max(slowest, l.slowest)

				a.Release("3.0.0", true)
				l = startLoad(a.Port)
				r = a.Deploy(args...)
				l.finish()
				require.Equal(b, 1, r.Code, r.Log)
				brokenFail += l.fail
				requests += l.ok + l.fail
				brokenAnswers += l.answered["3.0.0"]
				slowest = max(slowest, l.slowest)
			}
			b.ReportMetric(float64(healthyFail)/float64(b.N), "failed/healthy-deploy")
			b.ReportMetric(float64(brokenFail)/float64(b.N), "failed/broken-deploy")
			b.ReportMetric(float64(requests)/float64(b.N), "requests/round")
			b.ReportMetric(float64(brokenAnswers)/float64(b.N), "answered-by-broken/round")
			b.ReportMetric(float64(slowest.Milliseconds()), "slowest-ms")
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
	assert.Regexp(t, `the new web containers did not get healthy \(\S+: health check http://[0-9.]+:8080/health failed after 3 attempts: HTTP 500 this build is broken on purpose\)`, r.Log)
	assert.Len(t, strings.Fields(a.Containers()), 1, "the new container was removed")
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0", v)
}
