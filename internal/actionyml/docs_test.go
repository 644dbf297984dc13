package actionyml_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/org/deploy-kit/internal/cli"
	"github.com/org/deploy-kit/internal/testenv"
)

// markdownFiles are the pages a reader follows links through: README.md, the
// other top-level documents and every page under docs/.
func markdownFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	pages := docPages(t, root)
	for _, f := range []string{"ARCHITECTURE.md", "BENCHMARKS.md", "CHANGELOG.md"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		require.NoError(t, err)
		pages[f] = string(data)
	}
	return pages
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`(?m)^#{1,6} +(.+?) *$`)
	fenceRE   = regexp.MustCompile("(?ms)^```([a-z]*)\n(.*?)^```")
)

// anchors are the heading anchors GitHub makes for a page: lower case,
// punctuation dropped, spaces to hyphens, repeats numbered.
func anchors(page string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, m := range headingRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(page, ""), -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// TestDocLinks: every relative link of the docs leads to a file of the
// repository, and every #anchor to a heading of its page.
func TestDocLinks(t *testing.T) {
	root := testenv.RepoRoot(t)
	pages := markdownFiles(t, root)
	checked := 0
	for rel, doc := range pages {
		for _, m := range linkRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(doc, ""), -1) {
			target := m[1]
			if regexp.MustCompile(`^[a-z]+:`).MatchString(target) {
				continue // a web address
			}
			file, anchor, _ := strings.Cut(target, "#")
			dest := rel
			if file != "" {
				dest = filepath.Join(filepath.Dir(rel), file)
				if _, err := os.Stat(filepath.Join(root, dest)); err != nil {
					t.Errorf("%s: link %s: %s does not exist", rel, target, dest)
					continue
				}
			}
			checked++
			if anchor == "" {
				continue
			}
			page, ok := pages[filepath.Clean(dest)]
			if !ok {
				t.Errorf("%s: link %s: an anchor into %s, which is not a page of the docs", rel, target, dest)
				continue
			}
			if !anchors(page)[anchor] {
				t.Errorf("%s: link %s: %s has no heading #%s", rel, target, dest, anchor)
			}
		}
	}
	assert.Greater(t, checked, 50, "the links were found")
}

// TestDocYAML: every yaml block of the docs parses, and every step in it that
// uses one of the kit's actions gives only inputs that action has.
func TestDocYAML(t *testing.T) {
	root := testenv.RepoRoot(t)
	var setup actionFile // the setup action, action.yml at the root
	data, err := os.ReadFile(filepath.Join(root, "action.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &setup))
	inputs := map[string]map[string]bool{"setup": {}}
	for name := range setup.Inputs {
		inputs["setup"][name] = true
	}
	for _, c := range cli.Commands {
		if c.Action {
			set := map[string]bool{}
			for _, in := range c.Spec.Inputs {
				set[in.Name] = true
			}
			inputs[c.Spec.Name] = set
		}
	}
	usesRE := regexp.MustCompile(`^[^/]+/deploy-kit(?:/actions/([a-z-]+))?@`)
	blocks, steps := 0, 0
	for rel, doc := range markdownFiles(t, root) {
		for _, m := range fenceRE.FindAllStringSubmatch(doc, -1) {
			if m[1] != "yaml" && m[1] != "yml" {
				continue
			}
			blocks++
			var node any
			if err := yaml.Unmarshal([]byte(m[2]), &node); err != nil {
				t.Errorf("%s: a yaml block does not parse: %v\n%s", rel, err, m[2])
				continue
			}
			walk(node, func(step map[string]any) {
				uses, _ := step["uses"].(string)
				u := usesRE.FindStringSubmatch(uses)
				if u == nil {
					return
				}
				name := u[1]
				if name == "" {
					name = "setup"
				}
				known, ok := inputs[name]
				if !ok {
					t.Errorf("%s: uses %s: the kit has no action %s", rel, uses, name)
					return
				}
				steps++
				with, _ := step["with"].(map[string]any)
				for k := range with {
					if !known[k] {
						t.Errorf("%s: uses %s with %s: the action has no input %s", rel, uses, k, k)
					}
				}
			})
		}
	}
	assert.Greater(t, blocks, 10, "the yaml blocks were found")
	assert.Greater(t, steps, 5, "the steps using the kit were found")
}

// walk calls fn for every mapping in node, nested ones included.
func walk(node any, fn func(map[string]any)) {
	switch n := node.(type) {
	case map[string]any:
		fn(n)
		for _, v := range n {
			walk(v, fn)
		}
	case []any:
		for _, v := range n {
			walk(v, fn)
		}
	}
}
