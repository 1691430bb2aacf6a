#!/usr/bin/env bash
# tools/deb.sh - build the Debian package postgresql-15-scim-provision from
# this checkout with dpkg-buildpackage -us -uc -b (debian/, pg_buildext).
#
# The build runs in a copy of the checkout's files (tracked ones and new ones
# not ignored), so it never cleans or rebuilds the working tree; the .deb and
# the .changes land in build/deb/ (DEB_OUT overrides).  DEB_BUILD_OPTIONS is
# passed through (nocheck skips the build-time installcheck).  Needs the
# packaging tools: tools/deps.sh --packaging installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
out=${DEB_OUT:-$top/build/deb}
version=$(sed -n 's/^EXTVERSION[[:space:]]*=[[:space:]]*//p' Makefile)
work=$(mktemp -d /tmp/scim-deb.XXXXXX)
chmod 755 "$work"   # the build-time installcheck server (user postgres) reads the package tree
trap 'rm -rf "$work"' EXIT
src=$work/scim-provision-$version
mkdir -p "$src" "$out"

if git rev-parse --git-dir >/dev/null 2>&1; then
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		xargs -0 cp -a --parents -t "$src"
else
	# an unpacked release zip: everything but earlier build output
	tar -C "$top" --exclude=./build --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . | tar -C "$src" -xf -
fi

(cd "$src" && dpkg-buildpackage -us -uc -b)
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
ls -l "$out"/*.deb
