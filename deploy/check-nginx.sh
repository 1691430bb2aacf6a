#!/usr/bin/env bash
# deploy/check-nginx.sh - validate the shipped nginx site
# (deploy/nginx/scim_provision.conf) with "nginx -t".
#
# The site is tested as shipped except for its two certificate paths, which
# point at a self-signed certificate made on the fly, and, when not run as
# root, its listen ports (nginx -t binds them; 80 and 443 become 18080 and
# 18443).  Everything nginx touches (pid, logs, temp directories) lives in a
# temporary prefix, so this works as root and as any other user, with or
# without a running nginx (a port already in use is fine for nginx -t).
#
#   deploy/check-nginx.sh [SITE_FILE]
#
# Exit status 0 when nginx accepts the configuration, non-zero otherwise.
# Needs nginx (nginx-light is enough) and openssl.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
site=${1:-$here/nginx/scim_provision.conf}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

fail() { echo "check-nginx: $*" >&2; exit 1; }

[ -r "$site" ] || fail "cannot read $site"
[ -x "$NGINX" ] || fail "nginx not found (apt-get install nginx-light)"
command -v openssl >/dev/null || fail "openssl not found (apt-get install openssl)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-nginx.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/logs" "$tmp/temp"

# A throwaway self-signed certificate for the placeholder paths.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=scim.example.com" \
	-keyout "$tmp/scim.key" -out "$tmp/scim.crt" >"$tmp/openssl.log" 2>&1 ||
	{ cat "$tmp/openssl.log" >&2; fail "openssl could not make a test certificate"; }

# The site with its certificate paths replaced; both must have been present.
sed -E \
	-e "s#^([[:space:]]*ssl_certificate)[[:space:]]+[^;]+;#\\1 $tmp/scim.crt;#" \
	-e "s#^([[:space:]]*ssl_certificate_key)[[:space:]]+[^;]+;#\\1 $tmp/scim.key;#" \
	"$site" >"$tmp/site.conf"
grep -q "ssl_certificate $tmp/scim.crt;" "$tmp/site.conf" || fail "no ssl_certificate line in $site"
grep -q "ssl_certificate_key $tmp/scim.key;" "$tmp/site.conf" || fail "no ssl_certificate_key line in $site"

# Only root may bind ports below 1024.
if [ "$(id -u)" -ne 0 ]; then
	sed -i -E \
		-e 's/^([[:space:]]*listen[[:space:]]+([^;[:space:]]*:)?)80([;[:space:]])/\118080\3/' \
		-e 's/^([[:space:]]*listen[[:space:]]+([^;[:space:]]*:)?)443([;[:space:]])/\118443\3/' \
		"$tmp/site.conf"
fi

# A minimal main configuration around it, like Debian's nginx.conf includes
# sites-enabled/* inside http {}.
cat >"$tmp/nginx.conf" <<EOF
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log;
events {
	worker_connections 64;
}
http {
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	access_log $tmp/logs/access.log;
	client_body_temp_path $tmp/temp/body;
	proxy_temp_path $tmp/temp/proxy;
	fastcgi_temp_path $tmp/temp/fastcgi;
	uwsgi_temp_path $tmp/temp/uwsgi;
	scgi_temp_path $tmp/temp/scgi;
	include $tmp/site.conf;
}
EOF
if [ ! -r /etc/nginx/mime.types ]; then
	sed -i '/mime.types/d' "$tmp/nginx.conf"
fi

# -e (error log before the configuration is read) exists since nginx 1.19.5.
eflag=()
if "$NGINX" -h 2>&1 | grep -q -- '-e filename'; then
	eflag=(-e "$tmp/logs/error.log")
fi

if "$NGINX" -t -p "$tmp/" "${eflag[@]}" -c "$tmp/nginx.conf" >"$tmp/nginx-t.log" 2>&1; then
	cat "$tmp/nginx-t.log"
	echo "check-nginx: $site is valid"
	exit 0
fi
cat "$tmp/nginx-t.log" >&2
fail "nginx -t rejected $site"
