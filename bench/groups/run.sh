#!/usr/bin/env bash
# bench/groups/run.sh - group membership and /Bulk throughput through
# scim.handle, in a throwaway cluster (needs the extension installed:
# tools/build.sh).  Not part of CI; asserts nothing about timing.
#
#   P6  adding one member to a 100,000-member group vs to a 10-member group:
#       PATCH {"op":"add","path":"members",...} of a user not yet in the
#       group, one request per transaction (pgbench, one client), the same
#       number of requests for both groups; the ratio of mean latencies
#       (goal: <= 2x).  Entra's remove with a value list is measured the
#       same way, and GET of the big group with and without
#       excludedAttributes=members for scale.
#   Bulk  1,000 user creations in one POST /Bulk vs 1,000 single POST /Users
#       requests (one per transaction, pgbench); users per second each.
#
# Environment: GROUPS_BENCH_PORT (default 55472), BIG_MEMBERS (default
# 100000), BENCH_REQUESTS (membership requests per group, default 1000),
# BULK_USERS (default 1000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
port=${GROUPS_BENCH_PORT:-55472}
big=${BIG_MEMBERS:-100000}
requests=${BENCH_REQUESTS:-1000}
bulk=${BULK_USERS:-1000}
work=$(mktemp -d /tmp/groups-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
	"$top/tools/cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

"$top/tools/cluster.sh" start "$work/pg" "$port" "log_min_messages = warning" >/dev/null
export PGHOST=$work/pg PGPORT=$port PGUSER=postgres PGDATABASE=postgres
psql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

echo "== setup: $big + 10 members, a pool of $((4 * requests)) users to add =="
psql <<SQL
CREATE EXTENSION scim_provision CASCADE;
SELECT scim.approve_domain('example.com');
CREATE TABLE bench_env AS
	SELECT jsonb_build_object('authorization', 'Bearer ' || scim.create_token('bench')) AS auth;
INSERT INTO scim.users (workspace, user_name)
SELECT 'default', format('m%s@example.com', i) FROM generate_series(1, $big + 10) i;
INSERT INTO scim.groups (id, workspace, display_name) VALUES
	('00000000-0000-0000-0000-00000000b160', 'default', 'Big'),
	('00000000-0000-0000-0000-00000000511a', 'default', 'Small');
INSERT INTO scim.group_members (group_id, member_id)
SELECT '00000000-0000-0000-0000-00000000b160', id FROM scim.users WHERE user_name LIKE 'm%' ORDER BY user_name LIMIT $big;
INSERT INTO scim.group_members (group_id, member_id)
SELECT '00000000-0000-0000-0000-00000000511a', id FROM scim.users WHERE user_name LIKE 'm%' ORDER BY user_name DESC LIMIT 10;
-- users to add: pool n = 1 .. 2r for the big group, 2r + 1 .. 4r for the small one
CREATE TABLE bench_pool (n integer PRIMARY KEY, id uuid NOT NULL);
WITH ins AS (
	INSERT INTO scim.users (workspace, user_name)
	SELECT 'default', format('p%s@example.com', i) FROM generate_series(1, 4 * $requests) i
	RETURNING id, user_name)
INSERT INTO bench_pool SELECT substr(split_part(user_name, '@', 1), 2)::integer, id FROM ins;
CREATE SEQUENCE bench_big_seq;
CREATE SEQUENCE bench_small_seq START $((2 * requests + 1));
CREATE SEQUENCE bench_user_seq;
VACUUM ANALYZE;
SQL
psql -Atc "SELECT g.display_name || ': ' || count(*) || ' members' FROM scim.groups g JOIN scim.group_members m ON m.group_id = g.id GROUP BY g.display_name ORDER BY 1"

# pgbench: mean latency in ms of a one-statement script, one client
run_pgbench() {
	local name=$1 sql=$2 n=$3
	printf '%s\n' "$sql" >"$work/$name.sql"
	"$bindir/pgbench" -n -c 1 -t "$n" -f "$work/$name.sql" postgres >"$work/$name.out" 2>&1 || {
		cat "$work/$name.out" >&2
		return 1
	}
	sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$work/$name.out"
}

patch_add() {
	# $1 group id, $2 sequence
	echo "SELECT h.status FROM bench_env e, scim.handle('PATCH', '/Groups/$1', NULL, e.auth, format('{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":[{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"%s\"}]}]}', (SELECT p.id FROM bench_pool p WHERE p.n = (SELECT nextval('$2'))))) h;"
}
patch_remove() {
	echo "SELECT h.status FROM bench_env e, scim.handle('PATCH', '/Groups/$1', NULL, e.auth, format('{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":[{\"op\":\"Remove\",\"path\":\"members\",\"value\":[{\"value\":\"%s\"}]}]}', (SELECT p.id FROM bench_pool p WHERE p.n = (SELECT nextval('$2'))))) h;"
}
BIG=00000000-0000-0000-0000-00000000b160
SMALL=00000000-0000-0000-0000-00000000511a

echo
echo "== P6: PATCH add one member (about $requests requests per group, one per transaction, interleaved) =="
# Both groups' requests run interleaved at random in one pgbench session
# (one backend: same caches and plans), each script timed on its own.
run_pair() {
	# run_pair NAME SQL_SMALL SQL_BIG: mean latencies "small big" in ms
	local name=$1
	printf '%s\n' "$2" >"$work/${name}_small.sql"
	printf '%s\n' "$3" >"$work/${name}_big.sql"
	"$bindir/pgbench" -n -c 1 -t "$((2 * requests))" -f "$work/${name}_small.sql" -f "$work/${name}_big.sql" postgres \
		>"$work/$name.out" 2>&1 || {
		cat "$work/$name.out" >&2
		return 1
	}
	sed -n 's/^ - latency average = \([0-9.]*\) ms$/\1/p' "$work/$name.out" | tr '\n' ' '; echo
}
reset_pool() {
	psql -c "SELECT setval('bench_big_seq', 1, false), setval('bench_small_seq', $((2 * requests + 1)), false)" >/dev/null
}
# warm-up round (adds, then removes the same users), then the measured round
for round in warm-up measured; do
	reset_pool
	read -r small_add big_add < <(run_pair add "$(patch_add $SMALL bench_small_seq)" "$(patch_add $BIG bench_big_seq)")
	reset_pool
	read -r small_rm big_rm < <(run_pair rm "$(patch_remove $SMALL bench_small_seq)" "$(patch_remove $BIG bench_big_seq)")
done
psql -Atc "SELECT 'statuses: ' || string_agg(status || ' x' || n, ', ') FROM (SELECT status, count(*) n FROM scim.provisioning_log WHERE method = 'PATCH' GROUP BY status) s"
printf '%-44s %12s\n' request "mean ms"
printf '%-44s %12s\n' "add 1 member, 10-member group" "$small_add"
printf '%-44s %12s\n' "add 1 member, $big-member group" "$big_add"
printf '%-44s %12s\n' "Entra remove 1 member, 10-member group" "$small_rm"
printf '%-44s %12s\n' "Entra remove 1 member, $big-member group" "$big_rm"
awk -v s="$small_add" -v b="$big_add" 'BEGIN {printf "P6 add ratio big/small: %.2fx (goal <= 2x)\n", b / s}'
awk -v s="$small_rm" -v b="$big_rm" 'BEGIN {printf "remove ratio big/small: %.2fx\n", b / s}'

echo
echo "== reading the big group (for scale: rendering members is O(group)) =="
get_ex=$(run_pgbench get_ex "SELECT h.status FROM bench_env e, scim.handle('GET', '/Groups/$BIG', 'excludedAttributes=members', e.auth) h;" 50)
get_all=$(run_pgbench get_all "SELECT h.status FROM bench_env e, scim.handle('GET', '/Groups/$BIG', NULL, e.auth) h;" 5)
printf '%-44s %12s\n' "GET, excludedAttributes=members" "$get_ex"
printf '%-44s %12s\n' "GET with $big members" "$get_all"

echo
echo "== /Bulk: $bulk user creations in one request vs $bulk single POSTs =="
single=$(run_pgbench single "SELECT h.status FROM bench_env e, scim.handle('POST', '/Users', NULL, e.auth, format('{\"userName\":\"s%s@example.com\",\"name\":{\"givenName\":\"S\",\"familyName\":\"User\"}}', nextval('bench_user_seq'))) h;" "$bulk")
psql <<SQL
CREATE FUNCTION bench_bulk(n integer) RETURNS TABLE (seconds float8, ok bigint) LANGUAGE plpgsql AS \$\$
DECLARE
	body text;
	t0 timestamptz;
	res jsonb;
BEGIN
	body := jsonb_build_object('schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:BulkRequest'),
		'Operations', (SELECT jsonb_agg(jsonb_build_object('method', 'POST', 'path', '/Users', 'bulkId', 'b' || i,
			'data', jsonb_build_object('userName', format('b%s@example.com', i),
									   'name', jsonb_build_object('givenName', 'B', 'familyName', 'User'))))
			FROM generate_series(1, n) i))::text;
	t0 := clock_timestamp();
	SELECT h.body INTO res FROM bench_env e, scim.handle('POST', '/Bulk', NULL, e.auth, body) h;
	seconds := extract(epoch FROM clock_timestamp() - t0);
	SELECT count(*) INTO ok FROM jsonb_array_elements(res -> 'Operations') o WHERE o ->> 'status' = '201';
	RETURN NEXT;
END;
\$\$;
SQL
read -r bulk_s bulk_ok < <(psql -AtF' ' -c "SELECT seconds, ok FROM bench_bulk($bulk)")
single_created=$(psql -Atc "SELECT count(*) FROM scim.users WHERE user_name LIKE 's%@example.com'")
printf '%-44s %12s %10s\n' request "users/s" created
awk -v ms="$single" -v n="$single_created" 'BEGIN {printf "%-44s %12.0f %10d\n", "single POST /Users (one per transaction)", 1000 / ms, n}'
awk -v s="$bulk_s" -v n="$bulk" -v ok="$bulk_ok" 'BEGIN {printf "%-44s %12.0f %10d\n", "POST /Bulk with " n " operations", n / s, ok}'
awk -v s="$bulk_s" -v n="$bulk" -v ms="$single" 'BEGIN {printf "Bulk / single: %.2fx\n", (n / s) / (1000 / ms)}'
