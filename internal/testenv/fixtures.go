package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// WriteMigrations writes golang-migrate migrations 1..n (up and down, each creating
// or dropping a table t<i>) into dir.
func WriteMigrations(t testing.TB, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		base := filepath.Join(dir, fmt.Sprintf("%06d_create_t%d", i, i))
		for suffix, sql := range map[string]string{".up.sql": "CREATE TABLE t%d (id int);", ".down.sql": "DROP TABLE t%d;"} {
			if err := os.WriteFile(base+suffix, fmt.Appendf(nil, sql, i), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// LocalImages lists the local image references (repo:tag) of a repository.
func LocalImages(t testing.TB, repo string) []string {
	t.Helper()
	out, err := exec.Command("docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference="+repo+":*").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))
}

// RemoveImages removes the given references, ignoring those already gone. Their
// untagged parent layers stay (--no-prune): the legacy builder of a parallel test
// may be using one as its cache for the same COPY. (Builds that share the cached
// FROM scratch + COPY layers can still, rarely, fail with "unable to find image":
// not every cause of that is known yet.)
func RemoveImages(refs ...string) {
	if len(refs) > 0 {
		_ = exec.Command("docker", append([]string{"rmi", "-f", "--no-prune"}, refs...)...).Run()
	}
}
