package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/command/commandtest"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/repair"
	"github.com/org/deploy-kit/internal/steps"
)

// Fast tests of the deploy's logic at the executor seam (ARCHITECTURE.md, "Rules
// every package keeps"): git and compose are a commandtest.Recorder, the engine a
// fakeEngine; nothing runs. What the commands and the engine really do is the
// end-to-end tests' part.

const (
	headSHA  = "1111111111111111111111111111111111111111"
	otherSHA = "2222222222222222222222222222222222222222"
)

// fakeEngine answers what the deploy asks the engine; any other call panics (the
// embedded nil interface), which fails the test that made it.
type fakeEngine struct {
	engine
	running []docker.Container
	free    float64
	calls   []string
}

func (f *fakeEngine) record(s ...string)         { f.calls = append(f.calls, strings.Join(s, " ")) }
func (f *fakeEngine) Close() error               { return nil }
func (f *fakeEngine) Ping(context.Context) error { f.record("ping"); return nil }
func (f *fakeEngine) IsLocal() bool              { return true }
func (f *fakeEngine) FreeDisk(context.Context) (string, float64, error) {
	return "/var/lib/docker", f.free, nil
}
func (f *fakeEngine) ProjectContainers(_ context.Context, project string) ([]docker.Container, error) {
	f.record("containers", project)
	return f.running, nil
}
func (f *fakeEngine) Tag(_ context.Context, image, ref string) error {
	f.record("tag", image, ref)
	return nil
}
func (f *fakeEngine) References(context.Context, string) ([]string, error) { return nil, nil }

// Nothing of a killed run is left, unless a test says so.
func (f *fakeEngine) RemoveLabelled(_ context.Context, label, value string) (docker.Removed, error) {
	f.record("remove labelled", label+"="+value)
	return docker.Removed{}, nil
}
func (f *fakeEngine) StartStopped(_ context.Context, id string) (bool, string, error) {
	f.record("start stopped", id)
	return true, id, nil
}

// CopyFile records what was copied where, with its content.
func (f *fakeEngine) CopyFile(_ context.Context, id, dir, name string, content io.Reader, size int64, owner docker.FileOwner) error {
	data, err := io.ReadAll(content)
	if err != nil {
		return err
	}
	f.record("copy", id, path.Join(dir, name), fmt.Sprintf("%q %d %o %d:%d dirs %d:%d", data, size, owner.Mode, owner.UID, owner.GID, owner.DirUID, owner.DirGID))
	return nil
}

// Every network exists, with a subnet of its own (strategy rolling's preflight).
func (f *fakeEngine) NetworkExists(context.Context, string) (bool, error) { return true, nil }
func (f *fakeEngine) UserSubnet(context.Context, string) (bool, error)    { return true, nil }
func (f *fakeEngine) Details(_ context.Context, id string) (docker.Details, error) {
	for _, c := range f.running {
		if c.ID == id {
			return docker.Details{Image: c.Image, ImageID: c.ImageID}, nil
		}
	}
	return docker.Details{}, errors.New("no such container")
}
func (f *fakeEngine) ImageID(context.Context, string) (string, error) { return "", nil }
func (f *fakeEngine) Logs(_ context.Context, id string, _ int) (string, error) {
	return "listening on :8080\npanic: no database\n", nil
}

// seam is a deploy of a one-service stack in a temporary workspace, with the
// recorder answering git as a clean checkout of main at VERSION 1.2.3.
type seam struct {
	ws, varDir string
	log        bytes.Buffer
	exec       *commandtest.Recorder
	engine     *fakeEngine
}

func newSeam(t *testing.T) *seam {
	t.Helper()
	sm := &seam{ws: t.TempDir(), varDir: t.TempDir(), exec: &commandtest.Recorder{}, engine: &fakeEngine{free: 80}}
	require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "VERSION"), []byte("1.2.3\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "compose.yaml"), []byte("name: shop\nservices:\n  web:\n    image: registry.example.com/shop:${DEPLOY_TAG}\n"), 0o644))
	sm.exec.
		On(headSHA+"\n", "git", "rev-parse", "--verify", "--quiet", "--end-of-options", "HEAD^{commit}").
		On("main\n", "git", "symbolic-ref").
		On("origin/main\n", "git", "rev-parse", "--abbrev-ref", "origin/HEAD").
		On(headSHA+"\trefs/heads/main\n", "git", "ls-remote").
		On("", "git", "status").
		On("", "git", "tag", "--points-at").
		On("2.40.3\n", "docker", "compose", "version")
	return sm
}

// state is the deploy's State as newState builds it from o, with the seam's
// executor and engine in place of the real ones.
func (sm *seam) state(t *testing.T, o Options) *State {
	t.Helper()
	o.HistoryFile = filepath.Join(sm.varDir, "history.log")
	a := action.NewContext([]string{"GITHUB_WORKSPACE=" + sm.ws, "RUNNER_TEMP=" + t.TempDir(), "HOME=" + t.TempDir()}, &sm.log)
	a.Spec = &Spec
	s, err := newState(a, o)
	require.NoError(t, err)
	s.Exec, s.Docker = sm.exec, sm.engine
	s.plan = Plan{Action: history.ActionDeploy, Steps: Pipeline}
	t.Cleanup(s.Cleanup)
	return s
}

func TestSeamVersionPlan(t *testing.T) {
	t.Run("the clean tip of the default branch bumps", func(t *testing.T) {
		sm := newSeam(t)
		o := DefaultOptions()
		o.VersionBump = "patch"
		s := sm.state(t, o)
		require.NoError(t, s.planGit(context.Background()))
		assert.Equal(t, "1.2.4", s.Version)
		assert.Equal(t, "patch", s.Git.Bump)
		assert.True(t, s.Git.OnDefault)
		assert.Equal(t, []string{
			"git rev-parse --verify --quiet --end-of-options 'HEAD^{commit}'",
			"git symbolic-ref --short -q HEAD",
			"git rev-parse --abbrev-ref origin/HEAD",
			"git ls-remote --heads origin refs/heads/main",
			"git status --porcelain --untracked-files=no",
		}, sm.exec.Lines("git"), "the remote's tip is asked, never GITHUB_REF")
		assert.Empty(t, sm.exec.Changes(), "planning changes nothing")
	})
	t.Run("not the remote's tip is read-only and untagged", func(t *testing.T) {
		sm := newSeam(t)
		sm.exec.On(otherSHA+"\trefs/heads/main\n", "git", "ls-remote")
		o := DefaultOptions()
		o.VersionBump = "minor"
		s := sm.state(t, o)
		require.NoError(t, s.planGit(context.Background()))
		assert.Equal(t, "1.2.3-1111111", s.Version)
		assert.Empty(t, s.Git.Bump)
		assert.Equal(t, "1111111 is not the tip of origin/main (2222222): versions are bumped only there", s.Git.ReadOnly)
	})
	t.Run("a tagged commit keeps its version", func(t *testing.T) {
		sm := newSeam(t)
		sm.exec.On("v1.2.3\n", "git", "tag", "--points-at")
		s := sm.state(t, DefaultOptions())
		require.NoError(t, s.planGit(context.Background()))
		assert.Equal(t, "1.2.3", s.Version)
		assert.Equal(t, "version-bump is none", s.Git.ReadOnly)
	})
	t.Run("a dirty checkout refuses to release", func(t *testing.T) {
		sm := newSeam(t)
		sm.exec.On(" M VERSION\n", "git", "status")
		o := DefaultOptions()
		o.VersionBump = "patch"
		err := sm.state(t, o).planGit(context.Background())
		require.Error(t, err)
		assert.Equal(t, action.ExitFailed, action.ExitCode(err))
		assert.Contains(t, err.Error(), "has uncommitted changes to tracked files (M VERSION)")
	})
	t.Run("a git-ref naming no commit is bad input", func(t *testing.T) {
		sm := newSeam(t)
		sm.exec.Fail(errors.New("exit status 1"), "git", "rev-parse", "--verify", "--quiet", "--end-of-options", "nope^{commit}")
		o := DefaultOptions()
		o.GitRef = "nope"
		err := sm.state(t, o).planGit(context.Background())
		assert.Equal(t, action.ExitUsage, action.ExitCode(err))
		assert.Contains(t, err.Error(), `input git-ref: "nope" does not name a commit`)
	})
}

// TestSeamVersionStepRetriesARejectedPush: commit, tag, push; the push is
// rejected once (the branch moved): drop the tag and commit, fetch, rebase, check
// the tree again, and release the next version from what is there. (The recorder
// runs nothing, so the VERSION left in the workspace is the 1.2.4 written by the
// first attempt: as if another release 1.2.4 had arrived meanwhile.)
func TestSeamVersionStepRetriesARejectedPush(t *testing.T) {
	sm := newSeam(t)
	o := DefaultOptions()
	o.VersionBump = "patch"
	o.CommitAuthor = "Release Bot <release-bot@example.com>"
	s := sm.state(t, o)
	ctx := context.Background()
	require.NoError(t, s.planGit(ctx))
	require.NoError(t, s.loadProject(ctx))
	sm.exec.FailFirst(1, errors.New("rejected: fetch first"), "git", "push")
	s.Runner.Logf = func(string, ...any) {}
	require.NoError(t, s.One(ctx, VersionStep, s))
	assert.Equal(t, []string{
		"git commit -q -m 'chore(release): v1.2.4 [skip ci]' -- VERSION",
		"git tag -a v1.2.4 -m 'chore(release): v1.2.4 [skip ci]'",
		"git push --atomic origin HEAD:refs/heads/main refs/tags/v1.2.4",
		"git tag -d v1.2.4",
		"git reset -q --hard 'HEAD~1'",
		"git fetch -q origin refs/heads/main:refs/remotes/origin/main",
		"git rebase -q origin/main",
		"git commit -q -m 'chore(release): v1.2.5 [skip ci]' -- VERSION",
		"git tag -a v1.2.5 -m 'chore(release): v1.2.5 [skip ci]'",
		"git push --atomic origin HEAD:refs/heads/main refs/tags/v1.2.5",
	}, sm.exec.Changes())
	for _, c := range sm.exec.Calls() {
		if !c.Output {
			assert.Contains(t, c.Env, "GIT_AUTHOR_NAME=Release Bot", "every commit and push as commit-author")
		}
	}
	assert.Equal(t, "1.2.5", s.Version)
	assert.Equal(t, "1.2.5\n", readFile(t, filepath.Join(sm.ws, "VERSION")))
	assert.Equal(t, []string{"version: done"}, steps.Outcomes(s.Results))
}

// TestSeamVersionStepGivesUp: a push rejected every time fails the step after
// the bounded number of attempts, naming the last error.
func TestSeamVersionStepGivesUp(t *testing.T) {
	sm := newSeam(t)
	o := DefaultOptions()
	o.VersionBump = "major"
	s := sm.state(t, o)
	ctx := context.Background()
	require.NoError(t, s.planGit(ctx))
	require.NoError(t, s.loadProject(ctx))
	sm.exec.Fail(errors.New("rejected: fetch first"), "git", "push")
	err := s.One(ctx, VersionStep, s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pushing v4.0.0 to origin/main failed 3 times, last: git push origin failed (rejected: fetch first)")
	var ce *command.Error
	require.ErrorAs(t, err, &ce, "the command line is kept for the hand-off")
	assert.Contains(t, ce.Command, "git push --atomic origin HEAD:refs/heads/main refs/tags/v4.0.0")
	assert.Len(t, sm.exec.Lines("git", "push"), pushAttempts)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// TestSeamPipelineStepOrder: a whole deploy with nothing running before it, then
// one whose apply fails and is rolled back to the image that ran before: every
// step in order with its outcome, and the compose commands it ran.
func TestSeamPipelineStepOrder(t *testing.T) {
	t.Run("first deploy", func(t *testing.T) {
		sm := newSeam(t)
		s := sm.state(t, DefaultOptions())
		require.NoError(t, s.runPlan(context.Background()))
		assert.Equal(t, []string{
			"guard: done", "preflight: done", "lock: done", "repair: done", "promotion: done", "version: skipped", "secrets: skipped", "backup: skipped",
			"snapshot: done", "rehearse: skipped", "plan: done", "apply: done", "verify: skipped", "history: done",
		}, steps.Outcomes(s.Results))
		assert.Equal(t, []string{"docker compose -p shop -f " + filepath.Join(sm.ws, "compose.yaml") + " up -d --wait --remove-orphans --wait-timeout 120 --build"}, sm.exec.Changes())
		var up commandtest.Call
		for _, c := range sm.exec.Calls() {
			if !c.Output {
				up = c
			}
		}
		assert.Contains(t, up.Env, "DEPLOY_VERSION=1.2.3-1111111")
		assert.Contains(t, up.Env, "DEPLOY_TAG=sha-1111111")
		h, err := (history.File{Path: filepath.Join(sm.varDir, "history.log")}).Read()
		require.NoError(t, err)
		require.Len(t, h, 1)
		assert.Equal(t, "1.2.3-1111111", h[0].Version)
		assert.Equal(t, history.StatusSuccess, h[0].Status)
	})
	t.Run("apply fails: the previous image comes back", func(t *testing.T) {
		sm := newSeam(t)
		sm.engine.running = []docker.Container{{ID: "c1", Service: "web", State: "running", Image: "registry.example.com/shop:sha-0000000", ImageID: "sha256:abcdef0123456789"}}
		sm.exec.FailFirst(1, errors.New("exit status 1"), "docker", "compose", "-p", "shop")
		s := sm.state(t, DefaultOptions())
		err := s.runPlan(context.Background())
		require.Error(t, err)
		assert.Equal(t, []string{
			"guard: done", "preflight: done", "lock: done", "repair: done", "promotion: done", "version: skipped", "secrets: skipped", "backup: skipped",
			"snapshot: done", "rehearse: skipped", "plan: done", "apply: failed", "verify: skipped", "rollback: done", "history: done",
		}, steps.Outcomes(s.Results))
		assert.Contains(t, sm.engine.calls, "tag sha256:abcdef0123456789 deploykit-snapshot/shop-web:abcdef012345", "the image that ran is pinned before apply")
		assert.True(t, s.Out.RolledBack)
		assert.Equal(t, "apply", s.Out.FailedStep)
		changes := sm.exec.Changes()
		require.Len(t, changes, 2)
		assert.Contains(t, changes[1], "/deploykit-stack-", "an override file pins the snapshot's image")
		assert.True(t, strings.HasSuffix(changes[1], " up -d --wait --remove-orphans --wait-timeout 120 --no-build --pull never web"), "the snapshot's image back, neither built nor pulled: %s", changes[1])
		assert.Contains(t, s.Out.HandOff, "panic: no database", "the hand-off shows the failing container's log")
	})
}

// TestSeamRollingInjectsSecrets: compose writes a service's environment:
// secrets into a container only when its own up starts it; the switch
// creates new containers with up --no-start and starts them itself, so it
// writes them first — where compose would, with the reference's owner and
// mode, the value from the job's ENV_* variables. file: secrets are bind mounts
// and are left alone.
func TestSeamRollingInjectsSecrets(t *testing.T) {
	sm := newSeam(t)
	require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "cert.pem"), []byte("cert"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "compose.yaml"), []byte("name: shop\nservices:\n  web:\n"+
		"    image: registry.example.com/shop:${DEPLOY_TAG}\n    secrets:\n      - db_password\n"+
		"      - {source: api_key, target: /etc/shop/key, uid: \"1000\", gid: \"1001\", mode: 0400}\n      - cert\n"+
		"secrets:\n  db_password: {environment: DB_PASSWORD}\n  api_key: {environment: API_KEY}\n  cert: {file: ./cert.pem}\n"), 0o644))
	o := DefaultOptions()
	o.HistoryFile = filepath.Join(sm.varDir, "history.log")
	a := action.NewContext([]string{"GITHUB_WORKSPACE=" + sm.ws, "RUNNER_TEMP=" + t.TempDir(), "HOME=" + t.TempDir(), "ENV_DB_PASSWORD=pw-0123456789", "ENV_API_KEY=k-123"}, &sm.log)
	a.Spec = &Spec
	s, err := newState(a, o)
	require.NoError(t, err)
	s.Exec, s.Docker = sm.exec, sm.engine
	t.Cleanup(s.Cleanup)
	s.Runner.Logf = func(string, ...any) {}
	require.NoError(t, s.One(context.Background(), PreflightStep, s))
	require.NoError(t, s.injectSecrets(context.Background(), "web", "c1"))
	var copies []string
	for _, c := range sm.engine.calls {
		if strings.HasPrefix(c, "copy ") {
			copies = append(copies, c)
		}
	}
	assert.Equal(t, []string{
		`copy c1 /run/secrets/db_password "pw-0123456789" 13 444 0:0 dirs 0:0`,
		`copy c1 /etc/shop/key "k-123" 5 400 1000:1001 dirs 0:0`,
	}, copies)
}

// TestSeamRollingLevels: strategy rolling's levels, the services' depth in
// depends_on order (shown in the summary; a service replaced in place waits
// for the switched ones of its level). A service depends only on the deployed services it names,
// directly or through others; ones not deployed do not make a level.
func TestSeamRollingLevels(t *testing.T) {
	sm := newSeam(t)
	img := "    image: registry.example.com/shop:${DEPLOY_TAG}\n"
	require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "compose.yaml"), []byte("name: shop\nservices:\n"+
		"  web:\n"+img+"    depends_on: [api]\n  api:\n"+img+"    depends_on: [db]\n"+
		"  worker:\n"+img+"    depends_on: [db, cache]\n  db:\n"+img+"  cache:\n"+img+"  cron:\n"+img), 0o644))
	s := sm.state(t, DefaultOptions())
	s.Runner.Logf = func(string, ...any) {}
	require.NoError(t, s.loadProject(context.Background()))
	assert.Equal(t, [][]string{{"cache", "cron", "db"}, {"api", "worker"}, {"web"}}, s.levels(s.Project.ServiceNames()))
	assert.Equal(t, [][]string{{"api", "cron"}, {"web"}}, s.levels([]string{"api", "cron", "web"}), "db is not deployed: api is on the first level")

	o := DefaultOptions()
	o.RollingParallel = 0
	o.HistoryFile = filepath.Join(sm.varDir, "history.log")
	a := action.NewContext([]string{"GITHUB_WORKSPACE=" + sm.ws, "RUNNER_TEMP=" + t.TempDir(), "HOME=" + t.TempDir()}, &sm.log)
	a.Spec = &Spec
	_, err := newState(a, o)
	require.Error(t, err)
	assert.Equal(t, action.ExitUsage, action.ExitCode(err))
	assert.Equal(t, "input rolling-parallel: 0: want 1 or more (how many services strategy rolling switches side by side)", err.Error())
}

// TestSeamRepairFirst: a lock file a killed deploy left (a holder that ends
// removes it) is recorded in the history as killed, with its step, before
// the deploy goes on; what carries the stack's label is removed. A stack a
// restore left half-restored refuses the deploy before anything changes, with
// the command that puts the safety backup back.
func TestSeamRepairFirst(t *testing.T) {
	sm := newSeam(t)
	o := DefaultOptions()
	s := sm.state(t, o)
	path := lock.PathFor(s.LockDir, "shop")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	killed := lock.Holder{Host: "runner-1", PID: 999999, Action: "deploy", Env: "production", Version: "1.2.2", Step: "apply",
		StepSince: time.Date(2026, 12, 1, 10, 0, 5, 0, time.UTC), Since: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), JobURL: "https://git.example.com/team/shop/actions/runs/41"}
	data, err := json.Marshal(killed)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	require.NoError(t, s.runPlan(context.Background()))
	assert.Contains(t, sm.engine.calls, "remove labelled org.deploykit.stack=shop")
	assert.Regexp(t, `\| repair \| done \| \S+ \| a killed deploy of 1\.2\.2 recorded \(killed in step apply \(at it since 2026-12-01T10:00:05Z\); pid 999999 on runner-1 since 2026-12-01T10:00:00Z; job https://git\.example\.com/team/shop/actions/runs/41; found by the next run\) \|`, s.summary())
	h, err := (history.File{Path: s.History.Path}).Read()
	require.NoError(t, err)
	require.Len(t, h, 2)
	assert.Equal(t, history.Entry{Time: h[0].Time, Stack: "shop", Env: "production", Action: "deploy", Version: "1.2.2", Status: history.StatusKilled,
		Notes: "killed in step apply (at it since 2026-12-01T10:00:05Z); pid 999999 on runner-1 since 2026-12-01T10:00:00Z; job https://git.example.com/team/shop/actions/runs/41; found by the next run"}, h[0])
	assert.Equal(t, history.StatusSuccess, h[1].Status)
	s.Cleanup()
	assert.NoFileExists(t, path, "this deploy ended: its lock file is gone")

	sm = newSeam(t)
	s = sm.state(t, o)
	require.NoError(t, os.MkdirAll(s.LockDir, 0o755))
	require.NoError(t, repair.MarkRestoring(lock.PathFor(s.LockDir, "shop"), repair.Restoring{Backup: "app.sql.gz", Safety: "/b/pre-restore.sql.gz",
		PutBack: "deploykit restore --confirm RESTORE --file /b/pre-restore.sql.gz", Since: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}))
	err = s.runPlan(context.Background())
	require.Error(t, err)
	assert.Equal(t, action.ExitFailed, action.ExitCode(err))
	assert.Contains(t, err.Error(), "deploy of 1.2.3-1111111 failed at repair: the database of shop holds part of app.sql.gz: a restore (since 2026-12-01T10:00:00Z) was cancelled or killed while it replayed it into the live database; put the database back first — the safety backup /b/pre-restore.sql.gz, with: deploykit restore --confirm RESTORE --file /b/pre-restore.sql.gz — or restore a backup again; then deploy")
	assert.Empty(t, sm.exec.Changes(), "nothing changed")
}
