#!/bin/sh
# Starts PostgreSQL the way the official image does, for the kit's tests: a cluster
# in $PGDATA initialised on first start with POSTGRES_PASSWORD (or the contents of
# the file POSTGRES_PASSWORD_FILE names: a Docker secret) for the postgres user; local (socket) connections are trusted, TCP connections from anywhere use
# password (scram-sha-256) authentication. The socket is in /var/run/postgresql.
set -eu
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	mkdir -p "$PGDATA"
	pw=$(mktemp)
	if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
		cat "$POSTGRES_PASSWORD_FILE" >"$pw"
	else
		printf '%s\n' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE}" >"$pw"
	fi
	initdb -D "$PGDATA" -U postgres --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 --no-sync -E UTF8 >/dev/null
	rm -f "$pw"
	echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql -c fsync=off
