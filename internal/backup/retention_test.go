package backup

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRetention40BackupsOver100Days: a backup every two or three days from 1
// January to 8 April 2026, keep 7 daily, 4 weekly, 6 monthly.
func TestRetention40BackupsOver100Days(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	var newest string
	for i := 0; i < 40; i++ {
		at := start.AddDate(0, 0, i*5/2)
		name := fileName("db", at.Format(idLayout), "sql")
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".sha256"), []byte("x"), 0o600))
		newest = name
	}
	// Files retention must never touch.
	others := []string{"other-2026-01-01T030000Z.sql.gz", "db-2026-01-01T030000Z.sqlite.gz", ".db-2026-01-01T030000Z.sql.gz.partial-1", "notes.txt", "db-latest.sql.gz"}
	for _, name := range others {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600))
	}

	deleted, kept, err := prune(context.Background(), localShelf(dir), "db", "sql", newest, Keep{Daily: 7, Weekly: 4, Monthly: 6})
	require.NoError(t, err)
	assert.Len(t, deleted, 30)
	assert.Len(t, kept, 10)

	// Daily: the 7 newest days. Weekly: ISO weeks 15, 14, 13 and 12 (22 March).
	// Monthly: April, March, February (27th), January (31st): only 4 months exist.
	var want []string
	for _, day := range []string{"2026-01-31", "2026-02-27", "2026-03-22", "2026-03-24", "2026-03-27", "2026-03-29", "2026-04-01", "2026-04-03", "2026-04-06", "2026-04-08"} {
		name := "db-" + day + "T030000Z.sql.gz"
		want = append(want, name, name+".sha256")
	}
	want = append(want, others...)
	sort.Strings(want)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	assert.Equal(t, want, got)
}

// TestRetentionKeepsTheNewBackup: even with every keep at 0, and even when a
// backup with a later time exists (a clock that went back), the backup just
// made stays.
func TestRetentionKeepsTheNewBackup(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"2026-05-01T000000Z", "2026-05-02T000000Z", "2030-01-01T000000Z"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fileName("db", id, "sql")), nil, 0o600))
	}
	justMade := fileName("db", "2026-05-02T000000Z", "sql")
	deleted, kept, err := prune(context.Background(), localShelf(dir), "db", "sql", justMade, Keep{})
	require.NoError(t, err)
	assert.Equal(t, []string{"db-2030-01-01T000000Z.sql.gz", justMade}, kept)
	assert.Equal(t, []string{"db-2026-05-01T000000Z.sql.gz"}, deleted)
}
