#!/usr/bin/env bash
# bench/soak/run.sh - soak under faults: mixed IdP traffic through
# scim.handle from 16 pgbench clients while a chaos loop terminates random
# client backends (pg_terminate_backend) and once restarts the server with
# "pg_ctl -m immediate"; then checks what survived.
#
#   bench/soak/run.sh [SECONDS]          (default 300; CI runs 60)
#
# Traffic (pgbench scripts calling soak.step, see soak.sql): userName
# lookups, GET by id, creates, PUTs, PATCHes, deactivations (Entra ID's
# "Replace" active "False"), deletes, group creates, member adds and
# removes, /Bulk; and races of all clients over 8 shared users and 2 shared
# groups (creates, deletes, member adds at once).  Each client has its own
# 20 users and 3 groups and sends
# one request at a time; each request is journaled in its own transaction
# (soak.journal), so the journal is exactly the set of completed requests:
# a request whose connection died before COMMIT left nothing at all.
#
# Checks, printed as TAP lines ("ok N - ..."):
#   - no completed request was answered 500, and the System Log has no 500;
#   - every completed request has exactly one System Log row in its own
#     transaction, and the System Log has no other rows (a /Bulk adds one
#     per operation);
#   - replaying every client's journal in order in another workspace gives
#     the same statuses and the same users and groups (ids mapped; a 503
#     changed nothing by contract and is not replayed);
#   - faults were injected (backends terminated, one immediate restart),
#     requests completed after the restart, and the clients saw no SQL error
#     other than the injected faults.
# Also printed: requests/s and the number of faults.
#
# Environment: SOAK_PORT (default 55450), SOAK_CLIENTS (16), SOAK_RATE
# (total requests/s cap for pgbench -R; default none), SOAK_FAULT_EVERY_MS
# (mean pause between terminations, default 500), SOAK_SHARED (1: also race
# all clients over shared users and groups, the default; 0: only the
# replayable per-client traffic), SOAK_KEEP=1 keeps the work directory.  Needs the extension installed (tools/build.sh) and
# pgbench.  Exit status 0 when every check passed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
secs=${1:-${SOAK_SECONDS:-300}}
port=${SOAK_PORT:-55450}
clients=${SOAK_CLIENTS:-16}
rate=${SOAK_RATE:-}
fault_ms=${SOAK_FAULT_EVERY_MS:-500}
shared=${SOAK_SHARED:-1}
work=$(mktemp -d /tmp/soak.XXXXXX)
chmod 755 "$work"
pids=()

as_postgres() {
	if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	"$top/tools/cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
	if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "soak: work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

"$top/tools/cluster.sh" start "$work/pg" "$port" "log_min_messages = warning" \
	"max_connections = $((clients + 20))" "scim_provision.database = 'postgres'" >/dev/null || {
	tail -20 "$work/pg/server.log" 2>/dev/null; echo "not ok 1 - the soak cluster starts"; exit 1; }
export PGHOST=$work/pg PGPORT=$port PGUSER=postgres PGDATABASE=postgres
psql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

psql -c "CREATE EXTENSION scim_provision CASCADE" >/dev/null 2>&1 &&
	psql -f "$here/soak.sql" >/dev/null || { echo "not ok 1 - the soak schema loads"; exit 1; }

# one pgbench script per kind of request, weighted like an IdP's traffic
weights="lookup:30 get:10 create:12 put:10 patch:10 deactivate:4 delete:4 group_create:3 group_add:8 group_remove:4 bulk:5"
# races over shared users and groups (not replayed; see soak.sql)
if [ "$shared" = 1 ]; then
	weights="$weights shared_create:2 shared_delete:2 shared_group_create:1 shared_group_add:3 shared_group_remove:1 shared_put:1"
fi
scripts=()
for kw in $weights; do
	kind=${kw%%:*}
	cat >"$work/$kind.sql" <<EOF
\\set i random(1, 20)
\\set j random(1, 3)
\\set r random(1, 1000000)
SELECT soak.step(:client, '$kind', :i, :j, :r);
EOF
	scripts+=(-f "$work/$kind.sql@${kw##*:}")
done
rate_opt=()
if [ -n "$rate" ]; then
	rate_opt=(-R "$(awk -v r="$rate" -v c="$clients" 'BEGIN { printf "%.3f", r / c }')")
fi

start=$(date +%s)
deadline=$((start + secs))

# Each client: pgbench with one connection until the deadline; when its
# connection is killed (pgbench aborts the client), start it again.
client_loop() {
	local c=$1 rem
	while :; do
		rem=$((deadline - $(date +%s)))
		[ "$rem" -ge 1 ] || break
		"$bindir/pgbench" -n -c 1 -j 1 -T "$rem" -D client="$c" "${rate_opt[@]}" "${scripts[@]}" postgres \
			>>"$work/client$c.log" 2>&1 || sleep 0.2
	done
}
for c in $(seq 1 "$clients"); do
	client_loop "$c" &
	pids+=($!)
done

# Chaos: terminate one random client backend every ~SOAK_FAULT_EVERY_MS;
# halfway through, restart the server with -m immediate (a crash for the
# clients, crash recovery for the server).
restart_at=$((start + secs / 2))
restarted=0
terminated=0
restart_time=
: >"$work/chaos.log"
while [ "$(date +%s)" -lt "$deadline" ]; do
	sleep "$(awk -v m="$fault_ms" -v r="$RANDOM" 'BEGIN { printf "%.3f", m * (0.5 + r / 32768) / 1000 }')"
	if [ "$restarted" = 0 ] && [ "$(date +%s)" -ge "$restart_at" ]; then
		restart_time=$(psql -Atc "SELECT clock_timestamp()" 2>/dev/null)
		if as_postgres "$bindir/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 60 -m immediate restart \
			>>"$work/chaos.log" 2>&1; then
			restarted=1
		else
			restarted=failed
		fi
		continue
	fi
	n=$(psql -Atc "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
					 FROM (SELECT pid FROM pg_stat_activity
							WHERE application_name = 'pgbench' AND pid <> pg_backend_pid()
							ORDER BY random() LIMIT 1) AS s" 2>>"$work/chaos.log")
	terminated=$((terminated + ${n:-0}))
done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
pids=()
elapsed=$(($(date +%s) - start))

# the server may still be recovering from the last fault
for _ in $(seq 1 60); do psql -Atc "SELECT 1" >/dev/null 2>&1 && break; sleep 0.5; done
psql -c "INSERT INTO soak.faults (kind) SELECT 'terminate' FROM generate_series(1, $terminated)" >/dev/null
[ "$restarted" = 1 ] && psql -c "INSERT INTO soak.faults (at, kind) VALUES ('$restart_time', 'restart')" >/dev/null

# --- checks ---------------------------------------------------------------
n=0
failed=0
check() {
	# check NAME SQL: the SQL answers t for a pass; anything else is printed
	local name=$1 sql=$2 out
	n=$((n + 1))
	out=$(psql -Atc "$sql" 2>&1)
	if [ "$out" = t ]; then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		failed=$((failed + 1))
		psql -c "${3:-SELECT 1 WHERE false}" 2>&1 | head -20 | sed 's/^/#   /'
		[ "$out" = f ] || echo "#   $out"
	fi
}

completed=$(psql -Atc "SELECT count(*) FROM soak.journal")
echo "soak: ${elapsed} s, $clients clients, $completed requests completed" \
	"($(awk -v n="$completed" -v s="$elapsed" 'BEGIN { printf "%.1f", n / (s > 0 ? s : 1) }') requests/s)," \
	"faults: $terminated backends terminated, $([ "$restarted" = 1 ] && echo 1 || echo 0) immediate restart"
psql -Atc "SELECT 'soak: statuses ' || string_agg(status || ': ' || n, ', ' ORDER BY status)
			 FROM (SELECT status, count(*) AS n FROM soak.journal GROUP BY status) AS s"

check "requests completed ($completed)" "SELECT count(*) > 100 FROM soak.journal"
check "no completed request was answered 500" \
	"SELECT count(*) = 0 FROM soak.journal WHERE status >= 500 AND status <> 503" \
	"SELECT id, kind, method, path, status, answer FROM soak.journal WHERE status >= 500 AND status <> 503 LIMIT 10"
check "the System Log has no 500" \
	"SELECT count(*) = 0 FROM scim.provisioning_log WHERE status = 500" \
	"SELECT id, method, path, detail FROM scim.provisioning_log WHERE status = 500 LIMIT 10"
check "every completed request has exactly one System Log row in its transaction" \
	"SELECT count(*) = 0 FROM (SELECT j.id FROM soak.journal j
								 LEFT JOIN scim.provisioning_log l ON l.xmin::text = j.xmin::text
								GROUP BY j.id HAVING count(l.id) <> 1) AS x" \
	"SELECT j.id, j.kind, j.status, count(l.id) FROM soak.journal j
	   LEFT JOIN scim.provisioning_log l ON l.xmin::text = j.xmin::text GROUP BY 1, 2, 3 HAVING count(l.id) <> 1 LIMIT 10"
check "the System Log has no row beyond the completed requests' (and one per /Bulk operation)" \
	"SELECT (SELECT count(*) FROM scim.provisioning_log WHERE workspace = 'soak')
		  = (SELECT count(*) + coalesce(sum(jsonb_array_length(answer -> 'Operations')) FILTER (WHERE path = '/Bulk'), 0)
			   FROM soak.journal)" \
	"SELECT (SELECT count(*) FROM scim.provisioning_log WHERE workspace = 'soak') AS log_rows,
			(SELECT count(*) FROM soak.journal) AS requests"
t0=$(date +%s)
seq 1 "$clients" | xargs -P 4 -I{} "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -c "CALL soak.replay_client({})" \
	>"$work/replay.log" 2>&1 || { echo "# replay failed:"; head -5 "$work/replay.log" | sed 's/^/#   /'; }
echo "soak: replayed $(psql -Atc "SELECT count(*) FROM soak.journal WHERE status <> 503 AND kind NOT LIKE 'shared%'") requests" \
	"in workspace replay in $(($(date +%s) - t0)) s"
check "replaying the journal gives the same statuses" \
	"SELECT count(*) = 0 FROM soak.replay_diff" \
	"SELECT journal_id, status, replay_status, left(answer::text, 200), left(replay_answer::text, 200) FROM soak.replay_diff LIMIT 10"
check "the users equal the replay's" \
	"SELECT count(*) = 0 FROM ((SELECT * FROM soak.users_of('soak') EXCEPT ALL SELECT * FROM soak.users_of('replay'))
							   UNION ALL (SELECT * FROM soak.users_of('replay') EXCEPT ALL SELECT * FROM soak.users_of('soak'))) AS d" \
	"(SELECT 'soak' AS side, * FROM soak.users_of('soak') EXCEPT ALL SELECT 'soak', * FROM soak.users_of('replay')) LIMIT 10"
check "the groups and their members equal the replay's" \
	"SELECT count(*) = 0 FROM ((SELECT * FROM soak.groups_of('soak') EXCEPT ALL SELECT * FROM soak.groups_of('replay'))
							   UNION ALL (SELECT * FROM soak.groups_of('replay') EXCEPT ALL SELECT * FROM soak.groups_of('soak'))) AS d" \
	"(SELECT 'soak' AS side, * FROM soak.groups_of('soak') EXCEPT ALL SELECT 'soak', * FROM soak.groups_of('replay')) LIMIT 10"
check "backends were terminated ($terminated) and the server restarted once (-m immediate)" \
	"SELECT $terminated > 0 AND (SELECT count(*) FROM soak.faults WHERE kind = 'restart') = 1"
check "requests completed after the restart" \
	"SELECT count(*) > 0 FROM soak.journal WHERE at > (SELECT max(at) FROM soak.faults WHERE kind = 'restart')"
errors=$(cat "$work"/client*.log | grep -E 'ERROR:' | grep -vcE 'terminating connection|server closed|connection to server|database system is|could not connect|administrator command' || true)
n=$((n + 1))
if [ "$errors" -eq 0 ]; then
	echo "ok $n - the clients saw no SQL error other than the injected faults"
else
	echo "not ok $n - the clients saw $errors SQL errors other than the injected faults"
	cat "$work"/client*.log | grep -E 'ERROR:' | grep -vE 'terminating connection|server closed|connection to server|database system is|could not connect|administrator command' | sort | uniq -c | head -10 | sed 's/^/#   /'
	failed=$((failed + 1))
fi
# what the server log says about 500s (their SCIM answers are generic)
if [ "$(psql -Atc "SELECT count(*) FROM scim.provisioning_log WHERE status = 500")" != 0 ]; then
	echo "# server log lines about the 500s:"
	grep -E 'scim|ERROR' "$work/pg/server.log" | grep -vE 'terminating connection|database system' |
		sed -E 's/^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] //' | sort | uniq -c | sort -rn | head -8 | sed 's/^/#   /'
fi
echo "1..$n"
echo "soak: $((n - failed)) of $n checks passed"
[ "$failed" -eq 0 ]
