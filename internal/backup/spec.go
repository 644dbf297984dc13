// Package backup dumps, compresses, verifies and retains database backups (docs/actions/backup.md).
package backup

import (
	"slices"
	"strconv"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/notify"
	"github.com/org/deploy-kit/internal/remote"
)

// DefaultLevel is the default gzip level. Measured on pgbench dumps (BENCHMARKS.md),
// level 1 of the parallel compressor makes files within a few percent of level
// 6, sometimes smaller, and keeps the backup as fast as the dump itself.
const DefaultLevel = 1

// SwarmServiceDescription is the swarm-service input of backup and restore.
const SwarmServiceDescription = "Instead of container, the database server's swarm service (<stack>_<service>, one task), wherever Swarm runs it: on the job's engine the tools run in the task's container; on another node in a throwaway container of the task's image on the service's network (declare it attachable), connecting to the task's address there as db-user with db-password."

// Spec is the backup subcommand and action.
var Spec = action.Spec{
	Name:        "backup",
	Description: "Back up a Postgres, MySQL/MariaDB or SQLite database: stream, compress, verify, optionally restore-check, retain, summarise.",
	Inputs: slices.Concat([]action.Input{
		{Name: "engine", Kind: action.Enum, Enum: []string{"postgres", "mysql", "mariadb", "sqlite"}, Default: "postgres", Description: "Database engine."},
		{Name: "container", Description: "Running container of the database server; the dump runs inside it (docker exec): pg_dumpall, mysqldump or mariadb-dump."},
		{Name: "swarm-service", Description: SwarmServiceDescription},
		{Name: "database-url", Secret: true, Description: "Database to dump from the runner instead of a container (pg_dump, mysqldump or mariadb-dump on PATH): postgres://user:password@host:port/db or mysql://user:password@host:port/db."},
		{Name: "db-user", Description: "Database user for the dump inside the container (default: postgres for postgres, root for mysql and mariadb)."},
		{Name: "db-password", Secret: true, Description: "Password of db-user inside the container, if it needs one (given to the dump through its environment, never its command line)."},
		{Name: "sqlite-path", Description: "SQLite database file (engine sqlite)."},
		{Name: "dir", Default: "/var/backups/deploy-kit", Description: "Directory the backups are written to; with docker-host, a directory on the Docker host (the backup is made on the runner, then kept there with its SHA-256 checked there, and retention runs there)."},
		{Name: "prefix", Default: "backup", Description: "File name prefix: <prefix>-YYYY-MM-DDTHHMMSSZ.sql.gz (.sqlite.gz for sqlite). Letters, digits, '.', '_' and '-'."},
		{Name: "compression-level", Kind: action.Int, Min: 1, Max: 9, Default: strconv.Itoa(DefaultLevel), Description: "gzip level, 1 (fast) to 9 (small). Level 1 keeps a backup as fast as the dump alone; higher levels rarely make dumps much smaller (BENCHMARKS.md)."},
		{Name: "min-size", Kind: action.Int, Default: "1024", Description: "Smallest plausible compressed backup, in bytes; smaller fails."},
		{Name: "restore-check", Kind: action.Bool, Default: "false", Description: "Restore the backup into an ephemeral database (a container of the server's image, a fresh database on the URL's server, or a scratch SQLite file) and compare the row count of every table with the source."},
		{Name: "keep-daily", Kind: action.Int, Default: "7", Description: "Keep the newest backup of each of the last N days that have one."},
		{Name: "keep-weekly", Kind: action.Int, Default: "4", Description: "Keep the newest backup of each of the last N ISO weeks that have one."},
		{Name: "keep-monthly", Kind: action.Int, Default: "6", Description: "Keep the newest backup of each of the last N months that have one. Older backups of this prefix in dir are deleted, only after a verified backup."},
		{Name: "host-path", Description: "Also copy the verified backup and its .sha256 to this directory (not with docker-host: use offsite-url)."},
		{Name: "artifact", Kind: action.Bool, Default: "false", Description: "Ask for the backup as a workflow artifact: sets upload-artifact, artifact-name and artifact-path for the workflow's own upload step (actions/upload-artifact@v4 on GitHub, @v3 on Gitea)."},
		{Name: "project-name", Description: "Compose project or swarm stack whose lock the backup holds while it runs (the lock deploy, rollback and restore take: none of them runs during the dump). Default: the project or stack of container or swarm-service; with database-url, none unless given."},
		{Name: "history-file", Default: "/var/lib/deploy-kit/history.log", Description: "Deploy history file on the Docker host, as deploy's: the stack locks are beside it."},
		{Name: "lock-timeout", Kind: action.Duration, Default: "10m", Description: "How long to wait for a deploy, rollback or restore of the stack to finish before the backup."},
		{Name: "verify-only", Description: "Verify this existing backup file (gzip stream, dump header and trailer, min-size, .sha256 beside it) and do nothing else."},
		{Name: "dry-run", Kind: action.Bool, Default: "false", Description: "Print the plan and the commands it would run; change nothing."},
	}, OffsiteInputs, remote.Inputs, notify.Inputs),
	Outputs: []action.Output{
		{Name: "upload-artifact", Description: "true when the workflow should upload the backup as an artifact: input artifact is true (or yes, on, 1) and a verified backup was written."},
		{Name: "artifact-name", Description: "Name for the artifact: <prefix>-<backup-id>."},
		{Name: "artifact-path", Description: "The backup and its .sha256 on the runner, one per line, for upload-artifact's path."},
		{Name: "path", Description: "Path of the verified backup (on the Docker host with docker-host)."},
		{Name: "size", Description: "Size in bytes."},
		{Name: "sha256", Description: "SHA-256 of the backup file."},
		{Name: "backup-id", Description: "Identifier of the backup: its UTC timestamp, YYYY-MM-DDTHHMMSSZ."},
		{Name: "duration", Description: "How long the backup took, e.g. 4.2s."},
		{Name: "offsite", Description: "The proven offsite copy, s3://bucket/key; empty when none was made."},
		{Name: "status", Description: "success, failed, or bad-input (refused before anything was changed)."},
	},
}
