package testenv

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
