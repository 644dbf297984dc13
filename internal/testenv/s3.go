package testenv

import (
	"context"
	"fmt"
	"net"

	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The root keys of the test S3 server.
const (
	S3AccessKey = "AKDEPLOYKITTEST"
	S3SecretKey = "s3-secret-key-0123456789abcdef"
)

// S3Server is a real S3-compatible server (versitygw, provisioned) on a
// loopback port, storing its buckets as directories under Dir.
type S3Server struct {
	Endpoint string // http://127.0.0.1:port
	Dir      string
	Client   *minio.Client
	cmd      *exec.Cmd
}

// S3 starts an S3 server with the bucket "backups", stopped when the test ends.
func S3(t testing.TB) *S3Server {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: this test needs the S3 server")
	}
	bin, ok := LookTool("versitygw")
	if !ok {
		missing(t, "versitygw")
	}
	s := &S3Server{Dir: t.TempDir()}
	s.start(t, bin, FreePort(t))
	if err := s.Client.MakeBucket(context.Background(), "backups", minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("creating the bucket: %v", err)
	}
	return s
}

func (s *S3Server) start(t testing.TB, bin string, port int) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s.cmd = exec.Command(bin, "--port", addr, "--access", S3AccessKey, "--secret", S3SecretKey, "posix", s.Dir)
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	s.Endpoint = "http://" + addr
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("versitygw did not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(S3AccessKey, S3SecretKey, ""), BucketLookup: minio.BucketLookupPath, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	s.Client = c
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *S3Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_, _ = s.cmd.Process.Wait()
	}
}

// Restart starts the server again on the same directory and port.
func (s *S3Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	bin, _ := LookTool("versitygw")
	var port int
	_, _ = fmt.Sscanf(s.Endpoint, "http://127.0.0.1:%d", &port)
	s.start(t, bin, port)
}

// Path is where the server keeps an object.
func (s *S3Server) Path(bucket, key string) string { return filepath.Join(s.Dir, bucket, key) }
