// Command hello is a small web service with a PostgreSQL database: the app this
// repository deploys with deploy-kit (see README.md).
//
//	GET  /health   200 "ok" when the database answers and its schema has every
//	               migration this build carries, else 503
//	GET  /version  the version it was deployed as (APP_VERSION)
//	GET  /notes    the notes, one per line
//	POST /notes    adds the request body as a note
//
// At start it applies its migrations (embedded from migrations/, the same files
// CI's migration-smoke tests) with golang-migrate. `hello healthcheck` probes
// /health for the container's HEALTHCHECK: the image is FROM scratch, no curl.
//
// Configuration: DATABASE_URL without a password, and the password in the file
// DB_PASSWORD_FILE names (a compose secret), so `docker inspect` never shows it.
package main

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database/postgres"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	_ "github.com/lib/pq"
)

//go:embed migrations/*.sql
var migrations embed.FS

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck("http://127.0.0.1:8080/health"))
	}
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	dsn, err := databaseURL(os.Getenv("DATABASE_URL"), os.Getenv("DB_PASSWORD_FILE"))
	if err != nil {
		return err
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	want, err := migrateUp(db)
	if err != nil {
		return err
	}
	version := os.Getenv("APP_VERSION")
	if version == "" {
		version = "dev"
	}
	srv := &http.Server{Addr: ":8080", Handler: handler(db, version, want), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("hello %s listening on :8080 (schema version %d)", version, want)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// databaseURL puts the password read from passwordFile into url.
func databaseURL(raw, passwordFile string) (string, error) {
	if raw == "" {
		return "", errors.New("DATABASE_URL is not set")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL: %w", err)
	}
	if passwordFile != "" {
		data, err := os.ReadFile(passwordFile)
		if err != nil {
			return "", err
		}
		u.User = url.UserPassword(u.User.Username(), strings.TrimRight(string(data), "\r\n"))
	}
	return u.String(), nil
}

// migrateUp waits for the database, applies the embedded migrations and returns
// the newest version among them. A database already ahead of this build (after a
// rollback to an earlier release) is left as it is: migrations are written to be
// backward compatible, so the older build runs on the newer schema.
func migrateUp(db *sql.DB) (uint, error) {
	for attempt := 1; ; attempt++ {
		err := db.Ping()
		if err == nil {
			break
		}
		if attempt == 30 {
			return 0, fmt.Errorf("the database does not answer: %w", err)
		}
		time.Sleep(time.Second)
	}
	src, err := iofs.New(migrations, "migrations")
	if err != nil {
		return 0, err
	}
	newest, err := src.First()
	if err != nil {
		return 0, err
	}
	for {
		next, err := src.Next(newest)
		if err != nil {
			break // no newer migration
		}
		newest = next
	}
	driver, err := postgres.WithInstance(db, &postgres.Config{})
	if err != nil {
		return 0, err
	}
	m, err := migrate.NewWithInstance("iofs", src, "postgres", driver)
	if err != nil {
		return 0, err
	}
	current, dirty, err := m.Version()
	switch {
	case err == nil && !dirty && current >= newest:
		return newest, nil // at or ahead of this build
	case err != nil && !errors.Is(err, migrate.ErrNilVersion):
		return 0, err
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return 0, fmt.Errorf("migrating: %w", err)
	}
	return newest, nil
}

// handler serves the app. want is the schema version this build needs at least.
func handler(db *sql.DB, version string, want uint) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		var got uint
		var dirty bool
		err := db.QueryRowContext(r.Context(), "SELECT version, dirty FROM schema_migrations").Scan(&got, &dirty)
		switch {
		case err != nil:
			http.Error(w, "database: "+err.Error(), http.StatusServiceUnavailable)
		case dirty || got < want:
			http.Error(w, fmt.Sprintf("schema at version %d (dirty %t), this build needs %d", got, dirty, want), http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ok")
		}
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, version) })
	mux.HandleFunc("GET /notes", func(w http.ResponseWriter, r *http.Request) {
		rows, err := db.QueryContext(r.Context(), "SELECT body FROM notes ORDER BY id")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var body string
			if err := rows.Scan(&body); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			fmt.Fprintln(w, body)
		}
	})
	mux.HandleFunc("POST /notes", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
		if err != nil || len(strings.TrimSpace(string(body))) == 0 {
			http.Error(w, "send the note as the request body", http.StatusBadRequest)
			return
		}
		if _, err := db.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ($1)", strings.TrimSpace(string(body))); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	return mux
}

// healthcheck is the container's HEALTHCHECK: exit 0 when url answers 200.
func healthcheck(url string) int {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}
