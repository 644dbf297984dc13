package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// TestUpgradeThenBrokenReleaseRollsBack deploys v1, then v2, then a v3 whose health
// always fails: v3 must be rolled back to v2 automatically, with a hand-off.
func TestUpgradeThenBrokenReleaseRollsBack(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")

	r := a.Deploy()
	require.Equal(t, 0, r.Code, r.Log)
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0", v)
	assert.True(t, a.SecretArrived(), "DB_PASSWORD reached the container unchanged")
	assert.Contains(t, r.Outputs["plan"], `{"services":[{"service":"web","change":"added","image":{"to":"deploykit-hello:sha-`)
	assert.Contains(t, r.Outputs["plan"], `"to_id":"built at apply"}}],"changes":1}`)
	delete(r.Outputs, "plan")
	assert.Equal(t, map[string]string{"version": "1.0.0", "previous-version": "", "status": "success", "skipped": "false",
		"rolled-back": "false", "url": "http://127.0.0.1:" + itoa(a.Port) + "/health"}, r.Outputs)
	a.NoSecretsLeft(t)

	a.Release("2.0.0", false)
	r = a.Deploy()
	require.Equal(t, 0, r.Code, r.Log)
	_, v = a.Get("/version")
	assert.Equal(t, "2.0.0", v)
	assert.Equal(t, "2.0.0", r.Outputs["version"])
	assert.Equal(t, "1.0.0", r.Outputs["previous-version"])
	for _, step := range []string{"guard", "preflight", "lock", "version", "secrets", "backup", "snapshot", "apply", "verify", "history"} {
		assert.Regexp(t, `(?m)^\| `+step+` \| (done|skipped) \| `, r.Summary, "summary row for %s", step)
	}
	a.NoSecretsLeft(t)

	a.Release("3.0.0", true)
	r = a.Deploy()
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::deploy of 3.0.0 failed at apply")
	assert.Contains(t, r.Log, "rolled back to 2.0.0")
	_, v = a.Get("/version")
	assert.Equal(t, "2.0.0", v, "the previous version serves again")
	assert.True(t, a.SecretArrived())
	assert.Equal(t, "rolled-back", r.Outputs["status"])
	assert.Equal(t, "true", r.Outputs["rolled-back"])
	assert.Equal(t, "2.0.0", r.Outputs["previous-version"])

	// The hand-off: job URL, failing step, the failing service's logs, and the
	// command to roll back by hand.
	assert.Contains(t, r.Summary, "### deploykit deploy: rolled-back")
	assert.Contains(t, r.Summary, "#### Hand-off: deploy of 3.0.0 failed at apply")
	assert.Contains(t, r.Summary, "- Job: https://git.example.com/team/hello/actions/runs/4242")
	assert.Contains(t, r.Summary, "- Failing step: **apply**: docker compose up failed")
	assert.Contains(t, r.Summary, "<details><summary>The command that failed</summary>", "the reason leads, the command line is kept apart")
	assert.NotContains(t, r.Summary, "- Failing step: **apply**: docker compose -p", "no command line before the reason")
	assert.Contains(t, r.Summary, "Last 100 log lines of web")
	assert.Contains(t, r.Summary, "hello 3.0.0 listening on :8080 (broken=true)")
	assert.Contains(t, r.Summary, "docker tag deploykit-snapshot/"+a.Name+"-web:")
	assert.Contains(t, r.Summary, "DEPLOY_VERSION=2.0.0 DEPLOY_SHA=")
	assert.Contains(t, r.Summary, "docker compose -p "+a.Name+" -f "+a.Dir+"/compose.yaml --env-file '<env file with your ENV_* secrets, without the prefix>' up -d --wait")
	assert.Regexp(t, `(?m)^\| rollback \| done \| .* \| restored 2\.0\.0 and verified it \|`, r.Summary)
	a.NoSecretsLeft(t)

	lines := a.HistoryLines()
	require.Len(t, lines, 4, strings.Join(lines, "\n"))
	assert.Regexp(t, `^\S+ \| `+a.Name+` \| production \| deploy \| 1\.0\.0 \| success \| sha=[0-9a-f]{40}; job https://git.example.com/team/hello/actions/runs/4242$`, lines[0])
	assert.Regexp(t, `\| deploy \| 2\.0\.0 \| success \|`, lines[1])
	assert.Regexp(t, `\| deploy \| 3\.0\.0 \| failed \| sha=[0-9a-f]{40}; failed at apply: docker compose up failed`, lines[2])
	assert.Regexp(t, `\| rollback \| 2\.0\.0 \| success \| from 3\.0\.0 \(automatic\); sha=[0-9a-f]{40}$`, lines[3])

	for _, out := range []string{r.Log, r.Summary} {
		assert.NotContains(t, out, testapp.Secret)
		assert.NotContains(t, out, `pa$$word`)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestDeployThroughADockerContext deploys with DOCKER_CONTEXT naming the engine:
// docker compose and the kit's own Engine API calls both go through it.
func TestDeployThroughADockerContext(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	config := t.TempDir()
	home, err := os.UserHomeDir()
	require.NoError(t, err)
	plugins := filepath.Join(home, ".docker", "cli-plugins")
	if dc := os.Getenv("DOCKER_CONFIG"); dc != "" {
		plugins = filepath.Join(dc, "cli-plugins")
	}
	require.NoError(t, os.Symlink(plugins, filepath.Join(config, "cli-plugins")))
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	out, err := exec.Command("docker", "--config", config, "context", "create", "deploykit-e2e", "--docker", "host="+host).CombinedOutput()
	require.NoError(t, err, string(out))
	a.Env = []string{"DOCKER_CONFIG=" + config, "DOCKER_CONTEXT=deploykit-e2e"}

	r := a.Deploy()
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "disk not checked (remote engine context deploykit-e2e)")
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0", v)
}

// TestComposeFileSecret deploys examples/hello/compose.secrets.yaml: the password
// reaches the app through the kit's env file as a compose file-based secret, and
// only as the file /run/secrets/db_password — nothing in the container's
// configuration holds it.
func TestComposeFileSecret(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello", "compose.secrets.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "compose.secrets.yaml"), data, 0o644))
	r := a.Deploy("--compose-file", "compose.secrets.yaml")
	require.Equal(t, 0, r.Code, r.Log)
	assert.True(t, a.SecretArrived(), "the app read the secret from its file")
	ids := strings.Fields(a.Containers())
	require.Len(t, ids, 1)
	inspect, err := exec.Command("docker", "inspect", ids[0]).Output()
	require.NoError(t, err)
	assert.NotContains(t, string(inspect), testapp.Secret, "docker inspect shows no value")
	assert.Contains(t, string(inspect), "DB_PASSWORD_FILE=/run/secrets/db_password")
	assert.NotContains(t, r.Log, testapp.Secret)
	a.NoSecretsLeft(t)
}

// TestDefaultOptionsAreTheSpecsDefaults: what rollback starts from for the deploy
// inputs it does not have.
func TestDefaultOptionsAreTheSpecsDefaults(t *testing.T) {
	o := deploy.DefaultOptions()
	assert.Equal(t, 2*time.Minute, o.WaitTimeout)
	assert.Equal(t, 20.0, o.MinFreeDisk)
	assert.Equal(t, "none", o.VersionBump)
	assert.True(t, o.AutoRollback)
	assert.Equal(t, "compose", o.Target)
	assert.Equal(t, 10, o.HealthAttempts)
	assert.Equal(t, "failure", o.Notify.On)
	assert.Equal(t, 7, o.Backup.KeepDaily)
	assert.False(t, o.Backup.Enabled)
}
