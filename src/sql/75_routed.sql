
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
