package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

// TestRollbackActionOnWorkflowDispatch rolls back, through act, to a tag of the
// checkout (the sample app is built by the workflow, as CI would).
func TestRollbackActionOnWorkflowDispatch(t *testing.T) {
	t.Parallel()
	testenv.RequireCompose(t)
	repo, head := kitRepo(t, "feat: hello", "rollback.yaml")
	out, err := exec.Command("git", "-C", repo, "tag", "v0.0.1").CombinedOutput()
	require.NoError(t, err, string(out))
	vars, port, _ := deployVars(t, "rollback", head)

	// A typed confirmation other than ROLLBACK stops the job before anything.
	log, err := runAct(t, repo, "rollback.yaml", "workflow_dispatch", map[string]any{
		"inputs": map[string]any{"target_tag": "v0.0.1", "confirm": "yes"},
	}, vars...)
	require.Error(t, err, log)
	assert.Contains(t, log, `input confirm: "yes" is not ROLLBACK`)
	ps, err := exec.Command("docker", "ps", "-q", "--filter", "label=com.docker.compose.project="+projectOf(vars)).Output()
	require.NoError(t, err)
	assert.Empty(t, strings.TrimSpace(string(ps)), "nothing was started")

	log, err = runAct(t, repo, "rollback.yaml", "workflow_dispatch", map[string]any{
		"inputs": map[string]any{"target_tag": "v0.0.1", "confirm": "ROLLBACK"},
	}, vars...)
	require.NoError(t, err, log)
	seen := later(log)
	assert.Equal(t, "success", seen["status"], log)
	assert.Contains(t, log, "rolling back to v0.0.1: commit "+head)
	assert.Contains(t, log, "### deploykit rollback: success")
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/version", port))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, seen["version"], strings.TrimSpace(string(body)))
	assert.NotContains(t, log, dbPassword)
}

// projectOf finds the PROJECT variable among act's --var arguments.
func projectOf(vars []string) string {
	for _, v := range vars {
		if p, ok := strings.CutPrefix(v, "PROJECT="); ok {
			return p
		}
	}
	return ""
}
