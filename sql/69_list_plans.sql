-- Filtered lists (#14, scim._list_users): up to 50,000 matches are read once
-- (their sort keys give the total, the page by a top-N sort, its rows by
-- primary key); more matches than that fall back to the walk of the sort
-- order and a count.  Both give the answers of the plain query (ORDER BY
-- the sort key and id, OFFSET, LIMIT; count(*)), also sorted by another
-- attribute, descending, on the last page, and past the end.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(11);

DO $$
BEGIN
	PERFORM scim.create_workspace('plans');
	PERFORM scim.approve_domain('example.com', 'plans');
	PERFORM set_config('test.auth', 'Bearer ' || scim.create_token('idp', 'plans'), false);
END;
$$;
-- 50,020 users, 15 of them inactive; created_at ties (replica mode: the
-- users trigger would set it to now())
SET session_replication_role = replica;
INSERT INTO scim.users (workspace, user_name, user_type, active, title, created_at)
SELECT 'plans', format('q%s@example.com', i), 'Regular', i % 3335 <> 7, 'Title ' || (i % 97),
	   now() - make_interval(secs => 60000 - i / 2)
  FROM generate_series(1, 50020) i;
RESET session_replication_role;
ANALYZE scim.users;

CREATE FUNCTION pg_temp.page(query text) RETURNS jsonb LANGUAGE sql AS $$
	SELECT h.body FROM scim.handle('GET', '/Users', query, jsonb_build_object('authorization', current_setting('test.auth'))) h
$$;
-- totalResults and the userNames of a page, as the list answers and as the plain query does
CREATE FUNCTION pg_temp.listed(query text) RETURNS text LANGUAGE sql AS $$
	SELECT (b ->> 'totalResults') || ' ' || coalesce((SELECT string_agg(r ->> 'userName', ',' ORDER BY n)
														FROM jsonb_array_elements(b -> 'Resources') WITH ORDINALITY AS x(r, n)), '')
	  FROM pg_temp.page(query) b
$$;
CREATE FUNCTION pg_temp.plain(pred text, sort_key text, dir text, start_index integer, n integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	total bigint;
	names text;
BEGIN
	EXECUTE format('SELECT count(*) FROM scim.users u WHERE u.workspace = %L AND (%s)', 'plans', pred) INTO total;
	EXECUTE format('SELECT string_agg(user_name, '','' ORDER BY k %5$s, id) FROM (SELECT u.user_name, %3$s AS k, u.id FROM scim.users u
					 WHERE u.workspace = %1$L AND (%4$s) ORDER BY k %5$s, u.id LIMIT %6$s OFFSET %7$s) s',
				   'plans', '', sort_key, pred, dir, n, start_index - 1) INTO names;
	RETURN total || ' ' || coalesce(names, '');
END;
$$;

SELECT is(pg_temp.listed('filter=active%20eq%20false&count=10'), pg_temp.plain('NOT u.active', 'u.created_at', 'ASC', 1, 10),
	'few matches (read once): the plain query''s total and page');
SELECT is(pg_temp.listed('filter=active%20eq%20false&count=4&startIndex=13'), pg_temp.plain('NOT u.active', 'u.created_at', 'ASC', 13, 4),
	'few matches: the last page');
SELECT is(pg_temp.listed('filter=active%20eq%20false&count=4&startIndex=40'), pg_temp.plain('NOT u.active', 'u.created_at', 'ASC', 40, 4),
	'few matches: past the end, the total and no resources');
SELECT is(pg_temp.listed('filter=title%20sw%20%22title%209%22&sortBy=userName&sortOrder=descending&count=7&startIndex=30'),
		  pg_temp.plain('lower(u.title) LIKE ''title 9%''', 'lower(u.user_name)', 'DESC', 30, 7),
	'some thousands of matches (read once), sorted by userName descending');
SELECT is(pg_temp.listed('filter=active%20eq%20true&count=10&startIndex=50001'), pg_temp.plain('u.active', 'u.created_at', 'ASC', 50001, 10),
	'more matches than the guard (walk and count): the plain query''s last page');
SELECT is(pg_temp.listed('filter=active%20eq%20true&count=5'), pg_temp.plain('u.active', 'u.created_at', 'ASC', 1, 5),
	'more matches than the guard: the first page');
SELECT is(pg_temp.listed('filter=active%20eq%20true&sortBy=title&count=5&startIndex=25000'), pg_temp.plain('u.active', 'u.title', 'ASC', 25000, 5),
	'more matches than the guard, sorted by title (ties broken by id)');
SELECT is((pg_temp.page('filter=active%20eq%20true&count=0') ->> 'totalResults')::int, 50005, 'count=0: the total alone');
SELECT is((pg_temp.page('filter=userName%20sw%20%22q5002%22&count=3') -> 'Resources') -> 0 ->> 'userName', 'q5002@example.com',
	'a page rendered from the rows fetched by id');

-- the IdP lookups served from an index and the matcher: emails.value eq
-- (OneLogin), emails[type eq "work" and value eq] (Entra ID), userName eq
-- with more conditions; the same answers as the pushdown
UPDATE scim.users SET attributes = jsonb_build_object('emails', jsonb_build_array(
		jsonb_build_object('value', 'Shared@Example.com', 'type', CASE WHEN user_name < 'q20' THEN 'work' ELSE 'home' END),
		jsonb_build_object('value', user_name, 'type', 'work')))
 WHERE workspace = 'plans' AND user_name IN ('q17@example.com', 'q18@example.com', 'q25@example.com', 'q3342@example.com');
CREATE TEMP TABLE lookups (f text, q text) ON COMMIT DROP;
INSERT INTO lookups VALUES
	('emails.value eq "shared@example.COM"', 'count=10'), ('emails.value eq "shared@example.COM"', 'count=2&startIndex=3'),
	('emails[type eq "work" and value eq "SHARED@example.com"]', 'count=10'), ('emails[value eq "shared@example.com" and type eq "home"]', 'count=10'),
	('emails[type eq "work" and value eq "q3342@example.com"]', 'count=10'), ('emails[value eq "shared@example.com" and primary eq true]', 'count=10'),
	('emails.value eq "nobody@example.com"', 'count=10'),
	('userName eq "Q3342@example.com" and active eq false', 'count=10'), ('userName eq "q3342@example.com" and active eq true', 'count=10'),
	('active eq false and userName eq "q3342@example.com"', 'count=10'), ('userName eq "q17@example.com" and (title eq "title 17" or active eq false)', 'count=10'),
	('userName eq "q17@example.com" and emails[type eq "home" and value pr]', 'count=10');
SELECT is(array_agg(f || ' / ' || q ORDER BY f, q), NULL, 'each lookup: the pushdown''s answer')
  FROM lookups
 WHERE pg_temp.listed('filter=' || replace(replace(replace(replace(f, ' ', '%20'), '"', '%22'), '[', '%5B'), ']', '%5D') || '&' || q)
	   IS DISTINCT FROM pg_temp.plain(scim.filter_sql(f), 'u.created_at', 'ASC',
									 coalesce(substring(q FROM 'startIndex=(\d+)')::int, 1), substring(q FROM 'count=(\d+)')::int);
SELECT cmp_ok(count(DISTINCT pg_temp.listed('filter=' || replace(replace(replace(replace(f, ' ', '%20'), '"', '%22'), '[', '%5B'), ']', '%5D') || '&' || q))::int,
		  '>=', 7, 'and the lookups tell users apart (at least 7 distinct answers)')
  FROM lookups;

SELECT * FROM finish();
ROLLBACK;
