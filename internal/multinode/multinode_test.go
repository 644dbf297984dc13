// Package multinode_test runs the swarm target on a real three-node swarm
// (testenv.NewCluster): what a single-node swarm cannot show.
package multinode_test

import (
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

// stack is the sample app as a swarm stack of three replicas (Swarm spreads
// them over the nodes; a max_replicas_per_node of 1 would leave a start-first
// update no node to start the new task on), its
// image from the cluster's registry (HELLO_IMAGE), its DB_PASSWORD the swarm
// secret the kit makes of the job's ENV_DB_PASSWORD, its NODE_HOSTNAME the
// node's (testapp.Node2Broken fails there only), published nowhere: a proxy
// task reaches the tasks on the stack's overlay network (endpoint_mode dnsrr:
// this kernel has no IPVS for a virtual IP).
const stack = `services:
  web:
    image: ${HELLO_IMAGE}:${DEPLOY_TAG:-dev}
    environment:
      APP_VERSION: ${DEPLOY_VERSION:-dev}
      DB_PASSWORD_FILE: /run/secrets/DB_PASSWORD
      NODE_HOSTNAME: "{{.Node.Hostname}}"
    secrets:
      - DB_PASSWORD
    healthcheck:
      test: ["CMD", "/hello", "healthcheck"]
      interval: 1s
      timeout: 5s
      retries: 3
      start_period: 5s
    deploy:
      replicas: 3
      endpoint_mode: dnsrr
      update_config:
        order: start-first
        failure_action: rollback
        monitor: 5s
        parallelism: 1
      rollback_config:
        order: start-first
        parallelism: 1
    stop_grace_period: 10s
secrets:
  DB_PASSWORD:
    external: true
networks:
  default:
    attachable: true
`

// clusterApp is the sample app's checkout deployed to a three-node cluster: the
// job's engine is the manager's (DOCKER_HOST), logged in to the cluster's
// registry in a docker config of its own.
type clusterApp struct {
	*testapp.App
	c *testenv.Cluster
}

func newClusterApp(t testing.TB) *clusterApp {
	a := testapp.New(t, "1.0.0")
	c := testenv.NewCluster(t, a.Name, 3)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "stack.yaml"), []byte(stack), 0o644))
	a.Git("add", "stack.yaml")
	a.Git("commit", "-q", "-m", "the stack")
	a.Git("tag", "-f", "v1.0.0")
	config := t.TempDir() // with the user's CLI plugins (buildx)
	if home, err := os.UserHomeDir(); err == nil {
		require.NoError(t, os.Symlink(filepath.Join(home, ".docker", "cli-plugins"), filepath.Join(config, "cli-plugins")))
	}
	a.Env = append(a.Env, "DOCKER_HOST="+c.DockerHost(), "DOCKER_CONFIG="+config, "HELLO_IMAGE="+c.Registry+"/hello")
	login := exec.Command("docker", "--config", config, "-H", c.DockerHost(), "login", c.Registry, "-u", c.User, "--password-stdin")
	login.Stdin = strings.NewReader(c.Password)
	out, err := login.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return &clusterApp{App: a, c: c}
}

// build builds the checkout's image on the manager with build-image and pushes
// it to the cluster's registry; it returns the pushed digest.
func (a *clusterApp) build() string {
	a.T.Helper()
	r := a.Raw("build-image", "--image", a.c.Registry+"/hello", "--registry", a.c.Registry, "--username", a.c.User, "--password", a.c.Password)
	require.Equal(a.T, 0, r.Code, r.Log)
	require.NotEmpty(a.T, r.Outputs["digest"])
	return r.Outputs["digest"]
}

func (a *clusterApp) deploy(extra ...string) testapp.Run { return a.Deploy(deployArgs(extra...)...) }

// deployArgs are the cluster deploy's inputs: target swarm by digest, the
// tasks' own healthchecks deciding, wait-timeout 4m.
func deployArgs(extra ...string) []string {
	return append([]string{"--target", "swarm", "--compose-file", "stack.yaml", "--resolve-image", "always",
		"--health-url", "", "--smoke-base-url", "", "--smoke-checks", "", "--wait-timeout", "4m"}, extra...)
}

// task is one of web's tasks that should run.
type task struct{ node, image, state string }

// tasks are web's tasks that should run (desired state running).
func (a *clusterApp) tasks() []task {
	a.T.Helper()
	out := a.c.Docker(a.T, 0, "service", "ps", "--no-trunc", "--filter", "desired-state=running", "--format", "{{.Node}} {{.Image}} {{.CurrentState}}", a.Name+"_web")
	var got []task
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			got = append(got, task{f[0], f[1], f[2]})
		}
	}
	return got
}

// allRun checks that web's three tasks run digest.
func (a *clusterApp) allRun(digest string) []task {
	a.T.Helper()
	tasks := a.tasks()
	require.Len(a.T, tasks, 3, "three tasks: %v", tasks)
	for _, tk := range tasks {
		assert.True(a.T, strings.HasSuffix(tk.image, "@"+digest) && tk.state == "Running", "%s runs %s: %v", tk.node, digest, tk)
	}
	return tasks
}

// firstRelease builds, pushes and deploys the checkout's release (1.0.0), starts
// the proxy and waits until it answers 1.0.0; it returns the pushed digest and
// the proxy's URL.
func (a *clusterApp) firstRelease() (digest, url string) {
	a.T.Helper()
	digest = a.build()
	r := a.deploy()
	require.Equal(a.T, 0, r.Code, r.Log)
	url = a.proxy()
	answers(a.T, url, "1.0.0")
	return digest, url
}

// proxy runs the plain proxy (the probe: one address of tasks.web per request,
// no retries) as a service on the stack's network, on node1, its port published
// on node1's address; it returns the proxy's URL.
func (a *clusterApp) proxy() string {
	a.T.Helper()
	probe := testenv.ProbeImage(a.T)
	save := exec.Command("docker", "save", probe)
	load := exec.Command("docker", "-H", a.c.Nodes[0].Host(), "load")
	pipe, err := save.StdoutPipe()
	require.NoError(a.T, err)
	load.Stdin = pipe
	require.NoError(a.T, save.Start())
	out, err := load.CombinedOutput()
	require.NoError(a.T, err, "%s", out)
	require.NoError(a.T, save.Wait())
	a.c.Docker(a.T, 0, "service", "create", "-d", "--name", a.Name+"-proxy", "--network", a.Name+"_default",
		"--constraint", "node.hostname==node1", "--publish", "mode=host,target=8081,published=8081",
		probe, "proxy", "8081", "tasks.web", "8080")
	return "http://" + a.c.Nodes[0].IP + ":8081"
}

// answers waits until the proxy answers want.
func answers(t testing.TB, url, want string) {
	testapp.WaitFor(t, "the proxy to answer "+want, func() bool {
		resp, err := http.Get(url + "/version")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b)) == want
	})
}

// loadSeen is what a load saw: failed requests, answers by body, the last one.
type loadSeen struct {
	failed int
	seen   map[string]int
	last   string
}

// deployUnderLoad builds and pushes the release now in the checkout and deploys
// it while 50 requests a second go through the proxy at url; it returns the
// deploy, the pushed digest and what the load saw until a second after.
func (a *clusterApp) deployUnderLoad(url string) (testapp.Run, string, loadSeen) {
	a.T.Helper()
	digest := a.build()
	stop := load(url, 50)
	r := a.deploy()
	time.Sleep(time.Second) // what serves after the deploy
	var l loadSeen
	l.failed, l.seen, l.last = stop()
	a.T.Logf("through the proxy during the deploy: %d failed, answers %v", l.failed, l.seen)
	return r, digest, l
}

// load sends rate requests a second to url+/version until stop, which returns
// how many failed and who answered (body → count) and the last answer.
func load(url string, rate int) (stop func() (failed int, answers map[string]int, last string)) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var mu sync.Mutex
	answers := map[string]int{}
	failed, last := 0, ""
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for n := 0; n < 50*60*10; n++ { // bounded: ten minutes at most
			select {
			case <-done:
				return
			case <-tick.C:
			}
			wg.Go(func() {
				resp, err := client.Get(url + "/version")
				body := ""
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					body = strings.TrimSpace(string(b))
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%d %s", resp.StatusCode, body)
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					answers["error: "+err.Error()]++
					return
				}
				answers[body]++
				last = body
			})
		}
	})
	return func() (int, map[string]int, string) {
		close(done)
		wg.Wait()
		return failed, answers, last
	}
}

// TestClusterDeployByDigest: the image is built on the manager and pushed to
// the cluster's registry by build-image; the kit deploys it by digest with the
// registry's credentials sent to every node, three replicas on three nodes; the
// next release replaces them under 50 requests a second through a proxy that
// never retries, and not one fails. A rollback to the release before puts its
// digest back on every node, under the same load, and not one request fails.
// A rotated secret reaches every task and no node's disk.
func TestClusterDeployByDigest(t *testing.T) {
	t.Parallel()
	a := newClusterApp(t)
	first, url := a.firstRelease()
	nodes := map[string]bool{}
	for _, tk := range a.allRun(first) {
		nodes[tk.node] = true
	}
	assert.Len(t, nodes, 3, "one task on each node")

	a.Release("2.0.0", false)
	r, digest, l := a.deployUnderLoad(url)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Zero(t, l.failed, "failed requests through the proxy: %v", l.seen)
	assert.NotZero(t, l.seen["1.0.0"]+l.seen["2.0.0"], "the load ran")
	assert.Equal(t, "2.0.0", l.last, "answers: %v", l.seen)
	a.allRun(digest)

	// The rollback picks the release before from the history, resolves its
	// tag in the registry to the digest build-image pushed, and redeploys it.
	stop := load(url, 50)
	r = a.Rollback("--target", "swarm", "--compose-file", "stack.yaml", "--resolve-image", "always",
		"--health-url", "", "--smoke-base-url", "", "--smoke-checks", "", "--wait-timeout", "4m", "--confirm", "ROLLBACK")
	time.Sleep(time.Second) // what serves after the rollback
	failed, seen, last := stop()
	t.Logf("through the proxy during the rollback: %d failed, answers %v", failed, seen)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, "1.0.0", r.Outputs["version"])
	assert.Equal(t, "2.0.0", r.Outputs["previous-version"])
	assert.Zero(t, failed, "failed requests through the proxy: %v", seen)
	assert.Equal(t, "1.0.0", last, "answers: %v", seen)
	a.allRun(first)
	assert.Contains(t, strings.Join(a.HistoryLines(), "\n"), "| production | rollback | 1.0.0 | success |")

	// A rotated secret: the checkout's release again with a new value. A new
	// swarm secret reaches every task on every node, the old one is removed once
	// the deploy is verified, and the value is on no node's disk: Swarm keeps
	// secrets in its encrypted store and hands them to tasks in memory.
	old := a.secrets()
	require.Len(t, old, 1)
	const rotated = "rotated across the cluster"
	a.Env = append(a.Env, "ENV_DB_PASSWORD="+rotated)
	r = a.deploy()
	require.Equal(t, 0, r.Code, r.Log)
	now := a.secrets()
	require.Len(t, now, 1, "the old secret is removed")
	assert.NotEqual(t, old[0], now[0])
	assert.Contains(t, r.Log, "removed swarm secret "+old[0]+" (no longer used)")
	// Start-first places each new task while the old one still runs, so Swarm
	// may put two on one node; spreading to the emptiest node, it never puts
	// all three on one.
	nodes = map[string]bool{}
	for _, tk := range a.allRun(digest) {
		nodes[tk.node] = true
	}
	assert.GreaterOrEqual(t, len(nodes), 2, "the tasks run on more than one node: %v", nodes)
	// The proxy sends each request to the next task in turn: six in a row
	// ask each of the three tasks twice.
	for i := range 6 {
		assert.Equal(t, http.StatusOK, verifySecret(t, url, rotated), "request %d: the task has the new value", i)
		assert.Equal(t, http.StatusForbidden, verifySecret(t, url, testapp.Secret), "request %d: not the old one", i)
	}
	for _, n := range a.c.Nodes {
		// grep exits 1 when it finds nothing; the tasks' secrets are tmpfs mounts
		// under containers/<id>/mounts, in memory.
		out, err := exec.Command("docker", "exec", n.Container, "grep", "-rlsF", "--exclude-dir=mounts", rotated,
			"/var/lib/docker", "/etc", "/root", "/tmp", "/var/log", "/run").CombinedOutput()
		assert.Error(t, err, "%s: %s", n.Hostname, out)
		assert.Empty(t, strings.TrimSpace(string(out)), "%s keeps the secret's value on disk", n.Hostname)
	}
	assert.NotContains(t, r.Log+r.Summary, rotated)
}

// TestClusterNodeLostMidUpdate: node3's engine is killed while the update of
// 2.0.0 waits between tasks (update_config.delay 20s, after the first task was
// replaced). The kit's outcome is what Swarm did, and it ends within
// wait-timeout: an update Swarm completed on the nodes left is a success whose
// warning names node3; one it rolled back is rolled-back, one it paused is
// failed, one still going at wait-timeout fails saying so.
func TestClusterNodeLostMidUpdate(t *testing.T) {
	t.Parallel()
	a := newClusterApp(t)
	slow := strings.Replace(stack, "        monitor: 5s\n", "        monitor: 5s\n        delay: 20s\n", 1)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "stack.yaml"), []byte(slow), 0o644))
	a.Git("commit", "-q", "-am", "a delay between tasks")
	a.Git("tag", "-f", "v1.0.0")
	before, url := a.firstRelease()

	a.Release("2.0.0", false)
	digest := a.build()
	_, wait := a.Watched(deployArgs()...)
	svc := a.Name + "_web"
	testapp.WaitWithin(t, 4*time.Minute, "the first task of 2.0.0 to run, the others not yet", func() bool {
		updated := 0
		for _, tk := range a.tasks() {
			if strings.HasSuffix(tk.image, "@"+digest) && tk.state == "Running" {
				updated++
			}
		}
		return updated == 1
	})
	out, err := exec.Command("docker", "kill", a.c.Nodes[2].Container).CombinedOutput()
	require.NoError(t, err, "%s", out)
	r := wait()
	state := strings.TrimSpace(a.c.Docker(t, 0, "service", "inspect", "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", svc))
	t.Logf("Swarm's update ended %q; the kit exited %d, status %q", state, r.Code, r.Outputs["status"])
	assert.Regexp(t, `::warning::swarm node\(s\) not ready after the update: node3 \((down|unknown|disconnected)\); Swarm runs their tasks on the other nodes`, r.Log)
	running := map[string]int{}
	for _, tk := range a.tasks() {
		if tk.state == "Running" {
			running[tk.node]++
		}
	}
	t.Logf("running tasks by node: %v", running)
	switch state {
	case "completed":
		assert.Equal(t, 0, r.Code, r.Log)
		assert.Equal(t, "success", r.Outputs["status"])
		a.allRun(digest)
		assert.Zero(t, running["node3"], "nothing runs on the lost node")
		answers(t, url, "2.0.0")
	case "rollback_completed":
		assert.Equal(t, 1, r.Code, r.Log)
		assert.Equal(t, "rolled-back", r.Outputs["status"])
		a.allRun(before)
		answers(t, url, "1.0.0")
	case "paused", "rollback_paused":
		assert.Equal(t, 1, r.Code, r.Log)
		assert.Equal(t, "failed", r.Outputs["status"])
		assert.Contains(t, r.Log, "the update of "+svc+" is "+state)
	default:
		assert.Equal(t, 1, r.Code, r.Log)
		assert.Contains(t, r.Log, "did not finish its update within wait-timeout 4m0s", "Swarm's update is %q", state)
	}
}

// TestClusterBackupRestoreOnAnotherNode: a PostgreSQL service whose task runs on
// node2, its image in the cluster's registry, its overlay network attachable.
// backup with swarm-service finds the task on node2 and dumps it through a
// throwaway container of the task's image on that network, on the job's engine
// (the manager, which had to pull the image with the job's login); the backup
// is verified and restore-checked row for row. Rows deleted afterwards come
// back with restore, by the same way. No throwaway container is left.
func TestClusterBackupRestoreOnAnotherNode(t *testing.T) {
	t.Parallel()
	a := newClusterApp(t)
	manager := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("docker", args...)
		cmd.Env = a.BaseEnv() // the manager, with the job's login
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "docker %v: %s", args, out)
		return strings.TrimSpace(string(out))
	}
	pg := testenv.PostgresImage(t)
	image := a.c.Registry + "/postgres:15"
	save := exec.Command("docker", "save", pg)
	load := exec.Command("docker", "-H", a.c.DockerHost(), "load")
	pipe, err := save.StdoutPipe()
	require.NoError(t, err)
	load.Stdin = pipe
	require.NoError(t, save.Start())
	out, err := load.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, save.Wait())
	manager("tag", pg, image)
	manager("push", "-q", image)
	manager("rmi", image, pg) // the job's engine must pull it

	network, svc := a.Name+"-db", a.Name+"_db"
	const password = "db pass, with spaces"
	manager("network", "create", "-d", "overlay", "--attachable", network)
	manager("service", "create", "-d", "--name", svc, "--network", network, "--constraint", "node.hostname==node2",
		"--with-registry-auth", "-e", "POSTGRES_PASSWORD="+password, image)
	psql := func(sql string) string {
		t.Helper()
		id := strings.TrimSpace(a.c.Docker(t, 1, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+svc))
		require.NotEmpty(t, id, "the task's container on node2")
		return strings.TrimSpace(a.c.Docker(t, 1, "exec", id, "psql", "-X", "-At", "-U", "postgres", "-c", sql))
	}
	testapp.WaitWithin(t, 3*time.Minute, "PostgreSQL to answer on node2", func() bool {
		id := strings.TrimSpace(a.c.Docker(t, 1, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+svc))
		if id == "" {
			return false
		}
		return exec.Command("docker", "-H", a.c.Nodes[1].Host(), "exec", id, "pg_isready", "-U", "postgres", "-h", "/var/run/postgresql").Run() == nil
	})
	psql("CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 500) g")
	sidecars := func() string {
		return manager("ps", "-aq", "--filter", "label=org.deploykit.role=backup-restore-check")
	}

	dir := t.TempDir()
	r := a.Raw("backup", "--engine", "postgres", "--swarm-service", svc, "--db-password", password, "--dir", dir, "--dry-run", "true")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Regexp(t, svc+`: task \w+ runs on node node2, at [0-9.]+ on `+network+`: the tools would run in a throwaway container of `, r.Log)
	assert.Regexp(t, `docker run --rm -i --network `+network+` -e PGPASSWORD \S+ pg_dumpall -h [0-9.]+ --no-password -U postgres`, r.Log, "the plan")
	assert.Empty(t, sidecars(), "a dry run starts nothing")

	r = a.Raw("backup", "--engine", "postgres", "--swarm-service", svc, "--db-password", password, "--dir", dir,
		"--prefix", "db", "--restore-check", "true", "--min-size", "100")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Log, "PostgreSQL cluster of swarm service "+svc+" (pg_dumpall as postgres)")
	assert.Regexp(t, svc+`: task \w+ runs on node node2, at [0-9.]+ on `+network+`: the tools run in a throwaway container of `, r.Log)
	assert.Regexp(t, `restored into a scratch container of \S+: row counts of 1 tables \(500 rows\) equal the source`, r.Log)
	assert.FileExists(t, r.Outputs["path"])
	assert.NotContains(t, r.Log+r.Summary, password)
	assert.Empty(t, sidecars(), "the throwaway containers are removed")

	psql("DELETE FROM notes WHERE id > 100")
	r = a.Raw("restore", "--file", r.Outputs["path"], "--engine", "postgres", "--swarm-service", svc, "--db-password", password,
		"--dir", dir, "--history-file", a.History, "--confirm", "RESTORE")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, "500 125250", psql("SELECT count(*) || ' ' || sum(id) FROM notes"), "every row is back")
	assert.NotContains(t, r.Log+r.Summary, password)
	assert.Empty(t, sidecars(), "the throwaway containers are removed")

	// A service the manager does not know, and one with no running task: bad
	// input, nothing written, nothing started.
	empty := filepath.Join(t.TempDir(), "backups")
	r = a.Raw("backup", "--swarm-service", a.Name+"_nope", "--db-password", password, "--dir", empty)
	assert.Equal(t, 2, r.Code, r.Log)
	assert.Regexp(t, `::error::input swarm-service: .*`+a.Name+`_nope`, r.Log)
	manager("service", "scale", "-d", svc+"=0")
	testapp.WaitWithin(t, 2*time.Minute, "the database's task to stop", func() bool {
		return strings.TrimSpace(a.c.Docker(t, 1, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+svc)) == ""
	})
	r = a.Raw("backup", "--swarm-service", svc, "--db-password", password, "--dir", empty)
	assert.Equal(t, 2, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::input swarm-service: swarm service "+svc+" has 0 running tasks: a database server runs exactly one")
	assert.NoDirExists(t, empty, "nothing is written")
	assert.Empty(t, sidecars(), "nothing is started")
	assert.Equal(t, "bad-input", r.Outputs["status"])
}

// secrets are the swarm secrets the kit made for the stack.
func (a *clusterApp) secrets() []string {
	a.T.Helper()
	return strings.Fields(a.c.Docker(a.T, 0, "secret", "ls", "--filter", "label=org.deploykit.stack="+a.Name, "--format", "{{.Name}}"))
}

// verifySecret asks the task the proxy at url picks whether value is its
// DB_PASSWORD, and returns the HTTP status (200 yes, 403 no).
func verifySecret(t *testing.T, url, value string) int {
	t.Helper()
	resp, err := http.Post(url+"/secret/verify", "text/plain", strings.NewReader(value))
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestClusterFailureOnOneNode: a release that is unhealthy on node2 only. Swarm
// rolls the update back; the kit exits 1 naming the service, the node and the
// task's error (the task Swarm named, not one that was healthy on another node
// and stopped by the rollback); the old release runs on every node and answers
// last.
func TestClusterFailureOnOneNode(t *testing.T) {
	t.Parallel()
	a := newClusterApp(t)
	before, url := a.firstRelease()

	a.ReleaseBuild("2.0.0", testapp.Node2Broken)
	r, _, l := a.deployUnderLoad(url)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Equal(t, "rolled-back", r.Outputs["status"])
	assert.Regexp(t, `Swarm rolled the update of `+a.Name+`_web back: .*; task \w+ \(\S+\) on node node2 ended \w+: `, r.Log)
	assert.Contains(t, r.Summary, "on node2, ", "the failed task's logs are named by its node")
	assert.Equal(t, "1.0.0", l.last, "answers: %v", l.seen)
	a.allRun(before)
}

// BenchmarkClusterDeploy: a new release of the three-replica stack on the
// three-node cluster, built and pushed by build-image before the clock starts,
// deployed by `docker stack deploy --detach=false --with-registry-auth` alone
// (a stack of its own: the same file, update settings and registry, the image
// resolved by the CLI, a secret made by hand) and by deploykit deploy (target
// swarm, resolve-image always, the secret made from ENV_DB_PASSWORD, the update
// watched to its end), each node having pulled the image already. Reported: ms
// per deploy of each and their ratio.
func BenchmarkClusterDeploy(b *testing.B) {
	a := newClusterApp(b)
	bare := "bare" + a.Name
	secret := filepath.Join(b.TempDir(), "secret")
	require.NoError(b, os.WriteFile(secret, []byte(testapp.Secret), 0o600))
	a.c.Docker(b, 0, "secret", "create", "DB_PASSWORD", secret)
	stackDeploy := func(version, tag string) {
		cmd := exec.Command("docker", "stack", "deploy", "--detach=false", "--with-registry-auth", "-c", "stack.yaml", bare)
		cmd.Dir = a.Dir
		cmd.Env = append(a.BaseEnv(), "DEPLOY_VERSION="+version, "DEPLOY_TAG="+tag)
		out, err := cmd.CombinedOutput()
		require.NoError(b, err, "%s", out)
	}
	n := 0
	// Every node has the release's image before either deploys it: both are
	// timed without the pull.
	release := func() (version, tag string) {
		n++
		version = fmt.Sprintf("1.%d.0", n)
		a.Release(version, false)
		a.build()
		tag = "sha-" + a.Git("rev-parse", "--short=7", "HEAD")
		for _, node := range a.c.Nodes {
			pull := exec.Command("docker", "pull", "-q", a.c.Registry+"/hello:"+tag)
			pull.Env = append(a.BaseEnv(), "DOCKER_HOST="+node.Host())
			out, err := pull.CombinedOutput()
			require.NoError(b, err, "%s", out)
		}
		return version, tag
	}
	stackDeploy(release()) // both stacks exist before the clock starts
	r := a.deploy()
	require.Equal(b, 0, r.Code, r.Log)
	testenv.Deploykit(b)
	var tBare, tKit time.Duration
	for b.Loop() {
		version, tag := release()
		start := time.Now()
		stackDeploy(version, tag)
		tBare += time.Since(start)

		start = time.Now()
		r := a.deploy()
		tKit += time.Since(start)
		require.Equal(b, 0, r.Code, r.Log)
	}
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
	b.ReportMetric(ms(tBare), "ms-stack-deploy/op")
	b.ReportMetric(ms(tKit), "ms-deploykit/op")
	b.ReportMetric(ms(tKit)/ms(tBare), "deploykit/stack-deploy")
}
