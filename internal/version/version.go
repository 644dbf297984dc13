// Package version reads, bumps and writes the app's VERSION file (semantic
// versioning with github.com/Masterminds/semver/v3).
package version

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// File is the name of the version file at the repository root.
const File = "VERSION"

// Read returns the version in dir/VERSION, validated.
func Read(dir string) (*semver.Version, error) {
	data, err := os.ReadFile(filepath.Join(dir, File))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w (add a VERSION file with e.g. 0.1.0)", File, err)
	}
	text := strings.TrimSpace(string(data))
	v, err := semver.StrictNewVersion(strings.TrimPrefix(text, "v"))
	if err != nil {
		return nil, fmt.Errorf("%s says %q, which is not a semantic version like 1.2.3", File, text)
	}
	return v, nil
}

// Bump returns v bumped by kind: patch, minor or major.
func Bump(v *semver.Version, kind string) (*semver.Version, error) {
	var next semver.Version
	switch kind {
	case "patch":
		next = v.IncPatch()
	case "minor":
		next = v.IncMinor()
	case "major":
		next = v.IncMajor()
	default:
		return nil, fmt.Errorf("unknown version bump %q", kind)
	}
	return &next, nil
}

// Write replaces dir/VERSION with v.
func Write(dir string, v *semver.Version) error {
	return os.WriteFile(filepath.Join(dir, File), []byte(v.String()+"\n"), 0o644)
}

// Tag is the git tag of a version: v1.2.3.
func Tag(v *semver.Version) string { return "v" + v.String() }

// CommitMessage is the release commit's message; [skip ci] keeps it from starting
// another CI run and deploy.
func CommitMessage(v *semver.Version) string {
	return "chore(release): " + Tag(v) + " [skip ci]"
}
