package cli

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/secretfile"
	"github.com/org/deploy-kit/internal/testenv"
)

var secretValues = testenv.SecretValues()

// deploykit runs deploykit as a process of its own (this test binary, as
// TestMain makes it) with a clean environment plus extra.
func deploykit(t *testing.T, extra []string, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), asDeploykit + "=1"}, extra...)
	return cmd
}

func secretEnv() []string {
	var env []string
	for k, v := range secretValues {
		env = append(env, "ENV_"+k+"="+v)
	}
	return env
}

// envFiles lists the secret env files in dir and in the kit's own directory under it.
func envFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	for _, d := range []string{dir, secretfile.Dir(dir)} {
		m, err := filepath.Glob(filepath.Join(d, secretfile.FilePrefix+"*"))
		require.NoError(t, err)
		files = append(files, m...)
	}
	return files
}

func TestWithSecretsRunsTheCommandAndShredsTheFile(t *testing.T) {
	tmp := t.TempDir()
	check := `test "$(stat -c %a "$DEPLOYKIT_ENV_FILE")" = 600 && test "$1" = "$DEPLOYKIT_ENV_FILE" && grep -q '^PLAIN="s3cret-value"$' "$1" && echo "child sees $ENV_PLAIN"`
	cmd := deploykit(t, append(secretEnv(), "RUNNER_TEMP="+tmp), "with-secrets", "--", "sh", "-c", check, "sh", "{env-file}")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "secret env file: 10 variable(s) from ENV_*: BACKSLASH, DOLLAR, EQUALS, HASH, NEWLINES, PLAIN, QUOTES, SPACES, TRAILBS, UNICODE\n")
	assert.Contains(t, string(out), "child sees ***\n")
	assert.NotContains(t, string(out), "s3cret-value")
	assert.Empty(t, envFiles(t, tmp))
}

func TestWithSecretsMasksBeforeAnythingElseInARunner(t *testing.T) {
	tmp := t.TempDir()
	cmd := deploykit(t, append(secretEnv(), "RUNNER_TEMP="+tmp, "GITHUB_ACTIONS=true"), "with-secrets", "--", "true")
	out, err := cmd.Output()
	require.NoError(t, err, string(out))
	lines := strings.Split(string(out), "\n")
	masks := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "::add-mask::") {
			break
		}
		masks++
	}
	// Every mask comes before any other line: ten values, the three lines of the
	// multi-line one, and the escaped forms of each (quoted, encoded).
	assert.Equal(t, strings.Count(string(out), "::add-mask::"), masks, string(out))
	assert.GreaterOrEqual(t, masks, 13, string(out))
	assert.Contains(t, string(out), "::add-mask::first line\n::add-mask::second line\n::add-mask::last\n")
}

func TestWithSecretsFailingCommand(t *testing.T) {
	tmp := t.TempDir()
	cmd := deploykit(t, append(secretEnv(), "RUNNER_TEMP="+tmp), "with-secrets", "--", "false")
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Equal(t, 1, cmd.ProcessState.ExitCode())
	assert.Contains(t, string(out), "error: false failed (exit status 1)\n")
	assert.Empty(t, envFiles(t, tmp))
}

func TestWithSecretsBadInput(t *testing.T) {
	ws := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		code  int
		error string
	}{
		{"no command", nil, nil, 2, "error: with-secrets: give the command to run after --, e.g. deploykit with-secrets -- docker compose --env-file {env-file} up -d"},
		{"bad prefix", nil, []string{"--secret-prefix=ENV-", "--", "touch", marker}, 2, `error: secret prefix "ENV-": want letters, digits and underscores, such as ENV_`},
		{"bad name", []string{"ENV_A.B=x"}, []string{"--", "touch", marker}, 2, `error: secret variable ENV_A.B: "A.B" after the prefix ENV_ is not a valid variable name`},
		{"temp inside workspace", []string{"GITHUB_WORKSPACE=" + ws, "RUNNER_TEMP=" + ws}, []string{"--", "touch", marker}, 1,
			"error: secret env file directory " + ws + " is inside the workspace " + ws + ": set RUNNER_TEMP to a directory outside it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			env := append([]string{"RUNNER_TEMP=" + tmp, "ENV_PLAIN=x"}, tc.env...)
			cmd := deploykit(t, env, append([]string{"with-secrets"}, tc.args...)...)
			out, _ := cmd.CombinedOutput()
			assert.Equal(t, tc.code, cmd.ProcessState.ExitCode(), string(out))
			assert.Equal(t, tc.error+"\n", string(out))
			assert.NoFileExists(t, marker, "the command did not run")
			assert.Empty(t, envFiles(t, tmp))
			assert.Empty(t, envFiles(t, ws))
		})
	}
}

// waitForFile polls until dir holds exactly one env file.
func waitForFile(t *testing.T, dir string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if files := envFiles(t, dir); len(files) == 1 {
			return files[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no env file appeared in %s", dir)
	return ""
}

func TestWithSecretsRemovesTheFileOnSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			cmd := deploykit(t, append(secretEnv(), "RUNNER_TEMP="+tmp), "with-secrets", "--", "sleep", "60")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			require.NoError(t, cmd.Start())
			path := waitForFile(t, tmp)
			info, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

			start := time.Now()
			require.NoError(t, cmd.Process.Signal(sig))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("deploykit did not exit after %v", sig)
			}
			assert.Equal(t, 1, cmd.ProcessState.ExitCode(), out.String())
			assert.Less(t, time.Since(start), 20*time.Second, "the child was stopped, not waited for")
			assert.NoFileExists(t, path)
			assert.Contains(t, out.String(), fmt.Sprintf("deploykit: received %v: stopping within 7s", sig))
			assert.Contains(t, out.String(), fmt.Sprintf("error: deploykit with-secrets was cancelled (%v)", sig))
		})
	}
}

func TestWithSecretsSweepsTheFileOfAKilledRun(t *testing.T) {
	tmp := t.TempDir()
	cmd := deploykit(t, append(secretEnv(), "RUNNER_TEMP="+tmp), "with-secrets", "--", "sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	path := waitForFile(t, tmp)
	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL))
	_ = cmd.Wait()
	require.FileExists(t, path, "SIGKILL leaves the file behind")

	out, err := deploykit(t, append(secretEnv(), "RUNNER_TEMP="+tmp), "with-secrets", "--", "true").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "removed a stale secret env file left by a killed run: "+path+"\n")
	assert.NoFileExists(t, path)
	assert.Empty(t, envFiles(t, tmp))
}

// TestSecretsReachContainersThroughCompose passes the env file to the real docker
// compose, both as --env-file (for ${VAR} interpolation) and as a service env_file,
// and reads the values back from inside a real container.
func TestSecretsReachContainersThroughCompose(t *testing.T) {
	testenv.RequireCompose(t)
	image := testenv.ProbeImage(t)
	dir := t.TempDir()
	var names []string
	for k := range secretValues {
		names = append(names, k)
	}
	var compose strings.Builder
	fmt.Fprintf(&compose, "services:\n  interpolated:\n    image: %s\n    environment:\n", image)
	for _, n := range names {
		fmt.Fprintf(&compose, "      %s: ${%s}\n", n, n)
	}
	fmt.Fprintf(&compose, "    command: [%s]\n", strings.Join(names, ", "))
	fmt.Fprintf(&compose, "  envfile:\n    image: %s\n    env_file: [\"${DEPLOYKIT_ENV_FILE}\"]\n    command: [%s]\n", image, strings.Join(names, ", "))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose.String()), 0o644))

	project := fmt.Sprintf("dktest-secrets-%d", os.Getpid())
	t.Cleanup(func() {
		_ = exec.Command("docker", "compose", "-p", project, "-f", filepath.Join(dir, "compose.yaml"), "down", "--remove-orphans").Run()
	})
	tmp := t.TempDir()
	for _, service := range []string{"interpolated", "envfile"} {
		t.Run(service, func(t *testing.T) {
			cmd := deploykit(t, append(secretEnv(), "RUNNER_TEMP="+tmp, "DOCKER_HOST="+os.Getenv("DOCKER_HOST")),
				"with-secrets", "--", "docker", "compose", "-p", project, "-f", filepath.Join(dir, "compose.yaml"),
				"--env-file", "{env-file}", "run", "--rm", "-T", service)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, string(out))
			got := map[string]string{}
			for _, line := range strings.Split(string(out), "\n") {
				k, v, ok := strings.Cut(line, "=")
				if _, known := secretValues[k]; !ok || !known {
					continue
				}
				b, err := hex.DecodeString(v)
				require.NoError(t, err, line)
				got[k] = string(b)
			}
			assert.Equal(t, secretValues, got, string(out))
			assert.Empty(t, envFiles(t, tmp))
		})
	}
}

// TestWithSecretsWithoutGitHubWorkspaceRefusesTheCheckout: outside a runner the
// workspace is the current directory, and the git checkout around it counts too.
func TestWithSecretsWithoutGitHubWorkspaceRefusesTheCheckout(t *testing.T) {
	top := t.TempDir()
	out, err := exec.Command("git", "init", "-q", top).CombinedOutput()
	require.NoError(t, err, string(out))
	sub, tmp := filepath.Join(top, "deploy"), filepath.Join(top, "tmp")
	require.NoError(t, os.Mkdir(sub, 0o755))
	require.NoError(t, os.Mkdir(tmp, 0o755))
	marker := filepath.Join(t.TempDir(), "ran")
	cmd := deploykit(t, []string{"RUNNER_TEMP=" + tmp, "ENV_PLAIN=x"}, "with-secrets", "--", "touch", marker)
	cmd.Dir = sub
	got, _ := cmd.CombinedOutput()
	assert.Equal(t, 1, cmd.ProcessState.ExitCode(), string(got))
	assert.Equal(t, "error: secret env file directory "+tmp+" is inside the workspace "+top+": set RUNNER_TEMP to a directory outside it\n", string(got))
	assert.NoFileExists(t, marker)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written in the checkout")
}

// TestWithSecretsOutsideACheckoutRunsAnywhere: outside a runner and outside a git
// checkout, the current directory is not a workspace — running from the temp dir
// itself (or /) works.
func TestWithSecretsOutsideACheckoutRunsAnywhere(t *testing.T) {
	tmp := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	cmd := deploykit(t, []string{"RUNNER_TEMP=" + tmp, "ENV_PLAIN=x"}, "with-secrets", "--", "touch", marker)
	cmd.Dir = tmp
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.FileExists(t, marker)
	assert.Empty(t, envFiles(t, tmp))
}
