#!/usr/bin/env bash
# bench/filter/run.sh - SCIM filter parsing throughput: the C core against
# the npm parsers, in the same run, on the same corpus (filters.txt: the RFC
# 7644 examples plus typical IdP and harder filters).
#
#   1. pure core: bench/filter/filter_bench.c (scim_filter_parse, each
#      filter to its full AST in a fresh arena) against scim2-parse-filter
#      and scimmy (SCIMMY.Types.Filter), installed with npm into
#      bench/filter/node_modules.  Both sides time batches of 20 passes over
#      the corpus for BENCH_SECONDS and report the rate of their fastest
#      batch (the least disturbed by other work on the machine) and the mean
#      rate of the run; the ratios against the fastest peer are given for
#      both.  With valgrind installed, callgrind then counts the
#      instructions per filter of the C core (repeatable whatever the load):
#      inside scim_filter_parse, and per request (parse plus arena reset);
#   2. in the database: scim.parse_filter and scim.filter_match over a table
#      of filters, in a throwaway cluster (needs the extension installed:
#      tools/build.sh), next to a bare length(f) over the same rows.
#
# Prints filters per second, ratios and instruction counts; asserts nothing
# about timing.  Environment: BENCH_SECONDS (per parser, default 3),
# FILTER_BENCH_PORT (default 55421), BENCH_ROWS (rows of the SQL table,
# default 100000), BENCH_CALLGRIND=0 to skip the instruction counts.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
seconds=${BENCH_SECONDS:-3}
port=${FILTER_BENCH_PORT:-55421}
rows=${BENCH_ROWS:-100000}
work=$(mktemp -d /tmp/filter-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
	"$top/tools/cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

nfilters=$(grep -c . "$here/filters.txt")
echo "== SCIM filter parsing: C core vs npm parsers ($nfilters filters, ${seconds}s each) =="
${CC:-cc} -O2 -I"$top/src" -o "$work/filter_bench" "$here/filter_bench.c" \
	"$top/src/filter_parse.c" "$top/src/filter_match.c" "$top/src/registry.c" \
	"$top/src/json.c" "$top/src/arena.c" -lm
"$work/filter_bench" "$here/filters.txt" "$seconds" >"$work/rates.tsv"

have_peers=0
if command -v node >/dev/null && command -v npm >/dev/null; then
	if [ ! -d "$here/node_modules/scim2-parse-filter" ] || [ ! -d "$here/node_modules/scimmy" ]; then
		(cd "$here" && npm install --no-audit --no-fund --silent >/dev/null 2>&1) || true
	fi
	if [ -d "$here/node_modules/scim2-parse-filter" ] && [ -d "$here/node_modules/scimmy" ] &&
		(cd "$here" && node peers_bench.mjs filters.txt "$seconds" >>"$work/rates.tsv" 2>"$work/peers.err"); then
		have_peers=1
	fi
fi

printf '%-32s %16s %16s %8s\n' parser "filters/s best" "filters/s mean" refused
awk -F'\t' '{printf "%-32s %16d %16d %8d\n", $1, $2, $4, $3}' "$work/rates.tsv"
if [ "$have_peers" = 1 ]; then
	awk -F'\t' 'NR == 1 {c = $2; cm = $4; next} $2 > best {best = $2; bm = $4; name = $1}
		END {printf "C core / fastest peer (%s): %.1fx (best batches), %.1fx (means)\n", name, c / best, cm / bm}' "$work/rates.tsv"
	awk -F'\t' 'NR == 1 {c = $2; next} {printf "C core / %s: %.1fx\n", $1, c / $2}' "$work/rates.tsv"
	if [ -s "$work/peers.err" ]; then
		echo "(peers refused some RFC-valid filters; they still count, as a thrown error, in their loops:)"
		sed 's/^/  /' "$work/peers.err"
	fi
else
	echo "(npm baselines skipped: node/npm or the packages unavailable)"
fi

if [ "${BENCH_CALLGRIND:-1}" != 0 ] && command -v valgrind >/dev/null; then
	rounds=100
	per_filter() {
		# per_filter FUNCTION: instructions per filter inside FUNCTION (the
		# driver parses the corpus once before its ROUNDS passes)
		valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect="$1" \
			"$work/filter_bench" "$here/filters.txt" 0 "$rounds" 2>&1 >/dev/null |
			awk -v n="$(((rounds + 1) * nfilters))" '/Collected :/ {printf "%.0f", $4 / n}'
	}
	echo "callgrind, instructions per filter ($rounds passes): scim_filter_parse $(per_filter scim_filter_parse)," \
		"parse + arena reset $(per_filter parse_one)"
fi

echo
echo "== in the database: scim.parse_filter / scim.filter_match over $rows rows =="
sharedir=$(/usr/lib/postgresql/15/bin/pg_config --sharedir)
if [ ! -f "$sharedir/extension/scim_provision.control" ]; then
	echo "(skipped: scim_provision is not installed; run tools/build.sh)"
	exit 0
fi
"$top/tools/cluster.sh" start "$work/pg" "$port" "log_min_messages = warning"
export PGHOST=$work/pg PGPORT=$port PGUSER=postgres
cp "$here/filters.txt" "$work/filters.txt"
chmod 644 "$work/filters.txt"
psql -q -v ON_ERROR_STOP=1 <<SQL >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION scim_provision CASCADE;
CREATE TABLE corpus (n serial, f text);
COPY corpus (f) FROM '$work/filters.txt' WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02');
CREATE TABLE bench_filters AS
	SELECT c.f FROM generate_series(1, $rows) g
	  JOIN corpus c ON c.n = 1 + g % (SELECT count(*) FROM corpus);
CREATE TABLE bench_user AS SELECT '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
	"userName":"bjensen@example.com","name":{"givenName":"Barbara","familyName":"Jensen"},
	"title":"Tour Guide","userType":"Employee","active":true,
	"emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],
	"meta":{"resourceType":"User","created":"2010-01-23T04:56:22Z","lastModified":"2011-05-13T04:42:34Z"}}'::jsonb AS r;
ANALYZE;
SQL
measure() {
	# server-side execution time (ms) of one expression over every row
	psql -At -c "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) SELECT $1 FROM bench_filters b, bench_user u" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Execution Time"])'
}
measure "scim.parse_filter(b.f)" >/dev/null	# warm up
t_base=$(measure "length(b.f)")
t_parse=$(measure "scim.parse_filter(b.f)")
t_match=$(measure "scim.filter_match(b.f, u.r)")
python3 - "$t_base" "$t_parse" "$t_match" "$rows" <<'PY'
import sys
tb, tp, tm, n = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print("%-48s %12.0f rows/s" % ("length(f) (scan baseline)", n / tb * 1000))
print("%-48s %12.0f filters/s" % ("scim.parse_filter(f) -> jsonb AST", n / tp * 1000))
print("%-48s %12.0f filters/s" % ("scim.filter_match(f, user jsonb)", n / tm * 1000))
PY
