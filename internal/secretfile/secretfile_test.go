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
	assert.Equal(t, Dir(dir), filepath.Dir(f.Path))
	info, err := os.Lstat(Dir(dir))
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o700, info.Mode(), "the kit's own directory")
	assert.True(t, strings.HasPrefix(filepath.Base(f.Path), FilePrefix+strconv.Itoa(os.Getpid())+"-"))
	info, err = os.Stat(f.Path)
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

// deadPID is the id of a process that has exited (not reused within a test).
func deadPID(t *testing.T) string {
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	return strconv.Itoa(dead.Process.Pid)
}

// TestSweepTouchesOnlyTheKitsOwnFiles: a stale-looking name that is a symlink, a
// file with another mode, or a file outside the kit's own directory is never
// opened for writing, however its name looks.
func TestSweepTouchesOnlyTheKitsOwnFiles(t *testing.T) {
	tmp := t.TempDir()
	own := Dir(tmp)
	require.NoError(t, os.Mkdir(own, 0o700))
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o600))
	pid := deadPID(t)
	link := filepath.Join(own, FilePrefix+pid+"-1.env")
	require.NoError(t, os.Symlink(victim, link))
	loose := filepath.Join(own, FilePrefix+pid+"-2.env")
	require.NoError(t, os.WriteFile(loose, []byte("A=x\n"), 0o644))
	outside := filepath.Join(tmp, FilePrefix+pid+"-3.env")
	require.NoError(t, os.WriteFile(outside, []byte("A=x\n"), 0o600))
	stale := filepath.Join(own, FilePrefix+pid+"-4.env")
	require.NoError(t, os.WriteFile(stale, []byte("A=x\n"), 0o600))

	f, err := Write(tmp, t.TempDir(), []Var{{Key: "A", Value: "x"}})
	require.NoError(t, err)
	defer f.Remove()
	assert.Equal(t, []string{stale}, f.Swept)
	data, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "precious\n", string(data), "a symlink's target is never overwritten")
	for _, p := range []string{link, loose, outside} {
		_, err := os.Lstat(p)
		assert.NoError(t, err, "%s left alone", p)
	}
	data, err = os.ReadFile(outside)
	require.NoError(t, err)
	assert.Equal(t, "A=x\n", string(data))
}

// TestRemoveDoesNotFollowASwappedFile: when the env file was replaced by a symlink
// while the job ran, Remove refuses to write through it.
func TestRemoveDoesNotFollowASwappedFile(t *testing.T) {
	f, err := Write(t.TempDir(), t.TempDir(), []Var{{Key: "A", Value: "x"}})
	require.NoError(t, err)
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o600))
	require.NoError(t, os.Remove(f.Path))
	require.NoError(t, os.Symlink(victim, f.Path))
	err = f.Remove()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "overwriting secret env file "+f.Path+" before removing it: open "+f.Path+": too many levels of symbolic links")
	data, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "precious\n", string(data))
}

// TestWriteRefusesAForeignOwnDir: the kit's directory must be a real 0700
// directory; a symlink or a loose mode is refused and nothing is written.
func TestWriteRefusesAForeignOwnDir(t *testing.T) {
	tmp := t.TempDir()
	elsewhere := t.TempDir()
	require.NoError(t, os.Symlink(elsewhere, Dir(tmp)))
	_, err := Write(tmp, t.TempDir(), []Var{{Key: "A", Value: "x"}})
	require.EqualError(t, err, "secret env file directory "+Dir(tmp)+" is not a directory (L---------): remove it")
	entries, _ := os.ReadDir(elsewhere)
	assert.Empty(t, entries)

	tmp = t.TempDir()
	require.NoError(t, os.Mkdir(Dir(tmp), 0o755))
	require.NoError(t, os.Chmod(Dir(tmp), 0o755))
	_, err = Write(tmp, t.TempDir(), []Var{{Key: "A", Value: "x"}})
	require.EqualError(t, err, "secret env file directory "+Dir(tmp)+" has mode 755, not 700: remove it")
	entries, _ = os.ReadDir(Dir(tmp))
	assert.Empty(t, entries)
}

// TestWriteRefusesTheGitCheckoutAroundTheWorkspace: without GITHUB_WORKSPACE the
// workspace is the current directory, which may be below the checkout's top.
func TestWriteRefusesTheGitCheckoutAroundTheWorkspace(t *testing.T) {
	top := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(top, ".git"), 0o755))
	sub := filepath.Join(top, "deploy")
	tmp := filepath.Join(top, "tmp")
	require.NoError(t, os.Mkdir(sub, 0o755))
	require.NoError(t, os.Mkdir(tmp, 0o755))
	_, err := Write(tmp, sub, []Var{{Key: "A", Value: "x"}})
	require.EqualError(t, err, "secret env file directory "+tmp+" is inside the workspace "+top+": set RUNNER_TEMP to a directory outside it")
	entries, _ := os.ReadDir(tmp)
	assert.Empty(t, entries)
}
