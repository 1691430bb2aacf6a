-- Group requests replayed as Microsoft Entra ID and Okta send them
-- (doc: shared/reference/onelogin.md section 4; Entra with and without the
-- aadOptscim062020 flag, Okta Group Push): create, look up, add a member,
-- remove it by filter and by value list, rename, delete.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(40);

DO $$
BEGIN
	PERFORM scim.create_workspace('grp_idp');
	PERFORM scim.approve_domain('contoso.com', 'grp_idp');
	PERFORM set_config('test.auth', 'Bearer ' || scim.create_token('entra', 'grp_idp'), false);
END;
$$;
CREATE TEMP TABLE resp (status integer, headers jsonb, body jsonb);
CREATE FUNCTION pg_temp.call(method text, path text, query text DEFAULT NULL, body text DEFAULT NULL)
	RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM resp;
	INSERT INTO resp
	SELECT h.status, h.headers, h.body
	FROM scim.handle(method, path, query,
					 jsonb_build_object('authorization', current_setting('test.auth'),
										'content-type', 'application/scim+json; charset=utf-8'), body) h;
	RETURN (SELECT r.status FROM resp r);
END;
$$;
CREATE FUNCTION pg_temp.b() RETURNS jsonb LANGUAGE sql AS $$ SELECT body FROM resp $$;
CREATE FUNCTION pg_temp.members(gid text) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(member_id::text ORDER BY member_id), '{}') FROM scim.group_members WHERE group_id = gid::uuid $$;

-- users the IdP provisioned first
SELECT is(pg_temp.call('POST', '/Users', body => '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"Test_User_ab6490ee@contoso.com","active":true,"emails":[{"primary":true,"type":"work","value":"Test_User_ab6490ee@contoso.com"}],"meta":{"resourceType":"User"},"name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},"roles":[]}'),
		  201, 'Entra provisions a user');
SELECT (pg_temp.b() ->> 'id') AS u1 \gset
SELECT is(pg_temp.call('POST', '/Users', body => '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"test.user@contoso.com","name":{"givenName":"Test","familyName":"User"},"emails":[{"primary":true,"value":"test.user@contoso.com","type":"work"}],"displayName":"Test User","locale":"en-US","externalId":"00ujl29u0le5T6Aj10h7","groups":[],"password":"1mz050nq","active":true}'),
		  201, 'Okta provisions a user');
SELECT (pg_temp.b() ->> 'id') AS u2 \gset

-- ---- Microsoft Entra ID --------------------------------------------------------
SELECT is(pg_temp.call('GET', '/Groups', 'excludedAttributes=members&filter=displayName+eq+%22Group1DisplayName%22'), 200,
		  'Entra: look the group up by displayName, without members');
SELECT is(pg_temp.b(), '{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"startIndex":1,"itemsPerPage":0,"Resources":[]}'::jsonb,
		  'not there yet: an empty ListResponse');
SELECT is(pg_temp.call('POST', '/Groups', body => '{"externalId":"8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159","displayName":"Group1DisplayName","meta":{"resourceType":"Group"},"members":[],"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group","http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"]}'),
		  201, 'Entra: create the group (empty, with its ADSCIM schema URN)');
SELECT (pg_temp.b() ->> 'id') AS eg \gset
SELECT results_eq($$SELECT body->>'displayName', body->>'externalId', body->'members' FROM resp$$,
	$$VALUES ('Group1DisplayName', '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159', '[]'::jsonb)$$, 'created as sent');
SELECT is(pg_temp.call('GET', '/Groups', 'excludedAttributes=members&filter=displayName+eq+%22Group1DisplayName%22'), 200, 'Entra: look it up again');
SELECT results_eq($$SELECT (body->>'totalResults')::int, body->'Resources'->0->>'id', body->'Resources'->0 ? 'members' FROM resp$$,
	format($$VALUES (1, %L, false)$$, :'eg'), 'found, without members');
SELECT is(pg_temp.call('GET', '/Groups/' || :'eg', 'excludedAttributes=members'), 200, 'Entra: GET the group by id, without members');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eg', body => format('{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"%s"}]}]}', :'u1')),
		  204, 'Entra: add a member ("Add"): 204');
SELECT is(pg_temp.members(:'eg'), ARRAY[:'u1'], 'the member is in');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eg', body => format('{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"%s"}]}]}', :'u2')),
		  204, 'Entra: add a second member');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eg', body => format('{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":"%s"}]}]}', :'u1')),
		  204, 'Entra (default): remove a member with a value list');
SELECT is(pg_temp.members(:'eg'), ARRAY[:'u2'], 'only that member left, the others stay');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eg', 'aadOptscim062020', format('{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"%s\"]"}]}', :'u2')),
		  204, 'Entra (aadOptscim062020): remove a member by filter');
SELECT is(pg_temp.members(:'eg'), '{}'::text[], 'the group is empty');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eg', 'aadOptscim062020', format('{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"%s"},{"value":"%s"}]}]}', :'u1', :'u2')),
		  204, 'Entra: add two members at once');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'eg', body => '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"displayName","value":"1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]}'),
		  204, 'Entra: rename (Replace displayName)');
SELECT is(pg_temp.call('GET', '/Groups/' || :'eg'), 200, 'GET the group');
SELECT results_eq($$SELECT body->>'displayName', jsonb_array_length(body->'members') FROM resp$$,
	$$VALUES ('1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName', 2)$$, 'renamed, with both members');
SELECT is(pg_temp.call('GET', '/Groups', 'filter=displayName+eq+%22ed0e7e7f-4375-4b56-8a98-1e14a4d5e8a9%22&excludedAttributes=members'), 200,
		  'Entra''s test connection: a random group');
SELECT is((pg_temp.b() ->> 'totalResults')::int, 0, 'none: totalResults 0');
SELECT is(pg_temp.call('DELETE', '/Groups/' || :'eg'), 204, 'Entra: delete the group: 204');
SELECT is(pg_temp.call('GET', '/Groups/' || :'eg'), 404, 'gone');

-- ---- Okta Group Push -------------------------------------------------------------
SELECT is(pg_temp.call('GET', '/Groups', 'filter=displayName%20eq%20%22Test%20SCIMv2%22&startIndex=1&count=100'), 200, 'Okta: look the group up');
SELECT is(pg_temp.call('POST', '/Groups', body => '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Test SCIMv2","members":[]}'),
		  201, 'Okta: push the group');
SELECT (pg_temp.b() ->> 'id') AS og \gset
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'og', body => format('{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"%s","display":"test.user@contoso.com"}]}]}', :'u2')),
		  204, 'Okta: add a member with its display');
SELECT is(pg_temp.members(:'og'), ARRAY[:'u2'], 'the member is in');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'og', body => format('{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"%s\"]"},{"op":"add","path":"members","value":[{"value":"%s","display":"Test_User_ab6490ee@contoso.com"}]}]}', :'u2', :'u1')),
		  204, 'Okta: one PATCH removes a member by filter and adds another');
SELECT is(pg_temp.members(:'og'), ARRAY[:'u1'], 'the membership is swapped');
SELECT is(pg_temp.call('PATCH', '/Groups/' || :'og', body => format('{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"id":"%s","displayName":"Test SCIMv2 renamed"}}]}', :'og')),
		  204, 'Okta: rename with a no-path replace that repeats the id');
SELECT is((SELECT display_name FROM scim.groups WHERE id = :'og'), 'Test SCIMv2 renamed', 'renamed');
SELECT is(pg_temp.call('GET', '/Groups', 'startIndex=1&count=100'), 200, 'Okta: import groups');
SELECT results_eq($$SELECT (body->>'totalResults')::int, (body->>'itemsPerPage')::int, jsonb_typeof(body->'startIndex'), body->'Resources'->0->>'displayName' FROM resp$$,
	$$VALUES (1, 1, 'number', 'Test SCIMv2 renamed')$$, 'integers, and the group');
SELECT is(pg_temp.call('GET', '/Users/' || :'u1'), 200, 'GET the member');
SELECT is(scim.user_groups(:'u1'), jsonb_build_array(jsonb_build_object('value', :'og', '$ref', '/Groups/' || :'og',
		  'display', 'Test SCIMv2 renamed', 'type', 'direct')), 'the user''s groups');
SELECT is(pg_temp.call('DELETE', '/Groups/' || :'og'), 204, 'Okta: delete the group');
SELECT is((SELECT count(*) FROM scim.group_members WHERE group_id = :'og'), 0::bigint, 'no memberships left');

-- every request has its System Log row
SELECT is((SELECT count(*) FROM scim.provisioning_log WHERE workspace = 'grp_idp'), 24::bigint, 'one System Log row per request (24 requests)');
SELECT is((SELECT count(*) FROM scim.provisioning_log WHERE workspace = 'grp_idp' AND status >= 400), 1::bigint,
		  'only the 404 after the deletion was refused');

SELECT * FROM finish();
ROLLBACK;
