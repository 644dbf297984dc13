package deploy

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
)

// TestSeamRehearsalRefusals: every input or stack that cannot be rehearsed is
// refused with exit 2 before anything changes: the swarm target, no
// backup-container, a backup-container that is not one of the stack's services,
// a service with a fixed container name, a writable bind mount, another
// network stack (network_mode host, container:) or another container's
// volumes (a copy would share them with production), a bad copy-env line, a
// health-url no service publishes.
func TestSeamRehearsalRefusals(t *testing.T) {
	stack := func(services string) string { return "name: shop\nservices:\n" + services }
	db := "  db:\n    image: postgres:17\n"
	web := "  web:\n    image: registry.example.com/shop:${DEPLOY_TAG}\n    ports: [\"127.0.0.1:8080:8080\"]\n"
	for _, tc := range []struct {
		name, compose string
		set           func(*Options)
		want          string
	}{
		{"swarm", stack(web + db), func(o *Options) { o.Target = "swarm" },
			"input rehearse: target swarm is not rehearsed"},
		{"no backup-container", stack(web + db), func(o *Options) { o.Backup.Container = "" },
			"input rehearse: set backup-container to the stack's database container"},
		{"sqlite without backup-sqlite-path", stack(web + db), func(o *Options) { o.Backup.Engine, o.Backup.Container = "sqlite", "" },
			"input rehearse: set backup-sqlite-path to the SQLite file the app's service bind-mounts: the rehearsal restores the pre-deploy backup into that mount of a copy of the stack"},
		{"a container of another project", stack(web + db), func(o *Options) { o.Backup.Container = "other-db-1" },
			"input rehearse: backup-container other-db-1 is not a container of the compose project shop (services: db, web)"},
		{"a fixed container name", stack(web + db + "  cache:\n    image: redis\n    container_name: cache\n"), nil,
			"input rehearse: service cache has container_name cache: a copy of the stack cannot run beside it"},
		{"a writable bind mount", stack(web + db + "  files:\n    image: nginx\n    volumes: [\"/srv/uploads:/uploads\"]\n"), nil,
			"input rehearse: service files bind-mounts /srv/uploads writable: a copy of the stack would write into production's files"},
		{"network_mode host", stack(web + db + "  agent:\n    image: agent\n    network_mode: host\n"), nil,
			"input rehearse: service agent has network_mode host: a copy of it would share the host's network"},
		{"network_mode container:", stack(web + db + "  agent:\n    image: agent\n    network_mode: container:vpn\n"), nil,
			"input rehearse: service agent has network_mode container:vpn: a copy of it would share that container's network"},
		{"volumes_from a container", stack(web + db + "  agent:\n    image: agent\n    volumes_from: [\"container:files\"]\n"), nil,
			"input rehearse: service agent has volumes_from container:files: a copy of it would write into that container's volumes"},
		{"a bad copy-env line", stack(web + db), func(o *Options) { o.Copy.Env = []string{"WEBHOOK_URL=", "not a variable=x"} },
			"input copy-env: not a variable=… is not KEY=value"},
		{"rehearse-lock-refuse without rehearse", stack(web + db), func(o *Options) { o.Rehearse, o.LockRefuse = false, true },
			"input rehearse-lock-refuse: it stops a deploy whose rehearsed migrations held a lock longer than rehearse-lock-limit; set rehearse: true and a rehearse-lock-limit above 0 (now rehearse: false, rehearse-lock-limit: 5s)"},
		{"rehearse-lock-refuse without a limit", stack(web + db), func(o *Options) { o.LockRefuse, o.LockLimit = true, 0 },
			"(now rehearse: true, rehearse-lock-limit: 0s)"},
		{"a health-url no service publishes", stack(web + db), func(o *Options) { o.HealthURL = "http://127.0.0.1:9999/health" },
			"input rehearse: no service of shop publishes port 9999 of health-url http://127.0.0.1:9999/health"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sm := newSeam(t)
			require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "compose.yaml"), []byte(tc.compose), 0o644))
			o := DefaultOptions()
			o.Rehearse, o.Backup.Container, o.HealthURL = true, "shop-db-1", "http://127.0.0.1:8080/health"
			if tc.set != nil {
				tc.set(&o)
			}
			o.HistoryFile = filepath.Join(sm.varDir, "history.log")
			a := action.NewContext([]string{"GITHUB_WORKSPACE=" + sm.ws, "RUNNER_TEMP=" + t.TempDir(), "HOME=" + t.TempDir()}, &sm.log)
			a.Spec = &Spec
			s, err := newState(a, o)
			if err == nil {
				s.Exec, s.Docker = sm.exec, sm.engine
				t.Cleanup(s.Cleanup)
				s.Runner.Logf = func(string, ...any) {}
				err = s.One(context.Background(), PreflightStep, s)
			}
			require.Error(t, err)
			assert.Equal(t, action.ExitUsage, action.ExitCode(err))
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, sm.exec.Changes(), "nothing changed")
		})
	}
}

// TestSeamRehearsalPlan: a stack that can be rehearsed: the database service is
// backup-container's, health-url and smoke-base-url are found behind the ports
// their services publish, and rehearse implies the pre-deploy backup.
func TestSeamRehearsalPlan(t *testing.T) {
	sm := newSeam(t)
	require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "compose.yaml"), []byte("name: shop\nservices:\n"+
		"  web:\n    image: registry.example.com/shop:${DEPLOY_TAG}\n    ports: [\"127.0.0.1:8080:3000\"]\n    volumes: [\"/etc/shop:/config:ro\"]\n"+
		"  db:\n    image: postgres:17\n    volumes: [\"data:/var/lib/postgresql/data\"]\nvolumes:\n  data:\n"), 0o644))
	o := DefaultOptions()
	o.Rehearse, o.Backup.Container = true, "shop-db-1"
	o.HealthURL, o.SmokeBaseURL = "http://127.0.0.1:8080/health?deep=1", "http://127.0.0.1:8080/"
	s := sm.state(t, o)
	assert.True(t, s.Opts.Backup.Enabled, "rehearse implies the pre-deploy backup")
	s.Runner.Logf = func(string, ...any) {}
	require.NoError(t, s.One(context.Background(), PreflightStep, s))
	require.NotNil(t, s.rehearsal)
	assert.Equal(t, "db", s.rehearsal.db)
	assert.Equal(t, []string{"db", "web"}, s.rehearsal.started)
	assert.Equal(t, target{service: "web", port: 3000, path: "/health?deep=1"}, s.rehearsal.health)
	assert.Equal(t, target{service: "web", port: 3000, path: "/"}, s.rehearsal.smoke)

	require.NotNil(t, s.rehearsal.plan, "the copy is planned and its model checked in preflight")
	assert.Regexp(t, `^shop-rehearsal-\d{8}t\d{6}$`, s.rehearsal.name)
	assert.Equal(t, "networks of its own, internal, volumes of its own, no published ports", s.rehearsal.plan.Summary())
	snap := Snapshot{Services: map[string]ServiceImage{
		"web": {Image: "registry.example.com/shop:sha-1", ImageID: "sha256:aa", Ref: "deploykit-snapshot/shop-web:aa"},
		"db":  {Image: "postgres:17", ImageID: "sha256:bb", Ref: "deploykit-snapshot/shop-db:bb"},
	}}
	assert.Equal(t, []string{"web"}, s.rehearsal.running(snap), "the database keeps the migrated data")
	assert.Equal(t, "services:\n  web:\n    image: \"deploykit-snapshot/shop-web:aa\"\n    pull_policy: never\n    build: !reset null\n",
		runningOverride(snap, s.rehearsal.running(snap)))
}

// TestSeamRehearsalPlanRolling: with strategy rolling nothing of the stack
// publishes the app's port (the proxy does); the rehearsal checks each service
// deployed, but the database, at its own address and app-port, as the switch
// does. A rolling deploy of the database alone has no release to rehearse.
func TestSeamRehearsalPlanRolling(t *testing.T) {
	compose := "name: shop\nservices:\n" +
		"  web:\n    image: registry.example.com/shop:${DEPLOY_TAG}\n    networks:\n      edge: {aliases: [shop-web]}\n      default: {}\n" +
		"  db:\n    image: postgres:17\n    volumes: [\"data:/var/lib/postgresql/data\"]\n" +
		"networks:\n  edge: {external: true, name: edge}\n  default: {ipam: {config: [{subnet: 172.31.0.0/24}]}}\nvolumes:\n  data:\n"
	plan := func(t *testing.T, service string) (*State, error) {
		sm := newSeam(t)
		require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "compose.yaml"), []byte(compose), 0o644))
		o := DefaultOptions()
		o.Rehearse, o.Backup.Container, o.Strategy, o.AppPort, o.Service = true, "shop-db-1", "rolling", 8080, service
		o.HealthURL, o.SmokeBaseURL = "http://127.0.0.1:80/health", "http://127.0.0.1:80"
		s := sm.state(t, o)
		s.Runner.Logf = func(string, ...any) {}
		err := s.One(context.Background(), PreflightStep, s)
		assert.Empty(t, sm.exec.Changes(), "nothing changed")
		return s, err
	}
	s, err := plan(t, "web")
	require.NoError(t, err)
	require.NotNil(t, s.rehearsal)
	assert.Equal(t, []string{"web"}, s.rehearsal.direct, "checked at its own address and app-port")
	assert.Equal(t, []string{"db", "web"}, s.rehearsal.started, "the copy runs the whole stack")

	_, err = plan(t, "db")
	require.Error(t, err)
	assert.Equal(t, action.ExitUsage, action.ExitCode(err))
	assert.Contains(t, err.Error(), "input rehearse: strategy rolling deploys only db, the database the rehearsal restores: there is no release to rehearse")
}

// TestSeamRehearsalSQLite: with backup-engine sqlite the rehearsal finds the
// service that bind-mounts the file's directory (that writable bind mount is
// the one the copy replaces with a volume of its own); no such mount, or
// several, is refused before anything changes.
func TestSeamRehearsalSQLite(t *testing.T) {
	web := "  web:\n    image: registry.example.com/shop:${DEPLOY_TAG}\n    ports: [\"127.0.0.1:8080:8080\"]\n"
	plan := func(t *testing.T, services, path string) (*State, error) {
		sm := newSeam(t)
		require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "compose.yaml"), []byte("name: shop\nservices:\n"+services), 0o644))
		o := DefaultOptions()
		o.Rehearse, o.Backup.Engine, o.Backup.SQLitePath = true, "sqlite", path
		o.HealthURL = "http://127.0.0.1:8080/health"
		s := sm.state(t, o)
		s.Runner.Logf = func(string, ...any) {}
		err := s.One(context.Background(), PreflightStep, s)
		assert.Empty(t, sm.exec.Changes(), "nothing changed")
		return s, err
	}
	s, err := plan(t, web+"    volumes: [\"/srv/shop/data:/data\", \"/etc/shop:/config:ro\"]\n", "/srv/shop/data/db/app.db")
	require.NoError(t, err)
	assert.Equal(t, &sqliteMount{service: "web", source: "/srv/shop/data", target: "/data", name: "db/app.db"}, s.rehearsal.sqlite)
	assert.Equal(t, "", s.rehearsal.db)

	_, err = plan(t, web+"    volumes: [\"data:/data\"]\nvolumes:\n  data:\n", "/var/lib/docker/volumes/shop_data/_data/app.db")
	require.Error(t, err)
	assert.Equal(t, action.ExitUsage, action.ExitCode(err))
	assert.Contains(t, err.Error(), "input rehearse: no service of shop bind-mounts a directory holding backup-sqlite-path /var/lib/docker/volumes/shop_data/_data/app.db writable")

	_, err = plan(t, web+"    volumes: [\"/srv/shop:/srv/shop\"]\n  worker:\n    image: registry.example.com/shop:${DEPLOY_TAG}\n    volumes: [\"/srv/shop/data:/data\"]\n", "/srv/shop/data/app.db")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "input rehearse: backup-sqlite-path /srv/shop/data/app.db is in the bind mounts of several services: web (/srv/shop:/srv/shop), worker (/srv/shop/data:/data)")

	_, err = plan(t, web+"    volumes: [\"/srv/shop/data:/data\", \"/srv/uploads:/uploads\"]\n", "/srv/shop/data/app.db")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "input rehearse: service web bind-mounts /srv/uploads writable", "other writable bind mounts are still refused")
}
