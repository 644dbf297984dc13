package migrationsmoke_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// repo is a checkout with a migrations directory.
type repo struct {
	*testapp.App
	dir string // the migrations directory
}

func newRepo(t *testing.T) *repo { return newRepoTB(t) }

func newRepoTB(t testing.TB) *repo {
	a := testapp.New(t, "1.0.0")
	r := &repo{App: a, dir: filepath.Join(a.Dir, "migrations")}
	require.NoError(t, os.MkdirAll(r.dir, 0o755))
	return r
}

func (r *repo) write(t testing.TB, name, sql string) {
	require.NoError(t, os.WriteFile(filepath.Join(r.dir, name), []byte(sql), 0o644))
}

// realistic writes n migrations of the kinds real projects have.
func (r *repo) realistic(t *testing.T, n int) { r.realisticTB(t, n) }

func (r *repo) realisticTB(t testing.TB, n int) {
	r.write(t, "000001_users.up.sql", "CREATE TABLE users (\n  id bigserial PRIMARY KEY,\n  email text NOT NULL\n);\nCREATE TABLE audit (id bigserial PRIMARY KEY, at timestamptz DEFAULT now());\n")
	r.write(t, "000001_users.down.sql", "DROP TABLE audit;\nDROP TABLE users;\n")
	r.write(t, "000002_touch.up.sql", `CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- a comment; with semicolons; inside
  NEW.at := now();
  RETURN NEW;
END;
$$;
CREATE TRIGGER audit_touch BEFORE UPDATE ON audit FOR EACH ROW EXECUTE FUNCTION touch();
`)
	r.write(t, "000002_touch.down.sql", "DROP TRIGGER audit_touch ON audit;\nDROP FUNCTION touch();\n")
	r.write(t, "000003_users_email.up.sql", "CREATE INDEX CONCURRENTLY users_email ON users (email);\n")
	r.write(t, "000003_users_email.down.sql", "DROP INDEX CONCURRENTLY users_email;\n")
	for i := 4; i <= n; i++ {
		r.write(t, fmt.Sprintf("%06d_table_%d.up.sql", i, i), fmt.Sprintf("CREATE TABLE t%d (id int PRIMARY KEY, note text);\nINSERT INTO t%d VALUES (1, 'it''s; fine');\n", i, i))
		r.write(t, fmt.Sprintf("%06d_table_%d.down.sql", i, i), fmt.Sprintf("DROP TABLE t%d;\n", i))
	}
}

func TestCleanMigrationsApply(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	r := newRepo(t)
	r.realistic(t, 55)
	r.write(t, "README.md", "not a migration, and golang-migrate rightly ignores it")
	require.NoError(t, os.WriteFile(filepath.Join(r.Dir, "smoke.sql"), []byte("SELECT count(*) FROM users;\nINSERT INTO audit DEFAULT VALUES;\n"), 0o644))

	run := r.Raw("migration-smoke", "--path", "migrations", "--database-url", url, "--smoke-sql", "smoke*.sql", "--check-down")
	require.Equal(t, 0, run.Code, run.Log)
	assert.Equal(t, "55", run.Outputs["applied"])
	assert.Equal(t, "55", run.Outputs["version"])
	assert.Equal(t, "0", run.Outputs["findings"])
	assert.Contains(t, run.Summary, "### deploykit migration-smoke: passed")
	assert.Contains(t, run.Summary, "| 000002_touch.up.sql | ")
	assert.Contains(t, run.Summary, "55 new migration(s) went down and up again")
	assert.Contains(t, run.Log, "smoke SQL smoke.sql: ok")
	assert.NotContains(t, run.Log, url, "the database URL is masked")
}

func TestChecksBeforeApplying(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, r *repo) []string
		want  string
	}{
		{"duplicate version", func(t *testing.T, r *repo) []string {
			r.realistic(t, 5)
			r.write(t, "000005_other_branch.up.sql", "CREATE TABLE other (id int);")
			return nil
		}, "migrations/000005_"},
		{"ignored file", func(t *testing.T, r *repo) []string {
			r.realistic(t, 5)
			r.write(t, "6_add_thing.sql", "CREATE TABLE thing (id int);")
			return nil
		}, "migrations/6_add_thing.sql: golang-migrate ignores this file: its name is not <version>_<name>.up.sql or .down.sql"},
		{"edited deployed migration", func(t *testing.T, r *repo) []string {
			r.realistic(t, 5)
			sum := "0000000000000000000000000000000000000000000000000000000000000000  migrations/000004_table_4.up.sql\n"
			require.NoError(t, os.WriteFile(filepath.Join(r.Dir, "migrations.sum"), []byte(sum), 0o644))
			return []string{"--sum-file", "migrations.sum"}
		}, "migrations/000004_table_4.up.sql: this migration is deployed but its content changed (migrations.sum says 000000000000…"},
		{"lower than the base branch", func(t *testing.T, r *repo) []string {
			// feature branches off at 3 and adds 4; meanwhile main got 4 and 5.
			r.realistic(t, 3)
			r.Git("add", "-A")
			r.Git("commit", "-q", "-m", "migrations up to 3")
			r.Git("checkout", "-q", "-b", "feature")
			r.write(t, "000004_feature_late.up.sql", "CREATE TABLE late (id int);")
			r.Git("add", "-A")
			r.Git("commit", "-q", "-m", "feature adds 4")
			r.Git("checkout", "-q", "main")
			r.realistic(t, 5)
			r.Git("add", "-A")
			r.Git("commit", "-q", "-m", "main adds 4 and 5")
			r.Git("checkout", "-q", "feature")
			return []string{"--base-ref", "main"}
		}, "migrations/000004_feature_late.up.sql: new migration 4 is not above the base branch's newest, 5: golang-migrate would skip it in production"},
		{"lint error", func(t *testing.T, r *repo) []string {
			r.realistic(t, 5)
			r.write(t, "000006_rename.up.sql", "-- rename for clarity\nALTER TABLE users\n  RENAME COLUMN email TO mail;\n")
			return []string{"--lint", "error"}
		}, "migrations/000006_rename.up.sql:3: RENAME breaks the running version, which still uses the old name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t)
			args := append([]string{"migration-smoke", "--path", "migrations", "--database-url", url}, tc.setup(t, r)...)
			run := r.Raw(args...)
			assert.Equal(t, 1, run.Code, run.Log)
			assert.Contains(t, run.Log, tc.want)
			assert.Contains(t, run.Log, "check(s) failed before any migration ran")
			assert.Equal(t, "0", run.Outputs["applied"], "nothing was applied")
		})
	}
}

func TestFailuresNameTheFile(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, r *repo) []string
		want  []string
	}{
		{"column dropped in production", func(t *testing.T, r *repo) []string {
			// Production is at 30, where users.legacy was dropped long ago; 31 still uses it.
			for i := 1; i <= 30; i++ {
				r.write(t, fmt.Sprintf("%06d_step_%d.up.sql", i, i), "SELECT 1;")
			}
			r.write(t, "000031_backfill.up.sql", "UPDATE users SET email = legacy;")
			dump := "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n" +
				"CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);\n" +
				"\\restrict abc123\n" +
				"INSERT INTO schema_migrations VALUES (30, false);\n"
			require.NoError(t, os.WriteFile(filepath.Join(r.Dir, "schema.sql"), []byte(dump), 0o644))
			return []string{"--schema-dump", "schema.sql"}
		}, []string{"migration migrations/000031_backfill.up.sql failed: ", `column "legacy" does not exist`, "the database is left dirty at version 31"}},
		{"failing smoke SQL", func(t *testing.T, r *repo) []string {
			r.realistic(t, 5)
			require.NoError(t, os.WriteFile(filepath.Join(r.Dir, "smoke.sql"), []byte("SELECT nope FROM users;"), 0o644))
			return []string{"--smoke-sql", "smoke.sql"}
		}, []string{"smoke SQL smoke.sql failed: ", `column "nope" does not exist`}},
		{"broken down migration", func(t *testing.T, r *repo) []string {
			r.realistic(t, 5)
			r.write(t, "000005_table_5.down.sql", "DROP TABLE no_such_table;")
			return []string{"--check-down"}
		}, []string{"down migration 000005_table_5.down.sql failed: ", `table "no_such_table" does not exist`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t)
			args := append([]string{"migration-smoke", "--path", "migrations", "--database-url", url}, tc.setup(t, r)...)
			run := r.Raw(args...)
			assert.Equal(t, 1, run.Code, run.Log)
			for _, w := range tc.want {
				assert.Contains(t, run.Log, w)
			}
			assert.Contains(t, run.Summary, "### deploykit migration-smoke: failed")
		})
	}
}

func TestLintWarnings(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	r := newRepo(t)
	r.realistic(t, 4)
	r.write(t, "000005_risky.up.sql", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\nCREATE INDEX users_id ON users (id);\nALTER TABLE t4 DROP COLUMN note;\nALTER TABLE t4 ALTER COLUMN id TYPE bigint;\n")
	r.write(t, "000006_fresh.up.sql", "CREATE TABLE fresh (id int);\nCREATE INDEX fresh_id ON fresh (id);\n")
	run := r.Raw("migration-smoke", "--path", "migrations", "--database-url", url)
	require.Equal(t, 0, run.Code, run.Log)
	for _, w := range []string{
		"::warning file=migrations/000005_risky.up.sql,line=1::SET NOT NULL scans the whole table",
		"::warning file=migrations/000005_risky.up.sql,line=2::CREATE INDEX on an existing table blocks writes to users",
		"::warning file=migrations/000005_risky.up.sql,line=3::DROP COLUMN",
		"::warning file=migrations/000005_risky.up.sql,line=4::changing a column's type rewrites the table",
	} {
		assert.Contains(t, run.Log, w)
	}
	assert.NotContains(t, run.Log, "fresh_id", "an index on a table created in the same migration is fine")
	assert.Equal(t, "4", run.Outputs["findings"])
	assert.True(t, strings.Contains(run.Summary, "| warning index-not-concurrent: "), run.Summary)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	for args, want := range map[string]string{
		"--path nope":               "input path: nope is not a directory of migrations in the workspace",
		"--smoke-sql none*.sql":     "input smoke-sql: none*.sql matches no file",
		"--schema-dump missing.sql": "input schema-dump: missing.sql does not exist",
		"--base-ref --output=x":     `input base-ref: "--output=x" is not a branch, tag or commit name`,
		"--lint strict":             `input lint: invalid value "strict": want one of off, warn, error`,
	} {
		run := r.Raw(append([]string{"migration-smoke"}, strings.Fields(args)...)...)
		assert.Equal(t, 2, run.Code, run.Log)
		assert.Contains(t, run.Log, "::error::"+want)
	}
}

func TestLintConcurrentIndexInATransaction(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.realistic(t, 4)
	r.write(t, "000005_index.up.sql", "BEGIN;\nCREATE INDEX CONCURRENTLY t4_note ON t4 (note);\nCOMMIT;\n")
	run := r.Raw("migration-smoke", "--path", "migrations", "--dry-run", "--lint", "error")
	assert.Equal(t, 1, run.Code, run.Log)
	assert.Contains(t, run.Log, "::error file=migrations/000005_index.up.sql,line=1::CREATE INDEX CONCURRENTLY cannot run inside BEGIN … COMMIT")
	assert.Contains(t, run.Log, "::error file=migrations/000005_index.up.sql,line=2::CREATE INDEX CONCURRENTLY cannot run inside a transaction")
}
