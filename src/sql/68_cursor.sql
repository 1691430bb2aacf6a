
-- ---------------------------------------------------------------------------
-- 68_cursor.sql: cursor pagination (RFC 9865) for the lists and .search of
-- Users and Groups, alongside startIndex paging.
--
-- A request with a "cursor" parameter (query or SearchRequest member; ""
-- asks for the first page) is answered with keyset pagination on (sort key,
-- id): the page holds the next "count" resources after the position the
-- cursor names, in the order of sortBy/sortOrder (default: creation time),
-- ties broken on id.  The response has totalResults, itemsPerPage,
-- Resources and, unless it is the last page, nextCursor (no previousCursor).
-- Keyset pages are stable under concurrent writes: a resource that exists
-- throughout is returned exactly once, whatever is inserted or deleted
-- between pages.
--
-- A cursor is base64url(payload) "." base64url(HMAC-SHA-256(payload)) under
-- a per-installation secret (scim._cursor_secret, readable by nobody but
-- the extension's owner, not dumped: a restored database has a new secret
-- and refuses older cursors).  The payload binds the cursor to its resource
-- type, workspace and query (filter, sortBy, sortOrder) and holds the last
-- sort key, its type, the last id and an expiry (scim_provision.
-- cursor_timeout seconds after it was issued).  A cursor that does not
-- verify, or belongs to another query, is 400 invalidCursor; an expired one
-- 400 expiredCursor; a count below 1 400 invalidCount (above
-- scim_provision.max_results it is lowered to it).
-- ---------------------------------------------------------------------------

CREATE TABLE scim._cursor_secret (
	id					integer PRIMARY KEY CHECK (id = 1),
	secret				bytea NOT NULL CHECK (octet_length(secret) >= 32),
	created_at			timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE scim._cursor_secret IS
	'The per-installation key of the pagination cursors'' HMAC; private to the extension''s owner';
REVOKE ALL ON scim._cursor_secret FROM PUBLIC;

CREATE FUNCTION scim._hmac_sha256(key bytea, message bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'scim_hmac_sha256'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION scim._hmac_sha256_verify(key bytea, message bytea, mac bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'scim_hmac_sha256_verify'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION scim._random_bytes(n integer) RETURNS bytea
	AS 'MODULE_PATHNAME', 'scim_random_bytes'
	LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION scim._hmac_sha256_verify(bytea, bytea, bytea) IS
	'Internal: whether mac is the HMAC-SHA-256 of message under key (constant-time comparison)';

INSERT INTO scim._cursor_secret (id, secret) VALUES (1, scim._random_bytes(32));

CREATE FUNCTION scim._base64url_encode(data bytea) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT translate(encode(data, 'base64'), E'+/=\n', '-_');
$$;

-- NULL when the text is not base64url.
CREATE FUNCTION scim._base64url_decode(data text) RETURNS bytea
	LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF data !~ '^[A-Za-z0-9_-]*$' OR length(data) % 4 = 1 THEN
		RETURN NULL;
	END IF;
	RETURN decode(translate(data, '-_', '+/') || repeat('=', (4 - length(data) % 4) % 4), 'base64');
END;
$$;

-- A cursor for a payload (an object): the payload gains its expiry "x"
-- (epoch seconds) and is signed.  SECURITY DEFINER: it reads the secret.
CREATE FUNCTION scim.cursor_encode(payload jsonb) RETURNS text
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	msg			bytea;
BEGIN
	IF jsonb_typeof(payload) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'a cursor payload must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	msg := convert_to((payload || jsonb_build_object('x',
		floor(extract(epoch FROM clock_timestamp())) + current_setting('scim_provision.cursor_timeout')::integer))::text, 'UTF8');
	RETURN scim._base64url_encode(msg) || '.' ||
		scim._base64url_encode(scim._hmac_sha256((SELECT s.secret FROM scim._cursor_secret s WHERE s.id = 1), msg));
END;
$$;
COMMENT ON FUNCTION scim.cursor_encode(jsonb) IS
	'An opaque, tamper-evident pagination cursor for a payload (HMAC-SHA-256 under the installation''s secret, expiring after scim_provision.cursor_timeout)';

-- The payload of a cursor scim.cursor_encode made, or SQLSTATE 22023
-- "invalidCursor: ..." (malformed, forged or altered) / "expiredCursor: ...".
CREATE FUNCTION scim.cursor_decode(cursor text) RETURNS jsonb
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	dot			integer := position('.' IN coalesce(cursor, ''));
	msg			bytea;
	mac			bytea;
	payload		jsonb;
BEGIN
	IF dot > 1 THEN
		msg := scim._base64url_decode(left(cursor, dot - 1));
		mac := scim._base64url_decode(substr(cursor, dot + 1));
	END IF;
	IF msg IS NULL OR mac IS NULL
	   OR NOT scim._hmac_sha256_verify((SELECT s.secret FROM scim._cursor_secret s WHERE s.id = 1), msg, mac) THEN
		RAISE EXCEPTION 'invalidCursor: the cursor is not one this service issued'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Send an empty cursor for the first page, then the nextCursor of the previous response.';
	END IF;
	payload := convert_from(msg, 'UTF8')::jsonb;
	IF (payload ->> 'x')::numeric < extract(epoch FROM clock_timestamp()) THEN
		RAISE EXCEPTION 'expiredCursor: the cursor has expired'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Cursors are valid for %s seconds.', current_setting('scim_provision.cursor_timeout')),
				  HINT = 'Start again with an empty cursor.';
	END IF;
	RETURN payload;
END;
$$;
COMMENT ON FUNCTION scim.cursor_decode(text) IS
	'The payload of a pagination cursor; invalidCursor when it does not verify, expiredCursor when too old';

-- A sort key as the cursor keeps it: its text form, timestamps in ISO 8601
-- UTC (read back the same whatever the session's DateStyle).
CREATE FUNCTION scim._cursor_key_text(key anyelement) RETURNS text
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_typeof(key) = 'timestamp with time zone'::regtype THEN
		RETURN to_char(key::text::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
	END IF;
	RETURN key::text;
END;
$$;

-- A cursor-paged ListResponse of Users or Groups (see the header).  params:
-- filter, sortBy, sortOrder, count, cursor, attributes, excludedAttributes.
CREATE FUNCTION scim._list_cursor(resource_type text, ws text, params jsonb, OUT body jsonb, OUT total bigint)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
	SET jit = off
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

-- _list_cursor for scim.handle's router: refusals come back as status,
-- scim_type and detail (never raised), as in scim._groups_route.
CREATE FUNCTION scim._list_cursor_route(resource_type text, ws text, params jsonb,
										OUT status integer, OUT body jsonb, OUT log_type text, OUT log_detail text)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	total		bigint;
	err_state	text;
	err_msg		text;
	err_detail	text;
BEGIN
	BEGIN
		SELECT l.body, l.total INTO body, total FROM scim._list_cursor(resource_type, ws, params) l;
		status := 200;
		log_detail := format('%s of %s result(s), cursor page', body -> 'itemsPerPage', total)
			|| coalesce('; filter: ' || (params ->> 'filter'), '');
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT, err_detail = PG_EXCEPTION_DETAIL;
		SELECT e.status, e.scim_type, e.detail INTO status, log_type, log_detail
		FROM scim._group_error(err_state, err_msg, err_detail) e;
		IF status = 500 THEN
			RAISE LOG 'scim_provision: cursor list of % failed: % (SQLSTATE %)', resource_type, err_msg, err_state;
		END IF;
		body := NULL;
	END;
END;
$$;

-- Whether a .search body asks for cursor pagination (a "cursor" member);
-- false for a malformed body, which the .search route then refuses.
CREATE FUNCTION scim._search_wants_cursor(body text) RETURNS boolean
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	IF body IS NULL OR body !~* '"cursor"' THEN
		RETURN false;
	END IF;
	RETURN scim._cursor_param(scim._request_json(body)) <> '{}';
EXCEPTION WHEN invalid_parameter_value OR invalid_text_representation THEN
	RETURN false;
END;
$$;

REVOKE ALL ON FUNCTION scim._hmac_sha256(bytea, bytea), scim._hmac_sha256_verify(bytea, bytea, bytea),
	scim._random_bytes(integer), scim._base64url_encode(bytea), scim._base64url_decode(text),
	scim.cursor_encode(jsonb), scim.cursor_decode(text),
	scim._list_cursor(text, text, jsonb), scim._list_cursor_route(text, text, jsonb),
	scim._search_wants_cursor(text), scim._cursor_key_text(anyelement) FROM PUBLIC;
