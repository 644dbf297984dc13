package schema

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/golang-migrate/migrate/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

// writeMigrations writes migrations 1..n (up and down) into dir.
func writeMigrations(t *testing.T, dir string, n int) {
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for i := 1; i <= n; i++ {
		base := filepath.Join(dir, fmt.Sprintf("%06d_table_%d", i, i))
		require.NoError(t, os.WriteFile(base+".up.sql", fmt.Appendf(nil, "CREATE TABLE t%d (id int);", i), 0o644))
		require.NoError(t, os.WriteFile(base+".down.sql", fmt.Appendf(nil, "DROP TABLE t%d;", i), 0o644))
	}
}

func TestListAndBetween(t *testing.T) {
	dir := t.TempDir()
	writeMigrations(t, dir, 5)
	list, err := List(dir)
	require.NoError(t, err)
	require.Len(t, list, 5)
	assert.Equal(t, Migration{Version: 1, Name: "table_1"}, list[0])
	assert.Equal(t, "4 (table_4)", list[3].String())
	assert.Equal(t, uint(5), Newest(list))
	assert.Equal(t, []Migration{{4, "table_4"}, {5, "table_5"}}, Between(list, 3, 5))
	missing, err := List(filepath.Join(dir, "nope"))
	require.NoError(t, err)
	assert.Empty(t, missing)
	assert.Equal(t, uint(0), Newest(missing))
}

func TestDatabaseVersion(t *testing.T) {
	url := testenv.Postgres(t)
	st, err := DatabaseVersion(url)
	require.NoError(t, err)
	assert.Equal(t, State{None: true}, st)

	dir := t.TempDir()
	writeMigrations(t, dir, 5)
	m, err := migrate.New("file://"+dir, url)
	require.NoError(t, err)
	require.NoError(t, m.Up())
	_, _ = m.Close()
	st, err = DatabaseVersion(url)
	require.NoError(t, err)
	assert.Equal(t, State{Version: 5}, st)

	_, err = DatabaseVersion("postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	assert.ErrorContains(t, err, "opening the database: ")
}
