// Package guard decides whether a run must be skipped to avoid loops and wasted
// deploys (DESIGN §4 loop protection): a skip marker in the commit message, a
// skip-checks trailer, or a workflow_run whose triggering workflow did not succeed.
package guard

import (
	"fmt"
	"regexp"
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
			return Decision{Reason: "push: the event has no head commit (a deleted branch or tag): nothing to check"}
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

// findMarker returns the first marker in msg (as written there), or "".
func findMarker(msg string) string {
	lower := strings.ToLower(msg)
	for _, m := range Markers {
		if i := strings.Index(lower, m); i >= 0 {
			return msg[i : i+len(m)]
		}
	}
	return ""
}

var skipChecks = regexp.MustCompile(`(?i)^skip-checks:\s*true$`)

// HasSkipChecksTrailer reports whether the message's last paragraph — its trailer
// block, after a blank line — holds "skip-checks: true" (or "skip-checks:true").
func HasSkipChecksTrailer(msg string) bool {
	msg = strings.TrimSpace(strings.ReplaceAll(msg, "\r\n", "\n"))
	i := strings.LastIndex(msg, "\n\n")
	if i < 0 {
		return false // a subject line alone has no trailers
	}
	for line := range strings.Lines(msg[i+2:]) {
		if skipChecks.MatchString(strings.TrimSpace(line)) {
			return true
		}
	}
	return false
}
