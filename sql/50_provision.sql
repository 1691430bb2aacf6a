-- The mapping (SCIM <-> scim.users) and the upsert path shared with the
-- OneLogin worker: scim.provision_user, scim.deprovision_user,
-- scim.user_resource, and the query-string decoder.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(84);

DO $$
BEGIN
	PERFORM scim.create_workspace('p_main');
	PERFORM scim.create_workspace('p_del', 'delete');
	PERFORM scim.create_workspace('p_ext', 'deactivate', 'External');
	PERFORM scim.approve_domain('example.com', 'p_main');
	PERFORM scim.approve_domain('example.com', 'p_del');
	PERFORM scim.approve_domain('example.com', 'p_ext');
END;
$$;
CREATE TEMP TABLE res (status integer, scim_type text, detail text, id uuid);
CREATE FUNCTION pg_temp.prov(resource jsonb, ws text DEFAULT 'p_main') RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM res;
	INSERT INTO res SELECT * FROM scim.provision_user(resource, 'onelogin', ws);
	RETURN (SELECT r.status FROM res r);
END;
$$;
CREATE FUNCTION pg_temp.deprov(ext text, ws text DEFAULT 'p_main') RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM res;
	INSERT INTO res SELECT * FROM scim.deprovision_user(ext, 'onelogin', ws);
	RETURN (SELECT r.status FROM res r);
END;
$$;
CREATE FUNCTION pg_temp.log_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM scim.provisioning_log $$;
CREATE PROCEDURE pg_temp.mark() LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('test.n', (SELECT count(*) FROM scim.provisioning_log)::text, false);
	PERFORM set_config('test.maxid', (SELECT coalesce(max(id), 0) FROM scim.provisioning_log)::text, false);
END;
$$;
CREATE FUNCTION pg_temp.last_log() RETURNS scim.provisioning_log LANGUAGE sql AS $$
	SELECT * FROM scim.provisioning_log ORDER BY id DESC LIMIT 1 $$;

-- ---- provision_user: create ------------------------------------------------------
CALL pg_temp.mark();
SELECT is(pg_temp.prov($$
	{"externalId":"36216766","userName":"kelly@example.com",
	 "name":{"givenName":"Kelly","familyName":"Slater"},
	 "emails":[{"value":"kelly@example.com","primary":true}],
	 "phoneNumbers":[{"value":"+64272001122","primary":true}],
	 "title":"Surfer","displayName":"Kelly S",
	 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"organization":"WSL","department":"Waves","employeeNumber":"11"},
	 "urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User":{"userType":"collaborator"},
	 "addresses":[{"type":"work","locality":"Hawaii"}]}
$$), 201, 'provision_user creates: 201');
SELECT (SELECT id FROM res) AS kelly \gset
SELECT ok(:'kelly' IS NOT NULL AND (SELECT scim_type IS NULL AND detail IS NULL FROM res), 'with the new id and no error');
SELECT results_eq(format($$SELECT user_name, external_id, given_name, family_name, email, phone, title, organization, department, user_type, active, billable
						  FROM scim.users WHERE id = %L$$, :'kelly'),
				  $$VALUES ('kelly@example.com', '36216766', 'Kelly', 'Slater', 'kelly@example.com', '+64272001122', 'Surfer', 'WSL', 'Waves', 'Collaborator', true, true)$$,
				  'the synced attributes land in their columns; billable at once');
SELECT is(pg_temp.log_count() - current_setting('test.n')::bigint, 1::bigint, 'one log row');
SELECT results_eq($$SELECT source::text, method, path, user_name, status, workspace FROM pg_temp.last_log()$$,
				  $$VALUES ('onelogin', 'POST', '/Users', 'kelly@example.com', 201, 'p_main')$$, 'logged with source onelogin');

-- ---- provision_user: update by externalId, left-out attributes stay -----------------
CALL pg_temp.mark();
SELECT is(pg_temp.prov($$
	{"externalId":"36216766","userName":"kelly@example.com","name":{"givenName":"Kel","familyName":null},
	 "title":"","phoneNumbers":null,"emails":[],
	 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Big Waves"}}
$$), 200, 'provision_user updates the user with that externalId: 200');
SELECT is((SELECT id FROM res), :'kelly'::uuid, 'the same user');
SELECT results_eq(format($$SELECT given_name, family_name, email, phone, title, organization, department, user_type, display_name
						  FROM scim.users WHERE id = %L$$, :'kelly'),
				  $$VALUES ('Kel', 'Slater', 'kelly@example.com', '+64272001122', 'Surfer', 'WSL', 'Big Waves', 'Collaborator', 'Kelly S')$$,
				  'what the resource leaves out (absent, null, "" or []) keeps its value');
SELECT is((SELECT attributes -> 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User' ->> 'employeeNumber' FROM scim.users WHERE id = :'kelly'), '11',
		  'extension attributes left out stay (merge)');
SELECT is((SELECT attributes -> 'addresses' -> 0 ->> 'locality' FROM scim.users WHERE id = :'kelly'), 'Hawaii', 'addresses left out stay (merge)');
SELECT results_eq($$SELECT method, path, status FROM pg_temp.last_log()$$,
				  format($$VALUES ('PUT', '/Users/%s', 200)$$, :'kelly'), 'an update is logged as PUT /Users/{id}');
SELECT is((SELECT version FROM scim.users WHERE id = :'kelly'), 2::bigint, 'the version moved on');
SELECT is(pg_temp.prov('{"externalId":"36216766","userName":"kelly@example.com"}'), 200, 'an update that changes nothing');
SELECT is((SELECT version FROM scim.users WHERE id = :'kelly'), 2::bigint, 'keeps the version');
SELECT is(pg_temp.prov('{"externalId":"36216766","active":false}'), 200, 'active false through the upsert path (no userName needed to update)');
SELECT results_eq(format($$SELECT active, billable, deactivated_at IS NOT NULL FROM scim.users WHERE id = %L$$, :'kelly'),
				  $$VALUES (false, false, true)$$, 'deactivated, seat released');
SELECT is(pg_temp.prov('{"externalId":"36216766","active":"true"}'), 200, 'active "true"');
SELECT is((SELECT billable FROM scim.users WHERE id = :'kelly'), true, 'reactivated');

-- ---- lookup by userName when the externalId is unknown ---------------------------------
INSERT INTO scim.users (workspace, user_name, email, given_name) VALUES ('p_main', 'Mick@Example.com', 'mick@example.com', 'Mick');
SELECT is(pg_temp.prov('{"externalId":"99","userName":"mick@example.com","title":"Pro"}'), 200, 'found by userName, case-insensitively');
SELECT results_eq($$SELECT external_id, title, given_name, user_name FROM scim.users WHERE workspace = 'p_main' AND lower(user_name) = 'mick@example.com'$$,
				  $$VALUES ('99', 'Pro', 'Mick', 'mick@example.com')$$, 'the externalId is recorded, the rest merged');
SELECT is(pg_temp.prov('{"userName":"MICK@example.com","title":"Legend"}'), 200, 'no externalId: by userName');
SELECT is((SELECT title FROM scim.users WHERE external_id = '99'), 'Legend', 'updated');

-- ---- refusals write nothing but their log row ------------------------------------------------
CALL pg_temp.mark();
SELECT is(pg_temp.prov('{"externalId":"x1","userName":"eve@evil.example.net"}'), 400, 'a domain not approved: 400');
SELECT results_eq($$SELECT scim_type, id FROM res$$, $$VALUES ('invalidValue', NULL::uuid)$$, 'invalidValue, no id');
SELECT ok((SELECT detail FROM res) LIKE '%evil.example.net%', 'the detail names the domain');
SELECT is(pg_temp.prov('{"externalId":"x2","userName":"x2@example.com","userType":"Boss"}'), 400, 'an unknown user type: 400');
SELECT is(pg_temp.prov('{"externalId":"x3","userName":["x3@example.com"]}'), 400, 'a userName of the wrong type: 400');
SELECT is(pg_temp.prov('{"externalId":"x4"}'), 400, 'a new user without userName: 400');
SELECT is((SELECT scim_type FROM res), 'invalidValue', 'invalidValue');
SELECT is(pg_temp.prov('"kelly@example.com"'), 400, 'a resource that is not an object: 400');
SELECT is((SELECT scim_type FROM res), 'invalidSyntax', 'invalidSyntax');
SELECT is(pg_temp.prov(NULL), 400, 'no resource: 400');
SELECT is(pg_temp.prov('{"externalId":"36216766","userName":"mick@example.com"}'), 409, 'renaming onto a taken userName: 409');
SELECT is((SELECT scim_type FROM res), 'uniqueness', 'uniqueness');
SELECT is(pg_temp.prov('{"externalId":"36216766","emails":[{"value":"k@evil.example.net","primary":true}]}'), 400, 'an update to a primary email not approved: 400');
SELECT is((SELECT email FROM scim.users WHERE id = :'kelly'), 'kelly@example.com', 'nothing changed');
SELECT is(pg_temp.prov('{"userName":"nobody@example.com"}', 'p_nope'), 404, 'an unknown workspace: 404');
SELECT is((SELECT detail FROM res), 'workspace "p_nope" does not exist', 'says so');
SELECT is(pg_temp.log_count() - current_setting('test.n')::bigint, 9::bigint, 'each attempt logged once');
SELECT is((SELECT count(*) FROM scim.users WHERE workspace = 'p_main'), 2::bigint, 'the refusals wrote no user');
SELECT results_eq($$SELECT user_name, status, scim_type FROM scim.provisioning_log WHERE id > current_setting('test.maxid')::bigint ORDER BY id LIMIT 2$$,
				  $$VALUES ('eve@evil.example.net', 400, 'invalidValue'), ('x2@example.com', 400, 'invalidValue')$$,
				  'refusals are logged with the userName they were about');

-- ---- the workspace's default user type ---------------------------------------------------------
SELECT is(pg_temp.prov('{"userName":"ext@example.com"}', 'p_ext'), 201, 'a user in a workspace whose default is External');
SELECT is((SELECT user_type FROM scim.users WHERE workspace = 'p_ext'), 'External', 'gets the workspace''s default user type');
SELECT is(pg_temp.prov('{"userName":"ext@example.com","urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User":{"userType":"REGULAR"}}', 'p_ext'), 200,
		  'then an explicit type');
SELECT is((SELECT user_type FROM scim.users WHERE workspace = 'p_ext'), 'Regular', 'in canonical case');

-- ---- deprovision_user -------------------------------------------------------------------------------
CALL pg_temp.mark();
SELECT is(pg_temp.deprov('36216766'), 204, 'deprovision under the deactivate policy: 204');
SELECT results_eq($$SELECT id, detail FROM res$$, format($$VALUES (%L::uuid, 'user deactivated (deletion policy "deactivate")')$$, :'kelly'), 'says what it did');
SELECT results_eq(format($$SELECT active, billable FROM scim.users WHERE id = %L$$, :'kelly'), $$VALUES (false, false)$$, 'the user is kept, deactivated');
SELECT results_eq($$SELECT source::text, method, path, status, user_name FROM pg_temp.last_log()$$,
				  format($$VALUES ('onelogin', 'DELETE', '/Users/%s', 204, 'kelly@example.com')$$, :'kelly'), 'logged');
SELECT is(pg_temp.deprov('no-such-id'), 404, 'an unknown externalId: 404');
SELECT is(pg_temp.deprov(NULL), 404, 'a NULL externalId: 404');
SELECT is(pg_temp.prov('{"externalId":"d1","userName":"del@example.com"}', 'p_del'), 201, 'a user in a "delete" workspace');
SELECT (SELECT id FROM res) AS del_id \gset
SELECT is(pg_temp.deprov('d1', 'p_del'), 204, 'deprovision under the delete policy: 204');
SELECT is((SELECT count(*) FROM scim.users WHERE id = :'del_id'), 0::bigint, 'the row is removed');
SELECT is(pg_temp.deprov('d1', 'p_nope'), 404, 'an unknown workspace: 404');
SELECT is(pg_temp.log_count() - current_setting('test.n')::bigint, 6::bigint, 'each call logged once');

-- ---- rendering and projection (scim.user_resource) -----------------------------------------------
SELECT is((SELECT scim.user_resource(u) -> 'emails' FROM scim.users u WHERE lower(user_name) = 'mick@example.com' AND workspace = 'p_main'),
		  '[{"value":"mick@example.com","primary":true}]'::jsonb, 'a row written by SQL alone renders its email column as the primary email');
UPDATE scim.users SET email = 'mick2@example.com' WHERE workspace = 'p_main' AND external_id = '99';
UPDATE scim.users SET attributes = '{"emails":[{"value":"old@example.com","primary":true,"type":"work"}]}' WHERE workspace = 'p_main' AND external_id = '99';
SELECT is((SELECT scim.user_resource(u) -> 'emails' FROM scim.users u WHERE external_id = '99' AND workspace = 'p_main'),
		  '[{"value":"mick2@example.com","primary":true},{"value":"old@example.com","primary":false,"type":"work"}]'::jsonb,
		  'the email column (the synced value) wins over a stale array');
SELECT is((SELECT scim.user_resource(u, 'emails.value,name') FROM scim.users u WHERE id = :'kelly'),
		  jsonb_build_object('id', :'kelly', 'schemas', '["urn:ietf:params:scim:schemas:core:2.0:User"]'::jsonb,
							 'emails', '[{"value":"kelly@example.com"}]'::jsonb, 'name', '{"givenName":"Kel","familyName":"Slater"}'::jsonb),
		  'attributes with a sub-attribute of a multi-valued attribute');
SELECT is((SELECT scim.user_resource(u, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User') FROM scim.users u WHERE id = :'kelly'),
		  jsonb_build_object('id', :'kelly',
							 'schemas', '["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]'::jsonb,
							 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User', '{"organization":"WSL","department":"Big Waves","employeeNumber":"11"}'::jsonb),
		  'attributes naming a whole extension');
SELECT is((SELECT scim.user_resource(u, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department,userType') FROM scim.users u WHERE id = :'kelly'),
		  jsonb_build_object('id', :'kelly',
							 'schemas', '["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User"]'::jsonb,
							 'userType', 'Collaborator',
							 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User', '{"department":"Big Waves"}'::jsonb,
							 'urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User', '{"userType":"Collaborator"}'::jsonb),
		  'a URN-qualified extension attribute; an unqualified name matches core and extensions');
SELECT is((SELECT scim.user_resource(u, 'urn:scim:schemas:extension:enterprise:1.0:department') -> 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'
		   FROM scim.users u WHERE id = :'kelly'), '{"department":"Big Waves"}'::jsonb, 'the SCIM 1.1 enterprise URN works in attributes');
SELECT is((SELECT scim.user_resource(u, NULL, 'name.givenName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User') FROM scim.users u WHERE id = :'kelly')
		   - 'meta' - 'id',
		  '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"kelly@example.com","externalId":"36216766","name":{"familyName":"Slater"},
			"displayName":"Kelly S","title":"Surfer","userType":"Collaborator","active":false,
			"emails":[{"value":"kelly@example.com","primary":true}],"phoneNumbers":[{"value":"+64272001122","primary":true}],
			"addresses":[{"type":"work","locality":"Hawaii"}]}'::jsonb,
		  'excludedAttributes: a sub-attribute and whole extensions; schemas follows');
SELECT is((SELECT scim.user_resource(u, 'nosuch,urn:example:other:attr') FROM scim.users u WHERE id = :'kelly'),
		  jsonb_build_object('id', :'kelly', 'schemas', '["urn:ietf:params:scim:schemas:core:2.0:User"]'::jsonb),
		  'unknown attribute names select nothing');
SELECT is((SELECT scim.user_resource(u, ' userName , title ') ->> 'title' FROM scim.users u WHERE id = :'kelly'), 'Surfer', 'white space around names is ignored');
SET LOCAL scim_provision.base_url = 'https://sp.example.com/scim/v2/';
SELECT is((SELECT scim.user_resource(u) -> 'meta' ->> 'location' FROM scim.users u WHERE id = :'kelly'),
		  'https://sp.example.com/scim/v2/Users/' || :'kelly', 'meta.location uses scim_provision.base_url');
RESET scim_provision.base_url;

-- ---- the mapping's modes ---------------------------------------------------------------------
SELECT is((scim._user_from_resource('{"title":"T"}', 'replace', NULL, u)).given_name, 'Kel', 'replace keeps a synced attribute left out')
FROM scim.users u WHERE id = :'kelly';
SELECT is((scim._user_from_resource('{"title":"T"}', 'replace', NULL, u)).display_name, NULL, 'replace unsets a non-synced attribute left out')
FROM scim.users u WHERE id = :'kelly';
SELECT is((scim._user_from_resource('{"userName":"kelly@example.com","title":"T"}', 'full', NULL, u)).given_name, NULL, 'full unsets what is left out')
FROM scim.users u WHERE id = :'kelly';
SELECT is((scim._user_from_resource('{"userName":"kelly@example.com"}', 'full', NULL, u)).active, false, 'full keeps active when left out')
FROM scim.users u WHERE id = :'kelly';
SELECT is((scim._user_from_resource('{"userName":"a@example.com","userType":"External","urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User":{"userType":"Collaborator"}}',
									'full', NULL, u)).user_type, 'External',
		  'core and extension userType disagree: the one that changed wins (a PATCH of the core one)')
FROM scim.users u WHERE id = :'kelly';
SELECT is((scim._user_from_resource('{"userName":"a@example.com","userType":"Collaborator","urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User":{"userType":"regular"}}',
									'full', NULL, u)).user_type, 'Regular',
		  'and the extension one when that changed')
FROM scim.users u WHERE id = :'kelly';
SELECT is((scim._user_from_resource('{"urn:ietf:params:scim:schemas:core:2.0:User:userName":"q@example.com","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"D","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value":"m"}',
									'create', 'p_main', NULL)).department, 'D',
		  'URN-qualified attribute names are accepted');
SELECT is((scim._user_from_resource('{"userName":"q@example.com","Name":{"GivenName":"G"},"EMAILS":[{"Value":"q@example.com","Primary":"TRUE"}]}',
									'create', 'p_main', NULL)).email, 'q@example.com',
		  'attribute names are case-insensitive');
SELECT throws_ok($$SELECT scim._user_from_resource('{"userName":"q@example.com"}', 'upsert', 'p_main', NULL)$$, '22023', NULL, 'an unknown mode is refused');

-- ---- query strings ----------------------------------------------------------------------------
SELECT is(scim._query_params('filter=userName%20eq%20%22a%2Bb%40c.com%22&startIndex=1&COUNT=5'),
		  '{"filter":"userName eq \"a+b@c.com\"","startIndex":"1","count":"5"}'::jsonb, 'percent-decoding; SCIM names in canonical case');
SELECT is(scim._query_params('?filter=a+b&x'), '{"filter":"a b","x":""}'::jsonb, '+ is a space, a leading ? is skipped, a bare name has an empty value');
SELECT is(scim._query_params('a=%zz&b=%4'), '{"a":"%zz","b":"%4"}'::jsonb, 'a malformed escape is kept');
SELECT is(scim._query_params(NULL), '{}'::jsonb, 'no query string');
SELECT throws_ok($$SELECT scim._query_params('filter=%ff')$$, '22023', 'invalidSyntax: the query string is not valid UTF-8 once decoded', 'invalid UTF-8 is refused');
SELECT is(scim._query_params('filter=userName%20eq%20%22J%C3%BCrgen%22'), '{"filter":"userName eq \"Jürgen\""}'::jsonb, 'UTF-8 decodes');

-- ---- privileges ------------------------------------------------------------------------------
SELECT ok(NOT has_function_privilege('public', 'scim.provision_user(jsonb, text, text)', 'EXECUTE'), 'provision_user is not executable by PUBLIC');
SELECT ok(NOT has_function_privilege('public', 'scim.deprovision_user(text, text, text)', 'EXECUTE'), 'deprovision_user is not executable by PUBLIC');
SELECT ok(has_function_privilege('scim_reader', 'scim.user_resource(scim.users, text, text)', 'EXECUTE'), 'data teams may render users');

SELECT * FROM finish();
ROLLBACK;
