// Package cli dispatches deploykit's subcommands: it builds the action context at
// the edge, parses inputs, runs the command, handles signals and maps errors to
// annotations and exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/buildimage"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/migrationsmoke"
	"github.com/org/deploy-kit/internal/restore"
	"github.com/org/deploy-kit/internal/rollback"
)

// Command is one subcommand.
type Command struct {
	Spec *action.Spec
	// Run decodes the validated inputs into the subcommand's options struct and
	// runs it (see typed).
	Run func(ctx context.Context, a *action.Context, in *action.Inputs) error
	// Options is a zero value of the options struct, for action.CheckOptions.
	Options any
	// Action is true for the subcommands that have an actions/<name>/action.yml.
	Action bool
	// Args is true for a subcommand that takes arguments after its flags
	// (with-secrets -- cmd); the others refuse them.
	Args bool
}

// typed makes the Command of a subcommand whose inputs decode into O: the one
// place inputs are read by name (ARCHITECTURE.md, "Rules every package keeps").
func typed[O any](spec *action.Spec, run func(context.Context, *action.Context, O) error) *Command {
	var zero O
	return &Command{Spec: spec, Options: zero, Run: func(ctx context.Context, a *action.Context, in *action.Inputs) error {
		var o O
		in.Decode(&o)
		return run(ctx, a, o)
	}}
}

func asAction(c *Command) *Command { c.Action = true; return c }

// Commands lists every subcommand, in the order usage shows them.
var Commands = []*Command{
	asAction(typed(&buildimage.Spec, buildimage.Run)),
	asAction(typed(&migrationsmoke.Spec, migrationsmoke.Run)),
	asAction(typed(&deploy.Spec, deploy.Run)),
	asAction(typed(&rollback.Spec, rollback.Run)),
	asAction(typed(&backup.Spec, backup.Run)),
	asAction(typed(&restore.Spec, restore.Run)),
	typed(&guardSpec, runGuard),
	withArgs(typed(&withSecretsSpec, runWithSecrets)),
	typed(&historySpec, runHistory),
	typed(&versionSpec, runVersion),
}

func withArgs(c *Command) *Command { c.Args = true; return c }

// Lookup finds a subcommand by name.
func Lookup(name string) *Command {
	for _, c := range Commands {
		if c.Spec.Name == name {
			return c
		}
	}
	return nil
}

// Usage prints the list of subcommands.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: deploykit <command> [--input value ...]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range Commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.Spec.Name, c.Spec.Description)
	}
	fmt.Fprintln(w, "\nRun 'deploykit <command> --help' for a command's inputs and outputs.")
}

// Main runs deploykit with the given arguments (without the program name) and
// environment, and returns the exit code.
func Main(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		Usage(stderr)
		return action.ExitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		Usage(stdout)
		return action.ExitOK
	case "--version":
		args[0] = "version"
	}
	cmd := Lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "deploykit: unknown command %q\n\n", args[0])
		Usage(stderr)
		return action.ExitUsage
	}

	a := action.NewContext(environ, stdout)
	a.Spec = cmd.Spec
	defer a.Flush()
	in, err := action.ParseInputs(cmd.Spec, args[1:], a.Getenv, stdout)
	if errors.Is(err, action.ErrHelp) {
		return action.ExitOK
	}
	if err == nil && len(in.Args) > 0 && !cmd.Args {
		err = action.Usagef("deploykit %s: unexpected argument %q: inputs are flags, --name value (see 'deploykit %s --help')", cmd.Spec.Name, in.Args[0], cmd.Spec.Name)
	}
	if err != nil {
		a.Error(err)
		a.FinishStatus(err)
		return action.ExitCode(err)
	}
	a.Args = in.Args
	for _, secret := range in.Secrets() {
		a.Mask(secret)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var caught os.Signal
	done := make(chan error, 1)
	go func() { done <- cmd.Run(ctx, a, in) }()
	select {
	case err = <-done:
	case caught = <-sigs:
		// The first signal: start nothing new. The running step stops (its
		// commands get SIGTERM, then SIGKILL), the run puts production back in
		// a serving state by the cancel deadline, records and reports; the env
		// file and the lock it uses outlive it. A second signal, or the end of
		// the budget, exits at once: what is left, the next run repairs.
		a.Cancelling(time.Now())
		a.Logf("deploykit: received %v: stopping within %s; what is left, the next run repairs", caught, action.CancelBudget)
		cancel()
		select {
		case <-done:
		case again := <-sigs:
			a.Logf("deploykit: received %v again: exiting now; the next run repairs what is left", again)
		case <-time.After(action.CancelWait):
			a.Logf("deploykit: %s did not finish within %s of the signal: exiting; the next run repairs what is left", cmd.Spec.Name, action.CancelWait)
		}
		a.RunExitHooks()
		err = action.Failedf("deploykit %s was cancelled (%v)", cmd.Spec.Name, caught)
	}
	if err != nil {
		a.Error(err)
	}
	a.FinishStatus(err)
	return action.ExitCode(err)
}
