#!/usr/bin/env bash
# tools/cluster.sh - throwaway PostgreSQL 15 clusters for the demo and tests.
#
#   tools/cluster.sh start DIR PORT [extra postgresql.conf lines...]
#   tools/cluster.sh restart DIR   (after make install: backends fork from the
#                                  postmaster, which preloaded the old library)
#   tools/cluster.sh stop DIR
#
# The server runs as the postgres user (initdb refuses root), listens on a
# Unix socket in DIR only (no TCP), and preloads scim_provision.  Connect
# with: PGHOST=DIR PGPORT=PORT PGUSER=postgres psql
set -euo pipefail

BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
cmd=${1:?usage: cluster.sh start|stop DIR [PORT]}
dir=${2:?usage: cluster.sh start|stop DIR [PORT]}

as_postgres() {
	if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

case "$cmd" in
start)
	port=${3:?port required}
	shift 3
	mkdir -p "$dir"
	chown postgres: "$dir" 2>/dev/null || true
	as_postgres "$BINDIR/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
	{
		echo "listen_addresses = ''"
		echo "port = $port"
		echo "unix_socket_directories = '$dir'"
		echo "shared_preload_libraries = 'scim_provision'"
		echo "fsync = off"
		echo "max_prepared_transactions = 10"
		echo "log_line_prefix = '%m [%p] %q%a '"
		for line in "$@"; do echo "$line"; done
	} >>"$dir/data/postgresql.conf"
	as_postgres "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
	;;
restart)
	# needed after "make install": the preloaded library is the postmaster's copy
	as_postgres "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -m fast restart >/dev/null
	;;
stop)
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_postgres "$BINDIR/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
	fi
	;;
*)
	echo "usage: cluster.sh start|stop DIR [PORT]" >&2
	exit 2
	;;
esac
