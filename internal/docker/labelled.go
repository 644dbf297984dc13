package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
)

// LabelStack is on everything a run makes for a stack that must not outlive
// the run — copies of the stack, throwaway containers — with the stack's
// name: the next run holding the stack's lock removes what carries it.
const LabelStack = "org.deploykit.stack"

// StartStopped starts container id if it exists and does not run (started
// false when it runs already or is gone), and names it.
func (c *Client) StartStopped(ctx context.Context, id string) (started bool, name string, err error) {
	ins, err := c.api.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	name = strings.TrimPrefix(ins.Name, "/")
	if ins.State != nil && ins.State.Running {
		return false, name, nil
	}
	return true, name, c.api.ContainerStart(ctx, id, container.StartOptions{})
}

// Removed is what RemoveLabelled removed, by name.
type Removed struct {
	Containers, Networks, Volumes []string
	// Projects are the compose projects the removed things belonged to.
	Projects []string
}

// Empty reports that nothing was removed.
func (r Removed) Empty() bool {
	return len(r.Containers)+len(r.Networks)+len(r.Volumes) == 0
}

// String lists what was removed.
func (r Removed) String() string {
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"containers", r.Containers}, {"networks", r.Networks}, {"volumes", r.Volumes}} {
		if len(p.names) > 0 {
			parts = append(parts, p.what+" "+strings.Join(p.names, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// RemoveLabelled removes every container (forced, with its anonymous volumes),
// then every network and volume, that carries label=value: what a killed run
// left, found by what it is rather than by a record of what was started.
func (c *Client) RemoveLabelled(ctx context.Context, label, value string) (Removed, error) {
	var r Removed
	f := filters.NewArgs(filters.Arg("label", label+"="+value))
	project := func(labels map[string]string) {
		if p := labels[labelComposeProject]; p != "" && !slices.Contains(r.Projects, p) {
			r.Projects = append(r.Projects, p)
		}
	}
	var errs []error
	list, err := c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return r, fmt.Errorf("listing containers labelled %s=%s: %w", label, value, err)
	}
	for _, ct := range list {
		name := ct.ID[:12]
		if len(ct.Names) > 0 {
			name = strings.TrimPrefix(ct.Names[0], "/")
		}
		if err := c.api.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing container %s: %w", name, err))
			continue
		}
		r.Containers = append(r.Containers, name)
		project(ct.Labels)
	}
	nets, err := c.api.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return r, errors.Join(append(errs, fmt.Errorf("listing networks labelled %s=%s: %w", label, value, err))...)
	}
	for _, n := range nets {
		if err := c.api.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing network %s: %w", n.Name, err))
			continue
		}
		r.Networks = append(r.Networks, n.Name)
		project(n.Labels)
	}
	vols, err := c.api.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return r, errors.Join(append(errs, fmt.Errorf("listing volumes labelled %s=%s: %w", label, value, err))...)
	}
	for _, v := range vols.Volumes {
		if err := c.api.VolumeRemove(ctx, v.Name, true); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing volume %s: %w", v.Name, err))
			continue
		}
		r.Volumes = append(r.Volumes, v.Name)
		project(v.Labels)
	}
	slices.Sort(r.Projects)
	return r, errors.Join(errs...)
}

// LabelOwner is on every throwaway container a run starts (a scratch server,
// a sidecar, migration-smoke's database): <host>/<pid> of the process that
// started it. Removed by that process as it ends; if it was killed, by the
// next run on the same host (RemoveDeadOwners).
const LabelOwner = "org.deploykit.owner"

// Owner is the LabelOwner value of this process.
func Owner() string {
	host, _ := os.Hostname()
	return host + "/" + strconv.Itoa(os.Getpid())
}

// RemoveDeadOwners removes the throwaway containers whose owner was a process
// of this host that is gone (alive says whether a pid runs): what a killed run
// left. Those of other hosts are left alone — there is no telling whether
// their owner lives — unless a stack's lock says so (RemoveLabelled with
// LabelStack).
func (c *Client) RemoveDeadOwners(ctx context.Context, alive func(pid int) bool) (Removed, error) {
	var r Removed
	host, _ := os.Hostname()
	list, err := c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelOwner))})
	if err != nil {
		return r, fmt.Errorf("listing the kit's throwaway containers: %w", err)
	}
	var errs []error
	for _, ct := range list {
		h, p, ok := strings.Cut(ct.Labels[LabelOwner], "/")
		pid, err := strconv.Atoi(p)
		if !ok || err != nil || h != host || alive(pid) {
			continue
		}
		name := strings.TrimPrefix(firstOr(ct.Names, ct.ID[:12]), "/")
		if err := c.api.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing container %s: %w", name, err))
			continue
		}
		r.Containers = append(r.Containers, name)
	}
	return r, errors.Join(errs...)
}

func firstOr(list []string, or string) string {
	if len(list) > 0 {
		return list[0]
	}
	return or
}
