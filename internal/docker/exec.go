package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// ExecSpec is a command run inside a running container (docker exec). Env holds
// values such as passwords, which reach the process's environment and never its
// command line.
type ExecSpec struct {
	Cmd    []string
	Env    []string
	User   string
	Stdin  io.Reader // nil: no stdin
	Stdout io.Writer
	Stderr io.Writer
}

// ErrNotRunning is returned when the container of an exec is not running.
var ErrNotRunning = errors.New("container is not running")

// ErrNoContainer is the error of a container that does not exist.
var ErrNoContainer = errors.New("no such container")

// ContainerImage returns the image a running container was started from; a
// missing or stopped container is an error that says which.
func (c *Client) ContainerImage(ctx context.Context, name string) (string, error) {
	ins, err := c.api.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("container %q does not exist: %w", name, ErrNoContainer)
	}
	if err != nil {
		return "", err
	}
	if ins.State == nil || !ins.State.Running {
		status := "not running"
		if ins.State != nil {
			status = ins.State.Status
		}
		return "", fmt.Errorf("container %q is %s: %w", name, status, ErrNotRunning)
	}
	return ins.Config.Image, nil
}

// Exec runs spec in the running container and returns the command's exit code.
// The output streams are copied as they arrive, so a large dump never sits in
// memory. An exit code that cannot be read (the container died under the command)
// is an error, never success.
func (c *Client) Exec(ctx context.Context, name string, spec ExecSpec) (int, error) {
	if _, err := c.ContainerImage(ctx, name); err != nil {
		return -1, err
	}
	created, err := c.api.ContainerExecCreate(ctx, name, container.ExecOptions{
		Cmd: spec.Cmd, Env: spec.Env, User: spec.User,
		AttachStdin: spec.Stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return -1, fmt.Errorf("docker exec in %s: %w", name, err)
	}
	att, err := c.api.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, fmt.Errorf("docker exec in %s: %w", name, err)
	}
	defer att.Close()
	stdinErr := make(chan error, 1)
	if spec.Stdin != nil {
		go func() {
			_, err := io.Copy(att.Conn, spec.Stdin)
			if cerr := att.CloseWrite(); err == nil {
				err = cerr
			}
			stdinErr <- err
		}()
	} else {
		stdinErr <- nil
	}
	stdout, stderr := spec.Stdout, spec.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	copyDone := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, att.Reader)
		copyDone <- err
	}()
	select {
	case err = <-copyDone:
	case <-ctx.Done():
		att.Close()
		return -1, ctx.Err()
	}
	if err != nil {
		return -1, fmt.Errorf("reading the output of %q in %s: %w", spec.Cmd[0], name, err)
	}
	if spec.Stdin != nil {
		if err := <-stdinErr; err != nil {
			return -1, fmt.Errorf("feeding %q in %s: %w", spec.Cmd[0], name, err)
		}
	}
	// The stream ends a moment before the engine records the exit code.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ins, err := c.api.ContainerExecInspect(ctx, created.ID)
		if err != nil {
			return -1, fmt.Errorf("reading the exit status of %q in %s: %w", spec.Cmd[0], name, err)
		}
		if !ins.Running {
			if ins.ExitCode < 0 {
				return -1, fmt.Errorf("%q in %s ended without an exit status (did the container stop?)", spec.Cmd[0], name)
			}
			return ins.ExitCode, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("%q in %s: output ended but the command is still running", spec.Cmd[0], name)
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
