package buildimage

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/steps"
)

// pushEngine pushes, as the engine would, one image (the same for every tag
// of a build) to the registry the reference names, an in-process one here,
// and reports its digest; with lie it reports another.
type pushEngine struct {
	fakeEngine
	image v1.Image
	lie   string
}

func (e *pushEngine) Login(_ context.Context, a docker.Auth) error {
	e.calls = append(e.calls, "login "+a.Registry+" "+a.Username)
	return nil
}

func (e *pushEngine) Push(_ context.Context, ref string, _ *docker.Auth, _ io.Writer) (string, error) {
	e.calls = append(e.calls, "push "+ref)
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	if err := remote.Write(r, e.image); err != nil {
		return "", err
	}
	d, err := e.image.Digest()
	if e.lie != "" {
		return e.lie, err
	}
	return d.String(), err
}

// registryHost is an in-process OCI registry on loopback.
func registryHost(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestSeamPushReadsTheDigestBack: every tag pushed (after a login with the
// credentials), one digest for all, read back from the registry; the outputs
// and summary list image, tags, digest and ref. A push that reports a digest
// the registry does not have fails.
func TestSeamPushReadsTheDigestBack(t *testing.T) {
	host := registryHost(t)
	img, err := random.Image(256, 1)
	require.NoError(t, err)
	digest, err := img.Digest()
	require.NoError(t, err)

	o := defaults(t)
	o.Image, o.Version, o.Push = host+"/team/shop", "1.4.0", true
	o.Username, o.Password = "ci", "s3cret"
	j, _, _ := seamJob(t, o)
	eng := &pushEngine{image: img}
	j.client = eng
	tmp := t.TempDir()
	outputs, summary := filepath.Join(tmp, "outputs"), filepath.Join(tmp, "summary")
	require.NoError(t, os.WriteFile(outputs, nil, 0o600))
	require.NoError(t, os.WriteFile(summary, nil, 0o600))
	j.a = action.NewContext(append(j.a.Environ(), "GITHUB_OUTPUT="+outputs, "GITHUB_STEP_SUMMARY="+summary), io.Discard)
	j.Runner = steps.Runner[*job]{Logf: j.a.Logf}
	_, err = j.Run(context.Background(), Pipeline, j, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"plan: done", "engine: done", "build: done", "push: done"}, steps.Outcomes(j.Results))
	assert.Equal(t, []string{"ping", "login " + host + " ci", "push " + host + "/team/shop:sha-89abcde", "push " + host + "/team/shop:1.4.0"}, eng.calls)
	require.NoError(t, report(j.a, j.results, true, j.Results))
	out, err := os.ReadFile(outputs)
	require.NoError(t, err)
	assert.Contains(t, string(out), "\n"+digest.String()+"\n")
	assert.Contains(t, string(out), "\n"+host+"/team/shop@"+digest.String()+"\n")
	assert.Contains(t, string(out), "\n"+host+"/team/shop:sha-89abcde\n"+host+"/team/shop:1.4.0\n")
	sum, err := os.ReadFile(summary)
	require.NoError(t, err)
	assert.Contains(t, string(sum), "| "+host+"/team/shop | "+host+"/team/shop:sha-89abcde<br>"+host+"/team/shop:1.4.0 | "+digest.String()+" |")

	// The engine says it pushed a digest the registry does not hold.
	j, _, _ = seamJob(t, o)
	j.client = &pushEngine{image: img, lie: "sha256:" + strings.Repeat("0", 64)}
	_, err = j.Run(context.Background(), Pipeline, j, nil)
	require.Error(t, err)
	assert.Equal(t, "the registry has "+digest.String()+" at "+host+"/team/shop:sha-89abcde, but the push reported sha256:"+strings.Repeat("0", 64), err.Error())
}

// TestSeamDryRunReportsWithoutPushing: a dry run prints the build and reports
// the images as not pushed, asking nothing of the engine.
func TestSeamDryRunReportsWithoutPushing(t *testing.T) {
	o := defaults(t)
	o.Image, o.DryRun = "registry.example.com/team/shop", true
	j, rec, eng := seamJob(t, o)
	_, err := j.Run(context.Background(), Pipeline, j, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"plan: done", "engine: skipped", "build: done", "push: skipped"}, steps.Outcomes(j.Results))
	assert.Empty(t, eng.calls)
	assert.Len(t, rec.Lines("docker", "build"), 1)
}

// TestSeamComposeFilePlans: with compose-file, each service with a build:
// section is one image (its image: without tag), with its context,
// Dockerfile, target, build args and BuildKit secrets (environment: and file:
// secrets, by target or source); what a build cannot be given is refused
// with exit 2 before anything runs.
func TestSeamComposeFilePlans(t *testing.T) {
	write := func(t *testing.T, ws, name, body string) {
		p := filepath.Join(ws, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	stack := `services:
  api:
    image: registry.example.com/team/api:dev
    build:
      context: api
      target: prod
      args: {GO_VERSION: "1.26"}
      secrets:
        - source: api_token
          target: token
        - cert
  web:
    image: registry.example.com/team/web
    build: {context: web, dockerfile: web.Dockerfile}
  db:
    image: postgres:16
secrets:
  api_token: {environment: API_TOKEN}
  cert: {file: ./cert.pem}
`
	o := defaults(t)
	o.ComposeFile, o.Image = "stack.yaml", ""
	j, rec, _ := seamJob(t, o)
	ws := j.a.Workspace()
	write(t, ws, "stack.yaml", stack)
	write(t, ws, "api/Dockerfile", "FROM scratch\n")
	write(t, ws, "web/web.Dockerfile", "FROM scratch\n")
	write(t, ws, "cert.pem", "cert\n")
	j.a = action.NewContext(append(j.a.Environ(), "API_TOKEN=t0ken"), io.Discard)
	j.Runner = steps.Runner[*job]{Logf: j.a.Logf}
	_, err := j.Run(context.Background(), Pipeline[:1], j, nil)
	require.NoError(t, err)
	require.Len(t, j.builds, 2)
	api, web := j.builds[0], j.builds[1]
	assert.Equal(t, build{Service: "api", Image: "registry.example.com/team/api", Context: filepath.Join(ws, "api"), Dockerfile: filepath.Join(ws, "api", "Dockerfile"), Target: "prod",
		Args: []string{"GO_VERSION=1.26"}, Secrets: []buildSecret{{ID: "token", Env: "API_TOKEN", Value: "t0ken"}, {ID: "cert", File: filepath.Join(ws, "cert.pem")}}}, api)
	assert.Equal(t, build{Service: "web", Image: "registry.example.com/team/web", Context: filepath.Join(ws, "web"), Dockerfile: filepath.Join(ws, "web", "web.Dockerfile")}, web)
	assert.Len(t, rec.Calls(), 1, "git rev-parse only")

	for _, tc := range []struct{ name, from, to, want string }{
		{"a build without an image", "image: registry.example.com/team/web\n", "", "service web builds an image but names none: add image: registry/owner/web"},
		{"an undeclared secret", "        - cert\n", "        - nope\n", `service "api" refers to undefined build secret nope`},
		{"a variable not set", "environment: API_TOKEN", "environment: NOT_SET", "service api: build secret api_token: the variable NOT_SET is not set in the step's environment"},
		{"a missing file", "file: ./cert.pem", "file: ./gone.pem", "service api: build secret cert: the file " + filepath.Join(ws, "gone.pem") + " does not exist"},
		{"a context outside", "context: api\n", "context: ../..\n", "service api: build context " + filepath.Dir(filepath.Dir(ws)) + " is outside the workspace " + ws},
		{"a missing Dockerfile", "dockerfile: web.Dockerfile", "dockerfile: nope.Dockerfile", "service web: Dockerfile " + filepath.Join(ws, "web", "nope.Dockerfile") + " does not exist"},
		{"nothing to build", stack, "services:\n  db:\n    image: postgres:16\n", "has no service with a build: section"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write(t, ws, "stack.yaml", strings.Replace(stack, tc.from, tc.to, 1))
			j.Results, j.builds = nil, nil
			_, err := j.Run(context.Background(), Pipeline, j, nil)
			require.Error(t, err)
			assert.Equal(t, action.ExitUsage, action.ExitCode(err))
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, []string{"plan: failed", "engine: skipped", "build: skipped", "push: skipped"}, steps.Outcomes(j.Results))
		})
	}
	write(t, ws, "stack.yaml", stack)
	j.o.ComposeFile = "missing.yaml"
	j.Results = nil
	_, err = j.Run(context.Background(), Pipeline, j, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "input compose-file: missing.yaml does not exist")
}
