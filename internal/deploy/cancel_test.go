package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// TestCancelReachesDeploykitThroughTheStepShell: GitHub's runner signals only
// the step's entry process, the bash that runs the action's run: text. That
// text execs deploykit, so the SIGINT reaches it at once: a deploy waiting for
// a lock the test holds stops well before the SIGTERM. The same step without
// exec, as the actions shipped before, hears nothing: bash dies of the
// SIGTERM and deploykit runs on, an orphan.
func TestCancelReachesDeploykitThroughTheStepShell(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	held, err := lock.Acquire(context.Background(), a.LockFile(), lock.Holder{Host: "h", PID: 4242, Version: "9.9.9", Since: time.Now()}, time.Second, nil)
	require.NoError(t, err)
	defer held.Release()

	step, result := a.Step("deploy", "--lock-timeout", "5m")
	step.WaitLog("waiting up to 5m0s for the run holding", time.Minute)
	last, took := step.CancelGitHub()
	r := result()
	assert.Equal(t, "SIGINT", last, "deploykit heard the first signal: %s", r.Log)
	assert.Less(t, took, action.CancelBudget)
	assert.Contains(t, r.Log, "deploykit: received interrupt: stopping within 7s; what is left, the next run repairs")
	assert.Equal(t, 1, r.Code)
	assert.Equal(t, "failed", r.Outputs["status"])

	// As shipped before: "$DEPLOYKIT" deploy, a child of the step's bash.
	old := testenv.StepCommand(t, a.Dir, step.Cmd.Env, "deploy")
	script := old.Args[len(old.Args)-1]
	require.NoError(t, os.WriteFile(script, []byte(`"$DEPLOYKIT" deploy`+"\n"), 0o700))
	old.Env = step.Cmd.Env
	orphan := testenv.StartStep(t, old)
	orphan.WaitLog("waiting up to 5m0s for the run holding", time.Minute)
	last, took = orphan.CancelGitHub()
	assert.Equal(t, "SIGTERM", last, "bash died of the SIGTERM")
	assert.GreaterOrEqual(t, took, testenv.GitHubSIGTERM)
	assert.NotContains(t, orphan.Log(), "deploykit: received", "deploykit heard neither signal")
	out, _ := exec.Command("pgrep", "-g", strings.TrimSpace(itoa(old.Process.Pid)), "-f", "deploykit").Output()
	assert.NotEmpty(t, strings.TrimSpace(string(out)), "deploykit runs on after its shell died")
	_ = syscall.Kill(-old.Process.Pid, syscall.SIGKILL)
}

// TestRecreateCancelledOrKilled: strategy recreate, cancelled while the new
// version (never healthy) is applied. GitHub's cancel: deploykit starts the
// version that ran before again within the budget, records "cancelled" and
// exits at the SIGINT. Gitea's SIGKILL: nothing runs; the next deploy finds
// the lock file the killed one left, records it as killed, and deploys.
// Either way the next deploy is green and the service runs its declared one
// container.
func TestRecreateCancelledOrKilled(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	require.Equal(t, 0, a.Deploy().Code)
	for i, forge := range []string{"github", "gitea"} {
		version := []string{"2.0.0", "3.0.0"}[i]
		a.Release(version, true) // never healthy: apply waits for it
		newImage := "deploykit-hello:sha-" + a.Git("rev-parse", "--short=7", "HEAD")
		step, result := a.Step("deploy")
		testapp.WaitFor(t, "the "+version+" container to start", func() bool {
			out, _ := exec.Command("docker", "ps", "--filter", "label=com.docker.compose.project="+a.Name, "--format", "{{.Image}}").Output()
			return strings.Contains(string(out), newImage)
		})
		if forge == "github" {
			last, took := step.CancelGitHub()
			r := result()
			assert.Equal(t, "SIGINT", last, r.Log)
			assert.Less(t, took, action.CancelBudget)
			assert.Equal(t, 1, r.Code, r.Log)
			assert.Contains(t, r.Log, "::error::deploykit deploy was cancelled (interrupt)")
			assert.Regexp(t, `\| rollback \| done \| \S+ \| cancelled: 1\.0\.0 started again \(not verified: a cancelled job has seconds\); the next run repairs what is left \|`, r.Summary)
			assert.Regexp(t, `\| deploy \| 2\.0\.0 \| cancelled \| `, strings.Join(a.HistoryLines(), "\n"))
			testapp.WaitFor(t, "1.0.0 to serve again", func() bool { _, v := a.Get("/version"); return v == "1.0.0" })
			assert.NoFileExists(t, a.LockFile())
			a.NoSecretsLeft(t)
		} else {
			step.KillGitea()
			require.FileExists(t, a.LockFile(), "a killed deploy leaves its lock file")
		}
		a.Release(version+"-fixed", false)
		r := a.Deploy()
		require.Equal(t, 0, r.Code, r.Log)
		if forge == "gitea" {
			assert.Regexp(t, `\| repair \| done \| \S+ \| a killed deploy of 3\.0\.0 recorded \(killed in step apply \(at it since [^)]+\); pid \d+ on `, r.Summary)
			assert.Regexp(t, `\| production \| deploy \| 3\.0\.0 \| killed \| killed in step apply `, strings.Join(a.HistoryLines(), "\n"))
		}
		_, v := a.Get("/version")
		assert.Equal(t, version+"-fixed", v)
		assert.Len(t, strings.Fields(a.Containers()), 1, "the declared scale")
		a.NoSecretsLeft(t)
	}
}

// rollingOne is the sample app's rolling stack whose web may be held before
// its switch: WEB_HEALTH_PATH=/nope and WEB_START=600s keep its new container
// starting (failing probes do not count in a start period).
func rollingOne(t testing.TB) (*edge, []string) {
	e := behindProxy(t, "1.0.0")
	data, err := os.ReadFile(filepath.Join(e.Dir, "rolling.yaml"))
	require.NoError(t, err)
	stack := strings.Replace(string(data), `test: ["CMD", "/hello", "healthcheck"]`, `test: ["CMD", "/hello", "healthcheck", "${WEB_HEALTH_PATH:-/health}"]`, 1)
	stack = strings.Replace(stack, "start_period: 1s", "start_period: ${WEB_START:-1s}", 1)
	require.Contains(t, stack, "${WEB_START:-1s}")
	require.NoError(t, os.WriteFile(filepath.Join(e.Dir, "one.yaml"), []byte(stack), 0o644))
	e.Git("add", "one.yaml") // a rollback checks the release out
	e.Git("commit", "-q", "-m", "the rolling stack of one service")
	e.Git("tag", "-f", "v1.0.0")
	return e, []string{"--compose-file", "one.yaml", "--strategy", "rolling", "--app-port", "8080", "--route-network", e.network}
}

// TestRollingCancelledOrKilledAnywhere: a rolling deploy of one service behind
// Caddy and a proxy that never retries, under load, cancelled as GitHub's
// runner cancels and killed as Gitea's does: before anything changed, with
// its new container started and not yet checked, and after the switch while
// the old one drains. Production serves throughout (0 failed requests through
// either proxy); after GitHub's cancel the old container holds the alias within
// the budget; the next deploy repairs what is left, is green, and leaves the
// one container the service declares.
func TestRollingCancelledOrKilledAnywhere(t *testing.T) {
	t.Parallel()
	e, args := rollingOne(t)
	r := e.Deploy(args...)
	require.Equal(t, 0, r.Code, r.Log)
	base := e.Env
	release := 1
	for _, point := range []struct {
		name  string
		env   []string
		extra []string
		wait  func(step *testenv.Step)
	}{
		{"before anything changed", nil, nil, func(step *testenv.Step) { step.WaitLog("==> snapshot", 2*time.Minute) }},
		{"its new container started, not yet checked", []string{"WEB_HEALTH_PATH=/nope", "WEB_START=600s"}, []string{"--wait-timeout", "300s"},
			func(step *testenv.Step) {
				step.WaitLog("==> apply", 2*time.Minute)
				testapp.WaitWithin(t, 2*time.Minute, "a second web container to run", func() bool { return len(strings.Fields(e.Containers())) == 2 })
			}},
		{"after the switch, the old one draining", nil, []string{"--drain-timeout", "300s"},
			func(step *testenv.Step) { step.WaitLog("draining the old web containers for", 2*time.Minute) }},
	} {
		for _, forge := range []string{"github", "gitea"} {
			release++
			version := itoa(release) + ".0.0"
			t.Logf("%s: cancelled %s", forge, point.name)
			e.Release(version, false)
			e.Env = append(append([]string{}, base...), point.env...)
			l := e.startLoads()
			step, result := e.Step("deploy", append(append([]string{}, args...), point.extra...)...)
			point.wait(step)
			if forge == "github" {
				last, took := step.CancelGitHub()
				cancelled := result()
				assert.Equal(t, "SIGINT", last, "%s %s: %s", forge, point.name, cancelled.Log)
				assert.Less(t, took, action.CancelBudget, "%s %s", forge, point.name)
				t.Logf("github cancel %s: ended after %s", point.name, took.Round(time.Millisecond))
				assert.Equal(t, 1, e.aliasHolders(), "%s %s: one container holds the alias", forge, point.name)
				assert.NotContains(t, cancelled.Log, " Recreate", "%s %s: nothing that serves is recreated", forge, point.name)
				// The plain proxy asks Docker's DNS for every request; Caddy every
				// second (refresh 1s), so it may still send one to the cancelled
				// release's container, which runs on for the next run to remove.
				assert.Equal(t, itoa(release-1)+".0.0", answers(e.plain, ""), "%s %s: the release before serves, not the cancelled one", forge, point.name)
				testapp.WaitWithin(t, 30*time.Second, "Caddy to leave the cancelled release", func() bool { _, v := e.Get("/version"); return v != version })
			} else {
				step.KillGitea()
			}
			e.Env = base
			r := e.Deploy(args...)
			l.finish().check(t, forge+" "+point.name)
			require.Equal(t, 0, r.Code, "%s %s: the next deploy: %s", forge, point.name, r.Log)
			if forge == "gitea" {
				assert.Contains(t, r.Summary, "a killed deploy of "+version+" recorded", "%s %s", forge, point.name)
			}
			_, v := e.Get("/version")
			assert.Equal(t, version, v, "%s %s", forge, point.name)
			assert.Len(t, strings.Fields(e.Containers()), 1, "%s %s: the declared scale, nothing left", forge, point.name)
			assert.Equal(t, 1, e.aliasHolders(), "%s %s", forge, point.name)
			e.NoSecretsLeft(t)
		}
	}
	lines := strings.Join(e.HistoryLines(), "\n")
	assert.Equal(t, 3, strings.Count(lines, "| cancelled |"), lines)
	assert.Equal(t, 3, strings.Count(lines, "| killed |"), lines)
}

// TestRollbackCancelledOrKilled: a rolling rollback to the release before,
// cancelled as GitHub's runner cancels and killed as Gitea's kills while the
// container it replaced drains: the release it rolled back from serves again
// within the budget (GitHub) or still serves (Gitea); the next rollback reads
// its target under the lock, repairs and is green. Not one request fails.
func TestRollbackCancelledOrKilled(t *testing.T) {
	t.Parallel()
	e, args := rollingOne(t)
	require.Equal(t, 0, e.Deploy(args...).Code)
	e.Release("2.0.0", false)
	require.Equal(t, 0, e.Deploy(args...).Code)
	rollback := append([]string{"--confirm", "ROLLBACK", "--drain-timeout", "300s"}, args...)
	l := e.startLoads()
	for _, forge := range []string{"github", "gitea"} {
		step, result := e.Step("rollback", rollback...)
		step.WaitLog("draining the old web containers for", 2*time.Minute)
		if forge == "github" {
			last, took := step.CancelGitHub()
			r := result()
			assert.Equal(t, "SIGINT", last, r.Log)
			assert.Less(t, took, action.CancelBudget)
			assert.Regexp(t, `\| rollback \| done \| \S+ \| cancelled: the containers that ran before have their aliases back`, r.Summary)
			// The proxy resolves the alias again within its refresh (1 s in
			// the example's Caddy); what it answers then is the alias's.
			testapp.WaitWithin(t, 10*time.Second, "the release it rolled back from to serve again", func() bool {
				_, v := e.Get("/version")
				return v == "2.0.0"
			})
		} else {
			step.KillGitea()
		}
		assert.Equal(t, 1, e.aliasHolders(), forge)
	}
	r := e.Rollback(append([]string{"--confirm", "ROLLBACK"}, args...)...)
	l.finish().check(t, "a cancelled and a killed rollback, then the next")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Regexp(t, `\| repair \| done \| \S+ \| a killed rollback of 1\.0\.0 recorded \(killed in step verify`, r.Summary)
	_, v := e.Get("/version")
	assert.Equal(t, "1.0.0", v)
	assert.Len(t, strings.Fields(e.Containers()), 1)
	assert.Equal(t, 1, e.aliasHolders())
}
