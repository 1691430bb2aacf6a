
-- ---------------------------------------------------------------------------
-- 11_roles.sql: the roles scim_provision grants to.  Roles are cluster-wide
-- and outlive the extension; they are created only when missing, NOLOGIN,
-- and hold nothing until the extension's scripts grant it.
--   scim_client  the SCIM endpoint (PostgREST's db-anon-role): may execute
--                scim_api.dispatch and nothing else.
--   scim_reader  data teams: read users, the System Log and sync status.
--   scim_admin   administrators: domains, tokens, policies, OneLogin setup.
-- ---------------------------------------------------------------------------
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'scim_client') THEN
		CREATE ROLE scim_client NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'scim_reader') THEN
		CREATE ROLE scim_reader NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'scim_admin') THEN
		CREATE ROLE scim_admin NOLOGIN;
	END IF;
END
$roles$;

GRANT USAGE ON SCHEMA scim TO scim_reader, scim_admin;
GRANT SELECT ON scim.users, scim.provisioning_log, scim.workspaces, scim.approved_domains TO scim_reader, scim_admin;
-- tokens: admins see names and dates, never hashes
GRANT SELECT (token_id, workspace, name, created_at, last_used_at, revoked_at) ON scim.tokens TO scim_admin;
