package remote

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/lock"
)

// echoSocket is a unix socket standing for the Docker socket: each connection
// gets back, once its input has ended, everything it sent and "END": a tool
// that reads its input to the end before it answers, as psql restoring a
// dump does. Without a half-close passed on, it would never answer.
func echoSocket(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				data, _ := io.ReadAll(c)
				_, _ = c.Write(append(data, []byte("END")...))
			}()
		}
	}()
	return path
}

func dial(t *testing.T, s *sshServer, known string) (*Conn, error) {
	t.Helper()
	var log bytes.Buffer
	c, err := Dial(context.Background(), Options{Host: "ssh://deploy@" + s.Addr, Key: s.Key, KnownHosts: known}, t.TempDir(), func(f string, a ...any) { log.WriteString(f) })
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// TestOneConnectionCarriesEverything: the Engine API socket on the runner
// forwards to the host's Docker socket, a half-close included (a dump piped
// in ends when its input does); a check dials a container's address from the
// host; the host's files are read and appended to — all over one SSH
// connection.
func TestOneConnectionCarriesEverything(t *testing.T) {
	s := newSSHServer(t, echoSocket(t))
	c, err := dial(t, s, s.KnownHosts)
	require.NoError(t, err)

	for range 3 {
		local, err := net.Dial("unix", c.Socket)
		require.NoError(t, err)
		_, err = io.WriteString(local, strings.Repeat("dump line\n", 10000))
		require.NoError(t, err)
		require.NoError(t, local.(*net.UnixConn).CloseWrite())
		got, err := io.ReadAll(local)
		require.NoError(t, err)
		assert.True(t, strings.HasSuffix(string(got), "dump line\nEND"), "the answer came after the half-close")
		assert.Len(t, got, 10*10000+3)
		local.Close()
	}

	app, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer app.Close()
	go func() {
		conn, err := app.Accept()
		if err == nil {
			_, _ = io.WriteString(conn, "hello from the container's address")
			conn.Close()
		}
	}()
	conn, err := c.DialContext(context.Background(), "tcp", app.Addr().String())
	require.NoError(t, err)
	got, _ := io.ReadAll(conn)
	assert.Equal(t, "hello from the container's address", string(got))

	file := filepath.Join(t.TempDir(), "state", "history.log")
	data, err := c.ReadFile(context.Background(), file)
	require.NoError(t, err)
	assert.Empty(t, data, "no file yet: empty")
	require.NoError(t, c.AppendFile(context.Background(), file, []byte("one\n")))
	require.NoError(t, c.AppendFile(context.Background(), file, []byte("two 'quoted' $HOME\n")))
	data, err = c.ReadFile(context.Background(), file)
	require.NoError(t, err)
	assert.Equal(t, "one\ntwo 'quoted' $HOME\n", string(data))

	assert.Equal(t, 1, s.connections(), "one SSH connection")
	assert.Equal(t, 1, c.Connections())
	assert.Regexp(t, `^1 SSH connection\(s\) to deploy@127\.0\.0\.1:\d+, \d+ channel\(s\)$`, c.Stats())
}

// TestHostKeyPinned: a host whose key is not among ssh-known-hosts, or whose
// key differs from the one pinned for it, is refused naming the key it
// offered; every malformed input is bad input.
func TestHostKeyPinned(t *testing.T) {
	s := newSSHServer(t, echoSocket(t))
	fingerprint := ssh.FingerprintSHA256(s.hostKey)
	other := newSSHServer(t, echoSocket(t))
	host, port, _ := net.SplitHostPort(s.Addr)
	wrong := "[" + host + "]:" + port + " " + strings.Fields(other.KnownHosts)[1] + " " + strings.Fields(other.KnownHosts)[2]
	_, err := dial(t, s, wrong)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "offered the ssh-ed25519 key "+fingerprint+", which is not the key ssh-known-hosts pins for it: refused")

	unknown := strings.Replace(s.KnownHosts, "["+host+"]:"+port, "[elsewhere.example.com]:22", 1)
	_, err = dial(t, s, unknown)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not in ssh-known-hosts: it offered the ssh-ed25519 key "+fingerprint+"; refused")
	assert.Zero(t, s.connections()-2, "nothing after the handshake")

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	encrypted, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("hunter2-phrase"))
	require.NoError(t, err)
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Host: "deploy@host"}, `input docker-host: "deploy@host" is not ssh://user@host[:port]`},
		{Options{Host: "ssh://host"}, `input docker-host: "ssh://host" is not ssh://user@host[:port]`},
		{Options{Host: "ssh://u:hunter2@host"}, "input docker-host: put no password in it; the kit logs in with ssh-key"},
		{Options{Host: "ssh://u@host"}, "input ssh-key: docker-host ssh://u@host needs the private key of u (from a secret)"},
		{Options{Host: "ssh://u@host", Key: "not a key"}, "input ssh-key: not a private key the kit can read ("},
		{Options{Host: "ssh://u@host", Key: string(pem.EncodeToMemory(encrypted))}, "input ssh-key: the key is encrypted; give the kit a key without a passphrase"},
		{Options{Host: "ssh://u@host", Key: s.Key}, "input ssh-known-hosts: docker-host needs the host's known_hosts lines"},
		{Options{Host: "ssh://u@host", Key: s.Key, KnownHosts: "host ssh-ed25519 garbage"}, `input ssh-known-hosts: "host" is not a known_hosts line`},
	} {
		_, _, err := Parse(tc.o, t.TempDir())
		require.Error(t, err, tc.o.Host)
		assert.Equal(t, action.ExitUsage, action.ExitCode(err), tc.want)
		assert.Contains(t, err.Error(), tc.want)
		assert.NotContains(t, err.Error(), "hunter2")
	}
}

// TestLockOnTheHost: the lock is exclusive across runners (two connections);
// the second waits and is told who holds it; a holder that ends removes the
// file; a holder whose connection drops (a killed runner) loses the lock at
// once and leaves its details for the next, as flock does on one host.
func TestLockOnTheHost(t *testing.T) {
	requireTools(t, "bash", "flock")
	s := newSSHServer(t, echoSocket(t))
	a, err := dial(t, s, s.KnownHosts)
	require.NoError(t, err)
	b, err := dial(t, s, s.KnownHosts)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "locks", "shop.lock")
	me := lock.Holder{Host: "runner-a", PID: 1, Action: "deploy", Version: "1.0.0", Since: time.Now().UTC().Truncate(time.Second)}
	held, err := a.Lock(context.Background(), path, me, time.Minute, nil)
	require.NoError(t, err)
	assert.Nil(t, held.Left)
	me.Step = "apply"
	require.NoError(t, held.Update(me))

	_, err = b.Lock(context.Background(), path, lock.Holder{Host: "runner-b"}, time.Second, nil)
	var heldErr *lock.HeldError
	require.ErrorAs(t, err, &heldErr)
	assert.Equal(t, "runner-a", heldErr.Holder.Host)
	assert.Equal(t, "apply", heldErr.Holder.Step)

	waited := make(chan lock.Holder, 1)
	got := make(chan *lock.Lock, 1)
	go func() {
		l, err := b.Lock(context.Background(), path, lock.Holder{Host: "runner-b", PID: 2}, time.Minute, func(h lock.Holder) { waited <- h })
		assert.NoError(t, err)
		got <- l
	}()
	assert.Equal(t, "runner-a", (<-waited).Host, "told who holds it")
	require.NoError(t, held.Release())
	second := <-got
	assert.Nil(t, second.Left, "the first holder ended: no details left")

	// runner-b is killed: its connection drops; runner-c takes the lock and
	// finds what runner-b left.
	s2 := second
	_ = s2
	require.NoError(t, second.Update(lock.Holder{Host: "runner-b", PID: 2, Step: "rehearse"}))
	b.mu.Lock()
	b.client.Close()
	b.mu.Unlock()
	c, err := dial(t, s, s.KnownHosts)
	require.NoError(t, err)
	third, err := c.Lock(context.Background(), path, lock.Holder{Host: "runner-c"}, time.Minute, nil)
	require.NoError(t, err)
	require.NotNil(t, third.Left)
	assert.Equal(t, "rehearse", third.Left.Step)
	require.NoError(t, third.Release())
	_, err = os.Stat(path)
	assert.True(t, os.IsNotExist(err), "released: the file is gone")
}

// TestReconnectOnce: a dropped connection is dialled again once, for the next
// channel; the run goes on.
func TestReconnectOnce(t *testing.T) {
	s := newSSHServer(t, echoSocket(t))
	c, err := dial(t, s, s.KnownHosts)
	require.NoError(t, err)
	s.dropAll()
	time.Sleep(100 * time.Millisecond) // the client notices the drop
	data, err := c.ReadFile(context.Background(), "/nonexistent")
	require.NoError(t, err)
	assert.Empty(t, data)
	assert.Equal(t, 2, c.Connections())
	s.dropAll()
	time.Sleep(100 * time.Millisecond)
	_, err = c.ReadFile(context.Background(), "/nonexistent")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dropped twice: giving up")
}

func requireTools(t *testing.T, tools ...string) {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed here", tool)
		}
	}
}

// TestFilesOnTheHost: a file uploaded whole (its SHA-256 computed on the
// host), a cut upload refused and removed, stale ones swept, listed, downloaded back byte for byte; a missing one is an error and
// leaves nothing; a command that moves no data ends at StallTimeout with an
// error that says so instead of hanging.
func TestFilesOnTheHost(t *testing.T) {
	s := newSSHServer(t, echoSocket(t))
	c, err := dial(t, s, s.KnownHosts)
	require.NoError(t, err)
	ctx := context.Background()

	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	local := filepath.Join(t.TempDir(), "backup.sql.gz")
	require.NoError(t, os.WriteFile(local, data, 0o600))
	dir := filepath.Join(t.TempDir(), "host", "backups")
	require.NoError(t, c.Upload(ctx, local, dir+"/backup.sql.gz"))
	sum, err := c.SHA256(ctx, dir+"/backup.sql.gz")
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("%x", sha256.Sum256(data)), sum)

	require.NoError(t, os.WriteFile(dir+"/.hidden", nil, 0o600))
	require.NoError(t, os.WriteFile(dir+"/it's $here", nil, 0o600))
	require.NoError(t, os.Mkdir(dir+"/sub", 0o700))
	require.NoError(t, os.Symlink(dir+"/backup.sql.gz", dir+"/link.sql.gz"))
	names, err := c.List(ctx, dir)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"backup.sql.gz", ".hidden", "it's $here"}, names, "regular files only")
	names, err = c.List(ctx, dir+"/none")
	require.NoError(t, err)
	assert.Empty(t, names, "no directory: nothing")

	// A runner killed mid-upload ends the host's input early: cat takes it
	// for the end of the file. The short copy never gets the name, nor stays.
	_, err = c.run(ctx, uploadScript(dir+"/cut.sql.gz", int64(len(data))), bytes.NewReader(data[:1<<20]))
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("received %d of %d bytes: the upload was cut short", 1<<20, len(data)))
	assert.NoFileExists(t, dir+"/cut.sql.gz")
	assert.NoFileExists(t, dir+"/.cut.sql.gz.partial")
	// What a run killed before the script could clean up left goes with the
	// next upload there, once no upload can still be writing it.
	old, fresh := dir+"/.killed.sql.gz.partial", dir+"/.writing.sql.gz.partial"
	require.NoError(t, os.WriteFile(old, data[:10], 0o600))
	require.NoError(t, os.WriteFile(fresh, data[:10], 0o600))
	require.NoError(t, os.Chtimes(old, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)))
	require.NoError(t, c.Upload(ctx, local, dir+"/second.sql.gz"))
	assert.NoFileExists(t, old)
	assert.FileExists(t, fresh, "younger than an upload that may still be writing it")
	require.NoError(t, os.Remove(fresh))
	require.NoError(t, os.Remove(dir+"/second.sql.gz"))

	back := filepath.Join(t.TempDir(), "back.sql.gz")
	require.NoError(t, c.Download(ctx, dir+"/backup.sql.gz", back))
	got, err := os.ReadFile(back)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got), "downloaded byte for byte")
	err = c.Download(ctx, dir+"/gone.sql.gz", filepath.Join(t.TempDir(), "gone"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gone.sql.gz")

	defer func(old time.Duration) { StallTimeout = old }(StallTimeout)
	StallTimeout = 400 * time.Millisecond
	held, _ := io.Pipe() // never written, never closed: cat waits for ever
	err = c.stream(ctx, "cat", held, io.Discard)
	require.Error(t, err)
	assert.Regexp(t, `^on deploy@127\.0\.0\.1:\d+: no data moved for 400ms \(after 0 bytes\): the connection stalled$`, err.Error())
	assert.Equal(t, 1, s.connections(), "all of it on one connection")
}
