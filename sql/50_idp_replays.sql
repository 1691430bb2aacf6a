-- Replays of real IdP request sequences through scim.handle
-- (doc: /work/shared/reference/onelogin.md sections 2 and 4): OneLogin's
-- SCIM v2 app (test, create, full-body PUT, deactivating PUT, DELETE, sync),
-- OneLogin's SCIM 1.1 template, Okta (lookup with paging, create, PUT,
-- PATCH without a path), Entra ID (externalId lookup, capitalised ops,
-- string booleans, filtered and URN paths, no-path dotted keys), and PATCH
-- with ETags.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(97);

DO $$
BEGIN
	PERFORM scim.create_workspace('r_onelogin');
	PERFORM scim.create_workspace('r_okta');
	PERFORM scim.create_workspace('r_entra', 'delete');
	PERFORM scim.approve_domain('example.com', 'r_onelogin');
	PERFORM scim.approve_domain('okta.local', 'r_okta');
	PERFORM scim.approve_domain('contoso.com', 'r_entra');
	PERFORM set_config('test.onelogin', 'Bearer ' || scim.create_token('onelogin', 'r_onelogin'), false);
	PERFORM set_config('test.okta', 'Bearer ' || scim.create_token('okta', 'r_okta'), false);
	PERFORM set_config('test.entra', 'Bearer ' || scim.create_token('entra', 'r_entra'), false);
END;
$$;
CREATE TEMP TABLE resp (status integer, headers jsonb, body jsonb);
CREATE FUNCTION pg_temp.call(auth text, method text, path text, query text DEFAULT NULL, body text DEFAULT NULL, extra jsonb DEFAULT '{}')
	RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM resp;
	INSERT INTO resp SELECT h.status, h.headers, h.body
	FROM scim.handle(method, path, query, jsonb_build_object('authorization', current_setting('test.' || auth)) || extra, body) h;
	RETURN (SELECT r.status FROM resp r);
END;
$$;
CREATE FUNCTION pg_temp.b() RETURNS jsonb LANGUAGE sql AS $$ SELECT body FROM resp $$;
CREATE FUNCTION pg_temp.h() RETURNS jsonb LANGUAGE sql AS $$ SELECT headers FROM resp $$;
CREATE FUNCTION pg_temp.logs(ws text) RETURNS TABLE(method text, status integer, scim_type text) LANGUAGE sql AS $$
	SELECT l.method, l.status, l.scim_type FROM scim.provisioning_log l WHERE l.workspace = ws ORDER BY l.id $$;

-- ==== OneLogin, "SCIM Provisioner with SAML (SCIM v2 Enterprise)" ==============
-- 1. API connection test: a userName it knows does not exist
SELECT is(pg_temp.call('onelogin', 'GET', '/Users', 'filter=userName%20eq%20%22never-existing-user%22'), 200, 'OneLogin: connection test answers 200');
SELECT is(pg_temp.b(), '{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"startIndex":1,"itemsPerPage":0,"Resources":[]}'::jsonb,
		  'OneLogin: an empty ListResponse');
-- 2. group discovery
SELECT is(pg_temp.call('onelogin', 'GET', '/Groups', 'count=100&startIndex=1'), 200, 'OneLogin: GET /Groups answers 200');
-- 3. create: look the user up, then POST
SELECT is(pg_temp.call('onelogin', 'GET', '/Users', 'filter=userName%20eq%20%22peter.meier%40example.com%22'), 200, 'OneLogin: lookup before create');
SELECT is((pg_temp.b() ->> 'totalResults')::int, 0, 'OneLogin: not there yet');
SELECT is(pg_temp.call('onelogin', 'POST', '/Users', body => $$
	{"userName":"peter.meier@example.com","name":{"givenName":"Peter","familyName":"Meier"},
	 "schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
	 "emails":[{"primary":true,"type":"work","value":"pm@example.com"}],"active":true}
$$), 201, 'OneLogin: POST /Users creates');
SELECT (pg_temp.b() ->> 'id') AS peter \gset
SELECT ok(pg_temp.b() -> 'name' ->> 'givenName' = 'Peter' AND pg_temp.b() -> 'name' ->> 'familyName' = 'Meier', 'OneLogin: the answer echoes name.givenName and name.familyName');
SELECT results_eq(format($$SELECT email, billable FROM scim.users WHERE id = %L$$, :'peter'), $$VALUES ('pm@example.com', true)$$,
				  'OneLogin: the primary email is stored; billable as soon as provisioned');
SELECT is(pg_temp.call('onelogin', 'GET', '/Users', 'filter=userName%20eq%20%22peter.meier%40example.com%22'), 200, 'OneLogin: lookup after create');
SELECT is(pg_temp.b() -> 'Resources' -> 0 ->> 'id', :'peter', 'OneLogin: found');
-- 4. update: the full rendered template, as PUT
SELECT is(pg_temp.call('onelogin', 'PUT', '/Users/' || :'peter', body => $$
	{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales",
		"manager":{"managerId":"mgr-7","displayName":"Mia Manager"}},
	 "active":"true",
	 "emails":[{"value":"pm@example.com","type":"work","primary":true}],
	 "meta":{"resourceType":"User"},
	 "name":{"familyName":"Meier","givenName":"Pete","formatted":"Pete Meier"},
	 "userName":"peter.meier@example.com",
	 "title":"",
	 "id":null,
	 "schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}
$$), 200, 'OneLogin: PUT with the full template (id null, meta, active "true") answers 200');
SELECT ok(pg_temp.b() ->> 'id' = :'peter' AND pg_temp.b() ? 'name' AND pg_temp.b() ->> 'userName' = 'peter.meier@example.com',
		  'OneLogin: the answer has id, name and userName');
SELECT results_eq(format($$SELECT given_name, department, attributes #>> '{urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,manager,value}', active FROM scim.users WHERE id = %L$$, :'peter'),
				  $$VALUES ('Pete', 'Sales', 'mgr-7', true)$$, 'OneLogin: the update is stored (managerId as manager.value)');
UPDATE scim.users SET title = 'Sales Lead', phone = '+41 44 000 00 00' WHERE id = :'peter';
SELECT is(pg_temp.call('onelogin', 'PUT', '/Users/' || :'peter', body => $$
	{"userName":"peter.meier@example.com","name":{"familyName":"Meier","givenName":"Pete"},"title":"","active":true,
	 "emails":[{"value":"pm@example.com","type":"work","primary":true}],
	 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":""}}
$$), 200, 'OneLogin: PUT where title, phone and department are missing in OneLogin');
SELECT results_eq(format($$SELECT title, phone, department FROM scim.users WHERE id = %L$$, :'peter'),
				  $$VALUES ('Sales Lead', '+41 44 000 00 00', 'Sales')$$, 'OneLogin: attributes missing in OneLogin stay');
-- 5. deprovision (suspend): PUT with active false
SELECT is(pg_temp.call('onelogin', 'PUT', '/Users/' || :'peter', body => $$
	{"userName":"peter.meier@example.com","name":{"familyName":"Meier","givenName":"Pete"},"active":false,
	 "emails":[{"value":"pm@example.com","type":"work","primary":true}]}
$$), 200, 'OneLogin: PUT with active false');
SELECT results_eq(format($$SELECT active, billable, deactivated_at IS NOT NULL FROM scim.users WHERE id = %L$$, :'peter'),
				  $$VALUES (false, false, true)$$, 'OneLogin: deactivated, seat released, row kept');
-- 6. delete (when configured), then reads
SELECT is(pg_temp.call('onelogin', 'DELETE', '/Users/' || :'peter'), 204, 'OneLogin: DELETE answers 204');
SELECT is(pg_temp.call('onelogin', 'GET', '/Users/' || :'peter'), 200, 'OneLogin: under the deactivate policy the user stays readable');
SELECT is(pg_temp.b() -> 'active', 'false'::jsonb, 'OneLogin: as active false');
-- 7. sync: paging through all users
SELECT is(pg_temp.call('onelogin', 'POST', '/Users', body => '{"userName":"anna.k@example.com","name":{"givenName":"Anna","familyName":"K"},"active":true}'), 201,
		  'OneLogin: a second user');
SELECT is(pg_temp.call('onelogin', 'GET', '/Users', 'count=1&startIndex=1'), 200, 'OneLogin: sync page 1');
SELECT results_eq($$SELECT (body->>'totalResults')::int, (body->>'itemsPerPage')::int, (body->>'startIndex')::int FROM resp$$, $$VALUES (2, 1, 1)$$, 'OneLogin: page 1 of 2');
SELECT (pg_temp.b() -> 'Resources' -> 0 ->> 'id') AS page1 \gset
SELECT is(pg_temp.call('onelogin', 'GET', '/Users', 'count=1&startIndex=2'), 200, 'OneLogin: sync page 2');
SELECT isnt(pg_temp.b() -> 'Resources' -> 0 ->> 'id', :'page1', 'OneLogin: page 2 is another user');
SELECT results_eq($$SELECT * FROM pg_temp.logs('r_onelogin')$$,
				  $$VALUES ('GET', 200, NULL::text), ('GET', 200, NULL), ('GET', 200, NULL), ('POST', 201, NULL), ('GET', 200, NULL),
						   ('PUT', 200, NULL), ('PUT', 200, NULL), ('PUT', 200, NULL), ('DELETE', 204, NULL), ('GET', 200, NULL),
						   ('POST', 201, NULL), ('GET', 200, NULL), ('GET', 200, NULL)$$,
				  'OneLogin: the System Log holds every request of the session, in order');

-- ==== OneLogin, SCIM 1.1 template ("Core Schema v1.1") ===========================
SELECT is(pg_temp.call('onelogin', 'POST', '/Users', body => $$
	{"schemas":["urn:scim:schemas:core:1.0","urn:scim:schemas:extension:enterprise:1.0"],
	 "userName":"old.template@example.com",
	 "name":{"familyName":"Template","givenName":"Old","formatted":"Old Template"},
	 "emails":{"value":"old.template@example.com","type":"work","primary":true},
	 "title":"Archivist",
	 "urn:scim:schemas:extension:enterprise:1.0":{"department":"Records","manager":{"managerId":"m-1","displayName":"Boss"}}}
$$), 201, 'OneLogin 1.1 template: accepted');
SELECT is(pg_temp.b() -> 'emails', '[{"value":"old.template@example.com","type":"work","primary":true}]'::jsonb, 'OneLogin 1.1: emails object answered as an array');
SELECT is(pg_temp.b() -> 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User', '{"department":"Records","manager":{"value":"m-1"}}'::jsonb,
		  'OneLogin 1.1: the enterprise 1.0 extension answered as 2.0');
SELECT ok(pg_temp.b() -> 'schemas' @> '["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]' AND NOT pg_temp.b()::text LIKE '%:1.0%',
		  'OneLogin 1.1: answered in strict SCIM 2.0');

-- ==== Okta =====================================================================
SELECT is(pg_temp.call('okta', 'GET', '/Users', 'filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100',
					   extra => '{"user-agent":"Okta SCIM Client 1.0.0","accept":"application/scim+json"}'), 200, 'Okta: lookup with startIndex=1&count=100');
SELECT results_eq($$SELECT (body->>'totalResults')::int, (body->>'startIndex')::int, body->'Resources' FROM resp$$, $$VALUES (0, 1, '[]'::jsonb)$$,
				  'Okta: none yet, integers and Resources []');
SELECT is(pg_temp.call('okta', 'POST', '/Users', body => $$
	{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"test.user@okta.local",
	 "name":{"givenName":"Test","familyName":"User"},"emails":[{"primary":true,"value":"test.user@okta.local","type":"work"}],
	 "displayName":"Test User","locale":"en-US","externalId":"00ujl29u0le5T6Aj10h7","groups":[],"password":"1mz050nq","active":true}
$$), 201, 'Okta: create');
SELECT (pg_temp.b() ->> 'id') AS okta_user \gset
SELECT ok(NOT pg_temp.b() ? 'password' AND NOT pg_temp.b() ? 'groups' AND pg_temp.b() ->> 'locale' = 'en-US', 'Okta: password and groups not echoed, locale kept');
SELECT is(pg_temp.call('okta', 'POST', '/Users', body => '{"userName":"test.user@okta.local","active":true}'), 409, 'Okta: a duplicate create is 409');
SELECT is(pg_temp.b() ->> 'scimType', 'uniqueness', 'Okta: uniqueness');
SELECT is(pg_temp.call('okta', 'GET', '/Users', 'filter=userName%20eq%20%22TEST.USER%40okta.local%22&startIndex=1&count=100'), 200, 'Okta: lookup after create');
SELECT is((pg_temp.b() ->> 'totalResults')::int, 1, 'Okta: found, case-insensitively');
SELECT is(pg_temp.call('okta', 'GET', '/Users/' || :'okta_user'), 200, 'Okta: GET before the update');
SELECT is(pg_temp.call('okta', 'PUT', '/Users/' || :'okta_user', body => (
		  SELECT (r.body - 'meta' || '{"name":{"givenName":"Tess","familyName":"User"},"title":"QA"}')::text FROM resp r)), 200,
		  'Okta: PUT the resource back with changes');
SELECT results_eq(format($$SELECT given_name, title, external_id, attributes ->> 'locale' FROM scim.users WHERE id = %L$$, :'okta_user'),
				  $$VALUES ('Tess', 'QA', '00ujl29u0le5T6Aj10h7', 'en-US')$$, 'Okta: updated, the rest kept as sent back');
SELECT is(pg_temp.call('okta', 'PATCH', '/Users/' || :'okta_user', body => $$
	{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}
$$), 200, 'Okta: deactivate with PATCH replace and no path');
SELECT is(pg_temp.b() -> 'active', 'false'::jsonb, 'Okta: the answer says active false');
SELECT results_eq(format($$SELECT active, billable FROM scim.users WHERE id = %L$$, :'okta_user'), $$VALUES (false, false)$$, 'Okta: deactivated');
SELECT is(pg_temp.call('okta', 'PATCH', '/Users/' || :'okta_user', body => $$
	{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}
$$), 200, 'Okta: reactivate');
SELECT is((SELECT billable FROM scim.users WHERE id = :'okta_user'), true, 'Okta: billable again');
SELECT is(pg_temp.call('okta', 'GET', '/Users', 'startIndex=1&count=100'), 200, 'Okta: import');
SELECT is((pg_temp.b() ->> 'itemsPerPage')::int, 1, 'Okta: one user');
SELECT results_eq($$SELECT * FROM pg_temp.logs('r_okta')$$,
				  $$VALUES ('GET', 200, NULL::text), ('POST', 201, NULL), ('POST', 409, 'uniqueness'), ('GET', 200, NULL), ('GET', 200, NULL),
						   ('PUT', 200, NULL), ('PATCH', 200, NULL), ('PATCH', 200, NULL), ('GET', 200, NULL)$$,
				  'Okta: the System Log of the session');

-- ==== Entra ID =================================================================
SELECT is(pg_temp.call('entra', 'GET', '/Users', 'filter=externalId+eq+%2258342554-38d6-4ec8-948c-50044d0a33fd%22&aadOptscim062020'), 200,
		  'Entra: lookup by externalId (with the flag in the query)');
SELECT is((pg_temp.b() ->> 'totalResults')::int, 0, 'Entra: none yet');
SELECT is(pg_temp.call('entra', 'POST', '/Users', body => $$
	{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	 "externalId":"58342554-38d6-4ec8-948c-50044d0a33fd","userName":"Test_User_ab6490ee@contoso.com","active":true,
	 "addresses":[{"primary":true,"type":"work","formatted":"Test Address","streetAddress":"Test Street","locality":"Test City","region":"WA","postalCode":"98052","country":"US"}],
	 "displayName":"Test User","emails":[{"primary":true,"type":"work","value":"Test_User_ab6490ee@contoso.com"}],
	 "meta":{"resourceType":"User"},"name":{"formatted":"Test User","familyName":"User","givenName":"Test"},
	 "phoneNumbers":[{"primary":true,"type":"work","value":"123-456-7890"}],"roles":[],"title":"Manager",
	 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Dept","organization":"Org","manager":"123","employeeNumber":"E1"},
	 "userType":"External"}
$$), 201, 'Entra: create');
SELECT (pg_temp.b() ->> 'id') AS entra_user \gset
SELECT ok(pg_temp.b() -> 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User' -> 'manager' = '{"value":"123"}'
		  AND pg_temp.b() ->> 'userType' = 'External', 'Entra: manager as a bare string, core userType');
SELECT is(pg_temp.call('entra', 'GET', '/Users', 'filter=userName+eq+%22test_user_ab6490ee%40contoso.com%22'), 200, 'Entra: userName eq');
SELECT is(pg_temp.b() -> 'Resources' -> 0 ->> 'id', :'entra_user', 'Entra: found');
SELECT is(pg_temp.call('entra', 'GET', '/Users', 'filter=emails%5Btype+eq+%22work%22+and+value+eq+%22Test_User_ab6490ee%40contoso.com%22%5D'), 200,
		  'Entra: lookup by the work email');
SELECT is((pg_temp.b() ->> 'totalResults')::int, 1, 'Entra: found by emails[type eq "work" and value eq ...]');
-- the form Entra's documentation and validator send, outside RFC 7644's grammar
SELECT is(pg_temp.call('entra', 'GET', '/Users', 'filter=emails%5Btype+eq+%22work%22%5D.value+eq+%22Test_User_ab6490ee%40contoso.com%22'), 200,
		  'Entra: lookup by emails[type eq "work"].value eq ...');
SELECT is(pg_temp.b() -> 'Resources' -> 0 ->> 'id', :'entra_user', 'Entra: found by emails[type eq "work"].value eq ...');
SELECT is(pg_temp.call('entra', 'GET', '/Users', 'filter=emails%5Btype+eq+%22home%22%5D.value+eq+%22Test_User_ab6490ee%40contoso.com%22'), 200,
		  'Entra: the same address as a home email');
SELECT is((pg_temp.b() ->> 'totalResults')::int, 0, 'Entra: not found: the element must pass both conditions');
-- PATCH as Entra sends it without aadOptscim062020: capitalised ops, string booleans
SELECT is(pg_temp.call('entra', 'PATCH', '/Users/' || :'entra_user', body => $$
	{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
	 {"op":"Replace","path":"emails[type eq \"work\"].value","value":"updatedEmail@contoso.com"},
	 {"op":"Replace","path":"name.familyName","value":"updatedFamilyName"},
	 {"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber","value":"E2"},
	 {"op":"Add","path":"nickName","value":"Babs"}]}
$$), 200, 'Entra: PATCH with Replace/Add, a filtered path, a URN path');
SELECT results_eq(format($$SELECT email, family_name, attributes->>'nickName', attributes #>> '{urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,employeeNumber}' FROM scim.users WHERE id = %L$$, :'entra_user'),
				  $$VALUES ('updatedEmail@contoso.com', 'updatedFamilyName', 'Babs', 'E2')$$, 'Entra: every operation landed');
SELECT is(pg_temp.b() -> 'emails', '[{"primary":true,"type":"work","value":"updatedEmail@contoso.com"}]'::jsonb, 'Entra: the work email replaced in place');
SELECT is(pg_temp.call('entra', 'PATCH', '/Users/' || :'entra_user', body => $$
	{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}
$$), 200, 'Entra: disable with "False" as a string');
SELECT results_eq(format($$SELECT active, billable FROM scim.users WHERE id = %L$$, :'entra_user'), $$VALUES (false, false)$$, 'Entra: disabled');
-- with aadOptscim062020: no-path replace with dotted and URN keys
SELECT is(pg_temp.call('entra', 'PATCH', '/Users/' || :'entra_user', 'aadOptscim062020', $$
	{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
	 {"op":"replace","path":"active","value":true},
	 {"op":"replace","value":{"displayName":"Bjfe","name.givenName":"Kkom","name.familyName":"Unua",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"Aklq"}}]}
$$), 200, 'Entra: no-path replace with dotted and URN-qualified keys');
SELECT results_eq(format($$SELECT active, display_name, given_name, family_name, attributes #>> '{urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,employeeNumber}' FROM scim.users WHERE id = %L$$, :'entra_user'),
				  $$VALUES (true, 'Bjfe', 'Kkom', 'Unua', 'Aklq')$$, 'Entra: applied');
SELECT is(pg_temp.call('entra', 'PATCH', '/Users/' || :'entra_user', body => $$
	{"Operations":[{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User:userType","value":"collaborator"}]}
$$), 200, 'Entra: our extension''s userType by URN path');
SELECT ok(pg_temp.b() ->> 'userType' = 'Collaborator' AND (SELECT user_type FROM scim.users WHERE id = :'entra_user') = 'Collaborator',
		  'Entra: canonical case, core and extension agree');
SELECT is(pg_temp.call('entra', 'PATCH', '/Users/' || :'entra_user', body => '{"Operations":[{"op":"Replace","path":"userType","value":"Contractor"}]}'), 400,
		  'Entra: a user type we do not have: 400');
SELECT is(pg_temp.b() ->> 'scimType', 'invalidValue', 'Entra: invalidValue');
-- Replace of the work email of a user who has none yet: built as add does
-- (issue #15 point 14; Microsoft's reference implementation does the same)
SELECT is(pg_temp.call('entra', 'POST', '/Users', body => '{"userName":"NoWork@contoso.com","externalId":"nowork","active":true}'), 201,
		  'Entra: a user without emails');
SELECT (pg_temp.b() ->> 'id') AS nowork \gset
SELECT is(pg_temp.call('entra', 'PATCH', '/Users/' || :'nowork', body => $$
	{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
	 {"op":"Replace","path":"emails[type eq \"work\"].value","value":"nowork.mail@contoso.com"}]}
$$), 200, 'Entra: Replace emails[type eq "work"].value with no work email: 200, not noTarget');
SELECT is(pg_temp.b() -> 'emails', '[{"type":"work","value":"nowork.mail@contoso.com"}]'::jsonb, 'Entra: the work email was built');
SELECT is((SELECT email FROM scim.users WHERE id = :'nowork'), 'nowork.mail@contoso.com', 'Entra: and stored');
SELECT is(pg_temp.call('entra', 'PATCH', '/Users/' || :'nowork', body => $$
	{"Operations":[{"op":"Replace","path":"phoneNumbers[type ne \"work\"].value","value":"1"}]}
$$), 400, 'Entra: a no-match replace through a non-eq filter is still 400');
SELECT is(pg_temp.b() ->> 'scimType', 'noTarget', 'Entra: noTarget');
SELECT is(pg_temp.call('entra', 'DELETE', '/Users/' || :'nowork'), 204, 'Entra: cleaned up');
SELECT is(pg_temp.call('entra', 'DELETE', '/Users/' || :'entra_user'), 204, 'Entra: hard delete (delete policy)');
SELECT is(pg_temp.call('entra', 'GET', '/Users/' || :'entra_user'), 404, 'Entra: gone');
SELECT is((SELECT count(*) FROM scim.users WHERE workspace = 'r_entra'), 0::bigint, 'Entra: the row is removed');

-- ==== PATCH details ==============================================================
SELECT is(pg_temp.call('onelogin', 'POST', '/Users', body => '{"userName":"pat@example.com","title":"T1","emails":[{"value":"pat@example.com","type":"work","primary":true}]}'), 201,
		  'PATCH: a user');
SELECT (pg_temp.b() ->> 'id') AS pat \gset
SELECT is(pg_temp.call('onelogin', 'PATCH', '/Users/' || :'pat', body => '{"Operations":[{"op":"replace","path":"title","value":"T2"}]}', extra => '{"if-match":"W/\"9\""}'), 412,
		  'PATCH with a stale If-Match: 412');
SELECT is((SELECT title || version FROM scim.users WHERE id = :'pat'), 'T11', 'nothing changed');
SELECT is(pg_temp.call('onelogin', 'PATCH', '/Users/' || :'pat', body => '{"Operations":[{"op":"replace","path":"title","value":"T2"}]}', extra => '{"if-match":"W/\"1\""}'), 200,
		  'PATCH with the current If-Match: 200');
SELECT is(pg_temp.h() ->> 'ETag', 'W/"2"', 'the new ETag');
SELECT is(pg_temp.call('onelogin', 'PATCH', '/Users/' || :'pat', body => $$
	{"Operations":[{"op":"replace","path":"title","value":"T3"},{"op":"replace","path":"emails[type eq \"work\"].value","value":"pat@evil.example.net"}]}
$$), 400, 'PATCH whose result is refused (domain): 400');
SELECT is((SELECT title || version FROM scim.users WHERE id = :'pat'), 'T22', 'atomic: the first operation did not land either');
SELECT is(pg_temp.call('onelogin', 'PATCH', '/Users/' || :'pat', body => '{"Operations":[{"op":"replace","path":"title","value":"T3"},{"op":"remove","path":"nosuch"}]}'), 400,
		  'PATCH with a bad path: 400');
SELECT ok(pg_temp.b() ->> 'scimType' IN ('invalidPath', 'noTarget'), 'invalidPath or noTarget');
SELECT is((SELECT title FROM scim.users WHERE id = :'pat'), 'T2', 'atomic');
SELECT is(pg_temp.call('onelogin', 'PATCH', '/Users/' || :'pat', body => '{"Operations":[{"op":"replace","path":"id","value":"x"}]}'), 400, 'PATCH of id: 400');
SELECT is(pg_temp.b() ->> 'scimType', 'mutability', 'mutability');
SELECT is(pg_temp.call('onelogin', 'PATCH', '/Users/' || :'pat', body => '{"Operations":[{"op":"remove","path":"title"}]}'), 200, 'PATCH remove of a synced attribute');
SELECT is((SELECT title FROM scim.users WHERE id = :'pat'), NULL, 'PATCH remove clears it (unlike PUT, which keeps what is left out)');
SELECT is(pg_temp.call('onelogin', 'PATCH', '/Users/' || :'pat', body => '{"Operations":[{"op":"replace","path":"userName","value":"anna.k@example.com"}]}'), 409,
		  'PATCH onto a taken userName: 409');
SELECT is(pg_temp.call('onelogin', 'PATCH', '/Users/' || :'pat', body => '{"operations":[{"op":"ADD","path":"title","value":"T4"}]}'), 200, '"operations" and "ADD" in any case');
SELECT is(pg_temp.call('onelogin', 'PATCH', '/Users/' || :'pat', body => '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}'), 400, 'PATCH without Operations: 400');
SELECT is(pg_temp.b() ->> 'scimType', 'invalidSyntax', 'invalidSyntax');
SELECT is(pg_temp.call('onelogin', 'PATCH', '/Users/' || :'pat', body => '{"Operations":'), 400, 'PATCH with malformed JSON: 400');
SELECT is(pg_temp.call('onelogin', 'PATCH', '/Users/00000000-0000-0000-0000-000000000000', body => '{"Operations":[]}'), 404, 'PATCH an unknown id: 404');
SELECT is(pg_temp.call('onelogin', 'PATCH', '/Users/' || :'pat', 'attributes=title', '{"Operations":[{"op":"replace","path":"title","value":"T5"}]}'), 200,
		  'PATCH with attributes');
SELECT is(pg_temp.b() - 'id', '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"title":"T5"}'::jsonb, 'answers the projection');

SELECT * FROM finish();
ROLLBACK;
