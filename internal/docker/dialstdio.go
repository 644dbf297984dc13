package docker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// dialStdio reaches the engine through `docker system dial-stdio`: the docker CLI
// itself connects (over ssh://, a context's endpoint, TLS — whatever the job's
// DOCKER_HOST or DOCKER_CONTEXT say) and relays the API over its stdin and stdout.
// This is how the kit honours every endpoint the CLI does, as docker compose does.
func dialStdio(env []string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		cmd := exec.Command("docker", "system", "dial-stdio")
		cmd.Env = env
		stderr := &lockedBuffer{}
		cmd.Stderr = stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		return &cmdConn{cmd: cmd, stdin: stdin, stdout: stdout, stderr: stderr}, nil
	}
}

// cmdConn is a net.Conn over a process's stdin and stdout.
type cmdConn struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *lockedBuffer
	once   sync.Once
	waited sync.Once
}

// wait reaps the process, once.
func (c *cmdConn) wait() { c.waited.Do(func() { _ = c.cmd.Wait() }) }

// Read reads the engine's replies; when the CLI gives up, its own message is the
// error.
func (c *cmdConn) Read(p []byte) (int, error) {
	n, err := c.stdout.Read(p)
	if err == io.EOF {
		c.wait()
		if msg := strings.TrimSpace(c.stderr.String()); msg != "" {
			return n, errors.New("docker system dial-stdio: " + msg)
		}
	}
	return n, err
}

// lockedBuffer collects a process's stderr while other goroutines may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
func (c *cmdConn) Write(p []byte) (int, error) { return c.stdin.Write(p) }

// CloseWrite ends what is sent to the engine while its answer is still read:
// a half-close, which is how a dump piped into `docker exec` ends (without it,
// the tool in the container waits for more input forever).
func (c *cmdConn) CloseWrite() error { return c.stdin.Close() }

func (c *cmdConn) Close() error {
	c.once.Do(func() {
		_ = c.stdin.Close()
		_ = c.cmd.Process.Kill()
		c.wait()
	})
	return nil
}

type stdioAddr struct{}

func (stdioAddr) Network() string { return "stdio" }
func (stdioAddr) String() string  { return "docker system dial-stdio" }

func (c *cmdConn) LocalAddr() net.Addr  { return stdioAddr{} }
func (c *cmdConn) RemoteAddr() net.Addr { return stdioAddr{} }

// Deadlines are not supported on pipes; requests are bounded by their contexts.
func (c *cmdConn) SetDeadline(time.Time) error      { return nil }
func (c *cmdConn) SetReadDeadline(time.Time) error  { return nil }
func (c *cmdConn) SetWriteDeadline(time.Time) error { return nil }
