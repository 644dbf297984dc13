package e2e

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// TestMain leaves the end-to-end tests out of -short runs: each of them runs the
// kit as a user would (act, the installer's real go builds, GoReleaser), which
// takes minutes; -short is for the logic tests at the seams (ARCHITECTURE.md,
// "Rules every package keeps"). make test and CI run them all.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: end-to-end tests, not run with -short (make test runs them)")
		os.Exit(0)
	}
	os.Exit(m.Run())
}
