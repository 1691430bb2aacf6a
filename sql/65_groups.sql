-- Groups through scim.handle: storage, POST/GET/list/PUT/PATCH/DELETE,
-- displayName uniqueness, members, projection, ETags, the users' "groups"
-- attribute, membership PATCH at O(members changed), the System Log.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(166);

-- ---- fixtures ----------------------------------------------------------------
DO $$
BEGIN
	PERFORM scim.create_workspace('grp_main');
	PERFORM scim.create_workspace('grp_other', 'delete');
	PERFORM scim.approve_domain('example.com', 'grp_main');
	PERFORM scim.approve_domain('example.com', 'grp_other');
	PERFORM set_config('test.main', 'Bearer ' || scim.create_token('idp', 'grp_main'), false);
	PERFORM set_config('test.other', 'Bearer ' || scim.create_token('idp', 'grp_other'), false);
END;
$$;

-- call(method, path, query, body, extra headers, authorization): runs
-- scim.handle, keeps the response in resp, returns the status.
CREATE TEMP TABLE resp (status integer, headers jsonb, body jsonb);
CREATE FUNCTION pg_temp.call(method text, path text, query text DEFAULT NULL, body text DEFAULT NULL,
							 extra jsonb DEFAULT '{}', auth text DEFAULT current_setting('test.main'))
	RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM resp;
	INSERT INTO resp
	SELECT h.status, h.headers, h.body
	FROM scim.handle(method, path, query, jsonb_build_object('authorization', auth) || extra, body) h;
	RETURN (SELECT r.status FROM resp r);
END;
$$;
CREATE FUNCTION pg_temp.b() RETURNS jsonb LANGUAGE sql AS $$ SELECT body FROM resp $$;
CREATE FUNCTION pg_temp.h() RETURNS jsonb LANGUAGE sql AS $$ SELECT headers FROM resp $$;
CREATE FUNCTION pg_temp.err(st integer, scim_type text) RETURNS boolean LANGUAGE sql AS $$
	SELECT r.status = st AND r.body -> 'schemas' = '["urn:ietf:params:scim:api:messages:2.0:Error"]'
	   AND r.body ->> 'status' = st::text AND (r.body ->> 'scimType') IS NOT DISTINCT FROM scim_type
	FROM resp r $$;
CREATE FUNCTION pg_temp.log_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM scim.provisioning_log $$;
CREATE FUNCTION pg_temp.last_log() RETURNS scim.provisioning_log LANGUAGE sql AS $$
	SELECT * FROM scim.provisioning_log ORDER BY id DESC LIMIT 1 $$;
-- the member ids of a group, sorted
CREATE FUNCTION pg_temp.members(gid text) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(member_id::text ORDER BY member_id), '{}') FROM scim.group_members WHERE group_id = gid::uuid $$;
CREATE FUNCTION pg_temp.ver(gid text) RETURNS bigint LANGUAGE sql AS $$
	SELECT version FROM scim.groups WHERE id = gid::uuid $$;
-- scans and fetches of scim.group_members so far in this transaction
CREATE FUNCTION pg_temp.member_reads() RETURNS bigint LANGUAGE sql AS $$
	SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) + coalesce(seq_scan, 0) + coalesce(idx_scan, 0)
	FROM pg_stat_xact_user_tables WHERE relid = 'scim.group_members'::regclass $$;

-- users: ann, bob, cy in grp_main; zed in grp_other
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"ann@example.com","displayName":"Ann Lee"}'), 201, 'fixture: ann');
SELECT (pg_temp.b() ->> 'id') AS ann \gset
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"bob@example.com"}'), 201, 'fixture: bob');
SELECT (pg_temp.b() ->> 'id') AS bob \gset
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"cy@example.com"}'), 201, 'fixture: cy');
SELECT (pg_temp.b() ->> 'id') AS cy \gset
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"zed@example.com"}', auth => current_setting('test.other')), 201, 'fixture: zed (other workspace)');
SELECT (pg_temp.b() ->> 'id') AS zed \gset

-- ---- storage -----------------------------------------------------------------
SELECT has_table('scim', 'groups', 'scim.groups exists');
SELECT has_table('scim', 'group_members', 'scim.group_members exists');
SELECT col_is_pk('scim', 'group_members', ARRAY['group_id', 'member_id'], 'members are keyed on (group_id, member_id)');
SELECT has_index('scim', 'group_members', 'group_members_member_id_idx', ARRAY['member_id'], 'an index on member_id');
SELECT fk_ok('scim', 'group_members', 'member_id', 'scim', 'users', 'id', 'member_id references scim.users');
SELECT is((SELECT confdeltype FROM pg_constraint WHERE conrelid = 'scim.group_members'::regclass
			AND confrelid = 'scim.users'::regclass), 'c', 'deleting a user deletes its memberships (ON DELETE CASCADE)');
SELECT ok(has_table_privilege('scim_reader', 'scim.groups', 'SELECT') AND has_table_privilege('scim_reader', 'scim.group_members', 'SELECT')
		  AND NOT has_table_privilege('scim_reader', 'scim.groups', 'INSERT'), 'scim_reader reads groups and members, and cannot write them');
SELECT ok(NOT has_function_privilege('public', 'scim._groups_route(text, text, text[], jsonb, jsonb, text)', 'EXECUTE'),
		  'the /Groups handler is not executable by PUBLIC');

-- ---- POST /Groups --------------------------------------------------------------
SELECT pg_temp.log_count() AS n0 \gset
SELECT is(pg_temp.call('POST', '/Groups', body => format(
	'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Engineering","externalId":"EXT-1","members":[{"value":"%s"},{"value":"%s","display":"ignored"}]}',
	:'ann', :'bob')), 201, 'POST /Groups: 201');
SELECT (pg_temp.b() ->> 'id') AS eng \gset
SELECT is(pg_temp.h() ->> 'Location', '/Groups/' || :'eng', 'Location names the new group');
SELECT is(pg_temp.h() ->> 'ETag', 'W/"1"', 'ETag W/"1"');
SELECT is(pg_temp.b() -> 'meta' ->> 'version', 'W/"1"', 'meta.version is the ETag');
SELECT results_eq($$SELECT body->'schemas', body->>'displayName', body->>'externalId', body->'meta'->>'resourceType', body->'meta'->>'location' FROM resp$$,
	format($$VALUES ('["urn:ietf:params:scim:schemas:core:2.0:Group"]'::jsonb, 'Engineering', 'EXT-1', 'Group', '/Groups/%s')$$, :'eng'),
	'the created group as SCIM renders it');
SELECT is(pg_temp.b() -> 'members', (SELECT jsonb_agg(m ORDER BY m->>'value') FROM (VALUES
	(jsonb_build_object('value', :'ann', '$ref', '/Users/' || :'ann', 'display', 'Ann Lee', 'type', 'User')),
	(jsonb_build_object('value', :'bob', '$ref', '/Users/' || :'bob', 'display', 'bob@example.com', 'type', 'User'))) v(m)),
	'members carry value, $ref, display (displayName, else userName) and type');
SELECT is(pg_temp.members(:'eng'), (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY[:'ann', :'bob']) x), 'both members are stored');
SELECT results_eq($$SELECT method, path, resource_id::text, user_name, status FROM scim.provisioning_log ORDER BY id DESC LIMIT 1$$,
	format($$VALUES ('POST', '/Groups', %L, 'Engineering', 201)$$, :'eng'), 'the System Log has the creation');
SELECT is(pg_temp.log_count(), :n0 + 1::bigint, 'one log row for the request');

SELECT is(pg_temp.call('POST', '/Groups', body => '{"displayName":"ENGINEERING"}'), 409, 'the same displayName in another case: 409');
SELECT ok(pg_temp.err(409, 'uniqueness'), 'a SCIM uniqueness error');
SELECT is(pg_temp.b() ->> 'detail', 'a group named "ENGINEERING" already exists', 'the detail names the group');
SELECT is(pg_temp.call('POST', '/Groups', body => '{"displayName":"Engineering"}', auth => current_setting('test.other')), 201,
		  'the same displayName in another workspace is fine');
SELECT (pg_temp.b() ->> 'id') AS other_eng \gset
SELECT is(pg_temp.call('POST', '/Groups', body => '{"externalId":"x"}'), 400, 'no displayName: 400');
SELECT ok(pg_temp.err(400, 'invalidValue'), 'invalidValue');
SELECT is(pg_temp.call('POST', '/Groups', body => '{"displayName":"  "}'), 400, 'a blank displayName: 400');
SELECT is(pg_temp.call('POST', '/Groups', body => '{"displayName":'), 400, 'malformed JSON: 400');
SELECT ok(pg_temp.err(400, 'invalidSyntax'), 'invalidSyntax');

SELECT pg_temp.log_count() AS n1 \gset
SELECT (SELECT count(*) FROM scim.groups) AS g1 \gset
SELECT is(pg_temp.call('POST', '/Groups', body => '{"displayName":"Ghosts","members":[{"value":"00000000-0000-0000-0000-000000000001"}]}'), 400,
		  'an unknown member id: 400');
SELECT ok(pg_temp.err(400, 'invalidValue'), 'invalidValue');
SELECT ok(pg_temp.b() ->> 'detail' LIKE '%00000000-0000-0000-0000-000000000001%', 'the detail names the unknown id');
SELECT is((SELECT count(*) FROM scim.groups), :g1::bigint, 'the refused group was not written');
SELECT is(pg_temp.log_count(), :n1 + 1::bigint, 'the refusal has its one log row');
SELECT results_eq($$SELECT status, scim_type, resource_id FROM scim.provisioning_log ORDER BY id DESC LIMIT 1$$,
	$$VALUES (400, 'invalidValue', NULL::uuid)$$, 'logged as 400 invalidValue, with no resource');
SELECT is(pg_temp.call('POST', '/Groups', body => format('{"displayName":"Cross","members":[{"value":"%s"}]}', :'zed')), 400,
		  'a user of another workspace cannot be a member: 400');
SELECT is(pg_temp.call('POST', '/Groups', body => '{"displayName":"Bad","members":[{"value":"not-a-uuid"}]}'), 400, 'a member value that is no id: 400');
SELECT is(pg_temp.call('POST', '/Groups', body => format('{"displayName":"Nested","members":[{"value":"%s","type":"Group"}]}', :'eng')), 400,
		  'a member of type Group: 400 (nested groups are not supported)');
SELECT is(pg_temp.call('POST', '/Groups', body => format('{"displayName":"Nested","members":[{"value":"%s"}]}', :'eng')), 400,
		  'a group id as a member value: 400');
SELECT ok(pg_temp.b() ->> 'detail' LIKE 'a group cannot be a member of a group%', 'the detail says nested groups are not supported');
SELECT is(pg_temp.call('POST', '/Groups', body => '{"displayName":"Empty Team","members":[]}'), 201, 'a group with no members (as Entra creates them)');
SELECT (pg_temp.b() ->> 'id') AS empty \gset
SELECT is(pg_temp.b() -> 'members', '[]'::jsonb, 'members: []');
SELECT is(pg_temp.call('POST', '/Groups', body => format('{"displayName":"Sales","members":"%s"}', :'cy')), 201,
		  'a sloppy member list (a bare id) is accepted');
SELECT (pg_temp.b() ->> 'id') AS sales \gset
SELECT is(pg_temp.members(:'sales'), ARRAY[:'cy'], 'and stored');

-- ---- GET /Groups/{id} ----------------------------------------------------------
SELECT is(pg_temp.call('GET', '/Groups/' || :'eng'), 200, 'GET /Groups/{id}');
SELECT is(pg_temp.h() ->> 'ETag', 'W/"1"', 'with its ETag');
SELECT is(jsonb_array_length(pg_temp.b() -> 'members'), 2, 'and its members');
SELECT is(pg_temp.call('GET', '/Groups/' || :'eng', extra => '{"if-none-match":"W/\"1\""}'), 304, 'If-None-Match with the current ETag: 304');
SELECT is(pg_temp.b(), NULL, '304 has no body');
SELECT is(pg_temp.call('GET', '/Groups/' || :'other_eng'), 404, 'another workspace''s group: 404');
SELECT is(pg_temp.call('GET', '/Groups/00000000-0000-0000-0000-000000000009'), 404, 'an unknown id: 404');
SELECT is(pg_temp.call('GET', '/Groups/nope'), 404, 'a malformed id: 404');
SELECT is(pg_temp.call('PUT', '/Groups'), 405, 'PUT /Groups: 405');
SELECT is(pg_temp.h() ->> 'Allow', 'GET, POST', 'with Allow');

-- projection; excludedAttributes=members never reads the member table
SELECT pg_temp.member_reads() AS r0 \gset
SELECT is(pg_temp.call('GET', '/Groups/' || :'eng', 'excludedAttributes=members'), 200, 'GET with excludedAttributes=members');
SELECT ok(NOT (pg_temp.b() ? 'members') AND pg_temp.b() ? 'displayName', 'members left out, the rest kept');
SELECT is(pg_temp.member_reads(), :r0::bigint, 'the member table was not read');
SELECT is(pg_temp.call('GET', '/Groups/' || :'eng', 'attributes=displayName'), 200, 'GET with attributes=displayName');
SELECT is((SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(pg_temp.b()) k), ARRAY['displayName', 'id', 'schemas'],
		  'only displayName, id and schemas');
SELECT is(pg_temp.member_reads(), :r0::bigint, 'the member table was still not read');
SELECT is(pg_temp.call('GET', '/Groups/' || :'eng', 'attributes=members.value,urn:ietf:params:scim:schemas:core:2.0:Group:externalId'), 200,
		  'attributes with a sub-attribute and a URN-qualified name');
SELECT is(pg_temp.b() - 'id' - 'schemas', jsonb_build_object('externalId', 'EXT-1', 'members',
	(SELECT jsonb_agg(jsonb_build_object('value', x) ORDER BY x) FROM unnest(ARRAY[:'ann', :'bob']) x)), 'members.value and externalId only');
SELECT is(pg_temp.call('GET', '/Groups/' || :'eng', 'excludedAttributes=meta,members.display'), 200, 'excludedAttributes with a sub-attribute');
SELECT ok(NOT (pg_temp.b() ? 'meta') AND NOT (pg_temp.b() -> 'members' -> 0 ? 'display') AND pg_temp.b() -> 'members' -> 0 ? '$ref',
		  'meta and members.display left out');

-- ---- the users' groups attribute -----------------------------------------------
SELECT is(scim.user_groups(:'ann'), jsonb_build_array(jsonb_build_object('value', :'eng', '$ref', '/Groups/' || :'eng',
		  'display', 'Engineering', 'type', 'direct')), 'scim.user_groups: the groups a user is a direct member of');
SELECT is(scim.user_groups(:'zed'), '[]'::jsonb, 'none: an empty array');

-- ---- lists -----------------------------------------------------------------------
SELECT is(pg_temp.call('GET', '/Groups', 'filter=displayName%20eq%20%22engineering%22&excludedAttributes=members'), 200,
		  'Entra''s lookup: displayName eq (any case) with excludedAttributes=members');
SELECT results_eq($$SELECT (body->>'totalResults')::int, body->'Resources'->0->>'id', body->'Resources'->0 ? 'members' FROM resp$$,
	format($$VALUES (1, %L, false)$$, :'eng'), 'finds the group, without members');
SELECT is(pg_temp.call('GET', '/Groups', 'filter=externalId%20eq%20%22EXT-1%22'), 200, 'externalId eq');
SELECT is((pg_temp.b() ->> 'totalResults')::int, 1, 'one match');
SELECT is(pg_temp.call('GET', '/Groups', 'filter=externalId%20eq%20%22ext-1%22'), 200, 'externalId is caseExact');
SELECT is((pg_temp.b() ->> 'totalResults')::int, 0, 'no match in another case');
SELECT is(pg_temp.call('GET', '/Groups', format('filter=members%%5Bvalue%%20eq%%20%%22%s%%22%%5D&attributes=displayName', :'cy')), 200,
		  'members[value eq "<id>"]');
SELECT is(pg_temp.b() -> 'Resources', jsonb_build_array(jsonb_build_object('id', :'sales', 'schemas', '["urn:ietf:params:scim:schemas:core:2.0:Group"]'::jsonb, 'displayName', 'Sales')),
		  'the group cy is a member of');
SELECT is(pg_temp.call('GET', '/Groups', format('filter=members.value%%20eq%%20%%22%s%%22', :'bob')), 200, 'members.value eq');
SELECT is(pg_temp.b() -> 'Resources' -> 0 ->> 'displayName', 'Engineering', 'the group bob is a member of');
SELECT is(pg_temp.call('GET', '/Groups', 'filter=members%5Bdisplay%20co%20%22ann%22%5D%20or%20displayName%20sw%20%22sal%22&sortBy=displayName'), 200,
		  'a value filter on display, or-ed with sw');
SELECT is((SELECT array_agg(r ->> 'displayName' ORDER BY n) FROM jsonb_array_elements(pg_temp.b() -> 'Resources') WITH ORDINALITY a(r, n)),
		  ARRAY['Engineering', 'Sales'], 'both, sorted by displayName');
SELECT is(pg_temp.call('GET', '/Groups', 'filter=not%20(members%20pr)'), 200, 'not (members pr)');
SELECT is(pg_temp.b() -> 'Resources' -> 0 ->> 'displayName', 'Empty Team', 'the group without members');
SELECT is(pg_temp.call('GET', '/Groups', 'filter=meta.created%20gt%20%222000-01-01T00:00:00Z%22&count=0'), 200, 'meta.created gt, count=0');
SELECT results_eq($$SELECT (body->>'totalResults')::int, (body->>'itemsPerPage')::int, body ? 'Resources' FROM resp$$,
	$$VALUES (3, 0, true)$$, 'totalResults only');
SELECT is(pg_temp.call('GET', '/Groups', 'sortBy=displayName&sortOrder=descending&startIndex=2&count=1&attributes=displayName'), 200,
		  'sortBy, sortOrder, startIndex, count');
SELECT results_eq($$SELECT (body->>'totalResults')::int, (body->>'startIndex')::int, (body->>'itemsPerPage')::int, body->'Resources'->0->>'displayName' FROM resp$$,
	$$VALUES (3, 2, 1, 'Engineering')$$, 'the second of three, descending');
SELECT is(pg_temp.call('GET', '/Groups', 'filter=userName%20eq%20%22x%22'), 400, 'a User attribute in a Group filter: 400');
SELECT ok(pg_temp.err(400, 'invalidFilter'), 'invalidFilter');
SELECT is(pg_temp.call('GET', '/Groups', 'filter=displayName%20eq'), 400, 'a malformed filter: 400');
SELECT is(pg_temp.call('GET', '/Groups', 'sortBy=members'), 400, 'sortBy members: 400');
SELECT is(pg_temp.call('POST', '/Groups/.search', body => '{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"displayName eq \"Sales\"","attributes":["displayName"]}'),
		  200, 'POST /Groups/.search');
SELECT is(pg_temp.b() -> 'Resources' -> 0 ->> 'displayName', 'Sales', 'finds the group');
SELECT alike(scim._group_filter_sql('displayName eq "a''b"'), '%lower(''a''''b'')%', 'filter values reach SQL quoted');
SELECT is(scim._group_filter_sql('members[value eq "not-an-id"]'),
		  '(EXISTS (SELECT 1 FROM scim.group_members m WHERE m.group_id OPERATOR(pg_catalog.=) g.id AND (false)))', 'a member value that is no id matches nothing');

-- ---- discovery covers Group -------------------------------------------------------
SELECT is(pg_temp.call('GET', '/ResourceTypes'), 200, 'GET /ResourceTypes');
SELECT is((SELECT r - 'description' - 'meta' - 'schemas' - 'id' FROM jsonb_array_elements(pg_temp.b() -> 'Resources') r WHERE r ->> 'name' = 'Group'),
		  '{"name":"Group","endpoint":"/Groups","schema":"urn:ietf:params:scim:schemas:core:2.0:Group"}'::jsonb, 'lists Group at /Groups');
SELECT is(pg_temp.call('GET', '/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group'), 200, 'GET the Group schema');
SELECT is((SELECT array_agg(a ->> 'name' ORDER BY a ->> 'name') FROM jsonb_array_elements(pg_temp.b() -> 'attributes') a), ARRAY['displayName', 'members'],
		  'displayName and members');
SELECT is((SELECT array_agg(s ->> 'name' ORDER BY s ->> 'name') FROM jsonb_array_elements(pg_temp.b() -> 'attributes') a, jsonb_array_elements(a -> 'subAttributes') s
		   WHERE a ->> 'name' = 'members'), ARRAY['$ref', 'display', 'type', 'value'], 'members: value, $ref, display, type');

-- ---- PUT ----------------------------------------------------------------------------
SELECT is(pg_temp.call('PUT', '/Groups/' || :'sales', body => format('{"displayName":"Sales EMEA","members":[{"value":"%s"},{"value":"%s"}]}', :'ann', :'bob')),
		  200, 'PUT /Groups/{id}');
SELECT is(pg_temp.members(:'sales'), (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY[:'ann', :'bob']) x), 'members replaced');
SELECT results_eq($$SELECT body->>'displayName', headers->>'ETag' FROM resp$$, $$VALUES ('Sales EMEA', 'W/"2"')$$, 'renamed, version 2');
SELECT is(pg_temp.call('PUT', '/Groups/' || :'sales', body => '{"displayName":"Sales EMEA","externalId":"S-1"}'), 200, 'PUT without members');
SELECT is(pg_temp.members(:'sales'), (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY[:'ann', :'bob']) x), 'members left out keep their value');
SELECT is(pg_temp.call('PUT', '/Groups/' || :'sales', body => '{"displayName":"Engineering"}'), 409, 'PUT onto a taken displayName: 409');
SELECT is(pg_temp.call('PUT', '/Groups/' || :'sales', body => '{"displayName":"Sales"}', extra => '{"if-match":"W/\"1\""}'), 412,
		  'PUT with a stale If-Match: 412');
SELECT is((SELECT display_name FROM scim.groups WHERE id = :'sales'), 'Sales EMEA', 'nothing changed');

-- ---- PATCH: membership ---------------------------------------------------------------
SELECT pg_temp.ver(:'eng') AS v0 \gset
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format(
	'{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"%s"}]}]}', :'cy')),
	204, 'PATCH add a member (op "Add"): 204');
SELECT is(pg_temp.b(), NULL, 'no body');
SELECT is(pg_temp.h() ->> 'ETag', format('W/"%s"', :v0 + 1), 'the ETag of the new version');
SELECT ok(:'cy' = ANY (pg_temp.members(:'eng')), 'cy is a member');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"add","path":"members","value":[{"value":"%s"}]}]}', :'cy')),
		  204, 're-adding a member (Entra does): 204');
SELECT is(pg_temp.ver(:'eng'), :v0 + 1::bigint, 'and the version does not move');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"remove","path":"members[value eq \"%s\"]"}]}', :'cy')),
		  204, 'remove members[value eq "<id>"]');
SELECT ok(NOT :'cy' = ANY (pg_temp.members(:'eng')), 'cy is gone');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"REMOVE","path":"members[value eq \"%s\"]"}]}', :'cy')),
		  204, 'removing a non-member is not an error');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"Remove","path":"members","value":[{"value":"%s"}]}]}', :'bob')),
		  204, 'Entra''s remove with a value list');
SELECT is(pg_temp.members(:'eng'), ARRAY[:'ann'], 'only bob was removed, not every member');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"replace","path":"members","value":[{"value":"%s"},{"value":"%s"}]}]}', :'bob', :'cy')),
		  204, 'replace members');
SELECT is(pg_temp.members(:'eng'), (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY[:'bob', :'cy']) x), 'the list is the new one');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"add","value":{"members":[{"value":"%s"}],"externalId":"EXT-2"}}]}', :'ann')),
		  204, 'no-path add with members and externalId');
SELECT results_eq(format($$SELECT external_id, %L = ANY (pg_temp.members(%L)) FROM scim.groups WHERE id = %L$$, :'ann', :'eng', :'eng'),
	$$VALUES ('EXT-2', true)$$, 'both applied');
SELECT pg_temp.ver(:'eng') AS v1 \gset
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"remove","path":"members[value eq \"%s\"]"},{"op":"add","path":"members","value":[{"value":"00000000-0000-0000-0000-000000000002"}]}]}', :'ann')),
		  400, 'a PATCH whose second operation names an unknown member: 400');
SELECT ok(pg_temp.err(400, 'invalidValue'), 'invalidValue');
SELECT ok(:'ann' = ANY (pg_temp.members(:'eng')) AND pg_temp.ver(:'eng') = :v1, 'the first operation was rolled back too');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"add","path":"members","value":[{"value":"%s"}]}]}', :'zed')),
		  400, 'adding a user of another workspace: 400');
-- another workspace's group id must not be told apart from an unknown id (#15)
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"add","path":"members","value":[{"value":"%s"},{"value":"%s"}]}]}', :'sales', :'other_eng')),
		  400, 'adding [own group, another workspace''s group]: 400');
SELECT ok(pg_temp.b() ->> 'detail' LIKE format('%%Nested groups are not supported: %s is a group.%%', :'sales'),
		  'the detail names the own group as a group');
SELECT ok(strpos(pg_temp.b()::text, :'other_eng') = 0, 'and says nothing about the other workspace''s group');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"add","path":"members","value":[{"value":"%s"}]}]}', :'other_eng')),
		  400, 'adding another workspace''s group: 400');
SELECT ok(pg_temp.err(400, 'invalidValue') AND pg_temp.b() ->> 'detail' LIKE '1 member not found. No user with id % exists in workspace "grp_main".',
		  'answered as an unknown id (member not found), not as a group');
SELECT is(pg_temp.call('POST', '/Groups', body => format('{"displayName":"Cross2","members":[{"value":"%s"}]}', :'other_eng')), 400,
		  'POST /Groups with another workspace''s group as member: 400');
SELECT ok(pg_temp.b() ->> 'detail' NOT LIKE '%is a group%', 'not "is a group" either');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"replace","path":"members[value eq \"%s\"]","value":[{"value":"%s"}]}]}', :'zed', :'ann')),
		  400, 'replace with a value filter that matches no member: 400');
SELECT ok(pg_temp.err(400, 'noTarget'), 'noTarget');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"replace","path":"members[value eq \"%s\"].display","value":"x"}]}', :'ann')),
		  400, 'a member''s sub-attribute cannot be patched');
SELECT ok(pg_temp.err(400, 'invalidPath'), 'invalidPath');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => '{"Operations":[{"op":"remove","path":"members[value eq"}]}'), 400, 'a malformed value filter: 400');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => '{"Operations":[{"op":"move","path":"members"}]}'), 400, 'an unknown op: 400');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => '{"Operations":[]}'), 400, 'no operations: 400');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"add","path":"members","value":[{"value":"%s"}]}]}', :'ann'),
					   extra => '{"if-match":"W/\"1\""}'), 412, 'PATCH with a stale If-Match: 412');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => format('{"Operations":[{"op":"remove","path":"members[display eq \"BOB@example.com\"]"}]}')),
		  204, 'remove with a value filter on display (evaluated over the members)');
SELECT ok(NOT :'bob' = ANY (pg_temp.members(:'eng')), 'bob is gone');

-- ---- PATCH: other attributes, responses ------------------------------------------------
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => '{"Operations":[{"op":"Replace","path":"displayName","value":"Platform"}]}'),
		  204, 'rename (Entra: Replace displayName)');
SELECT is((SELECT display_name FROM scim.groups WHERE id = :'eng'), 'Platform', 'renamed');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', 'excludedAttributes=members',
					   '{"Operations":[{"op":"replace","value":{"displayName":"Platform Team"}}]}'), 200,
		  'with excludedAttributes the PATCH answers 200 with the resource');
SELECT results_eq($$SELECT body->>'displayName', body ? 'members', body->'meta'->>'version' = headers->>'ETag' FROM resp$$,
	$$VALUES ('Platform Team', false, true)$$, 'the patched resource, without members, with its ETag');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => '{"Operations":[{"op":"replace","path":"displayName","value":"empty team"}]}'),
		  409, 'renaming onto a taken displayName: 409');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => '{"Operations":[{"op":"remove","path":"displayName"}]}'), 400,
		  'removing displayName: 400');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eng', body => '{"Operations":[{"op":"remove","path":"externalId"}]}'), 204, 'remove externalId');
SELECT is((SELECT external_id FROM scim.groups WHERE id = :'eng'), NULL, 'gone');
SELECT is(pg_temp.call('PATCH', '/Groups/00000000-0000-0000-0000-000000000009', body => '{"Operations":[{"op":"remove","path":"externalId"}]}'), 404,
		  'PATCH of an unknown group: 404');

-- ---- O(members changed) ---------------------------------------------------------------
-- a 1,000-member group; adding and removing one member reads only that row
INSERT INTO scim.users (workspace, user_name)
SELECT 'grp_main', format('bulk%s@example.com', i) FROM generate_series(1, 1000) i;
SELECT is(pg_temp.call('POST', '/Groups', body => '{"displayName":"Big"}'), 201, 'a big group');
SELECT (pg_temp.b() ->> 'id') AS big \gset
INSERT INTO scim.group_members (group_id, member_id)
SELECT :'big', id FROM scim.users WHERE user_name LIKE 'bulk%@example.com';
SELECT pg_temp.member_reads() AS r1 \gset
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'big', body => format('{"Operations":[{"op":"add","path":"members","value":[{"value":"%s"}]}]}', :'ann')),
		  204, 'add one member to a 1,000-member group');
SELECT cmp_ok(pg_temp.member_reads() - :r1, '<=', 4::bigint, 'the add read at most a few member rows (no load of the member list)');
SELECT pg_temp.member_reads() AS r2 \gset
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'big', body => format('{"Operations":[{"op":"Remove","path":"members","value":[{"value":"%s"}]}]}', :'ann')),
		  204, 'Entra remove of one member from it');
SELECT cmp_ok(pg_temp.member_reads() - :r2, '<=', 4::bigint, 'the remove read at most a few member rows');
SELECT is((SELECT count(*) FROM scim.group_members WHERE group_id = :'big'), 1000::bigint, '1,000 members remain');

-- ---- deleting users and groups ---------------------------------------------------------
SELECT is(coalesce(current_setting('scim.group_write', true), ''), '', 'no group-write marker outlives a request');
SELECT pg_temp.ver(:'eng') AS v2 \gset
DELETE FROM scim.users WHERE id = :'cy';
SELECT ok(NOT :'cy' = ANY (pg_temp.members(:'eng')), 'a deleted user leaves its groups');
SELECT is(pg_temp.ver(:'eng'), :v2 + 1::bigint, 'and the group''s version moves');
SELECT is(pg_temp.call('DELETE', '/Groups/' || :'sales', extra => '{"if-match":"W/\"1\""}'), 412, 'DELETE with a stale If-Match: 412');
SELECT is(pg_temp.call('DELETE', '/Groups/' || :'sales'), 204, 'DELETE /Groups/{id}: 204');
SELECT is(pg_temp.call('GET', '/Groups/' || :'sales'), 404, 'then 404');
SELECT is((SELECT count(*) FROM scim.group_members WHERE group_id = :'sales'), 0::bigint, 'its memberships are gone');
SELECT ok(EXISTS (SELECT FROM scim.users WHERE id = :'ann'), 'its members are not');
SELECT results_eq(format($$SELECT method, status, detail FROM scim.provisioning_log WHERE resource_id = %L ORDER BY id DESC LIMIT 2$$, :'sales'),
	format($$VALUES ('GET', 404, %L), ('DELETE', 204, 'group deleted')$$, format('no group with id "%s"', :'sales')),
	'the System Log has the deletion and the 404');

SELECT * FROM finish();
ROLLBACK;
