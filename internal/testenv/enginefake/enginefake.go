// Package enginefake is a Docker Engine API answered in process, for the fast
// tests of what the kit asks the engine and makes of its answers: a test gives
// it the routes it needs (JSON as the engine sends it) and reads back every
// request. Whether the real engine behaves so is the Docker tests' part.
package enginefake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
)

// Daemon is an Engine API on loopback that answers with routes; a request no
// route matches is a 404, as the engine answers for what it does not have.
type Daemon struct {
	// Host is its address for DOCKER_HOST (tcp://127.0.0.1:port).
	Host string

	mu     sync.Mutex
	calls  []string          // "METHOD /path?query", the API version prefix dropped
	bodies map[string]string // the body of the last call to each "METHOD /path"
	routes []route
}

type route struct {
	method string
	path   *regexp.Regexp
	answer func(w http.ResponseWriter, r *http.Request)
}

var version = regexp.MustCompile(`^/v[0-9.]+`)

// New starts a Daemon, stopped when the test ends.
func New(t testing.TB) *Daemon {
	t.Helper()
	d := &Daemon{bodies: map[string]string{}}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	d.Host = "tcp://" + srv.Listener.Addr().String()
	return d
}

func (d *Daemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := version.ReplaceAllString(r.URL.Path, "")
	if path == "/_ping" {
		w.Header().Set("API-Version", "1.45")
		_, _ = io.WriteString(w, "OK")
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	d.mu.Lock()
	call := r.Method + " " + path
	if r.URL.RawQuery != "" {
		call += "?" + r.URL.RawQuery
	}
	d.calls = append(d.calls, call)
	d.bodies[r.Method+" "+path] = string(body)
	routes := d.routes
	d.mu.Unlock()
	for _, rt := range routes {
		if rt.method == r.Method && rt.path.MatchString(path) {
			rt.answer(w, r)
			return
		}
	}
	Fail(w, http.StatusNotFound, "no such route: "+call)
}

// On answers method requests whose path (without the API version) matches
// pattern, anchored at both ends.
func (d *Daemon) On(method, pattern string, answer func(w http.ResponseWriter, r *http.Request)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.routes = append(d.routes, route{method, regexp.MustCompile("^" + pattern + "$"), answer})
}

// JSON answers method pattern with v as JSON.
func (d *Daemon) JSON(method, pattern string, v any) {
	d.On(method, pattern, func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, v) })
}

// OK answers method pattern with 204 No Content.
func (d *Daemon) OK(method, pattern string) {
	d.On(method, pattern, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
}

// Calls are the requests so far, in order.
func (d *Daemon) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

// Body is the body of the last "METHOD /path" request.
func (d *Daemon) Body(call string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bodies[call]
}

// WriteJSON answers v as JSON.
func WriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Fail answers as the engine answers an error: its status and message.
func Fail(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
