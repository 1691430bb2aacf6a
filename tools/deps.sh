#!/usr/bin/env bash
# tools/deps.sh - install the Debian packages scim_provision needs to build,
# demo and test; with --packaging also those that build, lint and test the
# Debian package and the PGXN zip (make deb, make package-check).
# Idempotent and quick when everything is present; needs root (or sudo) only
# when something is missing.
#
# While it installs, Debian's packages are kept from starting services (a
# policy-rc.d that answers 101, "action forbidden", removed afterwards; one
# already present is left alone): on a stock Debian 12, nginx-light would
# otherwise start nginx on port 80 and postgresql-15 its "main" cluster on
# port 5432.  That cluster is not even created: postgresql-common's
# createcluster.conf says create_main_cluster = false for the install and is
# restored afterwards.  The project never uses a system cluster (the demo and
# the tests start throwaway clusters on Unix sockets); an administrator who
# wants one runs "pg_createcluster 15 main --start".
set -euo pipefail

pkgs=(
	postgresql-15 postgresql-client-15 postgresql-server-dev-15 postgresql-contrib
	postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-15-plproxy
	libcurl4-openssl-dev libipc-run-perl python3 nginx-light openssl curl make gcc clang
)
if [ "${1:-}" = "--packaging" ]; then
	pkgs+=(
		build-essential debhelper dpkg-dev fakeroot lintian postgresql-server-dev-all
		postgresql-common git unzip
	)
fi

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "deps: missing ${missing[*]}; run this as root (there is no sudo here)" >&2
		exit 1
	fi
	SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

# (the two paths are variables for test/meta/deps_test.sh)
policy=${DEPS_POLICY_RC:-/usr/sbin/policy-rc.d}
createcluster=${DEPS_CREATECLUSTER:-/etc/postgresql-common/createcluster.conf}
restore=()
cleanup() {
	local cmd
	for cmd in "${restore[@]}"; do $SUDO sh -c "$cmd"; done
}
trap cleanup EXIT

# no service starts while packages install
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# tools/deps.sh: no service starts during the install\nexit 101\n' | $SUDO tee "$policy" >/dev/null
	$SUDO chmod 755 "$policy"
	restore+=("rm -f $policy")
fi

$SUDO apt-get update -qq
# no "main" cluster for a PostgreSQL server installed here
if printf '%s\n' "${missing[@]}" | grep -qx 'postgresql-15'; then
	if [ ! -e "$createcluster" ]; then
		$SUDO apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
	fi
	$SUDO cp -p "$createcluster" "$createcluster.deps-sh"
	restore=("mv -f $createcluster.deps-sh $createcluster" "${restore[@]}")
	echo "create_main_cluster = false" | $SUDO tee -a "$createcluster" >/dev/null
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
