package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// Step is an action's run step started as a runner starts it: the run: text of
// actions/<name>/action.yml (exec "$DEPLOYKIT" <name>) written to a script
// that `bash --noprofile --norc -e -o pipefail` runs — GitHub's and act's
// shell for a composite step — in a process group of its own, with the inputs
// as INPUT_* variables and DEPLOYKIT the binary under test. It is cancelled
// the ways runners cancel: CancelGitHub, KillGitea.
type Step struct {
	t    testing.TB
	Cmd  *exec.Cmd
	out  *SyncBuffer
	done chan struct{}
	err  error
}

// StepCommand builds, not started, the run step of the action named by
// args[0] with args' flags (--name value, or --name alone for true) as its
// INPUT_* variables, in dir with env.
func StepCommand(t testing.TB, dir string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	require.NotEmpty(t, args)
	name := args[0]
	data, err := os.ReadFile(filepath.Join(RepoRoot(t), "actions", name, "action.yml"))
	require.NoError(t, err)
	var spec struct {
		Runs struct {
			Steps []struct {
				ID  string `yaml:"id"`
				Run string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	require.NoError(t, yaml.Unmarshal(data, &spec))
	run := ""
	for _, st := range spec.Runs.Steps {
		if st.ID == "run" {
			run = st.Run
		}
	}
	require.NotEmpty(t, run, "actions/%s/action.yml has a step with id run", name)
	script := filepath.Join(t.TempDir(), "step.sh")
	require.NoError(t, os.WriteFile(script, []byte(run+"\n"), 0o700))
	cmd := exec.Command("bash", "--noprofile", "--norc", "-e", "-o", "pipefail", script)
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, env...), "DEPLOYKIT="+Deploykit(t))
	cmd.Env = append(cmd.Env, Inputs(args[1:]...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// flagName is a flag's text: --name.
var flagName = regexp.MustCompile(`^--[a-z][a-z0-9-]*$`)

// Inputs turns flags (--name value; --name alone, or before another flag, is
// true) into the INPUT_* variables a runner sets from an action's inputs.
func Inputs(flags ...string) []string {
	var env []string
	for i := 0; i < len(flags); i++ {
		if !flagName.MatchString(flags[i]) {
			continue
		}
		name := strings.TrimPrefix(flags[i], "--")
		value := "true"
		if i+1 < len(flags) && !flagName.MatchString(flags[i+1]) {
			value = flags[i+1]
			i++
		}
		env = append(env, "INPUT_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+"="+value)
	}
	return env
}

// StartStep starts cmd (from StepCommand) and collects what it prints.
func StartStep(t testing.TB, cmd *exec.Cmd) *Step {
	t.Helper()
	s := &Step{t: t, Cmd: cmd, out: &SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	// The step ends when its entry process does, as a runner sees it, even
	// when an orphan it left still holds its output open.
	cmd.WaitDelay = time.Second
	require.NoError(t, cmd.Start())
	go func() { s.err = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		if !s.Ended() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	})
	return s
}

// Log is what the step printed so far.
func (s *Step) Log() string { return s.out.String() }

// Ended reports whether the step's process has exited.
func (s *Step) Ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Wait waits for the step to end and returns its exit code (-1 killed by a
// signal).
func (s *Step) Wait() int {
	<-s.done
	return s.Cmd.ProcessState.ExitCode()
}

// WaitLog waits, up to within, until the step printed text, and fails the
// test if it ended or the time passed first.
func (s *Step) WaitLog(text string, within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(s.Log(), text) {
		if s.Ended() {
			require.Failf(s.t, "the step ended", "before it printed %q:\n%s", text, s.Log())
		}
		if time.Now().After(deadline) {
			require.Failf(s.t, "the step did not print", "%q within %s:\n%s", text, within, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// GitHub's runner cancels a step so (actions/runner ProcessInvoker): SIGINT to
// the step's entry process, SIGTERM after 7.5 s, SIGKILL after 2.5 s more.
const (
	GitHubSIGTERM = 7500 * time.Millisecond
	GitHubSIGKILL = 2500 * time.Millisecond
)

// CancelGitHub cancels the step as GitHub's runner does, signalling only the
// step's entry process, and returns the signal that ended it and how long it
// took from the first.
func (s *Step) CancelGitHub() (last string, took time.Duration) {
	s.t.Helper()
	start := time.Now()
	pid := s.Cmd.Process.Pid
	for _, st := range []struct {
		sig   syscall.Signal
		name  string
		grace time.Duration
	}{{syscall.SIGINT, "SIGINT", GitHubSIGTERM}, {syscall.SIGTERM, "SIGTERM", GitHubSIGKILL}, {syscall.SIGKILL, "SIGKILL", time.Minute}} {
		if s.Ended() {
			break
		}
		_ = syscall.Kill(pid, st.sig)
		last = st.name
		select {
		case <-s.done:
			return last, time.Since(start)
		case <-time.After(st.grace):
		}
	}
	<-s.done
	return last, time.Since(start)
}

// KillGitea cancels the step as Gitea's act_runner (and act in host mode)
// does: SIGKILL to its whole process group, no warning.
func (s *Step) KillGitea() {
	s.t.Helper()
	require.NoError(s.t, syscall.Kill(-s.Cmd.Process.Pid, syscall.SIGKILL))
	<-s.done
}

// String describes the step for messages.
func (s *Step) String() string { return fmt.Sprintf("step %v", s.Cmd.Args) }
