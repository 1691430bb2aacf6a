-- The PostgREST front: schema scim_api, the application/scim+json media type,
-- scim_api.dispatch, the optional pre-request hook and the anonymous role.
-- Each request is replayed the way PostgREST runs it: the same set_config
-- calls, the same role switch, the same main query, then response.status and
-- response.headers read back; pg_temp.pgrst() below does that within this
-- file's one transaction.  test/t/70_postgrest_replay.pl replays whole IdP
-- sessions with a COMMIT per request.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(123);

-- One PostgREST request: POST /rpc/dispatch as the anonymous role with the
-- given request headers (lower-case names, as PostgREST sets them) and body.
-- As deploy/nginx sends it (Content-Type: text/plain) PostgREST calls
-- dispatch(text) with the raw body, '' when there is none; with
-- as_json (Content-Type: application/json, 0.2.0's proxy) it calls
-- dispatch(jsonb) with the parsed body, {} when there is none.  The settings
-- and the main query are PostgREST's (v12+: Query/PreQuery.hs,
-- Query/Statements.hs, QueryBuilder.callPlanToQuery: $1::<parameter type>).
CREATE FUNCTION pg_temp.pgrst(req_headers jsonb, req_body text DEFAULT NULL, with_pre_request boolean DEFAULT false,
							  as_json boolean DEFAULT false,
							  OUT status integer, OUT headers jsonb, OUT body jsonb, OUT ran_as text)
	LANGUAGE plpgsql
AS $$
DECLARE
	r record;
	base_url_before text := current_setting('scim_provision.base_url', true);
BEGIN
	PERFORM set_config('search_path', '"scim_api", "public"', true),
			set_config('role', 'scim_client', true),
			set_config('request.jwt.claims', '{"role":"scim_client"}', true),
			set_config('request.method', 'POST', true),
			set_config('request.path', '/rpc/dispatch', true),
			set_config('request.headers', req_headers::text, true),
			set_config('request.cookies', '{}', true);
	IF with_pre_request THEN
		EXECUTE 'select "scim_api"."pre_request"()';
	END IF;
	req_body := coalesce(req_body, CASE WHEN as_json THEN '{}' ELSE '' END);
	EXECUTE replace($q$
		WITH pgrst_source AS (SELECT pgrst_call.pgrst_scalar FROM (SELECT "scim_api"."dispatch"($1::TYPE) pgrst_scalar) pgrst_call)
		SELECT null::bigint AS total_result_set, 1 AS page_total,
			   "scim_api"."application/scim+json"(_postgrest_t.pgrst_scalar) AS body,
			   nullif(current_setting('response.headers', true), '') AS response_headers,
			   nullif(current_setting('response.status', true), '') AS response_status,
			   '' AS response_inserted
		FROM (SELECT "pgrst_source".* FROM "pgrst_source") _postgrest_t
	$q$, 'TYPE', CASE WHEN as_json THEN 'jsonb' ELSE 'text' END) INTO r USING req_body;
	ran_as := current_user;
	status := r.response_status::integer;
	headers := r.response_headers::jsonb;
	body := r.body::jsonb;
	-- what the end of PostgREST's transaction does
	PERFORM set_config('role', 'none', true),
			set_config('search_path', 'public', true),
			set_config('request.headers', '', true),
			set_config('response.status', '', true),
			set_config('response.headers', '', true);
	PERFORM set_config('scim_provision.base_url', coalesce(base_url_before, ''), true);
END;
$$;

-- a response header's value (response.headers is an array of single-key objects)
CREATE FUNCTION pg_temp.hdr(headers jsonb, name text) RETURNS text
	LANGUAGE sql IMMUTABLE
AS $$
	SELECT e.value #>> '{}'
	  FROM jsonb_array_elements(headers) AS a(item), jsonb_each(a.item) AS e
	 WHERE lower(e.key) = lower(name)
	 LIMIT 1;
$$;

-- ---- what PostgREST's schema cache finds ---------------------------------
SELECT has_schema('scim_api', 'schema scim_api exists');
SELECT functions_are('scim_api', ARRAY['dispatch', 'pre_request'], 'scim_api holds dispatch and pre_request only');
SELECT tables_are('scim_api', ARRAY[]::name[], 'scim_api holds no tables');
SELECT views_are('scim_api', ARRAY[]::name[], 'scim_api holds no views');
SELECT domains_are('scim_api', ARRAY['application/scim+json'], 'scim_api holds the application/scim+json domain');
SELECT domain_type_is('scim_api', 'application/scim+json', 'jsonb', 'application/scim+json is a domain over jsonb');
SELECT is((SELECT p.prorettype::regtype::text FROM pg_proc p WHERE p.oid = 'scim_api.dispatch(text)'::regprocedure),
		  'scim_api."application/scim+json"', 'dispatch(text) returns the media type domain');
SELECT is((SELECT p.prorettype::regtype::text FROM pg_proc p WHERE p.oid = 'scim_api.dispatch(jsonb)'::regprocedure),
		  'scim_api."application/scim+json"', 'dispatch(jsonb) returns the media type domain');
-- PostgREST's media type handlers: a non-set function (prokind f) in an
-- exposed schema returning a domain whose name is a media type
SELECT is((SELECT array_agg(DISTINCT p.proname)
			 FROM pg_proc p
			 JOIN pg_type t ON t.oid = p.prorettype AND t.typbasetype <> 0
			WHERE p.pronamespace = 'scim_api'::regnamespace AND p.prokind = 'f' AND NOT p.proretset
			  AND t.typname ~* '^[A-Za-z0-9.-]+/[A-Za-z0-9.\+-]+$' AND lower(t.typname) = 'application/scim+json'),
		  ARRAY['dispatch']::name[], 'PostgREST sees application/scim+json handled on one route, /rpc/dispatch');
-- the raw body reaches a function with a single unnamed text parameter
-- (Content-Type: text/plain), the parsed JSON body one with a single unnamed
-- json/jsonb parameter (application/json)
SELECT is((SELECT array_agg(array_to_string(p.proargtypes::regtype[], ',') || '|' || coalesce(array_to_string(p.proargnames, ','), '<unnamed>')
							ORDER BY p.oid::regprocedure::text)
			 FROM pg_proc p WHERE p.pronamespace = 'scim_api'::regnamespace AND p.proname = 'dispatch'),
		  ARRAY['jsonb|<unnamed>', 'text|<unnamed>'], 'dispatch: one variant with a single unnamed jsonb parameter, one with a single unnamed text parameter');
-- PostgREST's findProc (Plan.hs): with no named parameter matching, a
-- function with a single unnamed parameter is the fallback when its type
-- fits the Content-Type; more than one candidate is 300 PGRST203.  Exactly
-- one candidate per Content-Type nginx may send.
SELECT is((SELECT array_agg(ct || ':' || n ORDER BY ct)
			 FROM (SELECT ct, count(p.oid) AS n
					 FROM (VALUES ('application/json', ARRAY['json', 'jsonb']), ('text/plain', ARRAY['text'])) AS c(ct, types)
					 LEFT JOIN pg_proc p ON p.pronamespace = 'scim_api'::regnamespace AND p.proname = 'dispatch'
						  AND p.pronargs = 1 AND p.proargnames IS NULL AND format_type(p.proargtypes[0], NULL) = ANY (c.types)
					GROUP BY ct) AS x),
		  ARRAY['application/json:1', 'text/plain:1'], 'PostgREST finds exactly one dispatch for text/plain and one for application/json');
SELECT volatility_is('scim_api', 'dispatch', ARRAY['text'], 'volatile', 'dispatch(text) is volatile (PostgREST runs POST /rpc in a read-write transaction)');
SELECT volatility_is('scim_api', 'dispatch', ARRAY['jsonb'], 'volatile', 'dispatch(jsonb) is volatile');
SELECT is_definer('scim_api', 'dispatch', ARRAY['text'], 'dispatch(text) is SECURITY DEFINER');
SELECT is_definer('scim_api', 'dispatch', ARRAY['jsonb'], 'dispatch(jsonb) is SECURITY DEFINER');
SELECT is((SELECT array_agg(DISTINCT array_to_string(p.proconfig, ';')) FROM pg_proc p
			WHERE p.oid IN ('scim_api.dispatch(text)'::regprocedure, 'scim_api.dispatch(jsonb)'::regprocedure, 'scim._dispatch(text, boolean)'::regprocedure)),
		  ARRAY['search_path=pg_catalog, scim, pg_temp;log_min_error_statement=panic;log_error_verbosity=terse'],
		  'both dispatch variants and scim._dispatch pin their search_path and keep the statement and context out of their server-log reports');
SELECT ok(NOT has_function_privilege('public', 'scim._dispatch(text, boolean)', 'EXECUTE'), 'PUBLIC may not execute scim._dispatch');
SELECT isnt_definer('scim_api', 'pre_request', ARRAY[]::name[], 'pre_request runs as the caller');
SELECT is((SELECT p.proconfig FROM pg_proc p WHERE p.oid = 'scim_api.pre_request()'::regprocedure),
		  ARRAY['search_path=pg_catalog, pg_temp'], 'pre_request pins its search_path');

-- ---- the anonymous role: scim_api and nothing else --------------------------
SELECT has_role('scim_client', 'role scim_client exists');
SELECT ok(NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'scim_client'), 'scim_client cannot log in');
SELECT schema_privs_are('scim_api', 'scim_client', ARRAY['USAGE'], 'scim_client may use schema scim_api');
SELECT function_privs_are('scim_api', 'dispatch', ARRAY['text'], 'scim_client', ARRAY['EXECUTE'], 'scim_client may execute dispatch(text)');
SELECT function_privs_are('scim_api', 'dispatch', ARRAY['jsonb'], 'scim_client', ARRAY['EXECUTE'], 'scim_client may execute dispatch(jsonb)');
SELECT function_privs_are('scim_api', 'pre_request', ARRAY[]::name[], 'scim_client', ARRAY['EXECUTE'], 'scim_client may execute pre_request');
SELECT ok(NOT has_schema_privilege('public', 'scim_api', 'USAGE'), 'PUBLIC may not use scim_api');
SELECT ok(NOT has_function_privilege('public', 'scim_api.dispatch(jsonb)', 'EXECUTE')
		  AND NOT has_function_privilege('public', 'scim_api.dispatch(text)', 'EXECUTE'), 'PUBLIC may not execute dispatch');
SELECT ok(NOT has_schema_privilege('scim_client', 'scim', 'USAGE'), 'scim_client may not use schema scim');
SELECT ok(NOT has_schema_privilege('scim_client', 'scim', 'CREATE'), 'scim_client may not create in schema scim');
SELECT is((SELECT count(*)::integer FROM pg_class c
			WHERE c.relnamespace = 'scim'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'S')
			  AND (has_table_privilege('scim_client', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
				   OR (c.relkind = 'S' AND has_sequence_privilege('scim_client', c.oid, 'USAGE, SELECT, UPDATE')))),
		  0, 'scim_client holds no privilege on any table, view or sequence of scim');
SELECT is((SELECT array_agg(DISTINCT n.nspname ORDER BY n.nspname)
			 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE n.nspname IN ('scim', 'scim_api')
			  AND has_schema_privilege('scim_client', n.oid, 'USAGE')
			  AND has_function_privilege('scim_client', p.oid, 'EXECUTE')),
		  ARRAY['scim_api']::name[], 'the only functions scim_client can reach are in scim_api');

SET LOCAL ROLE scim_client;
SELECT throws_ok($$SELECT * FROM scim.users$$, '42501', NULL, 'scim_client cannot read scim.users');
SELECT throws_ok($$SELECT * FROM scim.tokens$$, '42501', NULL, 'scim_client cannot read scim.tokens');
SELECT throws_ok($$SELECT * FROM scim.provisioning_log$$, '42501', NULL, 'scim_client cannot read the System Log');
SELECT throws_ok($$INSERT INTO scim.users (workspace, user_name) VALUES ('default', 'x@example.com')$$, '42501', NULL, 'scim_client cannot write scim.users');
SELECT throws_ok($$SELECT * FROM scim.handle('GET', '/Users')$$, '42501', NULL, 'scim_client cannot call scim.handle directly');
SELECT throws_ok($$SELECT scim.log_attempt('scim', 'GET', '/x', NULL, NULL, 200, NULL, NULL)$$, '42501', NULL, 'scim_client cannot write the System Log directly');
SELECT throws_ok($$SELECT scim.create_token('mine')$$, '42501', NULL, 'scim_client cannot create tokens');
SELECT throws_ok($$SELECT scim.authenticate('Bearer x')$$, '42501', NULL, 'scim_client cannot probe tokens');
RESET ROLE;

-- ---- dispatch: requests the proxy got wrong, answered without scim.handle ----
SELECT count(*) AS log_before FROM scim.provisioning_log \gset

SELECT * FROM pg_temp.pgrst('{"x-scim-uri": "/scim/v2/Users", "x-scim-token": "Bearer x"}') \gset r_
SELECT is(:'r_ran_as'::text, 'scim_client', 'the replayed request ran as scim_client');
SELECT is(:r_status, 400, 'no X-Scim-Method: 400');
SELECT is(:'r_body'::jsonb -> 'schemas', '["urn:ietf:params:scim:api:messages:2.0:Error"]', 'no X-Scim-Method: a SCIM error document');
SELECT is(:'r_body'::jsonb ->> 'status', '400', 'no X-Scim-Method: status in the body as a string');
SELECT is(pg_temp.hdr(:'r_headers', 'Content-Type'), 'application/scim+json', 'no X-Scim-Method: Content-Type application/scim+json');

SELECT * FROM pg_temp.pgrst('{"x-scim-method": "GET", "x-scim-token": "Bearer x"}') \gset r_
SELECT is(:r_status, 400, 'no X-Scim-Uri: 400');
SELECT matches(:'r_body'::jsonb ->> 'detail', 'X-Scim-Uri', 'no X-Scim-Uri: the detail names the header');

SELECT * FROM pg_temp.pgrst('{"x-scim-method": "GE T", "x-scim-uri": "/scim/v2/Users"}') \gset r_
SELECT is(:r_status, 400, 'a malformed X-Scim-Method: 400');

SELECT * FROM pg_temp.pgrst('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users/%C3%28", "x-scim-token": "Bearer x"}') \gset r_
SELECT is(:r_status, 400, 'a path that is not UTF-8 once decoded: 400');
SELECT is(:'r_body'::jsonb ->> 'scimType', 'invalidPath', 'a path that is not UTF-8 once decoded: invalidPath');

SELECT set_config('request.headers', 'not json', true) IS NOT NULL AS ignored \gset
SELECT is((scim_api.dispatch('{}'::jsonb)) ->> 'status', '400', 'unparsable request.headers: 400, not an error');
SELECT is((scim_api.dispatch(''::text)) ->> 'status', '400', 'unparsable request.headers, text body: 400, not an error');

SELECT is((SELECT count(*) FROM scim.provisioning_log) - :log_before, 6::bigint, 'each of these requests has its System Log row');
SELECT results_eq($$SELECT status, method, path FROM scim.provisioning_log ORDER BY id DESC LIMIT 3$$,
				  $$VALUES (400, NULL::text, NULL::text), (400, NULL::text, NULL::text), (400, 'GET', '/scim/v2/Users/%C3%28')$$,
				  'the log rows keep the method and the URI as sent');

-- ---- dispatch -> scim.handle: what it is given and what it answers --------------
-- A stand-in for scim.handle (rolled back at the end of this file) records
-- its arguments so that the mapping from the proxy's headers is visible.
ALTER FUNCTION scim.handle(text, text, text, jsonb, text) RENAME TO handle_real;
CREATE TABLE pg_temp.handle_calls (method text, path text, query text, headers jsonb, body text, base_url text);
CREATE FUNCTION scim.handle(method text, path text, query text DEFAULT NULL, headers jsonb DEFAULT '{}', body text DEFAULT NULL)
	RETURNS TABLE(status integer, headers jsonb, body jsonb)
	LANGUAGE sql
AS $$
	INSERT INTO pg_temp.handle_calls VALUES ($1, $2, $3, $4, $5, current_setting('scim_provision.base_url', true));
	SELECT CASE $1 WHEN 'POST' THEN 201 WHEN 'DELETE' THEN 204 ELSE 200 END,
		   jsonb_build_object('Location', '/Users/2819c223', 'ETag', 'W/"3"'),
		   CASE WHEN $1 = 'DELETE' THEN NULL ELSE '{"id": "2819c223"}'::jsonb END;
$$;

SELECT * FROM pg_temp.pgrst(
	'{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users?filter=userName%20eq%20%22ann%40example.com%22&startIndex=1&count=100",
	  "x-scim-token": "Bearer tok", "authorization": "Bearer some.jwt.meant-for-postgrest", "if-match": "W/\"3\"",
	  "content-type": "application/json", "accept": "application/scim+json",
	  "x-forwarded-host": "scim.example.com", "x-forwarded-proto": "https", "host": "127.0.0.1:3000"}') \gset r_
SELECT is(:r_status, 200, 'GET: the status scim.handle answers');
SELECT results_eq($$SELECT method, path, query, body FROM pg_temp.handle_calls$$,
				  $$VALUES ('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22&startIndex=1&count=100', NULL::text)$$,
				  'GET: method, base-relative path, raw query, and an empty body passed on as no body');
SELECT is((SELECT headers FROM pg_temp.handle_calls),
		  '{"authorization": "Bearer tok", "if-match": "W/\"3\"", "content-type": "application/json", "accept": "application/scim+json",
			"x-forwarded-host": "scim.example.com", "x-forwarded-proto": "https", "host": "127.0.0.1:3000"}'::jsonb,
		  'GET: X-Scim-Token becomes authorization, the x-scim-* headers and the JWT are dropped, the rest passes');
SELECT is((SELECT base_url FROM pg_temp.handle_calls), 'https://scim.example.com/scim/v2',
		  'GET: scim.handle runs with the base URL the IdP used as scim_provision.base_url');
SELECT is(pg_temp.hdr(:'r_headers', 'ETag'), 'W/"3"', 'GET: ETag reaches response.headers');
SELECT is(pg_temp.hdr(:'r_headers', 'Location'), 'https://scim.example.com/scim/v2/Users/2819c223', 'GET: a relative Location is made absolute from the forwarded host');
SELECT is(pg_temp.hdr(:'r_headers', 'Content-Type'), 'application/scim+json', 'GET: Content-Type application/scim+json');
SELECT is((SELECT count(*)::integer FROM jsonb_array_elements(:'r_headers') AS a(item) WHERE (SELECT count(*) FROM jsonb_object_keys(a.item)) <> 1),
		  0, 'response.headers is an array of single-key objects');
SELECT is(:'r_body'::jsonb, '{"id": "2819c223"}', 'GET: the body is scim.handle''s');
TRUNCATE pg_temp.handle_calls;

SELECT * FROM pg_temp.pgrst('{"x-scim-method": "POST", "x-scim-uri": "/scim/v2/Users", "x-scim-token": "Bearer tok"}',
							'{"userName": "ann@example.com", "active": true}') \gset r_
SELECT is(:r_status, 201, 'POST: 201');
SELECT is((SELECT body::jsonb FROM pg_temp.handle_calls), '{"userName": "ann@example.com", "active": true}', 'POST: the body is passed on as text');
SELECT is(pg_temp.hdr(:'r_headers', 'Location'), '/Users/2819c223', 'POST: without a forwarded host the Location stays as given');
SELECT is((SELECT coalesce(base_url, '') FROM pg_temp.handle_calls), '', 'POST: without a forwarded host no base URL is made up');
TRUNCATE pg_temp.handle_calls;

SELECT * FROM pg_temp.pgrst('{"x-scim-method": "POST", "x-scim-uri": "/scim/v2/Users", "x-scim-token": "Bearer tok"}') \gset r_
SELECT is((SELECT coalesce(body, '<none>') FROM pg_temp.handle_calls), '<none>', 'POST: an empty text/plain body is no body');
TRUNCATE pg_temp.handle_calls;

SELECT * FROM pg_temp.pgrst('{"x-scim-method": "POST", "x-scim-uri": "/scim/v2/Users", "x-scim-token": "Bearer tok"}',
							'{"userName": "a@example.com",  "emails": [{"value":"a@example.com"}]}') \gset r_
SELECT is((SELECT body FROM pg_temp.handle_calls), '{"userName": "a@example.com",  "emails": [{"value":"a@example.com"}]}',
		  'POST: a text/plain body reaches scim.handle byte for byte');
TRUNCATE pg_temp.handle_calls;

SELECT * FROM pg_temp.pgrst('{"x-scim-method": "POST", "x-scim-uri": "/scim/v2/Users", "x-scim-token": "Bearer tok"}', '{userName: ', false) \gset r_
SELECT is((SELECT body FROM pg_temp.handle_calls), '{userName: ', 'POST: a body that is not JSON reaches scim.handle too');
TRUNCATE pg_temp.handle_calls;

-- the 0.2.0 contract: Content-Type application/json, dispatch(jsonb)
SELECT * FROM pg_temp.pgrst('{"x-scim-method": "POST", "x-scim-uri": "/scim/v2/Users", "x-scim-token": "Bearer tok"}', NULL, false, true) \gset r_
SELECT is((SELECT body FROM pg_temp.handle_calls), '{}', 'dispatch(jsonb), POST: an empty object stays a body');
TRUNCATE pg_temp.handle_calls;
SELECT * FROM pg_temp.pgrst('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users/1", "x-scim-token": "Bearer tok", "x-forwarded-host": "scim.example.com"}',
							NULL, false, true) \gset r_
SELECT results_eq($$SELECT method, path, body, headers ->> 'authorization', base_url FROM pg_temp.handle_calls$$,
				  $$VALUES ('GET', '/Users/1', NULL::text, 'Bearer tok', 'https://scim.example.com/scim/v2')$$,
				  'dispatch(jsonb), GET: {} is no body; headers, token and base URL as with dispatch(text)');
SELECT is(pg_temp.hdr(:'r_headers', 'Location'), 'https://scim.example.com/scim/v2/Users/2819c223', 'dispatch(jsonb): Location made absolute as with dispatch(text)');
TRUNCATE pg_temp.handle_calls;

SELECT status, body IS NULL AS no_body FROM pg_temp.pgrst('{"x-scim-method": "delete", "x-scim-uri": "https://idp.example/tenants/acme/scim/V2/Users/2819c223?"}') \gset r_
SELECT is(:r_status, 204, 'DELETE: 204');
SELECT ok(:'r_no_body'::boolean, 'DELETE: no body');
SELECT results_eq($$SELECT method, path, query, body, headers FROM pg_temp.handle_calls$$,
				  $$VALUES ('DELETE', '/Users/2819c223', NULL::text, NULL::text, '{}'::jsonb)$$,
				  'DELETE: method upper-cased, absolute URI and base with any prefix stripped, empty query is none, no token is no authorization');
TRUNCATE pg_temp.handle_calls;

SELECT * FROM pg_temp.pgrst('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Schemas/urn%3Aietf%3Aparams%3Ascim%3Aschemas%3Acore%3A2.0%3AUser?attributes=id%2Cname"}') \gset r_
SELECT results_eq($$SELECT path, query FROM pg_temp.handle_calls$$,
				  $$VALUES ('/Schemas/urn:ietf:params:scim:schemas:core:2.0:User', 'attributes=id%2Cname')$$,
				  'the path is percent-decoded, the query is not');
TRUNCATE pg_temp.handle_calls;

SELECT * FROM pg_temp.pgrst('{"x-scim-method": "GET", "x-scim-uri": "/ServiceProviderConfig"}') \gset r_
SELECT is((SELECT path FROM pg_temp.handle_calls), '/ServiceProviderConfig', 'a URI without a /v2 base is taken as base-relative');
TRUNCATE pg_temp.handle_calls;

-- ---- base URLs from request headers: only http(s)://host[:port][/path] -------
SELECT results_eq($$SELECT u, scim._valid_base_url(u) FROM (VALUES
		('https://scim.example.com/scim/v2'), ('http://scim.example.com:8080'), ('https://10.0.0.1:8443/v2'),
		('https://[2001:db8::1]:8443/scim/v2'), ('HTTPS://Scim.Example.COM/t_1/v2'),
		('https://evil.example"><x>'), ('https://evil.example"><x>/scim/v2'), ('https://evil.example/<x>/v2'),
		('javascript://evil.example/v2'), ('ftp://evil.example/v2'), ('https://user:pw@evil.example/v2'),
		('https://a.example,b.example/v2'), ('https://evil.example:0/v2'), ('https://evil.example:65536/v2'),
		('https://evil.example:/v2'), ('https://evil.example/v2?x=1'), ('https://evil.example/v2#x'),
		('https://evil.example/sc%69m/v2'), ('https://evil.example /v2'), (E'https://evil.example\r\nSet-Cookie: x/v2'),
		('https://-evil.example/v2'), ('https:///v2'), ('https://evil..example/v2'), ('//evil.example/v2'),
		('https://' || repeat('a', 64) || '.example/v2')) AS t(u)$$,
	$$VALUES ('https://scim.example.com/scim/v2', true), ('http://scim.example.com:8080', true), ('https://10.0.0.1:8443/v2', true),
		('https://[2001:db8::1]:8443/scim/v2', true), ('HTTPS://Scim.Example.COM/t_1/v2', true),
		('https://evil.example"><x>', false), ('https://evil.example"><x>/scim/v2', false), ('https://evil.example/<x>/v2', false),
		('javascript://evil.example/v2', false), ('ftp://evil.example/v2', false), ('https://user:pw@evil.example/v2', false),
		('https://a.example,b.example/v2', false), ('https://evil.example:0/v2', false), ('https://evil.example:65536/v2', false),
		('https://evil.example:/v2', false), ('https://evil.example/v2?x=1', false), ('https://evil.example/v2#x', false),
		('https://evil.example/sc%69m/v2', false), ('https://evil.example /v2', false), (E'https://evil.example\r\nSet-Cookie: x/v2', false),
		('https://-evil.example/v2', false), ('https:///v2', false), ('https://evil..example/v2', false), ('//evil.example/v2', false),
		('https://' || repeat('a', 64) || '.example/v2', false)$$,
	'scim._valid_base_url: plain http(s)://host[:port][/path] only');

-- what one request with these headers makes of the base URL and Location
CREATE FUNCTION pg_temp.base_from(hdrs jsonb, OUT base_url text, OUT location text)
	LANGUAGE plpgsql
AS $$
DECLARE
	r record;
BEGIN
	TRUNCATE pg_temp.handle_calls;
	SELECT * INTO r FROM pg_temp.pgrst('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users/1", "x-scim-token": "Bearer tok"}'::jsonb || hdrs);
	base_url := coalesce((SELECT c.base_url FROM pg_temp.handle_calls AS c), '');
	location := pg_temp.hdr(r.headers, 'Location');
	TRUNCATE pg_temp.handle_calls;
END;
$$;
SELECT results_eq($$SELECT name, (pg_temp.base_from(hdrs)).* FROM (VALUES
		(1, 'host with markup', '{"x-forwarded-host": "evil.example\"><x>"}'::jsonb),
		(2, 'host with a path', '{"x-forwarded-host": "evil.example/<script>"}'),
		(3, 'host list', '{"x-forwarded-host": "a.example, b.example"}'),
		(4, 'host with userinfo', '{"x-forwarded-host": "user@evil.example"}'),
		(5, 'host with a bad port', '{"x-forwarded-host": "evil.example:99999"}'),
		(6, 'host with CR LF', '{"x-forwarded-host": "evil.example\r\nSet-Cookie: a=b"}'),
		(7, 'host not a string', '{"x-forwarded-host": ["evil.example"]}'),
		(8, 'scheme javascript', '{"x-forwarded-host": "scim.example.com", "x-forwarded-proto": "javascript"}'),
		(9, 'scheme with markup', '{"x-forwarded-host": "scim.example.com", "x-forwarded-proto": "https\"><x>"}'),
		(10, 'absolute URI with markup', '{"x-scim-uri": "https://evil.example\"><x>/scim/v2/Users/1"}'),
		(11, 'absolute URI, scheme javascript', '{"x-scim-uri": "javascript://evil.example/scim/v2/Users/1"}'),
		(12, 'base path with markup', '{"x-forwarded-host": "scim.example.com", "x-scim-uri": "/\"><x>/scim/v2/Users/1"}'),
		(13, 'base path percent-encoded', '{"x-forwarded-host": "scim.example.com", "x-scim-uri": "/scim%22%3E/v2/Users/1"}'),
		(14, 'good: host and port', '{"x-forwarded-host": "scim.example.com:8443"}'),
		(15, 'good: http, IPv6', '{"x-forwarded-host": "[::1]:8080", "x-forwarded-proto": "HTTP"}'),
		(16, 'good: absolute URI', '{"x-scim-uri": "https://scim.example.com/tenant-1/scim/v2/Users/1"}')
	) AS t(n, name, hdrs) ORDER BY n$$,
	$$VALUES ('host with markup', '', '/Users/2819c223'), ('host with a path', '', '/Users/2819c223'),
		('host list', '', '/Users/2819c223'), ('host with userinfo', '', '/Users/2819c223'),
		('host with a bad port', '', '/Users/2819c223'), ('host with CR LF', '', '/Users/2819c223'),
		('host not a string', '', '/Users/2819c223'), ('scheme javascript', '', '/Users/2819c223'),
		('scheme with markup', '', '/Users/2819c223'), ('absolute URI with markup', '', '/Users/2819c223'),
		('absolute URI, scheme javascript', '', '/Users/2819c223'), ('base path with markup', '', '/Users/2819c223'),
		('base path percent-encoded', '', '/Users/2819c223'),
		('good: host and port', 'https://scim.example.com:8443/scim/v2', 'https://scim.example.com:8443/scim/v2/Users/2819c223'),
		('good: http, IPv6', 'http://[::1]:8080/scim/v2', 'http://[::1]:8080/scim/v2/Users/2819c223'),
		('good: absolute URI', 'https://scim.example.com/tenant-1/scim/v2', 'https://scim.example.com/tenant-1/scim/v2/Users/2819c223')$$,
	'hostile X-Forwarded-Host, X-Forwarded-Proto or X-Scim-Uri: no base URL, Location stays relative; plain ones are used');

-- ---- dispatch never raises: failures become SCIM 500, logged -------------------
CREATE OR REPLACE FUNCTION scim.handle(method text, path text, query text DEFAULT NULL, headers jsonb DEFAULT '{}', body text DEFAULT NULL)
	RETURNS TABLE(status integer, headers jsonb, body jsonb)
	LANGUAGE sql
AS $$
	INSERT INTO scim.provisioning_log (workspace, source, method, path, status, detail)
	VALUES ('default', 'scim', $1, $2, 201, 'written, then the request failed');
	SELECT 1 / 0, NULL::jsonb, NULL::jsonb;
$$;
SELECT count(*) AS log_before FROM scim.provisioning_log \gset
SELECT * FROM pg_temp.pgrst('{"x-scim-method": "POST", "x-scim-uri": "/scim/v2/Users", "x-scim-token": "Bearer tok"}', '{"userName": "x"}') \gset r_
SELECT is(:r_status, 500, 'an error inside scim.handle: 500');
SELECT is(:'r_body'::jsonb, '{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "500", "detail": "internal server error"}',
		  'an error inside scim.handle: a generic SCIM error document');
SELECT is(pg_temp.hdr(:'r_headers', 'Content-Type'), 'application/scim+json', 'an error inside scim.handle: Content-Type application/scim+json');
SELECT results_eq($$SELECT status, method, path, detail FROM scim.provisioning_log WHERE id > (SELECT max(id) - 1 FROM scim.provisioning_log)$$,
				  $$VALUES (500, 'POST', '/scim/v2/Users', 'unexpected error in scim_api.dispatch (SQLSTATE 22012); see the server log')$$,
				  'an error inside scim.handle: logged with its SQLSTATE');
SELECT is((SELECT count(*) FROM scim.provisioning_log) - :log_before, 1::bigint, 'an error inside scim.handle: what it wrote is rolled back');

CREATE OR REPLACE FUNCTION scim.handle(method text, path text, query text DEFAULT NULL, headers jsonb DEFAULT '{}', body text DEFAULT NULL)
	RETURNS TABLE(status integer, headers jsonb, body jsonb)
	LANGUAGE sql
AS $$ SELECT 200, NULL::jsonb, NULL::jsonb WHERE false $$;
SELECT * FROM pg_temp.pgrst('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users", "x-scim-token": "Bearer tok"}') \gset r_
SELECT is(:r_status, 500, 'scim.handle answering no row: 500');

CREATE OR REPLACE FUNCTION scim.handle(method text, path text, query text DEFAULT NULL, headers jsonb DEFAULT '{}', body text DEFAULT NULL)
	RETURNS TABLE(status integer, headers jsonb, body jsonb)
	LANGUAGE sql
AS $$ SELECT 42, '{}'::jsonb, '{}'::jsonb $$;
SELECT * FROM pg_temp.pgrst('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users", "x-scim-token": "Bearer tok"}') \gset r_
SELECT is(:r_status, 500, 'scim.handle answering a status that is not HTTP: 500');

CREATE OR REPLACE FUNCTION scim.handle(method text, path text, query text DEFAULT NULL, headers jsonb DEFAULT '{}', body text DEFAULT NULL)
	RETURNS TABLE(status integer, headers jsonb, body jsonb)
	LANGUAGE sql
AS $$ SELECT 401, '[{"ETag": "x"}]'::jsonb, '{"status": "401"}'::jsonb $$;
SELECT * FROM pg_temp.pgrst('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users"}') \gset r_
SELECT is(:r_status, 401, 'a 401 from scim.handle stays 401');
SELECT is(pg_temp.hdr(:'r_headers', 'WWW-Authenticate'), 'Bearer realm="SCIM"', 'a 401 always names its scheme in WWW-Authenticate');
SELECT is(pg_temp.hdr(:'r_headers', 'ETag'), 'x', 'headers given as an array of single-key objects are kept');

-- even when the System Log itself fails, dispatch answers
ALTER FUNCTION scim.log_attempt(text, text, text, uuid, text, integer, text, text, text) RENAME TO log_attempt_real;
CREATE FUNCTION scim.log_attempt(source text, method text, path text, resource_id uuid, user_name text, status integer,
								 scim_type text, detail text, workspace text DEFAULT 'default')
	RETURNS bigint LANGUAGE sql AS $$ SELECT 1 / 0 $$;
SELECT * FROM pg_temp.pgrst('{"x-scim-uri": "/scim/v2/Users"}') \gset r_
SELECT is(:r_status, 400, 'a failing System Log does not turn an answer into an error');
DROP FUNCTION scim.log_attempt(text, text, text, uuid, text, integer, text, text, text);
ALTER FUNCTION scim.log_attempt_real(text, text, text, uuid, text, integer, text, text, text) RENAME TO log_attempt;

DROP FUNCTION scim.handle(text, text, text, jsonb, text);
ALTER FUNCTION scim.handle_real(text, text, text, jsonb, text) RENAME TO handle;

-- ---- the real scim.handle behind dispatch ----------------------------------------
SELECT scim.approve_domain('example.com') IS NULL AS approved \gset
SELECT 'Bearer ' || scim.create_token('regress-postgrest') AS bearer \gset
SELECT * FROM pg_temp.pgrst(jsonb_build_object('x-scim-method', 'GET', 'x-scim-uri', '/scim/v2/ServiceProviderConfig',
											   'x-scim-token', :'bearer')) \gset r_
SELECT is(:r_status, 200, 'GET /scim/v2/ServiceProviderConfig: 200');
SELECT ok(:'r_body'::jsonb -> 'schemas' ? 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig',
		  'GET /scim/v2/ServiceProviderConfig: the ServiceProviderConfig resource');
SELECT is(pg_temp.hdr(:'r_headers', 'Content-Type'), 'application/scim+json', 'GET /scim/v2/ServiceProviderConfig: Content-Type application/scim+json');

SELECT * FROM pg_temp.pgrst('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users"}') \gset r_
SELECT is(:r_status, 401, 'no token: 401 from scim.handle');
SELECT matches(pg_temp.hdr(:'r_headers', 'WWW-Authenticate'), '^Bearer', 'no token: WWW-Authenticate');

-- two tokens (#15): request.headers is JSON text, where a header that came
-- twice is a duplicate key; dispatch refuses it (401) rather than letting
-- jsonb keep the last one
CREATE FUNCTION pg_temp.dispatch_raw(raw_headers text, as_text boolean DEFAULT false, OUT status integer, OUT www text, OUT detail text)
	LANGUAGE plpgsql
AS $$
DECLARE
	b jsonb;
BEGIN
	PERFORM set_config('role', 'scim_client', true), set_config('request.headers', raw_headers, true);
	b := CASE WHEN as_text THEN scim_api.dispatch(''::text) ELSE scim_api.dispatch('{}'::jsonb) END;
	status := current_setting('response.status')::integer;
	www := pg_temp.hdr(current_setting('response.headers')::jsonb, 'WWW-Authenticate');
	detail := b ->> 'detail';
	PERFORM set_config('role', 'none', true), set_config('request.headers', '', true);
END;
$$;
SELECT * FROM pg_temp.dispatch_raw(format('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users", "x-scim-token": %s, "x-scim-token": %s}',
										  to_json(:'bearer'::text), to_json(:'bearer'::text))) \gset r_
SELECT is(:r_status, 401, 'X-Scim-Token twice (a duplicate key in request.headers): 401');
SELECT is((pg_temp.dispatch_raw(format('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users", "x-scim-token": %s, "x-scim-token": %s}',
										to_json(:'bearer'::text), to_json(:'bearer'::text)), true)).status,
		  401, 'X-Scim-Token twice, through dispatch(text): 401 too');
SELECT is(:'r_detail'::text, 'authentication refused: the request has more than one Authorization header', 'it says why');
SELECT matches(:'r_www'::text, '^Bearer', 'with WWW-Authenticate');
SELECT * FROM pg_temp.dispatch_raw(format('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users", "x-scim-token": %s}',
										  to_json(:'bearer' || ', ' || :'bearer'::text))) \gset r_
SELECT is(:r_status, 401, 'X-Scim-Token with two comma-joined tokens (nginx joining repeated headers): 401');
SELECT * FROM pg_temp.dispatch_raw(format('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users", "x-scim-token": %s}',
										  to_json(:'bearer'::text))) \gset r_
SELECT is(:r_status, 200, '(one token: 200)');

SELECT * FROM pg_temp.pgrst(jsonb_build_object('x-scim-method', 'POST', 'x-scim-uri', '/scim/v2/Users', 'x-scim-token', :'bearer',
											   'x-forwarded-host', 'scim.example.com', 'x-forwarded-proto', 'https'),
							'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "pgrst@example.com", "active": true}') \gset r_
SELECT is(:r_status, 201, 'POST /scim/v2/Users: 201');
SELECT is(pg_temp.hdr(:'r_headers', 'Location'), 'https://scim.example.com/scim/v2/Users/' || (:'r_body'::jsonb ->> 'id'),
		  'POST /scim/v2/Users: Location is the absolute resource URL');
SELECT is(:'r_body'::jsonb -> 'meta' ->> 'location', pg_temp.hdr(:'r_headers', 'Location'), 'POST /scim/v2/Users: meta.location equals Location');
SELECT is(pg_temp.hdr(:'r_headers', 'ETag'), :'r_body'::jsonb -> 'meta' ->> 'version', 'POST /scim/v2/Users: ETag is meta.version');
SELECT is(coalesce(current_setting('scim_provision.base_url', true), ''), '', 'the base URL was only set for that request');

SELECT * FROM pg_temp.pgrst(jsonb_build_object('x-scim-method', 'POST', 'x-scim-uri', '/scim/v2/Users', 'x-scim-token', :'bearer',
											   'x-forwarded-host', 'evil.example"><x>', 'x-forwarded-proto', 'https'),
							'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "hostile@example.com", "active": true}') \gset r_
SELECT is(:r_status, 201, 'POST with a hostile X-Forwarded-Host: 201');
SELECT is(pg_temp.hdr(:'r_headers', 'Location'), '/Users/' || (:'r_body'::jsonb ->> 'id'), 'POST with a hostile X-Forwarded-Host: Location is relative');
SELECT is(:'r_body'::jsonb -> 'meta' ->> 'location', '/Users/' || (:'r_body'::jsonb ->> 'id'), 'POST with a hostile X-Forwarded-Host: meta.location is relative');
SELECT unalike(:'r_body'::text, '%evil%', 'POST with a hostile X-Forwarded-Host: nothing of it in the body');
SELECT :'r_body'::jsonb ->> 'id' AS hostile_id \gset

-- a body that is not JSON: a SCIM 400 invalidSyntax and its System Log row
SELECT coalesce(max(id), 0) AS log_max FROM scim.provisioning_log \gset
SELECT * FROM pg_temp.pgrst(jsonb_build_object('x-scim-method', 'POST', 'x-scim-uri', '/scim/v2/Users', 'x-scim-token', :'bearer'),
							'{"userName": "broken@example.com",') \gset r_
SELECT is(:r_status, 400, 'POST with a body that is not JSON: 400');
SELECT is(:'r_body'::jsonb ->> 'scimType', 'invalidSyntax', 'POST with a body that is not JSON: invalidSyntax');
SELECT is(:'r_body'::jsonb -> 'schemas', '["urn:ietf:params:scim:api:messages:2.0:Error"]', 'POST with a body that is not JSON: a SCIM error document');
SELECT results_eq($$SELECT status, scim_type, method FROM scim.provisioning_log WHERE id > $$ || :log_max || $$ ORDER BY id$$,
				  $$VALUES (400, 'invalidSyntax', 'POST')$$, 'POST with a body that is not JSON: one System Log row');
SELECT is((SELECT count(*)::integer FROM scim.users WHERE user_name = 'broken@example.com'), 0, 'POST with a body that is not JSON: no user');
SELECT * FROM pg_temp.pgrst(jsonb_build_object('x-scim-method', 'PATCH', 'x-scim-uri', '/scim/v2/Users/' || :'hostile_id', 'x-scim-token', :'bearer'),
							'not json at all') \gset r_
SELECT is(:r_status || ' ' || (:'r_body'::jsonb ->> 'scimType'), '400 invalidSyntax', 'PATCH with a body that is not JSON: 400 invalidSyntax');

-- ---- the optional pre-request hook --------------------------------------------
SELECT lives_ok($$SELECT * FROM pg_temp.pgrst('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users", "x-scim-token": "Bearer abc"}', '{}', true)$$,
				'pre_request lets a request with a bearer token through');
SELECT throws_ok($$SELECT * FROM pg_temp.pgrst('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users"}', '{}', true)$$,
				 'PGRST', NULL, 'pre_request refuses a request without a token with SQLSTATE PGRST');
SELECT throws_ok($$SELECT * FROM pg_temp.pgrst('{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users", "x-scim-token": "Basic dXNlcjpwdw=="}', '{}', true)$$,
				 'PGRST', NULL, 'pre_request refuses a token that is not a bearer token');

-- PostgREST (>= 12) parses MESSAGE as {"code","message"[,"details","hint"]}
-- and DETAIL as {"status","headers"[,"status_text"]}, headers of strings
CREATE FUNCTION pg_temp.pre_request_error(OUT message jsonb, OUT detail jsonb)
	LANGUAGE plpgsql
AS $$
BEGIN
	PERFORM set_config('request.headers', '{"x-scim-method": "GET"}', true);
	PERFORM scim_api.pre_request();
EXCEPTION WHEN SQLSTATE 'PGRST' THEN
	GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
END;
$$;
SELECT * FROM pg_temp.pre_request_error() \gset e_
SELECT ok(:'e_message'::jsonb ?& ARRAY['code', 'message']
		  AND jsonb_typeof(:'e_message'::jsonb -> 'code') = 'string'
		  AND jsonb_typeof(:'e_message'::jsonb -> 'message') = 'string'
		  AND coalesce(jsonb_typeof(:'e_message'::jsonb -> 'details'), 'string') IN ('string', 'null')
		  AND coalesce(jsonb_typeof(:'e_message'::jsonb -> 'hint'), 'string') IN ('string', 'null'),
		  'the refusal''s MESSAGE is what PostgREST parses');
SELECT is(:'e_detail'::jsonb -> 'status', '401', 'the refusal is HTTP 401');
SELECT is(:'e_detail'::jsonb -> 'headers' ->> 'WWW-Authenticate', 'Bearer realm="SCIM"', 'the refusal carries WWW-Authenticate');
SELECT is((SELECT count(*)::integer FROM jsonb_each(:'e_detail'::jsonb -> 'headers') AS e WHERE jsonb_typeof(e.value) <> 'string'),
		  0, 'the refusal''s headers are all strings');

SELECT * FROM finish();
ROLLBACK;
