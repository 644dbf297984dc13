// Command notesapp is examples/app for the engines that app does not speak, for
// the kit's rehearsal tests: at start it applies the migrations in /migrations
// (golang-migrate) to DATABASE_URL — mysql://user:password@tcp(host:3306)/db or
// sqlite:///path/to/file.db — and then serves:
//
//	GET /health   200 when the schema is at this build's newest migration or
//	              later and not dirty, else 503
//	GET /version  APP_VERSION
//	GET /notes    the notes' NOTES_COLUMN (default body), one per line
//
// `notesapp healthcheck` probes /health for the image's HEALTHCHECK.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/mysql"  // mysql:// URLs
	_ "github.com/golang-migrate/migrate/v4/database/sqlite" // sqlite:// URLs (modernc.org/sqlite)
	_ "github.com/golang-migrate/migrate/v4/source/file"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		resp, err := http.Get("http://127.0.0.1:8080/health")
		if err != nil || resp.StatusCode != http.StatusOK {
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	raw := os.Getenv("DATABASE_URL")
	driver, dsn, ok := strings.Cut(raw, "://")
	if !ok || (driver != "mysql" && driver != "sqlite") {
		return fmt.Errorf("DATABASE_URL %q: want mysql:// or sqlite://", raw)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	want, err := migrateUp(raw, db)
	if err != nil {
		return err
	}
	column := os.Getenv("NOTES_COLUMN")
	if column == "" {
		column = "body"
	}
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
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, os.Getenv("APP_VERSION")) })
	mux.HandleFunc("GET /notes", func(w http.ResponseWriter, r *http.Request) {
		rows, err := db.QueryContext(r.Context(), "SELECT "+column+" FROM notes ORDER BY id")
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
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	log.Printf("notesapp %s listening on :8080 (schema version %d)", os.Getenv("APP_VERSION"), want)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// migrateUp waits for the database, applies /migrations and returns the newest
// version among them; a database already ahead is left as it is.
func migrateUp(url string, db *sql.DB) (uint, error) {
	for attempt := 1; db.Ping() != nil; attempt++ {
		if attempt == 30 {
			return 0, errors.New("the database does not answer")
		}
		time.Sleep(time.Second)
	}
	m, err := migrate.New("file:///migrations", url)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	entries, err := os.ReadDir("/migrations")
	if err != nil {
		return 0, err
	}
	var newest uint
	for _, e := range entries {
		var v uint
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil {
			newest = max(newest, v)
		}
	}
	current, dirty, err := m.Version()
	switch {
	case err == nil && !dirty && current >= newest:
		return newest, nil
	case err != nil && !errors.Is(err, migrate.ErrNilVersion):
		return 0, err
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return 0, fmt.Errorf("migrating: %w", err)
	}
	return newest, nil
}
