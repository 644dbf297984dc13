package commandtest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/command"
)

func TestRecorderAnswersAndRecords(t *testing.T) {
	ctx := context.Background()
	r := (&Recorder{}).
		On("general\n", "git").
		On("abc\n", "git", "rev-parse").
		FailFirst(1, errors.New("rejected"), "git", "push")
	out, err := r.Output(ctx, command.Cmd{Argv: []string{"git", "rev-parse", "HEAD"}})
	require.NoError(t, err)
	assert.Equal(t, "abc\n", out, "the longer, later answer wins")
	out, _ = r.Output(ctx, command.Cmd{Argv: []string{"git", "status"}})
	assert.Equal(t, "general\n", out)
	err = r.Run(ctx, command.Cmd{Argv: []string{"git", "push", "origin"}})
	assert.EqualError(t, err, "git push origin failed (rejected)", "as command.Runner fails")
	var ce *command.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "git push origin", ce.Command)
	assert.NoError(t, r.Run(ctx, command.Cmd{Argv: []string{"git", "push", "origin"}}), "FailFirst(1) fails once")
	var buf bytes.Buffer
	require.NoError(t, r.Stream(ctx, command.Cmd{Argv: []string{"git", "rev-parse", "x"}}, &buf, nil))
	assert.Equal(t, "abc\n", buf.String())
	assert.Equal(t, []string{"git push origin", "git push origin", "git rev-parse x"}, r.Changes())
	assert.Equal(t, []string{"git rev-parse HEAD"}, r.Lines("git", "rev-parse", "HEAD"), "Lines filters by argv prefix")
	assert.Len(t, r.Lines("git"), 5)
	assert.True(t, r.Has("git", "status"))
	assert.False(t, r.Has("git", "fetch"))

	strict := &Recorder{Strict: true}
	_, err = strict.Output(ctx, command.Cmd{Argv: []string{"docker", "ps"}})
	assert.EqualError(t, err, "docker ps: not expected by the test")
}
