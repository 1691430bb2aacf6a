
-- ---------------------------------------------------------------------------
-- 55_handle.sql: scim.handle, the HTTP-shaped SCIM 2.0 endpoint (RFC 7644):
-- authentication, routing, Users (POST, GET, list, .search, PUT, PATCH,
-- DELETE, ETags), discovery, SCIM errors and the System Log.  /Groups,
-- /Bulk and cursor-paged lists are routed to 65_groups.sql, 67_bulk.sql
-- and 68_cursor.sql, which answer in the same shape (status, body,
-- log fields) so that the error body and the log row are written here.
--
-- Routing and orchestration are PL/pgSQL: a request is a handful of
-- branches and statements whose plans PL/pgSQL caches, while the work per
-- request is in C (mapping and rendering, src/mapping.c; query decoding and
-- body parsing, src/users.c; filter -> SQL, PATCH, tokens).  The expensive
-- parts are the row writes, the System Log insert and, for filtered lists,
-- planning the filter's SQL; the router's own cost is small next to them.
--
-- Attempt-then-log: every request runs in one subtransaction (the BEGIN ...
-- EXCEPTION block of scim._handle); an error rolls the attempt back and is
-- answered per doc/CONTRACTS.md, and the System Log row is written after
-- it, in the outer transaction.  Every request, accepted or refused, reads
-- included, leaves exactly one scim.provisioning_log row (source 'scim').
--
-- Authentication: every endpoint, discovery included, needs
-- "Authorization: Bearer <token>" (RFC 7644 section 4 lets a provider
-- serve discovery anonymously; we do not, so that every request is tied to
-- a workspace and logged under it).  The token itself is never logged and
-- never appears in a response.
-- ---------------------------------------------------------------------------

-- Lists start at created_at, id: a stable order (new users go to the end,
-- so paging by startIndex does not skip or repeat users that existed
-- before the first page).
CREATE INDEX users_workspace_created_idx ON scim.users (workspace, created_at, id);

-- A SCIM error resource (RFC 7644 section 3.12).
CREATE FUNCTION scim._error(status integer, scim_type text, detail text)
	RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
		'schemas', pg_catalog.jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:Error'),
		'status', status::text,
		'scimType', scim_type,
		'detail', detail));
$$;

-- Whether an If-Match / If-None-Match header value names the version:
-- "*", or a comma-separated list of entity tags, weak (W/"3") or not ("3").
CREATE FUNCTION scim._etag_matches(header text, version bigint)
	RETURNS boolean
	LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT EXISTS (
		SELECT FROM pg_catalog.regexp_split_to_table(header, ',') AS t(tag)
		WHERE pg_catalog.btrim(t.tag) = '*'
		   OR pg_catalog.regexp_replace(pg_catalog.btrim(t.tag), '^[Ww]/', '') = '"' || version::text || '"');
$$;

-- The SQL direction of a sortOrder parameter (RFC 7644 section 3.4.2.3):
-- NULL or "" = ascending; anything but ascending/descending is refused.
CREATE FUNCTION scim._sort_direction(sort_order text)
	RETURNS text
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF sort_order IS NULL OR btrim(sort_order) = '' THEN
		RETURN 'ASC';
	END IF;
	CASE lower(btrim(sort_order))
		WHEN 'ascending' THEN RETURN 'ASC';
		WHEN 'descending' THEN RETURN 'DESC';
		ELSE
			RAISE EXCEPTION 'invalidValue: sortOrder must be "ascending" or "descending", not "%"', left(sort_order, 40)
				USING ERRCODE = 'invalid_parameter_value';
	END CASE;
END;
$$;

-- An integer query or SearchRequest parameter (NULL or "" = dflt).
CREATE FUNCTION scim._int_param(value text, name text, dflt bigint)
	RETURNS bigint
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF value IS NULL OR btrim(value) = '' THEN
		RETURN dflt;
	END IF;
	IF btrim(value) !~ '^[+-]?[0-9]+$' THEN
		RAISE EXCEPTION 'invalidValue: % must be an integer, not "%"', name, left(value, 40)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- clamp: anything beyond the bigint range is as good as its bound
	RETURN greatest(least(btrim(value)::numeric, 9223372036854775807), -9223372036854775808)::bigint;
END;
$$;

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
-- jit = off: a filter's EXISTS over jsonb_path_query is costed at 1000 rows
-- per user, so a 1M-user count crossed the JIT thresholds and spent 0.4 s
-- compiling a query that runs in less (also in _list_cursor, _count_users).
CREATE FUNCTION scim._list_users(ws text, filter text, start_index text, count text, sort_by text,
								 sort_order text, attrs text, excluded text,
								 OUT body jsonb, OUT total bigint)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
	SET jit = off
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
	list_guard	constant bigint := 50000;
	lookup_doc	jsonb;
	lookup_name	text;
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
			ELSIF lower(ast ->> 'attr') = 'emails.value' THEN
				lookup_doc := jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('value', ast ->> 'value')));
			END IF;
			bookmarks := false;
		-- Entra ID's emails[type eq "work" and value eq "..."]: the users
		-- holding the address (the containment below), decided by the matcher
		ELSIF ast ->> 'op' = 'valuePath' AND lower(ast ->> 'attr') = 'emails'
			  AND lower(coalesce(ast ->> 'schema', 'urn:ietf:params:scim:schemas:core:2.0:User')) = 'urn:ietf:params:scim:schemas:core:2.0:user' THEN
			SELECT jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('value', f ->> 'value')))
			  INTO lookup_doc
			  FROM jsonb_array_elements(CASE WHEN ast -> 'filter' ->> 'op' = 'and' THEN ast -> 'filter' -> 'args'
											 ELSE jsonb_build_array(ast -> 'filter') END) f
			 WHERE f ->> 'op' = 'eq' AND lower(f ->> 'attr') = 'value' AND jsonb_typeof(f -> 'value') = 'string'
			 LIMIT 1;
			bookmarks := bookmarks AND lookup_doc IS NULL;
		-- userName eq "..." and (anything): at most that one user, decided by
		-- the matcher (scim.filter_match, the reference the pushdown is
		-- compared with)
		ELSIF ast ->> 'op' = 'and' THEN
			SELECT a ->> 'value' INTO lookup_name
			  FROM jsonb_array_elements(ast -> 'args') a
			 WHERE a ->> 'op' = 'eq' AND jsonb_typeof(a -> 'value') = 'string' AND lower(a ->> 'attr') = 'username'
			   AND a - 'op' - 'attr' - 'value' - 'schema' = '{}'::jsonb
			   AND lower(coalesce(a ->> 'schema', 'urn:ietf:params:scim:schemas:core:2.0:User')) = 'urn:ietf:params:scim:schemas:core:2.0:user'
			 LIMIT 1;
			IF lookup_name IS NOT NULL THEN
				SELECT coalesce(jsonb_agg(scim.user_resource(p.u, attrs, excluded) ORDER BY p.k1, p.k2), '[]'::jsonb), count(*)
				INTO resources, page_n
				FROM (SELECT u, u.created_at AS k1, u.id AS k2
					  FROM scim.users u
					  WHERE u.workspace = ws AND lower(u.user_name) = lower(lookup_name)
						AND scim.filter_match(filter, scim.user_resource(u))
					  ORDER BY k1, k2
					  LIMIT count_n OFFSET start_n - 1) p;
				bookmarks := false;
			END IF;
		END IF;
		-- emails.value eq "..." (OneLogin) and the value path above: the users
		-- whose lower-cased attributes contain the address (users_attributes_ci_idx,
		-- the containment scim.filter_sql writes for it), decided by the matcher
		IF lookup_doc IS NOT NULL THEN
			SELECT coalesce(jsonb_agg(scim.user_resource(p.u, attrs, excluded) ORDER BY p.k1, p.k2), '[]'::jsonb), count(*)
			INTO resources, page_n
			FROM (SELECT u, u.created_at AS k1, u.id AS k2
				  FROM scim.users u
				  WHERE u.workspace = ws AND lower(u.attributes::text)::jsonb @> lower(lookup_doc::text)::jsonb
					AND scim.filter_match(filter, scim.user_resource(u))
				  ORDER BY k1, k2
				  LIMIT count_n OFFSET start_n - 1) p;
		END IF;
	END IF;

	IF page_n IS NULL AND bookmarks AND start_n > 1 THEN
		q_hash := scim._page_query_hash('User', ws, filter, sort_by, dir);
		SELECT b.cursor INTO mark FROM scim.page_bookmarks b
		 WHERE b.workspace = ws AND b.query_hash = q_hash AND b.next_index = start_n;
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

	-- A filtered list reads its matches once: their sort keys (at most
	-- list_guard of them), which give the total, the page's ids (a top-N
	-- sort) and its rows (by primary key).  Left alone, the planner plans
	-- the page as a walk of the sort order's index that stops after
	-- startIndex + count matches, and counts in a second scan; the walk is
	-- cheap only when matches are many and spread evenly: it guesses 0.5 %
	-- of the users for a trigram or an element key it has no statistics of,
	-- and cannot know that "lastModified gt <recently>" matches only the
	-- newest users, so it walks through nearly every user to fill one page
	-- (seconds at 10^6 users).  More matches than the guard: the walk and
	-- the count, as before (the guard's rows were read in vain, a bounded
	-- price next to counting more of them).
	IF page_n IS NULL AND pred <> 'true' THEN
		EXECUTE format(
			$q$WITH m AS MATERIALIZED (
				SELECT %1$s AS k1, u.id AS k2 FROM scim.users u
				 WHERE u.workspace OPERATOR(pg_catalog.=) $1 AND (%3$s)
				 LIMIT $6),
			p AS MATERIALIZED (SELECT m.k1, m.k2 FROM m ORDER BY m.k1 %2$s, m.k2 LIMIT $2 OFFSET $3)
			SELECT (SELECT count(*) FROM m),
				   (SELECT coalesce(pg_catalog.jsonb_agg(scim.user_resource(u, $4, $5) ORDER BY p.k1 %2$s, p.k2), '[]'::jsonb)
					  FROM p JOIN scim.users u ON u.id OPERATOR(pg_catalog.=) p.k2),
				   (SELECT count(*) FROM p),
				   (SELECT (pg_catalog.array_agg(p.k2 ORDER BY p.k1 %2$s, p.k2))[count(*)] FROM p)$q$,
			sort_expr, dir, pred)
			INTO total, resources, page_n, last_id
			USING ws, count_n, start_n - 1, attrs, excluded, list_guard + 1;
		IF total > list_guard THEN
			total := NULL;
			resources := NULL;
			page_n := NULL;
			last_id := NULL;
		END IF;
	END IF;
	IF page_n IS NULL THEN
		EXECUTE format(
			$q$SELECT coalesce(pg_catalog.jsonb_agg(scim.user_resource(p.u, $4, $5) ORDER BY p.k1 %2$s, p.k2), '[]'::jsonb),
					  count(*),
					  (pg_catalog.array_agg(p.k2 ORDER BY p.k1 %2$s, p.k2))[count(*)]
			   FROM (SELECT u, %1$s AS k1, u.id AS k2
					 FROM scim.users u
					 WHERE u.workspace OPERATOR(pg_catalog.=) $1 AND (%3$s)
					 ORDER BY k1 %2$s, k2
					 LIMIT $2 OFFSET $3) p$q$,
			sort_expr, dir, pred)
			INTO resources, page_n, last_id
			USING ws, count_n, start_n - 1, attrs, excluded;
	END IF;
	IF total IS NOT NULL THEN
		NULL;	-- counted first, above
	ELSIF page_n < count_n AND (page_n > 0 OR start_n = 1) THEN
		total := start_n - 1 + page_n;
	ELSE
		total := scim._count_users(ws, pred);
	END IF;
	-- more users follow: leave a bookmark for the next page (the sort key
	-- of its last user as the cursor keeps it)
	IF bookmarks AND last_id IS NOT NULL AND start_n - 1 + page_n < total THEN
		EXECUTE format('SELECT scim._cursor_key_text(%1$s), pg_catalog.pg_typeof(%1$s)::text FROM scim.users u '
					   'WHERE u.id OPERATOR(pg_catalog.=) $1', sort_expr)
			INTO last_k, last_t USING last_id;
		IF last_t IN ('text', 'uuid', 'timestamp with time zone', 'bigint', 'integer', 'boolean', 'numeric') THEN
			q_hash := scim._page_query_hash('User', ws, filter, sort_by, dir);
			PERFORM scim._page_bookmark(ws, q_hash, start_n + page_n, scim.cursor_encode(jsonb_build_object(
				'v', 1, 'q', q_hash, 'k', last_k, 't', last_t, 'i', last_id)));
		END IF;
	END IF;
	body := jsonb_build_object(
		'schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:ListResponse'),
		'totalResults', total, 'startIndex', start_n,
		'itemsPerPage', jsonb_array_length(resources), 'Resources', resources);
END;
$$;

-- SearchRequest (RFC 7644 section 3.4.3) members as the text parameters of
-- _list_users: names case-insensitive, attributes as an array or a
-- comma-separated string.
CREATE FUNCTION scim._search_params(request jsonb)
	RETURNS jsonb
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r		jsonb;
	result	jsonb := '{}';
	k		text;
	v		jsonb;
	names	text[] := ARRAY['filter', 'startIndex', 'count', 'sortBy', 'sortOrder', 'attributes', 'excludedAttributes'];
BEGIN
	IF jsonb_typeof(request) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'invalidSyntax: a SearchRequest must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT jsonb_object_agg(lower(e.key), e.value) INTO r FROM jsonb_each(request) e;
	FOREACH k IN ARRAY names LOOP
		v := r -> lower(k);
		CONTINUE WHEN v IS NULL OR jsonb_typeof(v) = 'null';
		IF k IN ('attributes', 'excludedAttributes') AND jsonb_typeof(v) = 'array' THEN
			IF EXISTS (SELECT FROM jsonb_array_elements(v) a WHERE jsonb_typeof(a) <> 'string') THEN
				RAISE EXCEPTION 'invalidValue: % must be an array of strings', k
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			result := result || jsonb_build_object(k, (SELECT string_agg(a, ',') FROM jsonb_array_elements_text(v) a));
		ELSIF k IN ('startIndex', 'count') AND jsonb_typeof(v) IN ('number', 'string') THEN
			result := result || jsonb_build_object(k, v #>> '{}');
		ELSIF jsonb_typeof(v) = 'string' THEN
			result := result || jsonb_build_object(k, v #>> '{}');
		ELSE
			RAISE EXCEPTION 'invalidValue: % has the wrong type (%)', k, jsonb_typeof(v)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	RETURN result;
END;
$$;

-- The request, in one subtransaction, then its System Log row.
CREATE FUNCTION scim._handle(p_method text, p_path text, p_query text, p_headers jsonb, p_body text,
							 OUT status integer, OUT headers jsonb, OUT body jsonb)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	m			text := upper(coalesce(btrim(p_method), ''));
	req_path	text := coalesce(p_path, '');
	query		text := p_query;
	hdr			jsonb := '{}';
	auth		text;
	ws			text;
	segs		text[];
	nseg		integer;
	seg1		text;
	seg2		text;
	params		jsonb;
	req			jsonb;
	cur			scim.users;
	new			scim.users;
	policy		text;
	total		bigint;
	allow		text;
	log_id		uuid;
	log_user	text;
	log_type	text;
	log_detail	text;
	err_state	text;
	err_msg		text;
	err_detail	text;
	n_auth		bigint := 0;
BEGIN
	headers := jsonb_build_object('Content-Type', 'application/scim+json');

	-- header names are lower-cased by the caller; tolerate any case
	IF jsonb_typeof(p_headers) = 'object' THEN
		SELECT coalesce(jsonb_object_agg(lower(h.key), h.value), '{}'),
			   count(*) FILTER (WHERE lower(h.key) = 'authorization')
		  INTO hdr, n_auth
		  FROM jsonb_each(p_headers) h;
	END IF;

	-- a path that still carries its query string
	IF position('?' IN req_path) > 0 THEN
		query := coalesce(query, substr(req_path, position('?' IN req_path) + 1));
		req_path := left(req_path, position('?' IN req_path) - 1);
	END IF;
	segs := array_remove(string_to_array(req_path, '/'), '');
	nseg := coalesce(array_length(segs, 1), 0);
	seg1 := lower(segs[1]);
	seg2 := segs[2];

	-- authentication: exactly one Bearer token -> workspace.  Two
	-- credentials are refused rather than one picked (#15): the header
	-- twice in different case, a list of values, or values a proxy joined
	-- with a comma (a token never holds one).
	IF n_auth > 1 OR jsonb_typeof(hdr -> 'authorization') NOT IN ('string', 'null') THEN
		log_detail := CASE WHEN n_auth > 1 OR (jsonb_typeof(hdr -> 'authorization') = 'array'
												AND jsonb_array_length(hdr -> 'authorization') > 1)
						   THEN 'authentication refused: the request has more than one Authorization header'
						   ELSE 'authentication refused: the Authorization header is not a single string' END;
	ELSE
		auth := hdr ->> 'authorization';
		IF strpos(auth, ',') > 0 THEN
			log_detail := 'authentication refused: the Authorization header holds more than one credential';
		ELSIF auth ~* '^\s*bearer\s+\S' THEN
			ws := scim.authenticate(auth);
		END IF;
	END IF;
	IF ws IS NULL THEN
		status := 401;
		log_detail := CASE WHEN log_detail IS NOT NULL THEN log_detail
						   WHEN auth IS NULL OR btrim(auth) = '' THEN 'authentication required: no Authorization header'
						   WHEN auth !~* '^\s*bearer\s+\S' THEN 'authentication required: the Authorization scheme must be Bearer'
						   ELSE 'the bearer token is not valid (unknown or revoked)' END;
		headers := headers || jsonb_build_object('WWW-Authenticate', 'Bearer realm="scim"');
		body := scim._error(401, NULL, log_detail);
		PERFORM scim.log_attempt('scim', m, p_path, NULL, NULL, status, NULL, log_detail, NULL);
		RETURN;
	END IF;

	BEGIN
		params := scim._query_params(query);

		IF nseg = 0 THEN
			status := 404;
		-- ---- cursor pagination of /Users and /.search (68_cursor.sql) --
		ELSIF seg1 = 'users' AND nseg = 1 AND m = 'GET' AND params ? 'cursor' THEN
			SELECT r.status, r.body, r.log_type, r.log_detail INTO status, body, log_type, log_detail
			  FROM scim._list_cursor_route('User', ws, params) r;
		ELSIF ((seg1 = 'users' AND nseg = 2 AND lower(seg2) = '.search') OR (seg1 = '.search' AND nseg = 1))
			  AND m = 'POST' AND scim._search_wants_cursor(p_body) THEN
			SELECT r.status, r.body, r.log_type, r.log_detail INTO status, body, log_type, log_detail
			  FROM scim._list_cursor_route('User', ws, scim._search_params(scim._request_json(p_body))
													   || scim._cursor_param(scim._request_json(p_body))) r;
		-- ---- /Users ----------------------------------------------------
		ELSIF seg1 = 'users' AND nseg = 1 THEN
			IF m = 'GET' THEN
				SELECT l.body, l.total INTO body, total
				FROM scim._list_users(ws, params ->> 'filter', params ->> 'startIndex', params ->> 'count',
									  params ->> 'sortBy', params ->> 'sortOrder',
									  params ->> 'attributes', params ->> 'excludedAttributes') l;
				status := 200;
				log_detail := format('%s of %s result(s)', body -> 'itemsPerPage', total)
					|| coalesce('; filter: ' || (params ->> 'filter'), '');
			ELSIF m = 'POST' THEN
				req := scim._request_json(p_body);
				log_user := CASE WHEN jsonb_typeof(req -> 'userName') = 'string' THEN req ->> 'userName' END;
				new := scim._user_from_resource(req, 'create', ws, NULL);
				log_user := new.user_name;
				cur := scim._user_insert(new);
				log_id := cur.id;
				body := scim.user_resource(cur, params ->> 'attributes', params ->> 'excludedAttributes');
				status := 201;
				headers := headers || jsonb_build_object(
					'Location', rtrim(current_setting('scim_provision.base_url'), '/') || '/Users/' || cur.id,
					'ETag', 'W/"' || cur.version || '"');
			ELSE
				allow := 'GET, POST';
			END IF;
		-- ---- /Users/.search and /.search --------------------------------
		ELSIF (seg1 = 'users' AND nseg = 2 AND lower(seg2) = '.search') OR (seg1 = '.search' AND nseg = 1) THEN
			IF m = 'POST' THEN
				req := scim._search_params(scim._request_json(p_body));
				SELECT l.body, l.total INTO body, total
				FROM scim._list_users(ws, req ->> 'filter', req ->> 'startIndex', req ->> 'count',
									  req ->> 'sortBy', req ->> 'sortOrder',
									  req ->> 'attributes', req ->> 'excludedAttributes') l;
				status := 200;
				log_detail := format('%s of %s result(s)', body -> 'itemsPerPage', total)
					|| coalesce('; filter: ' || (req ->> 'filter'), '');
			ELSE
				allow := 'POST';
			END IF;
		-- ---- /Users/{id} ------------------------------------------------
		ELSIF seg1 = 'users' AND nseg = 2 THEN
			IF m NOT IN ('GET', 'PUT', 'PATCH', 'DELETE') THEN
				allow := 'GET, PUT, PATCH, DELETE';
			ELSE
				IF seg2 ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' THEN
					IF m = 'GET' THEN
						SELECT u.* INTO cur FROM scim.users u WHERE u.id = seg2::uuid AND u.workspace = ws;
					ELSE
						SELECT u.* INTO cur FROM scim.users u WHERE u.id = seg2::uuid AND u.workspace = ws FOR UPDATE;
					END IF;
				END IF;
				IF cur.id IS NULL THEN
					status := 404;
					log_detail := format('no user with id "%s"', left(seg2, 100));
				ELSE
					log_id := cur.id;
					log_user := cur.user_name;
					IF m <> 'GET' AND hdr ? 'if-match' AND NOT scim._etag_matches(hdr ->> 'if-match', cur.version) THEN
						status := 412;
						log_detail := format('If-Match %s does not match the current version W/"%s"',
											 left(hdr ->> 'if-match', 100), cur.version);
					ELSIF m = 'GET' THEN
						IF hdr ? 'if-none-match' AND scim._etag_matches(hdr ->> 'if-none-match', cur.version) THEN
							status := 304;
						ELSE
							status := 200;
							body := scim.user_resource(cur, params ->> 'attributes', params ->> 'excludedAttributes');
						END IF;
					ELSIF m = 'PUT' THEN
						req := scim._request_json(p_body);
						new := scim._user_from_resource(req, 'replace', ws, cur);
						cur := scim._user_update(new);
						log_user := cur.user_name;
						status := 200;
						body := scim.user_resource(cur, params ->> 'attributes', params ->> 'excludedAttributes');
					ELSIF m = 'PATCH' THEN
						req := scim._within_operation_limit(scim._request_json(p_body));
						IF jsonb_typeof(req) IS DISTINCT FROM 'object' THEN
							RAISE EXCEPTION 'invalidSyntax: a PATCH body must be a PatchOp object'
								USING ERRCODE = 'invalid_parameter_value';
						END IF;
						SELECT e.value INTO req FROM jsonb_each(req) e WHERE lower(e.key) = 'operations';
						IF jsonb_typeof(req) IS DISTINCT FROM 'array' THEN
							RAISE EXCEPTION 'invalidSyntax: a PATCH body needs an "Operations" array'
								USING ERRCODE = 'invalid_parameter_value';
						END IF;
						new := scim._user_from_resource(scim.patch_apply(scim.user_resource(cur), req), 'full', ws, cur);
						cur := scim._user_update(new);
						log_user := cur.user_name;
						status := 200;
						body := scim.user_resource(cur, params ->> 'attributes', params ->> 'excludedAttributes');
					ELSE
						SELECT w.deletion_policy INTO policy FROM scim.workspaces w WHERE w.name = ws;
						IF policy = 'delete' THEN
							DELETE FROM scim.users u WHERE u.id = cur.id;
							log_detail := 'user deleted (deletion policy "delete")';
						ELSE
							UPDATE scim.users u SET active = false WHERE u.id = cur.id RETURNING u.* INTO cur;
							log_detail := 'user deactivated (deletion policy "deactivate")';
						END IF;
						status := 204;
					END IF;
					IF status IN (200, 304) THEN
						headers := headers || jsonb_build_object('ETag', 'W/"' || cur.version || '"');
					END IF;
				END IF;
			END IF;
		ELSIF seg1 = 'users' THEN
			status := 404;
		-- ---- /Groups (65_groups.sql) -----------------------------------
		ELSIF seg1 = 'groups' THEN
			SELECT r.status, _handle.headers || r.headers, r.body, r.log_id, r.log_user, r.log_type, r.log_detail, r.allow
			  INTO status, headers, body, log_id, log_user, log_type, log_detail, allow
			  FROM scim._groups_route(ws, m, segs, params, hdr, p_body) r;
		-- ---- discovery (58_discovery.sql) -------------------------------
		ELSIF seg1 = 'serviceproviderconfig' AND nseg = 1 THEN
			IF m = 'GET' THEN
				status := 200;
				body := scim.service_provider_config();
			ELSE
				allow := 'GET';
			END IF;
		ELSIF seg1 IN ('schemas', 'resourcetypes') AND nseg <= 2 THEN
			IF m <> 'GET' THEN
				allow := 'GET';
			ELSIF nseg = 1 THEN
				status := 200;
				body := scim._discovery_list(CASE seg1 WHEN 'schemas' THEN scim.schema_definitions()
													   ELSE scim.resource_type_definitions() END);
			ELSE
				SELECT r.value INTO body
				FROM jsonb_array_elements(CASE seg1 WHEN 'schemas' THEN scim.schema_definitions()
													ELSE scim.resource_type_definitions() END) r
				WHERE lower(r.value ->> 'id') = lower(seg2) OR lower(r.value ->> 'name') = lower(seg2)
				LIMIT 1;
				IF body IS NULL THEN
					status := 404;
					log_detail := format('no %s "%s"', CASE seg1 WHEN 'schemas' THEN 'schema' ELSE 'resource type' END, left(seg2, 200));
				ELSE
					status := 200;
				END IF;
			END IF;
		-- ---- /Bulk (67_bulk.sql) ---------------------------------------
		ELSIF seg1 = 'bulk' AND nseg = 1 THEN
			SELECT r.status, _handle.headers || r.headers, r.body, r.log_type, r.log_detail, r.allow
			  INTO status, headers, body, log_type, log_detail, allow
			  FROM scim._bulk_route(ws, m, hdr, p_body) r;
		ELSIF seg1 = 'me' AND nseg = 1 THEN
			status := 501;
			log_detail := format('/%s is not supported', segs[1]);
		ELSE
			status := 404;
		END IF;

		IF allow IS NOT NULL THEN
			status := 405;
			log_detail := format('method %s is not allowed on %s', left(m, 20), left(p_path, 200));
			headers := headers || jsonb_build_object('Allow', allow);
		ELSIF status = 404 AND log_detail IS NULL THEN
			log_detail := format('no endpoint %s', left(p_path, 200));
		END IF;
		IF status >= 400 THEN
			body := scim._error(status, log_type, log_detail);
		END IF;
		-- a 503 of a route (/Groups, /Bulk, cursors: a concurrent change won) is retryable
		IF status = 503 THEN
			headers := headers || jsonb_build_object('Retry-After', '1');
		END IF;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT, err_detail = PG_EXCEPTION_DETAIL;
		SELECT e.status, e.scim_type, e.detail INTO status, log_type, log_detail
		FROM scim._scim_error(err_state, err_msg, err_detail, log_user) e;
		IF status = 500 THEN
			RAISE LOG 'scim_provision: % % failed: % (SQLSTATE %)', m, left(p_path, 200), err_msg, err_state;
		END IF;
		IF m = 'POST' THEN
			log_id := NULL;		-- the new row was rolled back
		END IF;
		headers := jsonb_build_object('Content-Type', 'application/scim+json');
		IF status = 503 THEN
			headers := headers || jsonb_build_object('Retry-After', '1');
		END IF;
		body := scim._error(status, log_type, log_detail);
	END;

	IF body IS NULL THEN
		headers := headers - 'Content-Type';		-- 204, 304: no body
	END IF;
	PERFORM scim.log_attempt('scim', m, p_path, log_id, log_user, status, log_type, log_detail, ws);
END;
$$;

-- The public entry point (fixed signature, DESIGN.md section 3), in C
-- (src/handle.c): it answers GET /Users?filter=userName eq "..." (and
-- externalId eq) and GET /Users/{id}, the reads every IdP sends before it
-- writes, with index probes and kept plans and exactly the router's
-- response and log row, and hands every other request to scim._handle
-- above.  SECURITY DEFINER so that
-- scim_api.dispatch, running as scim_client, can call it without any
-- access to scim's tables.
-- Log policy (#15, doc/SECURITY.md): the caller's statement carries the
-- bearer token in its headers argument, and when scim.handle is called from
-- PL/pgSQL the CONTEXT lines quote that statement.  While it runs, nothing
-- it reports to the server log (the LOG line of a 500, an error escaping
-- it) carries the statement (log_min_error_statement = panic) or the
-- context (log_error_verbosity = terse); the System Log row records the
-- request.  Both are superuser settings: the owner (a superuser) sets them.
CREATE FUNCTION scim.handle(method text, path text, query text DEFAULT NULL, headers jsonb DEFAULT '{}',
							body text DEFAULT NULL)
	RETURNS TABLE(status integer, headers jsonb, body jsonb)
	AS 'MODULE_PATHNAME', 'scim_handle'
	LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1
	SET search_path = pg_catalog, scim, pg_temp
	SET log_min_error_statement = panic
	SET log_error_verbosity = terse;
COMMENT ON FUNCTION scim.handle(text, text, text, jsonb, text) IS
	'SCIM 2.0 endpoint: (method, path, raw query, lower-cased headers, raw body) -> (status, headers, body); logs every request';

REVOKE ALL ON FUNCTION scim._error(integer, text, text), scim._etag_matches(text, bigint),
	scim._int_param(text, text, bigint), scim._sort_direction(text),
	scim._list_users(text, text, text, text, text, text, text, text),
	scim._search_params(jsonb),
	scim._handle(text, text, text, jsonb, text),
	scim.handle(text, text, text, jsonb, text) FROM PUBLIC;
