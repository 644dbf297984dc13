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

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/compose"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/schema"
	"github.com/org/deploy-kit/internal/secretfile"
	"github.com/org/deploy-kit/internal/verify"
)

var drillUnsafe = regexp.MustCompile(`[^a-z0-9_-]+`)

// runDrill is `deploykit restore --drill`: the backup restored into a copy of
// the app's stack, the app started on it and checked, everything removed.
func runDrill(ctx context.Context, a *action.Context, in Options) (failed error) {
	engine := in.Engine
	if engine == "sqlite" {
		return action.Usagef("input drill: a drill restores into the stack's database service; engine sqlite has none (restore the file into a copy instead)")
	}
	if in.HealthURL != "" && in.Drill.AppPort == 0 {
		return action.Usagef("input app-port: set it for the drill's health check (the copy of the stack publishes no port)")
	}
	ws := a.Workspace()
	file := in.Drill.ComposeFile
	if !filepath.IsAbs(file) {
		file = filepath.Join(ws, file)
	}
	if _, err := os.Stat(file); err != nil {
		return action.Usagef("input compose-file: %s does not exist", in.Drill.ComposeFile)
	}
	vars, err := secretfile.FromJob(a, in.Drill.SecretPrefix)
	if err != nil {
		return err
	}
	env := append([]string(nil), a.Environ()...)
	for _, v := range vars {
		env = append(env, v.Key+"="+v.Value)
	}
	model, err := compose.Load(ctx, file, in.ProjectName, env, compose.DotEnv(file))
	if err != nil {
		return action.Usagef("compose file %s is not valid: %v", file, err)
	}
	dbService, appService := in.Drill.DBService, in.Drill.AppService
	for _, svc := range []string{dbService, appService} {
		s, err := model.GetService(svc)
		if err != nil {
			return action.Usagef("service %s is not in %s (services: %s)", svc, file, strings.Join(model.ServiceNames(), ", "))
		}
		if s.ContainerName != "" {
			return action.Usagef("service %s has container_name %s: a copy of the stack cannot run beside it", svc, s.ContainerName)
		}
	}
	var newest uint
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
		newest = schema.Newest(list)
	}
	project := drillUnsafe.ReplaceAllString(strings.ToLower(model.Name+"-drill-"+time.Now().UTC().Format("20060102t150405")), "-")
	dbContainer := project + "-" + dbService + "-1"
	target, err := backup.NewTarget(a, backup.Options{Engine: engine, Container: dbContainer, DBUser: in.DBUser, DBPassword: in.DBPassword, Dir: in.Dir})
	if err != nil {
		return err
	}
	defer target.Close()
	source, err := resolve(ctx, in, target.Ext())
	if err != nil {
		return err
	}
	a.Logf("==> verify %s", source)
	sum, checks, err := target.Verify(source)
	if err != nil {
		return action.Usagef("the backup cannot be restored: %v", err)
	}
	for _, c := range checks {
		a.Logf("    %s", c)
	}
	if in.DryRun {
		a.Logf("dry run: would start a copy of %s as project %s, restore %s into %s, start %s and check it, then remove the copy", model.Name, project, source, dbService, appService)
		return nil
	}

	// The copy: the same compose file, its own project (so its own networks and
	// volumes), without published ports.
	override := filepath.Join(a.TempDir(), "deploykit-drill-"+project+".yaml")
	var b strings.Builder
	b.WriteString("services:\n")
	for _, name := range model.ServiceNames() {
		fmt.Fprintf(&b, "  %s:\n    ports: !reset []\n", name)
	}
	if err := os.WriteFile(override, []byte(b.String()), 0o600); err != nil {
		return action.Failedf("%v", err)
	}
	defer os.Remove(override)
	p := compose.Project{File: file, Overrides: []string{override}, Name: project, Env: a.Environ(), EnvFiles: compose.DotEnv(file)}
	if len(vars) > 0 {
		f, err := secretfile.WriteForJob(a, vars)
		if err != nil {
			return err
		}
		defer f.Remove()
		p.EnvFiles = append(p.EnvFiles, f.Path)
	}
	run := command.For(a, false)
	client, err := docker.New(a.Environ())
	if err != nil {
		return action.Failedf("%v", err)
	}
	defer client.Close()
	start := time.Now()
	var steps []string
	defer func() {
		a.Logf("==> remove the copy")
		if err := run.Run(context.WithoutCancel(ctx), p.Down()); err != nil {
			a.Warningf("removing the drill's copy %s: %v (docker compose -p %s down --volumes)", project, err, project)
		}
		status := history.StatusSuccess
		if failed != nil {
			status = history.StatusFailed
		}
		entry := history.Entry{Time: time.Now().UTC(), Stack: model.Name, Env: in.Environment, Action: history.ActionRestore,
			Version: filepath.Base(source), Status: status, Notes: fmt.Sprintf("drill; sha256=%s; job %s", sum, a.JobURL())}
		if err := (history.File{Path: in.HistoryFile}).Append(entry); err != nil {
			a.Warningf("%v", err)
		}
		if err := a.SetOutputs(action.Out{Name: "file", Value: source}, action.Out{Name: "sha256", Value: sum}); err != nil {
			a.Warningf("%v", err)
		}
		var s strings.Builder
		fmt.Fprintf(&s, "### deploykit restore drill: %s — %s\n\n", status, filepath.Base(source))
		if failed != nil {
			fmt.Fprintf(&s, "**%s**\n\n", action.Cell(failed.Error()))
		}
		fmt.Fprintf(&s, "A copy of %s (project %s, removed after) took %s.\n\n", model.Name, project, time.Since(start).Round(time.Second))
		for _, c := range checks {
			fmt.Fprintf(&s, "- %s\n", action.Cell(c))
		}
		for _, st := range steps {
			fmt.Fprintf(&s, "- %s\n", action.Cell(st))
		}
		if err := a.Summary(s.String()); err != nil {
			a.Warningf("writing the job summary: %v", err)
		}
		if failed != nil {
			failed = action.Failedf("restore drill: %w", failed)
		}
	}()

	wait := 2 * time.Minute
	a.Logf("==> start %s of a copy of %s (project %s)", dbService, model.Name, project)
	if err := run.Run(ctx, p.Up(compose.UpOptions{Services: []string{dbService}, PullMissing: true, WaitTimeout: wait})); err != nil {
		return fmt.Errorf("starting the copy's %s: %w", dbService, err)
	}
	a.Logf("==> restore %s into %s", filepath.Base(source), dbContainer)
	if err := target.Restore(ctx, source); err != nil {
		return fmt.Errorf("restoring into the copy: %w", err)
	}
	steps = append(steps, "restored into the copy's "+dbService)
	a.Logf("==> start the copy")
	if err := run.Run(ctx, p.Up(compose.UpOptions{PullMissing: true, WaitTimeout: wait})); err != nil {
		return fmt.Errorf("starting the copy on the restored data: %w", err)
	}
	steps = append(steps, "the copy started on the restored data")
	if health := in.HealthURL; health != "" {
		u, err := url.Parse(health)
		if err != nil {
			return err
		}
		all, err := client.ProjectContainers(ctx, project)
		if err != nil {
			return err
		}
		ip := ""
		for _, c := range all {
			if c.Service == appService && len(c.IPs) > 0 {
				ip = c.IPs[0]
			}
		}
		if ip == "" {
			return fmt.Errorf("the copy's %s has no address to check", appService)
		}
		direct := "http://" + net.JoinHostPort(ip, strconv.Itoa(in.Drill.AppPort)) + u.RequestURI()
		b := verify.Backoff{Attempts: in.HealthAttempts, InitialDelay: in.HealthInitialDelay, MaxDelay: in.HealthMaxDelay}
		if err := verify.Health(ctx, direct, b, func(f string, args ...any) { a.Logf("    "+f, args...) }); err != nil {
			return fmt.Errorf("the app does not get healthy on the restored data: %w", err)
		}
		steps = append(steps, "the app answers "+u.RequestURI()+" on the restored data")
	}
	if in.Drill.MigrationsPath != "" {
		version, err := target.MigrationVersion(ctx, in.Drill.Database)
		if err != nil {
			return fmt.Errorf("reading the restored database's migration version: %w", err)
		}
		if version != strconv.FormatUint(uint64(newest), 10) {
			return fmt.Errorf("the restored database is at migration %s, but the newest migration in %s is %d", version, in.Drill.MigrationsPath, newest)
		}
		steps = append(steps, fmt.Sprintf("the restored database is at migration %d, the newest in %s", newest, in.Drill.MigrationsPath))
	}
	return nil
}
