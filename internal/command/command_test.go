package command

import (
	"bytes"
	"context"
	"os"
	"os/exec"
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

// TestErrorsLeadWithTheReason: a failed command's error says which tool
// failed, how, and the last line it printed; the whole command line (masked,
// the runner's temp directory shortened) is kept apart for a details block.
func TestErrorsLeadWithTheReason(t *testing.T) {
	temp := t.TempDir()
	r := &Runner{Log: &bytes.Buffer{}, Temp: temp, Mask: func(s string) string { return strings.ReplaceAll(s, "hunter2", "***") }}
	dir := t.TempDir()
	_, err := r.Output(context.Background(), Cmd{Argv: []string{"git", "-C", dir, "log", "-1"}})
	require.Error(t, err)
	assert.Regexp(t, `^git log failed \(exit status 128\): fatal: not a git repository`, err.Error())
	var ce *Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "git -C "+dir+" log -1", ce.Command)
	var exit *exec.ExitError
	assert.ErrorAs(t, err, &exit, "the tool's own error is kept")

	err = r.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "echo starting; echo 'container web-1 is unhealthy (hunter2)' >&2; exit 1", "--env-file", temp + "/deploykit-secrets-0/x.env"}})
	assert.EqualError(t, err, "sh failed (exit status 1): container web-1 is unhealthy (***)")
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, `sh -c 'echo starting; echo '\''container web-1 is unhealthy (***)'\'' >&2; exit 1' --env-file $RUNNER_TEMP/deploykit-secrets-0/x.env`, ce.Command)

	err = r.Run(context.Background(), Cmd{Argv: []string{"false"}})
	assert.EqualError(t, err, "false failed (exit status 1)")

	err = r.Run(context.Background(), Cmd{Argv: []string{"no-such-program-deploykit"}})
	assert.EqualError(t, err, `no-such-program-deploykit failed (exec: "no-such-program-deploykit": executable file not found in $PATH)`)
}

func TestName(t *testing.T) {
	for argv, want := range map[string]string{
		"docker compose -p shop -f /w/compose.yaml -f /t/o.yaml --env-file /t/e.env up -d --wait --wait-timeout 120": "docker compose up",
		"git -C /w push origin HEAD:refs/heads/main":                                                                 "git push origin",
		"docker stack deploy --with-registry-auth -c /w/stack.yaml shop":                                             "docker stack deploy",
		"/usr/bin/psql -X": "psql",
	} {
		assert.Equal(t, want, Name(strings.Fields(argv)), argv)
	}
}

func TestCancelStopsTheCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Log: &bytes.Buffer{}}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, Cmd{Argv: []string{"sleep", "60"}}) }()
	cancel()
	err := <-done
	require.Error(t, err)
	assert.Equal(t, "sleep 60 failed (context canceled)", err.Error())
}
