package backup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// errOtherFormat is a Check failure that says the data is some other format.
var errOtherFormat = errors.New("wrong kind of file")

// markerFormat is a text dump that starts with a header comment and ends with a
// completion comment (pg_dump, pg_dumpall, mysqldump, mariadb-dump). The dump
// tools write the completion comment last, so a dump cut off anywhere lacks it.
type markerFormat struct {
	name    string
	headers []string // one must start one of the first two lines
	trailer string   // the last line that is not blank, "--" or in after
	after   []string // line prefixes allowed after the trailer
}

var (
	pgClusterFormat = markerFormat{
		name:    "pg_dumpall",
		headers: []string{"-- PostgreSQL database cluster dump"},
		trailer: "-- PostgreSQL database cluster dump complete",
		after:   []string{`\unrestrict `},
	}
	pgDatabaseFormat = markerFormat{
		name:    "pg_dump",
		headers: []string{"-- PostgreSQL database dump"},
		trailer: "-- PostgreSQL database dump complete",
		after:   []string{`\unrestrict `},
	}
	mysqlFormat = markerFormat{
		name:    "mysqldump",
		headers: []string{"-- MySQL dump", "-- MariaDB dump"},
		trailer: "-- Dump completed",
	}
)

func (f markerFormat) Name() string { return f.name }

func (f markerFormat) Check(head, tail []byte, total int64) error {
	lines := strings.SplitN(string(head), "\n", 4)
	found := false
	for _, line := range lines[:min(len(lines), 3)] {
		for _, h := range f.headers {
			if strings.HasPrefix(line, h) {
				found = true
			}
		}
	}
	if !found {
		return fmt.Errorf("%w: no %s header (%q) at the start", errOtherFormat, f.name, f.headers[0])
	}
	at := bytes.LastIndex(tail, []byte("\n"+f.trailer))
	if at < 0 {
		return fmt.Errorf("no completion trailer %q at the end: the dump was cut off", f.trailer)
	}
	rest := tail[at+1:] // the trailer line and what follows it
	if nl := bytes.IndexByte(rest, '\n'); nl >= 0 {
		rest = rest[nl+1:]
	} else {
		rest = nil
	}
	for _, line := range strings.Split(string(rest), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line == "--" || hasAnyPrefix(line, f.after) {
			continue
		}
		return fmt.Errorf("data after the completion trailer %q: %.60q", f.trailer, line)
	}
	return nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// sqliteFormat is a SQLite database file: its header says its page size and page
// count, so a complete copy is exactly page size × page count bytes long.
var sqliteFormat = sqliteFile{}

type sqliteFile struct{}

func (sqliteFile) Name() string { return "sqlite" }

const sqliteMagic = "SQLite format 3\x00"

func (sqliteFile) Check(head, _ []byte, total int64) error {
	if len(head) < 100 || string(head[:16]) != sqliteMagic {
		return fmt.Errorf("%w: no SQLite header at the start", errOtherFormat)
	}
	pageSize := int64(binary.BigEndian.Uint16(head[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	pages := int64(binary.BigEndian.Uint32(head[28:32]))
	changes, validFor := binary.BigEndian.Uint32(head[24:28]), binary.BigEndian.Uint32(head[92:96])
	if pages == 0 || changes != validFor {
		return fmt.Errorf("the SQLite header holds no valid page count")
	}
	if want := pageSize * pages; total != want {
		return fmt.Errorf("SQLite database is %d bytes but its header says %d pages of %d bytes (%d): the copy is incomplete", total, pages, pageSize, want)
	}
	return nil
}
