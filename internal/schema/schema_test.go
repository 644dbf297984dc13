package schema

import (
	"path/filepath"
	"testing"

	"github.com/golang-migrate/migrate/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

func TestListAndBetween(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteMigrations(t, dir, 5)
	list, err := List(dir)
	require.NoError(t, err)
	require.Len(t, list, 5)
	assert.Equal(t, Migration{Version: 1, Name: "create_t1"}, list[0])
	assert.Equal(t, "4 (create_t4)", list[3].String())
	assert.Equal(t, uint(5), Newest(list))
	assert.Equal(t, []Migration{{4, "create_t4"}, {5, "create_t5"}}, Between(list, 3, 5))
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
	testenv.WriteMigrations(t, dir, 5)
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
