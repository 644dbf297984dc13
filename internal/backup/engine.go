package backup

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/lock"
)

// Engine is one kind of database the kit backs up. Each engine is one file
// (postgres.go, mysql.go, sqlite.go); the backup flow in run.go only sees this.
type Engine interface {
	// Source says what is backed up, for the log and summary (never a password).
	Source() string
	// Ext is the file extension before .gz: "sql" or "sqlite".
	Ext() string
	// Plan lists the commands a dump runs, for dry-run and the log.
	Plan() []string
	// Dump streams a complete dump to w. A dump that did not finish, or whose
	// program exited non-zero (also inside a container), is an error.
	Dump(ctx context.Context, w io.Writer) error
	// Format checks the uncompressed dump's beginning and end.
	Format() Format
	// RestoreCommand is the shell command that restores file, for the summary.
	RestoreCommand(file string) string
	// RestoreCheck restores file into an ephemeral database, compares it with the
	// source and says what it compared.
	RestoreCheck(ctx context.Context, file string) (string, error)
	// Close releases what the engine holds (temp copies, connections).
	Close() error
	// Live is the restore side (live.go).
	Live
}

// Engines are the backup engines by the name the engine input gives
// (ARCHITECTURE.md, "Variants"): a new engine is a type implementing Engine, a
// constructor here, and a fixture in the conformance suite (conformance_test.go),
// which fails for an engine without one.
var Engines = map[string]func(c conn) (Engine, error){
	"postgres": newPostgres,
	"mysql":    newMySQL,
	"mariadb":  newMySQL,
	"sqlite":   newSQLite,
}

// conn is where an engine finds its database, checked by newEngine: exactly one
// of Container (with Server), URL or SQLitePath.
type conn struct {
	Engine     string // the engine input: mysql and mariadb share a type
	Container  string
	URL        string
	SQLitePath string // absolute, an existing regular file
	Server     server // the container's engine client, user, password, labels
	Src        runner // where the dump tools run: in the container, or on the runner
	Scratch    func(what string) string
}

// newEngine checks which database the options describe and builds its engine;
// problems name the inputs (with deploy's backup- prefix where it applies).
func newEngine(a *action.Context, j *job, o Options) (Engine, error) {
	build, ok := Engines[j.name]
	if !ok {
		return nil, fmt.Errorf("input %s: %q is not an engine: want one of %s", o.name("engine"), j.name, strings.Join(slices.Sorted(maps.Keys(Engines)), ", "))
	}
	c := conn{Engine: j.name, Container: o.Container, URL: o.DatabaseURL, Scratch: j.scratch}
	if j.name == "sqlite" {
		if o.SQLitePath == "" {
			return nil, fmt.Errorf("input %s is empty: engine sqlite backs up a database file", o.name("sqlite-path"))
		}
		if o.Container != "" || o.DatabaseURL != "" {
			return nil, fmt.Errorf("inputs %s and %s do not apply to engine sqlite: give %s only", o.name("container"), o.name("database-url"), o.name("sqlite-path"))
		}
		if o.SwarmService != "" {
			return nil, fmt.Errorf("input %s does not apply to engine sqlite: give %s only", o.name("swarm-service"), o.name("sqlite-path"))
		}
		path, _ := filepath.Abs(o.SQLitePath)
		if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("input %s: %s is not a file", o.name("sqlite-path"), o.SQLitePath)
		}
		c.SQLitePath = path
		return build(c)
	}
	if o.SQLitePath != "" {
		return nil, fmt.Errorf("input %s applies to engine sqlite only, not %s", o.name("sqlite-path"), j.name)
	}
	if o.SwarmService != "" {
		if o.Container != "" || o.DatabaseURL != "" {
			return nil, fmt.Errorf("input %s names the database server by its swarm service: give it without %s or %s", o.name("swarm-service"), o.name("container"), o.name("database-url"))
		}
		return swarmServer(a, c, o, build)
	}
	if (o.Container == "") == (o.DatabaseURL == "") {
		if o.InputPrefix == "" { // backup and restore, which take swarm-service
			return nil, fmt.Errorf("engine %s needs exactly one of the inputs container (dump inside the database's container), swarm-service (the database's swarm service, on any node) and database-url (dump from the runner)", j.name)
		}
		return nil, fmt.Errorf("engine %s needs exactly one of the inputs %s (dump inside the database's container) and %s (dump from the runner)", j.name, o.name("container"), o.name("database-url"))
	}
	if o.Container != "" {
		client, err := docker.New(a.Environ())
		if err != nil {
			return nil, err
		}
		labels := o.throwawayLabels(a)
		c.Src = execRunner{client: client, container: o.Container, mask: a.MaskString}
		c.Server = server{client: client, container: o.Container, user: o.DBUser, password: o.DBPassword, labels: labels}
		return build(c)
	}
	if o.DBUser != "" || o.DBPassword != "" {
		return nil, fmt.Errorf("inputs %s and %s apply to %s; a database URL carries its own user and password", o.name("db-user"), o.name("db-password"), o.name("container"))
	}
	c.Src = localRunner{exec: command.For(a, false), env: a.Environ(), mask: a.MaskString}
	e, err := build(c)
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", o.name("database-url"), err)
	}
	return e, nil
}

func newSQLite(c conn) (Engine, error) { return &sqlite{path: c.SQLitePath, scratch: c.Scratch}, nil }

func newPostgres(c conn) (Engine, error) {
	if c.Container != "" {
		c.Server.user = cmp.Or(c.Server.user, "postgres")
		return &postgres{src: c.Src, server: c.Server}, nil
	}
	u, pw, err := parsePostgresURL(c.URL)
	if err != nil {
		return nil, err
	}
	return &postgres{src: c.Src, url: u, server: server{password: pw}}, nil
}

func newMySQL(c conn) (Engine, error) {
	if c.Container != "" {
		c.Server.user = cmp.Or(c.Server.user, "root")
		return &mysql{flavor: c.Engine, src: c.Src, server: c.Server}, nil
	}
	user, password, host, port, db, err := parseMySQLURL(c.URL)
	if err != nil {
		return nil, err
	}
	return &mysql{flavor: c.Engine, src: c.Src, server: server{user: user, password: password}, host: host, port: port, db: db}, nil
}

// Format recognises a complete dump of one engine from its first and last bytes
// and its uncompressed length.
type Format interface {
	Name() string
	// Check returns nil when head, tail and total are those of a complete dump.
	Check(head, tail []byte, total int64) error
}

// server is what the engines that dump inside a container share: the Engine API
// client, the container, the database user and password, and the labels of the
// scratch containers a restore check starts.
type server struct {
	client    serverEngine // nil in URL mode
	container string
	user      string
	password  string
	labels    map[string]string
	// With swarm-service: what Source says, and what removes the throwaway
	// container the tools ran in (nil when they ran in the task's own).
	swarm  string
	remove func()
}

// passwordEnv passes the password to a tool through its environment variable.
func (s server) passwordEnv(name string) []string {
	if s.password == "" {
		return nil
	}
	return []string{name + "=" + s.password}
}

// Ready checks, in container mode, that the container exists and runs.
// sweepDead removes the throwaway containers of killed runs of this host.
func (s server) sweepDead(ctx context.Context) (docker.Removed, error) {
	if s.client == nil { // a database URL: no engine, no throwaway containers
		return docker.Removed{}, nil
	}
	return s.client.RemoveDeadOwners(ctx, lock.Alive)
}

func (s server) Ready(ctx context.Context) error {
	if s.client == nil {
		return nil
	}
	_, err := s.client.ContainerImage(ctx, s.container)
	return err
}

func (s server) Close() error {
	if s.remove != nil {
		s.remove()
	}
	if s.client != nil {
		return s.client.Close()
	}
	return nil
}

// formats is every format verify-only can recognise.
var formats = []Format{pgClusterFormat, pgDatabaseFormat, mysqlFormat, sqliteFormat}
