package backup

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/pgzip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/docker"
)

// The engines' server side at the seam: what they ask the Docker Engine to run
// in the database's container (argv, environment, what they pipe in) and what
// they make of the answers, without Docker. Whether the real tools answer so is
// the conformance suite's part (conformance_test.go).

// fakeServer is the Docker Engine as the engines see it (serverEngine): each
// exec is answered by the last rule whose container matches and whose words
// all appear in its command line, and recorded. An exec no rule answers fails
// with status 127, naming itself.
type fakeServer struct {
	mu      sync.Mutex
	rules   []execRule
	calls   []execCall
	runs    []docker.RunSpec
	removed []string
	image   string
	// answer, when set, answers the execs it knows before any rule: what a
	// server would say given the names in the command line.
	answer func(line string) (string, bool)
}

// execRule answers execs: out on stdout, errOut on stderr, status code; times
// > 0 uses it that many times only.
type execRule struct {
	container string // "" any
	words     []string
	out       string
	errOut    string
	code      int
	times     int
}

type execCall struct {
	container string
	argv, env []string
	stdin     string
}

func (c execCall) String() string { return c.container + ": " + strings.Join(c.argv, " ") }

// on adds a rule for execs in any container.
func (f *fakeServer) on(out string, words ...string) *execRule {
	return f.in("", out, words...)
}

// in adds a rule for execs in container.
func (f *fakeServer) in(container, out string, words ...string) *execRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, execRule{container: container, words: words, out: out})
	return &f.rules[len(f.rules)-1]
}

// fail adds a rule that exits with code, printing errOut.
func (f *fakeServer) fail(code int, errOut string, words ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, execRule{words: words, errOut: errOut, code: code})
}

// failOnce is fail for the next matching exec only.
func (f *fakeServer) failOnce(code int, errOut string, words ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, execRule{words: words, errOut: errOut, code: code, times: 1})
}

func (f *fakeServer) Exec(_ context.Context, container string, spec docker.ExecSpec) (int, error) {
	call := execCall{container: container, argv: spec.Cmd, env: spec.Env}
	if spec.Stdin != nil {
		in, err := io.ReadAll(spec.Stdin)
		if err != nil {
			return 0, err
		}
		call.stdin = string(in)
	}
	line := strings.Join(spec.Cmd, " ")
	f.mu.Lock()
	f.calls = append(f.calls, call)
	if f.answer != nil {
		if out, ok := f.answer(line); ok {
			f.mu.Unlock()
			if spec.Stdout != nil {
				_, _ = io.WriteString(spec.Stdout, out)
			}
			return 0, nil
		}
	}
	var r *execRule
	for i := len(f.rules) - 1; i >= 0; i-- {
		c := &f.rules[i]
		if c.times < 0 || (c.container != "" && c.container != container) || !containsAll(line, c.words) {
			continue
		}
		if c.times > 0 {
			c.times--
			if c.times == 0 {
				c.times = -1 // used up
			}
		}
		r = c
		break
	}
	f.mu.Unlock()
	if r == nil {
		_, _ = fmt.Fprintf(spec.Stderr, "no rule answers %q in %s", line, container)
		return 127, nil
	}
	if spec.Stdout != nil {
		_, _ = io.WriteString(spec.Stdout, r.out)
	}
	_, _ = io.WriteString(spec.Stderr, r.errOut)
	return r.code, nil
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

func (f *fakeServer) ContainerImage(_ context.Context, name string) (string, error) {
	if f.image == "" {
		return "", fmt.Errorf("%w: %s", docker.ErrNoContainer, name)
	}
	return f.image, nil
}

func (f *fakeServer) Run(_ context.Context, spec docker.RunSpec) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, spec)
	return fmt.Sprintf("scratch%d", len(f.runs)), "49153", nil
}

func (f *fakeServer) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeServer) RemoveDeadOwners(context.Context, func(int) bool) (docker.Removed, error) {
	return docker.Removed{}, nil
}

func (f *fakeServer) Close() error { return nil }

// lines are the command lines run, in order, each "container: argv".
func (f *fakeServer) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.linesLocked()
}

// called is the first exec whose command line has every word.
func (f *fakeServer) called(t *testing.T, words ...string) execCall {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if containsAll(strings.Join(c.argv, " "), words) {
			return c
		}
	}
	require.Failf(t, "not run", "no exec with %q among:\n%s", words, strings.Join(f.linesLocked(), "\n"))
	return execCall{}
}

func (f *fakeServer) linesLocked() []string {
	var out []string
	for _, c := range f.calls {
		out = append(out, c.String())
	}
	return out
}

// inContainer is a postgres or mysql engine whose server is f's container db.
func inContainer(t *testing.T, engine string, f *fakeServer, user, password string) Engine {
	t.Helper()
	mask := func(s string) string { return s }
	if password != "" {
		mask = func(s string) string { return strings.ReplaceAll(s, password, "***") }
	}
	src := execRunner{client: f, container: "db", mask: mask}
	e, err := Engines[engine](conn{Engine: engine, Container: "db", Src: src,
		Server: server{client: f, container: "db", user: user, password: password, labels: map[string]string{"deploykit.test": "seam"}}})
	require.NoError(t, err)
	return e
}

// byURL is a postgres or mysql engine of a database URL whose tools run in f's
// container tools (as they run on the runner: the logic is the same).
func byURL(t *testing.T, engine string, f *fakeServer, url string) Engine {
	t.Helper()
	e, err := Engines[engine](conn{Engine: engine, URL: url})
	require.NoError(t, err)
	src := execRunner{client: f, container: "tools", mask: func(s string) string { return s }}
	switch e := e.(type) {
	case *postgres:
		e.src = src
	case *mysql:
		e.src = src
	}
	return e
}

// gzFile writes data gzipped to a file and returns its path.
func gzFile(t *testing.T, data string) string {
	t.Helper()
	var b bytes.Buffer
	zw := pgzip.NewWriter(&b)
	_, err := io.WriteString(zw, data)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	path := filepath.Join(t.TempDir(), "backup.sql.gz")
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
	return path
}

const clusterDump = "-- PostgreSQL database cluster dump\nCREATE ROLE app;\n-- PostgreSQL database cluster dump complete\n"

func TestSeamPostgresClusterDumpsWithThePasswordInItsEnvironment(t *testing.T) {
	f := &fakeServer{}
	f.on(clusterDump, "pg_dumpall")
	e := inContainer(t, "postgres", f, "", "s3cret")
	var out bytes.Buffer
	require.NoError(t, e.Dump(context.Background(), &out))
	assert.Equal(t, clusterDump, out.String())
	c := f.called(t, "pg_dumpall")
	assert.Equal(t, []string{"pg_dumpall", "--no-password", "-U", "postgres"}, c.argv, "the user defaults to postgres")
	assert.Equal(t, []string{"PGPASSWORD=s3cret"}, c.env, "the password through the environment, never argv")
	assert.Equal(t, []string{"docker exec -i db pg_dumpall --no-password -U postgres"}, e.Plan())
	assert.Equal(t, "gunzip -c /b/x.sql.gz | docker exec -i -e PGPASSWORD db psql -X -U postgres -d postgres", e.RestoreCommand("/b/x.sql.gz"))
	assert.Equal(t, "PostgreSQL cluster in container db (pg_dumpall as postgres)", e.Source())
	assert.False(t, e.Swaps(), "a cluster is replayed in place")

	// A dump the tool ends with an error, or is killed in, fails with its
	// message (the password masked) and the status.
	f.fail(1, "pg_dumpall: error: connection failed: password s3cret rejected", "pg_dumpall")
	err := e.Dump(context.Background(), io.Discard)
	require.EqualError(t, err, "pg_dumpall exited with status 1 in container db: pg_dumpall: error: connection failed: password *** rejected")
	f.fail(137, "", "pg_dumpall")
	err = e.Dump(context.Background(), io.Discard)
	require.EqualError(t, err, "pg_dumpall was killed (status 137, signal 9) in container db: did the container stop or run out of memory? (no error output)")
}

// pgCluster answers the count queries of a cluster with databases app and
// postgres in container, app holding notes rows.
func pgCluster(f *fakeServer, container string, notes int) {
	f.in(container, "app\npostgres\n", "psql", "-d postgres", pgDatabasesQuery)
	f.in(container, fmt.Sprintf("public.notes|%d\npublic.schema_migrations|1\n", notes), "psql", "-d app", "query_to_xml")
	f.in(container, "", "psql", "-d postgres", "query_to_xml")
}

func TestSeamPostgresClusterRestoreCheckUsesAScratchContainerOfTheSameImage(t *testing.T) {
	f := &fakeServer{image: "postgres:16.4"}
	pgCluster(f, "db", 3)
	pgCluster(f, "scratch1", 3)
	f.in("scratch1", "", "psql", "-h 127.0.0.1", "SELECT 1")
	f.failOnce(2, "psql: error: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused", "psql", "-h 127.0.0.1", "SELECT 1")
	f.in("scratch1", "", "psql", "-d postgres -q").errOut = "ERROR:  role \"postgres\" already exists\n"
	e := inContainer(t, "postgres", f, "", "pw")
	file := gzFile(t, clusterDump)

	said, err := e.RestoreCheck(context.Background(), file)
	require.NoError(t, err, strings.Join(f.lines(), "\n"))
	assert.Equal(t, "restored into a scratch container of postgres:16.4: row counts of 2 tables (4 rows) equal the source", said)
	require.Len(t, f.runs, 1)
	run := f.runs[0]
	assert.Equal(t, "postgres:16.4", run.Image, "the source's image")
	assert.Equal(t, "5432/tcp", run.Port)
	assert.Equal(t, map[string]string{"deploykit.test": "seam"}, run.Labels, "labelled, so a killed run's is found")
	require.Len(t, run.Env, 1)
	password := strings.TrimPrefix(run.Env[0], "POSTGRES_PASSWORD=")
	assert.Len(t, password, 32, "a random password of its own")
	ready := f.called(t, "SELECT 1")
	assert.Equal(t, []string{"PGPASSWORD=" + password}, ready.env)
	assert.Equal(t, clusterDump, f.called(t, "-d postgres -q").stdin, "the whole dump piped in")
	assert.Equal(t, []string{"scratch1"}, f.removed, "the scratch container removed")
	assert.Equal(t, 2, strings.Count(strings.Join(f.lines(), "\n"), "SELECT 1"), "not ready, asked again")

	// The restore printed an error other than the expected one: refused.
	f.in("scratch2", "", "psql", "-h 127.0.0.1", "SELECT 1")
	f.in("scratch2", "", "psql", "-d postgres -q").errOut = "ERROR:  role \"postgres\" already exists\npsql:<stdin>:9: ERROR:  relation \"notes\" does not exist\n"
	_, err = e.RestoreCheck(context.Background(), file)
	require.EqualError(t, err, `the restore printed 1 errors: ERROR:  relation "notes" does not exist`)
	assert.Equal(t, []string{"scratch1", "scratch2"}, f.removed)

	// The restored copy lacks rows: refused, naming the table.
	f.in("scratch3", "", "psql", "-h 127.0.0.1", "SELECT 1")
	f.in("scratch3", "", "psql", "-d postgres -q")
	pgCluster(f, "scratch3", 2)
	_, err = e.RestoreCheck(context.Background(), file)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "app/public.notes")
	assert.Equal(t, []string{"scratch1", "scratch2", "scratch3"}, f.removed)
}

func TestSeamPostgresClusterRestoreLiveClearsThenReplays(t *testing.T) {
	f := &fakeServer{}
	f.on("app\npostgres\nwe\"ird\n", "psql", "-d template1", "SELECT datname FROM pg_database WHERE datname NOT IN")
	f.on("app_user\n", "psql", "-d template1", "FROM pg_roles")
	f.on("", "psql", "-d template1", "DROP DATABASE")
	f.on("", "psql", "-d template1", "CREATE DATABASE postgres")
	f.on("", "psql", "-d template1", "DROP ROLE")
	f.on("", "psql", "-d postgres -q").errOut = "ERROR:  role \"postgres\" already exists\n"
	e := inContainer(t, "postgres", f, "", "")
	file := gzFile(t, clusterDump)

	said, err := e.RestoreLive(context.Background(), file)
	require.NoError(t, err)
	assert.Empty(t, said, "a cluster does not swap: the caller says what it holds")
	var sqls []string
	for _, c := range f.calls {
		sqls = append(sqls, c.argv[len(c.argv)-1])
	}
	assert.Equal(t, []string{
		"SELECT datname FROM pg_database WHERE datname NOT IN ('template0', 'template1') ORDER BY 1",
		`DROP DATABASE "app" WITH (FORCE)`,
		`DROP DATABASE "postgres" WITH (FORCE)`,
		`DROP DATABASE "we""ird" WITH (FORCE)`,
		"CREATE DATABASE postgres",
		"SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> current_user ORDER BY 1",
		`DROP ROLE "app_user"`,
		"-q",
	}, sqls)
	assert.Equal(t, clusterDump, f.called(t, "-d postgres -q").stdin)

	// A failure half-way says where; the caller puts the safety backup back.
	f.fail(1, "ERROR:  database \"app\" is being accessed by other users", "DROP DATABASE \"app\"")
	_, err = e.RestoreLive(context.Background(), file)
	require.EqualError(t, err, `dropping database app: psql exited with status 1 in container db: ERROR:  database "app" is being accessed by other users`)
	f.fail(0, "psql:<stdin>:2: ERROR:  syntax error at or near \"CREAT\"\n", "-d postgres -q")
	f.on("", "DROP DATABASE \"app\"")
	_, err = e.RestoreLive(context.Background(), file)
	require.EqualError(t, err, `the restore printed 1 errors: ERROR:  syntax error at or near "CREAT"`)
}

// pgSwapServer answers a restore by URL of database shop whose steps
// succeed; pg_database's listing of the swap's three names afterwards is
// pgDatabase's.
func pgSwapServer(f *fakeServer, after pgDatabase) {
	f.on("", "psql", "CREATE DATABASE \"deploykit_restore_")
	f.on("", "psql", "/deploykit_restore_", "-q -v ON_ERROR_STOP=1")
	f.on("", "psql", "/template1", "ALTER DATABASE \"shop\" RENAME TO \"deploykit_pre_restore_")
	f.on("0", "psql", "/template1", "application_name = 'deploykit-restore-")
	f.on("", "psql", "/template1", "DROP DATABASE IF EXISTS")
	f.on("", "psql", "/template1", "pg_terminate_backend")
	f.answer = after.answer
}

// pgDatabase is what pg_database lists of a restore's names once it is over:
// the live one, the new one (not swapped) or the old one (swapped), or only the
// old one (no live name: cannot happen through the swap, said if it does).
type pgDatabase int

const (
	notSwapped pgDatabase = iota
	swapped
	onlyOld
)

func (x pgDatabase) answer(line string) (string, bool) {
	const query = "SELECT datname FROM pg_database WHERE datname IN ("
	i := strings.Index(line, query)
	if i < 0 {
		return "", false
	}
	// The three names, in the order the query lists them: live, new, old.
	var names []string
	for _, part := range strings.Split(strings.TrimSuffix(line[i+len(query):], ")"), ", ") {
		names = append(names, strings.Trim(part, "'"))
	}
	switch x {
	case swapped:
		return names[0] + "\n" + names[2], true
	case onlyOld:
		return names[2], true
	}
	return names[0] + "\n" + names[1], true
}

func TestSeamPostgresRestoreByURLSwapsInOneTransaction(t *testing.T) {
	const dbURL = "postgres://app:pw@db.internal:5432/shop?sslmode=disable"
	file := gzFile(t, "-- PostgreSQL database dump\nCREATE TABLE t ();\n-- PostgreSQL database dump complete\n")
	names := func(f *fakeServer) (fresh, old string) {
		c := f.called(t, "CREATE DATABASE")
		fresh = strings.Trim(strings.TrimPrefix(c.argv[len(c.argv)-1], "CREATE DATABASE "), `"`)
		return fresh, strings.Replace(fresh, "deploykit_restore_", "deploykit_pre_restore_", 1)
	}
	dropped := func(f *fakeServer) []string {
		var out []string
		for _, l := range f.lines() {
			if _, db, ok := strings.Cut(l, "DROP DATABASE IF EXISTS "); ok {
				out = append(out, db)
			}
		}
		return out
	}

	t.Run("swapped", func(t *testing.T) {
		f := &fakeServer{}
		pgSwapServer(f, swapped)
		e := byURL(t, "postgres", f, dbURL)
		require.True(t, e.Swaps())
		said, err := e.RestoreLive(context.Background(), file)
		require.NoError(t, err, strings.Join(f.lines(), "\n"))
		assert.Equal(t, "database shop holds the restored backup (checked in pg_database)", said)
		fresh, old := names(f)
		assert.Regexp(t, `^deploykit_restore_\d{14}_`+nameTag("shop")+`$`, fresh)
		load := f.called(t, "--dbname=postgres://app@db.internal:5432/"+fresh+"?sslmode=disable", "-q -v ON_ERROR_STOP=1")
		assert.Contains(t, load.stdin, "CREATE TABLE t ();", "the dump loaded into the new database")
		assert.Equal(t, []string{"PGPASSWORD=pw"}, load.env, "the URL's password through the environment")
		swap := f.called(t, "ALTER DATABASE")
		assert.Equal(t, `BEGIN; ALTER DATABASE "shop" RENAME TO "`+old+`"; ALTER DATABASE "`+fresh+`" RENAME TO "shop"; COMMIT;`, swap.argv[len(swap.argv)-1])
		assert.Contains(t, swap.env, "PGAPPNAME=deploykit-restore-"+strings.TrimPrefix(fresh, "deploykit_restore_"), "named, so that settle waits for its session")
		assert.Equal(t, []string{`"` + old + `" WITH (FORCE)`}, dropped(f), "the data from before dropped once the restored data is live")
	})

	t.Run("sessions on the live database are ended and the swap tried again", func(t *testing.T) {
		f := &fakeServer{}
		pgSwapServer(f, swapped)
		f.failOnce(1, `ERROR:  database "shop" is being accessed by other users`, "ALTER DATABASE")
		e := byURL(t, "postgres", f, dbURL)
		_, err := e.RestoreLive(context.Background(), file)
		require.NoError(t, err)
		lines := strings.Join(f.lines(), "\n")
		assert.Equal(t, 2, strings.Count(lines, "BEGIN; ALTER DATABASE"), lines)
		terminate := f.called(t, "pg_terminate_backend")
		assert.Contains(t, terminate.argv[len(terminate.argv)-1], "WHERE datname = 'shop' AND pid <> pg_backend_pid()")
	})

	t.Run("the swap refused three times: the live database is as it was", func(t *testing.T) {
		f := &fakeServer{}
		pgSwapServer(f, notSwapped)
		f.fail(1, `ERROR:  database "shop" is being accessed by other users`, "ALTER DATABASE")
		e := byURL(t, "postgres", f, dbURL)
		said, err := e.RestoreLive(context.Background(), file)
		require.EqualError(t, err, `giving the restored database the name shop: psql exited with status 1 in container tools: ERROR:  database "shop" is being accessed by other users`)
		assert.Equal(t, 3, strings.Count(strings.Join(f.lines(), "\n"), "BEGIN; ALTER DATABASE"))
		assert.Equal(t, "database shop is as it was: the restored copy did not take its name (checked in pg_database)", said)
		fresh, _ := names(f)
		assert.Equal(t, []string{`"` + fresh + `" WITH (FORCE)`}, dropped(f), "the restored copy dropped")
	})

	t.Run("loading failed: the new database is dropped, the live one as it was", func(t *testing.T) {
		f := &fakeServer{}
		pgSwapServer(f, notSwapped)
		f.fail(3, "psql:<stdin>:2: ERROR:  syntax error", "/deploykit_restore_", "-q -v ON_ERROR_STOP=1")
		e := byURL(t, "postgres", f, dbURL)
		said, err := e.RestoreLive(context.Background(), file)
		fresh, _ := names(f)
		require.EqualError(t, err, "loading backup.sql.gz into database "+fresh+": psql exited with status 3 in container tools: psql:<stdin>:2: ERROR:  syntax error")
		assert.Equal(t, "database shop is as it was: the restored copy did not take its name (checked in pg_database)", said)
		assert.Equal(t, []string{`"` + fresh + `" WITH (FORCE)`}, dropped(f))
		assert.NotContains(t, strings.Join(f.lines(), "\n"), "ALTER DATABASE", "no swap of a copy that did not load")
	})

	t.Run("the swap's psql was killed after the server committed: restored", func(t *testing.T) {
		f := &fakeServer{}
		pgSwapServer(f, swapped)
		f.fail(137, "", "ALTER DATABASE")
		e := byURL(t, "postgres", f, dbURL)
		said, err := e.RestoreLive(context.Background(), file)
		require.NoError(t, err, "the swap reached the server, whatever its psql said")
		_, old := names(f)
		assert.Equal(t, "database shop holds the restored backup (checked in pg_database)", said)
		assert.Equal(t, []string{`"` + old + `" WITH (FORCE)`}, dropped(f))
	})

	t.Run("no database under the live name: says where the data is", func(t *testing.T) {
		f := &fakeServer{}
		pgSwapServer(f, onlyOld)
		f.fail(1, "server closed the connection unexpectedly", "ALTER DATABASE")
		e := byURL(t, "postgres", f, dbURL)
		said, err := e.RestoreLive(context.Background(), file)
		require.Error(t, err)
		_, old := names(f)
		assert.Equal(t, `NO database is named shop (checked in pg_database): the data from before is in `+old+`; give it the name back with ALTER DATABASE "`+old+`" RENAME TO "shop"`, said)
	})

	t.Run("pg_database cannot be read afterwards", func(t *testing.T) {
		f := &fakeServer{}
		pgSwapServer(f, swapped)
		f.answer = nil
		f.fail(2, "psql: error: connection refused", "WHERE datname IN")
		e := byURL(t, "postgres", f, dbURL)
		_, err := e.RestoreLive(context.Background(), file)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the restore ran, but its outcome could not be checked; reading pg_database afterwards failed too (psql exited with status 2 in container tools: psql: error: connection refused)")
		assert.Contains(t, err.Error(), "see docs/actions/restore.md")
	})
}

func TestSeamPostgresLeftoversSayWhatEachKilledRestoreLeft(t *testing.T) {
	tag := nameTag("shop")
	f := &fakeServer{}
	f.on(strings.Join([]string{
		"deploykit_check_ab12_" + tag,
		"deploykit_pre_restore_20261207_" + tag,
		"deploykit_restore_20261207_" + tag,
		"deploykit_restore_20261207_" + nameTag("other"), // another database's restore: its own to report
	}, "\n"), "psql", "/template1", `LIKE 'deploykit\_%' OR datname = 'shop'`)
	e := byURL(t, "postgres", f, "postgres://app@db.internal/shop")
	said, err := e.Leftovers(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{
		"database deploykit_check_ab12_" + tag + " is a scratch copy a backup's restore check of shop was loading when it was killed (or one running now): when none runs, drop it (DROP DATABASE \"deploykit_check_ab12_" + tag + "\")",
		"database deploykit_pre_restore_20261207_" + tag + " holds the data from before a restore that was killed, and no database is named shop: give it the name back (ALTER DATABASE \"deploykit_pre_restore_20261207_" + tag + "\" RENAME TO \"shop\") or restore a backup",
		"database deploykit_restore_20261207_" + tag + " is a copy a restore of shop was loading when it was killed (or one running now): when none runs, drop it (DROP DATABASE \"deploykit_restore_20261207_" + tag + "\")",
	}, said)

	f.on("shop\ndeploykit_pre_restore_20261207_"+tag, "psql", "/template1", `LIKE 'deploykit\_%'`)
	said, err = e.Leftovers(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"database deploykit_pre_restore_20261207_" + tag + " holds the data from before a restore that was killed after shop took the restored data: drop it once you no longer need it (DROP DATABASE \"deploykit_pre_restore_20261207_" + tag + "\")"}, said)

	f.fail(2, "psql: error: connection refused", `LIKE 'deploykit\_%'`)
	_, err = e.Leftovers(context.Background())
	require.EqualError(t, err, "looking for databases left by an earlier restore: psql exited with status 2 in container tools: psql: error: connection refused")

	cluster, err := inContainer(t, "postgres", &fakeServer{}, "", "").Leftovers(context.Background())
	require.NoError(t, err)
	assert.Nil(t, cluster, "a cluster is replayed in place: nothing beside it")
}

func TestSeamMigrationStateFromEveryDatabase(t *testing.T) {
	f := &fakeServer{}
	f.on("app\npostgres\nshop\n", "psql", "-d template1", pgDatabasesQuery)
	f.on("20261201 f", "psql", "-d app", migrationsQuery)
	f.fail(1, `ERROR:  relation "schema_migrations" does not exist`, "psql", "-d postgres", migrationsQuery)
	f.on("7 t", "psql", "-d shop", migrationsQuery)
	live := &LiveDB{engine: inContainer(t, "postgres", f, "", "")}
	schemas, err := live.Schemas(context.Background())
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"app": "20261201", "shop": "7 (dirty)"}, schemas, "a database without schema_migrations is left out")

	v, err := live.MigrationVersion(context.Background(), "app")
	require.NoError(t, err)
	assert.Equal(t, "20261201", v)
	c := f.called(t, "-d app", migrationsQuery)
	assert.Equal(t, []string{"psql", "-X", "--no-password", "-U", "postgres", "-d", "app", "-At", "-F", " ", "-c", migrationsQuery}, c.argv)
	_, err = live.MigrationVersion(context.Background(), "shop")
	require.EqualError(t, err, "the database is dirty at migration 7: a migration failed half-way")
	f.on("", "psql", "-d empty", migrationsQuery)
	_, err = live.MigrationVersion(context.Background(), "empty")
	require.EqualError(t, err, "schema_migrations is empty")

	f.fail(2, "psql: error: server closed the connection", pgDatabasesQuery)
	_, err = live.Schemas(context.Background())
	require.EqualError(t, err, "listing the databases: psql exited with status 2 in container db: psql: error: server closed the connection")

	// MySQL: the databases holding a schema_migrations table, read with the client.
	m := &fakeServer{}
	m.on("app\nshop\n", "mysql", "-u root", "table_name = 'schema_migrations'")
	m.on("3\t0", "mysql", "-e "+migrationsQuery+" app")
	m.on("4\t1", "mysql", "-e "+migrationsQuery+" shop")
	schemas, err = (&LiveDB{engine: inContainer(t, "mysql", m, "", "")}).Schemas(context.Background())
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"app": "3", "shop": "4 (dirty)"}, schemas)
}

func TestSeamMySQLServerBackupCheckAndRestore(t *testing.T) {
	const dump = "-- MariaDB dump 10.19\nCREATE TABLE notes (id int);\n-- Dump completed on 2026-12-07\n"
	for _, flavor := range []struct{ engine, dump, client string }{{"mysql", "mysqldump", "mysql"}, {"mariadb", "mariadb-dump", "mariadb"}} {
		t.Run(flavor.engine, func(t *testing.T) {
			f := &fakeServer{image: "mariadb:10.11"}
			f.on(dump, flavor.dump)
			// Later rules win: the replay's first, the queries' after.
			f.in("scratch1", "", flavor.client, "-h 127.0.0.1 -u root")
			f.in("scratch1", "", flavor.client, "-e SELECT 1")
			tables := "app\tnotes\nshop\titems\n"
			f.on(tables, flavor.client, "FROM information_schema.tables WHERE table_type = 'BASE TABLE'")
			f.on("app/notes\t3\nshop/items\t2\n", flavor.client, "SELECT 'app/notes', COUNT(*) FROM `app`.`notes` UNION ALL SELECT 'shop/items', COUNT(*) FROM `shop`.`items`")
			e := inContainer(t, flavor.engine, f, "", "rootpw")
			assert.Equal(t, flavor.engine+" server in container db ("+flavor.dump+" --all-databases as root)", e.Source())

			var out bytes.Buffer
			require.NoError(t, e.Dump(context.Background(), &out))
			assert.Equal(t, dump, out.String())
			c := f.called(t, flavor.dump)
			assert.Equal(t, []string{flavor.dump, "-u", "root", "--single-transaction", "--routines", "--triggers", "--hex-blob", "--all-databases", "--events"}, c.argv)
			assert.Equal(t, []string{"MYSQL_PWD=rootpw"}, c.env)
			assert.Equal(t, "gunzip -c /b/x.sql.gz | docker exec -i -e MYSQL_PWD db "+flavor.client+" -u root", e.RestoreCommand("/b/x.sql.gz"))

			file := gzFile(t, dump)
			said, err := e.RestoreCheck(context.Background(), file)
			require.NoError(t, err, strings.Join(f.lines(), "\n"))
			assert.Equal(t, "restored into a scratch container of mariadb:10.11: row counts of 2 tables (5 rows) equal the source", said)
			require.Len(t, f.runs, 1)
			assert.Equal(t, "3306/tcp", f.runs[0].Port)
			pw := strings.TrimPrefix(f.runs[0].Env[0], "MARIADB_ROOT_PASSWORD=")
			assert.Equal(t, []string{"MARIADB_ROOT_PASSWORD=" + pw, "MYSQL_ROOT_PASSWORD=" + pw}, f.runs[0].Env, "either image's variable")
			restore := f.called(t, flavor.client, "--protocol=TCP -h 127.0.0.1 -u root")
			assert.Equal(t, "scratch1", restore.container)
			assert.Equal(t, []string{"scratch1"}, f.removed)

			// The live server: every user database dropped, the dump replayed,
			// privileges flushed.
			f.in("db", "", flavor.client+" -u root")
			f.on("app\nshop\n", flavor.client, "SELECT schema_name FROM information_schema.schemata")
			f.on("", flavor.client, "DROP DATABASE IF EXISTS")
			f.on("", flavor.client, "FLUSH PRIVILEGES")
			f.calls = nil
			_, err = e.RestoreLive(context.Background(), file)
			require.NoError(t, err, strings.Join(f.lines(), "\n"))
			assert.Equal(t, []string{
				"db: " + flavor.client + " -u root -N -B -e SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1",
				"db: " + flavor.client + " -u root -N -B -e DROP DATABASE IF EXISTS `app`",
				"db: " + flavor.client + " -u root -N -B -e DROP DATABASE IF EXISTS `shop`",
				"db: " + flavor.client + " -u root",
				"db: " + flavor.client + " -u root -N -B -e FLUSH PRIVILEGES",
			}, f.lines())
			assert.Equal(t, dump, f.calls[3].stdin)
		})
	}
}

func TestSeamMySQLDatabaseByURL(t *testing.T) {
	const dump = "-- MySQL dump 10.13\nCREATE TABLE notes (id int);\n-- Dump completed on 2026-12-07\n"
	f := &fakeServer{}
	e := byURL(t, "mysql", f, "mysql://app:pw@db.internal:3307/shop")
	assert.Equal(t, "mysql database shop on db.internal:3307 (mysqldump)", e.Source())
	assert.Equal(t, []string{"docker exec -i tools mysqldump --protocol=TCP -h db.internal -P 3307 -u app --single-transaction --routines --triggers --hex-blob shop"}, e.Plan())
	assert.Equal(t, "Into the (empty) database of the URL; MYSQL_PWD is the user's password.", e.RestoreNote())

	// The check: a scratch database on the same server, compared, dropped.
	f.on("", "mysql", "CREATE DATABASE `deploykit_restore_")
	f.on("", "mysql", "DROP DATABASE IF EXISTS `deploykit_restore_")
	f.on("", "mysql", "-u app deploykit_restore_")
	f.on("shop\tnotes\n", "mysql", "table_schema = 'shop'")
	f.on("notes\t4\n", "mysql", "FROM `shop`.`notes`")
	f.answer = func(line string) (string, bool) {
		// The scratch database's tables, by its name in the query.
		const at = "table_schema = 'deploykit_restore_"
		if i := strings.Index(line, at); i >= 0 {
			name := line[i+len("table_schema = '"):]
			name = name[:strings.Index(name, "'")]
			return name + "\tnotes\n", true
		}
		if strings.Contains(line, "FROM `deploykit_restore_") {
			return "notes\t4\n", true
		}
		return "", false
	}
	said, err := e.RestoreCheck(context.Background(), gzFile(t, dump))
	require.NoError(t, err, strings.Join(f.lines(), "\n"))
	assert.Regexp(t, `^restored into scratch database deploykit_restore_[0-9a-f]{12} on the same server \(dropped after\): row counts of 1 tables \(4 rows\) equal the source$`, said)
	load := f.called(t, "-u app deploykit_restore_")
	assert.Equal(t, dump, load.stdin)
	assert.Equal(t, []string{"MYSQL_PWD=pw"}, load.env)
	f.called(t, "DROP DATABASE IF EXISTS `deploykit_restore_")

	// The live database: dropped, created, replayed; no FLUSH for one database.
	f.calls = nil
	f.on("", "mysql", "DROP DATABASE IF EXISTS `shop`")
	f.on("", "mysql", "CREATE DATABASE `shop`")
	f.on("", "mysql", "-u app shop")
	_, err = e.RestoreLive(context.Background(), gzFile(t, dump))
	require.NoError(t, err)
	assert.Equal(t, []string{
		"tools: mysql --protocol=TCP -h db.internal -P 3307 -u app -N -B -e DROP DATABASE IF EXISTS `shop`",
		"tools: mysql --protocol=TCP -h db.internal -P 3307 -u app -N -B -e CREATE DATABASE `shop`",
		"tools: mysql --protocol=TCP -h db.internal -P 3307 -u app shop",
	}, f.lines())

	f.fail(1, "ERROR 1044 (42000): Access denied for user 'app'", "CREATE DATABASE `shop`")
	_, err = e.RestoreLive(context.Background(), gzFile(t, dump))
	require.EqualError(t, err, "creating database shop: mysql exited with status 1 in container tools: ERROR 1044 (42000): Access denied for user 'app'")
}
