package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Lock is the longest-held lock a LockWatch saw: a lock on a table that blocks
// the app's writes (and, for AccessExclusiveLock, its reads) while it is held.
type Lock struct {
	Mode     string        // e.g. AccessExclusiveLock
	Table    string        // the table's name (or its OID in another database)
	Database string        // the database it is in
	Held     time.Duration // from the first to the last time it was seen held
	Query    string        // what the session holding it was running
}

// Blocks says what a lock of this mode stops while it is held.
func (l Lock) Blocks() string {
	if l.Mode == "AccessExclusiveLock" {
		return "reads and writes"
	}
	return "writes"
}

// LockSample is how often a LockWatch looks at pg_locks: a lock seen once was
// held for less.
const LockSample = 50 * time.Millisecond

// lockWatchQuery looks at the server's granted table locks that block writes,
// every 50 ms for at most %d rounds, and prints each as a NOTICE (psql prints
// notices as they arrive): epoch, pid, mode, database, table, query. The
// session's own locks and catalog tables are left out; pg_stat_activity is
// re-read each round (it is cached per transaction otherwise).
const lockWatchQuery = `DO $deploykit$
DECLARE r record;
BEGIN
  FOR i IN 1..%d LOOP
    PERFORM pg_stat_clear_snapshot();
    FOR r IN
      SELECT l.pid, l.mode, d.datname, coalesce(c.relname, l.relation::text) AS rel,
             regexp_replace(left(coalesce(a.query, ''), 200), '\s+', ' ', 'g') AS query
      FROM pg_locks l
      JOIN pg_database d ON d.oid = l.database
      LEFT JOIN pg_class c ON c.oid = l.relation AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      LEFT JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.granted AND l.locktype = 'relation' AND l.pid <> pg_backend_pid()
        AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
        AND l.relation >= 16384
    LOOP
      RAISE NOTICE 'deploykit-lock|%%|%%|%%|%%|%%|%%', extract(epoch FROM clock_timestamp()), r.pid, r.mode, r.datname, r.rel, r.query;
    END LOOP;
    PERFORM pg_sleep(%g);
  END LOOP;
END $deploykit$`

// lockWatchApp is the watching session's application_name.
const lockWatchApp = "deploykit-lockwatch"

// LockWatch samples a PostgreSQL server's table locks until Stop: what a
// rehearsal's migrations would hold on production.
type LockWatch struct {
	cancel context.CancelFunc
	end    func(context.Context) // ends the watching session on the server
	stop   sync.Once
	ending atomic.Bool
	done   chan struct{}
	err    error
	mu     sync.Mutex
	seen   map[string]*seenLock
	line   []byte
}

type seenLock struct {
	Lock                // its longest span so far
	first, last float64 // the span being seen now
	query       string
}

// WatchLocks starts a LockWatch on the target's server (PostgreSQL only;
// other engines give errors.ErrUnsupported) for at most limit. It connects to
// the postgres database and sees the locks of every database.
func (t *Target) WatchLocks(ctx context.Context, limit time.Duration) (*LockWatch, error) {
	p, ok := t.engine.(*postgres)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	conn, db := p.liveConn(), "postgres"
	if !p.cluster() {
		conn, db = p.urlConn(), strings.TrimPrefix(p.url.Path, "/")
	}
	rounds := max(1, int(limit/LockSample))
	query := fmt.Sprintf(lockWatchQuery, rounds, LockSample.Seconds())
	ctx, cancel := context.WithCancel(ctx)
	w := &LockWatch{cancel: cancel, done: make(chan struct{}), seen: map[string]*seenLock{}}
	// Ending the client (docker exec) leaves the session looping on the server,
	// where it would hold up a smart shutdown: it is ended by its name.
	env := append([]string{"PGAPPNAME=" + lockWatchApp}, conn.env...)
	w.end = func(ctx context.Context) {
		_, _ = output(ctx, p.src, program{Argv: conn.psql(db, "-At", "-c", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '"+lockWatchApp+"'"), Env: conn.env})
	}
	go func() {
		defer close(w.done)
		err := p.src.run(ctx, program{Argv: conn.psql(db, "-q", "-c", query), Env: env, Stderr: w})
		if ctx.Err() == nil && !w.ending.Load() {
			w.err = err
		}
	}()
	return w, nil
}

// Write takes psql's error output: the NOTICE lines of lockWatchQuery.
func (w *LockWatch) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.line = append(w.line, b...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		w.take(string(w.line[:i]))
		w.line = w.line[i+1:]
	}
	return len(b), nil
}

// take notes one NOTICE line.
func (w *LockWatch) take(line string) {
	_, rest, ok := strings.Cut(line, "deploykit-lock|")
	if !ok {
		return
	}
	f := strings.SplitN(rest, "|", 6)
	if len(f) != 6 {
		return
	}
	at, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return
	}
	key, query := strings.Join(f[1:5], "|"), strings.TrimSpace(f[5])
	s := w.seen[key]
	if s == nil {
		s = &seenLock{Lock: Lock{Mode: f[2], Database: f[3], Table: f[4], Query: query}, first: at, last: at, query: query}
		w.seen[key] = s
	}
	if at-s.last > 3*LockSample.Seconds() {
		// Released and taken again (another migration): a new span.
		s.first, s.query = at, query
	}
	s.last = at
	if held := time.Duration((s.last - s.first) * float64(time.Second)).Round(time.Millisecond); held > s.Held {
		s.Held, s.Query = held, s.query
	}
}

// Stop ends the watch (once; later calls only report) and returns the
// longest-held lock it saw (ok false: none).
// A lock seen in one sample only was held for less than the sampling interval.
func (w *LockWatch) Stop() (longest Lock, ok bool, err error) {
	w.stop.Do(func() {
		w.ending.Store(true)
		if w.end != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			w.end(ctx)
			cancel()
		}
		w.cancel()
		<-w.done
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.seen {
		if !ok || s.Held > longest.Held {
			longest, ok = s.Lock, true
		}
	}
	return longest, ok, w.err
}
