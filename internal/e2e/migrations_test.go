package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

func TestMigrationSmokeGatesTheDeployJob(t *testing.T) {
	t.Parallel()
	image := testenv.PostgresImage(t)
	vars := []string{"--var", "POSTGRES_IMAGE=" + image}

	repo, head := kitRepo(t, "feat: notes", "migrations.yaml")
	event := map[string]any{"ref": "refs/heads/main", "head_commit": map[string]any{"id": head, "message": "feat: notes"}}
	log, err := runAct(t, repo, "migrations.yaml", "push", event, vars...)
	require.NoError(t, err, log)
	seen := later(log)
	assert.Equal(t, "1", seen["applied"], log)
	assert.Equal(t, "yes", seen["deploying"], "the deploy job ran")
	assert.Contains(t, log, "### deploykit migration-smoke: passed")

	// A migration that breaks: the deploy job never starts.
	repo, head = kitRepo(t, "feat: broken", "migrations.yaml")
	broken := filepath.Join(repo, "examples", "hello", "migrations", "000002_broken.up.sql")
	require.NoError(t, os.WriteFile(broken, []byte("ALTER TABLE notes ADD COLUMN tags text[] NOT NULL DEFAULT nope;\n"), 0o644))
	event["head_commit"] = map[string]any{"id": head, "message": "feat: broken"}
	log, err = runAct(t, repo, "migrations.yaml", "push", event, vars...)
	require.Error(t, err, log)
	assert.Contains(t, log, "migration examples/hello/migrations/000002_broken.up.sql failed")
	assert.NotContains(t, log, "later step: deploying=yes", "the deploy job did not run")
}
