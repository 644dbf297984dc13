package cli

import (
	"os"
	"testing"
)

// asDeploykit, set in a process's environment, makes this package's test
// binary be deploykit (Main) instead of running the tests: the tests that need
// deploykit as a process of its own (signals, a child it waits for) run it
// without building the binary, which on a cold build cache costs more than
// all the fast tests together.
const asDeploykit = "DEPLOYKIT_TEST_BINARY_IS_DEPLOYKIT"

func TestMain(m *testing.M) {
	if os.Getenv(asDeploykit) == "1" {
		env := make([]string, 0, len(os.Environ()))
		for _, e := range os.Environ() {
			if e != asDeploykit+"=1" {
				env = append(env, e)
			}
		}
		os.Exit(Main(os.Args[1:], env, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
