package docker

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

// SwarmManager reports whether the engine is a manager of an active swarm, and
// its node state otherwise ("inactive", "pending", "error", or "active" on a
// worker).
func (c *Client) SwarmManager(ctx context.Context) (bool, string, error) {
	info, err := c.api.Info(ctx)
	if err != nil {
		return false, "", err
	}
	return info.Swarm.LocalNodeState == swarm.LocalNodeStateActive && info.Swarm.ControlAvailable, string(info.Swarm.LocalNodeState), nil
}

// NodeID is the swarm node ID of this engine ("" outside a swarm).
func (c *Client) NodeID(ctx context.Context) (string, error) {
	info, err := c.api.Info(ctx)
	if err != nil {
		return "", err
	}
	return info.Swarm.NodeID, nil
}

// ImageHasHealthcheck reports whether a local image defines a HEALTHCHECK (false
// also when the image is not on this engine: nothing says it has one).
func (c *Client) ImageHasHealthcheck(ctx context.Context, ref string) (bool, error) {
	img, err := c.api.ImageInspect(ctx, ref)
	switch {
	case cerrdefs.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("inspecting image %s: %w", ref, err)
	case img.Config == nil:
		return false, nil
	}
	hc := img.Config.Healthcheck
	return hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE", nil
}

// Service is one service of a swarm stack.
type Service struct {
	ID       string
	Name     string // <stack>_<service>
	Short    string // the service's name in the compose file
	Stack    string // the stack docker stack deploy made it in ("" when none)
	Image    string // what its spec runs now
	Prev     string // what its previous spec ran ("" when none)
	Update   string // update state: updating, completed, paused, rollback_started, rollback_completed, rollback_paused, or ""
	Message  string // the update status message
	Started  time.Time
	Replicas int // desired tasks (1 for a global service)
}

// StackServices lists the services of a stack (docker stack deploy labels them).
func (c *Client) StackServices(ctx context.Context, stack string) ([]Service, error) {
	list, err := c.api.ServiceList(ctx, swarm.ServiceListOptions{
		Filters: filters.NewArgs(filters.Arg("label", labelStackNamespace+"="+stack))})
	if err != nil {
		return nil, err
	}
	var out []Service
	for _, s := range list {
		out = append(out, toService(s))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// InspectService reads one service by name or ID.
func (c *Client) InspectService(ctx context.Context, name string) (Service, error) {
	s, _, err := c.api.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		return Service{}, err
	}
	return toService(s), nil
}

func toService(s swarm.Service) Service {
	out := Service{ID: s.ID, Name: s.Spec.Name, Short: s.Spec.Name}
	if ns := s.Spec.Labels[labelStackNamespace]; ns != "" {
		out.Stack = ns
		out.Short = strings.TrimPrefix(s.Spec.Name, ns+"_")
	}
	out.Replicas = 1
	if m := s.Spec.Mode.Replicated; m != nil && m.Replicas != nil {
		out.Replicas = int(*m.Replicas)
	}
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		out.Image = cs.Image
	}
	if s.PreviousSpec != nil && s.PreviousSpec.TaskTemplate.ContainerSpec != nil {
		out.Prev = s.PreviousSpec.TaskTemplate.ContainerSpec.Image
	}
	if u := s.UpdateStatus; u != nil {
		out.Update, out.Message = string(u.State), u.Message
		if u.StartedAt != nil {
			out.Started = *u.StartedAt
		}
	}
	return out
}

// Task is one task of a service.
type Task struct {
	ID          string
	State       string // running, failed, shutdown, …
	Desired     string
	Err         string
	Image       string
	ContainerID string
	Node        string // the hostname of the node it was given to ("" before that)
	NodeID      string
	Addresses   map[string]string // its address on each network, by network name
	Updated     time.Time
}

// ServiceTasks lists a service's tasks, newest first.
func (c *Client) ServiceTasks(ctx context.Context, serviceID string) ([]Task, error) {
	list, err := c.api.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", serviceID))})
	if err != nil {
		return nil, err
	}
	hostnames := map[string]string{} // node ID → hostname, asked once
	if nodes, err := c.api.NodeList(ctx, swarm.NodeListOptions{}); err == nil {
		for _, n := range nodes {
			hostnames[n.ID] = n.Description.Hostname
		}
	}
	var out []Task
	for _, t := range list {
		task := Task{ID: t.ID, State: string(t.Status.State), Desired: string(t.DesiredState), Err: t.Status.Err, Updated: t.UpdatedAt,
			Node: cmp.Or(hostnames[t.NodeID], t.NodeID), NodeID: t.NodeID, Addresses: map[string]string{}}
		for _, at := range t.NetworksAttachments {
			if len(at.Addresses) > 0 {
				ip, _, _ := strings.Cut(at.Addresses[0], "/")
				task.Addresses[at.Network.Spec.Name] = ip
			}
		}
		if t.Spec.ContainerSpec != nil {
			task.Image = t.Spec.ContainerSpec.Image
		}
		if t.Status.ContainerStatus != nil {
			task.ContainerID = t.Status.ContainerStatus.ContainerID
		}
		out = append(out, task)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Updated.After(out[j].Updated) })
	return out, nil
}

// Node is a swarm node as the manager sees it.
type Node struct {
	Hostname     string
	State        string // ready, down, unknown or disconnected
	Availability string // active, pause or drain
}

// Nodes lists the swarm's nodes, by hostname.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	list, err := c.api.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(list))
	for _, n := range list {
		out = append(out, Node{Hostname: cmp.Or(n.Description.Hostname, n.ID), State: string(n.Status.State), Availability: string(n.Spec.Availability)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hostname < out[j].Hostname })
	return out, nil
}

// TaskLogs returns the last n lines of a task's output, wherever in the swarm it
// ran: the manager asks the task's node.
func (c *Client) TaskLogs(ctx context.Context, taskID string, n int) (string, error) {
	return lastLines(c.api.TaskLogs(ctx, taskID, tail(n)))
}

// TaskContainer finds the container of a swarm task on this engine (also one
// that stopped), by the label Swarm puts on it; "" when there is none.
func (c *Client) TaskContainer(ctx context.Context, taskID string) (string, error) {
	list, err := c.api.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.task.id="+taskID))})
	if err != nil {
		return "", fmt.Errorf("listing the containers of task %.12s: %w", taskID, err)
	}
	if len(list) == 0 {
		return "", nil
	}
	return list[0].ID, nil
}

// EnsureSecret creates a swarm secret with this name and value unless it exists.
// The value goes to the engine in the request body, never to a disk or argv.
func (c *Client) EnsureSecret(ctx context.Context, name string, value []byte, labels map[string]string) (created bool, err error) {
	if _, _, err := c.api.SecretInspectWithRaw(ctx, name); err == nil {
		return false, nil
	} else if !cerrdefs.IsNotFound(err) {
		return false, err
	}
	_, err = c.api.SecretCreate(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: name, Labels: labels}, Data: value})
	if err != nil {
		return false, fmt.Errorf("creating secret %s: %w", name, err)
	}
	return true, nil
}

// SecretsLabelled lists the names of the secrets carrying label=value.
func (c *Client) SecretsLabelled(ctx context.Context, label, value string) ([]string, error) {
	list, err := c.api.SecretList(ctx, swarm.SecretListOptions{Filters: filters.NewArgs(filters.Arg("label", label+"="+value))})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range list {
		names = append(names, s.Spec.Name)
	}
	sort.Strings(names)
	return names, nil
}

// RemoveSecret removes a secret; one still in use is an error from the engine.
func (c *Client) RemoveSecret(ctx context.Context, name string) error {
	return c.api.SecretRemove(ctx, name)
}

// ServiceDetails is a swarm service's spec in a plan diff's terms (see Details):
// its image split from the digest it was resolved to, its environment, published
// ports, mounts, network names, healthcheck and limits, and its desired replicas.
func (c *Client) ServiceDetails(ctx context.Context, name string) (Details, int, error) {
	s, _, err := c.api.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		return Details{}, 0, err
	}
	var d Details
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		d.Image, d.ImageID, _ = strings.Cut(cs.Image, "@")
		d.Env = append(d.Env, cs.Env...)
		for _, m := range cs.Mounts {
			d.Mounts = append(d.Mounts, MountString(string(m.Type), m.Source, m.Target))
		}
		if hc := cs.Healthcheck; hc != nil && len(hc.Test) > 0 {
			d.Healthcheck = HealthcheckString(hc.Test, hc.Interval, hc.Timeout, hc.Retries)
		}
	}
	if ep := s.Spec.EndpointSpec; ep != nil {
		for _, p := range ep.Ports {
			d.Ports = append(d.Ports, PortString("", fmt.Sprint(p.PublishedPort), fmt.Sprint(p.TargetPort), string(p.Protocol)))
		}
	}
	for _, n := range s.Spec.TaskTemplate.Networks {
		name := n.Target
		if ins, err := c.api.NetworkInspect(ctx, n.Target, network.InspectOptions{}); err == nil {
			name = ins.Name
		}
		d.Networks = append(d.Networks, name)
	}
	if r := s.Spec.TaskTemplate.Resources; r != nil && r.Limits != nil {
		d.NanoCPUs, d.Memory = r.Limits.NanoCPUs, r.Limits.MemoryBytes
	}
	for _, l := range [][]string{d.Env, d.Ports, d.Mounts, d.Networks} {
		sort.Strings(l)
	}
	replicas := 1
	if m := s.Spec.Mode.Replicated; m != nil && m.Replicas != nil {
		replicas = int(*m.Replicas)
	}
	return d, replicas, nil
}
