package testenv

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// VPSImageTag is the image of a "VPS": Debian's Docker Engine and OpenSSH
// server in a container, built by scripts/vps-image.sh (make test provisions
// it).
const VPSImageTag = "deploykit-test/vps:20.10-r2"

// VPS is a server as a small team rents one, in a container of the host's
// engine: its own Docker Engine, reached over SSH as the user deploy with a
// key of the test's. The test's process — the runner — reaches the VPS's
// address (its SSH port, the ports its containers publish) but not the
// networks of the engine inside it, as a hosted runner reaches a server.
type VPS struct {
	Container  string
	IP         string // on the host's default bridge
	DockerHost string // ssh://deploy@IP:22
	// Engine is the VPS's engine over TCP, for the test's own setup (loading
	// images, starting its proxy) — never given to deploykit, which reaches
	// the VPS over SSH only.
	Engine     string
	Key        string // the private key of deploy (OpenSSH PEM)
	KnownHosts string // the VPS's host keys, as ssh-keyscan prints them
}

// NewVPS starts a VPS named after the test, removed when the test ends.
func NewVPS(t testing.TB, name string) *VPS {
	t.Helper()
	RequireDocker(t)
	if err := exec.Command("docker", "image", "inspect", VPSImageTag).Run(); err != nil {
		missing(t, "the VPS image "+VPSImageTag+" (scripts/vps-image.sh)")
	}
	v := &VPS{Container: name}
	t.Cleanup(func() {
		_ = exec.Command("docker", "rm", "-f", "-v", name).Run()
		_ = exec.Command("docker", "volume", "rm", "-f", name).Run()
		removeCgroups(name)
	})
	args := []string{"run", "-d", "--name", name, "--hostname", "vps", "--label", "org.deploykit.test=" + name,
		"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
		"--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "-v", name + ":/var/lib/docker"}
	for _, cp := range nodeCaps {
		args = append(args, "--cap-add", cp)
	}
	args = append(args, VPSImageTag, "--storage-driver=overlay2", "--cgroup-parent="+name, "-H", "unix:///var/run/docker.sock", "-H", "tcp://0.0.0.0:2375")
	dockerCLI(t, args...)
	v.IP = dockerCLI(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", name)
	v.DockerHost = "ssh://deploy@" + v.IP + ":22"
	v.Engine = "tcp://" + v.IP + ":2375"

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "deploykit test")
	if err != nil {
		t.Fatal(err)
	}
	v.Key = string(pem.EncodeToMemory(block))
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := exec.Command("docker", "exec", name, "sh", "-c", "test -S /var/run/docker.sock && docker info >/dev/null && test -s /etc/ssh/ssh_host_ed25519_key.pub").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := exec.Command("docker", "logs", "--tail", "30", name).CombinedOutput()
			t.Fatalf("the VPS did not come up in 2m: %s\n%s", out, logs)
		}
		time.Sleep(250 * time.Millisecond)
	}
	v.Exec(t, "sh", "-c", "mkdir -p /home/deploy/.ssh && printf '%s\\n' '"+authorized+"' > /home/deploy/.ssh/authorized_keys && chown -R deploy:deploy /home/deploy/.ssh && chmod 700 /home/deploy/.ssh && chmod 600 /home/deploy/.ssh/authorized_keys")
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		key := strings.Fields(v.Exec(t, "cat", "/etc/ssh/ssh_host_"+typ+"_key.pub"))
		v.KnownHosts += fmt.Sprintf("%s %s %s\n", v.IP, key[0], key[1])
	}
	return v
}

// Exec runs a command in the VPS (as root, not over SSH) and returns its
// output; a failure ends the test.
func (v *VPS) Exec(t testing.TB, args ...string) string {
	t.Helper()
	return dockerCLI(t, append([]string{"exec", v.Container}, args...)...)
}

// Docker runs the docker CLI of the VPS's engine.
func (v *VPS) Docker(t testing.TB, args ...string) string {
	t.Helper()
	return v.Exec(t, append([]string{"docker"}, args...)...)
}

// Proxies is testenv.ProxiesFor on the VPS: the example's proxy stack and a
// plain proxy, their ports published on the VPS's address, where users (and
// the test) reach them.
func (v *VPS) Proxies(t testing.TB, name, network string, aliases []string, before func()) (caddyPort, plainPort int) {
	t.Helper()
	v.Load(t, CaddyImage(t), ProbeImage(t))
	return proxiesOn(t, v.Engine, "0.0.0.0", name, network, aliases, before)
}

// Load copies images from the host's engine into the VPS's (it can pull
// nothing either).
func (v *VPS) Load(t testing.TB, images ...string) {
	t.Helper()
	save := exec.Command("docker", append([]string{"save"}, images...)...)
	load := exec.Command("docker", "exec", "-i", v.Container, "docker", "load", "-q")
	pipe, err := save.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	load.Stdin = pipe
	var out strings.Builder
	load.Stdout, load.Stderr = &out, &out
	if err := save.Start(); err != nil {
		t.Fatal(err)
	}
	if err := load.Run(); err != nil {
		t.Fatalf("loading %v into the VPS: %v\n%s", images, err, out.String())
	}
	if err := save.Wait(); err != nil {
		t.Fatalf("docker save %v: %v", images, err)
	}
}

// PEMFile writes the private key to a 0600 file of the test's (for tools that
// read keys from files).
func (v *VPS) PEMFile(t testing.TB) string {
	f := t.TempDir() + "/id"
	if err := os.WriteFile(f, []byte(v.Key), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// InstallKit puts deploykit and the docker compose plugin on the VPS, as a
// team whose runner is the server itself has them there.
func (v *VPS) InstallKit(t testing.TB) {
	t.Helper()
	v.Exec(t, "mkdir", "-p", "/usr/local/lib/docker/cli-plugins")
	dockerCLI(t, "cp", "-L", Deploykit(t), v.Container+":/usr/local/bin/deploykit")
	dockerCLI(t, "cp", "-L", dockerConfigDir()+"/cli-plugins/docker-compose", v.Container+":/usr/local/lib/docker/cli-plugins/docker-compose")
}

// CopyDir replaces the directory to on the VPS with a copy of dir, owned by
// deploy.
func (v *VPS) CopyDir(t testing.TB, dir, to string) {
	t.Helper()
	v.Exec(t, "rm", "-rf", to)
	v.Exec(t, "mkdir", "-p", to)
	dockerCLI(t, "cp", dir+"/.", v.Container+":"+to)
	v.Exec(t, "chown", "-R", "deploy:deploy", to)
}

// StepOnServer is the run step of the action args[0] with args' flags as its
// inputs, run on the VPS as deploy in dir with env (after InstallKit): the
// job of a runner on the server, with no SSH between it and the engine. It
// returns the step's output and how long the step took.
func (v *VPS) StepOnServer(t testing.TB, dir string, env []string, args ...string) (string, time.Duration) {
	t.Helper()
	cmd := []string{"exec", "-u", "deploy", "-w", dir}
	for _, e := range append(append([]string{}, env...), Inputs(args[1:]...)...) {
		cmd = append(cmd, "-e", e)
	}
	cmd = append(cmd, v.Container, "deploykit", args[0])
	start := time.Now()
	out, err := exec.Command("docker", cmd...).CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("deploykit %s on the VPS: %v\n%s", args[0], err, out)
	}
	return string(out), took
}

// dockerConfigDir is the docker CLI's configuration directory of the test's
// process (its plugins are the provisioned ones).
func dockerConfigDir() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return dir
	}
	home, _ := os.UserHomeDir()
	return home + "/.docker"
}

// FreshDockerConfig is a DOCKER_CONFIG as a fresh runner has one: no
// credentials, no contexts, the CLI plugins installed (here, links to the
// ones provisioned for the tests).
func FreshDockerConfig(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	plugins := dir + "/cli-plugins"
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	src := dockerConfigDir()
	for _, p := range []string{"docker-compose", "docker-buildx"} {
		if _, err := os.Stat(src + "/cli-plugins/" + p); err == nil {
			if err := os.Symlink(src+"/cli-plugins/"+p, plugins+"/"+p); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}
