package docker

import (
	"context"
	"fmt"
	"io"

	"github.com/distribution/reference"
	clicfg "github.com/docker/cli/cli/config"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
)

// SidecarSpec is a throwaway container on a network, idle until it is removed:
// where a database's tools run against a server the job's engine cannot exec
// into (a swarm task on another node), reached by its address on that network.
type SidecarSpec struct {
	Image   string
	Network string // must be attachable when it is a swarm overlay network
	Labels  map[string]string
}

// Sidecar starts one and returns its ID. The image is pulled when it is not
// on this engine, with the job's registry credentials (its docker CLI
// configuration, as docker pull would use them).
func (c *Client) Sidecar(ctx context.Context, spec SidecarSpec) (string, error) {
	if err := c.ensureImage(ctx, spec.Image); err != nil {
		return "", err
	}
	created, err := c.api.ContainerCreate(ctx,
		&container.Config{Image: spec.Image, Entrypoint: []string{"tail", "-f", "/dev/null"}, Cmd: []string{}, Labels: spec.Labels},
		&container.HostConfig{},
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{spec.Network: {}}},
		nil, "")
	if err != nil {
		return "", fmt.Errorf("creating a container of %s on network %s: %w", spec.Image, spec.Network, err)
	}
	if err := c.api.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		_ = c.Remove(context.WithoutCancel(ctx), created.ID)
		return "", fmt.Errorf("starting a container of %s on network %s: %w", spec.Image, spec.Network, err)
	}
	return created.ID, nil
}

// pull pulls ref with the credentials the job's docker configuration holds for
// its registry (none: anonymously).
func (c *Client) pull(ctx context.Context, ref string) error {
	auth := ""
	if named, err := reference.ParseNormalizedNamed(ref); err == nil && c.config != "" {
		if cfg, err := clicfg.Load(c.config); err == nil {
			host := reference.Domain(named)
			if host == "docker.io" {
				host = "https://index.docker.io/v1/"
			}
			if ac, err := cfg.GetAuthConfig(host); err == nil && (ac.Username != "" || ac.IdentityToken != "") {
				auth, _ = registry.EncodeAuthConfig(registry.AuthConfig{Username: ac.Username, Password: ac.Password,
					ServerAddress: ac.ServerAddress, IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken})
			}
		}
	}
	rc, err := c.api.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		return fmt.Errorf("image %s is not on this engine and cannot be pulled: %w", ref, err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("pulling %s: %w", ref, err)
	}
	if ok, err := c.ImageExists(ctx, ref); err != nil {
		return fmt.Errorf("pulling %s: %w", ref, err)
	} else if !ok {
		return fmt.Errorf("pulling %s: the engine reported no image (is the registry's login in the job's docker config?)", ref)
	}
	return nil
}

// NetworkAttachable reports whether a network lets standalone containers join
// it (a swarm overlay network declared attachable; every local network does).
func (c *Client) NetworkAttachable(ctx context.Context, name string) (bool, error) {
	n, err := c.api.NetworkInspect(ctx, name, network.InspectOptions{})
	if err != nil {
		return false, err
	}
	return n.Attachable || n.Scope == "local", nil
}
