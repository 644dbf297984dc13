// Package git builds the git command lines the kit runs (as argv, run by package
// command). Revisions that come from inputs are passed after --end-of-options or
// validated by the caller, so they cannot be read as options.
package git

import (
	"context"
	"regexp"
	"strings"
	"time"

	"github.com/org/deploy-kit/internal/command"
)

func cmd(dir string, args ...string) command.Cmd {
	return command.Cmd{Argv: append([]string{"git"}, args...), Dir: dir}
}

// CommitMessage prints the full message of one commit.
func CommitMessage(dir, rev string) command.Cmd {
	return cmd(dir, "log", "-1", "--format=%B", rev, "--")
}

// ResolveCommit prints the commit a revision names.
func ResolveCommit(dir, rev string) command.Cmd {
	return cmd(dir, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
}

// CommitTime prints a commit's committer date (strict ISO 8601).
func CommitTime(dir, rev string) command.Cmd {
	return cmd(dir, "show", "-s", "--format=%cI", "--end-of-options", rev+"^{commit}", "--")
}

// ImageTag is the image tag of a commit, sha-<first 7 characters>: what
// build-image pushes and what deploy's DEPLOY_TAG names. "" for no commit.
func ImageTag(sha string) string {
	if sha == "" {
		return ""
	}
	return "sha-" + sha[:min(7, len(sha))]
}

// CommitTimes returns a function that reads a commit's committer time from the
// checkout dir, false when it is unknown there (or the sha is no revision name).
func CommitTimes(ctx context.Context, run command.Executor, dir string) func(sha string) (time.Time, bool) {
	return func(sha string) (time.Time, bool) {
		if !ValidRef(sha) {
			return time.Time{}, false
		}
		out, err := run.Output(ctx, CommitTime(dir, sha))
		if err != nil {
			return time.Time{}, false
		}
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(out))
		return t, err == nil
	}
}

// ShortSHA prints the 7-character abbreviation of a commit.
func ShortSHA(dir, rev string) command.Cmd {
	return cmd(dir, "rev-parse", "--short=7", "--verify", "--end-of-options", rev+"^{commit}")
}

// CurrentBranch prints the checked-out branch (fails on a detached HEAD).
func CurrentBranch(dir string) command.Cmd {
	return cmd(dir, "symbolic-ref", "--short", "-q", "HEAD")
}

// RemoteHead prints origin's default branch as origin/<name>.
func RemoteHead(dir, remote string) command.Cmd {
	return cmd(dir, "rev-parse", "--abbrev-ref", remote+"/HEAD")
}

// RemoteBranch prints the commit a remote's branch points at, as the remote says
// now ("<sha>\trefs/heads/<branch>"; nothing when the branch does not exist).
func RemoteBranch(dir, remote, branch string) command.Cmd {
	return cmd(dir, "ls-remote", "--heads", remote, "refs/heads/"+branch)
}

// TrackedChanges lists tracked files that differ from HEAD, staged or not.
func TrackedChanges(dir string) command.Cmd {
	return cmd(dir, "status", "--porcelain", "--untracked-files=no")
}

// TagsAt lists the tags pointing at a commit.
func TagsAt(dir, rev string) command.Cmd {
	return cmd(dir, "tag", "--points-at", rev)
}

// ConfigGet prints a config value (fails when unset).
func ConfigGet(dir, key string) command.Cmd {
	return cmd(dir, "config", "--get", key)
}

// Commit commits the given paths with a message.
func Commit(dir, message string, paths ...string) command.Cmd {
	return cmd(dir, append([]string{"commit", "-q", "-m", message, "--"}, paths...)...)
}

// AnnotatedTag creates an annotated tag at HEAD.
func AnnotatedTag(dir, tag, message string) command.Cmd {
	return cmd(dir, "tag", "-a", tag, "-m", message)
}

// DeleteTag deletes a local tag.
func DeleteTag(dir, tag string) command.Cmd { return cmd(dir, "tag", "-d", tag) }

// PushBranchAndTag pushes HEAD to the branch and the tag in one atomic push: both
// land or neither does.
func PushBranchAndTag(dir, remote, branch, tag string) command.Cmd {
	return cmd(dir, "push", "--atomic", remote, "HEAD:refs/heads/"+branch, "refs/tags/"+tag)
}

// Fetch fetches a branch from a remote.
func Fetch(dir, remote, branch string) command.Cmd {
	return cmd(dir, "fetch", "-q", remote, "refs/heads/"+branch+":refs/remotes/"+remote+"/"+branch)
}

// ResetHard moves the branch and work tree to rev.
func ResetHard(dir, rev string) command.Cmd { return cmd(dir, "reset", "-q", "--hard", rev) }

// Rebase replays local commits on top of upstream.
func Rebase(dir, upstream string) command.Cmd { return cmd(dir, "rebase", "-q", upstream) }

// WorktreeAdd checks rev out, detached, into path.
func WorktreeAdd(dir, path, rev string) command.Cmd {
	return cmd(dir, "worktree", "add", "-q", "--detach", path, rev)
}

// WorktreeRemove removes a worktree made by WorktreeAdd.
func WorktreeRemove(dir, path string) command.Cmd {
	return cmd(dir, "worktree", "remove", "--force", path)
}

// ListTree lists the files under path at rev.
func ListTree(dir, rev, path string) command.Cmd {
	return cmd(dir, "ls-tree", "--name-only", "--end-of-options", rev, "--", path+"/")
}

// refName accepts what git accepts as a branch, tag or commit name, and nothing
// that could be read as an option or a path trick.
// '+' is there for semver build metadata in tags (v1.2.3+build.4).
var refName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/+-]*$`)

// ValidRef reports whether s is safe to pass as a ref.
func ValidRef(s string) bool { return refName.MatchString(s) }

// DefaultBranch is the repository's default branch: the event payload's
// repository.default_branch, else origin/HEAD in the checkout dir; "" when neither
// says.
func DefaultBranch(ctx context.Context, payload map[string]any, run command.Executor, dir string) string {
	if repo, ok := payload["repository"].(map[string]any); ok {
		if b, ok := repo["default_branch"].(string); ok && b != "" {
			return b
		}
	}
	if out, err := run.Output(ctx, RemoteHead(dir, "origin")); err == nil {
		if b := strings.TrimPrefix(strings.TrimSpace(out), "origin/"); b != "" && b != "HEAD" {
			return b
		}
	}
	return ""
}
