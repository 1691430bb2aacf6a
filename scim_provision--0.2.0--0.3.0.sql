/* scim_provision--0.2.0--0.3.0.sql: from 0.2.0 to 0.3.0 (never edited once released) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION scim_provision UPDATE TO '0.3.0'" to load this file. \quit

-- One section per concern of 0.3.0, in the order they apply.


-- ===== Hardening (#15 security): grants, trigger functions, audit =========

-- (end of hardening: security)


-- ===== Hardening (#15 input): limits before cost, nesting, body size =======

-- (end of hardening: input)


-- ===== Hardening (#15 contract): text bodies, column defaults, races =======

-- (end of hardening: contract)


-- ===== System Log lifecycle (#12): partitions, retention, operator's view ==

-- (end of System Log lifecycle)


-- ===== Search (#14): multi-valued attributes indexed, deep paging ==========

-- (end of search)


-- ===== OneLogin worker (#16) ===============================================

-- (end of OneLogin worker)


-- ===== Sharding (#11): tokens that name their partition ===================

-- Token ids start with hashtext(workspace) (src/token.c); 0.2.0 tokens stay valid.
-- The token id starts with hashtext(workspace) in 8 hex digits: a router
-- (scim_provision_router) sends the request to the workspace's partition
-- without a round trip (see doc/SCALING.md).
CREATE FUNCTION scim._generate_token(workspace text) RETURNS text
	AS 'MODULE_PATHNAME', 'scim_generate_token_for'
	LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION scim._generate_token(text) IS
	'Internal: a new token for a workspace: its id starts with hashtext(workspace), its secret has 256 bits from pg_strong_random (use scim.create_token)';

REVOKE ALL ON FUNCTION scim._generate_token(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION scim.create_token(name text, workspace text DEFAULT 'default')
	RETURNS text
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	token text;
BEGIN
	PERFORM scim._require_workspace(workspace);
	IF name IS NULL OR btrim(name) = '' THEN
		RAISE EXCEPTION 'a token needs a name'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	token := scim._generate_token(workspace);
	BEGIN
		INSERT INTO scim.tokens (token_id, workspace, name, secret_hash)
		VALUES (substr(token, 6, 24), workspace, name, scim._token_hash(token));
	EXCEPTION WHEN unique_violation THEN
		RAISE EXCEPTION 'workspace "%" already has an active token named "%"', workspace, name
			USING ERRCODE = 'unique_violation',
				  HINT = 'Revoke it first with scim.revoke_token(name, workspace), or choose another name.';
	END;
	RETURN token;
END;
$$;
COMMENT ON FUNCTION scim.create_token(text, text) IS
	'Create a SCIM bearer token; the plaintext is returned this once and only its SHA-256 is stored';


-- ---------------------------------------------------------------------------
-- 75_routed.sql: what a shard offers a router (scim_provision_router, see
-- doc/SCALING.md).  The router runs PL/Proxy functions that connect to this
-- database as a login role the deployment creates and makes a member of
-- scim_proxy:
--   scim_proxy   may run scim.dispatch_routed (the SCIM endpoint, routed),
--                and, through scim_admin and scim_reader, the administration
--                functions and the data teams' reads the router forwards.
-- scim_client (PostgREST) never connects to a shard behind a router.
-- ---------------------------------------------------------------------------
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'scim_proxy') THEN
		CREATE ROLE scim_proxy NOLOGIN;
		GRANT scim_admin, scim_reader TO scim_proxy;
	END IF;
END
$roles$;

-- scim.dispatch_routed(request_headers, request_body): scim_api.dispatch for
-- a request that PostgREST received on the router.  The router's session
-- holds request.headers; this connection does not, so the router passes the
-- headers (PostgREST's request.headers object) and the body it was given.
-- They are set for this transaction and scim_api.dispatch answers exactly as
-- it does for a direct call: status, headers (response.headers as
-- scim_api.dispatch set it, text) and body.  PL/Proxy runs each call in its
-- own transaction, so nothing leaks into the next request.  Not SECURITY
-- DEFINER (every name is schema-qualified): it runs as the router's role,
-- which may execute scim_api.dispatch, itself SECURITY DEFINER.
CREATE FUNCTION scim.dispatch_routed(request_headers jsonb, request_body jsonb,
									 OUT status integer, OUT headers text, OUT body jsonb)
	LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
	PERFORM pg_catalog.set_config('request.headers', coalesce(request_headers::text, ''), true);
	body := scim_api.dispatch(request_body);
	status := nullif(pg_catalog.current_setting('response.status', true), '')::integer;
	headers := nullif(pg_catalog.current_setting('response.headers', true), '');
END;
$$;
COMMENT ON FUNCTION scim.dispatch_routed(jsonb, jsonb) IS
	'scim_api.dispatch for a request a router (scim_provision_router) forwards: PostgREST''s request headers and body in, status, response headers and SCIM body out';
REVOKE ALL ON FUNCTION scim.dispatch_routed(jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.dispatch_routed(jsonb, jsonb) TO scim_proxy;
GRANT USAGE ON SCHEMA scim_api TO scim_proxy;
GRANT EXECUTE ON FUNCTION scim_api.dispatch(jsonb) TO scim_proxy;

-- (end of sharding)
