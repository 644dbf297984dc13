package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/git"
	"github.com/org/deploy-kit/internal/version"
)

// GitInfo is what the deploy learnt from the checkout.
type GitInfo struct {
	Dir       string // the checkout deployed from: the workspace, or a worktree of git-ref
	SHA       string
	Branch    string // checked-out branch of the workspace ("" when detached)
	Default   string // the repository's default branch
	OnDefault bool   // deploying the tip of the default branch
	Current   *semver.Version
	Bump      string // patch, minor or major when this deploy bumps; "" when read-only
	ReadOnly  string // why the version is read-only
}

const origin = "origin"

// planGit resolves what is deployed and its version, without writing anything:
// on the default branch with a version bump, the next version; otherwise VERSION
// as it is when the commit carries its tag, else VERSION-<shortsha>.
func (s *State) planGit(ctx context.Context) error {
	ws := s.Workspace
	head, err := s.Exec.Output(ctx, git.ResolveCommit(ws, "HEAD"))
	if err != nil {
		return action.Usagef("the workspace %s is not a git checkout with a commit: %v", ws, err)
	}
	g := GitInfo{Dir: ws, SHA: strings.TrimSpace(head)}
	if b, err := s.Exec.Output(ctx, git.CurrentBranch(ws)); err == nil {
		g.Branch = strings.TrimSpace(b)
	}
	g.Default = s.defaultBranch(ctx)

	ref := s.Opts.GitRef
	if ref != "" {
		sha, err := s.Exec.Output(ctx, git.ResolveCommit(ws, ref))
		if err != nil {
			return action.Usagef("input git-ref: %q does not name a commit in %s (fetch it first, e.g. actions/checkout with fetch-depth: 0)", ref, ws)
		}
		if sha = strings.TrimSpace(sha); sha != g.SHA {
			g.SHA = sha
			if g.Dir, err = s.worktree(ctx, sha); err != nil {
				return err
			}
		}
	}
	if g.Current, err = version.Read(g.Dir); err != nil {
		return action.Usagef("%v", err)
	}
	bump := s.Opts.VersionBump
	switch {
	case bump == "none":
		g.ReadOnly = "version-bump is none"
	case g.Branch != "" && g.Branch != g.Default, g.Dir != ws:
		g.ReadOnly = fmt.Sprintf("not the default branch %s (deploying %s): versions are bumped only there", g.Default, describeRef(g, ref))
	default:
		if g.ReadOnly, err = s.notDefaultTip(ctx, g); err != nil {
			return err
		}
		if g.ReadOnly == "" {
			g.OnDefault, g.Bump = true, bump
		}
	}
	s.Git = g
	if g.Bump != "" {
		next, err := version.Bump(g.Current, g.Bump)
		if err != nil {
			return action.Usagef("%v", err)
		}
		s.Version = next.String()
	} else {
		s.Version = g.Current.String()
		tags, err := s.Exec.Output(ctx, git.TagsAt(ws, g.SHA))
		if err != nil {
			s.A.Warningf("listing the tags of %s: %v; the version is read as untagged", g.SHA[:7], err)
		}
		if !containsLine(tags, "v"+g.Current.String()) {
			s.Version += "-" + g.SHA[:7]
		}
	}
	if g.Dir != ws {
		rel, err := filepath.Rel(ws, s.ComposeFile)
		if err == nil && !strings.HasPrefix(rel, "..") {
			s.ComposeFile = filepath.Join(g.Dir, rel)
		}
		if _, err := os.Stat(s.ComposeFile); err != nil {
			return action.Usagef("input compose-file: %s does not exist at %s", rel, ref)
		}
	}
	return nil
}

// notDefaultTip says why the checkout must not be released as the next version,
// or "" when it may: the commit deployed is the tip of the default branch as the
// remote has it now, and no tracked file differs from it. The branch name the job
// was started for (GITHUB_REF, workflow_run's head_branch) is never trusted for
// this: a fork's pull request can carry a branch called main.
func (s *State) notDefaultTip(ctx context.Context, g GitInfo) (string, error) {
	if !git.ValidRef(g.Default) {
		return "", action.Failedf("the default branch name %q is not a branch name", g.Default)
	}
	out, err := s.Exec.Output(ctx, git.RemoteBranch(g.Dir, origin, g.Default))
	if err != nil {
		return "", action.Failedf("version-bump: cannot read %s/%s to check that %s is its tip: %v", origin, g.Default, g.SHA[:7], err)
	}
	tip, _, _ := strings.Cut(strings.TrimSpace(out), "\t")
	switch {
	case tip == "":
		return fmt.Sprintf("%s has no branch %s", origin, g.Default), nil
	case tip != g.SHA:
		return fmt.Sprintf("%s is not the tip of %s/%s (%s): versions are bumped only there", g.SHA[:7], origin, g.Default, tip[:min(7, len(tip))]), nil
	}
	changes, err := s.Exec.Output(ctx, git.TrackedChanges(g.Dir))
	if err != nil {
		return "", action.Failedf("version-bump: %v", err)
	}
	if changes = strings.TrimSpace(changes); changes != "" {
		return "", action.Failedf("version-bump: the checkout %s has uncommitted changes to tracked files (%s): a release is cut only from a clean checkout of %s/%s; commit or discard them first", g.Dir, strings.Join(strings.Fields(changes), " "), origin, g.Default)
	}
	return "", nil
}

func describeRef(g GitInfo, ref string) string {
	switch {
	case ref != "":
		return ref
	case g.Branch != "":
		return g.Branch
	}
	return "a detached HEAD"
}

func containsLine(text, line string) bool {
	for l := range strings.Lines(text) {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// defaultBranch is the repository's default branch (event payload, origin/HEAD),
// else main.
func (s *State) defaultBranch(ctx context.Context) string {
	payload, _ := s.A.Event()
	if b := git.DefaultBranch(ctx, payload, s.Exec, s.Workspace); b != "" {
		return b
	}
	return "main"
}

// worktree checks sha out beside the workspace (never changing the job's checkout)
// and removes it when the deploy ends.
func (s *State) worktree(ctx context.Context, sha string) (string, error) {
	if s.Opts.DryRun {
		s.A.Logf("    dry run: would check %s out in a worktree; reading files from the workspace", sha[:7])
		return s.Workspace, nil
	}
	dir, err := os.MkdirTemp(s.A.TempDir(), "deploykit-ref-"+sha[:7]+"-")
	if err != nil {
		return "", action.Failedf("worktree for %s: %v", sha, err)
	}
	os.Remove(dir) // git worktree add creates it
	if _, err := s.Exec.Output(ctx, git.WorktreeAdd(s.Workspace, dir, sha)); err != nil {
		return "", action.Failedf("checking out %s: %v", sha, err)
	}
	s.Defer(func() {
		if _, err := s.Exec.Output(context.Background(), git.WorktreeRemove(s.Workspace, dir)); err != nil {
			s.A.Warningf("removing the worktree %s: %v (git worktree prune removes it later)", dir, err)
		}
	})
	return dir, nil
}
