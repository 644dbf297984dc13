package secretfile

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

// hardValues adds to the shared hard values the ones only an env file (not a
// container environment) sees.
var hardValues = func() map[string]string {
	v := testenv.SecretValues()
	v["CRLF"] = "a\r\nb"
	v["TAB"] = "a\tb"
	v["EMPTY"] = ""
	v["ESCAPES"] = `\0123 \a \u00e9 \x41`
	return v
}()

func hardVars() []Var {
	var vars []Var
	for k, v := range hardValues {
		vars = append(vars, Var{Key: k, Value: v})
	}
	return vars
}

func TestEncodeRoundTripsThroughComposeDotenv(t *testing.T) {
	got, err := dotenv.ParseWithLookup(bytes.NewReader(Encode(hardVars())), func(string) (string, bool) {
		return "from-the-environment", true // nothing may be interpolated
	})
	require.NoError(t, err)
	assert.Equal(t, hardValues, got)
}

func FuzzEncodeRoundTrip(f *testing.F) {
	for _, v := range hardValues {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if strings.ContainsRune(value, 0) {
			t.Skip("NUL cannot be in an environment variable")
		}
		got, err := dotenv.ParseWithLookup(bytes.NewReader(Encode([]Var{{Key: "K", Value: value}})), nil)
		require.NoError(t, err)
		require.Equal(t, value, got["K"])
	})
}

func TestCollect(t *testing.T) {
	vars, err := Collect([]string{"ENV_B=2", "PATH=/bin", "ENV_A=x=y", "ENVX=no", "MY_ENV_C=no"}, "ENV_")
	require.NoError(t, err)
	assert.Equal(t, []Var{{Key: "A", Value: "x=y", From: "ENV_A"}, {Key: "B", Value: "2", From: "ENV_B"}}, vars)
}

func TestCollectRejects(t *testing.T) {
	for _, tc := range []struct {
		environ []string
		prefix  string
		want    string
	}{
		{nil, "", `secret prefix "": want letters, digits and underscores, such as ENV_`},
		{nil, "ENV-", `secret prefix "ENV-": want letters, digits and underscores, such as ENV_`},
		{[]string{"ENV_=x"}, "ENV_", `secret variable ENV_: "" after the prefix ENV_ is not a valid variable name`},
		{[]string{"ENV_A.B=x"}, "ENV_", `secret variable ENV_A.B: "A.B" after the prefix ENV_ is not a valid variable name`},
		{[]string{"ENV_A=x\x00y"}, "ENV_", `secret variable ENV_A: the value contains a NUL byte, which no env file can carry`},
	} {
		_, err := Collect(tc.environ, tc.prefix)
		assert.EqualError(t, err, tc.want)
	}
}

func TestWriteAndRemove(t *testing.T) {
	dir := t.TempDir()
	f, err := Write(dir, t.TempDir(), []Var{{Key: "A", Value: "secret value"}})
	require.NoError(t, err)
	assert.Equal(t, dir, filepath.Dir(f.Path))
	assert.True(t, strings.HasPrefix(filepath.Base(f.Path), FilePrefix+strconv.Itoa(os.Getpid())+"-"))
	info, err := os.Stat(f.Path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	data, err := os.ReadFile(f.Path)
	require.NoError(t, err)
	assert.Equal(t, "A=\"secret value\"\n", string(data))

	// Keep a second name for the inode to see that the bytes were overwritten.
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Link(f.Path, link))
	require.NoError(t, f.Remove())
	require.NoError(t, f.Remove(), "Remove is idempotent")
	assert.NoFileExists(t, f.Path)
	data, err = os.ReadFile(link)
	require.NoError(t, err)
	assert.Equal(t, bytes.Repeat([]byte{0}, len("A=\"secret value\"\n")), data)
}

func TestWriteRefusesTheWorkspace(t *testing.T) {
	ws := t.TempDir()
	tmp := filepath.Join(ws, "tmp")
	require.NoError(t, os.Mkdir(tmp, 0o700))
	// Also through a symlink that points into the workspace.
	link := filepath.Join(t.TempDir(), "tmp-link")
	require.NoError(t, os.Symlink(tmp, link))
	for _, dir := range []string{ws, tmp, link} {
		_, err := Write(dir, ws, []Var{{Key: "A", Value: "x"}})
		require.EqualError(t, err, "secret env file directory "+dir+" is inside the workspace "+ws+": set RUNNER_TEMP to a directory outside it")
	}
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written")
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	// A process that has exited: its pid is free (and, within this test, not reused).
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	stale := filepath.Join(dir, FilePrefix+strconv.Itoa(dead.Process.Pid)+"-123.env")
	live := filepath.Join(dir, FilePrefix+strconv.Itoa(os.Getpid())+"-456.env")
	other := filepath.Join(dir, "unrelated.env")
	for _, p := range []string{stale, live, other} {
		require.NoError(t, os.WriteFile(p, []byte("A=x\n"), 0o600))
	}
	removed, err := RemoveStale(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{stale}, removed)
	assert.NoFileExists(t, stale)
	assert.FileExists(t, live)
	assert.FileExists(t, other)
}
