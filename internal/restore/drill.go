package restore

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/compose"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/remote"
	"github.com/org/deploy-kit/internal/schema"
	"github.com/org/deploy-kit/internal/secretfile"
	"github.com/org/deploy-kit/internal/stackcopy"
	"github.com/org/deploy-kit/internal/steps"
	"github.com/org/deploy-kit/internal/verify"
)

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
	target                liveDB
	conn                  *remote.Conn // the Docker host over SSH (docker-host), or nil
	endConn               func()       // ends conn after the report (the history is there)
	source, sum           string
	local                 string // source on this machine: source, or its downloaded copy
	checks                []string
	plan                  *stackcopy.Copy // how the copy is isolated
	copy                  compose.Project
	exec                  command.Executor
	client                copyEngine
	started               time.Time // the copy was begun: the history and summary tell
	logs                  string    // a failed drill: the copy's logs, read before it went
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
	defer func() {
		if d.endConn != nil {
			d.endConn()
		}
	}()
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
	if failed != nil {
		d.logs = d.copyLogs(ctx)
	}
	d.Cleanup() // the copy goes before the report
	return d.report(failed)
}

// copyLogs is, for a failed drill, the last log lines of the copy's
// containers that are not running healthy, and the app's whatever its state,
// each with its healthcheck's last answer: why the app failed, read before the
// copy goes.
func (d *drill) copyLogs(ctx context.Context) string {
	if d.client == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	all, err := d.client.ProjectContainers(ctx, d.project)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, c := range all {
		healthy := c.State == "running" && (c.Health == "" || c.Health == "healthy")
		if healthy && c.Service != d.appService {
			continue
		}
		state := c.State
		if c.Health != "" {
			state += ", " + c.Health
		}
		logs, err := d.client.Logs(ctx, c.ID, drillLogLines)
		if err != nil {
			logs = "(could not read the logs: " + err.Error() + ")"
		} else if strings.TrimSpace(logs) == "" {
			logs = "(no output)"
		}
		fmt.Fprintf(&b, "\nLast %d log lines of the copy's %s (%s, %s):\n\n```\n%s\n```\n", drillLogLines, c.Service, c.Image, state,
			strings.ReplaceAll(strings.TrimRight(logs, "\n"), "```", "'''"))
		if c.HealthOutput != "" && !healthy {
			fmt.Fprintf(&b, "\nIts healthcheck's last answer: %s\n", action.Cell(c.HealthOutput))
		}
	}
	return b.String()
}

// copyEngine is what a drill asks of the Docker Engine once its copy runs:
// the copy's containers and, for a failed drill, their logs.
type copyEngine interface {
	ProjectContainers(ctx context.Context, project string) ([]docker.Container, error)
	Logs(ctx context.Context, id string, lines int) (string, error)
}

// drillLogLines is how much of a failing container's log a drill's summary shows.
const drillLogLines = 30

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
	// The copy shares nothing with production (stackcopy): what cannot be
	// isolated is refused here, before anything starts.
	if d.plan, err = stackcopy.New(d.model, stackcopy.Drill, "drill", in.Copy, nil); err != nil {
		return err
	}
	prod := compose.Project{File: d.file, Name: d.model.Name, Env: a.Environ(), EnvFiles: compose.DotEnv(d.file)}
	if err := d.plan.Check(ctx, prod, env); err != nil {
		return action.Failedf("%w", err)
	}
	d.project = d.plan.Name
	return nil
}

func drillSourceStep(ctx context.Context, d *drill) error {
	in := d.in
	conn, err := connect(ctx, d.a, in, func(end func()) { d.endConn = end })
	if err != nil {
		return err
	}
	d.conn = conn
	target, err := newLiveDB(d.a, backup.Options{Engine: in.Engine, Container: d.project + "-" + d.dbService + "-1", DBUser: in.DBUser, DBPassword: in.DBPassword, Dir: in.Dir})
	if err != nil {
		return err
	}
	d.target = target
	d.Defer(func() { _ = target.Close() })
	if d.source, d.local, err = resolve(ctx, d.a, in, conn, target.Ext(), d.Defer); err != nil {
		return err
	}
	d.Did("%s", d.source)
	return nil
}

func drillVerifyStep(_ context.Context, d *drill) error {
	var err error
	if d.sum, d.checks, err = d.target.Verify(d.local); err != nil {
		return action.Usagef("the backup cannot be restored: %v", err)
	}
	d.Did("%s", strings.Join(d.checks, "; "))
	return nil
}

func drillLockStep(ctx context.Context, d *drill) error {
	l, me, repaired, err := takeLock(ctx, d.a, d.in, d.conn, d.model.Name, history.ActionDrill, filepath.Base(d.source))
	if err != nil {
		return err
	}
	d.Defer(func() { _ = l.Release() })
	d.OnStep = func(step string) {
		me.Step, me.StepSince = step, time.Now()
		_ = l.Update(me)
	}
	d.done = append(d.done, repaired...)
	d.Did("took %s", l.Path)
	return nil
}

// drillCopyStep prepares the copy: the same compose file, its own project,
// networks and volumes (stackcopy), without published ports; removed at the
// end. (A copy a killed run left went when the lock was taken: repair.)
func drillCopyStep(ctx context.Context, d *drill) error {
	a := d.a
	d.started = time.Now()
	d.exec = command.For(a, false)
	client, err := docker.New(a.Environ())
	if err != nil {
		return action.Failedf("%w", err)
	}
	d.client = client
	d.Defer(func() { _ = client.Close() })
	prod := compose.Project{File: d.file, Name: d.model.Name, Env: a.Environ(), EnvFiles: compose.DotEnv(d.file)}
	cp, remove, err := d.plan.Project(prod, a.TempDir())
	if err != nil {
		return action.Failedf("%w", err)
	}
	d.Defer(remove)
	d.copy = cp
	if len(d.vars) > 0 {
		f, err := secretfile.WriteForJob(a, d.vars)
		if err != nil {
			return err
		}
		d.Defer(func() { _ = f.Remove() })
		d.copy.EnvFiles = append(d.copy.EnvFiles, f.Path)
	}
	d.Defer(func() {
		if _, cancelled := a.CancelDeadline(); cancelled {
			// A cancelled job has seconds: the next run removes the copy.
			a.Logf("the copy %s is left for the next run to remove", d.project)
			return
		}
		a.Logf("==> remove the copy")
		if err := d.exec.Run(context.Background(), d.copy.Down()); err != nil {
			a.Warningf("removing the drill's copy %s: %v (docker compose -p %s down --volumes)", d.project, err, d.project)
		}
	})
	d.Did("project %s: %s", d.project, d.plan.Summary())
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
	if _, err := d.target.Restore(ctx, d.local); err != nil {
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
	if d.conn != nil {
		ctx = verify.From(ctx, d.conn.DialContext) // the copy's network is the host's
	}
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
	// A drill is recorded as one: it never touched production, so it is no
	// failed restore of it.
	entry := history.Entry{Time: time.Now().UTC(), Stack: d.model.Name, Env: in.Environment, Action: history.ActionDrill,
		Version: filepath.Base(d.source), Status: status, Notes: fmt.Sprintf("copy %s; sha256=%s; job %s", d.project, d.sum, a.JobURL())}
	if err := historyFile(in, d.conn).Append(entry); err != nil {
		a.Warningf("%v", err)
	}
	if err := a.SetOutputs(action.Out{Name: "file", Value: d.source}, action.Out{Name: "sha256", Value: d.sum}); err != nil {
		a.Warningf("%v", err)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "### deploykit restore drill: %s — %s\n\n", status, filepath.Base(d.source))
	if failed != nil {
		fmt.Fprintf(&s, "**%s**\n\n", action.Cell(failed.Error()))
		if d.logs != "" {
			s.WriteString(strings.TrimLeft(d.logs, "\n") + "\n")
		}
	}
	fmt.Fprintf(&s, "A copy of %s (project %s, removed after) took %s.\n\n", d.model.Name, d.project, time.Since(d.started).Round(time.Second))
	for _, c := range d.checks {
		fmt.Fprintf(&s, "- %s\n", action.Cell(c))
	}
	for _, st := range d.done {
		fmt.Fprintf(&s, "- %s\n", action.Cell(st))
	}
	s.WriteString("\n" + steps.Table(d.Results))
	if d.conn != nil {
		s.WriteString("\nDocker host: " + d.conn.Stats() + "\n")
	}
	if err := a.Summary(s.String()); err != nil {
		a.Warningf("writing the job summary: %v", err)
	}
	if failed != nil {
		return action.Failedf("restore drill: %w", failed)
	}
	return nil
}
