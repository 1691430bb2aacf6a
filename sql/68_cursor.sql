-- Cursor pagination (RFC 9865) of Users and Groups, lists and .search:
-- pages, nextCursor, keyset stability under concurrent inserts, sort keys
-- with NULLs in both directions, tamper evidence, expiry, query binding,
-- count limits, /ServiceProviderConfig.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(55);

DO $$
BEGIN
	PERFORM scim.create_workspace('cur_main');
	PERFORM scim.create_workspace('cur_other');
	PERFORM scim.approve_domain('example.com', 'cur_main');
	PERFORM scim.approve_domain('example.com', 'cur_other');
	PERFORM set_config('test.main', 'Bearer ' || scim.create_token('idp', 'cur_main'), false);
	PERFORM set_config('test.other', 'Bearer ' || scim.create_token('idp', 'cur_other'), false);
END;
$$;
CREATE TEMP TABLE resp (status integer, headers jsonb, body jsonb);
CREATE FUNCTION pg_temp.call(method text, path text, query text DEFAULT NULL, body text DEFAULT NULL,
							 auth text DEFAULT current_setting('test.main'))
	RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM resp;
	INSERT INTO resp
	SELECT h.status, h.headers, h.body FROM scim.handle(method, path, query, jsonb_build_object('authorization', auth), body) h;
	RETURN (SELECT r.status FROM resp r);
END;
$$;
CREATE FUNCTION pg_temp.b() RETURNS jsonb LANGUAGE sql AS $$ SELECT body FROM resp $$;
CREATE FUNCTION pg_temp.err(st integer, scim_type text) RETURNS boolean LANGUAGE sql AS $$
	SELECT r.status = st AND r.body ->> 'scimType' IS NOT DISTINCT FROM scim_type FROM resp r $$;
-- Walk every page of a list (GET path?query&cursor=...&count=n, or POST
-- .search with the SearchRequest and its cursor); returns the value of
-- attr of every resource, in order, and the number of pages.  concurrent:
-- SQL run after the first page (a concurrent writer).
CREATE FUNCTION pg_temp.walk(path text, query text, n integer, attr text, concurrent text DEFAULT NULL,
							 OUT vals text[], OUT pages integer)
	LANGUAGE plpgsql AS $$
DECLARE
	cur text := '';
	st integer;
BEGIN
	vals := '{}';
	pages := 0;
	LOOP
		IF path LIKE '%.search' THEN
			st := pg_temp.call('POST', path, NULL, (query::jsonb || jsonb_build_object('cursor', cur, 'count', n))::text);
		ELSE
			st := pg_temp.call('GET', path, concat_ws('&', nullif(query, ''), 'cursor=' || cur, 'count=' || n));
		END IF;
		IF st <> 200 THEN
			RAISE EXCEPTION 'page % of % answered %: %', pages + 1, path, st, pg_temp.b();
		END IF;
		pages := pages + 1;
		vals := vals || ARRAY(SELECT r ->> attr FROM jsonb_array_elements(pg_temp.b() -> 'Resources') WITH ORDINALITY a(r, k) ORDER BY k);
		IF pages = 1 AND concurrent IS NOT NULL THEN
			EXECUTE concurrent;
		END IF;
		EXIT WHEN NOT pg_temp.b() ? 'nextCursor';
		cur := pg_temp.b() ->> 'nextCursor';
		IF pages > 100 THEN
			RAISE EXCEPTION 'too many pages';
		END IF;
	END LOOP;
END;
$$;

-- 11 users: externalId NULL for every third, duplicates among the others
INSERT INTO scim.users (workspace, user_name, external_id)
SELECT 'cur_main', format('user%s@example.com', lpad(i::text, 2, '0')), CASE WHEN i % 3 <> 0 THEN 'x' || (i % 4) END
FROM generate_series(1, 11) i;

-- ---- discovery ------------------------------------------------------------------
SELECT is(pg_temp.call('GET', '/ServiceProviderConfig'), 200, 'GET /ServiceProviderConfig');
SELECT is(pg_temp.b() -> 'pagination', jsonb_build_object('cursor', true, 'index', true, 'defaultPaginationMethod', 'index',
		  'defaultPageSize', current_setting('scim_provision.max_results')::int, 'maxPageSize', current_setting('scim_provision.max_results')::int,
		  'cursorTimeout', current_setting('scim_provision.cursor_timeout')::int), 'pagination is advertised (RFC 9865)');
SELECT is(current_setting('scim_provision.cursor_timeout'), '3600', 'cursorTimeout defaults to an hour');

-- ---- pages ----------------------------------------------------------------------------
SELECT is(pg_temp.call('GET', '/Users', 'cursor=&count=4&attributes=userName'), 200, 'an empty cursor asks for the first page');
SELECT results_eq($$SELECT (body->>'totalResults')::int, (body->>'itemsPerPage')::int, body ? 'nextCursor', body ? 'startIndex', body ? 'previousCursor' FROM resp$$,
	$$VALUES (11, 4, true, false, false)$$, 'totalResults, itemsPerPage, nextCursor; no startIndex');
SELECT ok(pg_temp.b() ->> 'nextCursor' ~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$', 'the cursor is URL-safe (base64url)');
SELECT is((SELECT array_agg(r ->> 'userName' ORDER BY k) FROM jsonb_array_elements(pg_temp.b() -> 'Resources') WITH ORDINALITY a(r, k)),
		  (SELECT array_agg(user_name ORDER BY created_at, id) FROM (SELECT * FROM scim.users WHERE workspace = 'cur_main' ORDER BY created_at, id LIMIT 4) s),
		  'the first page in the default order (creation, then id)');
SELECT results_eq($$SELECT w.pages, cardinality(w.vals), (SELECT count(DISTINCT v) FROM unnest(w.vals) v)::int FROM pg_temp.walk('/Users', 'attributes=userName', 4, 'userName') w$$,
	$$VALUES (3, 11, 11)$$, 'three pages of 4, 4 and 3: every user once');
SELECT is((pg_temp.walk('/Users', 'attributes=userName', 4, 'userName')).vals,
		  (SELECT array_agg(user_name ORDER BY created_at, id) FROM scim.users WHERE workspace = 'cur_main'), 'in the default order');
SELECT is((pg_temp.walk('/Users', 'attributes=userName', 11, 'userName')).pages, 1, 'count = total: one page, no nextCursor');
SELECT is((pg_temp.walk('/Users', 'sortBy=userName&sortOrder=descending&attributes=userName', 3, 'userName')).vals,
		  (SELECT array_agg(user_name ORDER BY lower(user_name) DESC) FROM scim.users WHERE workspace = 'cur_main'), 'sortBy userName descending');
SELECT is((pg_temp.walk('/Users', 'sortBy=externalId&attributes=userName', 2, 'userName')).vals,
		  (SELECT array_agg(user_name ORDER BY external_id NULLS LAST, id) FROM scim.users WHERE workspace = 'cur_main'),
		  'a sort key with NULLs and ties, ascending: NULLs last, ties by id');
SELECT is((pg_temp.walk('/Users', 'sortBy=externalId&sortOrder=descending&attributes=userName', 2, 'userName')).vals,
		  (SELECT array_agg(user_name ORDER BY external_id DESC NULLS FIRST, id) FROM scim.users WHERE workspace = 'cur_main'),
		  'descending: NULLs first');
SELECT is((pg_temp.walk('/Users', 'filter=externalId%20pr&sortBy=meta.lastModified&attributes=userName', 3, 'userName')).vals,
		  (SELECT array_agg(user_name ORDER BY updated_at, id) FROM scim.users WHERE workspace = 'cur_main' AND external_id IS NOT NULL),
		  'with a filter, by a dateTime key');
SELECT is((pg_temp.walk('/Users/.search', '{"filter":"userName sw \"user0\"","attributes":["userName"]}', 4, 'userName')).vals,
		  (SELECT array_agg(user_name ORDER BY created_at, id) FROM scim.users WHERE workspace = 'cur_main' AND user_name LIKE 'user0%'),
		  'POST /Users/.search with cursor');
SELECT is((pg_temp.walk('/.search', '{"sortBy":"userName"}', 5, 'userName')).vals,
		  (SELECT array_agg(user_name ORDER BY lower(user_name)) FROM scim.users WHERE workspace = 'cur_main'), 'POST /.search with cursor');
SELECT is(pg_temp.call('POST', '/Users/.search', body => '{"count":2}'), 200, '.search without cursor keeps index paging');
SELECT ok(pg_temp.b() ? 'startIndex' AND NOT pg_temp.b() ? 'nextCursor', 'startIndex, no nextCursor');
SELECT is(pg_temp.call('GET', '/Users', 'count=2'), 200, 'a list without cursor keeps index paging (the default method)');
SELECT ok(pg_temp.b() ? 'startIndex' AND NOT pg_temp.b() ? 'nextCursor', 'startIndex, no nextCursor');

-- ---- stable under concurrent inserts ---------------------------------------------------------
-- after the first page (by userName), users are added on both sides of the
-- cursor and one already returned is deleted: every user that existed
-- throughout comes exactly once, none is skipped or repeated
SELECT array_agg(user_name ORDER BY lower(user_name)) AS before FROM scim.users WHERE workspace = 'cur_main' \gset
SELECT (pg_temp.walk('/Users', 'sortBy=userName&attributes=userName', 4, 'userName',
	$$INSERT INTO scim.users (workspace, user_name) VALUES ('cur_main', 'aaa@example.com'), ('cur_main', 'user055@example.com'), ('cur_main', 'zzz@example.com');
	  DELETE FROM scim.users WHERE user_name = 'user02@example.com'$$)).vals AS walked \gset
SELECT ok((SELECT bool_and(v = ANY (:'walked'::text[])) FROM unnest(:'before'::text[]) v), 'every user that existed before the walk was returned');
SELECT is((SELECT count(*) FROM unnest(:'walked'::text[]) v), (SELECT count(DISTINCT v) FROM unnest(:'walked'::text[]) v), 'none twice');
SELECT ok(NOT 'aaa@example.com' = ANY (:'walked'::text[]), 'a user inserted before the cursor position is not returned');
SELECT ok('user055@example.com' = ANY (:'walked'::text[]) AND 'zzz@example.com' = ANY (:'walked'::text[]), 'users inserted after it are');
SELECT is(:'walked'::text[], (SELECT array_agg(v ORDER BY lower(v)) FROM unnest(:'walked'::text[]) v), 'still in order');
-- the same walk by startIndex: by OFFSET it repeats a user (why cursors
-- exist); the bookmark page 1 left (69_paging.sql) resumes after its last
-- user instead
SELECT is(pg_temp.call('GET', '/Users', 'sortBy=userName&startIndex=1&count=4&attributes=userName'), 200, 'index paging, page 1');
SELECT (pg_temp.b() -> 'Resources' -> 3 ->> 'userName') AS last1 \gset
INSERT INTO scim.users (workspace, user_name) VALUES ('cur_main', 'aab@example.com');
SET scim_provision.page_bookmarks = off;
SELECT is(pg_temp.call('GET', '/Users', 'sortBy=userName&startIndex=5&count=4&attributes=userName'), 200, 'index paging by OFFSET, page 2 after an insert');
SELECT is(pg_temp.b() -> 'Resources' -> 0 ->> 'userName', :'last1', 'by OFFSET, startIndex repeats the last user of page 1; the cursor walk did not');
RESET scim_provision.page_bookmarks;
SELECT is(pg_temp.call('GET', '/Users', 'sortBy=userName&startIndex=5&count=4&attributes=userName'), 200, 'index paging with the bookmark of page 1');
SELECT ok(lower(pg_temp.b() -> 'Resources' -> 0 ->> 'userName') > lower(:'last1'), 'resumed after the last user of page 1: none repeated');

-- ---- Groups ----------------------------------------------------------------------------------
INSERT INTO scim.groups (workspace, display_name, external_id)
SELECT 'cur_main', 'Group ' || chr(75 - i), CASE WHEN i % 2 = 0 THEN 'g' || i END FROM generate_series(1, 7) i;
SELECT is((pg_temp.walk('/Groups', 'excludedAttributes=members', 3, 'displayName')).vals,
		  (SELECT array_agg(display_name ORDER BY created_at, id) FROM scim.groups WHERE workspace = 'cur_main'), 'GET /Groups by cursor');
SELECT is((pg_temp.walk('/Groups', 'sortBy=displayName&sortOrder=descending', 2, 'displayName')).vals,
		  (SELECT array_agg(display_name ORDER BY lower(display_name) DESC) FROM scim.groups WHERE workspace = 'cur_main'), 'by displayName, descending');
SELECT is((pg_temp.walk('/Groups', 'sortBy=externalId&sortOrder=descending', 2, 'displayName')).vals,
		  (SELECT array_agg(display_name ORDER BY external_id DESC NULLS FIRST, id) FROM scim.groups WHERE workspace = 'cur_main'), 'by a key with NULLs');
SELECT is((pg_temp.walk('/Groups/.search', '{"filter":"displayName sw \"group\""}', 4, 'displayName')).vals,
		  (SELECT array_agg(display_name ORDER BY created_at, id) FROM scim.groups WHERE workspace = 'cur_main'), 'POST /Groups/.search by cursor');

-- ---- refusals -----------------------------------------------------------------------------------
SELECT is(pg_temp.call('GET', '/Users', 'cursor=&count=2&filter=userName%20sw%20%22user%22'), 200, 'a first page');
SELECT (pg_temp.b() ->> 'nextCursor') AS c \gset
SELECT is(pg_temp.call('GET', '/Users', 'cursor=' || :'c' || '&count=2&filter=userName%20sw%20%22user%22'), 200, 'its cursor works with the same query');
SELECT is(pg_temp.call('GET', '/Users', 'cursor=' || :'c' || '&count=5&filter=userName%20sw%20%22user%22'), 200, 'and with another count');
SELECT is(pg_temp.call('GET', '/Users', 'cursor=' || :'c' || '&count=2&filter=userName%20sw%20%22use%22'), 400, 'with another filter: 400');
SELECT ok(pg_temp.err(400, 'invalidCursor'), 'invalidCursor');
SELECT is(pg_temp.call('GET', '/Users', 'cursor=' || :'c' || '&count=2&filter=userName%20sw%20%22user%22&sortBy=userName'), 400, 'with another sortBy: invalidCursor');
SELECT is(pg_temp.call('GET', '/Groups', 'cursor=' || :'c' || '&count=2&filter=userName%20sw%20%22user%22'), 400, 'on another resource type: 400');
SELECT is(pg_temp.call('GET', '/Users', 'cursor=' || :'c' || '&count=2&filter=userName%20sw%20%22user%22', auth => current_setting('test.other')), 400,
		  'in another workspace: 400');
SELECT ok(pg_temp.err(400, 'invalidCursor'), 'invalidCursor');
SELECT is(pg_temp.call('GET', '/Users', 'cursor=' || overlay(:'c' placing (CASE WHEN substr(:'c', 10, 1) = 'A' THEN 'B' ELSE 'A' END) from 10 for 1)
					   || '&count=2&filter=userName%20sw%20%22user%22'), 400, 'a cursor with one character changed: 400');
SELECT ok(pg_temp.err(400, 'invalidCursor'), 'invalidCursor (tamper-evident)');
SELECT is(pg_temp.call('GET', '/Users', 'cursor=bm90IGEgY3Vyc29y&count=2'), 400, 'a made-up cursor: invalidCursor');
-- a genuine cursor whose expiry is past (signed here with the installation's key)
SELECT is(pg_temp.call('GET', '/Users', 'count=2&cursor=' || (SELECT scim._base64url_encode(m) || '.' || scim._base64url_encode(scim._hmac_sha256(s.secret, m))
		FROM scim._cursor_secret s, convert_to(jsonb_build_object('v', 1, 'q', 'x', 'k', 'a', 't', 'text', 'i', gen_random_uuid(),
																	'x', floor(extract(epoch FROM now())) - 1)::text, 'UTF8') m)), 400,
		  'an expired cursor: 400');
SELECT ok(pg_temp.err(400, 'expiredCursor'), 'expiredCursor');
SELECT is(pg_temp.call('GET', '/Users', 'cursor=&count=0'), 400, 'count=0 with a cursor: 400');
SELECT ok(pg_temp.err(400, 'invalidCount'), 'invalidCount');
SELECT is(pg_temp.call('GET', '/Users', 'cursor=&count=x'), 400, 'a count that is no number: invalidCount');
SET LOCAL scim_provision.max_results = 3;
SELECT is(pg_temp.call('GET', '/Users', 'cursor=&count=50'), 200, 'a count above maxPageSize');
SELECT is((pg_temp.b() ->> 'itemsPerPage')::int, 3, 'is lowered to it');
RESET scim_provision.max_results;
SELECT is(pg_temp.call('GET', '/Users', 'cursor=&startIndex=2'), 400, 'cursor and startIndex together: 400');
SELECT ok(NOT has_table_privilege('scim_reader', 'scim._cursor_secret', 'SELECT') AND NOT has_table_privilege('scim_admin', 'scim._cursor_secret', 'SELECT'),
		  'the cursor key is readable by nobody but the owner');

SELECT * FROM finish();
ROLLBACK;
