-- scim.handle's fast path (src/handle.c) against the PL/pgSQL router: the
-- same requests sent with scim_provision.fast_path on and off must give the
-- same status, headers, body and System Log row, and the router must be
-- called exactly for the requests the fast path does not answer itself
-- (counted with track_functions).
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(103);

SET LOCAL track_functions = 'pl';
SET LOCAL scim_provision.base_url = 'https://sp.example.com/scim/v2/';

SELECT scim.create_workspace('fp_main');
SELECT scim.create_workspace('fp_other');
SELECT scim.approve_domain('example.com', 'fp_main');
SELECT scim.approve_domain('example.com', 'fp_other');
SELECT 'Bearer ' || scim.create_token('idp', 'fp_main') AS tok \gset
SELECT 'Bearer ' || scim.create_token('idp', 'fp_other') AS other_tok \gset
SELECT jsonb_build_object('authorization', :'tok') AS auth \gset

SELECT body ->> 'id' AS ann FROM scim.handle('POST', '/Users', NULL, :'auth',
	'{"userName":"ann@example.com","externalId":"ext-ann","name":{"givenName":"Ann"},"emails":[{"value":"ann@example.com","type":"work","primary":true}]}') \gset
SELECT body ->> 'id' AS bob FROM scim.handle('POST', '/Users', NULL, :'auth',
	'{"userName":"bob@example.com","externalId":"ext-dup","title":"Engineer","active":false}') \gset
SELECT body ->> 'id' AS cy FROM scim.handle('POST', '/Users', NULL, :'auth',
	'{"userName":"cy@example.com","externalId":"ext-dup","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D"}}') \gset
SELECT body ->> 'id' AS eng FROM scim.handle('POST', '/Groups', NULL, :'auth',
	jsonb_build_object('displayName', 'Eng', 'members', jsonb_build_array(jsonb_build_object('value', :'ann')))::text) \gset
-- the same userName in another workspace must not show
SELECT body ->> 'id' AS other_ann FROM scim.handle('POST', '/Users', NULL, jsonb_build_object('authorization', :'other_tok'),
	'{"userName":"ann@example.com","externalId":"ext-ann"}') \gset

CREATE TEMP TABLE reqs (n serial, method text, path text, query text, headers jsonb, fast boolean, what text);
INSERT INTO reqs (method, path, query, headers, fast, what) VALUES
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22', :'auth'::jsonb, true, 'userName eq'),
	('get', 'Users/', 'filter=userName+eq+"ann@example.com"', :'auth'::jsonb, true, 'method and path in another case, + as space'),
	(' GET ', '//USERS//', 'filter=userName%20eq%20%22ANN%40EXAMPLE.COM%22', :'auth'::jsonb, true, 'userName is case-insensitive'),
	('GET', '/Users', 'filter=urn%3Aietf%3Aparams%3Ascim%3Aschemas%3Acore%3A2.0%3AUser%3AuserName%20eq%20%22ann%40example.com%22', :'auth'::jsonb, true, 'URN-qualified userName'),
	('GET', '/Users', 'filter=USERNAME%20EQ%20%22ann%40example.com%22', :'auth'::jsonb, true, 'attribute and operator in upper case'),
	('GET', '/Users', 'filter=userName%20eq%20%22nobody%40example.com%22', :'auth'::jsonb, true, 'no match: Resources []'),
	('GET', '/Users', 'filter=externalId%20eq%20%22ext-dup%22', :'auth'::jsonb, true, 'externalId eq, two users'),
	('GET', '/Users', 'filter=externalId%20eq%20%22EXT-DUP%22', :'auth'::jsonb, true, 'externalId is caseExact'),
	('GET', '/Users', 'filter=externalId%20eq%20%22ext-dup%22&count=1', :'auth'::jsonb, true, 'a full page: the total is counted'),
	('GET', '/Users', 'filter=externalId%20eq%20%22ext-dup%22&startIndex=2&count=1', :'auth'::jsonb, true, 'the second page'),
	('GET', '/Users', 'filter=externalId%20eq%20%22ext-dup%22&startIndex=5', :'auth'::jsonb, true, 'beyond the end: counted'),
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22&startIndex=0&count=%2B3', :'auth'::jsonb, true, 'startIndex below 1, count with a sign'),
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22&count=100000', :'auth'::jsonb, true, 'count above max_results'),
	('GET', '/Users', 'Filter=userName%20eq%20%22ann%40example.com%22&STARTINDEX=1', :'auth'::jsonb, true, 'parameter names in another case'),
	('GET', '/Users', 'filter=userName%20eq%20%22bob%40example.com%22&aadOptscim062020', :'auth'::jsonb, true, 'unknown parameters are ignored'),
	('GET', '/Users', 'filter=userName%20eq%20%22x%22&filter=userName%20eq%20%22cy%40example.com%22', :'auth'::jsonb, true, 'a repeated parameter: the last counts'),
	('GET', '/Users?filter=userName%20eq%20%22cy%40example.com%22', NULL, :'auth'::jsonb, true, 'the query string in the path'),
	('GET', '/Users?filter=userName%20eq%20%22cy%40example.com%22', 'filter=userName%20eq%20%22ann%40example.com%22', :'auth'::jsonb, true, 'the query argument wins over the path'),
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22', jsonb_build_object('Authorization', 'bearer ' || substr(:'tok', 8)), true, 'header name and scheme in another case'),
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22', :'auth'::jsonb || '{"accept":"application/scim+json"}', true, 'other headers'),
	('GET', '/Users', 'filter=%20userName%20eq%20%22ann%40example.com%22%20', :'auth'::jsonb, true, 'white space around the filter'),
	('GET', '/Users/' || :'ann', NULL, :'auth'::jsonb, true, 'a user by id (ETag, groups)'),
	('get', '/users/' || upper(:'ann') || '/', NULL, :'auth'::jsonb, true, 'a user by id in upper case, trailing slash'),
	('GET', 'Users/' || replace(:'cy', '-', ''), '', :'auth'::jsonb, true, 'a user by id without hyphens'),
	('GET', '/Users/' || :'bob' || '?aadOptscim062020', NULL, :'auth'::jsonb, true, 'a user by id, an unknown parameter'),
	-- the router's
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22&count=0', :'auth'::jsonb, false, 'count=0: totalResults only'),
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22&count=-1', :'auth'::jsonb, false, 'a negative count is 0'),
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22&startIndex=abc', :'auth'::jsonb, false, 'a malformed startIndex: 400'),
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22&attributes=userName', :'auth'::jsonb, false, 'attributes'),
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22&sortBy=userName', :'auth'::jsonb, false, 'sortBy'),
	('GET', '/Users', 'filter=userName%20ne%20%22ann%40example.com%22', :'auth'::jsonb, false, 'another operator'),
	('GET', '/Users', 'filter=userName%20eq%2042', :'auth'::jsonb, false, 'a number'),
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22%20and%20active%20eq%20true', :'auth'::jsonb, false, 'a conjunction'),
	('GET', '/Users', 'filter=name.givenName%20eq%20%22Ann%22', :'auth'::jsonb, false, 'a sub-attribute'),
	('GET', '/Users', 'filter=userName%20eq%20%22ann', :'auth'::jsonb, false, 'a malformed filter: 400 invalidFilter'),
	('GET', '/Users', 'filter=%FF', :'auth'::jsonb, false, 'not UTF-8 once decoded: 400'),
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22', '{}', false, 'no token: 401'),
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22', '{"authorization":"Bearer scim_000000000000000000000000_x"}', false, 'an unknown token: 401'),
	('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22', '{"authorization":"Basic abc"}', false, 'another scheme: 401'),
	('GET', '/Users', NULL, :'auth'::jsonb, false, 'no filter'),
	('GET', '/Users/' || :'ann', 'filter=userName%20eq%20%22ann%40example.com%22', :'auth'::jsonb, false, 'a user by id with a SCIM parameter'),
	('GET', '/Users/' || :'ann', 'attributes=userName', :'auth'::jsonb, false, 'a user by id with attributes'),
	('GET', '/Users/00000000-0000-0000-0000-000000000000', NULL, :'auth'::jsonb, false, 'an unknown id: 404'),
	('GET', '/Users/' || :'other_ann', NULL, :'auth'::jsonb, false, 'another workspace''s user: 404'),
	('GET', '/Users/not-an-id', NULL, :'auth'::jsonb, false, 'not an id: 404'),
	('GET', '/Users/' || :'ann', NULL, :'auth'::jsonb || '{"If-None-Match":"W/\"1\""}', false, 'If-None-Match: 304'),
	('GET', '/Users/' || :'ann', NULL, :'auth'::jsonb || '{"if-none-match":"W/\"9\""}', false, 'If-None-Match of another version'),
	('POST', '/Users/.search', NULL, :'auth'::jsonb, false, 'POST'),
	('GET', '/Groups', 'filter=displayName%20eq%20%22Eng%22', :'auth'::jsonb, false, 'Groups');

CREATE TEMP TABLE outcome (n integer, mode text, status integer, headers jsonb, body jsonb, log jsonb, routed bigint);
CREATE FUNCTION pg_temp.run(mode text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	r		record;
	o		record;
	before	bigint;
	last_id	bigint;
BEGIN
	PERFORM set_config('scim_provision.fast_path', CASE mode WHEN 'fast' THEN 'on' ELSE 'off' END, true);
	FOR r IN SELECT * FROM reqs ORDER BY n LOOP
		before := coalesce(pg_stat_get_xact_function_calls('scim._handle'::regproc), 0);
		SELECT max(id) INTO last_id FROM scim.provisioning_log;
		SELECT * INTO o FROM scim.handle(r.method, r.path, r.query, r.headers);
		INSERT INTO outcome
		SELECT r.n, mode, o.status, o.headers, o.body,
			   (SELECT jsonb_agg(to_jsonb(l) - 'id' - 'at') FROM scim.provisioning_log l WHERE l.id > last_id),
			   coalesce(pg_stat_get_xact_function_calls('scim._handle'::regproc), 0) - before;
	END LOOP;
END;
$$;
SELECT pg_temp.run('fast');
SELECT pg_temp.run('router');

-- the same answer and log row both ways
SELECT is(jsonb_build_object('status', f.status, 'headers', f.headers, 'body', f.body, 'log', f.log),
		  jsonb_build_object('status', s.status, 'headers', s.headers, 'body', s.body, 'log', s.log),
		  format('#%s %s: the same response and log row', r.n, r.what))
FROM reqs r
JOIN outcome f ON f.n = r.n AND f.mode = 'fast'
JOIN outcome s ON s.n = r.n AND s.mode = 'router'
ORDER BY r.n;

-- the router answers what the fast path does not recognise
SELECT is(f.routed, CASE WHEN r.fast THEN 0 ELSE 1 END::bigint,
		  format('#%s %s: %s', r.n, r.what, CASE WHEN r.fast THEN 'answered by the fast path' ELSE 'handed to the router' END))
FROM reqs r
JOIN outcome f ON f.n = r.n AND f.mode = 'fast'
ORDER BY r.n;

SELECT ok(bool_and(o.routed = 1), 'with scim_provision.fast_path off, the router answers every request')
FROM outcome o WHERE o.mode = 'router';

-- what the comparisons above rest on
SELECT is((SELECT (body -> 'Resources' -> 0 -> 'groups' -> 0 ->> '$ref') FROM outcome WHERE n = 1 AND mode = 'fast'),
		  'https://sp.example.com/scim/v2/Groups/' || :'eng', 'the fast path shows the user''s groups, with the base URL');
SELECT is((SELECT (body ->> 'totalResults') || '/' || (body ->> 'itemsPerPage') FROM outcome WHERE n = 9 AND mode = 'fast'),
		  '2/1', 'a full page: totalResults counted, itemsPerPage 1');
SELECT is((SELECT o.status || ' ' || (o.headers ->> 'ETag') || ' ' || (o.body ->> 'userName') || ' ' || (o.log -> 0 ->> 'resource_id')
		   FROM outcome o JOIN reqs r USING (n) WHERE r.what = 'a user by id (ETag, groups)' AND o.mode = 'fast'),
		  '200 W/"1" ann@example.com ' || :'ann', 'a user by id: 200, its ETag, its resource, logged with its id');
SELECT is((SELECT o.status FROM outcome o JOIN reqs r USING (n) WHERE r.what = 'If-None-Match: 304' AND o.mode = 'fast'),
		  304, 'If-None-Match of the current version: 304 (by the router)');

SELECT * FROM finish();
ROLLBACK;
