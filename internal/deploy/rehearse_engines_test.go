package deploy_test

import (
	"database/sql"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// mariadbStack is the notes app (testenv/notesapp) and its MariaDB, with the
// app on a loopback port (strategy recreate).
const mariadbStack = `services:
  web:
    image: ${IMAGE}:${DEPLOY_TAG}
    environment:
      APP_VERSION: ${DEPLOY_VERSION}
      DATABASE_URL: mysql://root:${DB_PASSWORD}@tcp(db:3306)/shop?multiStatements=true
    depends_on:
      db:
        condition: service_healthy
    ports: ["127.0.0.1:${APP_PORT}:8080"]
  db:
    image: ${MARIADB_IMAGE}
    environment:
      MARIADB_ROOT_PASSWORD: ${DB_PASSWORD}
      MARIADB_DATABASE: shop
    volumes: ["db:/var/lib/mysql"]
    healthcheck:
      test: ["CMD", "mariadb-admin", "ping", "--protocol=TCP", "-h", "127.0.0.1"]
      interval: 1s
      timeout: 2s
      retries: 60
volumes:
  db: {}
`

// TestRehearsalOnMariaDB: the rehearsal of a MariaDB stack. A unique index
// over production's duplicates fails on the copy — refused, production's
// schema and release as they were, the copy gone — and an added nullable
// column passes and deploys.
func TestRehearsalOnMariaDB(t *testing.T) {
	t.Parallel()
	const pw = "mariadb-rehearse-pw-01234"
	st := newStack(t, []byte(mariadbStack))
	t.Cleanup(st.down)
	st.port = testenv.FreePort(t)
	st.args = []string{"--backup-engine", "mariadb", "--backup-container", st.name + "-db-1", "--backup-db-password", pw}
	st.env = []string{"MARIADB_IMAGE=" + testenv.MariaDBImage(t), fmt.Sprintf("APP_PORT=%d", st.port), "ENV_DB_PASSWORD=" + pw}
	sql := func(query string) string {
		t.Helper()
		out, err := exec.Command("docker", "exec", "-e", "MYSQL_PWD="+pw, st.name+"-db-1", "mariadb", "-u", "root", "-N", "-B", "shop", "-e", query).CombinedOutput()
		require.NoError(t, err, "%s\n%s", query, out)
		return strings.TrimSpace(string(out))
	}
	engineScenario(t, st, engineSQL{
		create:    "CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(200) NOT NULL);\n",
		dropIndex: "DROP INDEX notes_body ON notes;\n",
		addColumn: "ALTER TABLE notes ADD COLUMN tags VARCHAR(50) NULL;\n",
		duplicate: "Duplicate entry 'same'",
		migrated:  "; migrations: shop at 1 → shop at 2",
		schema: func() string {
			return strings.ReplaceAll(sql("SELECT version, dirty FROM schema_migrations"), "\t", "|")
		},
		insert: func() { sql("INSERT INTO notes (body) VALUES ('same'), ('same'), ('other')") },
	})
}

// sqliteStack is the notes app with its SQLite file in a bind-mounted
// directory of the host (DATA_DIR), on a loopback port.
const sqliteStack = `services:
  web:
    image: ${IMAGE}:${DEPLOY_TAG}
    environment:
      APP_VERSION: ${DEPLOY_VERSION}
      DATABASE_URL: sqlite:///data/app.db
    volumes: ["${DATA_DIR}:/data"]
    ports: ["127.0.0.1:${APP_PORT}:8080"]
`

// TestRehearsalOnSQLite: the rehearsal of an app whose SQLite file is in a
// bind mount: the copy mounts a volume of its own there with the restored
// file, so production's file is never written. A unique index over
// production's duplicates is refused; an added column passes and deploys.
func TestRehearsalOnSQLite(t *testing.T) {
	t.Parallel()
	st := newStack(t, []byte(sqliteStack))
	t.Cleanup(st.down)
	data := t.TempDir()
	file := filepath.Join(data, "app.db")
	st.port = testenv.FreePort(t)
	st.args = []string{"--backup-engine", "sqlite", "--backup-sqlite-path", file}
	st.env = []string{"DATA_DIR=" + data, fmt.Sprintf("APP_PORT=%d", st.port)}
	query := func(q string) string {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
		require.NoError(t, err)
		defer db.Close()
		rows, err := db.Query(q)
		require.NoError(t, err, q)
		defer rows.Close()
		cols, _ := rows.Columns()
		var out []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			var f []string
			for _, v := range vals {
				f = append(f, fmt.Sprint(v))
			}
			out = append(out, strings.Join(f, "|"))
		}
		return strings.Join(out, "\n")
	}
	engineScenario(t, st, engineSQL{
		create:    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n",
		dropIndex: "DROP INDEX notes_body;\n",
		addColumn: "ALTER TABLE notes ADD COLUMN tags TEXT;\n",
		duplicate: "UNIQUE constraint failed: notes.body",
		schema:    func() string { return query("SELECT version, dirty FROM schema_migrations") },
		insert:    func() { query("INSERT INTO notes (body) VALUES ('same'), ('same'), ('other')") },
	})
}

// engineSQL is what a stack's engine needs for engineScenario.
type engineSQL struct {
	create, dropIndex, addColumn string        // the notes table; undo a unique index on body; add a nullable column
	duplicate                    string        // the engine's error for a unique index over duplicates
	migrated                     string        // the rehearse row's migrations part ("" when not read)
	schema                       func() string // production's "version|dirty"
	insert                       func()        // adds the notes same, same, other to production
}

// engineScenario deploys the notes app on st as 1.0.0, puts duplicates in
// production's notes, then: a release with a unique index over them is
// refused by its rehearsal (the engine's error in the hand-off; production's
// release, schema and data as they were; the copy removed), and one that adds
// a nullable column passes and deploys.
func engineScenario(t *testing.T, st *rehearsed, e engineSQL) {
	t.Helper()
	image := func(version string, migrations map[string]string) string {
		migrations["000001_notes.up.sql"] = e.create
		migrations["000001_notes.down.sql"] = "DROP TABLE notes;\n"
		return testenv.NotesAppImage(t, "deploykit-notesapp-"+st.name+":"+version, migrations, "")
	}
	st.release("1.0.0", image("1.0.0", map[string]string{}))
	r := st.deploy("--rehearse")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Summary, "| rehearse | skipped |  | first deploy: there is no production data to rehearse on yet |")
	e.insert()

	st.release("2.0.0", image("2.0.0", map[string]string{
		"000002_unique.up.sql":   "CREATE UNIQUE INDEX notes_body ON notes (body);\n",
		"000002_unique.down.sql": e.dropIndex,
	}))
	r = st.deploy("--rehearse")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::deploy of 2.0.0 failed at rehearse: version 2.0.0 did not start on a copy of production's data: ")
	assert.Contains(t, r.Summary, e.duplicate, "the copy's app log names the database's error")
	_, v := st.get("/version")
	assert.Equal(t, "1.0.0", v)
	assert.Equal(t, "1|0", e.schema(), "production's schema did not move and is not dirty")
	assert.Empty(t, st.copies(), "the copy is removed")

	st.release("2.1.0", image("2.1.0", map[string]string{
		"000002_tags.up.sql":   e.addColumn,
		"000002_tags.down.sql": "ALTER TABLE notes DROP COLUMN tags;\n",
	}))
	r = st.deploy("--rehearse")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Regexp(t, `\| rehearse \| done \| \S+ \| on a copy of production's data \(project `+st.name+`-rehearsal-\S+, removed after; networks of its own, internal, volumes of its own, no published ports\): restored the pre-deploy backup in \S+; 2\.1\.0 started and passed its checks in \S+`+regexp.QuoteMeta(e.migrated)+`; 1\.0\.0 started and passed its checks on the migrated copy in \S+ \|`, r.Summary)
	_, v = st.get("/version")
	assert.Equal(t, "2.1.0", v)
	assert.Equal(t, "2|0", e.schema())
	_, notes := st.get("/notes")
	assert.Equal(t, "same\nsame\nother", notes)
	assert.Empty(t, st.copies())
}
