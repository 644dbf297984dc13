package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/secretfile"
)

// TestSwarmSecretNamesAreKeyed: the part of a secret's name that follows its value
// is an HMAC under a random key of the host's (0600, made once), not a plain hash
// anyone could test guesses against.
func TestSwarmSecretNamesAreKeyed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", secretKeyFile)
	dry, err := secretNameKey(path, false)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, 32), dry)
	assert.NoFileExists(t, path, "a dry run makes no key")

	key, err := secretNameKey(path, true)
	require.NoError(t, err)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	again, err := secretNameKey(path, true)
	require.NoError(t, err)
	assert.Equal(t, key, again, "the key is kept: unchanged values keep their names")

	v := secretfile.Var{Key: "DB_PASSWORD", Value: "hunter2"}
	name := secretVersion(key, "app", v)
	assert.Regexp(t, `^[0-9a-f]{10}$`, name)
	plain := sha256.Sum256([]byte(v.Value))
	assert.NotEqual(t, hex.EncodeToString(plain[:])[:10], name)
	assert.Equal(t, name, secretVersion(key, "app", v))
	assert.NotEqual(t, name, secretVersion(key, "app", secretfile.Var{Key: "DB_PASSWORD", Value: "hunter3"}))
	assert.NotEqual(t, name, secretVersion(make([]byte, 32), "app", v), "another key, another name")

	// A key file that is a symlink, or readable by others, is refused.
	require.NoError(t, os.Chmod(path, 0o644))
	_, err = secretNameKey(path, true)
	assert.EqualError(t, err, "swarm secret key "+path+" is not a 32-byte 0600 file of this user's: remove it (the next deploy makes a new one and renames the stack's secrets once)")
	link := filepath.Join(t.TempDir(), secretKeyFile)
	require.NoError(t, os.Symlink(path, link))
	_, err = secretNameKey(link, true)
	assert.ErrorContains(t, err, "swarm secret key "+link+": open "+link+": too many levels of symbolic links")
}

func TestInterpolatedSecrets(t *testing.T) {
	file := filepath.Join(t.TempDir(), "stack.yaml")
	stack := "services:\n  web:\n    image: app:${DEPLOY_TAG}\n    environment:\n      TOKEN: ${API_TOKEN:-unset}\n      PW: $DB_PASSWORD\n      HOME_DIR: $$HOME\n"
	require.NoError(t, os.WriteFile(file, []byte(stack), 0o644))
	secrets := []secretfile.Var{{Key: "DB_PASSWORD"}, {Key: "API_TOKEN"}, {Key: "HOME"}, {Key: "UNUSED"}}
	keys, err := interpolatedSecrets(file, secrets)
	require.NoError(t, err)
	assert.Equal(t, []string{"API_TOKEN", "DB_PASSWORD"}, keys, "$$HOME is a literal $HOME, not interpolation")

	require.NoError(t, os.WriteFile(file, []byte("services: [\n"), 0o644))
	_, err = interpolatedSecrets(file, secrets)
	assert.ErrorContains(t, err, "compose file "+file+" is not valid YAML: ")
}

// TestNodesDown: only active nodes that are not ready are named (a drained or
// paused node is the operator's choice, not a loss), with their state.
func TestNodesDown(t *testing.T) {
	assert.Empty(t, nodesDown([]docker.Node{{Hostname: "node1", State: "ready", Availability: "active"}}))
	assert.Equal(t, "node2 (down), node3 (unknown)", nodesDown([]docker.Node{
		{Hostname: "node1", State: "ready", Availability: "active"},
		{Hostname: "node2", State: "down", Availability: "active"},
		{Hostname: "node3", State: "unknown", Availability: "active"},
		{Hostname: "node4", State: "down", Availability: "drain"},
	}))
}
