#!/usr/bin/env bash
# tools/demo.sh - the main job, end to end, against a throwaway cluster:
# create the extension, approve a domain, create a SCIM token, provision users
# the way OneLogin does (through scim.handle), refuse one outside the approved
# domain, deactivate one, and show scim.users and the System Log.
# "make demo" builds and installs first.  KEEP=1 leaves the cluster running.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${DEMO_DIR:-/tmp/scim-demo}
PORT=${DEMO_PORT:-55390}
tools/cluster.sh stop "$DIR" 2>/dev/null || true
rm -rf "$DIR"
tools/cluster.sh start "$DIR" "$PORT" "scim_provision.database = 'postgres'"
if [ "${KEEP:-0}" != 1 ]; then
	trap 'tools/cluster.sh stop "$DIR"; rm -rf "$DIR"' EXIT
fi
export PGHOST=$DIR PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres

psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
\pset pager off
\echo '== 1. install the extension, approve a domain, create a SCIM token'
CREATE EXTENSION scim_provision CASCADE;
SELECT scim.approve_domain('example.com');
SELECT scim.create_token('onelogin') AS token \gset
SELECT jsonb_build_object('authorization', 'Bearer ' || :'token') AS auth \gset
\echo 'token (shown once; only its SHA-256 is stored):' :token

\echo
\echo '== 2. OneLogin provisions ann: looks her up, then POST /Users'
SELECT status, body->'totalResults' AS total FROM scim.handle('GET', '/Users', 'filter=userName%20eq%20%22ann@example.com%22', :'auth');
SELECT status, headers->>'Location' AS location, body->>'userName' AS user_name, body->'meta'->>'version' AS etag
FROM scim.handle('POST', '/Users', NULL, :'auth', $$
{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
 "userName":"ann@example.com","name":{"givenName":"Ann","familyName":"Lee"},
 "emails":[{"value":"ann@example.com","type":"work","primary":true}],
 "title":"Engineer","active":true,
 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"organization":"Example","department":"R&D"},
 "urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User":{"userType":"collaborator"}}
$$);

\echo
\echo '== 3. bob arrives too; mallory is outside the approved domains and is refused'
SELECT status, body->>'userName' AS user_name FROM scim.handle('POST', '/Users', NULL, :'auth',
	'{"userName":"bob@example.com","name":{"givenName":"Bob","familyName":"Ray"},"active":true}');
SELECT status, body->>'scimType' AS scim_type, body->>'detail' AS detail FROM scim.handle('POST', '/Users', NULL, :'auth',
	'{"userName":"mallory@evil.com","active":true}');

\echo
\echo '== 4. OneLogin deactivates bob (PUT with active false; missing attributes keep their values)'
SELECT id AS bob_id FROM scim.users WHERE user_name = 'bob@example.com' \gset
SELECT status, body->>'active' AS active, body->'name'->>'givenName' AS given_name
FROM scim.handle('PUT', '/Users/' || :'bob_id', NULL, :'auth', '{"userName":"bob@example.com","active":false}');

\echo
\echo '== 5. scim.users: billable at once, deactivated not lost'
SELECT user_name, given_name, user_type, active, billable, billable_since IS NOT NULL AS has_billable_since,
	   deactivated_at IS NOT NULL AS deactivated, version
FROM scim.users ORDER BY user_name;

\echo
\echo '== 6. the System Log: every attempt, accepted or refused'
SELECT id, source, method, path, status, scim_type, user_name, left(detail, 60) AS detail
FROM scim.provisioning_log ORDER BY id;
SQL
echo
echo "demo finished"
