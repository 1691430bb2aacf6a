#!/usr/bin/env bash
# tools/package-check.sh - the release artefacts, built and used the way a
# DBA gets them, each check counted; ends with "N passed, N failed".
#
#   1. make deb: the Debian package builds (dpkg-buildpackage -us -uc -b, with
#      the build-time installcheck of pg_buildext unless DEB_BUILD_OPTIONS=nocheck)
#   2. lintian reports no error
#   3. the package carries every file "make install" installs for each
#      control file (control, install and upgrade scripts, library) and the
#      docs (README, CHANGELOG, doc/*.md, the deploy kit)
#   4. it installs with apt-get install ./….deb; before that any copy of the
#      extension's files that no package owns (left by "make install") is
#      removed, so the server below can only load what the package installed
#   5. make dist: the PGXN zip holds every file of HEAD, builds from an
#      unpacked copy in a temp dir (library and install script), and its
#      META.json validates there
#   6. the autopkgtest (debian/tests/installcheck: pg_buildext installcheck,
#      a pg_virtualenv cluster preloading the installed library, make
#      installcheck) passes in that unpacked copy: every pg_regress test and
#      pgTAP assertion is counted
#
# Needs root and the packaging tools (tools/deps.sh --packaging).  It
# replaces the system PostgreSQL 15's copy of the extension
# (/usr/lib/postgresql/15, /usr/share/postgresql/15) with the package's.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PKG=postgresql-15-scim-provision
EXT=$(sed -n 's/^EXTENSION[[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/\1/p' Makefile)   # the main one
VERSION=$(sed -n 's/^EXTVERSION[[:space:]]*=[[:space:]]*//p' Makefile)
WORK=$(mktemp -d /tmp/scim-pkgcheck.XXXXXX)
chmod 755 "$WORK"
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0
failures=()

pass() { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "not ok - $1"; }
# check NAME CMD...: run CMD with its output in a log, shown when it fails
check() {
	local name=$1 log
	shift
	log=$WORK/$(echo "$name" | tr -c 'a-zA-Z0-9' _).log
	if "$@" >"$log" 2>&1; then pass "$name"; return 0; fi
	tail -40 "$log"
	fail "$name"
	return 1
}
section() { printf '\n=== %s ===\n' "$1"; }

# --- 1-2: build and lint --------------------------------------------------------
section "Debian package (make deb)"
DEB_OUT=$WORK/deb
# the autopkgtest below runs the same suite against the installed files
export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS-nocheck parallel=2}
export DEB_OUT
check "make deb builds $PKG $VERSION" make -s deb
deb=$(ls "$DEB_OUT/${PKG}_${VERSION}_"*.deb 2>/dev/null | head -1)
changes=$(ls "$DEB_OUT"/*.changes 2>/dev/null | head -1)
if [ -n "$changes" ]; then
	# every tag is shown; only errors fail
	lintian --fail-on error "$changes" >"$WORK/lintian.log" 2>&1
	lrc=$?
	grep -v 'running with root privileges' "$WORK/lintian.log" | sed 's/^/  lintian: /' | head -20
	if [ "$lrc" -eq 0 ]; then pass "lintian: no error"; else fail "lintian: errors (exit status $lrc)"; fi
else
	fail "lintian: no package to check"
fi

# --- 3: contents ----------------------------------------------------------------
section "package contents"
if [ -n "$deb" ]; then
	dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$WORK/contents"
	sharedir=$($PG_CONFIG --sharedir)
	pkglibdir=$($PG_CONFIG --pkglibdir)
	docdir=/usr/share/doc/$PKG
	expected=()
	for control in *.control; do
		ext=${control%.control}
		expected+=("$sharedir/extension/$control")
		v=$(sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$control")
		expected+=("$sharedir/extension/$ext--$v.sql")
		for f in "$ext"--*.sql; do
			[ -e "$f" ] && expected+=("$sharedir/extension/$f")
		done
		lib=$(sed -n "s/^[[:space:]]*module_pathname[[:space:]]*=[[:space:]]*'\$libdir\/\([^']*\)'.*/\1/p" "$control")
		[ -n "$lib" ] && expected+=("$pkglibdir/$lib.so")
	done
	expected+=("$docdir/README.md.gz" "$docdir/CHANGELOG.md" "$docdir/copyright")
	for f in doc/*.md; do expected+=("$docdir/$f" "$docdir/$f.gz"); done
	for f in $(git ls-files deploy 2>/dev/null || find deploy -type f); do expected+=("$docdir/$f"); done
	missing=()
	for f in $(printf '%s\n' "${expected[@]}" | sort -u); do
		case $f in
		*.md)  # small docs stay uncompressed, large ones are gzipped: one of the two
			grep -qxF "$f" "$WORK/contents" || grep -qxF "$f.gz" "$WORK/contents" || missing+=("$f") ;;
		*.md.gz) ;;
		*) grep -qxF "$f" "$WORK/contents" || missing+=("$f") ;;
		esac
	done
	if [ ${#missing[@]} -eq 0 ]; then
		pass "the package carries every control file, install/upgrade script, library and doc ($(printf '%s\n' "${expected[@]}" | grep -vc '\.md\.gz$') files)"
	else
		printf '  missing: %s\n' "${missing[@]}"
		fail "the package lacks ${#missing[@]} file(s)"
	fi
else
	fail "package contents: no package built"
fi

# --- 4: install -------------------------------------------------------------------
section "apt-get install ./$(basename "${deb:-none}")"
install_pkg() {
	export DEBIAN_FRONTEND=noninteractive
	if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "ok installed"; then
		dpkg --purge "$PKG"
	fi
	# copies no package owns (from "make install") must not stand in for the package's files
	local f
	for f in "$($PG_CONFIG --sharedir)"/extension/"$EXT"*.control "$($PG_CONFIG --sharedir)"/extension/"$EXT"*--*.sql \
		"$($PG_CONFIG --pkglibdir)"/"$EXT"*.so; do
		[ -e "$f" ] || continue
		dpkg -S "$f" >/dev/null 2>&1 || { echo "removing unpackaged $f"; rm -f "$f"; }
	done
	rm -rf "$($PG_CONFIG --pkglibdir)"/bitcode/"$EXT" "$($PG_CONFIG --pkglibdir)"/bitcode/"$EXT".index.bc
	apt-get install -y --no-install-recommends "$deb"
	dpkg-query -W -f='${Status} ${Version}\n' "$PKG" | grep -q "install ok installed $VERSION"
}
if [ -n "$deb" ]; then
	check "apt-get install ./$(basename "$deb")" install_pkg
else
	fail "apt-get install: no package built"
fi

# --- 5: PGXN distribution -----------------------------------------------------------
section "PGXN distribution (make dist)"
zip=$EXT-$VERSION.zip
rm -f "$zip"
check "make dist writes $zip" make -s dist && [ -f "$zip" ]
dist=$WORK/dist
mkdir -p "$dist"
if [ -f "$zip" ]; then
	unzip -q "$zip" -d "$dist"
	(cd "$dist" && find . -type f | sed 's|^\./[^/]*/||' | sort) >"$WORK/zip-files"
	git ls-tree -r --name-only HEAD | sort >"$WORK/head-files"
	if diff -u "$WORK/head-files" "$WORK/zip-files" >"$WORK/zip-diff"; then
		pass "$zip holds every file of HEAD under $EXT-$VERSION/ ($(wc -l <"$WORK/head-files") files)"
	else
		head -20 "$WORK/zip-diff"
		fail "$zip differs from HEAD"
	fi
	src=$dist/$EXT-$VERSION
	chown -R postgres: "$dist" 2>/dev/null || true
	if check "the unpacked distribution builds (make)" make -C "$src" PG_CONFIG=$PG_CONFIG; then
		for control in "$src"/*.control; do
			ext=$(basename "$control" .control)
			v=$(sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$control")
			if [ -f "$src/$ext--$v.sql" ]; then pass "dist build: $ext--$v.sql"; else fail "dist build: no $ext--$v.sql"; fi
			lib=$(sed -n "s/^[[:space:]]*module_pathname[[:space:]]*=[[:space:]]*'\$libdir\/\([^']*\)'.*/\1/p" "$control")
			if [ -n "$lib" ]; then
				if [ -f "$src/$lib.so" ]; then pass "dist build: $lib.so"; else fail "dist build: no $lib.so"; fi
			fi
		done
	fi
	# "make test" after "make demo": a build with other flags compiles every object again
	nobj=$(ls "$src"/src/*.c | wc -l)
	nstrict=$(make -s -n -C "$src" PG_CONFIG=$PG_CONFIG PG_CFLAGS="-Werror" 2>/dev/null | grep -c -- '-Werror.* -c -o ')
	if [ "$nstrict" -ge "$nobj" ]; then
		pass "after a plain build, a -Werror build compiles all $nobj objects again"
	else
		fail "after a plain build, a -Werror build compiles only $nstrict of $nobj objects"
	fi
	check "META.json of the distribution validates there" python3 "$src/test/meta/validate_meta.py"
	# the objects of this build must not reach the installcheck's make clean
	make -s -C "$src" clean PG_CONFIG=$PG_CONFIG >/dev/null 2>&1
else
	src=
fi

# --- 6: autopkgtest on the installed package ------------------------------------------
section "autopkgtest debian/tests/installcheck (installed package)"
if [ -n "$src" ] && dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "ok installed"; then
	out=$WORK/installcheck
	mkdir -p "$out"
	chmod 777 "$out"
	(cd "$src" && EXTRA_REGRESS_OPTS="--outputdir=$out" debian/tests/installcheck) >"$WORK/installcheck.log" 2>&1
	rc=$?
	grep -E '^(test |     |ok |not ok )|tests (passed|failed)|FAILED|error' "$WORK/installcheck.log" | head -60
	tests=$(sed -n 's/.*--dbname=[^ ]* \(.*\)$/\1/p' "$WORK/installcheck.log" | head -1)
	[ -n "$tests" ] || tests=$(cd "$src" && ls sql/*.sql | xargs -n1 basename | sed 's/\.sql$//')
	for t in $tests; do
		status=$(grep -E "^(test |     |ok |not ok )?.*\b$t\b +\.\.\. " "$WORK/installcheck.log" | head -1)
		if [ -f "$out/results/$t.out" ] && grep -qE '^(not )?ok [0-9]+' "$out/results/$t.out"; then
			ok=$(grep -cE '^ *ok [0-9]+' "$out/results/$t.out")
			notok=$(grep -cE '^ *not ok [0-9]+' "$out/results/$t.out")
			passed=$((passed + ok)); failed=$((failed + notok))
			[ "$notok" -gt 0 ] && failures+=("installed $t: $notok failed assertions")
			if ! echo "$status" | grep -qE '\.\.\. +ok' && [ "$notok" -eq 0 ]; then
				fail "installed package: $t differs from expected/$t.out"
			fi
		elif echo "$status" | grep -qE '\.\.\. +ok'; then
			pass "installed package: $t"
		else
			fail "installed package: $t"
		fi
	done
	if [ "$rc" -ne 0 ]; then
		tail -40 "$WORK/installcheck.log"
		[ -f "$out/regression.diffs" ] && head -100 "$out/regression.diffs"
		fail "debian/tests/installcheck exit status $rc"
	fi
else
	fail "autopkgtest: no installed package or no distribution to test"
fi

section "package summary"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
