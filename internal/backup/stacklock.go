package backup

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/history"
	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/remote"
	"github.com/org/deploy-kit/internal/repair"
)

// StackLock is which stack's lock the backup action takes, and where: the
// lock deploy, rollback and restore take beside history-file, so that no
// restore replays into the database and no deploy migrates it while it is
// dumped (ARCHITECTURE.md, "Where the job runs").
type StackLock struct {
	ProjectName string        `input:"project-name"`
	HistoryFile string        `input:"history-file"`
	LockTimeout time.Duration `input:"lock-timeout"`
}

// stackOf is the stack whose lock a backup takes: project-name, else the
// compose project or swarm stack the database's container or service belongs
// to; "" when there is none (a database URL, a SQLite file, a container
// started by hand). explicit says project-name named it. A container or
// service that cannot be read names none: the dump step says why.
func stackOf(ctx context.Context, a *action.Context, o Options, sl StackLock) (stack string, explicit bool) {
	if sl.ProjectName != "" {
		return sl.ProjectName, true
	}
	if o.Engine == "sqlite" || (o.Container == "" && o.SwarmService == "") {
		return "", false
	}
	client, err := docker.New(a.Environ())
	if err != nil {
		return "", false
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, swarmLookupTimeout)
	defer cancel()
	if o.Container != "" {
		stack, _ := client.ContainerStack(ctx, o.Container)
		return stack, false
	}
	svc, err := client.InspectService(ctx, o.SwarmService)
	if err != nil {
		return "", false
	}
	return svc.Stack, false
}

// takeStackLock takes the lock of stack on the Docker host conn reaches (this
// machine when nil), waiting up to lock-timeout for a deploy, rollback or
// restore of it. A lock that cannot be taken at all (its directory cannot be
// made: no deploy runs with this history-file here) is a warning when the
// stack was found from the container, a failure when project-name asked for it.
func takeStackLock(ctx context.Context, a *action.Context, conn *remote.Conn, sl StackLock, stack string, explicit bool, source string) (*lock.Lock, error) {
	path := lock.PathFor(lock.Dir(sl.HistoryFile), stack)
	host, _ := os.Hostname()
	now := time.Now()
	me := lock.Holder{Host: host, PID: os.Getpid(), Doing: "backing up " + source, JobURL: a.JobURL(), Since: now,
		Action: history.ActionBackup, Step: "dump", StepSince: now}
	start := time.Now()
	l, err := remote.AcquireLock(ctx, conn, path, me, sl.LockTimeout, a.Logf)
	var held *lock.HeldError
	switch {
	case err == nil:
		a.Logf("lock: took %s (stack %s) after %s", path, stack, time.Since(start).Round(100*time.Millisecond))
		return l, nil
	case explicit || errors.As(err, &held) || ctx.Err() != nil:
		return nil, action.Failedf("%w", err)
	default:
		a.Warningf("backing up without the lock of stack %s (the compose project of %s): %v; give project-name to make the lock required", stack, source, err)
		return nil, nil
	}
}

// locked takes the lock of stack for the backup action's job j, whose inputs
// were checked; then it repairs what a killed run of the stack left, as every
// run holding the lock does (a killed restore's stopped services run again,
// the killed run is recorded), and returns j built again with the stack on
// its throwaway containers: the next run holding the lock removes them, should
// this one be killed. Without the lock j is returned as it is. release lets
// the lock go (also on a signal).
func (j *job) locked(ctx context.Context, conn *remote.Conn, sl StackLock, stack string, explicit bool) (_ *job, release func(), _ error) {
	release = func() {}
	l, err := takeStackLock(ctx, j.a, conn, sl, stack, explicit, j.engine.Source())
	if err != nil || l == nil {
		if l == nil && err == nil {
			j.lockNote = "none: " + stack + "'s lock could not be taken (see the warning)"
		}
		return j, release, err
	}
	letGo := func() { _ = l.Release() }
	unhook := j.a.OnExit(letGo)
	release = func() { letGo(); unhook() }
	note := "stack " + stack + ": " + l.Path
	client, err := docker.New(j.a.Environ())
	if err != nil {
		return j, release, err
	}
	defer client.Close()
	h := history.File{Path: sl.HistoryFile}
	if conn != nil {
		h.Host = conn
	}
	rep, err := repair.Stack(ctx, client, h, l, stack, "")
	if err != nil {
		j.a.Warningf("%v", err)
	}
	if !rep.Empty() {
		j.a.Logf("repair: %s", rep)
		note += "; " + rep.String()
	}
	o := j.opts
	o.Stack = stack
	again, err := newJob(j.a, o)
	if err != nil {
		return j, release, err
	}
	j.engine.Close()
	again.lockNote = note
	return again, release, nil
}
