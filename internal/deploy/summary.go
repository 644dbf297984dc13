package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/steps"
)

// logLines is how much of a failing service's log the hand-off shows.
const logLines = 100

// summary renders the job summary: the pipeline as a table, then on failure the
// hand-off for the person who has to act.
func (s *State) summary() string {
	var b strings.Builder
	name := s.Compose.Name
	if name == "" {
		name = s.Opts.ProjectName
	}
	fmt.Fprintf(&b, "### deploykit %s: %s", s.plan.Action, s.status())
	if s.Out.Degraded != "" {
		b.WriteString(", production degraded")
	}
	if s.Version != "" {
		fmt.Fprintf(&b, " — %s %s on %s", name, s.Version, s.Opts.Environment)
	}
	if s.Opts.DryRun {
		b.WriteString(" (dry run)")
	}
	b.WriteString("\n\n" + steps.Table(s.Results))
	if s.Plan != nil {
		b.WriteString("\n#### Plan\n\n" + s.Plan.Markdown())
	}
	if s.PreviousVersion != "" {
		fmt.Fprintf(&b, "\nPrevious version on %s: %s.\n", s.Opts.Environment, s.PreviousVersion)
	}
	if s.trend != "" {
		fmt.Fprintf(&b, "\n%s\n", s.trend)
	}
	if s.notify.sent != "" {
		fmt.Fprintf(&b, "\n%s\n", s.notify.sent)
	}
	if s.Remote != nil {
		fmt.Fprintf(&b, "\nDocker host: %s.\n", s.Remote.Stats())
	}
	if s.Out.FailedErr != nil && s.Out.HandOff != "" {
		b.WriteString("\n" + s.Out.HandOff)
	}
	return b.String()
}

// commandDetails is, when err is a command that failed, that command in a
// details block of a hand-off: the reason leads, the command line is there
// for who wants it.
func commandDetails(err error) string {
	var ce *command.Error
	if !errors.As(err, &ce) {
		return ""
	}
	return fmt.Sprintf("\n  <details><summary>The command that failed</summary>\n\n  ```sh\n  %s\n  ```\n\n  </details>\n\n", ce.Command)
}

// handOff is the Markdown a person needs after a failed deploy: where the job is,
// what failed, the logs of the failing service, and how to roll back by hand.
func (s *State) handOff(ctx context.Context) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#### Hand-off: %s of %s failed at %s\n\n", s.plan.Action, orUnknown(s.Version), s.Out.FailedStep)
	if job := s.A.JobURL(); job != "" {
		fmt.Fprintf(&b, "- Job: %s\n", job)
	}
	fmt.Fprintf(&b, "- Failing step: **%s**: %s\n", s.Out.FailedStep, action.Cell(s.Out.FailedErr.Error()))
	b.WriteString(commandDetails(s.Out.FailedErr))
	if len(s.Snapshot.Services) > 0 {
		fmt.Fprintf(&b, "- Roll back to %s by hand (what auto-rollback does):\n\n```sh\n%s\n```\n", s.rollbackVersion(), strings.Join(s.Target.ManualRollback(s), "\n"))
	} else {
		b.WriteString("- Nothing ran before this deploy, so there is no previous version to roll back to.\n")
	}
	containers, err := s.Target.Failing(ctx, s)
	if err != nil {
		fmt.Fprintf(&b, "- Could not list the containers: %v\n", err)
	}
	for _, c := range containers {
		logs := c.Logs
		if logs == "" {
			var err error
			if logs, err = s.Docker.Logs(ctx, c.ID, logLines); err != nil {
				logs += fmt.Sprintf("\n(could not read the logs: %v)", err)
			}
		}
		state := c.State
		if c.Health != "" {
			state += ", " + c.Health
		}
		fmt.Fprintf(&b, "\nLast %d log lines of %s (%s, %s, %s):\n\n```\n%s\n```\n", logLines, c.Service, c.Name, c.Image, state,
			strings.ReplaceAll(strings.TrimRight(logs, "\n"), "```", "'''"))
	}
	return b.String()
}
