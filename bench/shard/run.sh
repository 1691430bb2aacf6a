#!/usr/bin/env bash
# bench/shard/run.sh - the SCIM endpoint through the router
# (scim_provision_router, PL/Proxy) against the same request on the shard
# directly, in throwaway clusters on this machine, ratios taken in the same
# run.  Needs both extensions installed (tools/build.sh), plproxy and
# pgbench.  Not part of CI; asserts nothing about timing.
#
#   P7  GET /Users?filter=userName eq "<random user>", 1 client, a shard of
#       USERS users (default 1,000,000): PostgREST's transaction (set
#       request.headers, scim_api.dispatch(text) as deploy/ sends it) sent to
#       the router vs sent to the shard, alternating ROUNDS (default 3)
#       times; the median ratio is reported.  Goal: router latency <= 1.5x direct.  The
#       difference is the router's own cost per request (token parse,
#       PL/Proxy round trip over the Unix socket, dispatch_routed).
#   T1  the same request, CLIENTS clients (default 4), every request to a
#       workspace on shard 1: throughput with 1 shard.
#   T2  the same, requests split evenly between a workspace on shard 1 and
#       one on shard 2 (USERS2 users, default 200,000): throughput with 2
#       shards.  On a 2-core machine the shards and the router share the
#       cores, so T2 shows the routing works in parallel, not a scale-out.
#
# Environment: SHARD_BENCH_PORT (default 55553; uses it, +1 and +2), USERS,
# USERS2, SECONDS_PER_RUN (default 10), CLIENTS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
port=${SHARD_BENCH_PORT:-55553}
users=${USERS:-1000000}
users2=${USERS2:-200000}
secs=${SECONDS_PER_RUN:-10}
clients=${CLIENTS:-4}
work=$(mktemp -d /tmp/shard-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
	for c in s1 s2 router; do "$top/tools/cluster.sh" stop "$work/$c" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT

s1_port=$port; s2_port=$((port + 1)); r_port=$((port + 2))
"$top/tools/cluster.sh" start "$work/s1" "$s1_port" "log_min_messages = warning" "shared_buffers = 256MB" >/dev/null
"$top/tools/cluster.sh" start "$work/s2" "$s2_port" "log_min_messages = warning" "shared_buffers = 128MB" >/dev/null
"$top/tools/cluster.sh" start "$work/router" "$r_port" "log_min_messages = warning" >/dev/null
export PGUSER=postgres PGDATABASE=postgres
psql_at() { local dir=$1 p=$2; shift 2; PGHOST=$work/$dir PGPORT=$p "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

for s in "s1 $s1_port" "s2 $s2_port"; do
	set -- $s
	psql_at "$1" "$2" -c "CREATE EXTENSION scim_provision CASCADE" \
		-c "CREATE ROLE scim_router LOGIN" -c "GRANT scim_proxy TO scim_router" >/dev/null
done
psql_at router "$r_port" >/dev/null <<SQL
CREATE EXTENSION scim_provision_router CASCADE;
SELECT scim_router.create_cluster(ARRAY['host=$work/s1 port=$s1_port dbname=postgres',
										'host=$work/s2 port=$s2_port dbname=postgres'], 16);
SQL
# a workspace whose hash lands on each shard (even partitions: shard 1)
ws1=$(psql_at router "$r_port" -Atc "SELECT n FROM generate_series(1, 500) i, LATERAL (SELECT 'bench' || i AS n) x WHERE (hashtext(n) & 15) % 2 = 0 ORDER BY i LIMIT 1")
ws2=$(psql_at router "$r_port" -Atc "SELECT n FROM generate_series(1, 500) i, LATERAL (SELECT 'bench' || i AS n) x WHERE (hashtext(n) & 15) % 2 = 1 ORDER BY i LIMIT 1")
tok1=$(psql_at router "$r_port" -Atc "SELECT scim_router.create_workspace('$ws1'); SELECT scim_router.approve_domain('example.com', '$ws1'); SELECT scim_router.create_token('bench', '$ws1')" | tail -1)
tok2=$(psql_at router "$r_port" -Atc "SELECT scim_router.create_workspace('$ws2'); SELECT scim_router.approve_domain('example.com', '$ws2'); SELECT scim_router.create_token('bench', '$ws2')" | tail -1)

load() {
	local dir=$1 p=$2 ws=$3 n=$4
	psql_at "$dir" "$p" <<SQL
SET session_replication_role = replica;
INSERT INTO scim.users (workspace, user_name, given_name, family_name, email, user_type, active, billable,
						billable_since, attributes)
SELECT '$ws', format('u%s@example.com', i), 'Given' || i, 'Family' || i, format('u%s@example.com', i),
	   'Regular', true, true, now(),
	   jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('value', format('u%s@example.com', i), 'type', 'work', 'primary', true)))
FROM generate_series(1, $n) i;
RESET session_replication_role;
VACUUM ANALYZE scim.users;
SQL
}
echo "== setup: $users users in $ws1 on shard 1, $users2 in $ws2 on shard 2, 16 partitions =="
t0=$(date +%s)
load s1 "$s1_port" "$ws1" "$users"
load s2 "$s2_port" "$ws2" "$users2"
echo "loaded in $(( $(date +%s) - t0 )) s"
psql_at s1 "$s1_port" -Atc "SELECT 'shard 1: ' || pg_size_pretty(pg_total_relation_size('scim.users')) || ' for scim.users with its indexes, '
	|| pg_total_relation_size('scim.users') / $users || ' bytes per user'"
# the floor of a PL/Proxy call: a trivial query on the shard, nothing of ours
psql_at router "$r_port" -c "CREATE FUNCTION bench_ping(h integer) RETURNS integer LANGUAGE plproxy AS \$\$ CLUSTER 'scim_shards'; RUN ON h; SELECT 1 AS bench_ping; \$\$" >/dev/null
h1=$(psql_at router "$r_port" -Atc "SELECT hashtext('$ws1')")

# PostgREST's transaction for GET /Users?filter=userName eq "u<i>@example.com"
script() {
	local tok=$1 n=$2
	printf '%s\n' "\\set i random(1, $n)" \
		"BEGIN;" \
		"SELECT set_config('request.headers', '{\"x-scim-method\": \"GET\", \"x-scim-uri\": \"/scim/v2/Users?filter=userName%20eq%20%22u:i%40example.com%22\", \"x-scim-token\": \"Bearer $tok\", \"x-forwarded-host\": \"scim.example.com\"}', true);" \
		"SELECT scim_api.dispatch(''::text), current_setting('response.status', true);" \
		"END;"
}
script "$tok1" "$users" >"$work/p7_1.sql"
script "$tok2" "$users2" >"$work/p7_2.sql"

# sanity: the router answers 200 with one resource
check=$(PGHOST=$work/router PGPORT=$r_port "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 <<SQL
BEGIN;
SELECT set_config('request.headers', '{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users?filter=userName%20eq%20%22u42%40example.com%22", "x-scim-token": "Bearer $tok1"}', true) \gset
SELECT scim_api.dispatch(''::text) ->> 'totalResults' AS total \gset
SELECT current_setting('response.status', true) || ' ' || :'total';
END;
SQL
)
echo "check through the router: status and totalResults = $check"

# pgbench: "tps latency_ms"
run_pgbench() {
	local name=$1 dir=$2 p=$3 c=$4; shift 4
	PGHOST=$work/$dir PGPORT=$p "$bindir/pgbench" -n -c "$c" -j "$c" -T 2 "$@" postgres >/dev/null 2>&1 || true
	PGHOST=$work/$dir PGPORT=$p "$bindir/pgbench" -n -c "$c" -j "$c" -T "$secs" "$@" postgres >"$work/$name.out" 2>&1 || {
		cat "$work/$name.out" >&2
		return 1
	}
	local tps lat
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/$name.out")
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$work/$name.out")
	echo "$tps $lat"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

echo
echo "== P7: GET /Users?filter=userName eq (1 client, ${secs}s each) =="
# direct and router alternate, ROUNDS times: on a shared machine a single
# pair is at the mercy of whatever else runs; the median ratio is reported
ratios=()
for round in $(seq 1 "${ROUNDS:-3}"); do
	read -r d_tps d_lat < <(run_pgbench p7_direct s1 "$s1_port" 1 -f "$work/p7_1.sql")
	read -r r_tps r_lat < <(run_pgbench p7_router router "$r_port" 1 -f "$work/p7_1.sql")
	printf 'round %s: direct %8s ms, router %8s ms, ratio %sx\n' "$round" "$d_lat" "$r_lat" "$(ratio "$r_lat" "$d_lat")"
	ratios+=("$(ratio "$r_lat" "$d_lat")")
done
p7_median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
printf 'SELECT bench_ping(%s);\n' "$h1" >"$work/ping.sql"
printf 'SELECT 1;\n' >"$work/local.sql"
read -r f_tps f_lat < <(run_pgbench p7_ping router "$r_port" 1 -f "$work/ping.sql")
read -r l_tps l_lat < <(run_pgbench p7_local router "$r_port" 1 -f "$work/local.sql")
printf '%-48s %10s tps %8s ms\n' "on the shard directly (scim_api.dispatch)" "$d_tps" "$d_lat"
printf '%-48s %10s tps %8s ms\n' "through the router (PL/Proxy)" "$r_tps" "$r_lat"
echo "P7 latency ratio router / direct: median of ${#ratios[@]} rounds ${p7_median}x, last round $(ratio "$r_lat" "$d_lat")x   (goal <= 1.5x)"
printf '%-48s %10s tps %8s ms\n' "PL/Proxy floor: SELECT 1 on the shard via router" "$f_tps" "$f_lat"
printf '%-48s %10s tps %8s ms\n' "SELECT 1 on the router itself" "$l_tps" "$l_lat"
echo "router's own cost per request: $(diff_ms "$r_lat" "$d_lat") ms, of which the PL/Proxy hop (floor - local SELECT 1): $(diff_ms "$f_lat" "$l_lat") ms"

echo
echo "== T1/T2: throughput through the router, $clients clients (${secs}s each) =="
read -r t0_tps t0_lat < <(run_pgbench t_direct s1 "$s1_port" "$clients" -f "$work/p7_1.sql")
read -r t1_tps t1_lat < <(run_pgbench t1 router "$r_port" "$clients" -f "$work/p7_1.sql")
read -r t2_tps t2_lat < <(run_pgbench t2 router "$r_port" "$clients" -f "$work/p7_1.sql@1" -f "$work/p7_2.sql@1")
printf '%-48s %10s tps %8s ms\n' "shard 1 directly (no router)" "$t0_tps" "$t0_lat"
printf '%-48s %10s tps %8s ms\n' "T1: router, 1 shard" "$t1_tps" "$t1_lat"
printf '%-48s %10s tps %8s ms\n' "T2: router, 2 shards (half the requests each)" "$t2_tps" "$t2_lat"
echo "T1 throughput ratio router / direct: $(ratio "$t1_tps" "$t0_tps")x;  T2 / T1: $(ratio "$t2_tps" "$t1_tps")x   (shards and router share $(nproc) cores)"
