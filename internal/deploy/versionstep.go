package deploy

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/git"
	"github.com/org/deploy-kit/internal/version"
)

// pushAttempts bounds the fetch-rebase-retry loop on a rejected push.
const pushAttempts = 3

type versionStep struct{}

func (versionStep) String() string { return "version" }

// Run bumps VERSION on the default branch, commits it with [skip ci], tags it and
// pushes both atomically. When the push is rejected because the branch moved, it
// drops its commit, fetches, rebases onto the new tip (planGit made sure the
// checkout was the clean tip, so nothing of the job's is lost), checks the new
// tree as preflight did, bumps again from the VERSION found there and retries, a
// bounded number of times.
func (versionStep) Run(ctx context.Context, s *State) error {
	g := s.Git
	if g.Bump == "" {
		return Skip("read-only (%s): version %s", g.ReadOnly, s.Version)
	}
	ws := s.Workspace
	run := func(c command.Cmd) error {
		c.Env = s.gitIdentity(ctx)
		return s.Exec.Run(ctx, c)
	}
	current := g.Current
	for attempt := 1; ; attempt++ {
		next, err := version.Bump(current, g.Bump)
		if err != nil {
			return action.Usagef("%v", err)
		}
		tag, msg := version.Tag(next), version.CommitMessage(next)
		if !s.Opts.DryRun {
			if err := version.Write(ws, next); err != nil {
				return action.Failedf("writing VERSION: %v", err)
			}
		}
		if err := run(git.Commit(ws, msg, version.File)); err != nil {
			return action.Failedf("committing VERSION: %v", err)
		}
		if err := run(git.AnnotatedTag(ws, tag, msg)); err != nil {
			return action.Failedf("tagging %s: %v (does the tag exist already?)", tag, err)
		}
		pushErr := run(git.PushBranchAndTag(ws, origin, g.Default, tag))
		if pushErr == nil {
			s.Version = next.String()
			break
		}
		if attempt == pushAttempts {
			return action.Failedf("pushing %s to %s/%s failed %d times, last: %w", tag, origin, g.Default, attempt, pushErr)
		}
		s.A.Logf("    push rejected (attempt %d of %d): fetching %s and rebasing", attempt, pushAttempts, g.Default)
		for _, c := range []command.Cmd{
			git.DeleteTag(ws, tag),
			git.ResetHard(ws, "HEAD~1"),
			git.Fetch(ws, origin, g.Default),
			git.Rebase(ws, origin+"/"+g.Default),
		} {
			if err := run(c); err != nil {
				return action.Failedf("recovering from the rejected push: %v", err)
			}
		}
		if current, err = version.Read(ws); err != nil {
			return action.Failedf("%w", err)
		}
		// The tree now holds the commits that arrived meanwhile: check it as
		// preflight checked the one it replaced, before releasing it.
		if err := s.recheck(ctx); err != nil {
			return err
		}
	}
	if !s.Opts.DryRun {
		sha, err := s.Exec.Output(ctx, git.ResolveCommit(ws, "HEAD"))
		if err != nil {
			return action.Failedf("%w", err)
		}
		s.Git.SHA = strings.TrimSpace(sha)
		s.Compose.Env = s.composeEnv(s.Version, s.Git.SHA)
	}
	if s.Lock.Lock != nil {
		s.Lock.Holder.Version = s.Version
		if err := s.Lock.Lock.Update(s.Lock.Holder); err != nil {
			s.A.Logf("    could not write the version into the lock file: %v", err)
		}
	}
	if s.Opts.DryRun {
		s.Did("dry run: would commit VERSION %s, tag v%s and push to %s/%s", s.Version, s.Version, origin, g.Default)
	} else {
		s.Did("%s: committed, tagged v%s and pushed to %s/%s", s.Version, s.Version, origin, g.Default)
	}
	return nil
}

// gitIdentity is the environment for committing: the job's, with the commit's
// author and committer set to commit-author, else whoever triggered the run (never
// the runner host's own git identity); outside a runner, git's configuration, or a
// fallback when it has none.
func (s *State) gitIdentity(ctx context.Context) []string {
	env := append([]string(nil), s.A.Environ()...)
	name, email := s.commitAuthor()
	if name == "" {
		if _, err := s.Exec.Output(ctx, git.ConfigGet(s.Workspace, "user.email")); err == nil {
			return env
		}
		name, email = "deploy-kit", "deploy-kit@localhost"
	}
	return append(env, "GIT_AUTHOR_NAME="+name, "GIT_AUTHOR_EMAIL="+email, "GIT_COMMITTER_NAME="+name, "GIT_COMMITTER_EMAIL="+email)
}

// commitAuthor is commit-author, else the triggering actor with the forge's
// noreply address (GitHub: <id>+<login>@users.noreply.github.com; Gitea:
// <login>@noreply.<host>, its default NO_REPLY_ADDRESS), else "".
func (s *State) commitAuthor() (name, email string) {
	if m := commitAuthor.FindStringSubmatch(s.Opts.CommitAuthor); m != nil {
		return m[1], m[2]
	}
	actor := s.A.Getenv("GITHUB_ACTOR")
	if actor == "" || strings.ContainsAny(actor, "<>@/ \t\n") {
		return "", ""
	}
	host := "localhost"
	if u, err := url.Parse(s.A.Getenv("GITHUB_SERVER_URL")); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	switch {
	case s.A.Gitea:
		return actor, actor + "@noreply." + host
	case host == "github.com":
		if id := s.A.Getenv("GITHUB_ACTOR_ID"); id != "" {
			return actor, id + "+" + actor + "@users.noreply.github.com"
		}
		return actor, actor + "@users.noreply.github.com"
	}
	return actor, actor + "@users.noreply." + host // GitHub Enterprise Server
}

// recheck runs preflight's checks of the tree again after the checkout moved: the
// compose model and the pull-only rules, and the target's own checks.
func (s *State) recheck(ctx context.Context) error {
	sha, err := s.Exec.Output(ctx, git.ResolveCommit(s.Workspace, "HEAD"))
	if err != nil {
		return action.Failedf("%w", err)
	}
	s.Git.SHA = strings.TrimSpace(sha)
	err = s.loadProject(ctx)
	if err == nil {
		_, err = s.Target.Preflight(ctx, s)
	}
	if err != nil {
		return fmt.Errorf("%s/%s moved to %s, which preflight refuses: %w", origin, s.Git.Default, s.Git.SHA[:7], err)
	}
	s.A.Logf("    preflight checked %s again", s.Git.SHA[:7])
	return nil
}
