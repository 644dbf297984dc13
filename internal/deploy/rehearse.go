package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/compose"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/stackcopy"
)

// The rehearsal (docs/rehearsal.md; ARCHITECTURE.md, "Each action's steps"):
// before production changes, the pre-deploy backup is restored into a private
// copy of the stack — its own project, no published ports, none of
// production's networks — where the new release must start and pass its checks
// (its migrations meet production's data), and then the running release must
// pass them against the migrated copy (it keeps serving during the switch and
// after a switch back). The copy is removed on every way out.

// rehearsal is what preflight found for the rehearsal and what it did.
type rehearsal struct {
	db      string // the database service: backup-container's ("" for SQLite)
	sqlite  *sqliteMount
	started []string // the services the copy runs: every service of the model
	// Where health-url and smoke-base-url point, inside the copy: the service
	// publishing their port, and its port in the container (strategy recreate).
	health, smoke target
	// With strategy rolling, nothing of the stack publishes the port: as the
	// switch does, every service deployed but the database is checked at its
	// own address and app-port.
	direct []string
	name   string          // the copy's project name
	plan   *stackcopy.Copy // how the copy is isolated (preflight)
	target *backup.LiveDB  // the copy's database, once restored
	copy   compose.Project
	took   []string // what took how long, for the summary
	report *RehearsalReport
}

// RehearsalReport is what the rehearsal found, for the plan output and summary.
type RehearsalReport struct {
	Copy       string `json:"copy"`                      // the copy's project name (removed after)
	Migrations string `json:"migrations"`                // golang-migrate's state in the copy before → after this release started
	Restore    string `json:"restore"`                   // how long the restore of the pre-deploy backup took
	NewRelease string `json:"new_release"`               // how long this release took to start (its migrations on production's data) and pass its checks
	Running    string `json:"running_release,omitempty"` // the same for the running release on the migrated copy
	// LongestLock is the longest-held table lock that blocks writes while this
	// release started on the copy (PostgreSQL), as the summary says it.
	LongestLock string `json:"longest_lock,omitempty"`
}

// sqliteMount is where a service bind-mounts the directory of the SQLite file
// backup-sqlite-path: the copy mounts a volume of its own there instead, which
// gets the restored file.
type sqliteMount struct {
	service string
	source  string // the bind mount's directory on the host
	target  string // where it is mounted in the container
	name    string // the file's path under target
}

// sqliteVolume is the copy's own volume that replaces the SQLite bind mount.
const sqliteVolume = "deploykit-rehearsal-sqlite"

// target is a service's port in its container, for a URL published on the host.
type target struct {
	service string
	port    uint32
	path    string // the URL's path and query
}

// planRehearsal checks, before anything changes, that the stack can be
// rehearsed: backup-container is one of its services, a private copy of the
// stack can be isolated from production (stackcopy.New, then its merged model
// checked), and health-url and smoke-base-url reach a published port.
func (s *State) planRehearsal(ctx context.Context) error {
	if !s.Opts.Rehearse {
		return nil
	}
	p, o := s.Project, s.Opts
	rh := &rehearsal{}
	rh.db = dbService(p, o.Backup.Container)
	var own []stackcopy.Mount
	if o.Backup.Engine == "sqlite" {
		var err error
		if rh.sqlite, err = sqliteIn(p, o.Backup.SQLitePath); err != nil {
			return err
		}
		own = append(own, stackcopy.Mount{Service: rh.sqlite.service, Target: rh.sqlite.target, Volume: sqliteVolume})
	}
	rh.started = p.ServiceNames()
	if rh.sqlite == nil && rh.db == "" {
		return action.Usagef("input rehearse: backup-container %s is not a container of the compose project %s (services: %s): the rehearsal restores the pre-deploy backup into that service of a copy of the stack",
			o.Backup.Container, p.Name, strings.Join(p.ServiceNames(), ", "))
	}
	plan, err := stackcopy.New(p, stackcopy.Rehearsal, "rehearse", o.Copy, own)
	if err != nil {
		return err
	}
	if err := plan.Check(ctx, s.Compose, s.loadEnv()); err != nil {
		return action.Failedf("%w", err)
	}
	rh.plan, rh.name = plan, plan.Name
	if direct, ok := s.Strategy.Rehearsed(s, rh.db); ok {
		if len(direct) == 0 {
			return action.Usagef("input rehearse: strategy %s deploys only %s, the database the rehearsal restores: there is no release to rehearse", o.Strategy, rh.db)
		}
		rh.direct = direct
		s.rehearsal = rh
		return nil
	}
	if rh.health, err = published(p, "health-url", o.HealthURL); err != nil {
		return err
	}
	if rh.smoke, err = published(p, "smoke-base-url", o.SmokeBaseURL); err != nil {
		return err
	}
	s.rehearsal = rh
	return nil
}

// sqliteIn finds the service that bind-mounts the directory holding the SQLite
// file path (writable: the app writes it). Several, or none, are refused: the
// copy must know which one its restored file goes to.
func sqliteIn(p *types.Project, path string) (*sqliteMount, error) {
	var found []*sqliteMount
	for _, name := range p.ServiceNames() {
		for _, v := range p.Services[name].Volumes {
			if v.Type != types.VolumeTypeBind || v.ReadOnly {
				continue
			}
			rel, err := filepath.Rel(v.Source, path)
			if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
				continue
			}
			found = append(found, &sqliteMount{service: name, source: v.Source, target: v.Target, name: filepath.ToSlash(rel)})
		}
	}
	switch len(found) {
	case 0:
		return nil, action.Usagef("input rehearse: no service of %s bind-mounts a directory holding backup-sqlite-path %s writable: the rehearsal restores the pre-deploy backup into that mount of a copy of the stack (a SQLite file in a named volume is not rehearsed)", p.Name, path)
	case 1:
		return found[0], nil
	}
	var where []string
	for _, m := range found {
		where = append(where, m.service+" ("+m.source+":"+m.target+")")
	}
	return nil, action.Usagef("input rehearse: backup-sqlite-path %s is in the bind mounts of several services: %s; the copy of the stack cannot give each its own copy of one file", path, strings.Join(where, ", "))
}

// dbService is the service of p whose container is container (its
// container_name, or compose's <project>-<service>-1 or v1's
// <project>_<service>_1), or "".
func dbService(p *types.Project, container string) string {
	if p == nil || container == "" {
		return ""
	}
	for _, name := range p.ServiceNames() {
		if c := p.Services[name].ContainerName; c == container || p.Name+"-"+name+"-1" == container || p.Name+"_"+name+"_1" == container {
			return name
		}
	}
	return ""
}

// published finds the service and container port behind a URL on a published
// port of the stack ("" gives no target).
func published(p *types.Project, input, raw string) (target, error) {
	if raw == "" {
		return target{}, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Port() == "" {
		return target{}, action.Usagef("input rehearse: %s %s names no port the copy of the stack could be reached on", input, raw)
	}
	for _, name := range p.ServiceNames() {
		for _, port := range p.Services[name].Ports {
			if port.Published == u.Port() {
				return target{service: name, port: port.Target, path: u.RequestURI()}, nil
			}
		}
	}
	return target{}, action.Usagef("input rehearse: no service of %s publishes port %s of %s %s: the rehearsal checks the copy at the service's own address", p.Name, u.Port(), input, raw)
}

type rehearseStep struct{}

func (rehearseStep) String() string { return "rehearse" }

// rehearseTimeout bounds the removal of the copy, on every way out.
const rehearseTimeout = 25 * time.Second

func (rehearseStep) Run(ctx context.Context, s *State) error {
	rh := s.rehearsal
	if rh == nil {
		return Skip("not requested (rehearse: false)")
	}
	if s.Opts.DryRun {
		return Skip("dry run: would restore the pre-deploy backup into %s of a copy of %s, start this release there and check it, then the running release", rh.db, s.Compose.Name)
	}
	if s.Backup.Path == "" {
		if len(s.Snapshot.Services) == 0 {
			return Skip("first deploy: there is no production data to rehearse on yet")
		}
		return action.Failedf("no pre-deploy backup to rehearse on")
	}
	cp, remove, err := rh.plan.Project(s.Compose, s.A.TempDir())
	if err != nil {
		return action.Failedf("%w", err)
	}
	rh.copy = cp
	defer func() {
		if _, cancelled := s.A.CancelDeadline(); cancelled {
			// A cancelled job has seconds: the copy serves no one, the
			// next run removes it (repair).
			s.A.Logf("    the copy %s is left for the next run to remove", rh.name)
			remove()
			return
		}
		// The copy goes whatever happened, on a context of its own.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rehearseTimeout)
		defer cancel()
		if err := s.Exec.Run(ctx, rh.copy.Down()); err != nil {
			s.A.Warningf("removing the rehearsal's copy %s: %v (docker compose -p %s down --volumes)", rh.name, err, rh.name)
		}
		remove()
	}()
	return rh.run(ctx, s)
}

func (rh *rehearsal) run(ctx context.Context, s *State) error {
	wait := s.Opts.WaitTimeout
	up := compose.UpOptions{Build: !s.Opts.PullOnly, PullMissing: s.Opts.PullOnly, WaitTimeout: wait}

	began := time.Now()
	var t *backup.LiveDB
	if rh.sqlite != nil {
		if err := rh.restoreSQLite(ctx, s, up); err != nil {
			return err
		}
	} else {
		db := up
		db.Services, db.Build, db.PullMissing = []string{rh.db}, false, true
		if err := s.Exec.Run(ctx, rh.copy.Up(db)); err != nil {
			return action.Failedf("starting %s in the rehearsal's copy: %v", rh.db, err)
		}
		opts := s.Opts.Backup.options("rehearsal")
		opts.Container = rh.name + "-" + rh.db + "-1"
		var err error
		if t, err = backup.NewLiveDB(s.A, opts); err != nil {
			return err
		}
		defer t.Close()
		if _, err := t.Restore(ctx, s.Backup.Path); err != nil {
			return action.Failedf("restoring the pre-deploy backup into the rehearsal's copy: %v", err)
		}
		rh.target = t
	}
	rh.report = &RehearsalReport{Copy: rh.name, Restore: since(began)}
	rh.took = append(rh.took, "restored the pre-deploy backup in "+rh.report.Restore)
	var before map[string]string
	var watch *backup.LockWatch
	if t != nil {
		before, _ = t.Schemas(ctx)
		// The locks this release's migrations take, on production-sized data.
		var err error
		if watch, err = t.WatchLocks(ctx, 2*wait+time.Minute); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			if s.Opts.LockRefuse {
				// Asked to stop on long locks: unwatched, one would pass.
				return rh.failedWith(ctx, s, "the copy's locks could not be watched (rehearse-lock-refuse needs them)", err,
					"The watch is a psql session in the copy's database container: look at why it could not connect (the error above), or run without rehearse-lock-refuse.")
			}
			s.A.Warningf("rehearsal: cannot watch the copy's locks: %v", err)
		}
		if watch != nil {
			defer watch.Stop() // on every way out; locks reports it on success
		}
	}
	began = time.Now()
	if err := s.Exec.Run(ctx, rh.copy.Up(up)); err != nil {
		return rh.failed(ctx, s, "version "+s.Version+" did not start on a copy of production's data", err)
	}
	if err := rh.check(ctx, s); err != nil {
		return rh.failed(ctx, s, "version "+s.Version+" fails its checks on a copy of production's data", err)
	}
	rh.report.NewRelease = since(began)
	rh.took = append(rh.took, fmt.Sprintf("%s started and passed its checks in %s", s.Version, rh.report.NewRelease))
	// (SQLite: the copy's file is in its volume, not read from here.)
	if t != nil {
		if after, err := t.Schemas(ctx); err == nil && after != nil {
			rh.report.Migrations = schemaText(before) + " → " + schemaText(after)
			rh.took = append(rh.took, "migrations: "+rh.report.Migrations)
		}
	}
	if watch != nil {
		if err := rh.locks(ctx, s, watch); err != nil {
			return err
		}
	}

	if len(s.Snapshot.Services) > 0 {
		began = time.Now()
		old := filepath.Join(s.A.TempDir(), "deploykit-rehearsal-"+rh.name+"-running.yaml")
		if err := os.WriteFile(old, []byte(runningOverride(s.Snapshot, rh.running(s.Snapshot))), 0o600); err != nil {
			return action.Failedf("%w", err)
		}
		defer os.Remove(old)
		running := rh.copy
		running.Overrides = append(append([]string{}, rh.copy.Overrides...), old)
		back := compose.UpOptions{Services: rh.running(s.Snapshot), NoDeps: true, WaitTimeout: wait}
		if err := s.Exec.Run(ctx, running.Up(back)); err != nil {
			return rh.failed(ctx, s, fmt.Sprintf("the running release (%s) did not start on the copy migrated by %s", s.rollbackVersion(), s.Version), err)
		}
		if err := rh.check(ctx, s); err != nil {
			return rh.failed(ctx, s, fmt.Sprintf("the running release (%s) fails its checks on the copy migrated by %s", s.rollbackVersion(), s.Version), err)
		}
		rh.report.Running = since(began)
		rh.took = append(rh.took, fmt.Sprintf("%s started and passed its checks on the migrated copy in %s", s.rollbackVersion(), rh.report.Running))
	}
	s.Did("on a copy of production's data (project %s, removed after; %s): %s", rh.name, rh.plan.Summary(), strings.Join(rh.took, "; "))
	return nil
}

// restoreSQLite creates the copy's containers (and its volume where the SQLite
// file goes), restores the pre-deploy backup into a file of the runner's temp
// directory (verified: integrity_check) and copies it into that volume, owned
// as production's file is.
func (rh *rehearsal) restoreSQLite(ctx context.Context, s *State, up compose.UpOptions) error {
	m := rh.sqlite
	create := up
	create.NoStart, create.WaitTimeout = true, 0
	if err := s.Exec.Run(ctx, rh.copy.Up(create)); err != nil {
		return rh.failed(ctx, s, "the copy of the stack could not be created", err)
	}
	dir, err := os.MkdirTemp(s.A.TempDir(), "deploykit-rehearsal-sqlite-")
	if err != nil {
		return action.Failedf("%w", err)
	}
	defer os.RemoveAll(dir)
	opts := s.Opts.Backup.options("rehearsal")
	opts.SQLitePath = filepath.Join(dir, path.Base(m.name))
	// The restore replaces a file (the engine wants one there to start with).
	if err := os.WriteFile(opts.SQLitePath, nil, 0o600); err != nil {
		return action.Failedf("%w", err)
	}
	t, err := backup.NewLiveDB(s.A, opts)
	if err != nil {
		return err
	}
	defer t.Close()
	if _, err := t.Restore(ctx, s.Backup.Path); err != nil {
		return action.Failedf("restoring the pre-deploy backup for the rehearsal's copy: %v", err)
	}
	owner := docker.FileOwner{Mode: 0o644}
	if info, err := os.Stat(s.Opts.Backup.SQLitePath); err == nil {
		owner.Mode = info.Mode().Perm()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			owner.UID, owner.GID = int(st.Uid), int(st.Gid)
		}
	}
	if info, err := os.Stat(filepath.Dir(s.Opts.Backup.SQLitePath)); err == nil {
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			owner.DirUID, owner.DirGID = int(st.Uid), int(st.Gid)
		}
	}
	all, err := s.Docker.ProjectContainers(ctx, rh.name)
	if err != nil {
		return action.Failedf("%w", err)
	}
	copied := 0
	for _, c := range all {
		if c.Service != m.service {
			continue
		}
		if err := copyFile(ctx, s.Docker, c.ID, m.target, m.name, opts.SQLitePath, owner); err != nil {
			return action.Failedf("copying the restored SQLite file into the copy's %s (%s): %v", m.service, path.Join(m.target, m.name), err)
		}
		copied++
	}
	if copied == 0 {
		return action.Failedf("the copy has no %s container to copy the restored SQLite file into", m.service)
	}
	return nil
}

// fileCopier writes a file into a container (the rehearsal's SQLite copy).
type fileCopier interface {
	CopyFile(ctx context.Context, id, dir, name string, content io.Reader, size int64, owner docker.FileOwner) error
}

// copyFile copies the local file src into container id as dir/name.
func copyFile(ctx context.Context, d fileCopier, id, dir, name, src string, owner docker.FileOwner) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	return d.CopyFile(ctx, id, dir, name, f, info.Size(), owner)
}

// copyLogs adds to a hand-off the last log lines of the copy's containers that
// are not running healthy. When the app wrote nothing at all (it never got to
// serve: its migrations did not finish), what the database did instead: its
// own log and every session's activity, what a migration waited for.
func (rh *rehearsal) copyLogs(ctx context.Context, s *State, b *strings.Builder) {
	all, err := s.Docker.ProjectContainers(ctx, rh.name)
	if err != nil {
		return
	}
	block := func(title, text string) {
		fmt.Fprintf(b, "\n%s:\n\n```\n%s\n```\n", title, strings.ReplaceAll(strings.TrimRight(text, "\n"), "```", "'''"))
	}
	healthy := func(c docker.Container) bool {
		return c.State == "running" && (c.Health == "" || c.Health == "healthy")
	}
	silent, apps := true, 0
	for _, c := range all {
		if c.Service == rh.db {
			continue
		}
		apps++
		logs, err := s.Docker.Logs(ctx, c.ID, logLines)
		if err != nil {
			continue
		}
		if strings.TrimSpace(logs) != "" {
			silent = false
		}
		if healthy(c) {
			continue
		}
		if strings.TrimSpace(logs) == "" {
			logs = "(no output)"
		}
		block(fmt.Sprintf("Last %d log lines of the copy's %s (%s, %s)", logLines, c.Service, c.Image, c.State), logs)
	}
	silent = silent && apps > 0
	for _, c := range all {
		if c.Service != rh.db || !silent && healthy(c) {
			continue
		}
		if silent {
			fmt.Fprintf(b, "\nThe copy's app wrote nothing: it never got to start (did a migration not finish?). What its database %s did:\n", rh.db)
		}
		if logs, err := s.Docker.Logs(ctx, c.ID, logLines); err == nil {
			block(fmt.Sprintf("Last %d log lines of the copy's %s (%s, %s)", logLines, c.Service, c.Image, c.State), logs)
		}
		if silent && rh.target != nil {
			if act, err := rh.target.Activity(ctx); err == nil {
				block(fmt.Sprintf("Sessions of the copy's %s (pg_stat_activity): what each waits for, and who blocks it", c.Service), act)
			}
		}
	}
}

// locks stops the watch and reports the longest lock this release's start held
// on the copy; one longer than rehearse-lock-limit is a warning, or with
// rehearse-lock-refuse a failed rehearsal.
func (rh *rehearsal) locks(ctx context.Context, s *State, watch *backup.LockWatch) error {
	l, ok, err := watch.Stop()
	switch {
	case err != nil:
		s.A.Warningf("rehearsal: watching the copy's locks: %v", err)
		return nil
	case !ok:
		rh.report.LongestLock = "none that blocks writes"
		rh.took = append(rh.took, "no lock that blocks writes")
		return nil
	}
	held := "under " + lockSampleText
	if l.Held >= backup.LockSample {
		held = l.Held.String()
	}
	// Names and the statement come from the database: escaped, so a name
	// with a line break cannot hide the lock or forge a line.
	table, query := action.Name(l.Table), action.Name(l.Query)
	rh.report.LongestLock = fmt.Sprintf("%s on %s (database %s) for %s, blocking %s: %s", action.Name(l.Mode), table, action.Name(l.Database), held, l.Blocks(), query)
	rh.took = append(rh.took, "longest lock: "+rh.report.LongestLock)
	limit := s.Opts.LockLimit
	if limit == 0 || l.Held <= limit {
		return nil
	}
	what := fmt.Sprintf("a migration of %s held %s on table %s for %s (rehearse-lock-limit %s): on production the app's %s on %s wait that long",
		s.Version, action.Name(l.Mode), table, held, limit, l.Blocks(), table)
	if !s.Opts.LockRefuse {
		s.A.Warningf("rehearsal: %s. Statement: %s", what, query)
		return nil
	}
	return rh.failedWith(ctx, s, what, fmt.Errorf("the statement: %s", query),
		"Make the migration take shorter locks: CREATE INDEX CONCURRENTLY (in a migration of its own, outside a transaction), "+
			"add a column without a volatile default, add a constraint NOT VALID and VALIDATE it in a later migration, "+
			"backfill in batches; or deploy it in a maintenance window with rehearse-lock-limit raised.")
}

// lockSampleText is how often the rehearsal samples the copy's locks, as text.
var lockSampleText = backup.LockSample.String()

// running are the services the second half of the rehearsal puts back at the
// images that run now: every service of the snapshot but the database, which
// keeps the migrated data.
func (rh *rehearsal) running(snap Snapshot) []string {
	var names []string
	for _, n := range snap.Names() {
		if n != rh.db {
			names = append(names, n)
		}
	}
	return names
}

// runningOverride pins services to the images they run now (the snapshot's
// tags, which the snapshot step made), for the second half of the rehearsal.
func runningOverride(snap Snapshot, services []string) string {
	var b strings.Builder
	b.WriteString("services:\n")
	for _, name := range services {
		fmt.Fprintf(&b, "  %s:\n    image: %s\n    pull_policy: never\n    build: !reset null\n", name, strconv.Quote(snap.Services[name].Ref))
	}
	return b.String()
}

// check runs health-url's and smoke-checks' paths against the copy's own
// addresses.
func (rh *rehearsal) check(ctx context.Context, s *State) error {
	if len(rh.direct) > 0 {
		return rh.checkDirect(ctx, s)
	}
	var health, base string
	if rh.health.service != "" {
		u, err := rh.addr(ctx, s, rh.health)
		if err != nil {
			return err
		}
		health = u + rh.health.path
	}
	if rh.smoke.service != "" && len(s.Checks) > 0 {
		u, err := rh.addr(ctx, s, rh.smoke)
		if err != nil {
			return err
		}
		base = u + strings.TrimSuffix(rh.smoke.path, "/")
	}
	_, err := s.checkAt(s.fromHost(ctx), health, base, nil)
	return err
}

// checkDirect checks each service of rh.direct at its address in the copy and
// app-port, as strategy rolling checks a new container before it takes traffic
// (State.checkApp).
func (rh *rehearsal) checkDirect(ctx context.Context, s *State) error {
	if s.Opts.HealthURL == "" && len(s.Checks) == 0 {
		return nil
	}
	for _, name := range rh.direct {
		base, err := rh.addr(ctx, s, target{service: name, port: uint32(s.Opts.AppPort)})
		if err != nil {
			return err
		}
		if err := s.checkApp(ctx, base); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// addr is http://<ip>:<port> of t's service in the copy.
func (rh *rehearsal) addr(ctx context.Context, s *State, t target) (string, error) {
	all, err := s.Docker.ProjectContainers(ctx, rh.name)
	if err != nil {
		return "", err
	}
	for _, c := range all {
		if c.Service == t.service && c.State == "running" && len(c.IPs) > 0 {
			return "http://" + net.JoinHostPort(c.IPs[0], strconv.FormatUint(uint64(t.port), 10)), nil
		}
	}
	return "", fmt.Errorf("the copy's %s has no address to check", t.service)
}

// failed is a failed rehearsal: the error, and a hand-off with what to do and
// the last log lines of the copy's containers that are not running healthy.
func (rh *rehearsal) failed(ctx context.Context, s *State, what string, cause error) error {
	return rh.failedWith(ctx, s, what, cause, "A migration that fails on production's data, or that the running release cannot read, must change: "+
		"make it work on the data as it is, and keep the schema readable by the running release (expand/contract: "+
		"add the new column and write both, deploy; drop the old one in a later release).")
}

// failedWith is failed with advice of its own: what to do about it.
func (rh *rehearsal) failedWith(ctx context.Context, s *State, what string, cause error, advice string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "#### Hand-off: the rehearsal of %s failed; production was not changed\n\n", orUnknown(s.Version))
	if job := s.A.JobURL(); job != "" {
		fmt.Fprintf(&b, "- Job: %s\n", job)
	}
	fmt.Fprintf(&b, "- %s: %s\n", action.Cell(what), action.Cell(cause.Error()))
	b.WriteString(commandDetails(cause))
	fmt.Fprintf(&b, "- %s\n", advice)
	fmt.Fprintf(&b, "- The copy (project %s, removed): %s\n", rh.name, action.Cell(rh.plan.Summary()))
	rh.copyLogs(ctx, s, &b)
	s.Out.HandOff = b.String()
	return action.Failedf("%s: %v; production was not changed", what, cause)
}
