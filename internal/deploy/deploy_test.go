package deploy_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUpgradeThenBrokenReleaseRollsBack deploys v1, then v2, then a v3 whose health
// always fails: v3 must be rolled back to v2 automatically, with a hand-off.
func TestUpgradeThenBrokenReleaseRollsBack(t *testing.T) {
	t.Parallel()
	a := newApp(t, "1.0.0")

	r := a.deploy()
	require.Equal(t, 0, r.code, r.log)
	_, v := a.get("/version")
	assert.Equal(t, "1.0.0", v)
	assert.True(t, a.secretArrived(), "DB_PASSWORD reached the container unchanged")
	assert.Equal(t, map[string]string{"version": "1.0.0", "previous-version": "", "status": "success", "skipped": "false",
		"rolled-back": "false", "url": "http://127.0.0.1:" + itoa(a.port) + "/health"}, r.outputs)
	a.noSecretsLeft(t)

	a.release("2.0.0", false)
	r = a.deploy()
	require.Equal(t, 0, r.code, r.log)
	_, v = a.get("/version")
	assert.Equal(t, "2.0.0", v)
	assert.Equal(t, "2.0.0", r.outputs["version"])
	assert.Equal(t, "1.0.0", r.outputs["previous-version"])
	for _, step := range []string{"guard", "preflight", "lock", "version", "secrets", "backup", "snapshot", "apply", "verify", "history"} {
		assert.Regexp(t, `(?m)^\| `+step+` \| (done|skipped) \| `, r.summary, "summary row for %s", step)
	}
	a.noSecretsLeft(t)

	a.release("3.0.0", true)
	r = a.deploy()
	assert.Equal(t, 1, r.code, r.log)
	assert.Contains(t, r.log, "::error::deploy of 3.0.0 failed at apply")
	assert.Contains(t, r.log, "rolled back to 2.0.0")
	_, v = a.get("/version")
	assert.Equal(t, "2.0.0", v, "the previous version serves again")
	assert.True(t, a.secretArrived())
	assert.Equal(t, "rolled-back", r.outputs["status"])
	assert.Equal(t, "true", r.outputs["rolled-back"])
	assert.Equal(t, "2.0.0", r.outputs["previous-version"])

	// The hand-off: job URL, failing step, the failing service's logs, and the
	// command to roll back by hand.
	assert.Contains(t, r.summary, "### deploykit deploy: rolled-back")
	assert.Contains(t, r.summary, "#### Hand-off: deploy of 3.0.0 failed at apply")
	assert.Contains(t, r.summary, "- Job: https://git.example.com/team/hello/actions/runs/4242")
	assert.Contains(t, r.summary, "- Failing step: **apply**: docker compose up failed")
	assert.Contains(t, r.summary, "Last 100 log lines of web")
	assert.Contains(t, r.summary, "hello 3.0.0 listening on :8080 (broken=true)")
	assert.Contains(t, r.summary, "docker tag deploykit-snapshot/"+a.name+"-web:")
	assert.Contains(t, r.summary, "DEPLOY_VERSION=2.0.0 DEPLOY_SHA=")
	assert.Contains(t, r.summary, "docker compose -p "+a.name+" -f "+a.dir+"/compose.yaml --env-file '<env file with your ENV_* secrets, without the prefix>' up -d --wait")
	assert.Regexp(t, `(?m)^\| rollback \| done \| .* \| restored 2\.0\.0 and verified it \|`, r.summary)
	a.noSecretsLeft(t)

	lines := a.historyLines()
	require.Len(t, lines, 4, strings.Join(lines, "\n"))
	assert.Regexp(t, `^\S+ \| `+a.name+` \| production \| deploy \| 1\.0\.0 \| success \| sha=[0-9a-f]{40}; job https://git.example.com/team/hello/actions/runs/4242$`, lines[0])
	assert.Regexp(t, `\| deploy \| 2\.0\.0 \| success \|`, lines[1])
	assert.Regexp(t, `\| deploy \| 3\.0\.0 \| failed \| sha=[0-9a-f]{40}; failed at apply: docker compose up failed`, lines[2])
	assert.Regexp(t, `\| rollback \| 2\.0\.0 \| success \| from 3\.0\.0 \(automatic\); sha=[0-9a-f]{40}$`, lines[3])

	for _, out := range []string{r.log, r.summary} {
		assert.NotContains(t, out, secret)
		assert.NotContains(t, out, `pa$$word`)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
