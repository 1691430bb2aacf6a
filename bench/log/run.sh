#!/usr/bin/env bash
# bench/log/run.sh - the System Log partitioned by day (#12) against the
# unpartitioned log of 0.2.0, in one throwaway cluster, ratios taken in the
# same run.  Two databases get the same users and the same System Log rows
# (LOG_ROWS spread over the last 90 days, 11 workspaces, 2% refusals):
#   v020  the current version with 0.2.0's log put back in place of the
#         partitioned one (one table, primary key (id), index (workspace,
#         at)), so that only the log differs, not the code
#   v030  the current version: 90 daily partitions (+ the week ahead)
# Measured:
#   P2  GET /Users?filter=userName eq "<random user>" through scim.handle
#       (the fast path, which writes its log row with a kept plan), 1 client.
#       Goal: v030 within 5% of v020.
#   P4  POST /Users through scim.handle, CLIENTS clients, against a raw INSERT
#       of the same columns in each database.  Goal: within 5% of v020.
#   E   scim.recent_errors(workspace, the last day) against the hand-written
#       query an expert writes on the same data and index, and the same
#       query on v020's table.  Goal: <= 1.2x the hand-written one.
#   D   dropping a day's partition of DROP_ROWS rows (the maintenance step
#       that drops an expired partition) while 4 clients send P2 requests:
#       the step's time, and the longest request latency during the run
#       against the same run without a drop.  Goal: the drop under a second,
#       no request waiting longer than scim_provision.log_lock_timeout
#       (100ms) beyond its usual latency.
# Not part of CI; asserts nothing about timing.  Needs the extension
# installed (tools/build.sh) and pgbench.
# Environment: LOG_BENCH_PORT (default 55545), USERS (default 100000),
# LOG_ROWS (default 10000000), DROP_ROWS (default 1000000), SECONDS_PER_RUN
# (default 10), CLIENTS (P4, default 8).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
port=${LOG_BENCH_PORT:-55545}
users=${USERS:-100000}
log_rows=${LOG_ROWS:-10000000}
drop_rows=${DROP_ROWS:-1000000}
secs=${SECONDS_PER_RUN:-10}
clients=${CLIENTS:-8}
work=$(mktemp -d /tmp/log-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
	"$top/tools/cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

"$top/tools/cluster.sh" start "$work/pg" "$port" "log_min_messages = warning" \
	"shared_buffers = 1GB" "max_connections = 50" "max_wal_size = 8GB" "checkpoint_timeout = 30min" \
	"scim_provision.log_maintenance_interval = 0" >/dev/null
export PGHOST=$work/pg PGPORT=$port PGUSER=postgres
psql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

# the same users and log rows in both databases
setup_db() {
	local db=$1 version=$2
	psql -d postgres -c "CREATE DATABASE $db"
	psql -d "$db" <<SQL
CREATE EXTENSION pg_trgm;
CREATE EXTENSION scim_provision $version;
SELECT scim.approve_domain('example.com', include_subdomains => true);
CREATE TABLE bench_env AS
	SELECT jsonb_build_object('authorization', 'Bearer ' || scim.create_token('bench')) AS auth;
SET session_replication_role = replica;
INSERT INTO scim.users (workspace, user_name, given_name, family_name, email, user_type, active, billable,
						billable_since, attributes)
SELECT 'default', format('u%s@example.com', i), 'Given' || i, 'Family' || i, format('u%s@example.com', i),
	   'Regular', true, true, now(),
	   jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('value', format('u%s@example.com', i),
																		  'type', 'work', 'primary', true)))
FROM generate_series(1, $users) i;
RESET session_replication_role;
INSERT INTO scim.workspaces (name) SELECT 'w' || i FROM generate_series(1, 10) i;
SQL
	if [ "$db" = "v020" ]; then
		# the same code with 0.2.0's log: one table, its primary key (id) and
		# its (workspace, at) index, no request id, under the log's name
		psql -d "$db" <<SQL
CREATE TABLE scim.provisioning_log_flat (LIKE scim.provisioning_log INCLUDING DEFAULTS, PRIMARY KEY (id));
CREATE INDEX ON scim.provisioning_log_flat (workspace, at);
ALTER TABLE scim.provisioning_log_flat ALTER COLUMN request_id DROP DEFAULT;
ALTER TABLE scim.provisioning_log RENAME TO provisioning_log_partitioned;
ALTER TABLE scim.provisioning_log_flat RENAME TO provisioning_log;
SQL
	else
		# the partitions of the last 90 days and the week ahead
		psql -d "$db" -c "SELECT count(*) FROM generate_series(now() - interval '90 days', now(), interval '1 day') d,
							  scim._log_create_partitions(d, 'day')" -c "SELECT scim.log_maintain_step()" >/dev/null
	fi
	psql -d "$db" <<SQL
-- $log_rows rows over the last 90 days: 11 workspaces, 2% refusals
INSERT INTO scim.provisioning_log (at, workspace, source, method, path, user_name, status, scim_type, detail)
SELECT now() - (i % 90) * interval '1 day' - (i % 86311) * interval '1 second',
	   CASE WHEN i % 11 = 0 THEN 'default' ELSE 'w' || (i % 11) END,
	   'scim', CASE WHEN i % 3 = 0 THEN 'POST' ELSE 'GET' END, '/Users', format('u%s@example.com', i % $users),
	   CASE WHEN i % 47 = 7 THEN 400 ELSE 200 END,
	   CASE WHEN i % 47 = 7 THEN 'invalidValue' END,
	   CASE WHEN i % 47 = 7 THEN 'the userName is not in an approved domain' ELSE '1 of 1 result(s)' END
FROM generate_series(1, $log_rows) i;
CREATE SEQUENCE bench_seq;
VACUUM ANALYZE;
SQL
}

echo "== setup: $users users and $log_rows log rows over 90 days, in v020 (one table) and v030 (partitioned) =="
t0=$(date +%s)
setup_db v020 ""
echo "v020 loaded in $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
setup_db v030 ""
echo "v030 loaded in $(( $(date +%s) - t0 )) s"
psql -d v030 -Atc "SELECT 'v030: ' || count(*) || ' dated partitions, ' || pg_size_pretty(sum(pg_total_relation_size(partition))) FROM scim.log_partitions()"
psql -d v020 -Atc "SELECT 'v020: one table, ' || pg_size_pretty(pg_total_relation_size('scim.provisioning_log'))"

# pgbench: "tps latency_ms" of a script in a database
run_pgbench() {
	local db=$1 name=$2 c=$3 script=$4
	printf '%s\n' "$script" >"$work/$name.sql"
	"$bindir/pgbench" -n -c "$c" -j "$c" -T 2 -f "$work/$name.sql" "$db" >/dev/null 2>&1 || true
	"$bindir/pgbench" -n -c "$c" -j "$c" -T "$secs" -f "$work/$name.sql" "$db" >"$work/$name.out" 2>&1 || {
		cat "$work/$name.out" >&2
		return 1
	}
	local tps lat
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/$name.out")
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$work/$name.out")
	echo "$tps $lat"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
auth_of() { psql -d "$1" -Atc "SELECT auth::text FROM bench_env" | sed "s/'/''/g"; }
a020=$(auth_of v020)
a030=$(auth_of v030)
p2() { printf '%s' "\\set i random(1, $users)
SELECT h.status FROM scim.handle('GET', '/Users', 'filter=userName%20eq%20%22u' || :i || '%40example.com%22', '$1'::jsonb) h;"; }
p4() { printf '%s' "SELECT h.status FROM nextval('bench_seq') n,
	scim.handle('POST', '/Users', NULL, '$1'::jsonb,
		'{\"userName\":\"p' || n || '@example.com\",\"name\":{\"givenName\":\"Given\",\"familyName\":\"Family\"},\"title\":\"Engineer\",\"active\":true,\"emails\":[{\"value\":\"p' || n || '@example.com\",\"type\":\"work\",\"primary\":true}]}') h;"; }
p4_raw="INSERT INTO scim.users (workspace, user_name, given_name, family_name, email, title, active, attributes)
SELECT 'default', 'r' || n || '@example.com', 'Given', 'Family', 'r' || n || '@example.com', 'Engineer', true,
	   jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('value', 'r' || n || '@example.com', 'type', 'work', 'primary', true)))
FROM nextval('bench_seq') n;"

echo
echo "== P2: GET /Users?filter=userName eq (fast path), 1 client, ${secs}s each, 5 runs each, alternated =="
p2_020_all=""
p2_030_all=""
for run in 1 2 3 4 5; do
	read -r _ lat < <(run_pgbench v020 "p2_v020_$run" 1 "$(p2 "$a020")")
	p2_020_all="$p2_020_all $lat"
	read -r _ lat < <(run_pgbench v030 "p2_v030_$run" 1 "$(p2 "$a030")")
	p2_030_all="$p2_030_all $lat"
done
median() { printf '%s\n' $@ | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
p2_020=$(median $p2_020_all)
p2_030=$(median $p2_030_all)
printf '%-44s %s ms (median %s ms)\n' "v020 scim.handle GET (unpartitioned log)" "$p2_020_all" "$p2_020"
printf '%-44s %s ms (median %s ms)\n' "v030 scim.handle GET (partitioned log)" "$p2_030_all" "$p2_030"
echo "P2 latency ratio v030 / v020 (medians): $(ratio "$p2_030" "$p2_020")x   (goal <= 1.05x)"

echo
echo "== P4: POST /Users, $clients clients, ${secs}s each =="
read -r r020_tps r020_lat < <(run_pgbench v020 p4_raw_v020 "$clients" "$p4_raw")
read -r h020_tps h020_lat < <(run_pgbench v020 p4_v020 "$clients" "$(p4 "$a020")")
read -r r030_tps r030_lat < <(run_pgbench v030 p4_raw_v030 "$clients" "$p4_raw")
read -r h030_tps h030_lat < <(run_pgbench v030 p4_v030 "$clients" "$(p4 "$a030")")
printf '%-44s %10s tps\n' "v020 raw INSERT" "$r020_tps" "v020 scim.handle POST" "$h020_tps" \
	"v030 raw INSERT" "$r030_tps" "v030 scim.handle POST" "$h030_tps"
q020=$(ratio "$h020_tps" "$r020_tps")
q030=$(ratio "$h030_tps" "$r030_tps")
echo "P4 handle / raw INSERT: v020 ${q020}x, v030 ${q030}x"
echo "P4 ratio v030 / v020 (each against its own raw INSERT): $(ratio "$q030" "$q020")x   (goal >= 0.95x)"
echo "P4 throughput v030 / v020 (direct): $(ratio "$h030_tps" "$h020_tps")x"

echo
echo "== E: refusals of one workspace over the last day, 1 client, ${secs}s each =="
# the hand-written query an expert writes: the time as a literal, so that
# the planner prunes the partitions it cannot reach (with now() - interval
# '1 day' every partition is planned, then pruned at run time)
since=$(psql -d v030 -Atc "SELECT now() - interval '1 day'")
until=$(psql -d v030 -Atc "SELECT now() + interval '1 day'")
hand="SELECT l.at, l.id, l.request_id, l.source::text, l.method, l.path, l.status, l.scim_type, l.user_name, l.detail
FROM scim.provisioning_log l WHERE l.workspace = 'w3' AND l.at >= '$since' AND l.status >= 400 ORDER BY l.at DESC;"
psql -d v030 -Atc "SELECT 'rows: ' || count(*) FROM scim.recent_errors('w3')"
psql -d v030 -c "EXPLAIN (COSTS OFF) $hand"
read -r e_f_tps e_f_lat < <(run_pgbench v030 e_fn 1 "SELECT * FROM scim.recent_errors('w3');")
read -r e_h_tps e_h_lat < <(run_pgbench v030 e_hand 1 "$hand")
read -r e_n_tps e_n_lat < <(run_pgbench v030 e_now 1 "$(printf '%s' "$hand" | sed "s/'$since'/now() - interval '1 day'/")")
read -r e_u_tps e_u_lat < <(run_pgbench v030 e_upper 1 "$(printf '%s' "$hand" | sed "s/>= '$since'/>= '$since' AND l.at < '$until'/")")
read -r e_o_tps e_o_lat < <(run_pgbench v020 e_v020 1 "$(printf '%s' "$hand" | sed 's/l.request_id/NULL::text/')")
printf '%-52s %8s ms\n' "v030 scim.recent_errors('w3') (since: the last day)" "$e_f_lat" \
	"v030 hand-written query, time as a literal" "$e_h_lat" \
	"v030 hand-written query with now() - interval '1 day'" "$e_n_lat" \
	"v030 hand-written query, literal, bounded above too" "$e_u_lat" \
	"v020 the hand-written query on the one table" "$e_o_lat"
echo "E latency ratio recent_errors / hand-written: $(ratio "$e_f_lat" "$e_h_lat")x   (goal <= 1.2x)"
echo "E latency ratio recent_errors / hand-written bounded above: $(ratio "$e_f_lat" "$e_u_lat")x"

echo
echo "== D: dropping a day's partition of $drop_rows rows while 4 clients send P2 =="
psql -d v030 -c "SELECT scim._log_create_partitions(now() - interval '120 days', 'day')" >/dev/null
psql -d v030 -c "INSERT INTO scim.provisioning_log (at, workspace, source, method, path, status)
	SELECT date_trunc('day', now() - interval '120 days', 'UTC') + (i % 86000) * interval '1 second', 'w' || (i % 10 + 1),
		   'scim', 'GET', '/Users', 200 FROM generate_series(1, $drop_rows) i" -c "CHECKPOINT"
psql -d v030 -Atc "SELECT 'partition to drop: ' || partition || ', ' || pg_size_pretty(pg_total_relation_size(partition))
				   FROM scim.log_partitions() WHERE lower_bound < now() - interval '100 days'"
printf '%s\n' "$(p2 "$a030")" >"$work/d.sql"
max_latency() {	# the longest transaction in pgbench's per-transaction logs, ms
	awk '{ if ($3 > m) m = $3 } END { printf "%.1f", m / 1000 }' "$@"
}
(cd "$work" && "$bindir/pgbench" -n -c 4 -j 4 -T 6 -l --log-prefix=nodrop -f d.sql v030 >/dev/null 2>&1)
(cd "$work" && "$bindir/pgbench" -n -c 4 -j 4 -T 6 -l --log-prefix=drop -f d.sql v030 >/dev/null 2>&1) &
bench_pid=$!
sleep 2
t0=$(date +%s%N)
did=$(psql -d v030 -Atc "SELECT scim.log_maintain_step()")
t1=$(date +%s%N)
wait $bench_pid
echo "maintenance step: $did in $(( (t1 - t0) / 1000000 )) ms (psql round trip included)"
echo "longest P2 request without a drop: $(max_latency "$work"/nodrop.*) ms; during the run with the drop: $(max_latency "$work"/drop.*) ms"
