// Package action is the plumbing every deploykit subcommand shares: inputs defined
// once in Go and read from a runner (INPUT_<NAME>) or the command line (--name),
// outputs, the step summary, masking, annotations and exit codes (ARCHITECTURE.md, "Rules every package keeps").
package action

import (
	"fmt"
	"strings"
)

// Kind is how an input's text is parsed.
type Kind int

const (
	String   Kind = iota
	Bool          // true/false (also yes/no, on/off, 1/0)
	Int           // a whole number ≥ Input.Min
	Duration      // a Go duration (90s, 5m) or whole seconds (90)
	Enum          // one of Input.Enum
	List          // one item per line; blank lines and lines starting with # are ignored
	Percent       // 0–100, with or without a trailing %
)

func (k Kind) String() string {
	switch k {
	case Bool:
		return "bool"
	case Int:
		return "int"
	case Duration:
		return "duration"
	case Enum:
		return "enum"
	case List:
		return "list"
	case Percent:
		return "percent"
	}
	return "string"
}

// Input is one input of a subcommand and of the action.yml that calls it.
type Input struct {
	Name        string // kebab-case; the flag is --Name, the runner variable INPUT_NAME
	Kind        Kind
	Default     string // as written in action.yml
	Description string
	Enum        []string // allowed values when Kind is Enum
	Min         int      // smallest allowed value when Kind is Int
	Max         int      // largest allowed value when Kind is Int; 0: no limit
	Required    bool
	// WhenMissing, for a required input, tells the person what to give: it
	// follows "input <name> is required" (e.g. "type ROLLBACK, in capitals").
	WhenMissing string
	Secret      bool // masked as soon as it is read
}

// EnvName is the variable an action.yml maps this input to (INPUT_DRY_RUN for dry-run).
func (in Input) EnvName() string {
	return "INPUT_" + strings.ToUpper(strings.NewReplacer("-", "_", " ", "_").Replace(in.Name))
}

// runnerName is the variable GitHub and act set for JavaScript and Docker actions,
// which keep the hyphen (INPUT_DRY-RUN).
func (in Input) runnerName() string {
	return "INPUT_" + strings.ToUpper(strings.ReplaceAll(in.Name, " ", "_"))
}

// Output is one output of a subcommand and of its action.yml.
type Output struct {
	Name        string
	Description string
}

// Spec describes a subcommand: what it is for, its inputs and its outputs.
type Spec struct {
	Name        string
	Description string
	Inputs      []Input
	Outputs     []Output
}

// Input returns the input called name; it panics on a name the spec does not define,
// which is a programming error.
func (s *Spec) Input(name string) Input {
	for _, in := range s.Inputs {
		if in.Name == name {
			return in
		}
	}
	panic(fmt.Sprintf("%s: no input %q", s.Name, name))
}

// HasInput reports whether the spec defines an input.
func (s *Spec) HasInput(name string) bool {
	for _, in := range s.Inputs {
		if in.Name == name {
			return true
		}
	}
	return false
}

// HasOutput reports whether the spec declares an output.
func (s *Spec) HasOutput(name string) bool {
	for _, o := range s.Outputs {
		if o.Name == name {
			return true
		}
	}
	return false
}
