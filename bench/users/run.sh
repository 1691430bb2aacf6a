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
#   P4w the write cost of the search structures of 0.3.0 (users_search_text_idx,
#       the element_keys column, users_workspace_updated_idx, the user_counts
#       triggers): POST /Users with
#       them and with them dropped/disabled, alternating ROUNDS times in a
#       second database of P4W_USERS users.  Goal: within 5%.
#   S   a corpus of filters IdPs and data teams send (Okta, Entra ID,
#       OneLogin lookups, co/sw/ew on userName/emails/names, value paths,
#       meta.lastModified, active, groups by member), each through
#       scim.handle (count=100) vs the hand-written SQL an expert would use
#       for the same total and the same 100 rows as JSON, with indexes of
#       their own (bench_* below, created after P4; a stored column of email
#       keys), the faster of two query shapes, and JIT off (scim.handle's
#       list functions pin jit = off: these are OLTP queries).  Goal: <= 1.5x for
#       every filter matching <= 1% of the users.  P3 is also shown with
#       scim_provision.search_index = off (the 0.2.0 predicate).
#   D   deep paging: PAGES pages of 100 (default: all users) read with
#       startIndex (bookmarks) vs RFC 9865 cursors, and one page at
#       startIndex = users - 99,999 cold (OFFSET) vs bookmarked.
#       Goal: startIndex total <= 1.5x cursors.
#
# Every scim.handle request also authenticates its token and writes its
# System Log row, in the same transaction; the raw baselines do neither.
# Environment: USERS_BENCH_PORT (default 55440), USERS (default 1000000),
# SECONDS_PER_RUN (default 10), CLIENTS (P4, default 8), CORPUS_SECONDS
# (default 3), PAGES (D, default users/100), SKIP (comma list of P2,P3,P4,S,D).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
port=${USERS_BENCH_PORT:-55440}
users=${USERS:-1000000}
secs=${SECONDS_PER_RUN:-10}
clients=${CLIENTS:-8}
corpus_secs=${CORPUS_SECONDS:-3}
pages=${PAGES:-$(( ${USERS:-1000000} / 100 ))}
skip=",${SKIP:-},"
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
INSERT INTO scim.users (workspace, user_name, external_id, given_name, family_name, display_name, email, user_type, active, billable,
						billable_since, deactivated_at, attributes, created_at, updated_at)
SELECT 'default', format('u%s@example.com', i), 'ext-' || i, 'Given' || i, 'Family' || i, format('Given%s Family%s', i, i),
	   format('u%s@example.com', i),
	   'Regular', i % 10 <> 0, i % 10 <> 0, now(), CASE WHEN i % 10 = 0 THEN now() END,
	   jsonb_build_object('emails',
		   jsonb_build_array(jsonb_build_object('value', format('u%s@example.com', i), 'type', 'work', 'primary', true))
		   || CASE WHEN i % 100 = 1
				   THEN jsonb_build_array(jsonb_build_object('value', format('u%s@acme.example.com', i), 'type', 'work'))
				   ELSE '[]'::jsonb END)
		   || CASE WHEN i % 10 = 0 THEN jsonb_build_object('phoneNumbers', jsonb_build_array(
				   jsonb_build_object('value', format('+1 555 %s', i), 'type', 'mobile'))) ELSE '{}'::jsonb END,
	   now() - make_interval(secs => $users - i), now() - make_interval(secs => $users - i)
FROM generate_series(1, $users) i;
RESET session_replication_role;
-- 1000 groups of 100 members each (groups by member)
INSERT INTO scim.groups (workspace, display_name) SELECT 'default', 'Team ' || g FROM generate_series(1, 1000) g;
INSERT INTO scim.group_members (group_id, member_id)
SELECT g.id, u.id FROM scim.groups g
  CROSS JOIN LATERAL generate_series((substr(g.display_name, 6)::int - 1) * 100 + 1, substr(g.display_name, 6)::int * 100) i
  JOIN scim.users u ON u.workspace = 'default' AND u.external_id = 'ext-' || i
 WHERE g.workspace = 'default';
CREATE SEQUENCE bench_seq;
VACUUM ANALYZE;
SQL
echo "loaded in $(( $(date +%s) - t0 )) s"
psql -Atc "SELECT format('storage: %s MB for scim.users with its indexes, %s bytes per user (%s MB of it users_search_text_idx)',
				 pg_total_relation_size('scim.users') / 1048576, pg_total_relation_size('scim.users') / count(*),
				 pg_relation_size('scim.users_search_text_idx') / 1048576) FROM scim.users"
auth=$(psql -Atc "SELECT auth::text FROM bench_env")
auth_sql=$(printf "%s" "$auth" | sed "s/'/''/g")

# pgbench: "tps latency_ms" of a script
run_pgbench() {
	local name=$1 c=$2 script=$3 mode=${4:-simple}
	printf '%s\n' "$script" >"$work/$name.sql"
	# warm-up, then the measured run
	"$bindir/pgbench" -n -M "$mode" -c "$c" -j "$c" -T "${WARM:-2}" -f "$work/$name.sql" "${PGDATABASE:-postgres}" >/dev/null 2>&1 || true
	"$bindir/pgbench" -n -M "$mode" -c "$c" -j "$c" -T "${SECS:-$secs}" -f "$work/$name.sql" "${PGDATABASE:-postgres}" >"$work/$name.out" 2>&1 || {
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

if [[ $skip != *,P2,* ]]; then
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

fi

if [[ $skip != *,P3,* ]]; then
echo
echo "== P3: GET /Users?filter=$p3_filter&count=100 (1 client, ${secs}s each) =="
read -r p3_raw_tps p3_raw_lat < <(PGOPTIONS="-c jit=off" run_pgbench p3_raw 1 "SELECT (SELECT count(*) FROM scim.users u
		 WHERE u.workspace = 'default' AND u.active
		   AND EXISTS (SELECT 1 FROM jsonb_array_elements(u.attributes -> 'emails') e
					   WHERE lower(e ->> 'type') = 'work' AND lower(e ->> 'value') LIKE '%@acme.example.com%')) AS total,
	   (SELECT array_agg(p.id) FROM (SELECT u.* FROM scim.users u
		 WHERE u.workspace = 'default' AND u.active
		   AND EXISTS (SELECT 1 FROM jsonb_array_elements(u.attributes -> 'emails') e
					   WHERE lower(e ->> 'type') = 'work' AND lower(e ->> 'value') LIKE '%@acme.example.com%')
		 ORDER BY u.created_at, u.id LIMIT 100) p) AS page;")
read -r p3_f_tps p3_f_lat < <(PGOPTIONS="-c jit=off" run_pgbench p3_filter_sql 1 "SELECT (SELECT count(*) FROM scim.users u WHERE u.workspace = 'default' AND ($p3_pred)) AS total,
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

fi

if [[ $skip != *,P4,* ]]; then
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
fi

# P4w runs in a second database of P4W_USERS users (default 100,000), where
# dropping and rebuilding the index takes seconds, so that the two layouts
# alternate ROUNDS times (the machine is shared: one pair of runs says little).
p4w_users=${P4W_USERS:-100000}
rounds=${ROUNDS:-4}
if [[ $skip != *,P4,* ]]; then
	echo
	echo "== P4w: POST /Users, $clients clients, with and without the search structures of 0.3.0 ($p4w_users users, $rounds rounds of ${secs}s each) =="
	psql -c "CREATE DATABASE p4w" >/dev/null
	psql -d p4w >/dev/null <<SQL
CREATE EXTENSION scim_provision CASCADE;
SELECT scim.approve_domain('example.com', include_subdomains => true);
CREATE TABLE bench_env AS SELECT jsonb_build_object('authorization', 'Bearer ' || scim.create_token('bench')) AS auth;
CREATE SEQUENCE bench_seq;
SET session_replication_role = replica;
INSERT INTO scim.users (workspace, user_name, external_id, given_name, family_name, display_name, email, user_type, attributes)
SELECT 'default', format('u%s@example.com', i), 'ext-' || i, 'Given' || i, 'Family' || i, format('Given%s Family%s', i, i),
	   format('u%s@example.com', i), 'Regular',
	   jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('value', format('u%s@example.com', i), 'type', 'work', 'primary', true)))
FROM generate_series(1, $p4w_users) i;
RESET session_replication_role;
VACUUM ANALYZE;
SQL
	w_auth=$(psql -d p4w -Atc "SELECT auth::text FROM bench_env" | sed "s/'/''/g")
	p4_post="SELECT h.status FROM nextval('bench_seq') n,
	scim.handle('POST', '/Users', NULL, '$w_auth'::jsonb,
		'{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"w' || n || '@example.com\",\"name\":{\"givenName\":\"Given\",\"familyName\":\"Family\"},\"title\":\"Engineer\",\"active\":true,\"emails\":[{\"value\":\"w' || n || '@example.com\",\"type\":\"work\",\"primary\":true}]}') h;"
	search_structures() {	# on | off
		if [ "$1" = off ]; then
			psql -d p4w -c "DROP INDEX scim.users_search_text_idx; DROP INDEX scim.users_workspace_updated_idx;
					 ALTER TABLE scim.users DROP COLUMN element_keys;
					 ALTER TABLE scim.users DISABLE TRIGGER users_count_insert, DISABLE TRIGGER users_count_delete,
						DISABLE TRIGGER users_count_move, DISABLE TRIGGER users_count_truncate;" >/dev/null
		else
			psql -d p4w >/dev/null <<SQL
ALTER TABLE scim.users ADD COLUMN element_keys tsvector GENERATED ALWAYS AS (scim.element_keys(attributes)) STORED;
DO \$\$ BEGIN
	EXECUTE format('CREATE INDEX users_search_text_idx ON scim.users USING gin (lower(given_name) %1\$I.gin_trgm_ops, lower(family_name) %1\$I.gin_trgm_ops, '
				   'lower(display_name) %1\$I.gin_trgm_ops, scim.search_text(attributes) %1\$I.gin_trgm_ops, element_keys)',
				   (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'));
END \$\$;
CREATE INDEX users_workspace_updated_idx ON scim.users (workspace, updated_at);
ALTER TABLE scim.users ENABLE ALWAYS TRIGGER users_count_insert, ENABLE ALWAYS TRIGGER users_count_delete,
	ENABLE ALWAYS TRIGGER users_count_move, ENABLE ALWAYS TRIGGER users_count_truncate;
SELECT scim.recount_users();
SQL
		fi
	}
	ratios=()
	# every run starts from the same state: dead rows vacuumed, the GIN
	# pending list merged, no checkpoint due
	settle() { psql -d p4w -c "VACUUM ANALYZE scim.users" -c "CHECKPOINT" >/dev/null; }
	# with-without in odd rounds, without-with in even ones (drift cancels)
	for r in $(seq 1 "$rounds"); do
		if (( r % 2 )); then
			settle
			read -r on_tps _ < <(PGDATABASE=p4w run_pgbench "p4w_on$r" "$clients" "$p4_post")
			search_structures off
			settle
			read -r off_tps _ < <(PGDATABASE=p4w run_pgbench "p4w_off$r" "$clients" "$p4_post")
			search_structures on
		else
			search_structures off
			settle
			read -r off_tps _ < <(PGDATABASE=p4w run_pgbench "p4w_off$r" "$clients" "$p4_post")
			search_structures on
			settle
			read -r on_tps _ < <(PGDATABASE=p4w run_pgbench "p4w_on$r" "$clients" "$p4_post")
		fi
		ratios+=("$(awk -v a="$on_tps" -v b="$off_tps" 'BEGIN { printf "%.3f", a / b }')")
		printf 'round %s: with %10s tps, without (0.2.0 layout) %10s tps, ratio %s\n' "$r" "$on_tps" "$off_tps" "${ratios[-1]}"
	done
	echo "P4w throughput with / without, median of $rounds rounds: $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }')x   (goal >= 0.95x)"
fi

if [[ $skip != *,S,* ]]; then
	echo
	echo "== S: filter corpus through scim.handle (count=100) vs hand-written SQL (${corpus_secs}s each, 1 client) =="
	# The expert's own indexes: trigram indexes on what each filter reads.
	psql >/dev/null <<'SQL'
DO $$
DECLARE s name := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm');
BEGIN
	EXECUTE format('CREATE INDEX bench_email_values_trgm ON scim.users USING gin ((lower(jsonb_path_query_array(attributes, ''lax $.emails[*].value'')::text)) %I.gin_trgm_ops)', s);
	EXECUTE format('CREATE INDEX bench_phone_values_trgm ON scim.users USING gin ((lower(jsonb_path_query_array(attributes, ''lax $.phoneNumbers[*].value'')::text)) %I.gin_trgm_ops)', s);
	EXECUTE format('CREATE INDEX bench_given_trgm ON scim.users USING gin (lower(given_name) %I.gin_trgm_ops)', s);
	EXECUTE format('CREATE INDEX bench_family_trgm ON scim.users USING gin (lower(family_name) %I.gin_trgm_ops)', s);
	EXECUTE format('CREATE INDEX bench_display_trgm ON scim.users USING gin (lower(display_name) %I.gin_trgm_ops)', s);
END $$;
-- prefix keys of each email address, the expert's own (in SQL), stored in a
-- generated column with a GIN index (the usual way to serve a tsvector): the
-- address, reversed, its domain, its local part reversed, and the domain with
-- the address's type.  For this data (one '@' per address, strings only) a
-- key query is the whole predicate: no re-check.
CREATE FUNCTION bench_email_keys(a jsonb) RETURNS tsvector IMMUTABLE PARALLEL SAFE LANGUAGE sql AS $f$
	SELECT array_to_tsvector(coalesce(array_agg(k), '{}'))
	  FROM jsonb_array_elements(CASE jsonb_typeof(a -> 'emails') WHEN 'array' THEN a -> 'emails' ELSE '[]' END) e,
		   LATERAL (VALUES ('v:' || lower(e ->> 'value')), ('r:' || reverse(lower(e ->> 'value'))),
						   ('d:' || split_part(lower(e ->> 'value'), '@', 2)),
						   ('b:' || reverse(split_part(lower(e ->> 'value'), '@', 1))),
						   ('wd:' || lower(e ->> 'type') || '/' || split_part(lower(e ->> 'value'), '@', 2))) AS x(k)
	 WHERE e ->> 'value' IS NOT NULL AND k IS NOT NULL
$f$;
SET maintenance_work_mem = '512MB';
ALTER TABLE scim.users ADD COLUMN bench_keys tsvector GENERATED ALWAYS AS (bench_email_keys(attributes)) STORED;
CREATE INDEX bench_keys_idx ON scim.users USING gin (bench_keys);
VACUUM scim.users;
ANALYZE scim.users;
SQL
	last_mod=$(psql -Atc "SELECT to_char((max(updated_at) - interval '1000 seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM scim.users WHERE user_name LIKE 'u%'")
	last_mod_sql=$(psql -Atc "SELECT quote_literal('$last_mod'::timestamptz)")
	grp=$(psql -Atc "SELECT id FROM scim.groups WHERE display_name = 'Team 42'")
	member=$(psql -Atc "SELECT id FROM scim.users WHERE external_id = 'ext-4242'")
	EV="lower(jsonb_path_query_array(u.attributes, 'lax \$.emails[*].value')::text)"
	PV="lower(jsonb_path_query_array(u.attributes, 'lax \$.phoneNumbers[*].value')::text)"
	EL="jsonb_array_elements(u.attributes -> 'emails')"
	EK="u.bench_keys"
	# name | SCIM filter | hand-written predicate over "scim.users u" (same answer)
	corpus=(
"okta_username_eq|userName eq \"u4242@example.com\"|lower(u.user_name) = 'u4242@example.com'"
"entra_externalid_eq|externalId eq \"ext-4242\"|u.external_id = 'ext-4242'"
"username_sw|userName sw \"u42424\"|lower(u.user_name) LIKE 'u42424%'"
"username_co|userName co \"4242@\"|lower(u.user_name) LIKE '%4242@%'"
"username_ew|userName ew \"99999@example.com\"|lower(u.user_name) LIKE '%99999@example.com'"
"onelogin_email_eq|emails.value eq \"u4242@example.com\"|lower(u.attributes::text)::jsonb @> '{\"emails\":[{\"value\":\"u4242@example.com\"}]}'"
"emails_co_domain|emails.value co \"@acme.example.com\"|$EK @@ '''d:acme.example.com'':*'"
"emails_sw|emails.value sw \"u42424\"|$EK @@ '''v:u42424'':*'"
"emails_ew|emails.value ew \"4201@acme.example.com\"|$EK @@ '''r:moc.elpmaxe.emca@1024'':*'"
"P3_valuepath_co_active|emails[type eq \"work\" and value co \"@acme.example.com\"] and active eq true|u.active AND $EK @@ '''wd:work/acme.example.com'':*'"
"valuepath_ew|emails[type eq \"work\" and value ew \"@acme.example.com\"]|$EK @@ '''wd:work/acme.example.com'''"
"entra_valuepath_eq|emails[type eq \"work\" and value eq \"u4242@example.com\"]|lower(u.attributes::text)::jsonb @> '{\"emails\":[{\"type\":\"work\",\"value\":\"u4242@example.com\"}]}'"
"valuepath_co_one|emails[value co \"u4242@\"]|$EK @@ '''b:2424u'':*'"
"given_eq|name.givenName eq \"Given4242\"|lower(u.given_name) = 'given4242'"
"given_sw|name.givenName sw \"Given4242\"|lower(u.given_name) LIKE 'given4242%'"
"given_co|name.givenName co \"ven42424\"|lower(u.given_name) LIKE '%ven42424%'"
"family_co|name.familyName co \"amily4242\"|lower(u.family_name) LIKE '%amily4242%'"
"family_ew|name.familyName ew \"ily42424\"|lower(u.family_name) LIKE '%ily42424'"
"display_co|displayName co \"given4242 f\"|lower(u.display_name) LIKE '%given4242 f%'"
"phone_co|phoneNumbers.value co \"555 4242\"|$PV LIKE '%555 4242%' AND EXISTS (SELECT 1 FROM jsonb_array_elements(u.attributes -> 'phoneNumbers') e WHERE lower(e ->> 'value') LIKE '%555 4242%')"
"lastmodified_gt|meta.lastModified gt \"$last_mod\"|u.updated_at > $last_mod_sql"
"lastmodified_gt_active|meta.lastModified gt \"$last_mod\" and active eq true|u.updated_at > $last_mod_sql AND u.active"
"inactive_username_sw|active eq false and userName sw \"u4242\"|NOT u.active AND lower(u.user_name) LIKE 'u4242%'"
"groups_by_member|groups.value eq \"$grp\"|EXISTS (SELECT 1 FROM scim.group_members m WHERE m.member_id = u.id AND m.group_id = '$grp')"
"username_or_email|userName sw \"u4242\" or emails.value co \"4201@acme\"|lower(u.user_name) LIKE 'u4242%' OR $EK @@ '''b:1024'':* & ''d:acme'':*'"
"okta_username_eq_inactive|userName eq \"u4240@example.com\" and active eq false|lower(u.user_name) = 'u4240@example.com' AND NOT u.active"
	)
	urlenc() { printf '%s' "$1" | sed 's/%/%25/g; s/ /%20/g; s/"/%22/g; s/\[/%5B/g; s/\]/%5D/g; s/@/%40/g; s/&/%26/g; s/+/%2B/g'; }
	printf '%-26s %9s %11s %11s %7s\n' "filter" "total" "handle ms" "expert ms" "ratio"
	for entry in "${corpus[@]}"; do
		IFS='|' read -r name filter pred <<<"$entry"
		q="filter=$(urlenc "$filter")&count=100"
		q_sql=$(printf '%s' "$q" | sed "s/'/''/g")
		total_h=$(psql -Atc "SELECT body->>'totalResults' FROM scim.handle('GET', '/Users', '$q_sql', (SELECT auth FROM bench_env))")
		total_x=$(psql -Atc "SELECT count(*) FROM scim.users u WHERE u.workspace = 'default' AND ($pred)")
		read -r _ h_lat < <(WARM=1 SECS=$corpus_secs run_pgbench "s_${name}_h" 1 "SELECT h.status FROM scim.handle('GET', '/Users', '$q_sql', '$auth_sql'::jsonb) h;")
		# the expert writes both shapes and keeps the faster: the page through
		# the created_at order (best when many match), or all matches read
		# once and sorted (best when few do; the planner cannot tell)
		read -r _ x1_lat < <(WARM=1 SECS=$corpus_secs PGOPTIONS="-c jit=off" run_pgbench "s_${name}_x" 1 "SELECT (SELECT count(*) FROM scim.users u WHERE u.workspace = 'default' AND ($pred)) AS total,
	(SELECT jsonb_agg(to_jsonb(p)) FROM (SELECT u.* FROM scim.users u WHERE u.workspace = 'default' AND ($pred) ORDER BY u.created_at, u.id LIMIT 100) p) AS page;")
		read -r _ x2_lat < <(WARM=1 SECS=$corpus_secs PGOPTIONS="-c jit=off" run_pgbench "s_${name}_m" 1 "WITH m AS MATERIALIZED (SELECT u.* FROM scim.users u WHERE u.workspace = 'default' AND ($pred))
SELECT (SELECT count(*) FROM m) AS total, (SELECT jsonb_agg(to_jsonb(p)) FROM (SELECT * FROM m ORDER BY m.created_at, m.id LIMIT 100) p) AS page;")
		x_lat=$(awk -v a="$x1_lat" -v b="$x2_lat" 'BEGIN { print (a < b ? a : b) }')
		flag=""; [ "$total_h" = "$total_x" ] || flag="  TOTALS DIFFER ($total_x)"
		printf '%-26s %9s %11s %11s %6sx%s\n' "$name" "$total_h" "$h_lat" "$x_lat" "$(ratio "$h_lat" "$x_lat")" "$flag"
	done
	p3_old_q=$(urlenc "$p3_filter")
	read -r _ p3_old_lat < <(WARM=1 SECS=$corpus_secs PGOPTIONS="-c scim_provision.search_index=off" run_pgbench p3_old 1 "SELECT h.status FROM scim.handle('GET', '/Users', 'filter=$p3_old_q&count=100', '$auth_sql'::jsonb) h;")
	read -r _ p3_new_lat < <(WARM=1 SECS=$corpus_secs run_pgbench p3_new 1 "SELECT h.status FROM scim.handle('GET', '/Users', 'filter=$p3_old_q&count=100', '$auth_sql'::jsonb) h;")
	echo "P3 through scim.handle: search_index=off (0.2.0 predicate) $p3_old_lat ms, on $p3_new_lat ms: $(ratio "$p3_old_lat" "$p3_new_lat")x faster   (goal >= 30x)"
fi

if [[ $skip != *,D,* ]]; then
	echo
	echo "== D: deep paging, $pages pages of 100 users (1 session, each page its own scim.handle call) =="
	psql -At <<SQL
CREATE TEMP TABLE t (what text, ms numeric);
DO \$\$
DECLARE
	auth jsonb := (SELECT e.auth FROM bench_env e);
	t0 timestamptz;
	b jsonb;
	cur text := '';
	n bigint := 0;
BEGIN
	t0 := clock_timestamp();
	FOR p IN 0 .. $pages - 1 LOOP
		SELECT h.body INTO b FROM scim.handle('GET', '/Users', 'startIndex=' || (p * 100 + 1) || '&count=100', auth) h;
		n := n + (b ->> 'itemsPerPage')::int;
	END LOOP;
	INSERT INTO t VALUES ('startIndex paging (bookmarks): ' || n || ' users', extract(epoch FROM clock_timestamp() - t0) * 1000);
	n := 0;
	t0 := clock_timestamp();
	FOR p IN 0 .. $pages - 1 LOOP
		SELECT h.body INTO b FROM scim.handle('GET', '/Users', 'cursor=' || cur || '&count=100', auth) h;
		n := n + (b ->> 'itemsPerPage')::int;
		cur := b ->> 'nextCursor';
		EXIT WHEN cur IS NULL;
	END LOOP;
	INSERT INTO t VALUES ('cursor paging (RFC 9865): ' || n || ' users', extract(epoch FROM clock_timestamp() - t0) * 1000);
END \$\$;
SELECT format('%-52s %10s ms', what, round(ms)) FROM t;
SELECT format('D ratio startIndex / cursor: %sx   (goal <= 1.5x)', round((SELECT ms FROM t WHERE what LIKE 'startIndex%') / (SELECT ms FROM t WHERE what LIKE 'cursor%'), 2));
SQL
	deep=$(( users - 99999 ))
	read -r _ cold_lat < <(WARM=1 SECS=$corpus_secs PGOPTIONS="-c scim_provision.page_bookmarks=off" run_pgbench d_offset 1 "SELECT h.status FROM scim.handle('GET', '/Users', 'startIndex=$deep&count=100', '$auth_sql'::jsonb) h;")
	psql -Atc "SELECT 1 FROM scim.handle('GET', '/Users', 'startIndex=$(( deep - 100 ))&count=100', (SELECT auth FROM bench_env))" >/dev/null
	read -r _ warm_lat < <(WARM=1 SECS=$corpus_secs run_pgbench d_bookmark 1 "SELECT h.status FROM scim.handle('GET', '/Users', 'startIndex=$deep&count=100', '$auth_sql'::jsonb) h;")
	echo "one page at startIndex=$deep: by OFFSET $cold_lat ms, from the previous page's bookmark $warm_lat ms"
fi
