package rollback_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/postgres"
	_ "github.com/golang-migrate/migrate/v4/source/file"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

func TestRollbackToATag(t *testing.T) {
	t.Parallel()
	a := testapp.NewTracked(t, "1.0.0")
	require.Equal(t, 0, a.Deploy().Code)
	a.Release("2.0.0", false)
	require.Equal(t, 0, a.Deploy().Code)

	r := a.Rollback("--confirm", "ROLLBACK", "--target-tag", "v1.0.0")
	require.Equal(t, 0, r.Code, r.Log)
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0", v)
	assert.True(t, a.SecretArrived())
	assert.Contains(t, r.Outputs["plan"], `{"services":[{"service":"web","change":"changed","image":{"from":"deploykit-hello:sha-`)
	assert.Contains(t, r.Outputs["plan"], `"environment":{"changed":["APP_VERSION"]}`)
	delete(r.Outputs, "plan")
	assert.Equal(t, map[string]string{"version": "1.0.0", "previous-version": "2.0.0", "status": "success"}, r.Outputs)
	assert.Contains(t, r.Log, "rolling back to v1.0.0: commit "+a.Git("rev-parse", "v1.0.0^{commit}"))
	assert.Contains(t, r.Log, "build --no-cache")
	assert.Contains(t, r.Summary, "### deploykit rollback: success — "+a.Name+" 1.0.0 on production")
	assert.Contains(t, r.Summary, "| version | skipped |  | read-only (version-bump is none): version 1.0.0 |")
	assert.Contains(t, r.Summary, "| schema | skipped |  | set database-url and migrations-path")
	assert.Contains(t, r.Summary, "\nLast 30 days on production: 2 deploy(s), 0.5 a week, 0% failed, lead time ", "the figures from the history, commit times from the checkout")
	assert.Equal(t, "release 2.0.0", a.Git("log", "-1", "--format=%s"), "the checkout did not move")
	lines := a.HistoryLines()
	assert.Regexp(t, `\| `+a.Name+` \| production \| rollback \| 1\.0\.0 \| success \| from 2\.0\.0; sha=[0-9a-f]{40}; job `, lines[len(lines)-1])
	a.NoSecretsLeft(t)
	assert.NotContains(t, r.Log, testapp.Secret)
}

// TestRollbackDoesNotWarnAboutVariablesItProvides: a compose file that needs
// ${DB_PASSWORD} (no default) gets it from the kit's env file in every compose
// command of a rollback, so compose never says the variable is not set.
func TestRollbackDoesNotWarnAboutVariablesItProvides(t *testing.T) {
	t.Parallel()
	a := testapp.NewTracked(t, "1.0.0")
	file := filepath.Join(a.Dir, "compose.yaml")
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Contains(t, string(data), "${DB_PASSWORD:-}")
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(string(data), "${DB_PASSWORD:-}", "${DB_PASSWORD}", 1)), 0o644))
	a.Release("1.0.1", false)
	r := a.Deploy()
	require.Equal(t, 0, r.Code, r.Log)
	a.Release("2.0.0", false)
	r = a.Deploy()
	require.Equal(t, 0, r.Code, r.Log)
	assert.NotContains(t, r.Log, "variable is not set")

	r = a.Rollback("--confirm", "ROLLBACK", "--target-tag", "v1.0.1")
	require.Equal(t, 0, r.Code, r.Log)
	assert.NotContains(t, r.Log, "variable is not set")
	assert.True(t, a.SecretArrived())
}

// TestRollbackFromHistorySkipsFailedVersions: with no target-tag, the target is the
// last successful version before the current one — never one that failed.
func TestRollbackFromHistorySkipsFailedVersions(t *testing.T) {
	t.Parallel()
	a := testapp.NewTracked(t, "1.0.0")
	require.Equal(t, 0, a.Deploy().Code)
	a.Release("2.0.0", true)
	require.Equal(t, 1, a.Deploy().Code, "the broken 2.0.0 fails and 1.0.0 comes back")
	a.Release("3.0.0", false)
	require.Equal(t, 0, a.Deploy().Code)

	r := a.Rollback("--confirm", " ROLLBACK ")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Log, "rolling back to 1.0.0 (deployed ")
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0", v)
	assert.Equal(t, "3.0.0", r.Outputs["previous-version"])
}

func TestRollbackRefusesBadInput(t *testing.T) {
	t.Parallel()
	a := testapp.NewTracked(t, "1.0.0")
	require.Equal(t, 0, a.Deploy().Code)
	a.Release("2.0.0", false)
	require.Equal(t, 0, a.Deploy().Code)
	before, history := a.Containers(), a.HistoryLines()

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"lowercase confirm", []string{"--confirm", "rollback", "--target-tag", "v1.0.0"}, `input confirm: "rollback" is not ROLLBACK: type ROLLBACK, in capitals, to confirm the rollback`},
		{"empty confirm", []string{"--confirm", "", "--target-tag", "v1.0.0"}, "input confirm is required (set --confirm or INPUT_CONFIRM): type ROLLBACK, in capitals, to confirm the rollback"},
		{"missing tag", []string{"--confirm", "ROLLBACK", "--target-tag", "v9.9.9"}, "input target-tag: tag v9.9.9 does not exist in " + a.Dir + " (tags: v2.0.0, v1.0.0); check out with fetch-depth: 0 to have them all"},
		{"injection", []string{"--confirm", "ROLLBACK", "--target-tag", "v1; rm -rf /"}, `input target-tag: "v1; rm -rf /" is not a tag name`},
		{"option as tag", []string{"--confirm", "ROLLBACK", "--target-tag", "--upload-pack=x"}, `input target-tag: "--upload-pack=x" is not a tag name`},
		{"bad image template", []string{"--confirm", "ROLLBACK", "--target-tag", "v1.0.0", "--image-template", "registry/app"}, `input image-template: "registry/app" has no tag: use {sha}, {short}, {tag} or {version}, e.g. registry/app:sha-{short}`},
		{"no history for this environment", []string{"--confirm", "ROLLBACK", "--environment", "staging"}, "input target-tag is empty and " + a.History + " has no successful deploy of " + a.Name + " on staging to roll back from: set target-tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.Rollback(tc.args...)
			assert.Equal(t, 2, r.Code, r.Log)
			assert.Contains(t, r.Log, "::error::"+tc.want)
			assert.Equal(t, map[string]string{"status": "bad-input"}, r.Outputs, "status even on bad input, nothing else")
			assert.Equal(t, before, a.Containers(), "nothing touched")
			assert.Equal(t, history, a.HistoryLines())
			_, v := a.Get("/version")
			assert.Equal(t, "2.0.0", v)
			a.NoSecretsLeft(t)
		})
	}

	// Only one version ever ran: nothing to go back to.
	b := testapp.New(t, "1.0.0")
	require.Equal(t, 0, b.Deploy().Code)
	r := b.Rollback("--confirm", "ROLLBACK")
	assert.Equal(t, 2, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::input target-tag is empty and "+b.History+" holds no successful deploy of "+b.Name+" on production before the current 1.0.0: set target-tag")
}

func TestRollbackChecksTheSchema(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	a := testapp.NewTracked(t, "0.9.0")
	testenv.WriteMigrations(t, filepath.Join(a.Dir, "migrations"), 3)
	a.Release("1.0.0", false)
	testenv.WriteMigrations(t, filepath.Join(a.Dir, "migrations"), 5)
	a.Release("2.0.0", false)
	require.Equal(t, 0, a.Deploy().Code)
	m, err := migrate.New("file://"+filepath.Join(a.Dir, "migrations"), url)
	require.NoError(t, err)
	require.NoError(t, m.Up())
	_, _ = m.Close()
	before := a.Containers()

	args := []string{"--confirm", "ROLLBACK", "--target-tag", "v1.0.0", "--migrations-path", "migrations", "--database-url", url}
	r := a.Rollback(args...)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::rollback of 1.0.0 failed at schema: the database is at migration 5, ahead of 1.0.0, whose newest migration is 3: "+
		"migrations 4 (create_t4), 5 (create_t5) would stay applied under code that does not know them. "+
		"Migrate the database down to 3 first (migrate -path migrations -database <url> goto 3), or set allow-schema-ahead: true if those migrations are backward compatible")
	assert.Equal(t, before, a.Containers())
	assert.NotContains(t, r.Log, url, "the database URL is masked")

	r = a.Rollback(append(args, "--allow-schema-ahead")...)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Log, "::warning::the database is at migration 5, ahead of 1.0.0")
	assert.Contains(t, r.Summary, "| schema | done | ")
	assert.Contains(t, r.Summary, "WARNING: the database is at migration 5, ahead of 1.0.0")
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0", v)

	// A dirty database is refused even with allow-schema-ahead.
	psql := testenv.RequireTool(t, "psql")
	out, err := exec.Command(psql, url, "-XAtc", "UPDATE schema_migrations SET dirty = true").CombinedOutput()
	require.NoError(t, err, string(out))
	r = a.Rollback("--confirm", "ROLLBACK", "--target-tag", "v2.0.0", "--migrations-path", "migrations", "--database-url", url, "--allow-schema-ahead")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::rollback of 2.0.0 failed at schema: the database is dirty at migration 5: a migration failed half-way.")
}

// TestRollbackToABrokenTargetRollsForward: a target that fails health is replaced
// by what ran before, with a hand-off.
func TestRollbackToABrokenTargetRollsForward(t *testing.T) {
	t.Parallel()
	a := testapp.NewTracked(t, "0.9.0")
	a.Release("1.0.0", true)
	a.Release("2.0.0", false)
	require.Equal(t, 0, a.Deploy().Code)

	r := a.Rollback("--confirm", "ROLLBACK", "--target-tag", "v1.0.0")
	assert.Equal(t, 1, r.Code, r.Log)
	_, v := a.Get("/version")
	assert.Equal(t, "2.0.0", v)
	assert.Equal(t, "rolled-back", r.Outputs["status"])
	assert.Contains(t, r.Summary, "#### Hand-off: rollback of 1.0.0 failed at apply")
	assert.Contains(t, r.Summary, "- Job: https://git.example.com/team/hello/actions/runs/4242")
	assert.Contains(t, r.Summary, "(broken=true)")
	assert.Contains(t, r.Summary, "DEPLOY_VERSION=2.0.0")
	lines := a.HistoryLines()
	require.GreaterOrEqual(t, len(lines), 3)
	assert.Regexp(t, `\| rollback \| 1\.0\.0 \| failed \| from 2\.0\.0; sha=[0-9a-f]{40}; failed at apply`, lines[len(lines)-2])
	assert.Regexp(t, `\| rollback \| 2\.0\.0 \| success \| from 1\.0\.0 \(automatic\)`, lines[len(lines)-1])
	assert.False(t, strings.Contains(r.Log, testapp.Secret))
}

// TestPullOnlyDeployAndRollback deploys images built and pushed by build-image to
// a registry on 127.0.0.1 with pull-only, then rolls back by pulling the target's
// image again — by its sha- tag, and through an image-template.
func TestPullOnlyDeployAndRollback(t *testing.T) {
	t.Parallel()
	reg := testenv.Registry(t, "", "")
	repo := reg + "/team/hello"
	a := testapp.NewTracked(t, "0.9.0")
	t.Cleanup(func() { testenv.RemoveImages(testenv.LocalImages(t, repo)...) })
	pull := `services:
  web:
    image: ` + repo + `:${DEPLOY_TAG}
    environment:
      APP_VERSION: ${DEPLOY_VERSION}
      DB_PASSWORD: ${DB_PASSWORD:-}
    ports: ["127.0.0.1:${HELLO_PORT}:8080"]
    healthcheck:
      test: ["CMD", "/hello", "healthcheck"]
      interval: 1s
      retries: 10
`
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "pull.yaml"), []byte(pull), 0o644))
	for _, v := range []string{"1.0.0", "2.0.0"} {
		a.Release(v, false)
		r := a.Raw("build-image", "--image", repo, "--version", v)
		require.Equal(t, 0, r.Code, r.Log)
		r = a.Deploy("--compose-file", "pull.yaml", "--pull-only")
		require.Equal(t, 0, r.Code, r.Log)
		assert.Contains(t, r.Log, "--no-build --pull missing")
	}
	_, v := a.Get("/version")
	require.Equal(t, "2.0.0", v)

	// Only the running image stays local: the target must come from the registry.
	testenv.RemoveImages(repo + ":sha-" + a.Git("rev-parse", "--short=7", "v1.0.0") + "")
	r := a.Rollback("--confirm", "ROLLBACK", "--target-tag", "v1.0.0", "--compose-file", "pull.yaml", "--pull-only")
	require.Equal(t, 0, r.Code, r.Log)
	assert.NotContains(t, r.Log, "docker compose build", "pull-only never builds")
	_, v = a.Get("/version")
	assert.Equal(t, "1.0.0", v)

	r = a.Rollback("--confirm", "ROLLBACK", "--target-tag", "v2.0.0", "--compose-file", "pull.yaml", "--pull-only",
		"--image-template", repo+":{version}")
	require.Equal(t, 0, r.Code, r.Log)
	img, err := exec.Command("docker", "inspect", "--format", "{{.Config.Image}}", a.Containers()).Output()
	require.NoError(t, err)
	assert.Equal(t, repo+":2.0.0", strings.TrimSpace(string(img)), "the templated image runs")
	_, v = a.Get("/version")
	assert.Equal(t, "2.0.0", v)
}

// TestRollbackToATagWithBuildMetadata: a semver tag with build metadata
// (v1.0.0+build.7) is a tag name to rollback and to the deploy it runs alike.
func TestRollbackToATagWithBuildMetadata(t *testing.T) {
	t.Parallel()
	a := testapp.NewTracked(t, "1.0.0")
	a.Git("tag", "v1.0.0+build.7", "v1.0.0")
	require.Equal(t, 0, a.Deploy().Code)
	a.Release("2.0.0", false)
	require.Equal(t, 0, a.Deploy().Code)

	r := a.Rollback("--confirm", "ROLLBACK", "--target-tag", "v1.0.0+build.7")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Log, "rolling back to v1.0.0+build.7: commit "+a.Git("rev-parse", "v1.0.0^{commit}"))
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0", v)
}
