-- Deep paging (#14): startIndex pages resume from the bookmark the previous
-- page left (scim.page_bookmarks), with the answers of OFFSET when nothing
-- changes between pages and no user skipped or repeated when users are
-- created or deleted; totalResults of unfiltered lists from scim.user_counts,
-- exact through inserts and deletes, folded when they pile up.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(22);

DO $$
BEGIN
	PERFORM scim.create_workspace('page_main');
	PERFORM scim.create_workspace('page_other');
	PERFORM scim.approve_domain('example.com', 'page_main');
	PERFORM scim.approve_domain('example.com', 'page_other');
	PERFORM set_config('test.auth', 'Bearer ' || scim.create_token('idp', 'page_main'), false);
END;
$$;
-- created_at ties and distinct values both occur (the users trigger would
-- set created_at to now(): replica mode; the count triggers run ALWAYS)
SET session_replication_role = replica;
INSERT INTO scim.users (workspace, user_name, user_type, created_at)
SELECT 'page_main', format('p%s@example.com', i), 'Regular', now() - make_interval(secs => 100 - i / 3) FROM generate_series(1, 95) i;
RESET session_replication_role;

CREATE FUNCTION pg_temp.page(query text) RETURNS jsonb LANGUAGE sql AS $$
	SELECT h.body FROM scim.handle('GET', '/Users', query, jsonb_build_object('authorization', current_setting('test.auth'))) h
$$;
CREATE FUNCTION pg_temp.names(body jsonb) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(r ->> 'userName' ORDER BY n), '{}') FROM jsonb_array_elements(body -> 'Resources') WITH ORDINALITY AS x(r, n)
$$;
-- every page of a list, count n: the userNames in order, and the bodies' other members
CREATE FUNCTION pg_temp.walk(query text, n integer, between_pages text DEFAULT NULL) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
	start_i integer := 1;
	body jsonb;
	acc text[] := '{}';
BEGIN
	LOOP
		body := pg_temp.page(concat_ws('&', nullif(query, ''), 'startIndex=' || start_i, 'count=' || n));
		acc := acc || pg_temp.names(body);
		EXIT WHEN (body ->> 'itemsPerPage')::int < n OR start_i > 1000;
		start_i := start_i + n;
		IF between_pages IS NOT NULL AND start_i = 1 + 2 * n THEN
			EXECUTE between_pages;
		END IF;
	END LOOP;
	RETURN acc;
END;
$$;

-- ---- the same answers as OFFSET ---------------------------------------------------------
SET scim_provision.page_bookmarks = off;
SELECT pg_temp.walk('attributes=userName', 10) AS by_offset \gset
SELECT pg_temp.walk('sortBy=userName&sortOrder=descending&attributes=userName', 7) AS by_offset_sorted \gset
SELECT pg_temp.walk('filter=userName%20sw%20%22p1%22&attributes=userName', 3) AS by_offset_filtered \gset
SELECT is(count(*), 0::bigint, 'page_bookmarks off: no bookmark is left') FROM scim.page_bookmarks WHERE workspace = 'page_main';
RESET scim_provision.page_bookmarks;
SELECT is(cardinality(:'by_offset'::text[]), 95, 'OFFSET paging reads every user');
SELECT is(pg_temp.walk('attributes=userName', 10), :'by_offset'::text[], 'bookmarked paging = OFFSET paging (default order, created_at ties)');
SELECT cmp_ok(count(*), '>=', 9::bigint, 'each full page left a bookmark for the next') FROM scim.page_bookmarks WHERE workspace = 'page_main';
SELECT is(pg_temp.walk('sortBy=userName&sortOrder=descending&attributes=userName', 7), :'by_offset_sorted'::text[],
	'= OFFSET with sortBy and sortOrder');
SELECT is(pg_temp.walk('filter=userName%20sw%20%22p1%22&attributes=userName', 3), :'by_offset_filtered'::text[],
	'= OFFSET with a filter');
SELECT is(pg_temp.page('startIndex=41&count=10&attributes=userName') -> 'totalResults', '95', 'a bookmarked page: totalResults');
SELECT is(pg_temp.page('startIndex=41&count=10&attributes=userName') -> 'startIndex', '41', 'its startIndex');
SELECT ok(NOT pg_temp.page('startIndex=41&count=10&attributes=userName') ? 'nextCursor', 'and no nextCursor (startIndex paging)');
SELECT is(pg_temp.names(pg_temp.page('startIndex=41&count=5&attributes=userName')), (:'by_offset'::text[])[41:45],
	'a bookmark serves another count at the same startIndex');
SELECT is(pg_temp.names(pg_temp.page('startIndex=46&count=10&attributes=userName')), (:'by_offset'::text[])[46:55],
	'a startIndex without bookmark: OFFSET');
-- a bookmark of another query is not used: its hash differs
SELECT is(pg_temp.names(pg_temp.page('startIndex=41&count=10&attributes=userName&sortBy=userName')),
	(SELECT array_agg(v ORDER BY lower(v)) FROM unnest(:'by_offset'::text[]) v)[41:50], 'another query: its own order');

-- ---- users created or deleted between pages ---------------------------------------------
-- after page 2, a user before the position is deleted and one is created
-- before it (an old created_at), one at the end: the pages that follow
-- start after the last user served; every user that existed throughout is
-- read exactly once (OFFSET would skip one user here)
SELECT pg_temp.walk('attributes=userName', 10,
	$$DELETE FROM scim.users WHERE user_name = 'p5@example.com';
	  SET session_replication_role = replica;
	  INSERT INTO scim.users (workspace, user_name, user_type, created_at) VALUES ('page_main', 'early@example.com', 'Regular', now() - interval '1 day');
	  RESET session_replication_role;
	  INSERT INTO scim.users (workspace, user_name) VALUES ('page_main', 'late@example.com')$$) AS walked \gset
SELECT is((SELECT count(*) FROM unnest(:'by_offset'::text[]) v WHERE v <> 'p5@example.com' AND NOT v = ANY (:'walked'::text[])), 0::bigint,
	'no user that existed throughout is skipped');
SELECT is(cardinality(:'walked'::text[]), (SELECT count(DISTINCT v)::int FROM unnest(:'walked'::text[]) v), 'none is repeated');
SELECT ok('late@example.com' = ANY (:'walked'::text[]) AND NOT 'early@example.com' = ANY (:'walked'::text[]),
	'a user created after the position is read, one created before it is not');
SELECT is(pg_temp.walk('attributes=userName', 10), (SELECT array_agg(user_name ORDER BY created_at, id) FROM scim.users WHERE workspace = 'page_main'),
	'a new walk: the current list');

-- ---- totalResults of unfiltered lists ---------------------------------------------------
INSERT INTO scim.users (workspace, user_name) SELECT 'page_other', format('o%s@example.com', i) FROM generate_series(1, 80) i;
DELETE FROM scim.users WHERE workspace = 'page_other' AND user_name LIKE 'o1%';
DELETE FROM scim.users WHERE user_name IN ('p1@example.com', 'p2@example.com');
SELECT is((SELECT sum(n) FROM scim.user_counts WHERE workspace = w), (SELECT count(*) FROM scim.users WHERE workspace = w)::numeric,
	'user_counts = count(*) after inserts and deletes: ' || w)
  FROM unnest(ARRAY['page_main', 'page_other']) w;
SELECT is(pg_temp.page('count=1') -> 'totalResults', to_jsonb((SELECT count(*) FROM scim.users WHERE workspace = 'page_main')),
	'totalResults of a full first page comes from the counts');
-- many deltas are folded into one row, the sum unchanged
DO $$ BEGIN FOR i IN 1..70 LOOP INSERT INTO scim.users (workspace, user_name) VALUES ('page_other', format('x%s@example.com', i)); END LOOP; END $$;
SELECT is(scim._count_users('page_other', 'true'), (SELECT count(*) FROM scim.users WHERE workspace = 'page_other'), 'a count over many deltas');
SELECT is((SELECT count(*) FROM scim.user_counts WHERE workspace = 'page_other'), 1::bigint, 'folded into one delta');
SELECT is(scim._count_users('page_other', 'true'), (SELECT count(*) FROM scim.users WHERE workspace = 'page_other'), 'the same sum');

SELECT * FROM finish();
ROLLBACK;
