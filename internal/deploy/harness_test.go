package deploy_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/secretfile"
	"github.com/org/deploy-kit/internal/testenv"
)

// secret is the DB_PASSWORD the tests deploy with: quotes, $, #, spaces.
const secret = `s3cr3t "pa$$word" #1 it's`

var helloOnce = sync.OnceValues(func() (map[bool]string, error) {
	dir, err := os.MkdirTemp("", "deploykit-hello-")
	if err != nil {
		return nil, err
	}
	bins := map[bool]string{}
	for _, broken := range []bool{false, true} {
		out := filepath.Join(dir, fmt.Sprintf("hello-broken-%t", broken))
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", fmt.Sprintf("-X main.broken=%t", broken), "-o", out, "./examples/hello")
		cmd.Dir = testenv.RepoRoot(nil)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building hello: %v\n%s", err, b)
		}
		bins[broken] = out
	}
	return bins, nil
})

// app is a git checkout of the sample app, deployed as its own compose project on
// its own port.
type app struct {
	t       testing.TB
	dir     string // the workspace
	name    string // compose project
	port    int
	history string
	tmp     string // RUNNER_TEMP
	env     []string
	// trackBinary commits the app binary too, so that any commit can be built.
	trackBinary bool
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

func newApp(t testing.TB, version string) *app {
	t.Helper()
	testenv.RequireCompose(t)
	root := testenv.RepoRoot(t)
	a := &app{
		t:       t,
		dir:     t.TempDir(),
		name:    strings.Trim(unsafeName.ReplaceAllString("dk-"+strings.ToLower(t.Name()), "-"), "-") + fmt.Sprintf("-%d", os.Getpid()%10000),
		port:    testenv.FreePort(t),
		history: filepath.Join(t.TempDir(), "state", "history.log"),
		tmp:     t.TempDir(),
	}
	for _, f := range []string{"Dockerfile", "compose.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, "examples", "hello", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(a.dir, f), data, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(a.dir, ".gitignore"), []byte("hello\n"), 0o644))
	a.git("init", "-q", "-b", "main")
	a.release(version, false)
	t.Cleanup(a.cleanup)
	return a
}

// release commits a new version of the app (broken: its health always fails) and
// tags it v<version>.
func (a *app) release(version string, broken bool) {
	a.t.Helper()
	bins, err := helloOnce()
	require.NoError(a.t, err)
	data, err := os.ReadFile(bins[broken])
	require.NoError(a.t, err)
	require.NoError(a.t, os.WriteFile(filepath.Join(a.dir, "hello"), data, 0o755))
	require.NoError(a.t, os.WriteFile(filepath.Join(a.dir, "VERSION"), []byte(version+"\n"), 0o644))
	a.git("add", "-A")
	if a.trackBinary {
		a.git("add", "-f", "hello")
	}
	a.git("commit", "-q", "--allow-empty", "-m", "release "+version)
	a.git("tag", "v"+version)
}

func (a *app) git(args ...string) string {
	a.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = a.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	require.NoError(a.t, err, "git %v: %s", args, out)
	return strings.TrimSpace(string(out))
}

func (a *app) cleanup() {
	down := exec.Command("docker", "compose", "-p", a.name, "down", "--remove-orphans", "--timeout", "1")
	down.Dir = a.dir
	_ = down.Run()
	refs, _ := exec.Command("docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
		"--filter", "reference=deploykit-snapshot/"+a.name+"-*").Output()
	shas, _ := exec.Command("git", "-C", a.dir, "log", "--all", "--format=%h", "--abbrev=7").Output()
	args := []string{"rmi"}
	args = append(args, strings.Fields(string(refs))...)
	for _, sha := range strings.Fields(string(shas)) {
		args = append(args, "deploykit-hello:sha-"+sha)
	}
	_ = exec.Command("docker", args...).Run()
}

// run is one deploykit run.
type run struct {
	code    int
	log     string // stdout+stderr, without the ::add-mask:: lines a runner swallows
	outputs map[string]string
	summary string
}

func (a *app) baseEnv() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"GITHUB_ACTIONS=true", "GITHUB_WORKSPACE=" + a.dir, "RUNNER_TEMP=" + a.tmp,
		"GITHUB_SERVER_URL=https://git.example.com", "GITHUB_REPOSITORY=team/hello", "GITHUB_RUN_ID=4242",
		"HELLO_PORT=" + fmt.Sprint(a.port), "ENV_DB_PASSWORD=" + secret,
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		env = append(env, "DOCKER_HOST="+h)
	}
	return append(env, a.env...)
}

func (a *app) args(extra ...string) []string {
	base := fmt.Sprintf("http://127.0.0.1:%d", a.port)
	return append([]string{"deploy",
		"--project-name", a.name, "--environment", "production", "--history-file", a.history,
		"--health-url", base + "/health", "--health-attempts", "10", "--health-initial-delay", "200ms", "--health-max-delay", "1s",
		"--smoke-base-url", base, "--smoke-checks", "/version=200\n/nope=404", "--wait-timeout", "60s",
	}, extra...)
}

// command prepares a deploy with the given extra flags.
func (a *app) command(extra ...string) (*exec.Cmd, string, string) {
	files := a.t.TempDir()
	output, summary := filepath.Join(files, "output"), filepath.Join(files, "summary")
	cmd := exec.Command(testenv.Deploykit(a.t), a.args(extra...)...)
	cmd.Dir = a.dir
	cmd.Env = append(a.baseEnv(), "GITHUB_OUTPUT="+output, "GITHUB_STEP_SUMMARY="+summary)
	return cmd, output, summary
}

func (a *app) deploy(extra ...string) run {
	a.t.Helper()
	cmd, output, summary := a.command(extra...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	_ = cmd.Run()
	return a.result(cmd, buf.String(), output, summary)
}

func (a *app) result(cmd *exec.Cmd, log, output, summary string) run {
	r := run{code: cmd.ProcessState.ExitCode(), outputs: map[string]string{}}
	var kept []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") {
			kept = append(kept, line)
		}
	}
	r.log = strings.Join(kept, "\n")
	if data, err := os.ReadFile(output); err == nil {
		r.outputs = parseOutputs(string(data))
	}
	if data, err := os.ReadFile(summary); err == nil {
		r.summary = string(data)
	}
	return r
}

func parseOutputs(s string) map[string]string {
	out := map[string]string{}
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		name, delim, ok := strings.Cut(lines[i], "<<")
		if !ok {
			continue
		}
		var val []string
		for i++; i < len(lines) && lines[i] != delim; i++ {
			val = append(val, lines[i])
		}
		out[name] = strings.Join(val, "\n")
	}
	return out
}

// get fetches a path of the deployed app.
func (a *app) get(path string) (int, string) {
	a.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", a.port, path))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// secretArrived asks the app whether its DB_PASSWORD is exactly the secret.
func (a *app) secretArrived() bool {
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/secret/verify", a.port), "text/plain", strings.NewReader(secret))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// containers are the project's container IDs.
func (a *app) containers() string {
	out, err := exec.Command("docker", "ps", "-aq", "--no-trunc", "--filter", "label=com.docker.compose.project="+a.name).Output()
	require.NoError(a.t, err)
	return strings.TrimSpace(string(out))
}

// historyLines returns the history file's lines.
func (a *app) historyLines() []string {
	data, err := os.ReadFile(a.history)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(a.t, err)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// noSecretsLeft checks that no env file remains in the temp dir or the workspace.
func (a *app) noSecretsLeft(t *testing.T) {
	t.Helper()
	for _, dir := range []string{a.tmp, a.dir} {
		_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && strings.HasPrefix(info.Name(), secretfile.FilePrefix) {
				t.Errorf("secret env file left behind: %s", p)
			}
			return nil
		})
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
