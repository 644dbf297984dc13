package stackcopy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/compose"
)

// load writes text as a compose file and loads it as production's model.
func load(t *testing.T, text string) (*types.Project, compose.Project) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	require.NoError(t, os.WriteFile(file, []byte(text), 0o644))
	p, err := compose.Load(context.Background(), file, "", nil, nil)
	require.NoError(t, err)
	return p, compose.Project{File: file, Name: p.Name}
}

// copied plans the copy of text and loads its merged model as docker compose
// will run it.
func copied(t *testing.T, text string, o Options, own ...Mount) (*Copy, *types.Project) {
	t.Helper()
	p, prod := load(t, text)
	c, err := New(p, Rehearsal, "rehearse", o, own)
	require.NoError(t, err)
	require.NoError(t, c.Check(context.Background(), prod, nil))
	cp, remove, err := c.Project(prod, t.TempDir())
	require.NoError(t, err)
	defer remove()
	m, err := compose.Load(context.Background(), cp.File, cp.Name, cp.Env, nil, cp.Overrides...)
	require.NoError(t, err)
	return c, m
}

// TestCopyOfAStackOnAnExternalDefaultNetwork: a stack whose services share
// production's proxy network as their default (external) gets a copy on a
// network of its own, internal, under the same key, aliases kept: its db
// resolves to the copy's db, never production's.
func TestCopyOfAStackOnAnExternalDefaultNetwork(t *testing.T) {
	c, m := copied(t, `name: shop
services:
  web:
    image: shop
    ports: ["8080:8080"]
  db:
    image: postgres
    networks:
      default:
        aliases: [database]
        ipv4_address: 172.30.0.9
networks:
  default:
    external: true
    name: edge
`, Options{})
	assert.Regexp(t, `^shop-rehearsal-\d{8}t\d{6}$`, c.Name)
	assert.Equal(t, c.Name, m.Name)
	for _, svc := range []string{"web", "db"} {
		assert.Empty(t, m.Services[svc].Ports, svc)
		assert.Equal(t, []string{"default"}, keys(m.Services[svc].Networks), svc)
	}
	assert.Equal(t, []string{"database"}, m.Services["db"].Networks["default"].Aliases, "aliases are kept")
	assert.Empty(t, m.Services["db"].Networks["default"].Ipv4Address, "a fixed address is not")
	n := m.Networks["default"]
	assert.False(t, bool(n.External))
	assert.Equal(t, c.Name+"_default", n.Name)
	assert.True(t, n.Internal, "no route out of the copy")
	assert.Equal(t, "shop", n.Labels[LabelOf])
	assert.Contains(t, c.Changes, "network default (external edge) replaced by the copy's own")
}

// TestCopyVolumesAreItsOwn: external volumes, volumes with a fixed name and
// volumes of another driver (an NFS share, a bind through driver_opts) are
// replaced by empty local volumes of the copy's; a writable bind mount is
// refused, one the copy replaces (the rehearsal's SQLite directory) becomes a
// volume of its own.
func TestCopyVolumesAreItsOwn(t *testing.T) {
	c, m := copied(t, `name: shop
services:
  web:
    image: shop
    volumes:
      - uploads:/uploads
      - shared:/shared
      - nfs:/nfs
      - /srv/shop/data:/data
      - /etc/shop:/config:ro
  db:
    image: postgres
    volumes: [pgdata:/var/lib/postgresql/data]
volumes:
  pgdata:
    name: shop-production-db
  uploads:
    external: true
    name: shop_uploads
  shared:
  nfs:
    driver_opts: {type: none, o: bind, device: /srv/nfs}
`, Options{}, Mount{Service: "web", Target: "/data", Volume: "deploykit-rehearsal-sqlite"})
	for key, want := range map[string]string{"pgdata": "named shop-production-db", "uploads": "external shop_uploads", "nfs": "driver local with its options"} {
		assert.Contains(t, c.Changes, "volume "+key+" ("+want+") replaced by an empty one of the copy's")
	}
	for _, key := range []string{"pgdata", "uploads", "shared", "nfs", "deploykit-rehearsal-sqlite"} {
		v := m.Volumes[key]
		assert.Equal(t, c.Name+"_"+key, v.Name, key)
		assert.False(t, bool(v.External), key)
		assert.Empty(t, v.DriverOpts, key)
	}
	var data types.ServiceVolumeConfig
	for _, v := range m.Services["web"].Volumes {
		if v.Target == "/data" {
			data = v
		}
	}
	assert.Equal(t, types.VolumeTypeVolume, data.Type, "the bind mount the copy replaces is a volume of its own")

	p, _ := load(t, "name: shop\nservices:\n  web:\n    image: shop\n    volumes: [\"/srv/shop/data:/data\"]\n")
	_, err := New(p, Drill, "drill", Options{}, nil)
	require.Error(t, err)
	assert.Equal(t, action.ExitUsage, action.ExitCode(err))
	assert.EqualError(t, err, "input drill: service web bind-mounts /srv/shop/data writable: a copy of the stack would write into production's files (use a named volume, or mount it read-only)")
}

// TestCopyDropsWhatPointsOutside: extra_hosts and external_links point out of
// the copy: they are dropped (and said); a service on the host's default
// bridge joins the copy's own network; network_mode service: of a service of
// the stack stays.
func TestCopyDropsWhatPointsOutside(t *testing.T) {
	c, m := copied(t, `name: shop
services:
  web:
    image: shop
    extra_hosts: ["host.docker.internal:host-gateway", "db.internal:10.0.0.5"]
    external_links: [legacy-db:db]
  worker:
    image: shop
    network_mode: bridge
  sidecar:
    image: proxy
    network_mode: service:web
`, Options{})
	assert.Empty(t, m.Services["web"].ExtraHosts)
	assert.Empty(t, m.Services["web"].ExternalLinks)
	assert.Empty(t, m.Services["worker"].NetworkMode)
	assert.Equal(t, []string{"default"}, keys(m.Services["worker"].Networks))
	assert.Equal(t, "service:web", m.Services["sidecar"].NetworkMode)
	assert.Equal(t, []string{
		"web's extra_hosts dropped", "web's external_links dropped", "worker on the copy's own network instead of network_mode bridge",
	}, filter(c.Changes, func(s string) bool { return !strings.HasPrefix(s, "network ") }))
	assert.Equal(t, "networks of its own, internal, volumes of its own, no published ports; "+strings.Join(c.Changes, "; "), c.Summary())
}

// TestCopyRefusesWhatCannotBeIsolated: another network stack (the host's, a
// container's, a service outside the stack), another container's volumes, a
// fixed container name: bad input, with the service and what to do.
func TestCopyRefusesWhatCannotBeIsolated(t *testing.T) {
	for _, tc := range []struct{ service, want string }{
		{"network_mode: host", "input rehearse: service x has network_mode host: a copy of it would share the host's network (and production's ports and addresses); give it networks of its own to rehearse it"},
		{"network_mode: container:vpn", "input rehearse: service x has network_mode container:vpn: a copy of it would share that container's network; use network_mode service: of a service of the stack, or networks"},
		{"volumes_from: [\"container:files\"]", "input rehearse: service x has volumes_from container:files: a copy of it would write into that container's volumes"},
		{"container_name: shop-x", "input rehearse: service x has container_name shop-x: a copy of the stack cannot run beside it"},
	} {
		t.Run(tc.service, func(t *testing.T) {
			p, _ := load(t, "name: shop\nservices:\n  web:\n    image: shop\n  x:\n    image: x\n    "+tc.service+"\n")
			_, err := New(p, Rehearsal, "rehearse", Options{}, nil)
			require.Error(t, err)
			assert.Equal(t, action.ExitUsage, action.ExitCode(err))
			assert.EqualError(t, err, tc.want)
		})
	}
}

// TestCopyKnowsItIsACopy: every service gets DEPLOYKIT_COPY and copy-env's
// values over its own, through docker compose's environment (the override
// names them: no value is written to a file, and a $ stays a $); the labels
// that let the next run find a killed run's copy; copy-outbound leaves its
// networks routed. Bad copy-env lines are bad input and never show a value.
func TestCopyKnowsItIsACopy(t *testing.T) {
	c, m := copied(t, `name: shop
services:
  web:
    image: shop
    environment:
      WEBHOOK_URL: https://hooks.example.com/production
      SMTP_URL: smtp://mail
  db:
    image: postgres
`, Options{Env: []string{"WEBHOOK_URL=", "SMTP_URL=smtp://user:pa$$word@sandbox"}, Outbound: true})
	assert.NotContains(t, c.Override(), "pa$$word")
	assert.NotContains(t, c.Override(), "sandbox")
	for _, svc := range []string{"web", "db"} {
		env := m.Services[svc].Environment
		assert.Equal(t, "rehearsal", *env[EnvVar], svc)
		assert.Equal(t, "", *env["WEBHOOK_URL"], svc)
		assert.Equal(t, "smtp://user:pa$$word@sandbox", *env["SMTP_URL"], svc)
		assert.Equal(t, map[string]string{LabelOf: "shop", LabelKind: "rehearsal"}, map[string]string(m.Services[svc].Labels), svc)
	}
	assert.False(t, m.Networks["default"].Internal, "copy-outbound: the copy may reach outside")
	assert.Equal(t, "networks of its own, with outbound access (copy-outbound), volumes of its own, no published ports", c.Summary())

	p, _ := load(t, "name: shop\nservices:\n  web:\n    image: shop\n")
	for line, want := range map[string]string{
		"SECRET":             "input copy-env: SECRET is not KEY=value (a variable name, then =, then the value, which may be empty)",
		"1X=hunter2":         "input copy-env: 1X=… is not KEY=value (a variable name, then =, then the value, which may be empty)",
		"DEPLOYKIT_COPY=no":  "input copy-env: DEPLOYKIT_COPY is set by the kit (rehearsal or drill)",
		"A=1\nA=2":           "input copy-env: A is set twice",
		"A B=hunter2 secret": "input copy-env: A B=… is not KEY=value (a variable name, then =, then the value, which may be empty)",
	} {
		_, err := New(p, Rehearsal, "rehearse", Options{Env: strings.Split(line, "\n")}, nil)
		require.Error(t, err, line)
		assert.Equal(t, action.ExitUsage, action.ExitCode(err))
		assert.EqualError(t, err, want)
		assert.NotContains(t, err.Error(), "hunter2")
	}
}

// TestCheckFailsClosed: whatever the override misses, the merged model is
// checked, and a copy that would touch production is refused.
func TestCheckFailsClosed(t *testing.T) {
	text := `name: shop
services:
  web:
    image: shop
    ports: ["8080:80"]
    volumes: [data:/data]
    extra_hosts: ["a:10.0.0.1"]
networks:
  default: {external: true, name: edge}
volumes:
  data: {external: true}
`
	p, prod := load(t, text)
	for _, tc := range []struct{ drop, want string }{
		{"    ports: !reset []\n", "web publishes a port"},
		{"    extra_hosts: !reset []\n", "web has extra_hosts or external_links"},
		{"  \"default\": !override\n", "web joins network default (edge), not the copy's own"},
		{"  \"data\": !override\n", "web mounts volume data (data), not an empty one of the copy's own"},
		{"    environment:\n      DEPLOYKIT_COPY: rehearsal\n", "web lacks DEPLOYKIT_COPY=rehearsal"},
	} {
		c, err := New(p, Rehearsal, "rehearse", Options{}, nil)
		require.NoError(t, err)
		require.Contains(t, c.override, tc.drop)
		c.override = strings.Replace(c.override, tc.drop, map[bool]string{true: "  \"zz\":\n", false: ""}[strings.HasPrefix(tc.drop, "  \"")], 1)
		err = c.Check(context.Background(), prod, nil)
		require.Error(t, err, tc.drop)
		assert.Contains(t, err.Error(), "the copy "+c.Name+" would not be isolated from production: "+tc.want)
	}
}

func keys[V any](m map[string]V) []string { return sortedKeys(m) }

func filter(list []string, keep func(string) bool) []string {
	var out []string
	for _, s := range list {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}
