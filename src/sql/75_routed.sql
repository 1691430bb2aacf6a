
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

-- scim.dispatch_routed(request_headers, request_body, from_json): the node's
-- scim._dispatch for a request that PostgREST received on the router.  The
-- router's session holds request.headers; this connection does not, so the
-- router passes that setting's text as PostgREST set it (duplicate headers
-- included) and the body, raw (scim_api.dispatch(text), from_json false) or
-- parsed (dispatch(jsonb), true).  They are set for this transaction and
-- scim._dispatch answers exactly as for a direct call: status, headers
-- (response.headers as it set them, text) and body.  PL/Proxy runs each
-- call in its own transaction, so nothing leaks into the next request.
-- SECURITY DEFINER with the entry points' log policy: the router's role
-- may run this and nothing of scim_api.
CREATE FUNCTION scim.dispatch_routed(request_headers text, request_body text, from_json boolean,
									 OUT status integer, OUT headers text, OUT body jsonb)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
	SET log_min_error_statement = panic
	SET log_error_verbosity = terse
AS $$
BEGIN
	PERFORM pg_catalog.set_config('request.headers', coalesce(request_headers, ''), true);
	body := scim._dispatch(request_body, coalesce(from_json, false));
	status := nullif(pg_catalog.current_setting('response.status', true), '')::integer;
	headers := nullif(pg_catalog.current_setting('response.headers', true), '');
END;
$$;
COMMENT ON FUNCTION scim.dispatch_routed(text, text, boolean) IS
	'scim._dispatch for a request a router (scim_provision_router) forwards: PostgREST''s request.headers and body in, status, response headers and SCIM body out';
REVOKE ALL ON FUNCTION scim.dispatch_routed(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.dispatch_routed(text, text, boolean) TO scim_proxy;
