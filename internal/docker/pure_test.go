package docker

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What the engine seam works out without an engine: how it picks its
// connection, and how it shows what the engine answered.

func TestNewPicksTheConnection(t *testing.T) {
	for _, tc := range []struct {
		env        []string
		host, conf string
	}{
		{[]string{"DOCKER_HOST=unix:///run/user/1000/docker.sock", "HOME=/home/ci"}, "unix:///run/user/1000/docker.sock", "/home/ci/.docker"},
		{[]string{"DOCKER_HOST=tcp://10.0.0.5:2376", "DOCKER_CONFIG=/etc/ci-docker"}, "tcp://10.0.0.5:2376", "/etc/ci-docker"},
		{[]string{"DOCKER_HOST=ssh://deploy@example.com"}, "ssh://deploy@example.com", ""},
		{[]string{"DOCKER_CONTEXT=prod"}, "context prod", ""},
		{[]string{"DOCKER_CONTEXT=default", "DOCKER_HOST=unix:///var/run/docker.sock"}, "unix:///var/run/docker.sock", ""},
	} {
		c, err := New(tc.env)
		require.NoError(t, err, tc.env)
		assert.Equal(t, tc.host, c.Host(), tc.env)
		assert.Equal(t, tc.conf, c.config, tc.env)
		require.NoError(t, c.Close())
	}
	_, err := New([]string{"DOCKER_HOST=not a url"})
	assert.ErrorContains(t, err, `docker client for "not a url": `)
}

func TestPlanDiffStrings(t *testing.T) {
	assert.Equal(t, "127.0.0.1:8080->80/tcp", PortString("127.0.0.1", "8080", "80", ""))
	assert.Equal(t, ":53->53/udp", PortString("", "53", "53", "udp"))
	assert.Equal(t, "volume:pgdata->/var/lib/postgresql/data", MountString("volume", "pgdata", "/var/lib/postgresql/data"))
	assert.Equal(t, "CMD-SHELL curl -f localhost/health (interval 5s, timeout 2s, retries 3)",
		HealthcheckString([]string{"CMD-SHELL", "curl -f localhost/health"}, 5*time.Second, 2*time.Second, 3))
}

func TestRemovedSaysWhat(t *testing.T) {
	assert.True(t, Removed{Projects: []string{"shop"}}.Empty(), "projects alone are not something removed")
	r := Removed{Containers: []string{"shop-rehearse-web-1", "shop-rehearse-db-1"}, Volumes: []string{"shop-rehearse_data"}}
	assert.False(t, r.Empty())
	assert.Equal(t, "containers shop-rehearse-web-1, shop-rehearse-db-1; volumes shop-rehearse_data", r.String())
	assert.Equal(t, "a", firstOr([]string{"a", "b"}, "c"))
	assert.Equal(t, "c", firstOr(nil, "c"))
	host, pid, ok := strings.Cut(Owner(), "/")
	assert.True(t, ok)
	assert.NotEmpty(t, host)
	assert.NotEmpty(t, pid)
}

func TestLastProbe(t *testing.T) {
	assert.Equal(t, "", lastProbe(&container.Health{}))
	h := &container.Health{Log: []*container.HealthcheckResult{{Output: "old"}, {Output: "  curl: (7) refused\x1b[0m\n"}}}
	assert.Equal(t, ": curl: (7) refused [0m", lastProbe(h), "the newest, trimmed, control characters blanked")
	h.Log[1].Output = strings.Repeat("x", 300)
	assert.Equal(t, ": "+strings.Repeat("x", 200)+"…", lastProbe(h))
}

func TestToService(t *testing.T) {
	three := uint64(3)
	started := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := swarm.Service{ID: "svc1"}
	s.Spec.Name = "shop_web"
	s.Spec.Labels = map[string]string{labelStackNamespace: "shop"}
	s.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &three}
	s.Spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "shop:2"}
	s.PreviousSpec = &swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "shop:1"}}}
	s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackStarted, Message: "update paused", StartedAt: &started}
	assert.Equal(t, Service{ID: "svc1", Name: "shop_web", Short: "web", Stack: "shop", Image: "shop:2", Prev: "shop:1",
		Update: "rollback_started", Message: "update paused", Started: started, Replicas: 3}, toService(s))

	global := swarm.Service{ID: "svc2"}
	global.Spec.Name = "agent"
	assert.Equal(t, Service{ID: "svc2", Name: "agent", Short: "agent", Replicas: 1}, toService(global), "a service of no stack, global: one task")
}

func TestLastLines(t *testing.T) {
	_, err := lastLines(nil, errors.New("no such container"))
	assert.EqualError(t, err, "no such container")
	out, err := lastLines(io.NopCloser(strings.NewReader("")), nil)
	require.NoError(t, err)
	assert.Empty(t, out)
	assert.Equal(t, "20", tail(20).Tail)
}
