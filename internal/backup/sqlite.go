package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strings"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go

	"github.com/org/deploy-kit/internal/command"
)

// sqlite copies a live database file with VACUUM INTO, which reads one consistent
// snapshot however much the application writes meanwhile, checks the copy with
// PRAGMA integrity_check and streams the copy.
type sqlite struct {
	path    string
	scratch func(what string) string // a temp path beside the backup
	copy    string
	counts  rowCounts
}

func (s *sqlite) Source() string { return "SQLite database " + s.path + " (VACUUM INTO)" }
func (s *sqlite) Ext() string    { return "sqlite" }
func (s *sqlite) Format() Format { return sqliteFormat }
func (s *sqlite) Plan() []string {
	return []string{fmt.Sprintf("VACUUM INTO a scratch copy of %s, PRAGMA integrity_check on the copy", s.path)}
}

func (s *sqlite) RestoreCommand(file string) string {
	return "gunzip -c " + command.Quote(file) + " > " + command.Quote(s.path)
}

// openSQLite opens an existing database file; it never creates one.
func openSQLite(path string, readOnly bool) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("SQLite database: %w", err)
	}
	mode := "rw"
	if readOnly {
		mode = "ro"
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=" + mode + "&_pragma=busy_timeout(30000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// checkSQLite runs PRAGMA integrity_check and counts the rows of every table.
func checkSQLite(ctx context.Context, path string) (rowCounts, error) {
	db, err := openSQLite(path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return nil, fmt.Errorf("integrity_check: %w", err)
	}
	var problems []string
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			rows.Close()
			return nil, err
		}
		if msg != "ok" {
			problems = append(problems, msg)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("integrity_check: %w", err)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("integrity_check failed: %s", strings.Join(problems[:min(3, len(problems))], "; "))
	}
	var tables []string
	rows, err = db.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, name)
	}
	rows.Close()
	counts := rowCounts{}
	for _, t := range tables {
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+strings.ReplaceAll(t, `"`, `""`)+`"`).Scan(&n); err != nil {
			return nil, fmt.Errorf("counting rows of %s: %w", t, err)
		}
		counts[t] = n
	}
	return counts, nil
}

func (s *sqlite) Dump(ctx context.Context, w io.Writer) error {
	db, err := openSQLite(s.path, false)
	if err != nil {
		return err
	}
	s.copy = s.scratch("copy")
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", s.copy)
	db.Close()
	if err != nil {
		return fmt.Errorf("VACUUM INTO a copy of %s: %w", s.path, err)
	}
	if s.counts, err = checkSQLite(ctx, s.copy); err != nil {
		return fmt.Errorf("the copy of %s: %w", s.path, err)
	}
	f, err := os.Open(s.copy)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func (s *sqlite) RestoreCheck(ctx context.Context, file string) (string, error) {
	if s.counts == nil {
		return "", errors.New("no copy was made")
	}
	dump, closeDump, err := gunzipFile(file)
	if err != nil {
		return "", err
	}
	defer closeDump()
	restored := s.scratch("restore")
	defer os.Remove(restored)
	f, err := os.OpenFile(restored, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, dump)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("restoring to a scratch file: %w", err)
	}
	got, err := checkSQLite(ctx, restored)
	if err != nil {
		return "", fmt.Errorf("the restored file: %w", err)
	}
	compared, err := compareCounts(s.counts, got)
	if err != nil {
		return "", err
	}
	return "restored to a scratch file, integrity_check ok: " + compared + " (the snapshot the backup was taken from)", nil
}

func (s *sqlite) Close() error {
	if s.copy == "" {
		return nil
	}
	if err := os.Remove(s.copy); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
