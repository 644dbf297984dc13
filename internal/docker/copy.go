package docker

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
)

// FileOwner is the owner and mode a file copied into a container gets, and the
// owner of the directories made for it.
type FileOwner struct {
	UID, GID       int
	Mode           os.FileMode
	DirUID, DirGID int
}

// CopyFile copies size bytes of content into the (created or running)
// container id as the file dir/name, where dir exists in the container (a mount
// point, say); directories in name are made (0755) owned by DirUID:DirGID. It goes
// through the Engine API (docker cp), so into a volume mounted at dir too, and
// nothing is written on the runner's disk.
func (c *Client) CopyFile(ctx context.Context, id, dir, name string, content io.Reader, size int64, owner FileOwner) error {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		now := time.Now()
		var parent string
		for _, part := range strings.Split(path.Dir(path.Clean(name)), "/") {
			if part == "." || part == "" {
				continue
			}
			parent = path.Join(parent, part)
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: parent + "/", Mode: 0o755, Uid: owner.DirUID, Gid: owner.DirGID, ModTime: now}); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path.Clean(name), Size: size, Mode: int64(owner.Mode.Perm()), Uid: owner.UID, Gid: owner.GID, ModTime: now})
		if err == nil {
			_, err = io.Copy(tw, content)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	err := c.api.CopyToContainer(ctx, id, dir, pr, container.CopyToContainerOptions{})
	pr.CloseWithError(err) // ends the writer if the engine stopped reading
	return err
}
