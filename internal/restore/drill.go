package restore

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/compose"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/schema"
	"github.com/org/deploy-kit/internal/secretfile"
	"github.com/org/deploy-kit/internal/steps"
	"github.com/org/deploy-kit/internal/verify"
)

var drillUnsafe = regexp.MustCompile(`[^a-z0-9_-]+`)

// drill is one restore drill: the backup into a copy of the app's stack.
type drill struct {
	a  *action.Context
	in Options
	steps.Runner[*drill]

	file                  string // the compose file, absolute
	vars                  []secretfile.Var
	model                 *types.Project
	dbService, appService string
	newest                uint // the newest migration in migrations-path
	project               string
	target                *backup.Target
	source, sum           string
	checks                []string
	copy                  compose.Project
	exec                  command.Executor
	client                docker.Engine
	started               time.Time // the copy was begun: the history and summary tell
	done                  []string
}

// DrillPipeline is the drill, top to bottom (ARCHITECTURE.md, "Each action's
// steps"): every input and the backup are checked before the copy starts (exit
// 2); a dry run stops after verify; the copy is removed whatever happened.
var DrillPipeline = []steps.Step[*drill]{
	steps.Func("inputs", drillInputsStep),     // engine, app-port, the compose model, its services, the migrations
	steps.Func("source", drillSourceStep),     // the backup, and the copy's database as the restore target
	steps.Func("verify", drillVerifyStep),     // checksum, whole stream, a complete dump of the engine's kind
	steps.Func("lock", drillLockStep),         // the stack's deploy lock, as a restore takes it
	steps.Func("copy", drillCopyStep),         // the stack under its own project, no published ports, its env file
	steps.Func("database", drillDatabaseStep), // the copy's database service, healthy
	steps.Func("restore", drillRestoreStep),   // the backup into it
	steps.Func("app", drillAppStep),           // the whole copy on the restored data
	steps.Func("health", drillHealthStep),     // health-url's path at the app's own address
	steps.Func("migrations", drillSchemaStep), // the restored database at the repository's newest migration
}

// runDrill is `deploykit restore --drill`: the backup restored into a copy of
// the app's stack, the app started on it and checked, everything removed.
func runDrill(ctx context.Context, a *action.Context, in Options) error {
	d := &drill{a: a, in: in}
	d.Runner = steps.Runner[*drill]{Logf: a.Logf, OnExit: a.OnExit}
	defer d.Cleanup()
	_, failed := d.Run(ctx, DrillPipeline, d, func() string {
		if in.DryRun && d.sum != "" {
			return "dry run"
		}
		return ""
	})
	if d.started.IsZero() { // refused, or a dry run
		if failed == nil && in.DryRun {
			a.Logf("dry run: would start a copy of %s as project %s, restore %s into %s, start %s and check it, then remove the copy", d.model.Name, d.project, d.source, d.dbService, d.appService)
		}
		return failed
	}
	d.Cleanup() // the copy goes before the report
	return d.report(failed)
}

func drillInputsStep(ctx context.Context, d *drill) error {
	in, a := d.in, d.a
	if in.Engine == "sqlite" {
		return action.Usagef("input drill: a drill restores into the stack's database service; engine sqlite has none (restore the file into a copy instead)")
	}
	if in.HealthURL != "" && in.Drill.AppPort == 0 {
		return action.Usagef("input app-port: set it for the drill's health check (the copy of the stack publishes no port)")
	}
	ws := a.Workspace()
	d.file = in.Drill.ComposeFile
	if !filepath.IsAbs(d.file) {
		d.file = filepath.Join(ws, d.file)
	}
	if _, err := os.Stat(d.file); err != nil {
		return action.Usagef("input compose-file: %s does not exist", in.Drill.ComposeFile)
	}
	vars, err := secretfile.FromJob(a, in.Drill.SecretPrefix)
	if err != nil {
		return err
	}
	d.vars = vars
	env := append([]string(nil), a.Environ()...)
	for _, v := range vars {
		env = append(env, v.Key+"="+v.Value)
	}
	if d.model, err = compose.Load(ctx, d.file, in.ProjectName, env, compose.DotEnv(d.file)); err != nil {
		return action.Usagef("compose file %s is not valid: %v", d.file, err)
	}
	d.dbService, d.appService = in.Drill.DBService, in.Drill.AppService
	for _, svc := range []string{d.dbService, d.appService} {
		s, err := d.model.GetService(svc)
		if err != nil {
			return action.Usagef("service %s is not in %s (services: %s)", svc, d.file, strings.Join(d.model.ServiceNames(), ", "))
		}
		if s.ContainerName != "" {
			return action.Usagef("service %s has container_name %s: a copy of the stack cannot run beside it", svc, s.ContainerName)
		}
	}
	if dir := in.Drill.MigrationsPath; dir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(ws, dir)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return action.Usagef("input migrations-path: %s is not a directory", in.Drill.MigrationsPath)
		}
		list, err := schema.List(dir)
		if err != nil {
			return action.Usagef("input migrations-path: %v", err)
		}
		if len(list) == 0 {
			return action.Usagef("input migrations-path: %s holds no migrations", in.Drill.MigrationsPath)
		}
		d.newest = schema.Newest(list)
	}
	d.project = drillUnsafe.ReplaceAllString(strings.ToLower(d.model.Name+"-drill-"+time.Now().UTC().Format("20060102t150405")), "-")
	return nil
}

func drillSourceStep(ctx context.Context, d *drill) error {
	in := d.in
	target, err := backup.NewTarget(d.a, backup.Options{Engine: in.Engine, Container: d.project + "-" + d.dbService + "-1", DBUser: in.DBUser, DBPassword: in.DBPassword, Dir: in.Dir})
	if err != nil {
		return err
	}
	d.target = target
	d.Defer(func() { _ = target.Close() })
	if d.source, err = resolve(ctx, d.a, in, target.Ext(), d.Defer); err != nil {
		return err
	}
	d.Did("%s", d.source)
	return nil
}

func drillVerifyStep(_ context.Context, d *drill) error {
	var err error
	if d.sum, d.checks, err = d.target.Verify(d.source); err != nil {
		return action.Usagef("the backup cannot be restored: %v", err)
	}
	d.Did("%s", strings.Join(d.checks, "; "))
	return nil
}

func drillLockStep(ctx context.Context, d *drill) error {
	l, err := takeLock(ctx, d.a, d.in.HistoryFile, d.model.Name, d.in.LockTimeout, "drilling a restore of "+filepath.Base(d.source))
	if err != nil {
		return err
	}
	d.Defer(func() { _ = l.Release() })
	d.Did("took %s", l.Path)
	return nil
}

// drillCopyStep prepares the copy: the same compose file, its own project (so
// its own networks and volumes), without published ports and on none of
// production's networks (a proxy there could send users to the copy); removed
// at the end.
func drillCopyStep(_ context.Context, d *drill) error {
	a := d.a
	d.started = time.Now()
	override := filepath.Join(a.TempDir(), "deploykit-drill-"+d.project+".yaml")
	if err := os.WriteFile(override, []byte(deploy.CopyOverride(d.model.ServiceNames())), 0o600); err != nil {
		return action.Failedf("%v", err)
	}
	d.Defer(func() { os.Remove(override) })
	d.copy = compose.Project{File: d.file, Overrides: []string{override}, Name: d.project, Env: a.Environ(), EnvFiles: compose.DotEnv(d.file)}
	if len(d.vars) > 0 {
		f, err := secretfile.WriteForJob(a, d.vars)
		if err != nil {
			return err
		}
		d.Defer(func() { _ = f.Remove() })
		d.copy.EnvFiles = append(d.copy.EnvFiles, f.Path)
	}
	d.exec = command.For(a, false)
	client, err := docker.New(a.Environ())
	if err != nil {
		return action.Failedf("%v", err)
	}
	d.client = client
	d.Defer(func() { _ = client.Close() })
	d.Defer(func() {
		a.Logf("==> remove the copy")
		if err := d.exec.Run(context.Background(), d.copy.Down()); err != nil {
			a.Warningf("removing the drill's copy %s: %v (docker compose -p %s down --volumes)", d.project, err, d.project)
		}
	})
	d.Did("project %s", d.project)
	return nil
}

const drillWait = 2 * time.Minute

func drillDatabaseStep(ctx context.Context, d *drill) error {
	if err := d.exec.Run(ctx, d.copy.Up(compose.UpOptions{Services: []string{d.dbService}, PullMissing: true, WaitTimeout: drillWait})); err != nil {
		return fmt.Errorf("starting the copy's %s: %w", d.dbService, err)
	}
	return nil
}

func drillRestoreStep(ctx context.Context, d *drill) error {
	if _, err := d.target.Restore(ctx, d.source); err != nil {
		return fmt.Errorf("restoring into the copy: %w", err)
	}
	d.done = append(d.done, "restored into the copy's "+d.dbService)
	return nil
}

func drillAppStep(ctx context.Context, d *drill) error {
	if err := d.exec.Run(ctx, d.copy.Up(compose.UpOptions{PullMissing: true, WaitTimeout: drillWait})); err != nil {
		return fmt.Errorf("starting the copy on the restored data: %w", err)
	}
	d.done = append(d.done, "the copy started on the restored data")
	return nil
}

// drillHealthStep asks health-url's path of the app at its own address in the
// copy's network (the copy publishes no port).
func drillHealthStep(ctx context.Context, d *drill) error {
	in := d.in
	if in.HealthURL == "" {
		return steps.Skip("no health-url")
	}
	u, err := url.Parse(in.HealthURL)
	if err != nil {
		return err
	}
	all, err := d.client.ProjectContainers(ctx, d.project)
	if err != nil {
		return err
	}
	ip := ""
	for _, c := range all {
		if c.Service == d.appService && len(c.IPs) > 0 {
			ip = c.IPs[0]
		}
	}
	if ip == "" {
		return fmt.Errorf("the copy's %s has no address to check", d.appService)
	}
	direct := "http://" + net.JoinHostPort(ip, strconv.Itoa(in.Drill.AppPort)) + u.RequestURI()
	b := verify.Backoff{Attempts: in.HealthAttempts, InitialDelay: in.HealthInitialDelay, MaxDelay: in.HealthMaxDelay}
	if err := verify.Health(ctx, direct, b, func(f string, args ...any) { d.a.Logf("    "+f, args...) }); err != nil {
		return fmt.Errorf("the app does not get healthy on the restored data: %w", err)
	}
	d.done = append(d.done, "the app answers "+u.RequestURI()+" on the restored data")
	return nil
}

func drillSchemaStep(ctx context.Context, d *drill) error {
	in := d.in
	if in.Drill.MigrationsPath == "" {
		return steps.Skip("no migrations-path")
	}
	version, err := d.target.MigrationVersion(ctx, in.Drill.Database)
	if err != nil {
		return fmt.Errorf("reading the restored database's migration version: %w", err)
	}
	if version != strconv.FormatUint(uint64(d.newest), 10) {
		return fmt.Errorf("the restored database is at migration %s, but the newest migration in %s is %d", version, in.Drill.MigrationsPath, d.newest)
	}
	d.done = append(d.done, fmt.Sprintf("the restored database is at migration %d, the newest in %s", d.newest, in.Drill.MigrationsPath))
	return nil
}

// report records the drill in the history and writes outputs and summary.
func (d *drill) report(failed error) error {
	a, in := d.a, d.in
	status := history.StatusSuccess
	if failed != nil {
		status = history.StatusFailed
	}
	entry := history.Entry{Time: time.Now().UTC(), Stack: d.model.Name, Env: in.Environment, Action: history.ActionRestore,
		Version: filepath.Base(d.source), Status: status, Notes: fmt.Sprintf("drill; sha256=%s; job %s", d.sum, a.JobURL())}
	if err := (history.File{Path: in.HistoryFile}).Append(entry); err != nil {
		a.Warningf("%v", err)
	}
	if err := a.SetOutputs(action.Out{Name: "file", Value: d.source}, action.Out{Name: "sha256", Value: d.sum}); err != nil {
		a.Warningf("%v", err)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "### deploykit restore drill: %s — %s\n\n", status, filepath.Base(d.source))
	if failed != nil {
		fmt.Fprintf(&s, "**%s**\n\n", action.Cell(failed.Error()))
	}
	fmt.Fprintf(&s, "A copy of %s (project %s, removed after) took %s.\n\n", d.model.Name, d.project, time.Since(d.started).Round(time.Second))
	for _, c := range d.checks {
		fmt.Fprintf(&s, "- %s\n", action.Cell(c))
	}
	for _, st := range d.done {
		fmt.Fprintf(&s, "- %s\n", action.Cell(st))
	}
	s.WriteString("\n" + steps.Table(d.Results))
	if err := a.Summary(s.String()); err != nil {
		a.Warningf("writing the job summary: %v", err)
	}
	if failed != nil {
		return action.Failedf("restore drill: %w", failed)
	}
	return nil
}
