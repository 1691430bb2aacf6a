#!/usr/bin/env bash
# tools/deps.sh - install the Debian packages scim_provision needs to build,
# demo and test.  Idempotent and quick when everything is present; needs root
# (or sudo) only when something is missing.
set -euo pipefail

pkgs=(
	postgresql-15 postgresql-client-15 postgresql-server-dev-15 postgresql-contrib
	postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-15-plproxy
	libcurl4-openssl-dev libipc-run-perl python3 nginx-light openssl curl make gcc clang
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Do not let the Debian package start and keep a system cluster running.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
