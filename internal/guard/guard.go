// Package guard decides whether a run must be skipped to avoid loops, wasted
// deploys and untrusted code: a skip marker in the commit message, a skip-checks
// trailer, a workflow_run whose triggering workflow did not succeed, or one that a
// pull request (a fork's above all) triggered.
package guard

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Markers skip a run when they appear anywhere in the commit message, in any case.
var Markers = []string{"[skip ci]", "[ci skip]", "[no ci]", "[skip actions]", "[actions skip]"}

// Decision is the guard's verdict.
type Decision struct {
	Skip   bool
	Reason string
	// Warning is set when the decision was taken on less than the full message.
	Warning string
}

// CommitMessageFunc returns the full message of a commit (git log -1 --format=%B).
type CommitMessageFunc func(sha string) (string, error)

var shaPattern = regexp.MustCompile(`^[0-9a-fA-F]{7,64}$`)

// Decide applies loop protection to an event. payload is the decoded event file;
// commitMessage is consulted only for Gitea's workflow_run, whose payload carries
// no head_commit.
func Decide(event string, payload map[string]any, commitMessage CommitMessageFunc) Decision {
	switch event {
	case "workflow_dispatch", "schedule", "repository_dispatch":
		return Decision{Reason: event + ": never skipped (started on purpose)"}
	case "push":
		head, _ := payload["head_commit"].(map[string]any)
		msg, ok := head["message"].(string)
		if !ok {
			return Decision{Skip: true, Reason: "push: the event has no head commit (a deleted branch or tag, or no event payload): nothing to deploy"}
		}
		return fromMessage("push: head commit", msg)
	case "workflow_run":
		return decideWorkflowRun(payload, commitMessage)
	case "":
		return Decision{Reason: "no event (not in a runner): nothing to check"}
	}
	return Decision{Reason: event + ": not checked for skip markers"}
}

func decideWorkflowRun(payload map[string]any, commitMessage CommitMessageFunc) Decision {
	run, _ := payload["workflow_run"].(map[string]any)
	if run == nil {
		return Decision{Skip: true, Reason: "workflow_run: the event has no workflow_run object, so the triggering run's result is unknown"}
	}
	if c, _ := run["conclusion"].(string); c != "success" {
		if c == "" {
			c = "none"
		}
		return Decision{Skip: true, Reason: fmt.Sprintf("workflow_run: the triggering workflow concluded %q, not success", c)}
	}
	if reason := untrustedRun(payload, run); reason != "" {
		return Decision{Skip: true, Reason: "workflow_run: " + reason}
	}
	// GitHub sends the head commit with its full message.
	if head, _ := run["head_commit"].(map[string]any); head != nil {
		if msg, ok := head["message"].(string); ok {
			return fromMessage("workflow_run: head commit", msg)
		}
	}
	// Gitea sends only the title (display_title); the trailer lives in the body,
	// so read the full message from the checkout when the title does not decide.
	title, _ := run["display_title"].(string)
	if m := findMarker(title); m != "" {
		return Decision{Skip: true, Reason: fmt.Sprintf("workflow_run: run title says %q", m)}
	}
	sha, _ := run["head_sha"].(string)
	if !shaPattern.MatchString(sha) {
		return Decision{
			Reason:  "workflow_run: no skip marker in the run title",
			Warning: fmt.Sprintf("workflow_run: head_sha %q is not a commit id; only the title was checked", sha),
		}
	}
	msg, err := commitMessage(sha)
	if err != nil {
		return Decision{
			Reason:  "workflow_run: no skip marker in the run title",
			Warning: fmt.Sprintf("workflow_run: could not read commit %s (%v); only the title was checked — check out with fetch-depth that includes it", sha, err),
		}
	}
	return fromMessage("workflow_run: head commit "+shortSHA(sha), msg)
}

// trustedEvents are the events whose workflow runs only ever carry the
// repository's own commits. A pull_request run carries the head branch of the pull
// request, which may be a fork's: GitHub matches a workflow_run's branches: filter
// against that head branch, so a fork's "main" would pass it.
var trustedEvents = []string{"push", "workflow_dispatch", "schedule"}

// untrustedRun says why the triggering run may carry code that is not the
// repository's own, or "" when it carries only the repository's. GitHub sends
// head_repository; Gitea omits it when empty, so the triggering event decides
// there, and a payload that names neither is refused.
func untrustedRun(payload, run map[string]any) string {
	ev, _ := run["event"].(string)
	if ev == "" && run["head_repository"] == nil {
		return "the payload names neither the triggering event nor the head repository, so a pull request from a fork cannot be ruled out"
	}
	if ev != "" && !slices.Contains(trustedEvents, ev) {
		return fmt.Sprintf("triggered by a %s event, not by a push to the repository: only push, workflow_dispatch and schedule runs are deployed", ev)
	}
	if head, ok := run["head_repository"].(map[string]any); ok {
		repo, _ := payload["repository"].(map[string]any)
		if repo == nil {
			repo, _ = run["repository"].(map[string]any)
		}
		if !sameRepository(head, repo) {
			return fmt.Sprintf("the head repository %s is not the repository %s (a fork): its commits are never deployed", repoName(head), repoName(repo))
		}
	} else if run["head_repository"] != nil {
		return "head_repository is not an object, so a fork cannot be ruled out"
	}
	return ""
}

// sameRepository compares by id where both have one, else by full name.
func sameRepository(a, b map[string]any) bool {
	if a == nil || b == nil {
		return false
	}
	if ida, ok := a["id"].(float64); ok {
		if idb, ok := b["id"].(float64); ok {
			return ida == idb
		}
	}
	na, _ := a["full_name"].(string)
	nb, _ := b["full_name"].(string)
	return na != "" && strings.EqualFold(na, nb)
}

func repoName(r map[string]any) string {
	if n, _ := r["full_name"].(string); n != "" {
		return n
	}
	return "(unnamed)"
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func fromMessage(where, msg string) Decision {
	if m := findMarker(msg); m != "" {
		return Decision{Skip: true, Reason: fmt.Sprintf("%s says %q", where, m)}
	}
	if HasSkipChecksTrailer(msg) {
		return Decision{Skip: true, Reason: where + " ends with the trailer \"skip-checks: true\""}
	}
	return Decision{Reason: where + " has no skip marker"}
}

// findMarker returns the first marker in msg (as written there), or "". Markers
// match ASCII letters in any case and nothing else: a non-ASCII letter that folds
// to an ASCII one (the Kelvin sign K) is not a marker.
func findMarker(msg string) string {
	for _, m := range Markers {
		if i := indexFoldASCII(msg, m); i >= 0 {
			return msg[i : i+len(m)]
		}
	}
	return ""
}

// indexFoldASCII is the byte offset of the first match of the ASCII string sub in
// s, ignoring ASCII case, or -1.
func indexFoldASCII(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFoldASCII(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

func equalFoldASCII(a, b string) bool {
	for i := range len(a) {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// HasSkipChecksTrailer reports whether the message's last paragraph — its trailer
// block, after a blank line — holds "skip-checks: true" (or "skip-checks:true").
func HasSkipChecksTrailer(msg string) bool {
	msg = strings.TrimSpace(strings.ReplaceAll(msg, "\r\n", "\n"))
	i := strings.LastIndex(msg, "\n\n")
	if i < 0 {
		return false // a subject line alone has no trailers
	}
	for line := range strings.Lines(msg[i+2:]) {
		if isSkipChecks(strings.TrimSpace(line)) {
			return true
		}
	}
	return false
}

// isSkipChecks matches the trailer line "skip-checks: true", ASCII letters in any
// case, any spaces after the colon.
func isSkipChecks(line string) bool {
	key, value, ok := strings.Cut(line, ":")
	value = strings.TrimLeft(value, " \t")
	return ok && len(key) == len("skip-checks") && equalFoldASCII(key, "skip-checks") &&
		len(value) == len("true") && equalFoldASCII(value, "true")
}
