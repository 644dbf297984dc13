package deploy_test

import (
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// isolationStack is examples/app's stack made as hostile to a copy as compose
// files get: every service on an external default network that production
// shares (with a webhook receiver on it), the database on a volume with a
// fixed name, a notifier that calls production's webhook (by name on that
// network, and by the host's address through extra_hosts) with production's
// secret in the URL, and writes into an external volume.
const isolationStack = `services:
  web:
    image: ${IMAGE}:${DEPLOY_TAG}
    environment:
      APP_VERSION: ${DEPLOY_VERSION:-dev}
      DATABASE_URL: postgres://postgres@db:5432/postgres?sslmode=disable
      DB_PASSWORD_FILE: /run/secrets/db_password
    secrets: [db_password]
    depends_on:
      db: {condition: service_healthy}
    networks:
      edge:
        aliases: ["${APP_ALIAS}"]
      default: {}
    stop_grace_period: 10s
  db:
    image: ${POSTGRES_IMAGE}
    environment:
      POSTGRES_PASSWORD_FILE: /run/secrets/db_password
    secrets: [db_password]
    volumes: [db:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres", "-h", "/var/run/postgresql"]
      interval: 1s
      timeout: 2s
      retries: 30
  notifier:
    image: ${PROBE_IMAGE}
    command: [call, /uploads, WEBHOOK_URL, WEBHOOK_URL2]
    environment:
      WEBHOOK_URL: http://hooks:9000/by-name?secret=${HOOK_SECRET}
      WEBHOOK_URL2: http://hooks.internal:${HOOK_PORT}/by-address?secret=${HOOK_SECRET}
    extra_hosts: ["hooks.internal:${HOOK_IP}"]
    volumes: [uploads:/uploads]
networks:
  default:
    external: true
    name: ${PROD_NETWORK}
  edge:
    external: true
    name: ${EDGE_NETWORK}
secrets:
  db_password:
    environment: DB_PASSWORD
volumes:
  db:
    name: ${DB_VOLUME}
  uploads:
    external: true
    name: ${UPLOADS_VOLUME}
`

// TestRehearsalCopySharesNothingWithProduction: a rehearsal of that stack
// runs its copy on networks and volumes of its own. While the copy runs and
// after, production's network holds only production's containers, the
// release's migration never reaches production's database (the release fails
// its checks in the copy, so production never changes), production's volumes
// hold only what production wrote, and the webhook hears only production —
// also with copy-outbound, where copy-env empties the webhook's URL. The
// summary says what the copy replaced and dropped.
func TestRehearsalCopySharesNothingWithProduction(t *testing.T) {
	t.Parallel()
	st := newStack(t, []byte(isolationStack))
	st.network, st.alias = "dk-edge-"+st.name, "web-"+st.name
	st.port, st.plain = testenv.Proxies(t, st.name, st.network, st.alias, st.down)
	prodNet, dbVolume, uploads := "dk-prod-"+st.name, "dk-db-"+st.name, "dk-uploads-"+st.name
	docker := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("docker", args...).CombinedOutput()
		require.NoError(t, err, "docker %v: %s", args, out)
		return strings.TrimSpace(string(out))
	}
	docker("network", "create", prodNet)
	docker("volume", "create", uploads)
	t.Cleanup(func() {
		_ = exec.Command("docker", "rm", "-f", "hooks-"+st.name).Run()
		st.down()
		_ = exec.Command("docker", "volume", "rm", "-f", uploads, dbVolume).Run()
		_ = exec.Command("docker", "network", "rm", prodNet).Run()
	})
	// Production's webhook: on production's network as hooks, and published on
	// that network's gateway address at a port Docker chooses.
	gateway := docker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", prodNet)
	probe := testenv.ProbeImage(t)
	docker("run", "-d", "--name", "hooks-"+st.name, "--network", prodNet, "--network-alias", "hooks", "-p", gateway+"::9000", probe, "record", "9000")
	hookPort := strings.TrimPrefix(docker("port", "hooks-"+st.name, "9000"), gateway+":")
	heard := func() string { return docker("logs", "hooks-"+st.name) }

	const secret = "hook-secret-0123456789"
	st.args = []string{"--strategy", "rolling", "--app-port", "8080", "--route-network", "edge", "--backup-container", st.name + "-db-1"}
	st.env = []string{"POSTGRES_IMAGE=" + testenv.PostgresImage(t), "EDGE_NETWORK=" + st.network, "APP_ALIAS=" + st.alias, "ENV_DB_PASSWORD=isolate-pw-0123456789",
		"PROD_NETWORK=" + prodNet, "DB_VOLUME=" + dbVolume, "UPLOADS_VOLUME=" + uploads, "PROBE_IMAGE=" + probe,
		"HOOK_SECRET=" + secret, "HOOK_IP=" + gateway, "HOOK_PORT=" + hookPort}
	st.release("1.0.0", buildApp(t, appBuild{}))
	r := st.deploy()
	require.Equal(t, 0, r.Code, r.Log)
	for _, note := range []string{"one", "two"} {
		st.post(note)
	}
	testapp.WaitFor(t, "production's notifier to call the webhook both ways", func() bool {
		return strings.Count(heard(), "copy=") == 2
	})
	hooks := heard()
	assert.Regexp(t, `(?m)^/by-name copy=$`, hooks, "production's call by name")
	assert.Regexp(t, `(?m)^/by-address copy=$`, hooks, "production's call by address")
	production := func() (members, tables string) {
		members = docker("network", "inspect", "-f", `{{range .Containers}}{{.Name}} {{end}}`, prodNet)
		tables = docker("exec", st.name+"-db-1", "psql", "-X", "-At", "-U", "postgres", "-c", "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'")
		return members, tables
	}
	members, tables := production()
	require.Equal(t, "notes,schema_migrations", tables)

	// 2.0.0 migrates (a table of its own) and then fails its checks: the
	// rehearsal refuses it, so production must never see that table.
	st.release("2.0.0", buildApp(t, appBuild{column: "missing", migrations: map[string]string{
		"000002_rehearsed.up.sql":   "CREATE TABLE rehearsed (id int);\n",
		"000002_rehearsed.down.sql": "DROP TABLE rehearsed;\n",
	}}))
	for _, run := range []struct {
		name string
		args []string
	}{
		{"isolated", nil},
		{"copy-outbound, the webhook emptied by copy-env", []string{"--copy-outbound", "--copy-env", "WEBHOOK_URL=\nWEBHOOK_URL2="}},
	} {
		// Watch production while the copy runs.
		var mu sync.Mutex
		var seenCopy bool
		var broken []string
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				copies := st.copies()
				m, _ := exec.Command("docker", "network", "inspect", "-f", `{{range .Containers}}{{.Name}} {{end}}`, prodNet).Output()
				tb, _ := exec.Command("docker", "exec", st.name+"-db-1", "psql", "-X", "-At", "-U", "postgres", "-c", "SELECT count(*) FROM pg_tables WHERE tablename = 'rehearsed'").Output()
				mu.Lock()
				seenCopy = seenCopy || copies != ""
				if strings.Contains(string(m), "-rehearsal-") {
					broken = append(broken, "production's network holds "+string(m))
				}
				if strings.TrimSpace(string(tb)) == "1" {
					broken = append(broken, "the rehearsed migration reached production's database")
				}
				mu.Unlock()
			}
		}()
		r = st.deploy(append([]string{"--rehearse"}, run.args...)...)
		close(stop)
		<-stopped
		assert.Equal(t, 1, r.Code, "%s: %s", run.name, r.Log)
		assert.Contains(t, r.Log, "::error::deploy of 2.0.0 failed at rehearse: version 2.0.0 fails its checks on a copy of production's data: web: ", run.name)
		mu.Lock()
		assert.True(t, seenCopy, "%s: the watch saw the copy run", run.name)
		assert.Empty(t, broken, run.name)
		mu.Unlock()
		m, tb := production()
		assert.Equal(t, members, m, "%s: production's network holds what it held", run.name)
		assert.Equal(t, tables, tb, "%s: production's database has no table of the copy's", run.name)
		assert.Equal(t, "1|f", st.schema(), run.name)
		_, notes := st.get("/notes")
		assert.Equal(t, "one\ntwo", notes, run.name)
		assert.Equal(t, hooks, heard(), "%s: the webhook heard only production", run.name)
		calls := docker("run", "--rm", "-v", uploads+":/u", "--entrypoint", "cat", testenv.PostgresImage(t), "/u/calls")
		assert.NotContains(t, calls, "copy=rehearsal", "%s: the copy never wrote into production's external volume", run.name)
		assert.Empty(t, st.copies(), "%s: the copy is removed", run.name)
		for _, change := range []string{
			"network default (external " + prodNet + ") replaced by the copy's own",
			"volume db (named " + dbVolume + ") replaced by an empty one of the copy's",
			"volume uploads (external " + uploads + ") replaced by an empty one of the copy's",
			"notifier's extra_hosts dropped",
		} {
			assert.Contains(t, r.Summary, change, run.name)
		}
	}
	assert.NotContains(t, r.Log+r.Summary, secret)
}
