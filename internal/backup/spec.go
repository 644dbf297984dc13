// Package backup dumps, compresses, verifies and retains database backups (DESIGN §7).
package backup

import "github.com/org/deploy-kit/internal/action"

// Spec is the backup subcommand and action.
var Spec = action.Spec{
	Name:        "backup",
	Description: "Back up a Postgres, MySQL/MariaDB or SQLite database: stream, compress, verify, optionally restore-check, retain, summarise.",
	Inputs: []action.Input{
		{Name: "engine", Kind: action.Enum, Enum: []string{"postgres", "mysql", "mariadb", "sqlite"}, Default: "postgres", Description: "Database engine."},
		{Name: "container", Description: "Container to run the dump in (docker exec)."},
		{Name: "database-url", Secret: true, Description: "Database URL to dump instead of a container."},
		{Name: "db-user", Default: "postgres", Description: "Database user for the dump inside the container."},
		{Name: "sqlite-path", Description: "SQLite database file (engine sqlite)."},
		{Name: "dir", Default: "/var/backups/deploy-kit", Description: "Directory the backups are written to."},
		{Name: "prefix", Default: "backup", Description: "File name prefix: <prefix>-YYYY-MM-DDTHHMMSSZ.sql.gz."},
		{Name: "compression-level", Kind: action.Int, Min: 1, Default: "6", Description: "gzip level, 1 (fast) to 9 (small)."},
		{Name: "min-size", Kind: action.Int, Default: "1024", Description: "Smallest plausible compressed backup, in bytes; smaller fails."},
		{Name: "restore-check", Kind: action.Bool, Default: "false", Description: "Restore into an ephemeral database and run a query."},
		{Name: "keep-daily", Kind: action.Int, Default: "7", Description: "Daily backups to keep."},
		{Name: "keep-weekly", Kind: action.Int, Default: "4", Description: "Weekly backups to keep."},
		{Name: "keep-monthly", Kind: action.Int, Default: "6", Description: "Monthly backups to keep."},
		{Name: "host-path", Description: "Also copy the backup to this directory."},
		{Name: "artifact", Kind: action.Bool, Default: "false", Description: "Upload the backup as a workflow artifact."},
		{Name: "retention-days", Kind: action.Int, Min: 1, Default: "90", Description: "Artifact retention in days."},
		{Name: "dry-run", Kind: action.Bool, Default: "false", Description: "Print the plan and the commands it would run; change nothing."},
	},
	Outputs: []action.Output{
		{Name: "path", Description: "Path of the verified backup."},
		{Name: "size", Description: "Size in bytes."},
		{Name: "sha256", Description: "SHA-256 of the backup file."},
		{Name: "backup-id", Description: "Identifier of the backup (its timestamp)."},
		{Name: "duration", Description: "How long the backup took."},
	},
}
