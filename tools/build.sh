#!/usr/bin/env bash
# tools/build.sh - build with -Werror and install, serialised by a lock so
# that several developers sharing one working tree never interleave builds.
# PG_CONFIG picks the installation (default: Debian's PostgreSQL 15).
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
exec 9>"/tmp/scim_provision-build.$(pwd | cksum | cut -d" " -f1).lock"
flock 9
make -s PG_CONFIG="$PG_CONFIG" PG_CFLAGS="-Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers" "$@"
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
