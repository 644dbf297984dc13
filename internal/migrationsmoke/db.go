package migrationsmoke

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/org/deploy-kit/internal/docker"
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freshDatabase creates a database no other run has seen on the server at
// serverURL and returns its URL and how to drop it.
func freshDatabase(ctx context.Context, serverURL string) (string, func(), error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("not a postgres:// URL")
	}
	admin, err := sql.Open("postgres", serverURL)
	if err != nil {
		return "", nil, err
	}
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("connecting to the database server: %w", err)
	}
	name := "deploykit_smoke_" + randomHex(6)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
		admin.Close()
	}
	fresh := *u
	fresh.Path = "/" + name
	return fresh.String(), drop, nil
}

// ephemeralServer starts a Postgres container (the official image's conventions:
// POSTGRES_PASSWORD, port 5432) and waits until it takes connections.
// serverEngine is what an ephemeral server needs of the Docker Engine.
type serverEngine interface {
	Run(ctx context.Context, spec docker.RunSpec) (id, port string, err error)
	Remove(ctx context.Context, id string) error
}

func ephemeralServer(ctx context.Context, client serverEngine, image string, labels map[string]string, mask func(string)) (string, func(), error) {
	password := randomHex(16)
	mask(password)
	id, port, err := client.Run(ctx, docker.RunSpec{
		Image:  image,
		Env:    []string{"POSTGRES_PASSWORD=" + password},
		Port:   "5432/tcp",
		Labels: labels,
	})
	if err != nil {
		return "", nil, err
	}
	remove := func() { _ = client.Remove(context.Background(), id) }
	serverURL := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%s/postgres?sslmode=disable", password, port)
	mask(serverURL)
	deadline := time.Now().Add(60 * time.Second)
	for {
		db, err := sql.Open("postgres", serverURL)
		if err == nil {
			err = db.PingContext(ctx)
			db.Close()
		}
		if err == nil {
			return serverURL, remove, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			remove()
			return "", nil, fmt.Errorf("the %s container did not accept connections within 60s: %w", image, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var metaCommand = regexp.MustCompile(`(?m)^\\.*$`)

// loadDump runs a schema dump (pg_dump --schema-only, plus the schema_migrations
// row as an INSERT) in the database.
func loadDump(ctx context.Context, dbURL, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := string(data)
	if strings.Contains(text, "FROM stdin;") {
		return errors.New("the dump has COPY … FROM stdin data: dump with pg_dump --schema-only, and the schema_migrations row with --data-only --inserts --table schema_migrations")
	}
	// psql meta-commands (\connect, \restrict …) are for psql, not the server.
	text = metaCommand.ReplaceAllString(text, "")
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, text)
	return err
}

// runSQL runs one file of SQL.
func runSQL(ctx context.Context, dbURL, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, string(data))
	return err
}
