package restore_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

// psqlWrapper is a psql that counts its runs in $DK_PSQL_COUNT and, on run
// number $DK_SIGNAL_AT, sends $DK_SIGNAL to the deploykit that ran it once the
// real psql has finished — and lingers a moment, so that a SIGTERM's cancel
// stops the wrapper and deploykit sees a statement fail that in fact ran.
const psqlWrapper = `#!/bin/sh
n=$(( $(cat "$DK_PSQL_COUNT" 2>/dev/null || echo 0) + 1 ))
echo "$n" >"$DK_PSQL_COUNT"
"$DK_REAL_PSQL" "$@"
rc=$?
if [ "$n" = "$DK_SIGNAL_AT" ]; then
	kill -"$DK_SIGNAL" "$PPID"
	sleep 0.5
fi
exit $rc
`

// TestPostgresSwapSurvivesSignals (defects audit, items 1 and 2): a restore of
// a database by URL, signalled with SIGTERM or SIGKILL after each psql
// statement it runs, always leaves a database named app holding either the data
// from before or the backup, row for row. After a SIGTERM the summary says which
// (as pg_database says) and nothing is left beside it; after a SIGKILL, the next
// restore names what was left and how to finish by hand.
func TestPostgresSwapSurvivesSignals(t *testing.T) {
	t.Parallel()
	server := testenv.Postgres(t)
	realPsql, err := exec.LookPath("psql")
	require.NoError(t, err)
	dbURL := func(db string) string { return strings.Replace(server, "/postgres?", "/"+db+"?", 1) }
	q := func(db, sql string) string {
		t.Helper()
		out, err := exec.Command(realPsql, "-X", "-At", "-v", "ON_ERROR_STOP=1", "--dbname="+dbURL(db), "-c", sql).CombinedOutput()
		require.NoError(t, err, "%s\n%s", sql, out)
		return strings.TrimSpace(string(out))
	}
	rows := func() string { return q("app", "SELECT string_agg(id || ':' || body, ',' ORDER BY id) FROM notes") }
	leftovers := func() string {
		return q("postgres", `SELECT coalesce(string_agg(datname, ' ' ORDER BY datname), '') FROM pg_database WHERE datname LIKE 'deploykit\_%'`)
	}

	// The backup: database src, whose rows are "new" once restored into app.
	q("postgres", "CREATE DATABASE src")
	q("src", "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'new'), (2, 'restored')")
	dir := t.TempDir()
	r := deploykit(t, "backup", "--database-url", dbURL("src"), "--dir", dir, "--prefix", "app", "--min-size", "0")
	require.Equal(t, 0, r.Code, r.Log)
	good := r.Outputs["path"]
	const before, restored = "1:old,3:before", "1:new,2:restored"
	reset := func() {
		for _, db := range strings.Fields(leftovers()) {
			q("postgres", "DROP DATABASE "+db+" WITH (FORCE)")
		}
		q("postgres", "DROP DATABASE IF EXISTS app WITH (FORCE)")
		q("postgres", "CREATE DATABASE app")
		q("app", "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'old'), (3, 'before')")
	}

	wrap := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(wrap, "psql"), []byte(psqlWrapper), 0o755))
	restore := func(signal string, at int, extra ...string) (result, int) {
		t.Helper()
		count := filepath.Join(t.TempDir(), "count")
		env := []string{"PATH=" + wrap + ":" + os.Getenv("PATH"), "DK_REAL_PSQL=" + realPsql, "DK_PSQL_COUNT=" + count,
			"DK_SIGNAL=" + signal, "DK_SIGNAL_AT=" + strconv.Itoa(at)}
		r := deploykitProcess(t, env, "restore", append([]string{"--confirm", "RESTORE", "--database-url", dbURL("app"), "--file", good,
			"--dir", dir, "--safety-dir", t.TempDir(), "--project-name", "shop", "--history-file", filepath.Join(t.TempDir(), "history.log")}, extra...)...)
		data, _ := os.ReadFile(count)
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return r, n
	}

	// Undisturbed, to count the statements.
	reset()
	r, statements := restore("TERM", 0)
	require.Equal(t, 0, r.Code, r.Log)
	require.Equal(t, restored, rows())
	assert.Contains(t, r.Summary, "| live database | database app holds the restored backup (checked in pg_database) |")
	require.Greater(t, statements, 4)
	assert.Empty(t, leftovers())

	seen := map[string]bool{} // which outcomes the signals produced: none of the checks below may pass vacuously
	for at := 1; at <= statements; at++ {
		t.Run(fmt.Sprintf("SIGTERM after statement %d", at), func(t *testing.T) {
			reset()
			r, _ := restore("TERM", at)
			assert.Equal(t, 1, r.Code, r.Log)
			assert.Contains(t, r.Log, "deploykit restore was cancelled (terminated)")
			got := rows()
			require.Contains(t, []string{before, restored}, got, "database app holds one or the other, whole")
			seen["SIGTERM: "+got] = true
			if strings.Contains(r.Log, "==> safety backup") { // the restore had begun: the summary says which
				if got == restored {
					assert.Contains(t, r.Summary, "| live database | database app holds the restored backup (checked in pg_database) |")
				} else {
					assert.Regexp(t, `\| live database \| (database app is as it was: .* \(checked in pg_database\)|as it was: nothing was restored) \|`, r.Summary)
				}
			}
			assert.Empty(t, leftovers(), "what the restore created is gone, on a context of its own")
		})
		t.Run(fmt.Sprintf("SIGKILL after statement %d", at), func(t *testing.T) {
			reset()
			r, _ := restore("KILL", at)
			assert.NotEqual(t, 0, r.Code, r.Log)
			require.Contains(t, []string{before, restored}, rows(), "database app holds one or the other, whole")
			left := strings.Fields(leftovers())
			for _, db := range left {
				for _, prefix := range []string{"deploykit_restore_", "deploykit_pre_restore_"} {
					if strings.HasPrefix(db, prefix) {
						seen["SIGKILL left "+prefix] = true
					}
				}
			}
			if len(left) == 0 {
				return
			}
			// The next restore (a dry run here) names each and says what to do.
			r, _ = restore("TERM", 0, "--dry-run")
			assert.Equal(t, 0, r.Code, r.Log)
			for _, db := range left {
				switch {
				case strings.HasPrefix(db, "deploykit_pre_restore_"):
					assert.Contains(t, r.Log, "::warning::database "+db+" holds the data from before a restore that was killed after app took the restored data: drop it once you no longer need it (DROP DATABASE \""+db+"\")")
				default:
					assert.Contains(t, r.Log, "::warning::database "+db+" is a copy a restore of app was loading when it was killed (or one running now): when none runs, drop it (DROP DATABASE \""+db+"\")")
				}
			}
		})
	}
	assert.True(t, seen["SIGTERM: "+before] && seen["SIGTERM: "+restored], "SIGTERMs before and after the swap: %v", seen)
	assert.True(t, seen["SIGKILL left deploykit_restore_"] && seen["SIGKILL left deploykit_pre_restore_"], "SIGKILLs before and after the swap: %v", seen)
}
