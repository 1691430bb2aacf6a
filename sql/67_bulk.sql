-- POST /Bulk (RFC 7644 section 3.7): operations through scim.handle's own
-- logic, bulkId references (forward ones too), failOnErrors, the limits
-- (413 tooLarge), per-operation results, one System Log row per operation
-- and one for the request, /ServiceProviderConfig.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(62);

DO $$
BEGIN
	PERFORM scim.create_workspace('bulk_main');
	PERFORM scim.approve_domain('example.com', 'bulk_main');
	PERFORM set_config('test.auth', 'Bearer ' || scim.create_token('idp', 'bulk_main'), false);
END;
$$;
CREATE TEMP TABLE resp (status integer, headers jsonb, body jsonb);
CREATE FUNCTION pg_temp.call(method text, path text, body text DEFAULT NULL, extra jsonb DEFAULT '{}')
	RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM resp;
	INSERT INTO resp
	SELECT h.status, h.headers, h.body
	FROM scim.handle(method, path, NULL, jsonb_build_object('authorization', current_setting('test.auth')) || extra, body) h;
	RETURN (SELECT r.status FROM resp r);
END;
$$;
CREATE FUNCTION pg_temp.b() RETURNS jsonb LANGUAGE sql AS $$ SELECT body FROM resp $$;
-- the results of the last BulkResponse as (n, method, bulkId, status)
CREATE FUNCTION pg_temp.results() RETURNS TABLE (n bigint, method text, bulk_id text, status text) LANGUAGE sql AS $$
	SELECT k, o ->> 'method', o ->> 'bulkId', o ->> 'status'
	FROM resp, jsonb_array_elements(body -> 'Operations') WITH ORDINALITY a(o, k) $$;
CREATE FUNCTION pg_temp.op(k integer) RETURNS jsonb LANGUAGE sql AS $$ SELECT body -> 'Operations' -> (k - 1) FROM resp $$;
CREATE FUNCTION pg_temp.log_count() RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM scim.provisioning_log WHERE workspace = 'bulk_main' $$;

-- ---- discovery ----------------------------------------------------------------
SELECT is(pg_temp.call('GET', '/ServiceProviderConfig'), 200, 'GET /ServiceProviderConfig');
SELECT is(pg_temp.b() -> 'bulk', jsonb_build_object('supported', true,
		  'maxOperations', current_setting('scim_provision.bulk_max_operations')::int,
		  'maxPayloadSize', current_setting('scim_provision.bulk_max_payload')::int), 'bulk is advertised with its limits');
SELECT is(current_setting('scim_provision.bulk_max_operations'), '1000', 'maxOperations defaults to 1000');
SELECT is(current_setting('scim_provision.bulk_max_payload'), '1048576', 'maxPayloadSize defaults to 1 MiB');

-- ---- a BulkRequest with forward references ----------------------------------------
SELECT pg_temp.log_count() AS n0 \gset
SELECT is(pg_temp.call('POST', '/Bulk', $$
{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"failOnErrors":10,"Operations":[
 {"method":"POST","path":"/Groups","bulkId":"tour","data":{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Tour Guides","members":[{"type":"User","value":"bulkId:alice"},{"value":"bulkId:bob"}]}},
 {"method":"POST","path":"/Users","bulkId":"alice","data":{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@example.com","displayName":"Alice"}},
 {"method":"POST","path":"/Users","bulkId":"bob","data":{"userName":"bob@example.com"}},
 {"method":"POST","path":"/Users","bulkId":"eve","data":{"userName":"eve@evil.com"}},
 {"method":"PATCH","path":"/Groups/bulkId:tour","data":{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"bulkId:bob\"]"}]}},
 {"method":"POST","path":"/Groups","bulkId":"evil","data":{"displayName":"Evil","members":[{"value":"bulkId:eve"}]}},
 {"method":"DELETE","path":"/Users/bulkId:nobody"},
 {"method":"PUT","path":"/Users/bulkId:bob","version":"W/\"1\"","data":{"userName":"bob@example.com","title":"Guide"}}
]}$$), 200, 'POST /Bulk: 200');
SELECT is(pg_temp.b() -> 'schemas', '["urn:ietf:params:scim:api:messages:2.0:BulkResponse"]'::jsonb, 'a BulkResponse');
SELECT results_eq('SELECT * FROM pg_temp.results()',
	$$VALUES (1::bigint, 'POST', 'tour', '201'), (2, 'POST', 'alice', '201'), (3, 'POST', 'bob', '201'), (4, 'POST', 'eve', '400'),
			 (5, 'PATCH', NULL, '204'), (6, 'POST', 'evil', '409'), (7, 'DELETE', NULL, '409'), (8, 'PUT', NULL, '200')$$,
	'one result per operation, in request order, statuses as strings');
SELECT (SELECT id FROM scim.users WHERE workspace = 'bulk_main' AND user_name = 'alice@example.com') AS alice,
	   (SELECT id FROM scim.users WHERE workspace = 'bulk_main' AND user_name = 'bob@example.com') AS bob,
	   (SELECT id FROM scim.groups WHERE workspace = 'bulk_main' AND display_name = 'Tour Guides') AS tour \gset
SELECT is(pg_temp.op(1) ->> 'location', '/Groups/' || :'tour', 'a POST result has the location of the new resource');
SELECT is(pg_temp.op(1) ->> 'version', 'W/"1"', 'and its version');
SELECT ok(NOT pg_temp.op(1) ? 'response', 'a success carries no response');
SELECT is(pg_temp.op(2) ->> 'location', '/Users/' || :'alice', 'the user''s location');
SELECT is((SELECT array_agg(member_id::text) FROM scim.group_members WHERE group_id = :'tour'), ARRAY[:'alice'],
		  'the group referenced both users before they existed; the PATCH removed bob through bulkId:bob');
SELECT is(pg_temp.op(5) ->> 'location', '/Groups/' || :'tour', 'the PATCH''s location (its bulkId path resolved)');
SELECT is(pg_temp.op(5) ->> 'version', 'W/"2"', 'and the version it made');
SELECT results_eq($$SELECT o->'response'->>'scimType', o->'response'->>'status' FROM (SELECT pg_temp.op(4) o) s$$,
	$$VALUES ('invalidValue', '400')$$, 'a refused user: its error as the response');
SELECT is((SELECT count(*) FROM scim.users WHERE user_name = 'eve@evil.com'), 0::bigint, 'and nothing written for it');
SELECT ok(pg_temp.op(6) -> 'response' ->> 'detail' LIKE '%bulkId "eve"%failed%', 'an operation referencing a failed POST: 409, not run');
SELECT is((SELECT count(*) FROM scim.groups WHERE workspace = 'bulk_main' AND display_name = 'Evil'), 0::bigint, 'the group was not created');
SELECT ok(pg_temp.op(7) -> 'response' ->> 'detail' LIKE '%bulkId "nobody"%no POST%', 'an unknown bulkId: 409');
SELECT is((SELECT title FROM scim.users WHERE id = :'bob'), 'Guide', 'the PUT with version W/"1" applied to bob');
SELECT is(pg_temp.op(8) ->> 'location', '/Users/' || :'bob', 'with bob''s location');
SELECT is(pg_temp.log_count(), :n0 + 7::bigint, 'one System Log row per operation that ran (6) and one for the request');
SELECT results_eq($$SELECT method, path, status, detail FROM scim.provisioning_log WHERE workspace = 'bulk_main' ORDER BY id DESC LIMIT 1$$,
	$$VALUES ('POST', '/Bulk', 200, '8 operation(s): 5 succeeded, 3 failed')$$, 'the request''s own row sums it up');

-- ---- versions, failOnErrors ----------------------------------------------------------
SELECT is(pg_temp.call('POST', '/Bulk', format($$
{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[
 {"method":"PATCH","path":"/Groups/%s","version":"W/\"1\"","data":{"Operations":[{"op":"add","path":"members","value":[{"value":"%s"}]}]}},
 {"method":"DELETE","path":"/Users/%s"}
]}$$, :'tour', :'bob', :'alice')), 200, 'a stale version and a DELETE');
SELECT results_eq('SELECT * FROM pg_temp.results()', $$VALUES (1::bigint, 'PATCH', NULL, '412'), (2, 'DELETE', NULL, '204')$$,
	'the stale version is 412, the rest goes on');
SELECT is((SELECT active FROM scim.users WHERE id = :'alice'), false, 'alice deactivated (deletion policy)');

SELECT pg_temp.log_count() AS n1 \gset
SELECT is(pg_temp.call('POST', '/Bulk', $$
{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"failOnErrors":1,"Operations":[
 {"method":"POST","path":"/Users","bulkId":"c","data":{"userName":"carol@example.com"}},
 {"method":"POST","path":"/Users","bulkId":"d","data":{"userName":"dan@evil.com"}},
 {"method":"POST","path":"/Users","bulkId":"e","data":{"userName":"erin@example.com"}}
]}$$), 200, 'failOnErrors 1');
SELECT results_eq('SELECT * FROM pg_temp.results()', $$VALUES (1::bigint, 'POST', 'c', '201'), (2, 'POST', 'd', '400')$$,
	'the run stops at the first error');
SELECT is((SELECT count(*) FROM scim.users WHERE user_name = 'erin@example.com'), 0::bigint, 'the operation after it did not run');
SELECT is((SELECT count(*) FROM scim.users WHERE user_name = 'carol@example.com'), 1::bigint, 'the one before it stays');
SELECT is(pg_temp.log_count(), :n1 + 3::bigint, 'two operations and the request in the System Log');
SELECT alike((SELECT detail FROM scim.provisioning_log WHERE workspace = 'bulk_main' ORDER BY id DESC LIMIT 1), '%stopped by failOnErrors=1',
	'the log says why it stopped');

-- ---- cycles, malformed operations ---------------------------------------------------------
SELECT is(pg_temp.call('POST', '/Bulk', $$
{"Operations":[
 {"method":"PATCH","path":"/Groups/bulkId:x","data":{"Operations":[{"op":"add","path":"members","value":[{"value":"bulkId:y"}]}]}},
 {"method":"POST","path":"/Groups","bulkId":"x","data":{"displayName":"X","members":[{"value":"bulkId:y"}]}},
 {"method":"POST","path":"/Groups","bulkId":"y","data":{"displayName":"Y","members":[{"value":"bulkId:x"}]}},
 {"method":"GET","path":"/Users"},
 {"method":"POST","path":"/Users","data":{"userName":"nobulkid@example.com"}},
 {"method":"DELETE","path":"/Bulk"},
 "not an object"
]}$$), 200, 'cycles and malformed operations');
SELECT results_eq('SELECT n, method, status FROM pg_temp.results()',
	$$VALUES (1::bigint, 'PATCH', '409'), (2, 'POST', '409'), (3, 'POST', '409'), (4, 'GET', '400'), (5, 'POST', '400'), (6, 'DELETE', '400'), (7, NULL, '400')$$,
	'a cycle of bulkIds is 409; a bad method, a POST without bulkId, a path outside /Users and /Groups, a non-object are 400');
SELECT ok(pg_temp.op(2) -> 'response' ->> 'detail' LIKE '%cycle%', 'the cycle is named');
SELECT is(pg_temp.op(4) -> 'response' ->> 'scimType', 'invalidSyntax', 'invalidSyntax');
SELECT is((SELECT count(*) FROM scim.groups WHERE workspace = 'bulk_main' AND display_name IN ('X', 'Y')), 0::bigint, 'nothing of it was written');
SELECT is(pg_temp.call('POST', '/Bulk', '{"Operations":[{"method":"POST","path":"/Users","bulkId":"a","data":{"userName":"a1@example.com"}},{"method":"POST","path":"/Users","bulkId":"a","data":{"userName":"a2@example.com"}}]}'),
		  400, 'a bulkId used twice: 400');
SELECT is((SELECT count(*) FROM scim.users WHERE user_name LIKE 'a_@example.com'), 0::bigint, 'and nothing ran');
SELECT is(pg_temp.call('POST', '/Bulk', '{"Operations":[]}'), 200, 'no operations: 200');
SELECT is(pg_temp.b() -> 'Operations', '[]'::jsonb, 'an empty BulkResponse');

-- ---- refusals of the whole request --------------------------------------------------------
SELECT pg_temp.log_count() AS n2 \gset
SELECT is(pg_temp.call('GET', '/Bulk'), 405, 'GET /Bulk: 405');
SELECT is(pg_temp.call('POST', '/Bulk', '{"Operations":'), 400, 'malformed JSON: 400');
SELECT is(pg_temp.b() ->> 'scimType', 'invalidSyntax', 'invalidSyntax');
SELECT is(pg_temp.call('POST', '/Bulk', '{"Operations":{}}'), 400, 'Operations not an array: 400');
SELECT is(pg_temp.call('POST', '/Bulk', '{"failOnErrors":0,"Operations":[]}'), 400, 'failOnErrors 0: 400');
SET LOCAL scim_provision.bulk_max_operations = 2;
SELECT is(pg_temp.call('POST', '/Bulk', '{"Operations":[{"method":"DELETE","path":"/Users/x"},{"method":"DELETE","path":"/Users/y"},{"method":"DELETE","path":"/Users/z"}]}'),
		  413, 'more operations than maxOperations: 413');
SELECT results_eq($$SELECT body->>'scimType', body->>'status', body->>'detail' FROM resp$$,
	$$VALUES ('tooLarge', '413', 'the request has 3 operations; maxOperations is 2')$$, 'tooLarge, with the limit');
RESET scim_provision.bulk_max_operations;
SET LOCAL scim_provision.bulk_max_payload = 1024;
SELECT is(pg_temp.call('POST', '/Bulk', '{"Operations":[],"padding":"' || repeat('x', 1024) || '"}'), 413, 'a body over maxPayloadSize: 413');
SELECT is(pg_temp.b() ->> 'scimType', 'tooLarge', 'tooLarge');
RESET scim_provision.bulk_max_payload;
SELECT is(pg_temp.call('GET', '/ServiceProviderConfig'), 200, 'the limits are back');
SELECT is(pg_temp.log_count(), :n2 + 7::bigint, 'every refused request has its one log row');

-- ---- dependency order (issue #15 point 13) ------------------------------------------
-- the order of 0.2.0's repeated scans: an operation runs at the first scan
-- that finds its references resolved; here 2 and 3 in the first, then 1
SELECT pg_temp.log_count() AS n3 \gset
SELECT is(pg_temp.call('POST', '/Bulk', $$
{"Operations":[
 {"method":"POST","path":"/Users","bulkId":"a","data":{"userName":"ord-a@example.com","title":"bulkId:c"}},
 {"method":"POST","path":"/Users","bulkId":"b","data":{"userName":"ord-b@example.com"}},
 {"method":"POST","path":"/Users","bulkId":"c","data":{"userName":"ord-c@example.com","title":"bulkId:b"}},
 {"method":"PATCH","path":"/Users/bulkId:a","data":{"Operations":[{"op":"replace","path":"nickName","value":"bulkId:b"}]}}
]}$$), 200, 'references forward and backward');
SELECT is((SELECT array_agg(user_name ORDER BY id) FROM (SELECT id, user_name FROM scim.provisioning_log
			WHERE workspace = 'bulk_main' AND method IN ('POST', 'PATCH') AND path <> '/Bulk' ORDER BY id DESC LIMIT 4) l),
		  ARRAY['ord-b@example.com', 'ord-c@example.com', 'ord-a@example.com', 'ord-a@example.com'],
		  'run in scan order: b, then c (after b in the same scan), then a and its PATCH in the next');
SELECT results_eq($$SELECT a.title = c.id::text, c.title = b.id::text, a.attributes ->> 'nickName' = b.id::text
					FROM scim.users a, scim.users b, scim.users c
					WHERE a.user_name = 'ord-a@example.com' AND b.user_name = 'ord-b@example.com' AND c.user_name = 'ord-c@example.com'$$,
				  $$VALUES (true, true, true)$$, 'every reference resolved to its id');
-- a chain of 300 forward references resolves in one request, every link
SELECT is(pg_temp.call('POST', '/Bulk', (SELECT jsonb_build_object('Operations', jsonb_agg(jsonb_build_object(
			'method', 'POST', 'path', '/Users', 'bulkId', 'c' || i,
			'data', jsonb_build_object('userName', format('chain%s@example.com', i),
									   'title', CASE WHEN i < 300 THEN 'bulkId:c' || (i + 1) ELSE 'end' END)) ORDER BY i))::text
		   FROM generate_series(1, 300) i)), 200, 'a chain of 300 forward references');
SELECT is((SELECT count(*) FROM jsonb_array_elements(pg_temp.b() -> 'Operations') o WHERE o ->> 'status' = '201'), 300::bigint,
		  'every operation created its user');
SELECT is((SELECT count(*) FROM scim.users a JOIN scim.users b ON a.title = b.id::text
		   WHERE a.user_name LIKE 'chain%@example.com' AND b.user_name = format('chain%s@example.com', substring(a.user_name FROM '[0-9]+')::int + 1)),
		  299::bigint, 'each refers to the next one''s id');
SELECT is((SELECT array_agg(user_name ORDER BY id) FROM (SELECT id, user_name FROM scim.provisioning_log
			WHERE workspace = 'bulk_main' AND user_name LIKE 'chain%' ORDER BY id DESC LIMIT 3) l),
		  ARRAY['chain3@example.com', 'chain2@example.com', 'chain1@example.com'], 'the last link runs first, the first last');
-- a cycle behind a failed POST: the failure is seen first, the cycle after
SELECT is(pg_temp.call('POST', '/Bulk', $$
{"failOnErrors":2,"Operations":[
 {"method":"POST","path":"/Users","bulkId":"x","data":{"userName":"bulkId:y"}},
 {"method":"POST","path":"/Users","bulkId":"y","data":{"userName":"bulkId:x"}},
 {"method":"POST","path":"/Users","bulkId":"bad","data":{"userName":"bad@evil.com"}},
 {"method":"PUT","path":"/Users/bulkId:bad","data":{"userName":"bad@evil.com"}},
 {"method":"POST","path":"/Users","bulkId":"ok","data":{"userName":"ord-ok@example.com"}}
]}$$), 200, 'failOnErrors 2 with a cycle and a failed POST');
SELECT results_eq('SELECT * FROM pg_temp.results()',
	$$VALUES (1::bigint, 'POST', 'bad', '400'), (2, 'PUT', NULL, '409')$$,
	'the failed POST and the operation referencing it count; the run stops before the rest');
SELECT is(pg_temp.log_count(), :n3 + 4 + 1 + 300 + 1 + 1 + 1::bigint, 'one log row per operation run and one per request');

SELECT * FROM finish();
ROLLBACK;
