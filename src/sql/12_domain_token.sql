
-- ---------------------------------------------------------------------------
-- 12_domain_token.sql: e-mail/domain rules and token primitives (C), and the
-- System Log writer.
-- ---------------------------------------------------------------------------

CREATE FUNCTION scim.email_domain(email text) RETURNS text
	AS 'MODULE_PATHNAME', 'scim_email_domain'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.email_domain(text) IS
	'Normalised (lower-case) domain of an e-mail address, or NULL when the address is malformed';

CREATE FUNCTION scim.normalize_domain(domain text) RETURNS text
	AS 'MODULE_PATHNAME', 'scim_normalize_domain'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.normalize_domain(text) IS
	'A domain as scim.approve_domain stores it (lower case, white space and a leading @ removed); error if invalid';

CREATE FUNCTION scim.domain_approved(email text, workspace text DEFAULT 'default') RETURNS boolean
	AS 'MODULE_PATHNAME', 'scim_domain_approved'
	LANGUAGE C STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp;
COMMENT ON FUNCTION scim.domain_approved(text, text) IS
	'Whether the e-mail address is on an approved domain of the workspace (NULL or malformed: false)';

CREATE FUNCTION scim._generate_token() RETURNS text
	AS 'MODULE_PATHNAME', 'scim_generate_token'
	LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION scim._generate_token() IS
	'Internal: a new token with a 256-bit secret from pg_strong_random (use scim.create_token)';

-- The token id starts with hashtext(workspace) in 8 hex digits: a router
-- (scim_provision_router) sends the request to the workspace's partition
-- without a round trip (see doc/SCALING.md).
CREATE FUNCTION scim._generate_token(workspace text) RETURNS text
	AS 'MODULE_PATHNAME', 'scim_generate_token_for'
	LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION scim._generate_token(text) IS
	'Internal: a new token for a workspace: its id starts with hashtext(workspace), its secret has 256 bits from pg_strong_random (use scim.create_token)';

CREATE FUNCTION scim._token_hash(token text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'scim_token_hash'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim._token_hash(text) IS 'Internal: SHA-256 of a token';

CREATE FUNCTION scim.authenticate(token text) RETURNS text
	AS 'MODULE_PATHNAME', 'scim_authenticate'
	LANGUAGE C VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp;
COMMENT ON FUNCTION scim.authenticate(text) IS
	'Workspace of a valid unrevoked token (bare or "Bearer ..."), else NULL; records last_used_at';

REVOKE ALL ON FUNCTION scim._generate_token(), scim._generate_token(text), scim._token_hash(text), scim.authenticate(text) FROM PUBLIC;

-- A request-derived System Log field bounded to max_chars characters: a
-- longer value keeps its first max_chars - 14 characters and the ASCII
-- marker "...[truncated]" (cut by characters, never inside one, so the
-- result is valid text in the database encoding).  src/handle.c's fast
-- path writes the same expression inline (it may run on an older catalog).  The bounds per field are in scim.log_attempt and doc/LIMITS.md.
-- No SET search_path, so that the planner inlines it into the INSERT of
-- scim.log_attempt (a function with a SET clause is called, with a GUC
-- save and restore, five times per request); every name in it is
-- schema-qualified instead, so it does not depend on the caller's path.
CREATE FUNCTION scim._log_bounded(value text, max_chars integer) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN pg_catalog.length(value) OPERATOR(pg_catalog.<=) max_chars THEN value
				ELSE pg_catalog."left"(value, max_chars OPERATOR(pg_catalog.-) 14)
					 OPERATOR(pg_catalog.||) '...[truncated]' END;
$$;
COMMENT ON FUNCTION scim._log_bounded(text, integer) IS
	'Internal: a System Log field bounded to max_chars characters, marked "...[truncated]" when cut';
REVOKE ALL ON FUNCTION scim._log_bounded(text, integer) FROM PUBLIC;

-- The System Log writer.  Callers run the attempt in a subtransaction, roll
-- it back when refused, and log in the outer transaction: the row survives
-- the rollback of the attempt.  PL/pgSQL rather than SQL: a SECURITY
-- DEFINER SQL function is never inlined and plans its INSERT on every
-- call, where PL/pgSQL keeps the plan for the session.
CREATE FUNCTION scim.log_attempt(source text, method text, path text, resource_id uuid,
								 user_name text, status integer, scim_type text, detail text,
								 workspace text DEFAULT 'default')
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	log_id bigint;
BEGIN
	INSERT INTO scim.provisioning_log AS l (workspace, source, method, path, resource_id, user_name, status,
											scim_type, detail)
	-- request-derived fields bounded (doc/LIMITS.md): method 16, path 1000,
	-- user_name 256, scim_type 64, detail 2000 characters
	VALUES ($9, $1, scim._log_bounded($2, 16), scim._log_bounded($3, 1000), $4, scim._log_bounded($5, 256), $6,
			scim._log_bounded($7, 64), scim._log_bounded($8, 2000))
	RETURNING l.id INTO log_id;
	RETURN log_id;
END;
$$;
COMMENT ON FUNCTION scim.log_attempt(text, text, text, uuid, text, integer, text, text, text) IS
	'Append one provisioning attempt to the System Log (scim.provisioning_log)';
REVOKE ALL ON FUNCTION scim.log_attempt(text, text, text, uuid, text, integer, text, text, text) FROM PUBLIC;
