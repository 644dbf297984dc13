package migrationsmoke

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/testenv"
)

// The checks on migration files, without a database: the sum file of deployed
// migrations, the lint rules (comments and strings do not count), and new
// versions that are not above the base branch's newest.

func sumLine(t *testing.T, body, name string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:]) + "  " + name
}

func TestSeamSumFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	write("1_users.up.sql", "CREATE TABLE users (id int);\n")
	write("2_email.up.sql", "ALTER TABLE users ADD COLUMN email text; -- edited since\n")
	sums := strings.Join([]string{
		"# deployed migrations",
		sumLine(t, "CREATE TABLE users (id int);\n", "1_users.up.sql"),
		sumLine(t, "ALTER TABLE users ADD COLUMN email text;\n", "*2_email.up.sql"),
		sumLine(t, "CREATE INDEX ON users (email);\n", "3_index.up.sql"),
		"",
		"not-a-sum 4_x.up.sql",
	}, "\n")
	write("migrations.sum", sums)

	findings, err := checkSums(filepath.Join(dir, "migrations.sum"), "db/migrations.sum")
	require.NoError(t, err)
	var got []string
	for _, f := range findings {
		assert.True(t, f.Error, f.Rule)
		got = append(got, f.Rule+" "+f.File)
	}
	assert.Equal(t, []string{"deployed-migration-changed 2_email.up.sql", "deployed-migration-removed 3_index.up.sql", "sum-file db/migrations.sum"}, got)
	assert.Contains(t, findings[0].Message, "this migration is deployed but its content changed (db/migrations.sum says ")
	assert.Equal(t, "restore it: production has run it", findings[1].Fix)
	assert.Equal(t, 6, findings[2].Line)

	_, err = checkSums(filepath.Join(dir, "missing.sum"), "missing.sum")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestSeamLintRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "5_changes.up.sql")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join([]string{
		"-- DROP TABLE in a comment is no finding",
		"/* nor in a block",
		"   DROP COLUMN x */",
		"INSERT INTO notes (body) VALUES ('-- not a comment; DROP TABLE inside a string');",
		"CREATE TABLE tags (id int);",
		"CREATE INDEX tags_id ON tags (id);",
		"CREATE INDEX notes_body ON notes (body);",
		"ALTER TABLE notes ALTER COLUMN body SET NOT NULL;",
		"ALTER TABLE notes ALTER COLUMN body TYPE varchar(200);",
		"ALTER TABLE notes RENAME COLUMN body TO text;",
		"ALTER TABLE notes DROP COLUMN legacy;",
		"DROP TABLE old_notes;",
		"CREATE INDEX CONCURRENTLY notes_text ON notes (text);",
	}, "\n")), 0o644))
	findings, err := lintFile(path, "migrations/5_changes.up.sql")
	require.NoError(t, err)
	var got []string
	for _, f := range findings {
		assert.False(t, f.Error, "lint findings are warnings unless lint: error")
		got = append(got, f.Rule+":"+strings.TrimPrefix(f.File, "migrations/")+":"+strconv.Itoa(f.Line))
	}
	assert.Equal(t, []string{
		"index-not-concurrent:5_changes.up.sql:7", // tags was created in the same file: no finding on line 6
		"set-not-null:5_changes.up.sql:8",
		"column-type:5_changes.up.sql:9",
		"rename:5_changes.up.sql:10",
		"drop-column:5_changes.up.sql:11",
		"drop-table:5_changes.up.sql:12",
		"concurrent-index-in-transaction:5_changes.up.sql:13",
	}, got)

	begin := filepath.Join(t.TempDir(), "6_index.up.sql")
	require.NoError(t, os.WriteFile(begin, []byte("BEGIN;\nCREATE INDEX CONCURRENTLY a ON b (c);\nCOMMIT;\n"), 0o644))
	findings, err = lintFile(begin, "6_index.up.sql")
	require.NoError(t, err)
	require.NotEmpty(t, findings)
	assert.Equal(t, "concurrent-index-in-transaction", findings[0].Rule)
	assert.Equal(t, "CREATE INDEX CONCURRENTLY cannot run inside BEGIN … COMMIT", findings[0].Message)

	_, err = lintFile(filepath.Join(t.TempDir(), "none.up.sql"), "none.up.sql")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestSeamNewSince(t *testing.T) {
	list := []Migration{{Version: 1, Up: "1_users.up.sql"}, {Version: 4, Up: "4_late.up.sql"}, {Version: 7, Up: "7_new.up.sql"}}
	fresh, findings := newSince(list, []string{"db/migrations/1_users.up.sql", "db/migrations/5_orders.up.sql", "db/migrations/README.md"}, "db/migrations")
	assert.Equal(t, []Migration{list[1], list[2]}, fresh)
	require.Len(t, findings, 1)
	assert.Equal(t, Finding{File: "db/migrations/4_late.up.sql", Rule: "version-not-newest", Error: true,
		Message: "new migration 4 is not above the base branch's newest, 5: golang-migrate would skip it in production", Fix: "renumber it above 5"}, findings[0])
}

// Run end to end without a database: a dry run reports and writes its
// outputs; a changed deployed migration fails before any database starts,
// with the finding in the summary.
func TestSeamRunReports(t *testing.T) {
	ws := t.TempDir()
	for name, body := range twoMigrations {
		require.NoError(t, os.MkdirAll(filepath.Join(ws, filepath.Dir(name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(ws, name), []byte(body), 0o644))
	}
	environ, output, summary := testenv.Runner{Workspace: ws}.Env(t)
	var log bytes.Buffer
	a := action.NewContext(environ, &log)
	a.Spec = &Spec
	o := defaults(t)
	o.DryRun, o.BaseRef = true, ""
	require.NoError(t, Run(context.Background(), a, o), log.String())
	data, err := os.ReadFile(summary)
	require.NoError(t, err)
	assert.Contains(t, string(data), "### deploykit migration-smoke: passed\n\n2 migration(s), ")
	assert.Contains(t, string(data), "| files | done | ")
	out, err := os.ReadFile(output)
	require.NoError(t, err)
	assert.Contains(t, string(out), "applied<<")

	require.NoError(t, os.WriteFile(filepath.Join(ws, "migrations.sum"), []byte(sumLine(t, "something else\n", "migrations/1_users.up.sql")+"\n"), 0o644))
	o.DryRun, o.SumFile = false, "migrations.sum"
	err = Run(context.Background(), a, o)
	assert.Equal(t, action.ExitFailed, action.ExitCode(err))
	assert.ErrorContains(t, err, "check(s) failed before any migration ran")
	data, err = os.ReadFile(summary)
	require.NoError(t, err)
	assert.Contains(t, string(data), "### deploykit migration-smoke: failed")
	assert.Contains(t, string(data), "| **error** deployed-migration-changed: this migration is deployed but its content changed")
}
