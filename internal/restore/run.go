package restore

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/notify"
	"github.com/org/deploy-kit/internal/steps"
	"github.com/org/deploy-kit/internal/verify"
)

// run is one restore: what it was given and what happened, for the summary.
type run struct {
	a          *action.Context
	in         Options
	target     *backup.Target
	verify     deploy.VerifyOptions
	safetyOpts backup.Options
	client     docker.Engine
	tell       *notify.Target
	smoke      []verify.Check
	changing   bool // the restore step began: the history, outputs and summary tell
	steps.Runner[*run]
	file    string
	sum     string
	checks  []string
	safety  string
	stopped []docker.Container
	before  map[string]int64
	after   map[string]int64
	done    []string // what was done, in order, for the summary
	live    string   // what the live database holds at the end, for the summary
}

// Pipeline is the restore, top to bottom (ARCHITECTURE.md, "Each action's
// steps"): everything that can refuse it runs before anything changes (exit 2);
// a dry run stops after verify.
var Pipeline = []steps.Step[*run]{
	steps.Func("confirm", confirmStep), // RESTORE typed, the target, the backup found, the other inputs, the services to stop
	steps.Func("verify", verifyStep),   // checksum, the whole gzip stream, a complete dump of the target's kind, the outputs
	steps.Func("lock", lockStep),       // the stack's deploy lock: no deploy, rollback or other restore meanwhile
	steps.Func("restore", restoreStep), // safety backup, stop, restore (never half-way), start whatever happened
	steps.Func("checks", checksStep),   // health and smoke checks
}

// Run is `deploykit restore`. Everything that can refuse the restore is checked
// before anything is touched (exit 2); then a safety backup, the services
// stopped, the restore, the services started (whatever happened), checks; then
// history, outputs, summary and notification.
func Run(ctx context.Context, a *action.Context, in Options) error {
	if in.Drill.Enabled {
		return runDrill(ctx, a, in)
	}
	r := &run{a: a, in: in, verify: in.VerifyOptions}
	r.Runner = steps.Runner[*run]{Logf: a.Logf, OnExit: a.OnExit}
	defer r.Cleanup()
	start := time.Now()
	_, failed := r.Run(ctx, Pipeline, r, func() string {
		if in.DryRun && r.sum != "" {
			return "dry run"
		}
		return ""
	})
	if !r.changing { // refused, or a dry run: nothing changed, nothing to record
		if failed == nil && in.DryRun {
			r.planOnly()
		}
		return failed
	}
	status := history.StatusSuccess
	if failed != nil {
		status = history.StatusFailed
	}
	entry := history.Entry{Time: time.Now().UTC(), Stack: r.stack(), Env: in.Environment,
		Action: history.ActionRestore, Version: filepath.Base(r.file), Status: status,
		Notes: fmt.Sprintf("sha256=%s; safety=%s; job %s", r.sum, cmp.Or(r.safety, "none"), a.JobURL())}
	if err := (history.File{Path: in.HistoryFile}).Append(entry); err != nil {
		a.Warningf("%v", err)
	}
	if err := a.SetOutputs(action.Out{Name: "file", Value: r.file}, action.Out{Name: "sha256", Value: r.sum}, action.Out{Name: "safety-backup", Value: r.safety}); err != nil {
		return err
	}
	summary := r.summary(time.Since(start), failed)
	if r.tell.Wants(failed == nil) {
		m := notify.Message{Action: "restore", Stack: entry.Stack, Env: entry.Env, Version: entry.Version, Status: status, OK: failed == nil,
			Title: fmt.Sprintf("deploykit restore: %s — %s into %s", status, filepath.Base(r.file), r.target.Source()), Text: summary, JobURL: a.JobURL()}
		summary += "\n" + notify.Tell(ctx, a, r.tell, m, "restore") + "\n"
	}
	if err := a.Summary(summary); err != nil {
		a.Warningf("writing the job summary: %v", err)
	}
	if failed != nil {
		return action.Failedf("%w", failed)
	}
	return nil
}

// confirmStep checks every input and finds the backup and the services to stop;
// a problem is a usage error and nothing has been touched.
func confirmStep(ctx context.Context, r *run) error {
	in, a := r.in, r.a
	switch c := in.Confirm; c {
	case "RESTORE":
	case "":
		return action.Usagef("input confirm is required (set --confirm or INPUT_CONFIRM): type RESTORE, in capitals, to confirm the restore")
	default:
		return action.Usagef("input confirm: %q is not RESTORE: type RESTORE, in capitals, to confirm the restore", c)
	}
	r.safetyOpts = backup.Options{
		Engine: in.Engine, Container: in.Container, SwarmService: in.SwarmService, DatabaseURL: in.DatabaseURL,
		DBUser: in.DBUser, DBPassword: in.DBPassword, SQLitePath: in.SQLitePath,
		Dir: cmp.Or(in.SafetyDir, in.Dir), Prefix: "pre-restore", Level: backup.DefaultLevel,
		Keep:   backup.Keep{All: true}, // a safety backup is never pruned by the next one
		DryRun: in.DryRun,              // a dry run starts nothing to reach the database with
	}
	if action.HasControl(in.Prefix) {
		return action.Usagef("input prefix: %s holds control characters", action.Name(in.Prefix))
	}
	target, err := backup.NewTarget(a, r.safetyOpts)
	if err != nil {
		return err
	}
	r.target = target
	r.Defer(func() { _ = target.Close() })
	if r.file, err = resolve(ctx, a, in, target.Ext(), r.Defer); err != nil {
		return err
	}
	if leftovers, err := target.Leftovers(ctx); err != nil {
		a.Warningf("%v", err)
	} else {
		for _, l := range leftovers {
			a.Warningf("%s", l)
		}
	}
	if r.smoke, err = in.VerifyOptions.Checks(); err != nil {
		return err
	}
	if !filepath.IsAbs(in.HistoryFile) {
		return action.Usagef("input history-file: %q must be an absolute path on the Docker host", in.HistoryFile)
	}
	if r.tell, err = in.Notify.Checked(); err != nil {
		return err
	}
	if len(in.StopServices) > 0 {
		if err := r.findServices(ctx); err != nil {
			return err
		}
	}
	r.Did("%s into %s%s", r.file, target.Source(), stopping(r.stopped))
	return nil
}

// stopping says which services the restore stops, for confirm's line.
func stopping(cs []docker.Container) string {
	if len(cs) == 0 {
		return ""
	}
	return ", stopping " + names(cs) + " meanwhile"
}

// findServices finds the running containers of stop-services.
func (r *run) findServices(ctx context.Context) error {
	project := r.in.ProjectName
	if project == "" {
		return action.Usagef("input stop-services: set project-name too (the compose project the services belong to)")
	}
	client, err := docker.New(r.a.Environ())
	if err != nil {
		return action.Failedf("%v", err)
	}
	r.client = client
	r.Defer(func() { _ = client.Close() })
	all, err := client.ProjectContainers(ctx, project)
	if err != nil {
		return action.Failedf("listing the containers of %s: %v", project, err)
	}
	for _, svc := range r.in.StopServices {
		var found bool
		for _, c := range all {
			if c.Service == svc {
				found = true
				// A crash-looping container (restarting) counts: left alone, its
				// restart policy would start it in the middle of the restore.
				if c.State == "running" || c.State == "restarting" {
					r.stopped = append(r.stopped, c)
				}
			}
		}
		if !found {
			return action.Usagef("input stop-services: service %s has no container in project %s", svc, project)
		}
	}
	return nil
}

func verifyStep(_ context.Context, r *run) error {
	r.a.Logf("    %s", r.file)
	var err error
	if r.sum, r.checks, err = r.target.Verify(r.file); err != nil {
		return action.Usagef("the backup cannot be restored: %v; nothing was changed", err)
	}
	// What becomes an output is checked now, while nothing has changed.
	if err := r.a.CheckOutputs(action.Out{Name: "file", Value: r.file}, action.Out{Name: "sha256", Value: r.sum}); err != nil {
		return action.Usagef("%v; nothing was changed", err)
	}
	r.Did("%s", strings.Join(r.checks, "; "))
	return nil
}

func lockStep(ctx context.Context, r *run) error {
	l, err := takeLock(ctx, r.a, r.in.HistoryFile, r.stack(), r.in.LockTimeout, "restoring "+filepath.Base(r.file))
	if err != nil {
		return err
	}
	r.Defer(func() { _ = l.Release() })
	r.Did("took %s", l.Path)
	return nil
}

// stack is what the history and the lock call the restored stack: the compose
// project, else the database.
func (r *run) stack() string { return cmp.Or(r.in.ProjectName, r.target.Source()) }

func restoreStep(ctx context.Context, r *run) error {
	r.changing = true
	return r.restore(ctx)
}

func checksStep(ctx context.Context, r *run) error {
	if r.in.HealthURL == "" && len(r.smoke) == 0 {
		return steps.Skip("no health-url or smoke-checks")
	}
	return r.check(ctx, r.smoke)
}

// restore is the part that changes things: safety backup, stop, restore (and,
// for a cluster, the safety backup put back on failure), start.
func (r *run) restore(ctx context.Context) (failed error) {
	r.live = "as it was: nothing was restored"
	r.before, _ = r.target.Counts(ctx)
	r.a.Logf("==> safety backup of %s", r.target.Source())
	began := time.Now()
	res, err := backup.Make(ctx, r.a, r.safetyOpts)
	if err != nil {
		return fmt.Errorf("the safety backup of the live database failed (%w); nothing was restored", err)
	}
	r.safety = res.Path
	r.done = append(r.done, fmt.Sprintf("safety backup %s (sha256 %s) in %s", res.Path, res.SHA256, time.Since(began).Round(10*time.Millisecond)))
	if len(r.stopped) > 0 {
		r.a.Logf("==> stop %s", names(r.stopped))
		defer func() {
			// Start what was stopped, whatever happened, with a deadline of its own.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			var errs []string
			for _, c := range r.stopped {
				if err := r.client.Start(ctx, c.ID); err != nil {
					errs = append(errs, fmt.Sprintf("%s: %v", c.Name, err))
				}
			}
			if len(errs) > 0 {
				r.a.Warningf("starting the services again: %s", strings.Join(errs, "; "))
				if failed == nil {
					failed = fmt.Errorf("restored, but the stopped services did not all start again: %s", strings.Join(errs, "; "))
				}
				return
			}
			r.done = append(r.done, "started "+names(r.stopped)+" again")
		}()
		for _, c := range r.stopped {
			if err := r.client.Stop(ctx, c.ID, 10*time.Second); err != nil {
				return fmt.Errorf("stopping %s: %w; nothing was restored", c.Name, err)
			}
		}
		r.done = append(r.done, "stopped "+names(r.stopped))
	}
	r.a.Logf("==> restore %s into %s", filepath.Base(r.file), r.target.Source())
	began = time.Now()
	live, err := r.target.Restore(ctx, r.file)
	if err != nil {
		if r.target.Swaps() {
			r.live = live
			return fmt.Errorf("the restore failed (%w); %s", err, live)
		}
		r.a.Logf("    the restore failed (%v): putting the safety backup back", err)
		r.live = "NOT as it was: the restore failed half-way and putting the safety backup back failed too; restore " + r.safety + " by hand"
		if _, perr := r.target.Restore(context.WithoutCancel(ctx), r.safety); perr != nil {
			return fmt.Errorf("the restore failed (%w), and putting the safety backup %s back failed too (%v): restore it by hand", err, r.safety, perr)
		}
		r.live = "as it was: put back from the safety backup " + r.safety
		return fmt.Errorf("the restore failed (%w); the database was put back from the safety backup %s", err, r.safety)
	}
	r.live = cmp.Or(live, "holds the restored backup")
	took := time.Since(began).Round(10 * time.Millisecond)
	r.a.Logf("    restored in %s", took)
	r.done = append(r.done, fmt.Sprintf("restored %s in %s", r.file, took))
	r.after, _ = r.target.Counts(ctx)
	return nil
}

// check runs the health and smoke checks once the services are back.
func (r *run) check(ctx context.Context, checks []verify.Check) error {
	in := r.verify
	logf := func(f string, args ...any) { r.a.Logf("    "+f, args...) }
	if health := in.HealthURL; health != "" {
		b := verify.Backoff{Attempts: in.HealthAttempts, InitialDelay: in.HealthInitialDelay, MaxDelay: in.HealthMaxDelay}
		if err := verify.Health(ctx, health, b, logf); err != nil {
			return fmt.Errorf("restored, but %w; the data from before is in the safety backup %s", err, r.safety)
		}
	}
	if len(checks) > 0 {
		if err := verify.Smoke(ctx, in.SmokeBaseURL, checks, logf); err != nil {
			return fmt.Errorf("restored, but %w; the data from before is in the safety backup %s", err, r.safety)
		}
	}
	r.done = append(r.done, "health and smoke checks passed")
	return nil
}

func (r *run) planOnly() {
	var b strings.Builder
	fmt.Fprintf(&b, "### deploykit restore: dry run — %s into %s\n\n", filepath.Base(r.file), r.target.Source())
	fmt.Fprintf(&b, "Would: take a safety backup of %s; ", r.target.Source())
	if len(r.stopped) > 0 {
		fmt.Fprintf(&b, "stop %s; ", names(r.stopped))
	}
	fmt.Fprintf(&b, "restore %s (sha256 %s); ", r.file, r.sum)
	if len(r.stopped) > 0 {
		fmt.Fprintf(&b, "start %s again; ", names(r.stopped))
	}
	b.WriteString("check, and record it in the history.\n\n")
	for _, c := range r.checks {
		fmt.Fprintf(&b, "- %s\n", c)
	}
	r.a.Logf("%s", strings.TrimSpace(b.String()))
	if err := r.a.Summary(b.String()); err != nil {
		r.a.Warningf("writing the job summary: %v", err)
	}
}

func (r *run) summary(took time.Duration, failed error) string {
	var b strings.Builder
	status := "success"
	if failed != nil {
		status = "failed"
	}
	fmt.Fprintf(&b, "### deploykit restore: %s — %s into %s\n\n", status, filepath.Base(r.file), r.target.Source())
	if failed != nil {
		fmt.Fprintf(&b, "**%s**\n\n", action.Cell(failed.Error()))
		if job := r.a.JobURL(); job != "" {
			fmt.Fprintf(&b, "Job: %s\n\n", job)
		}
	}
	fmt.Fprintf(&b, "| | |\n|---|---|\n| backup | %s |\n| sha256 | %s |\n| safety backup | %s |\n| live database | %s |\n| took | %s |\n\n",
		action.Cell(r.file), r.sum, action.Cell(cmp.Or(r.safety, "none")), action.Cell(cmp.Or(r.live, "as it was: nothing was restored")), took.Round(time.Millisecond))
	b.WriteString("Checks of the backup before anything changed:\n\n")
	for _, c := range r.checks {
		fmt.Fprintf(&b, "- %s\n", action.Cell(c))
	}
	if len(r.done) > 0 {
		b.WriteString("\nDone:\n\n")
		for i, s := range r.done {
			fmt.Fprintf(&b, "%d. %s\n", i+1, action.Cell(s))
		}
	}
	if len(r.before)+len(r.after) > 0 {
		b.WriteString("\n| table | rows before | rows after |\n|---|---|---|\n")
		tables := map[string]bool{}
		for t := range r.before {
			tables[t] = true
		}
		for t := range r.after {
			tables[t] = true
		}
		for _, t := range slices.Sorted(maps.Keys(tables)) {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", action.Cell(t), count(r.before, t), count(r.after, t))
		}
	}
	return b.String()
}

func count(m map[string]int64, table string) string {
	if n, ok := m[table]; ok {
		return fmt.Sprint(n)
	}
	return "-"
}

// resolve finds the backup the file input names: an offsite copy (s3://…, or
// latest with offsite-url), downloaded into dir — in a dry run, which changes
// nothing on disk, into a directory of its own that cleanup removes; else see
// source. A name with control characters is refused.
func resolve(ctx context.Context, a *action.Context, in Options, ext string, cleanup func(func())) (string, error) {
	file := in.File
	if strings.HasPrefix(file, "s3://") || (file == "latest" && in.Offsite.URL != "") {
		dir := in.Dir
		if in.DryRun {
			tmp, err := os.MkdirTemp(a.TempDir(), "deploykit-dry-run-")
			if err != nil {
				return "", action.Failedf("%v", err)
			}
			cleanup(func() { os.RemoveAll(tmp) })
			dir = tmp
		}
		return backup.FetchOffsite(ctx, a, in.Offsite, file, in.Prefix, ext, dir)
	}
	path, err := source(file, in.Dir, in.Prefix, ext)
	if err != nil {
		return "", action.Usagef("input file: %v", err)
	}
	if action.HasControl(path) {
		return "", action.Usagef("input file: %s: a backup whose name holds control characters is refused (rename it)", action.Name(path))
	}
	return path, nil
}

// source resolves the file input: a file, a directory with exactly one backup
// (a downloaded artifact), or latest in dir.
func source(file, dir, prefix, ext string) (string, error) {
	if file == "latest" {
		return backup.Latest(dir, prefix, ext)
	}
	st, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("%s does not exist", action.Name(file))
	}
	if !st.IsDir() {
		abs, _ := filepath.Abs(file)
		return abs, nil
	}
	found, _ := filepath.Glob(filepath.Join(file, "*."+ext+".gz"))
	if len(found) != 1 {
		return "", fmt.Errorf("the directory %s holds %d backups (*.%s.gz): want exactly one", file, len(found), ext)
	}
	return filepath.Abs(found[0])
}

func names(cs []docker.Container) string {
	var n []string
	for _, c := range cs {
		n = append(n, c.Name)
	}
	return strings.Join(n, ", ")
}
