#!/usr/bin/env bash
# bench/bulk/run.sh - the cost of bulkId references in one POST /Bulk, and
# of refusing oversized requests, through scim.handle in a throwaway
# cluster (needs the extension installed: tools/build.sh).  Not part of CI;
# asserts nothing about timing.
#
#   chain      CHAIN (default 900) POST /Users in one /Bulk, operation i
#              referencing the user operation i + 1 creates ("bulkId:u<i+1>"
#              as its title), so every operation but the last waits on a
#              forward reference (0.2.0 ran one link per scan: 23 s for 900)
#   baseline   the same number of independent POST /Users in one /Bulk
#   refusals   a Group PATCH of 20,000 operations and one of 50,000 member
#              adds, refused by scim_provision.max_operations (413), against
#              a one-operation Group PATCH that is applied (max_body_size
#              is raised to 16 MiB here so that the count refuses them)
# Each is run ROUNDS times (default 3) in the same session; the best time is
# printed with the ratio to its baseline.
#
# Environment: BULK_BENCH_PORT (default 55475), CHAIN, ROUNDS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
port=${BULK_BENCH_PORT:-55475}
chain=${CHAIN:-900}
rounds=${ROUNDS:-3}
work=$(mktemp -d /tmp/bulk-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
	"$top/tools/cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# bodies up to 16 MiB, so that the operation count (not the body size)
# refuses the large PATCHes below
"$top/tools/cluster.sh" start "$work/pg" "$port" "log_min_messages = warning" \
	"scim_provision.max_body_size = 16777216" >/dev/null
export PGHOST=$work/pg PGPORT=$port PGUSER=postgres PGDATABASE=postgres
psql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

psql <<SQL
CREATE EXTENSION scim_provision CASCADE;
SELECT scim.approve_domain('example.com');
CREATE TABLE bench_env AS
	SELECT jsonb_build_object('authorization', 'Bearer ' || scim.create_token('bench')) AS auth;
-- one BulkRequest per round and kind; user names unique per round
CREATE FUNCTION bench_bulk(kind text, round integer, n integer) RETURNS text LANGUAGE sql AS \$\$
	SELECT jsonb_build_object('schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:BulkRequest'),
		'Operations', jsonb_agg(jsonb_build_object('method', 'POST', 'path', '/Users', 'bulkId', 'u' || i,
			'data', jsonb_build_object('userName', format('%s-%s-%s@example.com', kind, round, i),
									   'title', CASE WHEN kind = 'chain' AND i < n THEN 'bulkId:u' || (i + 1) ELSE 'T' END))
			ORDER BY i))::text
	FROM generate_series(1, n) i
\$\$;
INSERT INTO scim.groups (id, workspace, display_name) VALUES ('00000000-0000-0000-0000-0000000000b1', 'default', 'B');
CREATE TABLE bench_body (name text PRIMARY KEY, body text);
INSERT INTO bench_body VALUES
	('ops20000', jsonb_build_object('Operations', (SELECT jsonb_agg(jsonb_build_object('op', 'replace', 'path', 'displayName', 'value', 'N' || i))
												   FROM generate_series(1, 20000) i))::text),
	('members50000', jsonb_build_object('Operations', jsonb_build_array(jsonb_build_object('op', 'add', 'path', 'members', 'value',
		(SELECT jsonb_agg(jsonb_build_object('value', gen_random_uuid())) FROM generate_series(1, 50000) i))))::text),
	('one', '{"Operations":[{"op":"replace","path":"displayName","value":"B"}]}');
SQL

# best wall time in ms of one statement over the rounds, and its answer
timed() {
	# timed SQL-with-%ROUND%: prints "best_ms answer"
	local sql=$1 best="" ans="" r
	for ((r = 1; r <= rounds; r++)); do
		local out
		out=$(psql -At <<SQL
\\timing on
${sql//%ROUND%/$r}
SQL
)
		local ms
		ms=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | tail -1)
		ans=$(grep -v '^Time:' <<<"$out" | tail -1)
		if [ -z "$best" ] || awk -v a="$ms" -v b="$best" 'BEGIN {exit !(a < b)}'; then
			best=$ms
		fi
	done
	echo "$best $ans"
}

echo "== /Bulk: a chain of $chain forward references vs $chain independent operations (best of $rounds) =="
read -r base base_ans < <(timed "SELECT h.status || ':' || (SELECT count(*) FROM jsonb_array_elements(h.body -> 'Operations') o WHERE o ->> 'status' = '201') FROM bench_env e, scim.handle('POST', '/Bulk', NULL, e.auth, bench_bulk('base', %ROUND%, $chain)) h;")
read -r chained chain_ans < <(timed "SELECT h.status || ':' || (SELECT count(*) FROM jsonb_array_elements(h.body -> 'Operations') o WHERE o ->> 'status' = '201') FROM bench_env e, scim.handle('POST', '/Bulk', NULL, e.auth, bench_bulk('chain', %ROUND%, $chain)) h;")
resolved=$(psql -Atc "SELECT count(*) FROM scim.users a JOIN scim.users b ON a.title = b.id::text WHERE a.user_name LIKE 'chain-1-%'")
printf '%-52s %10s %s\n' "operation" "best ms" "status:created"
printf '%-52s %10s %s\n' "$chain independent POST /Users (baseline)" "$base" "$base_ans"
printf '%-52s %10s %s\n' "$chain POST /Users, each referencing the next" "$chained" "$chain_ans"
echo "references resolved to the next user's id: $resolved of $((chain - 1))"
awk -v b="$base" -v c="$chained" 'BEGIN {printf "chain/baseline: %.2fx (0.2.0: one scan per link, 23 s for 900)\n", c / b}'

echo
echo "== refused before cost: Group PATCH over scim_provision.max_operations (best of $rounds) =="
read -r one one_ans < <(timed "SELECT h.status FROM bench_env e, bench_body b, scim.handle('PATCH', '/Groups/00000000-0000-0000-0000-0000000000b1', NULL, e.auth, b.body) h WHERE b.name = 'one';")
read -r ops ops_ans < <(timed "SELECT h.status FROM bench_env e, bench_body b, scim.handle('PATCH', '/Groups/00000000-0000-0000-0000-0000000000b1', NULL, e.auth, b.body) h WHERE b.name = 'ops20000';")
read -r mem mem_ans < <(timed "SELECT h.status FROM bench_env e, bench_body b, scim.handle('PATCH', '/Groups/00000000-0000-0000-0000-0000000000b1', NULL, e.auth, b.body) h WHERE b.name = 'members50000';")
printf '%-52s %10s %s\n' "request" "best ms" "status"
printf '%-52s %10s %s\n' "PATCH, 1 operation (baseline, applied)" "$one" "$one_ans"
printf '%-52s %10s %s\n' "PATCH, 20,000 operations (refused)" "$ops" "$ops_ans"
printf '%-52s %10s %s\n' "PATCH, 1 add of 50,000 members (refused)" "$mem" "$mem_ans"
awk -v b="$one" -v o="$ops" -v m="$mem" 'BEGIN {printf "refusal/baseline: 20,000 operations %.1fx, 50,000 members %.1fx (0.2.0: 35-300 s and 8 s)\n", o / b, m / b}'
