package action

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// demoOptions is testSpec as a subcommand's options struct: one field per input,
// a shared group as an untagged struct, and a field that is not an input.
type demoOptions struct {
	ComposeFile string `input:"compose-file"`
	DryRun      bool   `input:"dry-run"`
	Timing      struct {
		Attempts int           `input:"attempts"`
		Delay    time.Duration `input:"delay"`
	}
	Bump     string   `input:"bump"`
	Checks   []string `input:"checks"`
	Disk     float64  `input:"disk"`
	Password string   `input:"password"`
	NotInput string
}

func TestDecodeFillsEveryKind(t *testing.T) {
	require.NoError(t, CheckOptions(&testSpec, demoOptions{}))
	in, err := ParseInputs(&testSpec, []string{"--dry-run", "--attempts", "5", "--delay", "90", "--bump", "patch", "--disk", "12.5%", "--password", "pw"},
		env("INPUT_CHECKS", "/health=200\n\n# comment\n/api=401"), nil)
	require.NoError(t, err)
	var o demoOptions
	in.Decode(&o)
	assert.Equal(t, "compose.yaml", o.ComposeFile, "the default")
	assert.True(t, o.DryRun)
	assert.Equal(t, 5, o.Timing.Attempts)
	assert.Equal(t, 90*time.Second, o.Timing.Delay)
	assert.Equal(t, "patch", o.Bump)
	assert.Equal(t, []string{"/health=200", "/api=401"}, o.Checks)
	assert.Equal(t, 12.5, o.Disk)
	assert.Equal(t, "pw", o.Password)
	assert.Empty(t, o.NotInput)
	assert.Equal(t, []string{"pw"}, in.Secrets())
}

// A misspelt, missing, doubled or mistyped input is found by CheckOptions (which
// each subcommand's options pass in cli's TestOptionsMatchSpec), and Decode
// refuses to run with it.
func TestCheckOptionsFindsEveryMismatch(t *testing.T) {
	type misspelt struct {
		demoOptions
		Extra string `input:"compose-flie"`
	}
	assert.EqualError(t, CheckOptions(&testSpec, misspelt{}), `misspelt.Extra: demo has no input "compose-flie"`)

	type twice struct {
		demoOptions
		Again string `input:"compose-file"`
	}
	assert.EqualError(t, CheckOptions(&testSpec, twice{}), `twice.Again: input "compose-file" is already read into twice.demoOptions.ComposeFile`)

	type wrongKind struct {
		ComposeFile string        `input:"compose-file"`
		DryRun      string        `input:"dry-run"`
		Attempts    time.Duration `input:"attempts"`
		Delay       int           `input:"delay"`
		Bump        bool          `input:"bump"`
		Checks      string        `input:"checks"`
		Disk        int           `input:"disk"`
		Password    string        `input:"password"`
	}
	assert.EqualError(t, CheckOptions(&testSpec, wrongKind{}), `wrongKind.DryRun: a string cannot hold input "dry-run", a bool
wrongKind.Attempts: a time.Duration cannot hold input "attempts", a int
wrongKind.Delay: a int cannot hold input "delay", a duration
wrongKind.Bump: a bool cannot hold input "bump", a enum
wrongKind.Checks: a string cannot hold input "checks", a list
wrongKind.Disk: a int cannot hold input "disk", a percent`)

	type missing struct {
		ComposeFile string `input:"compose-file"`
	}
	err := CheckOptions(&testSpec, missing{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `demo: input "dry-run" has no field in action.missing`)
	assert.Contains(t, err.Error(), `demo: input "password" has no field in action.missing`)

	type unexported struct {
		demoOptions
		hidden string `input:"bump"`
	}
	assert.EqualError(t, CheckOptions(&testSpec, unexported{hidden: ""}), "unexported.hidden: field with an input tag is not exported")
	assert.EqualError(t, CheckOptions(&testSpec, 42), "options must be a struct or a pointer to one, not int")

	in, err := ParseInputs(&testSpec, nil, env(), nil)
	require.NoError(t, err)
	assert.PanicsWithValue(t, `deploykit demo: misspelt.Extra: demo has no input "compose-flie"`, func() { in.Decode(&misspelt{}) })
	assert.PanicsWithValue(t, `deploykit demo: options must be passed by pointer`, func() { in.Decode(demoOptions{}) })
}

func TestDefaults(t *testing.T) {
	var o demoOptions
	Defaults(&testSpec, &o)
	assert.Equal(t, "compose.yaml", o.ComposeFile)
	assert.Equal(t, 3, o.Timing.Attempts)
	assert.Equal(t, 2*time.Second, o.Timing.Delay)
	assert.Equal(t, 20.0, o.Disk)
	assert.Empty(t, o.Checks)

	required := Spec{Name: "req", Inputs: []Input{{Name: "file", Required: true}, {Name: "on", Kind: Bool, Default: "true"}}}
	var r struct {
		File string `input:"file"`
		On   bool   `input:"on"`
	}
	Defaults(&required, &r)
	assert.Empty(t, r.File, "a required input has no default")
	assert.True(t, r.On)

	bad := Spec{Name: "bad", Inputs: []Input{{Name: "n", Kind: Int, Default: "many"}}}
	var b struct {
		N int `input:"n"`
	}
	assert.PanicsWithValue(t, `deploykit bad: the default of input n: invalid value "many": want a whole number ≥ 0`, func() { Defaults(&bad, &b) })
}
