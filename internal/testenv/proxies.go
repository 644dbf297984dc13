package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	return proxiesOn(t, "", "127.0.0.1", name, network, aliases, before)
}

// proxiesOn is ProxiesFor on the engine dockerHost ("" the host's), the ports
// published on bind.
func proxiesOn(t testing.TB, dockerHost, bind, name, network string, aliases []string, before func()) (caddyPort, plainPort int) {
	t.Helper()
	caddy := CaddyImage(t)
	probe := ProbeImage(t)
	env := os.Environ()
	if dockerHost != "" {
		env = append(env, "DOCKER_HOST="+dockerHost)
	}
	docker := func(args ...string) *exec.Cmd {
		c := exec.Command("docker", args...)
		c.Env = env
		return c
	}
	subnetNetworkOn(t, dockerHost, network)
	proxyDir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(RepoRoot(t), "examples", "rolling", "proxy.yaml"))
	require.NoError(t, err)
	if len(aliases) > 1 {
		data = proxyByHost(t, data, aliases)
	}
	require.NoError(t, os.WriteFile(filepath.Join(proxyDir, "proxy.yaml"), data, 0o644))
	upstream := aliases[0]
	if len(aliases) > 1 {
		upstream = "*"
	}
	// Port 0: the engine picks each published port, read back below.
	proxy := docker("compose", "-p", "proxy-"+name, "-f", filepath.Join(proxyDir, "proxy.yaml"), "up", "-d", "--no-build", "--wait")
	proxy.Env = append(env, "EDGE_NETWORK="+network, "APP_ALIAS="+aliases[0], "HELLO_PORT=0", "CADDY_IMAGE="+caddy, "PROXY_BIND="+bind)
	out, err := proxy.CombinedOutput()
	require.NoError(t, err, string(out))
	plain := "plain-" + name
	out, err = docker("run", "-d", "--name", plain, "--network", network,
		"-p", bind+"::8081", probe, "proxy", "8081", upstream, "8080").CombinedOutput()
	require.NoError(t, err, string(out))
	caddyPort = publishedPort(t, docker("compose", "-p", "proxy-"+name, "-f", filepath.Join(proxyDir, "proxy.yaml"), "port", "caddy", "8080"))
	plainPort = publishedPort(t, docker("port", plain, "8081/tcp"))
	t.Cleanup(func() {
		_ = docker("rm", "-f", plain).Run()
		down := docker("compose", "-p", "proxy-"+name, "-f", filepath.Join(proxyDir, "proxy.yaml"), "down", "--timeout", "1")
		down.Env = proxy.Env
		_ = down.Run()
		before()
	})
	return caddyPort, plainPort
}

// publishedPort is the host port the docker (compose) port command c prints
// (its first line, ADDRESS:PORT).
func publishedPort(t testing.TB, c *exec.Cmd) int {
	t.Helper()
	out, err := c.Output()
	require.NoError(t, err, "%v", c.Args)
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	port, err := strconv.Atoi(first[strings.LastIndex(first, ":")+1:])
	require.NoError(t, err, "%v printed %q", c.Args, out)
	return port
}

// proxyByHost is the example's proxy stack with its Caddyfile (the config's
// content) turned by byHost into one reverse_proxy per alias.
func proxyByHost(t testing.TB, stack []byte, aliases []string) []byte {
	t.Helper()
	const marker = "    content: |\n"
	i := strings.Index(string(stack), marker)
	require.Positive(t, i, "examples/rolling/proxy.yaml: the Caddyfile as configs.caddyfile.content")
	var caddyfile strings.Builder
	for _, line := range strings.SplitAfter(string(stack[i+len(marker):]), "\n") {
		caddyfile.WriteString(strings.TrimPrefix(line, "      "))
	}
	got := byHost(t, caddyfile.String(), aliases)
	var b strings.Builder
	b.WriteString(string(stack[:i+len(marker)]))
	for _, line := range strings.SplitAfter(string(got), "\n") {
		if strings.TrimSpace(line) == "" {
			b.WriteString(line)
			continue
		}
		b.WriteString("      " + line)
	}
	return []byte(b.String())
}

// byHost turns the example's Caddyfile, one reverse_proxy to {$$APP_ALIAS}, into
// one per alias, each chosen by the request's Host header.
func byHost(t testing.TB, caddyfile string, aliases []string) []byte {
	t.Helper()
	site := strings.Index(caddyfile, ":8080 {")
	start := strings.Index(caddyfile, "\treverse_proxy {")
	end := strings.Index(caddyfile[start:], "\n\t}\n")
	require.True(t, site >= 0 && start > site && end > 0, "examples/rolling/proxy.yaml's Caddyfile: one :8080 site with one reverse_proxy block")
	block := caddyfile[start : start+end+4] // through the closing brace and its newline
	var b strings.Builder
	b.WriteString(caddyfile[:site] + ":8080 {\n")
	for i, alias := range aliases {
		fmt.Fprintf(&b, "\t@a%d host %s\n\thandle @a%d {\n", i, alias, i)
		for _, line := range strings.SplitAfter(strings.ReplaceAll(block, "{$$APP_ALIAS:hello-web}", alias), "\n") {
			if line != "" {
				b.WriteString("\t" + line)
			}
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("\thandle {\n\t\trespond \"no such service\" 421\n\t}\n}\n")
	return []byte(b.String())
}
