package docker

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv/enginefake"
)

// Fast tests of what the client asks the engine and makes of its answers, at
// the HTTP seam: an Engine API answered in process (enginefake). Whether the
// real engine behaves so is the Docker tests' part.

func newDaemon(t *testing.T) (*enginefake.Daemon, *Client) {
	t.Helper()
	d := enginefake.New(t)
	c, err := New([]string{"DOCKER_HOST=" + d.Host})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return d, c
}

func notFound(w http.ResponseWriter, msg string) { enginefake.Fail(w, http.StatusNotFound, msg) }

// TestProjectContainersReadsListAndInspect: a project's containers, from the
// list filtered by its compose label and one inspect each (health, its last
// probe, the configured image, its addresses), sorted by service and name; a
// container gone between list and inspect keeps what the list said.
func TestProjectContainersReadsListAndInspect(t *testing.T) {
	d, c := newDaemon(t)
	d.JSON("GET", "/containers/json", []container.Summary{
		{ID: "bbbb", Names: []string{"/shop-web-1"}, Image: "sha256:1", ImageID: "sha256:1", State: "running", Labels: map[string]string{"com.docker.compose.service": "web"}},
		{ID: "aaaa", Names: []string{"/shop-db-1"}, Image: "postgres:16", ImageID: "sha256:2", State: "exited", Labels: map[string]string{"com.docker.compose.service": "db"}},
	})
	d.JSON("GET", "/containers/bbbb/json", container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: "bbbb", State: &container.State{Running: true, Health: &container.Health{Status: "unhealthy",
			Log: []*container.HealthcheckResult{{ExitCode: 1, Output: "GET /health: 503\n"}}}}},
		Config: &container.Config{Image: "shop:1.0"},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"edge": {IPAddress: "10.0.1.5"}, "default": {IPAddress: "10.0.0.5"}, "none": nil}},
	})
	got, err := c.ProjectContainers(context.Background(), "shop")
	require.NoError(t, err)
	assert.Equal(t, []Container{
		{ID: "aaaa", Name: "shop-db-1", Service: "db", Image: "postgres:16", ImageID: "sha256:2", State: "exited"},
		{ID: "bbbb", Name: "shop-web-1", Service: "web", Image: "shop:1.0", ImageID: "sha256:1", State: "running", Health: "unhealthy",
			HealthOutput: "exit 1: GET /health: 503", IPs: []string{"10.0.0.5", "10.0.1.5"}},
	}, got)
	assert.Contains(t, d.Calls()[0], "GET /containers/json?all=1&filters=")
	assert.Contains(t, d.Calls()[0], "com.docker.compose.project%3Dshop")
}

// TestEndpointAndReconnect: a container's endpoint on a network without the
// engine's automatic alias (its short ID); a reconnect is a disconnect and a
// connect with the aliases and the address asked for, and starts only while
// its context lasts.
func TestEndpointAndReconnect(t *testing.T) {
	d, c := newDaemon(t)
	id := "0123456789abcdef"
	d.JSON("GET", "/containers/"+id+"/json", container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: id},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"edge": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "10.0.1.7"}, Aliases: []string{"web", "0123456789ab", "shop-web-1"}}}},
	})
	e, ok, err := c.Endpoint(context.Background(), id, "edge")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, Endpoint{IP: "10.0.1.7", Aliases: []string{"web", "shop-web-1"}}, e)
	_, ok, err = c.Endpoint(context.Background(), id, "other")
	require.NoError(t, err)
	assert.False(t, ok, "not on that network")

	d.OK("POST", "/networks/edge/disconnect")
	d.OK("POST", "/networks/edge/connect")
	require.NoError(t, c.Reconnect(context.Background(), id, "edge", Endpoint{IP: "10.0.1.7", Aliases: []string{"web"}}))
	var connect network.ConnectOptions
	require.NoError(t, json.Unmarshal([]byte(d.Body("POST /networks/edge/connect")), &connect))
	assert.Equal(t, id, connect.Container)
	assert.Equal(t, []string{"web"}, connect.EndpointConfig.Aliases)
	assert.Equal(t, "10.0.1.7", connect.EndpointConfig.IPAMConfig.IPv4Address)
	var disconnect network.DisconnectOptions
	require.NoError(t, json.Unmarshal([]byte(d.Body("POST /networks/edge/disconnect")), &disconnect))
	assert.Equal(t, id, disconnect.Container)

	before := len(d.Calls())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = c.Reconnect(ctx, id, "edge", Endpoint{})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Len(t, d.Calls(), before, "nothing asked of the engine")

	d.On("POST", "/networks/flat/disconnect", func(w http.ResponseWriter, _ *http.Request) { notFound(w, "container is not connected") })
	err = c.Reconnect(context.Background(), id, "flat", Endpoint{})
	assert.ErrorContains(t, err, "disconnecting 0123456789ab from flat: ")
}

// TestNetworks: a network that exists or not; one whose subnet its creator
// chose (no gateway shown) or one that may be automatic.
func TestNetworks(t *testing.T) {
	d, c := newDaemon(t)
	d.JSON("GET", "/networks/edge", network.Inspect{Name: "edge", IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.0.1.0/24"}}}})
	d.JSON("GET", "/networks/auto", network.Inspect{Name: "auto", IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: "172.18.0.0/16", Gateway: "172.18.0.1"}}}})
	ok, err := c.NetworkExists(context.Background(), "edge")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = c.NetworkExists(context.Background(), "gone")
	require.NoError(t, err)
	assert.False(t, ok)
	user, err := c.UserSubnet(context.Background(), "edge")
	require.NoError(t, err)
	assert.True(t, user)
	user, err = c.UserSubnet(context.Background(), "auto")
	require.NoError(t, err)
	assert.False(t, user)
}

// TestContainerLifecycle: start, stop with its grace in whole seconds, remove
// (forced, with anonymous volumes), and starting a stopped container again
// (not one that runs, not one that is gone).
func TestContainerLifecycle(t *testing.T) {
	d, c := newDaemon(t)
	d.OK("POST", "/containers/[a-z]+/start")
	d.OK("POST", "/containers/[a-z]+/stop")
	d.OK("DELETE", "/containers/[a-z]+")
	d.JSON("GET", "/containers/stopped/json", container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: "stopped", Name: "/shop-web-1", State: &container.State{Status: "exited"}}})
	d.JSON("GET", "/containers/running/json", container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: "running", Name: "/shop-db-1", State: &container.State{Running: true}}})
	ctx := context.Background()
	require.NoError(t, c.Start(ctx, "one"))
	require.NoError(t, c.Stop(ctx, "one", 10*time.Second))
	require.NoError(t, c.Remove(ctx, "one"))
	started, name, err := c.StartStopped(ctx, "stopped")
	require.NoError(t, err)
	assert.Equal(t, []any{true, "shop-web-1"}, []any{started, name})
	started, name, err = c.StartStopped(ctx, "running")
	require.NoError(t, err)
	assert.Equal(t, []any{false, "shop-db-1"}, []any{started, name})
	started, _, err = c.StartStopped(ctx, "gone")
	require.NoError(t, err)
	assert.False(t, started)
	calls := d.Calls()
	assert.Contains(t, calls, "POST /containers/one/start")
	assert.Contains(t, calls, "POST /containers/one/stop?t=10")
	assert.Contains(t, calls, "DELETE /containers/one?force=1&v=1")
	assert.Contains(t, calls, "POST /containers/stopped/start")
	assert.NotContains(t, calls, "POST /containers/running/start")
}

// TestWaitHealthy: healthy, running without a healthcheck, unhealthy (with
// its last probe's output), stopped.
func TestWaitHealthy(t *testing.T) {
	d, c := newDaemon(t)
	state := func(id string, st *container.State) {
		d.JSON("GET", "/containers/"+id+"/json", container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: id, State: st}})
	}
	state("healthy", &container.State{Running: true, Status: "running", Health: &container.Health{Status: "healthy"}})
	state("plain", &container.State{Running: true, Status: "running"})
	state("sick", &container.State{Running: true, Status: "running", Health: &container.Health{Status: "unhealthy", Log: []*container.HealthcheckResult{{Output: "GET /health:\t503\n"}}}})
	state("dead", &container.State{Status: "exited", ExitCode: 2})
	ctx := context.Background()
	assert.NoError(t, c.WaitHealthy(ctx, "healthy", time.Minute))
	assert.NoError(t, c.WaitHealthy(ctx, "plain", time.Minute))
	assert.EqualError(t, c.WaitHealthy(ctx, "sick", time.Minute), "its healthcheck failed: GET /health: 503")
	assert.EqualError(t, c.WaitHealthy(ctx, "dead", time.Minute), "it stopped (exited, exit code 2)")
}

// TestImages: tag, the references a filter matches (sorted), untag, an
// image's ID, and the logs of a container (stdout and stderr, multiplexed).
func TestImages(t *testing.T) {
	d, c := newDaemon(t)
	d.OK("POST", "/images/.+/tag")
	d.JSON("GET", "/images/json", []image.Summary{{RepoTags: []string{"snap/shop-web:b", "snap/shop-web:a"}}, {RepoTags: []string{"snap/shop-web:c"}}})
	d.JSON("DELETE", "/images/.+", []image.DeleteResponse{{Untagged: "snap/shop-web:a"}})
	ctx := context.Background()
	require.NoError(t, c.Tag(ctx, "sha256:abc", "snap/shop-web:abc"))
	refs, err := c.References(ctx, "snap/shop-web:*")
	require.NoError(t, err)
	assert.Equal(t, []string{"snap/shop-web:a", "snap/shop-web:b", "snap/shop-web:c"}, refs)
	require.NoError(t, c.Untag(ctx, "snap/shop-web:a"))
	calls := d.Calls()
	assert.Contains(t, calls, "POST /images/sha256:abc/tag?repo=docker.io%2Fsnap%2Fshop-web&tag=abc")
	assert.Contains(t, calls, "DELETE /images/snap/shop-web:a?noprune=1", "the image goes only when nothing else names it")
	assert.Contains(t, strings.Join(calls, "\n"), "GET /images/json?filters=")

	d.On("GET", "/containers/web/logs", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
		_, _ = stdcopy.NewStdWriter(w, stdcopy.Stdout).Write([]byte("listening\n"))
		_, _ = stdcopy.NewStdWriter(w, stdcopy.Stderr).Write([]byte("panic: no database\n"))
	})
	logs, err := c.Logs(ctx, "web", 30)
	require.NoError(t, err)
	assert.Equal(t, "listening\npanic: no database\n", logs)
	assert.Contains(t, d.Calls(), "GET /containers/web/logs?stderr=1&stdout=1&tail=30")
}

// TestRemoveLabelled: every container (forced), network and volume carrying
// the label is removed, one already gone counts as removed, and the compose
// projects they belonged to are named; a removal that fails is an error that
// names it, and the rest still go.
func TestRemoveLabelled(t *testing.T) {
	d, c := newDaemon(t)
	project := map[string]string{"com.docker.compose.project": "shop-rehearsal-1"}
	d.JSON("GET", "/containers/json", []container.Summary{
		{ID: "c1c1c1c1c1c1c1", Names: []string{"/shop-rehearsal-1-db-1"}, Labels: project},
		{ID: "c2c2c2c2c2c2c2", Labels: project},
		{ID: "c3c3c3c3c3c3c3", Names: []string{"/stuck"}},
	})
	d.OK("DELETE", "/containers/c1c1c1c1c1c1c1")
	d.On("DELETE", "/containers/c2c2c2c2c2c2c2", func(w http.ResponseWriter, _ *http.Request) { notFound(w, "gone") })
	d.On("DELETE", "/containers/c3c3c3c3c3c3c3", func(w http.ResponseWriter, _ *http.Request) {
		enginefake.Fail(w, http.StatusInternalServerError, "device busy")
	})
	d.JSON("GET", "/networks", []network.Summary{{ID: "n1", Name: "shop-rehearsal-1_default", Labels: project}})
	d.OK("DELETE", "/networks/n1")
	d.JSON("GET", "/volumes", volume.ListResponse{Volumes: []*volume.Volume{{Name: "shop-rehearsal-1_data", Labels: map[string]string{"com.docker.compose.project": "shop-rehearsal-2"}}}})
	d.OK("DELETE", "/volumes/.+")
	r, err := c.RemoveLabelled(context.Background(), LabelStack, "shop")
	require.Error(t, err)
	assert.Equal(t, "removing container stuck: Error response from daemon: device busy", err.Error())
	assert.Equal(t, Removed{Containers: []string{"shop-rehearsal-1-db-1", "c2c2c2c2c2c2"}, Networks: []string{"shop-rehearsal-1_default"},
		Volumes: []string{"shop-rehearsal-1_data"}, Projects: []string{"shop-rehearsal-1", "shop-rehearsal-2"}}, r)
	assert.Contains(t, d.Calls(), "DELETE /containers/c1c1c1c1c1c1c1?force=1&v=1")
	assert.Contains(t, d.Calls(), "DELETE /volumes/shop-rehearsal-1_data?force=1")
}

// TestSwarmReads: whether this engine manages a swarm, a stack's services and
// a service by name (the spec's image, the previous one, the update's state),
// its tasks newest first with their node's name, and the nodes.
func TestSwarmReads(t *testing.T) {
	d, c := newDaemon(t)
	d.JSON("GET", "/info", system.Info{DockerRootDir: t.TempDir(), Swarm: swarm.Info{LocalNodeState: "active", ControlAvailable: true, NodeID: "node-1"}})
	started := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	svc := swarm.Service{ID: "svc1", Spec: swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: "shop_web", Labels: map[string]string{"com.docker.stack.namespace": "shop"}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "shop:2@sha256:2"}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: ptr(uint64(3))}}},
		PreviousSpec: &swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "shop:1@sha256:1"}}},
		UpdateStatus: &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, Message: "rolled back", StartedAt: &started},
	}
	d.JSON("GET", "/services", []swarm.Service{svc})
	d.On("GET", "/services/shop_web", func(w http.ResponseWriter, _ *http.Request) { enginefake.WriteJSON(w, svc) })
	d.JSON("GET", "/tasks", []swarm.Task{
		{ID: "t-old", NodeID: "n1", Meta: swarm.Meta{UpdatedAt: started}, DesiredState: swarm.TaskStateShutdown, Status: swarm.TaskStatus{State: swarm.TaskStateFailed, Err: "exit 1", ContainerStatus: &swarm.ContainerStatus{ContainerID: "c-old"}},
			Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "shop:2@sha256:2"}}},
		{ID: "t-new", NodeID: "n2", Meta: swarm.Meta{UpdatedAt: started.Add(time.Minute)}, NetworksAttachments: []swarm.NetworkAttachment{{Network: swarm.Network{Spec: swarm.NetworkSpec{Annotations: swarm.Annotations{Name: "shop_default"}}}, Addresses: []string{"10.0.9.4/24"}}}, DesiredState: swarm.TaskStateRunning, Status: swarm.TaskStatus{State: swarm.TaskStateRunning},
			Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "shop:1@sha256:1"}}},
	})
	d.JSON("GET", "/nodes", []swarm.Node{
		{ID: "n1", Description: swarm.NodeDescription{Hostname: "node1"}, Status: swarm.NodeStatus{State: swarm.NodeStateReady}, Spec: swarm.NodeSpec{Availability: swarm.NodeAvailabilityActive}},
		{ID: "n2", Description: swarm.NodeDescription{Hostname: "node2"}, Status: swarm.NodeStatus{State: swarm.NodeStateDown}, Spec: swarm.NodeSpec{Availability: swarm.NodeAvailabilityActive}},
	})
	ctx := context.Background()
	manager, state, err := c.SwarmManager(ctx)
	require.NoError(t, err)
	assert.Equal(t, []any{true, "active"}, []any{manager, state})
	list, err := c.StackServices(ctx, "shop")
	require.NoError(t, err)
	require.Len(t, list, 1)
	want := Service{ID: "svc1", Name: "shop_web", Short: "web", Stack: "shop", Image: "shop:2@sha256:2", Prev: "shop:1@sha256:1",
		Update: "rollback_completed", Message: "rolled back", Started: started, Replicas: 3}
	assert.Equal(t, want, list[0])
	one, err := c.InspectService(ctx, "shop_web")
	require.NoError(t, err)
	assert.Equal(t, want, one)
	tasks, err := c.ServiceTasks(ctx, "svc1")
	require.NoError(t, err)
	require.Len(t, tasks, 2)
	assert.Equal(t, []string{"t-new", "t-old"}, []string{tasks[0].ID, tasks[1].ID}, "newest first")
	assert.Equal(t, map[string]string{"shop_default": "10.0.9.4"}, tasks[0].Addresses, "its address on each network, without the prefix length")
	assert.Equal(t, Task{ID: "t-old", State: "failed", Desired: "shutdown", Err: "exit 1", Image: "shop:2@sha256:2", ContainerID: "c-old", Node: "node1", NodeID: "n1", Updated: started}, withoutAddresses(tasks[1]))
	nodes, err := c.Nodes(ctx)
	require.NoError(t, err)
	assert.Equal(t, []Node{{Hostname: "node1", State: "ready", Availability: "active"}, {Hostname: "node2", State: "down", Availability: "active"}}, nodes)
	root, free, err := c.FreeDisk(ctx)
	require.NoError(t, err)
	assert.NotEmpty(t, root)
	assert.Greater(t, free, 0.0)
}

func ptr[T any](v T) *T { return &v }

func withoutAddresses(t Task) Task { t.Addresses = nil; return t }

// TestSecrets: a secret is created only when none of its name exists, with
// its labels; the stack's secrets are listed by label, and removed by name.
func TestSecrets(t *testing.T) {
	d, c := newDaemon(t)
	d.JSON("GET", "/secrets/shop_DB_have", swarm.Secret{ID: "s1", Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: "shop_DB_have"}}})
	d.JSON("POST", "/secrets/create", swarm.SecretCreateResponse{ID: "s2"})
	d.JSON("GET", "/secrets", []swarm.Secret{{Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: "shop_B"}}}, {Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: "shop_A"}}}})
	d.OK("DELETE", "/secrets/.+")
	ctx := context.Background()
	created, err := c.EnsureSecret(ctx, "shop_DB_have", []byte("x"), nil)
	require.NoError(t, err)
	assert.False(t, created)
	created, err = c.EnsureSecret(ctx, "shop_DB_new", []byte("s3cret"), map[string]string{"org.deploykit.stack": "shop"})
	require.NoError(t, err)
	assert.True(t, created)
	var spec swarm.SecretSpec
	require.NoError(t, json.Unmarshal([]byte(d.Body("POST /secrets/create")), &spec))
	assert.Equal(t, "shop_DB_new", spec.Name)
	assert.Equal(t, []byte("s3cret"), spec.Data)
	assert.Equal(t, "shop", spec.Labels["org.deploykit.stack"])
	names, err := c.SecretsLabelled(ctx, "org.deploykit.stack", "shop")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"shop_A", "shop_B"}, names)
	require.NoError(t, c.RemoveSecret(ctx, "shop_A"))
	assert.Contains(t, d.Calls(), "DELETE /secrets/shop_A")
}

// TestAnEngineThatFails: its error reaches the caller.
func TestAnEngineThatFails(t *testing.T) {
	d, c := newDaemon(t)
	d.On("GET", "/containers/json", func(w http.ResponseWriter, _ *http.Request) {
		enginefake.Fail(w, http.StatusInternalServerError, "disk full")
	})
	_, err := c.ProjectContainers(context.Background(), "shop")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "disk full")
	assert.False(t, errors.Is(err, context.Canceled))
}

// TestPushReadsTheDigest: the push sends the credentials in the auth header
// (an empty one when anonymous), shows the engine's progress lines, and
// returns the digest the engine reports; an error in the stream or no digest
// at all fails it. A login's failure names the registry and the user.
func TestPushReadsTheDigest(t *testing.T) {
	d, c := newDaemon(t)
	var auth []string
	d.On("POST", "/images/registry.example.com/shop/push", func(w http.ResponseWriter, r *http.Request) {
		auth = append(auth, r.Header.Get("X-Registry-Auth"))
		switch r.URL.Query().Get("tag") {
		case "1.0":
			_, _ = io.WriteString(w, `{"status":"Preparing","id":"abc"}`+"\n"+`{"status":"Pushed","id":"abc"}`+"\n"+`{"aux":{"Tag":"1.0","Digest":"sha256:feed","Size":5}}`+"\n")
		case "bad":
			_, _ = io.WriteString(w, `{"errorDetail":{"message":"denied"},"error":"denied"}`+"\n")
		default:
			_, _ = io.WriteString(w, `{"status":"Pushed","id":"abc"}`+"\n")
		}
	})
	var log strings.Builder
	ctx := context.Background()
	digest, err := c.Push(ctx, "registry.example.com/shop:1.0", &Auth{Registry: "registry.example.com", Username: "ci", Password: "s3cret"}, &log)
	require.NoError(t, err)
	assert.Equal(t, "sha256:feed", digest)
	assert.Equal(t, "    abc Preparing\n    abc Pushed\n", log.String())
	_, err = c.Push(ctx, "registry.example.com/shop:bad", nil, nil)
	assert.EqualError(t, err, "pushing registry.example.com/shop:bad: denied")
	_, err = c.Push(ctx, "registry.example.com/shop:none", nil, nil)
	assert.EqualError(t, err, "pushing registry.example.com/shop:none: the engine reported no digest")
	require.Len(t, auth, 3)
	assert.NotEmpty(t, auth[0])
	assert.NotContains(t, auth[0], "s3cret", "encoded, never in the clear")
	assert.Equal(t, "e30=", auth[1], "anonymous: an empty auth")

	d.On("POST", "/auth", func(w http.ResponseWriter, _ *http.Request) {
		enginefake.Fail(w, http.StatusUnauthorized, "wrong password")
	})
	err = c.Login(ctx, Auth{Registry: "registry.example.com", Username: "ci", Password: "nope"})
	assert.ErrorContains(t, err, "logging in to registry.example.com as ci: ")
}

// TestRunStartsAThrowawayContainer: an image the engine has is not pulled;
// the container is created with its labels and its port published on
// 127.0.0.1 (a port the engine picks), started, and the port read back; one
// that publishes nothing is removed, and so is one that does not start.
func TestRunStartsAThrowawayContainer(t *testing.T) {
	d, c := newDaemon(t)
	d.JSON("GET", "/images/postgres:16/json", image.InspectResponse{ID: "sha256:pg"})
	d.JSON("POST", "/containers/create", container.CreateResponse{ID: "new1"})
	d.OK("POST", "/containers/new1/start")
	d.OK("DELETE", "/containers/new1")
	published := true
	d.On("GET", "/containers/new1/json", func(w http.ResponseWriter, _ *http.Request) {
		ports := nat.PortMap{}
		if published {
			ports["5432/tcp"] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: "32801"}}
		}
		// As the engine sends it: the ports under NetworkSettings.
		enginefake.WriteJSON(w, map[string]any{"Id": "new1", "NetworkSettings": map[string]any{"Ports": ports}})
	})
	ctx := context.Background()
	spec := RunSpec{Image: "postgres:16", Env: []string{"POSTGRES_PASSWORD=x"}, Port: "5432/tcp", Labels: map[string]string{LabelOwner: "h/1"}}
	id, port, err := c.Run(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, []string{"new1", "32801"}, []string{id, port})
	var created struct {
		container.Config
		HostConfig container.HostConfig
	}
	require.NoError(t, json.Unmarshal([]byte(d.Body("POST /containers/create")), &created))
	assert.Equal(t, "h/1", created.Labels[LabelOwner])
	assert.Equal(t, []nat.PortBinding{{HostIP: "127.0.0.1"}}, created.HostConfig.PortBindings["5432/tcp"])
	assert.NotContains(t, strings.Join(d.Calls(), "\n"), "/images/create", "not pulled")

	published = false
	_, _, err = c.Run(ctx, spec)
	assert.EqualError(t, err, "container new1 publishes no port for 5432/tcp")
	assert.Equal(t, "DELETE /containers/new1?force=1&v=1", d.Calls()[len(d.Calls())-1], "removed")
}

// TestCopyFileSendsOneTar: a file copied into a container is one tar stream
// to the engine: the directories its name needs (0755, their owner), then
// the file with its owner and mode.
func TestCopyFileSendsOneTar(t *testing.T) {
	d, c := newDaemon(t)
	var entries []string
	d.On("PUT", "/containers/db1/archive", func(w http.ResponseWriter, r *http.Request) {
		tr := tar.NewReader(r.Body)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			body, _ := io.ReadAll(tr)
			entries = append(entries, fmt.Sprintf("%s %o %d:%d %q", h.Name, h.Mode, h.Uid, h.Gid, body))
		}
		w.WriteHeader(http.StatusOK)
	})
	content := "PRAGMA user_version;"
	err := c.CopyFile(context.Background(), "db1", "/data", "copy/app.db", strings.NewReader(content), int64(len(content)), FileOwner{UID: 70, GID: 70, Mode: 0o600, DirUID: 70, DirGID: 70})
	require.NoError(t, err)
	assert.Equal(t, []string{`copy/ 755 70:70 ""`, `copy/app.db 600 70:70 "PRAGMA user_version;"`}, entries)
	assert.Contains(t, d.Calls(), "PUT /containers/db1/archive?noOverwriteDirNonDir=true&path=%2Fdata")
}

// TestImageQuestions: whether the engine has an image (an engine that cannot
// tell is an error, not "no"), and the images' IDs.
func TestImageQuestions(t *testing.T) {
	d, c := newDaemon(t)
	d.JSON("GET", "/images/shop:1/json", json.RawMessage(`{"Id":"sha256:1","Config":{"Healthcheck":{"Test":["CMD","/hello","healthcheck"]}}}`))
	d.JSON("GET", "/images/plain:1/json", json.RawMessage(`{"Id":"sha256:2","Config":{}}`))
	d.On("GET", "/images/broken:1/json", func(w http.ResponseWriter, _ *http.Request) {
		enginefake.Fail(w, http.StatusInternalServerError, "storage driver")
	})
	ctx := context.Background()
	ok, err := c.ImageExists(ctx, "shop:1")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = c.ImageExists(ctx, "gone:1")
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = c.ImageExists(ctx, "broken:1")
	assert.ErrorContains(t, err, "inspecting image broken:1: ")
	id, err := c.ImageID(ctx, "shop:1")
	require.NoError(t, err)
	assert.Equal(t, "sha256:1", id)
	has, err := c.ImageHasHealthcheck(ctx, "shop:1")
	require.NoError(t, err)
	assert.True(t, has)
	has, err = c.ImageHasHealthcheck(ctx, "plain:1")
	require.NoError(t, err)
	assert.False(t, has)
	_, err = c.ImageHasHealthcheck(ctx, "broken:1")
	assert.Error(t, err)
}

// TestDetailsForThePlan: what a running container was configured with, in a
// plan diff's terms: its environment less what its image sets alike, ports,
// mounts (a volume by name), networks, healthcheck and limits, sorted.
func TestDetailsForThePlan(t *testing.T) {
	d, c := newDaemon(t)
	d.JSON("GET", "/containers/web1/json", json.RawMessage(`{"Id":"web1","Image":"sha256:img",
		"Config":{"Image":"shop:1","Env":["PATH=/usr/bin","B=2","A=1"],"Healthcheck":{"Test":["CMD","/hello","healthcheck"],"Interval":1000000000,"Timeout":2000000000,"Retries":3},
		  "Labels":{"com.docker.compose.project":"shop"}},
		"HostConfig":{"PortBindings":{"8080/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]},"NanoCpus":500000000,"Memory":268435456},
		"Mounts":[{"Type":"volume","Name":"shop_data","Source":"/var/lib/docker/volumes/shop_data/_data","Destination":"/data"},{"Type":"bind","Source":"/srv/conf","Destination":"/conf"}],
		"NetworkSettings":{"Networks":{"shop_default":{},"edge":{}}}}`))
	d.JSON("GET", "/images/sha256:img/json", json.RawMessage(`{"Id":"sha256:img","Config":{"Env":["PATH=/usr/bin"]}}`))
	d.JSON("GET", "/containers/stackless/json", json.RawMessage(`{"Id":"stackless","Config":{"Labels":{"com.docker.stack.namespace":"shop"}}}`))
	ctx := context.Background()
	got, err := c.Details(ctx, "web1")
	require.NoError(t, err)
	assert.Equal(t, "shop:1", got.Image)
	assert.Equal(t, "sha256:img", got.ImageID)
	assert.Equal(t, []string{"A=1", "B=2"}, got.Env, "the image's own PATH left out, sorted")
	assert.Equal(t, []string{PortString("127.0.0.1", "8080", "8080", "tcp")}, got.Ports)
	assert.Equal(t, []string{MountString("bind", "/srv/conf", "/conf"), MountString("volume", "shop_data", "/data")}, got.Mounts)
	assert.Equal(t, []string{"edge", "shop_default"}, got.Networks)
	assert.Equal(t, HealthcheckString([]string{"CMD", "/hello", "healthcheck"}, time.Second, 2*time.Second, 3), got.Healthcheck)
	assert.Equal(t, []int64{500000000, 268435456}, []int64{got.NanoCPUs, got.Memory})
	stack, err := c.ContainerStack(ctx, "web1")
	require.NoError(t, err)
	assert.Equal(t, "shop", stack, "its compose project")
	stack, err = c.ContainerStack(ctx, "stackless")
	require.NoError(t, err)
	assert.Equal(t, "shop", stack, "its swarm stack")
}

// TestRemoveDeadOwners: throwaway containers whose owner, a process of this
// host, is gone are removed; those of live processes or other hosts stay.
func TestRemoveDeadOwners(t *testing.T) {
	d, c := newDaemon(t)
	host, err := os.Hostname()
	require.NoError(t, err)
	d.JSON("GET", "/containers/json", []container.Summary{
		{ID: "dead00000000000", Names: []string{"/scratch-dead"}, Labels: map[string]string{LabelOwner: host + "/111"}},
		{ID: "live00000000000", Names: []string{"/scratch-live"}, Labels: map[string]string{LabelOwner: host + "/222"}},
		{ID: "else00000000000", Names: []string{"/scratch-else"}, Labels: map[string]string{LabelOwner: "elsewhere/111"}},
		{ID: "junk00000000000", Labels: map[string]string{LabelOwner: "no-pid"}},
	})
	d.OK("DELETE", "/containers/.+")
	r, err := c.RemoveDeadOwners(context.Background(), func(pid int) bool { return pid == 222 })
	require.NoError(t, err)
	assert.Equal(t, []string{"scratch-dead"}, r.Containers)
	var deleted []string
	for _, call := range d.Calls() {
		if strings.HasPrefix(call, "DELETE ") {
			deleted = append(deleted, call)
		}
	}
	assert.Equal(t, []string{"DELETE /containers/dead00000000000?force=1&v=1"}, deleted)
}

// TestContainerImageAndTasks: the image a running container was started from
// (a stopped or missing one is an error that says which); a task's container
// on this engine, found by Swarm's label; this engine's node.
func TestContainerImageAndTasks(t *testing.T) {
	d, c := newDaemon(t)
	d.JSON("GET", "/containers/db/json", json.RawMessage(`{"Id":"db","State":{"Running":true,"Status":"running"},"Config":{"Image":"postgres:16"}}`))
	d.JSON("GET", "/containers/old/json", json.RawMessage(`{"Id":"old","State":{"Running":false,"Status":"exited"},"Config":{"Image":"postgres:16"}}`))
	d.JSON("GET", "/containers/json", []container.Summary{{ID: "task-container"}})
	d.JSON("GET", "/info", system.Info{Swarm: swarm.Info{NodeID: "node-7"}})
	ctx := context.Background()
	img, err := c.ContainerImage(ctx, "db")
	require.NoError(t, err)
	assert.Equal(t, "postgres:16", img)
	_, err = c.ContainerImage(ctx, "old")
	assert.ErrorIs(t, err, ErrNotRunning)
	assert.EqualError(t, err, `container "old" is exited: `+ErrNotRunning.Error())
	_, err = c.ContainerImage(ctx, "gone")
	assert.ErrorIs(t, err, ErrNoContainer)
	id, err := c.TaskContainer(ctx, "t1")
	require.NoError(t, err)
	assert.Equal(t, "task-container", id)
	assert.Contains(t, d.Calls()[len(d.Calls())-1], "com.docker.swarm.task.id%3Dt1")
	node, err := c.NodeID(ctx)
	require.NoError(t, err)
	assert.Equal(t, "node-7", node)
}
