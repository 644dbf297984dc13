package restore

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/notify"
	"github.com/org/deploy-kit/internal/remote"
	"github.com/org/deploy-kit/internal/repair"
	"github.com/org/deploy-kit/internal/steps"
	"github.com/org/deploy-kit/internal/verify"
)

// run is one restore: what it was given and what happened, for the summary.
type run struct {
	a          *action.Context
	in         Options
	target     liveDB
	verify     deploy.VerifyOptions
	safetyOpts backup.Options
	client     serviceEngine
	tell       *notify.Webhook
	smoke      []verify.Check
	changing   bool // the restore step began: the history, outputs and summary tell
	steps.Runner[*run]
	conn   *remote.Conn // the Docker host over SSH (docker-host), or nil
	file   string       // the backup, where it is kept (on the Docker host with docker-host)
	local  string       // the backup on this machine: file, or its downloaded copy
	sum    string
	checks []string
	safety string // the safety backup, where it is kept
	// safetyLocal is the safety backup on this machine (what is put back).
	safetyLocal string
	stopped     []docker.Container
	lock        *lock.Lock  // the stack's, held from the lock step
	holder      lock.Holder // what its file says: the step, the containers stopped
	before      map[string]int64
	after       map[string]int64
	done        []string // what was done, in order, for the summary
	live        string   // what the live database holds at the end, for the summary
}

// liveDB is what a restore and a drill ask of the database they restore
// into (backup.LiveDB).
type liveDB interface {
	Source() string
	Ext() string
	Verify(file string) (sum string, checks []string, err error)
	Counts(ctx context.Context) (map[string]int64, error)
	Restore(ctx context.Context, file string) (string, error)
	Swaps() bool
	Leftovers(ctx context.Context) ([]string, error)
	MigrationVersion(ctx context.Context, database string) (string, error)
	Close() error
}

// newLiveDB builds the database a run restores into from the engine options;
// the fast tests wrap what it builds, to fail a restore half-way.
var newLiveDB = func(a *action.Context, o backup.Options) (liveDB, error) {
	db, err := backup.NewLiveDB(a, o)
	if err != nil {
		return nil, err
	}
	return db, nil
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
	if err := historyFile(in, r.conn).Append(entry); err != nil {
		a.Warningf("%v", err)
	}
	if err := a.SetOutputs(action.Out{Name: "file", Value: r.file}, action.Out{Name: "sha256", Value: r.sum}, action.Out{Name: "safety-backup", Value: r.safety}); err != nil {
		return err
	}
	summary := r.summary(time.Since(start), failed)
	if r.conn != nil {
		summary += "\nDocker host: " + r.conn.Stats() + "\n"
	}
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
	conn, err := connect(ctx, a, in, r.Defer)
	if err != nil {
		return err
	}
	if r.conn = conn; conn != nil {
		r.safetyOpts.Host = conn // made on the runner, kept on the host
	}
	target, err := newLiveDB(a, r.safetyOpts)
	if err != nil {
		return err
	}
	r.target = target
	r.safetyOpts.Stack = r.stack() // under its lock: throwaway containers carry it
	r.Defer(func() { _ = target.Close() })
	if r.file, r.local, err = resolve(ctx, a, in, conn, target.Ext(), r.Defer); err != nil {
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

// serviceEngine is what a restore asks of the Docker Engine: the project's
// containers, to stop and start those of stop-services.
type serviceEngine interface {
	ProjectContainers(ctx context.Context, project string) ([]docker.Container, error)
	Stop(ctx context.Context, id string, grace time.Duration) error
	Start(ctx context.Context, id string) error
}

// findServices finds the running containers of stop-services.
func (r *run) findServices(ctx context.Context) error {
	project := r.in.ProjectName
	if project == "" {
		return action.Usagef("input stop-services: set project-name too (the compose project the services belong to)")
	}
	client, err := docker.New(r.a.Environ())
	if err != nil {
		return action.Failedf("%w", err)
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
	if r.sum, r.checks, err = r.target.Verify(r.local); err != nil {
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
	l, me, repaired, err := takeLock(ctx, r.a, r.in, r.conn, r.stack(), history.ActionRestore, filepath.Base(r.file))
	if err != nil {
		return err
	}
	r.lock, r.holder = l, me
	r.Defer(func() { _ = l.Release() })
	r.OnStep = func(step string) {
		r.holder.Step, r.holder.StepSince = step, time.Now()
		_ = r.lock.Update(r.holder)
	}
	r.done = append(r.done, repaired...)
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
	r.safety, r.safetyLocal = res.Path, res.Local
	r.Defer(res.Discard)
	r.done = append(r.done, fmt.Sprintf("safety backup %s (sha256 %s) in %s", res.Where, res.SHA256, time.Since(began).Round(10*time.Millisecond)))
	if len(r.stopped) > 0 {
		r.a.Logf("==> stop %s", names(r.stopped))
		// Start what was stopped, whatever happened: when the restore returns,
		// and, should a cancel cut it short, from the exit hooks — once.
		start := sync.OnceValue(r.startStopped)
		r.Defer(func() { _ = start() })
		defer func() {
			if err := start(); err != nil && failed == nil {
				failed = fmt.Errorf("restored, but %w", err)
			}
		}()
		// The lock file names what is stopped: a run after this one is
		// killed starts it again (repair).
		for _, c := range r.stopped {
			r.holder.Stopped = append(r.holder.Stopped, c.ID)
		}
		if err := r.lock.Update(r.holder); err != nil {
			return fmt.Errorf("writing what the restore stops into %s: %w; nothing was restored", r.lock.Path, err)
		}
		for _, c := range r.stopped {
			if err := r.client.Stop(ctx, c.ID, 10*time.Second); err != nil {
				return fmt.Errorf("stopping %s: %w; nothing was restored", c.Name, err)
			}
		}
		r.done = append(r.done, "stopped "+names(r.stopped))
	}
	r.a.Logf("==> restore %s into %s", filepath.Base(r.file), r.target.Source())
	began = time.Now()
	if !r.target.Swaps() {
		// Replayed in place: until it is whole, a later run must know the
		// database holds part of a backup.
		m := repair.Restoring{Backup: filepath.Base(r.file), Safety: r.safety, PutBack: r.putBack(), Since: time.Now(), JobURL: r.a.JobURL()}
		if err := r.markRestoring(ctx, m); err != nil {
			return fmt.Errorf("%w; nothing was restored", err)
		}
	}
	live, err := r.target.Restore(ctx, r.local)
	if err != nil {
		if r.target.Swaps() {
			r.live = live
			return fmt.Errorf("the restore failed (%w); %s", err, live)
		}
		if ctx.Err() != nil {
			// Cancelled half-way: putting the safety backup back would take
			// as long as the restore, far more than a runner gives a cancelled
			// job; the services run again, and the summary says how to put it
			// back.
			r.live = "NOT as it was: the restore was cancelled half-way and the database holds part of the backup; put the safety backup back: " + r.putBack()
			return fmt.Errorf("the restore was cancelled half-way (%w): the database holds part of %s; put the safety backup %s back with: %s", err, filepath.Base(r.file), r.safety, r.putBack())
		}
		r.a.Logf("    the restore failed (%v): putting the safety backup back", err)
		r.live = "NOT as it was: the restore failed half-way and putting the safety backup back failed too; restore " + r.safety + " by hand"
		if _, perr := r.target.Restore(context.WithoutCancel(ctx), r.safetyLocal); perr != nil {
			return fmt.Errorf("the restore failed (%w), and putting the safety backup %s back failed too (%v): restore it by hand", err, r.safety, perr)
		}
		r.live = "as it was: put back from the safety backup " + r.safety
		r.doneRestoring()
		return fmt.Errorf("the restore failed (%w); the database was put back from the safety backup %s", err, r.safety)
	}
	r.doneRestoring()
	r.live = cmp.Or(live, "holds the restored backup")
	took := time.Since(began).Round(10 * time.Millisecond)
	r.a.Logf("    restored in %s", took)
	r.done = append(r.done, fmt.Sprintf("restored %s in %s", r.file, took))
	r.after, _ = r.target.Counts(ctx)
	return nil
}

// markRestoring writes the mark of a database replayed into in place, beside
// the lock: on the Docker host with docker-host.
func (r *run) markRestoring(ctx context.Context, m repair.Restoring) error {
	if r.conn != nil {
		return r.conn.WriteFile(ctx, repair.RestoringPath(r.lock.Path), m.Bytes())
	}
	return repair.MarkRestoring(r.lock.Path, m)
}

// doneRestoring removes the mark of a database replayed into in place: it
// holds a whole backup again.
func (r *run) doneRestoring() {
	var err error
	if r.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = r.conn.RemoveFile(ctx, repair.RestoringPath(r.lock.Path))
	} else {
		err = repair.DoneRestoring(r.lock.Path)
	}
	if err != nil {
		r.a.Warningf("%v", err)
	}
}

// startStopped starts the services the restore stopped, on a deadline of its
// own (the restore's context may be cancelled).
func (r *run) startStopped() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []string
	for _, c := range r.stopped {
		if err := r.client.Start(ctx, c.ID); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", c.Name, err))
		}
	}
	if len(errs) > 0 {
		r.a.Warningf("starting the services again: %s", strings.Join(errs, "; "))
		return fmt.Errorf("the stopped services did not all start again: %s", strings.Join(errs, "; "))
	}
	r.a.Logf("    started %s again", names(r.stopped))
	r.done = append(r.done, "started "+names(r.stopped)+" again")
	return nil
}

// putBack is the command that restores the safety backup, for a person.
func (r *run) putBack() string {
	in := r.in
	argv := []string{"deploykit", "restore", "--confirm", "RESTORE", "--file", r.safety, "--dir", cmp.Or(in.SafetyDir, in.Dir), "--engine", in.Engine}
	secrets := "" // given from the environment, never written out
	if r.conn != nil {
		argv = append(argv, "--docker-host", in.Remote.Host)
		secrets += ` --ssh-key "$DEPLOY_SSH_KEY" --ssh-known-hosts "$DEPLOY_KNOWN_HOSTS"`
	}
	switch {
	case in.Container != "":
		argv = append(argv, "--container", in.Container)
	case in.SwarmService != "":
		argv = append(argv, "--swarm-service", in.SwarmService)
	case in.DatabaseURL != "":
		secrets += ` --database-url "$DATABASE_URL"`
	case in.SQLitePath != "":
		argv = append(argv, "--sqlite-path", in.SQLitePath)
	}
	if in.DBPassword != "" {
		secrets += ` --db-password "$DB_PASSWORD"`
	}
	if in.ProjectName != "" {
		argv = append(argv, "--project-name", in.ProjectName)
	}
	if len(in.StopServices) > 0 {
		argv = append(argv, "--stop-services", strings.Join(in.StopServices, "\n"))
	}
	return command.Join(argv) + secrets
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

// resolve finds the backup the file input names and returns it where it is
// kept and on this machine: an offsite copy (s3://…, or latest with
// offsite-url), downloaded into dir — in a dry run, which changes nothing on
// disk, into a directory of its own that cleanup removes; with docker-host, a
// file (or latest in dir) on the Docker host, downloaded with its .sha256
// into a directory of the runner's that cleanup removes; else see source. A
// name with control characters is refused.
func resolve(ctx context.Context, a *action.Context, in Options, conn *remote.Conn, ext string, cleanup func(func())) (kept, local string, err error) {
	file := in.File
	tempDir := func(what string) (string, error) {
		tmp, err := os.MkdirTemp(a.TempDir(), "deploykit-"+what+"-")
		if err != nil {
			return "", action.Failedf("%w", err)
		}
		cleanup(func() { os.RemoveAll(tmp) })
		return tmp, nil
	}
	if strings.HasPrefix(file, "s3://") || (file == "latest" && in.Offsite.URL != "") {
		dir := in.Dir
		if in.DryRun || conn != nil { // dir is the host's: the copy is the runner's
			if dir, err = tempDir("offsite"); err != nil {
				return "", "", err
			}
		}
		got, err := backup.FetchOffsite(ctx, a, in.Offsite, file, in.Prefix, ext, dir)
		return got, got, err
	}
	if action.HasControl(file) {
		return "", "", action.Usagef("input file: %s: a backup whose name holds control characters is refused (rename it)", action.Name(file))
	}
	if conn != nil {
		kept := file
		if file == "latest" {
			if kept, err = backup.LatestOnHost(ctx, conn, in.Dir, in.Prefix, ext); err != nil {
				return "", "", action.Usagef("input file: %v", err)
			}
		} else if !path.IsAbs(file) {
			return "", "", action.Usagef("input file: %s: with docker-host, the backup's absolute path on the Docker host %s (or latest, in dir there)", action.Name(file), conn)
		}
		dir, err := tempDir("restore")
		if err != nil {
			return "", "", err
		}
		if local, err = backup.FetchFromHost(ctx, conn, kept, dir); err != nil {
			return "", "", action.Usagef("input file: %v", err)
		}
		return kept, local, nil
	}
	p, err := source(file, in.Dir, in.Prefix, ext)
	if err != nil {
		return "", "", action.Usagef("input file: %v", err)
	}
	if action.HasControl(p) {
		return "", "", action.Usagef("input file: %s: a backup whose name holds control characters is refused (rename it)", action.Name(p))
	}
	return p, p, nil
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
