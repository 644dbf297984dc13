package deploy_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv/testapp"

	"github.com/org/deploy-kit/internal/testenv"
)

// TestBadInputAndPreflightChangeNothing runs every refusal against a stack that is
// running: each one exits with the right code and message, and the running
// containers are exactly the ones that ran before.
func TestBadInputAndPreflightChangeNothing(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	r := a.Deploy()
	require.Equal(t, 0, r.Code, r.Log)
	before := a.Containers()
	require.NotEmpty(t, before)

	write := func(name, content string) string {
		require.NoError(t, os.WriteFile(filepath.Join(a.Dir, name), []byte(content), 0o644))
		return name
	}
	invalid := write("invalid.yaml", "services:\n  web:\n    image: [not, a, string\n")
	latest := write("latest.yaml", "services:\n  web:\n    image: deploykit-hello:latest\n")
	untagged := write("untagged.yaml", "services:\n  web:\n    image: registry.example.com/team/hello\n")
	network := fmt.Sprintf("dk-missing-net-%d", os.Getpid())
	external := write("external.yaml", "services:\n  web:\n    image: deploykit-hello:sha-0000000\n    networks: [edge]\n"+
		"networks:\n  edge:\n    external: true\n    name: "+network+"\n")

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"invalid compose file", []string{"--compose-file", invalid}, 2, "compose file " + a.Dir + "/invalid.yaml is not valid: "},
		{"missing compose file", []string{"--compose-file", "nope.yaml"}, 2, "input compose-file: nope.yaml does not exist (paths are relative to the workspace " + a.Dir + ")"},
		{"pull-only with :latest", []string{"--compose-file", latest, "--pull-only"}, 2, "pull-only deploys need pinned images: service web: image deploykit-hello:latest uses :latest;"},
		{"pull-only with an untagged image", []string{"--compose-file", untagged, "--pull-only"}, 2, "service web: image registry.example.com/team/hello has no tag (it means :latest)"},
		{"pull-only with build:", []string{"--pull-only"}, 2, "pull-only deploys need pinned images: service web has a build: section;"},
		{"free disk below the threshold", []string{"--min-free-disk", "100%"}, 1, "below min-free-disk 100%: free space (docker system prune, old images) or lower min-free-disk"},
		{"missing external network", []string{"--compose-file", external}, 1, "external network " + network + " does not exist: create it (docker network create " + network + ") or remove external: true"},
		{"unknown service", []string{"--service", "db"}, 2, `input service: "db" is not a service of ` + a.Dir + `/compose.yaml (services: web)`},
		{"bad smoke check", []string{"--smoke-checks", "health=200"}, 2, `input smoke-checks: smoke check "health=200": want path=status[,status], e.g. /health=200`},
		{"bad health url", []string{"--health-url", "localhost:8080/health"}, 2, `input health-url: "localhost:8080/health" is not an http:// or https:// URL`},
		{"bad version bump", []string{"--version-bump", "huge"}, 2, `input version-bump: invalid value "huge": want one of none, patch, minor, major`},
		{"bad git ref", []string{"--git-ref", "--upload-pack=x"}, 2, `input git-ref: "--upload-pack=x" is not a branch, tag or commit name`},
		{"unknown git ref", []string{"--git-ref", "v9.9.9"}, 2, `input git-ref: "v9.9.9" does not name a commit in ` + a.Dir},
		{"bad project name", []string{"--project-name", "My App"}, 2, `input project-name: "My App" is not a compose project name`},
		{"bad commit author", []string{"--commit-author", "release-bot"}, 2, `input commit-author: "release-bot" is not Name <email>, e.g. Release Bot <release-bot@example.com>`},
		{"relative history file", []string{"--history-file", "history.log"}, 2, `input history-file: "history.log" must be an absolute path on the Docker host`},
		{"rolling on swarm", []string{"--target", "swarm", "--strategy", "rolling"}, 2, "input strategy: rolling applies to target compose; on swarm each service's update_config decides how tasks are replaced"},
		{"backup without a database", []string{"--backup"}, 2, "engine postgres needs exactly one of the inputs backup-container (dump inside the database's container) and backup-database-url (dump from the runner)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			historyBefore := a.HistoryLines()
			r := a.Deploy(tc.args...)
			assert.Equal(t, tc.code, r.Code, r.Log)
			assert.Contains(t, r.Log, "::error::")
			assert.Contains(t, r.Log, escape(tc.want))
			assert.Equal(t, before, a.Containers(), "running containers untouched")
			_, v := a.Get("/version")
			assert.Equal(t, "1.0.0", v)
			if tc.code == 2 {
				assert.Equal(t, historyBefore, a.HistoryLines(), "bad input is not history")
				assert.Equal(t, "bad-input", r.Outputs["status"], "a later step sees why")
			}
			a.NoSecretsLeft(t)
			assert.NoFileExists(t, a.LockFile())
		})
	}
}

// escape is how a runner annotation carries % (the only escape in these messages).
func escape(s string) string { return strings.ReplaceAll(s, "%", "%25") }

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	withOrigin(t, a) // a bump is planned only on the tip of origin's default branch
	headBefore := a.Git("rev-parse", "HEAD")
	r := a.Deploy("--dry-run", "--version-bump", "patch", "--no-cache")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Log, "would run: git commit -q -m 'chore(release): v1.0.1 [skip ci]' -- VERSION")
	assert.Contains(t, r.Log, "would run: git push --atomic origin HEAD:refs/heads/main refs/tags/v1.0.1")
	assert.Contains(t, r.Log, "would run: docker compose -p "+a.Name+" -f "+a.Dir+"/compose.yaml --env-file '<secret env file>' build --no-cache")
	assert.Contains(t, r.Log, "would run: docker compose -p "+a.Name+" -f "+a.Dir+"/compose.yaml --env-file '<secret env file>' up -d --wait --remove-orphans --wait-timeout 60 --no-build --pull never")
	assert.Contains(t, r.Summary, "### deploykit deploy: success — "+a.Name+" 1.0.1 on production (dry run)")
	assert.Contains(t, r.Summary, "| secrets | skipped |  | dry run: would write 1 variable(s) to a 0600 env file: DB_PASSWORD |")
	assert.Regexp(t, `\| history \| skipped \|  \| dry run: would append to `+a.History+`: \S+ \\\| `+a.Name+` \\\| production \\\| deploy \\\| 1\.0\.1 \\\| success \\\|`, r.Summary)
	assert.Contains(t, r.Summary, "| version | done | ")
	assert.Contains(t, r.Summary, "dry run: would commit VERSION 1.0.1, tag v1.0.1 and push to origin/main |")

	assert.Empty(t, a.Containers(), "no container created")
	assert.NoFileExists(t, a.History)
	assert.NoDirExists(t, filepath.Join(filepath.Dir(a.History), "locks"))
	assert.Equal(t, headBefore, a.Git("rev-parse", "HEAD"))
	assert.Equal(t, "v1.0.0", a.Git("tag"))
	assert.Empty(t, a.Git("status", "--porcelain"))
	data, err := os.ReadFile(filepath.Join(a.Dir, "VERSION"))
	require.NoError(t, err)
	assert.Equal(t, "1.0.0\n", string(data))
	a.NoSecretsLeft(t)
	assert.NotContains(t, r.Log, testapp.Secret)
}

func TestGuardSkipsTheDeploy(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	event := filepath.Join(t.TempDir(), "event.json")
	require.NoError(t, os.WriteFile(event, []byte(`{"workflow_run":{"conclusion":"success","event":"push","head_sha":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","head_commit":{"message":"chore(release): v1.0.1 [skip ci]"}}}`), 0o644))
	a.Env = []string{"GITHUB_EVENT_NAME=workflow_run", "GITHUB_EVENT_PATH=" + event}
	r := a.Deploy()
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, "true", r.Outputs["skipped"])
	assert.Equal(t, "skipped", r.Outputs["status"])
	assert.Contains(t, r.Summary, `| guard | done | `)
	assert.Contains(t, r.Summary, `skip: workflow_run: head commit says "[skip ci]" |`)
	assert.Contains(t, r.Summary, "| apply | skipped |  | the guard skipped this deploy |")
	assert.Empty(t, a.Containers())
	assert.NoFileExists(t, a.History)
}

func TestPromotionRequiresVerification(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	prod := a.Name
	staging := a.Name + "-staging"
	prodPort := a.Port

	// Staging gets 1.0.0 and verifies it.
	a.Port = testenv.FreePort(t)
	stagingApp := *a
	stagingApp.Name = staging
	t.Cleanup(stagingApp.Cleanup)
	r := a.Deploy("--project-name", staging, "--environment", "staging", "--verifies", "staging")
	require.Equal(t, 0, r.Code, r.Log)
	lines := a.HistoryLines()
	require.Len(t, lines, 2)
	assert.Regexp(t, `\| `+staging+` \| staging \| verified \| 1\.0\.0 \| success \| deployed and verified on staging; sha=[0-9a-f]{40}$`, lines[1])

	// Production takes the verified 1.0.0.
	a.Port = prodPort
	r = a.Deploy("--requires-verified", "staging")
	require.Equal(t, 0, r.Code, r.Log)

	// 2.0.0 was never on staging: refused, production untouched — also when
	// another app verified a 2.0.0 of its own there.
	a.Release("2.0.0", false)
	fh, err := os.OpenFile(a.History, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fh.WriteString("2026-11-30T00:00:00Z | other-app | staging | verified | 2.0.0 | success | deployed and verified on staging; sha=" + strings.Repeat("b", 40) + "\n")
	require.NoError(t, err)
	require.NoError(t, fh.Close())
	before := a.Containers()
	r = a.Deploy("--requires-verified", "staging")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::deploy of 2.0.0 failed at promotion: version 2.0.0 was not verified on staging: deploy it there first (with verifies: staging), or set force: true to deploy it anyway (recorded as FORCED)")
	assert.Equal(t, before, a.Containers())
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0", v)

	// force deploys it, and says so in the history.
	r = a.Deploy("--requires-verified", "staging", "--force")
	require.Equal(t, 0, r.Code, r.Log)
	_, v = a.Get("/version")
	assert.Equal(t, "2.0.0", v)
	lines = a.HistoryLines()
	assert.Regexp(t, `\| `+prod+` \| production \| deploy \| 2\.0\.0 \| success \| sha=[0-9a-f]{40}; FORCED: 2\.0\.0 not verified on staging;`, lines[len(lines)-1])
}

func TestUnreachableEngine(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	a.Env = []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}
	r := a.Deploy()
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::deploy of 1.0.0 failed at preflight: the Docker Engine at unix:///nonexistent/docker.sock does not answer: ")
	assert.Contains(t, r.Log, "check DOCKER_HOST and that the engine runs")
	assert.NoFileExists(t, a.LockFile())
	a.NoSecretsLeft(t)
}

// TestComposeErrorsEchoingASecretLeakNoForm: compose-go quotes the value it could
// not parse (%q), and the engine quotes a bad extra_hosts entry; neither that nor
// any other form of the secret (with quotes, $, a backtick, a backslash, a
// non-ASCII letter and a newline) reaches the log, the annotation, the summary,
// the outputs or the history.
func TestComposeErrorsEchoingASecretLeakNoForm(t *testing.T) {
	t.Parallel()
	secret := "S2-zz9 \"q\" $x `tick` \\ é\nnext-line"
	quoted := fmt.Sprintf("%q", secret)
	ascii := fmt.Sprintf("%+q", secret)
	for _, tc := range []struct {
		name, file string
		code       int
		want       string
	}{
		{"compose-go", "services:\n  web:\n    image: deploykit-hello:dev\n    deploy:\n      resources:\n        limits:\n          cpus: \"${API_TOKEN}\"\n",
			2, `parsing "***": invalid syntax`},
		{"engine", "services:\n  web:\n    image: deploykit-hello:${DEPLOY_TAG:-dev}\n    build: .\n    extra_hosts:\n      - \"db:${API_TOKEN}\"\n",
			1, `invalid IP address in add-host: "***"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := testapp.New(t, "1.0.0")
			require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "leaky.yaml"), []byte(tc.file), 0o644))
			a.Env = append(a.Env, "ENV_API_TOKEN="+secret)
			r := a.Deploy("--compose-file", "leaky.yaml")
			require.Equal(t, tc.code, r.Code, r.Log)
			assert.Contains(t, r.Log, tc.want)
			everything := r.Log + r.Summary + strings.Join(a.HistoryLines(), "\n") + fmt.Sprint(r.Outputs)
			for _, form := range []string{secret, quoted[1 : len(quoted)-1], ascii[1 : len(ascii)-1], "zz9", "next-line"} {
				assert.NotContains(t, everything, form)
			}
		})
	}
}

// TestSwarmRefusesInterpolatedSecrets: on swarm, ${SECRET} in the stack file would
// silently become its fallback (docker stack deploy never sees the value): refused
// with the fix, before anything is touched.
func TestSwarmRefusesInterpolatedSecrets(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	stack := "services:\n  web:\n    image: deploykit-hello:dev\n    environment:\n      DB_PASSWORD: ${DB_PASSWORD:-unset}\n"
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "stack.yaml"), []byte(stack), 0o644))
	r := a.Deploy("--target", "swarm", "--compose-file", "stack.yaml")
	require.Equal(t, 2, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::target swarm: the stack file interpolates the secret variable(s) DB_PASSWORD, which docker stack deploy never sees (the service would get the fallback or nothing): pass each as a swarm secret instead — declare secrets: {DB_PASSWORD: {external: true}} at the top level and under the service, and have the app read /run/secrets/DB_PASSWORD (many images take DB_PASSWORD_FILE=/run/secrets/DB_PASSWORD)")
	assert.Equal(t, "bad-input", r.Outputs["status"])
	assert.Empty(t, a.Containers())
	out, err := exec.Command("docker", "secret", "ls", "-q", "--filter", "label=org.deploykit.stack="+a.Name).CombinedOutput()
	if err == nil { // else the engine is no swarm manager and holds no secrets at all
		assert.Empty(t, strings.TrimSpace(string(out)), "no swarm secret made")
	}
}
