package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestPostgres proves the provisioned server starts and answers queries.
func TestPostgres(t *testing.T) {
	url := Postgres(t)
	psql, ok := LookTool("psql")
	if !ok {
		missing(t, "psql")
	}
	out, err := exec.Command(psql, url, "-XAtc", "select 40 + 2").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "42", strings.TrimSpace(string(out)))
}

func TestDockerAndCompose(t *testing.T) {
	RequireCompose(t)
	tag := ProbeImage(t)
	out, err := exec.Command("docker", "run", "--rm", "-e", "X=hi", tag, "X", "Y").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "X=6869\nY!unset\n", string(out))
}

func TestTools(t *testing.T) {
	for _, tool := range []string{"act", "actionlint"} {
		RequireTool(t, tool)
	}
}

// TestFreePortIsReserved: FreePort hands out ports below the kernel's
// ephemeral range (where neither Docker nor outgoing connections pick theirs),
// and never the same one twice while the test that has it runs.
func TestFreePortIsReserved(t *testing.T) {
	lo, hi := reservedRange()
	seen := map[int]bool{}
	for range 100 {
		p := FreePort(t)
		require.GreaterOrEqual(t, p, lo)
		require.Less(t, p, hi)
		require.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
	}
}

// TestByHost: the example's reverse_proxy block, once per alias, each behind a
// Host matcher; other hosts get 421 — inside the proxy stack's config, which
// stays valid YAML.
func TestByHost(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(RepoRoot(t), "examples", "rolling", "proxy.yaml"))
	require.NoError(t, err)
	stack := proxyByHost(t, data, []string{"s01-x", "s02-x"})
	var doc struct {
		Configs struct {
			Caddyfile struct{ Content string } `yaml:"caddyfile"`
		} `yaml:"configs"`
	}
	require.NoError(t, yaml.Unmarshal(stack, &doc))
	got := doc.Configs.Caddyfile.Content
	assert.Contains(t, got, "\t@a0 host s01-x\n\thandle @a0 {\n\t\treverse_proxy {\n\t\t\tdynamic a {\n\t\t\t\tname s01-x\n")
	assert.Contains(t, got, "\t\t}\n\t}\n\t@a1 host s02-x\n\thandle @a1 {\n")
	assert.Equal(t, 2, strings.Count(got, "lb_try_duration 10s"))
	assert.Equal(t, strings.Count(got, "{"), strings.Count(got, "}"), got)
	assert.True(t, strings.HasSuffix(got, "\thandle {\n\t\trespond \"no such service\" 421\n\t}\n}\n"), got)
}
