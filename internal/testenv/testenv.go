// Package testenv gives tests the real components they need — the Docker Engine,
// docker compose, nektos/act, actionlint, a deploykit binary, test images — and
// decides what happens when one is missing: outside CI the test is skipped with a
// message saying how to install it; in CI (CI=true) the test fails.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const provisionHint = "run ./scripts/provision.sh (or make test, which runs it)"

// InCI reports whether the tests run in CI, where a missing dependency is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// missing fails the test in CI and skips it elsewhere.
func missing(t testing.TB, what string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available: %s", what, provisionHint)
	if InCI() {
		t.Fatal("CI=true: " + msg)
	}
	t.Skip(msg)
}

// LookTool finds a provisioned tool on PATH or in the provisioning directory.
func LookTool(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	p := filepath.Join(ToolsDir(), name)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		return p, true
	}
	return "", false
}

// ToolsDir is where scripts/provision.sh puts the tools it builds.
func ToolsDir() string {
	if d := os.Getenv("DEPLOYKIT_TOOLS"); d != "" {
		return filepath.Join(d, "bin")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = filepath.Join(os.Getenv("HOME"), ".cache")
	}
	return filepath.Join(cache, "deploy-kit", "tools", "bin")
}

// RequireTool returns the path of a provisioned tool (act, actionlint).
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, ok := LookTool(name)
	if !ok {
		missing(t, name)
	}
	return p
}

var dockerOnce = sync.OnceValue(func() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
	}
	return nil
})

// RequireDocker makes sure the Docker Engine answers. With -short (the logic
// tests only) a test that needs it is skipped.
func RequireDocker(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: this test needs the Docker Engine")
	}
	if err := dockerOnce(); err != nil {
		missing(t, "the Docker Engine ("+err.Error()+")")
	}
}

var composeOnce = sync.OnceValue(func() error {
	out, err := exec.Command("docker", "compose", "version", "--short").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
	}
	if !strings.HasPrefix(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), "2.") {
		return fmt.Errorf("docker compose %s is not v2", bytes.TrimSpace(out))
	}
	return nil
})

// RequireCompose makes sure the Docker Engine and the Compose v2 plugin work.
func RequireCompose(t testing.TB) {
	t.Helper()
	RequireDocker(t)
	if err := composeOnce(); err != nil {
		missing(t, "the Docker Compose v2 plugin ("+err.Error()+")")
	}
}

// RequireBuildx makes sure the Docker Engine and the buildx plugin (BuildKit) work.
func RequireBuildx(t testing.TB) {
	t.Helper()
	RequireDocker(t)
	if out, err := exec.Command("docker", "buildx", "version").CombinedOutput(); err != nil {
		missing(t, "the docker buildx plugin ("+strings.TrimSpace(string(out))+")")
	}
}

// RepoRoot is the kit's checkout (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	return filepath.Clean(filepath.Join(here(), "..", ".."))
}

var (
	binMu   sync.Mutex
	binPath string
)

// Deploykit builds the deploykit binary once per test process and returns its path.
func Deploykit(t testing.TB) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if binPath != "" {
		return binPath
	}
	dir, err := os.MkdirTemp("", "deploykit-bin-")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "deploykit")
	cmd := exec.Command("go", "build", "-o", p, "./cmd/deploykit")
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building deploykit: %v\n%s", err, out)
	}
	binPath = p
	return p
}

// buildImage builds tag from a context of the given files (path → content;
// executables get mode 0755 when their name has no dot).
func buildImage(tag string, files map[string][]byte) (string, error) {
	dir, err := os.MkdirTemp("", "deploykit-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	for name, data := range files {
		mode := os.FileMode(0o644)
		if !strings.Contains(name, ".") && name != "Dockerfile" {
			mode = 0o755
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			return "", err
		}
	}
	if out, err := exec.Command("docker", "build", "-q", "-t", tag, dir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker build %s: %v\n%s", tag, err, out)
	}
	return tag, nil
}

// here is this package's directory.
func here() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

var probeOnce = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(os.TempDir(), fmt.Sprintf("deploykit-probe-%d", os.Getpid()))
	defer os.Remove(bin)
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(here(), "probe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the probe: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	return buildImage("deploykit-test-probe:6", map[string][]byte{
		"probe":      data,
		"Dockerfile": []byte("FROM scratch\nCOPY probe /probe\nENTRYPOINT [\"/probe\"]\n"),
	})
})

// ProbeImage builds (once per test process) a FROM scratch image whose entrypoint
// prints environment variables hex-encoded — so masking cannot hide them and any
// byte can be compared — and returns its tag.
func ProbeImage(t testing.TB) string {
	t.Helper()
	RequireDocker(t)
	tag, err := probeOnce()
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

var caddyOnce = sync.OnceValues(func() (string, error) {
	bin, ok := LookTool("caddy")
	if !ok {
		return "", fmt.Errorf("caddy is not provisioned")
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	df, err := os.ReadFile(filepath.Join(here(), "..", "..", "examples", "rolling", "caddy", "Dockerfile"))
	if err != nil {
		return "", err
	}
	return buildImage("deploykit-caddy:test", map[string][]byte{"caddy": data, "Dockerfile": df})
})

// CaddyImage builds (once per test process) the example's Caddy image from the
// provisioned caddy binary and returns its tag.
func CaddyImage(t testing.TB) string {
	t.Helper()
	RequireDocker(t)
	if _, ok := LookTool("caddy"); !ok {
		missing(t, "caddy")
	}
	tag, err := caddyOnce()
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

// RequireRoot is for tests that mount a file system (a small tmpfs to fill up):
// CI runs as root; elsewhere such a test skips when not root.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "root is needed to " + why
	if InCI() {
		t.Fatal("CI=true: " + msg)
	}
	t.Skip(msg)
}

// SubnetNetwork creates a bridge network with a subnet of its own (as strategy
// rolling's route network needs), on a free 10.x.y.0/24, and removes it when the
// test ends.
func SubnetNetwork(t testing.TB, name string) {
	t.Helper()
	RequireDocker(t)
	subnetNetworkOn(t, "", name)
}

// subnetNetworkOn is SubnetNetwork on the engine dockerHost ("" the host's).
func subnetNetworkOn(t testing.TB, dockerHost, name string) {
	t.Helper()
	docker := func(args ...string) *exec.Cmd {
		c := exec.Command("docker", args...)
		if dockerHost != "" {
			c.Env = append(os.Environ(), "DOCKER_HOST="+dockerHost)
		}
		return c
	}
	var out []byte
	for attempt := 0; attempt < 30; attempt++ {
		subnet := fmt.Sprintf("10.%d.%d.0/24", 200+rand.IntN(50), rand.IntN(256))
		var err error
		out, err = docker("network", "create", "--subnet", subnet, name).CombinedOutput()
		if err == nil {
			t.Cleanup(func() { _ = docker("network", "rm", name).Run() })
			return
		}
		if !strings.Contains(string(out), "overlap") {
			break
		}
	}
	t.Fatalf("docker network create --subnet … %s: %s", name, out)
}
