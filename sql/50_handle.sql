-- scim.handle: authentication, routing, Users (POST, GET, list, .search,
-- PUT, DELETE), ETags, projection, errors, discovery, the /Groups
-- placeholder and the System Log (one row per request).
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(225);

-- ---- fixtures ----------------------------------------------------------------
DO $$
BEGIN
	PERFORM scim.create_workspace('h_main');
	PERFORM scim.create_workspace('h_other');
	PERFORM scim.create_workspace('h_del', 'delete');
	PERFORM scim.approve_domain('example.com', 'h_main');
	PERFORM scim.approve_domain('example.com', 'h_other');
	PERFORM scim.approve_domain('example.com', 'h_del');
	PERFORM set_config('test.main', 'Bearer ' || scim.create_token('idp', 'h_main'), false);
	PERFORM set_config('test.other', 'Bearer ' || scim.create_token('idp', 'h_other'), false);
	PERFORM set_config('test.del', 'Bearer ' || scim.create_token('idp', 'h_del'), false);
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
	FROM scim.handle(method, path, query,
					 CASE WHEN auth IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('authorization', auth) END || extra,
					 body) h;
	RETURN (SELECT r.status FROM resp r);
END;
$$;
CREATE FUNCTION pg_temp.b() RETURNS jsonb LANGUAGE sql AS $$ SELECT body FROM resp $$;
CREATE FUNCTION pg_temp.h() RETURNS jsonb LANGUAGE sql AS $$ SELECT headers FROM resp $$;
-- mark(): remember the System Log's size (test.n) and last id (test.maxid)
CREATE PROCEDURE pg_temp.mark() LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('test.n', (SELECT count(*) FROM scim.provisioning_log)::text, false);
	PERFORM set_config('test.maxid', (SELECT coalesce(max(id), 0) FROM scim.provisioning_log)::text, false);
END;
$$;
CREATE FUNCTION pg_temp.log_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM scim.provisioning_log $$;
CREATE FUNCTION pg_temp.last_log() RETURNS scim.provisioning_log LANGUAGE sql AS $$
	SELECT * FROM scim.provisioning_log ORDER BY id DESC LIMIT 1 $$;
-- the error resource shape of RFC 7644 section 3.12
CREATE FUNCTION pg_temp.is_error(st integer, scim_type text) RETURNS boolean LANGUAGE sql AS $$
	SELECT r.body -> 'schemas' = '["urn:ietf:params:scim:api:messages:2.0:Error"]'
	   AND r.body ->> 'status' = st::text
	   AND jsonb_typeof(r.body -> 'status') = 'string'
	   AND r.body ->> 'scimType' IS NOT DISTINCT FROM scim_type
	   AND r.body ? 'detail'
	   AND r.headers ->> 'Content-Type' = 'application/scim+json'
	FROM resp r $$;

-- ---- authentication -----------------------------------------------------------
CALL pg_temp.mark();
SELECT is(pg_temp.call('GET', '/Users', auth => NULL), 401, 'no Authorization header: 401');
SELECT ok(pg_temp.is_error(401, NULL), '401 is a SCIM error resource');
SELECT is(pg_temp.h() ->> 'WWW-Authenticate', 'Bearer realm="scim"', '401 carries WWW-Authenticate: Bearer realm="scim"');
SELECT is(pg_temp.call('GET', '/Users', auth => 'Basic dXNlcjpwYXNz'), 401, 'a Basic Authorization header: 401');
SELECT is(pg_temp.call('GET', '/Users', auth => 'Bearer scim_000000000000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 401, 'an unknown token: 401');
SELECT is(pg_temp.call('GET', '/Users', auth => 'Bearer ' || substr(current_setting('test.main'), 8, 40) || 'x'), 401, 'a mangled token: 401');
SELECT is(pg_temp.call('GET', '/Users', auth => 'bearer ' || substr(current_setting('test.main'), 8)), 200, 'the scheme is case-insensitive');
SELECT is(pg_temp.log_count() - current_setting('test.n')::bigint, 5::bigint, 'every refused and accepted request leaves one log row');
SELECT is((SELECT count(*) FROM scim.provisioning_log WHERE status = 401 AND workspace IS NULL AND source = 'scim'
			 AND id > current_setting('test.maxid')::bigint), 4::bigint, 'refused authentications are logged without a workspace');
SELECT is((SELECT count(*) FROM scim.provisioning_log
		   WHERE position(substr(current_setting('test.main'), 8) IN coalesce(detail, '') || coalesce(path, '')) > 0), 0::bigint,
		  'the token never reaches the log');
SELECT scim.create_token('revoked', 'h_main') AS revoked_token \gset
SELECT scim.revoke_token('revoked', 'h_main') AS _ \gset
SELECT is(pg_temp.call('GET', '/Users', auth => 'Bearer ' || :'revoked_token'), 401, 'a revoked token: 401');
SELECT ok(position(:'revoked_token' IN pg_temp.b()::text) = 0, 'the token is not echoed in the error');
-- two credentials: refused (401), never one of them picked (#15)
CALL pg_temp.mark();
SELECT is(pg_temp.call('GET', '/Users', extra => jsonb_build_object('Authorization', current_setting('test.other'))), 401,
		  'Authorization twice (two cases of the name) with two valid tokens: 401');
SELECT ok(pg_temp.is_error(401, NULL) AND pg_temp.h() ->> 'WWW-Authenticate' = 'Bearer realm="scim"'
		  AND pg_temp.b() ->> 'detail' = 'authentication refused: the request has more than one Authorization header',
		  'a SCIM 401 with WWW-Authenticate, saying why');
SELECT is(pg_temp.call('GET', '/Users', extra => jsonb_build_object('AUTHORIZATION', current_setting('test.main'))), 401,
		  'the same token twice: 401 as well');
SELECT is(pg_temp.call('GET', '/Users', auth => NULL,
					   extra => jsonb_build_object('authorization', jsonb_build_array(current_setting('test.main'), current_setting('test.other')))), 401,
		  'Authorization as a JSON list of two tokens: 401');
SELECT is(pg_temp.b() ->> 'detail', 'authentication refused: the request has more than one Authorization header', 'more than one header');
SELECT is(pg_temp.call('GET', '/Users', auth => NULL, extra => jsonb_build_object('authorization', jsonb_build_array(current_setting('test.main')))), 401,
		  'Authorization as a list of one: 401 (not a single string)');
SELECT is(pg_temp.b() ->> 'detail', 'authentication refused: the Authorization header is not a single string', 'not a single string');
SELECT is(pg_temp.call('GET', '/Users', auth => current_setting('test.main') || ', ' || current_setting('test.other')), 401,
		  'two tokens a proxy joined with a comma: 401');
SELECT is(pg_temp.b() ->> 'detail', 'authentication refused: the Authorization header holds more than one credential', 'more than one credential');
SELECT is(pg_temp.call('GET', '/Users', auth => current_setting('test.main') || ','), 401, 'a token with a trailing comma: 401');
SELECT is(pg_temp.call('GET', '/Users', query => 'filter=userName%20eq%20%22nobody%40example.com%22',
					   extra => jsonb_build_object('Authorization', current_setting('test.other'))), 401,
		  'the fast path''s lookup with two tokens: 401 too');
SELECT is(pg_temp.log_count() - current_setting('test.n')::bigint, 7::bigint, 'each refusal has its System Log row');
SELECT is((SELECT count(*) FROM scim.provisioning_log WHERE status = 401 AND workspace IS NULL
			 AND detail LIKE 'authentication refused: %' AND id > current_setting('test.maxid')::bigint), 7::bigint,
		  'logged as 401 without a workspace');

-- ---- routing --------------------------------------------------------------------
SELECT is(pg_temp.call('GET', '/Nope'), 404, 'unknown path: 404');
SELECT ok(pg_temp.is_error(404, NULL), '404 is a SCIM error resource');
SELECT is(pg_temp.call('GET', '/'), 404, 'the bare base: 404');
SELECT is(pg_temp.call('GET', '/Users/a/b'), 404, 'too deep under /Users: 404');
SELECT is(pg_temp.call('DELETE', '/Users'), 405, 'DELETE /Users: 405');
SELECT ok(pg_temp.is_error(405, NULL), '405 is a SCIM error resource');
SELECT is(pg_temp.h() ->> 'Allow', 'GET, POST', '405 names the allowed methods');
SELECT is(pg_temp.call('GET', '/Users/.search'), 405, 'GET /Users/.search: 405');
SELECT is(pg_temp.call('PUT', '/ServiceProviderConfig'), 405, 'PUT /ServiceProviderConfig: 405');
SELECT is(pg_temp.call('GET', '/users'), 200, 'the resource segment is case-insensitive');
SELECT is(pg_temp.call('GET', '/USERS/'), 200, 'a trailing slash is tolerated');
SELECT is(pg_temp.call('get', '/Users'), 200, 'the method is case-insensitive');
SELECT is(pg_temp.call('GET', '/Me'), 501, '/Me: 501 (not supported)');
SELECT is(pg_temp.call('GET', '/Bulk'), 405, 'GET /Bulk is routed to the bulk endpoint: 405');

-- ---- POST /Users ----------------------------------------------------------------
CALL pg_temp.mark();
SELECT is(pg_temp.call('POST', '/Users', body => $$
	{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	 "id":"client-chosen","meta":{"resourceType":"User","version":"W/\"99\""},
	 "userName":"ann@example.com","externalId":"ext-ann",
	 "name":{"givenName":"Ann","familyName":"Lee","formatted":"Ann Lee"},
	 "displayName":"Ann Lee","title":"Engineer","nickName":"annie",
	 "emails":[{"value":"ann@example.com","type":"work","primary":true},{"value":"ann@home.example.org","type":"home"}],
	 "phoneNumbers":[{"value":"+1 555 0100","type":"work","primary":true}],
	 "addresses":[{"type":"work","locality":"Oslo","country":"NO"}],
	 "password":"Secret123!",
	 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"organization":"Example","department":"R&D","employeeNumber":"7",
		"manager":{"value":"boss-1","displayName":"The Boss"}},
	 "urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User":{"userType":"collaborator"}}
$$), 201, 'POST /Users: 201');
SELECT (pg_temp.b() ->> 'id') AS ann \gset
SELECT ok(:'ann' ~ '^[0-9a-f-]{36}$' AND :'ann' <> 'client-chosen', 'the server assigns the id; a client-sent id is ignored');
SELECT is(pg_temp.h() ->> 'Location', '/Users/' || :'ann', 'Location is /Users/{id} (relative without a base URL)');
SELECT is(pg_temp.h() ->> 'ETag', 'W/"1"', 'ETag W/"1"; a client-sent meta is ignored');
SELECT is(pg_temp.h() ->> 'Content-Type', 'application/scim+json', 'Content-Type application/scim+json');
SELECT is(pg_temp.b() -> 'meta' ->> 'resourceType', 'User', 'meta.resourceType');
SELECT is(pg_temp.b() -> 'meta' ->> 'location', '/Users/' || :'ann', 'meta.location');
SELECT is(pg_temp.b() -> 'meta' ->> 'version', 'W/"1"', 'meta.version');
SELECT ok((pg_temp.b() -> 'meta' ->> 'created')::timestamptz = (SELECT created_at FROM scim.users WHERE id = :'ann'), 'meta.created is the row''s created_at');
SELECT ok((pg_temp.b() -> 'meta' ->> 'lastModified')::timestamptz = (SELECT updated_at FROM scim.users WHERE id = :'ann'), 'meta.lastModified is the row''s updated_at');
SELECT ok(pg_temp.b() -> 'meta' ->> 'created' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$', 'timestamps are RFC 3339 in UTC');
SELECT is(pg_temp.b() -> 'schemas', '["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User"]'::jsonb,
		  'schemas lists the core schema and the extensions present');
SELECT ok(NOT pg_temp.b() ? 'password', 'password is never returned');
SELECT is(pg_temp.b() -> 'urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User' ->> 'userType', 'Collaborator', 'userType in canonical case');
SELECT is(pg_temp.b() -> 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
		  '{"organization":"Example","department":"R&D","employeeNumber":"7","manager":{"value":"boss-1"}}'::jsonb,
		  'the enterprise extension round-trips (manager.displayName is readOnly: ignored)');
SELECT is(pg_temp.b() -> 'name', '{"givenName":"Ann","familyName":"Lee","formatted":"Ann Lee"}'::jsonb, 'name round-trips');
SELECT is(pg_temp.b() -> 'addresses', '[{"type":"work","locality":"Oslo","country":"NO"}]'::jsonb, 'addresses round-trip');
SELECT results_eq($$SELECT user_name, external_id, given_name, family_name, display_name, email, title, phone, organization, department, user_type, active, billable
					FROM scim.users WHERE workspace = 'h_main' AND user_name = 'ann@example.com'$$,
				  $$VALUES ('ann@example.com', 'ext-ann', 'Ann', 'Lee', 'Ann Lee', 'ann@example.com', 'Engineer', '+1 555 0100', 'Example', 'R&D', 'Collaborator', true, true)$$,
				  'the row holds the synced attributes in their columns, billable at once');
SELECT is((SELECT attributes -> 'emails' FROM scim.users WHERE id = :'ann'),
		  '[{"value":"ann@example.com","type":"work","primary":true},{"value":"ann@home.example.org","type":"home"}]'::jsonb,
		  'the whole emails array is kept in attributes');
SELECT ok((SELECT NOT attributes::text LIKE '%Secret123%' FROM scim.users WHERE id = :'ann'), 'the password is not stored');
SELECT is(pg_temp.log_count() - current_setting('test.n')::bigint, 1::bigint, 'one log row');
SELECT results_eq($$SELECT source::text, method, path, resource_id, user_name, status, scim_type, workspace FROM pg_temp.last_log()$$,
				  format($$VALUES ('scim', 'POST', '/Users', %L::uuid, 'ann@example.com', 201, NULL::text, 'h_main')$$, :'ann'),
				  'the log row has source, method, path, id, userName, status, workspace');

CALL pg_temp.mark();
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"ANN@Example.com"}'), 409, 'duplicate userName (any case): 409');
SELECT ok(pg_temp.is_error(409, 'uniqueness'), '409 uniqueness');
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"ann@example.com"}', auth => current_setting('test.other')), 201,
		  'the same userName in another workspace is fine');
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"eve@evil.example.net"}'), 400, 'a domain not approved: 400');
SELECT ok(pg_temp.is_error(400, 'invalidValue'), '400 invalidValue');
SELECT ok(pg_temp.b() ->> 'detail' LIKE '%evil.example.net%not approved%', 'the detail names the domain');
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"bob@example.com","emails":[{"value":"bob@evil.example.net","primary":true}]}'), 400,
		  'a primary email on a domain not approved: 400');
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"bob@example.com",'), 400, 'malformed JSON: 400');
SELECT ok(pg_temp.is_error(400, 'invalidSyntax'), 'malformed JSON is invalidSyntax');
SELECT is(pg_temp.call('POST', '/Users', body => NULL), 400, 'no body: 400');
SELECT ok(pg_temp.is_error(400, 'invalidSyntax'), 'no body is invalidSyntax');
SELECT is(pg_temp.call('POST', '/Users', body => '["bob@example.com"]'), 400, 'a body that is not an object: 400');
SELECT ok(pg_temp.is_error(400, 'invalidSyntax'), 'a non-object body is invalidSyntax');
SELECT is(pg_temp.call('POST', '/Users', body => '{"name":{"givenName":"Bob"}}'), 400, 'missing userName: 400');
SELECT ok(pg_temp.is_error(400, 'invalidValue'), 'missing userName is invalidValue (a required value is missing)');
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":42}'), 400, 'userName of the wrong type: 400');
SELECT ok(pg_temp.is_error(400, 'invalidValue'), 'a wrong type is invalidValue');
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"bob@example.com","active":"yes"}'), 400, 'active that is no boolean: 400');
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"bob@example.com","emails":"bob@example.com"}'), 400, 'emails as a string: 400');
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"bob@example.com","urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User":{"userType":"Guest"}}'), 400,
		  'an unknown user type: 400');
SELECT ok(pg_temp.is_error(400, 'invalidValue'), 'an unknown user type is invalidValue');
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"bob@example.com","emails":[{"value":"a@example.com","primary":true},{"value":"b@example.com","primary":true}]}'), 400,
		  'two primary emails: 400');
SELECT is(pg_temp.log_count() - current_setting('test.n')::bigint, 13::bigint, 'every attempt, refused or not, is logged once');
SELECT is((SELECT count(*) FROM scim.users WHERE workspace = 'h_main'), 1::bigint, 'the refused attempts wrote nothing');
SELECT results_eq($$SELECT status, scim_type, user_name FROM scim.provisioning_log WHERE id > current_setting('test.maxid')::bigint AND workspace = 'h_main' ORDER BY id LIMIT 3$$,
				  $$VALUES (409, 'uniqueness', 'ANN@Example.com'), (400, 'invalidValue', 'eve@evil.example.net'), (400, 'invalidValue', 'bob@example.com')$$,
				  'refusals are logged with status, scimType and userName');

-- sloppy IdP forms: SCIM 1.1 URNs, emails as an object, "True", core userType
SELECT is(pg_temp.call('POST', '/Users', body => $$
	{"schemas":["urn:scim:schemas:core:1.0","urn:scim:schemas:extension:enterprise:1.0"],
	 "userName":"carl@example.com","name":{"givenName":"Carl","familyName":"Ito"},
	 "emails":{"value":"carl@example.com","type":"work","primary":"true"},
	 "phoneNumbers":{"value":"+47 1234","type":"work"},
	 "active":"True","userType":"EXTERNAL",
	 "urn:scim:schemas:extension:enterprise:1.0":{"department":"Ops","manager":{"managerId":"boss-2","displayName":"B"}}}
$$), 201, 'a SCIM 1.1-style body is accepted');
SELECT (pg_temp.b() ->> 'id') AS carl \gset
SELECT is(pg_temp.b() -> 'emails', '[{"value":"carl@example.com","type":"work","primary":true}]'::jsonb, 'emails as an object becomes an array, "true" a boolean');
SELECT is(pg_temp.b() -> 'phoneNumbers', '[{"value":"+47 1234","type":"work"}]'::jsonb, 'phoneNumbers as an object becomes an array');
SELECT is(pg_temp.b() -> 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User', '{"department":"Ops","manager":{"value":"boss-2"}}'::jsonb,
		  'the 1.1 enterprise URN is answered as 2.0; managerId is manager.value');
SELECT is(pg_temp.b() ->> 'userType', 'External', 'core userType accepted, answered in canonical case');
SELECT is(pg_temp.b() -> 'urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User' ->> 'userType', 'External', 'and in our extension');
SELECT ok(NOT pg_temp.b()::text LIKE '%urn:scim:schemas%', 'the answer is strict SCIM 2.0');
SELECT is((SELECT phone FROM scim.users WHERE id = :'carl'), '+47 1234', 'the first phone number is the primary one when none is marked');
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"dora@example.com","active":"False"}'), 201, 'active "False" is accepted');
SELECT results_eq(format($$SELECT active, billable, deactivated_at IS NOT NULL FROM scim.users WHERE id = %L$$, pg_temp.b() ->> 'id'),
				  $$VALUES (false, false, true)$$, 'a user created inactive is not billable');
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"erin@example.com"}'), 201, 'a minimal user');
SELECT is(pg_temp.b() ->> 'userType', 'Regular', 'the user type defaults to Regular');

-- ---- GET /Users/{id} ------------------------------------------------------------------
SELECT is(pg_temp.call('GET', '/Users/' || :'ann'), 200, 'GET /Users/{id}: 200');
SELECT is(pg_temp.b() ->> 'userName', 'ann@example.com', 'the user');
SELECT is(pg_temp.h() ->> 'ETag', 'W/"1"', 'with its ETag');
SELECT is(pg_temp.call('GET', '/Users/' || upper(:'ann')), 200, 'the id in upper case is the same id');
SELECT is(pg_temp.call('GET', '/Users/00000000-0000-0000-0000-000000000000'), 404, 'an unknown id: 404');
SELECT ok(pg_temp.is_error(404, NULL), 'a SCIM 404');
SELECT is(pg_temp.call('GET', '/Users/not-a-uuid'), 404, 'a malformed id: 404');
SELECT is(pg_temp.call('GET', '/Users/' || :'ann', auth => current_setting('test.other')), 404, 'another workspace''s id: 404');
SELECT is(pg_temp.call('GET', '/Users/' || :'ann', 'attributes=userName,name.givenName'), 200, 'attributes on GET by id');
SELECT is(pg_temp.b(), jsonb_build_object('id', :'ann', 'userName', 'ann@example.com', 'name', '{"givenName":"Ann"}'::jsonb,
										  'schemas', '["urn:ietf:params:scim:schemas:core:2.0:User"]'::jsonb),
		  'only the asked attributes, id and schemas');
SELECT is(pg_temp.call('GET', '/Users/' || :'ann', 'excludedAttributes=emails,meta,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager'), 200, 'excludedAttributes');
SELECT ok(NOT pg_temp.b() ? 'emails' AND NOT pg_temp.b() ? 'meta' AND pg_temp.b() ? 'userName'
		  AND pg_temp.b() -> 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User' = '{"organization":"Example","department":"R&D","employeeNumber":"7"}',
		  'the excluded attributes are gone, the rest stays');
SELECT is(pg_temp.call('GET', '/Users/' || :'ann', 'attributes=password'), 200, 'asking for password');
SELECT ok(NOT pg_temp.b() ? 'password' AND pg_temp.b() ? 'id', 'password is never returned, id always');
SELECT is(pg_temp.call('GET', '/Users/' || :'ann', 'excludedAttributes=id,schemas'), 200, 'excluding id');
SELECT ok(pg_temp.b() ? 'id' AND pg_temp.b() ? 'schemas', 'id (returned always) and schemas cannot be excluded');

-- ---- list ---------------------------------------------------------------------------
SELECT is(pg_temp.call('GET', '/Users', 'filter=userName%20eq%20%22ANN%40example.com%22'), 200, 'filter userName eq (percent-encoded)');
SELECT is(pg_temp.b() -> 'schemas', '["urn:ietf:params:scim:api:messages:2.0:ListResponse"]'::jsonb, 'a ListResponse');
SELECT results_eq($$SELECT (body->>'totalResults')::int, (body->>'itemsPerPage')::int, (body->>'startIndex')::int, body->'Resources'->0->>'userName' FROM resp$$,
				  $$VALUES (1, 1, 1, 'ann@example.com')$$, 'userName eq is case-insensitive; counts are integers');
SELECT ok(jsonb_typeof(pg_temp.b() -> 'totalResults') = 'number', 'totalResults is a JSON number');
SELECT is(pg_temp.call('GET', '/Users', 'filter=userName+eq+%22nobody%40example.com%22'), 200, 'filter with + for spaces');
SELECT is(pg_temp.b() -> 'Resources', '[]'::jsonb, 'no match: Resources is []');
SELECT is((pg_temp.b() ->> 'totalResults')::int, 0, 'no match: totalResults 0');
SELECT is(pg_temp.call('GET', '/Users', 'filter=nosuchattr%20eq%20%22x%22'), 400, 'a filter on an unknown attribute: 400');
SELECT ok(pg_temp.is_error(400, 'invalidFilter'), 'invalidFilter');
SELECT is(pg_temp.call('GET', '/Users', 'filter=userName%20eq'), 400, 'a malformed filter: 400');
SELECT ok(pg_temp.is_error(400, 'invalidFilter'), 'invalidFilter');
SELECT is(pg_temp.call('GET', '/Users', 'filter=externalId%20eq%20%22ext-ann%22'), 200, 'filter externalId eq');
SELECT is(pg_temp.b() -> 'Resources' -> 0 ->> 'id', :'ann', 'found by externalId');
SELECT is(pg_temp.call('GET', '/Users', 'filter=externalId%20eq%20%22EXT-ANN%22'), 200, 'filter externalId eq, other case');
SELECT is((pg_temp.b() ->> 'totalResults')::int, 0, 'externalId is caseExact');
SELECT is(pg_temp.call('GET', '/Users', 'filter=urn:ietf:params:scim:schemas:core:2.0:User:userName%20EQ%20%22ann%40EXAMPLE.com%22&attributes=externalId'), 200,
		  'a URN-qualified userName, EQ in upper case, with attributes');
SELECT is(pg_temp.b() -> 'Resources', jsonb_build_array(jsonb_build_object('id', :'ann', 'externalId', 'ext-ann', 'schemas', '["urn:ietf:params:scim:schemas:core:2.0:User"]'::jsonb)),
		  'found and projected');
SELECT is(pg_temp.call('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22&startIndex=2'), 200, 'a lookup paged past its one result');
SELECT results_eq($$SELECT (body->>'totalResults')::int, (body->>'itemsPerPage')::int, body->'Resources' FROM resp$$, $$VALUES (1, 0, '[]'::jsonb)$$,
				  'the total is still counted');
SELECT is(pg_temp.call('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22%20or%20userName%20eq%20%22carl%40example.com%22&count=1&sortBy=userName'), 200,
		  'a full page of a two-user filter');
SELECT results_eq($$SELECT (body->>'totalResults')::int, (body->>'itemsPerPage')::int, body->'Resources'->0->>'userName' FROM resp$$, $$VALUES (2, 1, 'ann@example.com')$$,
				  'a full page counts the total');
SELECT is(pg_temp.call('GET', '/Users', 'filter=emails%5Btype%20eq%20%22work%22%20and%20value%20co%20%22carl%22%5D'), 200, 'filter emails[type eq "work" and value co "carl"]');
SELECT is(pg_temp.b() -> 'Resources' -> 0 ->> 'id', :'carl', 'found by a value filter');
SELECT is(pg_temp.call('GET', '/Users', 'sortBy=userName&sortOrder=descending'), 200, 'sortBy userName descending');
SELECT is(jsonb_path_query_array(pg_temp.b(), '$.Resources[*].userName'),
		  '["erin@example.com","dora@example.com","carl@example.com","ann@example.com"]'::jsonb, 'sorted, descending');
SELECT is(pg_temp.call('GET', '/Users', 'sortBy=userName&startIndex=2&count=2'), 200, 'startIndex=2&count=2');
SELECT results_eq($$SELECT (body->>'totalResults')::int, (body->>'itemsPerPage')::int, (body->>'startIndex')::int, jsonb_path_query_array(body, '$.Resources[*].userName') FROM resp$$,
				  $$VALUES (4, 2, 2, '["carl@example.com","dora@example.com"]'::jsonb)$$, 'a page: 1-based startIndex, honest itemsPerPage');
SELECT is(pg_temp.call('GET', '/Users', 'sortBy=userName&startIndex=0&count=1'), 200, 'startIndex below 1');
SELECT is(pg_temp.b() -> 'Resources' -> 0 ->> 'userName', 'ann@example.com', 'startIndex below 1 is 1');
SELECT is(pg_temp.call('GET', '/Users', 'startIndex=9'), 200, 'startIndex past the end');
SELECT results_eq($$SELECT (body->>'totalResults')::int, (body->>'itemsPerPage')::int, body->'Resources' FROM resp$$,
				  $$VALUES (4, 0, '[]'::jsonb)$$, 'past the end: no resources, the total stays');
SELECT is(pg_temp.call('GET', '/Users', 'count=0'), 200, 'count=0');
SELECT ok((pg_temp.b() ->> 'totalResults')::int = 4 AND NOT pg_temp.b() ? 'Resources', 'count=0 gives only totalResults');
SELECT is(pg_temp.call('GET', '/Users', 'count=-5'), 200, 'a negative count is 0');
SELECT ok(NOT pg_temp.b() ? 'Resources', 'no resources for a negative count');
SELECT is(pg_temp.call('GET', '/Users', 'count=ten'), 400, 'a count that is no integer: 400');
SELECT is(pg_temp.call('GET', '/Users', 'sortBy=userName&sortOrder=sideways'), 400, 'an unknown sortOrder: 400');
SELECT is(pg_temp.call('GET', '/Users', 'sortBy=nosuchattr'), 400, 'sortBy an unknown attribute: 400');
SET LOCAL scim_provision.max_results = 3;
SELECT is(pg_temp.call('GET', '/Users', 'count=100'), 200, 'a count above scim_provision.max_results');
SELECT results_eq($$SELECT (body->>'totalResults')::int, (body->>'itemsPerPage')::int, jsonb_array_length(body->'Resources') FROM resp$$,
				  $$VALUES (4, 3, 3)$$, 'count is capped by scim_provision.max_results');
RESET scim_provision.max_results;
SELECT is(pg_temp.call('GET', '/Users', 'attributes=userName&sortBy=userName'), 200, 'attributes on a list');
SELECT is(pg_temp.b() -> 'Resources' -> 0, jsonb_build_object('id', :'ann', 'userName', 'ann@example.com', 'schemas', '["urn:ietf:params:scim:schemas:core:2.0:User"]'::jsonb),
		  'projection applies to every resource');
SELECT is(pg_temp.call('GET', '/Users', 'aadOptscim062020&filter=userName%20eq%20%22ann%40example.com%22'), 200, 'unknown query parameters are ignored');
SELECT is(pg_temp.call('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22', auth => current_setting('test.other')), 200, 'a list in another workspace');
SELECT isnt(pg_temp.b() -> 'Resources' -> 0 ->> 'id', :'ann', 'lists are scoped to the token''s workspace');
-- stable order: ties broken on id (in this one transaction every row has the same created_at)
INSERT INTO scim.users (workspace, user_name, email) VALUES ('h_other', 'tie1@example.com', NULL), ('h_other', 'tie2@example.com', NULL), ('h_other', 'tie3@example.com', NULL);
SELECT is(pg_temp.call('GET', '/Users', 'startIndex=2&count=3', auth => current_setting('test.other')), 200, 'paging through rows created together');
SELECT is(jsonb_path_query_array(pg_temp.b(), '$.Resources[*].id'),
		  (SELECT jsonb_agg(p.id ORDER BY p.id) FROM (SELECT id FROM scim.users WHERE workspace = 'h_other' ORDER BY id OFFSET 1 LIMIT 3) p),
		  'rows with equal created_at come in id order');

-- ---- .search ---------------------------------------------------------------------------
SELECT is(pg_temp.call('POST', '/Users/.search', body => $${"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
	"filter":"userName sw \"c\"","attributes":["userName"],"startIndex":1,"count":10}$$), 200, 'POST /Users/.search');
SELECT is(pg_temp.b() -> 'Resources', jsonb_build_array(jsonb_build_object('id', :'carl', 'userName', 'carl@example.com',
		  'schemas', '["urn:ietf:params:scim:schemas:core:2.0:User"]'::jsonb)), 'a SearchRequest with filter and attributes');
SELECT is(pg_temp.call('POST', '/.search', body => '{"filter":"userName eq \"dora@example.com\"","excludedAttributes":["meta"]}'), 200, 'POST /.search');
SELECT ok((pg_temp.b() ->> 'totalResults')::int = 1 AND NOT pg_temp.b() -> 'Resources' -> 0 ? 'meta', 'a root search');
SELECT is(pg_temp.call('POST', '/Users/.search', body => '{"count":"x"}'), 400, 'a SearchRequest with a bad count: 400');
SELECT is(pg_temp.call('POST', '/Users/.search', body => '{"attributes":[1]}'), 400, 'a SearchRequest with bad attributes: 400');

-- ---- PUT ----------------------------------------------------------------------------------
SELECT is(pg_temp.call('PUT', '/Users/' || :'ann', body => $$
	{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"ignored","meta":{"created":"2000-01-01T00:00:00Z"},
	 "userName":"ann@example.com","name":{"givenName":"Annie"},"active":true,"title":null,
	 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":""}}
$$), 200, 'PUT: 200');
SELECT is(pg_temp.h() ->> 'ETag', 'W/"2"', 'the version moves on');
SELECT results_eq(format($$SELECT given_name, family_name, email, title, phone, organization, department, user_type, external_id, display_name FROM scim.users WHERE id = %L$$, :'ann'),
				  $$VALUES ('Annie', 'Lee', 'ann@example.com', 'Engineer', '+1 555 0100', 'Example', 'R&D', 'Collaborator', NULL::text, NULL::text)$$,
				  'synced attributes left out (absent, null or "") keep their values; others are replaced');
SELECT is((SELECT attributes -> 'emails' -> 1 ->> 'value' FROM scim.users WHERE id = :'ann'), 'ann@home.example.org', 'left-out emails keep the secondary addresses too');
SELECT ok((SELECT NOT attributes ? 'addresses' AND NOT attributes ? 'nickName' FROM scim.users WHERE id = :'ann'), 'non-synced attributes left out are gone');
SELECT is(pg_temp.b() ->> 'id', :'ann', 'a client-sent id in PUT is ignored');
SELECT isnt(pg_temp.b() -> 'meta' ->> 'created', '2000-01-01T00:00:00Z', 'a client-sent meta in PUT is ignored');
SELECT is(pg_temp.call('PUT', '/Users/' || :'ann', body => '{"userName":"ann@example.com","active":false}'), 200, 'PUT active false');
SELECT results_eq(format($$SELECT active, billable, deactivated_at IS NOT NULL FROM scim.users WHERE id = %L$$, :'ann'),
				  $$VALUES (false, false, true)$$, 'deactivated through the triggers: seat released');
SELECT is(pg_temp.call('PUT', '/Users/' || :'ann', body => '{"userName":"ann@example.com","active":true}'), 200, 'PUT active true');
SELECT is((SELECT billable FROM scim.users WHERE id = :'ann'), true, 'reactivated: billable again');
SELECT is(pg_temp.call('PUT', '/Users/' || :'ann', body => '{"userName":"ann@example.com","emails":[{"value":"ann@evil.example.net","primary":true}]}'), 400,
		  'PUT to a primary email on a domain not approved: 400');
SELECT is((SELECT email FROM scim.users WHERE id = :'ann'), 'ann@example.com', 'nothing changed');
SELECT is(pg_temp.call('PUT', '/Users/' || :'ann', body => '{"userName":"carl@example.com"}'), 409, 'PUT to a taken userName: 409');
SELECT is(pg_temp.call('PUT', '/Users/' || :'ann', body => '{"userName":"ann@example.com",'), 400, 'PUT malformed JSON: 400');
SELECT is(pg_temp.call('PUT', '/Users/00000000-0000-0000-0000-000000000000', body => '{"userName":"x@example.com"}'), 404, 'PUT an unknown id: 404');
SELECT is(pg_temp.call('PUT', '/Users/' || :'ann', body => '{"userName":"ann@example.com"}', auth => current_setting('test.other')), 404,
		  'PUT another workspace''s user: 404');

-- ---- ETags -----------------------------------------------------------------------------------
SELECT (SELECT 'W/"' || version || '"' FROM scim.users WHERE id = :'ann') AS ann_etag \gset
SELECT is(pg_temp.call('GET', '/Users/' || :'ann', extra => jsonb_build_object('if-none-match', :'ann_etag')), 304, 'If-None-Match with the current ETag: 304');
SELECT ok(pg_temp.b() IS NULL AND pg_temp.h() ->> 'ETag' = :'ann_etag', '304 has no body and the ETag');
SELECT is(pg_temp.call('GET', '/Users/' || :'ann', extra => '{"if-none-match":"W/\"1\""}'), 200, 'If-None-Match with an old ETag: 200');
SELECT is(pg_temp.call('GET', '/Users/' || :'ann', extra => '{"if-none-match":"*"}'), 304, 'If-None-Match * : 304');
SELECT is(pg_temp.call('PUT', '/Users/' || :'ann', body => '{"userName":"ann@example.com","title":"Boss"}', extra => '{"if-match":"W/\"1\""}'), 412,
		  'PUT with a stale If-Match: 412');
SELECT ok(pg_temp.is_error(412, NULL), 'a SCIM 412');
SELECT is((SELECT 'W/"' || version || '"' || title FROM scim.users WHERE id = :'ann'), :'ann_etag' || 'Engineer', 'nothing changed');
SELECT is(pg_temp.call('PUT', '/Users/' || :'ann', body => '{"userName":"ann@example.com","title":"Boss"}', extra => jsonb_build_object('if-match', 'W/"0", ' || :'ann_etag')), 200,
		  'PUT with a matching If-Match (in a list): 200');
SELECT is(pg_temp.call('DELETE', '/Users/' || :'ann', extra => jsonb_build_object('if-match', :'ann_etag')), 412, 'DELETE with a stale If-Match: 412');
SELECT is((SELECT active FROM scim.users WHERE id = :'ann'), true, 'nothing changed');

-- ---- DELETE ------------------------------------------------------------------------------------
SELECT is(pg_temp.call('DELETE', '/Users/' || :'carl'), 204, 'DELETE under the deactivate policy: 204');
SELECT ok(pg_temp.b() IS NULL, '204 has no body');
SELECT is(pg_temp.call('GET', '/Users/' || :'carl'), 200, 'the user is still there');
SELECT is(pg_temp.b() -> 'active', 'false'::jsonb, 'and reads as active: false');
SELECT is((SELECT billable FROM scim.users WHERE id = :'carl'), false, 'the seat is released');
SELECT is(pg_temp.call('DELETE', '/Users/00000000-0000-0000-0000-000000000000'), 404, 'DELETE an unknown id: 404');
SELECT is(pg_temp.call('POST', '/Users', body => '{"userName":"gone@example.com"}', auth => current_setting('test.del')), 201, 'a user in a "delete" workspace');
SELECT (pg_temp.b() ->> 'id') AS gone \gset
SELECT is(pg_temp.call('DELETE', '/Users/' || :'gone', auth => current_setting('test.del')), 204, 'DELETE under the delete policy: 204');
SELECT is(pg_temp.call('GET', '/Users/' || :'gone', auth => current_setting('test.del')), 404, 'then 404');
SELECT is((SELECT count(*) FROM scim.users WHERE id = :'gone'), 0::bigint, 'the row is gone');
SELECT results_eq(format($$SELECT method, resource_id, status FROM scim.provisioning_log WHERE workspace = 'h_del' ORDER BY id$$),
				  format($$VALUES ('POST', %1$L::uuid, 201), ('DELETE', %1$L::uuid, 204), ('GET', NULL::uuid, 404)$$, :'gone'),
				  'the System Log of that user: created, deleted, not found');

-- ---- /Groups (routed to 65_groups.sql; its own suite tests it) ------------------------------------
CALL pg_temp.mark();
SELECT is(pg_temp.call('GET', '/groups/', 'count=100&startIndex=1'), 200, 'GET /Groups is routed (any case, trailing slash): 200');
SELECT is(pg_temp.b(), '{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"startIndex":1,"itemsPerPage":0,"Resources":[]}'::jsonb,
		  'a workspace without groups: an empty ListResponse (what IdP connection tests need)');
SELECT is(pg_temp.call('GET', '/Groups/123'), 404, 'GET /Groups/{unknown}: 404');
SELECT ok(pg_temp.is_error(404, NULL), 'a SCIM 404');
SELECT is(pg_temp.call('GET', '/Groups', auth => NULL), 401, '/Groups needs the token');
SELECT is((SELECT count(*) FROM scim.provisioning_log WHERE path ILIKE '/groups%' AND id > current_setting('test.maxid')::bigint), 3::bigint,
		  'group requests leave their System Log rows too');

-- ---- discovery -----------------------------------------------------------------------------------------
SELECT is(pg_temp.call('GET', '/ServiceProviderConfig', auth => NULL), 401, 'discovery needs the token too');
SELECT is(pg_temp.call('GET', '/ServiceProviderConfig'), 200, 'GET /ServiceProviderConfig');
SELECT results_eq($$SELECT body->'patch'->'supported', body->'bulk'->'supported', body->'filter'->'supported', body->'filter'->'maxResults',
						  body->'changePassword'->'supported', body->'sort'->'supported', body->'etag'->'supported', body->'authenticationSchemes'->0->>'type'
				   FROM resp$$,
				  $$VALUES ('true'::jsonb, 'true'::jsonb, 'true'::jsonb, to_jsonb(current_setting('scim_provision.max_results')::int), 'false'::jsonb, 'true'::jsonb, 'true'::jsonb, 'oauthbearertoken')$$,
				  'ServiceProviderConfig says what the code does');
SELECT is(pg_temp.call('GET', '/Schemas'), 200, 'GET /Schemas');
SELECT is(pg_temp.b() -> 'Resources', scim.schema_definitions(), 'the registry''s schemas in a ListResponse');
SELECT is(pg_temp.call('GET', '/Schemas/urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User'), 200, 'GET /Schemas/{urn}');
SELECT is(pg_temp.b() ->> 'id', 'urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User', 'our extension''s schema');
SELECT is(pg_temp.call('GET', '/Schemas/urn:example:nope'), 404, 'an unknown schema: 404');
SELECT is(pg_temp.call('GET', '/ResourceTypes'), 200, 'GET /ResourceTypes');
SELECT is(pg_temp.b() -> 'Resources', scim.resource_type_definitions(), 'the registry''s resource types');
SELECT is(pg_temp.call('GET', '/resourcetypes/user'), 200, 'GET /ResourceTypes/{name}, any case');
SELECT is(pg_temp.b() ->> 'endpoint', '/Users', 'the User resource type');

-- ---- privileges ---------------------------------------------------------------------------------------
SELECT ok(NOT has_function_privilege('public', 'scim.handle(text, text, text, jsonb, text)', 'EXECUTE'), 'scim.handle is not executable by PUBLIC');
SELECT ok((SELECT prosecdef AND proconfig @> ARRAY['search_path=pg_catalog, scim, pg_temp'] FROM pg_proc WHERE oid = 'scim.handle(text, text, text, jsonb, text)'::regprocedure),
		  'scim.handle is SECURITY DEFINER with a pinned search_path');

SELECT * FROM finish();
ROLLBACK;
