package deploy_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

var rehearseRow = regexp.MustCompile(`\| rehearse \| done \| (\S+) \|`)

// BenchmarkRehearsal: what `rehearse: true` costs on examples/app's stack
// (strategy rolling behind the example proxy) whose database also holds
// pgbench's tables at scale 20 (a dump of about 185 MB), for a release whose
// migration builds an index on pgbench_accounts (2 million rows). In the same
// run, what the rehearsal contains, done by hand: the runbook's restore of the
// same pre-deploy backup into a fresh Postgres container (start it, zcat |
// psql), and the migration's statement on that restored copy. Reported, per
// deploy: the rehearse step and its parts (restore, this release's start with
// its migration and checks, the running release's start and checks), the
// runbook restore, the migration alone, and rehearse ÷ (runbook restore +
// migration + 2 × an app start), where an app start is the running release's
// (target ≤ 1).
func BenchmarkRehearsal(b *testing.B) {
	st := newRehearsed(b)
	st.release("1.0.0", buildApp(b, appBuild{}))
	r := st.deploy()
	require.Equal(b, 0, r.Code, r.Log)
	out, err := exec.Command("docker", "exec", st.name+"-db-1", "/usr/lib/postgresql/15/bin/pgbench", "-i", "-q", "-s", "20", "-U", "postgres", "postgres").CombinedOutput()
	require.NoError(b, err, "%s", out)

	migrations := map[string]string{}
	var rehearse, restore, started, running, runbook, migration time.Duration
	n := 0
	for b.Loop() {
		n++
		idx := fmt.Sprintf("CREATE INDEX pgbench_accounts_abalance_%d ON pgbench_accounts (abalance);\n", n)
		migrations[fmt.Sprintf("%06d_abalance.up.sql", n+1)] = idx
		migrations[fmt.Sprintf("%06d_abalance.down.sql", n+1)] = fmt.Sprintf("DROP INDEX pgbench_accounts_abalance_%d;\n", n)
		version := fmt.Sprintf("2.%d.0", n)
		st.release(version, buildApp(b, appBuild{migrations: migrations}))
		r := st.deploy("--rehearse", "--rehearse-lock-limit", "0")
		require.Equal(b, 0, r.Code, r.Log)
		m := rehearseRow.FindStringSubmatch(r.Summary)
		require.NotNil(b, m, r.Summary)
		rehearse += parse(b, m[1])
		var plan struct {
			Rehearsal struct {
				Restore    string `json:"restore"`
				NewRelease string `json:"new_release"`
				Running    string `json:"running_release"`
			} `json:"rehearsal"`
		}
		require.NoError(b, json.Unmarshal([]byte(r.Outputs["plan"]), &plan))
		restore += parse(b, plan.Rehearsal.Restore)
		started += parse(b, plan.Rehearsal.NewRelease)
		running += parse(b, plan.Rehearsal.Running)

		// By hand: the same backup into a fresh server, then the migration.
		backups, _ := filepath.Glob(filepath.Join(st.backups, "pre-deploy-*.sql.gz"))
		sort.Strings(backups)
		require.NotEmpty(b, backups)
		name := st.name + "-runbook"
		start := time.Now()
		out, err := exec.Command("docker", "run", "-d", "--name", name, "-e", "POSTGRES_PASSWORD=pw", testenv.PostgresImage(b)).CombinedOutput()
		require.NoError(b, err, "%s", out)
		for exec.Command("docker", "exec", name, "pg_isready", "-U", "postgres", "-h", "/var/run/postgresql").Run() != nil {
			time.Sleep(100 * time.Millisecond)
		}
		out, err = exec.Command("bash", "-o", "pipefail", "-c", `zcat "$1" | docker exec -i "$0" psql -X -q -U postgres -d postgres >/dev/null 2>&1`, name, backups[len(backups)-1]).CombinedOutput()
		require.NoError(b, err, "%s", out)
		runbook += time.Since(start)
		start = time.Now()
		out, err = exec.Command("docker", "exec", name, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "postgres", "-c", idx).CombinedOutput()
		migration += time.Since(start)
		require.NoError(b, err, "%s", out)
		require.NoError(b, exec.Command("docker", "rm", "-f", "-v", name).Run())
	}
	per := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(n) }
	b.ReportMetric(per(rehearse), "ms-rehearse/op")
	b.ReportMetric(per(restore), "ms-restore/op")
	b.ReportMetric(per(started), "ms-new-release/op")
	b.ReportMetric(per(running), "ms-running-release/op")
	b.ReportMetric(per(runbook), "ms-runbook-restore/op")
	b.ReportMetric(per(migration), "ms-migration/op")
	b.ReportMetric(per(rehearse)/(per(runbook)+per(migration)+2*per(running)), "rehearse/budget")
}

func parse(b *testing.B, d string) time.Duration {
	b.Helper()
	v, err := time.ParseDuration(d)
	require.NoError(b, err, "%q", d)
	return v
}
