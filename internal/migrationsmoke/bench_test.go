package migrationsmoke_test

import (
	"database/sql"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

// BenchmarkMigrationSmoke: 200 generated migrations, `deploykit migration-smoke`
// (fresh database, checks, every migration) against applying the same files with
// `psql -f` one by one into a fresh database, same server, same run. Reported: ns
// per run of each and their ratio (target ≤ 1.3).
func BenchmarkMigrationSmoke(b *testing.B) {
	serverURL := testenv.Postgres(b)
	psql := testenv.RequireTool(b, "psql")
	r := newRepoTB(b)
	r.realisticTB(b, 200)
	files, err := filepath.Glob(filepath.Join(r.dir, "*.up.sql"))
	require.NoError(b, err)

	admin, err := sql.Open("postgres", serverURL)
	require.NoError(b, err)
	defer admin.Close()
	var kit, plain time.Duration
	i := 0
	for b.Loop() {
		i++
		start := time.Now()
		run := r.Raw("migration-smoke", "--path", "migrations", "--database-url", serverURL, "--lint", "off")
		require.Equal(b, 0, run.Code, run.Log)
		kit += time.Since(start)

		start = time.Now()
		name := fmt.Sprintf("bench_psql_%d", i)
		_, err := admin.Exec("CREATE DATABASE " + name)
		require.NoError(b, err)
		u, _ := url.Parse(serverURL)
		u.Path = "/" + name
		for _, f := range files {
			out, err := exec.Command(psql, u.String(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", f).CombinedOutput()
			require.NoError(b, err, string(out))
		}
		plain += time.Since(start)
		_, _ = admin.Exec("DROP DATABASE " + name)
	}
	b.ReportMetric(float64(kit.Nanoseconds())/float64(i), "deploykit-ns/run")
	b.ReportMetric(float64(plain.Nanoseconds())/float64(i), "psql-ns/run")
	b.ReportMetric(float64(kit)/float64(plain), "ratio")
}

// BenchmarkFreshDatabase: time to a ready, empty database on the URL path.
func BenchmarkFreshDatabase(b *testing.B) {
	serverURL := testenv.Postgres(b)
	r := newRepoTB(b)
	r.realisticTB(b, 1)
	for b.Loop() {
		run := r.Raw("migration-smoke", "--path", "migrations", "--database-url", serverURL, "--lint", "off")
		require.Equal(b, 0, run.Code, run.Log)
	}
}
