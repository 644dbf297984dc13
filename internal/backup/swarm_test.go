package backup

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestRemoteRunnerPointsToolsAtTheTask: on another node, each tool gets the
// options that name the task's address, after its own name; the command shown
// for a person runs the same in a container on the service's network.
func TestRemoteRunnerPointsToolsAtTheTask(t *testing.T) {
	pg := remoteFor("postgres", "10.0.1.7")
	pg.image, pg.network = "registry.example.com/postgres:15", "shop_db"
	assert.Equal(t, []string{"pg_dumpall", "-h", "10.0.1.7", "--no-password", "-U", "postgres"}, pg.argv([]string{"pg_dumpall", "--no-password", "-U", "postgres"}))
	assert.Equal(t, "docker run --rm -i --network shop_db -e PGPASSWORD registry.example.com/postgres:15 psql -h 10.0.1.7 -X -U postgres -d postgres",
		pg.shell([]string{"psql", "-X", "-U", "postgres", "-d", "postgres"}, "PGPASSWORD"))
	assert.Equal(t, "docker run --rm -i --network shop_db -e PGPASSWORD registry.example.com/postgres:15 pg_dumpall -h 10.0.1.7 -U postgres",
		pg.shell([]string{"pg_dumpall", "-U", "postgres"}), "over TCP the password is always needed")
	assert.Equal(t, "in a container of registry.example.com/postgres:15 on shop_db", pg.where())

	my := remoteFor("mariadb", "10.0.1.8")
	assert.Equal(t, []string{"mariadb-dump", "--host=10.0.1.8", "--protocol=TCP", "--all-databases"}, my.argv([]string{"mariadb-dump", "--all-databases"}))
	assert.Equal(t, "MYSQL_PWD", my.password)
}
