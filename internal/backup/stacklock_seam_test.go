package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/lock"
)

// The backup action's stack lock, without Docker (the SQLite engine runs
// in-process; the repair's container sweep has no engine to reach and warns).

func TestBackupHoldsTheStackLockItIsGiven(t *testing.T) {
	var log bytes.Buffer
	a := action.NewContext([]string{"DOCKER_HOST=unix://" + filepath.Join(t.TempDir(), "no-engine.sock")}, &log)
	hist := filepath.Join(t.TempDir(), "history.log")
	sl := StackLock{ProjectName: "shop", HistoryFile: hist, LockTimeout: 2 * time.Second}
	o := Options{Engine: "sqlite", SQLitePath: newSQLiteDB(t), Dir: t.TempDir(), Prefix: "app", Level: 1, MinSize: 1, Keep: Keep{Daily: 7}}

	stack, explicit := stackOf(context.Background(), a, o, sl)
	assert.Equal(t, "shop", stack)
	assert.True(t, explicit)
	none, explicit2 := stackOf(context.Background(), a, o, StackLock{})
	assert.Empty(t, none, "a SQLite file belongs to no stack")
	assert.False(t, explicit2)

	// A deploy of shop was killed holding the lock, in its apply step.
	path := lock.PathFor(lock.Dir(hist), "shop")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	left, err := json.Marshal(lock.Holder{Host: "h", PID: 4242, Version: "v7", Since: time.Now(), Action: history.ActionDeploy, Env: "production", Step: "apply"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, left, 0o644))

	j, err := newJob(a, o)
	require.NoError(t, err)
	j, release, err := j.locked(context.Background(), nil, sl, stack, explicit)
	require.NoError(t, err)
	defer j.engine.Close()
	assert.Equal(t, "shop", j.opts.Stack, "the job built again carries the stack to its throwaway containers")

	// Held: another run waits, then gives up.
	_, err = lock.Acquire(context.Background(), path, lock.Holder{Host: "h2", PID: 1}, 0, nil)
	var held *lock.HeldError
	require.ErrorAs(t, err, &held)
	assert.Equal(t, history.ActionBackup, held.Holder.Action)
	assert.Contains(t, held.Error(), "another deploy, rollback, restore or backup holds the lock "+path+" (pid ")
	assert.Contains(t, held.Error(), ", backing up SQLite database ")

	// The killed deploy is in the history, and in the summary's lock row.
	entries, err := history.File{Path: hist}.Read()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, []string{"shop", "production", "deploy", "v7", history.StatusKilled}, []string{entries[0].Stack, entries[0].Env, entries[0].Action, entries[0].Version, entries[0].Status})
	assert.Contains(t, entries[0].Notes, "killed in step apply")
	require.NoError(t, j.run(context.Background()))
	summary := j.summary(time.Second, nil)
	assert.Contains(t, summary, "| Lock | stack shop: "+path+"; found a killed deploy of v7 (killed in step apply; pid 4242 on h since ")
	assert.Contains(t, log.String(), "lock: took "+path+" (stack shop) after ")

	release()
	_, err = os.Stat(path)
	assert.True(t, errors.Is(err, os.ErrNotExist), "the lock file goes with the lock")
	l, err := lock.Acquire(context.Background(), path, lock.Holder{Host: "h2", PID: 1}, 0, nil)
	require.NoError(t, err, "free again")
	assert.Nil(t, l.Left, "nothing left for the next run to call killed")
	require.NoError(t, l.Release())
}

// A lock that cannot be taken at all (its directory cannot be made) fails a
// backup that project-name asked to lock, and is a warning for a stack found
// from the container: backups of databases nothing deploys keep working.
func TestBackupLockThatCannotBeTaken(t *testing.T) {
	var log bytes.Buffer
	a := action.NewContext(nil, &log)
	o := Options{Engine: "sqlite", SQLitePath: newSQLiteDB(t), Dir: t.TempDir(), Prefix: "app", Level: 1, MinSize: 1, Keep: Keep{Daily: 7}}
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	sl := StackLock{HistoryFile: filepath.Join(file, "history.log"), LockTimeout: time.Second}

	j, err := newJob(a, o)
	require.NoError(t, err)
	defer j.engine.Close()
	got, release, err := j.locked(context.Background(), nil, sl, "shop", true)
	defer release()
	require.Error(t, err)
	assert.Equal(t, action.ExitFailed, action.ExitCode(err))
	assert.Contains(t, err.Error(), "lock directory: mkdir "+file+": not a directory")
	assert.Same(t, j, got)

	got, release2, err := j.locked(context.Background(), nil, sl, "shop", false)
	defer release2()
	require.NoError(t, err)
	assert.Same(t, j, got)
	assert.Contains(t, log.String(), "warning: backing up without the lock of stack shop (the compose project of SQLite database ")
	assert.Contains(t, log.String(), "give project-name to make the lock required")
	assert.Equal(t, "none: shop's lock could not be taken (see the warning)", j.lockNote)
	assert.Empty(t, j.opts.Stack, "no stack on its containers: it does not hold the lock")
}
