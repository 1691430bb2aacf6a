
-- ---------------------------------------------------------------------------
-- 15_triggers.sql: the triggers own the user states, for every writer (SCIM,
-- the OneLogin worker, and a data team's plain INSERT/UPDATE).
--
-- C (src/users_trigger.c): every bulk writer runs this per row, and the
-- PL/pgSQL version with its two queries per row (default user type,
-- approved domains) was about a fifth of a OneLogin sync.  The C version
-- reads the workspace's default user type and approved domains once per
-- statement.
--
-- Refusals use SQLSTATE 23514 (check_violation), which scim.handle answers
-- as SCIM 400 invalidValue (doc/CONTRACTS.md).
-- ---------------------------------------------------------------------------

CREATE FUNCTION scim._canonical_user_type(value text) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE lower(btrim(value))
		WHEN 'regular' THEN 'Regular'
		WHEN 'external' THEN 'External'
		WHEN 'collaborator' THEN 'Collaborator'
	END;
$$;
COMMENT ON FUNCTION scim._canonical_user_type(text) IS
	'Canonical case of a user type (Regular, External, Collaborator), NULL when not one of them';

-- The rules, in C (src/users_trigger.c, whose header lists them): user type
-- default and check, approved-domain gate, billable/deactivated states,
-- created_at, updated_at and version.  It fires on scim.users only (it
-- refuses any other relation, and columns of another type), runs with the
-- writer's rights (not SECURITY DEFINER: a writer of scim.users reads the
-- workspace and its approved domains, as scim_reader may), and PUBLIC may
-- not execute it, so no one else can attach it to a table (doc/SECURITY.md).
CREATE FUNCTION scim._users_before_write() RETURNS trigger
	AS 'MODULE_PATHNAME', 'scim_users_before_write'
	LANGUAGE C
	SET search_path = pg_catalog, scim, pg_temp;
COMMENT ON FUNCTION scim._users_before_write() IS
	'Trigger: user type default and check, approved-domain gate, billable/deactivated states, version';

REVOKE ALL ON FUNCTION scim._canonical_user_type(text), scim._users_before_write() FROM PUBLIC;

CREATE TRIGGER users_before_write
	BEFORE INSERT OR UPDATE ON scim.users
	FOR EACH ROW EXECUTE FUNCTION scim._users_before_write();
