package verify

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseChecks(t *testing.T) {
	checks, err := ParseChecks([]string{"/health=200", " /api/v1/operations/snapshot = 401, 403 "})
	require.NoError(t, err)
	assert.Equal(t, []Check{{"/health", []int{200}}, {"/api/v1/operations/snapshot", []int{401, 403}}}, checks)
	for line, want := range map[string]string{
		"health=200":   `smoke check "health=200": want path=status[,status], e.g. /health=200`,
		"/health":      `smoke check "/health": want path=status[,status], e.g. /health=200`,
		"/health=ok":   `smoke check "/health=ok": "ok" is not an HTTP status`,
		"/health=200,": `smoke check "/health=200,": "" is not an HTTP status`,
		"/health=99":   `smoke check "/health=99": "99" is not an HTTP status`,
	} {
		_, err := ParseChecks([]string{line})
		assert.EqualError(t, err, want)
	}
}

func TestBackoffDelays(t *testing.T) {
	b := Backoff{Attempts: 6, InitialDelay: time.Second, MaxDelay: 5 * time.Second}
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}, b.Delays())
	assert.Empty(t, Backoff{Attempts: 1, InitialDelay: time.Second}.Delays())
}

func TestHealthBecomesHealthy(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()
	var log []string
	err := Health(context.Background(), srv.URL, Backoff{Attempts: 5, InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond},
		func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) })
	require.NoError(t, err)
	assert.Equal(t, int32(3), calls.Load())
	assert.Equal(t, "health "+srv.URL+": not ready yet, HTTP 503 starting (attempt 1/5); waiting 1ms", log[0])
	assert.Equal(t, "health "+srv.URL+": 200 (attempt 3/5)", log[2])
}

func TestHealthGivesUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "db down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	err := Health(context.Background(), srv.URL, Backoff{Attempts: 3, InitialDelay: time.Millisecond}, func(string, ...any) {})
	assert.EqualError(t, err, "health check "+srv.URL+" failed after 3 attempts: HTTP 500 db down")
}

// TestHealthRetry: Retry is called after each failed attempt that another
// follows, with its number and whether anything answered, before the wait;
// not after the last one.
func TestHealthRetry(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no upstream", http.StatusBadGateway)
	}))
	defer srv.Close()
	var retried []int
	var answered []bool
	retry := func(n int, a bool) { retried, answered = append(retried, n), append(answered, a) }
	err := Health(context.Background(), srv.URL, Backoff{Attempts: 3, InitialDelay: time.Millisecond, Retry: retry}, func(string, ...any) {})
	require.Error(t, err)
	assert.False(t, Unreachable(err))
	assert.Equal(t, []int{1, 2}, retried)
	assert.Equal(t, []bool{true, true}, answered)

	retried, answered = nil, nil
	err = Health(context.Background(), refused(t)+"/health", Backoff{Attempts: 2, InitialDelay: time.Millisecond, Retry: retry}, func(string, ...any) {})
	assert.Equal(t, []bool{false}, answered, "nothing answered")
	assert.True(t, Unreachable(err))
}

// refused is the base URL of a loopback address where nothing listens: a port
// the kernel gave a listener that is closed again (nothing binds it later).
func refused(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

// TestUnreachableSaysWhere: a health-url where nothing listens is said as
// that — where, and that it was asked from the runner — not as an answer.
func TestUnreachableSaysWhere(t *testing.T) {
	base := refused(t)
	err := Health(context.Background(), base+"/health", Backoff{Attempts: 1}, func(string, ...any) {})
	assert.EqualError(t, err, "health check "+base+"/health failed after 1 attempts: nothing answers at "+strings.TrimPrefix(base, "http://")+" from the runner (connection refused)")
	checks, err := ParseChecks([]string{"/notes=200"})
	require.NoError(t, err)
	err = Smoke(context.Background(), base, checks, func(string, ...any) {})
	assert.EqualError(t, err, "smoke checks failed: /notes: nothing answers at "+strings.TrimPrefix(base, "http://")+" from the runner (connection refused)")
	err = Health(context.Background(), "http://no-such-host.invalid/health", Backoff{Attempts: 1}, func(string, ...any) {})
	assert.True(t, Unreachable(err))
	assert.Contains(t, err.Error(), "the name no-such-host.invalid does not resolve from the runner (")
}

func TestSmoke(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
		case "/admin":
			w.WriteHeader(http.StatusUnauthorized)
		case "/moved":
			http.Redirect(w, r, "https://elsewhere.example.com/", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	checks, err := ParseChecks([]string{"/health=200", "/admin=401,403", "/nope=404"})
	require.NoError(t, err)
	require.NoError(t, Smoke(context.Background(), srv.URL+"/", checks, func(string, ...any) {}))

	checks, err = ParseChecks([]string{"/health=200", "/admin=200", "/moved=200"})
	require.NoError(t, err)
	err = Smoke(context.Background(), srv.URL, checks, func(string, ...any) {})
	assert.EqualError(t, err, `smoke checks failed: /admin: got 401, want 200; /moved: got 302, want 200 (answered: <a href="https://elsewhere.example.com/">Found</a>.)`, "a failing check shows what the app answered")
}

// TestHealthBodyIsOneLine: a failing answer's body reaches logs and errors as one
// line of text: it cannot start a line of its own (a workflow command).
func TestHealthBodyIsOneLine(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, "down\n::stop-commands::pwned\r\n\x1b[31mred\x00 \xff")
	}))
	defer srv.Close()
	var logged []string
	err := Health(context.Background(), srv.URL, Backoff{Attempts: 1}, func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) })
	require.Error(t, err)
	assert.Equal(t, "health check "+srv.URL+" failed after 1 attempts: HTTP 500 down ::stop-commands::pwned   [31mred  ?", err.Error())
	for _, l := range logged {
		assert.NotContains(t, l, "\n")
	}
}

// TestHealthSaysItIsWaiting (defects audit, item 14): a service just restarted
// resets the first connection; the log says the check is waiting, not that
// something failed, until the last attempt.
func TestHealthSaysItIsWaiting(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	srv.Listener = &resetFirst{Listener: srv.Listener}
	srv.Start()
	defer srv.Close()
	var log []string
	err := Health(context.Background(), srv.URL+"/health", Backoff{Attempts: 5, InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond},
		func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) })
	require.NoError(t, err)
	require.Len(t, log, 2)
	assert.Regexp(t, `^health http://127\.0\.0\.1:\d+/health: not ready yet, .*(connection reset by peer|EOF).* \(attempt 1/5\); waiting 1ms$`, log[0])
	assert.Regexp(t, `: 200 \(attempt 2/5\)$`, log[1])
}

// resetFirst resets the first connection it accepts, as a server that is not
// listening yet behind a published port does.
type resetFirst struct {
	net.Listener
	n atomic.Int32
}

func (l *resetFirst) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.n.Add(1) > 1 {
			return c, err
		}
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}
