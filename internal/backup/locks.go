package backup

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

// lockSampleQuery looks once at the server's granted table locks that block
// writes and prints each as a NOTICE (psql prints notices as they arrive):
// epoch, pid, mode, then database, table and query hex-encoded (a name may hold
// a line break or a |, which would cut the line). The session's own locks and
// catalog tables are left out. The watch sends it every LockSample on one
// session, each time a transaction of its own: a watch that held one
// transaction (or snapshot) open across samples would make CREATE INDEX
// CONCURRENTLY, which waits for every older transaction, wait for the watch.
const lockSampleQuery = `DO $deploykit$
DECLARE r record;
BEGIN
  FOR r IN
    SELECT l.pid, l.mode, encode(convert_to(d.datname::text, 'UTF8'), 'hex') AS datname,
           encode(convert_to(coalesce(c.relname::text, l.relation::text), 'UTF8'), 'hex') AS rel,
           encode(convert_to(regexp_replace(left(coalesce(a.query, ''), 200), '\s+', ' ', 'g'), 'UTF8'), 'hex') AS query
    FROM pg_locks l
    JOIN pg_database d ON d.oid = l.database
    LEFT JOIN pg_class c ON c.oid = l.relation AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.granted AND l.locktype = 'relation' AND l.pid <> pg_backend_pid()
      AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
      AND l.relation >= 16384
  LOOP
    RAISE NOTICE 'deploykit-lock|%|%|%|%|%|%', extract(epoch FROM clock_timestamp()), r.pid, r.mode, r.datname, r.rel, r.query;
  END LOOP;
END $deploykit$;
`

// lockWatchApp is the watching session's application_name.
const lockWatchApp = "deploykit-lockwatch"

// lockWatchReady is what the watching session says once it is connected and
// about to take its first sample.
const lockWatchReady = "deploykit-lockwatch-ready"

// lockWatchStart is the wait for the watching session to connect: on a busy
// machine, docker exec and psql's connection take seconds, and a migration
// that ran meanwhile would hold its locks unseen.
const lockWatchStart = 30 * time.Second

// LockWatch samples a PostgreSQL server's table locks until Stop: what a
// rehearsal's migrations would hold on production.
type LockWatch struct {
	cancel context.CancelFunc
	quit   chan struct{}         // closed by Stop: no more samples
	end    func(context.Context) // ends the watching session on the server
	stop   sync.Once
	ending atomic.Bool
	done   chan struct{}
	ready  chan struct{} // closed when the session said lockWatchReady
	readyO sync.Once
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

// WatchLocks starts a LockWatch on the live database's server (PostgreSQL only;
// other engines give errors.ErrUnsupported) for at most limit. It connects to
// the postgres database and sees the locks of every database.
func (t *LiveDB) WatchLocks(ctx context.Context, limit time.Duration) (*LockWatch, error) {
	w, ok := t.engine.(lockWatcher)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return w.watchLocks(ctx, limit)
}

func (p *postgres) watchLocks(ctx context.Context, limit time.Duration) (*LockWatch, error) {
	conn, db := p.liveConn(), "postgres"
	if !p.cluster() {
		conn, db = p.urlConn(), strings.TrimPrefix(p.url.Path, "/")
	}
	rounds := max(1, int(limit/LockSample))
	ctx, cancel := context.WithCancel(ctx)
	w := &LockWatch{cancel: cancel, quit: make(chan struct{}), done: make(chan struct{}), ready: make(chan struct{}), seen: map[string]*seenLock{}}
	// A client that does not end leaves its session on the server, where it
	// would hold up a smart shutdown: it is ended by its name.
	env := append([]string{"PGAPPNAME=" + lockWatchApp}, conn.env...)
	w.end = func(ctx context.Context) {
		_, _ = output(ctx, p.src, program{Argv: conn.psql(db, "-At", "-c", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '"+lockWatchApp+"'"), Env: conn.env})
	}
	// One session reads a sample from its input every LockSample, until
	// Stop or limit: the input's end ends psql.
	in, samples := io.Pipe()
	go func() {
		defer samples.Close()
		tick := time.NewTicker(LockSample)
		defer tick.Stop()
		if _, err := io.WriteString(samples, "DO $deploykit$ BEGIN RAISE NOTICE '"+lockWatchReady+"'; END $deploykit$;\n"); err != nil {
			return
		}
		for range rounds {
			if _, err := io.WriteString(samples, lockSampleQuery); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-w.quit:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer close(w.done)
		defer in.Close()
		err := p.src.run(ctx, program{Argv: conn.psql(db, "-q"), Env: env, Stdin: in, Stderr: w})
		if ctx.Err() == nil && !w.ending.Load() {
			w.err = err
		}
	}()
	// The migrations start only once the session samples: what is not
	// watched yet cannot be seen.
	select {
	case <-w.ready:
		return w, nil
	case <-w.done:
		if w.err == nil {
			w.err = errors.New("psql ended before its first sample")
		}
		err := w.err
		w.Stop()
		return nil, fmt.Errorf("the lock watch did not start: %w", err)
	case <-time.After(lockWatchStart):
		w.Stop()
		return nil, fmt.Errorf("the lock watch did not connect within %s", lockWatchStart)
	case <-ctx.Done():
		w.Stop()
		return nil, ctx.Err()
	}
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
	if strings.Contains(line, lockWatchReady) {
		if w.ready != nil {
			w.readyO.Do(func() { close(w.ready) })
		}
		return
	}
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
	var text [3]string // database, table, query
	for i, h := range f[3:6] {
		b, err := hex.DecodeString(strings.TrimSpace(h))
		if err != nil {
			return
		}
		text[i] = string(b)
	}
	key, query := strings.Join(f[1:5], "|"), strings.TrimSpace(text[2])
	s := w.seen[key]
	if s == nil {
		s = &seenLock{Lock: Lock{Mode: f[2], Database: text[0], Table: text[1], Query: query}, first: at, last: at, query: query}
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
		if w.quit != nil {
			close(w.quit) // psql reads the end of its input and exits
		}
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
			if w.end != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				w.end(ctx)
				cancel()
			}
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

// pgActivityQuery is what every other session of a PostgreSQL server is
// doing: how long its transaction has run, what it waits for (and which
// sessions block it), the statement.
const pgActivityQuery = `SELECT pid, datname AS database, state,
       coalesce(wait_event_type || ':' || wait_event, '') AS waiting_for,
       pg_blocking_pids(pid) AS blocked_by,
       date_trunc('second', now() - xact_start) AS in_transaction,
       left(regexp_replace(query, '\s+', ' ', 'g'), 160) AS query
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
ORDER BY xact_start NULLS LAST`

// Activity is what the live database's server is doing, as a table: what a migration
// that never finished waited for (PostgreSQL; other engines give
// errors.ErrUnsupported).
func (t *LiveDB) Activity(ctx context.Context) (string, error) {
	a, ok := t.engine.(lockWatcher)
	if !ok {
		return "", errors.ErrUnsupported
	}
	return a.activity(ctx)
}

func (p *postgres) activity(ctx context.Context) (string, error) {
	conn, db := p.liveConn(), "postgres"
	if !p.cluster() {
		conn, db = p.urlConn(), strings.TrimPrefix(p.url.Path, "/")
	}
	return output(ctx, p.src, program{Argv: conn.psql(db, "-P", "pager=off", "-c", pgActivityQuery), Env: conn.env})
}
