#!/usr/bin/env bash
# bench/patch/run.sh - PATCH throughput: the C engine against baselines, in
# the same run, on the same workloads (workloads.json).
#
#   1. pure core: bench/patch/patch_bench.c (scim_patch_apply in a loop)
#      against the npm package scimmy (SCIMMY.Messages.PatchOp#apply), the
#      PATCH implementation of a maintained SCIM library;
#   2. in the database: scim.patch_apply(doc, ops) against plain
#      jsonb_set(doc, '{active}', 'false') for the same single replace, in a
#      throwaway cluster (needs the extension installed: tools/build.sh).
#
# Prints requests per second and ratios; asserts nothing about timing.
# Environment: BENCH_SECONDS (per workload, default 2), PATCH_BENCH_PORT
# (default 55430), BENCH_ROWS (SQL calls per measurement, default 100000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
seconds=${BENCH_SECONDS:-2}
port=${PATCH_BENCH_PORT:-55430}
rows=${BENCH_ROWS:-100000}
work=$(mktemp -d /tmp/patch-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
	"$top/tools/cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "== PATCH engine: C core vs scimmy (requests/s, ${seconds}s per workload) =="
${CC:-cc} -O2 -I"$top/src" -o "$work/patch_bench" "$here/patch_bench.c" \
	"$top/src/patch.c" "$top/src/filter_parse.c" "$top/src/filter_match.c" \
	"$top/src/registry.c" "$top/src/json.c" "$top/src/arena.c" -lm
"$work/patch_bench" "$here/workloads.json" "$seconds" >"$work/c.tsv"

have_scimmy=0
if command -v node >/dev/null && command -v npm >/dev/null; then
	if [ ! -d "$here/node_modules/scimmy" ]; then
		(cd "$here" && npm install --no-audit --no-fund --silent >/dev/null 2>&1) || true
	fi
	if [ -d "$here/node_modules/scimmy" ] &&
		(cd "$here" && node scimmy_bench.mjs workloads.json "$seconds" >"$work/js.tsv"); then
		have_scimmy=1
	fi
fi
if [ "$have_scimmy" = 1 ]; then
	printf '%-55s %14s %14s %8s\n' workload "C core" scimmy ratio
	paste "$work/c.tsv" "$work/js.tsv" | awk -F'\t' '{printf "%-55s %14d %14d %7.1fx\n", $1, $2, $4, $2 / $4}'
else
	echo "(scimmy baseline skipped: node/npm or the scimmy package unavailable)"
	printf '%-55s %14s\n' workload "C core"
	awk -F'\t' '{printf "%-55s %14d\n", $1, $2}' "$work/c.tsv"
fi

echo
echo "== in the database: scim.patch_apply vs jsonb_set (single replace, $rows calls) =="
sharedir=$(/usr/lib/postgresql/15/bin/pg_config --sharedir)
if [ ! -f "$sharedir/extension/scim_provision.control" ]; then
	echo "(skipped: scim_provision is not installed; run tools/build.sh)"
	exit 0
fi
"$top/tools/cluster.sh" start "$work/pg" "$port" "log_min_messages = warning"
export PGHOST=$work/pg PGPORT=$port PGUSER=postgres
psql -q -v ON_ERROR_STOP=1 <<SQL >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION scim_provision CASCADE;
CREATE TABLE bench_doc AS
	SELECT (SELECT j->'resource' FROM (SELECT pg_read_file('$here/workloads.json')::jsonb AS j) s) AS doc,
		   '[{"op":"replace","path":"active","value":false}]'::jsonb AS ops;
SQL
measure() {
	# measure SQL-expression: server-side execution time (ms) of $rows calls
	psql -At -c "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) SELECT $1 FROM generate_series(1, $rows) g, bench_doc d" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Execution Time"])'
}
# same result, checked once
same=$(psql -At -c "SELECT scim.patch_apply(doc, ops) = jsonb_set(doc, '{active}', 'false') FROM bench_doc")
measure "scim.patch_apply(d.doc, d.ops)" >/dev/null	# warm up
t_patch=$(measure "scim.patch_apply(d.doc, d.ops)")
t_set=$(measure "jsonb_set(d.doc, '{active}', 'false')")
python3 - "$t_patch" "$t_set" "$rows" "$same" <<'PY'
import sys
tp, ts, n, same = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
label_set = "jsonb_set(doc, '{active}', false)"
print("%-55s %14.0f calls/s" % ("scim.patch_apply(doc, ops)", n / tp * 1000))
print("%-55s %14.0f calls/s" % (label_set, n / ts * 1000))
print("patch_apply costs %.1fx a bare jsonb_set (same result: %s); it also parses the operations,"
      " resolves paths through the registry and checks mutability" % (tp / ts, same == "t"))
PY
