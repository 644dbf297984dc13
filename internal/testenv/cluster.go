package testenv

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NodeImageTag is the image of a swarm node: Debian's Docker Engine in a
// container, built by scripts/node-image.sh (make test provisions it).
const NodeImageTag = "deploykit-test/swarm-node:20.10-r2"

// nodeCaps are what dockerd needs in a container where --privileged is refused.
var nodeCaps = []string{"SYS_ADMIN", "NET_ADMIN", "NET_RAW", "SYS_PTRACE", "SYS_MODULE", "MKNOD", "SETFCAP",
	"AUDIT_WRITE", "DAC_READ_SEARCH", "IPC_LOCK", "SYS_NICE", "LINUX_IMMUTABLE", "NET_BROADCAST", "SYS_TIME"}

// Cluster is a real swarm of Docker Engines, each in a container of the host's
// engine (a node), on a network of its own, with a registry that asks for basic
// auth beside them: what one host cannot show — a task on another node, an image
// that must come from a registry, a node that goes away — it can. The job talks
// to the manager (node 1) at DockerHost; the host reaches every node's address.
// The ingress routing mesh does not work here (no IPVS): services publish with
// mode: host, or are reached through a task on an overlay network.
type Cluster struct {
	Name     string // every container, volume and network starts with it
	Network  string
	Nodes    []Node
	Registry string // address:port of the registry on the cluster's network
	User     string // the registry's
	Password string
}

// Node is one engine of a Cluster.
type Node struct {
	Container string // its container on the host's engine
	Hostname  string // its name in the swarm (node1, node2, …)
	IP        string // on the cluster's network
}

// DockerHost is the manager's engine, for DOCKER_HOST.
func (c *Cluster) DockerHost() string { return c.Nodes[0].Host() }

// Host is the node's engine, for DOCKER_HOST.
func (n Node) Host() string { return "tcp://" + n.IP + ":2375" }

// Docker runs the docker CLI against node n's engine and returns its output.
func (c *Cluster) Docker(t testing.TB, n int, args ...string) string {
	t.Helper()
	return dockerCLI(t, append([]string{"-H", c.Nodes[n].Host()}, args...)...)
}

// address is a container's address on the cluster's network.
func (c *Cluster) address(t testing.TB, container string) string {
	t.Helper()
	return dockerCLI(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+c.Network+"\").IPAddress}}", container)
}

// dockerCLI runs the docker CLI and returns its output; a failure ends the test.
func dockerCLI(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// NewCluster starts a swarm of n nodes (node 1 the manager, the others workers)
// and the registry, named after the test (name), and removes all of it, volumes
// and network included, when the test ends, however it ends. Clusters of
// different tests share nothing and may run side by side; the host engine's own
// swarm state is not touched, but a cluster does not overlap the tests that use
// the host's swarm (NoSwarmChange): its networks and engines coming and going
// are load those tests' DNS-reading probes need not see.
func NewCluster(t testing.TB, name string, n int) *Cluster {
	t.Helper()
	RequireDocker(t)
	NoSwarmChange(t)
	if err := exec.Command("docker", "image", "inspect", NodeImageTag).Run(); err != nil {
		missing(t, "the swarm node image "+NodeImageTag+" (scripts/node-image.sh)")
	}
	c := &Cluster{Name: name, Network: name + "-net", User: "deployer", Password: "s3cret-" + name}
	t.Cleanup(func() { c.remove(n) })
	dockerCLI(t, "network", "create", "--label", "org.deploykit.test="+name, c.Network)
	dockerCLI(t, "run", "-d", "--name", name+"-registry", "--network", c.Network, "--label", "org.deploykit.test="+name,
		ProbeImage(t), "registry", "5000", c.User, c.Password)
	// By address: the host (build-image reads the digest back) reaches it as
	// the nodes do, over plain HTTP as to any private address.
	c.Registry = c.address(t, name+"-registry") + ":5000"
	for i := 1; i <= n; i++ {
		node := Node{Container: fmt.Sprintf("%s-node%d", name, i), Hostname: fmt.Sprintf("node%d", i)}
		args := []string{"run", "-d", "--name", node.Container, "--hostname", node.Hostname, "--network", c.Network,
			"--label", "org.deploykit.test=" + name,
			"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
			"--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "-v", node.Container + ":/var/lib/docker"}
		for _, cp := range nodeCaps {
			args = append(args, "--cap-add", cp)
		}
		args = append(args, NodeImageTag, "--storage-driver=overlay2", "--cgroup-parent="+node.Container,
			"--insecure-registry="+c.Registry, "--tls=false", "-H", "unix:///var/run/docker.sock", "-H", "tcp://0.0.0.0:2375")
		dockerCLI(t, args...)
		node.IP = c.address(t, node.Container)
		c.Nodes = append(c.Nodes, node)
	}
	for _, node := range c.Nodes {
		deadline := time.Now().Add(2 * time.Minute)
		for exec.Command("docker", "-H", node.Host(), "info").Run() != nil {
			if time.Now().After(deadline) {
				logs, _ := exec.Command("docker", "logs", "--tail", "30", node.Container).CombinedOutput()
				t.Fatalf("the engine of %s did not answer in 2m:\n%s", node.Hostname, logs)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	c.Docker(t, 0, "swarm", "init", "--advertise-addr", c.Nodes[0].IP)
	token := c.Docker(t, 0, "swarm", "join-token", "-q", "worker")
	for i := 1; i < n; i++ {
		c.Docker(t, i, "swarm", "join", "--token", token, c.Nodes[0].IP+":2377")
	}
	return c
}

// remove takes the cluster away: containers (their tasks go with them),
// volumes, network, and the cgroups the nodes' engines made on the host.
func (c *Cluster) remove(n int) {
	names := []string{c.Name + "-registry"}
	var volumes []string
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("%s-node%d", c.Name, i))
		volumes = append(volumes, fmt.Sprintf("%s-node%d", c.Name, i))
	}
	_ = exec.Command("docker", append([]string{"rm", "-f", "-v"}, names...)...).Run()
	_ = exec.Command("docker", append([]string{"volume", "rm", "-f"}, volumes...)...).Run()
	_ = exec.Command("docker", "network", "rm", c.Network).Run()
	removeCgroups(volumes...)
}

// removeCgroups removes the cgroups an engine in a container made under its
// --cgroup-parent, in every hierarchy.
func removeCgroups(parents ...string) {
	for _, parent := range parents {
		roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", parent))
		own, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", parent))
		for _, root := range append(roots, own...) {
			var dirs []string
			_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- { // the deepest first
				_ = os.Remove(dirs[i])
			}
		}
	}
}
