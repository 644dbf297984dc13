package testenv

import (
	"bytes"
	"cmp"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Runner is a runner-like environment for a deploykit step, the one helper
// every package's tests start deploykit with: what a runner sets, the test's
// PATH (and DOCKER_HOST), outputs and summary going to files.
type Runner struct {
	Workspace  string // GITHUB_WORKSPACE; "": a temp dir
	Temp       string // RUNNER_TEMP; "": a temp dir
	Server     string // GITHUB_SERVER_URL; "": https://git.example.com
	Repository string // GITHUB_REPOSITORY; "": team/app
	RunID      string // GITHUB_RUN_ID; "": 77
	// Fresh is a hosted runner's first step: an empty HOME and a docker
	// configuration with the CLI plugins and nothing else, no DOCKER_HOST.
	Fresh bool
	// Files is where the outputs and summary go; "": a temp dir.
	Files string
}

// Env is r's environment with extra after it (a later KEY= wins), and the
// files GITHUB_OUTPUT and GITHUB_STEP_SUMMARY name.
func (r Runner) Env(t testing.TB, extra ...string) (env []string, output, summary string) {
	t.Helper()
	temp := func(dir string) string {
		if dir == "" {
			return t.TempDir()
		}
		return dir
	}
	files := temp(r.Files)
	output, summary = filepath.Join(files, "out"), filepath.Join(files, "sum")
	env = []string{"PATH=" + os.Getenv("PATH"), "GITHUB_ACTIONS=true",
		"GITHUB_WORKSPACE=" + temp(r.Workspace), "RUNNER_TEMP=" + temp(r.Temp),
		"GITHUB_SERVER_URL=" + cmp.Or(r.Server, "https://git.example.com"),
		"GITHUB_REPOSITORY=" + cmp.Or(r.Repository, "team/app"),
		"GITHUB_RUN_ID=" + cmp.Or(r.RunID, "77"),
		"GITHUB_OUTPUT=" + output, "GITHUB_STEP_SUMMARY=" + summary}
	if r.Fresh {
		env = append(env, "HOME="+t.TempDir(), "DOCKER_CONFIG="+FreshDockerConfig(t))
	} else {
		env = append(env, "HOME="+os.Getenv("HOME"))
		if h := os.Getenv("DOCKER_HOST"); h != "" {
			env = append(env, "DOCKER_HOST="+h)
		}
	}
	return append(env, extra...), output, summary
}

// SyncBuffer is a buffer a run writes to from several goroutines while the
// test may read it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
