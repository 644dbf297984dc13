package buildimage

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command/commandtest"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/steps"
)

// Fast tests of build-image's steps at the executor seam: git and docker build
// are a commandtest.Recorder, the engine a fake; nothing is built.

// fakeEngine answers and records; a login or a push fails the test's run
// (pushEngine does them).
type fakeEngine struct {
	calls []string
}

func (f *fakeEngine) Ping(context.Context) error { f.calls = append(f.calls, "ping"); return nil }
func (f *fakeEngine) Close() error               { return nil }
func (f *fakeEngine) Login(context.Context, docker.Auth) error {
	return errors.New("fakeEngine: no login expected")
}
func (f *fakeEngine) Push(context.Context, string, *docker.Auth, io.Writer) (string, error) {
	return "", errors.New("fakeEngine: no push expected")
}

func seamJob(t *testing.T, o Options) (*job, *commandtest.Recorder, *fakeEngine) {
	t.Helper()
	ws := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ws, "Dockerfile"), []byte("FROM scratch\n"), 0o644))
	var log bytes.Buffer
	a := action.NewContext([]string{"GITHUB_WORKSPACE=" + ws, "GITHUB_SERVER_URL=https://git.example.com", "GITHUB_REPOSITORY=team/shop"}, &log)
	rec := (&commandtest.Recorder{Strict: true}).
		On("89abcdef0123456789abcdef0123456789abcdef\n", "git", "rev-parse").
		On("", "docker", "build")
	eng := &fakeEngine{}
	j := &job{a: a, o: o, exec: rec, client: eng}
	j.Runner = steps.Runner[*job]{Logf: a.Logf}
	return j, rec, eng
}

func defaults(*testing.T) Options {
	var o Options
	action.Defaults(&Spec, &o)
	return o
}

func TestSeamBuildWithoutPush(t *testing.T) {
	o := defaults(t)
	o.Image, o.Version, o.Push, o.NoCache = "registry.example.com/team/shop", "v1.4.0", false, true
	o.BuildArgs = []string{"GO_VERSION=1.26"}
	j, rec, eng := seamJob(t, o)
	_, err := j.Run(context.Background(), Pipeline, j, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"plan: done", "engine: done", "build: done", "push: skipped"}, steps.Outcomes(j.Results))
	assert.Equal(t, []string{"ping"}, eng.calls, "no login without push")
	builds := rec.Lines("docker", "build")
	require.Len(t, builds, 1)
	ws := j.a.Workspace()
	want := "docker build --file " + filepath.Join(ws, "Dockerfile") +
		" --label org.opencontainers.image.revision=89abcdef0123456789abcdef0123456789abcdef --label org.opencontainers.image.created="
	assert.True(t, strings.HasPrefix(builds[0], want), builds[0])
	assert.True(t, strings.HasSuffix(builds[0], " --label org.opencontainers.image.source=https://git.example.com/team/shop --label org.opencontainers.image.version=1.4.0"+
		" --build-arg GO_VERSION=1.26 --no-cache --tag registry.example.com/team/shop:sha-89abcde --tag registry.example.com/team/shop:1.4.0 "+ws), builds[0])
	assert.Nil(t, rec.Calls()[len(rec.Calls())-1].Env, "without build secrets docker build gets no environment of the job's")
}

func TestSeamBuildFailureStopsBeforePush(t *testing.T) {
	o := defaults(t)
	o.Image = "registry.example.com/team/shop"
	j, rec, _ := seamJob(t, o)
	rec.Fail(errors.New("exit status 1"), "docker", "build")
	_, err := j.Run(context.Background(), Pipeline, j, nil)
	require.Error(t, err)
	assert.Equal(t, action.ExitFailed, action.ExitCode(err))
	assert.Contains(t, err.Error(), "building registry.example.com/team/shop: docker build ")
	assert.Equal(t, []string{"plan: done", "engine: done", "build: failed", "push: skipped"}, steps.Outcomes(j.Results))
}

// Bad input stops in plan with exit 2: nothing is asked of git or the engine.
func TestSeamBadInputTouchesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Options)
		want string
	}{
		{"build arg", func(o *Options) { o.BuildArgs = []string{"NOT-AN-ARG"} }, `input build-args: "NOT-AN-ARG" is not NAME=value`},
		{"tagged image", func(o *Options) { o.Image = "registry.example.com/shop:1.0" }, "input image: \"registry.example.com/shop:1.0\" has a tag"},
		{"no image", func(o *Options) { o.Image = "" }, "input image is required"},
		{"context outside", func(o *Options) { o.Context = "../.." }, "input context: ../.. is outside the workspace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaults(t)
			o.Image = "registry.example.com/team/shop"
			tc.set(&o)
			j, rec, eng := seamJob(t, o)
			_, err := j.Run(context.Background(), Pipeline, j, nil)
			require.Error(t, err)
			assert.Equal(t, action.ExitUsage, action.ExitCode(err))
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, []string{"plan: failed", "engine: skipped", "build: skipped", "push: skipped"}, steps.Outcomes(j.Results))
			assert.Empty(t, rec.Calls())
			assert.Empty(t, eng.calls)
		})
	}
}

// TestSeamSecretInABuildArgIsRefused (defects audit, item 6): a build argument
// is refused when its value holds the registry password anywhere — inside a URL,
// between other text, quoted, with a space, or base64-encoded (standard and URL
// alphabets, alone or inside a longer encoded value such as a Basic header) —
// since build arguments stay in the image's history. Nothing runs.
func TestSeamSecretInABuildArgIsRefused(t *testing.T) {
	const pw = "S3cr3t/pa+ss?w0rd>>"
	std := base64.StdEncoding.EncodeToString([]byte(pw))
	for name, value := range map[string]string{
		"exact":             pw,
		"in a URL":          "https://u:" + pw + "@host/x",
		"between text":      "x" + pw + "y",
		"quoted":            `"` + pw + `"`,
		"after a space":     " " + pw,
		"base64":            std,
		"base64 url":        base64.URLEncoding.EncodeToString([]byte(pw)),
		"base64 raw url":    base64.RawURLEncoding.EncodeToString([]byte(pw)),
		"in a Basic header": "Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+pw)),
		"shifted by two":    base64.StdEncoding.EncodeToString([]byte("ab" + pw + "c")),
		"url-escaped":       url.QueryEscape(pw),
	} {
		t.Run(name, func(t *testing.T) {
			o := defaults(t)
			o.Image, o.Username, o.Password = "registry.example.com/team/shop", "user", pw
			o.BuildArgs = []string{"ARG=" + value}
			j, rec, eng := seamJob(t, o)
			_, err := j.Run(context.Background(), Pipeline, j, nil)
			require.Error(t, err)
			assert.Equal(t, action.ExitUsage, action.ExitCode(err))
			assert.EqualError(t, err, "build argument ARG carries the registry password: build arguments are kept in the image's history (docker history); pass it in build-secrets and read it with RUN --mount=type=secret")
			assert.Empty(t, rec.Calls())
			assert.Empty(t, eng.calls)
		})
	}
	// Text that merely shares a few characters with it is not refused.
	assert.False(t, action.SecretIn("S3cr3t-other and pa+ss", pw))
	assert.False(t, action.SecretIn(std[:len(std)/2], pw))
}
