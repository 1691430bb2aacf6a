-- Request limits (issue #15, doc/LIMITS.md): a body over
-- scim_provision.max_body_size is 413 tooLarge before parsing; a body nested
-- deeper than scim_provision.max_json_depth is 400 invalidSyntax (never a
-- 500 from a stack overflow) on every endpoint that takes a body; PATCH
-- operations and member values over scim_provision.max_operations are 413
-- tooLarge before any is applied, Groups included; every refusal leaves one
-- System Log row and changes nothing; the System Log keeps bounded copies of
-- request-derived fields; the limits are superuser-only.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(79);

DO $$
BEGIN
	PERFORM scim.create_workspace('lim');
	PERFORM scim.approve_domain('example.com', 'lim');
	PERFORM set_config('test.auth', 'Bearer ' || scim.create_token('idp', 'lim'), false);
END;
$$;
CREATE TEMP TABLE resp (status integer, headers jsonb, body jsonb);
CREATE FUNCTION pg_temp.call(method text, path text, body text DEFAULT NULL)
	RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM resp;
	INSERT INTO resp
	SELECT h.status, h.headers, h.body
	FROM scim.handle(method, path, NULL, jsonb_build_object('authorization', current_setting('test.auth')), body) h;
	RETURN (SELECT r.status FROM resp r);
END;
$$;
CREATE FUNCTION pg_temp.b() RETURNS jsonb LANGUAGE sql AS $$ SELECT body FROM resp $$;
-- the last System Log row of the workspace
CREATE FUNCTION pg_temp.last_log() RETURNS scim.provisioning_log LANGUAGE sql AS $$
	SELECT l FROM scim.provisioning_log l WHERE l.workspace = 'lim' ORDER BY l.id DESC LIMIT 1 $$;
CREATE FUNCTION pg_temp.log_count() RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM scim.provisioning_log WHERE workspace = 'lim' $$;
-- a JSON text nested n arrays deep
CREATE FUNCTION pg_temp.deep(n integer) RETURNS text LANGUAGE sql AS $$
	SELECT repeat('[', n) || repeat(']', n) $$;
-- a PatchOp of n displayName replaces, and of one add of n members
CREATE FUNCTION pg_temp.ops(n integer) RETURNS text LANGUAGE sql AS $$
	SELECT jsonb_build_object('schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:PatchOp'),
		'Operations', (SELECT jsonb_agg(jsonb_build_object('op', 'replace', 'path', 'displayName', 'value', 'N' || i))
					   FROM generate_series(1, n) i))::text $$;
CREATE FUNCTION pg_temp.member_values(n integer) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_agg(jsonb_build_object('value', u.id) ORDER BY u.user_name)
	FROM (SELECT id, user_name FROM scim.users WHERE workspace = 'lim' AND user_name LIKE 'm%' ORDER BY user_name LIMIT n) u $$;

-- ---- the settings -----------------------------------------------------------------
SELECT results_eq($$SELECT name, setting, context FROM pg_settings
					WHERE name IN ('scim_provision.max_body_size', 'scim_provision.max_json_depth', 'scim_provision.max_operations')
					ORDER BY name$$,
				  $$VALUES ('scim_provision.max_body_size', '1048576', 'superuser'),
						   ('scim_provision.max_json_depth', '64', 'superuser'),
						   ('scim_provision.max_operations', '1000', 'superuser')$$,
				  'three limits, defaults 1 MiB, 64 levels, 1000; only a superuser may change them');

-- ---- setup: a user, a group, 1,100 users to add as members ----------------------
SELECT is(pg_temp.call('POST', '/Users', '{"userName":"lim@example.com"}'), 201, 'a user');
SELECT (pg_temp.b() ->> 'id') AS uid \gset
SELECT is(pg_temp.call('POST', '/Groups', '{"displayName":"Lim"}'), 201, 'a group');
SELECT (pg_temp.b() ->> 'id') AS gid \gset
INSERT INTO scim.users (workspace, user_name)
SELECT 'lim', format('m%s@example.com', lpad(i::text, 5, '0')) FROM generate_series(1, 1100) i;

-- ---- nesting: 100,000 deep on every endpoint with a body -------------------------
SELECT is(pg_temp.call('POST', '/Users', '{"userName":"deep@example.com","x":' || pg_temp.deep(100000) || '}'), 400,
		  'POST /Users nested 100,000 deep: 400, not 500');
SELECT is(pg_temp.b() ->> 'scimType', 'invalidSyntax', 'invalidSyntax');
SELECT ok(pg_temp.b() ->> 'detail' LIKE 'the request body nests arrays and objects deeper than 64 levels%', 'the detail names the limit');
SELECT results_eq($$SELECT status, scim_type, method, path FROM pg_temp.last_log()$$,
				  $$VALUES (400, 'invalidSyntax', 'POST', '/Users')$$, 'one System Log row');
SELECT is(pg_temp.call('PUT', '/Users/' || :'uid', pg_temp.deep(100000)), 400, 'PUT /Users/{id}: 400');
SELECT is(pg_temp.b() ->> 'scimType', 'invalidSyntax', 'invalidSyntax');
SELECT is(pg_temp.call('PATCH', '/Users/' || :'uid', '{"Operations":[{"op":"add","path":"title","value":' || pg_temp.deep(100000) || '}]}'), 400,
		  'PATCH /Users/{id}: 400');
SELECT is(pg_temp.b() ->> 'scimType', 'invalidSyntax', 'invalidSyntax');
SELECT is(pg_temp.call('POST', '/Users/.search', '{"filter":' || pg_temp.deep(100000) || '}'), 400, 'POST /Users/.search: 400');
SELECT is(pg_temp.b() ->> 'scimType', 'invalidSyntax', 'invalidSyntax');
SELECT is(pg_temp.call('POST', '/Groups', '{"displayName":"D","members":' || pg_temp.deep(100000) || '}'), 400, 'POST /Groups: 400');
SELECT is(pg_temp.b() ->> 'scimType', 'invalidSyntax', 'invalidSyntax');
SELECT is(pg_temp.call('PUT', '/Groups/' || :'gid', pg_temp.deep(100000)), 400, 'PUT /Groups/{id}: 400');
SELECT is(pg_temp.b() ->> 'scimType', 'invalidSyntax', 'invalidSyntax');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'gid', '{"Operations":[{"op":"add","path":"members","value":' || pg_temp.deep(100000) || '}]}'), 400,
		  'PATCH /Groups/{id}: 400');
SELECT is(pg_temp.b() ->> 'scimType', 'invalidSyntax', 'invalidSyntax');
SELECT is(pg_temp.call('POST', '/Groups/.search', pg_temp.deep(100000)), 400, 'POST /Groups/.search: 400');
SELECT is(pg_temp.call('POST', '/Bulk', '{"Operations":[{"method":"POST","path":"/Users","bulkId":"a","data":' || pg_temp.deep(100000) || '}]}'), 400,
		  'POST /Bulk: 400');
SELECT is(pg_temp.b() ->> 'scimType', 'invalidSyntax', 'invalidSyntax');
SELECT results_eq($$SELECT status, scim_type, method, path FROM pg_temp.last_log()$$,
				  $$VALUES (400, 'invalidSyntax', 'POST', '/Bulk')$$, '/Bulk: its System Log row');
-- brackets inside strings are text, not nesting
SELECT is(pg_temp.call('PATCH', '/Users/' || :'uid', '{"Operations":[{"op":"replace","path":"title","value":"' || pg_temp.deep(5000) || '"}]}'), 200,
		  'brackets inside a string do not count');
SELECT is(pg_temp.b() ->> 'title', pg_temp.deep(5000), 'the string is stored as sent');
-- exactly at the limit passes the check; one more is refused
SELECT is(pg_temp.call('POST', '/Users', '{"userName":"d64@example.com","x":' || pg_temp.deep(63) || '}'), 201,
		  '64 levels pass the nesting check (the unknown attribute is ignored)');
SELECT is(pg_temp.call('POST', '/Users', '{"userName":"d65@example.com","x":' || pg_temp.deep(64) || '}'), 400, '65 levels');
SELECT ok(pg_temp.b() ->> 'detail' LIKE '%deeper than 64 levels%', '... are refused by the nesting check');
SET LOCAL scim_provision.max_json_depth = 8;
SELECT is(pg_temp.call('POST', '/Users', '{"userName":"d9@example.com","x":' || pg_temp.deep(8) || '}'), 400, 'the limit is a setting');
SELECT ok(pg_temp.b() ->> 'detail' LIKE '%deeper than 8 levels%', '... named in the detail');
RESET scim_provision.max_json_depth;
-- the jsonb entry points of the pure cores refuse deep documents the same way
SELECT throws_ok($$SELECT scim.patch_apply('{"userName":"a"}', ('[{"op":"add","path":"title","value":' || pg_temp.deep(2000) || '}]')::jsonb)$$,
				 '22023', 'invalidSyntax: the JSON document nests arrays and objects deeper than 64 levels',
				 'patch_apply on a deep jsonb: invalidSyntax, not a stack overflow');
SELECT throws_ok($$SELECT scim.filter_match('userName eq "a"', ('{"userName":"a","x":' || pg_temp.deep(2000) || '}')::jsonb)$$,
				 '22023', 'invalidSyntax: the JSON document nests arrays and objects deeper than 64 levels',
				 'filter_match on a deep jsonb: invalidSyntax');

-- ---- body size ----------------------------------------------------------------
SELECT is(pg_temp.call('POST', '/Users', '{"userName":"big@example.com","title":"' || repeat('x', 1048576) || '"}'), 413,
		  'POST /Users over 1 MiB: 413');
SELECT is(pg_temp.b() ->> 'scimType', 'tooLarge', 'tooLarge');
SELECT is(pg_temp.b() ->> 'status', '413', 'the error document says 413');
SELECT results_eq($$SELECT status, scim_type, method, path FROM pg_temp.last_log()$$,
				  $$VALUES (413, 'tooLarge', 'POST', '/Users')$$, 'one System Log row');
SELECT is((SELECT count(*) FROM scim.users WHERE user_name = 'big@example.com'), 0::bigint, 'nothing stored');
SET LOCAL scim_provision.max_body_size = 2048;
SELECT is(pg_temp.call('PUT', '/Users/' || :'uid', '{"userName":"lim@example.com","title":"' || repeat('x', 2100) || '"}'), 413,
		  'PUT /Users/{id} over the limit: 413');
SELECT is(pg_temp.call('PATCH', '/Users/' || :'uid', '{"Operations":[{"op":"add","path":"title","value":"' || repeat('x', 2100) || '"}]}'), 413,
		  'PATCH /Users/{id}: 413');
SELECT is(pg_temp.call('POST', '/Groups', '{"displayName":"' || repeat('x', 2100) || '"}'), 413, 'POST /Groups: 413');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'gid', '{"Operations":[{"op":"replace","path":"displayName","value":"' || repeat('x', 2100) || '"}]}'), 413,
		  'PATCH /Groups/{id}: 413');
SELECT is(pg_temp.call('POST', '/Bulk', '{"Operations":[{"method":"POST","path":"/Users","bulkId":"a","data":{"userName":"' || repeat('x', 2100) || '"}}]}'), 413,
		  'POST /Bulk: 413');
SELECT is(pg_temp.b() ->> 'scimType', 'tooLarge', 'tooLarge');
SELECT is(pg_temp.call('PATCH', '/Users/' || :'uid', '{"Operations":[{"op":"add","path":"title","value":"' || repeat('x', 1900) || '"}]}'), 200,
		  'a body under the limit is accepted');
RESET scim_provision.max_body_size;

-- ---- operations and member values ------------------------------------------------
SELECT is(pg_temp.call('PATCH', '/Users/' || :'uid', pg_temp.ops(1001)), 413, 'PATCH /Users/{id} with 1,001 operations: 413');
SELECT is(pg_temp.b() ->> 'scimType', 'tooLarge', 'tooLarge');
SELECT is(pg_temp.b() ->> 'detail',
		  'the request holds 1001 operations and member values; the limit is 1000. The request as a whole was refused before any of it was applied (scim_provision.max_operations).',
		  'the detail names the count and the limit');
SELECT is(pg_temp.call('PATCH', '/Users/' || :'uid', pg_temp.ops(1000)), 200, '1,000 operations are accepted');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'gid', pg_temp.ops(1001)), 413, 'PATCH /Groups/{id} with 1,001 operations: 413');
SELECT is(pg_temp.b() ->> 'scimType', 'tooLarge', 'tooLarge');
SELECT results_eq($$SELECT status, scim_type, method FROM pg_temp.last_log()$$,
				  $$VALUES (413, 'tooLarge', 'PATCH')$$, 'one System Log row');
SELECT is((SELECT display_name FROM scim.groups WHERE id = :'gid'), 'Lim', 'nothing applied');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'gid', pg_temp.ops(20000)), 413, 'PATCH /Groups/{id} with 20,000 operations: 413');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'gid', pg_temp.ops(1000)), 204, '1,000 operations on a group are accepted');
-- member values count: one add of 1,001 members, or two adds of 600
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'gid', jsonb_build_object('Operations', jsonb_build_array(
			jsonb_build_object('op', 'add', 'path', 'members', 'value', pg_temp.member_values(1001))))::text), 413,
		  'one add of 1,001 members: 413');
SELECT is(pg_temp.b() ->> 'scimType', 'tooLarge', 'tooLarge');
SELECT is((SELECT count(*) FROM scim.group_members WHERE group_id = :'gid'), 0::bigint, 'no member added');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'gid', jsonb_build_object('Operations', jsonb_build_array(
			jsonb_build_object('op', 'add', 'path', 'members', 'value', pg_temp.member_values(600)),
			jsonb_build_object('op', 'add', 'value', jsonb_build_object('members', pg_temp.member_values(600)))))::text), 413,
		  'two adds of 600 members (with and without a path): 413');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'gid', jsonb_build_object('Operations', jsonb_build_array(
			jsonb_build_object('op', 'add', 'path', 'members', 'value', pg_temp.member_values(1000))))::text), 204,
		  'one add of 1,000 members is accepted');
SELECT is((SELECT count(*) FROM scim.group_members WHERE group_id = :'gid'), 1000::bigint, '1,000 members');
SELECT is(pg_temp.call('PUT', '/Groups/' || :'gid', jsonb_build_object('displayName', 'Lim', 'members', pg_temp.member_values(1001))::text), 413,
		  'PUT /Groups/{id} with 1,001 members: 413');
SELECT is(pg_temp.call('POST', '/Groups', jsonb_build_object('displayName', 'Big', 'members', pg_temp.member_values(1001))::text), 413,
		  'POST /Groups with 1,001 members: 413');
SELECT is((SELECT count(*) FROM scim.groups WHERE workspace = 'lim' AND display_name = 'Big'), 0::bigint, 'no group created');
SET LOCAL scim_provision.max_operations = 2000;
SELECT is(pg_temp.call('POST', '/Groups', jsonb_build_object('displayName', 'Big', 'members', pg_temp.member_values(1001))::text), 201,
		  'the limit is a setting');
SELECT is(pg_temp.call('PATCH', '/Users/' || :'uid', pg_temp.ops(1500)), 200, '... which scim.patch_apply follows too');
RESET scim_provision.max_operations;
-- /Bulk: each operation is a request of its own under the same limit
SELECT is(pg_temp.call('POST', '/Bulk', jsonb_build_object('Operations', jsonb_build_array(
			jsonb_build_object('method', 'PATCH', 'path', '/Groups/' || :'gid', 'data',
							   jsonb_build_object('Operations', jsonb_build_array(
								   jsonb_build_object('op', 'remove', 'path', 'members', 'value', pg_temp.member_values(1001)))))))::text), 200,
		  '/Bulk with a PATCH of 1,001 member values: 200');
SELECT is(pg_temp.b() #>> '{Operations,0,status}', '413', 'that operation: 413');
SELECT is(pg_temp.b() #>> '{Operations,0,response,scimType}', 'tooLarge', 'tooLarge');

-- ---- bounded System Log fields ---------------------------------------------------
SELECT is(pg_temp.call('GET', '/Users/' || repeat('a', 100000)), 404, 'GET /Users/<100,000 characters>: 404');
SELECT results_eq($$SELECT length(path), right(path, 14), length(detail) <= 2000 FROM pg_temp.last_log()$$,
				  $$VALUES (1000, '...[truncated]', true)$$, 'the logged path is cut to 1,000 characters, marked');
SELECT is(pg_temp.call(repeat('M', 500), '/Users'), 405, 'a 500-character method: 405');
SELECT results_eq($$SELECT length(method), length(path), length(detail) <= 2000 FROM pg_temp.last_log()$$,
				  $$VALUES (16, 6, true)$$, 'the logged method is cut to 16 characters');
SELECT is(pg_temp.call('POST', '/Users', jsonb_build_object('userName', repeat('ü', 5000) || '@example.com')::text) IN (201, 400), true,
		  'a 5,000-character userName');
SELECT results_eq($$SELECT length(user_name), octet_length(user_name) > 256 FROM pg_temp.last_log()$$,
				  $$VALUES (256, true)$$, 'the logged userName is cut to 256 characters (multibyte kept whole)');
SELECT is(scim._log_bounded('short', 16), 'short', 'a value within its bound is kept');
SELECT is(scim._log_bounded(NULL, 16), NULL, 'NULL stays NULL');
SELECT is(scim._log_bounded(repeat('é', 20), 16), repeat('é', 2) || '...[truncated]', 'cut values end with the marker');

-- ---- discovery -----------------------------------------------------------------
SELECT is(pg_temp.call('GET', '/ServiceProviderConfig'), 200, 'ServiceProviderConfig');
SET LOCAL scim_provision.max_body_size = 4096;
SELECT is((scim.service_provider_config() #>> '{bulk,maxPayloadSize}')::integer, 4096,
		  'bulk.maxPayloadSize advertises the smaller of bulk_max_payload and max_body_size');
RESET scim_provision.max_body_size;

SELECT * FROM finish();
ROLLBACK;
