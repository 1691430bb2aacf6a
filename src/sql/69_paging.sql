
-- ---------------------------------------------------------------------------
-- 69_paging.sql: deep paging of the Users list (doc/SEARCH.md).
--
-- Bookmarks: startIndex/count paging (what Okta's imports send) resumes from
-- the last user of the previous page instead of skipping startIndex - 1
-- rows.  scim._list_users (55_handle.sql) leaves, after a page that has a
-- next one, a row (workspace, query, next startIndex) -> cursor on the last
-- user of the page; the cursor is the RFC 9865 one of 68_cursor.sql (signed,
-- expiring after scim_provision.cursor_timeout) and a request at that
-- startIndex is answered through scim._list_cursor's keyset.  The table is
-- shared by every backend, so a connection pool (PostgREST) finds the
-- bookmark whichever connection served the previous page.  UNLOGGED: a lost
-- bookmark (crash) only means one page by OFFSET.
--
-- User counts: totalResults of an unfiltered list is the sum of
-- scim.user_counts, insert-only deltas that statement triggers on scim.users
-- write (one row per INSERT/DELETE statement, never an UPDATE of a shared
-- counter row, so concurrent POSTs do not wait on each other; C, in
-- src/users_count.c); a reader that
-- finds many deltas folds them into one row (only rows no one else holds,
-- in the reader's transaction, so every snapshot sums the same).
-- ---------------------------------------------------------------------------

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
-- No SET clause and every name schema-qualified, so that the planner
-- inlines it (a SQL function with SET is planned at every call).
CREATE FUNCTION scim._page_query_hash(resource_type text, ws text, filter text, sort_by text, dir text)
	RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT pg_catalog.md5(pg_catalog.concat_ws(E'\x1f', resource_type, ws,
		coalesce(nullif(pg_catalog.btrim(filter), ''), ''), coalesce(nullif(pg_catalog.btrim(sort_by), ''), ''),
		CASE WHEN dir OPERATOR(pg_catalog.=) 'DESC' THEN 'descending' ELSE 'ascending' END));
$$;

-- Leave (or renew) a bookmark; bookmarks older than the cursors' lifetime go.
-- PL/pgSQL: its plans are kept (a SQL function with SET is planned per call).
CREATE FUNCTION scim._page_bookmark(ws text, q_hash text, next_at bigint, next_cursor text)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	INSERT INTO scim.page_bookmarks AS b (workspace, query_hash, next_index, cursor)
	VALUES (ws, q_hash, next_at, next_cursor)
	ON CONFLICT (workspace, query_hash, next_index)
	DO UPDATE SET cursor = excluded.cursor, created_at = excluded.created_at;
	DELETE FROM scim.page_bookmarks b
	 WHERE b.created_at < now() - make_interval(secs => current_setting('scim_provision.cursor_timeout')::integer);
END;
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
	LANGUAGE plpgsql
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	INSERT INTO scim.user_counts (workspace, n) VALUES (OLD.workspace, -1), (NEW.workspace, 1);
	RETURN NULL;
END;
$$;
CREATE FUNCTION scim._users_count_truncate() RETURNS trigger
	LANGUAGE plpgsql
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
	SET jit = off
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
