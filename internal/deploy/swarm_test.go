package deploy_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// swarmApp is the sample app as a swarm stack (examples/swarm/stack.yaml) in a
// single-node swarm, with its images built on the node.
type swarmApp struct {
	*testapp.App
	t          *testing.T
	waitAnswer func(string) // of the running load probe
}

func newSwarmApp(t *testing.T) *swarmApp {
	testenv.Swarm(t)
	a := testapp.New(t, "0.0.1")
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "swarm", "stack.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "stack.yaml"), data, 0o644))
	t.Cleanup(func() {
		_ = exec.Command("docker", "stack", "rm", a.Name).Run()
		testapp.WaitFor(t, "the stack's network to go", func() bool {
			out, _ := exec.Command("docker", "network", "ls", "-q", "--filter", "label=com.docker.stack.namespace="+a.Name).Output()
			return strings.TrimSpace(string(out)) == ""
		})
		for _, s := range swarmSecrets(t, a.Name) {
			_ = exec.Command("docker", "secret", "rm", s).Run()
		}
	})
	return &swarmApp{App: a, t: t}
}

// release commits version and builds its image on the node, as the deploy will
// name it (deploykit-hello:sha-<short>).
func (a swarmApp) release(version string, broken bool) {
	a.Release(version, broken)
	sha := a.Git("rev-parse", "--short=7", "HEAD")
	out, err := exec.Command("docker", "build", "-q", "-t", "deploykit-hello:sha-"+sha, a.Dir).CombinedOutput()
	require.NoError(a.t, err, "%s", out)
}

func (a swarmApp) deploy(extra ...string) testapp.Run {
	return a.Deploy(a.args(extra...)...)
}

func (a swarmApp) args(extra ...string) []string {
	return append([]string{"--target", "swarm", "--compose-file", "stack.yaml", "--resolve-image", "never",
		"--health-url", "", "--smoke-base-url", "", "--smoke-checks", "", "--wait-timeout", "2m"}, extra...)
}

// images are the images of the service's tasks that should run.
func (a swarmApp) images() []string {
	out, err := exec.Command("docker", "service", "ps", "--filter", "desired-state=running", "--format", "{{.Image}} {{.CurrentState}}", a.Name+"_web").Output()
	require.NoError(a.t, err)
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func swarmSecrets(t *testing.T, stack string) []string {
	out, err := exec.Command("docker", "secret", "ls", "--filter", "label=org.deploykit.stack="+stack, "--format", "{{.Name}}").Output()
	require.NoError(t, err)
	return strings.Fields(string(out))
}

// load starts the probe on the stack's overlay network, asking each task for
// /version ten times a second; stop returns its report. This engine's kernel has
// no IPVS, so neither the routing mesh nor a service's VIP answers here: the
// probe asks the tasks themselves (tasks.web), as a proxy on the network would.
func (a *swarmApp) load(path string) (stop func() string) {
	name := a.Name + "-load"
	out, err := exec.Command("docker", "run", "-d", "--name", name, "--network", a.Name+"_default", testenv.ProbeImage(a.t), "load", "tasks.web", "8080", path).CombinedOutput()
	require.NoError(a.t, err, "%s", out)
	a.t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	testapp.WaitFor(a.t, "the load probe", func() bool {
		logs, _ := exec.Command("docker", "logs", name).CombinedOutput()
		return strings.Contains(string(logs), "started")
	})
	a.waitAnswer = func(want string) {
		testapp.WaitFor(a.t, "the answer "+want, func() bool {
			logs, _ := exec.Command("docker", "logs", name).CombinedOutput()
			return strings.Contains(string(logs), "first answer: "+want)
		})
	}
	return func() string {
		require.NoError(a.t, exec.Command("docker", "stop", "-t", "10", name).Run())
		logs, err := exec.Command("docker", "logs", name).CombinedOutput()
		require.NoError(a.t, err)
		require.NoError(a.t, exec.Command("docker", "rm", name).Run())
		return string(logs)
	}
}

// TestSwarmDeploy deploys the sample stack to a single-node swarm: preflight
// refuses unsafe update settings; v1 then v2 replace every task; a new secret
// value gets a new secret and the old one goes; a version whose healthcheck fails
// is rolled back by Swarm, which deploykit reports as a failure while v2 serves.
func TestSwarmDeploy(t *testing.T) {
	t.Parallel()
	a := newSwarmApp(t)

	// Preflight names each service and what it lacks; nothing is deployed.
	bare := "services:\n  web:\n    image: deploykit-hello:not-built\n    deploy:\n      update_config:\n        order: stop-first\n"
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "bare.yaml"), []byte(bare), 0o644))
	r := a.deploy("--compose-file", "bare.yaml")
	assert.Equal(t, 2, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::target swarm needs safe updates: service web: add deploy.update_config.order: start-first, deploy.update_config.failure_action: rollback, deploy.update_config.monitor (e.g. 30s), healthcheck (or set strict-swarm: false to deploy anyway)")
	out, _ := exec.Command("docker", "stack", "ls", "--format", "{{.Name}}").Output()
	assert.NotContains(t, string(out), a.Name)

	// strict-swarm: false only warns; a dry run shows what would happen.
	r = a.deploy("--compose-file", "bare.yaml", "--strict-swarm=false", "--dry-run")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Log, "::warning::target swarm needs safe updates: service web: add deploy.update_config.order: start-first")
	assert.Contains(t, r.Log, "would run: docker stack deploy --with-registry-auth --detach=false --prune --resolve-image never -c "+a.Dir+"/bare.yaml")
	out, _ = exec.Command("docker", "stack", "ls", "--format", "{{.Name}}").Output()
	assert.NotContains(t, string(out), a.Name)

	a.release("1.0.0", false)
	r = a.deploy()
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, "success", r.Outputs["status"])
	assert.Equal(t, "1.0.0", r.Outputs["version"])
	sha1 := a.Git("rev-parse", "--short=7", "HEAD")
	for _, img := range a.images() {
		assert.True(t, strings.HasPrefix(img, "deploykit-hello:sha-"+sha1+" Running"), img)
	}
	secrets := swarmSecrets(t, a.Name)
	require.Len(t, secrets, 1)
	assert.Regexp(t, "^"+a.Name+`_DB_PASSWORD_[0-9a-f]{10}$`, secrets[0])
	plain := sha256.Sum256([]byte(testapp.Secret))
	assert.NotContains(t, secrets[0], hex.EncodeToString(plain[:])[:10], "the name is keyed, not a plain hash of the value")

	a.release("2.0.0", false)
	r = a.deploy()
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, "1.0.0", r.Outputs["previous-version"])
	sha2 := a.Git("rev-parse", "--short=7", "HEAD")
	images := a.images()
	assert.Len(t, images, 2)
	for _, img := range images {
		assert.True(t, strings.HasPrefix(img, "deploykit-hello:sha-"+sha2+" Running"), img)
	}
	assert.Contains(t, r.Log, a.Name+"_web: update completed")
	history := strings.Join(a.HistoryLines(), "\n")
	assert.Contains(t, history, "| production | deploy | 1.0.0 | success |")
	assert.Contains(t, history, "| production | deploy | 2.0.0 | success |")

	// The secret arrived as a file; a new value means a new secret, the old goes.
	stop := a.load("/secret")
	a.waitAnswer("DB_PASSWORD: set, " + itoa(len(testapp.Secret)) + " bytes")
	stop()
	a.Env = append(a.Env, "ENV_DB_PASSWORD=another value, rotated")
	r = a.deploy()
	require.Equal(t, 0, r.Code, r.Log)
	rotated := swarmSecrets(t, a.Name)
	require.Len(t, rotated, 1, "the old secret is removed")
	assert.NotEqual(t, secrets[0], rotated[0])
	assert.Contains(t, r.Log, "removed swarm secret "+secrets[0]+" (no longer used)")
	for _, secret := range []string{testapp.Secret, "another value, rotated"} {
		assert.NotContains(t, r.Log+r.Summary, secret)
	}

	// The plan, before anything changes: nothing for the same stack; a new
	// variable and a replica more for a changed one.
	r = a.deploy("--dry-run")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "#### Plan\n\nNothing changes: every service already runs as the compose file says.\n")
	stackFile, err := os.ReadFile(filepath.Join(a.Dir, "stack.yaml"))
	require.NoError(t, err)
	changed := strings.Replace(string(stackFile), "replicas: 2", "replicas: 3", 1)
	changed = strings.Replace(changed, "      DB_PASSWORD_FILE: /run/secrets/DB_PASSWORD\n", "      DB_PASSWORD_FILE: /run/secrets/DB_PASSWORD\n      NEW_FLAG: \"on\"\n", 1)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "changed.yaml"), []byte(changed), 0o644))
	r = a.deploy("--compose-file", "changed.yaml", "--dry-run")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "#### Plan\n\n- **web** (changed): environment +NEW_FLAG; replicas 2 → 3\n")
	assert.Contains(t, r.Outputs["plan"], `"changes":1`)
	assert.NotContains(t, r.Outputs["plan"]+r.Summary, "another value, rotated")

	// A version whose healthcheck fails: Swarm rolls it back; deploykit fails,
	// and v2 answers every request meanwhile.
	a.release("3.0.0", true)
	sha3 := a.Git("rev-parse", "--short=7", "HEAD")
	stop = a.load("/version")
	a.waitAnswer("2.0.0")
	start := time.Now()
	r = a.deploy()
	report := stop()
	t.Logf("broken deploy took %s; load: %s", time.Since(start).Round(time.Second), report)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::deploy of 3.0.0 failed at apply")
	assert.Contains(t, r.Log, "Swarm rolled the update of "+a.Name+"_web back")
	assert.Equal(t, "rolled-back", r.Outputs["status"])
	assert.Regexp(t, `(?m)^ok=\d+ failed=0$`, report)
	for _, img := range a.images() {
		assert.True(t, strings.HasPrefix(img, "deploykit-hello:sha-"+sha2+" Running"), img)
	}
	assert.Contains(t, r.Summary, "docker service rollback "+a.Name+"_web")
	assert.Contains(t, r.Summary, "Swarm rolled the update of "+a.Name+"_web back")
	assert.Regexp(t, `task \w+ \(deploykit-hello:sha-`+sha3+`\) on node \S+ ended \w+: `, r.Summary, "how the new task ended")
	assert.Contains(t, r.Summary, "log lines of web ("+a.Name+"_web.", "the failed task's logs")

	// Roll back to 1.0.0 by hand: the stack is redeployed at that version.
	r = a.Rollback("--target", "swarm", "--compose-file", "stack.yaml", "--resolve-image", "never",
		"--health-url", "", "--smoke-base-url", "", "--smoke-checks", "", "--confirm", "ROLLBACK", "--target-tag", "v1.0.0")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, "1.0.0", r.Outputs["version"])
	for _, img := range a.images() {
		assert.True(t, strings.HasPrefix(img, "deploykit-hello:sha-"+sha1+" Running"), img)
	}
	assert.Contains(t, strings.Join(a.HistoryLines(), "\n"), "| production | rollback | 1.0.0 | success |")

	// A broken release, its update cancelled as GitHub's runner cancels: the
	// rollback is handed to Swarm within the budget. Then killed as Gitea's
	// runner kills: Swarm rolls it back by its own failure_action. 1.0.0
	// answers every request throughout, and the next deploy, of a healthy
	// release, is green and records the killed one.
	a.release("4.0.0", true)
	stop = a.load("/version")
	a.waitAnswer("1.0.0")
	for _, forge := range []string{"github", "gitea"} {
		step, result := a.Step("deploy", a.args()...)
		step.WaitLog("Updating service "+a.Name+"_web", 2*time.Minute)
		if forge == "github" {
			last, took := step.CancelGitHub()
			r = result()
			assert.Equal(t, "SIGINT", last, r.Log)
			assert.Less(t, took, action.CancelBudget)
			assert.Contains(t, r.Log, "docker service rollback --detach=true "+a.Name+"_web")
		} else {
			step.KillGitea()
		}
	}
	a.release("5.0.0", false)
	r = a.deploy()
	report = stop()
	require.Equal(t, 0, r.Code, r.Log)
	assert.Regexp(t, `(?m)^ok=\d+ failed=0$`, report, "1.0.0, then 5.0.0, answered every request")
	assert.Contains(t, r.Summary, "a killed deploy of 4.0.0 recorded (killed in step apply")
	sha5 := a.Git("rev-parse", "--short=7", "HEAD")
	for _, img := range a.images() {
		assert.True(t, strings.HasPrefix(img, "deploykit-hello:sha-"+sha5+" Running"), img)
	}
}
