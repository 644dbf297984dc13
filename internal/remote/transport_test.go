package remote

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/testenv"
)

// TestDumpPipedThroughEveryTransport: a dump piped into a command that
// answers only once its input has ended (wc -c, as psql restoring a dump
// finishes only then) reaches its end over every way the kit talks to an
// engine: its unix socket, TCP, TCP with TLS (client certificates, as
// DOCKER_CERT_PATH gives them) and docker-host's SSH connection. Without the
// half-close passed on, the command would wait for ever: each exec has a
// deadline that says which transport hung.
func TestDumpPipedThroughEveryTransport(t *testing.T) {
	testenv.RequireDocker(t)
	sock := strings.TrimPrefix(cmpOr(os.Getenv("DOCKER_HOST"), "unix:///var/run/docker.sock"), "unix://")
	if strings.Contains(sock, "://") {
		t.Skipf("the test engine is %s, not a unix socket", sock)
	}
	name := fmt.Sprintf("dk-transport-%d", os.Getpid())
	out, err := exec.Command("docker", "run", "-d", "--rm", "--name", name, "--label", "org.deploykit.test="+name,
		"--entrypoint", "sleep", testenv.PostgresImage(t), "infinity").CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })

	certs := t.TempDir()
	serverTLS := writeCerts(t, certs)
	transports := []struct {
		name string
		env  []string
	}{
		{"unix", []string{"DOCKER_HOST=unix://" + sock}},
		{"tcp", []string{"DOCKER_HOST=tcp://" + proxyTo(t, sock, nil)}},
		{"tcp+TLS", []string{"DOCKER_HOST=tcp://" + proxyTo(t, sock, serverTLS), "DOCKER_CERT_PATH=" + certs, "DOCKER_TLS_VERIFY=1"}},
	}
	s := newSSHServer(t, sock)
	c, err := Dial(context.Background(), Options{Host: "ssh://deploy@" + s.Addr, Key: s.Key, KnownHosts: s.KnownHosts}, t.TempDir(), t.Logf)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	transports = append(transports, struct {
		name string
		env  []string
	}{"ssh (docker-host)", []string{"DOCKER_HOST=unix://" + c.Socket}})

	dump := bytes.Repeat([]byte("INSERT INTO notes (body) VALUES ('a line of the dump');\n"), 80000)
	for _, tr := range transports {
		client, err := docker.New(tr.env)
		require.NoError(t, err, tr.name)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var got bytes.Buffer
		code, err := client.Exec(ctx, name, docker.ExecSpec{Cmd: []string{"wc", "-c"}, Stdin: bytes.NewReader(dump), Stdout: &got})
		cancel()
		require.NoError(t, err, "%s: the command never saw the end of its input", tr.name)
		assert.Equal(t, 0, code, tr.name)
		assert.Equal(t, fmt.Sprint(len(dump)), strings.TrimSpace(got.String()), tr.name)
		client.Close()
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// proxyTo listens on 127.0.0.1 (TLS with tlsConfig, when set) and forwards
// each connection to the unix socket sock, passing a half-close on either
// way, as the engine's own listener does; it returns its address.
func proxyTo(t *testing.T, sock string, tlsConfig *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				engine, err := net.Dial("unix", sock)
				if err != nil {
					return
				}
				defer engine.Close()
				done := make(chan struct{})
				go func() {
					_, _ = io.Copy(engine, conn) // ends at the client's half-close
					_ = engine.(*net.UnixConn).CloseWrite()
					close(done)
				}()
				_, _ = io.Copy(conn, engine)
				if cw, ok := conn.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
				}
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// writeCerts writes ca.pem, cert.pem and key.pem (a client's, as
// DOCKER_CERT_PATH holds them) into dir and returns the server's TLS
// configuration: a certificate for 127.0.0.1 from the same CA, client
// certificates required.
func writeCerts(t *testing.T, dir string) *tls.Config {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "deploykit test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	issue := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) (tls.Certificate, []byte, []byte) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "deploykit test"}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(k)
		require.NoError(t, err)
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		require.NoError(t, err)
		return pair, certPEM, keyPEM
	}
	server, _, _ := issue(2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	_, clientCert, clientKey := issue(3, x509.ExtKeyUsageClientAuth, nil)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cert.pem"), clientCert, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), clientKey, 0o600))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{server}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}
