package docker

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

func engineHost() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return "unix:///var/run/docker.sock"
}

func TestDirect(t *testing.T) {
	testenv.RequireDocker(t)
	c, err := New(os.Environ())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Ping(context.Background()))
	root, free, err := c.FreeDisk(context.Background())
	require.NoError(t, err)
	assert.NotEmpty(t, root)
	assert.Greater(t, free, 0.0)
	ok, err := c.NetworkExists(context.Background(), "bridge")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = c.NetworkExists(context.Background(), "deploykit-no-such-network")
	require.NoError(t, err)
	assert.False(t, ok)
}

// TestDockerContext reaches the engine through a docker context, as a job with
// DOCKER_CONTEXT set does, via the docker CLI's dial-stdio.
func TestDockerContext(t *testing.T) {
	testenv.RequireDocker(t)
	config := t.TempDir() // contexts live in the CLI's config: keep the user's untouched
	out, err := exec.Command("docker", "--config", config, "context", "create", "deploykit-test", "--docker", "host="+engineHost()).CombinedOutput()
	require.NoError(t, err, string(out))
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "DOCKER_CONFIG=" + config, "DOCKER_CONTEXT=deploykit-test"}
	c, err := New(env)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "context deploykit-test", c.Host())
	assert.False(t, c.IsLocal())
	require.NoError(t, c.Ping(context.Background()))
	_, err = c.ProjectContainers(context.Background(), "deploykit-no-such-project")
	require.NoError(t, err)

	// A context that does not exist is a clear error, not a hang.
	c, err = New(append(env[:3:3], "DOCKER_CONTEXT=deploykit-missing"))
	require.NoError(t, err)
	err = c.Ping(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not answer")
	assert.Contains(t, err.Error(), "deploykit-missing", "the CLI's own message says which context")
}
