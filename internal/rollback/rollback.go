package rollback

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/compose"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/git"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/remote"
	"github.com/org/deploy-kit/internal/secretfile"
)

// Confirmation is the word a person types to confirm a rollback.
const Confirmation = "ROLLBACK"

// Run is `deploykit rollback`: check the confirmation, pick the target, then run
// the deploy pipeline read-only for it, with the schema check after preflight.
func Run(ctx context.Context, a *action.Context, o Options) error {
	if got := strings.TrimSpace(o.Confirm); got != Confirmation {
		return action.Usagef("input confirm: %q is not %s: type %s, in capitals, to confirm the rollback", got, Confirmation, Confirmation)
	}
	tmpl := o.ImageTemplate
	if tmpl != "" {
		if err := checkTemplate(tmpl); err != nil {
			return err
		}
	}
	exec := command.For(a, false)
	// Without target-tag the target comes from the history: read under the
	// stack's lock, which the pipeline then keeps (a deploy that finished
	// while this rollback waited has moved what is current).
	var held *deploy.Held
	var conn *remote.Conn
	if o.Remote.Remote() {
		if _, _, err := remote.Parse(o.Remote, a.TempDir()); err != nil {
			return err
		}
		var err error
		if conn, err = remote.Connect(ctx, a, o.Remote); err != nil {
			return action.Failedf("%w", err)
		}
		defer conn.End()
	}
	if o.TargetTag == "" && !o.DryRun {
		stack, err := stackName(ctx, a, o)
		if err != nil {
			return err
		}
		d := deploy.DefaultOptions()
		d.RecordOptions, d.Environment = o.RecordOptions, o.Environment
		if held, err = deploy.TakeLock(ctx, a, d, stack, history.ActionRollback, conn); err != nil {
			return err
		}
		defer func() { _ = held.Lock.Release() }()
	}
	ref, err := target(ctx, a, o, exec, conn)
	if err != nil {
		return err
	}

	// The deploy pipeline's options: this rollback's, a read-only version of the
	// target, a fresh build without cache (or the target's image with pull-only),
	// and the version that ran before brought back if the target fails; deploy's
	// defaults for the rest.
	d := deploy.DefaultOptions()
	d.TargetOptions, d.VerifyOptions, d.RecordOptions = o.TargetOptions, o.VerifyOptions, o.RecordOptions
	d.MigrationsPath, d.DatabaseURL = o.MigrationsPath, o.DatabaseURL
	d.GitRef, d.VersionBump, d.NoCache, d.AutoRollback = ref, "none", !o.PullOnly, true
	d.Remote = o.Remote
	steps := []deploy.Step{
		deploy.PreflightStep, // the target's tree in a worktree, compose file, engine, disk, networks
		schemaStep{migrations: o.MigrationsPath, url: o.DatabaseURL, allowAhead: o.AllowSchemaAhead},
		deploy.LockStep,      // one deploy or rollback per stack at a time (held already when the target came from the history)
		deploy.RepairStep,    // what a killed run left
		deploy.PromotionStep, // what runs now, from the history under the lock
		deploy.VersionStep,   // read-only: never bumps, tags or pushes
		deploy.SecretsStep,   // ENV_* variables into a 0600 env file
		deploy.SnapshotStep,  // what runs now, to come back to if the target fails
		deploy.PlanStep,      // what the rollback changes, service by service
		deploy.ApplyStep,     // build without cache (or pull) and docker compose up --wait
		deploy.VerifyStep,    // health and smoke checks
	}
	return deploy.RunPlan(ctx, a, d, deploy.Plan{Action: history.ActionRollback, Steps: steps, ImageTemplate: tmpl, Lock: held, Remote: conn})
}

// checkTemplate accepts an image template that names a pinned image.
func checkTemplate(tmpl string) error {
	sample := strings.NewReplacer("{sha}", strings.Repeat("a", 40), "{short}", "aaaaaaa", "{tag}", "sha-aaaaaaa", "{version}", "1.0.0").Replace(tmpl)
	ref, err := reference.ParseNormalizedNamed(sample)
	if err != nil {
		return action.Usagef("input image-template: %q is not an image reference: %v", tmpl, err)
	}
	if _, tagged := ref.(reference.Tagged); !tagged {
		if _, digested := ref.(reference.Digested); !digested {
			return action.Usagef("input image-template: %q has no tag: use {sha}, {short}, {tag} or {version}, e.g. registry/app:sha-{short}", tmpl)
		}
	}
	if sample == tmpl {
		return action.Usagef("input image-template: %q has no placeholder: use {sha}, {short}, {tag} or {version}", tmpl)
	}
	return nil
}

// target resolves what to roll back to: target-tag, which must exist, or the last
// successful deploy before the current one in the history. It returns a git ref.
func target(ctx context.Context, a *action.Context, o Options, exec command.Executor, conn *remote.Conn) (string, error) {
	ws := a.Workspace()
	if tag := o.TargetTag; tag != "" {
		if !git.ValidRef(tag) { // the same rule deploy's git-ref, which it becomes, applies
			return "", action.Usagef("input target-tag: %q is not a tag name", tag)
		}
		sha, err := exec.Output(ctx, git.ResolveCommit(ws, "refs/tags/"+tag))
		if err != nil {
			tags, _ := exec.Output(ctx, command.Cmd{Argv: []string{"git", "tag", "--sort=-v:refname"}, Dir: ws})
			return "", action.Usagef("input target-tag: tag %s does not exist in %s (tags: %s); check out with fetch-depth: 0 to have them all", tag, ws, list(tags, 10))
		}
		a.Logf("rolling back to %s: commit %s", tag, strings.TrimSpace(sha))
		return tag, nil
	}

	stack, err := stackName(ctx, a, o)
	if err != nil {
		return "", err
	}
	env := o.Environment
	h := history.File{Path: o.HistoryFile}
	if conn != nil {
		h.Host = conn
	}
	entries, err := h.Read()
	if err != nil {
		return "", action.Failedf("%w", err)
	}
	cur, ok := history.Current(entries, stack, env)
	if !ok {
		return "", action.Usagef("input target-tag is empty and %s has no successful deploy of %s on %s to roll back from: set target-tag", h.Path, stack, env)
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Stack != stack || e.Env != env || !e.Live() || e.Version == cur.Version {
			continue
		}
		if e.SHA() == "" {
			return "", action.Usagef("the last version before %s in %s, %s, has no commit recorded: set target-tag", cur.Version, h.Path, e.Version)
		}
		a.Logf("rolling back to %s (deployed %s): commit %s", e.Version, e.Time.Format("2006-01-02 15:04 MST"), e.SHA())
		return e.SHA(), nil
	}
	return "", action.Usagef("input target-tag is empty and %s holds no successful deploy of %s on %s before the current %s: set target-tag", h.Path, stack, env, cur.Version)
}

// stackName is the project name: the input, or what compose derives from the
// file. The target is not known yet, so the kit's DEPLOY_* variables stand in
// for what the deploy will set (a file that requires DEPLOY_TAG still loads;
// the name may use DEPLOY_ENV), beside the job's secret variables.
func stackName(ctx context.Context, a *action.Context, o Options) (string, error) {
	if n := o.ProjectName; n != "" {
		return n, nil
	}
	file := o.ComposeFile
	if !filepath.IsAbs(file) {
		file = filepath.Join(a.Workspace(), file)
	}
	vars, err := secretfile.FromJob(a, o.SecretPrefix)
	if err != nil {
		return "", err
	}
	env := deploy.ComposeEnv(a.Environ(), "0.0.0", strings.Repeat("0", 40), o.Environment)
	for _, v := range vars {
		env = append(env, v.Key+"="+v.Value)
	}
	p, err := compose.Load(ctx, file, "", env, compose.DotEnv(file))
	if err != nil {
		return "", action.Usagef("compose file %s is not valid: %v", file, err)
	}
	return p.Name, nil
}

func list(text string, n int) string {
	f := strings.Fields(text)
	if len(f) == 0 {
		return "none"
	}
	if len(f) > n {
		return strings.Join(f[:n], ", ") + ", …"
	}
	return strings.Join(f, ", ")
}
