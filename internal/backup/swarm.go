package backup

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/docker"
)

// swarmLookupTimeout bounds finding a swarm service's task and starting the
// throwaway container beside it (an image pull included).
const swarmLookupTimeout = 5 * time.Minute

// swarmServer finds the database server of input swarm-service wherever Swarm
// runs its task (docs/swarm.md): on this engine, the
// tools run in the task's container, as with input container; on another node,
// in a throwaway container of the task's image on the service's attachable
// network, pointed at the task's address there.
func swarmServer(a *action.Context, c conn, o Options, build func(conn) (Engine, error)) (Engine, error) {
	ctx, cancel := context.WithTimeout(context.Background(), swarmLookupTimeout)
	defer cancel()
	client, err := docker.New(a.Environ())
	if err != nil {
		return nil, err
	}
	fail := func(err error) (Engine, error) {
		_ = client.Close()
		return nil, fmt.Errorf("input %s: %w", o.name("swarm-service"), err)
	}
	svc, err := client.InspectService(ctx, o.SwarmService)
	if err != nil {
		return fail(err)
	}
	tasks, err := client.ServiceTasks(ctx, svc.ID)
	if err != nil {
		return fail(err)
	}
	var running []docker.Task
	for _, t := range tasks {
		if t.State == "running" && t.Desired == "running" {
			running = append(running, t)
		}
	}
	if len(running) != 1 {
		return fail(fmt.Errorf("swarm service %s has %d running tasks: a database server runs exactly one", svc.Name, len(running)))
	}
	task := running[0]
	labels := o.throwawayLabels(a)
	c.Server = server{client: client, user: o.DBUser, password: o.DBPassword, labels: labels, swarm: "swarm service " + svc.Name}
	if local, err := client.NodeID(ctx); err == nil && local == task.NodeID {
		id, err := client.TaskContainer(ctx, task.ID)
		if err != nil {
			return fail(err)
		}
		if id != "" {
			c.Container, c.Server.container = id, id
			a.Logf("    %s: task %.12s runs on this node (%s), in container %.12s", svc.Name, task.ID, task.Node, id)
			c.Src = execRunner{client: client, container: id, mask: a.MaskString}
			return build(c)
		}
	}
	network, address := "", ""
	for _, name := range slices.Sorted(maps.Keys(task.Addresses)) {
		if name == "ingress" {
			continue
		}
		if ok, err := client.NetworkAttachable(ctx, name); err == nil && ok {
			network, address = name, task.Addresses[name]
			break
		}
	}
	if network == "" {
		return fail(fmt.Errorf("task %.12s of %s runs on node %s, and none of its networks (%s) is attachable: declare the stack's network attachable: true, so that a container of the job's engine can reach it", task.ID, svc.Name, task.Node, strings.Join(slices.Sorted(maps.Keys(task.Addresses)), ", ")))
	}
	// A dry run only plans: the tools' way is named, nothing is started.
	id, verb := svc.Name, "would run"
	if !o.DryRun {
		if id, err = client.Sidecar(ctx, docker.SidecarSpec{Image: task.Image, Network: network, Labels: labels}); err != nil {
			return fail(err)
		}
		verb = "run"
		c.Server.remove = func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = client.Remove(ctx, id)
		}
	}
	a.Logf("    %s: task %.12s runs on node %s, at %s on %s: the tools %s in a throwaway container of %s on that network", svc.Name, task.ID, task.Node, address, network, verb, task.Image)
	r := remoteFor(c.Engine, address)
	r.execRunner, r.image, r.network = execRunner{client: client, container: id, mask: a.MaskString}, task.Image, network
	c.Container, c.Server.container, c.Src = id, id, r
	e, err := build(c)
	if err != nil {
		_ = c.Server.Close()
		return nil, err
	}
	return e, nil
}

// remoteFor is the remote runner of an engine's tools: the options that point
// them at a server's address over TCP, and the variable their password goes in.
func remoteFor(engine, address string) remoteRunner {
	if engine == "postgres" {
		return remoteRunner{host: []string{"-h", address}, password: "PGPASSWORD"}
	}
	return remoteRunner{host: []string{"--host=" + address, "--protocol=TCP"}, password: "MYSQL_PWD"}
}

// remoteRunner runs a database's tools in a throwaway container on the
// server's network, each pointed at the server's address there.
type remoteRunner struct {
	execRunner
	host           []string
	password       string // the tools' password variable: over TCP, always needed
	image, network string
}

func (r remoteRunner) argv(argv []string) []string {
	return slices.Concat(argv[:1], r.host, argv[1:])
}

func (r remoteRunner) where() string { return "in a container of " + r.image + " on " + r.network }

func (r remoteRunner) shell(argv []string, envNames ...string) string {
	cmd := []string{"docker", "run", "--rm", "-i", "--network", r.network}
	for _, n := range envNames {
		cmd = append(cmd, "-e", n)
	}
	if !slices.Contains(envNames, r.password) {
		cmd = append(cmd, "-e", r.password)
	}
	return command.Join(slices.Concat(cmd, []string{r.image}, r.argv(argv)))
}

func (r remoteRunner) run(ctx context.Context, p program) error {
	p.Argv = r.argv(p.Argv)
	return r.execRunner.run(ctx, p)
}
