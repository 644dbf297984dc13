// Package docker talks to the Docker Engine through its API (the Go SDK): inspect,
// health, logs, tags, disk. Orchestration itself goes through the docker compose CLI.
package docker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	"golang.org/x/sync/errgroup"
)

// Client is an Engine API client. Each package sees it through the interface
// of what it asks, declared where it is used (ARCHITECTURE.md, "One executor
// seam").
type Client struct {
	api    *client.Client
	host   string
	config string // the job's docker CLI configuration directory: registry credentials
}

// New connects to the engine the job's environment names, negotiating the API
// version so that old engines work too. A unix:// or tcp:// DOCKER_HOST (with
// DOCKER_CERT_PATH for TLS) is dialled directly; an ssh:// host or a DOCKER_CONTEXT
// goes through the docker CLI (docker system dial-stdio), like docker compose.
func New(env []string) (*Client, error) {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	getenv := func(k string) string { return vars[k] }
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	host, dockerContext := getenv("DOCKER_HOST"), getenv("DOCKER_CONTEXT")
	switch {
	case strings.HasPrefix(host, "ssh://") || (host == "" && dockerContext != "" && dockerContext != "default"):
		opts = append(opts, client.WithHost("tcp://docker-cli-dial-stdio:2375"), client.WithDialContext(dialStdio(env)))
		if host == "" {
			host = "context " + dockerContext
		}
	case host != "":
		opts = append(opts, client.WithHost(host))
	}
	if v := getenv("DOCKER_API_VERSION"); v != "" {
		opts = append(opts, client.WithVersion(v))
	}
	if certs := getenv("DOCKER_CERT_PATH"); certs != "" {
		opts = append(opts, client.WithTLSClientConfig(certs+"/ca.pem", certs+"/cert.pem", certs+"/key.pem"))
	}
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %q: %w", host, err)
	}
	if host == "" {
		host = api.DaemonHost()
	}
	config := getenv("DOCKER_CONFIG")
	if config == "" && getenv("HOME") != "" {
		config = filepath.Join(getenv("HOME"), ".docker")
	}
	return &Client{api: api, host: host, config: config}, nil
}

// Host is the engine address.
func (c *Client) Host() string { return c.host }

// Close releases the client.
func (c *Client) Close() error { return c.api.Close() }

// Ping checks the engine answers.
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.api.Ping(ctx); err != nil {
		return fmt.Errorf("the Docker Engine at %s does not answer: %w", c.host, err)
	}
	return nil
}

// IsLocal reports whether the engine runs on this machine (a unix socket), so its
// data root can be inspected here.
func (c *Client) IsLocal() bool {
	return strings.HasPrefix(c.host, "unix://") || strings.HasPrefix(c.host, "/")
}

// DataRoot is the engine's data root (Docker Root Dir).
func (c *Client) DataRoot(ctx context.Context) (string, error) {
	info, err := c.api.Info(ctx)
	if err != nil {
		return "", err
	}
	return info.DockerRootDir, nil
}

// FreeDisk returns the engine's data root and the percentage of it that is free.
func (c *Client) FreeDisk(ctx context.Context) (root string, freePercent float64, err error) {
	info, err := c.api.Info(ctx)
	if err != nil {
		return "", 0, err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(info.DockerRootDir, &st); err != nil {
		return info.DockerRootDir, 0, fmt.Errorf("free space of %s: %w", info.DockerRootDir, err)
	}
	if st.Blocks == 0 {
		return info.DockerRootDir, 100, nil
	}
	return info.DockerRootDir, 100 * float64(st.Bavail) / float64(st.Blocks), nil
}

// NetworkExists reports whether a network of that name exists.
func (c *Client) NetworkExists(ctx context.Context, name string) (bool, error) {
	_, err := c.api.NetworkInspect(ctx, name, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Container is one container of a compose project.
type Container struct {
	ID      string
	Name    string
	Service string
	Image   string // as configured (name:tag)
	ImageID string
	State   string // running, exited, …
	Health  string // healthy, unhealthy, starting, or "" without a healthcheck
	// HealthOutput is what its healthcheck's last run printed (and its exit
	// code), when it has one.
	HealthOutput string
	IPs          []string // the container's addresses on its networks
	Logs         string   // its last log lines, when read already (a swarm task's container may be gone later)
}

// ProjectContainers lists a compose project's containers (running or not), sorted by
// service and name.
func (c *Client) ProjectContainers(ctx context.Context, project string) ([]Container, error) {
	list, err := c.api.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+project)),
	})
	if err != nil {
		return nil, err
	}
	// One inspect per container, side by side: a stack of many services has
	// many, and every step that reads the project waits for all of them.
	out := make([]Container, len(list))
	var g errgroup.Group
	g.SetLimit(8)
	for i, s := range list {
		ct := &out[i]
		*ct = Container{ID: s.ID, Service: s.Labels["com.docker.compose.service"], Image: s.Image, ImageID: s.ImageID, State: s.State}
		if len(s.Names) > 0 {
			ct.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		g.Go(func() error {
			ins, err := c.api.ContainerInspect(ctx, s.ID)
			if err != nil {
				return nil // gone since the list: what the list said stands
			}
			if ins.State != nil && ins.State.Health != nil {
				ct.Health = string(ins.State.Health.Status)
				if l := ins.State.Health.Log; len(l) > 0 {
					last := l[len(l)-1]
					ct.HealthOutput = fmt.Sprintf("exit %d: %s", last.ExitCode, strings.TrimSpace(last.Output))
				}
			}
			if ins.Config != nil {
				ct.Image = ins.Config.Image
			}
			if ins.NetworkSettings != nil {
				for _, n := range ins.NetworkSettings.Networks {
					if n != nil && n.IPAddress != "" {
						ct.IPs = append(ct.IPs, n.IPAddress)
					}
				}
				sort.Strings(ct.IPs)
			}
			return nil
		})
	}
	_ = g.Wait()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Tag gives an image (by ID or reference) another reference.
func (c *Client) Tag(ctx context.Context, image, ref string) error {
	return c.api.ImageTag(ctx, image, ref)
}

// Logs returns the last n lines of a container's output (stdout and stderr).
func (c *Client) Logs(ctx context.Context, id string, n int) (string, error) {
	return lastLines(c.api.ContainerLogs(ctx, id, tail(n)))
}

// tail asks for the last n lines of stdout and stderr.
func tail(n int) container.LogsOptions {
	return container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(n)}
}

// lastLines reads a multiplexed log stream (stdout and stderr) as text.
func lastLines(rc io.ReadCloser, err error) (string, error) {
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return buf.String(), err
	}
	return buf.String(), nil
}

// References lists the image references (repo:tag) matching a reference filter
// such as "deploykit-snapshot/app-web:*".
func (c *Client) References(ctx context.Context, pattern string) ([]string, error) {
	list, err := c.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", pattern))})
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, img := range list {
		refs = append(refs, img.RepoTags...)
	}
	sort.Strings(refs)
	return refs, nil
}

// Untag removes a reference; the image itself goes only when nothing else names or
// uses it.
func (c *Client) Untag(ctx context.Context, ref string) error {
	_, err := c.api.ImageRemove(ctx, ref, image.RemoveOptions{})
	return err
}

// Auth is what the kit logs in to a registry with, sent in the API's auth header
// (never on a command line, never written to a config file).
type Auth struct {
	Registry string // host[:port]
	Username string
	Password string
}

func (a Auth) config() registry.AuthConfig {
	return registry.AuthConfig{Username: a.Username, Password: a.Password, ServerAddress: a.Registry}
}

// Login checks the credentials with the registry, through the engine.
func (c *Client) Login(ctx context.Context, a Auth) error {
	if _, err := c.api.RegistryLogin(ctx, a.config()); err != nil {
		return fmt.Errorf("logging in to %s as %s: %w", a.Registry, a.Username, err)
	}
	return nil
}

// Push pushes one reference and returns the manifest digest the registry
// reported; progress goes to log.
func (c *Client) Push(ctx context.Context, ref string, a *Auth, log io.Writer) (string, error) {
	opts := image.PushOptions{}
	if a != nil {
		enc, err := registry.EncodeAuthConfig(a.config())
		if err != nil {
			return "", err
		}
		opts.RegistryAuth = enc
	} else {
		// The engine wants an auth header even for anonymous pushes.
		opts.RegistryAuth = base64.URLEncoding.EncodeToString([]byte("{}"))
	}
	rc, err := c.api.ImagePush(ctx, ref, opts)
	if err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	digest := ""
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return "", fmt.Errorf("pushing %s: reading the engine's progress: %w", ref, err)
		}
		if m.Error != nil {
			return "", fmt.Errorf("pushing %s: %s", ref, m.Error.Message)
		}
		if m.Aux != nil {
			var aux struct{ Digest string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.Digest != "" {
				digest = aux.Digest
			}
		}
		if m.Status != "" && m.Progress == nil && log != nil {
			fmt.Fprintf(log, "    %s %s\n", m.ID, m.Status)
		}
	}
	if digest == "" {
		return "", fmt.Errorf("pushing %s: the engine reported no digest", ref)
	}
	return digest, nil
}

// ImageExists reports whether a local image of that reference exists; an
// engine that cannot tell is an error.
func (c *Client) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := c.api.ImageInspect(ctx, ref)
	switch {
	case cerrdefs.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("inspecting image %s: %w", ref, err)
	}
	return true, nil
}

// ensureImage pulls ref unless this engine has it.
func (c *Client) ensureImage(ctx context.Context, ref string) error {
	ok, err := c.ImageExists(ctx, ref)
	if err != nil || ok {
		return err
	}
	return c.pull(ctx, ref)
}

// RunSpec is a throwaway container the kit starts (e.g. a database for a test).
type RunSpec struct {
	Image  string
	Env    []string
	Port   string // container port to publish on 127.0.0.1, e.g. "5432/tcp"
	Labels map[string]string
}

// Run creates and starts a container, pulling the image when it is not local
// (with the job's registry credentials, see pull), and
// returns its ID and the 127.0.0.1 port its Port is published on.
func (c *Client) Run(ctx context.Context, spec RunSpec) (id, hostPort string, err error) {
	if err := c.ensureImage(ctx, spec.Image); err != nil {
		return "", "", err
	}
	port := nat.Port(spec.Port)
	created, err := c.api.ContainerCreate(ctx,
		&container.Config{Image: spec.Image, Env: spec.Env, Labels: spec.Labels, ExposedPorts: nat.PortSet{port: struct{}{}}},
		&container.HostConfig{PortBindings: nat.PortMap{port: []nat.PortBinding{{HostIP: "127.0.0.1"}}}},
		nil, nil, "")
	if err != nil {
		return "", "", fmt.Errorf("creating a %s container: %w", spec.Image, err)
	}
	id = created.ID
	if err := c.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		_ = c.Remove(context.WithoutCancel(ctx), id)
		return "", "", fmt.Errorf("starting a %s container: %w", spec.Image, err)
	}
	ins, err := c.api.ContainerInspect(ctx, id)
	if err != nil {
		_ = c.Remove(context.WithoutCancel(ctx), id)
		return "", "", err
	}
	bindings := ins.NetworkSettings.Ports[port]
	if len(bindings) == 0 {
		_ = c.Remove(context.WithoutCancel(ctx), id)
		return "", "", fmt.Errorf("container %.12s publishes no port for %s", id, port)
	}
	return id, bindings[0].HostPort, nil
}

// HealthOutput is what container id's healthcheck printed when it last ran,
// with its exit code ("" without a healthcheck or a run of it).
func (c *Client) HealthOutput(ctx context.Context, id string) (string, error) {
	ins, err := c.api.ContainerInspect(ctx, id)
	if err != nil {
		return "", err
	}
	if ins.State == nil || ins.State.Health == nil || len(ins.State.Health.Log) == 0 {
		return "", nil
	}
	last := ins.State.Health.Log[len(ins.State.Health.Log)-1]
	return fmt.Sprintf("exit %d: %s", last.ExitCode, strings.TrimSpace(last.Output)), nil
}

// Remove force-removes a container and its anonymous volumes.
func (c *Client) Remove(ctx context.Context, id string) error {
	err := c.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// StopAndRemove stops a container, giving it grace to finish (SIGTERM, then SIGKILL), and
// removes it.
func (c *Client) StopAndRemove(ctx context.Context, id string, grace time.Duration) error {
	secs := int(grace.Seconds())
	if err := c.api.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	return c.Remove(ctx, id)
}
