// Package compose reads compose files with compose-go (never by hand) and builds the
// `docker compose` command lines the kit runs.
package compose

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/org/deploy-kit/internal/command"
)

// Project is a compose project as the kit runs it.
type Project struct {
	File      string   // absolute path of the compose file
	Overrides []string // more compose files merged on top (-f)
	Name      string   // project name (-p)
	EnvFiles  []string // --env-file arguments, in order
	Env       []string // environment docker compose runs with
}

// Load parses the compose file exactly as docker compose will: with env for
// interpolation (the job environment plus the kit's DEPLOY_* and secret variables),
// the env files given (--env-file, e.g. DotEnv), the project name ("" derives
// it) and overrides merged on top (-f).
func Load(ctx context.Context, file, name string, env, envFiles []string, overrides ...string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions(append([]string{file}, overrides...),
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnv(env),
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithName(name),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}

// DotEnv is the project directory's .env, which docker compose stops reading once
// --env-file is given, so the kit passes it explicitly first.
func DotEnv(file string) []string {
	p := filepath.Join(filepath.Dir(file), ".env")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return []string{p}
	}
	return nil
}

func (p Project) base(args ...string) command.Cmd {
	argv := []string{"docker", "compose", "-p", p.Name, "-f", p.File}
	for _, f := range p.Overrides {
		argv = append(argv, "-f", f)
	}
	for _, f := range p.EnvFiles {
		argv = append(argv, "--env-file", f)
	}
	return command.Cmd{Argv: append(argv, args...), Dir: filepath.Dir(p.File), Env: p.Env}
}

// UpOptions shape `docker compose up`.
type UpOptions struct {
	Services    []string // empty: all
	Build       bool     // build images first (--build)
	PullMissing bool     // pull-only: never build, pull what is missing
	NoDeps      bool     // only the named services
	NoRecreate  bool     // leave running containers as they are
	Scale       map[string]int
	WaitTimeout time.Duration // --wait-timeout
	NoStart     bool          // create the containers, start none (--no-start)
	NoWait      bool          // start them and return, without --wait (a cancelled job has seconds)
}

// Up starts the project and waits for every container to be running and healthy
// (with NoStart: only creates the containers).
func (p Project) Up(o UpOptions) command.Cmd {
	args := []string{"up", "-d", "--wait", "--remove-orphans"}
	switch {
	case o.NoStart:
		args = []string{"up", "--no-start", "--remove-orphans"}
	case o.NoWait:
		args = []string{"up", "-d", "--remove-orphans"}
	case o.WaitTimeout > 0:
		args = append(args, "--wait-timeout", fmt.Sprint(int(o.WaitTimeout.Round(time.Second).Seconds())))
	}
	switch {
	case o.PullMissing:
		args = append(args, "--no-build", "--pull", "missing")
	case o.Build:
		args = append(args, "--build")
	default:
		args = append(args, "--no-build", "--pull", "never")
	}
	if o.NoDeps {
		args = append(args, "--no-deps")
	}
	if o.NoRecreate {
		args = append(args, "--no-recreate")
	}
	names := make([]string, 0, len(o.Scale))
	for svc := range o.Scale {
		names = append(names, svc)
	}
	slices.Sort(names)
	for _, svc := range names {
		args = append(args, "--scale", fmt.Sprintf("%s=%d", svc, o.Scale[svc]))
	}
	return p.base(append(args, o.Services...)...)
}

// Down stops and removes the project's containers, networks and volumes.
func (p Project) Down() command.Cmd {
	return p.base("down", "--volumes", "--remove-orphans", "--timeout", "5")
}

// Build builds images; noCache skips the build cache.
func (p Project) Build(services []string, noCache bool) command.Cmd {
	args := []string{"build"}
	if noCache {
		args = append(args, "--no-cache")
	}
	return p.base(append(args, services...)...)
}

// Version prints the compose plugin's version.
func Version() command.Cmd {
	return command.Cmd{Argv: []string{"docker", "compose", "version", "--short"}}
}

// ManualCommand renders a command for a person to paste: shell-quoted.
func ManualCommand(c command.Cmd) string {
	return strings.TrimSpace(c.String())
}

// StackDeploy deploys the project's files as a Docker Swarm stack named after
// the project, waiting for the services to converge (--detach=false). It removes
// services no longer in the files (--prune) and sends registry credentials to
// the nodes (--with-registry-auth). resolveImage is always, changed or never.
func (p Project) StackDeploy(resolveImage string) command.Cmd {
	argv := []string{"docker", "stack", "deploy", "--with-registry-auth", "--detach=false", "--prune", "--resolve-image", resolveImage, "-c", p.File}
	for _, f := range p.Overrides {
		argv = append(argv, "-c", f)
	}
	return command.Cmd{Argv: append(argv, p.Name), Dir: filepath.Dir(p.File), Env: p.Env}
}

// ServiceRollback returns a swarm service to its previous spec and waits
// (detach: starts the rollback and returns, Swarm carries it out).
func ServiceRollback(service string, detach bool) command.Cmd {
	return command.Cmd{Argv: []string{"docker", "service", "rollback", fmt.Sprintf("--detach=%t", detach), service}}
}
