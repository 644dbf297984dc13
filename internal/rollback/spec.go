// Package rollback redeploys an earlier version (docs/actions/rollback.md; its steps: ARCHITECTURE.md).
package rollback

import (
	"slices"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/remote"
)

// Options are rollback's inputs, decoded at the edge.
type Options struct {
	Confirm          string `input:"confirm"`
	TargetTag        string `input:"target-tag"`
	ImageTemplate    string `input:"image-template"`
	MigrationsPath   string `input:"migrations-path"`
	DatabaseURL      string `input:"database-url"`
	AllowSchemaAhead bool   `input:"allow-schema-ahead"`
	deploy.TargetOptions
	deploy.VerifyOptions
	deploy.RecordOptions
	Remote remote.Options // the Docker host, over SSH from a runner elsewhere
}

// Spec is the rollback subcommand and action.
var Spec = action.Spec{
	Name:        "rollback",
	Description: "Roll a stack back to an earlier version: confirm, pick the target, check the schema, redeploy read-only, verify, record history.",
	Inputs: slices.Concat([]action.Input{
		{Name: "confirm", Required: true, WhenMissing: "type ROLLBACK, in capitals, to confirm the rollback", Description: "Must be exactly ROLLBACK."},
		{Name: "target-tag", Description: "Tag to roll back to; empty picks the last successful version before the current one."},
		{Name: "image-template", Description: "How a version maps to an image with pull-only, e.g. registry/app:sha-{sha}."},
		{Name: "migrations-path", Description: "Migrations directory, for the schema-ahead check."},
		{Name: "database-url", Secret: true, Description: "Database whose schema_migrations version is checked against the target."},
		{Name: "allow-schema-ahead", Kind: action.Bool, Default: "false", Description: "Roll back even when the database has migrations newer than the target."},
	}, deploy.TargetInputs, deploy.VerifyInputs, deploy.RecordInputs, remote.Inputs),
	Outputs: []action.Output{
		{Name: "version", Description: "Version rolled back to."},
		{Name: "previous-version", Description: "Version that ran before."},
		{Name: "status", Description: "success, rolled-back (the target failed; what ran before is back), failed, or bad-input (refused before anything was changed, e.g. confirm not ROLLBACK)."},
		{Name: "plan", Description: "What the rollback changed, as JSON (see deploy's plan output)."},
	},
}
