package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Swarm makes the local engine a single-node swarm manager for the test and
// returns to how it was afterwards (docker swarm leave --force, unless it was a
// manager already). Test binaries run in parallel against one engine, so a
// lock file serialises the tests that use the swarm across processes, and keeps
// them from overlapping the tests that hold NoSwarmChange.
func Swarm(t testing.TB) {
	t.Helper()
	RequireDocker(t)
	engineLock(t, syscall.LOCK_EX)
	out, err := exec.Command("docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}").Output()
	if err != nil {
		missing(t, "docker info")
	}
	if strings.TrimSpace(string(out)) == "active true" {
		return // a manager already: use it, leave it
	}
	if out, err := exec.Command("docker", "swarm", "init", "--advertise-addr", "127.0.0.1").CombinedOutput(); err != nil {
		missing(t, "a single-node swarm (docker swarm init: "+strings.TrimSpace(string(out))+")")
	}
	t.Cleanup(func() { _ = exec.Command("docker", "swarm", "leave", "--force").Run() })
}

// NoSwarmChange keeps the engine from joining or leaving a swarm while the test
// runs (tests holding it may overlap each other): when it does, the engine's
// networking is set up again and its DNS answered "no such host" for the aliases
// of running containers for tens of seconds, which tests that count the failed
// requests through a DNS-reading proxy must not see.
func NoSwarmChange(t testing.TB) {
	t.Helper()
	engineLock(t, syscall.LOCK_SH)
}

// engineLock takes the lock on swarm changes, held until the test ends.
func engineLock(t testing.TB, how int) {
	t.Helper()
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "deploykit-test-swarm.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), how); err != nil {
		lock.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN); lock.Close() })
}
