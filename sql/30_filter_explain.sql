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
SELECT plan(20);

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

SELECT * FROM finish();
ROLLBACK;
