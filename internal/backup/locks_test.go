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
// what held it.
func TestLockWatchLongest(t *testing.T) {
	_, cancel := context.WithCancel(context.Background())
	w := &LockWatch{cancel: cancel, done: make(chan struct{}), seen: map[string]*seenLock{}}
	close(w.done)
	// Seen in every sample (50 ms apart) from 100.10 to 101.30.
	held := ""
	for at := 10010; at <= 10130; at += 5 {
		held += fmt.Sprintf("NOTICE:  deploykit-lock|%d.%02d|42|AccessExclusiveLock|app|notes|ALTER TABLE notes ADD x int; SELECT a|b\n", at/100, at%100)
	}
	lines := "psql:1: NOTICE:  unrelated\n" +
		"NOTICE:  deploykit-lock|100.00|42|ShareLock|app|notes|CREATE INDEX n ON notes (body)\n" +
		"NOTICE:  deploykit-lock|100.05|42|ShareLock|app|notes|CREATE INDEX n ON notes (body)\n" +
		held +
		// released, then taken again by a later migration for a shorter time
		"NOTICE:  deploykit-lock|105.00|42|AccessExclusiveLock|app|notes|ALTER TABLE notes DROP y\n" +
		"NOTICE:  deploykit-lock|105.20|42|AccessExclusiveLock|app|notes|ALTER TABLE notes DROP y\n"
	for len(lines) > 0 { // in pieces of 7 bytes: lines split across writes
		n := min(7, len(lines))
		_, err := w.Write([]byte(lines[:n]))
		require.NoError(t, err)
		lines = lines[n:]
	}
	l, ok, err := w.Stop()
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, Lock{Mode: "AccessExclusiveLock", Table: "notes", Database: "app", Held: 1200 * time.Millisecond,
		Query: "ALTER TABLE notes ADD x int; SELECT a|b"}, l)
	assert.Equal(t, "reads and writes", l.Blocks())
	assert.Equal(t, "writes", Lock{Mode: "ShareLock"}.Blocks())

	empty := &LockWatch{cancel: cancel, done: w.done, seen: map[string]*seenLock{}}
	_, ok, err = empty.Stop()
	require.NoError(t, err)
	assert.False(t, ok, "no lock seen")
}
