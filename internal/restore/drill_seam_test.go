package restore

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/testenv"
)

// drillStack is the app's stack for a drill: db (PostgreSQL) and app, which
// depends on it, with one migration.
const drillStack = `name: shop
services:
  db:
    image: postgres:16
  app:
    image: registry.example.com/shop:1.0.0
    depends_on: [db]
    ports: ["8080:8080"]
`

// pgClusterDump writes a gzipped pg_dumpall file (what the backup action makes
// of a PostgreSQL container) and its .sha256 into dir.
func pgClusterDump(t *testing.T, dir string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write([]byte("--\n-- PostgreSQL database cluster dump\n--\n\nCREATE ROLE app;\n\n--\n-- PostgreSQL database cluster dump complete\n--\n\n"))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	file := filepath.Join(dir, "db-2026-12-01T000000Z.sql.gz")
	require.NoError(t, os.WriteFile(file, b.Bytes(), 0o600))
	sum := sha256.Sum256(b.Bytes())
	require.NoError(t, os.WriteFile(file+".sha256", []byte(hex.EncodeToString(sum[:])+"  "+filepath.Base(file)+"\n"), 0o600))
	return file
}

// drillSeam is a drill's options and context in a workspace holding the
// stack and its migrations, with no engine reachable: what a dry run and the
// refusals need none.
func drillSeam(t *testing.T) (Options, *action.Context, *bytes.Buffer, string) {
	t.Helper()
	ws := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ws, "compose.yaml"), []byte(drillStack), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "migrations"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "migrations", "1_init.up.sql"), []byte("CREATE TABLE notes (id int);\n"), 0o644))
	environ, _, _ := testenv.Runner{RunID: "7"}.Env(t, "GITHUB_WORKSPACE="+ws, "DOCKER_HOST=unix://"+filepath.Join(t.TempDir(), "no-engine.sock"))
	var log bytes.Buffer
	a := action.NewContext(environ, &log)
	a.Spec = &Spec
	var o Options
	action.Defaults(&Spec, &o)
	o.Drill.Enabled, o.Drill.ComposeFile, o.Drill.DBService, o.Drill.AppService = true, "compose.yaml", "db", "app"
	o.Drill.MigrationsPath, o.Drill.AppPort = "migrations", 8080
	o.Engine, o.Dir = "postgres", t.TempDir()
	o.File = pgClusterDump(t, o.Dir)
	o.HistoryFile = filepath.Join(t.TempDir(), "history.log")
	return o, a, &log, ws
}

// TestDrillDryRunChecksEverythingFirst: a drill's dry run reads the stack,
// plans the copy (its own project, no published port), finds and verifies the
// backup, and says what it would do; nothing is started or recorded.
func TestDrillDryRunChecksEverythingFirst(t *testing.T) {
	o, a, log, _ := drillSeam(t)
	o.DryRun = true
	require.NoError(t, Run(context.Background(), a, o), log.String())
	assert.Contains(t, log.String(), "dry run: would start a copy of shop as project shop-drill-")
	assert.Contains(t, log.String(), ", restore "+o.File+" into db, start app and check it, then remove the copy")
	assert.Contains(t, log.String(), "matches "+filepath.Base(o.File)+".sha256")
	assert.NoFileExists(t, o.HistoryFile)
}

// TestDrillRefusesBeforeAnything: what a drill cannot do is refused with exit
// 2 before any backup is read or anything started.
func TestDrillRefusesBeforeAnything(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(o *Options, ws string)
		want string
	}{
		{"sqlite", func(o *Options, _ string) { o.Engine = "sqlite" }, "input drill: a drill restores into the stack's database service; engine sqlite has none"},
		{"no app-port", func(o *Options, _ string) { o.HealthURL, o.Drill.AppPort = "http://127.0.0.1:8080/health", 0 }, "input app-port: set it for the drill's health check"},
		{"no compose file", func(o *Options, _ string) { o.Drill.ComposeFile = "gone.yaml" }, "input compose-file: gone.yaml does not exist"},
		{"no such service", func(o *Options, _ string) { o.Drill.AppService = "web" }, "service web is not in "},
		{"container_name", func(_ *Options, ws string) {
			require.NoError(t, os.WriteFile(filepath.Join(ws, "compose.yaml"), []byte(strings.Replace(drillStack, "    image: postgres:16\n", "    image: postgres:16\n    container_name: db\n", 1)), 0o644))
		}, "service db has container_name db: a copy of the stack cannot run beside it"},
		{"no migrations dir", func(o *Options, _ string) { o.Drill.MigrationsPath = "nope" }, "input migrations-path: nope is not a directory"},
		{"no migrations", func(o *Options, ws string) {
			require.NoError(t, os.MkdirAll(filepath.Join(ws, "empty"), 0o755))
			o.Drill.MigrationsPath = "empty"
		}, "input migrations-path: empty holds no migrations"},
		{"a corrupt backup", func(o *Options, _ string) {
			require.NoError(t, os.WriteFile(o.File+".sha256", []byte(strings.Repeat("0", 64)+"\n"), 0o600))
		},
			"the backup cannot be restored: "},
		{"no backup", func(o *Options, _ string) { o.File = "latest"; o.Prefix = "none" }, "input file: no backup named none-<timestamp>.sql.gz in "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, a, log, ws := drillSeam(t)
			tc.set(&o, ws)
			err := Run(context.Background(), a, o)
			require.Error(t, err, log.String())
			assert.Equal(t, action.ExitUsage, action.ExitCode(err), err.Error())
			assert.Contains(t, err.Error(), tc.want)
			assert.NoFileExists(t, o.HistoryFile)
		})
	}
}
