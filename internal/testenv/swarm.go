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
// lock file serialises the tests that use the swarm across processes.
func Swarm(t testing.TB) {
	t.Helper()
	RequireDocker(t)
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "deploykit-test-swarm.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN); lock.Close() })
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
