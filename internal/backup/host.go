package backup

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
)

// Host is the Docker host a runner elsewhere works on over SSH (remote.Conn,
// input docker-host). A backup for it is made on the runner — the dump
// streams over the connection — and kept in dir on the host: its .sha256
// and then the file are uploaded, the file's SHA-256 is computed there and
// compared, and retention runs there. A restore downloads the backup it
// names there.
type Host interface {
	Upload(ctx context.Context, src, dst string) error
	Download(ctx context.Context, src, dst string) error
	List(ctx context.Context, dir string) ([]string, error)
	RemoveFile(ctx context.Context, file string) error
	SHA256(ctx context.Context, file string) (string, error)
	String() string // user@host:port
}

// keepOnHost uploads the published backup and its .sha256 to dir on host,
// the checksum first and the backup last (present there means complete),
// and proves the copy by its SHA-256 computed there. It returns the path on
// the host.
func keepOnHost(ctx context.Context, host Host, local, dir, sum string) (string, error) {
	dst := path.Join(dir, filepath.Base(local))
	for _, f := range []string{local + ".sha256", local} {
		if err := host.Upload(ctx, f, path.Join(dir, filepath.Base(f))); err != nil {
			return "", fmt.Errorf("keeping %s on %s: %w", filepath.Base(f), host, err)
		}
	}
	got, err := host.SHA256(ctx, dst)
	if err != nil {
		return "", err
	}
	if got != sum {
		_ = host.RemoveFile(ctx, dst)
		_ = host.RemoveFile(ctx, dst+".sha256")
		return "", fmt.Errorf("%s on %s has the SHA-256 %s, not the backup's %s: removed it", dst, host, got, sum)
	}
	return dst, nil
}

// FetchFromHost downloads file and its .sha256 from host into dir (made
// 0700) and returns the local copy; a file without its .sha256 is refused:
// nothing proves the copy whole.
func FetchFromHost(ctx context.Context, host Host, file, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	local := filepath.Join(dir, path.Base(file))
	if err := host.Download(ctx, file+".sha256", local+".sha256"); err != nil {
		return "", fmt.Errorf("%s.sha256 on %s: %w (a backup is restored only with the checksum written beside it)", file, host, err)
	}
	if err := host.Download(ctx, file, local); err != nil {
		os.Remove(local + ".sha256")
		return "", fmt.Errorf("%s on %s: %w", file, host, err)
	}
	return local, nil
}

// LatestOnHost is the newest <prefix>-<timestamp> backup in dir on host.
func LatestOnHost(ctx context.Context, host Host, dir, prefix, ext string) (string, error) {
	names, err := host.List(ctx, dir)
	if err != nil {
		return "", err
	}
	list := backupsIn(names, prefix, ext)
	if len(list) == 0 {
		return "", fmt.Errorf("no backup named %s-<timestamp>.%s.gz in %s on %s", prefix, ext, dir, host)
	}
	return path.Join(dir, list[0].Name), nil
}
