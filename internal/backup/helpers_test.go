package backup_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// result is one finished `deploykit backup`.
type result struct {
	Code    int
	Log     string
	Outputs map[string]string
	Summary string
}

// runnerEnv is a runner-like environment for deploykit; extra is appended.
func runnerEnv(t *testing.T, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"GITHUB_ACTIONS=true", "RUNNER_TEMP=" + t.TempDir(), "GITHUB_WORKSPACE=" + t.TempDir(),
		"GITHUB_SERVER_URL=https://git.example.com", "GITHUB_REPOSITORY=team/app",
		"GITHUB_RUN_ID=" + fmt.Sprintf("backup-test-%d", os.Getpid()),
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		env = append(env, "DOCKER_HOST="+h)
	}
	return append(env, extra...)
}

// command prepares `deploykit backup args…` and returns it with its output and
// summary files.
func command(t *testing.T, env []string, args ...string) (*exec.Cmd, string, string) {
	files := t.TempDir()
	output, summary := filepath.Join(files, "output"), filepath.Join(files, "summary")
	cmd := exec.Command(testenv.Deploykit(t), append([]string{"backup"}, args...)...)
	cmd.Env = append(runnerEnv(t, env...), "GITHUB_OUTPUT="+output, "GITHUB_STEP_SUMMARY="+summary)
	return cmd, output, summary
}

// backup runs `deploykit backup args…` to completion.
func backup(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd, output, summary := command(t, env, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	_ = cmd.Run()
	return collect(cmd, buf.String(), output, summary)
}

func collect(cmd *exec.Cmd, log, output, summary string) result {
	var kept []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") { // the one place a secret may be
			kept = append(kept, line)
		}
	}
	r := result{Code: cmd.ProcessState.ExitCode(), Log: strings.Join(kept, "\n"), Outputs: map[string]string{}}
	if data, err := os.ReadFile(output); err == nil {
		r.Outputs = testapp.ParseOutputs(string(data))
	}
	if data, err := os.ReadFile(summary); err == nil {
		r.Summary = string(data)
	}
	return r
}

// restoreCommand is the restore command the summary prints (the last line of
// its sh block).
func restoreCommand(t *testing.T, summary string) string {
	t.Helper()
	_, block, ok := strings.Cut(summary, "#### Restore this backup")
	require.True(t, ok, summary)
	_, block, ok = strings.Cut(block, "```sh\n")
	require.True(t, ok, summary)
	block, _, _ = strings.Cut(block, "\n```")
	lines := strings.Split(block, "\n")
	return lines[len(lines)-1]
}

// shell runs a command line the way a person pastes it.
func shell(t *testing.T, line string, env ...string) string {
	t.Helper()
	cmd := exec.Command("bash", "-o", "pipefail", "-c", line)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", line, out)
	return string(out)
}

// files lists the names in dir, sorted; a missing dir is empty.
func files(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// checkPublished asserts a successful run's outputs and the files it made.
func checkPublished(t *testing.T, r result, dir, prefix, ext string) string {
	t.Helper()
	require.Equal(t, 0, r.Code, r.Log)
	id := r.Outputs["backup-id"]
	_, err := time.Parse("2006-01-02T150405Z", id)
	require.NoError(t, err, "backup-id %q", id)
	path := filepath.Join(dir, prefix+"-"+id+"."+ext+".gz")
	require.Equal(t, path, r.Outputs["path"])
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(st.Size()), r.Outputs["size"])
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	sum := shell(t, "cd "+dir+" && sha256sum -c "+filepath.Base(path)+".sha256")
	require.Contains(t, sum, filepath.Base(path)+": OK")
	data, err := os.ReadFile(path + ".sha256")
	require.NoError(t, err)
	require.Equal(t, r.Outputs["sha256"]+"  "+filepath.Base(path)+"\n", string(data))
	require.NotEmpty(t, r.Outputs["duration"])
	for _, want := range []string{"| File | " + path + " |", "| SHA-256 | " + r.Outputs["sha256"] + " |", "| Verification | ", "| Duration | ", "ratio "} {
		require.Contains(t, r.Summary, want)
	}
	return path
}

// noPartials asserts that dir holds no file of an unfinished backup and no
// final backup file.
func noBackupFiles(t *testing.T, dir string) {
	t.Helper()
	require.Empty(t, files(t, dir), "a failed backup leaves no file behind")
}
