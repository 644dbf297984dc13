package deploy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// appBuild is a build of examples/app with more migrations and, optionally, its
// notes column renamed in its queries.
type appBuild struct {
	migrations map[string]string // file name → SQL, added to migrations/
	column     string            // the notes column its queries use ("" keeps body)
}

// buildApp builds b as an image and returns its ID.
func buildApp(t testing.TB, b appBuild) string {
	t.Helper()
	src := t.TempDir()
	out, err := exec.Command("cp", "-r", filepath.Join(testenv.RepoRoot(t), "examples", "app")+"/.", src).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for name, sql := range b.migrations {
		require.NoError(t, os.WriteFile(filepath.Join(src, "migrations", name), []byte(sql), 0o644))
	}
	if b.column != "" {
		main, err := os.ReadFile(filepath.Join(src, "main.go"))
		require.NoError(t, err)
		code := strings.NewReplacer("SELECT body FROM notes", "SELECT "+b.column+" FROM notes", "INSERT INTO notes (body)", "INSERT INTO notes ("+b.column+")").Replace(string(main))
		require.NotEqual(t, string(main), code)
		require.NoError(t, os.WriteFile(filepath.Join(src, "main.go"), []byte(code), 0o644))
	}
	build := exec.Command("go", "build", "-trimpath", "-o", "hello", ".")
	build.Dir, build.Env = src, append(os.Environ(), "CGO_ENABLED=0")
	out, err = build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command("docker", "build", "-q", src).CombinedOutput()
	require.NoError(t, err, "%s", out)
	id := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", id).Run() })
	return id
}

// rehearsed is a production stack (an app and its database) as a git checkout
// and compose project, deployed with deploykit with the pre-deploy backup of
// its database: by default examples/app's, as the example's workflow deploys
// it — strategy rolling of web behind the example proxy stack's Caddy (port) and
// a plain proxy that never retries (plain).
type rehearsed struct {
	t                     testing.TB
	dir, name, image      string
	network, alias        string
	port, plain           int
	history, backups, tmp string
	args, env             []string // the stack's own deploy arguments and job variables
}

// newStack is a stack of compose (its own project name, from the test's) with
// a git checkout, and its cleanup.
func newStack(t testing.TB, compose []byte) *rehearsed {
	t.Helper()
	testenv.RequireCompose(t)
	testenv.NoSwarmChange(t) // the app finds its database by DNS
	// A project of the test's own: tests of this package run side by side.
	sum := sha256.Sum256([]byte(t.Name()))
	st := &rehearsed{t: t, dir: t.TempDir(), name: fmt.Sprintf("dk-rehearse-%x-%d", sum[:3], os.Getpid()%10000),
		history: filepath.Join(t.TempDir(), "history.log"), backups: t.TempDir(), tmp: t.TempDir()}
	st.image = "deploykit-" + st.name
	require.NoError(t, os.WriteFile(filepath.Join(st.dir, "compose.yaml"), compose, 0o644))
	st.git("init", "-q", "-b", "main")
	return st
}

// down removes the stack, its images and snapshots.
func (st *rehearsed) down() {
	_ = exec.Command("docker", "compose", "-p", st.name, "down", "--volumes", "--remove-orphans", "--timeout", "1").Run()
	testenv.RemoveImages(testenv.LocalImages(st.t, st.image)...)
	testenv.RemoveImages(testenv.LocalImages(st.t, "deploykit-snapshot/"+st.name+"-*")...)
}

// newRehearsed is examples/app's stack behind both proxies.
func newRehearsed(t testing.TB) *rehearsed {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "app", "compose.yaml"))
	require.NoError(t, err)
	st := newStack(t, data)
	st.network, st.alias = "dk-edge-"+st.name, "web-"+st.name
	st.port, st.plain = testenv.Proxies(t, st.name, st.network, st.alias, st.down)
	st.args = []string{"--strategy", "rolling", "--app-port", "8080", "--service", "web", "--backup-container", st.name + "-db-1"}
	st.env = []string{"POSTGRES_IMAGE=" + testenv.PostgresImage(t), "EDGE_NETWORK=" + st.network, "APP_ALIAS=" + st.alias, "ENV_DB_PASSWORD=rehearse-pw-0123456789"}
	return st
}

func (st *rehearsed) git(args ...string) string {
	st.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	cmd.Dir = st.dir
	out, err := cmd.CombinedOutput()
	require.NoError(st.t, err, "%s", out)
	return strings.TrimSpace(string(out))
}

// release commits version, tagged v<version>, whose image is the build id.
func (st *rehearsed) release(version, id string) {
	st.t.Helper()
	require.NoError(st.t, os.WriteFile(filepath.Join(st.dir, "VERSION"), []byte(version+"\n"), 0o644))
	st.git("add", "-A")
	st.git("commit", "-q", "-m", "release "+version)
	st.git("tag", "v"+version)
	out, err := exec.Command("docker", "tag", id, st.image+":sha-"+st.git("rev-parse", "--short=7", "HEAD")).CombinedOutput()
	require.NoError(st.t, err, "%s", out)
}

// step starts the stack's deploy as a runner starts the action's run step
// (testenv.StepCommand), and what collects its result once it ended.
func (st *rehearsed) step(extra ...string) (*testenv.Step, func() testapp.Run) {
	st.t.Helper()
	cmd, _ := st.command(extra...)
	step := testenv.StartStep(st.t, testenv.StepCommand(st.t, cmd.Dir, cmd.Env, cmd.Args[1:]...))
	files := map[string]string{}
	for _, kv := range cmd.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && (k == "GITHUB_OUTPUT" || k == "GITHUB_STEP_SUMMARY") {
			files[k] = v
		}
	}
	return step, func() testapp.Run {
		step.Wait()
		return (&testapp.App{T: st.t}).Result(step.Cmd, step.Log(), files["GITHUB_OUTPUT"], files["GITHUB_STEP_SUMMARY"])
	}
}

func (st *rehearsed) deploy(extra ...string) testapp.Run {
	st.t.Helper()
	cmd, result := st.command(extra...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	_ = cmd.Run()
	return result(buf.String())
}

// command is `deploykit deploy` of the stack as a runner runs it, and what
// collects its result once it has ended.
func (st *rehearsed) command(extra ...string) (*exec.Cmd, func(log string) testapp.Run) {
	st.t.Helper()
	files := st.t.TempDir()
	base := fmt.Sprintf("http://127.0.0.1:%d", st.port)
	args := append(append([]string{"deploy", "--project-name", st.name, "--history-file", st.history, "--pull-only", "--wait-timeout", "90s",
		"--health-url", base + "/health", "--health-initial-delay", "200ms", "--health-max-delay", "1s",
		"--smoke-base-url", base, "--smoke-checks", "/notes=200", "--backup-dir", st.backups}, st.args...), extra...)
	cmd := exec.Command(testenv.Deploykit(st.t), args...)
	cmd.Dir = st.dir
	cmd.Env, _, _ = testenv.Runner{Workspace: st.dir, Temp: st.tmp, Files: files}.Env(st.t, append([]string{"IMAGE=" + st.image}, st.env...)...)
	return cmd, func(log string) testapp.Run {
		return (&testapp.App{T: st.t}).Result(cmd, log, filepath.Join(files, "out"), filepath.Join(files, "sum"))
	}
}

func (st *rehearsed) get(path string) (int, string) {
	st.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", st.port, path))
	require.NoError(st.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func (st *rehearsed) post(note string) {
	st.t.Helper()
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/notes", st.port), "text/plain", strings.NewReader(note))
	require.NoError(st.t, err)
	resp.Body.Close()
	require.Equal(st.t, http.StatusCreated, resp.StatusCode)
}

// schema is production's golang-migrate version and dirty flag.
func (st *rehearsed) schema() string {
	st.t.Helper()
	out, err := exec.Command("docker", "exec", st.name+"-db-1", "psql", "-X", "-At", "-U", "postgres", "-c", "SELECT version, dirty FROM schema_migrations").CombinedOutput()
	require.NoError(st.t, err, "%s", out)
	return strings.TrimSpace(string(out))
}

// restart restarts production's web container, as a host reboot or a crash
// would, and waits until it answers /health through the proxy again: the
// running release must still start on production's schema.
func (st *rehearsed) restart() {
	st.t.Helper()
	out, err := exec.Command("docker", "compose", "-p", st.name, "ps", "-q", "web").Output()
	require.NoError(st.t, err)
	ids := strings.Fields(string(out))
	require.Len(st.t, ids, 1, "one web container serves")
	out, err = exec.Command("docker", "restart", "--time", "5", ids[0]).CombinedOutput()
	require.NoError(st.t, err, "%s", out)
	testapp.WaitFor(st.t, "the restarted release to answer /health", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", st.port))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// copies are the rehearsal copies' containers, volumes and networks still there.
func (st *rehearsed) copies() string {
	st.t.Helper()
	return st.copiesOf(
		[]string{"ps", "-a", "--format", `{{.Label "com.docker.compose.project"}}`},
		[]string{"volume", "ls", "--format", `{{.Label "com.docker.compose.project"}}`},
		[]string{"network", "ls", "--format", `{{.Label "com.docker.compose.project"}}`},
	)
}

// copiesRunning lists the rehearsal copies that have a running container.
func (st *rehearsed) copiesRunning() string {
	st.t.Helper()
	return st.copiesOf([]string{"ps", "--filter", "status=running", "--format", `{{.Label "com.docker.compose.project"}}`})
}

// copiesOf lists the rehearsal copies among the compose projects the docker
// commands argvs print.
func (st *rehearsed) copiesOf(argvs ...[]string) string {
	st.t.Helper()
	var left []string
	for _, argv := range argvs {
		out, err := exec.Command("docker", argv...).Output()
		require.NoError(st.t, err)
		for _, p := range strings.Fields(string(out)) {
			if strings.HasPrefix(p, st.name+"-rehearsal-") {
				left = append(left, p)
			}
		}
	}
	return strings.Join(left, " ")
}

// TestRehearsalStopsAMigrationProductionCannotTake: with rehearse, a release is
// first started on a copy of production's data (the pre-deploy backup restored
// into a private copy of the stack), then the running release against the
// migrated copy. A migration that fails on production's data (a unique index
// over duplicates), and one the running release cannot read (a renamed column),
// stop the deploy before production changes, naming the migration's error or the
// running release's failing check; production keeps its version, its schema
// (not dirty) and its data. A compatible release passes and deploys. The copy
// is removed every time. All of it under 50 requests a second through Caddy and
// through a proxy that never retries: not one fails, and the running release
// still starts after each refused deploy.
func TestRehearsalStopsAMigrationProductionCannotTake(t *testing.T) {
	t.Parallel()
	st := newRehearsed(t)
	st.release("1.0.0", buildApp(t, appBuild{}))
	r := st.deploy("--rehearse")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "| backup | skipped |  | first deploy: nothing of "+st.name+" runs yet, so there is no data to back up |")
	assert.Contains(t, r.Summary, "| rehearse | skipped |  | first deploy: there is no production data to rehearse on yet |")
	for _, note := range []string{"same", "same", "other"} {
		st.post(note)
	}
	want := "same\nsame\nother"

	// Release 2.0.0 renames the column, then puts a unique index on it: the
	// duplicates in production's data make the second migration fail.
	st.release("2.0.0", buildApp(t, appBuild{column: "content", migrations: map[string]string{
		"000002_rename.up.sql":   "ALTER TABLE notes RENAME COLUMN body TO content;\n",
		"000002_rename.down.sql": "ALTER TABLE notes RENAME COLUMN content TO body;\n",
		"000003_unique.up.sql":   "CREATE UNIQUE INDEX notes_content ON notes (content);\n",
		"000003_unique.down.sql": "DROP INDEX notes_content;\n",
	}}))
	l := startLoads(st.port, st.plain)
	r = st.deploy("--rehearse")
	l.finish().check(t, "2.0.0 refused by its rehearsal", "2.0.0")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::deploy of 2.0.0 failed at rehearse: version 2.0.0 did not start on a copy of production's data: ")
	assert.Contains(t, r.Summary, "#### Hand-off: the rehearsal of 2.0.0 failed; production was not changed")
	assert.Contains(t, r.Summary, `could not create unique index "notes_content"`, "the copy's app log names the database's error")
	assert.Contains(t, r.Summary, "| apply | skipped |  | an earlier step failed |")
	_, v := st.get("/version")
	assert.Equal(t, "1.0.0", v)
	assert.Equal(t, "1|f", st.schema(), "production's schema did not move and is not dirty")
	_, notes := st.get("/notes")
	assert.Equal(t, want, notes)
	assert.Empty(t, st.copies(), "the copy is removed")
	st.restart()

	// Release 2.0.1 only renames the column: it starts, but the running 1.0.0
	// reads the old name and fails its checks on the migrated copy.
	st.release("2.0.1", buildApp(t, appBuild{column: "content", migrations: map[string]string{
		"000002_rename.up.sql":   "ALTER TABLE notes RENAME COLUMN body TO content;\n",
		"000002_rename.down.sql": "ALTER TABLE notes RENAME COLUMN content TO body;\n",
	}}))
	l = startLoads(st.port, st.plain)
	r = st.deploy("--rehearse")
	l.finish().check(t, "2.0.1 refused by its rehearsal", "2.0.1")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::deploy of 2.0.1 failed at rehearse: the running release (1.0.0) fails its checks on the copy migrated by 2.0.1: web: ")
	assert.Contains(t, r.Log, `/notes: got 500, want 200 (answered: pq: column "body" does not exist)`, "the running release's check and its answer")
	assert.Contains(t, r.Summary, "expand/contract")
	_, v = st.get("/version")
	assert.Equal(t, "1.0.0", v)
	assert.Equal(t, "1|f", st.schema())
	assert.Empty(t, st.copies())
	st.restart()
	_, v = st.get("/version")
	assert.Equal(t, "1.0.0", v)

	// Release 2.0.2 holds a lock on notes for 5 s (on production that stalls
	// every write): above rehearse-lock-limit, and refused as asked. (5 s,
	// not 2: on a machine whose CPUs are busy the watch's samples can stall
	// for a second or more, and it reports only the span it saw.)
	st.release("2.0.2", buildApp(t, appBuild{migrations: map[string]string{
		"000002_slow.up.sql":   "ALTER TABLE notes ADD COLUMN tags text;\nSELECT pg_sleep(5);\n",
		"000002_slow.down.sql": "ALTER TABLE notes DROP COLUMN tags;\n",
	}}))
	r = st.deploy("--rehearse", "--rehearse-lock-limit", "1s", "--rehearse-lock-refuse")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Regexp(t, `::error::deploy of 2\.0\.2 failed at rehearse: a migration of 2\.0\.2 held AccessExclusiveLock on table notes for [1-5]\.\d+s \(rehearse-lock-limit 1s\): on production the app's reads and writes on notes wait that long: the statement: ALTER TABLE notes ADD COLUMN tags text; SELECT pg_sleep\(5\);`, r.Log)
	assert.Contains(t, r.Summary, "CREATE INDEX CONCURRENTLY", "the hand-off says how to take shorter locks")
	_, v = st.get("/version")
	assert.Equal(t, "1.0.0", v)
	assert.Equal(t, "1|f", st.schema())
	assert.Empty(t, st.copies())

	// Release 2.1.0 adds a nullable column: both releases work on it.
	st.release("2.1.0", buildApp(t, appBuild{migrations: map[string]string{
		"000002_tags.up.sql":   "ALTER TABLE notes ADD COLUMN tags text;\n",
		"000002_tags.down.sql": "ALTER TABLE notes DROP COLUMN tags;\n",
	}}))
	l = startLoads(st.port, st.plain)
	r = st.deploy("--rehearse")
	l.finish().check(t, "2.1.0 rehearsed and switched to")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Regexp(t, `\| rehearse \| done \| \S+ \| on a copy of production's data \(project `+st.name+`-rehearsal-\S+, removed after; networks of its own, internal, volumes of its own, no published ports; network edge \(external dk-edge-`+st.name+`\) replaced by the copy's own\): restored the pre-deploy backup in \S+; 2\.1\.0 started and passed its checks in \S+; migrations: postgres at 1 → postgres at 2; (no lock that blocks writes|longest lock: \S+ on \S+ \(database postgres\) for .+?); 1\.0\.0 started and passed its checks on the migrated copy in \S+ \|`, r.Summary)
	assert.Regexp(t, `- rehearsed on a copy of production's data: restore \S+; this release started and passed its checks in \S+ \(migrations: postgres at 1 → postgres at 2\); longest lock: [^\n]+; the running release on the migrated copy in \S+\n`, r.Summary)
	var plan struct {
		Rehearsal struct {
			Copy, Migrations, Restore, NewRelease, Running string
			LongestLock                                    string `json:"longest_lock"`
		} `json:"rehearsal"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.Outputs["plan"]), &plan), r.Outputs["plan"])
	assert.Equal(t, "postgres at 1 → postgres at 2", plan.Rehearsal.Migrations, "the plan output has the rehearsal")
	assert.True(t, strings.HasPrefix(plan.Rehearsal.Copy, st.name+"-rehearsal-"))
	assert.NotEmpty(t, plan.Rehearsal.LongestLock, "the plan output has the longest lock")
	_, v = st.get("/version")
	assert.Equal(t, "2.1.0", v)
	assert.Equal(t, "2|f", st.schema())
	_, notes = st.get("/notes")
	assert.Equal(t, want, notes)
	assert.Empty(t, st.copies())

	// A rehearsal cancelled as GitHub's runner cancels (SIGINT to the step's
	// process) while its copy runs, then one killed as Gitea's runner kills
	// (SIGKILL to its group): production is as it was, and the copy, left for
	// the next run, is removed by it before anything else (its containers,
	// networks and volumes), which says so.
	st.release("2.2.0", buildApp(t, appBuild{migrations: map[string]string{
		"000002_tags.up.sql":     "ALTER TABLE notes ADD COLUMN tags text;\n",
		"000002_tags.down.sql":   "ALTER TABLE notes DROP COLUMN tags;\n",
		"000003_rating.up.sql":   "ALTER TABLE notes ADD COLUMN rating int;\n",
		"000003_rating.down.sql": "ALTER TABLE notes DROP COLUMN rating;\n",
	}}))
	for _, forge := range []string{"github", "gitea"} {
		left := st.copies() // what the run before left: this run's copy is another
		step, result := st.step("--rehearse")
		// Its containers running, not only its network or volume made: the
		// next run's repair names the containers it removes.
		testapp.WaitFor(t, "the rehearsal's copy to run", func() bool {
			for _, p := range strings.Fields(st.copiesRunning()) {
				if !strings.Contains(left, p) {
					return true
				}
			}
			return false
		})
		if forge == "github" {
			last, took := step.CancelGitHub()
			r = result()
			assert.Equal(t, "SIGINT", last, r.Log)
			assert.Less(t, took, action.CancelBudget)
			assert.Equal(t, 1, r.Code, r.Log)
			assert.Contains(t, r.Log, "::error::deploykit deploy was cancelled (interrupt)")
		} else {
			step.KillGitea()
		}
		_, v = st.get("/version")
		assert.Equal(t, "2.1.0", v, forge)
		assert.Equal(t, "2|f", st.schema(), forge)
		if st.copies() != "" {
			// Left for the next run, which removes it first.
			r = st.deploy("--rehearse", "--dry-run")
			require.Equal(t, 0, r.Code, r.Log)
			assert.NotEmpty(t, st.copies(), "%s: a dry run removes nothing", forge)
		}
	}
	r = st.deploy("--rehearse")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Regexp(t, `\| repair \| done \| \S+ \| a killed deploy of 2\.2\.0 recorded \(killed in step rehearse [^|]*removed what a killed run left: containers `+st.name+`-rehearsal-`, r.Summary)
	assert.Empty(t, st.copies(), "nothing of the copies is left")
	_, v = st.get("/version")
	assert.Equal(t, "2.2.0", v)
	assert.Equal(t, "3|f", st.schema())
}

// TestFailedMigrationWithoutRehearsalSaysProductionIsDegraded: without
// rehearse, a release whose migration fails on production's data leaves the
// schema half-migrated and dirty; switching the containers back does not undo
// that, and the running release no longer starts on it. The deploy says so —
// "failed, production degraded", never "rolled back" — with the command that
// restores the pre-deploy backup, and that command brings production back.
func TestFailedMigrationWithoutRehearsalSaysProductionIsDegraded(t *testing.T) {
	t.Parallel()
	st := newRehearsed(t)
	st.release("1.0.0", buildApp(t, appBuild{}))
	r := st.deploy()
	require.Equal(t, 0, r.Code, r.Log)
	for _, note := range []string{"same", "same", "other"} {
		st.post(note)
	}
	st.release("2.0.0", buildApp(t, appBuild{column: "content", migrations: map[string]string{
		"000002_rename.up.sql":   "ALTER TABLE notes RENAME COLUMN body TO content;\n",
		"000002_rename.down.sql": "ALTER TABLE notes RENAME COLUMN content TO body;\n",
		"000003_unique.up.sql":   "CREATE UNIQUE INDEX notes_content ON notes (content);\n",
		"000003_unique.down.sql": "DROP INDEX notes_content;\n",
	}}))
	r = st.deploy("--backup", "--wait-timeout", "30s", "--health-attempts", "4")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Equal(t, "failed", r.Outputs["status"])
	assert.Equal(t, "false", r.Outputs["rolled-back"])
	assert.Contains(t, r.Summary, "### deploykit deploy: failed, production degraded — "+st.name+" 2.0.0 on production")
	assert.Contains(t, r.Summary, "- the database moved while 2.0.0 ran: before postgres at 1, now postgres at 3 (dirty)")
	assert.Contains(t, r.Log, "and production is degraded: the database moved while 2.0.0 ran")
	assert.Equal(t, "3|t", st.schema(), "what the failed migration left")
	start := strings.Index(r.Summary, "```sh\ndeploykit restore ")
	require.Positive(t, start, r.Summary)
	restore := r.Summary[start+len("```sh\n") : start+strings.Index(r.Summary[start:], "\n```\n")]
	assert.Contains(t, restore, "--confirm RESTORE --file "+st.backups+"/pre-deploy-"+st.name+"-")
	assert.Contains(t, restore, " --dir "+st.backups+" --engine postgres ")
	assert.Contains(t, restore, "--container "+st.name+"-db-1 --project-name "+st.name+" --stop-services web")

	// The command, as printed, puts production back.
	args := strings.Fields(strings.TrimPrefix(restore, "deploykit "))
	out, err := exec.Command(testenv.Deploykit(t), append(args, "--history-file", st.history, "--health-url", fmt.Sprintf("http://127.0.0.1:%d/health", st.port))...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "1|f", st.schema())
	safety, _ := filepath.Glob(filepath.Join(st.backups, "pre-restore-*.sql.gz"))
	assert.Len(t, safety, 1, "the restore's safety backup is beside the pre-deploy backups")
	_, notes := st.get("/notes")
	assert.Equal(t, "same\nsame\nother", notes)
}

// TestRehearsalPassesLockSafeMigrations: the migrations docs/rehearsal.md
// recommends for big tables pass the rehearsal: duplicates deleted, then a
// unique index built CONCURRENTLY (which waits for every older transaction:
// the lock watch holds none open across its samples), and a constraint added
// NOT VALID then VALIDATEd. The longest lock is still reported, its table's
// name escaped (a line break in it cannot hide it). Before that, a release
// whose migration never finishes fails at rehearse with an app that wrote
// nothing: the hand-off says so and shows what the copy's database did.
func TestRehearsalPassesLockSafeMigrations(t *testing.T) {
	t.Parallel()
	st := newRehearsed(t)
	st.release("1.0.0", buildApp(t, appBuild{}))
	r := st.deploy("--rehearse")
	require.Equal(t, 0, r.Code, r.Log)
	for _, note := range []string{"same", "same", "other"} {
		st.post(note)
	}

	st.release("1.1.0", buildApp(t, appBuild{migrations: map[string]string{
		"000002_stuck.up.sql":   "SELECT pg_sleep(600);\n",
		"000002_stuck.down.sql": "SELECT 1;\n",
	}}))
	r = st.deploy("--rehearse", "--wait-timeout", "15s")
	assert.Equal(t, 1, r.Code, r.Log)
	// Stuck in its migration, the app never listens: compose's wait for it
	// runs out, or (when compose is done first) its checks find nothing.
	assert.Regexp(t, `::error::deploy of 1\.1\.0 failed at rehearse: version 1\.1\.0 (did not start|fails its checks) on a copy of production's data: `, r.Log)
	assert.Contains(t, r.Summary, "The copy's app wrote nothing: it never got to start (did a migration not finish?). What its database db did:")
	assert.Contains(t, r.Summary, "Sessions of the copy's db (pg_stat_activity): what each waits for, and who blocks it:")
	assert.Regexp(t, `SELECT pg_sleep\(600\)`, r.Summary, "the migration the app waited for")
	assert.Equal(t, "1|f", st.schema())
	assert.Empty(t, st.copies())

	st.release("2.0.0", buildApp(t, appBuild{migrations: map[string]string{
		"000002_dedupe.up.sql":     "DELETE FROM notes a USING notes b WHERE a.body = b.body AND a.id > b.id;\n",
		"000002_dedupe.down.sql":   "SELECT 1;\n",
		"000003_unique.up.sql":     "CREATE UNIQUE INDEX CONCURRENTLY notes_body_unique ON notes (body);\n",
		"000003_unique.down.sql":   "DROP INDEX CONCURRENTLY notes_body_unique;\n",
		"000004_check.up.sql":      "ALTER TABLE notes ADD CONSTRAINT notes_body_short CHECK (length(body) < 10000) NOT VALID;\n",
		"000004_check.down.sql":    "ALTER TABLE notes DROP CONSTRAINT notes_body_short;\n",
		"000005_validate.up.sql":   "ALTER TABLE notes VALIDATE CONSTRAINT notes_body_short;\n",
		"000005_validate.down.sql": "SELECT 1;\n",
		"000006_audit.up.sql":      "CREATE TABLE \"audit|\nlog\" (id int);\n",
		"000006_audit.down.sql":    "DROP TABLE \"audit|\nlog\";\n",
		"000007_lock.up.sql":       "LOCK TABLE \"audit|\nlog\" IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(0.5);\n",
		"000007_lock.down.sql":     "SELECT 1;\n",
	}}))
	l := startLoads(st.port, st.plain)
	r = st.deploy("--rehearse")
	l.finish().check(t, "2.0.0 rehearsed and switched to")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "migrations: postgres at 1 → postgres at 7")
	var plan struct {
		Rehearsal struct {
			LongestLock string `json:"longest_lock"`
		} `json:"rehearsal"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.Outputs["plan"]), &plan), r.Outputs["plan"])
	assert.Regexp(t, `^AccessExclusiveLock on audit\|\\nlog \(database postgres\) for `, plan.Rehearsal.LongestLock, "the lock is seen, its name escaped")
	assert.NotContains(t, r.Summary, "audit|\nlog", "no raw line break from a name")
	assert.Equal(t, "7|f", st.schema())
	_, notes := st.get("/notes")
	assert.Equal(t, "same\nother", notes)
	out, err := exec.Command("docker", "exec", st.name+"-db-1", "psql", "-X", "-At", "-U", "postgres", "-c",
		"SELECT indisvalid FROM pg_index WHERE indexrelid = 'notes_body_unique'::regclass").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "t", strings.TrimSpace(string(out)), "the concurrent index is valid")
	assert.Empty(t, st.copies())
}
