// Package stackcopy makes the private copy of a compose stack that the
// rehearsal (deploy) and the restore drill start production's data in
// (ARCHITECTURE.md, "Each action's steps"). A copy shares nothing with
// production: it runs on networks of its own (internal unless copy-outbound:
// no route to the host's published ports, to other networks or out), every
// volume is its own (one that is external or has a fixed name is replaced by
// an empty one of the copy's), it publishes no port and has no extra_hosts or
// external_links. A service whose network stack is production's or the host's
// (network_mode host or container:) cannot be isolated and is refused. Every
// service of a copy finds DEPLOYKIT_COPY (rehearsal or drill) and copy-env in
// its environment, and carries labels that let the next run find and remove
// what a killed run left (Sweep).
//
// The copy is a compose override merged over production's files; Check loads
// the merged model with compose-go and refuses it unless every one of those
// promises holds, so a compose file the override does not foresee fails
// closed, before anything starts.
package stackcopy

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/compose"
	"github.com/org/deploy-kit/internal/docker"
)

// The kinds of copy.
const (
	Rehearsal = "rehearsal"
	Drill     = "drill"
)

// EnvVar is set in every service of a copy to its kind, so that an app can tell
// it runs in a copy (and, say, send no mail).
const EnvVar = "DEPLOYKIT_COPY"

// Labels on every container, network and volume of a copy.
const (
	LabelOf   = docker.LabelStack    // production's compose project: the next run removes the copy (repair)
	LabelKind = "org.deploykit.copy" // rehearsal or drill
)

// envPrefix carries copy-env's values to docker compose in its environment:
// the override names them, so no value is ever written to a file.
const envPrefix = "DEPLOYKIT_COPY_ENV_"

// Options are the inputs that shape a copy (deploy's rehearsal, restore's
// drill).
type Options struct {
	Env      []string `input:"copy-env"`
	Outbound bool     `input:"copy-outbound"`
}

// Inputs are the copy's inputs, shared by deploy and restore.
var Inputs = []action.Input{
	{Name: "copy-env", Kind: action.List, Description: "Rehearsal and drill: KEY=value lines set in every service of the private copy of the stack, over the compose file's own (e.g. WEBHOOK_URL= to turn outbound calls off); every service of a copy also gets " + EnvVar + "=rehearsal or drill. Values reach docker compose through its environment, never a file."},
	{Name: "copy-outbound", Kind: action.Bool, Default: "false", Description: "Rehearsal and drill: let the copy's containers reach outside the copy (the internet, the host's published ports). Off: the copy's networks are internal, so a copy can neither call production's webhooks nor reach production by address."},
}

var (
	keyPattern    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	unsafeProject = regexp.MustCompile(`[^a-z0-9_-]+`)
)

// Mount is a bind mount of production's that the copy replaces with a volume
// of its own (the rehearsal's SQLite directory, which gets the restored file).
type Mount struct {
	Service, Target, Volume string
}

// Copy is a planned copy of a stack.
type Copy struct {
	Name     string // the copy's compose project
	Of       string // production's compose project
	Kind     string
	Outbound bool
	// Changes says what the copy does differently from production beyond
	// ports and networks (volumes replaced, extra_hosts dropped), for the
	// summary.
	Changes []string

	env      []string // envPrefix variables for docker compose
	override string
	own      []Mount
}

// New checks production's model p for what a copy cannot isolate and plans the
// copy; input names the input that asked for it (rehearse or drill) in the
// errors, which are bad input (exit 2). own lists bind mounts the copy replaces
// with volumes of its own; every other writable bind mount is refused.
func New(p *types.Project, kind, input string, o Options, own []Mount) (*Copy, error) {
	c := &Copy{Of: p.Name, Kind: kind, Outbound: o.Outbound, own: own}
	c.Name = unsafeProject.ReplaceAllString(strings.ToLower(p.Name+"-"+kind+"-"+time.Now().UTC().Format("20060102t150405")), "-")
	env, keys, err := copyEnv(o.Env)
	if err != nil {
		return nil, err
	}
	c.env = env
	var b strings.Builder
	b.WriteString("# The private copy of a stack (deploykit " + kind + "): nothing shared with production.\nservices:\n")
	for _, name := range p.ServiceNames() {
		svc := p.Services[name]
		if err := isolable(p, name, svc, input, own); err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "  %s:\n    ports: !reset []\n    extra_hosts: !reset []\n    external_links: !reset []\n    restart: \"no\"\n", yamlKey(name))
		if len(svc.ExtraHosts) > 0 {
			c.Changes = append(c.Changes, fmt.Sprintf("%s's extra_hosts dropped", name))
		}
		if len(svc.ExternalLinks) > 0 {
			c.Changes = append(c.Changes, fmt.Sprintf("%s's external_links dropped", name))
		}
		switch {
		case svc.NetworkMode == "bridge":
			// The host's default bridge is shared with every container
			// there: the copy's own default network instead.
			b.WriteString("    network_mode: !reset null\n")
			c.Changes = append(c.Changes, fmt.Sprintf("%s on the copy's own network instead of network_mode bridge", name))
		case svc.NetworkMode == "":
			// Its networks, by the same keys (the copy's own networks
			// below), with their aliases; fixed addresses and MACs go.
			b.WriteString("    networks: !override\n")
			for _, key := range sortedKeys(svc.Networks) {
				fmt.Fprintf(&b, "      %s:", yamlKey(key))
				if n := svc.Networks[key]; n != nil && len(n.Aliases) > 0 {
					b.WriteString("\n        aliases:\n")
					for _, a := range n.Aliases {
						fmt.Fprintf(&b, "          - %s\n", yamlString(a))
					}
				} else {
					b.WriteString(" {}\n")
				}
			}
		}
		fmt.Fprintf(&b, "    labels:\n      %s: %s\n      %s: %s\n", LabelOf, yamlString(p.Name), LabelKind, kind)
		fmt.Fprintf(&b, "    environment:\n      %s: %s\n", EnvVar, kind)
		for _, k := range keys {
			fmt.Fprintf(&b, "      %s: ${%s%s}\n", k, envPrefix, k)
		}
		var mounts []Mount
		for _, m := range own {
			if m.Service == name {
				mounts = append(mounts, m)
			}
		}
		if len(mounts) > 0 {
			b.WriteString("    volumes:\n")
			for _, m := range mounts {
				fmt.Fprintf(&b, "      - type: volume\n        source: %s\n        target: %s\n", yamlKey(m.Volume), yamlString(m.Target))
			}
		}
	}
	// Every network the model declares becomes the copy's own, by the same key.
	b.WriteString("networks:\n")
	nets := sortedKeys(p.Networks)
	if !slices.Contains(nets, "default") {
		nets = append(nets, "default")
	}
	for _, key := range nets {
		if n, ok := p.Networks[key]; ok && (bool(n.External) || n.Driver != "" && n.Driver != "bridge") {
			c.Changes = append(c.Changes, fmt.Sprintf("network %s (%s) replaced by the copy's own", key, describeNetwork(n)))
		}
		fmt.Fprintf(&b, "  %s: !override\n    internal: %t\n    labels:\n      %s: %s\n      %s: %s\n", yamlKey(key), !o.Outbound, LabelOf, yamlString(p.Name), LabelKind, kind)
	}
	// So does every volume: empty, local, the copy's.
	vols := sortedKeys(p.Volumes)
	for _, m := range own {
		if !slices.Contains(vols, m.Volume) {
			vols = append(vols, m.Volume)
		}
	}
	if len(vols) > 0 {
		b.WriteString("volumes:\n")
	}
	for _, key := range vols {
		if v, ok := p.Volumes[key]; ok {
			if d := describeVolume(p.Name, key, v); d != "" {
				c.Changes = append(c.Changes, fmt.Sprintf("volume %s (%s) replaced by an empty one of the copy's", key, d))
			}
		}
		fmt.Fprintf(&b, "  %s: !override\n    labels:\n      %s: %s\n      %s: %s\n", yamlKey(key), LabelOf, yamlString(p.Name), LabelKind, kind)
	}
	c.override = b.String()
	return c, nil
}

// isolable refuses what the copy cannot isolate: a container name of its own,
// another network stack, a writable bind mount of production's files, volumes
// of another container.
func isolable(p *types.Project, name string, svc types.ServiceConfig, input string, own []Mount) error {
	if svc.ContainerName != "" {
		return action.Usagef("input %s: service %s has container_name %s: a copy of the stack cannot run beside it", input, name, svc.ContainerName)
	}
	mode := svc.NetworkMode
	switch {
	case mode == "host":
		return action.Usagef("input %s: service %s has network_mode host: a copy of it would share the host's network (and production's ports and addresses); give it networks of its own to rehearse it", input, name)
	case strings.HasPrefix(mode, "container:"):
		return action.Usagef("input %s: service %s has network_mode %s: a copy of it would share that container's network; use network_mode service: of a service of the stack, or networks", input, name, mode)
	case strings.HasPrefix(mode, "service:"):
		if _, ok := p.Services[strings.TrimPrefix(mode, "service:")]; !ok {
			return action.Usagef("input %s: service %s has network_mode %s, which is not a service of %s: a copy of it would share a network outside the copy", input, name, mode, p.Name)
		}
	case mode != "" && mode != "none" && mode != "bridge":
		return action.Usagef("input %s: service %s has network_mode %s: a copy of it cannot be isolated from production", input, name, mode)
	}
	for _, from := range svc.VolumesFrom {
		if strings.HasPrefix(from, "container:") {
			return action.Usagef("input %s: service %s has volumes_from %s: a copy of it would write into that container's volumes", input, name, from)
		}
	}
	for _, v := range svc.Volumes {
		if slices.ContainsFunc(own, func(m Mount) bool { return m.Service == name && m.Target == v.Target }) {
			continue // the copy mounts a volume of its own there
		}
		switch v.Type {
		case types.VolumeTypeBind:
			if !v.ReadOnly {
				return action.Usagef("input %s: service %s bind-mounts %s writable: a copy of the stack would write into production's files (use a named volume, or mount it read-only)", input, name, v.Source)
			}
		case types.VolumeTypeVolume, types.VolumeTypeTmpfs, types.VolumeTypeImage:
		default:
			return action.Usagef("input %s: service %s mounts %s of type %s: a copy of the stack cannot have one of its own", input, name, v.Target, v.Type)
		}
	}
	return nil
}

// copyEnv checks copy-env's lines and turns them into the variables docker
// compose gets, and the keys the override names.
func copyEnv(lines []string) (env, keys []string, err error) {
	seen := map[string]bool{}
	for _, line := range lines {
		k, v, ok := strings.Cut(line, "=")
		if !ok || !keyPattern.MatchString(k) {
			return nil, nil, action.Usagef("input copy-env: %s is not KEY=value (a variable name, then =, then the value, which may be empty)", action.Name(strings.TrimSpace(firstWord(line))))
		}
		if k == EnvVar {
			return nil, nil, action.Usagef("input copy-env: %s is set by the kit (rehearsal or drill)", EnvVar)
		}
		if seen[k] {
			return nil, nil, action.Usagef("input copy-env: %s is set twice", k)
		}
		seen[k] = true
		keys = append(keys, k)
		env = append(env, envPrefix+k+"="+v)
	}
	slices.Sort(keys)
	return env, keys, nil
}

// firstWord is what an error may show of a bad copy-env line: never its value.
func firstWord(line string) string {
	if k, _, ok := strings.Cut(line, "="); ok {
		return k + "=…"
	}
	if len(line) > 40 {
		return line[:40] + "…"
	}
	return line
}

func describeNetwork(n types.NetworkConfig) string {
	if n.External {
		return "external " + n.Name
	}
	return "driver " + n.Driver
}

// describeVolume says why volume key is not already the copy's own kind of
// volume, or "".
func describeVolume(project, key string, v types.VolumeConfig) string {
	switch {
	case bool(v.External):
		return "external " + v.Name
	case v.Name != "" && v.Name != project+"_"+key:
		return "named " + v.Name
	case v.Driver != "" && v.Driver != "local", len(v.DriverOpts) > 0:
		return "driver " + orLocal(v.Driver) + " with its options"
	}
	return ""
}

func orLocal(d string) string {
	if d == "" {
		return "local"
	}
	return d
}

// Project is the copy as docker compose runs it: production's files, the
// override written into dir (a temp directory outside the workspace), the
// copy's name, and copy-env's values in compose's environment. remove deletes
// the override.
func (c *Copy) Project(prod compose.Project, dir string) (p compose.Project, remove func(), err error) {
	f, err := os.CreateTemp(dir, "deploykit-"+c.Kind+"-"+c.Name+"-*.yaml")
	if err != nil {
		return p, nil, fmt.Errorf("writing the copy's compose file: %w", err)
	}
	name := f.Name()
	remove = func() { os.Remove(name) }
	if _, err := f.WriteString(c.override); err != nil {
		f.Close()
		remove()
		return p, nil, fmt.Errorf("writing the copy's compose file: %w", err)
	}
	if err := f.Close(); err != nil {
		remove()
		return p, nil, fmt.Errorf("writing the copy's compose file: %w", err)
	}
	p = prod
	p.Name = c.Name
	p.Overrides = append(slices.Clone(prod.Overrides), name)
	p.Env = append(slices.Clone(prod.Env), c.env...)
	return p, remove, nil
}

// Override is the compose file the copy merges over production's.
func (c *Copy) Override() string { return c.override }

// Check loads the copy's model as docker compose will (production's files,
// the override, the environment production's model was loaded with plus
// copy-env's values) and refuses it unless it is isolated: its own name, no
// published port, only networks of its own (internal unless Outbound), only
// volumes of its own, no read-write bind mount but the ones it replaces, no
// extra_hosts or external_links, the copy's labels and environment. A failure
// here is the kit's, not the user's: the copy does not start.
func (c *Copy) Check(ctx context.Context, prod compose.Project, env []string) error {
	dir, err := os.MkdirTemp("", "deploykit-copy-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cp, remove, err := c.Project(prod, dir)
	if err != nil {
		return err
	}
	defer remove()
	m, err := compose.Load(ctx, cp.File, cp.Name, append(slices.Clone(env), c.env...), cp.EnvFiles, cp.Overrides...)
	if err != nil {
		return fmt.Errorf("loading the copy's compose model: %w", err)
	}
	return c.isolated(m)
}

// isolated is Check's verdict on the merged model m.
func (c *Copy) isolated(m *types.Project) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("the copy %s would not be isolated from production: "+format, append([]any{c.Name}, args...)...)
	}
	if m.Name != c.Name {
		return fail("its project is %s", m.Name)
	}
	for _, name := range m.ServiceNames() {
		svc := m.Services[name]
		if len(svc.Ports) > 0 {
			return fail("%s publishes a port", name)
		}
		if svc.ContainerName != "" {
			return fail("%s has container_name %s", name, svc.ContainerName)
		}
		if len(svc.ExtraHosts) > 0 || len(svc.ExternalLinks) > 0 {
			return fail("%s has extra_hosts or external_links", name)
		}
		if mode := svc.NetworkMode; mode != "" && mode != "none" {
			if _, ok := m.Services[strings.TrimPrefix(mode, "service:")]; !ok || !strings.HasPrefix(mode, "service:") {
				return fail("%s has network_mode %s", name, mode)
			}
		}
		for key := range svc.Networks {
			n, ok := m.Networks[key]
			switch {
			case !ok:
				return fail("%s joins network %s, which the model does not declare", name, key)
			case bool(n.External) || n.Name != c.Name+"_"+key:
				return fail("%s joins network %s (%s), not the copy's own", name, key, n.Name)
			case n.Internal == c.Outbound:
				return fail("%s joins network %s, which is internal: %t", name, key, n.Internal)
			}
		}
		for _, v := range svc.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if !v.ReadOnly {
					return fail("%s bind-mounts %s writable", name, v.Source)
				}
			case types.VolumeTypeVolume:
				if v.Source == "" {
					continue // anonymous: the container's own
				}
				vol, ok := m.Volumes[v.Source]
				if !ok || bool(vol.External) || vol.Name != c.Name+"_"+v.Source || vol.Driver != "" && vol.Driver != "local" || len(vol.DriverOpts) > 0 {
					return fail("%s mounts volume %s (%s), not an empty one of the copy's own", name, v.Source, vol.Name)
				}
			}
		}
		for _, from := range svc.VolumesFrom {
			if strings.HasPrefix(from, "container:") {
				return fail("%s has volumes_from %s", name, from)
			}
		}
		if svc.Labels[LabelOf] != c.Of || svc.Labels[LabelKind] != c.Kind {
			return fail("%s lacks the copy's labels", name)
		}
		if v := svc.Environment[EnvVar]; v == nil || *v != c.Kind {
			return fail("%s lacks %s=%s", name, EnvVar, c.Kind)
		}
	}
	return nil
}

// Summary is a line for the summary: how the copy is isolated and what it
// does differently from production.
func (c *Copy) Summary() string {
	s := "networks of its own, internal"
	if c.Outbound {
		s = "networks of its own, with outbound access (copy-outbound)"
	}
	s += ", volumes of its own, no published ports"
	if len(c.Changes) > 0 {
		s += "; " + strings.Join(c.Changes, "; ")
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// yamlKey and yamlString quote for YAML (JSON strings are YAML), so a name can
// never add a key of its own; $ is doubled, as compose interpolates it.
func yamlKey(s string) string { return strconv.Quote(s) }

func yamlString(s string) string { return strconv.Quote(strings.ReplaceAll(s, "$", "$$")) }
