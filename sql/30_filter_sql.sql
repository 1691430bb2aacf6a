-- Filter engine: scim.filter_sql (SQL pushdown over scim.users u), checked
-- against the matcher on provisioned users; an injection corpus; sortBy;
-- the registry's /Schemas and /ResourceTypes.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(84);

-- ---- the predicates themselves ----------------------------------------------
SELECT is(scim.filter_sql('userName eq "BJensen"'), $$(pg_catalog.lower(u.user_name) OPERATOR(pg_catalog.=) pg_catalog.lower('BJensen'))$$,
	'case-insensitive column: lower() on both sides (the unique index expression)');
SELECT is(scim.filter_sql('externalId eq "Ab"'), $$(u.external_id OPERATOR(pg_catalog.=) ('Ab'))$$, 'caseExact column: plain equality');
SELECT is(scim.filter_sql('userName sw "J_%"'), $$(pg_catalog.lower(u.user_name) OPERATOR(pg_catalog.~~) pg_catalog.lower(E'J\\_\\%%'))$$,
	'sw: LIKE with metacharacters escaped');
SELECT is(scim.filter_sql('emails.value eq "A@B.c"'),
	$$(pg_catalog.lower(u.attributes::pg_catalog.text)::pg_catalog.jsonb OPERATOR(pg_catalog.@>) pg_catalog.lower('{"emails":[{"value":"A@B.c"}]}')::pg_catalog.jsonb)$$,
	'jsonb equality: containment over the lower-cased document');
SELECT is(scim.filter_sql('emails[type eq "work" and value eq "a@b.c"]'),
	$$(pg_catalog.lower(u.attributes::pg_catalog.text)::pg_catalog.jsonb OPERATOR(pg_catalog.@>) pg_catalog.lower('{"emails":[{"type":"work","value":"a@b.c"}]}')::pg_catalog.jsonb)$$,
	'value filter of equalities: one containment, one element');
SELECT is(scim.filter_sql('emails[value eq "a@b.com" and type co "wo"]'),
	$$((pg_catalog.lower(u.attributes::pg_catalog.text)::pg_catalog.jsonb OPERATOR(pg_catalog.@>) pg_catalog.lower('{"emails":[{"value":"a@b.com"}]}')::pg_catalog.jsonb) AND EXISTS (SELECT 1 FROM pg_catalog.jsonb_path_query(u.attributes OPERATOR(pg_catalog.->) 'emails', 'lax $[*]') AS e1(v) WHERE ((pg_catalog.lower((e1.v OPERATOR(pg_catalog.->>) 'value')) OPERATOR(pg_catalog.=) pg_catalog.lower('a@b.com')) AND (pg_catalog.lower((e1.v OPERATOR(pg_catalog.->>) 'type')) OPERATOR(pg_catalog.~~) pg_catalog.lower('%wo%')))))$$,
	'value filter with other operators: containment prefilter on the selective equality, and EXISTS over the elements');
SELECT is(scim.filter_sql('emails[type eq "work" and value co "@b"]'),
	$$(u.element_keys OPERATOR(pg_catalog.@@) scim.element_keys_query('emails', 'co', '@b', 'work', false) AND (u.element_keys OPERATOR(pg_catalog.@@) scim.element_keys_query('emails', 'co', '@b', 'work', true) OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_path_query(u.attributes OPERATOR(pg_catalog.->) 'emails', 'lax $[*]') AS e1(v) WHERE ((pg_catalog.lower((e1.v OPERATOR(pg_catalog.->>) 'type')) OPERATOR(pg_catalog.=) pg_catalog.lower('work')) AND (pg_catalog.lower((e1.v OPERATOR(pg_catalog.->>) 'value')) OPERATOR(pg_catalog.~~) pg_catalog.lower('%@b%'))))))$$,
	'value filter whose only equality is on type: no containment prefilter (it would match most rows), the typed element keys of type and co "@...", which decide where the keys are complete, else EXISTS over the elements');
SELECT is(scim.filter_sql('title eq "it''s \\ a"'), $$(pg_catalog.lower(u.title) OPERATOR(pg_catalog.=) pg_catalog.lower(E'it''s \\ a'))$$,
	'values are quoted literals (quote_literal, E'''' for backslashes)');
SELECT is(scim.filter_sql('not (title pr)'), $$NOT coalesce((u.title IS NOT NULL AND u.title OPERATOR(pg_catalog.<>) ''), false)$$,
	'not never sees NULL');
SELECT is(scim.filter_sql('meta.lastModified gt "2011-05-13T06:42:34.5+02:00"'),
	$$(u.updated_at OPERATOR(pg_catalog.>) '2011-05-13 04:42:34.500000+00'::pg_catalog.timestamptz)$$, 'dateTime: a UTC timestamptz literal');
SELECT is(scim.filter_sql('password eq "x"'), 'false', 'password (returned never) never matches');
SELECT is(scim.filter_sql('id eq "2819c223-7f76-453a-919d-413861904646"'),
	$$(u.id OPERATOR(pg_catalog.=) '2819c223-7f76-453a-919d-413861904646'::pg_catalog.uuid)$$, 'id: uuid equality');
SELECT is(scim.filter_sql('id eq "not-a-uuid"'), 'false', 'id: a value that is no id matches nothing');

-- ---- errors ---------------------------------------------------------------------
SELECT throws_ok($$SELECT scim.filter_sql('foo eq "x"')$$, '22023',
	'invalidFilter: unknown attribute "foo" for User resources at position 0', 'unknown attribute');
SELECT throws_ok($$SELECT scim.filter_sql('emails.foo eq "x"')$$, '22023',
	'invalidFilter: unknown attribute "emails.foo" for User resources at position 0', 'unknown sub-attribute');
SELECT throws_ok($$SELECT scim.filter_sql('emails[foo eq "x"]')$$, '22023',
	'invalidFilter: unknown attribute "emails.foo" for User resources at position 7', 'unknown sub-attribute in a value filter');
SELECT throws_ok($$SELECT scim.filter_sql('urn:example:x:2.0:User:a eq "x"')$$, '22023',
	'invalidFilter: unknown schema "urn:example:x:2.0:User" for User resources at position 0', 'unknown schema URN');
SELECT throws_ok($$SELECT scim.filter_sql('members.value eq "x"')$$, '22023',
	'invalidFilter: unknown attribute "members.value" for User resources at position 0', 'a Group attribute on Users');
SELECT is(scim.filter_sql('groups.value eq "not-a-uuid"'), 'false', 'groups.value: a value that is no group id matches nothing');
SELECT throws_ok($$SELECT scim.filter_sql('meta.location sw "https:"')$$, '22023',
	'invalidFilter: filtering on "meta.location" is not supported yet (position 0)', 'meta.location (computed)');
SELECT throws_ok($$SELECT scim.filter_sql('active gt true')$$, '22023',
	'invalidFilter: operator gt is not supported for the boolean attribute "active" at position 0', 'ordering on a boolean');
SELECT is(scim.filter_sql('displayName eq "x"', 'Group'), $$(pg_catalog.lower(g.display_name) OPERATOR(pg_catalog.=) pg_catalog.lower('x'))$$,
	'Group filters: a predicate over scim.groups g (groups.c)');
SELECT throws_ok($$SELECT scim.filter_sql('displayName eq "x"', 'Widget')$$, '22023',
	'invalidValue: unknown resource type "Widget"', 'unknown resource type');
SELECT throws_ok($$SELECT scim.filter_sql('userName eq')$$, '22023',
	'invalidFilter: expected a value (a string, number, true, false or null) after "eq" at end of filter, position 11', 'syntax error');

-- ---- fixtures: users provisioned through the shared upsert path -------------------
DO $$
BEGIN
	PERFORM scim.create_workspace('filtx');
	PERFORM scim.approve_domain('example.com', 'filtx');
	PERFORM scim.approve_domain('example.org', 'filtx');
END;
$$;
SELECT is(count(*)::int, 6, 'six users provisioned')
  FROM (SELECT (scim.provision_user(r::jsonb, 'scim', 'filtx')).status FROM (VALUES
	('{"userName":"bjensen@example.com","externalId":"bj-1","name":{"givenName":"Barbara","familyName":"Jensen","formatted":"Ms. Barbara Jensen"},
	   "displayName":"Babs Jensen","nickName":"Babs","title":"Tour Guide","active":true,
	   "emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],
	   "phoneNumbers":[{"value":"555-555-5555","type":"work"}],
	   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"701984","department":"Tour Operations",
	      "organization":"Universal","manager":{"value":"m-1"}}}'),
	('{"userName":"jsmith@example.com","externalId":"JS-2","name":{"givenName":"John","familyName":"Smith"},"active":false,
	   "emails":[{"value":"john.smith@example.org","type":"home"}]}'),
	('{"userName":"ALICE@Example.org","userType":"external","name":{"givenName":"Alice"},"title":"Engineer",
	   "emails":[{"value":"ALICE@example.org","type":"work","primary":true}],"locale":"en-GB"}'),
	('{"userName":"bob@example.org","externalId":"bob","title":"Contractor",
	   "urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User":{"userType":"Collaborator"},
	   "emails":[{"value":"bob@example.org","type":"work"},{"value":"bob.home@example.org","type":"work"}],
	   "ims":[{"value":"bob@xmpp.example","type":"xmpp"}]}'),
	('{"userName":"carol@example.com","name":{"formatted":"Carol C."},"nickName":"CC",
	   "addresses":[{"type":"work","locality":"Paris","country":"FR","primary":true}],
	   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"costCenter":"4130"}}'),
	('{"userName":"dan_100%@example.com","displayName":"Dan 100%","title":"Q_A"}')) AS t(r)) s
 WHERE status = 201;

INSERT INTO scim.groups (id, workspace, display_name) VALUES
	('11111111-2222-3333-4444-555555555555', 'filtx', 'Admins'),
	('66666666-7777-8888-9999-000000000000', 'filtx', 'Tour Guides');
INSERT INTO scim.group_members (group_id, member_id)
SELECT g.id, u.id FROM scim.users u, scim.groups g
 WHERE u.workspace = 'filtx' AND g.workspace = 'filtx'
   AND ((g.display_name = 'Admins' AND u.user_name IN ('bjensen@example.com', 'bob@example.org'))
	 OR (g.display_name = 'Tour Guides' AND u.user_name = 'bjensen@example.com'));

CREATE FUNCTION pg_temp.sql_ids(f text, ws text DEFAULT 'filtx') RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
	r text[];
BEGIN
	EXECUTE format('SELECT coalesce(array_agg(u.user_name ORDER BY u.user_name), ''{}'') FROM scim.users u WHERE u.workspace = $1 AND (%s)',
				   scim.filter_sql(f)) INTO r USING ws;
	RETURN r;
END;
$$;
-- the matcher over each user as SCIM renders it, with its read-only groups
CREATE FUNCTION pg_temp.match_ids(f text, ws text DEFAULT 'filtx') RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(u.user_name ORDER BY u.user_name), '{}')
	  FROM scim.users u
	 WHERE u.workspace = ws
	   AND scim.filter_match(f, scim.user_resource(u) || jsonb_build_object('groups', scim.user_groups(u.id)))
$$;

-- ---- expected results ------------------------------------------------------------------
SELECT is(pg_temp.sql_ids('userName eq "BJENSEN@example.com"'), '{bjensen@example.com}', 'userName eq, any case');
SELECT is(pg_temp.sql_ids('userName sw "a"'), '{ALICE@Example.org}', 'userName sw');
SELECT is(pg_temp.sql_ids('userName co "100%"'), '{dan_100%@example.com}', 'co with a literal %');
SELECT is(pg_temp.sql_ids('userName co "_"'), '{dan_100%@example.com}', 'co with a literal _');
SELECT is(pg_temp.sql_ids('externalId eq "js-2"'), '{}', 'externalId is caseExact');
SELECT is(pg_temp.sql_ids('externalId eq "JS-2"'), '{jsmith@example.com}', 'externalId eq');
SELECT is(pg_temp.sql_ids('emails.value eq "alice@EXAMPLE.org"'), '{ALICE@Example.org}', 'emails.value eq, any case');
SELECT is(pg_temp.sql_ids('emails[type eq "work" and value eq "bob.home@example.org"]'), '{bob@example.org}', 'value filter eq/eq');
SELECT is(pg_temp.sql_ids('emails[type eq "home" and value eq "bjensen@example.com"]'), '{}', 'value filter: one element for all conditions');
SELECT is(pg_temp.sql_ids('emails.type eq "home" and emails.value eq "bjensen@example.com"'), '{bjensen@example.com}', 'without brackets, any elements');
SELECT is(pg_temp.sql_ids('userType eq "EXTERNAL"'), '{ALICE@Example.org}', 'userType, case-insensitive');
SELECT is(pg_temp.sql_ids('urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User:userType eq "collaborator"'),
	'{bob@example.org}', 'our extension''s userType');
SELECT is(pg_temp.sql_ids('active eq false'), '{jsmith@example.com}', 'active eq false');
SELECT is(pg_temp.sql_ids('title pr and not (userName ew ".org")'), '{bjensen@example.com,dan_100%@example.com}', 'pr, not, ew');
SELECT is(pg_temp.sql_ids('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department sw "tour"'),
	'{bjensen@example.com}', 'enterprise column attribute');
SELECT is(pg_temp.sql_ids('costCenter eq "4130"'), '{carol@example.com}', 'enterprise jsonb attribute');
SELECT is(pg_temp.sql_ids('manager eq "M-1"'), '{bjensen@example.com}', 'manager means manager.value');
SELECT is(pg_temp.sql_ids('addresses[locality eq "paris" and primary eq true]'), '{carol@example.com}', 'addresses value filter with a boolean');
SELECT is(pg_temp.sql_ids('schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"'),
	'{bjensen@example.com,carol@example.com}', 'schemas eq the enterprise extension');
SELECT is(pg_temp.sql_ids('meta.created le "2000-01-01T00:00:00Z"'), '{}', 'meta.created');
SELECT is(pg_temp.sql_ids('groups.value eq "11111111-2222-3333-4444-555555555555"'), '{bjensen@example.com,bob@example.org}',
	'groups.value eq: direct members of the group');
SELECT is(pg_temp.sql_ids('groups[display eq "tour guides"] and not (groups[value eq "11111111-2222-3333-4444-555555555555"])'), '{}',
	'groups value filters');
SELECT is(pg_temp.sql_ids('not (groups pr)'),
	'{ALICE@Example.org,carol@example.com,dan_100%@example.com,jsmith@example.com}', 'groups pr');
SELECT is(pg_temp.sql_ids('nickName eq null'), '{ALICE@Example.org,bob@example.org,dan_100%@example.com,jsmith@example.com}', 'eq null: absent');

-- ---- the SQL predicate and the matcher agree ---------------------------------------------
CREATE TEMP TABLE filter_corpus (f text) ON COMMIT DROP;
INSERT INTO filter_corpus VALUES
	('userName eq "bjensen@example.com"'), ('userName ne "bjensen@example.com"'), ('userName sw "B"'),
	('userName ew "ORG"'), ('userName co "e@"'), ('userName gt "c"'), ('userName le "bob@example.org"'),
	('externalId eq "bob"'), ('externalId pr'), ('not (externalId pr)'), ('externalId co "J"'),
	('name.givenName eq "john"'), ('name.familyName pr'), ('name.formatted co "c."'), ('name pr'),
	('displayName co "%"'), ('title eq "q_a"'), ('title sw "Q_"'), ('title lt "F"'), ('nickName eq "babs"'),
	('nickName pr'), ('nickName ne "babs"'), ('locale eq "en-gb"'), ('active eq true'), ('active ne true'),
	('emails pr'), ('emails co "jensen"'), ('emails.value ew "example.org"'), ('emails.type eq "work"'),
	('emails.primary eq true'), ('emails[primary eq true]'), ('emails[not (primary pr)]'),
	('emails[type eq "work" and value sw "bob"]'), ('emails[type eq "work" or type eq "home"]'),
	('emails[type ne "work"]'), ('emails.value eq null'),
	('phoneNumbers.value eq "555-555-5555"'), ('phoneNumbers pr'), ('ims[type eq "xmpp"]'), ('ims.value co "XMPP"'),
	('addresses.country eq "fr"'), ('addresses[type eq "work" and country eq "FR"]'),
	('userType eq "regular"'), ('userType ne "Regular"'),
	('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"'),
	('urn:scim:schemas:extension:enterprise:1.0:organization eq "universal"'),
	('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "j"'), ('urn:scim:schemas:core:1.0:title pr'),
	('manager.value pr'), ('manager pr'), ('department pr or costCenter pr'),
	('schemas eq "urn:ietf:params:scim:schemas:core:2.0:User"'), ('schemas pr'),
	('meta.resourceType eq "User"'), ('meta.version eq "W/\"1\""'), ('meta.lastModified gt "2000-01-01T00:00:00Z"'),
	('meta pr'), ('id pr'), ('password pr'), ('not (password eq "x")'),
	('groups pr'), ('groups.value eq "11111111-2222-3333-4444-555555555555"'), ('groups.display sw "TOUR"'),
	('groups[type eq "direct" and display eq "admins"]'), ('groups.value eq "66666666-7777-8888-9999-000000000000"'),
	('not (userName sw "b" or title pr) and not (emails[type eq "home"])');
SELECT is(array_agg(f ORDER BY f), NULL, 'the SQL predicate and filter_match agree on every corpus filter')
  FROM filter_corpus WHERE pg_temp.sql_ids(f) IS DISTINCT FROM pg_temp.match_ids(f);
SELECT cmp_ok(count(DISTINCT pg_temp.sql_ids(f))::int, '>=', 20, 'the corpus discriminates (at least 20 distinct result sets)')
  FROM filter_corpus;

-- ---- injection corpus -----------------------------------------------------------------------
DO $$
BEGIN
	PERFORM scim.create_workspace('filtinj');
	PERFORM scim.approve_domain('inj.example', 'filtinj');
END;
$$;
CREATE TEMP TABLE inj (n int, v text) ON COMMIT DROP;
INSERT INTO inj VALUES
	(1, $$O'Malley$$), (2, $$'; DROP TABLE scim.users; --$$), (3, $$back\slash$$), (4, $$trailing\$$),
	(5, $$100%$$), (6, $$under_score$$), (7, $$/* comment */$$), (8, $$-- dash$$), (9, $$semi;colon$$),
	(10, $$"double"$$), (11, $q$$$dollar$$ $x$q$), (12, $$E'\x41'$$), (13, $$%_%$$),
	(14, E'\u00fcn\u00efc\u00f6d\u00e9 \u65e5\u672c \U0001F600'), (15, $$\u0041$$), (16, $$') OR 1=1 --$$),
	(17, E'tab\there'), (18, $$[x]$$), (19, $$a" or userName pr or title eq "b$$), (20, $$\\'\\'$$);
INSERT INTO scim.users (workspace, user_name, external_id, title, attributes)
SELECT 'filtinj', 'u' || n || '@inj.example', v, v,
	   jsonb_build_object('nickName', v, 'emails', jsonb_build_array(jsonb_build_object('value', v, 'type', 'work'))) FROM inj;

CREATE FUNCTION pg_temp.one(f text) RETURNS text[] LANGUAGE sql AS $$ SELECT pg_temp.sql_ids(f, 'filtinj') $$;
SELECT is(array_agg(n ORDER BY n), NULL, 'title eq finds exactly its user for every corpus value')
  FROM inj WHERE pg_temp.one('title eq ' || to_jsonb(v)::text) IS DISTINCT FROM ARRAY['u' || n || '@inj.example'];
SELECT is(array_agg(n ORDER BY n), NULL, 'externalId eq (caseExact) finds exactly its user')
  FROM inj WHERE pg_temp.one('externalId eq ' || to_jsonb(v)::text) IS DISTINCT FROM ARRAY['u' || n || '@inj.example'];
SELECT is(array_agg(n ORDER BY n), NULL, 'nickName eq (jsonb containment) finds exactly its user')
  FROM inj WHERE pg_temp.one('nickName eq ' || to_jsonb(v)::text) IS DISTINCT FROM ARRAY['u' || n || '@inj.example'];
SELECT is(array_agg(n ORDER BY n), NULL, 'emails[type eq "work" and value eq ...] finds exactly its user')
  FROM inj WHERE pg_temp.one('emails[type eq "work" and value eq ' || to_jsonb(v)::text || ']') IS DISTINCT FROM ARRAY['u' || n || '@inj.example'];
SELECT is(array_agg(i.n ORDER BY i.n), NULL, 'title co finds exactly the titles containing the value')
  FROM inj i WHERE pg_temp.one('title co ' || to_jsonb(i.v)::text) IS DISTINCT FROM
	(SELECT array_agg('u' || j.n || '@inj.example' ORDER BY 'u' || j.n || '@inj.example') FROM inj j WHERE strpos(lower(j.v), lower(i.v)) > 0);
SELECT is(array_agg(i.n ORDER BY i.n), NULL, 'nickName sw finds exactly the values starting with it')
  FROM inj i WHERE pg_temp.one('nickName sw ' || to_jsonb(i.v)::text) IS DISTINCT FROM
	(SELECT array_agg('u' || j.n || '@inj.example' ORDER BY 'u' || j.n || '@inj.example') FROM inj j WHERE left(lower(j.v), length(i.v)) = lower(i.v));
SELECT is(array_agg(i.n ORDER BY i.n), NULL, 'emails.value ew finds exactly the values ending with it')
  FROM inj i WHERE pg_temp.one('emails.value ew ' || to_jsonb(i.v)::text) IS DISTINCT FROM
	(SELECT array_agg('u' || j.n || '@inj.example' ORDER BY 'u' || j.n || '@inj.example') FROM inj j WHERE right(lower(j.v), length(i.v)) = lower(i.v));
SELECT is(array_agg(n ORDER BY n), NULL, 'the matcher agrees on every injection filter')
  FROM inj, LATERAL (VALUES ('title eq ' || to_jsonb(v)::text), ('nickName co ' || to_jsonb(v)::text),
						  ('emails[value ew ' || to_jsonb(v)::text || ']'), ('externalId sw ' || to_jsonb(v)::text)) q(f)
 WHERE pg_temp.one(f) IS DISTINCT FROM pg_temp.match_ids(f, 'filtinj');
SELECT is((SELECT count(*)::int FROM scim.users WHERE workspace = 'filtinj'), 20, 'nothing was changed');
SELECT is(pg_temp.one('title eq "a\" or userName pr or title eq \"b"'), '{u19@inj.example}', 'quotes inside the value stay inside');

-- ---- sortBy ------------------------------------------------------------------------------------
SELECT is(scim.sort_expression('userName'), 'pg_catalog.lower(u.user_name)', 'sortBy userName: the indexed expression');
SELECT is(scim.sort_expression('USERNAME'), 'pg_catalog.lower(u.user_name)', 'sortBy is case-insensitive');
SELECT is(scim.sort_expression('externalId'), 'u.external_id', 'sortBy externalId (caseExact)');
SELECT is(scim.sort_expression('meta.lastModified'), 'u.updated_at', 'sortBy meta.lastModified');
SELECT is(scim.sort_expression('name.familyName'), 'pg_catalog.lower(u.family_name)', 'sortBy name.familyName');
SELECT is(scim.sort_expression('emails'), 'pg_catalog.lower(u.email)', 'sortBy emails: the primary email');
SELECT is(scim.sort_expression('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber'),
	$$pg_catalog.lower(u.attributes OPERATOR(pg_catalog.->) 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User' OPERATOR(pg_catalog.->>) 'employeeNumber')$$, 'sortBy an extension attribute');
SELECT is(scim.sort_expression('ims.value'),
	$$(SELECT pg_catalog.lower(e.v OPERATOR(pg_catalog.->>) 'value') FROM pg_catalog.jsonb_path_query(u.attributes OPERATOR(pg_catalog.->) 'ims', 'lax $[*]') WITH ORDINALITY AS e(v, n) ORDER BY (e.v OPERATOR(pg_catalog.->) 'primary') OPERATOR(pg_catalog.=) 'true'::pg_catalog.jsonb DESC NULLS LAST, e.n LIMIT 1)$$,
	'sortBy a multi-valued attribute: primary, else first');
SELECT throws_ok($$SELECT scim.sort_expression('nope')$$, '22023',
	'invalidPath: unknown attribute "nope" for sortBy on User resources', 'sortBy an unknown attribute');
SELECT throws_ok($$SELECT scim.sort_expression('password')$$, '22023',
	'invalidPath: "password" is never returned and cannot be used for sorting', 'sortBy password');
SELECT throws_ok($$SELECT scim.sort_expression('name')$$, '22023',
	'invalidPath: "name" is a complex attribute; sort by one of its sub-attributes (e.g. "name.formatted")', 'sortBy a complex attribute');
SELECT throws_ok($$SELECT scim.sort_expression('emails[type eq "work"]')$$, '22023',
	'invalidPath: sortBy takes an attribute path, not a value filter', 'sortBy with a filter');
CREATE FUNCTION pg_temp.sorted(attr text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
	r text[];
BEGIN
	EXECUTE format('SELECT array_agg(u.user_name ORDER BY %s, u.user_name) FROM scim.users u WHERE u.workspace = $1',
				   scim.sort_expression(attr)) INTO r USING 'filtx';
	RETURN r;
END;
$$;
SELECT is(pg_temp.sorted('userName'),
	'{ALICE@Example.org,bjensen@example.com,bob@example.org,carol@example.com,dan_100%@example.com,jsmith@example.com}',
	'ORDER BY the userName expression: case-insensitive order');
SELECT is(pg_temp.sorted('emails.value'),
	'{ALICE@Example.org,bjensen@example.com,bob@example.org,jsmith@example.com,carol@example.com,dan_100%@example.com}',
	'ORDER BY emails: the primary (or first) email, users without one last');

-- ---- the registry: /Schemas and /ResourceTypes -------------------------------------------------
SELECT is((SELECT array_agg(s->>'id' ORDER BY s->>'id') FROM jsonb_array_elements(scim.schema_definitions()) s),
	ARRAY['urn:ietf:params:scim:schemas:core:2.0:Group', 'urn:ietf:params:scim:schemas:core:2.0:User',
		  'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
		  'urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User'], 'four schemas');
SELECT is((SELECT count(*)::int FROM jsonb_array_elements(scim.schema_definitions()) s
		   WHERE s->'schemas' = '["urn:ietf:params:scim:schemas:core:2.0:Schema"]' AND s->'meta'->>'resourceType' = 'Schema'
			 AND s->'meta'->>'location' = '/Schemas/' || (s->>'id')), 4, 'each is a Schema resource with meta');
SELECT is((SELECT a FROM jsonb_array_elements(scim.schema_definitions()) s, jsonb_array_elements(s->'attributes') a
		   WHERE s->>'name' = 'User' AND a->>'name' = 'userName'),
	'{"name":"userName","type":"string","multiValued":false,"description":"Unique identifier for the User, typically used by the user to directly authenticate to the service provider.  Case-insensitive.",
	  "required":true,"caseExact":false,"mutability":"readWrite","returned":"default","uniqueness":"server"}',
	'userName as RFC 7643 defines it');
SELECT is((SELECT count(*)::int FROM jsonb_array_elements(scim.schema_definitions()) s,
		   jsonb_path_query(s->'attributes', 'strict $.**') a
		   WHERE jsonb_typeof(a) = 'object' AND a ? 'type'
			 AND NOT (a ?& ARRAY['name', 'type', 'multiValued', 'description', 'required', 'mutability', 'returned'])), 0,
	'every attribute and sub-attribute has the RFC 7643 characteristics');
SELECT is((SELECT a->'subAttributes'->2->'canonicalValues' FROM jsonb_array_elements(scim.schema_definitions()) s,
		   jsonb_array_elements(s->'attributes') a WHERE s->>'name' = 'User' AND a->>'name' = 'emails'),
	'["work","home","other"]', 'emails.type canonical values');
SELECT is((SELECT a->>'returned' FROM jsonb_array_elements(scim.schema_definitions()) s,
		   jsonb_array_elements(s->'attributes') a WHERE s->>'name' = 'User' AND a->>'name' = 'password'),
	'never', 'password: returned never');
SELECT is((SELECT a->'canonicalValues' FROM jsonb_array_elements(scim.schema_definitions()) s,
		   jsonb_array_elements(s->'attributes') a
		   WHERE s->>'id' = 'urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User' AND a->>'name' = 'userType'),
	'["Regular","External","Collaborator"]', 'our extension: userType with its canonical values');
SELECT is((SELECT jsonb_agg(r->'schemaExtensions') FROM jsonb_array_elements(scim.resource_type_definitions()) r WHERE r->>'id' = 'User'),
	'[[{"schema":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","required":false},
	   {"schema":"urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User","required":false}]]',
	'the User resource type and its extensions');

-- ---- scim.jsonb_present -----------------------------------------------------------------------
SELECT is(array_agg(scim.jsonb_present(x) ORDER BY n),
	ARRAY[false, false, false, false, false, false, true, true, true, true, false], 'jsonb_present: pr over jsonb')
  FROM (VALUES (1, NULL::jsonb), (2, 'null'), (3, '""'), (4, '[]'), (5, '{}'), (6, '[null, "", {"a": []}]'),
			   (7, '0'), (8, 'false'), (9, '[null, "x"]'), (10, '{"a": {"b": true}}'), (11, '{"a": null}')) t(n, x);

SELECT * FROM finish();
ROLLBACK;
