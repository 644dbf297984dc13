// Package migrationsmoke tests migrations against a real Postgres before they reach
// production (docs/actions/migration-smoke.md).
package migrationsmoke

import "github.com/org/deploy-kit/internal/action"

// Options are migration-smoke's inputs, decoded at the edge.
type Options struct {
	Path          string   `input:"path"`
	DatabaseURL   string   `input:"database-url"`
	PostgresImage string   `input:"postgres-image"`
	SchemaDump    string   `input:"schema-dump"`
	SmokeSQL      []string `input:"smoke-sql"`
	BaseRef       string   `input:"base-ref"`
	SumFile       string   `input:"sum-file"`
	CheckDown     bool     `input:"check-down"`
	Lint          string   `input:"lint"`
	DryRun        bool     `input:"dry-run"`
}

// Spec is the migration-smoke subcommand and action.
var Spec = action.Spec{
	Name:        "migration-smoke",
	Description: "Apply every migration to a fresh Postgres database (optionally shaped like production), run smoke SQL and lint the new migrations.",
	Inputs: []action.Input{
		{Name: "path", Default: "migrations", Description: "Directory of golang-migrate migrations."},
		{Name: "database-url", Secret: true, Description: "Postgres server to test on; empty starts an ephemeral container."},
		{Name: "postgres-image", Default: "postgres:16", Description: "Image of the ephemeral Postgres container."},
		{Name: "schema-dump", Description: "Schema-only dump of production to load first."},
		{Name: "smoke-sql", Kind: action.List, Description: "SQL files or globs to run after the migrations, one per line."},
		{Name: "base-ref", Description: "Ref whose migrations are already merged; empty uses the default branch."},
		{Name: "sum-file", Description: "Checksums of already-deployed migrations."},
		{Name: "check-down", Kind: action.Bool, Default: "false", Description: "Run the new migrations down and up again."},
		{Name: "lint", Kind: action.Enum, Enum: []string{"off", "warn", "error"}, Default: "warn", Description: "Lint findings: ignored, warnings, or errors."},
		{Name: "dry-run", Kind: action.Bool, Default: "false", Description: "Print the plan and the commands it would run; change nothing."},
	},
	Outputs: []action.Output{
		{Name: "applied", Description: "Number of migrations applied."},
		{Name: "version", Description: "Schema version after applying."},
		{Name: "findings", Description: "Number of findings (checks and lint)."},
		{Name: "duration", Description: "How long the run took."},
		{Name: "status", Description: "success, failed, or bad-input (refused before anything was changed)."},
	},
}
