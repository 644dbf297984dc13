package guard

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fixture(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	var payload map[string]any
	require.NoError(t, json.Unmarshal(data, &payload))
	return payload
}

// set replaces a value at a dotted path in a payload.
func set(payload map[string]any, path string, v any) map[string]any {
	keys := strings.Split(path, ".")
	m := payload
	for _, k := range keys[:len(keys)-1] {
		m = m[k].(map[string]any)
	}
	if v == nil {
		delete(m, keys[len(keys)-1])
	} else {
		m[keys[len(keys)-1]] = v
	}
	return payload
}

func noGit(t *testing.T) CommitMessageFunc {
	return func(sha string) (string, error) {
		t.Fatalf("git log must not be consulted (asked for %s)", sha)
		return "", nil
	}
}

func TestPush(t *testing.T) {
	d := Decide("push", fixture(t, "github-push.json"), noGit(t))
	assert.Equal(t, Decision{Skip: true, Reason: `push: head commit says "[skip ci]"`}, d)

	d = Decide("push", fixture(t, "gitea-push.json"), noGit(t))
	assert.Equal(t, Decision{Skip: true, Reason: `push: head commit says "[skip ci]"`}, d)

	d = Decide("push", set(fixture(t, "github-push.json"), "head_commit.message", "Add feature\n\nWith a body."), noGit(t))
	assert.Equal(t, Decision{Reason: "push: head commit has no skip marker"}, d)

	// A deleted branch, or no payload at all: nothing says what to deploy.
	for _, p := range []map[string]any{set(fixture(t, "github-push.json"), "head_commit", nil), {}, nil} {
		d = Decide("push", p, noGit(t))
		assert.Equal(t, Decision{Skip: true, Reason: "push: the event has no head commit (a deleted branch or tag, or no event payload): nothing to deploy"}, d)
	}
}

func TestMarkers(t *testing.T) {
	for msg, want := range map[string]string{
		"fix: x [skip ci]":                  "[skip ci]",
		"[CI SKIP] docs":                    "[CI SKIP]",
		"wip [No Ci]":                       "[No Ci]",
		"x\n\nbody mentions [skip actions]": "[skip actions]",
		"[Actions Skip]":                    "[Actions Skip]",
		"skip ci without brackets":          "",
		"[skipci]":                          "",
		"[skip  ci]":                        "",
	} {
		assert.Equal(t, want, findMarker(msg), msg)
	}
}

func TestSkipChecksTrailer(t *testing.T) {
	for msg, want := range map[string]bool{
		"Update docs\n\n\nskip-checks: true":                         true,
		"Update docs\n\nskip-checks:true\n":                          true,
		"Update docs\n\nSigned-off-by: A <a@b>\nSkip-Checks: TRUE\n": true,
		"Update docs\r\n\r\nskip-checks: true\r\n":                   true,
		"skip-checks: true":                                          false, // a subject is not a trailer
		"Update docs\n\nskip-checks: true\n\nMore text after it.":    false, // not the final paragraph
		"Update docs\n\nskip-checks: false":                          false,
		"Update docs\n\nplease add skip-checks: true next time":      false,
		"Update docs\n\nskip-checks: truely":                         false,
	} {
		assert.Equal(t, want, HasSkipChecksTrailer(msg), "%q", msg)
	}
	d := Decide("push", set(fixture(t, "github-push.json"), "head_commit.message", "Docs\n\nskip-checks: true"), noGit(t))
	assert.Equal(t, Decision{Skip: true, Reason: `push: head commit ends with the trailer "skip-checks: true"`}, d)
}

func TestGitHubWorkflowRun(t *testing.T) {
	d := Decide("workflow_run", fixture(t, "github-workflow_run.json"), noGit(t))
	assert.Equal(t, Decision{Reason: "workflow_run: head commit has no skip marker"}, d)

	p := set(fixture(t, "github-workflow_run.json"), "workflow_run.head_commit.message", "chore(release): v1.2.0 [skip ci]")
	assert.Equal(t, Decision{Skip: true, Reason: `workflow_run: head commit says "[skip ci]"`}, Decide("workflow_run", p, noGit(t)))

	for conclusion, want := range map[any]string{
		"failure":   `workflow_run: the triggering workflow concluded "failure", not success`,
		"cancelled": `workflow_run: the triggering workflow concluded "cancelled", not success`,
		nil:         `workflow_run: the triggering workflow concluded "none", not success`,
	} {
		p := set(fixture(t, "github-workflow_run.json"), "workflow_run.conclusion", conclusion)
		assert.Equal(t, Decision{Skip: true, Reason: want}, Decide("workflow_run", p, noGit(t)))
	}
}

func TestGiteaWorkflowRun(t *testing.T) {
	const sha = "acb5820ced9479c074f688cc328bf03f341a511d"
	gitLog := func(msg string, err error) CommitMessageFunc {
		return func(got string) (string, error) {
			assert.Equal(t, sha, got)
			return msg, err
		}
	}

	// The title alone decides.
	p := set(fixture(t, "gitea-workflow_run.json"), "workflow_run.display_title", "chore(release): v1.4.0 [skip ci]")
	assert.Equal(t, Decision{Skip: true, Reason: `workflow_run: run title says "[skip ci]"`}, Decide("workflow_run", p, noGit(t)))

	// The trailer is only in the body: read it from git.
	d := Decide("workflow_run", fixture(t, "gitea-workflow_run.json"), gitLog("Fix login redirect\n\nskip-checks: true\n", nil))
	assert.Equal(t, Decision{Skip: true, Reason: `workflow_run: head commit acb5820 ends with the trailer "skip-checks: true"`}, d)

	d = Decide("workflow_run", fixture(t, "gitea-workflow_run.json"), gitLog("Fix login redirect\n", nil))
	assert.Equal(t, Decision{Reason: "workflow_run: head commit acb5820 has no skip marker"}, d)

	d = Decide("workflow_run", fixture(t, "gitea-workflow_run.json"), gitLog("", errors.New("bad object")))
	assert.False(t, d.Skip)
	assert.Equal(t, "workflow_run: could not read commit "+sha+" (bad object); only the title was checked — check out with fetch-depth that includes it", d.Warning)

	p = set(fixture(t, "gitea-workflow_run.json"), "workflow_run.head_sha", "--output=/tmp/x")
	d = Decide("workflow_run", p, noGit(t))
	assert.False(t, d.Skip)
	assert.Equal(t, `workflow_run: head_sha "--output=/tmp/x" is not a commit id; only the title was checked`, d.Warning)

	p = set(fixture(t, "gitea-workflow_run.json"), "workflow_run.conclusion", "failure")
	assert.True(t, Decide("workflow_run", p, noGit(t)).Skip)
}

func TestNeverSkipped(t *testing.T) {
	for _, ev := range []string{"workflow_dispatch", "schedule"} {
		d := Decide(ev, map[string]any{"head_commit": map[string]any{"message": "[skip ci]"}}, noGit(t))
		assert.Equal(t, Decision{Reason: ev + ": never skipped (started on purpose)"}, d)
	}
	assert.Equal(t, Decision{Reason: "pull_request: not checked for skip markers"}, Decide("pull_request", nil, noGit(t)))
	assert.Equal(t, Decision{Skip: true, Reason: "workflow_run: the event has no workflow_run object, so the triggering run's result is unknown"}, Decide("workflow_run", map[string]any{}, noGit(t)))
}

// TestGitFallbackWithRealGit reads the message the way the guard command does.
func TestGitFallbackWithRealGit(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@x", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@x")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	run("init", "-q")
	run("commit", "-q", "--allow-empty", "-m", "Fix login redirect", "-m", "skip-checks: true")
	sha := run("rev-parse", "HEAD")
	p := set(fixture(t, "gitea-workflow_run.json"), "workflow_run.head_sha", sha)
	d := Decide("workflow_run", p, func(sha string) (string, error) { return run("log", "-1", "--format=%B", sha, "--"), nil })
	assert.True(t, d.Skip, d.Reason)
}

// TestForkPullRequestRunsAreSkipped: a workflow_run that a pull request triggered
// (a fork's above all, whose head branch may be called main) is never deployed, in
// GitHub's shape (head_repository) and Gitea's (head_repository omitted).
func TestForkPullRequestRunsAreSkipped(t *testing.T) {
	fork := map[string]any{"id": float64(999), "name": "app", "full_name": "mallory/app"}
	for _, tc := range []struct {
		name    string
		payload map[string]any
		reason  string
	}{
		{"github fork pull_request",
			set(set(fixture(t, "github-workflow_run.json"), "workflow_run.event", "pull_request"), "workflow_run.head_repository", fork),
			"workflow_run: triggered by a pull_request event, not by a push to the repository: only push, workflow_dispatch and schedule runs are deployed"},
		{"github fork with event push",
			set(fixture(t, "github-workflow_run.json"), "workflow_run.head_repository", fork),
			"workflow_run: the head repository mallory/app is not the repository team/app (a fork): its commits are never deployed"},
		{"github same-repository pull_request",
			set(fixture(t, "github-workflow_run.json"), "workflow_run.event", "pull_request"),
			"workflow_run: triggered by a pull_request event, not by a push to the repository: only push, workflow_dispatch and schedule runs are deployed"},
		{"github pull_request_target",
			set(fixture(t, "github-workflow_run.json"), "workflow_run.event", "pull_request_target"),
			"workflow_run: triggered by a pull_request_target event, not by a push to the repository: only push, workflow_dispatch and schedule runs are deployed"},
		{"gitea fork pull_request without head_repository",
			set(fixture(t, "gitea-workflow_run.json"), "workflow_run.event", "pull_request"),
			"workflow_run: triggered by a pull_request event, not by a push to the repository: only push, workflow_dispatch and schedule runs are deployed"},
		{"neither event nor head_repository",
			set(fixture(t, "gitea-workflow_run.json"), "workflow_run.event", nil),
			"workflow_run: the payload names neither the triggering event nor the head repository, so a pull request from a fork cannot be ruled out"},
		{"head_repository and repository both nameless",
			set(set(set(fixture(t, "github-workflow_run.json"), "workflow_run.head_repository", map[string]any{}), "repository.id", nil), "repository.full_name", nil),
			"workflow_run: the head repository (unnamed) is not the repository (unnamed) (a fork): its commits are never deployed"},
		{"head_repository not an object",
			set(fixture(t, "github-workflow_run.json"), "workflow_run.head_repository", "mallory/app"),
			"workflow_run: head_repository is not an object, so a fork cannot be ruled out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, Decision{Skip: true, Reason: tc.reason}, Decide("workflow_run", tc.payload, noGit(t)))
		})
	}

	// The repository's own runs still deploy; a head repository named like the
	// repository in another case is the same one (ids compared where present).
	for _, p := range []map[string]any{
		fixture(t, "github-workflow_run.json"),
		set(fixture(t, "github-workflow_run.json"), "workflow_run.event", "workflow_dispatch"),
		set(fixture(t, "github-workflow_run.json"), "workflow_run.event", "schedule"),
		set(fixture(t, "github-workflow_run.json"), "workflow_run.event", nil),
	} {
		assert.False(t, Decide("workflow_run", p, noGit(t)).Skip)
	}
	noIDs := fixture(t, "github-workflow_run.json")
	set(noIDs, "repository.id", nil)
	set(noIDs, "workflow_run.head_repository", map[string]any{"full_name": "Team/App"})
	assert.False(t, Decide("workflow_run", noIDs, noGit(t)).Skip)
}

// TestMarkersAreASCIIOnly: a message whose lowercase form has another byte length
// must not panic, and non-ASCII letters that fold to ASCII ones are not markers.
func TestMarkersAreASCIIOnly(t *testing.T) {
	for _, msg := range []string{"ȺȺȺȺ fix [skip ci]", "Ⱥ[SKIP CI]"} {
		d := Decide("push", map[string]any{"head_commit": map[string]any{"message": msg}}, noGit(t))
		assert.True(t, d.Skip, msg)
		assert.Contains(t, d.Reason, "[", msg)
	}
	d := Decide("push", map[string]any{"head_commit": map[string]any{"message": "ȺȺȺȺȺȺȺȺ fix [SKIP CI]"}}, noGit(t))
	assert.Equal(t, `push: head commit says "[SKIP CI]"`, d.Reason)
	for _, msg := range []string{"[s\u212Aip ci]", "fix\n\ns\u212Aip-checks: true", "fix\n\nskip-checks: \u0074rue\u017F"} {
		d := Decide("push", map[string]any{"head_commit": map[string]any{"message": msg}}, noGit(t))
		assert.False(t, d.Skip, "%q is not a marker: %s", msg, d.Reason)
	}
	assert.True(t, HasSkipChecksTrailer("fix\n\nSKIP-CHECKS:   TRUE"))
	assert.True(t, HasSkipChecksTrailer("fix\n\nskip-checks:true"))
}
