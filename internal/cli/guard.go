package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/guard"
)

var guardSpec = action.Spec{
	Name:        "guard",
	Description: "Loop protection: decide whether this run must be skipped ([skip ci] and friends, skip-checks: true, a workflow_run that did not succeed).",
	Outputs: []action.Output{
		{Name: "skip", Description: "true when the run should be skipped."},
		{Name: "reason", Description: "Why, in one line."},
	},
}

func runGuard(ctx context.Context, a *action.Context, _ struct{}) error {
	d, err := guard.Check(ctx, a, command.For(a, false))
	if err != nil {
		return action.Failedf("%w", err)
	}
	if d.Warning != "" {
		a.Warningf("%s", d.Warning)
	}
	if err := a.SetOutput("skip", strconv.FormatBool(d.Skip)); err != nil {
		return err
	}
	if err := a.SetOutput("reason", d.Reason); err != nil {
		return err
	}
	verdict := "run"
	if d.Skip {
		verdict = "skip"
	}
	return a.Summary(fmt.Sprintf("### deploykit guard: %s\n\n%s\n", verdict, d.Reason))
}
