package rollback

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command/commandtest"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/history"
)

// Fast tests of how rollback picks its target, at the command seam: git is a
// commandtest.Recorder; the history is a real file.

func seamContext(t *testing.T) (*action.Context, Options) {
	t.Helper()
	ws := t.TempDir()
	var log bytes.Buffer
	a := action.NewContext([]string{"GITHUB_WORKSPACE=" + ws}, &log)
	o := Options{Confirm: Confirmation}
	o.TargetOptions = deploy.DefaultOptions().TargetOptions
	o.RecordOptions = deploy.DefaultOptions().RecordOptions
	o.ProjectName, o.HistoryFile = "shop", filepath.Join(t.TempDir(), "history.log")
	return a, o
}

func TestSeamTargetTag(t *testing.T) {
	a, o := seamContext(t)
	o.TargetTag = "v1.0.0"
	rec := (&commandtest.Recorder{Strict: true}).On("1111111111111111111111111111111111111111\n", "git", "rev-parse")
	ref, err := target(context.Background(), a, o, rec, nil)
	require.NoError(t, err)
	assert.Equal(t, "v1.0.0", ref)
	assert.Equal(t, []string{"git rev-parse --verify --quiet --end-of-options 'refs/tags/v1.0.0^{commit}'"}, rec.Lines())

	rec = (&commandtest.Recorder{Strict: true}).
		Fail(errors.New("exit status 1"), "git", "rev-parse").
		On("v2.0.0\nv1.1.0\n", "git", "tag", "--sort=-v:refname")
	_, err = target(context.Background(), a, o, rec, nil)
	assert.Equal(t, action.ExitUsage, action.ExitCode(err))
	assert.ErrorContains(t, err, "input target-tag: tag v1.0.0 does not exist in "+a.Workspace()+" (tags: v2.0.0, v1.1.0); check out with fetch-depth: 0")

	o.TargetTag = "--upload-pack=evil"
	_, err = target(context.Background(), a, o, &commandtest.Recorder{Strict: true}, nil)
	assert.EqualError(t, err, `input target-tag: "--upload-pack=evil" is not a tag name`)
}

// Without target-tag: the newest live version before the current one, in this
// stack and environment, skipping failed deploys.
func TestSeamTargetFromHistory(t *testing.T) {
	a, o := seamContext(t)
	h := history.File{Path: o.HistoryFile}
	day := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i, e := range []history.Entry{
		{Stack: "shop", Env: "production", Action: history.ActionDeploy, Version: "1.0.0", Status: history.StatusSuccess, Notes: "sha=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
		{Stack: "shop", Env: "staging", Action: history.ActionDeploy, Version: "1.5.0", Status: history.StatusSuccess, Notes: "sha=cccccccccccccccccccccccccccccccccccccccc"},
		{Stack: "shop", Env: "production", Action: history.ActionDeploy, Version: "1.1.0", Status: history.StatusFailed, Notes: "sha=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
		{Stack: "shop", Env: "production", Action: history.ActionDeploy, Version: "2.0.0", Status: history.StatusSuccess, Notes: "sha=dddddddddddddddddddddddddddddddddddddddd"},
	} {
		e.Time = day.Add(time.Duration(i) * time.Hour)
		require.NoError(t, h.Append(e))
	}
	rec := &commandtest.Recorder{Strict: true}
	ref, err := target(context.Background(), a, o, rec, nil)
	require.NoError(t, err)
	assert.Equal(t, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", ref, "1.1.0 failed and 1.5.0 is staging's")
	assert.Empty(t, rec.Calls())

	o.Environment = "qa"
	_, err = target(context.Background(), a, o, rec, nil)
	assert.Equal(t, action.ExitUsage, action.ExitCode(err))
	assert.ErrorContains(t, err, "has no successful deploy of shop on qa to roll back from: set target-tag")
	require.NoError(t, os.Remove(o.HistoryFile))
}

// TestSeamTargetWithoutProjectNameOrHistory: the example's compose file needs
// DEPLOY_TAG, which only the deploy sets, and DB_PASSWORD from the job's
// secrets; with project-name empty the stack's name still comes from the file
// (its name:, which may use DEPLOY_ENV), and an empty history is the "nothing
// to roll back to" answer, exit 2, not an interpolation error.
func TestSeamTargetWithoutProjectNameOrHistory(t *testing.T) {
	a, o := seamContext(t)
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "app", "compose.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a.Workspace(), "compose.yaml"), data, 0o644))
	o.ProjectName = ""
	a = action.NewContext([]string{"GITHUB_WORKSPACE=" + a.Workspace(), "IMAGE=registry.example.com/hello"}, &bytes.Buffer{})
	rec := &commandtest.Recorder{Strict: true}
	_, err = target(context.Background(), a, o, rec, nil)
	require.Error(t, err)
	assert.Equal(t, action.ExitUsage, action.ExitCode(err))
	assert.EqualError(t, err, "input target-tag is empty and "+o.HistoryFile+" has no successful deploy of hello on production to roll back from: set target-tag")

	require.NoError(t, os.WriteFile(filepath.Join(a.Workspace(), "compose.yaml"), []byte("name: shop-${DEPLOY_ENV}\nservices:\n  web:\n    image: shop:${DEPLOY_TAG:?}\n    environment:\n      PW: ${DB_PASSWORD:?}\n"), 0o644))
	a = action.NewContext([]string{"GITHUB_WORKSPACE=" + a.Workspace(), "ENV_DB_PASSWORD=pw"}, &bytes.Buffer{})
	o.Environment = "staging"
	_, err = target(context.Background(), a, o, rec, nil)
	assert.EqualError(t, err, "input target-tag is empty and "+o.HistoryFile+" has no successful deploy of shop-staging on staging to roll back from: set target-tag")
	assert.Empty(t, rec.Calls())
}
