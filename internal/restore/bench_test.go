package restore_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/org/deploy-kit/internal/testenv"
)

var restoredIn = regexp.MustCompile(`(?m)^    restored in (\S+)$`)

// BenchmarkRestore: a pgbench database of scale 20 (a 185 MB dump) in a Postgres
// container, backed up once; then, in the same run, `deploykit restore` of that
// backup (safety backup, clear, replay) against the runbook's restore over the
// live cluster (drop and recreate the database, then `zcat file | docker exec -i
// … psql`), plus deploykit's peak RSS. The restore phase alone (clear and replay)
// is the like-for-like figure; the whole run adds the safety backup. Targets:
// restore ÷ runbook ≤ 1.10, peak RSS ≤ 64 MiB.
func BenchmarkRestore(b *testing.B) {
	name := fmt.Sprintf("dk-restore-bench-%d", os.Getpid())
	out, err := exec.Command("docker", "run", "-d", "--name", name, "-e", "POSTGRES_PASSWORD=pw", testenv.PostgresImage(b)).CombinedOutput()
	if err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	b.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", name).Run() })
	for i := 0; ; i++ {
		if exec.Command("docker", "exec", "-e", "PGPASSWORD=pw", name, "psql", "-h", "127.0.0.1", "-U", "postgres", "-c", "SELECT 1").Run() == nil {
			break
		}
		if i == 60 {
			b.Fatal("postgres did not start")
		}
		time.Sleep(time.Second)
	}
	if out, err := exec.Command("docker", "exec", name, "/usr/lib/postgresql/15/bin/pgbench", "-i", "-q", "-s", "20", "-U", "postgres", "postgres").CombinedOutput(); err != nil {
		b.Fatalf("pgbench -i: %v: %s", err, out)
	}
	dir := b.TempDir()
	kit := testenv.Deploykit(b)
	if out, err := exec.Command(kit, "backup", "--container", name, "--dir", dir, "--prefix", "bench").CombinedOutput(); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	file, err := filepath.Glob(filepath.Join(dir, "bench-*.sql.gz"))
	if err != nil || len(file) != 1 {
		b.Fatalf("the backup: %v %v", file, err)
	}
	clear := func() {
		for _, sql := range []string{"DROP DATABASE IF EXISTS postgres WITH (FORCE)", "CREATE DATABASE postgres"} {
			if out, err := exec.Command("docker", "exec", name, "psql", "-X", "-q", "-U", "postgres", "-d", "template1", "-c", sql).CombinedOutput(); err != nil {
				b.Fatalf("%s: %v: %s", sql, err, out)
			}
		}
	}

	var baseline, total, phase time.Duration
	var peakRSS int64
	for b.Loop() {
		// The runbook's restore over a live cluster: clear it, then replay. The
		// clearing is timed on both sides (DROP DATABASE waits for a checkpoint).
		start := time.Now()
		clear()
		out, err := exec.Command("bash", "-o", "pipefail", "-c", `zcat "$1" | docker exec -i "$0" psql -X -q -U postgres -d postgres >/dev/null`, name, file[0]).CombinedOutput()
		if err != nil {
			b.Fatalf("zcat | psql: %v: %s", err, out)
		}
		baseline += time.Since(start)

		start = time.Now()
		cmd := exec.Command(kit, "restore", "--confirm", "RESTORE", "--container", name, "--file", file[0], "--dir", b.TempDir(),
			"--history-file", filepath.Join(b.TempDir(), "history.log"))
		out, err = cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("deploykit restore: %v: %s", err, out)
		}
		total += time.Since(start)
		m := restoredIn.FindSubmatch(out)
		if m == nil {
			b.Fatalf("no restore time in: %s", out)
		}
		d, err := time.ParseDuration(string(m[1]))
		if err != nil {
			b.Fatal(err)
		}
		phase += d
		if rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024; rss > peakRSS {
			peakRSS = rss
		}
	}
	n := float64(b.N)
	b.ReportMetric(baseline.Seconds()/n, "s/zcat-psql")
	b.ReportMetric(total.Seconds()/n, "s/deploykit-restore")
	b.ReportMetric(phase.Seconds()/n, "s/restore-phase")
	b.ReportMetric(phase.Seconds()/baseline.Seconds(), "restore-phase/zcat-psql")
	b.ReportMetric(total.Seconds()/baseline.Seconds(), "whole/zcat-psql")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-MiB")
}
