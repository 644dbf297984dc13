// Package buildinfo holds the version stamped into the binary at build time.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set with -ldflags "-X github.com/org/deploy-kit/internal/buildinfo.Version=1.2.3"
// by the installer and the release build; a plain go build says "dev".
var Version = ""

// Commit is the source revision, stamped like Version or read from Go's VCS stamp.
var Commit = ""

// Get returns the version and commit.
func Get() (version, commit string) {
	version, commit = Version, Commit
	if version == "" {
		version = "dev"
	}
	if commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	return version, commit
}

// String is the one-line version report.
func String() string {
	v, c := Get()
	return fmt.Sprintf("deploykit %s (commit %s, %s, %s/%s)", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
