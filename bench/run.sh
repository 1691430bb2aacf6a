#!/usr/bin/env bash
# bench/run.sh - run every benchmark, bench/*/run.sh, one after the other
# ("make bench").  Each prints its own throughput figures and ratios against
# its baselines measured in the same run; none asserts anything about
# timing, so a slow machine never fails.  Exit status: 1 if a benchmark
# script itself failed (did not build, crashed), else 0.
set -uo pipefail
cd "$(dirname "$0")"
status=0
for b in */run.sh; do
	[ -e "$b" ] || continue
	echo "################ bench/$b"
	if ! bash "$b"; then
		echo "bench/$b failed" >&2
		status=1
	fi
	echo
done
exit $status
