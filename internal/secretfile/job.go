package secretfile

import (
	"os"

	"github.com/org/deploy-kit/internal/action"
)

// FromJob collects the job's variables with prefix and masks every value before
// anything else can print it. A bad prefix or variable name is bad input (exit 2).
func FromJob(a *action.Context, prefix string) ([]Var, error) {
	vars, err := Collect(a.Environ(), prefix)
	if err != nil {
		return nil, action.Usagef("%v", err)
	}
	for _, v := range vars {
		a.Mask(v.Value)
	}
	return vars, nil
}

// WriteForJob writes vars to an env file in the runner's temp dir (never the
// workspace: GITHUB_WORKSPACE and the git checkout around it, else the git
// checkout around the current directory), says which stale files of killed runs it swept, and makes sure the
// file is shredded if the job is cancelled. The caller removes it on every other
// way out (defer f.Remove()).
func WriteForJob(a *action.Context, vars []Var) (*File, error) {
	workspace := a.Getenv("GITHUB_WORKSPACE")
	if workspace == "" {
		// Outside a runner: the git checkout around the current directory, if
		// any (not the directory itself, which may well be / or the temp dir).
		if wd, err := os.Getwd(); err == nil {
			workspace = GitTop(wd)
		}
	}
	f, err := Write(a.TempDir(), workspace, vars)
	if err != nil {
		return nil, action.Failedf("%w", err)
	}
	for _, p := range f.Swept {
		a.Logf("removed a stale secret env file left by a killed run: %s", p)
	}
	f.release = a.OnExit(func() { _ = f.Remove() })
	return f, nil
}

// Keys are the variables' names, for logs.
func Keys(vars []Var) []string {
	keys := make([]string, len(vars))
	for i, v := range vars {
		keys[i] = v.Key
	}
	return keys
}
