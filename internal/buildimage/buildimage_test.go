package buildimage_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

const (
	user     = "ci-bot"
	password = "registry-pa55word-0123456789"
	// A build secret with what a shell, JSON or Go would escape, and a newline.
	buildSecret = "npm-t0ken-\"q\" \\ $x `y` ünï\nline two 0123456789"
	// One line of it, for inputs that take one value per line.
	lineSecret = "npm-t0ken-\"q\" \\ $x `y` ünï 0123456789"
)

type result struct {
	code    int
	log     string
	outputs map[string]string
	summary string
}

// build runs deploykit build-image in the app's checkout, as a runner would.
func build(t *testing.T, a *testapp.App, args ...string) result {
	t.Helper()
	files := t.TempDir()
	cmd := exec.Command(testenv.Deploykit(t), append([]string{"build-image"}, args...)...)
	cmd.Dir = a.Dir
	cmd.Env = append(a.BaseEnv(), "GITHUB_OUTPUT="+filepath.Join(files, "out"), "GITHUB_STEP_SUMMARY="+filepath.Join(files, "sum"))
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	_ = cmd.Run()
	// A runner swallows ::add-mask:: lines; everything else must be free of secrets.
	var kept []string
	for _, line := range strings.Split(buf.String(), "\n") {
		if !strings.HasPrefix(line, "::add-mask::") {
			kept = append(kept, line)
		}
	}
	r := result{code: cmd.ProcessState.ExitCode(), log: strings.Join(kept, "\n")}
	r.outputs = testapp.ParseOutputs(readFile(filepath.Join(files, "out")))
	r.summary = readFile(filepath.Join(files, "sum"))
	return r
}

func readFile(p string) string {
	data, _ := os.ReadFile(p)
	return string(data)
}

// setup gives a test a registry (with basic auth when user is set), a checkout of
// the sample app, and the repository name to push to, whose local images are
// removed when the test ends.
func setup(t *testing.T, user, password, name string) (reg string, a *testapp.App, repo string) {
	t.Helper()
	testenv.RequireDocker(t)
	reg = testenv.Registry(t, user, password)
	a = testapp.New(t, "1.0.0")
	repo = reg + "/team/" + name
	t.Cleanup(func() { testenv.RemoveImages(testenv.LocalImages(t, repo)...) })
	return reg, a, repo
}

func basic() remote.Option {
	return remote.WithAuth(&authn.Basic{Username: user, Password: password})
}

func TestBuildTagLabelPush(t *testing.T) {
	t.Parallel()
	reg, a, repo := setup(t, user, password, "hello")
	sha := a.Git("rev-parse", "HEAD")

	r := build(t, a, "--image", repo, "--version", "v1.2.3", "--tags", "stable\nedge", "--username", user, "--password", password,
		"--build-args", "UNUSED=1")
	require.Equal(t, 0, r.code, r.log)
	wantTags := []string{repo + ":sha-" + sha[:7], repo + ":1.2.3", repo + ":stable", repo + ":edge"}
	assert.Equal(t, strings.Join(wantTags, "\n"), r.outputs["tags"])
	assert.Equal(t, repo, r.outputs["image"])
	assert.Equal(t, repo+"@"+r.outputs["digest"], r.outputs["ref"])
	assert.Contains(t, r.log, "logged in to "+reg+" as "+user)

	for _, tag := range wantTags {
		ref, err := name.ParseReference(tag)
		require.NoError(t, err)
		desc, err := remote.Head(ref, basic())
		require.NoError(t, err, tag)
		assert.Equal(t, r.outputs["digest"], desc.Digest.String(), "the registry's manifest digest for %s", tag)
	}
	ref, err := name.ParseReference(r.outputs["ref"])
	require.NoError(t, err)
	img, err := remote.Image(ref, basic())
	require.NoError(t, err)
	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	labels := cfg.Config.Labels
	assert.Equal(t, sha, labels["org.opencontainers.image.revision"])
	assert.Equal(t, "https://git.example.com/team/hello", labels["org.opencontainers.image.source"])
	assert.Equal(t, "1.2.3", labels["org.opencontainers.image.version"])
	created, err := time.Parse(time.RFC3339, labels["org.opencontainers.image.created"])
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), created, 10*time.Minute)
	assert.Equal(t, "deploy-kit hello example", labels["org.opencontainers.image.title"], "the Dockerfile's own label is kept")

	assert.Contains(t, r.summary, "### deploykit build-image")
	for _, out := range []string{r.log, r.summary} {
		assert.NotContains(t, out, password)
	}
}

func TestWrongCredentials(t *testing.T) {
	t.Parallel()
	reg, a, repo := setup(t, user, password, "hello")
	wrong := "not-the-password-987654321"
	r := build(t, a, "--image", repo, "--username", user, "--password", wrong)
	assert.Equal(t, 1, r.code, r.log)
	assert.Contains(t, r.log, "::error::logging in to "+reg+" as "+user+": ")
	assert.Contains(t, r.log, "401 Unauthorized")
	assert.NotContains(t, r.log, wrong)
	assert.Empty(t, testenv.LocalImages(t, repo), "nothing built")
}

func TestBadInputBuildsNothing(t *testing.T) {
	t.Parallel()
	_, a, repo := setup(t, "", "", "bad")
	a.Env = append(a.Env, "NPM_TOKEN="+lineSecret)
	outside := t.TempDir()
	outsideFile := filepath.Join(outside, "Dockerfile")
	require.NoError(t, os.WriteFile(outsideFile, []byte("FROM scratch\n"), 0o644))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"latest", []string{"--image", repo, "--tags", "latest"}, "tag latest is refused: it moves under running deploys and cannot be rolled back to; use the sha- or version tag, or set allow-latest: true"},
		{"missing Dockerfile", []string{"--image", repo, "--file", "Nope.Dockerfile"}, "input file: Nope.Dockerfile does not exist (it is relative to the context .)"},
		{"context outside the workspace", []string{"--image", repo, "--context", outside}, "input context: " + outside + " is outside the workspace"},
		{"context escaping with ..", []string{"--image", repo, "--context", "../"}, "input context: ../ is outside the workspace"},
		{"Dockerfile outside the workspace", []string{"--image", repo, "--file", outsideFile}, "input file: " + outsideFile + " is outside the workspace"},
		{"Dockerfile escaping with ..", []string{"--image", repo, "--file", "../" + filepath.Base(filepath.Dir(outsideFile)) + "/Dockerfile"}, "is outside the workspace"},
		{"invalid image name", []string{"--image", "Team/App!"}, `input image: "Team/App!" is not an image name like registry.example.com/team/app`},
		{"image with a tag", []string{"--image", repo + ":v1"}, `has a tag: give the name only; the tags come from the commit, version and tags`},
		{"bad tag", []string{"--image", repo, "--tags", "a b"}, `tag "a b" is not a valid image tag`},
		{"bad build arg", []string{"--image", repo, "--build-args", "NOVALUE"}, `input build-args: "NOVALUE" is not NAME=value`},
		{"no image", nil, "input image is required (registry/owner/name), or set compose-file to build its build: services"},
		{"password without user", []string{"--image", repo, "--password", password}, "input password is set but username is empty"},
		{"build secret without a variable", []string{"--image", repo, "--build-secrets", "npm_token"}, `input build-secrets: "npm_token" is not id=VARIABLE`},
		{"build secret with a bad id", []string{"--image", repo, "--build-secrets", "a b=NPM_TOKEN"}, `input build-secrets: "a b=NPM_TOKEN" is not id=VARIABLE`},
		{"build secret naming no variable", []string{"--image", repo, "--build-secrets", "npm_token=npm-token"}, `input build-secrets: "npm_token=npm-token" is not id=VARIABLE`},
		{"build secret not set", []string{"--image", repo, "--build-secrets", "npm_token=NOT_SET_ANYWHERE"}, "input build-secrets: npm_token: the variable NOT_SET_ANYWHERE is not set in the step's environment (env: {NOT_SET_ANYWHERE: <the secret>} on the step)"},
		{"build secret twice", []string{"--image", repo, "--build-secrets", "token=NPM_TOKEN\ntoken=NPM_TOKEN"}, "input build-secrets: token is given twice"},
		{"build arg carrying a build secret", []string{"--image", repo, "--build-secrets", "token=NPM_TOKEN", "--build-args", "NPM_TOKEN=" + lineSecret},
			"build argument NPM_TOKEN carries the build secret token: build arguments are kept in the image's history (docker history); pass it in build-secrets and read it with RUN --mount=type=secret"},
		{"build arg carrying the registry password", []string{"--image", repo, "--username", user, "--password", password, "--build-args", "PW=" + password},
			"build argument PW carries the registry password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := build(t, a, tc.args...)
			assert.Equal(t, 2, r.code, r.log)
			assert.Contains(t, r.log, "::error::")
			assert.Contains(t, r.log, tc.want)
			assert.Equal(t, "bad-input", r.outputs["status"])
			assert.Empty(t, testenv.LocalImages(t, repo), "nothing built")
			assert.NotContains(t, r.log, password)
			assert.NotContains(t, r.log, "npm-t0ken")
		})
	}
	// latest is allowed when asked for.
	r := build(t, a, "--image", repo, "--tags", "latest", "--allow-latest", "--push=false")
	require.Equal(t, 0, r.code, r.log)
	assert.Contains(t, testenv.LocalImages(t, repo), repo+":latest")
	assert.Empty(t, r.outputs["digest"], "not pushed")
}

func TestDryRunBuildsNothing(t *testing.T) {
	t.Parallel()
	_, a, repo := setup(t, "", "", "dry")
	r := build(t, a, "--image", repo, "--dry-run", "--no-cache", "--target", "final")
	require.Equal(t, 0, r.code, r.log)
	assert.Contains(t, r.log, "would run: docker build --file "+a.Dir+"/Dockerfile --label org.opencontainers.image.revision=")
	assert.Contains(t, r.log, "--target final --no-cache --tag "+repo+":sha-")
	assert.Empty(t, testenv.LocalImages(t, repo))
}

func TestComposeFileMode(t *testing.T) {
	t.Parallel()
	testenv.RequireDocker(t)
	reg := testenv.Registry(t, "", "")
	a := testapp.New(t, "1.0.0")
	t.Cleanup(func() {
		testenv.RemoveImages(append(testenv.LocalImages(t, reg+"/team/web"), testenv.LocalImages(t, reg+"/team/worker")...)...)
	})
	require.NoError(t, os.MkdirAll(filepath.Join(a.Dir, "worker"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "worker", "Dockerfile"), []byte("FROM scratch\nARG GREETING\nCOPY job.txt /job.txt\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "worker", "job.txt"), []byte("work\n"), 0o644))
	stack := fmt.Sprintf(`services:
  web:
    image: %[1]s/team/web:${DEPLOY_TAG:-dev}
    build: .
  worker:
    image: %[1]s/team/worker
    build:
      context: worker
      args:
        GREETING: hi
  db:
    image: postgres:16
`, reg)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "stack.yaml"), []byte(stack), 0o644))

	r := build(t, a, "--compose-file", "stack.yaml", "--version", "2.0.0")
	require.Equal(t, 0, r.code, r.log)
	assert.Equal(t, reg+"/team/web\n"+reg+"/team/worker", r.outputs["image"])
	digests := strings.Split(r.outputs["digest"], "\n")
	require.Len(t, digests, 2)
	for i, repo := range []string{reg + "/team/web", reg + "/team/worker"} {
		ref, err := name.ParseReference(repo + ":2.0.0")
		require.NoError(t, err)
		desc, err := remote.Head(ref)
		require.NoError(t, err, repo)
		assert.Equal(t, digests[i], desc.Digest.String())
	}
	assert.Contains(t, r.log, "--build-arg GREETING=hi")
}

// secretDockerfile records the SHA-256 of each secret it is given (never the
// value) in the image, so a test can tell the build saw it. A Debian root
// filesystem is the base: the RUN needs a shell.
func secretDockerfile(base string, ids ...string) string {
	df := "FROM " + base + "\nUSER root\n"
	for _, id := range ids {
		df += fmt.Sprintf("RUN --mount=type=secret,id=%[1]s,required=true sha256sum /run/secrets/%[1]s | cut -c1-64 > /%[1]s.sha256\n", id)
	}
	return df
}

// imageFile reads a file of a local image.
func imageFile(t *testing.T, image, path string) string {
	t.Helper()
	out, err := exec.Command("docker", "run", "--rm", "--entrypoint", "cat", image, path).CombinedOutput()
	require.NoError(t, err, string(out))
	return strings.TrimSpace(string(out))
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestBuildSecretsReachTheBuildOnly: a build-secrets value is there for the RUN
// that mounts it, and nowhere else: not in the log, the command line, the image's
// history or configuration.
func TestBuildSecretsReachTheBuildOnly(t *testing.T) {
	t.Parallel()
	testenv.RequireBuildx(t)
	base := testenv.PostgresImage(t)
	_, a, repo := setup(t, "", "", "secret")
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "Secret.Dockerfile"), []byte(secretDockerfile(base, "npm_token")), 0o644))

	a.Env = append(a.Env, "NPM_TOKEN="+buildSecret)
	// --no-cache: a secret is not part of BuildKit's cache key, so a RUN cached by
	// an earlier run with another value would be reused.
	r := build(t, a, "--image", repo, "--file", "Secret.Dockerfile", "--push=false", "--no-cache", "--build-secrets", "npm_token=NPM_TOKEN",
		"--build-args", "API_KEY=public")
	require.Equal(t, 0, r.code, r.log)
	assert.Contains(t, r.log, "--secret id=npm_token,env=NPM_TOKEN")
	assert.Contains(t, r.log, "::warning::build argument API_KEY looks like a secret")
	sha := a.Git("rev-parse", "HEAD")
	image := repo + ":sha-" + sha[:7]
	assert.Equal(t, sha256hex(buildSecret), imageFile(t, image, "/npm_token.sha256"), "the RUN read the secret")
	history, err := exec.Command("docker", "history", "--no-trunc", image).CombinedOutput()
	require.NoError(t, err, string(history))
	inspect, err := exec.Command("docker", "image", "inspect", image).CombinedOutput()
	require.NoError(t, err, string(inspect))
	for _, out := range []string{r.log, r.summary, string(history), string(inspect)} {
		assert.NotContains(t, out, "npm-t0ken")
		assert.NotContains(t, out, "line two")
	}
}

// TestComposeBuildSecrets: a compose service's build.secrets (file and
// environment sources) reach its build as docker compose build would give them.
func TestComposeBuildSecrets(t *testing.T) {
	t.Parallel()
	testenv.RequireBuildx(t)
	base := testenv.PostgresImage(t)
	reg := testenv.Registry(t, "", "")
	a := testapp.New(t, "1.0.0")
	t.Cleanup(func() { testenv.RemoveImages(testenv.LocalImages(t, reg+"/team/api")...) })
	require.NoError(t, os.MkdirAll(filepath.Join(a.Dir, "api"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "api", "Dockerfile"), []byte(secretDockerfile(base, "token", "cert")), 0o644))
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	require.NoError(t, os.WriteFile(certFile, []byte("not really a certificate\n"), 0o600))
	stack := fmt.Sprintf(`services:
  api:
    image: %s/team/api
    build:
      context: api
      secrets:
        - source: api_token
          target: token
        - cert
secrets:
  api_token:
    environment: API_TOKEN
  cert:
    file: %s
`, reg, certFile)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "stack.yaml"), []byte(stack), 0o644))

	a.Env = append(a.Env, "API_TOKEN="+buildSecret)
	r := build(t, a, "--compose-file", "stack.yaml", "--push=false", "--no-cache")
	require.Equal(t, 0, r.code, r.log)
	assert.Contains(t, r.log, "--secret id=token,env=API_TOKEN --secret id=cert,src="+certFile)
	image := reg + "/team/api:sha-" + a.Git("rev-parse", "HEAD")[:7]
	assert.Equal(t, sha256hex(buildSecret), imageFile(t, image, "/token.sha256"))
	assert.Equal(t, sha256hex("not really a certificate\n"), imageFile(t, image, "/cert.sha256"))
	assert.NotContains(t, r.log, "npm-t0ken")
	assert.NotContains(t, r.log, "line two")

	// A secret a build cannot be given is refused before anything is built.
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "stack.yaml"), []byte(strings.Replace(stack, "environment: API_TOKEN", "environment: NOT_SET_ANYWHERE", 1)), 0o644))
	r = build(t, a, "--compose-file", "stack.yaml", "--push=false")
	assert.Equal(t, 2, r.code, r.log)
	assert.Contains(t, r.log, "service api: build secret api_token: the variable NOT_SET_ANYWHERE is not set in the step's environment")
}
