package backup_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/org/deploy-kit/internal/testenv"
)

// BenchmarkBackup: a pgbench database of scale 20 in a Postgres container, in the
// same run: `deploykit backup` (dump, parallel gzip, fsync, full verify, publish)
// against `docker exec … pg_dumpall | gzip > file` and against `docker exec …
// pg_dumpall > /dev/null` (the floor: the dump alone), plus deploykit's peak RSS;
// deploykit runs at its default level (1) and at gzip's usual 6.
// Targets: ≤ 1.15 × the floor, ≥ 1.5 × faster than | gzip, peak RSS ≤ 64 MiB.
//
// pgbench's own rows are blank-padded and compress so easily that gzip keeps up
// with the dump; "random-filler" gives every account 64 random hex characters, so
// that compression, not the dump, is the bottleneck of the gzip pipe.
func BenchmarkBackup(b *testing.B) {
	for _, data := range []struct{ name, extra string }{
		{"pgbench", ""},
		{"random-filler", "UPDATE pgbench_accounts SET filler = md5(random()::text) || md5(random()::text)"},
	} {
		// Set up here, not in the sub-benchmark, which b.Run calls more than once.
		name := fmt.Sprintf("dk-backup-bench-%s-%d", data.name, os.Getpid())
		benchDatabase(b, name, data.extra)
		b.Run(data.name, func(b *testing.B) { benchBackup(b, name) })
	}
}

// benchDatabase starts a Postgres container with pgbench's tables at scale 20.
func benchDatabase(b *testing.B, name, extra string) {
	pgContainer(b, name)
	out, err := exec.Command("docker", "exec", name, "/usr/lib/postgresql/15/bin/pgbench", "-i", "-q", "-s", "20", "-U", "postgres", "postgres").CombinedOutput()
	if err != nil {
		b.Fatalf("pgbench -i: %v: %s", err, out)
	}
	if extra != "" {
		containerSQL(b, name)("postgres", extra)
	}
}

func benchBackup(b *testing.B, name string) {

	var floor, gzipped, kit, fast time.Duration
	var fastSize int64
	var peakRSS int64
	var size int64
	for i := 0; i < b.N; i++ {
		start := time.Now()
		cmd := exec.Command("docker", "exec", name, "pg_dumpall", "-U", "postgres")
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		floor += time.Since(start)

		dir := b.TempDir()
		start = time.Now()
		out, err := exec.Command("bash", "-o", "pipefail", "-c", `docker exec "$0" pg_dumpall -U postgres | gzip > "$1"`, name, filepath.Join(dir, "dump.sql.gz")).CombinedOutput()
		if err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		gzipped += time.Since(start)

		start = time.Now()
		cmd = exec.Command(testenv.Deploykit(b), "backup", "--container", name, "--dir", filepath.Join(dir, "fast"), "--compression-level", "6")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		fast += time.Since(start)
		fastSize = dirSize(b, filepath.Join(dir, "fast"))

		start = time.Now()
		cmd = exec.Command(testenv.Deploykit(b), "backup", "--container", name, "--dir", filepath.Join(dir, "kit"))
		cmd.Env = append(os.Environ(), "GITHUB_ACTIONS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		kit += time.Since(start)
		if rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024; rss > peakRSS {
			peakRSS = rss
		}
		size = dirSize(b, filepath.Join(dir, "kit"))
	}
	n := float64(b.N)
	b.ReportMetric(floor.Seconds()/n, "floor-s")
	b.ReportMetric(gzipped.Seconds()/n, "pipe-gzip-s")
	b.ReportMetric(kit.Seconds()/n, "deploykit-s")
	b.ReportMetric(kit.Seconds()/floor.Seconds(), "x-floor")
	b.ReportMetric(gzipped.Seconds()/kit.Seconds(), "x-faster-than-gzip")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(size)/(1<<20), "backup-MiB")
	b.ReportMetric(fast.Seconds()/n, "level6-s")
	b.ReportMetric(fast.Seconds()/floor.Seconds(), "level6-x-floor")
	b.ReportMetric(float64(fastSize)/(1<<20), "level6-MiB")
}

// dirSize is the size of the one backup file in dir.
func dirSize(b *testing.B, dir string) int64 {
	matches, _ := filepath.Glob(filepath.Join(dir, "backup-*.sql.gz"))
	if len(matches) != 1 {
		b.Fatalf("want one backup in %s, found %v", dir, matches)
	}
	st, err := os.Stat(matches[0])
	if err != nil {
		b.Fatal(err)
	}
	return st.Size()
}

// BenchmarkOffsite: a 185 MB backup (a SQLite database of random blobs: it does
// not compress) copied offsite to a real S3 server on loopback (versitygw on a
// directory) — upload under a temporary key, server-side copy to its name, read
// back in full — against the floor, a cp of the same file into the server's
// backing directory, in the same run; plus deploykit's peak RSS for the whole
// backup. Targets: offsite step ÷ cp ≤ 2.0 (the proof reads it back once), peak
// RSS ≤ 64 MiB.
func BenchmarkOffsite(b *testing.B) {
	s := testenv.S3(b)
	src := filepath.Join(b.TempDir(), "random.db")
	db := sqliteDB(b, src, 10)
	if _, err := db.Exec("CREATE TABLE blob (b BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 185) INSERT INTO blob SELECT randomblob(1000000) FROM n"); err != nil {
		b.Fatal(err)
	}
	db.Close()
	offsiteRow := regexp.MustCompile(`(?m)^\| offsite \| done \| (\S+) \|`)
	var floor, offsite time.Duration
	var peakRSS, size int64
	for b.Loop() {
		dir := b.TempDir()
		cmd := exec.Command(testenv.Deploykit(b), "backup", "--engine", "sqlite", "--sqlite-path", src, "--dir", dir, "--min-size", "0",
			"--offsite-url", "s3://backups/bench", "--offsite-endpoint", s.Endpoint, "--offsite-path-style",
			"--offsite-access-key", testenv.S3AccessKey, "--offsite-secret-key", testenv.S3SecretKey)
		sum := filepath.Join(b.TempDir(), "summary")
		cmd.Env = append(os.Environ(), "GITHUB_STEP_SUMMARY="+sum)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		if rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024; rss > peakRSS {
			peakRSS = rss
		}
		data, _ := os.ReadFile(sum)
		m := offsiteRow.FindSubmatch(data)
		if m == nil {
			b.Fatalf("no offsite row in: %s", data)
		}
		d, err := time.ParseDuration(string(m[1]))
		if err != nil {
			b.Fatal(err)
		}
		offsite += d
		files, _ := filepath.Glob(filepath.Join(dir, "backup-*.sqlite.gz"))
		st, _ := os.Stat(files[0])
		size = st.Size()
		start := time.Now()
		if out, err := exec.Command("cp", files[0], filepath.Join(s.Dir, "backups", "floor-copy")).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		floor += time.Since(start)
	}
	b.ReportMetric(float64(size)/1e6, "MB-backup")
	b.ReportMetric(floor.Seconds()/float64(b.N), "s/cp")
	b.ReportMetric(offsite.Seconds()/float64(b.N), "s/offsite")
	b.ReportMetric(offsite.Seconds()/floor.Seconds(), "offsite/cp")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-MiB")
}
