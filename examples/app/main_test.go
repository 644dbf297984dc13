package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDatabaseURLTakesThePasswordFromTheFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "db_password")
	if err := os.WriteFile(file, []byte("s3cr:t/@?\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := databaseURL("postgres://postgres@db:5432/postgres?sslmode=disable", file)
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://postgres:s3cr%3At%2F%40%3F@db:5432/postgres?sslmode=disable"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := databaseURL("", file); err == nil || err.Error() != "DATABASE_URL is not set" {
		t.Errorf("empty DATABASE_URL: got %v", err)
	}
}

func TestMigrationsAreEmbedded(t *testing.T) {
	entries, err := migrations.ReadDir("migrations")
	if err != nil || len(entries) == 0 {
		t.Fatalf("no embedded migrations (%v)", err)
	}
}
