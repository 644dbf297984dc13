package restore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/repair"
	"github.com/org/deploy-kit/internal/testenv"
)

// A database replayed in place (a PostgreSQL or MySQL server), without
// Docker: a SQLite database restored as a server is — it does not swap — and
// made to fail half-way, so that the restore's in-place path runs: the mark a
// later run reads, the safety backup put back, a cancel that cannot put it back.

// inPlace restores as a server does: in place, the replay failing by fail.
type inPlace struct {
	liveDB
	db    string
	fail  func(ctx context.Context, call int) error // nil: the call replays
	calls int
	marks []*repair.Restoring // what the mark beside the lock said at each call
	lock  string
}

func (d *inPlace) Swaps() bool { return false }

func (d *inPlace) Restore(ctx context.Context, file string) (string, error) {
	d.calls++
	m, err := repair.HalfRestored(d.lock)
	if err != nil {
		return "", err
	}
	d.marks = append(d.marks, m)
	if d.fail != nil {
		if err := d.fail(ctx, d.calls); err != nil {
			// Half-way: part of the backup in, the rest not.
			conn, oerr := sql.Open("sqlite", d.db)
			if oerr == nil {
				_, _ = conn.Exec(`DELETE FROM notes`)
				_ = conn.Close()
			}
			return "", err
		}
	}
	return d.liveDB.Restore(ctx, file)
}

// replayedInPlace makes the runs of this test restore into d, wrapping the
// database they build. It swaps a package variable: the tests that call it
// never run in parallel (t.Parallel), and put it back before the parallel
// ones resume.
func replayedInPlace(t *testing.T, d *inPlace) {
	t.Helper()
	was := newLiveDB
	newLiveDB = func(a *action.Context, o backup.Options) (liveDB, error) {
		db, err := was(a, o)
		d.liveDB = db
		return d, err
	}
	t.Cleanup(func() { newLiveDB = was })
}

func notes(t *testing.T, db string) int {
	t.Helper()
	conn, err := sql.Open("sqlite", db)
	require.NoError(t, err)
	defer conn.Close()
	var n int
	require.NoError(t, conn.QueryRow(`SELECT count(*) FROM notes`).Scan(&n))
	return n
}

func inPlaceRun(t *testing.T) (Options, *inPlace, *action.Context, *bytes.Buffer) {
	db, file, _ := sqliteWithBackup(t)
	environ, _, _ := testenv.Runner{RunID: "7"}.Env(t, "DOCKER_HOST=unix://"+filepath.Join(t.TempDir(), "no-engine.sock"))
	var log bytes.Buffer
	a := action.NewContext(environ, &log)
	a.Spec = &Spec
	o := sqliteOptions(t, db, file)
	o.ProjectName = "shop"
	d := &inPlace{db: db, lock: lock.PathFor(lock.Dir(o.HistoryFile), "shop")}
	replayedInPlace(t, d)
	return o, d, a, &log
}

func TestInPlaceRestoreFailingHalfWayPutsTheSafetyBackupBack(t *testing.T) {
	o, d, a, log := inPlaceRun(t)
	d.fail = func(_ context.Context, call int) error {
		if call == 1 {
			return errors.New("psql exited with status 3: ERROR:  out of disk space")
		}
		return nil
	}
	err := Run(context.Background(), a, o)
	require.Error(t, err, log.String())
	require.Len(t, d.marks, 2, "the backup, then the safety backup")
	m := d.marks[0]
	require.NotNil(t, m, "the mark was written before the replay began")
	assert.Equal(t, filepath.Base(o.File), m.Backup)
	assert.FileExists(t, m.Safety)
	assert.Contains(t, m.PutBack, "deploykit restore --confirm RESTORE --file "+m.Safety+" --dir ")
	assert.Contains(t, m.PutBack, "--engine sqlite --sqlite-path "+d.db+" --project-name shop")
	assert.Equal(t, "the restore failed (psql exited with status 3: ERROR:  out of disk space); the database was put back from the safety backup "+m.Safety, errors.Unwrap(err).Error())
	assert.Equal(t, 2, notes(t, d.db), "what it held before, put back")
	assert.NoFileExists(t, repair.RestoringPath(d.lock), "whole again: the mark is gone")
}

func TestInPlaceRestorePutBackFailingToo(t *testing.T) {
	o, d, a, log := inPlaceRun(t)
	d.fail = func(context.Context, int) error { return errors.New("server closed the connection") }
	err := Run(context.Background(), a, o)
	require.Error(t, err, log.String())
	require.Len(t, d.marks, 2)
	assert.Contains(t, err.Error(), "the restore failed (server closed the connection), and putting the safety backup "+d.marks[0].Safety+" back failed too (server closed the connection): restore it by hand")
	m, rerr := repair.HalfRestored(d.lock)
	require.NoError(t, rerr)
	require.NotNil(t, m, "half-restored: the mark stays, and deploys refuse until a restore succeeds")
	assert.Equal(t, d.marks[0].PutBack, m.PutBack)

	// The next restore (of the safety backup, as the mark says) succeeds
	// and clears the mark.
	d.fail = nil
	o.File = m.Safety
	o.Dir = filepath.Dir(m.Safety)
	o.SafetyDir = t.TempDir() // its own safety backup: two in one second would share a name
	require.NoError(t, Run(context.Background(), a, o), log.String())
	assert.Equal(t, 2, notes(t, d.db))
	assert.NoFileExists(t, repair.RestoringPath(d.lock))
}

func TestInPlaceRestoreCancelledHalfWayLeavesTheMarkAndSaysHowToPutBack(t *testing.T) {
	o, d, a, log := inPlaceRun(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.fail = func(ctx context.Context, _ int) error {
		cancel() // the job is cancelled while the replay runs
		return ctx.Err()
	}
	err := Run(ctx, a, o)
	require.Error(t, err, log.String())
	require.Len(t, d.marks, 1, "a cancelled job has seconds: the safety backup is not put back")
	m, rerr := repair.HalfRestored(d.lock)
	require.NoError(t, rerr)
	require.NotNil(t, m)
	assert.Contains(t, err.Error(), "the restore was cancelled half-way (context canceled): the database holds part of "+filepath.Base(o.File)+"; put the safety backup "+m.Safety+" back with: "+m.PutBack)
	_, statErr := os.Stat(m.Safety)
	assert.NoError(t, statErr, "the safety backup is kept for that")
}
