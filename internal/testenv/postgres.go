package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// pgBin finds the PostgreSQL server programs (provisioned by scripts/provision.sh).
func pgBin() (string, bool) {
	if p, ok := LookTool("initdb"); ok {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real), true
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), true
	}
	return "", false
}

// Postgres starts a throwaway PostgreSQL server on 127.0.0.1 for the test, stopped
// and removed when the test ends, and returns its URL (user postgres, trust auth).
// PostgreSQL refuses to run as root, so as root it runs as the postgres user.
func Postgres(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: this test needs a PostgreSQL server")
	}
	bin, ok := pgBin()
	if !ok {
		missing(t, "a PostgreSQL server (initdb, pg_ctl)")
	}
	root, err := os.MkdirTemp("", "deploykit-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	data := filepath.Join(root, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}

	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			missing(t, "the postgres system user (running as root; PostgreSQL refuses root)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(data, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = root
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C.UTF-8"}
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	port := FreePort(t)
	opts := fmt.Sprintf("-p %d -h 127.0.0.1 -k %s -F", port, data)
	run("pg_ctl", "start", "-D", data, "-o", opts, "-w", "-t", "60", "-l", filepath.Join(data, "server.log"))
	t.Cleanup(func() { run("pg_ctl", "stop", "-D", data, "-m", "immediate", "-w") })
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
}

// The database server images scripts/db-image.sh builds (keep the tags in step).
const (
	PostgresImageTag = "deploykit-test/postgres:15-r4"
	MariaDBImageTag  = "deploykit-test/mariadb:10.11-r3"
)

// PostgresImage returns the locally built PostgreSQL image for tests that start an
// ephemeral database container.
func PostgresImage(t testing.TB) string { return dbImage(t, PostgresImageTag, "postgres") }

// MariaDBImage returns the locally built MariaDB server image.
func MariaDBImage(t testing.TB) string { return dbImage(t, MariaDBImageTag, "mariadb") }

func dbImage(t testing.TB, tag, name string) string {
	t.Helper()
	RequireDocker(t)
	if err := exec.Command("docker", "image", "inspect", tag).Run(); err != nil {
		missing(t, "the image "+tag+" (scripts/db-image.sh "+name+")")
	}
	return tag
}
