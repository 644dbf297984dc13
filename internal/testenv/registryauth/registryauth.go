// Package registryauth asks for basic auth in front of a test registry, as
// Docker Hub-style registries do: the in-process registry of the tests
// (testenv.Registry) and the registry container of the test swarm (probe
// registry) share it.
package registryauth

import (
	"crypto/subtle"
	"io"
	"net/http"
)

// BasicAuth lets through requests that carry user and password, and answers the
// others 401 with the challenge docker login follows.
func BasicAuth(next http.Handler, user, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="deploykit-test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required: wrong user or password"}]}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}
