package deploy

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/docker"
)

// swarmTasks is the engine of a swarm manager whose service's failed tasks
// ran on this node (local containers) or on others: what the report reads.
type swarmTasks struct {
	tasks    []docker.Task
	local    map[string]string // task ID → its container on this engine
	taskLogs map[string]string // through the manager
	logs     map[string]string // a local container's
	health   map[string]string // a local container's last healthcheck output
	nodes    []docker.Node
}

func (e *swarmTasks) ServiceTasks(context.Context, string) ([]docker.Task, error) {
	return e.tasks, nil
}
func (e *swarmTasks) TaskContainer(_ context.Context, id string) (string, error) {
	return e.local[id], nil
}
func (e *swarmTasks) TaskLogs(_ context.Context, id string, _ int) (string, error) {
	return e.taskLogs[id], nil
}
func (e *swarmTasks) Logs(_ context.Context, id string, _ int) (string, error) {
	if l, ok := e.logs[id]; ok {
		return l, nil
	}
	return "", errors.New("Error response from daemon: No such container: " + id)
}
func (e *swarmTasks) HealthOutput(_ context.Context, id string) (string, error) {
	return e.health[id], nil
}
func (e *swarmTasks) Nodes(context.Context) ([]docker.Node, error) { return e.nodes, nil }

// TestSeamSwarmFailureReport: how a failed task is reported. A worker's task
// with an empty log is "(no output)", never a local lookup of another node's
// container; a task Swarm stopped for its health check (recorded complete,
// no error) says so, with the check's last output when the container is on
// this engine, else where to find it.
func TestSeamSwarmFailureReport(t *testing.T) {
	image := "registry.example.com/shop:sha-1"
	for _, tc := range []struct {
		name  string
		task  docker.Task
		e     swarmTasks
		ended string
		logs  string
	}{
		{"a worker's task that printed nothing",
			docker.Task{ID: "aaaaaaaaaaaaaaaa", State: "failed", Desired: "shutdown", Err: "task: non-zero exit (1)", Image: image, ContainerID: "c-on-worker", Node: "node2"},
			swarmTasks{},
			"task aaaaaaaaaaaa (" + image + ") on node node2 ended failed: task: non-zero exit (1)", "(no output)"},
		{"stopped for its health check, on this engine",
			docker.Task{ID: "bbbbbbbbbbbbbbbb", State: "complete", Desired: "shutdown", Image: image, ContainerID: "c-here", Node: "node1"},
			swarmTasks{local: map[string]string{"bbbbbbbbbbbbbbbb": "c-here"}, logs: map[string]string{"c-here": "listening\n"}, health: map[string]string{"c-here": "exit 1: GET /health: 503"}},
			"task bbbbbbbbbbbb (" + image + ") on node node1 ended complete: Swarm stopped it for failing its health check, whose last run said: exit 1: GET /health: 503", "listening\n"},
		{"stopped for its health check, on another node",
			docker.Task{ID: "cccccccccccccccc", State: "complete", Desired: "shutdown", Image: image, ContainerID: "c-on-node3", Node: "node3"},
			swarmTasks{taskLogs: map[string]string{"cccccccccccccccc": "listening\n"}},
			"task cccccccccccc (" + image + ") on node node3 ended complete: no error recorded, so Swarm most likely stopped it for failing its health check (its health check's output is on node node3: docker inspect c-on-node3 there)", "listening\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e
			e.tasks = []docker.Task{tc.task}
			st := &swarmTarget{wanted: map[string]string{"web": image}}
			got := st.recordFailure(context.Background(), action.NewContext(nil, io.Discard), &e, docker.Service{ID: "svc", Name: "shop_web", Short: "web"})
			assert.Equal(t, "; "+tc.ended, got)
			require.Len(t, st.failed, 1)
			assert.Equal(t, tc.logs, st.failed[0].Logs)
			assert.NotContains(t, st.failed[0].Logs, "No such container")
		})
	}
}

// TestSeamSwarmNodeDownStaysInTheApplyRow: the warning about a node lost
// during the update is a note of the apply row, whatever the step says it
// did after, and when it fails.
func TestSeamSwarmNodeDownStaysInTheApplyRow(t *testing.T) {
	for _, fail := range []bool{false, true} {
		e := &swarmTasks{nodes: []docker.Node{{Hostname: "node1", State: "ready", Availability: "active"}, {Hostname: "node3", State: "down", Availability: "active"}}}
		sm := newSeam(t)
		s := sm.state(t, DefaultOptions())
		s.Runner.Logf = func(string, ...any) {}
		step := Step(stepFunc(func(ctx context.Context, s *State) error {
			(&swarmTarget{}).warnNodesDown(ctx, s, e)
			if fail {
				return errors.New("the update of shop_web is paused")
			}
			s.Did("shop_web is up")
			return nil
		}))
		_ = s.One(context.Background(), step, s)
		row := s.Results[len(s.Results)-1].Detail
		assert.True(t, strings.HasSuffix(row, "; node(s) not ready: node3 (down)"), row)
		assert.Contains(t, sm.log.String(), "warning: swarm node(s) not ready after the update: node3 (down)")
	}
}

type stepFunc func(context.Context, *State) error

func (stepFunc) String() string                            { return "apply" }
func (f stepFunc) Run(ctx context.Context, s *State) error { return f(ctx, s) }
