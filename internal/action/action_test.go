package action

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testSpec = Spec{
	Name: "demo",
	Inputs: []Input{
		{Name: "compose-file", Default: "compose.yaml", Description: "file"},
		{Name: "dry-run", Kind: Bool, Default: "false", Description: "dry"},
		{Name: "attempts", Kind: Int, Min: 1, Default: "3", Description: "n"},
		{Name: "delay", Kind: Duration, Default: "2s", Description: "d"},
		{Name: "bump", Kind: Enum, Enum: []string{"none", "patch"}, Default: "none", Description: "b"},
		{Name: "checks", Kind: List, Description: "c"},
		{Name: "disk", Kind: Percent, Default: "20%", Description: "p"},
		{Name: "password", Secret: true, Description: "pw"},
	},
	Outputs: []Output{{Name: "version"}, {Name: "notes"}},
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestInputsDefaults(t *testing.T) {
	in, err := ParseInputs(&testSpec, nil, env(), nil)
	require.NoError(t, err)
	assert.Equal(t, "compose.yaml", in.text("compose-file"))
	assert.False(t, in.boolean("dry-run"))
	assert.Equal(t, 3, in.integer("attempts"))
	assert.Equal(t, 2*time.Second, in.duration("delay"))
	assert.Equal(t, "none", in.text("bump"))
	assert.Empty(t, in.list("checks"))
	assert.Equal(t, 20.0, in.percent("disk"))
	assert.False(t, in.isSet("compose-file"))
}

func TestInputsFromRunnerAndFlags(t *testing.T) {
	getenv := env(
		"INPUT_COMPOSE_FILE", " deploy/compose.yaml ", // mapped by our action.yml
		"INPUT_DRY-RUN", "true", // set by act / JavaScript-action convention
		"INPUT_ATTEMPTS", "9",
		"INPUT_CHECKS", "/health=200\n\n# comment\n /api=401,403 \n",
		"INPUT_DELAY", "90",
	)
	in, err := ParseInputs(&testSpec, []string{"--attempts", "5", "--bump=patch", "--disk", "12.5"}, getenv, nil)
	require.NoError(t, err)
	assert.Equal(t, "deploy/compose.yaml", in.text("compose-file"))
	assert.True(t, in.boolean("dry-run"))
	assert.Equal(t, 5, in.integer("attempts"), "a flag wins over the runner variable")
	assert.Equal(t, "patch", in.text("bump"))
	assert.Equal(t, []string{"/health=200", "/api=401,403"}, in.list("checks"))
	assert.Equal(t, 90*time.Second, in.duration("delay"))
	assert.Equal(t, 12.5, in.percent("disk"))
	assert.True(t, in.isSet("compose-file"))

	in, err = ParseInputs(&testSpec, []string{"--dry-run", "--", "echo", "--x"}, env(), nil)
	require.NoError(t, err)
	assert.True(t, in.boolean("dry-run"), "a bare bool flag means true")
	assert.Equal(t, []string{"echo", "--x"}, in.Args)
}

func TestInputsBadValues(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		getenv func(string) string
		want   string
	}{
		{[]string{"--dry-run=maybe"}, env(), `input dry-run: invalid value "maybe": want true or false`},
		{nil, env("INPUT_DRY_RUN", "sometimes"), `input dry-run: invalid value "sometimes": want true or false`},
		{[]string{"--attempts=0"}, env(), `input attempts: invalid value "0": want a whole number ≥ 1`},
		{[]string{"--attempts=three"}, env(), `input attempts: invalid value "three": want a whole number ≥ 1`},
		{[]string{"--delay=soon"}, env(), `input delay: invalid value "soon": want a duration such as 30s, 5m, 1h30m or 7d (or whole seconds)`},
		{[]string{"--delay=-5s"}, env(), `input delay: invalid value "-5s": want a duration such as 30s, 5m, 1h30m or 7d (or whole seconds)`},
		{[]string{"--delay=1.5d"}, env(), `input delay: invalid value "1.5d": want a duration such as 30s, 5m, 1h30m or 7d (or whole seconds)`},
		{[]string{"--bump=Patch"}, env(), `input bump: invalid value "Patch": want one of none, patch`},
		{[]string{"--disk=120%"}, env(), `input disk: invalid value "120%": want a percentage from 0 to 100, such as 20%`},
		{[]string{"--nope"}, env(), `deploykit demo: flag provided but not defined: -nope (see 'deploykit demo --help')`},
	} {
		_, err := ParseInputs(&testSpec, tc.args, tc.getenv, nil)
		require.Error(t, err, tc.args)
		assert.Equal(t, tc.want, err.Error())
		assert.Equal(t, ExitUsage, ExitCode(err))
	}
}

func TestInputsReportEveryBadValueAtOnce(t *testing.T) {
	_, err := ParseInputs(&testSpec, []string{"--dry-run=maybe", "--attempts=x"}, env(), nil)
	require.Error(t, err)
	assert.Equal(t, "input dry-run: invalid value \"maybe\": want true or false\ninput attempts: invalid value \"x\": want a whole number ≥ 1", err.Error())
}

func TestRequiredAndSecretInputs(t *testing.T) {
	spec := Spec{Name: "s", Inputs: []Input{
		{Name: "confirm", Required: true},
		{Name: "token", Kind: Int, Secret: true},
	}}
	_, err := ParseInputs(&spec, []string{"--token=hunter2"}, env(), nil)
	require.Error(t, err)
	assert.Equal(t, "input confirm is required (set --confirm or INPUT_CONFIRM)\ninput token: invalid value (hidden): want a whole number ≥ 0", err.Error())
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestHelp(t *testing.T) {
	var buf bytes.Buffer
	_, err := ParseInputs(&testSpec, []string{"--help"}, env(), &buf)
	require.ErrorIs(t, err, ErrHelp)
	assert.Contains(t, buf.String(), "Usage: deploykit demo")
	assert.Contains(t, buf.String(), "  --bump <none|patch>\n        b (default \"none\")\n")
	assert.Contains(t, buf.String(), "  --attempts <int>\n        n (default \"3\")\n")
}

// runnerEnv is a fake runner environment with real output and summary files.
func runnerEnv(t *testing.T, extra ...string) (environ []string, output, summary string) {
	dir := t.TempDir()
	output, summary = filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	require.NoError(t, os.WriteFile(output, nil, 0o644))
	return append([]string{"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + output, "GITHUB_STEP_SUMMARY=" + summary}, extra...), output, summary
}

func TestOutputsInARunner(t *testing.T) {
	environ, output, _ := runnerEnv(t)
	var log bytes.Buffer
	c := NewContext(environ, &log)
	c.Spec = &testSpec
	require.NoError(t, c.SetOutput("version", "1.2.3"))
	require.NoError(t, c.SetOutput("notes", "two\nlines"))
	data, err := os.ReadFile(output)
	require.NoError(t, err)
	d := outputDelimiter
	assert.Equal(t, "version<<"+d+"\n1.2.3\n"+d+"\nnotes<<"+d+"\ntwo\nlines\n"+d+"\n", string(data))
	assert.Empty(t, log.String())
}

func TestOutputRefusesTheDelimiter(t *testing.T) {
	environ, output, _ := runnerEnv(t)
	c := NewContext(environ, &bytes.Buffer{})
	c.Spec = &testSpec
	require.NoError(t, c.SetOutput("version", "1.0.0"))
	before, err := os.ReadFile(output)
	require.NoError(t, err)

	for _, v := range []string{
		"x\n" + outputDelimiter + "\nversion=evil",
		outputDelimiter,
		"x\r\n" + outputDelimiter + "\r\n",
		"a\rb",
	} {
		err := c.SetOutput("notes", v)
		require.Error(t, err)
		assert.Equal(t, ExitFailed, ExitCode(err))
	}
	err = c.SetOutput("notes", "x\n"+outputDelimiter)
	assert.EqualError(t, err, "output notes: refusing a value that contains the line "+outputDelimiter+", which would corrupt the output file")
	after, err := os.ReadFile(output)
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after), "output file intact")
	// The delimiter inside a line cannot end the value, so it is kept.
	require.NoError(t, c.SetOutput("notes", "not "+outputDelimiter+" alone"))
}

func TestOutputsWithoutARunner(t *testing.T) {
	var log bytes.Buffer
	c := NewContext(nil, &log)
	c.Spec = &testSpec
	require.NoError(t, c.SetOutput("version", "1.2.3"))
	require.NoError(t, c.Flush())
	assert.Equal(t, "version=1.2.3\n", log.String())
	assert.Panics(t, func() { _ = c.SetOutput("undeclared", "x") })
}

func TestSummaryGoesToFileAndLog(t *testing.T) {
	environ, _, summary := runnerEnv(t)
	var log bytes.Buffer
	c := NewContext(environ, &log)
	c.Mask("hunter2")
	require.NoError(t, c.Summary("### Deploy\n\npassword hunter2 used\n"))
	data, err := os.ReadFile(summary)
	require.NoError(t, err)
	assert.Equal(t, "### Deploy\n\npassword *** used\n\n", string(data))
	assert.Equal(t, "::add-mask::hunter2\n::add-mask::aHVudGVyMg==\n::add-mask::aHVudGVyMg\n### Deploy\n\npassword *** used\n", log.String())
}

func TestMaskingBeforePrinting(t *testing.T) {
	var log bytes.Buffer
	c := NewContext([]string{"GITHUB_ACTIONS=true"}, &log)
	c.Mask("line-one\nline-two")
	c.Mask("  ")
	fmt := c.Log
	_, _ = fmt.Write([]byte("a line-one b "))
	_, _ = fmt.Write([]byte("line-two c\nline-one\nline-two\n"))
	require.NoError(t, c.Flush())
	assert.Equal(t,
		"::add-mask::line-one%0Aline-two\n"+
			// its escaped forms: Go/JSON-quoted, URL-encoded, base64 (padded and not)
			"::add-mask::line-one\\nline-two\n::add-mask::line-one%250Aline-two\n"+
			"::add-mask::bGluZS1vbmUKbGluZS10d28=\n::add-mask::bGluZS1vbmUKbGluZS10d28\n"+
			"::add-mask::line-one\n::add-mask::line-two\n"+
			"a *** b *** c\n***\n",
		log.String())
}

// TestEscapedFormsAreMasked: a tool that quotes or encodes a secret (compose-go's
// %q errors, JSON, a shell's quotes, URLs, base64) prints no trace of it either.
func TestEscapedFormsAreMasked(t *testing.T) {
	secret := "S2-zz9 \"q\" $x \\ `tick` é'\nnext<&>"
	var log bytes.Buffer
	c := NewContext(nil, &log)
	c.Mask(secret)
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(secret))
	jsonHTML, err := json.Marshal(secret)
	require.NoError(t, err)
	for name, form := range map[string]string{
		"exact":       secret,
		"%q":          fmt.Sprintf("parsing %q: invalid syntax", secret),
		"ASCII %+q":   fmt.Sprintf("%+q", secret),
		"JSON":        js.String(),
		"JSON (HTML)": string(jsonHTML),
		"shell":       "'" + strings.ReplaceAll(secret, "'", `'\''`) + "'",
		"query":       "https://x/?token=" + url.QueryEscape(secret),
		"path":        "https://x/" + url.PathEscape(secret),
		"base64":      base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64url":   base64.RawURLEncoding.EncodeToString([]byte(secret)),
	} {
		masked := c.MaskString(form)
		assert.Contains(t, masked, "***", name)
		for _, piece := range []string{"zz9", "tick", "next", "UzItenz5"} {
			assert.NotContains(t, masked, piece, "%s: %s", name, masked)
		}
	}
}

func TestMaskingOutsideARunnerPrintsNoCommand(t *testing.T) {
	var log bytes.Buffer
	c := NewContext(nil, &log)
	c.Mask("hunter2")
	c.Logf("password=%s", "hunter2")
	c.Error(Failedf("login with hunter2 failed"))
	assert.Equal(t, "password=***\nerror: login with *** failed\n", log.String())
}

func TestErrorAnnotation(t *testing.T) {
	var log bytes.Buffer
	c := NewContext([]string{"GITHUB_ACTIONS=true"}, &log)
	c.Error(Usagef("input x: bad\ninput y: bad"))
	assert.Equal(t, "::error::input x: bad; input y: bad\n", log.String())
}

func TestJobURL(t *testing.T) {
	base := []string{"GITHUB_SERVER_URL=https://git.example.com/", "GITHUB_REPOSITORY=team/app", "GITHUB_RUN_ID=987654", "GITHUB_RUN_NUMBER=42"}
	assert.Equal(t, "https://git.example.com/team/app/actions/runs/987654", NewContext(base, &bytes.Buffer{}).JobURL())
	// What a real Gitea 1.27.3 with act_runner sets (defects audit, item 12): the
	// run ID is global across repositories and differs from the run number,
	// which Gitea would take for some other run's ID.
	gitea := []string{"GITEA_ACTIONS=true", "GITHUB_ACTIONS=true", "GITHUB_SERVER_URL=http://gitea.local:3000", "GITHUB_REPOSITORY=team/app",
		"GITHUB_RUN_ID=1835", "GITHUB_RUN_NUMBER=12", "GITHUB_RUN_ATTEMPT=1", "GITEA_ACTIONS_RUNNER_VERSION=v0.2.13"}
	assert.Equal(t, "http://gitea.local:3000/team/app/actions/runs/1835", NewContext(gitea, &bytes.Buffer{}).JobURL())
	// A forge that addresses runs by number is told so.
	assert.Equal(t, "http://gitea.local:3000/team/app/actions/runs/12", NewContext(append(gitea, "DEPLOYKIT_RUN_LINK=number"), &bytes.Buffer{}).JobURL())
	assert.Equal(t, "", NewContext(nil, &bytes.Buffer{}).JobURL())
}

func TestExitHooks(t *testing.T) {
	c := NewContext(nil, &bytes.Buffer{})
	var ran []string
	c.OnExit(func() { ran = append(ran, "a") })
	release := c.OnExit(func() { ran = append(ran, "b") })
	release()
	c.RunExitHooks()
	c.RunExitHooks()
	assert.Equal(t, []string{"a"}, ran)
}

func TestEventErrorIsReported(t *testing.T) {
	p := filepath.Join(t.TempDir(), "event.json")
	require.NoError(t, os.WriteFile(p, []byte("{not json"), 0o644))
	c := NewContext([]string{"GITHUB_EVENT_PATH=" + p}, &bytes.Buffer{})
	_, err := c.Event()
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "reading the event payload "+p+": failed to unmarshal event payload"), err.Error())
}

// TestCellKeepsOutsideTextPlain: text from outside (a response body, an error)
// stays one cell of plain text: no new row, no HTML, no link.
func TestCellKeepsOutsideTextPlain(t *testing.T) {
	got := Cell("a|b\r\nc\rd\ne <img src=x onerror=alert(1)> [click](javascript:alert(1)) <javascript:x>")
	assert.Equal(t, `a\|b c d e &lt;img src=x onerror=alert(1)&gt; [click]\(javascript:alert(1)) &lt;javascript:x&gt;`, got)
}

// TestSummaryWithACommandLineIsQuoted: a summary holding a line the runner would
// read as a workflow command (from a container's logs, say) is printed to the log
// inside a stop-commands block with an unguessable token; plain summaries are not.
func TestSummaryWithACommandLineIsQuoted(t *testing.T) {
	environ, _, summary := runnerEnv(t)
	var log bytes.Buffer
	c := NewContext(environ, &log)
	hostile := "#### Hand-off\n\n```\n::stop-commands::pwned\n  ::add-mask::x\n```\n"
	require.NoError(t, c.Summary(hostile))
	lines := strings.Split(strings.TrimRight(log.String(), "\n"), "\n")
	require.Len(t, lines, 8, log.String())
	token, ok := strings.CutPrefix(lines[0], "::stop-commands::")
	require.True(t, ok, lines[0])
	assert.Regexp(t, `^[0-9a-f]{32}$`, token)
	assert.Equal(t, strings.TrimRight(hostile, "\n"), strings.Join(lines[1:7], "\n"))
	assert.Equal(t, "::"+token+"::", lines[7])
	data, err := os.ReadFile(summary)
	require.NoError(t, err)
	assert.Equal(t, hostile+"\n", string(data), "the summary file itself is unchanged")

	log.Reset()
	require.NoError(t, c.Summary("### fine\n"))
	assert.Equal(t, "### fine\n", log.String())
}

// TestBoolInputTakesAValueLikeTheOthers: --dry-run true and --dry-run no work like
// --attempts 3; a bare --dry-run is still true, and a word that is no bool stays
// an argument.
func TestBoolInputTakesAValueLikeTheOthers(t *testing.T) {
	env := func(string) string { return "" }
	for args, want := range map[string]bool{
		"--dry-run true --attempts 4": true, "--dry-run no --attempts 4": false, "-dry-run=off --attempts 4": false,
		"--dry-run --attempts 4": true, "--attempts 4 --dry-run YES": true,
	} {
		in, err := ParseInputs(&testSpec, strings.Fields(args), env, io.Discard)
		require.NoError(t, err, args)
		assert.Equal(t, want, in.boolean("dry-run"), args)
		assert.Equal(t, 4, in.integer("attempts"), args)
		assert.Empty(t, in.Args, args)
	}
	in, err := ParseInputs(&testSpec, []string{"--dry-run", "maybe"}, env, io.Discard)
	require.NoError(t, err)
	assert.True(t, in.boolean("dry-run"))
	assert.Equal(t, []string{"maybe"}, in.Args)
	in, err = ParseInputs(&testSpec, []string{"--", "--dry-run", "true"}, env, io.Discard)
	require.NoError(t, err)
	assert.False(t, in.boolean("dry-run"), "after -- nothing is an input")
	assert.Equal(t, []string{"--dry-run", "true"}, in.Args)
}

func TestDurationsTakeDays(t *testing.T) {
	for raw, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "0d": 0, "90": 90 * time.Second, "1h30m": 90 * time.Minute} {
		in, err := ParseInputs(&testSpec, []string{"--delay=" + raw}, env(), nil)
		require.NoError(t, err, raw)
		assert.Equal(t, want, in.duration("delay"), raw)
	}
}

// TestExitCodeOfWrappedErrors: the code chosen where the error was made
// survives wrapping, by fmt.Errorf or by Failedf; a plain error is a failure.
func TestExitCodeOfWrappedErrors(t *testing.T) {
	usage := Usagef("input file: %s does not exist", "x")
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("plain"), ExitFailed},
		{usage, ExitUsage},
		{fmt.Errorf("confirm: %w", usage), ExitUsage},
		{Failedf("restore failed at confirm: %w", usage), ExitUsage},
		{fmt.Errorf("outer: %w", Failedf("middle: %w", fmt.Errorf("inner: %w", usage))), ExitUsage},
		{Failedf("the restore failed: %w", errors.New("disk full")), ExitFailed},
		{Usagef("bad: %w", Failedf("ran: %w", errors.New("x"))), ExitFailed},
		{Failedf("flattened: %v", usage), ExitFailed}, // %v keeps the text, not the error
	} {
		assert.Equal(t, c.want, ExitCode(c.err), "%v", c.err)
	}
}
