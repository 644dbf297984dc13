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
	return ProxiesFor(t, name, network, []string{alias}, before)
}

// ProxiesFor is Proxies for several services: with more than one alias, a
// request goes to the alias its Host header names, through Caddy (one host
// matcher per alias, each with the example's reverse_proxy settings) and the
// plain proxy alike.
func ProxiesFor(t testing.TB, name, network string, aliases []string, before func()) (caddyPort, plainPort int) {
	t.Helper()
	caddy := CaddyImage(t)
	probe := ProbeImage(t)
	SubnetNetwork(t, network)
	proxyDir := t.TempDir()
	for _, f := range []string{"proxy.yaml", "Caddyfile"} {
		data, err := os.ReadFile(filepath.Join(RepoRoot(t), "examples", "rolling", f))
		require.NoError(t, err)
		if f == "Caddyfile" && len(aliases) > 1 {
			data = byHost(t, string(data), aliases)
		}
		require.NoError(t, os.WriteFile(filepath.Join(proxyDir, f), data, 0o644))
	}
	upstream := aliases[0]
	if len(aliases) > 1 {
		upstream = "*"
	}
	caddyPort, plainPort = FreePort(t), FreePort(t)
	proxy := exec.Command("docker", "compose", "-p", "proxy-"+name, "-f", filepath.Join(proxyDir, "proxy.yaml"), "up", "-d", "--no-build", "--wait")
	proxy.Env = append(os.Environ(), "EDGE_NETWORK="+network, "APP_ALIAS="+aliases[0], fmt.Sprintf("PROXY_PORT=%d", caddyPort), "CADDY_TAG="+strings.TrimPrefix(caddy, "deploykit-caddy:"))
	out, err := proxy.CombinedOutput()
	require.NoError(t, err, string(out))
	plain := "plain-" + name
	out, err = exec.Command("docker", "run", "-d", "--name", plain, "--network", network,
		"-p", fmt.Sprintf("127.0.0.1:%d:8081", plainPort), probe, "proxy", "8081", upstream, "8080").CombinedOutput()
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

// byHost turns the example's Caddyfile, one reverse_proxy to {$APP_ALIAS}, into
// one per alias, each chosen by the request's Host header.
func byHost(t testing.TB, caddyfile string, aliases []string) []byte {
	t.Helper()
	site := strings.Index(caddyfile, ":8080 {")
	start := strings.Index(caddyfile, "\treverse_proxy {")
	end := strings.Index(caddyfile[start:], "\n\t}\n")
	require.True(t, site >= 0 && start > site && end > 0, "examples/rolling/Caddyfile: one :8080 site with one reverse_proxy block")
	block := caddyfile[start : start+end+4] // through the closing brace and its newline
	var b strings.Builder
	b.WriteString(caddyfile[:site] + ":8080 {\n")
	for i, alias := range aliases {
		fmt.Fprintf(&b, "\t@a%d host %s\n\thandle @a%d {\n", i, alias, i)
		for _, line := range strings.SplitAfter(strings.ReplaceAll(block, "{$APP_ALIAS:hello-web}", alias), "\n") {
			if line != "" {
				b.WriteString("\t" + line)
			}
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("\thandle {\n\t\trespond \"no such service\" 421\n\t}\n}\n")
	return []byte(b.String())
}
