// Package git builds the git command lines the kit runs (as argv, run by package
// command).
package git

import "github.com/org/deploy-kit/internal/command"

// CommitMessage prints the full message of one commit.
func CommitMessage(dir, rev string) command.Cmd {
	return command.Cmd{Argv: []string{"git", "log", "-1", "--format=%B", rev, "--"}, Dir: dir}
}
