/* scim_provision--0.2.0--0.3.0.sql: from 0.2.0 to 0.3.0 (never edited once released) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION scim_provision UPDATE TO '0.3.0'" to load this file. \quit

-- One section per concern of 0.3.0, in the order they apply.


-- ===== Hardening (#15 security): grants, trigger functions, audit =========

-- (end of hardening: security)


-- ===== Hardening (#15 input): limits before cost, nesting, body size =======

-- (end of hardening: input)


-- ===== Hardening (#15 contract): text bodies, column defaults, races =======

-- (end of hardening: contract)


-- ===== System Log lifecycle (#12): partitions, retention, operator's view ==

-- (end of System Log lifecycle)


-- ===== Search (#14): multi-valued attributes indexed, deep paging ==========

-- co/sw/ew (and eq on name columns) on names and the elements of emails,
-- phoneNumbers, addresses: a trigram index over scim.search_text(...)
-- (src/sql/30_filter.sql).  CREATE INDEX reads every existing user, so the
-- index covers them from the start (no separate backfill).
CREATE FUNCTION scim.search_text(attributes jsonb, given_name text, family_name text, display_name text)
	RETURNS text
	AS 'MODULE_PATHNAME', 'scim_search_text'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION scim.search_text(jsonb, text, text, text) IS
	'The lower-cased searchable text of a User (names, nickName, values of emails/phoneNumbers/addresses), one per line: the expression of users_search_text_idx';
-- as 70_postgrest.sql leaves every function of scim in a fresh install
REVOKE ALL ON FUNCTION scim.search_text(jsonb, text, text, text) FROM scim_client;

DO $$
DECLARE
	trgm_schema name;
BEGIN
	SELECT n.nspname INTO trgm_schema
	  FROM pg_catalog.pg_extension e
	  JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
	 WHERE e.extname = 'pg_trgm';
	EXECUTE pg_catalog.format(
		'CREATE INDEX users_search_text_idx ON scim.users USING gin '
		'(scim.search_text(attributes, given_name, family_name, display_name) %I.gin_trgm_ops)',
		trgm_schema);
END;
$$;

CREATE INDEX users_workspace_updated_idx ON scim.users (workspace, updated_at);

-- Deep paging (src/sql/69_paging.sql): bookmarks for startIndex paging and
-- user counts for totalResults, then _list_users that uses both (now
-- VOLATILE: it writes bookmarks).
CREATE UNLOGGED TABLE scim.page_bookmarks (
	workspace			text NOT NULL,
	query_hash			text NOT NULL,
	next_index			bigint NOT NULL,
	cursor				text NOT NULL,
	created_at			timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace, query_hash, next_index)
);
CREATE INDEX page_bookmarks_created_idx ON scim.page_bookmarks (created_at);
COMMENT ON TABLE scim.page_bookmarks IS
	'startIndex paging: where the page at next_index starts (a cursor on the last user of the page before it)';
REVOKE ALL ON scim.page_bookmarks FROM PUBLIC;

-- The query a bookmark or cursor belongs to: the hash _list_cursor checks.
CREATE FUNCTION scim._page_query_hash(resource_type text, ws text, filter text, sort_by text, dir text)
	RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT md5(concat_ws(E'\x1f', resource_type, ws, coalesce(nullif(btrim(filter), ''), ''),
						 coalesce(nullif(btrim(sort_by), ''), ''),
						 CASE dir WHEN 'DESC' THEN 'descending' ELSE 'ascending' END));
$$;

-- Leave (or renew) a bookmark; bookmarks older than the cursors' lifetime go.
CREATE FUNCTION scim._page_bookmark(ws text, q_hash text, next_at bigint, next_cursor text)
	RETURNS void
	LANGUAGE sql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
	INSERT INTO scim.page_bookmarks AS b (workspace, query_hash, next_index, cursor)
	VALUES (ws, q_hash, next_at, next_cursor)
	ON CONFLICT (workspace, query_hash, next_index)
	DO UPDATE SET cursor = excluded.cursor, created_at = excluded.created_at;
	DELETE FROM scim.page_bookmarks b
	 WHERE b.created_at < now() - make_interval(secs => current_setting('scim_provision.cursor_timeout')::integer);
$$;

-- No index: every POST writes here, and scim._count_users folds the deltas
-- of a workspace into one row, so a scan stays short.
CREATE TABLE scim.user_counts (
	workspace			text NOT NULL,
	n					bigint NOT NULL
);
COMMENT ON TABLE scim.user_counts IS
	'Users per workspace as insert-only deltas (sum(n)); written by the users count triggers';
REVOKE ALL ON scim.user_counts FROM PUBLIC;

-- One delta per INSERT / DELETE statement and workspace, from the
-- statement's transition table (C: src/users_count.c).  Neither SECURITY
-- DEFINER nor a search_path: it names scim.user_counts by namespace and
-- writes it with a heap insert, which no privilege of the writer governs.
CREATE FUNCTION scim._users_count_delta() RETURNS trigger
	AS 'MODULE_PATHNAME', 'scim_users_count_delta'
	LANGUAGE C;
COMMENT ON FUNCTION scim._users_count_delta() IS 'Trigger: one scim.user_counts delta per INSERT/DELETE statement and workspace';
-- a user moved to another workspace (also a workspace renamed: ON UPDATE CASCADE)
CREATE FUNCTION scim._users_count_move() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	INSERT INTO scim.user_counts (workspace, n) VALUES (OLD.workspace, -1), (NEW.workspace, 1);
	RETURN NULL;
END;
$$;
CREATE FUNCTION scim._users_count_truncate() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	DELETE FROM scim.user_counts;
	RETURN NULL;
END;
$$;

CREATE TRIGGER users_count_insert AFTER INSERT ON scim.users
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION scim._users_count_delta();
CREATE TRIGGER users_count_delete AFTER DELETE ON scim.users
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION scim._users_count_delta();
CREATE TRIGGER users_count_move AFTER UPDATE OF workspace ON scim.users
	FOR EACH ROW WHEN (OLD.workspace IS DISTINCT FROM NEW.workspace) EXECUTE FUNCTION scim._users_count_move();
CREATE TRIGGER users_count_truncate AFTER TRUNCATE ON scim.users
	FOR EACH STATEMENT EXECUTE FUNCTION scim._users_count_truncate();
-- also for loads under session_replication_role = replica
ALTER TABLE scim.users ENABLE ALWAYS TRIGGER users_count_insert;
ALTER TABLE scim.users ENABLE ALWAYS TRIGGER users_count_delete;
ALTER TABLE scim.users ENABLE ALWAYS TRIGGER users_count_move;
ALTER TABLE scim.users ENABLE ALWAYS TRIGGER users_count_truncate;

-- The number of users of a workspace matching a predicate of filter_sql;
-- unfiltered ('true'): the sum of the deltas, folded when there are many.
CREATE FUNCTION scim._count_users(ws text, pred text) RETURNS bigint
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	total		bigint;
	deltas		bigint;
BEGIN
	IF pred IS DISTINCT FROM 'true' THEN
		EXECUTE format('SELECT count(*) FROM scim.users u WHERE u.workspace OPERATOR(pg_catalog.=) $1 AND (%s)', pred)
			INTO total USING ws;
		RETURN total;
	END IF;
	SELECT coalesce(sum(c.n), 0), count(*) INTO total, deltas FROM scim.user_counts c WHERE c.workspace = ws;
	IF deltas > 64 AND current_setting('transaction_isolation') = 'read committed'
	   AND NOT current_setting('transaction_read_only')::boolean THEN
		WITH gone AS (
			DELETE FROM scim.user_counts c
			 WHERE c.ctid = ANY (ARRAY(SELECT c2.ctid FROM scim.user_counts c2 WHERE c2.workspace = ws
									   FOR UPDATE SKIP LOCKED))
			RETURNING c.n)
		INSERT INTO scim.user_counts (workspace, n) SELECT ws, sum(g.n) FROM gone g HAVING count(*) > 0;
	END IF;
	RETURN total;
END;
$$;

-- Rebuild the counts from scim.users (after a load with triggers disabled).
CREATE FUNCTION scim.recount_users() RETURNS void
	LANGUAGE sql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
	LOCK TABLE scim.users IN SHARE MODE;
	DELETE FROM scim.user_counts;
	INSERT INTO scim.user_counts (workspace, n) SELECT u.workspace, count(*) FROM scim.users u GROUP BY u.workspace;
$$;
COMMENT ON FUNCTION scim.recount_users() IS
	'Rebuild scim.user_counts (totalResults of unfiltered lists) from scim.users, e.g. after a restore with triggers disabled';

REVOKE ALL ON FUNCTION scim._page_query_hash(text, text, text, text, text),
	scim._page_bookmark(text, text, bigint, text),
	scim._users_count_delta(), scim._users_count_move(),
	scim._users_count_truncate(), scim._count_users(text, text), scim.recount_users() FROM PUBLIC;

-- the counts of the users that exist now
INSERT INTO scim.user_counts (workspace, n) SELECT u.workspace, count(*) FROM scim.users u GROUP BY u.workspace;

-- A ListResponse of the workspace's users (RFC 7644 sections 3.4.2, 3.4.3):
-- filter through scim.filter_sql, sortBy through scim.sort_expression
-- (both whitelist attribute names through the registry and quote values),
-- 1-based startIndex (below 1 = 1), count capped by
-- scim_provision.max_results (negative = 0; 0 = totalResults only), ties
-- broken on id, projection through scim.user_resource.
--
-- Deep paging (doc/SEARCH.md): a page that may have a next one leaves a
-- bookmark (scim.page_bookmarks, 69_page_bookmarks.sql): the startIndex
-- that follows it and a cursor (68_cursor.sql) on its last user.  A request
-- at that startIndex for the same filter, sortBy and sortOrder resumes from
-- the cursor through scim._list_cursor's keyset instead of skipping
-- startIndex - 1 rows; without a bookmark (first visit, expired, another
-- query) it pages by OFFSET as before.  VOLATILE: it writes bookmarks.
CREATE OR REPLACE FUNCTION scim._list_users(ws text, filter text, start_index text, count text, sort_by text,
								 sort_order text, attrs text, excluded text,
								 OUT body jsonb, OUT total bigint)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	pred		text := 'true';
	sort_expr	text := 'u.created_at';
	dir			text := 'ASC';
	start_n		bigint;
	count_n		bigint;
	max_n		bigint := current_setting('scim_provision.max_results')::bigint;
	resources	jsonb;
	page_n		bigint;
	ast			jsonb;
	bookmarks	boolean := coalesce(current_setting('scim_provision.page_bookmarks', true), 'on') <> 'off';
	q_hash		text;
	mark		text;
	resumed		jsonb;
	last_k		text;
	last_t		text;
	last_id		uuid;
BEGIN
	IF filter IS NOT NULL AND btrim(filter) <> '' THEN
		pred := scim.filter_sql(filter, 'User');
	END IF;
	IF sort_by IS NOT NULL AND btrim(sort_by) <> '' THEN
		sort_expr := scim.sort_expression(btrim(sort_by), 'User');
	END IF;
	dir := scim._sort_direction(sort_order);
	start_n := greatest(scim._int_param(start_index, 'startIndex', 1), 1);
	count_n := least(greatest(scim._int_param(count, 'count', max_n), 0), max_n);

	IF count_n = 0 THEN
		total := scim._count_users(ws, pred);
		body := jsonb_build_object(
			'schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:ListResponse'),
			'totalResults', total, 'startIndex', start_n, 'itemsPerPage', 0);
		RETURN;
	END IF;

	-- The page first; a page that is not full (or an empty first page) tells
	-- the total, so the count runs only when it cannot.
	--
	-- Fast path: the lookups every IdP sends before it creates or updates
	-- (userName eq "..." and externalId eq "...", default order) run as
	-- static SQL whose plans PL/pgSQL keeps, instead of planning the
	-- filter's SQL anew; the conditions are exactly those scim.filter_sql
	-- produces for them (userName case-insensitive, externalId caseExact).
	IF filter IS NOT NULL AND btrim(filter) <> '' AND (sort_by IS NULL OR btrim(sort_by) = '') AND dir = 'ASC' THEN
		ast := scim.parse_filter(filter);
		IF ast ->> 'op' = 'eq' AND jsonb_typeof(ast -> 'value') = 'string'
		   AND ast - 'op' - 'attr' - 'value' - 'schema' = '{}'::jsonb
		   AND lower(coalesce(ast ->> 'schema', 'urn:ietf:params:scim:schemas:core:2.0:User')) = 'urn:ietf:params:scim:schemas:core:2.0:user' THEN
			IF lower(ast ->> 'attr') = 'username' THEN
				SELECT coalesce(jsonb_agg(scim.user_resource(p.u, attrs, excluded) ORDER BY p.k1, p.k2), '[]'::jsonb), count(*)
				INTO resources, page_n
				FROM (SELECT u, u.created_at AS k1, u.id AS k2
					  FROM scim.users u
					  WHERE u.workspace = ws AND lower(u.user_name) = lower(ast ->> 'value')
					  ORDER BY k1, k2
					  LIMIT count_n OFFSET start_n - 1) p;
			ELSIF lower(ast ->> 'attr') = 'externalid' THEN
				SELECT coalesce(jsonb_agg(scim.user_resource(p.u, attrs, excluded) ORDER BY p.k1, p.k2), '[]'::jsonb), count(*)
				INTO resources, page_n
				FROM (SELECT u, u.created_at AS k1, u.id AS k2
					  FROM scim.users u
					  WHERE u.workspace = ws AND u.external_id = ast ->> 'value'
					  ORDER BY k1, k2
					  LIMIT count_n OFFSET start_n - 1) p;
			END IF;
			bookmarks := false;
		END IF;
	END IF;

	IF page_n IS NULL AND bookmarks THEN
		q_hash := scim._page_query_hash('User', ws, filter, sort_by, dir);
		IF start_n > 1 THEN
			SELECT b.cursor INTO mark FROM scim.page_bookmarks b
			 WHERE b.workspace = ws AND b.query_hash = q_hash AND b.next_index = start_n;
		END IF;
		IF mark IS NOT NULL THEN
			BEGIN
				SELECT l.body, l.total INTO resumed, total
				FROM scim._list_cursor('User', ws, jsonb_build_object(
						'filter', filter, 'sortBy', sort_by,
						'sortOrder', CASE dir WHEN 'DESC' THEN 'descending' ELSE 'ascending' END,
						'count', count_n, 'cursor', mark, 'attributes', attrs, 'excludedAttributes', excluded)) l;
			EXCEPTION WHEN invalid_parameter_value THEN
				resumed := NULL;	-- an expired cursor: page by OFFSET
			END;
			IF resumed IS NOT NULL THEN
				IF resumed ? 'nextCursor' THEN
					PERFORM scim._page_bookmark(ws, q_hash, start_n + (resumed ->> 'itemsPerPage')::bigint,
												resumed ->> 'nextCursor');
				END IF;
				body := jsonb_build_object(
					'schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:ListResponse'),
					'totalResults', total, 'startIndex', start_n,
					'itemsPerPage', resumed -> 'itemsPerPage', 'Resources', resumed -> 'Resources');
				RETURN;
			END IF;
		END IF;
	END IF;

	IF page_n IS NULL THEN
		EXECUTE format(
			$q$SELECT coalesce(pg_catalog.jsonb_agg(scim.user_resource(p.u, $4, $5) ORDER BY p.k1 %2$s, p.k2), '[]'::jsonb),
					  count(*),
					  scim._cursor_key_text((pg_catalog.array_agg(p.k1 ORDER BY p.k1 %2$s, p.k2))[count(*)]),
					  (pg_catalog.array_agg(pg_catalog.pg_typeof(p.k1)::text))[1],
					  (pg_catalog.array_agg(p.k2 ORDER BY p.k1 %2$s, p.k2))[count(*)]
			   FROM (SELECT u, %1$s AS k1, u.id AS k2
					 FROM scim.users u
					 WHERE u.workspace OPERATOR(pg_catalog.=) $1 AND (%3$s)
					 ORDER BY k1 %2$s, k2
					 LIMIT $2 OFFSET $3) p$q$,
			sort_expr, dir, pred)
			INTO resources, page_n, last_k, last_t, last_id
			USING ws, count_n, start_n - 1, attrs, excluded;
	END IF;
	IF page_n < count_n AND (page_n > 0 OR start_n = 1) THEN
		total := start_n - 1 + page_n;
	ELSE
		total := scim._count_users(ws, pred);
	END IF;
	-- more users follow: leave a bookmark for the next page
	IF bookmarks AND last_id IS NOT NULL AND start_n - 1 + page_n < total
	   AND last_t IN ('text', 'uuid', 'timestamp with time zone', 'bigint', 'integer', 'boolean', 'numeric') THEN
		PERFORM scim._page_bookmark(ws, q_hash, start_n + page_n, scim.cursor_encode(jsonb_build_object(
			'v', 1, 'q', q_hash, 'k', last_k, 't', last_t, 'i', last_id)));
	END IF;
	body := jsonb_build_object(
		'schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:ListResponse'),
		'totalResults', total, 'startIndex', start_n,
		'itemsPerPage', jsonb_array_length(resources), 'Resources', resources);
END;
$$;

-- the cursor lists count unfiltered Users through scim._count_users too
-- A cursor-paged ListResponse of Users or Groups (see the header).  params:
-- filter, sortBy, sortOrder, count, cursor, attributes, excludedAttributes.
CREATE OR REPLACE FUNCTION scim._list_cursor(resource_type text, ws text, params jsonb, OUT body jsonb, OUT total bigint)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	is_user		boolean := resource_type = 'User';
	tbl			text := CASE WHEN resource_type = 'User' THEN 'scim.users u' ELSE 'scim.groups g' END;
	alias		text := CASE WHEN resource_type = 'User' THEN 'u' ELSE 'g' END;
	filter		text := nullif(btrim(params ->> 'filter'), '');
	sort_by		text := nullif(btrim(params ->> 'sortBy'), '');
	sort_order	text := lower(coalesce(nullif(btrim(params ->> 'sortOrder'), ''), 'ascending'));
	cur			text := btrim(coalesce(params ->> 'cursor', ''));
	pred		text := 'true';
	sort_expr	text;
	render		text;
	descending	boolean;
	max_n		bigint := current_setting('scim_provision.max_results')::bigint;
	count_n		bigint;
	query_hash	text;
	pos			jsonb;
	after		text := 'true';
	k			text;
	resources	jsonb;
	rows_n		integer;
	last_k		text;
	last_t		text;
	last_id		uuid;
BEGIN
	IF resource_type NOT IN ('User', 'Group') THEN
		RAISE EXCEPTION 'unknown resource type "%"', resource_type USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF nullif(btrim(params ->> 'startIndex'), '') IS NOT NULL THEN
		RAISE EXCEPTION 'invalidValue: use either startIndex or cursor, not both'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF filter IS NOT NULL THEN
		pred := CASE WHEN is_user THEN scim.filter_sql(filter, 'User') ELSE scim._group_filter_sql(filter) END;
	END IF;
	IF sort_by IS NOT NULL THEN
		sort_expr := CASE WHEN is_user THEN scim.sort_expression(sort_by, 'User') ELSE scim._group_sort_expression(sort_by) END;
	ELSE
		sort_expr := alias || '.created_at';
	END IF;
	IF sort_order NOT IN ('ascending', 'descending') THEN
		RAISE EXCEPTION 'invalidValue: sortOrder must be "ascending" or "descending", not "%"', left(params ->> 'sortOrder', 40)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	descending := sort_order = 'descending';
	IF nullif(btrim(params ->> 'count'), '') IS NULL THEN
		count_n := max_n;
	ELSIF btrim(params ->> 'count') !~ '^[+]?[0-9]+$' OR btrim(params ->> 'count')::numeric < 1 THEN
		RAISE EXCEPTION 'invalidCount: count must be a positive integer, not "%"', left(params ->> 'count', 40)
			USING ERRCODE = 'invalid_parameter_value';
	ELSE
		count_n := least(btrim(params ->> 'count')::numeric, max_n)::bigint;
	END IF;
	render := CASE WHEN is_user THEN 'scim.user_resource(p.r, $2, $3)' ELSE 'scim.group_resource(p.r, $2, $3)' END;

	-- where the previous page ended
	query_hash := md5(concat_ws(E'\x1f', resource_type, ws, coalesce(filter, ''), coalesce(sort_by, ''), sort_order));
	IF cur <> '' THEN
		pos := scim.cursor_decode(cur);
		IF pos ->> 'q' IS DISTINCT FROM query_hash THEN
			RAISE EXCEPTION 'invalidCursor: the cursor belongs to another query'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Repeat the query parameters of the first page, changing only the cursor.';
		END IF;
		IF (pos ->> 't') NOT IN ('text', 'uuid', 'timestamp with time zone', 'bigint', 'integer', 'boolean', 'numeric') THEN
			RAISE EXCEPTION 'invalidCursor: the cursor names an unsupported sort key type'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		k := CASE WHEN pos -> 'k' = 'null' THEN NULL ELSE format('%L::%s', pos ->> 'k', pos ->> 't') END;
		IF sort_by IS NULL AND NOT descending AND k IS NOT NULL THEN
			-- the default key (created_at) is never NULL: a row comparison,
			-- which the (workspace, created_at, id) index answers
			after := format('((p.k1, p.id) > (%s, %L::uuid))', k, pos ->> 'i');
		ELSIF NOT descending THEN
			-- ascending: NULLs last
			after := CASE WHEN k IS NULL
						  THEN format('(p.k1 IS NULL AND p.id > %L::uuid)', pos ->> 'i')
						  ELSE format('(p.k1 > %1$s OR (p.k1 = %1$s AND p.id > %2$L::uuid) OR p.k1 IS NULL)', k, pos ->> 'i') END;
		ELSE
			-- descending: NULLs first
			after := CASE WHEN k IS NULL
						  THEN format('((p.k1 IS NULL AND p.id > %L::uuid) OR p.k1 IS NOT NULL)', pos ->> 'i')
						  ELSE format('(p.k1 < %1$s OR (p.k1 = %1$s AND p.id > %2$L::uuid))', k, pos ->> 'i') END;
		END IF;
	END IF;

	IF is_user THEN
		total := scim._count_users(ws, pred);	-- unfiltered: scim.user_counts (69_paging.sql)
	ELSE
		EXECUTE format('SELECT count(*) FROM %s WHERE %s.workspace OPERATOR(pg_catalog.=) $1 AND (%s)', tbl, alias, pred)
			INTO total USING ws;
	END IF;
	EXECUTE format(
		$q$WITH p AS (SELECT %2$s AS r, %3$s AS k1, %2$s.id AS id
					  FROM %1$s
					  WHERE %2$s.workspace OPERATOR(pg_catalog.=) $1 AND (%4$s)),
			   page AS (SELECT p.r, p.k1, p.id FROM p WHERE %5$s
						ORDER BY p.k1 %6$s, p.id LIMIT $4 + 1),
			   numbered AS (SELECT page.*, row_number() OVER (ORDER BY page.k1 %6$s, page.id) AS n FROM page)
		   SELECT coalesce(jsonb_agg(%7$s ORDER BY p.n) FILTER (WHERE p.n <= $4), '[]'::jsonb),
				  count(*)::integer,
				  (array_agg(scim._cursor_key_text(p.k1)) FILTER (WHERE p.n = $4))[1],
				  (array_agg(pg_typeof(p.k1)::text) FILTER (WHERE p.n = $4))[1],
				  (array_agg(p.id) FILTER (WHERE p.n = $4))[1]
		   FROM numbered p$q$,
		tbl, alias, sort_expr, pred, after, CASE WHEN descending THEN 'DESC' ELSE 'ASC' END, render)
		INTO resources, rows_n, last_k, last_t, last_id
		USING ws, params ->> 'attributes', params ->> 'excludedAttributes', count_n;

	body := jsonb_build_object(
		'schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:ListResponse'),
		'totalResults', total,
		'itemsPerPage', jsonb_array_length(resources),
		'Resources', resources);
	IF rows_n > count_n THEN
		body := body || jsonb_build_object('nextCursor', scim.cursor_encode(jsonb_build_object(
			'v', 1, 'q', query_hash, 'k', last_k, 't', last_t, 'i', last_id)));
	END IF;
END;
$$;

-- as 70_postgrest.sql leaves every table and function of scim in a fresh install
REVOKE ALL ON scim.page_bookmarks, scim.user_counts FROM scim_client;
REVOKE ALL ON FUNCTION scim._page_query_hash(text, text, text, text, text),
	scim._page_bookmark(text, text, bigint, text),
	scim._users_count_delta(), scim._users_count_move(),
	scim._users_count_truncate(), scim._count_users(text, text), scim.recount_users() FROM scim_client;

-- (end of search)


-- ===== OneLogin worker (#16) ===============================================

-- (end of OneLogin worker)


-- ===== Sharding (#11): tokens that name their partition ===================

-- (end of sharding)
