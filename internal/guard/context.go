package guard

import (
	"context"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/git"
)

// Check applies loop protection to the job's event, reading a Gitea workflow_run's
// commit message from the workspace checkout with exec. An unreadable event
// payload is an error.
func Check(ctx context.Context, a *action.Context, exec command.Executor) (Decision, error) {
	payload, err := a.Event()
	if err != nil {
		return Decision{}, err
	}
	commitMessage := func(sha string) (string, error) {
		return exec.Output(ctx, git.CommitMessage(a.Workspace(), sha))
	}
	return Decide(a.GitHub.EventName, payload, commitMessage), nil
}
