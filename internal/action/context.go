package action

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/sethvargo/go-githubactions"
)

// Context is everything a subcommand may know about where it runs: the environment,
// the event payload, the runner's files and the log. It is built once, at the edge
// (cmd/deploykit), and passed down; nothing below it reads the process environment.
type Context struct {
	Spec *Spec
	// Args are the command-line arguments after the inputs' flags (with-secrets'
	// command). Inputs themselves reach a subcommand only as its options struct.
	Args []string
	Log  io.Writer // masked; the job log in a runner, stdout on a terminal

	// InRunner is true inside GitHub Actions, Gitea Actions or act (GITHUB_ACTIONS=true).
	InRunner bool
	// Gitea is true on Gitea Actions (GITEA_ACTIONS=true).
	Gitea bool
	// GitHub is the runner's context: event name and payload, repository, run ids, paths.
	GitHub *githubactions.GitHubContext

	environ  []string
	getenv   func(string) string
	gh       *githubactions.Action
	masker   *Masker
	eventErr error

	summaryMu sync.Mutex
	outputMu  sync.Mutex
	written   map[string]bool // outputs set so far
	exit      exitHooks
}

// NewContext builds the context from an environment (os.Environ() at the edge, a
// fake in tests) and the writer the log goes to.
func NewContext(environ []string, stdout io.Writer) *Context {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	getenv := func(k string) string { return env[k] }
	masker := NewMasker(stdout)
	c := &Context{
		Log:      masker,
		InRunner: getenv("GITHUB_ACTIONS") == "true",
		Gitea:    getenv("GITEA_ACTIONS") == "true",
		environ:  environ,
		getenv:   getenv,
		masker:   masker,
	}
	// Workflow commands (::add-mask::, ::error::) must reach the runner unmasked by
	// us, so the library writes to stdout directly.
	c.gh = githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(stdout))
	c.GitHub, c.eventErr = c.gh.Context()
	if c.GitHub == nil {
		c.GitHub = &githubactions.GitHubContext{}
	}
	return c
}

// Getenv reads the job's environment.
func (c *Context) Getenv(key string) string { return c.getenv(key) }

// SetEnv sets (or, with value "", removes) a variable of the run's
// environment: what the commands it runs see, and Getenv. The edge sets
// DOCKER_HOST so when the run reaches its Docker host through a socket of its
// own (remote.Connect).
func (c *Context) SetEnv(key, value string) {
	var env []string
	for _, kv := range c.environ {
		if k, _, _ := strings.Cut(kv, "="); k != key {
			env = append(env, kv)
		}
	}
	if value != "" {
		env = append(env, key+"="+value)
	}
	c.environ = env
	old := c.getenv
	c.getenv = func(k string) string {
		if k == key {
			return value
		}
		return old(k)
	}
}

// Environ is the job's environment as KEY=value pairs.
func (c *Context) Environ() []string { return c.environ }

// Event returns the event payload, or why it could not be read.
func (c *Context) Event() (map[string]any, error) {
	if c.eventErr != nil {
		return nil, fmt.Errorf("reading the event payload %s: %w", c.getenv("GITHUB_EVENT_PATH"), c.eventErr)
	}
	return c.GitHub.Event, nil
}

// Workspace is the job's checkout (GITHUB_WORKSPACE), or the current directory.
func (c *Context) Workspace() string {
	if ws := c.getenv("GITHUB_WORKSPACE"); ws != "" {
		return ws
	}
	wd, _ := os.Getwd()
	return wd
}

// TempDir is the runner's temp directory (RUNNER_TEMP), else the OS temp dir.
func (c *Context) TempDir() string {
	if d := c.getenv("RUNNER_TEMP"); d != "" {
		return d
	}
	if d := c.getenv("TMPDIR"); d != "" {
		return d
	}
	return "/tmp"
}

// Mask registers a secret: in a runner it issues ::add-mask:: (for each line of a
// multi-line value too) before anything else can print it, and in every case our
// own log replaces it with ***.
func (c *Context) Mask(secret string) {
	parts := secretParts(secret)
	if len(parts) == 0 {
		return
	}
	c.masker.Add(secret)
	if c.InRunner {
		for _, p := range parts {
			c.gh.AddMask(p)
		}
	}
}

// MaskString returns s with every registered secret replaced by ***.
func (c *Context) MaskString(s string) string { return c.masker.Mask(s) }

// Logf prints one line to the log.
func (c *Context) Logf(format string, args ...any) {
	fmt.Fprintf(c.Log, format+"\n", args...)
}

// Warningf prints a warning: an annotation in a runner, a plain line elsewhere.
func (c *Context) Warningf(format string, args ...any) {
	msg := c.MaskString(fmt.Sprintf(format, args...))
	if c.InRunner {
		_ = c.masker.Flush()
		c.gh.Warningf("%s", msg)
		return
	}
	c.Logf("warning: %s", msg)
}

// Error reports err as one line: an ::error:: annotation in a runner, "error: …"
// elsewhere.
func (c *Context) Error(err error) {
	msg := c.MaskString(strings.ReplaceAll(err.Error(), "\n", "; "))
	_ = c.masker.Flush()
	if c.InRunner {
		c.gh.Errorf("%s", msg)
		return
	}
	c.Logf("error: %s", msg)
}

// Flush writes whatever the masked log still holds.
func (c *Context) Flush() error { return c.masker.Flush() }

// JobURL is the link to this run for hand-off messages, or "" outside a runner.
// GitHub and Gitea (1.26 and later, whose run pages are found by run ID first,
// and IDs are global: a run number there opens some other repository's or
// workflow's run) address runs by GITHUB_RUN_ID. A forge that still addresses
// them by number (Gitea before 1.26, Forgejo) is told so with
// DEPLOYKIT_RUN_LINK=number in the job's environment (docs/gitea.md).
func (c *Context) JobURL() string {
	server := strings.TrimRight(c.getenv("GITHUB_SERVER_URL"), "/")
	repo := c.getenv("GITHUB_REPOSITORY")
	run := c.getenv("GITHUB_RUN_ID")
	if c.getenv("DEPLOYKIT_RUN_LINK") == "number" || run == "" {
		run = c.getenv("GITHUB_RUN_NUMBER")
	}
	if server == "" || repo == "" || run == "" {
		return ""
	}
	return server + "/" + repo + "/actions/runs/" + run
}

// outputDelimiter is the heredoc delimiter go-githubactions writes around every
// output value; a value with this line inside would end the value early and let the
// rest be read as further outputs.
const outputDelimiter = "_GitHubActionsFileCommandDelimeter_"

// Out is one output and its value, for SetOutputs.
type Out struct{ Name, Value string }

// SetOutputs writes outputs in order, each with SetOutput; one that is refused
// does not keep the others from being written. Outputs the spec does not declare
// (a subcommand sharing a flow with another: rollback's deploy) are left out.
func (c *Context) SetOutputs(outs ...Out) error {
	var errs []error
	for _, o := range outs {
		if c.Spec == nil || c.Spec.HasOutput(o.Name) {
			errs = append(errs, c.SetOutput(o.Name, o.Value))
		}
	}
	return errors.Join(errs...)
}

// CheckOutputs says whether SetOutputs would take these values, without
// writing anything: a command checks what will become an output before it
// changes anything.
func (c *Context) CheckOutputs(outs ...Out) error {
	var errs []error
	for _, o := range outs {
		errs = append(errs, checkOutput(o.Name, o.Value))
	}
	return errors.Join(errs...)
}

// checkOutput refuses a value that would corrupt the output file.
func checkOutput(name, value string) error {
	for line := range strings.Lines(value) {
		if strings.TrimRight(line, "\r\n") == outputDelimiter {
			return Failedf("output %s: refusing a value that contains the line %s, which would corrupt the output file", name, outputDelimiter)
		}
	}
	if strings.ContainsRune(value, '\r') {
		return Failedf("output %s: refusing a value that contains a carriage return", name)
	}
	return nil
}

// SetOutput writes an output: to GITHUB_OUTPUT in a runner, else as name=value on
// the log. A value that would corrupt the output file is refused and nothing is
// written.
func (c *Context) SetOutput(name, value string) (err error) {
	if c.Spec != nil && !c.Spec.HasOutput(name) {
		panic(fmt.Sprintf("%s: output %q is not declared", c.Spec.Name, name))
	}
	if err := checkOutput(name, value); err != nil {
		return err
	}
	c.outputMu.Lock()
	if c.written == nil {
		c.written = map[string]bool{}
	}
	c.written[name] = true
	c.outputMu.Unlock()
	path := c.getenv("GITHUB_OUTPUT")
	if path == "" {
		if strings.Contains(value, "\n") {
			c.Logf("%s<<%s\n%s\n%s", name, outputDelimiter, value, outputDelimiter)
		} else {
			c.Logf("%s=%s", name, value)
		}
		return nil
	}
	return fileCommand(func() { c.gh.SetOutput(name, value) }, "output "+name, path)
}

// Status values every action with a status output can end with; deploy and
// rollback add their own (rolled-back, skipped).
const (
	StatusSuccess  = "success"
	StatusFailed   = "failed"
	StatusBadInput = "bad-input"
)

// FinishStatus writes the status output, when the action declares one and the
// command did not write it itself, from how the command ended: a later step's
// `if:` and its messages then always have a status to read, bad input included.
func (c *Context) FinishStatus(err error) {
	if c.Spec == nil || !c.Spec.HasOutput("status") {
		return
	}
	c.outputMu.Lock()
	done := c.written["status"]
	c.outputMu.Unlock()
	if done {
		return
	}
	status := StatusSuccess
	switch ExitCode(err) {
	case ExitOK:
	case ExitUsage:
		status = StatusBadInput
	default:
		status = StatusFailed
	}
	if werr := c.SetOutput("status", status); werr != nil {
		c.Warningf("%v", werr)
	}
}

// fileCommand runs a go-githubactions file command, which panics when the file
// cannot be written, and turns that into an error.
func fileCommand(write func(), what, path string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Failedf("writing %s to %s: %v", what, path, r)
		}
	}()
	write()
	return nil
}

// cellEscaper: a pipe would end the cell, a line break the row; < and > would
// open HTML (or an autolink, <javascript:…>), and "](" an inline link.
var cellEscaper = strings.NewReplacer("|", "\\|", "\r\n", " ", "\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;", "](", "]\\(")

// Cell makes s — which may hold text from outside, such as an HTTP response body
// or a tool's error — safe inside a Markdown table cell or list item of a summary:
// it stays one cell of plain text.
func Cell(s string) string { return Name(cellEscaper.Replace(s)) }

// Name is how the kit prints a name that comes from outside (a backup's file
// name, an S3 key, a history line's field) anywhere — log, summary, annotation:
// control characters are shown escaped (\n, \r, \x1b, \u2028), so a name can
// neither start a line of its own (a workflow command, a Markdown heading) nor
// move the cursor. Everything else is left as it is.
func Name(s string) string {
	if !HasControl(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// HasControl reports whether s holds a control character (C0, DEL, C1, or a
// Unicode line or paragraph separator).
func HasControl(s string) bool { return strings.IndexFunc(s, isControl) >= 0 }

func isControl(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }

// Summary appends Markdown to the job summary (GITHUB_STEP_SUMMARY) and prints the
// same text in the log, since Gitea before 1.27 and act only show the log.
func (c *Context) Summary(markdown string) error {
	c.summaryMu.Lock()
	defer c.summaryMu.Unlock()
	markdown = c.MaskString(markdown)
	c.logQuoted(strings.TrimRight(markdown, "\n"))
	path := c.getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return nil
	}
	if dir := filepath.Dir(path); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return Failedf("writing the step summary: %v", err)
		}
	}
	return fileCommand(func() { c.gh.AddStepSummary(markdown) }, "the step summary", path)
}

// logQuoted prints text that may hold lines from outside (container logs, response
// bodies) to the log. In a runner, when a line would read as a workflow command
// (::stop-commands::, ::add-mask::, …), the text goes inside a stop-commands
// block whose token nobody can guess, so the runner reads none of it as a command.
func (c *Context) logQuoted(text string) {
	if !c.InRunner || !hasCommandLine(text) {
		c.Logf("%s", text)
		return
	}
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	t := hex.EncodeToString(token)
	c.Logf("::stop-commands::%s\n%s\n::%s::", t, text, t)
}

func hasCommandLine(text string) bool {
	for line := range strings.Lines(text) {
		if strings.HasPrefix(strings.TrimSpace(line), "::") {
			return true
		}
	}
	return false
}

// Annotate reports a finding about a file (and line): a warning or error
// annotation in a runner, a "file:line: level: message" line elsewhere.
func (c *Context) Annotate(isError bool, file string, line int, format string, args ...any) {
	msg := c.MaskString(fmt.Sprintf(format, args...))
	level := "warning"
	if isError {
		level = "error"
	}
	if !c.InRunner {
		where := file
		if line > 0 {
			where = fmt.Sprintf("%s:%d", file, line)
		}
		c.Logf("%s: %s: %s", where, level, msg)
		return
	}
	_ = c.masker.Flush()
	fields := map[string]string{"file": file}
	if line > 0 {
		fields["line"] = fmt.Sprint(line)
	}
	gh := c.gh.WithFieldsMap(fields)
	if isError {
		gh.Errorf("%s", msg)
	} else {
		gh.Warningf("%s", msg)
	}
}
