#!/usr/bin/env bash
# bench/users/run.sh - SCIM Users through scim.handle against hand-written
# SQL on the same table and indexes, in one throwaway cluster, ratios taken
# in the same run.  Needs the extension installed (tools/build.sh) and
# pgbench.  Not part of CI; asserts nothing about timing.
#
#   P2  1,000,000 users; GET /Users?filter=userName eq "<random user>"
#       through scim.handle vs the raw indexed SELECT of the same row
#       (lower(user_name) = lower($1)), one client.  Goal: <= 1.3x latency.
#       Also shown: the same request through the PL/pgSQL router
#       (scim_provision.fast_path = off), and the floor of a raw SELECT
#       that also writes its System Log row.
#   P3  GET /Users?filter=emails[type eq "work" and value co "@acme..."] and
#       active eq true&count=100 vs hand-written SQL returning the same
#       total and the same 100 rows (same table, same indexes), one client.
#       Goal: <= 1.5x latency.
#   P4  POST /Users, 8 concurrent clients (pgbench custom script), vs a raw
#       INSERT of the same columns (the same triggers run for both).
#       Goal: >= 0.5x throughput.
#
# Every scim.handle request also authenticates its token and writes its
# System Log row, in the same transaction; the raw baselines do neither.
# Environment: USERS_BENCH_PORT (default 55440), USERS (default 1000000),
# SECONDS_PER_RUN (default 10), CLIENTS (P4, default 8).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
port=${USERS_BENCH_PORT:-55440}
users=${USERS:-1000000}
secs=${SECONDS_PER_RUN:-10}
clients=${CLIENTS:-8}
work=$(mktemp -d /tmp/users-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
	"$top/tools/cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

"$top/tools/cluster.sh" start "$work/pg" "$port" "log_min_messages = warning" \
	"shared_buffers = 512MB" "max_connections = 50" >/dev/null
export PGHOST=$work/pg PGPORT=$port PGUSER=postgres PGDATABASE=postgres
psql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

echo "== setup: $users users (1 in 100 with a second work email at acme.example.com; 1 in 10 inactive) =="
t0=$(date +%s)
psql <<SQL
CREATE EXTENSION scim_provision CASCADE;
SELECT scim.approve_domain('example.com', include_subdomains => true);
CREATE TABLE bench_env AS
	SELECT jsonb_build_object('authorization', 'Bearer ' || scim.create_token('bench')) AS auth;
-- bulk load with the triggers off (they would only check the domain and
-- set the states, which the load sets itself)
SET session_replication_role = replica;
INSERT INTO scim.users (workspace, user_name, given_name, family_name, email, user_type, active, billable,
						billable_since, deactivated_at, attributes, created_at, updated_at)
SELECT 'default', format('u%s@example.com', i), 'Given' || i, 'Family' || i, format('u%s@example.com', i),
	   'Regular', i % 10 <> 0, i % 10 <> 0, now(), CASE WHEN i % 10 = 0 THEN now() END,
	   jsonb_build_object('emails',
		   jsonb_build_array(jsonb_build_object('value', format('u%s@example.com', i), 'type', 'work', 'primary', true))
		   || CASE WHEN i % 100 = 1
				   THEN jsonb_build_array(jsonb_build_object('value', format('u%s@acme.example.com', i), 'type', 'work'))
				   ELSE '[]'::jsonb END),
	   now() - make_interval(secs => $users - i), now() - make_interval(secs => $users - i)
FROM generate_series(1, $users) i;
RESET session_replication_role;
CREATE SEQUENCE bench_seq;
VACUUM ANALYZE;
SQL
echo "loaded in $(( $(date +%s) - t0 )) s"
auth=$(psql -Atc "SELECT auth::text FROM bench_env")
auth_sql=$(printf "%s" "$auth" | sed "s/'/''/g")

# pgbench: "tps latency_ms" of a script
run_pgbench() {
	local name=$1 c=$2 script=$3 mode=${4:-simple}
	printf '%s\n' "$script" >"$work/$name.sql"
	# warm-up, then the measured run
	"$bindir/pgbench" -n -M "$mode" -c "$c" -j "$c" -T 2 -f "$work/$name.sql" postgres >/dev/null 2>&1 || true
	"$bindir/pgbench" -n -M "$mode" -c "$c" -j "$c" -T "$secs" -f "$work/$name.sql" postgres >"$work/$name.out" 2>&1 || {
		cat "$work/$name.out" >&2
		return 1
	}
	local tps lat
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/$name.out")
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$work/$name.out")
	echo "$tps $lat"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
echo "== plans (what the filters run as) =="
psql -Atc "SELECT 'P2 predicate: ' || scim.filter_sql('userName eq \"u4242@example.com\"')"
psql -c "EXPLAIN (COSTS OFF) SELECT u FROM scim.users u WHERE u.workspace = 'default' AND $(psql -Atc "SELECT scim.filter_sql('userName eq \"u4242@example.com\"')")"
p3_filter='emails[type eq "work" and value co "@acme.example.com"] and active eq true'
p3_pred=$(psql -Atc "SELECT scim.filter_sql('$(printf '%s' "$p3_filter" | sed "s/'/''/g")')")
echo "P3 predicate: $p3_pred"
psql -c "EXPLAIN (COSTS OFF) SELECT count(*) FROM scim.users u WHERE u.workspace = 'default' AND ($p3_pred)"

echo
echo "== P2: GET /Users?filter=userName eq \"u<random>@example.com\" (1 client, ${secs}s each) =="
read -r p2_raw_tps p2_raw_lat < <(run_pgbench p2_raw 1 "\\set i random(1, $users)
SELECT u.* FROM scim.users u WHERE u.workspace = 'default' AND lower(u.user_name) = lower('u' || :i || '@example.com');")
read -r p2_prep_tps p2_prep_lat < <(run_pgbench p2_prep 1 "\\set i random(1, $users)
SELECT u.* FROM scim.users u WHERE u.workspace = 'default' AND lower(u.user_name) = lower('u' || :i || '@example.com');" prepared)
read -r p2_floor_tps p2_floor_lat < <(run_pgbench p2_floor 1 "\\set i random(1, $users)
SELECT u.*, scim.log_attempt('scim', 'GET', '/Users', u.id, u.user_name, 200, NULL, '1 of 1 result(s)', 'default')
FROM scim.users u WHERE u.workspace = 'default' AND lower(u.user_name) = lower('u' || :i || '@example.com');")
read -r p2_h_tps p2_h_lat < <(run_pgbench p2_handle 1 "\\set i random(1, $users)
SELECT h.status FROM scim.handle('GET', '/Users', 'filter=userName%20eq%20%22u' || :i || '%40example.com%22', '$auth_sql'::jsonb) h;")
read -r p2_r_tps p2_r_lat < <(PGOPTIONS="-c scim_provision.fast_path=off" run_pgbench p2_router 1 "\\set i random(1, $users)
SELECT h.status FROM scim.handle('GET', '/Users', 'filter=userName%20eq%20%22u' || :i || '%40example.com%22', '$auth_sql'::jsonb) h;")
printf '%-44s %10s tps %8s ms\n' "raw indexed SELECT (simple protocol)" "$p2_raw_tps" "$p2_raw_lat"
printf '%-44s %10s tps %8s ms\n' "raw indexed SELECT (prepared)" "$p2_prep_tps" "$p2_prep_lat"
printf '%-44s %10s tps %8s ms\n' "raw SELECT + its System Log row (the floor)" "$p2_floor_tps" "$p2_floor_lat"
printf '%-44s %10s tps %8s ms\n' "scim.handle GET (filter, render, log)" "$p2_h_tps" "$p2_h_lat"
printf '%-44s %10s tps %8s ms\n' "  the same through the PL/pgSQL router" "$p2_r_tps" "$p2_r_lat"
echo "P2 latency ratio handle / raw simple:   $(ratio "$p2_h_lat" "$p2_raw_lat")x   (goal <= 1.3x)"
echo "P2 latency ratio handle / raw prepared: $(ratio "$p2_h_lat" "$p2_prep_lat")x"
echo "P2 latency ratio floor / raw simple:    $(ratio "$p2_floor_lat" "$p2_raw_lat")x   (what every logged read costs at least)"
echo "P2 latency ratio handle / floor:        $(ratio "$p2_h_lat" "$p2_floor_lat")x"
echo "P2 latency ratio router / raw simple:   $(ratio "$p2_r_lat" "$p2_raw_lat")x   (scim_provision.fast_path = off, for comparison)"

echo
echo "== P3: GET /Users?filter=$p3_filter&count=100 (1 client, ${secs}s each) =="
read -r p3_raw_tps p3_raw_lat < <(run_pgbench p3_raw 1 "SELECT (SELECT count(*) FROM scim.users u
		 WHERE u.workspace = 'default' AND u.active
		   AND EXISTS (SELECT 1 FROM jsonb_array_elements(u.attributes -> 'emails') e
					   WHERE lower(e ->> 'type') = 'work' AND lower(e ->> 'value') LIKE '%@acme.example.com%')) AS total,
	   (SELECT array_agg(p.id) FROM (SELECT u.* FROM scim.users u
		 WHERE u.workspace = 'default' AND u.active
		   AND EXISTS (SELECT 1 FROM jsonb_array_elements(u.attributes -> 'emails') e
					   WHERE lower(e ->> 'type') = 'work' AND lower(e ->> 'value') LIKE '%@acme.example.com%')
		 ORDER BY u.created_at, u.id LIMIT 100) p) AS page;")
read -r p3_f_tps p3_f_lat < <(run_pgbench p3_filter_sql 1 "SELECT (SELECT count(*) FROM scim.users u WHERE u.workspace = 'default' AND ($p3_pred)) AS total,
	   (SELECT array_agg(p.id) FROM (SELECT u.* FROM scim.users u WHERE u.workspace = 'default' AND ($p3_pred)
		 ORDER BY u.created_at, u.id LIMIT 100) p) AS page;")
p3_query=$(printf '%s' "filter=$p3_filter&count=100" | sed 's/ /%20/g; s/"/%22/g; s/\[/%5B/g; s/\]/%5D/g; s/@/%40/g')
read -r p3_h_tps p3_h_lat < <(run_pgbench p3_handle 1 "SELECT h.status FROM scim.handle('GET', '/Users', '$p3_query', '$auth_sql'::jsonb) h;")
printf '%-44s %10s tps %8s ms\n' "hand-written SQL (total + 100 rows)" "$p3_raw_tps" "$p3_raw_lat"
printf '%-44s %10s tps %8s ms\n' "the same with scim.filter_sql's predicate" "$p3_f_tps" "$p3_f_lat"
printf '%-44s %10s tps %8s ms\n' "scim.handle GET (100 resources rendered)" "$p3_h_tps" "$p3_h_lat"
echo "P3 latency ratio handle / hand-written: $(ratio "$p3_h_lat" "$p3_raw_lat")x   (goal <= 1.5x)"
echo "P3 latency ratio filter_sql's SQL / hand-written: $(ratio "$p3_f_lat" "$p3_raw_lat")x;  handle / filter_sql's SQL: $(ratio "$p3_h_lat" "$p3_f_lat")x"
psql -Atc "SELECT 'P3 totalResults: ' || (body->>'totalResults') || ', itemsPerPage: ' || (body->>'itemsPerPage')
		   FROM scim.handle('GET', '/Users', '$p3_query', (SELECT auth FROM bench_env))"

echo
echo "== P4: POST /Users, $clients clients (${secs}s each) =="
read -r p4_raw_tps p4_raw_lat < <(run_pgbench p4_raw "$clients" "INSERT INTO scim.users (workspace, user_name, given_name, family_name, email, title, active, attributes)
SELECT 'default', 'r' || n || '@example.com', 'Given', 'Family', 'r' || n || '@example.com', 'Engineer', true,
	   jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('value', 'r' || n || '@example.com', 'type', 'work', 'primary', true)))
FROM nextval('bench_seq') n;")
read -r p4_h_tps p4_h_lat < <(run_pgbench p4_handle "$clients" "SELECT h.status FROM nextval('bench_seq') n,
	scim.handle('POST', '/Users', NULL, '$auth_sql'::jsonb,
		'{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"p' || n || '@example.com\",\"name\":{\"givenName\":\"Given\",\"familyName\":\"Family\"},\"title\":\"Engineer\",\"active\":true,\"emails\":[{\"value\":\"p' || n || '@example.com\",\"type\":\"work\",\"primary\":true}]}') h;")
printf '%-44s %10s tps %8s ms\n' "raw INSERT (same columns, same triggers)" "$p4_raw_tps" "$p4_raw_lat"
printf '%-44s %10s tps %8s ms\n' "scim.handle POST /Users" "$p4_h_tps" "$p4_h_lat"
echo "P4 throughput ratio handle / raw: $(ratio "$p4_h_tps" "$p4_raw_tps")x   (goal >= 0.5x)"
psql -Atc "SELECT 'P4 check: ' || count(*) FILTER (WHERE status = 201) || ' POSTs answered 201, ' || count(*) FILTER (WHERE status <> 201) || ' otherwise'
		   FROM scim.provisioning_log WHERE method = 'POST'"
