package backup

import (
	"context"
	"io"

	"github.com/org/deploy-kit/internal/docker"
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
	client    docker.Engine // nil in URL mode
	container string
	user      string
	password  string
	labels    map[string]string
}

// passwordEnv passes the password to a tool through its environment variable.
func (s server) passwordEnv(name string) []string {
	if s.password == "" {
		return nil
	}
	return []string{name + "=" + s.password}
}

// Ready checks, in container mode, that the container exists and runs.
func (s server) Ready(ctx context.Context) error {
	if s.client == nil {
		return nil
	}
	_, err := s.client.ContainerImage(ctx, s.container)
	return err
}

func (s server) Close() error {
	if s.client != nil {
		return s.client.Close()
	}
	return nil
}

// formats is every format verify-only can recognise.
var formats = []Format{pgClusterFormat, pgDatabaseFormat, mysqlFormat, sqliteFormat}
