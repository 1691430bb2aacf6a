#!/usr/bin/env bash
# bench/onelogin/run.sh - P5: how fast the OneLogin worker pulls users.
# Not part of CI and asserts nothing about time; it prints what it measured.
#
#   bench/onelogin/run.sh          (after "make install"; root or postgres)
#   USERS=100000 BIG_USERS=1000000 PAGE_SIZE=1000 BIG_SEED=sql bench/onelogin/run.sh
#
# Against test/onelogin_mock.py on loopback, in a throwaway cluster:
#  1. mock serving rate: the worker's own requests (same fields, limit,
#     After-Cursor paging, one keep-alive connection, token included) made by
#     bench/onelogin/fetch_baseline.py, which reads the pages and applies
#     nothing; first pass (mock cold) and second pass (warm, the mock caches
#     serialized users), the warm one is the reference;
#  2. full sync of USERS users into an empty workspace through
#     scim.provision_users (set-based, one call per page): users/s from scim.onelogin_connect() to the
#     completed sync, the ratio to (1), and the share of the time spent in
#     scim.provision_user (pg_stat_user_functions);
#  2b. raw SQL: the same rows by plain INSERT ... ON CONFLICT DO NOTHING, a
#     page per transaction, same indexes and trigger: the ceiling of any
#     write path; and INSERT ... ON CONFLICT DO UPDATE of the same rows
#     again (every row updated), the ceiling of a re-pull that changes all;
#  2c. gap detection (#16): the full sync again into fresh workspaces with
#     scim_provision.gap_detection off, then on, in this run: the cost of
#     the check is the ratio of the two;
#  3. worker ceiling (diagnostic only; GAP_ROUNDS times again with gap
#     detection off and on, alternating): the same pull with
#     scim.provision_users / provision_user replaced by no-ops in this throwaway cluster, i.e.
#     HTTP + parsing + mapping + dedupe + exactly-once bookkeeping;
#  4. incremental sync of 10 changed users among BIG_USERS already synced:
#     seconds from scim.sync_now() to the completed sync (last_success_at).
#     BIG_SEED=sql (default) loads the BIG_USERS users, their OneLogin id
#     mapping and a high-water mark with SQL, the state a completed full sync
#     leaves; BIG_SEED=worker has the worker pull them (slow).
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)

BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PORT=${BENCH_PORT:-55459}
USERS=${USERS:-100000}
BIG_USERS=${BIG_USERS:-1000000}
PAGE_SIZE=${PAGE_SIZE:-1000}
BIG_SEED=${BIG_SEED:-sql}
GAP_ROUNDS=${GAP_ROUNDS:-3}
CLIENT_ID=bench-client
SECRET=bench-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')

WORK=$(mktemp -d /tmp/scim-bench-onelogin.XXXXXX)
chmod 755 "$WORK"
mock_pids=()
cleanup() {
	for p in "${mock_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	PG_BINDIR=$BINDIR tools/cluster.sh stop "$WORK/pg" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

export PGHOST=$WORK/pg PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
q() { "$BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 "$@"; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f", a / b; else print "inf" }'; }
fratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.4f", a / b; else print "n/a" }'; }

start_mock() {
	# start_mock NAME: sets MOCK_PORT
	local name=$1
	python3 test/onelogin_mock.py --client-id "$CLIENT_ID" --client-secret "$SECRET" \
		--port-file "$WORK/$name.port" >"$WORK/$name.log" 2>&1 &
	mock_pids+=($!)
	for _ in $(seq 1 100); do [ -s "$WORK/$name.port" ] && break; sleep 0.1; done
	MOCK_PORT=$(cat "$WORK/$name.port")
}
mock_post() { curl -sf -X POST -H 'Content-Type: application/json' -d "$3" "http://127.0.0.1:$1/_mock/$2" >/dev/null; }

# wait_sync WORKSPACE COUNT: until syncs_completed >= COUNT and nothing runs
wait_sync() {
	until [ "$(q -c "SELECT syncs_completed >= $2 AND NOT sync_in_progress FROM scim.sync_status WHERE workspace = '$1'")" = t ]; do
		sleep 0.05
	done
}

echo "== scim_provision OneLogin pull benchmark (P5) =="
echo "machine: $(nproc) CPU, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo); PostgreSQL $("$BINDIR/pg_config" --version | awk '{print $2}'); page size $PAGE_SIZE"

PG_BINDIR=$BINDIR tools/cluster.sh start "$WORK/pg" "$PORT" \
	"scim_provision.database = 'postgres'" "scim_provision.allow_http = on" \
	"scim_provision.page_size = $PAGE_SIZE" "scim_provision.sync_interval = 3600" \
	"scim_provision.reconcile_interval = 0" "track_functions = 'pl'" \
	"shared_buffers = '512MB'" "max_wal_size = '4GB'" "log_min_messages = warning"
q -c "CREATE EXTENSION scim_provision CASCADE" 2>/dev/null
q -c "SELECT scim.approve_domain('example.com')" >/dev/null

# --- 1. mock serving rate ---------------------------------------------------
start_mock main
MOCK=$MOCK_PORT
mock_post "$MOCK" generate "{\"count\": $USERS, \"start_id\": 1, \"domain\": \"example.com\"}"
read -r n1 s1 r1 < <(python3 bench/onelogin/fetch_baseline.py "$MOCK" "$CLIENT_ID" "$SECRET" "$PAGE_SIZE")
read -r n2 s2 r2 < <(python3 bench/onelogin/fetch_baseline.py "$MOCK" "$CLIENT_ID" "$SECRET" "$PAGE_SIZE")
echo "mock serving rate (fetch only): cold $n1 users in ${s1}s = $r1 users/s; warm $n2 users in ${s2}s = $r2 users/s"

# --- 2. full sync through scim.provision_user -----------------------------------
q -c "SELECT pg_stat_reset()" >/dev/null
t0=$(q -c "SELECT extract(epoch FROM clock_timestamp()), scim.onelogin_connect('http://127.0.0.1:$MOCK', '$CLIENT_ID', '$SECRET')" | cut -d'|' -f1)
wait_sync default 1
t1=$(q -c "SELECT extract(epoch FROM last_success_at) FROM scim.sync_status WHERE workspace = 'default'")
secs=$(fsub "$t1" "$t0")
applied=$(q -c "SELECT count(*) FROM scim.users WHERE workspace = 'default'")
rate=$(fdiv "$applied" "$secs")
sleep 1	# let the worker flush its function statistics
# provision_users' time includes the provision_user calls it falls back to
prov=$(q -c "SELECT coalesce(round(max(t)) / 1000, 0) FROM (SELECT sum(total_time) AS t FROM pg_stat_user_functions WHERE funcname IN ('provision_user', 'provision_users') GROUP BY funcname) s")
echo "full sync: $applied users in ${secs}s = $rate users/s (goal >= 20000)"
echo "  ratio to the mock's warm serving rate: $(fratio "$rate" "$r2")x, to its cold rate: $(fratio "$rate" "$r1")x (goal >= 0.5x)"
echo "  time inside scim.provision_users (and provision_user): ${prov}s of ${secs}s ($(awk -v a="$prov" -v b="$secs" 'BEGIN { printf "%.0f", 100 * a / b }')%)"

# --- 2b. raw SQL baseline -------------------------------------------------------
# The same USERS rows written by plain SQL, no worker, no mapping, no System
# Log: one INSERT ... ON CONFLICT DO NOTHING of PAGE_SIZE rows per transaction
# into scim.users (same indexes, same trigger), in a second workspace of the
# same cluster.  No write path that keeps those indexes and the trigger can
# beat it, so it bounds what the full sync could reach on this machine.
q <<'SQL'
SELECT scim.create_workspace('raw');
SELECT scim.approve_domain('example.com', 'raw');
CREATE UNLOGGED TABLE public.raw_src AS
	SELECT row_number() OVER (ORDER BY u.external_id::bigint) AS n, u.user_name, u.external_id, u.given_name,
		   u.family_name, u.display_name, u.email, u.title, u.phone, u.organization, u.department, u.active,
		   u.attributes
	FROM scim.users u WHERE u.workspace = 'default';
VACUUM ANALYZE public.raw_src, scim.users;
SQL
rawsql=$WORK/raw.sql
echo "SELECT extract(epoch FROM clock_timestamp());" >"$rawsql"
for ((lo = 1; lo <= applied; lo += PAGE_SIZE)); do
	echo "INSERT INTO scim.users AS u (workspace, user_name, external_id, given_name, family_name, display_name, email, title, phone, organization, department, active, attributes) SELECT 'raw', s.user_name, s.external_id, s.given_name, s.family_name, s.display_name, s.email, s.title, s.phone, s.organization, s.department, s.active, s.attributes FROM public.raw_src s WHERE s.n BETWEEN $lo AND $((lo + PAGE_SIZE - 1)) ORDER BY s.n ON CONFLICT DO NOTHING;" >>"$rawsql"
done
echo "SELECT extract(epoch FROM clock_timestamp());" >>"$rawsql"
mapfile -t rt < <(q -f "$rawsql")
rsecs=$(fsub "${rt[1]}" "${rt[0]}")
rrows=$(q -c "SELECT count(*) FROM scim.users WHERE workspace = 'raw'")
rrate=$(fdiv "$rrows" "$rsecs")
echo "raw SQL: $rrows rows by INSERT ... ON CONFLICT DO NOTHING of $PAGE_SIZE rows per transaction in ${rsecs}s = $rrate rows/s; full sync / raw SQL = $(fratio "$rate" "$rrate")x; raw SQL / warm mock = $(fratio "$rrate" "$r2")x"
# the same rows again, each one updated: INSERT ... ON CONFLICT DO UPDATE
upsql=$WORK/raw_update.sql
echo "SELECT extract(epoch FROM clock_timestamp());" >"$upsql"
for ((lo = 1; lo <= applied; lo += PAGE_SIZE)); do
	echo "INSERT INTO scim.users AS u (workspace, user_name, external_id, given_name, family_name, display_name, email, title, phone, organization, department, active, attributes) SELECT 'raw', s.user_name, s.external_id, s.given_name, s.family_name, s.display_name, s.email, s.title || ' (updated)', s.phone, s.organization, s.department, s.active, s.attributes FROM public.raw_src s WHERE s.n BETWEEN $lo AND $((lo + PAGE_SIZE - 1)) ORDER BY s.n ON CONFLICT (workspace, lower(user_name)) DO UPDATE SET external_id = excluded.external_id, given_name = excluded.given_name, family_name = excluded.family_name, display_name = excluded.display_name, email = excluded.email, title = excluded.title, phone = excluded.phone, organization = excluded.organization, department = excluded.department, active = excluded.active, attributes = excluded.attributes;" >>"$upsql"
done
echo "SELECT extract(epoch FROM clock_timestamp());" >>"$upsql"
mapfile -t ut < <(q -f "$upsql")
usecs=$(fsub "${ut[1]}" "${ut[0]}")
urate=$(fdiv "$rrows" "$usecs")
echo "raw SQL: $rrows rows by INSERT ... ON CONFLICT DO UPDATE of $PAGE_SIZE rows per transaction in ${usecs}s = $urate rows/s; full sync / raw DO UPDATE = $(fratio "$rate" "$urate")x"

# --- 2c. gap detection: off and on, same run ----------------------------------------
# Fresh workspaces, so each is a first full sync of USERS users like (2).
gap_sync() {
	# gap_sync WORKSPACE on|off: sets grate (users/s) and gsecs
	local ws=$1
	q -c "ALTER SYSTEM SET scim_provision.gap_detection = $2" >/dev/null
	q -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
	q -c "SELECT scim.create_workspace('$ws')" >/dev/null
	q -c "SELECT scim.approve_domain('example.com', '$ws')" >/dev/null
	local g0 g1
	g0=$(q -c "SELECT extract(epoch FROM clock_timestamp()), scim.onelogin_connect('http://127.0.0.1:$MOCK', '$CLIENT_ID', '$SECRET', '$ws')" | cut -d'|' -f1)
	wait_sync "$ws" 1
	g1=$(q -c "SELECT extract(epoch FROM last_success_at) FROM scim.sync_status WHERE workspace = '$ws'")
	gsecs=$(fsub "$g1" "$g0")
	grate=$(fdiv "$USERS" "$gsecs")
}
# off, on, on, off: every full sync adds USERS rows to scim.users and the
# later ones run on a bigger table, a trend this order cancels
gap_sync gap_off1 off; off1=$grate
gap_sync gap_on1 on; on1=$grate
gap_sync gap_on2 on; on2=$grate
gap_sync gap_off2 off; off2=$grate
relisted=$(q -c "SELECT sum(relists) FROM scim.sync_status WHERE workspace LIKE 'gap_%'")
echo "gap detection: full sync of $USERS users, off $off1 / on $on1 / on $on2 / off $off2 users/s (re-lists: $relisted);" \
	"on / off = $(fratio "$((on1 + on2))" "$((off1 + off2))")x (goal >= 0.95x); on / raw DO NOTHING = $(fratio "$((on1 + on2))" "$((2 * rrate))")x, on / raw DO UPDATE = $(fratio "$((on1 + on2))" "$((2 * urate))")x"

# --- 3. worker ceiling (diagnostic) -----------------------------------------------
q <<'SQL'
CREATE OR REPLACE FUNCTION scim.provision_user(resource jsonb, source text, workspace text DEFAULT 'default')
	RETURNS TABLE(status integer, scim_type text, detail text, id uuid)
	LANGUAGE sql AS $$ SELECT 201, NULL::text, NULL::text, NULL::uuid $$;
CREATE OR REPLACE FUNCTION scim.provision_users(resources jsonb[], source text, workspace text DEFAULT 'default')
	RETURNS TABLE(ord integer, status integer, scim_type text, detail text, id uuid)
	LANGUAGE sql AS $$ SELECT g, 201, NULL::text, NULL::text, NULL::uuid FROM generate_series(1, cardinality(resources)) g $$;
SELECT scim.create_workspace('ceiling');
SQL
t0=$(q -c "SELECT extract(epoch FROM clock_timestamp()), scim.onelogin_connect('http://127.0.0.1:$MOCK', '$CLIENT_ID', '$SECRET', 'ceiling')" | cut -d'|' -f1)
wait_sync ceiling 1
t1=$(q -c "SELECT extract(epoch FROM last_success_at) FROM scim.sync_status WHERE workspace = 'ceiling'")
csecs=$(fsub "$t1" "$t0")
crate=$(fdiv "$USERS" "$csecs")
echo "worker ceiling (provision_users replaced by a no-op, diagnostic only): $USERS users in ${csecs}s = $crate users/s, $(fratio "$crate" "$r2")x the warm mock"
# the same with gap detection off and on, alternating (fresh workspaces):
# the check's share of the worker's own work, where it is most visible
coff=0; con=0; clist=""
for ((i = 1; i <= GAP_ROUNDS; i++)); do
	# alternate which goes first, so a drift of the machine cancels
	if ((i % 2)); then order="off on"; else order="on off"; fi
	for mode in $order; do
		gap_sync "ceil_${mode}$i" "$mode"
		if [ "$mode" = off ]; then coff=$((coff + grate)); else con=$((con + grate)); fi
		clist="$clist $mode $grate"
	done
	clist="$clist;"
done
echo "worker ceiling, gap detection off vs on ($GAP_ROUNDS rounds):$clist users/s; on / off = $(fratio "$con" "$coff")x (goal >= 0.95x)"
kill "${mock_pids[0]}" 2>/dev/null || true

# --- 4. incremental sync among BIG_USERS --------------------------------------------
PG_BINDIR=$BINDIR tools/cluster.sh stop "$WORK/pg"
rm -rf "$WORK/pg"
PG_BINDIR=$BINDIR tools/cluster.sh start "$WORK/pg" "$PORT" \
	"scim_provision.database = 'postgres'" "scim_provision.allow_http = on" \
	"scim_provision.page_size = $PAGE_SIZE" "scim_provision.sync_interval = 3600" \
	"scim_provision.reconcile_interval = 0" \
	"shared_buffers = '512MB'" "max_wal_size = '4GB'" "log_min_messages = warning"
q -c "CREATE EXTENSION scim_provision CASCADE" 2>/dev/null
q -c "SELECT scim.approve_domain('example.com')" >/dev/null
start_mock big
BIG=$MOCK_PORT
# updated_at spread over the 30 days before yesterday, as in a real directory
past=$(date -u -d '31 days ago' +%Y-%m-%dT%H:%M:%S.000Z)
hwm=$(date -u -d '1 day ago' +%Y-%m-%dT%H:%M:%S.000Z)
mock_post "$BIG" generate "{\"count\": $BIG_USERS, \"start_id\": 1, \"domain\": \"example.com\", \"updated_at\": \"$past\", \"spread_seconds\": 2592000}"
seed_start=$(date +%s)
if [ "$BIG_SEED" = worker ]; then
	q -c "SELECT scim.onelogin_connect('http://127.0.0.1:$BIG', '$CLIENT_ID', '$SECRET')" >/dev/null
	wait_sync default 1
else
	q <<SQL
BEGIN;
INSERT INTO scim.users (workspace, user_name, external_id, given_name, family_name, email, title, phone,
						organization, department, user_type, active, attributes)
SELECT 'default', 'user' || i || '@example.com', i::text, 'First' || i, 'Last' || i, 'user' || i || '@example.com',
	   'Engineer', '+1555' || lpad(i::text, 7, '0'), 'Example Corp', 'R&D', 'Regular', true,
	   jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('value', 'user' || i || '@example.com', 'type', 'work', 'primary', true)),
						  'phoneNumbers', jsonb_build_array(jsonb_build_object('value', '+1555' || lpad(i::text, 7, '0'), 'type', 'work', 'primary', true)))
FROM generate_series(1, $BIG_USERS) AS i;
INSERT INTO scim.onelogin_connections (workspace, base_url, client_id, client_secret)
VALUES ('default', 'http://127.0.0.1:$BIG', '$CLIENT_ID', '$SECRET');
INSERT INTO scim.onelogin_state (workspace, config_version, state, wake_seq, handled_seq, users_high_water,
								 run_kind, run_id, run_wake_seq, last_reconcile_at, events_high_water,
								 last_attempt_at, last_success_at, syncs_completed)
VALUES ('default', 1, 'idle', 1, 1, '$hwm', 'full', 1, 1, now(), now(), now(), now(), 1);
INSERT INTO scim.onelogin_users (workspace, onelogin_id, user_id, updated_at, status, seen_run)
SELECT 'default', u.external_id::bigint, u.id,
	   to_char(('$past'::timestamptz + (u.external_id::bigint - 1) * interval '2592 ms') AT TIME ZONE 'UTC',
			   'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 201, 1
FROM scim.users u WHERE u.workspace = 'default';
COMMIT;
VACUUM ANALYZE;
SQL
fi
echo "seeded $BIG_USERS synced users ($BIG_SEED) in $(( $(date +%s) - seed_start ))s"
before=$(q -c "SELECT syncs_completed FROM scim.sync_status")
# a first incremental warms the worker (token, plans) like any long-running worker
q -c "SELECT scim.sync_now()" >/dev/null
wait_sync default $((before + 1))
ids='[7, 77, 777, 7777, 77777, 777777, 123, 4567, 89012, 345678]'
mock_post "$BIG" touch "{\"ids\": $ids, \"set\": {\"title\": \"Changed\"}}"
t0=$(q -c "SELECT extract(epoch FROM clock_timestamp()), scim.sync_now()" | cut -d'|' -f1)
wait_sync default $((before + 2))
t1=$(q -c "SELECT extract(epoch FROM last_success_at) FROM scim.sync_status")
changed=$(q -c "SELECT count(*) FROM scim.users WHERE title = 'Changed'")
run=$(q -c "SELECT round(extract(epoch FROM run_finished_at - run_started_at)::numeric, 3), run_users_seen, run_users_applied FROM scim.sync_status")
echo "incremental sync: $changed of 10 changed users applied among $BIG_USERS in $(fsub "$t1" "$t0")s from sync_now() to completion (goal < 1s); users run ${run%%|*}s, seen|applied ${run#*|}"
