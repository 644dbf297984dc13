package migrationsmoke

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/golang-migrate/migrate/v4/source"
)

// newSince splits list into what base already has and what is new in this ref,
// and finds new versions that are not above the base's newest: golang-migrate
// would skip them silently in production, where the database is already past them.
func newSince(list []Migration, baseFiles []string, rel string) (fresh []Migration, findings []Finding) {
	inBase := map[string]bool{}
	var newest uint
	for _, f := range baseFiles {
		name := filepath.Base(f)
		inBase[name] = true
		if m, err := source.Parse(name); err == nil && m.Version > newest {
			newest = m.Version
		}
	}
	for _, m := range list {
		if inBase[m.Up] {
			continue
		}
		fresh = append(fresh, m)
		if m.Version <= newest {
			findings = append(findings, Finding{File: filepath.Join(rel, m.Up), Rule: "version-not-newest", Error: true,
				Message: fmt.Sprintf("new migration %d is not above the base branch's newest, %d: golang-migrate would skip it in production", m.Version, newest),
				Fix:     fmt.Sprintf("renumber it above %d", newest)})
		}
	}
	return fresh, findings
}

// checkSums compares already-deployed migrations with the checksums recorded in
// sumFile (sha256sum format, paths relative to the sum file's directory).
func checkSums(sumFile, sumRel string) ([]Finding, error) {
	fh, err := os.Open(sumFile)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	dir := filepath.Dir(sumFile)
	var findings []Finding
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		want, name, ok := strings.Cut(line, " ")
		name = strings.TrimLeft(strings.TrimSpace(name), "*")
		if !ok || len(want) != 64 {
			findings = append(findings, Finding{File: sumRel, Line: n, Rule: "sum-file", Error: true, Message: fmt.Sprintf("not a sha256sum line: %q", line)})
			continue
		}
		got, err := sha256File(filepath.Join(dir, name))
		switch {
		case os.IsNotExist(err):
			findings = append(findings, Finding{File: name, Rule: "deployed-migration-removed", Error: true,
				Message: "this migration is deployed (it is in " + sumRel + ") but the file is gone", Fix: "restore it: production has run it"})
		case err != nil:
			return nil, err
		case got != want:
			findings = append(findings, Finding{File: name, Rule: "deployed-migration-changed", Error: true,
				Message: fmt.Sprintf("this migration is deployed but its content changed (%s says %.12s…, the file is %.12s…)", sumRel, want, got),
				Fix:     "never edit a deployed migration: restore it and put the change in a new one"})
		}
	}
	return findings, sc.Err()
}

// lint rules: what makes a migration dangerous on a live database.
var (
	reDropTable  = regexp.MustCompile(`(?i)\bDROP\s+TABLE\b`)
	reDropColumn = regexp.MustCompile(`(?i)\bDROP\s+COLUMN\b`)
	reNotNull    = regexp.MustCompile(`(?i)\bSET\s+NOT\s+NULL\b`)
	reType       = regexp.MustCompile(`(?i)\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b`)
	reRename     = regexp.MustCompile(`(?i)\bRENAME\s+(COLUMN\b|TO\b|\S+\s+TO\b)`)
	reIndex      = regexp.MustCompile(`(?i)\bCREATE\s+(UNIQUE\s+)?INDEX\s+(CONCURRENTLY\b)?.*?\bON\s+(ONLY\s+)?([\w."]+)`)
	reCreate     = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?([\w."]+)`)
	reBegin      = regexp.MustCompile(`(?i)^\s*(BEGIN|START\s+TRANSACTION)\b`)
)

// lintFile checks one up migration, line by line (comments stripped).
func lintFile(path, rel string) ([]Finding, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(stripComments(string(data)), "\n")
	created := map[string]bool{}
	for _, l := range lines {
		if m := reCreate.FindStringSubmatch(l); m != nil {
			created[strings.Trim(strings.ToLower(m[2]), `"`)] = true
		}
	}
	statements := strings.Count(strings.Join(lines, "\n"), ";")
	var out []Finding
	add := func(n int, rule, msg, fix string) {
		out = append(out, Finding{File: rel, Line: n + 1, Rule: rule, Message: msg, Fix: fix})
	}
	for n, l := range lines {
		switch {
		case reDropTable.MatchString(l):
			add(n, "drop-table", "DROP TABLE: the running version may still read it", "drop it in a later release, once no deployed code uses it")
		case reDropColumn.MatchString(l):
			add(n, "drop-column", "DROP COLUMN: the running version may still read or write it", "stop using the column first; drop it in a later release")
		}
		if reNotNull.MatchString(l) {
			add(n, "set-not-null", "SET NOT NULL scans the whole table under an exclusive lock, and fails if the running version writes NULLs", "add a CHECK (col IS NOT NULL) NOT VALID constraint, VALIDATE it, then SET NOT NULL")
		}
		if reType.MatchString(l) {
			add(n, "column-type", "changing a column's type rewrites the table under an exclusive lock", "add a new column, backfill it, switch the code, then drop the old one")
		}
		if reRename.MatchString(l) {
			add(n, "rename", "RENAME breaks the running version, which still uses the old name", "add the new name beside the old, move the code, then drop the old one")
		}
		if m := reIndex.FindStringSubmatch(l); m != nil {
			table := strings.Trim(strings.ToLower(m[4]), `"`)
			switch {
			case m[2] == "" && !created[table]:
				add(n, "index-not-concurrent", "CREATE INDEX on an existing table blocks writes to "+table+" while it builds", "use CREATE INDEX CONCURRENTLY, alone in its own migration")
			case m[2] != "" && statements > 1:
				add(n, "concurrent-index-in-transaction", "CREATE INDEX CONCURRENTLY cannot run inside a transaction, and a file with several statements runs as one", "put it alone in its own migration")
			}
		}
		if reBegin.MatchString(l) && strings.Contains(strings.ToUpper(string(data)), "CONCURRENTLY") {
			add(n, "concurrent-index-in-transaction", "CREATE INDEX CONCURRENTLY cannot run inside BEGIN … COMMIT", "remove the transaction; put the index alone in its own migration")
		}
	}
	return out, nil
}

// stripComments blanks -- and /* */ comments and what is inside '…' string
// literals (a DROP TABLE in a string is data, not a statement), keeping line
// breaks (and so line numbers). Dollar-quoted bodies are kept as they are.
func stripComments(sql string) string {
	var b strings.Builder
	inBlock, inLine, inQuote := false, false, false
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case inBlock:
			if c == '*' && i+1 < len(sql) && sql[i+1] == '/' {
				inBlock = false
				i++
			} else if c == '\n' {
				b.WriteByte('\n')
			}
		case inLine:
			if c == '\n' {
				inLine = false
				b.WriteByte('\n')
			}
		case inQuote:
			switch c {
			case '\'':
				inQuote = false
				b.WriteByte(c)
			case '\n':
				b.WriteByte(c)
			default:
				b.WriteByte(' ')
			}
		case c == '\'':
			inQuote = true
			b.WriteByte(c)
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			inLine = true
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			inBlock = true
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
