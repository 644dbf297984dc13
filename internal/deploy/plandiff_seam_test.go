package deploy

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/docker"
)

// TestPlanDiffShowsNoCommandText (defects audit, item 7): a healthcheck whose
// command carries a password shows in the plan — summary and JSON output — only
// as a changed digest, never as text; an environment name with control
// characters is shown escaped, so it cannot start a line of its own.
func TestPlanDiffShowsNoCommandText(t *testing.T) {
	const oldPW, newPW = "old-r00t-pw", "n3w-r00t-pw"
	r := &running{count: 1, details: docker.Details{Image: "db:1", ImageID: "sha256:aa",
		Healthcheck: "CMD mysqladmin ping -uroot -p" + oldPW + " (interval 1s, timeout 2s, retries 3)",
		Env:         []string{"A=1", "EVIL\n::warning::x\n## h=1"}}}
	w := &wanted{image: "db:1", imageID: "sha256:aa", replicas: 1, env: map[string]string{"A": "1", "B\r\x1b[2J": "2"},
		healthcheck: "CMD curl -H \"Authorization: Bearer " + newPW + "\" http://db (interval 1s, timeout 2s, retries 3)"}
	c := diffService("db", r, w)
	require.NotNil(t, c.Healthcheck)
	md := PlanDiff{Services: []ServiceChange{c}, Changes: 1}.Markdown()
	js, err := json.Marshal(PlanDiff{Services: []ServiceChange{c}, Changes: 1})
	require.NoError(t, err)
	for _, out := range []string{md, string(js)} {
		assert.NotContains(t, out, oldPW)
		assert.NotContains(t, out, newPW)
		assert.NotContains(t, out, "mysqladmin")
	}
	assert.Equal(t, "- **db** (changed): environment +B\\r\\x1b[2J −EVIL\\n::warning::x\\n## h; healthcheck "+
		textDigest(r.details.Healthcheck)+" → "+textDigest(w.healthcheck)+"\n", md)
	assert.Regexp(t, `^sha256:[0-9a-f]{12}$`, c.Healthcheck.From)

	// A healthcheck added where there was none.
	r.details.Healthcheck = ""
	assert.Equal(t, "none", diffService("db", r, w).Healthcheck.From)
}
