package deploy_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

const planFirst = `services:
  web:
    image: deploykit-hello:${DEPLOY_TAG:-dev}
    build: .
    environment:
      APP_VERSION: ${DEPLOY_VERSION:-dev}
      DB_PASSWORD: ${DB_PASSWORD:-}
      OLD_FLAG: "x"
    ports: ["127.0.0.1:${HELLO_PORT}:8080"]
    healthcheck: {test: ["CMD", "/hello", "healthcheck"], interval: 1s, timeout: 2s, retries: 10}
  side:
    image: deploykit-hello:${DEPLOY_TAG:-dev}
    environment: {DB_PASSWORD: "${DB_PASSWORD:-}"}
  old:
    image: deploykit-hello:${DEPLOY_TAG:-dev}
    environment: {DB_PASSWORD: "${DB_PASSWORD:-}"}
`

const planSecond = `services:
  web:
    image: deploykit-hello:${DEPLOY_TAG:-dev}
    build: .
    environment:
      APP_VERSION: ${DEPLOY_VERSION:-dev}
      DB_PASSWORD: ${DB_PASSWORD:-}
      NEW_FLAG: "on"
    ports: ["127.0.0.1:${PLAN_PORT}:8080"]
    volumes: [data:/data]
    networks: [default, backend]
    healthcheck: {test: ["CMD", "/hello", "healthcheck"], interval: 2s, timeout: 2s, retries: 10}
    deploy: {resources: {limits: {cpus: "0.5"}}}
  side:
    image: deploykit-hello:${DEPLOY_TAG:-dev}
    environment: {DB_PASSWORD: "${DB_PASSWORD:-}"}
    scale: 2
  worker:
    image: deploykit-hello:${DEPLOY_TAG:-dev}
    environment: {DB_PASSWORD: "${DB_PASSWORD:-}"}
volumes:
  data:
networks:
  backend:
`

// TestPlanDiff: before apply, the summary, the log and the plan output show each
// kind of change once — names of environment variables, never their values — and
// a deploy that changes nothing says so.
func TestPlanDiff(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	for name, body := range map[string]string{"first.yaml": planFirst, "second.yaml": planSecond, "same.yaml": strings.Replace(planFirst, "    build: .\n", "", 1)} {
		require.NoError(t, os.WriteFile(filepath.Join(a.Dir, name), []byte(body), 0o644))
	}
	r := a.Deploy("--compose-file", "first.yaml", "--smoke-checks", "", "--smoke-base-url", "")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "#### Plan\n\n- **old** (added): image deploykit-hello:sha-")
	assert.Contains(t, r.Summary, " (built at apply)\n- **side** (added)")
	assert.Contains(t, r.Summary, "- **web** (added)")

	// The same commit, its image pinned: nothing changes.
	r = a.Deploy("--compose-file", "same.yaml", "--pull-only", "--dry-run", "--smoke-checks", "", "--smoke-base-url", "")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "#### Plan\n\nNothing changes: every service already runs as the compose file says.\n")
	assert.Contains(t, r.Summary, "| plan | done | ")

	// The new version carries migrations 1 to 3; the database has 1.
	url := testenv.Postgres(t)
	db, err := sql.Open("postgres", url)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec("CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (1, false)")
	require.NoError(t, err)
	testenv.WriteMigrations(t, filepath.Join(a.Dir, "migrations"), 3)
	a.Release("2.0.0", false)
	planPort := testenv.FreePort(t)
	rotated := "r0tated \"pw\" $x"
	a.Env = append(a.Env, fmt.Sprintf("PLAN_PORT=%d", planPort), "ENV_DB_PASSWORD="+rotated)
	r = a.Deploy("--compose-file", "second.yaml", "--dry-run", "--smoke-checks", "", "--smoke-base-url", "",
		"--migrations-path", "migrations", "--database-url", url)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "#### Plan\n\n- migrations the database (at 1) does not have yet: 2 (create_t2), 3 (create_t3)\n")
	assert.Contains(t, r.Summary, fmt.Sprintf("- **web** (changed): image deploykit-hello:sha-%s (sha256:", a.Git("rev-parse", "--short=7", "HEAD~1")))
	for _, want := range []string{
		") → deploykit-hello:sha-" + a.Git("rev-parse", "--short=7", "HEAD") + " (built at apply); environment +NEW_FLAG",
		" −OLD_FLAG ~APP_VERSION ~DB_PASSWORD;",
		fmt.Sprintf("; ports +127.0.0.1:%d->8080/tcp −127.0.0.1:%d->8080/tcp;", planPort, a.Port),
		"; volumes +volume:" + a.Name + "_data->/data;",
		"; networks +" + a.Name + "_backend;",
		"; healthcheck " + digest("CMD /hello healthcheck (interval 1s, timeout 2s, retries 10)") + " → " + digest("CMD /hello healthcheck (interval 2s, timeout 2s, retries 10)") + ";",
		"; limits none → cpus 0.5\n",
		" (built at apply); environment ~DB_PASSWORD; replicas 1 → 2\n", // side's image is web's build
		"- **worker** (added): image deploykit-hello:sha-",
		"- **old** (removed): ran deploykit-hello:sha-",
	} {
		assert.Equal(t, 1, strings.Count(r.Summary, want), "%q once in:\n%s", want, r.Summary)
	}
	assert.Contains(t, r.Summary, "| plan | done | ")
	assert.Contains(t, r.Summary, " | 4 of 4 service(s) change |")
	assert.Contains(t, r.Log, "    - **worker** (added): image deploykit-hello:sha-", "the log shows the plan too")

	var plan struct {
		Migrations []string `json:"migrations_pending"`
		Services   []struct {
			Service, Change string
			Environment     struct{ Added, Removed, Changed []string }
		}
		Changes int
	}
	require.NoError(t, json.Unmarshal([]byte(r.Outputs["plan"]), &plan), r.Outputs["plan"])
	assert.Equal(t, 4, plan.Changes)
	assert.Equal(t, []string{"2 (create_t2)", "3 (create_t3)"}, plan.Migrations)
	var names []string
	for _, svc := range plan.Services {
		names = append(names, svc.Service+" "+svc.Change)
	}
	assert.Equal(t, []string{"side changed", "web changed", "worker added", "old removed"}, names)
	web := plan.Services[1]
	assert.Equal(t, []string{"NEW_FLAG"}, web.Environment.Added)
	assert.Equal(t, []string{"OLD_FLAG"}, web.Environment.Removed)
	assert.Equal(t, []string{"APP_VERSION", "DB_PASSWORD"}, web.Environment.Changed)
	for _, out := range []string{r.Summary, r.Log, r.Outputs["plan"]} {
		assert.NotContains(t, out, testapp.Secret, "the old value")
		assert.NotContains(t, out, "pa$$word")
		assert.NotContains(t, out, "r0tated", "the new value")
	}
}

// digest is how the plan shows a healthcheck: a short SHA-256 of its text.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:6])
}
