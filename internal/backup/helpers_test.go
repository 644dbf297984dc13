package backup_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/cli"
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

// command prepares `deploykit backup args…` as a runner starts it, env
// appended to the runner's environment, and returns it with its output and
// summary files.
func command(t *testing.T, env []string, args ...string) (*exec.Cmd, string, string) {
	cmd := exec.Command(testenv.Deploykit(t), append([]string{"backup"}, args...)...)
	environ, output, summary := runner.Env(t, env...)
	cmd.Env = environ
	return cmd, output, summary
}

// backup runs `deploykit backup args…` to completion, in this process
// (cli.Main, as the binary's main calls it): a run the tests do not signal or
// kill needs no process of its own.
func backup(t *testing.T, env []string, args ...string) result {
	t.Helper()
	environ, output, summary := runner.Env(t, env...)
	var log testenv.SyncBuffer
	code := cli.Main(append([]string{"backup"}, args...), environ, &log, &log)
	return collected(code, log.String(), output, summary)
}

// runner is the environment every backup test runs in.
var runner = testenv.Runner{RunID: fmt.Sprintf("backup-test-%d", os.Getpid())}

func collect(cmd *exec.Cmd, log, output, summary string) result {
	return collected(cmd.ProcessState.ExitCode(), log, output, summary)
}

func collected(code int, log, output, summary string) result {
	var kept []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") { // the one place a secret may be
			kept = append(kept, line)
		}
	}
	r := result{Code: code, Log: strings.Join(kept, "\n"), Outputs: map[string]string{}}
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
