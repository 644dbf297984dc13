package restore_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// exampleImage builds examples/app's image (its binary, then its Dockerfile) as
// CI would, and returns the image name and tag.
func exampleImage(t *testing.T) (string, string) {
	t.Helper()
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "hello"), ".")
	build.Dir = filepath.Join(root, "examples", "app")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	df, err := os.ReadFile(filepath.Join(root, "examples", "app", "Dockerfile"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o644))
	tag := fmt.Sprintf("drill-%d", os.Getpid())
	out, err = exec.Command("docker", "build", "-q", "-t", "deploykit-example-app:"+tag, dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { testenv.RemoveImages("deploykit-example-app:" + tag) })
	return "deploykit-example-app", tag
}

// TestRestoreDrill: the example app's database is backed up; the drill restores
// the backup into a copy of the stack, starts the app on it, checks its health
// and migration version, and removes the copy — production is untouched. A
// repository whose newest migration the backup does not have fails the drill,
// naming both versions.
func TestRestoreDrill(t *testing.T) {
	t.Parallel()
	testenv.RequireCompose(t)
	testenv.NoSwarmChange(t) // the app finds its database by DNS
	image, tag := exampleImage(t)
	repo := t.TempDir()
	out, err := exec.Command("cp", "-r", filepath.Join(testenv.RepoRoot(t), "examples", "app")+"/.", repo).CombinedOutput()
	require.NoError(t, err, "%s", out)
	project := fmt.Sprintf("dk-drill-%d", os.Getpid())
	port := testenv.FreePort(t)
	// Production: the example stack on its proxy's network, and (for this test
	// only, beside the repository) its app on a host port.
	network := "dk-edge-" + project
	testenv.SubnetNetwork(t, network)
	publish := filepath.Join(t.TempDir(), "publish.yaml")
	require.NoError(t, os.WriteFile(publish, []byte("services:\n  web:\n    ports: [\"127.0.0.1:${HELLO_PORT}:8080\"]\n"), 0o644))
	env := append(os.Environ(), "IMAGE="+image, "DEPLOY_TAG="+tag, "POSTGRES_IMAGE="+testenv.PostgresImage(t), "DB_PASSWORD=drill-pw-0123456789",
		fmt.Sprintf("HELLO_PORT=%d", port), "COMPOSE_PROJECT_NAME="+project, "EDGE_NETWORK="+network)
	up := exec.Command("docker", "compose", "-p", project, "-f", filepath.Join(repo, "compose.yaml"), "-f", publish, "up", "-d", "--wait", "--pull", "never")
	up.Env = env
	out, err = up.CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() {
		down := exec.Command("docker", "compose", "-p", project, "-f", filepath.Join(repo, "compose.yaml"), "-f", publish, "down", "--volumes", "--timeout", "1")
		down.Env = env
		_ = down.Run()
	})
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/notes", port), "text/plain", strings.NewReader("kept by the backup"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	root := t.TempDir()
	dir, hist := filepath.Join(root, "backups"), filepath.Join(root, "history.log")
	r := deploykit(t, "backup", "--container", project+"-db-1", "--dir", dir, "--prefix", "hello")
	require.Equal(t, 0, r.Code, r.Log)

	drill := func(extra ...string) result {
		args := append([]string{"--drill", "--file", "latest", "--dir", dir, "--prefix", "hello", "--compose-file", filepath.Join(repo, "compose.yaml"),
			"--project-name", project, "--app-port", "8080", "--health-url", "http://127.0.0.1:8080/health", "--health-initial-delay", "500ms",
			"--migrations-path", filepath.Join(repo, "migrations"), "--history-file", hist}, extra...)
		return deploykitEnv(t, []string{"IMAGE=" + image, "DEPLOY_TAG=" + tag, "POSTGRES_IMAGE=" + testenv.PostgresImage(t), "ENV_DB_PASSWORD=drill-pw-0123456789"}, "restore", args...)
	}
	// copies are the drill projects' containers and volumes still there.
	copies := func() string {
		var left []string
		for _, argv := range [][]string{
			{"ps", "-a", "--format", `{{.Label "com.docker.compose.project"}}`},
			{"volume", "ls", "--format", `{{.Label "com.docker.compose.project"}}`},
		} {
			out, err := exec.Command("docker", argv...).Output()
			require.NoError(t, err)
			for _, p := range strings.Fields(string(out)) {
				if strings.HasPrefix(p, project+"-drill-") {
					left = append(left, p)
				}
			}
		}
		return strings.Join(left, " ")
	}

	r = drill()
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "### deploykit restore drill: success — hello-")
	assert.Contains(t, r.Summary, "- the app answers /health on the restored data")
	assert.Contains(t, r.Summary, "- the restored database is at migration 1, the newest in "+filepath.Join(repo, "migrations"))
	assert.Empty(t, copies(), "the copy is removed")
	assert.NotContains(t, r.Log+r.Summary, "drill-pw-0123456789")
	_, v := get(t, port, "/notes")
	assert.Equal(t, "kept by the backup", v, "production is untouched and serving")

	// While a deploy of the stack holds its lock, the drill waits lock-timeout,
	// then fails naming the holder; no copy was started (defects audit, item 3).
	lockPath := lock.PathFor(lock.Dir(hist), project)
	held, err := lock.Acquire(context.Background(), lockPath, lock.Holder{Host: "h", PID: 4242, Version: "9.9.9", Since: time.Now()}, time.Second, nil)
	require.NoError(t, err)
	r = drill("--lock-timeout", "300ms")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::another deploy, rollback, restore or backup holds the lock "+lockPath+" (pid 4242 on h since ")
	assert.NotContains(t, r.Log, "==> copy")
	assert.Empty(t, copies())
	require.NoError(t, held.Release())

	// An app that does not start on the restored data (copy-env gives it a
	// DATABASE_URL it cannot parse): the summary has its last log lines, read
	// before the copy went.
	r = drill("--copy-env", "DATABASE_URL=::not a url")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Summary, "### deploykit restore drill: failed — hello-")
	assert.Contains(t, r.Summary, "Last 30 log lines of the copy's web (")
	assert.Contains(t, r.Summary, "DATABASE_URL: parse", "the app's own words")
	assert.Empty(t, copies(), "the copy is removed")

	// A drill killed (SIGKILL, as Gitea cancels) while its copy runs leaves
	// the copy; the next drill removes it first and says so.
	killed, _ := deploykitCmd(t, []string{"IMAGE=" + image, "DEPLOY_TAG=" + tag, "POSTGRES_IMAGE=" + testenv.PostgresImage(t), "ENV_DB_PASSWORD=drill-pw-0123456789"}, "restore",
		"--drill", "--file", "latest", "--dir", dir, "--prefix", "hello", "--compose-file", filepath.Join(repo, "compose.yaml"),
		"--project-name", project, "--app-port", "8080", "--history-file", hist)
	killed.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, killed.Start())
	testapp.WaitFor(t, "the drill's copy to run", func() bool { return copies() != "" })
	require.NoError(t, syscall.Kill(-killed.Process.Pid, syscall.SIGKILL))
	_ = killed.Wait()
	left := copies()
	require.NotEmpty(t, left, "a SIGKILL leaves the copy")
	r = drill()
	require.Equal(t, 0, r.Code, r.Log)
	assert.Regexp(t, `- a killed drill of hello-\S+ recorded \(killed in step (app|health|database|restore) `, r.Summary)
	assert.Contains(t, r.Summary, "- removed what a killed run left: containers "+strings.Fields(left)[0]+"-", "the copy the killed drill left")
	assert.Empty(t, copies())

	// A repository one migration ahead of the backup: the drill fails, naming both.
	require.NoError(t, os.WriteFile(filepath.Join(repo, "migrations", "000002_add_tags.up.sql"), []byte("ALTER TABLE notes ADD COLUMN tags text;\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "migrations", "000002_add_tags.down.sql"), []byte("ALTER TABLE notes DROP COLUMN tags;\n"), 0o644))
	r = drill()
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "the restored database is at migration 1, but the newest migration in "+filepath.Join(repo, "migrations")+" is 2")
	assert.Empty(t, copies(), "the copy is removed after a failure too")
	data, err := os.ReadFile(hist)
	require.NoError(t, err)
	assert.Contains(t, string(data), "| drill | "+filepath.Base(r.Outputs["file"])+" | failed | copy "+project+"-drill-", "a drill is recorded as one, never as a failed restore")
	assert.NotContains(t, string(data), "| restore |")
}

func get(t *testing.T, port int, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}
