package migrationsmoke

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command/commandtest"
	"github.com/org/deploy-kit/internal/steps"
)

// Fast tests of migration-smoke's steps at the executor seam: the checks on the
// files run for real on a temporary directory, git is a commandtest.Recorder,
// and no database is started (a dry run, or a run refused before one).

func seamJob(t *testing.T, o Options, files map[string]string) (*job, *commandtest.Recorder) {
	t.Helper()
	ws := t.TempDir()
	for name, body := range files {
		p := filepath.Join(ws, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	var log bytes.Buffer
	a := action.NewContext([]string{"GITHUB_WORKSPACE=" + ws}, &log)
	rec := &commandtest.Recorder{}
	j := &job{a: a, o: o, exec: rec, ws: ws}
	j.Runner = steps.Runner[*job]{Logf: a.Logf}
	return j, rec
}

func defaults(*testing.T) Options {
	var o Options
	action.Defaults(&Spec, &o)
	return o
}

func outcomes(rs []steps.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Step+": "+r.Outcome+" "+r.Detail)
	}
	return out
}

var twoMigrations = map[string]string{
	"migrations/1_users.up.sql":   "CREATE TABLE users (id int PRIMARY KEY);\n",
	"migrations/1_users.down.sql": "DROP TABLE users;\n",
	"migrations/2_email.up.sql":   "ALTER TABLE users ADD COLUMN email text;\n",
	"migrations/2_email.down.sql": "ALTER TABLE users DROP COLUMN email;\n",
}

func TestSeamDryRunStopsAfterTheFiles(t *testing.T) {
	o := defaults(t)
	o.DryRun = true
	j, _ := seamJob(t, o, twoMigrations)
	_, err := j.Run(context.Background(), Pipeline, j, j.dryRunDone)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"input: done ",
		"files: done dry run: would apply 2 migration(s) from migrations to a fresh database (in an ephemeral postgres:16 container)",
		"database: skipped dry run", "schema-dump: skipped dry run", "migrate: skipped dry run", "smoke: skipped dry run", "down-up: skipped dry run",
	}, outcomes(j.Results))
}

func TestSeamBadInputStopsFirst(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Options)
		want string
	}{
		{"path", func(o *Options) { o.Path = "db/missing" }, "input path: db/missing is not a directory of migrations in the workspace "},
		{"smoke-sql", func(o *Options) { o.SmokeSQL = []string{"smoke/*.sql"} }, "input smoke-sql: smoke/*.sql matches no file"},
		{"schema-dump", func(o *Options) { o.SchemaDump = "prod.sql" }, "input schema-dump: prod.sql does not exist"},
		{"base-ref", func(o *Options) { o.BaseRef = "--upload-pack=x" }, `input base-ref: "--upload-pack=x" is not a branch, tag or commit name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaults(t)
			tc.set(&o)
			j, rec := seamJob(t, o, twoMigrations)
			_, err := j.Run(context.Background(), Pipeline, j, nil)
			require.Error(t, err)
			assert.Equal(t, action.ExitUsage, action.ExitCode(err))
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, "input: failed", outcomes(j.Results)[0][:len("input: failed")])
			assert.Equal(t, "database: skipped an earlier step failed", outcomes(j.Results)[2])
			assert.Empty(t, rec.Calls(), "nothing asked of git")
			assert.Nil(t, j.r, "no report: the run refused its input")
		})
	}
}

// A destructive migration without a down migration, with lint error, fails the
// files step: no database is started.
func TestSeamFileFindingsStopBeforeTheDatabase(t *testing.T) {
	o := defaults(t)
	o.Lint = "error"
	files := map[string]string{
		"migrations/1_users.up.sql":   "CREATE TABLE users (id int PRIMARY KEY);\n",
		"migrations/1_users.down.sql": "DROP TABLE users;\n",
		"migrations/2_drop.up.sql":    "DROP TABLE users;\n",
	}
	j, _ := seamJob(t, o, files)
	_, err := j.Run(context.Background(), Pipeline, j, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "check(s) failed before any migration ran")
	got := outcomes(j.Results)
	assert.Equal(t, "files: failed", got[1][:len("files: failed")])
	assert.Equal(t, "database: skipped an earlier step failed", got[2])
	require.NotNil(t, j.r)
	assert.NotEmpty(t, j.r.findings)
}
