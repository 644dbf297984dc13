package version

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadBumpWrite(t *testing.T) {
	dir := t.TempDir()
	_, err := Read(dir)
	assert.ErrorContains(t, err, "reading VERSION: ")
	for text, want := range map[string]string{"1.2.3\n": "1.2.3", "v2.0.0": "2.0.0", " 0.1.0-rc.1 \n": "0.1.0-rc.1"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, File), []byte(text), 0o644))
		v, err := Read(dir)
		require.NoError(t, err)
		assert.Equal(t, want, v.String())
	}
	for _, bad := range []string{"1.2", "latest", ""} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, File), []byte(bad), 0o644))
		_, err := Read(dir)
		assert.EqualError(t, err, `VERSION says "`+bad+`", which is not a semantic version like 1.2.3`)
	}

	require.NoError(t, os.WriteFile(filepath.Join(dir, File), []byte("1.2.3"), 0o644))
	v, _ := Read(dir)
	for kind, want := range map[string]string{"patch": "1.2.4", "minor": "1.3.0", "major": "2.0.0"} {
		next, err := Bump(v, kind)
		require.NoError(t, err)
		assert.Equal(t, want, next.String())
	}
	_, err = Bump(v, "none")
	assert.EqualError(t, err, `unknown version bump "none"`)
	next, _ := Bump(v, "minor")
	require.NoError(t, Write(dir, next))
	data, _ := os.ReadFile(filepath.Join(dir, File))
	assert.Equal(t, "1.3.0\n", string(data))
	assert.Equal(t, "v1.3.0", Tag(next))
	assert.Equal(t, "chore(release): v1.3.0 [skip ci]", CommitMessage(next))
}
