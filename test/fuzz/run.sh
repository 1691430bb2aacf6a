#!/usr/bin/env bash
# test/fuzz/run.sh - libFuzzer over the pure cores, bounded in time.
#
#   test/fuzz/run.sh [SECONDS]      (default 60 per harness; "make fuzz"
#                                    passes FUZZ_SECONDS)
#
# Every test/fuzz/NAME_fuzz.c is a harness.  Its first line names the
# sources it links, like the unit tests: /* deps: src/a.c src/b.c */.
# Each is built with clang -fsanitize=fuzzer,address,undefined into
# test/fuzz/build/NAME and run for SECONDS seconds, starting from the seed
# corpus test/fuzz/corpus/NAME/ (committed; inputs taken from the tests)
# plus whatever earlier runs kept in test/fuzz/corpus-run/NAME/ (not
# committed).  test/fuzz/NAME.dict, when present, is passed as dictionary.
# A crash leaves test/fuzz/crash-* and makes this script exit 1.
set -uo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-60}
case "$seconds" in
'' | *[!0-9]*) echo "usage: test/fuzz/run.sh [SECONDS]" >&2; exit 2 ;;
esac

CLANG=${CLANG:-}
if [ -z "$CLANG" ]; then
	for c in clang-14 clang; do
		if command -v "$c" >/dev/null 2>&1; then CLANG=$c; break; fi
	done
fi
if [ -z "$CLANG" ]; then
	echo "fuzz: clang not found (apt-get install clang-14)" >&2
	exit 1
fi

mkdir -p test/fuzz/build test/fuzz/corpus-run
status=0
summary=()
for h in test/fuzz/*_fuzz.c; do
	[ -e "$h" ] || continue
	name=$(basename "$h" _fuzz.c)
	deps=$(head -n1 "$h" | sed -n 's|^/\* *deps: *\(.*\) *\*/.*$|\1|p')
	exe=test/fuzz/build/$name
	echo "=== $name: building"
	if ! $CLANG -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-Isrc -o "$exe" "$h" $deps -lm; then
		summary+=("$name: does not build")
		status=1
		continue
	fi
	seeds=test/fuzz/corpus/$name
	work=test/fuzz/corpus-run/$name
	mkdir -p "$seeds" "$work"
	dict=()
	[ -f "test/fuzz/$name.dict" ] && dict=(-dict="test/fuzz/$name.dict")
	echo "=== $name: fuzzing for ${seconds}s"
	log=test/fuzz/build/$name.log
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
		"$exe" "$work" "$seeds" "${dict[@]}" -max_total_time="$seconds" -max_len=4096 \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix=test/fuzz/crash-"$name"- >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	if [ "$rc" -ne 0 ]; then
		grep -E 'ERROR|SUMMARY|==[0-9]+==|abort|differs|failed' "$log" | head -20
		summary+=("$name: FAILED (exit $rc) after ${execs:-?} executions; see $log and test/fuzz/crash-$name-*")
		status=1
	else
		summary+=("$name: ok, ${execs:-?} executions in ${seconds}s, coverage ${cov:-?} edges")
	fi
done

echo "=== fuzz summary"
for s in "${summary[@]}"; do echo "$s"; done
exit $status
