package actionyml_test

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/actionyml"
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/cli"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/notify"
	"github.com/org/deploy-kit/internal/remote"
	"github.com/org/deploy-kit/internal/stackcopy"
	"github.com/org/deploy-kit/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the generated action.yml files and the docs' tables")

// shared are the input groups documented once, on their own pages.
var shared = []actionyml.Shared{
	{Name: "notify", Title: "notification inputs", Page: "docs/notifications.md", Inputs: notify.Inputs},
	{Name: "checks", Title: "health and smoke check inputs", Page: "docs/checks.md", Inputs: deploy.VerifyInputs},
	{Name: "copy", Title: "copy inputs", Page: "docs/rehearsal.md", Inputs: stackcopy.Inputs},
	{Name: "ssh", Title: "SSH inputs", Page: "docs/remote.md", Inputs: remote.Inputs},
	{Name: "offsite", Title: "offsite connection inputs", Page: "docs/offsite.md", Inputs: backup.OffsiteConnInputs},
}

// docPages are README.md and every page under docs/, by path relative to
// the repo root.
func docPages(t *testing.T, root string) map[string]string {
	t.Helper()
	pages := map[string]string{}
	read := func(rel string) {
		data, err := os.ReadFile(filepath.Join(root, rel))
		require.NoError(t, err)
		pages[rel] = string(data)
	}
	read("README.md")
	require.NoError(t, filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, _ := filepath.Rel(root, p)
			read(rel)
		}
		return err
	}))
	return pages
}

// generated is every file this package renders, by path relative to the repo root.
func generated(t *testing.T, root string) map[string]string {
	files := map[string]string{"action.yml": actionyml.RenderSetup()}
	pages := docPages(t, root)
	// replace puts content between the markers of name, which exactly one page holds.
	replace := func(name string, content func(page string) string) {
		var holders []string
		for rel, doc := range pages {
			if strings.Contains(doc, "<!-- begin "+name+" inputs -->\n") {
				holders = append(holders, rel)
			}
		}
		require.Len(t, holders, 1, "pages with the markers of the %s inputs", name)
		doc, err := actionyml.ReplaceBetween(pages[holders[0]], name+" inputs", content(holders[0]))
		require.NoError(t, err, holders[0])
		pages[holders[0]] = doc
	}
	for _, c := range cli.Commands {
		if c.Action {
			files[filepath.Join("actions", c.Spec.Name, "action.yml")] = actionyml.Render(c.Spec)
		}
		if len(c.Spec.Inputs)+len(c.Spec.Outputs) > 0 && c.Spec.Name != "version" {
			replace(c.Spec.Name, func(page string) string { return actionyml.InputsTable(c.Spec, shared, page) })
		}
	}
	for _, g := range shared {
		replace(g.Name, func(string) string { return actionyml.SharedTable(g) })
	}
	for rel, doc := range pages {
		files[rel] = doc
	}
	return files
}

func TestGeneratedFilesAreUpToDate(t *testing.T) {
	root := testenv.RepoRoot(t)
	for path, want := range generated(t, root) {
		full := filepath.Join(root, path)
		if *update {
			require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
			require.NoError(t, os.WriteFile(full, []byte(want), 0o644))
			continue
		}
		got, err := os.ReadFile(full)
		require.NoError(t, err)
		assert.Equal(t, want, string(got), "%s is out of date: run make generate", path)
	}
}

type actionFile struct {
	Inputs map[string]struct {
		Required bool    `yaml:"required"`
		Default  *string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Value string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string       `yaml:"using"`
		Steps []actionStep `yaml:"steps"`
	} `yaml:"runs"`
}

type actionStep struct {
	ID   string            `yaml:"id"`
	If   string            `yaml:"if"`
	Uses string            `yaml:"uses"`
	With map[string]string `yaml:"with"`
	Run  string            `yaml:"run"`
	Env  map[string]string `yaml:"env"`
}

var expr = regexp.MustCompile(`\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}`)

// TestActionFilesMatchTheGoDefinitions reads each action.yml as a runner would and
// checks it against the Go definitions, independently of the generator: every
// declared input is defined in Go with the same default, every Go input is
// declared, every input reaches deploykit through env:, and no run: script
// interpolates an expression.
func TestActionFilesMatchTheGoDefinitions(t *testing.T) {
	root := testenv.RepoRoot(t)
	dirs, err := filepath.Glob(filepath.Join(root, "actions", "*", "action.yml"))
	require.NoError(t, err)
	var names []string
	for _, c := range cli.Commands {
		if c.Action {
			names = append(names, c.Spec.Name)
		}
	}
	require.Len(t, dirs, len(names), "one action.yml per action subcommand")
	// A runner refuses an action.yml with an expression outside the places that
	// take one ("expressions are not allowed here"), descriptions included.
	for _, c := range cli.Commands {
		for _, in := range c.Spec.Inputs {
			assert.NotContains(t, in.Description+in.Default, "${{", "%s input %s", c.Spec.Name, in.Name)
		}
		for _, out := range c.Spec.Outputs {
			assert.NotContains(t, out.Description, "${{", "%s output %s", c.Spec.Name, out.Name)
		}
	}

	for _, path := range append(dirs, filepath.Join(root, "action.yml")) {
		rel, _ := filepath.Rel(root, path)
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			var af actionFile
			require.NoError(t, yaml.Unmarshal(data, &af))
			assert.Equal(t, "composite", af.Runs.Using)
			for _, step := range af.Runs.Steps {
				assert.NotContains(t, step.Run, "${{", "run: must not interpolate expressions (step %q)", step.ID)
				// No other action: a runner resolves every uses: of a job before it
				// starts (act_runner even those whose if: is false), and no version of
				// e.g. upload-artifact exists on every forge. Workflows upload.
				assert.Empty(t, step.Uses, "step %q", step.ID)
			}
			if rel == "action.yml" {
				assert.Empty(t, af.Inputs)
				return
			}

			name := filepath.Base(filepath.Dir(path))
			cmd := cli.Lookup(name)
			require.NotNil(t, cmd, "actions/%s has no deploykit subcommand", name)
			require.True(t, cmd.Action)

			// Inputs: declared ⇔ defined in Go, same default and required.
			for declared, in := range af.Inputs {
				idx := slices.IndexFunc(cmd.Spec.Inputs, func(d action.Input) bool { return d.Name == declared })
				if !assert.GreaterOrEqual(t, idx, 0, "input %s is declared in action.yml but not defined in Go", declared) {
					continue
				}
				def := cmd.Spec.Inputs[idx]
				assert.Equal(t, def.Required, in.Required, "input %s: required", declared)
				if !def.Required {
					require.NotNil(t, in.Default, "input %s has no default", declared)
					assert.Equal(t, def.Default, *in.Default, "input %s: default differs from Go", declared)
				}
			}
			for _, def := range cmd.Spec.Inputs {
				assert.Contains(t, af.Inputs, def.Name, "input %s is defined in Go but not declared in action.yml", def.Name)
			}

			// Every input is mapped, through env:, on the step that runs deploykit.
			var run *actionStep
			for i := range af.Runs.Steps {
				if strings.Contains(af.Runs.Steps[i].Run, "\"$DEPLOYKIT\" "+name) {
					run = &af.Runs.Steps[i]
				}
			}
			require.NotNil(t, run, "no step runs deploykit %s", name)
			for _, def := range cmd.Spec.Inputs {
				m := expr.FindStringSubmatch(run.Env[def.EnvName()])
				if assert.NotNil(t, m, "input %s is not mapped to %s", def.Name, def.EnvName()) {
					assert.Equal(t, def.Name, m[1], "%s maps the wrong input", def.EnvName())
				}
			}
			for _, o := range cmd.Spec.Outputs {
				assert.Equal(t, "${{ steps.run.outputs."+o.Name+" }}", af.Outputs[o.Name].Value, "output %s", o.Name)
			}
			assert.Len(t, af.Outputs, len(cmd.Spec.Outputs))
		})
	}
}

// TestExamplesNameOneVersionPerForge: within each forge's example workflows every
// action is named at one version, and the artifact upload at the one that forge
// serves (v4 on GitHub, which refuses v3; v3 on Gitea, whose server speaks only it).
func TestExamplesNameOneVersionPerForge(t *testing.T) {
	root := testenv.RepoRoot(t)
	for forge, upload := range map[string]string{"github": "actions/upload-artifact@v4", "gitea": "actions/upload-artifact@v3"} {
		files, err := filepath.Glob(filepath.Join(root, "examples", "app", "."+forge, "workflows", "*.yaml"))
		require.NoError(t, err)
		require.NotEmpty(t, files)
		versions := map[string]map[string]bool{}
		uploads := 0
		for _, f := range files {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			for _, m := range usesLine.FindAllStringSubmatch(string(data), -1) {
				name, version, _ := strings.Cut(m[1], "@")
				if strings.HasPrefix(name, ".") || strings.Contains(name, "deploy-kit") {
					continue // local, or the kit itself
				}
				if versions[name] == nil {
					versions[name] = map[string]bool{}
				}
				versions[name][version] = true
				if name == "actions/upload-artifact" {
					assert.Equal(t, upload, m[1], "%s", f)
					uploads++
				}
			}
		}
		for name, vs := range versions {
			assert.Len(t, vs, 1, "%s examples name %s at %v", forge, name, vs)
		}
		assert.Positive(t, uploads, "the %s backup example uploads its artifact", forge)
	}
}

var usesLine = regexp.MustCompile(`(?m)^\s*(?:-\s+)?uses:\s*(\S+)`)
