package action

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Inputs holds a subcommand's validated input values. Every value was checked when
// the Inputs were built, so the typed getters cannot fail.
type Inputs struct {
	spec   *Spec
	values map[string]string
	set    map[string]bool // given explicitly (flag or runner variable)
	Args   []string        // command-line arguments after the flags
}

// ErrHelp is returned by ParseInputs when --help was asked for; the help text has
// already been written.
var ErrHelp = errors.New("help requested")

// rawFlag records a flag's text unparsed so that every input is validated in one
// place, whichever way it arrived. Bool inputs may be given as a bare --name.
type rawFlag struct {
	value  *string
	set    *bool
	isBool bool
}

func (f rawFlag) String() string {
	if f.value == nil {
		return ""
	}
	return *f.value
}
func (f rawFlag) Set(s string) error { *f.value, *f.set = s, true; return nil }
func (f rawFlag) IsBoolFlag() bool   { return f.isBool }

// ParseInputs reads spec's inputs from the command line (--name value, --name=value)
// and from the runner's INPUT_* variables, flags winning, and validates each one.
// A bad value is a usage error (exit 2) that names the input and the value.
func ParseInputs(spec *Spec, args []string, getenv func(string) string, help io.Writer) (*Inputs, error) {
	fs := flag.NewFlagSet("deploykit "+spec.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flagVals := make(map[string]*string, len(spec.Inputs))
	flagSet := make(map[string]*bool, len(spec.Inputs))
	for _, in := range spec.Inputs {
		v, set := new(string), new(bool)
		flagVals[in.Name], flagSet[in.Name] = v, set
		fs.Var(rawFlag{value: v, set: set, isBool: in.Kind == Bool}, in.Name, in.Description)
	}
	if err := fs.Parse(joinBoolValues(spec, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			WriteHelp(help, spec)
			return nil, ErrHelp
		}
		return nil, Usagef("deploykit %s: %v (see 'deploykit %s --help')", spec.Name, err, spec.Name)
	}

	in := &Inputs{spec: spec, values: map[string]string{}, set: map[string]bool{}, Args: fs.Args()}
	var errs []error
	for _, def := range spec.Inputs {
		raw, given := "", false
		switch {
		case *flagSet[def.Name]:
			raw, given = *flagVals[def.Name], true
		case getenv(def.EnvName()) != "":
			raw, given = getenv(def.EnvName()), true
		case getenv(def.runnerName()) != "":
			raw, given = getenv(def.runnerName()), true
		}
		if def.Kind != List && !def.Secret {
			raw = strings.TrimSpace(raw)
		}
		if !given || raw == "" {
			raw = def.Default
		}
		if def.Required && strings.TrimSpace(raw) == "" {
			msg := fmt.Sprintf("input %s is required (set --%s or %s)", def.Name, def.Name, def.EnvName())
			if def.WhenMissing != "" {
				msg += ": " + def.WhenMissing
			}
			errs = append(errs, errors.New(msg))
			continue
		}
		if err := validate(def, raw); err != nil {
			errs = append(errs, err)
			continue
		}
		in.values[def.Name], in.set[def.Name] = raw, given
	}
	if len(errs) > 0 {
		return nil, &ExitError{Code: ExitUsage, Err: errors.Join(errs...)}
	}
	return in, nil
}

func validate(def Input, raw string) error {
	if raw == "" && def.Kind != String && def.Kind != List {
		if def.Kind == Enum || def.Kind == Bool {
			return fmt.Errorf("input %s is empty: want %s", def.Name, want(def))
		}
		return nil // empty int/duration/percent means "not set"
	}
	var err error
	switch def.Kind {
	case Bool:
		_, err = parseBool(raw)
	case Int:
		var n int
		n, err = strconv.Atoi(raw)
		if err == nil && (n < def.Min || def.Max != 0 && n > def.Max) {
			err = fmt.Errorf("out of range")
		}
	case Duration:
		_, err = parseDuration(raw)
	case Enum:
		if !slices.Contains(def.Enum, raw) {
			err = errors.New("not allowed")
		}
	case Percent:
		_, err = parsePercent(raw)
	}
	if err != nil {
		shown := strconv.Quote(raw)
		if def.Secret {
			shown = "(hidden)"
		}
		return fmt.Errorf("input %s: invalid value %s: want %s", def.Name, shown, want(def))
	}
	return nil
}

func want(def Input) string {
	switch def.Kind {
	case Bool:
		return "true or false"
	case Int:
		if def.Max != 0 {
			return fmt.Sprintf("a whole number from %d to %d", def.Min, def.Max)
		}
		return fmt.Sprintf("a whole number ≥ %d", def.Min)
	case Duration:
		return "a duration such as 30s, 5m, 1h30m or 7d (or whole seconds)"
	case Enum:
		return "one of " + strings.Join(def.Enum, ", ")
	case Percent:
		return "a percentage from 0 to 100, such as 20%"
	}
	return "text"
}

// joinBoolValues lets a Bool input take its value as the next argument like every
// other input (--restore-check true): "--name word" becomes "--name=word" when
// word reads as a bool. A bare --name still means true.
func joinBoolValues(spec *Spec, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name := strings.TrimLeft(a, "-")
		if len(a)-len(name) >= 1 && len(a)-len(name) <= 2 && !strings.Contains(name, "=") && i+1 < len(args) && spec.HasInput(name) && spec.Input(name).Kind == Bool {
			if _, err := parseBool(args[i+1]); err == nil {
				out = append(out, a+"="+args[i+1])
				i++
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, errors.New("not a bool")
}

func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, errors.New("not a number of days")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, errors.New("negative")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		return 0, errors.New("negative")
	}
	return d, err
}

func parsePercent(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
	if err != nil || f < 0 || f > 100 {
		return 0, errors.New("not a percentage")
	}
	return f, nil
}

func (in *Inputs) raw(name string) string {
	in.spec.Input(name) // panics on an undefined name
	return in.values[name]
}

// The getters below are the package's own: a subcommand gets its inputs as its
// options struct (Decode), never by name.

func (in *Inputs) text(name string) string { return in.raw(name) }

// isSet reports whether the input was given rather than defaulted.
func (in *Inputs) isSet(name string) bool { in.spec.Input(name); return in.set[name] }

func (in *Inputs) boolean(name string) bool {
	b, _ := parseBool(in.raw(name))
	return b
}

// integer is an Int input (0 when empty).
func (in *Inputs) integer(name string) int {
	n, _ := strconv.Atoi(in.raw(name))
	return n
}

// duration is a Duration input (0 when empty).
func (in *Inputs) duration(name string) time.Duration {
	d, _ := parseDuration(in.raw(name))
	return d
}

// percent is a Percent input as a number from 0 to 100.
func (in *Inputs) percent(name string) float64 {
	p, _ := parsePercent(in.raw(name))
	return p
}

// Secrets returns the values of the secret inputs, for masking at the edge.
func (in *Inputs) Secrets() []string {
	var out []string
	for _, def := range in.spec.Inputs {
		if def.Secret && in.values[def.Name] != "" {
			out = append(out, in.values[def.Name])
		}
	}
	return out
}

// list is a List input's items: one per line, trimmed, without blank lines and #
// comments.
func (in *Inputs) list(name string) []string {
	var items []string
	for line := range strings.Lines(in.raw(name)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		items = append(items, line)
	}
	return items
}

// WriteHelp prints a subcommand's usage: what it does and each input with its kind,
// default and description.
func WriteHelp(w io.Writer, spec *Spec) {
	fmt.Fprintf(w, "Usage: deploykit %s [--input value ...]\n\n%s\n", spec.Name, spec.Description)
	if len(spec.Inputs) > 0 {
		fmt.Fprintf(w, "\nInputs (flag, or %s-style variable in a runner):\n", "INPUT_NAME")
		for _, in := range spec.Inputs {
			kind := in.Kind.String()
			if in.Kind == Enum {
				kind = strings.Join(in.Enum, "|")
			}
			fmt.Fprintf(w, "  --%s <%s>\n", in.Name, kind)
			fmt.Fprintf(w, "        %s", in.Description)
			switch {
			case in.Required:
				fmt.Fprint(w, " (required)")
			case in.Default != "":
				fmt.Fprintf(w, " (default %q)", in.Default)
			}
			fmt.Fprintln(w)
		}
	}
	if len(spec.Outputs) > 0 {
		fmt.Fprintln(w, "\nOutputs:")
		for _, o := range spec.Outputs {
			fmt.Fprintf(w, "  %-18s %s\n", o.Name, o.Description)
		}
	}
}
