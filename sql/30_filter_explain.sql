-- Filter engine: the predicates of scim.filter_sql use the indexes of
-- scim.users and scim.groups (EXPLAIN on 20000 generated users and 5000
-- groups in a scratch workspace).
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(31);

DO $$
BEGIN
	PERFORM scim.create_workspace('filtbig');
	PERFORM scim.approve_domain('big.example', 'filtbig');
END;
$$;
INSERT INTO scim.users (workspace, user_name, external_id, given_name, family_name, email, attributes)
SELECT 'filtbig', format('user-%s@big.example', i), format('ext-%s', i), 'Given' || i, 'Family' || (i % 500),
	   format('user-%s@big.example', i),
	   jsonb_build_object('emails', jsonb_build_array(
			jsonb_build_object('value', format('user-%s@big.example', i), 'type', 'work', 'primary', true),
			jsonb_build_object('value', format('home-%s@home.example', i), 'type', 'home')),
		  'nickName', 'nick' || i)
  FROM generate_series(1, 20000) i;
ANALYZE scim.users;

-- the plan of SELECT ... FROM scim.users u WHERE u.workspace = 'filtbig' AND (<predicate>)
CREATE FUNCTION pg_temp.plan(f text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
	result text := '';
BEGIN
	FOR line IN EXECUTE format('EXPLAIN (COSTS OFF) SELECT u.id FROM scim.users u WHERE u.workspace = %L AND (%s)',
							   'filtbig', scim.filter_sql(f))
	LOOP
		result := result || line || E'\n';
	END LOOP;
	RETURN result;
END;
$$;
CREATE FUNCTION pg_temp.hits(f text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	EXECUTE format('SELECT count(*) FROM scim.users u WHERE u.workspace = %L AND (%s)', 'filtbig', scim.filter_sql(f)) INTO n;
	RETURN n;
END;
$$;

SELECT matches(pg_temp.plan('userName eq "USER-12345@big.example"'), 'Index Scan using users_workspace_user_name_idx',
	'userName eq: the unique (workspace, lower(user_name)) index');
SELECT is(pg_temp.hits('userName eq "USER-12345@big.example"'), 1::bigint, 'userName eq: one user');

SELECT matches(pg_temp.plan('externalId eq "ext-777"'), 'Index Scan using users_workspace_external_id_idx',
	'externalId eq: the (workspace, external_id) index');
SELECT is(pg_temp.hits('externalId eq "ext-777"'), 1::bigint, 'externalId eq: one user');

SELECT matches(pg_temp.plan('userName sw "user-1234"'), 'Bitmap Index Scan on users_user_name_trgm_idx',
	'userName sw: the trigram index on lower(user_name)');
SELECT is(pg_temp.hits('userName sw "user-1234"'), 11::bigint, 'userName sw: user-1234 and user-12340..12349');

SELECT matches(pg_temp.plan('userName co "er-1999"'), 'Bitmap Index Scan on users_user_name_trgm_idx',
	'userName co: the trigram index too');
SELECT is(pg_temp.hits('userName co "ER-1999"'), 11::bigint, 'userName co: case-insensitive');

SELECT matches(pg_temp.plan('emails.value eq "HOME-4242@home.example"'), 'Bitmap Index Scan on users_attributes_ci_idx',
	'emails.value eq: the GIN index on the lower-cased attributes');
SELECT is(pg_temp.hits('emails.value eq "HOME-4242@home.example"'), 1::bigint, 'emails.value eq: one user');

SELECT matches(pg_temp.plan('emails[type eq "work" and value eq "user-4242@big.example"]'),
	'Bitmap Index Scan on users_attributes_ci_idx', 'emails[type eq "work" and value eq ...]: the same GIN index');
SELECT is(pg_temp.hits('emails[type eq "work" and value eq "user-4242@big.example"]'), 1::bigint, 'emails[work and value]: one user');
SELECT is(pg_temp.hits('emails[type eq "home" and value eq "user-4242@big.example"]'), 0::bigint, 'emails[home and work value]: nobody');

SELECT matches(pg_temp.plan('emails[value eq "user-4242@big.example" and type sw "WO"]'),
	'Bitmap Index Scan on users_attributes_ci_idx', 'a value filter mixing eq and sw uses the GIN index for its eq part');

SELECT matches(pg_temp.plan('nickName eq "NICK99"'), 'Bitmap Index Scan on users_attributes_ci_idx',
	'a single-valued attribute in the jsonb: the GIN index');
SELECT is(pg_temp.hits('emails[value eq "user-4242@big.example" and type sw "WO"]'), 1::bigint, 'eq and sw in one element: one user');
SELECT is(pg_temp.hits('nickName eq "NICK99" or userName eq "user-5@big.example"'), 2::bigint, 'or of two indexed conditions');

SELECT doesnt_match(pg_temp.plan('userName eq "user-1@big.example" or emails.value eq "home-2@home.example"'), 'Seq Scan',
	'an or of two index-backed conditions needs no sequential scan');

-- Search (#14): co/sw/ew on names and on the elements of multi-valued
-- attributes, value paths with co, meta.lastModified, groups by member.
-- The planner chooses on its own statistics (20000 users are enough for
-- it to prefer the indexes; enable_seqscan stays on): each selective
-- filter of the corpus runs through an index, with no Seq Scan on users.
SET LOCAL session_replication_role = replica;	-- the trigger would set updated_at to now()
UPDATE scim.users SET updated_at = now() + make_interval(secs => (regexp_replace(user_name, '\D', '', 'g'))::int)
 WHERE workspace = 'filtbig';
RESET session_replication_role;
ANALYZE scim.users;
CREATE TEMP TABLE explain_corpus (f text, idx text, n bigint) ON COMMIT DROP;
INSERT INTO explain_corpus VALUES
	('emails.value co "home-1234@"', 'users_search_text_idx', 1),
	('emails.value sw "HOME-4242@"', 'users_search_text_idx', 1),
	('emails.value ew "-4242@home.example"', 'users_search_text_idx', 1),
	('emails co "me-777@home"', 'users_search_text_idx', 1),
	('emails[type eq "home" and value co "me-4242@"]', 'users_search_text_idx', 1),
	('emails[type eq "work" and value co "me-4242@"]', 'users_search_text_idx', 0),
	('emails[type eq "work" and value ew "er-4242@big.example"] and active eq true', 'users_search_text_idx', 1),
	('emails.value sw "user-1234@"', 'users_search_text_idx', 1),
	('emails.value co "4242@home"', 'users_search_text_idx', 2),
	('emails[value co "@big.example" and type eq "home"]', 'users_search_text_idx', 0),
	('name.givenName co "ven1234"', 'users_search_text_idx', 11),
	('name.givenName sw "given1999"', 'users_search_text_idx', 11),
	('name.familyName eq "Family42"', 'users_search_text_idx', 40),
	('name.familyName ew "ily499"', 'users_search_text_idx', 40),
	('userName co "er-1999" or emails.value co "home-19999"', 'users_search_text_idx', 11),
	('meta.lastModified gt "2100-01-01T00:00:00Z"', 'users_workspace_updated_idx', 0);
SELECT is(array_agg(f ORDER BY f), NULL, 'each selective corpus filter: no Seq Scan on users')
  FROM explain_corpus WHERE pg_temp.plan(f) ~ 'Seq Scan on users';
SELECT is(array_agg(f ORDER BY f), NULL, 'each selective corpus filter: through the index it is meant for')
  FROM explain_corpus WHERE position(idx IN pg_temp.plan(f)) = 0;
SELECT is(array_agg(f ORDER BY f), NULL, 'and each gives the expected number of users')
  FROM explain_corpus WHERE pg_temp.hits(f) <> n;
SELECT is(array_agg(f ORDER BY f), NULL, 'the emails filters look up the element keys (the second column of users_search_text_idx)')
  FROM explain_corpus WHERE f ~ '^emails' AND pg_temp.plan(f) !~ 'Index Cond: [^\n]*element_keys';
SELECT matches(pg_temp.plan('meta.lastModified gt "' || to_char((now() + interval '19990 seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '"'),
	'users_workspace_updated_idx', 'meta.lastModified gt a recent instant: the (workspace, updated_at) index');
SELECT is(pg_temp.hits('meta.lastModified gt "' || to_char((now() + interval '19990 seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '"'),
	11::bigint, 'meta.lastModified gt: the users modified in the last 10 s (11: the instant is cut to the second)');
SET LOCAL scim_provision.search_index = off;
SELECT doesnt_match(pg_temp.plan('emails[type eq "home" and value co "me-4242@"]'), 'users_search_text_idx',
	'scim_provision.search_index = off: the predicate of 0.2.0, which the index cannot serve');
RESET scim_provision.search_index;

-- Group predicates (groups.c) over 5000 groups
INSERT INTO scim.groups (workspace, display_name)
SELECT 'filtbig', format('Team %s', i) FROM generate_series(1, 5000) i;
ANALYZE scim.groups;
CREATE FUNCTION pg_temp.group_plan(f text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
	result text := '';
BEGIN
	FOR line IN EXECUTE format('EXPLAIN (COSTS OFF) SELECT g.id FROM scim.groups g WHERE g.workspace = %L AND (%s)',
							   'filtbig', scim.filter_sql(f, 'Group'))
	LOOP
		result := result || line || E'\n';
	END LOOP;
	RETURN result;
END;
$$;
SELECT matches(pg_temp.group_plan('displayName eq "TEAM 4242"'), 'Index Scan using groups_workspace_display_name_idx',
	'Group displayName eq: the unique (workspace, lower(display_name)) index');
CREATE FUNCTION pg_temp.group_hits(f text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	EXECUTE format('SELECT count(*) FROM scim.groups g WHERE g.workspace = %L AND (%s)', 'filtbig',
				   scim.filter_sql(f, 'Group')) INTO n;
	RETURN n;
END;
$$;
SELECT is(pg_temp.group_hits('displayName eq "TEAM 4242"'), 1::bigint, 'Group displayName eq: one group');

-- groups by member: Group members.value eq, and a User's groups.value eq
INSERT INTO scim.group_members (group_id, member_id)
SELECT g.id, u.id FROM scim.groups g JOIN scim.users u
	ON u.workspace = 'filtbig' AND u.user_name = format('user-%s@big.example', (regexp_replace(g.display_name, '\D', '', 'g'))::int * 3)
 WHERE g.workspace = 'filtbig';
ANALYZE scim.group_members;
SELECT doesnt_match(pg_temp.group_plan('members.value eq "' || (SELECT id FROM scim.users WHERE user_name = 'user-300@big.example') || '"'),
	'Seq Scan on groups', 'Group members.value eq: no Seq Scan on groups');
SELECT is(pg_temp.group_hits('members.value eq "' || (SELECT id FROM scim.users WHERE user_name = 'user-300@big.example') || '"'),
	1::bigint, 'Group members.value eq: the one group of that user');
SELECT doesnt_match(pg_temp.plan('groups.value eq "' || (SELECT id FROM scim.groups WHERE display_name = 'Team 100') || '"'),
	'Seq Scan on users', 'User groups.value eq: no Seq Scan on users');
SELECT is(pg_temp.hits('groups.value eq "' || (SELECT id FROM scim.groups WHERE display_name = 'Team 100') || '"'),
	1::bigint, 'User groups.value eq: the one member');

SELECT * FROM finish();
ROLLBACK;
