package command

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestString(t *testing.T) {
	c := Cmd{Argv: []string{"docker", "compose", "-p", "app", "--env-file", "/tmp/a b.env", "", "it's", "$(rm -rf /)", "a=b,c"}}
	assert.Equal(t, `docker compose -p app --env-file '/tmp/a b.env' '' 'it'\''s' '$(rm -rf /)' a=b,c`, c.String())
}

func TestRunStreamsAndMasks(t *testing.T) {
	var log bytes.Buffer
	r := &Runner{Log: &log, Mask: func(s string) string { return strings.ReplaceAll(s, "hunter2", "***") }}
	dir := t.TempDir()
	err := r.Run(context.Background(), Cmd{Argv: []string{"touch", "hunter2"}, Dir: dir})
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, "hunter2"))
	assert.True(t, strings.HasPrefix(log.String(), "$ touch ***\n  (touch, "), log.String())
}

func TestDryRunChangesNothing(t *testing.T) {
	var log bytes.Buffer
	r := &Runner{Log: &log, DryRun: true}
	dir := t.TempDir()
	require.NoError(t, r.Run(context.Background(), Cmd{Argv: []string{"touch", "x"}, Dir: dir}))
	assert.Equal(t, "would run: touch x\n", log.String())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)

	// Queries still run in a dry run: the plan needs their answers.
	out, err := r.Output(context.Background(), Cmd{Argv: []string{"echo", "hi"}})
	require.NoError(t, err)
	assert.Equal(t, "hi\n", out)
}

func TestErrorsCarryTheCommandAndItsStderr(t *testing.T) {
	r := &Runner{Log: &bytes.Buffer{}}
	_, err := r.Output(context.Background(), Cmd{Argv: []string{"git", "-C", t.TempDir(), "log", "-1"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "git -C ")
	assert.Contains(t, err.Error(), ": fatal: not a git repository")

	err = r.Run(context.Background(), Cmd{Argv: []string{"false"}})
	assert.EqualError(t, err, "false: exit status 1")

	err = r.Run(context.Background(), Cmd{Argv: []string{"no-such-program-deploykit"}})
	assert.EqualError(t, err, `no-such-program-deploykit: exec: "no-such-program-deploykit": executable file not found in $PATH`)
}

func TestCancelStopsTheCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Log: &bytes.Buffer{}}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, Cmd{Argv: []string{"sleep", "60"}}) }()
	cancel()
	err := <-done
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sleep 60: ")
}
