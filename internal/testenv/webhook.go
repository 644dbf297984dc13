package testenv

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Webhook is a loopback server that records the bodies it is sent and answers
// status, stopped when the test ends. Its URL ends in a token-like path
// (/hooks/t0ken), which a log must never show; bodies returns what it got so
// far (its handler runs on a goroutine of its own: read it through bodies).
func Webhook(t testing.TB, status int) (url string, bodies func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(body))
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hooks/t0ken", func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
}
