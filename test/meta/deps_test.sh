#!/usr/bin/env bash
# deps_test.sh - tools/deps.sh keeps services from starting and creates no
# "main" cluster while it installs, and leaves both settings as it found
# them, also when apt-get fails.  apt-get and dpkg-query are stubs on PATH
# that record what the real ones would have seen; nothing is installed.
# Output is TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
t=$(mktemp -d /tmp/scim-deps-test.XXXXXX)
trap 'rm -rf "$t"' EXIT
n=0; bad=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; bad=$((bad + 1)); fi; }

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP needs root (deps.sh would call sudo)"
	exit 0
fi

mkdir -p "$t/bin" "$t/etc"
# dpkg-query: the packages listed in $t/installed are installed
cat >"$t/bin/dpkg-query" <<'STUB'
#!/bin/sh
for last; do :; done
if [ -n "${STUB_ALL:-}" ] || grep -qx "$last" "$STUB_DIR/installed"; then echo "install ok installed"; fi
exit 0
STUB
# apt-get: record what an install would see; "install" of postgresql-common
# writes its createcluster.conf; STUB_FAIL makes the install fail
cat >"$t/bin/apt-get" <<'STUB'
#!/bin/sh
case " $* " in *" install "*) ;; *) exit 0 ;; esac
case "$*" in *postgresql-common*) [ -e "$DEPS_CREATECLUSTER" ] || echo "ssl = on" >"$DEPS_CREATECLUSTER" ;; esac
if [ -x "$DEPS_POLICY_RC" ]; then "$DEPS_POLICY_RC" x start; echo "policy $?" >>"$STUB_DIR/seen"; else echo "policy none" >>"$STUB_DIR/seen"; fi
grep -q '^create_main_cluster = false' "$DEPS_CREATECLUSTER" 2>/dev/null && echo "main off" >>"$STUB_DIR/seen"
echo "install $*" >>"$STUB_DIR/seen"
[ -z "${STUB_FAIL:-}" ]
STUB
chmod +x "$t/bin/"*
export STUB_DIR=$t DEPS_POLICY_RC=$t/policy-rc.d DEPS_CREATECLUSTER=$t/etc/createcluster.conf PATH=$t/bin:$PATH

# 1. a fresh machine: nothing installed, no policy-rc.d, no postgresql-common yet
: >"$t/installed"; : >"$t/seen"
tools/deps.sh >"$t/out" 2>&1
ok $? "deps.sh installs on a fresh machine"
grep -q '^install .*nginx-light' "$t/seen"; ok $? "it installs the packages (nginx-light among them)"
! grep -q '^policy none' "$t/seen" && grep -q '^policy 101' "$t/seen"; ok $? "during every install policy-rc.d forbids starting services (exit 101)"
grep -B2 '^install .*postgresql-15 ' "$t/seen" | grep -q '^main off'; ok $? "postgresql-15 is installed with create_main_cluster = false"
[ ! -e "$DEPS_POLICY_RC" ]; ok $? "afterwards the temporary policy-rc.d is gone"
! grep -q create_main_cluster "$DEPS_CREATECLUSTER"; ok $? "afterwards createcluster.conf is as postgresql-common installed it"

# 2. a policy-rc.d of the machine's own is left alone; a failed install restores the rest
printf '#!/bin/sh\nexit 101\n# the machine'"'"'s own\n' >"$DEPS_POLICY_RC"; chmod 755 "$DEPS_POLICY_RC"
cp "$DEPS_POLICY_RC" "$t/policy.before"
printf 'ssl = on\n# edited by the admin\n' >"$DEPS_CREATECLUSTER"; cp "$DEPS_CREATECLUSTER" "$t/cc.before"
: >"$t/seen"
STUB_FAIL=1 tools/deps.sh >"$t/out" 2>&1
[ $? -ne 0 ]; ok $? "a failing apt-get fails deps.sh"
cmp -s "$DEPS_POLICY_RC" "$t/policy.before"; ok $? "an existing policy-rc.d is left as it was"
cmp -s "$DEPS_CREATECLUSTER" "$t/cc.before"; ok $? "createcluster.conf is restored after a failed install"

# 3. everything present: no apt-get at all
: >"$t/seen"
STUB_ALL=1 tools/deps.sh >"$t/out" 2>&1 && [ ! -s "$t/seen" ]; ok $? "nothing missing: nothing installed, nothing changed"
echo "1..$n"
[ "$bad" -eq 0 ]
