package deploy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// hosted is examples/app deployed from hosted runners — a fresh machine per
// job: empty HOME and RUNNER_TEMP, no history — to a VPS they reach over SSH
// only (testenv.VPS: no route to its container networks). The app's proxy
// stack runs on the VPS, its ports on the VPS's address.
type hosted struct {
	*rehearsed
	vps     *testenv.VPS
	base    string // http://<the VPS's address>:<Caddy's port>
	plainAt string
	state   string // on the VPS: history and backups
}

func newHosted(t testing.TB) *hosted {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "app", "compose.yaml"))
	require.NoError(t, err)
	st := newStack(t, data)
	h := &hosted{rehearsed: st, vps: testenv.NewVPS(t, "dk-vps-"+st.name), state: "/home/deploy/deploy-kit"}
	h.vps.Load(t, testenv.PostgresImage(t))
	st.network, st.alias = "dk-edge-"+st.name, "web-"+st.name
	st.port, st.plain = h.vps.Proxies(t, st.name, st.network, []string{st.alias}, func() {})
	h.base = fmt.Sprintf("http://%s:%d", h.vps.IP, st.port)
	h.plainAt = fmt.Sprintf("http://%s:%d", h.vps.IP, st.plain)
	st.args = []string{"--strategy", "rolling", "--app-port", "8080", "--service", "web", "--backup-container", st.name + "-db-1"}
	st.env = []string{"POSTGRES_IMAGE=" + testenv.PostgresImage(t), "EDGE_NETWORK=" + st.network, "APP_ALIAS=" + st.alias, "ENV_DB_PASSWORD=hosted-pw-0123456789"}
	return h
}

// release commits version with image id and loads its image into the VPS, as
// CI pushes it to a registry the VPS pulls from.
func (h *hosted) release(version, id string) {
	h.t.Helper()
	h.rehearsed.release(version, id)
	h.vps.Load(h.t, h.image+":sha-"+h.git("rev-parse", "--short=7", "HEAD"))
}

// step starts `deploykit <sub>` from a fresh runner, as a runner starts the
// action's run step.
func (h *hosted) step(sub string, extra ...string) (*testenv.Step, func() testapp.Run) {
	h.t.Helper()
	files := h.t.TempDir()
	args := append(h.flags(sub, h.state+"/history.log"), "--docker-host", h.vps.DockerHost, "--ssh-key", h.vps.Key, "--ssh-known-hosts", h.vps.KnownHosts)
	if sub == "deploy" {
		args = append(args, "--backup-dir", h.state+"/backups")
	}
	step := testenv.StartStep(h.t, testenv.StepCommand(h.t, h.dir, h.runnerEnv(files), append(args, extra...)...))
	return step, func() testapp.Run {
		step.Wait()
		return (&testapp.App{T: h.t}).Result(step.Cmd, step.Log(), filepath.Join(files, "out"), filepath.Join(files, "sum"))
	}
}

// flags are what every run of sub gets.
func (h *hosted) flags(sub, history string) []string {
	return append([]string{sub, "--project-name", h.name, "--history-file", history, "--pull-only", "--wait-timeout", "90s",
		"--health-url", h.base + "/health", "--health-initial-delay", "200ms", "--health-max-delay", "1s",
		"--smoke-base-url", h.base, "--smoke-checks", "/notes=200"}, h.args...)
}

// runnerEnv is a fresh runner's environment: empty HOME and RUNNER_TEMP, the
// docker CLI and its plugins but no configuration; outputs and summary go to
// files.
func (h *hosted) runnerEnv(files string) []string {
	env, _, _ := testenv.Runner{Fresh: true, Workspace: h.dir, Server: "https://github.com", RunID: "88", Files: files}.Env(h.t, append([]string{"IMAGE=" + h.image}, h.env...)...)
	return env
}

func (h *hosted) run(sub string, extra ...string) testapp.Run {
	h.t.Helper()
	_, result := h.step(sub, extra...)
	return result()
}

// post adds a note through the VPS's Caddy.
func (h *hosted) post(note string) {
	h.t.Helper()
	resp, err := http.Post(h.base+"/notes", "text/plain", strings.NewReader(note))
	require.NoError(h.t, err)
	resp.Body.Close()
	require.Equal(h.t, http.StatusCreated, resp.StatusCode)
}

func (h *hosted) get(path string) (int, string) {
	h.t.Helper()
	resp, err := http.Get(h.base + path)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// TestDeployFromAHostedRunner: every job from a fresh runner, over one SSH
// connection, to a VPS whose container networks it cannot reach. The first
// deploy; the second release with backup, rehearsal and the rolling switch
// under 50 requests a second through the VPS's Caddy and a proxy that never
// retries (0 failed): the running release comes from the history on the VPS,
// the pre-deploy backup is kept there, the new container is checked at its own
// address from the VPS. A rollback to the release before, read from the
// VPS's history. Two deploys started at once from two runners: the second
// waits for the lock on the VPS. A deploy killed mid-switch and the run that
// repairs it. A host key that is not the pinned one: refused before anything.
func TestDeployFromAHostedRunner(t *testing.T) {
	t.Parallel()
	h := newHosted(t)
	h.release("1.0.0", buildApp(t, appBuild{}))
	r := h.run("deploy", "--rehearse")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "Docker host: 1 SSH connection(s) to deploy@"+h.vps.IP+":22", "one connection carries the run")
	assert.Contains(t, r.Log, "connected to deploy@"+h.vps.IP+":22 over SSH (host key ssh-ed25519 SHA256:")
	_, v := h.get("/version")
	assert.Equal(t, "1.0.0", v)
	h.post("one")
	h.post("two")

	// 2.0.0 from another fresh runner: backup, rehearsal, switch, under load.
	h.release("2.0.0", buildApp(t, appBuild{migrations: map[string]string{
		"000002_tags.up.sql":   "ALTER TABLE notes ADD COLUMN tags text;\n",
		"000002_tags.down.sql": "ALTER TABLE notes DROP COLUMN tags;\n",
	}}))
	l := startLoadsAt(h.base, h.plainAt)
	r = h.run("deploy", "--rehearse")
	l.finish().check(t, "2.0.0 over SSH with rehearsal and switch")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, "1.0.0", r.Outputs["previous-version"], "read from the history on the VPS")
	assert.Regexp(t, `\| backup \| done \| \S+ \| `+h.state+`/backups/pre-deploy-`+h.name+`-\S+\.sql\.gz on deploy@`, r.Summary)
	assert.Regexp(t, `\| rehearse \| done \| `, r.Summary)
	assert.Contains(t, r.Summary, "Docker host: 1 SSH connection(s)")
	kept := h.vps.Exec(t, "sh", "-c", "ls "+h.state+"/backups")
	assert.Regexp(t, `pre-deploy-`+h.name+`-\S+\.sql\.gz\n\S+\.sha256|\.sha256\n`, kept+"\n", "the pre-deploy backup and its checksum are on the VPS")
	_, v = h.get("/version")
	assert.Equal(t, "2.0.0", v)

	// A rollback from a fresh runner: its target from the VPS's history.
	r = h.run("rollback", "--confirm", "ROLLBACK")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, "1.0.0", r.Outputs["version"])
	_, v = h.get("/version")
	assert.Equal(t, "1.0.0", v)

	// Two deploys at once from two runners: the lock on the VPS makes the
	// second wait; both are green, not a request fails.
	h.release("3.0.0", buildApp(t, appBuild{}))
	l = startLoadsAt(h.base, h.plainAt)
	first, firstResult := h.step("deploy", "--drain-timeout", "3s")
	first.WaitLog("took ", 2*time.Minute)
	second, secondResult := h.step("deploy")
	second.WaitLog("waiting up to 10m0s for the run holding ", 2*time.Minute)
	r1, r2 := firstResult(), secondResult()
	l.finish().check(t, "two deploys at once")
	require.Equal(t, 0, r1.Code, r1.Log)
	require.Equal(t, 0, r2.Code, r2.Log)
	_, v = h.get("/version")
	assert.Equal(t, "3.0.0", v)

	// Killed mid-drain as Gitea kills: the VPS keeps serving; the next run,
	// from a fresh runner, finds the lock file the killed one left on the VPS,
	// records it and repairs.
	h.release("4.0.0", buildApp(t, appBuild{}))
	l = startLoadsAt(h.base, h.plainAt)
	killed, _ := h.step("deploy", "--drain-timeout", "300s")
	killed.WaitLog("draining the old web containers for", 2*time.Minute)
	killed.KillGitea()
	r = h.run("deploy")
	l.finish().check(t, "a killed deploy over SSH, then the next")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "a killed deploy of 4.0.0 recorded")
	assert.Contains(t, r.Summary, "1 running container(s) of web that an interrupted run left off its aliases", "the old container, off the aliases a moment before the kill, drained before it stopped")
	history := h.vps.Exec(t, "cat", h.state+"/history.log")
	assert.Contains(t, history, "| deploy | 4.0.0 | killed |")
	assert.Equal(t, 6, strings.Count(history, "| success |"), "every run's line, from every runner, on the VPS: %s", history)
	assert.Equal(t, 1, strings.Count(history, "| killed |"), history)

	// The figures, from yet another fresh runner: every runner's runs count.
	stats := exec.Command(testenv.Deploykit(t), "history", "--stats", "--format", "json")
	stats.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "RUNNER_TEMP=" + t.TempDir()},
		testenv.Inputs("--history-file", h.state+"/history.log", "--stack", h.name, "--docker-host", h.vps.DockerHost, "--ssh-key", h.vps.Key, "--ssh-known-hosts", h.vps.KnownHosts)...)
	var stderr strings.Builder
	stats.Stderr = &stderr
	out, err := stats.Output()
	require.NoError(t, err, stderr.String())
	assert.Contains(t, stderr.String(), "connected to deploy@"+h.vps.IP+":22 over SSH", "the connection's line on stderr, the JSON alone on stdout")
	var figures []struct {
		Deploys   int `json:"deploys"`
		Succeeded int `json:"succeeded"`
		Rollbacks int `json:"rollbacks"`
	}
	require.NoError(t, json.Unmarshal(out, &figures), string(out))
	require.Len(t, figures, 1, string(out))
	assert.Equal(t, 5, figures[0].Succeeded, string(out))
	assert.Equal(t, 1, figures[0].Rollbacks, string(out))

	// A host key that is not the one pinned: refused before anything.
	other := testenv.NewVPS(t, "dk-vps2-"+h.name)
	wrong := strings.ReplaceAll(other.KnownHosts, other.IP, h.vps.IP)
	before := h.vps.Docker(t, "ps", "-q")
	files := t.TempDir()
	step := testenv.StartStep(t, testenv.StepCommand(t, h.dir, h.runnerEnv(files),
		"deploy", "--project-name", h.name, "--history-file", h.state+"/history.log", "--pull-only",
		"--docker-host", h.vps.DockerHost, "--ssh-key", h.vps.Key, "--ssh-known-hosts", wrong))
	assert.Equal(t, 1, step.Wait())
	assert.Regexp(t, `::error::deploy of \(version not determined\) failed at preflight: SSH to deploy@`+h.vps.IP+`:22: ssh: handshake failed: host `+h.vps.IP+`:22 offered the ssh-ed25519 key SHA256:\S+, which is not the key ssh-known-hosts pins for it: refused`, step.Log())
	assert.Contains(t, step.Log(), "| history | skipped |  | the Docker host "+h.vps.DockerHost+" was not reached: its history is there |")
	assert.Equal(t, before, h.vps.Docker(t, "ps", "-q"), "nothing changed")
	assert.Equal(t, history, h.vps.Exec(t, "cat", h.state+"/history.log"), "nothing recorded")
	_, err = os.Stat(h.state)
	assert.True(t, os.IsNotExist(err), "and nothing on the runner at the host's path")
}

// BenchmarkDeployOverSSH: a rolling deploy of the example's app to the VPS
// from a runner elsewhere, over SSH (docker-host), beside the same deploy run
// on the VPS itself, as by a runner on the server: same state (history, lock,
// backups), no SSH. Reported: ns per deploy of each, their ratio (target
// ≤ 1.15) and the share of runs over one SSH connection.
func BenchmarkDeployOverSSH(b *testing.B) {
	h := newHosted(b)
	id := buildApp(b, appBuild{})
	h.release("1.0.0", id)
	r := h.run("deploy")
	require.Equal(b, 0, r.Code, r.Log)
	h.vps.InstallKit(b)
	const workspace, files = "/home/deploy/workspace", "/home/deploy/job"
	onServer := func() time.Duration {
		h.vps.CopyDir(b, h.dir, workspace)
		h.vps.Exec(b, "rm", "-rf", files)
		h.vps.Exec(b, "install", "-d", "-o", "deploy", "-g", "deploy", files, files+"/temp")
		env := append([]string{"HOME=/home/deploy", "GITHUB_ACTIONS=true", "GITHUB_WORKSPACE=" + workspace, "RUNNER_TEMP=" + files + "/temp",
			"GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=team/app", "GITHUB_RUN_ID=89",
			"GITHUB_OUTPUT=" + files + "/out", "GITHUB_STEP_SUMMARY=" + files + "/sum", "IMAGE=" + h.image}, h.env...)
		b.StartTimer()
		_, took := h.vps.StepOnServer(b, workspace, env, append(h.flags("deploy", h.state+"/history.log"), "--backup-dir", h.state+"/backups")...)
		b.StopTimer()
		return took
	}
	var overSSH, onHost time.Duration
	connections := 0
	round := 0
	for b.Loop() {
		round++
		b.StopTimer()
		h.release(fmt.Sprintf("1.%d.0", 2*round), id)
		b.StartTimer()
		start := time.Now()
		r := h.run("deploy")
		overSSH += time.Since(start)
		require.Equal(b, 0, r.Code, r.Log)
		if strings.Contains(r.Summary, "Docker host: 1 SSH connection(s)") {
			connections++
		}
		b.StopTimer()
		h.release(fmt.Sprintf("1.%d.0", 2*round+1), id)
		onHost += onServer()
		b.StartTimer()
	}
	b.ReportMetric(float64(onHost.Nanoseconds())/float64(round), "server-ns/deploy")
	b.ReportMetric(float64(overSSH.Nanoseconds())/float64(round), "ssh-ns/deploy")
	b.ReportMetric(float64(overSSH)/float64(onHost), "ssh-ratio")
	b.ReportMetric(float64(connections)/float64(round), "runs-with-one-connection")
}

// job runs the action name from a fresh runner against the VPS, over SSH,
// with extra on top of the host's inputs; env adds job variables.
func (h *hosted) job(name string, env []string, args ...string) testapp.Run {
	h.t.Helper()
	files := h.t.TempDir()
	args = append(append([]string{name}, args...), "--docker-host", h.vps.DockerHost, "--ssh-key", h.vps.Key, "--ssh-known-hosts", h.vps.KnownHosts)
	step := testenv.StartStep(h.t, testenv.StepCommand(h.t, h.dir, append(h.runnerEnv(files), env...), args...))
	step.Wait()
	return (&testapp.App{T: h.t}).Result(step.Cmd, step.Log(), filepath.Join(files, "out"), filepath.Join(files, "sum"))
}

// TestBackupAndRestoreFromAHostedRunner: each job from a fresh runner, over
// one SSH connection, the state on the VPS. A backup of the stack's database
// with a restore check is kept in a directory on the VPS (checksum verified
// there; the runner's copy is the artifact); a restore of the newest there
// (downloaded and verified on the runner) stops the app, keeps its safety
// backup on the VPS, records itself in the VPS's history; a drill restores it
// into a copy of the stack and checks the app at its address in the copy's
// network, from the VPS. A backup named by a path that is not absolute is
// refused with nothing changed.
func TestBackupAndRestoreFromAHostedRunner(t *testing.T) {
	t.Parallel()
	h := newHosted(t)
	h.release("1.0.0", buildApp(t, appBuild{}))
	r := h.run("deploy")
	require.Equal(t, 0, r.Code, r.Log)
	h.post("kept by the backup")
	db, backups := h.name+"-db-1", "/home/deploy/backups"

	r = h.job("backup", nil, "--container", db, "--dir", backups, "--prefix", "app", "--restore-check", "--artifact", "--history-file", h.state+"/history.log")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "| Lock | stack "+h.name+": deploy@"+h.vps.IP+":22:"+h.state+"/locks/"+h.name+".lock |", "the lock of the container's compose project, on the VPS")
	kept := r.Outputs["path"]
	assert.Regexp(t, `^/home/deploy/backups/app-\S+\.sql\.gz$`, kept)
	assert.Regexp(t, `\| docker-host \| done \| \S+ \| `+regexp.QuoteMeta(kept)+` on deploy@`+regexp.QuoteMeta(h.vps.IP)+`:22 \(its SHA-256 computed there matches\) \|`, r.Summary)
	assert.Regexp(t, `\| restore-check \| done \| `, r.Summary)
	assert.Contains(t, r.Summary, "Docker host: 1 SSH connection(s)")
	assert.Contains(t, h.vps.Exec(t, "sh", "-c", "cd "+backups+" && sha256sum -c "+path.Base(kept)+".sha256"), ": OK")
	for _, f := range strings.Split(r.Outputs["artifact-path"], "\n") {
		assert.FileExists(t, f, "the runner's copy, for upload-artifact")
	}
	assert.Equal(t, r.Outputs["sha256"], strings.Fields(h.vps.Exec(t, "sha256sum", kept))[0])

	// A note after the backup: the restore takes it away.
	h.post("written after the backup")
	r = h.job("restore", nil, "--confirm", "RESTORE", "--file", "latest", "--dir", backups, "--prefix", "app", "--container", db,
		"--project-name", h.name, "--stop-services", "web", "--history-file", h.state+"/history.log", "--health-url", h.base+"/health")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, kept, r.Outputs["file"])
	safety := r.Outputs["safety-backup"]
	assert.Regexp(t, `^/home/deploy/backups/pre-restore-\S+\.sql\.gz$`, safety)
	assert.Contains(t, h.vps.Exec(t, "sh", "-c", "cd "+backups+" && sha256sum -c "+path.Base(safety)+".sha256"), ": OK", "the safety backup is on the VPS")
	assert.Contains(t, r.Summary, "Docker host: 1 SSH connection(s)")
	_, notes := h.get("/notes")
	assert.Equal(t, "kept by the backup", notes)
	history := h.vps.Exec(t, "cat", h.state+"/history.log")
	assert.Contains(t, history, "| restore | "+path.Base(kept)+" | success |")
	assert.NotContains(t, h.vps.Exec(t, "ls", "-a", h.state), ".restoring", "the mark of a replay in place is gone")

	// A drill of the same backup into a copy of the stack: checked at the
	// app's address in the copy's network, from the VPS.
	r = h.job("restore", []string{"DEPLOY_TAG=sha-" + h.git("rev-parse", "--short=7", "HEAD")},
		"--drill", "--file", "latest", "--dir", backups, "--prefix", "app", "--project-name", h.name, "--app-port", "8080",
		"--health-url", "http://app.invalid/health", "--health-initial-delay", "500ms", "--history-file", h.state+"/history.log")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "### deploykit restore drill: success — "+path.Base(kept))
	assert.Contains(t, r.Summary, "- the app answers /health on the restored data")
	assert.Contains(t, r.Summary, "Docker host: 1 SSH connection(s)")
	assert.Contains(t, h.vps.Exec(t, "cat", h.state+"/history.log"), "| drill | "+path.Base(kept)+" | success |")
	assert.NotContains(t, h.vps.Docker(t, "ps", "-a", "--format", "{{.Names}}"), h.name+"-drill-", "the copy is gone")

	// A backup named by a path that is not absolute: refused, nothing changed.
	before := h.vps.Exec(t, "ls", "-la", backups)
	r = h.job("restore", nil, "--confirm", "RESTORE", "--file", "app.sql.gz", "--dir", backups, "--container", db,
		"--project-name", h.name, "--history-file", h.state+"/history.log")
	assert.Equal(t, 2, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::input file: app.sql.gz: with docker-host, the backup's absolute path on the Docker host deploy@"+h.vps.IP+":22 (or latest, in dir there)")
	assert.Equal(t, before, h.vps.Exec(t, "ls", "-la", backups), "nothing changed on the VPS")
	_, notes = h.get("/notes")
	assert.Equal(t, "kept by the backup", notes)
}
