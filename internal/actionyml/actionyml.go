// Package actionyml renders the kit's action.yml files and the input and output
// tables of docs/ from the Go input definitions, so that there is one source of
// truth.
// `make generate` rewrites them; the tests fail when a committed file differs.
package actionyml

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/org/deploy-kit/internal/action"
)

// InstallScript is the shared installer every action runs first (ARCHITECTURE.md, Layers).
const InstallScript = "scripts/install-deploykit.sh"

// header marks generated files.
const header = "# Generated from the Go input definitions by `make generate`; edit internal/*/spec.go, not this file.\n"

// Render returns actions/<name>/action.yml for a subcommand: an install step, then
// one step that runs `deploykit <name>` with every input mapped through env: —
// composite actions get no INPUT_* variables on GitHub, and an input must never be
// interpolated into run: (script injection).
func Render(spec *action.Spec) string {
	var b strings.Builder
	b.WriteString(header)
	fmt.Fprintf(&b, "name: deploy-kit %s\n", spec.Name)
	fmt.Fprintf(&b, "description: %s\n", yamlString(spec.Description))
	b.WriteString("author: deploy-kit\n")
	if len(spec.Inputs) > 0 {
		b.WriteString("inputs:\n")
		for _, in := range spec.Inputs {
			fmt.Fprintf(&b, "  %s:\n", in.Name)
			fmt.Fprintf(&b, "    description: %s\n", yamlString(in.Description))
			fmt.Fprintf(&b, "    required: %t\n", in.Required)
			if !in.Required {
				fmt.Fprintf(&b, "    default: %s\n", yamlString(in.Default))
			}
		}
	}
	if len(spec.Outputs) > 0 {
		b.WriteString("outputs:\n")
		for _, o := range spec.Outputs {
			fmt.Fprintf(&b, "  %s:\n", o.Name)
			fmt.Fprintf(&b, "    description: %s\n", yamlString(o.Description))
			fmt.Fprintf(&b, "    value: ${{ steps.run.outputs.%s }}\n", o.Name)
		}
	}
	b.WriteString("runs:\n  using: composite\n  steps:\n")
	writeInstallStep(&b, "../../"+InstallScript)
	fmt.Fprintf(&b, "    - name: deploykit %s\n      id: run\n      shell: bash\n      env:\n", spec.Name)
	b.WriteString("        DEPLOYKIT: ${{ steps.install.outputs.path }}\n")
	for _, in := range spec.Inputs {
		fmt.Fprintf(&b, "        %s: ${{ inputs.%s }}\n", in.EnvName(), in.Name)
	}
	// exec: deploykit becomes the step's entry process, the one a runner
	// signals when the job is cancelled (GitHub signals only that process;
	// behind a shell that waits for it, deploykit would never hear).
	fmt.Fprintf(&b, "      run: 'exec \"$DEPLOYKIT\" %s'\n", spec.Name)
	return b.String()
}

// RenderSetup returns the root action.yml, which only puts deploykit on PATH for
// custom run: steps.
func RenderSetup() string {
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("name: deploy-kit setup\n")
	b.WriteString("description: Put the deploykit binary on PATH for the job's own run steps.\n")
	b.WriteString("author: deploy-kit\n")
	b.WriteString("outputs:\n")
	b.WriteString("  path:\n    description: Path of the deploykit binary.\n    value: ${{ steps.install.outputs.path }}\n")
	b.WriteString("  version:\n    description: Version of the kit that was installed.\n    value: ${{ steps.install.outputs.version }}\n")
	b.WriteString("runs:\n  using: composite\n  steps:\n")
	writeInstallStep(&b, InstallScript)
	return b.String()
}

func writeInstallStep(b *strings.Builder, script string) {
	b.WriteString("    - name: Install deploykit\n      id: install\n      shell: bash\n      env:\n")
	b.WriteString("        DEPLOYKIT_ACTION_PATH: ${{ github.action_path }}\n")
	// Where release assets are downloaded from: this action's own repository.
	b.WriteString("        GITHUB_ACTION_REPOSITORY: ${{ github.action_repository }}\n")
	fmt.Fprintf(b, "      run: '\"$DEPLOYKIT_ACTION_PATH/%s\"'\n", script)
}

// yamlString quotes s as a YAML double-quoted scalar (JSON strings are valid YAML).
func yamlString(s string) string { return strconv.Quote(s) }

// Shared is a group of inputs several actions take, documented once on a page
// of its own (Page, relative to the repository root): the tables of the
// actions that take the whole group link there instead of repeating it.
type Shared struct {
	Name   string // its table's marker: <!-- begin NAME inputs -->
	Title  string // e.g. "notification inputs"
	Page   string // e.g. docs/notifications.md
	Inputs []action.Input
}

// takes reports whether spec takes every input of the group, as defined there.
func (g Shared) takes(spec *action.Spec) bool {
	for _, in := range g.Inputs {
		found := false
		for _, s := range spec.Inputs {
			if s.Name == in.Name && s.Description == in.Description {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return len(g.Inputs) > 0
}

// InputsTable renders a subcommand's inputs and outputs as Markdown tables for
// the page page (relative to the repository root): the inputs of a shared
// group the spec takes whole are a line linking to the group's page.
func InputsTable(spec *action.Spec, shared []Shared, page string) string {
	var b strings.Builder
	var groups []Shared
	grouped := map[string]bool{}
	for _, g := range shared {
		if g.Page != page && g.takes(spec) {
			groups = append(groups, g)
			for _, in := range g.Inputs {
				grouped[in.Name] = true
			}
		}
	}
	var own []action.Input
	for _, in := range spec.Inputs {
		if !grouped[in.Name] {
			own = append(own, in)
		}
	}
	b.WriteString(inputRows(own))
	if len(groups) > 0 {
		var also []string
		for _, g := range groups {
			rel, _ := filepath.Rel(filepath.Dir(page), g.Page)
			names := make([]string, len(g.Inputs))
			for i, in := range g.Inputs {
				names[i] = "`" + in.Name + "`"
			}
			also = append(also, fmt.Sprintf("the [%s](%s) (%s)", g.Title, filepath.ToSlash(rel), strings.Join(names, ", ")))
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString("Also " + strings.Join(also, "; ") + ".\n")
	}
	if len(spec.Outputs) > 0 {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString("| output | description |\n|---|---|\n")
		for _, o := range spec.Outputs {
			fmt.Fprintf(&b, "| `%s` | %s |\n", o.Name, cell(o.Description))
		}
	}
	return b.String()
}

// SharedTable renders a shared group's inputs, for its own page.
func SharedTable(g Shared) string { return inputRows(g.Inputs) }

// inputRows is the Markdown table of inputs ("" for none).
func inputRows(inputs []action.Input) string {
	if len(inputs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| input | type | default | description |\n|---|---|---|---|\n")
	for _, in := range inputs {
		kind := in.Kind.String()
		if in.Kind == action.Enum {
			kind = strings.Join(in.Enum, " \\| ")
		}
		def := "`" + in.Default + "`"
		switch {
		case in.Required:
			def = "required"
		case in.Default == "":
			def = ""
		}
		desc := in.Description
		if in.Secret {
			desc += " Masked."
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", in.Name, kind, def, cell(desc))
	}
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// ReplaceBetween replaces the text between the marker lines
// <!-- begin NAME --> and <!-- end NAME --> in doc.
func ReplaceBetween(doc, name, content string) (string, error) {
	begin, end := "<!-- begin "+name+" -->\n", "<!-- end "+name+" -->"
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("markers %q and %q not found", strings.TrimSpace(begin), end)
	}
	return doc[:i+len(begin)] + content + doc[j:], nil
}
