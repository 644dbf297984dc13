package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var notesAppOnce = sync.OnceValues(func() ([]byte, error) {
	bin := filepath.Join(os.TempDir(), fmt.Sprintf("deploykit-notesapp-%d", os.Getpid()))
	defer os.Remove(bin)
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Dir = filepath.Join(here(), "notesapp")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building notesapp: %v\n%s", err, out)
	}
	return os.ReadFile(bin)
})

// NotesAppImage builds tag: the notes app (testenv/notesapp, built once per test
// process) with migrations (file name → SQL) in /migrations, reading the notes
// from column ("" for body). The image is removed when the test ends.
func NotesAppImage(t testing.TB, tag string, migrations map[string]string, column string) string {
	t.Helper()
	RequireDocker(t)
	bin, err := notesAppOnce()
	if err != nil {
		t.Fatal(err)
	}
	if column == "" {
		column = "body"
	}
	files := map[string][]byte{"notesapp": bin, "Dockerfile": []byte("FROM scratch\nCOPY notesapp /notesapp\nCOPY migrations /migrations\n" +
		"ENV NOTES_COLUMN=" + column + "\nHEALTHCHECK --interval=1s --timeout=2s --retries=30 CMD [\"/notesapp\", \"healthcheck\"]\n" +
		"ENTRYPOINT [\"/notesapp\"]\n")}
	for name, sql := range migrations {
		if strings.ContainsAny(name, "/\\") {
			t.Fatalf("migration %q: a file name, not a path", name)
		}
		files["migrations/"+name] = []byte(sql)
	}
	if _, err := buildImage(tag, files); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	return tag
}
