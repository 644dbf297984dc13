// Package restore puts a verified backup back into a live database
// (docs/actions/restore.md): confirm, verify, a safety backup, stop the services, restore
// without leaving a half-restored database, start them, check them, record.
package restore

import (
	"slices"
	"time"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/notify"
	"github.com/org/deploy-kit/internal/remote"
	"github.com/org/deploy-kit/internal/stackcopy"
)

// Options are restore's inputs, decoded at the edge.
type Options struct {
	Confirm      string        `input:"confirm"`
	File         string        `input:"file"`
	Dir          string        `input:"dir"`
	Prefix       string        `input:"prefix"`
	Engine       string        `input:"engine"`
	Container    string        `input:"container"`
	SwarmService string        `input:"swarm-service"`
	DatabaseURL  string        `input:"database-url"`
	DBUser       string        `input:"db-user"`
	DBPassword   string        `input:"db-password"`
	SQLitePath   string        `input:"sqlite-path"`
	SafetyDir    string        `input:"safety-dir"`
	ProjectName  string        `input:"project-name"`
	StopServices []string      `input:"stop-services"`
	Environment  string        `input:"environment"`
	HistoryFile  string        `input:"history-file"`
	LockTimeout  time.Duration `input:"lock-timeout"`
	DryRun       bool          `input:"dry-run"`
	Drill        DrillOptions
	Copy         stackcopy.Options // the drill's copy of the stack
	Offsite      backup.OffsiteConn
	Remote       remote.Options // the Docker host, over SSH from a runner elsewhere
	deploy.VerifyOptions
	Notify notify.Webhook
}

// DrillOptions are the inputs only a drill reads.
type DrillOptions struct {
	Enabled        bool   `input:"drill"`
	ComposeFile    string `input:"compose-file"`
	DBService      string `input:"db-service"`
	AppService     string `input:"app-service"`
	AppPort        int    `input:"app-port"`
	MigrationsPath string `input:"migrations-path"`
	Database       string `input:"database"`
	SecretPrefix   string `input:"secret-prefix"`
}

// Spec is the restore subcommand and action.
var Spec = action.Spec{
	Name:        "restore",
	Description: "Restore a verified backup into a live Postgres, MySQL/MariaDB or SQLite database: confirm, verify, safety backup, stop services, restore (never half-way), start, check, record.",
	Inputs: slices.Concat([]action.Input{
		{Name: "confirm", Description: "Must be exactly RESTORE (not needed for a drill, which touches nothing live)."},
		{Name: "file", Required: true, Description: "The backup to restore: a file, a directory holding exactly one (a downloaded artifact), latest (the newest <prefix>-<timestamp> backup in dir, or under offsite-url when that is set), or s3://bucket/key of an offsite copy (downloaded into dir, then verified)."},
		{Name: "dir", Default: "/var/backups/deploy-kit", Description: "Directory of the backups, for file: latest; the safety backup goes there too unless safety-dir says otherwise. With docker-host, file, dir and safety-dir are on the Docker host: the backup is downloaded to the runner with its .sha256 and verified there, the safety backup is kept on the host."},
		{Name: "prefix", Default: "backup", Description: "File name prefix of the backups, for file: latest."},
		{Name: "engine", Kind: action.Enum, Enum: []string{"postgres", "sqlite", "mysql", "mariadb"}, Default: "postgres", Description: "Database engine."},
		{Name: "container", Description: "Running container of the database server: the whole server is restored inside it from a pg_dumpall or mysqldump --all-databases backup."},
		{Name: "swarm-service", Description: backup.SwarmServiceDescription},
		{Name: "database-url", Secret: true, Description: "Database to restore a pg_dump or mysqldump backup of one database into, from the runner: postgres://… or mysql://user:password@host:port/db."},
		{Name: "db-user", Description: "Database superuser inside the container (default postgres, or root for mysql and mariadb)."},
		{Name: "db-password", Secret: true, Description: "Password of db-user inside the container, if it needs one."},
		{Name: "sqlite-path", Description: "SQLite database file to restore (engine sqlite)."},
		{Name: "safety-dir", Description: "Directory of the safety backup taken of the live database before the restore (default: dir)."},
		{Name: "project-name", Description: "Compose project of stop-services; also the stack named in the history."},
		{Name: "stop-services", Kind: action.List, Description: "Services of project-name to stop before the restore and start after it, whatever happens; one per line."},
		{Name: "environment", Default: "production", Description: "Environment name for the history."},
		{Name: "history-file", Default: "/var/lib/deploy-kit/history.log", Description: "Deploy history file on the Docker host; the restore adds a restore line."},
		{Name: "lock-timeout", Kind: action.Duration, Default: "10m", Description: "How long to wait for a deploy, rollback or other restore of the same stack (project-name, else the database) to finish; the lock is the one deploy takes, beside history-file."},
		{Name: "dry-run", Kind: action.Bool, Default: "false", Description: "Verify the backup and print the plan; change nothing."},
		{Name: "drill", Kind: action.Bool, Default: "false", Description: "A restore drill instead: restore into the database service of a copy of the app's compose stack under its own project name (its own networks and volumes, no published ports, no route out unless copy-outbound), start the app on it, check health-url's path at app-port and that the database's migration version is the newest in migrations-path, tear it all down, report. Nothing live is touched."},
		{Name: "compose-file", Default: "compose.yaml", Description: "Drill: the app's compose file, relative to the workspace."},
		{Name: "db-service", Default: "db", Description: "Drill: the compose service of the database the backup is restored into."},
		{Name: "app-service", Default: "web", Description: "Drill: the compose service whose health is checked."},
		{Name: "app-port", Kind: action.Int, Description: "Drill: the port app-service listens on inside its container."},
		{Name: "migrations-path", Description: "Drill: the app's golang-migrate migrations, relative to the workspace; the restored database must be at the newest."},
		{Name: "database", Default: "postgres", Description: "Drill: the database holding schema_migrations."},
		{Name: "secret-prefix", Default: "ENV_", Description: "Drill: job variables with this prefix become the stack's 0600 env file, as with deploy."},
	}, stackcopy.Inputs, backup.OffsiteConnInputs, remote.Inputs, deploy.VerifyInputs, notify.Inputs),
	Outputs: []action.Output{
		{Name: "file", Description: "The backup restored."},
		{Name: "sha256", Description: "Its SHA-256."},
		{Name: "safety-backup", Description: "The safety backup of the database as it was before, to restore from if this restore must be undone."},
		{Name: "status", Description: "success, failed (the database is as it was before, or the summary says exactly what is not), or bad-input (refused before anything was changed)."},
	},
}
