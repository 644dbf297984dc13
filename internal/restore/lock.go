package restore

import (
	"context"
	"os"
	"time"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/lock"
)

// takeLock takes the deploy lock of stack, beside the history file as deploy
// and rollback do, so that no deploy, rollback or other restore of the stack runs
// while a restore (or a drill) does. It waits up to timeout for a holder.
func takeLock(ctx context.Context, a *action.Context, historyFile, stack string, timeout time.Duration, doing string) (*lock.Lock, error) {
	path := lock.PathFor(lock.Dir(historyFile), stack)
	host, _ := os.Hostname()
	me := lock.Holder{Host: host, PID: os.Getpid(), Doing: doing, JobURL: a.JobURL(), Since: time.Now()}
	l, err := lock.Acquire(ctx, path, me, timeout, func(h lock.Holder) {
		a.Logf("    waiting up to %s for the run holding %s: %s", timeout, path, h)
	})
	if err != nil {
		return nil, action.Failedf("%v", err)
	}
	return l, nil
}
