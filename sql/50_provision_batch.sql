-- scim.provision_users: the set-based upsert of a batch (the OneLogin
-- worker's pages) gives what sequential scim.provision_user calls give:
-- each batch runs in workspace pb_b through provision_users and in pb_s
-- through provision_user one by one, from the same starting state, and
-- results, users and System Log rows are compared.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(29);

DO $$
DECLARE
	ws text;
BEGIN
	FOREACH ws IN ARRAY ARRAY['pb_b', 'pb_s']
	LOOP
		PERFORM scim.create_workspace(ws);
		PERFORM scim.approve_domain('example.com', ws);
		PERFORM scim.approve_domain('corp.example.org', ws, include_subdomains => true);
		-- the users the batches find
		PERFORM scim.provision_user('{"userName":"old@example.com","externalId":"E9","name":{"givenName":"Old"},"title":"T"}', 'scim', ws);
		PERFORM scim.provision_user('{"userName":"keep@example.com","name":{"givenName":"Keep","familyName":"K"},"title":"Boss",
			"emails":[{"value":"keep@example.com","primary":true}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"D","organization":"O"}}', 'scim', ws);
		PERFORM scim.provision_user('{"userName":"ren@example.com","externalId":"E7","title":"Stays"}', 'scim', ws);
		PERFORM scim.provision_user('{"userName":"off@example.com","externalId":"E8","active":false}', 'scim', ws);
	END LOOP;
END;
$$;

CREATE TEMP TABLE out (ws text, batch integer, ord integer, status integer, scim_type text, detail text, id uuid);
CREATE TEMP TABLE batches (batch integer, resources jsonb[]);
INSERT INTO batches VALUES
(1, ARRAY[
	'{"userName":"a@example.com","externalId":"E1","name":{"givenName":"A"},"userType":"collaborator"}',	-- create
	'{"userName":"b@evil.com","externalId":"E2"}',										-- refused: domain
	'{"userName":"x@example.com","externalId":"E9","title":null}',						-- update by externalId (rename), title kept
	'{"userName":"KEEP@Example.com","name":{"familyName":"F"}}',						-- update by userName, any case; the rest kept
	'{"userName":"d@example.com","externalId":"E4"}',									-- create ...
	'{"userName":"d@example.com","externalId":"E4","title":"second"}',					-- ... and its in-batch duplicate: update
	'{"userName":"ren@evil.com","externalId":"E7"}',									-- refused update: domain
	'{"userName":"noaddr","externalId":"E5"}',											-- refused: no address
	'"not an object"',																	-- refused: malformed
	'{"userName":"e@example.com","active":false,"emails":[{"value":"e@sub.example.com"}]}',	-- refused: email domain
	'{"userName":"f@example.com","active":"False"}',									-- create inactive
	'{"userName":"off@example.com","externalId":"E8","active":true}',					-- reactivation
	'{"userName":"i@eu.corp.example.org"}',												-- create: a subdomain of an approved one
	'{"userName":"j@corp.example.org","emails":[{"value":"j@EXAMPLE.com"}]}',			-- create: exact domains, any case
	'{"userName":"k@example.org"}',														-- refused: the parent of an approved domain
	'{"userName":"l@example.com","emails":[{"value":"l@bad..example.com"}]}'			-- refused: malformed email
]::jsonb[]),
(2, ARRAY[
	'{"userName":"g@example.com","userType":"bogus"}',									-- refused by the mapping: user type
	'{"userName":"h@example.com","userType":"EXTERNAL"}',								-- create
	'{"userName":"a@example.com","externalId":"E1","title":"again"}'					-- update
]::jsonb[]),
(3, ARRAY[
	'{"userName":"y@example.com","externalId":"E1"}',									-- renames a@ to y@ ...
	'{"userName":"a@example.com"}',														-- ... so this one creates a@ again
	'{"userName":"z@example.com","externalId":"E9"}'									-- independent rename
]::jsonb[]);

CREATE FUNCTION pg_temp.run(b integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	res jsonb[] := (SELECT t.resources FROM batches t WHERE t.batch = b);
	i integer;
BEGIN
	INSERT INTO out SELECT 'pb_b', b, p.* FROM scim.provision_users(res, 'onelogin', 'pb_b') p;
	FOR i IN 1 .. cardinality(res) LOOP
		INSERT INTO out SELECT 'pb_s', b, i, p.* FROM scim.provision_user(res[i], 'onelogin', 'pb_s') p;
	END LOOP;
END;
$$;
-- results, users and log rows of a workspace with ids replaced by user names
CREATE FUNCTION pg_temp.results(w text, b integer) RETURNS TABLE(ord integer, status integer, scim_type text, detail text, who text)
LANGUAGE sql AS $$
	SELECT o.ord, o.status, o.scim_type, replace(o.detail, w, 'WS'), (SELECT u.user_name FROM scim.users u WHERE u.id = o.id)
	FROM out o WHERE o.ws = w AND o.batch = b ORDER BY o.ord
$$;
CREATE FUNCTION pg_temp.users(w text) RETURNS SETOF jsonb LANGUAGE sql AS $$
	SELECT to_jsonb(u) - 'id' - 'workspace' - 'created_at' - 'updated_at' - 'billable_since' - 'deactivated_at'
		   || jsonb_build_object('billable_since', u.billable_since IS NOT NULL, 'deactivated_at', u.deactivated_at IS NOT NULL)
	FROM scim.users u WHERE u.workspace = w
$$;
CREATE FUNCTION pg_temp.logs(w text) RETURNS SETOF jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('source', l.source, 'method', l.method,
			'path', regexp_replace(l.path, '[0-9a-f-]{36}', coalesce((SELECT u.user_name FROM scim.users u WHERE u.id::text = substr(l.path, 8)), '?')),
			'resource', (SELECT u.user_name FROM scim.users u WHERE u.id = l.resource_id), 'user_name', l.user_name,
			'status', l.status, 'scim_type', l.scim_type, 'detail', replace(l.detail, w, 'WS'))
	FROM scim.provisioning_log l WHERE l.workspace = w
$$;

-- ---- batch 1: mixed (set-based, the duplicate and the non-object after it) ------------------
SELECT pg_temp.run(1);
SELECT results_eq($$SELECT * FROM pg_temp.results('pb_b', 1)$$, $$SELECT * FROM pg_temp.results('pb_s', 1)$$,
				  'batch 1: the same status, scimType, detail and user per resource as sequential calls');
SELECT results_eq($$SELECT status FROM pg_temp.results('pb_b', 1)$$,
				  $$VALUES (201), (400), (200), (200), (201), (200), (400), (400), (400), (400), (201), (200), (201), (201), (400), (400)$$,
				  'batch 1: creates, updates, refusals where expected');
SELECT bag_eq($$SELECT * FROM pg_temp.users('pb_b')$$, $$SELECT * FROM pg_temp.users('pb_s')$$,
			  'batch 1: the same users (attributes, states, versions) as sequential calls');
SELECT bag_eq($$SELECT * FROM pg_temp.logs('pb_b')$$, $$SELECT * FROM pg_temp.logs('pb_s')$$,
			  'batch 1: the same System Log rows as sequential calls');
SELECT is((SELECT count(*) FROM scim.provisioning_log l WHERE l.workspace = 'pb_b' AND l.source = 'onelogin'), 16::bigint,
		  'batch 1: exactly one log row per resource, with the given source');
SELECT is((SELECT count(*) FROM out o WHERE o.ws = 'pb_b' AND o.batch = 1), 16::bigint, 'batch 1: one result row per resource');
SELECT is((SELECT count(DISTINCT o.ord) FROM out o WHERE o.ws = 'pb_b' AND o.batch = 1), 16::bigint, 'batch 1: ord numbers every resource once');
SELECT ok((SELECT l6.id > l12.id FROM scim.provisioning_log l6, scim.provisioning_log l12
		   WHERE l6.workspace = 'pb_b' AND l6.source = 'onelogin' AND l6.user_name = 'd@example.com' AND l6.status = 200
			 AND l12.workspace = 'pb_b' AND l12.source = 'onelogin' AND l12.user_name = 'off@example.com'),
		  'batch 1 went set-based: the in-batch duplicate was applied one by one after the rest');
SELECT is((SELECT count(*) FROM scim.users u WHERE u.workspace = 'pb_b'
		   AND (u.user_name ILIKE '%evil.com' OR u.user_name IN ('noaddr', 'e@example.com', 'k@example.org', 'l@example.com') OR u.external_id IN ('E2', 'E5'))), 0::bigint,
		  'refused users are written nowhere');
SELECT is((SELECT row(u.user_name, u.title, u.version)::text FROM scim.users u WHERE u.workspace = 'pb_b' AND u.external_id = 'E7'),
		  '(ren@example.com,Stays,1)', 'a refused update leaves the user as it was');
SELECT is((SELECT row(u.user_name, u.given_name, u.title, u.version)::text FROM scim.users u WHERE u.workspace = 'pb_b' AND u.external_id = 'E9'),
		  '(x@example.com,Old,T,2)', 'update by externalId: renamed, left-out and null attributes kept');
SELECT is((SELECT row(u.user_name, u.given_name, u.family_name, u.title, u.email, u.department, u.organization)::text
		   FROM scim.users u WHERE u.workspace = 'pb_b' AND lower(u.user_name) = 'keep@example.com'),
		  '(KEEP@Example.com,Keep,F,Boss,keep@example.com,D,O)', 'update by userName in any case: missing attributes kept');
SELECT is((SELECT row(u.title, u.version)::text FROM scim.users u WHERE u.workspace = 'pb_b' AND u.external_id = 'E4'),
		  '(second,2)', 'in-batch duplicate: created, then updated');
SELECT is((SELECT row(u.user_type, u.active, u.billable)::text FROM scim.users u WHERE u.workspace = 'pb_b' AND u.external_id = 'E1'),
		  '(Collaborator,t,t)', 'a new user: canonical user type, billable (the trigger ran)');
SELECT is((SELECT row(u.active, u.billable, u.deactivated_at IS NULL)::text FROM scim.users u WHERE u.workspace = 'pb_b' AND u.user_name = 'f@example.com'),
		  '(f,f,f)', 'created inactive: not billable, deactivated');
SELECT is((SELECT row(u.active, u.billable, u.deactivated_at IS NULL)::text FROM scim.users u WHERE u.workspace = 'pb_b' AND u.external_id = 'E8'),
		  '(t,t,t)', 'reactivated: billable again');
SELECT is((SELECT o.detail FROM out o WHERE o.ws = 'pb_b' AND o.batch = 1 AND o.ord = 2),
		  'e-mail domain of "b@evil.com" is not approved for workspace "pb_b". Domain "evil.com" is not on the workspace''s approved list.',
		  'a refused domain: the trigger''s message and detail');
SELECT is((SELECT row(l.method, l.path, l.resource_id, l.status, l.scim_type)::text FROM scim.provisioning_log l
		   WHERE l.workspace = 'pb_b' AND l.user_name = 'ren@evil.com'),
		  (SELECT row('PUT', '/Users/' || u.id, NULL::uuid, 400, 'invalidValue')::text FROM scim.users u WHERE u.workspace = 'pb_b' AND u.external_id = 'E7'),
		  'a refused update is logged as the PUT it was, without a resource');
SELECT is((SELECT o.detail FROM out o WHERE o.ws = 'pb_b' AND o.batch = 1 AND o.ord = 16),
		  'e-mail domain of "l@bad..example.com" is not approved for workspace "pb_b". The address is malformed.',
		  'a malformed address: the trigger''s message and detail');

-- ---- batch 2: the mapping refuses a resource (the whole batch falls back) ---------------------
SELECT pg_temp.run(2);
SELECT results_eq($$SELECT * FROM pg_temp.results('pb_b', 2)$$, $$SELECT * FROM pg_temp.results('pb_s', 2)$$,
				  'batch 2 (fallback): the same results as sequential calls');
SELECT results_eq($$SELECT status, scim_type FROM pg_temp.results('pb_b', 2)$$, $$VALUES (400, 'invalidValue'), (201, NULL), (200, NULL)$$,
				  'batch 2: bad user type refused, the others applied');
SELECT bag_eq($$SELECT * FROM pg_temp.users('pb_b')$$, $$SELECT * FROM pg_temp.users('pb_s')$$, 'batch 2: the same users');
SELECT bag_eq($$SELECT * FROM pg_temp.logs('pb_b')$$, $$SELECT * FROM pg_temp.logs('pb_s')$$, 'batch 2: the same System Log rows');

-- ---- batch 3: a rename frees a userName another resource of the batch takes -------------------
SELECT pg_temp.run(3);
SELECT results_eq($$SELECT * FROM pg_temp.results('pb_b', 3)$$, $$SELECT * FROM pg_temp.results('pb_s', 3)$$,
				  'batch 3: the same results as sequential calls');
SELECT bag_eq($$SELECT * FROM pg_temp.users('pb_b')$$, $$SELECT * FROM pg_temp.users('pb_s')$$, 'batch 3: the same users');
SELECT bag_eq($$SELECT * FROM pg_temp.logs('pb_b')$$, $$SELECT * FROM pg_temp.logs('pb_s')$$, 'batch 3: the same System Log rows');

-- ---- unknown workspace, empty batch, privileges ------------------------------------------------
SELECT results_eq($$SELECT p.ord, p.status FROM scim.provision_users(ARRAY['{"userName":"q@example.com"}', '{}']::jsonb[], 'onelogin', 'pb_nope') p$$,
				  $$VALUES (1, 404), (2, 404)$$, 'unknown workspace: 404 for each resource');
SELECT is_empty($$SELECT * FROM scim.provision_users(ARRAY[]::jsonb[], 'onelogin', 'pb_b')$$, 'an empty batch: no rows');
SELECT ok(NOT has_function_privilege('public', 'scim.provision_users(jsonb[], text, text)', 'EXECUTE'),
		  'provision_users is not executable by PUBLIC');

SELECT * FROM finish();
ROLLBACK;
