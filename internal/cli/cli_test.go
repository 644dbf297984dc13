package cli

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/org/deploy-kit/internal/action"
)

func run(t *testing.T, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(args, environ, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	code, _, stderr := run(t, nil)
	assert.Equal(t, action.ExitUsage, code)
	assert.Contains(t, stderr, "Usage: deploykit <command>")

	code, stdout, _ := run(t, nil, "--help")
	assert.Equal(t, action.ExitOK, code)
	for _, c := range Commands {
		assert.Contains(t, stdout, "  "+c.Spec.Name+" ")
	}
}

func TestUnknownCommand(t *testing.T) {
	code, stdout, stderr := run(t, nil, "deplyo")
	assert.Equal(t, action.ExitUsage, code)
	assert.Empty(t, stdout)
	assert.True(t, strings.HasPrefix(stderr, "deploykit: unknown command \"deplyo\"\n\nUsage: deploykit <command>"), stderr)
}

func TestCommandHelpListsInputs(t *testing.T) {
	for _, c := range Commands {
		code, stdout, _ := run(t, nil, c.Spec.Name, "--help")
		assert.Equal(t, action.ExitOK, code, c.Spec.Name)
		for _, in := range c.Spec.Inputs {
			assert.Contains(t, stdout, "  --"+in.Name+" <", c.Spec.Name)
			assert.Contains(t, stdout, in.Description, c.Spec.Name)
		}
	}
}

func TestBadInputExitsTwoNamingTheInput(t *testing.T) {
	code, stdout, _ := run(t, nil, "deploy", "--dry-run=maybe")
	assert.Equal(t, action.ExitUsage, code)
	assert.Equal(t, "error: input dry-run: invalid value \"maybe\": want true or false\nstatus=bad-input\n", stdout)

	// In a runner the status goes to GITHUB_OUTPUT for a later step's if:.
	out := filepath.Join(t.TempDir(), "output")
	code, stdout, _ = run(t, []string{"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + out, "INPUT_VERSION_BUMP=huge"}, "deploy")
	assert.Equal(t, action.ExitUsage, code)
	assert.Equal(t, "::error::input version-bump: invalid value \"huge\": want one of none, patch, minor, major\n", stdout)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "status<<_GitHubActionsFileCommandDelimeter_\nbad-input\n_GitHubActionsFileCommandDelimeter_\n", string(data))
}

func TestActionCommandsCheckRequiredInputs(t *testing.T) {
	code, stdout, _ := run(t, nil, "backup")
	assert.Equal(t, action.ExitUsage, code)
	assert.Equal(t, "error: engine postgres needs exactly one of the inputs container (dump inside the database's container), swarm-service (the database's swarm service, on any node) and database-url (dump from the runner)\nstatus=bad-input\n", stdout)

	code, stdout, _ = run(t, nil, "rollback")
	assert.Equal(t, action.ExitUsage, code)
	assert.Equal(t, "error: input confirm is required (set --confirm or INPUT_CONFIRM): type ROLLBACK, in capitals, to confirm the rollback\nstatus=bad-input\n", stdout)
}

func TestVersion(t *testing.T) {
	code, stdout, _ := run(t, nil, "version")
	assert.Equal(t, action.ExitOK, code)
	assert.True(t, strings.HasPrefix(stdout, "deploykit dev (commit "), stdout)

	out := filepath.Join(t.TempDir(), "out")
	code, _, _ = run(t, []string{"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + out}, "version")
	assert.Equal(t, action.ExitOK, code)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Contains(t, string(data), "version<<")
}

// guardEnv writes an event payload and returns a runner environment for it.
func guardEnv(t *testing.T, event, payload string) (environ []string, output, summary string) {
	dir := t.TempDir()
	eventPath := filepath.Join(dir, "event.json")
	require.NoError(t, os.WriteFile(eventPath, []byte(payload), 0o644))
	output, summary = filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	return []string{
		"GITHUB_ACTIONS=true", "GITHUB_EVENT_NAME=" + event, "GITHUB_EVENT_PATH=" + eventPath,
		"GITHUB_OUTPUT=" + output, "GITHUB_STEP_SUMMARY=" + summary, "GITHUB_WORKSPACE=" + dir,
	}, output, summary
}

func TestGuardCommand(t *testing.T) {
	environ, output, summary := guardEnv(t, "push", `{"head_commit":{"message":"docs [skip ci]"}}`)
	code, stdout, _ := run(t, environ, "guard")
	assert.Equal(t, action.ExitOK, code)
	data, err := os.ReadFile(output)
	require.NoError(t, err)
	assert.Contains(t, string(data), "skip<<_GitHubActionsFileCommandDelimeter_\ntrue\n")
	assert.Contains(t, string(data), "reason<<_GitHubActionsFileCommandDelimeter_\npush: head commit says \"[skip ci]\"\n")
	sum, err := os.ReadFile(summary)
	require.NoError(t, err)
	assert.Equal(t, "### deploykit guard: skip\n\npush: head commit says \"[skip ci]\"\n\n", string(sum))
	assert.Contains(t, stdout, "### deploykit guard: skip")

	environ, _, _ = guardEnv(t, "workflow_dispatch", `{"inputs":{}}`)
	code, _, _ = run(t, environ, "guard")
	assert.Equal(t, action.ExitOK, code)

	// A Gitea workflow_run whose commit is not in the checkout: decided on the
	// title, with a warning.
	environ, output, _ = guardEnv(t, "workflow_run", `{"workflow_run":{"conclusion":"success","event":"push","display_title":"Fix","head_sha":"acb5820ced9479c074f688cc328bf03f341a511d"}}`)
	code, stdout, _ = run(t, append(environ, "GITEA_ACTIONS=true"), "guard")
	assert.Equal(t, action.ExitOK, code)
	assert.Contains(t, stdout, "::warning::workflow_run: could not read commit acb5820ced9479c074f688cc328bf03f341a511d (git log acb5820ced9479c074f688cc328bf03f341a511d failed (exit status 128): fatal: not a git repository")
	data, err = os.ReadFile(output)
	require.NoError(t, err)
	assert.Contains(t, string(data), "skip<<_GitHubActionsFileCommandDelimeter_\nfalse\n")
}

func TestGuardBadEventFile(t *testing.T) {
	environ, output, _ := guardEnv(t, "push", `{"head_commit":`)
	code, stdout, _ := run(t, environ, "guard")
	assert.Equal(t, action.ExitFailed, code)
	assert.Contains(t, stdout, "::error::reading the event payload ")
	assert.NoFileExists(t, output)
}

// TestOptionsMatchSpec: every subcommand's options struct reads exactly its
// spec's inputs, each into a field of the right type — a misspelt input name
// fails here, not in a run.
func TestOptionsMatchSpec(t *testing.T) {
	for _, c := range Commands {
		assert.NoError(t, action.CheckOptions(c.Spec, c.Options), c.Spec.Name)
	}
}

// TestUsageErrorDeepInsideExitsTwo: bad input found deep inside an action —
// restore's connection to the Docker host, inside its confirm step, inside
// its pipeline — still exits 2 with status bad-input, nothing touched.
func TestUsageErrorDeepInsideExitsTwo(t *testing.T) {
	key := filepath.Join(t.TempDir(), "id")
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(block), 0o600))
	data, err := os.ReadFile(key)
	require.NoError(t, err)
	code, stdout, _ := run(t, []string{"INPUT_SSH_KEY=" + string(data), "RUNNER_TEMP=" + t.TempDir()}, "restore", "--confirm", "RESTORE", "--file", "latest",
		"--engine", "sqlite", "--sqlite-path", filepath.Join(t.TempDir(), "app.db"), "--docker-host", "ssh://deploy@127.0.0.1:1",
		"--ssh-known-hosts", "127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
	assert.Equal(t, action.ExitUsage, code, stdout)
	assert.Contains(t, stdout, "error: input docker-host: a SQLite file is on the Docker host, where a runner elsewhere cannot restore it; restore it from a runner on the host, without docker-host\nstatus=bad-input\n")
}

// TestEveryActionsUsageErrorFromInsideExitsTwo: in every action, bad input
// found after the inputs were parsed — inside a step (deploy's preflight
// loading the compose file, build-image's plan, migration-smoke's input) or
// in the run (rollback's compose file, backup's offsite) — exits 2 with
// status bad-input through every wrapping, and nothing is recorded.
func TestEveryActionsUsageErrorFromInsideExitsTwo(t *testing.T) {
	ws := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ws, "compose.yaml"), []byte("services:\n  web:\n    image: [\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "VERSION"), []byte("1.0.0\n"), 0o644))
	git := func(args ...string) {
		out, err := exec.Command("git", append([]string{"-C", ws, "-c", "user.email=ci@example.com", "-c", "user.name=ci"}, args...)...).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "a compose file that does not parse")
	invalid := "compose file " + filepath.Join(ws, "compose.yaml") + " is not valid: yaml: while parsing a flow node at line 3: did not find expected node content"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy"}, invalid},
		{[]string{"rollback", "--confirm", "ROLLBACK"}, invalid},
		{[]string{"build-image", "--image", "registry.example.com/app", "--compose-file", "nope.yaml"}, "input compose-file: nope.yaml does not exist"},
		{[]string{"migration-smoke", "--path", "nope"}, "input path: nope is not a directory of migrations in the workspace " + ws},
		{[]string{"backup", "--engine", "sqlite", "--sqlite-path", filepath.Join(ws, "VERSION"), "--dir", t.TempDir(), "--offsite-url", "ftp://x"}, `input offsite-url: "ftp://x" is not s3://bucket/prefix`},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			history := filepath.Join(t.TempDir(), "history.log")
			args := tc.args
			if tc.args[0] == "deploy" || tc.args[0] == "rollback" {
				args = append(args, "--history-file", history)
			}
			env := []string{"GITHUB_WORKSPACE=" + ws, "RUNNER_TEMP=" + t.TempDir(), "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"),
				"DOCKER_HOST=unix://" + filepath.Join(t.TempDir(), "no-engine.sock")}
			code, stdout, _ := run(t, env, args...)
			assert.Equal(t, action.ExitUsage, code, stdout)
			assert.Contains(t, stdout, "error: "+tc.want+"\n")
			assert.Contains(t, stdout, "status=bad-input\n")
			assert.NoFileExists(t, history, "nothing recorded")
		})
	}
}
