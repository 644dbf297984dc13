package deploy

import (
	"context"
	"io"
	"time"

	"github.com/org/deploy-kit/internal/docker"
)

// The Docker Engine as a deploy uses it, by role (ARCHITECTURE.md, "Rules
// every package keeps"): a part of the deploy that needs one role asks for that
// one, so that its fast test fakes only what it uses; State.Docker has them all
// (*docker.Client).

// hostEngine is the engine itself: where it is and what it has room for.
type hostEngine interface {
	Close() error
	Host() string
	IsLocal() bool
	Ping(ctx context.Context) error
	FreeDisk(ctx context.Context) (root string, freePercent float64, err error)
	DataRoot(ctx context.Context) (string, error)
}

// imageEngine tags and reads the images a release runs.
type imageEngine interface {
	ImageHasHealthcheck(ctx context.Context, ref string) (bool, error)
	ImageID(ctx context.Context, ref string) (string, error)
	References(ctx context.Context, pattern string) ([]string, error)
	Tag(ctx context.Context, image, ref string) error
	Untag(ctx context.Context, ref string) error
}

// containerEngine reads and changes a compose project's containers.
type containerEngine interface {
	ProjectContainers(ctx context.Context, project string) ([]docker.Container, error)
	Details(ctx context.Context, id string) (docker.Details, error)
	Logs(ctx context.Context, id string, n int) (string, error)
	Start(ctx context.Context, id string) error
	StopAndRemove(ctx context.Context, id string, grace time.Duration) error
	Remove(ctx context.Context, id string) error
	WaitHealthy(ctx context.Context, id string, timeout time.Duration) error
	HealthOutput(ctx context.Context, id string) (string, error)
	CopyFile(ctx context.Context, id, dir, name string, content io.Reader, size int64, owner docker.FileOwner) error
}

// routeEngine moves a rolling service's aliases (switch.go).
type routeEngine interface {
	NetworkExists(ctx context.Context, name string) (bool, error)
	UserSubnet(ctx context.Context, net string) (bool, error)
	Endpoint(ctx context.Context, id, net string) (e docker.Endpoint, ok bool, err error)
	Reconnect(ctx context.Context, id, net string, e docker.Endpoint) error
}

// taskReader reads how a swarm service's tasks ended (swarm.go's report).
type taskReader interface {
	ServiceTasks(ctx context.Context, serviceID string) ([]docker.Task, error)
	TaskContainer(ctx context.Context, taskID string) (string, error)
	TaskLogs(ctx context.Context, taskID string, n int) (string, error)
	Logs(ctx context.Context, id string, n int) (string, error)
	HealthOutput(ctx context.Context, id string) (string, error)
	Nodes(ctx context.Context) ([]docker.Node, error)
}

// swarmEngine is a swarm manager: the stack's services and secrets.
type swarmEngine interface {
	taskReader
	SwarmManager(ctx context.Context) (bool, string, error)
	StackServices(ctx context.Context, stack string) ([]docker.Service, error)
	InspectService(ctx context.Context, name string) (docker.Service, error)
	ServiceDetails(ctx context.Context, name string) (docker.Details, int, error)
	EnsureSecret(ctx context.Context, name string, value []byte, labels map[string]string) (created bool, err error)
	SecretsLabelled(ctx context.Context, label, value string) ([]string, error)
	RemoveSecret(ctx context.Context, name string) error
}

// engine is every role: what a deploy's State holds.
type engine interface {
	hostEngine
	imageEngine
	containerEngine
	routeEngine
	swarmEngine
	// What the repair step asks of it (repair.Stack).
	RemoveLabelled(ctx context.Context, label, value string) (docker.Removed, error)
	StartStopped(ctx context.Context, id string) (started bool, name string, err error)
}

var _ engine = (*docker.Client)(nil)
