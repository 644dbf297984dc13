package backup

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPostgresURLKeepsCredentialsOffTheCommandLine: the password reaches pg_dump
// through PGPASSWORD whether the URL carries it as user info or as a query
// parameter; nothing secret is left in the argv.
func TestPostgresURLKeepsCredentialsOffTheCommandLine(t *testing.T) {
	for _, raw := range []string{
		"postgres://app:hunter2@db.example:5432/shop?sslmode=require",
		"postgres://app@db.example:5432/shop?password=hunter2&sslmode=require",
		"postgresql://app:other@db.example:5432/shop?sslmode=require&password=hunter2",
	} {
		u, pw, err := parsePostgresURL(raw)
		require.NoError(t, err, raw)
		p := &postgres{url: u, server: server{password: pw}}
		argv := strings.Join(p.dumpArgv(), " ")
		assert.NotContains(t, argv, "hunter2", raw)
		assert.NotContains(t, argv, "other", raw)
		assert.Equal(t, "pg_dump --no-password --dbname=postgres"+map[bool]string{true: "ql", false: ""}[strings.HasPrefix(raw, "postgresql")]+"://app@db.example:5432/shop?sslmode=require", argv)
		assert.Equal(t, []string{"PGPASSWORD=hunter2"}, p.env())
	}
	_, _, err := parsePostgresURL("postgres://app@db.example/shop?sslkey=/k&sslpassword=hunter2")
	assert.EqualError(t, err, "the URL carries sslpassword, which would reach pg_dump's command line: use a client key without a passphrase (readable only by the runner's user)")
}

// TestMySQLURLNamesOnlyADatabase: a database name that a dump tool would read as
// an option is refused, as is a query the tools would never see.
func TestMySQLURLNamesOnlyADatabase(t *testing.T) {
	for raw, want := range map[string]string{
		"mysql://u:hunter2@h/--result-file=x.sql": `database name "--result-file=x.sql": want letters, digits, '_' and '$', not starting with '-'`,
		"mysql://u:hunter2@h/-e":                  `database name "-e": want letters, digits, '_' and '$', not starting with '-'`,
		"mysql://u:hunter2@h/a%20b":               `database name "a b": want letters, digits, '_' and '$', not starting with '-'`,
		"mysql://u@h/shop?password=hunter2":       "the URL has a query (password…), which is not used: put the user and password in the URL's user info, mysql://user:password@host:port/database",
	} {
		_, _, _, _, _, err := parseMySQLURL(raw)
		assert.EqualError(t, err, want, raw)
	}
	user, pw, host, port, db, err := parseMySQLURL("mariadb://app:hunter2@db.example/shop-2_x$")
	require.NoError(t, err)
	assert.Equal(t, []string{"app", "hunter2", "db.example", "3306", "shop-2_x$"}, []string{user, pw, host, port, db})
	m := &mysql{flavor: "mariadb", server: server{user: user, password: pw}, host: host, port: port, db: db}
	assert.NotContains(t, strings.Join(m.dumpArgv(), " "), "hunter2")
}
