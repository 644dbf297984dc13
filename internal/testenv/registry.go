package testenv

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/org/deploy-kit/internal/testenv/registryauth"
)

// Registry runs an OCI registry (go-containerregistry's) in the test process on
// 127.0.0.1 — the Docker Engine trusts loopback registries without TLS — and
// returns its host:port. With a user, it asks for basic auth as Docker Hub-style
// registries do.
func Registry(t testing.TB, user, password string) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if user != "" {
		h = registryauth.BasicAuth(h, user, password)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
