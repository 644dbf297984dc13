package cli

import (
	"context"
	"strings"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/secretfile"
)

// envFilePlaceholder in the command's arguments is replaced by the env file's path.
const envFilePlaceholder = "{env-file}"

var withSecretsSpec = action.Spec{
	Name: "with-secrets",
	Description: "Run a command with the job's prefixed secrets in a 0600 env file (path in {env-file} and DEPLOYKIT_ENV_FILE), " +
		"shredded afterwards: deploykit with-secrets -- docker compose --env-file {env-file} up -d",
	Inputs: []action.Input{deploy.Spec.Input("secret-prefix")},
}

type withSecretsOptions struct {
	SecretPrefix string `input:"secret-prefix"`
}

func runWithSecrets(ctx context.Context, a *action.Context, o withSecretsOptions) error {
	argv := a.Args
	if len(argv) == 0 {
		return action.Usagef("with-secrets: give the command to run after --, e.g. deploykit with-secrets -- docker compose --env-file %s up -d", envFilePlaceholder)
	}
	vars, err := secretfile.FromJob(a, o.SecretPrefix)
	if err != nil {
		return err
	}
	f, err := secretfile.WriteForJob(a, vars)
	if err != nil {
		return err
	}
	defer func() {
		if rmErr := f.Remove(); rmErr != nil {
			a.Warningf("%v", rmErr)
		}
	}()
	a.Logf("secret env file: %d variable(s) from %s*: %s", len(vars), o.SecretPrefix, strings.Join(secretfile.Keys(vars), ", "))

	args := make([]string, len(argv))
	for i, arg := range argv {
		args[i] = strings.ReplaceAll(arg, envFilePlaceholder, f.Path)
	}
	env := append(append([]string(nil), a.Environ()...), "DEPLOYKIT_ENV_FILE="+f.Path)
	if err := command.For(a, false).Run(ctx, command.Cmd{Argv: args, Env: env, Dir: a.Workspace()}); err != nil {
		return action.Failedf("%w", err)
	}
	return nil
}
