package restore

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/remote"
	"github.com/org/deploy-kit/internal/repair"
)

// takeLock takes the deploy lock of stack, beside the history file as deploy
// and rollback do, so that no deploy, rollback or other restore of the stack runs
// while a restore (or a drill) does. It waits up to timeout for a holder. Then
// it repairs what a killed run of the stack left (repair.Stack), and says so.
func takeLock(ctx context.Context, a *action.Context, in Options, conn *remote.Conn, stack, act, backup string) (*lock.Lock, lock.Holder, []string, error) {
	path := lock.PathFor(lock.Dir(in.HistoryFile), stack)
	host, _ := os.Hostname()
	doing := "restoring " + backup
	if act == history.ActionDrill {
		doing = "drilling a restore of " + backup
	}
	me := lock.Holder{Host: host, PID: os.Getpid(), Version: backup, Doing: doing, JobURL: a.JobURL(), Since: time.Now(), Action: act, Env: in.Environment, Step: "lock", StepSince: time.Now()}
	l, err := remote.AcquireLock(ctx, conn, path, me, in.LockTimeout, a.Logf)
	if err != nil {
		return nil, me, nil, action.Failedf("%w", err)
	}
	var done []string
	if in.DryRun {
		return l, me, nil, nil
	}
	client, err := docker.New(a.Environ())
	if err != nil {
		_ = l.Release()
		return nil, me, nil, action.Failedf("%w", err)
	}
	defer client.Close()
	rep, err := repair.Stack(ctx, client, historyFile(in, conn), l, stack, in.Environment)
	if err != nil {
		a.Warningf("%v", err)
	}
	if rep.Killed != nil {
		a.Warningf("the %s of %s that held the lock before this run was killed (%s): recorded in %s", rep.Killed.Action, rep.Killed.Version, rep.Killed.Notes, in.HistoryFile)
		done = append(done, fmt.Sprintf("a killed %s of %s recorded (%s)", rep.Killed.Action, rep.Killed.Version, rep.Killed.Notes))
	}
	return l, me, append(done, rep.Done...), nil
}

// historyFile is the history: on the Docker host when the run reaches it
// over SSH.
func historyFile(in Options, conn *remote.Conn) history.File {
	f := history.File{Path: in.HistoryFile}
	if conn != nil {
		f.Host = conn
	}
	return f
}

// connect reaches the Docker host of docker-host, if set, before anything
// else: the Engine API, docker compose, the lock, history and backups are
// there from then on; it ends with the run.
func connect(ctx context.Context, a *action.Context, in Options, cleanup func(func())) (*remote.Conn, error) {
	if !in.Remote.Remote() {
		_, err := remote.Connect(ctx, a, in.Remote) // warns about DOCKER_HOST=ssh://
		return nil, err
	}
	if _, _, err := remote.Parse(in.Remote, a.TempDir()); err != nil {
		return nil, err
	}
	if in.Engine == "sqlite" {
		return nil, action.Usagef("input docker-host: a SQLite file is on the Docker host, where a runner elsewhere cannot restore it; restore it from a runner on the host, without docker-host")
	}
	conn, err := remote.Connect(ctx, a, in.Remote)
	if err != nil {
		return nil, action.Failedf("%w", err)
	}
	cleanup(conn.End)
	return conn, nil
}
