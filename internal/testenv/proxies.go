package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Proxies makes the route network (with a subnet of its own) and, on it, the
// example's proxy stack (examples/rolling/proxy.yaml: Caddy) and a plain proxy
// that resolves the alias for every request and never retries, both to alias at
// port 8080, and returns their loopback ports. On cleanup both proxies go, then
// before runs (the app stack's own cleanup), then the network.
func Proxies(t testing.TB, name, network, alias string, before func()) (caddyPort, plainPort int) {
	t.Helper()
	caddy := CaddyImage(t)
	probe := ProbeImage(t)
	SubnetNetwork(t, network)
	proxyDir := t.TempDir()
	for _, f := range []string{"proxy.yaml", "Caddyfile"} {
		data, err := os.ReadFile(filepath.Join(RepoRoot(t), "examples", "rolling", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(proxyDir, f), data, 0o644))
	}
	caddyPort, plainPort = FreePort(t), FreePort(t)
	proxy := exec.Command("docker", "compose", "-p", "proxy-"+name, "-f", filepath.Join(proxyDir, "proxy.yaml"), "up", "-d", "--no-build", "--wait")
	proxy.Env = append(os.Environ(), "EDGE_NETWORK="+network, "APP_ALIAS="+alias, fmt.Sprintf("PROXY_PORT=%d", caddyPort), "CADDY_TAG="+strings.TrimPrefix(caddy, "deploykit-caddy:"))
	out, err := proxy.CombinedOutput()
	require.NoError(t, err, string(out))
	plain := "plain-" + name
	out, err = exec.Command("docker", "run", "-d", "--name", plain, "--network", network,
		"-p", fmt.Sprintf("127.0.0.1:%d:8081", plainPort), probe, "proxy", "8081", alias, "8080").CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() {
		_ = exec.Command("docker", "rm", "-f", plain).Run()
		down := exec.Command("docker", "compose", "-p", "proxy-"+name, "-f", filepath.Join(proxyDir, "proxy.yaml"), "down", "--timeout", "1")
		down.Env = proxy.Env
		_ = down.Run()
		before()
	})
	return caddyPort, plainPort
}
