package migrationsmoke

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/postgres" // postgres:// URLs
	_ "github.com/golang-migrate/migrate/v4/source/file"       // file:// directories

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/git"
	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/steps"
)

// applied is one migration run against the database.
type applied struct {
	Migration
	Took time.Duration
}

// job is one migration-smoke run.
type job struct {
	a    *action.Context
	o    Options
	exec command.Executor
	ws   string
	steps.Runner[*job]

	dir, rel string   // the migrations directory, absolute and as given
	smoke    []string // smoke SQL files
	r        *report  // from the files step on
	dbURL    string
	m        *migrate.Migrate
}

// Pipeline is migration-smoke, top to bottom (ARCHITECTURE.md, "Each action's
// steps"): bad input exits 2 before anything, the files are checked before any
// database exists, and a dry run stops after them.
var Pipeline = []steps.Step[*job]{
	steps.Func("input", inputStep),            // path, smoke-sql, schema-dump, sum-file, base-ref
	steps.Func("files", filesStep),            // golang-migrate's reading, versions against the base, sum file, lint
	steps.Func("database", databaseStep),      // a database nobody else uses: on database-url's server or in a container
	steps.Func("schema-dump", schemaDumpStep), // production's schema first
	steps.Func("migrate", migrateStep),        // every migration, one at a time, timed
	steps.Func("smoke", smokeStep),            // the smoke SQL
	steps.Func("down-up", downUpStep),         // the new migrations down and up again (check-down)
}

// Run is `deploykit migration-smoke`: check the migrations directory, then apply
// every migration to a fresh database (shaped like production when a schema dump
// is given), run the smoke SQL, and optionally run the new migrations down and up.
func Run(ctx context.Context, a *action.Context, o Options) error {
	start := time.Now()
	j := &job{a: a, o: o, exec: command.For(a, o.DryRun), ws: a.Workspace()}
	j.Runner = steps.Runner[*job]{Logf: a.Logf, OnExit: a.OnExit}
	defer j.Cleanup()
	_, err := j.Run(ctx, Pipeline, j, j.dryRunDone)
	if j.r == nil { // refused before the files were read: no report
		return err
	}
	j.r.start, j.r.steps = start, j.Results
	if err != nil {
		return j.r.fail(err)
	}
	return j.r.finish(nil)
}

// dryRunDone ends a dry run once the files were checked (the runner's stop).
func (j *job) dryRunDone() string {
	if j.o.DryRun && j.r != nil {
		return "dry run"
	}
	return ""
}

func inputStep(_ context.Context, j *job) error {
	in, ws := j.o, j.ws
	j.rel = filepath.Clean(in.Path)
	j.dir = filepath.Join(ws, j.rel)
	if filepath.IsAbs(j.rel) {
		j.dir = j.rel
	}
	if fi, err := os.Stat(j.dir); err != nil || !fi.IsDir() {
		return action.Usagef("input path: %s is not a directory of migrations in the workspace %s", in.Path, ws)
	}
	for _, pattern := range in.SmokeSQL {
		matches, err := filepath.Glob(filepath.Join(ws, pattern))
		if err != nil || len(matches) == 0 {
			return action.Usagef("input smoke-sql: %s matches no file", pattern)
		}
		j.smoke = append(j.smoke, matches...)
	}
	for _, f := range []struct{ name, path string }{{"schema-dump", in.SchemaDump}, {"sum-file", in.SumFile}} {
		if name, p := f.name, f.path; p != "" {
			if _, err := os.Stat(filepath.Join(ws, p)); err != nil {
				return action.Usagef("input %s: %s does not exist", name, p)
			}
		}
	}
	if in.BaseRef != "" && !git.ValidRef(in.BaseRef) {
		return action.Usagef("input base-ref: %q is not a branch, tag or commit name", in.BaseRef)
	}
	return nil
}

func filesStep(ctx context.Context, j *job) error {
	r, err := checkFiles(ctx, j.a, j.o, j.exec, j.dir, j.rel, j.o.BaseRef)
	if err != nil {
		return err
	}
	j.r = r
	if n := countErrors(r.findings); n > 0 {
		return fmt.Errorf("%d check(s) failed before any migration ran: %s", n, firstError(r.findings))
	}
	if j.o.DryRun {
		j.Did("dry run: would apply %d migration(s) from %s to a fresh database (%s)", len(r.list), j.rel, where(j.o))
	} else {
		j.Did("%d migration(s), %d finding(s)", len(r.list), len(r.findings))
	}
	return nil
}

func databaseStep(ctx context.Context, j *job) error {
	dbURL, cleanup, err := openDatabase(ctx, j.a, j.o)
	if err != nil {
		return err
	}
	j.Defer(cleanup)
	j.dbURL = dbURL
	j.Did("a fresh database %s", where(j.o))
	return nil
}

func schemaDumpStep(ctx context.Context, j *job) error {
	dump := j.o.SchemaDump
	if dump == "" {
		return steps.Skip("no schema-dump")
	}
	if err := loadDump(ctx, j.dbURL, filepath.Join(j.ws, dump)); err != nil {
		return fmt.Errorf("loading the schema dump %s: %w", dump, err)
	}
	return nil
}

func migrateStep(_ context.Context, j *job) error {
	m, err := migrate.New("file://"+j.dir, j.dbURL)
	if err != nil {
		return fmt.Errorf("opening the migrations: %w", err)
	}
	j.m = m
	j.Defer(func() { m.Close() })
	return j.r.apply(m, j.rel)
}

func smokeStep(ctx context.Context, j *job) error {
	if len(j.smoke) == 0 {
		return steps.Skip("no smoke-sql")
	}
	for _, f := range j.smoke {
		name := relTo(j.ws, f)
		if err := runSQL(ctx, j.dbURL, f); err != nil {
			return fmt.Errorf("smoke SQL %s failed: %w", name, err)
		}
		j.a.Logf("smoke SQL %s: ok", name)
	}
	return nil
}

func downUpStep(_ context.Context, j *job) error {
	if !j.o.CheckDown {
		return steps.Skip("check-down is false")
	}
	return j.r.downAndUp(j.m)
}

// checkFiles runs every check that needs no database: the directory as
// golang-migrate reads it, versions against the base branch, the sum file, lint
// and missing down migrations. Each finding is annotated on its file and line.
func checkFiles(ctx context.Context, a *action.Context, in Options, exec command.Executor, dir, rel, base string) (*report, error) {
	ws := a.Workspace()
	list, findings, err := scan(dir, rel)
	if err != nil {
		return nil, action.Failedf("reading %s: %v", rel, err)
	}
	fresh, baseNote := list, "no base-ref: every migration counts as new"
	if base == "" {
		base = defaultBase(ctx, a, exec)
	}
	if base != "" {
		files, err := exec.Output(ctx, git.ListTree(ws, base, rel))
		if err != nil {
			baseNote = fmt.Sprintf("base %s not found (%v): every migration counts as new", base, firstLine(err.Error()))
		} else {
			var f []Finding
			fresh, f = newSince(list, strings.Fields(files), rel)
			findings = append(findings, f...)
			baseNote = fmt.Sprintf("%d new since %s", len(fresh), base)
		}
	}
	if sum := in.SumFile; sum != "" {
		f, err := checkSums(filepath.Join(ws, sum), sum)
		if err != nil {
			return nil, action.Failedf("reading %s: %v", sum, err)
		}
		for i := range f {
			if f[i].Fix != "" && f[i].Rule == "deployed-migration-changed" {
				f[i].Fix += fmt.Sprintf("; after a deploy, regenerate the file with: (cd %s && sha256sum %s/*.sql > %s)", filepath.Dir(sum), relTo(filepath.Dir(sum), rel), filepath.Base(sum))
			}
		}
		findings = append(findings, f...)
	}
	lintMode := in.Lint
	if lintMode != "off" {
		for _, m := range fresh {
			f, err := lintFile(filepath.Join(dir, m.Up), filepath.Join(rel, m.Up))
			if err != nil {
				return nil, action.Failedf("%w", err)
			}
			for i := range f {
				f[i].Error = lintMode == "error"
			}
			findings = append(findings, f...)
		}
	}
	if in.CheckDown {
		for _, m := range fresh {
			if m.Down == "" {
				findings = append(findings, Finding{File: filepath.Join(rel, m.Up), Rule: "missing-down", Error: lintMode == "error",
					Message: fmt.Sprintf("migration %d has no down migration: it cannot be rolled back", m.Version), Fix: "add " + strings.TrimSuffix(m.Up, ".up.sql") + ".down.sql"})
			}
		}
	}
	r := &report{a: a, list: list, fresh: fresh, findings: findings, baseNote: baseNote}
	for _, f := range findings {
		a.Annotate(f.Error, f.File, f.Line, "%s%s", f.Message, fixSuffix(f.Fix))
	}
	return r, nil
}

// openDatabase creates the run's own database — on the database-url server, or in
// an ephemeral container — and returns its URL (masked) and how to get rid of it,
// also when the job is cancelled.
func openDatabase(ctx context.Context, a *action.Context, in Options) (string, func(), error) {
	var undo []func()
	cleanup := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	serverURL := in.DatabaseURL
	if serverURL == "" {
		client, err := docker.New(a.Environ())
		if err != nil {
			return "", nil, err
		}
		// Labels say what the container is and which job and process started
		// it; what a killed run left on this host goes first.
		labels := map[string]string{"org.deploykit.role": "migration-smoke", "org.deploykit.run-id": a.Getenv("GITHUB_RUN_ID"), docker.LabelOwner: docker.Owner()}
		if gone, err := client.RemoveDeadOwners(ctx, lock.Alive); err != nil {
			a.Warningf("%v", err)
		} else if !gone.Empty() {
			a.Logf("removed what a killed run left: %s", gone)
		}
		url, removeServer, err := ephemeralServer(ctx, client, in.PostgresImage, labels, a.Mask)
		if err != nil {
			client.Close()
			return "", nil, err
		}
		// Cancelling the run removes the server at once: that is what stops a
		// migration blocked in the database (golang-migrate's statements do not
		// see ctx), so the run returns and the exit hooks need not wait for it.
		remove := sync.OnceFunc(removeServer) // every caller waits until it is gone
		release := a.OnExit(remove)
		stop := context.AfterFunc(ctx, remove)
		undo = append(undo, func() { client.Close() }, func() { stop(); remove(); release() })
		serverURL = url
	}
	dbURL, dropDatabase, err := freshDatabase(ctx, serverURL)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	a.Mask(dbURL)
	drop := sync.OnceFunc(dropDatabase)
	release := a.OnExit(drop)
	stop := context.AfterFunc(ctx, drop)
	undo = append(undo, func() { stop(); drop(); release() })
	return dbURL, cleanup, nil
}

// report accumulates what the run did, for the outputs and the summary.
type report struct {
	a        *action.Context
	list     []Migration
	fresh    []Migration
	findings []Finding
	baseNote string
	start    time.Time
	applied  []applied
	version  string
	downUp   string
	steps    []steps.Result
}

// apply runs the pending migrations one at a time, so that each has its time and
// a failure names its file.
func (r *report) apply(m *migrate.Migrate, rel string) error {
	from, dirty, err := m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		from, err = 0, nil
	}
	if err != nil {
		return fmt.Errorf("reading the database's version: %w", err)
	}
	if dirty {
		return fmt.Errorf("the database (from the schema dump) is dirty at version %d: repair it before testing new migrations", from)
	}
	r.version = strconv.FormatUint(uint64(from), 10)
	for _, mig := range r.list {
		if mig.Version <= from {
			continue
		}
		t := time.Now()
		if err := m.Steps(1); err != nil {
			state := ""
			if v, dirty, verr := m.Version(); verr == nil && dirty {
				state = fmt.Sprintf("; the database is left dirty at version %d", v)
			}
			return fmt.Errorf("migration %s failed: %w%s", filepath.Join(rel, mig.Up), err, state)
		}
		r.applied = append(r.applied, applied{Migration: mig, Took: time.Since(t)})
		r.version = strconv.FormatUint(uint64(mig.Version), 10)
		r.a.Logf("applied %s (%s)", mig.Up, time.Since(t).Round(time.Millisecond))
	}
	return nil
}

// downAndUp runs the new migrations down, newest first, then up again.
func (r *report) downAndUp(m *migrate.Migrate) error {
	var done []string
	for i := len(r.fresh) - 1; i >= 0; i-- {
		mig := r.fresh[i]
		if mig.Down == "" {
			break
		}
		if err := m.Steps(-1); err != nil {
			return fmt.Errorf("down migration %s failed: %w", mig.Down, err)
		}
		done = append(done, mig.Down)
	}
	if len(done) > 0 {
		if err := m.Steps(len(done)); err != nil {
			return fmt.Errorf("up again after the down migrations failed: %w", err)
		}
	}
	r.downUp = fmt.Sprintf("%d new migration(s) went down and up again", len(done))
	r.a.Logf("%s", r.downUp)
	return nil
}

func (r *report) fail(err error) error {
	if ferr := r.finish(err); ferr != nil {
		return errors.Join(action.Failedf("%w", err), ferr)
	}
	return action.Failedf("%w", err)
}

// finish writes the outputs and the summary.
func (r *report) finish(runErr error) error {
	duration := time.Since(r.start).Round(time.Millisecond)
	var b strings.Builder
	status := "passed"
	if runErr != nil {
		status = "failed"
	}
	fmt.Fprintf(&b, "### deploykit migration-smoke: %s\n\n%d migration(s), %s; %d applied in %s.\n", status, len(r.list), r.baseNote, len(r.applied), duration)
	if len(r.applied) > 0 {
		b.WriteString("\n| migration | time |\n|---|---|\n")
		for _, m := range r.applied {
			fmt.Fprintf(&b, "| %s | %s |\n", m.Up, m.Took.Round(time.Millisecond))
		}
	}
	if r.downUp != "" {
		fmt.Fprintf(&b, "\n%s.\n", r.downUp)
	}
	if runErr != nil {
		fmt.Fprintf(&b, "\n**Failed:** %s\n", strings.ReplaceAll(runErr.Error(), "\n", " "))
	}
	if len(r.steps) > 0 {
		b.WriteString("\n" + steps.Table(r.steps))
	}
	if len(r.findings) > 0 {
		b.WriteString("\n| finding | file | what to do |\n|---|---|---|\n")
		for _, f := range r.findings {
			where := f.File
			if f.Line > 0 {
				where += ":" + strconv.Itoa(f.Line)
			}
			level := "warning"
			if f.Error {
				level = "**error**"
			}
			fmt.Fprintf(&b, "| %s %s: %s | %s | %s |\n", level, f.Rule, action.Cell(f.Message), where, action.Cell(f.Fix))
		}
	}
	return errors.Join(r.a.SetOutputs(
		action.Out{Name: "applied", Value: strconv.Itoa(len(r.applied))},
		action.Out{Name: "version", Value: r.version},
		action.Out{Name: "findings", Value: strconv.Itoa(len(r.findings))},
		action.Out{Name: "duration", Value: duration.String()},
	), r.a.Summary(b.String()))
}

func fixSuffix(fix string) string {
	if fix == "" {
		return ""
	}
	return " — " + fix
}

func countErrors(fs []Finding) int {
	n := 0
	for _, f := range fs {
		if f.Error {
			n++
		}
	}
	return n
}

func firstError(fs []Finding) string {
	for _, f := range fs {
		if f.Error {
			return f.String()
		}
	}
	return ""
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func relTo(base, p string) string {
	if r, err := filepath.Rel(base, p); err == nil {
		return r
	}
	return p
}

func where(in Options) string {
	if in.DatabaseURL != "" {
		return "on the database-url server"
	}
	return "in an ephemeral " + in.PostgresImage + " container"
}

// defaultBase is the default branch on origin, when the checkout has it.
func defaultBase(ctx context.Context, a *action.Context, exec command.Executor) string {
	payload, _ := a.Event()
	if b := git.DefaultBranch(ctx, payload, exec, a.Workspace()); b != "" {
		return "origin/" + b
	}
	return ""
}
