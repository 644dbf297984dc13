package migrationsmoke

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golang-migrate/migrate/v4/source"
)

// Migration is one version of a migrations directory.
type Migration struct {
	Version uint
	Name    string
	Up      string // file name of the up migration, relative to the directory
	Down    string // "" when there is none
}

// Finding is something a check found, with the file (and line) it is about.
type Finding struct {
	File    string // relative to the workspace
	Line    int    // 0 when not about a line
	Rule    string
	Message string
	Fix     string
	Error   bool // fails the run whatever lint says
}

func (f Finding) String() string {
	where := f.File
	if f.Line > 0 {
		where = fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	return fmt.Sprintf("%s: %s", where, f.Message)
}

// scan reads a migrations directory the way golang-migrate's file source does
// (source.Parse), and reports files it would ignore and versions it would refuse.
func scan(dir, rel string) ([]Migration, []Finding, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	byVersion := map[uint]*Migration{}
	ups, downs := map[uint][]string{}, map[uint][]string{}
	var findings []Finding
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m, err := source.Parse(e.Name())
		if err != nil {
			if strings.HasSuffix(strings.ToLower(e.Name()), ".sql") {
				findings = append(findings, Finding{File: filepath.Join(rel, e.Name()), Rule: "ignored-file", Error: true,
					Message: "golang-migrate ignores this file: its name is not <version>_<name>.up.sql or .down.sql",
					Fix:     "rename it, e.g. 000042_add_index.up.sql"})
			}
			continue
		}
		mig := byVersion[m.Version]
		if mig == nil {
			mig = &Migration{Version: m.Version, Name: m.Identifier}
			byVersion[m.Version] = mig
		}
		switch m.Direction {
		case source.Up:
			ups[m.Version] = append(ups[m.Version], e.Name())
			mig.Up, mig.Name = e.Name(), m.Identifier
		case source.Down:
			downs[m.Version] = append(downs[m.Version], e.Name())
			mig.Down = e.Name()
		}
	}
	var list []Migration
	for v, m := range byVersion {
		for _, files := range [][]string{ups[v], downs[v]} {
			if len(files) > 1 {
				findings = append(findings, Finding{File: filepath.Join(rel, files[0]), Rule: "duplicate-version", Error: true,
					Message: fmt.Sprintf("version %d is used by %s: golang-migrate refuses the directory", v, strings.Join(files, " and ")),
					Fix:     "give one of them the next free version (two branches each added this number)"})
			}
		}
		if m.Up == "" {
			findings = append(findings, Finding{File: filepath.Join(rel, m.Down), Rule: "missing-up", Error: true,
				Message: fmt.Sprintf("version %d has a down migration but no up migration", v), Fix: "add the .up.sql file or remove the down file"})
			continue
		}
		list = append(list, *m)
	}
	slices.SortFunc(list, func(a, b Migration) int { return int(a.Version) - int(b.Version) })
	return list, findings, nil
}

// sha256File is the hex SHA-256 of a file.
func sha256File(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}
