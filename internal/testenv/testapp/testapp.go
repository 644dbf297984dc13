// Package testapp runs the sample app (examples/hello) as its own git checkout and
// compose project, for tests of deploykit deploy and rollback.
package testapp

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

// Secret is the DB_PASSWORD the tests deploy with: quotes, $, #, spaces.
const Secret = `s3cr3t "pa$$word" #1 it's`

// The builds of the sample app a release can carry.
const (
	Healthy     = "false"      // answers everything
	Broken      = "true"       // its /health fails
	SmokeBroken = "smoke"      // its /health passes, its /version fails
	Node2Broken = "node:node2" // its /health fails on the swarm node node2 only
)

var helloOnce = sync.OnceValues(func() (map[string]string, error) {
	dir, err := os.MkdirTemp("", "deploykit-hello-")
	if err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for _, broken := range []string{Healthy, Broken, SmokeBroken, Node2Broken} {
		out := filepath.Join(dir, "hello-broken-"+strings.ReplaceAll(broken, ":", "-"))
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.broken="+broken, "-o", out, "./examples/hello")
		cmd.Dir = testenv.RepoRoot(nil)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building hello: %v\n%s", err, b)
		}
		bins[broken] = out
	}
	return bins, nil
})

// App is a git checkout of the sample app, deployed as its own compose project on
// its own port.
type App struct {
	T       testing.TB
	Dir     string // the workspace
	Name    string // compose project
	Port    int
	History string
	Tmp     string // RUNNER_TEMP
	Env     []string
	// TrackBinary commits the app binary too, so that any commit can be built.
	TrackBinary bool
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// New makes a checkout of the app at version, removed with its stack when the test
// ends. The app binary is built outside git (it is ignored), as CI would.
func New(t testing.TB, version string) *App { return newApp(t, version, false) }

// NewTracked is New with the app binary committed, so that any tag can be built
// from its own tree (a rollback builds the target in a worktree).
func NewTracked(t testing.TB, version string) *App { return newApp(t, version, true) }

func newApp(t testing.TB, version string, track bool) *App {
	t.Helper()
	testenv.RequireCompose(t)
	root := testenv.RepoRoot(t)
	a := &App{
		T:       t,
		Dir:     t.TempDir(),
		Name:    strings.Trim(unsafeName.ReplaceAllString("dk-"+strings.ToLower(t.Name()), "-"), "-") + fmt.Sprintf("-%d", os.Getpid()%10000),
		Port:    testenv.FreePort(t),
		History: filepath.Join(t.TempDir(), "state", "history.log"),
		Tmp:     t.TempDir(),

		TrackBinary: track,
	}
	for _, f := range []string{"Dockerfile", "compose.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, "examples", "hello", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(a.Dir, f), data, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, ".gitignore"), []byte("hello\n"), 0o644))
	// Commits (and so the sha- image tags) must differ between apps made in the same
	// second: parallel tests would otherwise share, and remove, each other's images.
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "APP"), []byte(a.Name+"\n"), 0o644))
	a.Git("init", "-q", "-b", "main")
	a.Release(version, false)
	t.Cleanup(a.Cleanup)
	return a
}

// Release commits a new version of the app (broken: its health always fails) and
// tags it v<version>.
func (a *App) Release(version string, broken bool) {
	a.T.Helper()
	build := Healthy
	if broken {
		build = Broken
	}
	a.ReleaseBuild(version, build)
}

// ReleaseBuild is Release with one of the builds: Healthy, Broken, SmokeBroken, Node2Broken.
func (a *App) ReleaseBuild(version, build string) {
	a.T.Helper()
	bins, err := helloOnce()
	require.NoError(a.T, err)
	data, err := os.ReadFile(bins[build])
	require.NoError(a.T, err)
	require.NoError(a.T, os.WriteFile(filepath.Join(a.Dir, "hello"), data, 0o755))
	require.NoError(a.T, os.WriteFile(filepath.Join(a.Dir, "VERSION"), []byte(version+"\n"), 0o644))
	a.Git("add", "-A")
	if a.TrackBinary {
		a.Git("add", "-f", "hello")
	}
	a.Git("commit", "-q", "--allow-empty", "-m", "release "+version)
	a.Git("tag", "v"+version)
}

// Git runs git in the checkout and returns its output.
func (a *App) Git(args ...string) string {
	a.T.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = a.Dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	require.NoError(a.T, err, "git %v: %s", args, out)
	return strings.TrimSpace(string(out))
}

// Cleanup removes the app's compose project, its images and snapshot tags.
func (a *App) Cleanup() {
	down := exec.Command("docker", "compose", "-p", a.Name, "down", "--remove-orphans", "--timeout", "1")
	down.Dir = a.Dir
	_ = down.Run()
	refs := testenv.LocalImages(a.T, "deploykit-snapshot/"+a.Name+"-*")
	shas, _ := exec.Command("git", "-C", a.Dir, "log", "--all", "--format=%h", "--abbrev=7").Output()
	for _, sha := range strings.Fields(string(shas)) {
		refs = append(refs, "deploykit-hello:sha-"+sha)
	}
	testenv.RemoveImages(refs...)
}

// Run is the result of one deploykit run.
type Run struct {
	Code    int
	Log     string // stdout+stderr, without the ::add-mask:: lines a runner swallows
	Outputs map[string]string
	Summary string
}

// BaseEnv is the environment of a run: a runner's, with the app's port and secret.
func (a *App) BaseEnv() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"GITHUB_ACTIONS=true", "GITHUB_WORKSPACE=" + a.Dir, "RUNNER_TEMP=" + a.Tmp,
		"GITHUB_SERVER_URL=https://git.example.com", "GITHUB_REPOSITORY=team/hello", "GITHUB_RUN_ID=4242",
		"HELLO_PORT=" + fmt.Sprint(a.Port), "ENV_DB_PASSWORD=" + Secret,
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		env = append(env, "DOCKER_HOST="+h)
	}
	return append(env, a.Env...)
}

// args are the flags every run of a subcommand gets, then extra.
func (a *App) args(sub string, extra ...string) []string {
	base := fmt.Sprintf("http://127.0.0.1:%d", a.Port)
	args := []string{sub,
		"--project-name", a.Name, "--environment", "production", "--history-file", a.History,
		"--health-url", base + "/health", "--health-attempts", "10", "--health-initial-delay", "200ms", "--health-max-delay", "1s",
		"--smoke-base-url", base, "--smoke-checks", "/version=200\n/nope=404",
	}
	if sub == "deploy" {
		args = append(args, "--wait-timeout", "60s")
	}
	return append(args, extra...)
}

// Command prepares `deploykit <sub>` with the given extra flags, in a runner-like
// environment; it returns the command and its output and summary files.
func (a *App) Command(sub string, extra ...string) (*exec.Cmd, string, string) {
	files := a.T.TempDir()
	output, summary := filepath.Join(files, "output"), filepath.Join(files, "summary")
	cmd := exec.Command(testenv.Deploykit(a.T), a.args(sub, extra...)...)
	cmd.Dir = a.Dir
	cmd.Env = append(a.BaseEnv(), "GITHUB_OUTPUT="+output, "GITHUB_STEP_SUMMARY="+summary)
	return cmd, output, summary
}

// Raw runs deploykit with exactly args (no default flags), in the app's
// runner-like environment.
func (a *App) Raw(args ...string) Run {
	a.T.Helper()
	files := a.T.TempDir()
	output, summary := filepath.Join(files, "output"), filepath.Join(files, "summary")
	cmd := exec.Command(testenv.Deploykit(a.T), args...)
	cmd.Dir = a.Dir
	cmd.Env = append(a.BaseEnv(), "GITHUB_OUTPUT="+output, "GITHUB_STEP_SUMMARY="+summary)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	_ = cmd.Run()
	return a.Result(cmd, buf.String(), output, summary)
}

// Deploy runs deploykit deploy to completion.
func (a *App) Deploy(extra ...string) Run { return a.run("deploy", extra...) }

// Rollback runs deploykit rollback to completion.
func (a *App) Rollback(extra ...string) Run { return a.run("rollback", extra...) }

func (a *App) run(sub string, extra ...string) Run {
	a.T.Helper()
	cmd, output, summary := a.Command(sub, extra...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	_ = cmd.Run()
	return a.Result(cmd, buf.String(), output, summary)
}

// Background starts a deploy and returns its process and a function that waits
// for its result.
func (a *App) Background(extra ...string) (*os.Process, func() Run) {
	cmd, output, summary := a.Command("deploy", extra...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	require.NoError(a.T, cmd.Start())
	return cmd.Process, func() Run {
		_ = cmd.Wait()
		return a.Result(cmd, buf.String(), output, summary)
	}
}

// Watched starts a deploy in the background whose log can be read while it
// runs: a test waits for what the deploy says (e.g. that it is waiting for a
// lock the test holds) instead of racing its duration.
func (a *App) Watched(extra ...string) (log func() string, wait func() Run) {
	cmd, output, summary := a.Command("deploy", extra...)
	buf := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	require.NoError(a.T, cmd.Start())
	return buf.String, func() Run {
		_ = cmd.Wait()
		return a.Result(cmd, buf.String(), output, summary)
	}
}

// LockFile is the deploy lock of the app's compose project.
func (a *App) LockFile() string {
	return filepath.Join(filepath.Dir(a.History), "locks", a.Name+".lock")
}

// Result collects a finished command's exit code, log, outputs and summary.
func (a *App) Result(cmd *exec.Cmd, log, output, summary string) Run {
	r := Run{Code: cmd.ProcessState.ExitCode(), Outputs: map[string]string{}}
	var kept []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") {
			kept = append(kept, line)
		}
	}
	r.Log = strings.Join(kept, "\n")
	if data, err := os.ReadFile(output); err == nil {
		r.Outputs = ParseOutputs(string(data))
	}
	if data, err := os.ReadFile(summary); err == nil {
		r.Summary = string(data)
	}
	return r
}

// ParseOutputs reads a GITHUB_OUTPUT file (name<<delimiter blocks).
func ParseOutputs(s string) map[string]string {
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

// Get fetches a path of the deployed app.
func (a *App) Get(path string) (int, string) {
	a.T.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", a.Port, path))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// SecretArrived asks the app whether its DB_PASSWORD is exactly Secret.
func (a *App) SecretArrived() bool {
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/secret/verify", a.Port), "text/plain", strings.NewReader(Secret))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Containers are the project's container IDs.
func (a *App) Containers() string {
	out, err := exec.Command("docker", "ps", "-aq", "--no-trunc", "--filter", "label=com.docker.compose.project="+a.Name).Output()
	require.NoError(a.T, err)
	return strings.TrimSpace(string(out))
}

// HistoryLines returns the history file's lines.
func (a *App) HistoryLines() []string {
	data, err := os.ReadFile(a.History)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(a.T, err)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// NoSecretsLeft checks that no env file remains in the temp dir or the workspace.
func (a *App) NoSecretsLeft(t *testing.T) {
	t.Helper()
	for _, dir := range []string{a.Tmp, a.Dir} {
		_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && strings.HasPrefix(info.Name(), secretfile.FilePrefix) {
				t.Errorf("secret env file left behind: %s", p)
			}
			return nil
		})
	}
}

// WaitFor polls cond until it holds or the deadline passes.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitWithin(t, 60*time.Second, what, cond)
}

// WaitWithin is WaitFor with its own bound: for what a real process does at
// its own pace (a deploy held until the test signals it), bounded by that
// process's own timeout rather than by how busy the machine is.
func WaitWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%s)", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Step starts `deploykit <sub>` as a runner starts the action's run step
// (testenv.StepCommand: bash, exec, its inputs as INPUT_* variables) with the
// flags every run gets and extra; result collects its Run once it ended.
func (a *App) Step(sub string, extra ...string) (step *testenv.Step, result func() Run) {
	a.T.Helper()
	files := a.T.TempDir()
	output, summary := filepath.Join(files, "output"), filepath.Join(files, "summary")
	env := append(a.BaseEnv(), "GITHUB_OUTPUT="+output, "GITHUB_STEP_SUMMARY="+summary)
	cmd := testenv.StepCommand(a.T, a.Dir, env, a.args(sub, extra...)...)
	step = testenv.StartStep(a.T, cmd)
	return step, func() Run {
		step.Wait()
		return a.Result(cmd, step.Log(), output, summary)
	}
}
