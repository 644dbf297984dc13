package actionyml_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

var jobsKey = regexp.MustCompile(`(?m)^jobs:`)

// TestWorkflowsPassActionlint lints every workflow the kit ships or tests with: its
// own CI, the examples, and the workflows the end-to-end tests run through act.
func TestWorkflowsPassActionlint(t *testing.T) {
	actionlint := testenv.RequireTool(t, "actionlint")
	root := testenv.RepoRoot(t)
	var files []string
	for _, dir := range []string{".gitea/workflows", "examples", "internal/e2e/testdata"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
				return err
			}
			data, err := os.ReadFile(p)
			if err == nil && jobsKey.Match(data) {
				rel, _ := filepath.Rel(root, p)
				files = append(files, rel)
			}
			return err
		})
		if !os.IsNotExist(err) {
			require.NoError(t, err)
		}
	}
	require.Contains(t, files, ".gitea/workflows/ci.yaml")
	require.Contains(t, files, "internal/e2e/testdata/guard.yaml")
	require.Contains(t, files, "examples/app/.gitea/workflows/deploy.yaml")
	require.Contains(t, files, "examples/app/.github/workflows/deploy.yaml")
	// actionlint knows GitHub, where upload-artifact@v3 no longer runs; Gitea's
	// artifact server speaks only v3, so its workflows (and the act workflow that
	// exercises both forges' uploads) may name it, and nothing else is excused.
	var github, gitea []string
	for _, f := range files {
		if strings.HasPrefix(f, ".gitea/") || strings.HasPrefix(f, "examples/app/.gitea/") || f == "internal/e2e/testdata/backup.yaml" {
			gitea = append(gitea, f)
		} else {
			github = append(github, f)
		}
	}
	for _, run := range [][]string{
		append([]string{"-no-color"}, github...),
		append([]string{"-no-color", "-ignore", `the runner of "actions/upload-artifact@v3" action is too old to run on GitHub Actions`}, gitea...),
	} {
		cmd := exec.Command(actionlint, run...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "actionlint %v:\n%s", run, out)
	}
}
