// Command hello is the kit's sample web service: the smallest thing worth deploying.
//
//	GET  /health         200 "ok" when the service can work (DB_PASSWORD set, or read from
//	                     the file DB_PASSWORD_FILE names: a Docker secret), else 503
//	GET  /version        the version it was deployed as (APP_VERSION)
//	GET  /secret         whether DB_PASSWORD arrived, and its length — never the value
//	POST /secret/verify  200 when the body equals DB_PASSWORD, 403 otherwise
//
// `hello healthcheck [path]` probes /health (or path) for the container's
// HEALTHCHECK (the image is FROM scratch: no curl inside). Build a deliberately broken version, whose
// /health always fails, with -ldflags "-X main.broken=true"; with main.broken=smoke
// /health passes and /version fails (a release only a smoke check catches).
package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// broken is set at build time to make a version that never gets healthy ("true"),
// one whose /version fails ("smoke"), or one that is unhealthy only on one swarm
// node ("node:<hostname>", matched against NODE_HOSTNAME, which a stack sets to
// {{.Node.Hostname}}).
var broken = "false"

func main() {
	addr := ":" + getenv("PORT", "8080")
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		path := "/health"
		if len(os.Args) > 2 {
			path = os.Args[2]
		}
		os.Exit(healthcheck("http://127.0.0.1" + addr + path))
	}
	version := getenv("APP_VERSION", "dev")
	password := os.Getenv("DB_PASSWORD")
	if file := os.Getenv("DB_PASSWORD_FILE"); file != "" { // a Docker secret (swarm)
		data, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		password = string(data)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case broken == "true":
			http.Error(w, "this build is broken on purpose", http.StatusInternalServerError)
		case strings.HasPrefix(broken, "node:") && os.Getenv("NODE_HOSTNAME") == strings.TrimPrefix(broken, "node:"):
			http.Error(w, "this build is broken on "+os.Getenv("NODE_HOSTNAME")+" on purpose", http.StatusInternalServerError)
		case password == "":
			http.Error(w, "DB_PASSWORD is not set", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ok")
		}
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		if broken == "smoke" {
			http.Error(w, "this build fails its smoke check on purpose", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, version)
	})
	mux.HandleFunc("GET /secret", func(w http.ResponseWriter, _ *http.Request) {
		if password == "" {
			fmt.Fprintln(w, "DB_PASSWORD: not set")
			return
		}
		fmt.Fprintf(w, "DB_PASSWORD: set, %d bytes\n", len(password))
	})
	mux.HandleFunc("POST /secret/verify", func(w http.ResponseWriter, r *http.Request) {
		candidate, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if password == "" || subtle.ConstantTimeCompare(candidate, []byte(password)) != 1 {
			http.Error(w, "no match", http.StatusForbidden)
			return
		}
		fmt.Fprintln(w, "match")
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("hello %s listening on %s (broken=%s)", version, addr, broken)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

func healthcheck(url string) int {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
