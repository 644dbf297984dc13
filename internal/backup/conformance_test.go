package backup_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	bk "github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/testenv"
)

// The conformance suite every backup engine passes (ARCHITECTURE.md, "Variants"):
// a backup made through the shared pipeline with its restore check, whose file
// has the SHA-256 reported and its .sha256 beside it; the restore side verifies
// it, refuses a copy cut before the dump's end (whose checksum is right), and
// restores it over damaged data row for row; the source's description never
// holds a password.

// conformanceFixture is one engine's database: the backup options that reach
// it, a fingerprint of its rows, and a way to damage them.
type conformanceFixture struct {
	engine   string
	docker   bool
	password string
	setup    func(t *testing.T) (o bk.Options, fingerprint func() string, damage func())
}

var conformanceFixtures = map[string]conformanceFixture{
	"sqlite": {engine: "sqlite", setup: func(t *testing.T) (bk.Options, func() string, func()) {
		path := filepath.Join(t.TempDir(), "app.db")
		sqliteDB(t, path, 500).Close()
		// A restore replaces the file (its services are stopped meanwhile): each
		// look opens it anew, as a restarted app does.
		open := func() *sql.DB {
			db, err := sql.Open("sqlite", "file:"+path)
			require.NoError(t, err)
			return db
		}
		fp := func() string {
			db := open()
			defer db.Close()
			var n, total int
			require.NoError(t, db.QueryRow(`SELECT count(*), (SELECT total FROM counter) FROM items`).Scan(&n, &total))
			var rows string
			require.NoError(t, db.QueryRow(`SELECT group_concat(id || ':' || body, '|') FROM (SELECT * FROM items ORDER BY id)`).Scan(&rows))
			sum := sha256.Sum256([]byte(rows))
			return fmt.Sprintf("%d %d %x", n, total, sum)
		}
		damage := func() {
			db := open()
			defer db.Close()
			_, err := db.Exec(`DELETE FROM items WHERE id % 3 = 0; UPDATE counter SET total = 0`)
			require.NoError(t, err)
		}
		return bk.Options{Engine: "sqlite", SQLitePath: path}, fp, damage
	}},
	"postgres": {engine: "postgres", docker: true, setup: func(t *testing.T) (bk.Options, func() string, func()) {
		name := fmt.Sprintf("dk-conformance-pg-%d", os.Getpid())
		pgContainer(t, name)
		q := containerSQL(t, name)
		seedPostgres(q, true)
		return bk.Options{Engine: "postgres", Container: name},
			func() string { return pgFingerprint(q, "postgres", "shop") },
			func() { q("shop", "DELETE FROM orders WHERE id % 2 = 0; DROP TABLE customers CASCADE") }
	}},
	"postgres by URL": {engine: "postgres", setup: func(t *testing.T) (bk.Options, func() string, func()) {
		serverURL := testenv.Postgres(t)
		q := urlSQL(t, serverURL)
		seedPostgres(q, true)
		shopURL := strings.Replace(serverURL, "/postgres?", "/shop?", 1)
		return bk.Options{Engine: "postgres", DatabaseURL: shopURL},
			func() string { return pgFingerprint(q, "shop") },
			func() { q("shop", "UPDATE customers SET name = 'gone'; DELETE FROM orders") }
	}},
	"mariadb": {engine: "mariadb", docker: true, password: mariadbRootPassword, setup: func(t *testing.T) (bk.Options, func() string, func()) {
		name := fmt.Sprintf("dk-conformance-mariadb-%d", os.Getpid())
		mariadbContainer(t, name)
		q := mariadbSQL(t, name)
		seedMariaDB(q)
		return bk.Options{Engine: "mariadb", Container: name, DBPassword: mariadbRootPassword},
			func() string { return mariadbFingerprint(q, "shop") },
			func() { q("shop", "DELETE FROM orders WHERE id % 2 = 0; UPDATE customers SET name = 'gone'") }
	}},
	"mysql": {engine: "mysql", docker: true, password: mariadbRootPassword, setup: func(t *testing.T) (bk.Options, func() string, func()) {
		name := fmt.Sprintf("dk-conformance-mysql-%d", os.Getpid())
		mariadbContainer(t, name) // MySQL's tool names, which MariaDB ships too
		q := mariadbSQL(t, name)
		seedMariaDB(q)
		return bk.Options{Engine: "mysql", Container: name, DBPassword: mariadbRootPassword},
			func() string { return mariadbFingerprint(q, "shop") },
			func() { q("shop", "DROP TABLE orders") }
	}},
}

// TestEveryEngineHasAConformanceFixture: an engine added to bk.Engines
// without a fixture here fails, so none skips the suite.
func TestEveryEngineHasAConformanceFixture(t *testing.T) {
	covered := map[string]bool{}
	for _, f := range conformanceFixtures {
		covered[f.engine] = true
	}
	for _, name := range slices.Sorted(maps.Keys(bk.Engines)) {
		assert.True(t, covered[name], "engine %s has no conformance fixture", name)
	}
}

func TestEngineConformance(t *testing.T) {
	for _, name := range slices.Sorted(maps.Keys(conformanceFixtures)) {
		f := conformanceFixtures[name]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if f.docker {
				testenv.RequireDocker(t)
			}
			o, fingerprint, damage := f.setup(t)
			want := fingerprint()
			var log bytes.Buffer
			a := action.NewContext(append(os.Environ(), "GITHUB_RUN_ID="+runID(t)), &log)
			ctx := context.Background()

			o.Dir, o.Prefix, o.Level, o.MinSize, o.RestoreCheck = t.TempDir(), "conformance", 1, 1, true
			r, err := bk.Make(ctx, a, o)
			require.NoError(t, err, "%s", log.String())
			data, err := os.ReadFile(r.Path)
			require.NoError(t, err)
			sum := sha256.Sum256(data)
			assert.Equal(t, hex.EncodeToString(sum[:]), r.SHA256)
			assert.Equal(t, int64(len(data)), r.Size)
			side, err := os.ReadFile(r.Path + ".sha256")
			require.NoError(t, err)
			assert.Equal(t, r.SHA256+"  "+filepath.Base(r.Path)+"\n", string(side))
			assert.Contains(t, log.String(), "==> restore-check")

			target, err := bk.NewLiveDB(a, o)
			require.NoError(t, err)
			defer target.Close()
			if f.password != "" {
				assert.NotContains(t, target.Source()+log.String(), f.password)
			}
			got, _, err := target.Verify(r.Path)
			require.NoError(t, err)
			assert.Equal(t, r.SHA256, got)

			cut := truncatedCopy(t, r.Path)
			_, _, err = target.Verify(cut)
			require.Error(t, err, "a dump cut before its end, with a right checksum, is refused")

			counts, err := target.Counts(ctx)
			require.NoError(t, err)
			require.NotEmpty(t, counts, "the live database's row counts, table by table")
			damage()
			require.NotEqual(t, want, fingerprint())
			_, err = target.Restore(ctx, r.Path)
			require.NoError(t, err, "%s", log.String())
			assert.Equal(t, want, fingerprint(), "every row is back")
			after, err := target.Counts(ctx)
			require.NoError(t, err)
			assert.Equal(t, counts, after)
			left, err := target.Leftovers(ctx)
			require.NoError(t, err)
			assert.Empty(t, left, "a finished restore leaves nothing beside the database")
			_, err = target.Schemas(ctx)
			require.NoError(t, err, "no schema_migrations anywhere is no state, not an error")
		})
	}
}

// truncatedCopy is the backup without the last tenth of its dump, compressed
// again, with a .sha256 that matches it: only the dump's own ending can tell.
func truncatedCopy(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	raw, err := io.ReadAll(zr)
	require.NoError(t, err)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, err = zw.Write(raw[:len(raw)*9/10])
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	cut := filepath.Join(t.TempDir(), filepath.Base(path))
	require.NoError(t, os.WriteFile(cut, out.Bytes(), 0o600))
	sum := sha256.Sum256(out.Bytes())
	require.NoError(t, os.WriteFile(cut+".sha256", []byte(hex.EncodeToString(sum[:])+"  "+filepath.Base(cut)+"\n"), 0o600))
	return cut
}
