-- A user's read-only "groups" attribute (RFC 7643 4.1.2) on every User
-- rendering, and case-insensitive cursor parameter names.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(13);

SELECT scim.create_workspace('ugw');
SELECT scim.approve_domain('example.net', 'ugw');
SELECT jsonb_build_object('authorization', 'Bearer ' || scim.create_token('t', 'ugw')) AS auth \gset
SELECT body->>'id' AS ann FROM scim.handle('POST', '/Users', NULL, :'auth', '{"userName":"ann@example.net"}') \gset
SELECT body->>'id' AS bob FROM scim.handle('POST', '/Users', NULL, :'auth', '{"userName":"bob@example.net"}') \gset
SELECT body->>'id' AS eng FROM scim.handle('POST', '/Groups', NULL, :'auth',
	jsonb_build_object('displayName', 'Eng', 'members', jsonb_build_array(jsonb_build_object('value', :'ann')))::text) \gset

SELECT is((SELECT body->'groups'->0->>'value' FROM scim.handle('GET', '/Users/' || :'ann', NULL, :'auth')), :'eng',
	'GET of a member shows its group');
SELECT is((SELECT body->'groups'->0->>'display' FROM scim.handle('GET', '/Users/' || :'ann', NULL, :'auth')), 'Eng',
	'the group is shown with its display name');
SELECT is((SELECT body->'groups'->0->>'type' FROM scim.handle('GET', '/Users/' || :'ann', NULL, :'auth')), 'direct',
	'membership type is direct');
SELECT ok((SELECT NOT (body ? 'groups') FROM scim.handle('GET', '/Users/' || :'bob', NULL, :'auth')),
	'a user in no group has no groups attribute');
SELECT ok((SELECT NOT (body ? 'groups') FROM scim.handle('GET', '/Users/' || :'ann', 'excludedAttributes=groups', :'auth')),
	'excludedAttributes=groups leaves it out');
SELECT ok((SELECT NOT (body ? 'groups') FROM scim.handle('GET', '/Users/' || :'ann', 'attributes=userName', :'auth')),
	'attributes=userName leaves it out');
SELECT is((SELECT body->'groups'->0->>'value' FROM scim.handle('GET', '/Users/' || :'ann', 'attributes=groups', :'auth')), :'eng',
	'attributes=groups asks for it');
SELECT is((SELECT body->'Resources'->0->'groups'->0->>'value' FROM scim.handle('GET', '/Users',
	'filter=userName%20eq%20%22ann@example.net%22', :'auth')), :'eng', 'lists show groups too');
SELECT is((SELECT status FROM scim.handle('PATCH', '/Users/' || :'ann', NULL, :'auth',
	'{"Operations":[{"op":"replace","path":"title","value":"Dev"}]}')), 200, 'a PATCH of a member works with groups in its resource');
SELECT is((SELECT body->'groups'->0->>'value' FROM scim.handle('PUT', '/Users/' || :'ann', NULL, :'auth',
	'{"userName":"ann@example.net","groups":[]}')), :'eng', 'groups in a PUT body are read-only and ignored');
SELECT ok((SELECT body ? 'nextCursor'
	FROM scim.handle('GET', '/Users', 'Cursor=&count=1', :'auth')), 'the cursor parameter name is case-insensitive (Cursor=)');
SELECT lives_ok(format($$SELECT scim.handle('DELETE', '/Groups/%s', NULL, %L)$$, :'eng', :'auth'), 'delete the group');
SELECT ok((SELECT NOT (body ? 'groups') FROM scim.handle('GET', '/Users/' || :'ann', NULL, :'auth')),
	'after the group is deleted the user shows no groups');

SELECT * FROM finish();
ROLLBACK;
