package docker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
)

// Endpoint is a container's place on one network: its address and the DNS
// aliases other containers find it by there.
type Endpoint struct {
	IP      string
	Aliases []string
}

// Endpoint reads container id's endpoint on network (its engine name); ok is
// false when the container is not on it. The engine's automatic alias (the
// short container ID) is left out of Aliases.
func (c *Client) Endpoint(ctx context.Context, id, net string) (e Endpoint, ok bool, err error) {
	ins, err := c.api.ContainerInspect(ctx, id)
	if err != nil {
		return Endpoint{}, false, err
	}
	if ins.NetworkSettings == nil || ins.NetworkSettings.Networks[net] == nil {
		return Endpoint{}, false, nil
	}
	n := ins.NetworkSettings.Networks[net]
	e.IP = n.IPAddress
	if e.IP == "" && n.IPAMConfig != nil {
		e.IP = n.IPAMConfig.IPv4Address
	}
	for _, a := range n.Aliases {
		if len(ins.ID) >= 12 && a == ins.ID[:12] {
			continue
		}
		e.Aliases = append(e.Aliases, a)
	}
	return e, true, nil
}

// Reconnect replaces container id's endpoint on network with e: disconnected and
// connected again with e's aliases, at e's address when it has one (which the
// engine allows only on a network with a configured subnet). A running container
// keeps its connections through the short gap when its address stays: only what
// DNS answers for the aliases changes.
//
// A reconnect starts only while ctx lasts, and once started it finishes even
// when ctx ends (a cancelled job, the deadline of a switch back): a request the
// client gave up on may still have been carried out by the engine, and a
// reconnect cut in half leaves the container off the network, its address and
// aliases gone, with its caller unable to tell. It is bounded by
// reconnectTimeout instead.
func (c *Client) Reconnect(ctx context.Context, id, net string, e Endpoint) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not reconnecting %.12s to %s: %w", id, net, err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reconnectTimeout)
	defer cancel()
	if err := c.api.NetworkDisconnect(ctx, net, id, false); err != nil {
		return fmt.Errorf("disconnecting %.12s from %s: %w", id, net, err)
	}
	settings := &network.EndpointSettings{Aliases: slices.Clone(e.Aliases)}
	if e.IP != "" {
		settings.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: e.IP}
	}
	if err := c.api.NetworkConnect(ctx, net, id, settings); err != nil {
		return fmt.Errorf("connecting %.12s to %s: %w", id, net, err)
	}
	return nil
}

// reconnectTimeout bounds a reconnect that has started: an engine that never
// answers does not hold the run for ever.
const reconnectTimeout = time.Minute

// UserSubnet tells whether network surely has a subnet its creator chose (docker
// network create --subnet, or ipam.config): only on such a network can a container
// be given a fixed address. The engine reports an automatic subnet with its
// gateway, and a chosen one with a gateway only when one was chosen too, so a
// network whose every subnet shows a gateway may be either: false then.
func (c *Client) UserSubnet(ctx context.Context, net string) (bool, error) {
	n, err := c.api.NetworkInspect(ctx, net, network.InspectOptions{})
	if err != nil {
		return false, err
	}
	for _, cfg := range n.IPAM.Config {
		if cfg.Subnet != "" && cfg.Gateway == "" {
			return true, nil
		}
	}
	return false, nil
}

// Start starts a created container.
func (c *Client) Start(ctx context.Context, id string) error {
	return c.api.ContainerStart(ctx, id, container.StartOptions{})
}

// WaitHealthy waits until container id is healthy (or, without a healthcheck,
// running), and fails when it turns unhealthy, stops, or timeout passes.
func (c *Client) WaitHealthy(ctx context.Context, id string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		ins, err := c.api.ContainerInspect(ctx, id)
		if err != nil {
			return err
		}
		switch st := ins.State; {
		case st == nil:
		case !st.Running && st.Status != "created":
			return fmt.Errorf("it stopped (%s, exit code %d)", st.Status, st.ExitCode)
		case st.Health == nil && st.Running:
			return nil
		case st.Health != nil && st.Health.Status == "healthy":
			return nil
		case st.Health != nil && st.Health.Status == "unhealthy":
			return fmt.Errorf("its healthcheck failed%s", lastProbe(st.Health))
		}
		select {
		case <-ctx.Done():
			if cause := context.Cause(ctx); cause != context.DeadlineExceeded {
				return cause
			}
			return fmt.Errorf("not healthy after %s", timeout)
		case <-tick.C:
		}
	}
}

func lastProbe(h *container.Health) string {
	if len(h.Log) == 0 {
		return ""
	}
	out := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.TrimSpace(h.Log[len(h.Log)-1].Output))
	if len(out) > 200 {
		out = out[:200] + "…"
	}
	return ": " + out
}

// Stop stops a container, giving it grace to finish (SIGTERM, then SIGKILL).
func (c *Client) Stop(ctx context.Context, id string, grace time.Duration) error {
	secs := int(grace.Seconds())
	return c.api.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs})
}
