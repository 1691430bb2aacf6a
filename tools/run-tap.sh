#!/usr/bin/env bash
# tools/run-tap.sh - run the Perl TAP tests (test/t/*.pl, PostgreSQL::Test::Cluster)
# against the installed extension.
#
#   tools/run-tap.sh [test/t/NAME.pl ...]      (default: every test/t/*.pl)
#
# Run after "make install".  initdb refuses root, so the tests run as the
# postgres user (runuser when started as root), with the server binaries of
# $PG_BINDIR (default /usr/lib/postgresql/15/bin) first in PATH and PGXS's
# Perl modules in PERL5LIB.  Each run works in a fresh directory under /tmp
# (TESTDIR, tmp_check/ and its logs); when the repository is not readable by
# postgres (a clone under /root, say) the sources are copied there first.
# Output is prove -v (every assertion, then prove's summary); the exit status
# is prove's: non-zero when any test failed.  On failure the work directory
# with the server and mock logs is kept and named.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PG_CONFIG=$BINDIR/pg_config
if [ ! -x "$PG_CONFIG" ]; then
	echo "run-tap: $PG_CONFIG not found (set PG_BINDIR)" >&2
	exit 2
fi
PGXS_DIR=$("$PG_CONFIG" --pkglibdir)/pgxs
PERL_LIB=$PGXS_DIR/src/test/perl
if [ ! -f "$PERL_LIB/PostgreSQL/Test/Cluster.pm" ]; then
	echo "run-tap: PostgreSQL::Test::Cluster not found under $PERL_LIB (postgresql-server-dev-15)" >&2
	exit 2
fi
if ! perl -MIPC::Run -e 1 2>/dev/null; then
	echo "run-tap: Perl module IPC::Run missing (libipc-run-perl)" >&2
	exit 2
fi

if [ $# -gt 0 ]; then
	tests=("$@")
else
	tests=(test/t/*.pl)
fi
if [ ! -e "${tests[0]}" ]; then
	echo "run-tap: no tests found" >&2
	exit 2
fi

WORK=$(mktemp -d /tmp/scim-tap.XXXXXX)
chmod 755 "$WORK"

as_postgres() {
	if [ "$(id -un)" = postgres ]; then
		"$@"
	elif [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"				# an ordinary user may run initdb itself
	fi
}

if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$WORK"
fi

# The tests must be readable by the user running them.
src=$top
if ! as_postgres test -r "$top/test/t" -a -x "$top/test/t"; then
	src=$WORK/src
	mkdir -p "$src"
	tar -C "$top" --exclude=.git --exclude='*.o' --exclude='*.bc' --exclude=tmp_check \
		--exclude=results --exclude=node_modules -cf - . | tar -C "$src" -xf -
	[ "$(id -u)" -eq 0 ] && chown -R postgres: "$src"
fi

abs_tests=()
for t in "${tests[@]}"; do
	case "$t" in
	/*) abs_tests+=("$src/${t#"$top"/}") ;;
	*) abs_tests+=("$src/$t") ;;
	esac
done

cd "$WORK"
as_postgres env \
	PATH="$BINDIR:/usr/local/bin:/usr/bin:/bin" \
	PERL5LIB="$PERL_LIB${PERL5LIB:+:$PERL5LIB}" \
	TESTDIR="$WORK" \
	PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
	PG_TEST_TIMEOUT_DEFAULT="${PG_TEST_TIMEOUT_DEFAULT:-120}" \
	prove -v --timer "${abs_tests[@]}"
rc=$?

if [ "$rc" -eq 0 ]; then
	rm -rf "$WORK"
else
	echo "run-tap: tests failed; logs kept in $WORK/tmp_check/log" >&2
fi
exit "$rc"
