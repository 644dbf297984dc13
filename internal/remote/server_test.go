package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// sshServer is an SSH server in the test's process, standing for a Docker
// host's sshd: it runs commands with the machine's own sh (bash, flock and cat
// are the machine's), forwards direct-tcpip channels, and forwards
// direct-streamlocal channels for DockerSocket to a socket of the test's.
type sshServer struct {
	Addr       string
	KnownHosts string // its host key as a known_hosts line
	Key        string // a client key it accepts (OpenSSH PEM)
	hostKey    ssh.PublicKey
	docker     string // the socket DockerSocket stands for
	ln         net.Listener
	mu         sync.Mutex
	conns      []net.Conn
	accepted   int
}

func newSSHServer(t *testing.T, docker string) *sshServer {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	require.NoError(t, err)
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	require.NoError(t, err)
	allowed, err := ssh.NewPublicKey(clientPub)
	require.NoError(t, err)

	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if string(key.Marshal()) == string(allowed.Marshal()) {
			return nil, nil
		}
		return nil, io.EOF
	}}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &sshServer{Addr: ln.Addr().String(), Key: string(pem.EncodeToMemory(block)), hostKey: hostSigner.PublicKey(), docker: docker, ln: ln}
	host, port, _ := net.SplitHostPort(s.Addr)
	s.KnownHosts = "[" + host + "]:" + port + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostSigner.PublicKey())))
	t.Cleanup(func() { ln.Close(); s.dropAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.accepted++
			s.mu.Unlock()
			go s.serve(c, cfg)
		}
	}()
	return s
}

// dropAll cuts every connection, as a network failure or a killed runner does.
func (s *sshServer) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func (s *sshServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	go func() {
		for r := range reqs {
			_ = r.Reply(r.Type == "keepalive@openssh.com", nil)
		}
	}()
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			go s.session(nc)
		case "direct-tcpip", "direct-streamlocal@openssh.com":
			go s.forward(nc)
		default:
			_ = nc.Reject(ssh.UnknownChannelType, "no")
		}
	}
}

func (s *sshServer) session(nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	for r := range reqs {
		if r.Type != "exec" {
			_ = r.Reply(false, nil)
			continue
		}
		n := binary.BigEndian.Uint32(r.Payload)
		command := string(r.Payload[4 : 4+n])
		_ = r.Reply(true, nil)
		cmd := exec.Command("sh", "-c", command)
		// As sshd does for a session without a terminal: the command reads the
		// channel, and its input ends when the client closes it or goes.
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
		status := 0
		if err := cmd.Run(); err != nil {
			status = 127
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			}
		}
		_ = ch.CloseWrite()
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
		return
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func (s *sshServer) forward(nc ssh.NewChannel) {
	var network, addr string
	if nc.ChannelType() == "direct-tcpip" {
		var p struct {
			Host       string
			Port       uint32
			OriginHost string
			OriginPort uint32
		}
		if ssh.Unmarshal(nc.ExtraData(), &p) != nil {
			_ = nc.Reject(ssh.ConnectionFailed, "bad")
			return
		}
		network, addr = "tcp", net.JoinHostPort(p.Host, itoa(p.Port))
	} else {
		var p struct {
			Path      string
			Reserved0 string
			Reserved1 uint32
		}
		if ssh.Unmarshal(nc.ExtraData(), &p) != nil || p.Path != DockerSocket {
			_ = nc.Reject(ssh.ConnectionFailed, "no such socket")
			return
		}
		network, addr = "unix", s.docker
	}
	target, err := net.Dial(network, addr)
	if err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		target.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(target, ch)
		if cw, ok := target.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(ch, target)
	_ = ch.CloseWrite()
	<-done
	ch.Close()
	target.Close()
}

func (s *sshServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}
