package buildimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/compose"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/git"
	"github.com/org/deploy-kit/internal/steps"
)

// build is one image to build: the input's, or one build: service of a compose file.
type build struct {
	Service    string // compose service, or ""
	Image      string // repository, without tag
	Context    string // absolute
	Dockerfile string // absolute
	Target     string
	Args       []string // NAME=value
	Secrets    []buildSecret
}

// buildSecret is one BuildKit secret of a build: its id, and where docker build
// reads it — the variable Env of its environment (which holds Value) or the file
// File. The value never goes on the command line.
type buildSecret struct {
	ID    string
	Env   string
	Value string
	File  string
}

// pushed is what happened to one image.
type pushed struct {
	build
	Tags   []string // full references
	Digest string
}

var (
	tagPattern      = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	argPattern      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	secretIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	envNamePattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	secretLikeArg   = regexp.MustCompile(`(?i)pass|secret|token|key|credential|auth`)
)

// registryEngine is what build-image asks of the Docker Engine: that it
// answers, a login, and each push.
type registryEngine interface {
	Ping(ctx context.Context) error
	Login(ctx context.Context, a docker.Auth) error
	Push(ctx context.Context, ref string, a *docker.Auth, log io.Writer) (string, error)
	Close() error
}

// job is one build-image run: its options, what each step learnt, the results.
type job struct {
	a      *action.Context
	o      Options
	exec   command.Executor
	client registryEngine
	steps.Runner[*job]

	sha     string
	builds  []build
	tags    []string
	auth    *docker.Auth
	results []pushed
}

// Pipeline is build-image, top to bottom (ARCHITECTURE.md, "Each action's
// steps"): everything that can refuse the input runs before anything is built.
var Pipeline = []steps.Step[*job]{
	steps.Func("plan", planStep),     // the builds, the commit, the tags, the credentials: bad input exits 2
	steps.Func("engine", engineStep), // the engine answers; log in; buildx when there are build secrets
	steps.Func("build", buildStep),   // docker build each image with every tag and the OCI labels
	steps.Func("push", pushStep),     // push every tag, the same digest for all, read back from the registry
}

// Run is `deploykit build-image`: build with the docker CLI (which brings
// .dockerignore handling, and BuildKit where it is installed), tag by commit and
// version, label, push every tag through the Engine API with the credentials in
// its auth header, and check the digest against the registry.
func Run(ctx context.Context, a *action.Context, o Options) error {
	j := &job{a: a, o: o, exec: command.For(a, o.DryRun)}
	j.Runner = steps.Runner[*job]{Logf: a.Logf, OnExit: a.OnExit}
	defer j.Cleanup()
	if _, err := j.Run(ctx, Pipeline, j, nil); err != nil {
		return err
	}
	return report(a, j.results, o.Push && !o.DryRun, j.Results)
}

func planStep(ctx context.Context, j *job) error {
	builds, err := plan(ctx, j.a, j.o)
	if err != nil {
		return err
	}
	ws := j.a.Workspace()
	sha, err := j.exec.Output(ctx, git.ResolveCommit(ws, "HEAD"))
	if err != nil {
		return action.Usagef("the workspace %s is not a git checkout with a commit: %v", ws, err)
	}
	j.sha = strings.TrimSpace(sha)
	if j.tags, err = tagList(j.o, j.sha); err != nil {
		return err
	}
	if j.auth, err = credentials(j.o, builds); err != nil {
		return err
	}
	j.builds = builds
	j.Did("%d image(s), tags %s", len(builds), strings.Join(j.tags, ", "))
	return nil
}

func engineStep(ctx context.Context, j *job) error {
	if j.client == nil {
		client, err := docker.New(j.a.Environ())
		if err != nil {
			return action.Failedf("%w", err)
		}
		j.client = client
		j.Defer(func() { _ = client.Close() })
	}
	if j.o.DryRun {
		return steps.Skip("dry run")
	}
	if err := j.client.Ping(ctx); err != nil {
		return action.Failedf("%w", err)
	}
	if j.o.Push && j.auth != nil {
		if err := j.client.Login(ctx, *j.auth); err != nil {
			return action.Failedf("%w", err)
		}
		j.a.Logf("logged in to %s as %s", j.auth.Registry, j.auth.Username)
	}
	if slices.ContainsFunc(j.builds, func(b build) bool { return len(b.Secrets) > 0 }) {
		if _, err := j.exec.Output(ctx, command.Cmd{Argv: []string{"docker", "buildx", "version"}, Env: j.a.Environ()}); err != nil {
			return action.Failedf("build secrets need BuildKit, and the docker buildx plugin does not run here (%v): install it on the runner (https://docs.docker.com/go/buildx/)", err)
		}
	}
	return nil
}

func buildStep(ctx context.Context, j *job) error {
	labels := ociLabels(j.a, j.sha, j.o.Version)
	for _, b := range j.builds {
		p := pushed{build: b}
		for _, t := range j.tags {
			p.Tags = append(p.Tags, b.Image+":"+t)
		}
		if err := j.exec.Run(ctx, buildCmd(b, p.Tags, labels, j.o.NoCache, j.a.Environ())); err != nil {
			return action.Failedf("building %s: %v", b.Image, err)
		}
		j.results = append(j.results, p)
	}
	j.Did("built %d image(s)", len(j.builds))
	return nil
}

func pushStep(ctx context.Context, j *job) error {
	switch {
	case !j.o.Push:
		return steps.Skip("push is false")
	case j.o.DryRun:
		return steps.Skip("dry run")
	}
	for i := range j.results {
		p := &j.results[i]
		for _, ref := range p.Tags {
			j.a.Logf("pushing %s", ref)
			digest, err := j.client.Push(ctx, ref, j.auth, j.a.Log)
			if err != nil {
				return action.Failedf("%w", err)
			}
			if p.Digest != "" && digest != p.Digest {
				return action.Failedf("pushing %s: digest %s differs from the other tags' %s", ref, digest, p.Digest)
			}
			p.Digest = digest
		}
		if err := checkDigest(p.Tags[0], p.Digest, j.auth); err != nil {
			return action.Failedf("%w", err)
		}
	}
	j.Did("pushed %d image(s), digests read back from the registry", len(j.results))
	return nil
}

// plan works out what to build and refuses bad input before anything is built.
func plan(ctx context.Context, a *action.Context, in Options) ([]build, error) {
	ws, err := filepath.EvalSymlinks(a.Workspace())
	if err != nil {
		return nil, action.Usagef("workspace %s: %v", a.Workspace(), err)
	}
	args := in.BuildArgs
	for _, arg := range args {
		if !argPattern.MatchString(arg) {
			return nil, action.Usagef("input build-args: %q is not NAME=value", arg)
		}
	}
	secrets, err := inputSecrets(a, in.BuildSecrets)
	if err != nil {
		return nil, err
	}
	builds, err := plannedBuilds(ctx, a, in, ws, args, secrets)
	if err != nil {
		return nil, err
	}
	return builds, checkArgs(a, in.Password, builds)
}

// plannedBuilds is the image input's build, or the compose file's.
func plannedBuilds(ctx context.Context, a *action.Context, in Options, ws string, args []string, secrets []buildSecret) ([]build, error) {
	if cf := in.ComposeFile; cf != "" {
		return composeBuilds(ctx, a, ws, cf, args, secrets)
	}
	img := in.Image
	if img == "" {
		return nil, action.Usagef("input image is required (registry/owner/name), or set compose-file to build its build: services")
	}
	repo, err := repository(img)
	if err != nil {
		return nil, action.Usagef("input image: %v", err)
	}
	dir, err := inside(ws, in.Context)
	if err != nil {
		return nil, action.Usagef("input context: %v", err)
	}
	file := in.File
	if !filepath.IsAbs(file) {
		file = filepath.Join(dir, file)
	}
	if fi, err := os.Stat(file); err != nil || fi.IsDir() {
		return nil, action.Usagef("input file: %s does not exist (it is relative to the context %s)", in.File, in.Context)
	}
	// The Dockerfile is read from the checkout like the context: never a file of
	// the runner's elsewhere (through .., an absolute path or a symlink).
	if file, err = inside(ws, file); err != nil {
		return nil, action.Usagef("input file: %v", err)
	}
	return []build{{Image: repo, Context: dir, Dockerfile: file, Target: in.Target, Args: args, Secrets: secrets}}, nil
}

// inputSecrets reads build-secrets: one id=VARIABLE per line, the value in the
// step's environment variable VARIABLE.
func inputSecrets(a *action.Context, lines []string) ([]buildSecret, error) {
	var out []buildSecret
	seen := map[string]bool{}
	for _, line := range lines {
		id, env, ok := strings.Cut(line, "=")
		switch {
		case !ok || !secretIDPattern.MatchString(id) || !envNamePattern.MatchString(env):
			return nil, action.Usagef("input build-secrets: %q is not id=VARIABLE (an id of letters, digits, '.', '_' or '-'; the name of an environment variable of the step that holds the secret)", line)
		case seen[id]:
			return nil, action.Usagef("input build-secrets: %s is given twice", id)
		}
		value := a.Getenv(env)
		if value == "" {
			return nil, action.Usagef("input build-secrets: %s: the variable %s is not set in the step's environment (env: {%s: <the secret>} on the step)", id, env, env)
		}
		seen[id] = true
		a.Mask(value)
		out = append(out, buildSecret{ID: id, Env: env, Value: value})
	}
	return out, nil
}

// checkArgs refuses a build argument whose value holds one of the secrets this
// action was given — as it is, quoted or encoded (action.SecretIn) — (build arguments are kept in the image's history) and warns
// about one whose name looks like a secret's.
func checkArgs(a *action.Context, password string, builds []build) error {
	type secret struct{ value, what string }
	var secrets []secret
	if pw := password; pw != "" {
		secrets = append(secrets, secret{pw, "the registry password"})
	}
	for _, b := range builds {
		for _, s := range b.Secrets {
			if s.Value != "" {
				secrets = append(secrets, secret{s.Value, "the build secret " + s.ID})
			}
		}
	}
	warned := map[string]bool{}
	for _, b := range builds {
		for _, arg := range b.Args {
			name, value, _ := strings.Cut(arg, "=")
			for _, s := range secrets {
				if action.SecretIn(value, s.value) { // as it is, inside a URL, quoted or base64-encoded
					return action.Usagef("build argument %s carries %s: build arguments are kept in the image's history (docker history); pass it in build-secrets and read it with RUN --mount=type=secret", name, s.what)
				}
			}
			if secretLikeArg.MatchString(name) && !warned[name] {
				warned[name] = true
				a.Warningf("build argument %s looks like a secret: build arguments are kept in the image's history (docker history); pass secrets in build-secrets and read them with RUN --mount=type=secret", name)
			}
		}
	}
	return nil
}

// repository validates an image name given without a tag.
func repository(img string) (string, error) {
	ref, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return "", fmt.Errorf("%q is not an image name like registry.example.com/team/app: %w", img, err)
	}
	if _, tagged := ref.(reference.Tagged); tagged {
		return "", fmt.Errorf("%q has a tag: give the name only; the tags come from the commit, version and tags", img)
	}
	if _, digested := ref.(reference.Digested); digested {
		return "", fmt.Errorf("%q has a digest: give the name only", img)
	}
	return img, nil
}

// inside resolves dir (relative to the workspace) and refuses anything outside it.
func inside(ws, dir string) (string, error) {
	p := dir
	if !filepath.IsAbs(p) {
		p = filepath.Join(ws, p)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("%s does not exist", dir)
	}
	rel, err := filepath.Rel(ws, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s is outside the workspace %s", dir, ws)
	}
	return real, nil
}

func composeBuilds(ctx context.Context, a *action.Context, ws, file string, args []string, secrets []buildSecret) ([]build, error) {
	given := file
	if !filepath.IsAbs(file) {
		file = filepath.Join(ws, file)
	}
	if _, err := os.Stat(file); err != nil {
		return nil, action.Usagef("input compose-file: %s does not exist", given)
	}
	p, err := compose.Load(ctx, file, "", a.Environ(), compose.DotEnv(file))
	if err != nil {
		return nil, action.Usagef("compose file %s is not valid: %v", file, err)
	}
	var builds []build
	for _, name := range p.ServiceNames() {
		svc, _ := p.GetService(name)
		if svc.Build == nil {
			continue
		}
		if svc.Image == "" {
			return nil, action.Usagef("compose file %s: service %s builds an image but names none: add image: registry/owner/%s", file, name, name)
		}
		named, err := reference.ParseNormalizedNamed(svc.Image)
		if err != nil {
			return nil, action.Usagef("compose file %s: service %s: %v", file, name, err)
		}
		dir, err := inside(ws, svc.Build.Context)
		if err != nil {
			return nil, action.Usagef("compose file %s: service %s: build context %v", file, name, err)
		}
		df := svc.Build.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if !filepath.IsAbs(df) {
			df = filepath.Join(dir, df)
		}
		if _, err := os.Stat(df); err != nil {
			return nil, action.Usagef("compose file %s: service %s: Dockerfile %s does not exist", file, name, df)
		}
		b := build{Service: name, Image: reference.TrimNamed(named).String(), Context: dir, Dockerfile: df, Target: svc.Build.Target}
		for k, v := range svc.Build.Args {
			if v != nil {
				b.Args = append(b.Args, k+"="+*v)
			}
		}
		slices.Sort(b.Args)
		b.Args = append(b.Args, args...)
		if b.Secrets, err = composeSecrets(a, p, file, name, svc.Build.Secrets); err != nil {
			return nil, err
		}
		b.Secrets = append(b.Secrets, secrets...)
		builds = append(builds, b)
	}
	if len(builds) == 0 {
		return nil, action.Usagef("compose file %s has no service with a build: section", file)
	}
	return builds, nil
}

// composeSecrets maps a service's build.secrets to BuildKit secrets, as docker
// compose build does: the id is the target when set, else the source; the value
// comes from the top-level secret's file or environment variable.
func composeSecrets(a *action.Context, p *types.Project, file, service string, refs []types.ServiceSecretConfig) ([]buildSecret, error) {
	var out []buildSecret
	for _, ref := range refs {
		id := ref.Source
		if ref.Target != "" {
			id = ref.Target
		}
		def, ok := p.Secrets[ref.Source]
		switch {
		case !ok:
			return nil, action.Usagef("compose file %s: service %s: build secret %s is not declared under the top-level secrets:", file, service, ref.Source)
		case !secretIDPattern.MatchString(id):
			return nil, action.Usagef("compose file %s: service %s: build secret id %q is not letters, digits, '.', '_' or '-'", file, service, id)
		case def.File != "":
			if fi, err := os.Stat(def.File); err != nil || !fi.Mode().IsRegular() {
				return nil, action.Usagef("compose file %s: service %s: build secret %s: the file %s does not exist", file, service, ref.Source, def.File)
			}
			out = append(out, buildSecret{ID: id, File: def.File})
		case def.Environment != "":
			value := a.Getenv(def.Environment)
			if value == "" {
				return nil, action.Usagef("compose file %s: service %s: build secret %s: the variable %s is not set in the step's environment", file, service, ref.Source, def.Environment)
			}
			a.Mask(value)
			out = append(out, buildSecret{ID: id, Env: def.Environment, Value: value})
		default:
			return nil, action.Usagef("compose file %s: service %s: build secret %s: only file: and environment: secrets can be given to a build", file, service, ref.Source)
		}
	}
	return out, nil
}

// tagList is sha-<short>, the version, and the extra tags; latest only when allowed.
func tagList(in Options, sha string) ([]string, error) {
	tags := []string{git.ImageTag(sha)}
	if v := in.Version; v != "" {
		tags = append(tags, strings.TrimPrefix(v, "v"))
	}
	tags = append(tags, in.Tags...)
	var out []string
	for _, t := range tags {
		if !tagPattern.MatchString(t) {
			return nil, action.Usagef("tag %q is not a valid image tag (letters, digits, _ . -, at most 128)", t)
		}
		if t == "latest" && !in.AllowLatest {
			return nil, action.Usagef("tag latest is refused: it moves under running deploys and cannot be rolled back to; use the sha- or version tag, or set allow-latest: true")
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// credentials are the registry login, when a password is given.
func credentials(in Options, builds []build) (*docker.Auth, error) {
	if in.Password == "" {
		if in.Username != "" {
			return nil, action.Usagef("input username is set but password is empty: set both, or neither for a registry without login")
		}
		return nil, nil
	}
	if in.Username == "" {
		return nil, action.Usagef("input password is set but username is empty")
	}
	host := in.Registry
	if host == "" {
		named, _ := reference.ParseNormalizedNamed(builds[0].Image)
		host = reference.Domain(named)
	}
	return &docker.Auth{Registry: host, Username: in.Username, Password: in.Password}, nil
}

// ociLabels are the OCI annotations the kit adds; the Dockerfile's own labels stay.
func ociLabels(a *action.Context, sha, version string) []string {
	labels := []string{
		"org.opencontainers.image.revision=" + sha,
		"org.opencontainers.image.created=" + time.Now().UTC().Format(time.RFC3339),
	}
	if server, repo := strings.TrimRight(a.Getenv("GITHUB_SERVER_URL"), "/"), a.Getenv("GITHUB_REPOSITORY"); server != "" && repo != "" {
		labels = append(labels, "org.opencontainers.image.source="+server+"/"+repo)
	}
	if version != "" {
		labels = append(labels, "org.opencontainers.image.version="+strings.TrimPrefix(version, "v"))
	} else {
		labels = append(labels, "org.opencontainers.image.version="+git.ImageTag(sha))
	}
	return labels
}

// buildCmd is the docker build command line; a secret's value reaches it only
// through its environment, environ.
func buildCmd(b build, refs, labels []string, noCache bool, environ []string) command.Cmd {
	argv := []string{"docker", "build", "--file", b.Dockerfile}
	for _, l := range labels {
		argv = append(argv, "--label", l)
	}
	for _, arg := range b.Args {
		argv = append(argv, "--build-arg", arg)
	}
	if b.Target != "" {
		argv = append(argv, "--target", b.Target)
	}
	if noCache {
		argv = append(argv, "--no-cache")
	}
	for _, s := range b.Secrets {
		if s.File != "" {
			argv = append(argv, "--secret", "id="+s.ID+",src="+s.File)
		} else {
			argv = append(argv, "--secret", "id="+s.ID+",env="+s.Env)
		}
	}
	for _, r := range refs {
		argv = append(argv, "--tag", r)
	}
	cmd := command.Cmd{Argv: append(argv, b.Context), Dir: b.Context}
	if len(b.Secrets) > 0 {
		cmd.Env = environ
	}
	return cmd
}

// checkDigest asks the registry itself for the manifest's digest.
func checkDigest(ref, digest string, auth *docker.Auth) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	opts := []remote.Option{remote.WithAuth(authn.Anonymous)}
	if auth != nil {
		opts = []remote.Option{remote.WithAuth(&authn.Basic{Username: auth.Username, Password: auth.Password})}
	}
	desc, err := remote.Head(r, opts...)
	if err != nil {
		return fmt.Errorf("reading %s back from the registry: %w", ref, err)
	}
	if desc.Digest.String() != digest {
		return fmt.Errorf("the registry has %s at %s, but the push reported %s", desc.Digest, ref, digest)
	}
	return nil
}

// report writes the outputs and the summary.
func report(a *action.Context, results []pushed, pushedAny bool, ran []steps.Result) error {
	var images, tags, digests, refs []string
	var b strings.Builder
	b.WriteString("### deploykit build-image\n\n| image | tags | digest |\n|---|---|---|\n")
	for _, r := range results {
		images = append(images, r.Image)
		tags = append(tags, r.Tags...)
		if r.Digest != "" {
			digests = append(digests, r.Digest)
			refs = append(refs, r.Image+"@"+r.Digest)
		}
		digest := r.Digest
		if !pushedAny {
			digest = "(not pushed)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.Image, strings.Join(r.Tags, "<br>"), digest)
	}
	b.WriteString("\n" + steps.Table(ran))
	if err := a.SetOutputs(
		action.Out{Name: "image", Value: strings.Join(images, "\n")},
		action.Out{Name: "tags", Value: strings.Join(tags, "\n")},
		action.Out{Name: "digest", Value: strings.Join(digests, "\n")},
		action.Out{Name: "ref", Value: strings.Join(refs, "\n")},
	); err != nil {
		return err
	}
	return a.Summary(b.String())
}
