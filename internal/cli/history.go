package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/git"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/remote"
)

var historySpec = action.Spec{
	Name:        "history",
	Description: "List the deploy history, filtered, as a table or JSON; with --stats, each stack and environment's deploy frequency, change failure rate, time to restore and lead time.",
	Inputs: append([]action.Input{
		{Name: "history-file", Default: "/var/lib/deploy-kit/history.log", Description: "Deploy history file on the Docker host (read over SSH when docker-host is set)."},
		{Name: "stack", Description: "Only this stack (compose project or swarm stack)."},
		{Name: "environment", Description: "Only this environment."},
		{Name: "action", Kind: action.Enum, Enum: []string{"any", history.ActionDeploy, history.ActionRollback, history.ActionVerified}, Default: "any", Description: "Only this kind of entry."},
		{Name: "since", Kind: action.Duration, Description: "Only entries of this last stretch of time, e.g. 7d; empty for all."},
		{Name: "format", Kind: action.Enum, Enum: []string{"table", "json"}, Default: "table", Description: "table for people, json for scripts."},
		{Name: "stats", Kind: action.Bool, Default: "false", Description: "Report the figures per stack and environment instead of the entries."},
		{Name: "window", Kind: action.Duration, Default: "30d", Description: "With stats: the stretch of time the figures cover, ending now."},
	}, remote.Inputs...),
}

// runHistory is `deploykit history`. Lead times need the commits' times: they are
// read from the git checkout the command runs in, when there is one.
type historyOptions struct {
	File   string         `input:"history-file"`
	Stack  string         `input:"stack"`
	Env    string         `input:"environment"`
	Action string         `input:"action"`
	Since  time.Duration  `input:"since"`
	Format string         `input:"format"`
	Stats  bool           `input:"stats"`
	Window time.Duration  `input:"window"`
	Remote remote.Options // the Docker host, when the history is read from elsewhere
}

func runHistory(ctx context.Context, a *action.Context, o historyOptions) error {
	file := history.File{Path: o.File}
	if o.Remote.Remote() {
		if _, _, err := remote.Parse(o.Remote, a.TempDir()); err != nil {
			return err
		}
		o.Remote.Log = os.Stderr // stdout is the history
		conn, err := remote.Connect(ctx, a, o.Remote)
		if err != nil {
			return action.Failedf("%w", err)
		}
		defer conn.End()
		file.Host = conn
	}
	entries, skipped, err := file.ReadCounting()
	if err != nil {
		return action.Failedf("%w", err)
	}
	if skipped > 0 {
		a.Warningf("%d line(s) of %s are not history lines and were skipped", skipped, file.Path)
	}
	now := time.Now()
	f := history.Filter{Stack: o.Stack, Env: o.Env}
	if act := o.Action; act != "any" {
		f.Action = act
	}
	if since := o.Since; since > 0 {
		f.Since = now.Add(-since)
	}
	var kept []history.Entry
	for _, e := range entries {
		if f.Match(e) {
			kept = append(kept, e)
		}
	}
	asJSON := o.Format == "json"
	if !o.Stats {
		if asJSON {
			return printJSON(a, entriesJSON(kept))
		}
		return printTable(a, []string{"time", "stack", "environment", "action", "version", "status", "notes"}, func(row func(...string)) {
			for _, e := range kept {
				row(e.Time.UTC().Format(time.RFC3339), e.Stack, e.Env, e.Action, e.Version, e.Status, e.Notes)
			}
		})
	}
	run := command.For(a, false)
	ws := a.Workspace()
	commitTime := git.CommitTimes(ctx, run, ws)
	if _, err := run.Output(ctx, git.ResolveCommit(ws, "HEAD")); err != nil {
		commitTime = nil // not a checkout: no lead times
	}
	stats := history.Compute(kept, now, o.Window, commitTime)
	if asJSON {
		if stats == nil {
			stats = []history.Stats{}
		}
		return printJSON(a, stats)
	}
	return printTable(a, []string{"stack", "environment", "deploys", "a week", "failed", "time to restore", "not restored", "lead time"}, func(row func(...string)) {
		for _, s := range stats {
			restore, lead := "-", "-"
			if s.Restored > 0 {
				restore = history.Round(s.TimeToRestore)
			}
			if s.LeadTimes > 0 {
				lead = history.Round(s.LeadTime)
			}
			row(s.Stack, s.Env, fmt.Sprint(s.Deploys), fmt.Sprintf("%.1f", s.PerWeek), fmt.Sprintf("%.0f%%", 100*s.ChangeFailureRate), restore, fmt.Sprint(s.Unrestored), lead)
		}
	})
}

type entryJSON struct {
	Time    time.Time `json:"time"`
	Stack   string    `json:"stack"`
	Env     string    `json:"environment"`
	Action  string    `json:"action"`
	Version string    `json:"version"`
	Status  string    `json:"status"`
	SHA     string    `json:"sha,omitempty"`
	Notes   string    `json:"notes"`
}

func entriesJSON(entries []history.Entry) []entryJSON {
	out := make([]entryJSON, 0, len(entries))
	for _, e := range entries {
		out = append(out, entryJSON{e.Time.UTC(), e.Stack, e.Env, e.Action, e.Version, e.Status, e.SHA(), e.Notes})
	}
	return out
}

func printJSON(a *action.Context, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	a.Logf("%s", data)
	return nil
}

func printTable(a *action.Context, header []string, rows func(row func(...string))) error {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	line := func(cells ...string) {
		for i, c := range cells {
			cells[i] = action.Name(c) // a \r or \n in a field would end the line (a tab would shift the columns)
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	line(header...)
	rows(line)
	if err := w.Flush(); err != nil {
		return err
	}
	a.Logf("%s", strings.TrimRight(b.String(), "\n"))
	return nil
}
