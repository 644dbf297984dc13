// Package buildimage builds, labels, tags and pushes images (docs/actions/build-image.md).
package buildimage

import "github.com/org/deploy-kit/internal/action"

// Options are build-image's inputs, decoded at the edge.
type Options struct {
	Context      string   `input:"context"`
	File         string   `input:"file"`
	Image        string   `input:"image"`
	Tags         []string `input:"tags"`
	Version      string   `input:"version"`
	BuildArgs    []string `input:"build-args"`
	BuildSecrets []string `input:"build-secrets"`
	Target       string   `input:"target"`
	NoCache      bool     `input:"no-cache"`
	Push         bool     `input:"push"`
	Registry     string   `input:"registry"`
	Username     string   `input:"username"`
	Password     string   `input:"password"`
	AllowLatest  bool     `input:"allow-latest"`
	ComposeFile  string   `input:"compose-file"`
	DryRun       bool     `input:"dry-run"`
}

// Spec is the build-image subcommand and action.
var Spec = action.Spec{
	Name:        "build-image",
	Description: "Build an image tagged by commit (and version), with OCI labels; push it and report the registry digest.",
	Inputs: []action.Input{
		{Name: "context", Default: ".", Description: "Build context, inside the workspace."},
		{Name: "file", Default: "Dockerfile", Description: "Dockerfile, relative to the context."},
		{Name: "image", Description: "Image name: registry/owner/name."},
		{Name: "tags", Kind: action.List, Description: "Extra tags, one per line."},
		{Name: "version", Description: "Version tag to add (e.g. 1.4.0)."},
		{Name: "build-args", Kind: action.List, Description: "Build arguments, one NAME=value per line. They are kept in the image's history: a value that holds one of the secrets given to this action (as it is, quoted or encoded) is refused."},
		{Name: "build-secrets", Kind: action.List, Description: "BuildKit build secrets, one id=VARIABLE per line: the value is the step's environment variable VARIABLE (set it from a secret with env:); a Dockerfile reads it with RUN --mount=type=secret,id=<id>. It reaches docker build only through its environment: never a command line, the image or its history. Needs the docker buildx plugin."},
		{Name: "target", Description: "Build stage to stop at."},
		{Name: "no-cache", Kind: action.Bool, Default: "false", Description: "Build without the build cache."},
		{Name: "push", Kind: action.Bool, Default: "true", Description: "Push every tag."},
		{Name: "registry", Description: "Registry to log in to."},
		{Name: "username", Description: "Registry user."},
		{Name: "password", Secret: true, Description: "Registry password or token, sent in the Engine API's auth header, never on a command line."},
		{Name: "allow-latest", Kind: action.Bool, Default: "false", Description: "Allow the latest tag."},
		{Name: "compose-file", Description: "Build every build: service of this compose file instead."},
		{Name: "dry-run", Kind: action.Bool, Default: "false", Description: "Print the plan and the commands it would run; change nothing."},
	},
	Outputs: []action.Output{
		{Name: "image", Description: "Image name."},
		{Name: "tags", Description: "Pushed tags, one per line."},
		{Name: "digest", Description: "Registry manifest digest."},
		{Name: "ref", Description: "name@digest."},
		{Name: "status", Description: "success, failed, or bad-input (refused before anything was changed)."},
	},
}
