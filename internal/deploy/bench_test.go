package deploy_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// BenchmarkKitOverhead compares, on the same app and in the same run, the wall time
// of `deploykit deploy` (health and smoke checks off) with that of the bare
// `docker compose up -d --wait` it wraps. Each round releases a new commit, so
// both recreate the running container. Reported: ns per deploy of each, and
// their ratio (target ≤ 1.10).
func BenchmarkKitOverhead(b *testing.B) {
	a := testapp.New(b, "1.0.0")
	deploy := func() {
		cmd, _, _ := a.Command("deploy", "--health-url", "", "--smoke-base-url", "", "--smoke-checks", "")
		out, err := cmd.CombinedOutput()
		require.NoError(b, err, string(out))
	}
	bare := func(version string) {
		envFile := filepath.Join(b.TempDir(), "secrets.env")
		require.NoError(b, os.WriteFile(envFile, []byte("DB_PASSWORD=\"x\"\n"), 0o600))
		sha := a.Git("rev-parse", "HEAD")
		cmd := exec.Command("docker", "compose", "-p", a.Name, "-f", filepath.Join(a.Dir, "compose.yaml"), "--env-file", envFile,
			"up", "-d", "--wait", "--remove-orphans", "--wait-timeout", "60", "--build")
		cmd.Dir = a.Dir
		cmd.Env = append(a.BaseEnv(), "DEPLOY_VERSION="+version, "DEPLOY_SHA="+sha, "DEPLOY_TAG=sha-"+sha[:7], "DEPLOY_ENV=production")
		out, err := cmd.CombinedOutput()
		require.NoError(b, err, string(out))
	}
	deploy() // the stack runs before the first round

	var kit, plain time.Duration
	round := 0
	for b.Loop() {
		round++
		b.StopTimer()
		a.Release(fmt.Sprintf("1.%d.0", 2*round), false)
		b.StartTimer()
		start := time.Now()
		bare(fmt.Sprintf("1.%d.0", 2*round))
		plain += time.Since(start)

		b.StopTimer()
		a.Release(fmt.Sprintf("1.%d.0", 2*round+1), false)
		b.StartTimer()
		start = time.Now()
		deploy()
		kit += time.Since(start)
	}
	b.ReportMetric(float64(plain.Nanoseconds())/float64(round), "compose-ns/deploy")
	b.ReportMetric(float64(kit.Nanoseconds())/float64(round), "deploykit-ns/deploy")
	b.ReportMetric(float64(kit)/float64(plain), "overhead-ratio")
}

// BenchmarkRepairAfterKill: the deploy that runs after a deploy killed as
// Gitea kills (SIGKILL to the step's group) mid-drain, beside a normal deploy
// of the same kind (the sample app's rolling stack of one service behind
// Caddy): the repairing deploy records the killed one and removes its
// leftover container before its own switch. Reported: ns per deploy of each
// and their ratio (target ≤ 1.2).
func BenchmarkRepairAfterKill(b *testing.B) {
	e, args := rollingOne(b)
	deploy := func() time.Duration {
		start := time.Now()
		r := e.Deploy(args...)
		took := time.Since(start)
		require.Equal(b, 0, r.Code, r.Log)
		return took
	}
	deploy()
	var normal, repairing time.Duration
	round := 0
	for b.Loop() {
		round++
		e.Release(fmt.Sprintf("2.%d.0", 2*round), false)
		normal += deploy()

		b.StopTimer()
		e.Release(fmt.Sprintf("2.%d.0", 2*round+1), false)
		step, _ := e.Step("deploy", append(args, "--drain-timeout", "300s")...)
		step.WaitLog("draining the old web containers for", 2*time.Minute)
		step.KillGitea()
		b.StartTimer()
		repairing += deploy()
	}
	b.ReportMetric(float64(normal.Nanoseconds())/float64(round), "normal-ns/deploy")
	b.ReportMetric(float64(repairing.Nanoseconds())/float64(round), "repairing-ns/deploy")
	b.ReportMetric(float64(repairing)/float64(normal), "repair-ratio")
}
