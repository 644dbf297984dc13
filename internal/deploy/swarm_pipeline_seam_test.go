package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/command/commandtest"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/steps"
)

// stackEngine is a swarm manager running the stack shop (service web) for the
// whole pipeline: docker stack deploy (through stackExec) updates web to the
// image its override file pins, and Swarm completes the update, or, with
// rollBack, finds the new tasks unhealthy and rolls it back.
type stackEngine struct {
	*fakeEngine
	mu       sync.Mutex
	web      docker.Service
	tasks    []docker.Task
	rollBack bool
	secrets  map[string]bool
}

func (e *stackEngine) SwarmManager(context.Context) (bool, string, error) { return true, "active", nil }
func (e *stackEngine) StackServices(_ context.Context, stack string) ([]docker.Service, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if stack != "shop" || e.web.ID == "" {
		return nil, nil
	}
	return []docker.Service{e.web}, nil
}
func (e *stackEngine) InspectService(_ context.Context, name string) (docker.Service, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.web, nil
}
func (e *stackEngine) ServiceTasks(context.Context, string) ([]docker.Task, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tasks, nil
}
func (e *stackEngine) ServiceDetails(_ context.Context, name string) (docker.Details, int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return docker.Details{Image: e.web.Image}, 1, nil
}
func (e *stackEngine) Nodes(context.Context) ([]docker.Node, error) {
	return []docker.Node{{Hostname: "node1", State: "ready", Availability: "active"}}, nil
}
func (e *stackEngine) TaskContainer(context.Context, string) (string, error) { return "", nil }
func (e *stackEngine) TaskLogs(context.Context, string, int) (string, error) {
	return "listening on :8080\npanic: no database\n", nil
}
func (e *stackEngine) EnsureSecret(_ context.Context, name string, _ []byte, _ map[string]string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	created := !e.secrets[name]
	e.secrets[name] = true
	return created, nil
}
func (e *stackEngine) SecretsLabelled(context.Context, string, string) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var names []string
	for n := range e.secrets {
		names = append(names, n)
	}
	return names, nil
}
func (e *stackEngine) RemoveSecret(_ context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.secrets, name)
	e.record("remove secret", name)
	return nil
}

// update is what Swarm does with a new spec running image.
func (e *stackEngine) update(image string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	task := docker.Task{ID: "task-" + image[strings.LastIndex(image, ":")+1:] + "-0123456789", Image: image, Node: "node1", State: "running", Desired: "running"}
	if e.web.ID == "" { // created: no update status
		e.web = docker.Service{ID: "svc-web", Name: "shop_web", Short: "web", Stack: "shop", Replicas: 1, Image: image}
		e.tasks = []docker.Task{task}
		return
	}
	if image == e.web.Image {
		return
	}
	e.web.Prev, e.web.Image, e.web.Started = e.web.Image, image, time.Now()
	e.web.Update = "completed"
	if e.rollBack && e.web.Prev != "" {
		task.State, task.Desired, task.Err = "failed", "shutdown", "task: non-zero exit (1)"
		e.web.Image, e.web.Prev = e.web.Prev, image
		e.web.Update, e.web.Message = "rollback_completed", "update rolled back due to failure or early termination of task "+task.ID[:12]
	}
	e.tasks = append([]docker.Task{task}, e.tasks...)
}

// stackExec answers docker stack deploy by updating the engine's service to
// the image the override file pins (or the stack file's, interpolated).
type stackExec struct {
	*commandtest.Recorder
	e *stackEngine
}

func (x stackExec) Run(ctx context.Context, c command.Cmd) error {
	if len(c.Argv) > 2 && c.Argv[1] == "stack" && c.Argv[2] == "deploy" {
		image := "registry.example.com/shop:" + envOf(c.Env, "DEPLOY_TAG")
		for i, a := range c.Argv {
			if a == "-c" && strings.Contains(c.Argv[i+1], "deploykit-stack-") {
				data, err := os.ReadFile(c.Argv[i+1])
				if err != nil {
					return err
				}
				for _, line := range strings.Split(string(data), "\n") {
					if v, ok := strings.CutPrefix(strings.TrimSpace(line), "image: "); ok {
						image = strings.Trim(v, `"'`)
					}
				}
			}
		}
		x.e.update(image)
	}
	return x.Recorder.Run(ctx, c)
}

func envOf(env []string, key string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v
		}
	}
	return ""
}

// swarmSeam is a deploy of the stack shop to target swarm through the whole
// pipeline, on a stackEngine.
func swarmSeam(t *testing.T) (*seam, *State, *stackEngine) {
	t.Helper()
	sm := stackSeam(t)
	o := DefaultOptions()
	o.Target, o.Strategy = "swarm", "recreate"
	s := sm.state(t, o)
	e := &stackEngine{fakeEngine: sm.engine, secrets: map[string]bool{"shop_OLD_0123": true}}
	s.Docker, s.Exec = e, stackExec{Recorder: sm.exec, e: e}
	return sm, s, e
}

// stackSeam is a seam whose workspace holds the stack shop, ready for swarm.
func stackSeam(t *testing.T) *seam {
	sm := newSeam(t)
	require.NoError(t, os.WriteFile(filepath.Join(sm.ws, "compose.yaml"), []byte("name: shop\nservices:\n  web:\n"+
		"    image: registry.example.com/shop:${DEPLOY_TAG}\n"+
		"    healthcheck: {test: [CMD, /app, healthcheck], interval: 1s}\n"+
		"    deploy: {update_config: {order: start-first, failure_action: rollback, monitor: 30s}}\n"), 0o644))
	return sm
}

// TestSeamSwarmPipeline: a deploy to target swarm, first of a new stack, then
// of a release whose tasks fail: docker stack deploy with the image pinned,
// the update watched until Swarm completed it (or rolled it back, which names
// the failed task and keeps its log for the hand-off), the snapshot read from
// the service's spec, secrets the stack no longer uses removed after a
// success, and a rollback that finds the previous version already running.
func TestSeamSwarmPipeline(t *testing.T) {
	sm, s, e := swarmSeam(t)
	require.NoError(t, s.runPlan(context.Background()))
	assert.Equal(t, []string{
		"guard: done", "preflight: done", "lock: done", "repair: done", "promotion: done", "version: skipped", "secrets: skipped", "backup: skipped",
		"snapshot: done", "rehearse: skipped", "plan: done", "apply: done", "verify: skipped", "history: done",
	}, steps.Outcomes(s.Results))
	changes := sm.exec.Changes()
	require.Len(t, changes, 1)
	assert.Contains(t, changes[0], "docker stack deploy --with-registry-auth --detach=false --prune --resolve-image always -c "+filepath.Join(sm.ws, "compose.yaml"))
	assert.Equal(t, "registry.example.com/shop:sha-1111111", e.web.Image)
	assert.Contains(t, sm.log.String(), "shop_web: created, every task running")
	assert.Contains(t, sm.engine.calls, "remove secret shop_OLD_0123", "a secret the stack no longer uses is removed")
	assert.Contains(t, s.Results[1].Detail, "swarm manager; every service updates start-first with rollback")

	// The next release's tasks fail: Swarm rolls back, the deploy says which
	// task failed and how, and finds the previous version running.
	s.Cleanup() // the lock released, as the run's end releases it
	sm2 := stackSeam(t)
	sm2.varDir = sm.varDir // the same history
	s2 := sm2.state(t, s.Opts)
	e.rollBack, e.fakeEngine = true, sm2.engine
	sm2.exec.On("2222222222222222222222222222222222222222\n", "git", "rev-parse", "--verify", "--quiet", "--end-of-options", "HEAD^{commit}")
	s2.Docker, s2.Exec = e, stackExec{Recorder: sm2.exec, e: e}
	err := s2.runPlan(context.Background())
	require.Error(t, err)
	assert.Equal(t, "apply", s2.Out.FailedStep)
	assert.Contains(t, err.Error(), "Swarm rolled the update of shop_web back: update rolled back due to failure or early termination of task task-sha-222")
	assert.Contains(t, err.Error(), "ended failed: task: non-zero exit (1)")
	assert.Contains(t, sm2.log.String(), "shop_web already runs registry.example.com/shop:sha-1111111", "nothing to roll back: Swarm did")
	assert.Contains(t, s2.Out.HandOff, "panic: no database", "the failed task's log")
	assert.Contains(t, s2.Out.HandOff, "docker service rollback shop_web", "the manual rollback")
	h, err := (history.File{Path: filepath.Join(sm.varDir, "history.log")}).Read()
	require.NoError(t, err)
	require.Len(t, h, 3)
	assert.Equal(t, history.StatusSuccess, h[0].Status)
	assert.Equal(t, []string{"1.2.3-2222222", "failed"}, []string{h[1].Version, h[1].Status})
	assert.Equal(t, []string{history.ActionRollback, "1.2.3-1111111", history.StatusSuccess}, []string{h[2].Action, h[2].Version, h[2].Status}, "Swarm's rollback, recorded")
}
