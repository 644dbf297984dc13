package rollback

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/golang-migrate/migrate/v4/database/sqlite" // sqlite:// URLs: a real database file, no server
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/steps"
)

// The schema step against a real SQLite database's schema_migrations, read
// by golang-migrate as for PostgreSQL: the target's migrations against the
// database's version.

// migrations writes up and down files of versions into a new directory dir/sub.
func migrations(t *testing.T, dir string, names ...string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "migrations"), 0o755))
	for _, n := range names {
		for _, way := range []string{"up", "down"} {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "migrations", n+"."+way+".sql"), []byte("SELECT 1;\n"), 0o644))
		}
	}
}

// schemaAt is a SQLite database whose schema_migrations says version (none
// when version is negative), dirty or not.
func schemaAt(t *testing.T, version int, dirty bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE schema_migrations (version uint64, dirty bool); CREATE UNIQUE INDEX version_unique ON schema_migrations (version)`)
	require.NoError(t, err)
	if version >= 0 {
		_, err = db.Exec(`INSERT INTO schema_migrations (version, dirty) VALUES (?, ?)`, version, dirty)
		require.NoError(t, err)
	}
	return "sqlite://" + path
}

// runSchema runs the step as the pipeline does and returns its row and log.
func runSchema(t *testing.T, st schemaStep) (steps.Result, string, error) {
	t.Helper()
	var log bytes.Buffer
	a := action.NewContext(nil, &log)
	target, current := t.TempDir(), t.TempDir()
	migrations(t, target, "1_users", "2_orders")
	migrations(t, current, "1_users", "2_orders", "3_drop_legacy", "4_index_orders")
	s := &deploy.State{A: a, Workspace: current, Version: "1.4.0"}
	s.Git.Dir = target
	s.Runner = steps.Runner[*deploy.State]{Logf: a.Logf}
	err := s.One(context.Background(), st, s)
	require.Len(t, s.Results, 1)
	return s.Results[0], log.String(), err
}

func TestSeamSchemaStep(t *testing.T) {
	row, _, err := runSchema(t, schemaStep{migrations: "migrations"})
	require.NoError(t, err)
	assert.Equal(t, "skipped", row.Outcome)
	assert.Equal(t, "set database-url and migrations-path to check the database schema against the target", row.Detail)

	row, _, err = runSchema(t, schemaStep{migrations: "migrations", url: schemaAt(t, -1, false)})
	require.NoError(t, err)
	assert.Equal(t, "the database has no migrations applied", row.Detail)

	row, _, err = runSchema(t, schemaStep{migrations: "migrations", url: schemaAt(t, 2, false)})
	require.NoError(t, err)
	assert.Equal(t, "database at migration 2; 1.4.0 knows migrations up to 2", row.Detail)

	// Ahead: the migrations the target does not know are named from the
	// current checkout.
	ahead := "the database is at migration 4, ahead of 1.4.0, whose newest migration is 2: migrations 3 (drop_legacy), 4 (index_orders) would stay applied under code that does not know them"
	_, _, err = runSchema(t, schemaStep{migrations: "migrations", url: schemaAt(t, 4, false)})
	assert.Equal(t, action.ExitFailed, action.ExitCode(err))
	assert.EqualError(t, err, ahead+". Migrate the database down to 2 first (migrate -path migrations -database <url> goto 2), or set allow-schema-ahead: true if those migrations are backward compatible")

	row, log, err := runSchema(t, schemaStep{migrations: "migrations", url: schemaAt(t, 4, false), allowAhead: true})
	require.NoError(t, err)
	assert.Equal(t, "WARNING: "+ahead+"; going ahead because allow-schema-ahead is true", row.Detail)
	assert.Contains(t, log, "warning: "+ahead+" (allow-schema-ahead: true)")

	// A version no checkout has a file of is named by its range.
	_, _, err = runSchema(t, schemaStep{migrations: "migrations", url: schemaAt(t, 9, false)})
	assert.ErrorContains(t, err, "the database is at migration 9, ahead of 1.4.0, whose newest migration is 2: migrations 3 (drop_legacy), 4 (index_orders) would stay")

	_, _, err = runSchema(t, schemaStep{migrations: "migrations", url: schemaAt(t, 2, true)})
	assert.EqualError(t, err, "the database is dirty at migration 2: a migration failed half-way. Repair the schema, then record the version that is really applied (migrate force N) before rolling back")

	_, _, err = runSchema(t, schemaStep{migrations: "migrations", url: "nosuchdriver://x"})
	assert.Equal(t, action.ExitFailed, action.ExitCode(err))
	assert.ErrorContains(t, err, "schema check: opening the database: ")
}

// Refused before anything: the confirmation word, and an image template that
// would not name one pinned image.
func TestSeamRollbackRefusesBadInput(t *testing.T) {
	a, o := seamContext(t)
	o.Confirm = "rollback"
	err := Run(context.Background(), a, o)
	assert.Equal(t, action.ExitUsage, action.ExitCode(err))
	assert.EqualError(t, err, `input confirm: "rollback" is not ROLLBACK: type ROLLBACK, in capitals, to confirm the rollback`)

	o.Confirm = Confirmation
	for tmpl, want := range map[string]string{
		"registry.example.com/shop":             `input image-template: "registry.example.com/shop" has no tag: use {sha}, {short}, {tag} or {version}, e.g. registry/app:sha-{short}`,
		"registry.example.com/shop:latest":      `input image-template: "registry.example.com/shop:latest" has no placeholder: use {sha}, {short}, {tag} or {version}`,
		"Registry.example.com/SHOP:{tag}":       `input image-template: "Registry.example.com/SHOP:{tag}" is not an image reference: `,
		"registry.example.com/shop:sha-{short}": "",
		"registry.example.com/shop:{version}":   "",
	} {
		err := checkTemplate(tmpl)
		if want == "" {
			assert.NoError(t, err, tmpl)
			continue
		}
		assert.Equal(t, action.ExitUsage, action.ExitCode(err), tmpl)
		assert.ErrorContains(t, err, want, tmpl)
		o.ImageTemplate = tmpl
		assert.Equal(t, err, Run(context.Background(), a, o), "Run refuses it before anything")
	}
}
