package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

// TestDeployActionWithTargetSwarm runs the deploy action with target: swarm
// through act against a single-node swarm.
func TestDeployActionWithTargetSwarm(t *testing.T) {
	t.Parallel()
	testenv.Swarm(t)
	repo, head := kitRepo(t, "feat: hello on swarm", "swarm.yaml")
	vars, _, history := deployVars(t, "swarm", head)
	project := vars[1][len("PROJECT="):]
	t.Cleanup(func() {
		_ = exec.Command("docker", "stack", "rm", project).Run()
		out, _ := exec.Command("docker", "secret", "ls", "-q", "--filter", "label=org.deploykit.stack="+project).Output()
		for _, id := range strings.Fields(string(out)) {
			_ = exec.Command("docker", "secret", "rm", id).Run()
		}
	})

	log, err := runAct(t, repo, "swarm.yaml", "workflow_dispatch", map[string]any{}, vars...)
	require.NoError(t, err, log)
	seen := later(log)
	assert.Equal(t, "success", seen["status"], log)
	assert.Contains(t, log, "docker stack deploy --with-registry-auth --detach=false --prune --resolve-image never")
	assert.Contains(t, log, project+"_web: created, every task running")
	assert.NotContains(t, log, dbPassword)

	out, err := exec.Command("docker", "service", "ps", "--filter", "desired-state=running", "--format", "{{.Image}}", project+"_web").Output()
	require.NoError(t, err)
	images := strings.Fields(string(out))
	assert.Len(t, images, 2)
	for _, img := range images {
		assert.Equal(t, "deploykit-hello:sha-"+head[:7], img)
	}
	data, err := os.ReadFile(history)
	require.NoError(t, err)
	assert.Contains(t, string(data), "| e2e | deploy | "+seen["version"]+" | success |")
}
