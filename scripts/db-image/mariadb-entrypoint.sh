#!/bin/sh
# Starts MariaDB the way the official image does, for the kit's tests: on first
# start a data directory with root's password from MARIADB_ROOT_PASSWORD (or
# MYSQL_ROOT_PASSWORD), root allowed from anywhere, and optionally
# MARIADB_DATABASE with MARIADB_USER / MARIADB_PASSWORD owning it.
set -eu
data=/var/lib/mysql
sql_string() { printf "'%s'" "$(printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/''/g")"; }
set -- --datadir="$data" --bind-address=0.0.0.0 --socket=/run/mysqld/mysqld.sock --skip-name-resolve
if [ ! -d "$data/mysql" ]; then
	pw="${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}"
	[ -n "$pw" ] || { echo "docker-entrypoint: set MARIADB_ROOT_PASSWORD" >&2; exit 1; }
	mariadb-install-db --datadir="$data" --skip-test-db >/dev/null
	init=$(mktemp)
	{
		echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$pw");"
		echo "CREATE USER 'root'@'%' IDENTIFIED BY $(sql_string "$pw");"
		echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
		if [ -n "${MARIADB_DATABASE:-}" ]; then
			echo "CREATE DATABASE \`$MARIADB_DATABASE\`;"
			if [ -n "${MARIADB_USER:-}" ]; then
				echo "CREATE USER $(sql_string "$MARIADB_USER")@'%' IDENTIFIED BY $(sql_string "${MARIADB_PASSWORD:-}");"
				echo "GRANT ALL ON \`$MARIADB_DATABASE\`.* TO $(sql_string "$MARIADB_USER")@'%';"
			fi
		fi
	} >"$init"
	set -- "$@" --init-file="$init"
fi
exec mariadbd "$@"
