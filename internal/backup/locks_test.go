package backup

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLockWatchLongest: the NOTICE lines psql prints, in pieces as they come;
// a lock held across samples counts from its first to its last sighting, one
// released and taken again starts a new span, and the longest is reported with
// what held it. Names and statements arrive hex-encoded: a table whose name
// holds a line break and a | is seen like any other.
func TestLockWatchLongest(t *testing.T) {
	_, cancel := context.WithCancel(context.Background())
	w := &LockWatch{cancel: cancel, done: make(chan struct{}), seen: map[string]*seenLock{}}
	close(w.done)
	notice := func(at, mode, db, table, query string) string {
		return fmt.Sprintf("NOTICE:  deploykit-lock|%s|42|%s|%x|%x|%x\n", at, mode, db, table, query)
	}
	// Seen in every sample (50 ms apart) from 100.10 to 101.30.
	held := ""
	for at := 10010; at <= 10130; at += 5 {
		held += notice(fmt.Sprintf("%d.%02d", at/100, at%100), "AccessExclusiveLock", "app", "no\ntes|x", "ALTER TABLE notes ADD x int; SELECT a|b")
	}
	lines := "psql:1: NOTICE:  unrelated\n" +
		"NOTICE:  deploykit-lock|100.02|42|ShareLock|not hex|6e|6e\n" +
		notice("100.00", "ShareLock", "app", "notes", "CREATE INDEX n ON notes (body)") +
		notice("100.05", "ShareLock", "app", "notes", "CREATE INDEX n ON notes (body)") +
		held +
		// released, then taken again by a later migration for a shorter time
		notice("105.00", "AccessExclusiveLock", "app", "no\ntes|x", "ALTER TABLE notes DROP y") +
		notice("105.20", "AccessExclusiveLock", "app", "no\ntes|x", "ALTER TABLE notes DROP y")
	for len(lines) > 0 { // in pieces of 7 bytes: lines split across writes
		n := min(7, len(lines))
		_, err := w.Write([]byte(lines[:n]))
		require.NoError(t, err)
		lines = lines[n:]
	}
	l, ok, err := w.Stop()
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, Lock{Mode: "AccessExclusiveLock", Table: "no\ntes|x", Database: "app", Held: 1200 * time.Millisecond,
		Query: "ALTER TABLE notes ADD x int; SELECT a|b"}, l)
	assert.Equal(t, "reads and writes", l.Blocks())
	assert.Equal(t, "writes", Lock{Mode: "ShareLock"}.Blocks())

	empty := &LockWatch{cancel: cancel, done: w.done, seen: map[string]*seenLock{}}
	_, ok, err = empty.Stop()
	require.NoError(t, err)
	assert.False(t, ok, "no lock seen")
}
