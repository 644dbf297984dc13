package docker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

// Details is what a running container was configured with, in the terms a plan
// diff compares (the deploy's plan step): environment as KEY=value (values stay
// in the process, never printed), and the rest normalised to strings.
type Details struct {
	Image       string   // as configured (name:tag)
	ImageID     string   // sha256:…
	Env         []string // the container's, without what its image sets alike
	Ports       []string // host-ip:host-port->port/proto
	Mounts      []string // type:source->target (source: a volume's name or a bind's path)
	Networks    []string
	Healthcheck string // the test and its timings, "" when the image's or none
	NanoCPUs    int64
	Memory      int64
}

// Details inspects container id (and its image, to leave out the image's own
// environment).
func (c *Client) Details(ctx context.Context, id string) (Details, error) {
	ins, err := c.api.ContainerInspect(ctx, id)
	if err != nil {
		return Details{}, err
	}
	d := Details{ImageID: ins.Image}
	imageEnv := map[string]bool{}
	if img, err := c.api.ImageInspect(ctx, ins.Image); err == nil && img.Config != nil {
		for _, kv := range img.Config.Env {
			imageEnv[kv] = true
		}
	}
	if ins.Config != nil {
		d.Image = ins.Config.Image
		for _, kv := range ins.Config.Env {
			if !imageEnv[kv] {
				d.Env = append(d.Env, kv)
			}
		}
		if hc := ins.Config.Healthcheck; hc != nil && len(hc.Test) > 0 {
			d.Healthcheck = HealthcheckString(hc.Test, hc.Interval, hc.Timeout, hc.Retries)
		}
	}
	if ins.HostConfig != nil {
		for port, bindings := range ins.HostConfig.PortBindings {
			for _, b := range bindings {
				d.Ports = append(d.Ports, PortString(b.HostIP, b.HostPort, port.Port(), port.Proto()))
			}
		}
		d.NanoCPUs, d.Memory = ins.HostConfig.NanoCPUs, ins.HostConfig.Memory
	}
	for _, m := range ins.Mounts {
		src := m.Source
		if m.Name != "" {
			src = m.Name
		}
		d.Mounts = append(d.Mounts, MountString(string(m.Type), src, m.Destination))
	}
	if ins.NetworkSettings != nil {
		for name := range ins.NetworkSettings.Networks {
			d.Networks = append(d.Networks, name)
		}
	}
	for _, l := range [][]string{d.Env, d.Ports, d.Mounts, d.Networks} {
		sort.Strings(l)
	}
	return d, nil
}

// The labels docker compose and docker stack deploy put on what they make.
const (
	labelComposeProject = "com.docker.compose.project"
	labelStackNamespace = "com.docker.stack.namespace"
)

// ContainerStack is the compose project or swarm stack container name belongs
// to: "" for a container started otherwise.
func (c *Client) ContainerStack(ctx context.Context, name string) (string, error) {
	ins, err := c.api.ContainerInspect(ctx, name)
	if err != nil {
		return "", err
	}
	if ins.Config == nil {
		return "", nil
	}
	if p := ins.Config.Labels[labelComposeProject]; p != "" {
		return p, nil
	}
	return ins.Config.Labels[labelStackNamespace], nil
}

// ImageID is the ID of a local image, "" when this engine has none.
func (c *Client) ImageID(ctx context.Context, ref string) (string, error) {
	img, err := c.api.ImageInspect(ctx, ref)
	switch {
	case cerrdefs.IsNotFound(err):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("inspecting image %s: %w", ref, err)
	}
	return img.ID, nil
}

// PortString is a published port as a plan diff shows it.
func PortString(hostIP, hostPort, port, proto string) string {
	if proto == "" {
		proto = "tcp"
	}
	return fmt.Sprintf("%s:%s->%s/%s", hostIP, hostPort, port, proto)
}

// MountString is a mount as a plan diff shows it.
func MountString(kind, source, target string) string {
	return fmt.Sprintf("%s:%s->%s", kind, source, target)
}

// HealthcheckString is a healthcheck as a plan diff shows it.
func HealthcheckString(test []string, interval, timeout time.Duration, retries int) string {
	return fmt.Sprintf("%s (interval %s, timeout %s, retries %d)", strings.Join(test, " "), interval, timeout, retries)
}
