// Package schema answers questions about golang-migrate migrations: the version a
// database is at (its schema_migrations table) and the migrations a directory
// holds, both read with golang-migrate itself.
package schema

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/golang-migrate/migrate/v4/database"
	_ "github.com/golang-migrate/migrate/v4/database/postgres" // postgres:// and postgresql:// URLs
	"github.com/golang-migrate/migrate/v4/source"
	_ "github.com/golang-migrate/migrate/v4/source/file" // file:// directories
)

// State is a database's migration state.
type State struct {
	Version uint
	Dirty   bool
	None    bool // no migration was ever applied
}

// DatabaseVersion reads the golang-migrate version of the database at url.
func DatabaseVersion(url string) (State, error) {
	drv, err := database.Open(url)
	if err != nil {
		return State{}, fmt.Errorf("opening the database: %w", err)
	}
	defer drv.Close()
	v, dirty, err := drv.Version()
	if err != nil {
		return State{}, fmt.Errorf("reading schema_migrations: %w", err)
	}
	if v == database.NilVersion {
		return State{None: true}, nil
	}
	return State{Version: uint(v), Dirty: dirty}, nil
}

// Migration is one migration of a directory.
type Migration struct {
	Version uint
	Name    string // the file name's description part
}

func (m Migration) String() string { return fmt.Sprintf("%d (%s)", m.Version, m.Name) }

// List returns the migrations in dir, oldest first; a missing directory has none.
func List(dir string) ([]Migration, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	src, err := source.Open("file://" + abs)
	if err != nil {
		return nil, fmt.Errorf("reading migrations in %s: %w", dir, err)
	}
	defer src.Close()
	var list []Migration
	v, err := src.First()
	for err == nil {
		m := Migration{Version: v}
		if r, name, rerr := src.ReadUp(v); rerr == nil {
			r.Close()
			m.Name = name
		} else if r, name, rerr := src.ReadDown(v); rerr == nil {
			r.Close()
			m.Name = name
		}
		list = append(list, m)
		v, err = src.Next(v)
	}
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading migrations in %s: %w", dir, err)
	}
	return list, nil
}

// Newest is the highest version in list, or 0.
func Newest(list []Migration) uint {
	if len(list) == 0 {
		return 0
	}
	return list[len(list)-1].Version
}

// Between returns the migrations of list with from < version ≤ to.
func Between(list []Migration, from, to uint) []Migration {
	var out []Migration
	for _, m := range list {
		if m.Version > from && m.Version <= to {
			out = append(out, m)
		}
	}
	return out
}
