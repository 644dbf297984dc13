package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

const (
	s3Access = testenv.S3AccessKey
	s3Secret = testenv.S3SecretKey
)

// s3Server is a real S3-compatible server (versitygw) on loopback with the
// bucket "backups".
func s3Server(t *testing.T) (endpoint string, c *minio.Client) {
	t.Helper()
	s := testenv.S3(t)
	return s.Endpoint, s.Client
}

// keys lists the objects of bucket "backups", sorted.
func keys(t *testing.T, c *minio.Client) []string {
	var out []string
	for obj := range c.ListObjects(context.Background(), "backups", minio.ListObjectsOptions{Recursive: true}) {
		require.NoError(t, obj.Err)
		out = append(out, obj.Key)
	}
	sort.Strings(out)
	return out
}

func object(t *testing.T, c *minio.Client, key string) []byte {
	obj, err := c.GetObject(context.Background(), "backups", key, minio.GetObjectOptions{})
	require.NoError(t, err)
	defer obj.Close()
	data, err := io.ReadAll(obj)
	require.NoError(t, err)
	return data
}

func sqliteSource(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "app.db")
	sqliteDB(t, path, 200).Close()
	return path
}

// TestOffsiteCopy: a verified backup and its .sha256 land in the bucket under
// their names (nothing left under .partial/), proven by reading back; the remote
// retention keeps what the local rules keep; offsite-every skips an upload while
// the newest remote copy is young enough.
func TestOffsiteCopy(t *testing.T) {
	t.Parallel()
	endpoint, c := s3Server(t)
	src, dir := sqliteSource(t), t.TempDir()
	offsite := []string{"--offsite-url", "s3://backups/nightly/app", "--offsite-endpoint", endpoint, "--offsite-path-style",
		"--offsite-access-key", s3Access, "--offsite-secret-key", s3Secret}
	run := func(extra ...string) result {
		return backup(t, nil, append(append([]string{"--engine", "sqlite", "--sqlite-path", src, "--dir", dir, "--min-size", "0"}, offsite...), extra...)...)
	}
	// An old remote copy, for the retention.
	old := "nightly/app/backup-2026-01-01T000000Z.sqlite.gz"
	for _, k := range []string{old, old + ".sha256"} {
		_, err := c.PutObject(context.Background(), "backups", k, bytes.NewReader([]byte("old")), 3, minio.PutObjectOptions{})
		require.NoError(t, err)
	}

	r := run("--keep-daily", "1", "--keep-weekly", "1", "--keep-monthly", "1")
	require.Equal(t, 0, r.Code, r.Log)
	name := filepath.Base(r.Outputs["path"])
	assert.Equal(t, "s3://backups/nightly/app/"+name, r.Outputs["offsite"])
	local, err := os.ReadFile(r.Outputs["path"])
	require.NoError(t, err)
	assert.Equal(t, local, object(t, c, "nightly/app/"+name), "the copy is the backup, byte for byte")
	sum, err := os.ReadFile(r.Outputs["path"] + ".sha256")
	require.NoError(t, err)
	assert.Equal(t, sum, object(t, c, "nightly/app/"+name+".sha256"))
	assert.Regexp(t, `\| offsite \| done \| \S+ \| s3://backups/nightly/app/`+name+`, read back: \d+ bytes, sha256 matches; remote retention deleted 1: backup-2026-01-01T000000Z\.sqlite\.gz \|`, r.Summary)
	assert.Equal(t, []string{"nightly/app/" + name, "nightly/app/" + name + ".sha256"}, keys(t, c), "the old copy went by the retention; no temporary key is left")
	assert.NotContains(t, r.Log+r.Summary, s3Secret)

	// offsite-every: the copy of a moment ago is young enough.
	time.Sleep(1100 * time.Millisecond) // a new second for the next backup's name
	r = run("--offsite-every", "7d")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "| offsite | skipped |  | the newest copy in s3://backups/nightly/app/ on ")
	assert.Contains(t, r.Summary, "younger than offsite-every 168h0m0s |")
	assert.Empty(t, r.Outputs["offsite"])
	assert.Len(t, keys(t, c), 2)
}

// TestOffsiteFailures: a missing bucket, bad credentials and an unreachable
// endpoint are each named; the local backup is kept; with offsite-required
// false the job passes with a warning. Bad offsite input makes nothing.
func TestOffsiteFailures(t *testing.T) {
	t.Parallel()
	endpoint, _ := s3Server(t)
	src := sqliteSource(t)
	closed := fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no such bucket", []string{"--offsite-url", "s3://missing/x", "--offsite-endpoint", endpoint, "--offsite-access-key", s3Access, "--offsite-secret-key", s3Secret},
			": no such bucket missing"},
		{"unknown access key", []string{"--offsite-url", "s3://backups/x", "--offsite-endpoint", endpoint, "--offsite-access-key", "WRONG", "--offsite-secret-key", s3Secret},
			": bad credentials (offsite-access-key, offsite-secret-key)"},
		{"wrong secret key", []string{"--offsite-url", "s3://backups/x", "--offsite-endpoint", endpoint, "--offsite-access-key", s3Access, "--offsite-secret-key", "not-the-secret-0123456789"},
			": bad credentials (offsite-access-key, offsite-secret-key)"},
		{"unreachable", []string{"--offsite-url", "s3://backups/x", "--offsite-endpoint", closed, "--offsite-access-key", s3Access, "--offsite-secret-key", s3Secret},
			": unreachable: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"--engine", "sqlite", "--sqlite-path", src, "--dir", dir, "--min-size", "0", "--offsite-path-style"}, tc.args...)
			r := backup(t, nil, args...)
			assert.Equal(t, 1, r.Code, r.Log)
			assert.Contains(t, r.Log, "::error::backup failed at offsite: offsite copy to s3://")
			assert.Contains(t, r.Log, tc.want)
			kept, _ := filepath.Glob(filepath.Join(dir, "backup-*.sqlite.gz"))
			assert.Len(t, kept, 1, "the verified local backup is kept")
			assert.NotContains(t, r.Log, s3Secret)

			r = backup(t, nil, append(args, "--dir", t.TempDir(), "--offsite-required=false")...)
			assert.Equal(t, 0, r.Code, r.Log)
			assert.Contains(t, r.Log, "::warning::offsite copy to s3://")
			assert.Contains(t, r.Log, "; the local backup is kept (offsite-required is false)")
		})
	}

	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--offsite-url", "https://backups.example.com/x"}, `input offsite-url: "https://backups.example.com/x" is not s3://bucket/prefix`},
		{[]string{"--offsite-url", "s3://backups/x"}, "inputs offsite-access-key and offsite-secret-key are required with offsite-url"},
		{[]string{"--offsite-url", "s3://backups/x", "--offsite-access-key", "a", "--offsite-secret-key", "b", "--offsite-endpoint", "ftp://x"}, `input offsite-endpoint: "ftp://x" is not http(s)://host[:port]`},
	} {
		r := backup(t, nil, append([]string{"--engine", "sqlite", "--sqlite-path", src, "--dir", dir, "--min-size", "0"}, tc.args...)...)
		assert.Equal(t, 2, r.Code, r.Log)
		assert.Contains(t, r.Log, "::error::"+tc.want)
		left, _ := os.ReadDir(dir)
		assert.Empty(t, left, "nothing made")
	}
}
