// Package remote reaches the Docker host from a runner elsewhere — a hosted
// runner, a fresh machine per job — over SSH (docs/remote.md; ARCHITECTURE.md, "Where the job runs"). One SSH connection per run
// carries everything: the Engine API and every docker compose command, through
// a unix socket of the run's own on the runner that forwards each connection
// to the host's Docker socket; the stack's lock and history, kept on the host
// (host.go); the checks a run makes at a container's own address, dialled from
// the host (Conn.DialContext). The host's key must be one of the known_hosts
// lines given (there is no option to skip the check), the private key comes
// from a secret and stays in memory, keepalives watch the connection and one
// dropped connection is dialled again.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/org/deploy-kit/internal/action"
)

// Options are the inputs that name a Docker host reached over SSH, shared by
// every action that changes a stack.
type Options struct {
	Host       string `input:"docker-host"`
	Key        string `input:"ssh-key"`
	KnownHosts string `input:"ssh-known-hosts"`
	// Log, when set, takes the connection's own lines (connected, reconnected)
	// instead of the run's log: a command whose output is data keeps it clean.
	Log io.Writer
}

// Inputs are the remote host's inputs.
var Inputs = []action.Input{
	{Name: "docker-host", Description: "The Docker host to work on from a runner elsewhere (a hosted runner): ssh://user@host[:port]. Its lock, history and backups are kept there. Empty: the runner's own engine (DOCKER_HOST, DOCKER_CONTEXT)."},
	{Name: "ssh-key", Secret: true, Description: "With docker-host: the private key (OpenSSH or PEM, unencrypted) of the user, from a secret. It stays in memory, never on disk."},
	{Name: "ssh-known-hosts", Description: "With docker-host: the host's known_hosts lines (any key type), e.g. from ssh-keyscan, checked by you; a host key that is not among them is refused before anything happens."},
}

// Remote reports whether o names a host reached over SSH.
func (o Options) Remote() bool { return o.Host != "" }

// DockerSocket is where the Docker host's engine listens.
const DockerSocket = "/var/run/docker.sock"

// Conn is the run's connection to the Docker host.
type Conn struct {
	Host string // user@host:port, for messages
	// Socket is the unix socket on the runner that forwards to the host's
	// Docker socket: DOCKER_HOST=unix://<Socket> for the Engine API client and
	// docker compose.
	Socket string

	config  *ssh.ClientConfig
	addr    string
	mu      sync.Mutex
	client  *ssh.Client
	dials   int // SSH connections made (1, or 2 after one reconnect)
	chans   atomic.Int64
	ln      net.Listener
	dir     string
	done    chan struct{}
	closing atomic.Bool
	logf    func(string, ...any)
	release func()
	// fingerprint is the host key the host showed, as pinned.
	fingerprint string
}

// Parse checks o and returns the SSH address and client configuration; every
// problem is bad input.
func Parse(o Options, tempDir string) (addr string, cfg *ssh.ClientConfig, err error) {
	u, err := url.Parse(o.Host)
	if err != nil || u.Scheme != "ssh" || u.Hostname() == "" || u.User == nil || u.User.Username() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", nil, action.Usagef("input docker-host: %q is not ssh://user@host[:port]", o.Host)
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return "", nil, action.Usagef("input docker-host: put no password in it; the kit logs in with ssh-key")
	}
	port := u.Port()
	if port == "" {
		port = "22"
	}
	addr = net.JoinHostPort(u.Hostname(), port)
	if strings.TrimSpace(o.Key) == "" {
		return "", nil, action.Usagef("input ssh-key: docker-host %s needs the private key of %s (from a secret)", o.Host, u.User.Username())
	}
	signer, err := ssh.ParsePrivateKey([]byte(o.Key))
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return "", nil, action.Usagef("input ssh-key: the key is encrypted; give the kit a key without a passphrase (a deploy key of its own)")
		}
		return "", nil, action.Usagef("input ssh-key: not a private key the kit can read (%v)", err)
	}
	check, algorithms, err := pinned(o.KnownHosts, addr, tempDir)
	if err != nil {
		return "", nil, err
	}
	cfg = &ssh.ClientConfig{
		User:              u.User.Username(),
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   check,
		HostKeyAlgorithms: algorithms,
		Timeout:           20 * time.Second,
	}
	return addr, cfg, nil
}

// pinned is the host key check of the known_hosts lines: only a key among
// them for the host is accepted; anything else is refused naming the key the
// host offered. algorithms are the key types pinned, so that the host offers
// one of those.
func pinned(lines, addr, tempDir string) (ssh.HostKeyCallback, []string, error) {
	var keep []string
	var algorithms []string
	for _, line := range strings.Split(lines, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		_, _, key, _, _, err := ssh.ParseKnownHosts([]byte(line))
		if err != nil {
			return nil, nil, action.Usagef("input ssh-known-hosts: %q is not a known_hosts line (%v)", firstField(line), err)
		}
		keep = append(keep, line)
		for _, a := range algorithmsOf(key.Type()) {
			if !slices.Contains(algorithms, a) {
				algorithms = append(algorithms, a)
			}
		}
	}
	if len(keep) == 0 {
		return nil, nil, action.Usagef("input ssh-known-hosts: docker-host needs the host's known_hosts lines (ssh-keyscan -p PORT HOST, checked by you): the kit never connects to a host it cannot verify")
	}
	f, err := os.CreateTemp(tempDir, "deploykit-known-hosts-")
	if err != nil {
		return nil, nil, err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(strings.Join(keep, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, err
	}
	check, err := knownhosts.New(f.Name())
	if err != nil {
		return nil, nil, action.Usagef("input ssh-known-hosts: %v", err)
	}
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := check(host, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) == 0 {
				return fmt.Errorf("host %s is not in ssh-known-hosts: it offered the %s key %s; refused (add its line, checked by you, to ssh-known-hosts)", host, key.Type(), ssh.FingerprintSHA256(key))
			}
			return fmt.Errorf("host %s offered the %s key %s, which is not the key ssh-known-hosts pins for it: refused (someone may be in between; if the host's key changed, check and update ssh-known-hosts)", host, key.Type(), ssh.FingerprintSHA256(key))
		}
		return err
	}, algorithms, nil
}

func algorithmsOf(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

func firstField(line string) string {
	if f := strings.Fields(line); len(f) > 0 {
		if len(f[0]) > 60 {
			return f[0][:60] + "…"
		}
		return f[0]
	}
	return line
}

// Dial connects to the host of o and starts the socket that forwards to its
// Docker socket, in dir (a directory of the run's own, mode 0700). logf
// reports a reconnect.
func Dial(ctx context.Context, o Options, dir string, logf func(string, ...any)) (*Conn, error) {
	addr, cfg, err := Parse(o, dir)
	if err != nil {
		return nil, err
	}
	c := &Conn{Host: cfg.User + "@" + addr, config: cfg, addr: addr, dir: dir, done: make(chan struct{}), logf: logf}
	check := cfg.HostKeyCallback
	cfg.HostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
		if err := check(host, remote, key); err != nil {
			return err
		}
		c.fingerprint = key.Type() + " " + ssh.FingerprintSHA256(key)
		return nil
	}
	if _, err := c.ssh(ctx); err != nil {
		return nil, err
	}
	c.Socket = filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", c.Socket)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("the runner's socket for the Docker host: %w", err)
	}
	c.ln = ln
	go c.serve()
	go c.keepalive()
	return c, nil
}

// ssh is the connection, dialled when there is none or the last one dropped
// (once more than the first: one reconnect per run).
func (c *Conn) ssh(ctx context.Context) (*ssh.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client, nil
	}
	if c.dials >= 2 {
		return nil, fmt.Errorf("the SSH connection to %s dropped twice: giving up", c.Host)
	}
	d := net.Dialer{Timeout: c.config.Timeout, KeepAlive: 15 * time.Second}
	tcp, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", c.Host, err)
	}
	sc, chans, reqs, err := ssh.NewClientConn(tcp, c.addr, c.config)
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("SSH to %s: %w", c.Host, err)
	}
	c.dials++
	if c.dials > 1 && c.logf != nil {
		c.logf("reconnected to %s (the SSH connection had dropped)", c.Host)
	}
	client := ssh.NewClient(sc, chans, reqs)
	c.client = client
	go func() {
		_ = client.Wait()
		c.mu.Lock()
		if c.client == client {
			c.client = nil
		}
		c.mu.Unlock()
	}()
	return client, nil
}

// channel opens a channel to the host, dialling again once when the
// connection dropped.
func (c *Conn) channel(ctx context.Context, open func(*ssh.Client) (net.Conn, error)) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		client, err := c.ssh(ctx)
		if err != nil {
			return nil, err
		}
		conn, err := open(client)
		if err == nil {
			c.chans.Add(1)
			return conn, nil
		}
		c.mu.Lock()
		dropped := c.client != client || isClosed(err)
		if dropped && c.client == client {
			c.client = nil
			client.Close()
		}
		c.mu.Unlock()
		if !dropped || attempt > 0 {
			return nil, err
		}
	}
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "use of closed network connection")
}

// DialContext dials addr from the Docker host (an SSH direct-tcpip channel):
// a container's own address on the host's networks, which the runner cannot
// reach.
func (c *Conn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.channel(ctx, func(client *ssh.Client) (net.Conn, error) { return client.DialContext(ctx, network, addr) })
}

// serve forwards every connection to the runner's socket to the host's
// Docker socket, each way on its own, passing a half-close on: a dump piped
// into a container ends when its input does.
func (c *Conn) serve() {
	for {
		local, err := c.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer local.Close()
			remote, err := c.channel(context.Background(), func(client *ssh.Client) (net.Conn, error) { return client.Dial("unix", DockerSocket) })
			if err != nil {
				return
			}
			defer remote.Close()
			done := make(chan struct{})
			go func() {
				_, _ = io.Copy(remote, local)
				closeWrite(remote)
				close(done)
			}()
			_, _ = io.Copy(local, remote)
			closeWrite(local)
			<-done
		}()
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// keepalive asks the host for a reply every 15 s; a connection that gives
// none within 15 s is closed, so the next channel dials again.
func (c *Conn) keepalive() {
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		c.mu.Lock()
		client := c.client
		c.mu.Unlock()
		if client == nil {
			continue
		}
		reply := make(chan error, 1)
		go func() { _, _, err := client.SendRequest("keepalive@openssh.com", true, nil); reply <- err }()
		select {
		case err := <-reply:
			if err == nil {
				continue
			}
		case <-time.After(15 * time.Second):
		}
		client.Close()
	}
}

// Stats says how the run used the host's SSH: connections and channels.
func (c *Conn) Stats() string {
	c.mu.Lock()
	dials := c.dials
	c.mu.Unlock()
	return fmt.Sprintf("%d SSH connection(s) to %s, %d channel(s)", dials, c.Host, c.chans.Load())
}

// Connections is how many SSH connections the run made.
func (c *Conn) Connections() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dials
}

// Close ends the connection and removes the socket.
func (c *Conn) Close() error {
	if c.closing.Swap(true) {
		return nil
	}
	close(c.done)
	if c.ln != nil {
		c.ln.Close()
	}
	if c.Socket != "" {
		os.Remove(c.Socket)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client.Close()
	}
	return nil
}

// Connect dials the host o names, for a run of a: the Engine API client and
// docker compose reach it through the run's socket (DOCKER_HOST in the
// run's environment), and the connection ends with the run. nil when o names
// none: the runner's own engine, as DOCKER_HOST and DOCKER_CONTEXT say.
func Connect(ctx context.Context, a *action.Context, o Options) (*Conn, error) {
	if !o.Remote() {
		if h := a.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "ssh://") {
			a.Warningf("DOCKER_HOST is %s: the stack's lock and history stay on this runner, where another runner cannot see them; set docker-host (with ssh-key and ssh-known-hosts) to keep them on the host", h)
		}
		return nil, nil
	}
	dir, err := os.MkdirTemp(a.TempDir(), "deploykit-ssh-")
	if err != nil {
		return nil, err
	}
	logf := a.Logf
	if o.Log != nil {
		logf = func(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }
	}
	c, err := Dial(ctx, o, dir, logf)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	release := a.OnExit(func() { c.Close(); os.RemoveAll(dir) })
	c.release = func() { release(); os.RemoveAll(dir) }
	a.SetEnv("DOCKER_HOST", "unix://"+c.Socket)
	a.SetEnv("DOCKER_CONTEXT", "")
	logf("connected to %s over SSH (host key %s)", c.Host, c.fingerprint)
	return c, nil
}

// End closes a connection Connect made and removes its directory.
func (c *Conn) End() {
	if c == nil {
		return
	}
	c.Close()
	if c.release != nil {
		c.release()
	}
}
