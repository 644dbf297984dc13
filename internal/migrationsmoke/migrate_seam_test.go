package migrationsmoke

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	_ "github.com/golang-migrate/migrate/v4/database/sqlite" // sqlite:// URLs: a real database file, no server
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command/commandtest"
	"github.com/org/deploy-kit/internal/steps"
)

// migrateJob is a seam job whose database is a SQLite file, with its outputs
// and summary written where a runner would read them: golang-migrate runs
// for real, with no server to start.
func migrateJob(t *testing.T, o Options, files map[string]string) (j *job, outputs, summary string) {
	t.Helper()
	ws, tmp := t.TempDir(), t.TempDir()
	for name, body := range files {
		p := filepath.Join(ws, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	outputs, summary = filepath.Join(tmp, "outputs"), filepath.Join(tmp, "summary")
	for _, f := range []string{outputs, summary} {
		require.NoError(t, os.WriteFile(f, nil, 0o600))
	}
	var log bytes.Buffer
	a := action.NewContext([]string{"GITHUB_WORKSPACE=" + ws, "GITHUB_OUTPUT=" + outputs, "GITHUB_STEP_SUMMARY=" + summary}, &log)
	j = &job{a: a, o: o, exec: &commandtest.Recorder{}, ws: ws, dbURL: "sqlite://" + filepath.Join(tmp, "smoke.db")}
	j.Runner = steps.Runner[*job]{Logf: a.Logf}
	t.Cleanup(j.Cleanup)
	return j, outputs, summary
}

// withoutServer is the pipeline less the steps that need a PostgreSQL server.
func withoutServer() []steps.Step[*job] {
	return slices.DeleteFunc(slices.Clone(Pipeline), func(s steps.Step[*job]) bool {
		return slices.Contains([]string{"database", "schema-dump", "smoke"}, s.String())
	})
}

// TestSeamMigrateAndDownUp: every migration applied one at a time, each
// timed in the summary, then the new ones down and up again (check-down); the
// outputs say how many and which version.
func TestSeamMigrateAndDownUp(t *testing.T) {
	o := defaults(t)
	o.CheckDown = true
	j, outputs, summary := migrateJob(t, o, twoMigrations)
	start := time.Now()
	_, err := j.Run(context.Background(), withoutServer(), j, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"input: done ", "files: done 2 migration(s), 0 finding(s)", "migrate: done ", "down-up: done "}, outcomes(j.Results))
	j.r.start, j.r.steps = start, j.Results
	require.NoError(t, j.r.finish(nil))
	out, err := os.ReadFile(outputs)
	require.NoError(t, err)
	assert.Regexp(t, `applied<<\S+\n2\n`, string(out))
	assert.Regexp(t, `version<<\S+\n2\n`, string(out))
	sum, err := os.ReadFile(summary)
	require.NoError(t, err)
	assert.Contains(t, string(sum), "### deploykit migration-smoke: passed\n\n2 migration(s), no base-ref: every migration counts as new; 2 applied in ")
	assert.Regexp(t, `\| 1_users\.up\.sql \| \S+ \|\n\| 2_email\.up\.sql \| \S+ \|`, string(sum))
	assert.Contains(t, string(sum), "2 new migration(s) went down and up again.")
}

// TestSeamMigrationFailureNamesItsFile: the migration that fails is named with
// golang-migrate's error and the dirty version the database is left at; the
// ones before it were applied and are counted.
func TestSeamMigrationFailureNamesItsFile(t *testing.T) {
	files := map[string]string{"migrations/3_bad.up.sql": "ALTER TABLE nope ADD COLUMN x int;\n", "migrations/3_bad.down.sql": "SELECT 1;\n"}
	for k, v := range twoMigrations {
		files[k] = v
	}
	j, outputs, summary := migrateJob(t, defaults(t), files)
	start := time.Now()
	_, err := j.Run(context.Background(), withoutServer(), j, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "migration migrations/3_bad.up.sql failed: ")
	assert.Contains(t, err.Error(), "no such table: nope")
	assert.Contains(t, err.Error(), "; the database is left dirty at version 3")
	j.r.start, j.r.steps = start, j.Results
	ferr := j.r.fail(err)
	assert.Equal(t, action.ExitFailed, action.ExitCode(ferr))
	out, rerr := os.ReadFile(outputs)
	require.NoError(t, rerr)
	assert.Regexp(t, `applied<<\S+\n2\n`, string(out))
	sum, rerr := os.ReadFile(summary)
	require.NoError(t, rerr)
	assert.Contains(t, string(sum), "### deploykit migration-smoke: failed")
	assert.Contains(t, string(sum), "**Failed:** migration migrations/3_bad.up.sql failed: ")
	assert.Contains(t, string(sum), "| migrate | failed |")
}
