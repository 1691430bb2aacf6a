/* scim_provision--0.2.0--0.3.0.sql: from 0.2.0 to 0.3.0 (never edited once released) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION scim_provision UPDATE TO '0.3.0'" to load this file. \quit

-- One section per concern of 0.3.0, in the order they apply.


-- ===== Hardening (#15 security): grants, trigger functions, audit =========

-- The users trigger: not SECURITY DEFINER, not PUBLIC's (the C guard that
-- refuses any relation but scim.users is in the library); internal helpers
-- and the SECURITY DEFINER domain_approved are no longer PUBLIC's
-- (sql/16_security_catalog.sql holds the allow-list).
ALTER FUNCTION scim._users_before_write() SECURITY INVOKER;
REVOKE ALL ON FUNCTION scim._users_before_write(), scim._canonical_user_type(text),
	scim._sort_direction(text), scim.domain_approved(text, text) FROM PUBLIC;

-- Log policy: nothing the entry points report to the server log carries the
-- caller's statement (with the bearer token in it) or the context.
ALTER FUNCTION scim.handle(text, text, text, jsonb, text)
	SET log_min_error_statement = panic;
ALTER FUNCTION scim.handle(text, text, text, jsonb, text)
	SET log_error_verbosity = terse;
-- scim_api.dispatch: the same log policy (its SET clauses below), and a
-- token header that came twice goes on as a list for scim.handle to refuse.
CREATE OR REPLACE FUNCTION scim_api.dispatch(jsonb)
	RETURNS scim_api."application/scim+json"
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
	SET log_min_error_statement = panic
	SET log_error_verbosity = terse
AS $$
DECLARE
	req_headers	jsonb;
	method		text;
	uri			text;
	uri_path	text;
	base		text;
	path		text;
	query		text;
	pos			integer;
	fwd			jsonb;
	req_body	text;
	status		integer;
	out_headers	jsonb;
	out_body	jsonb;
	log_detail	text;
	arr			jsonb := '[]';
	hname		text;
	hvalue		text;
	origin		text;
	auth_value	jsonb;
	err_state	text;
	err_msg		text;
BEGIN
	BEGIN
		-- request.headers: set by PostgREST; missing or unparsable = none
		BEGIN
			req_headers := nullif(pg_catalog.current_setting('request.headers', true), '')::jsonb;
		EXCEPTION WHEN invalid_text_representation THEN
			req_headers := NULL;
		END;
		IF pg_catalog.jsonb_typeof(req_headers) IS DISTINCT FROM 'object' THEN
			req_headers := '{}';
		END IF;

		method := pg_catalog.upper(pg_catalog.btrim(req_headers ->> 'x-scim-method'));
		uri := pg_catalog.btrim(req_headers ->> 'x-scim-uri');

		IF method IS NULL OR method !~ '^[A-Z]{1,16}$' OR uri IS NULL OR uri = '' THEN
			status := 400;
			log_detail := CASE
				WHEN method IS NULL OR method = '' THEN 'the request has no X-Scim-Method header: the proxy in front of PostgREST must set it (see deploy/)'
				WHEN method !~ '^[A-Z]{1,16}$' THEN 'the X-Scim-Method header is not an HTTP method'
				ELSE 'the request has no X-Scim-Uri header: the proxy in front of PostgREST must set it (see deploy/)'
			END;
			out_body := pg_catalog.jsonb_build_object(
				'schemas', pg_catalog.jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:Error'),
				'status', '400',
				'detail', log_detail);
			-- keep the log columns short
			method := pg_catalog.left(method, 16);
			uri := pg_catalog.left(uri, 2000);
		ELSE
			-- split the URI: path ? query (the query stays percent-encoded)
			pos := pg_catalog.strpos(uri, '?');
			IF pos > 0 THEN
				uri_path := pg_catalog.left(uri, pos - 1);
				query := nullif(pg_catalog.substr(uri, pos + 1), '');
			ELSE
				uri_path := uri;
				query := NULL;
			END IF;

			-- strip the base: everything up to and including the first "/v2"
			-- path segment (absolute URIs included); without one, the whole
			-- path is taken as relative to the base
			pos := pg_catalog.strpos(pg_catalog.lower(uri_path) || '/', '/v2/');
			IF pos > 0 THEN
				base := pg_catalog.left(uri_path, pos + 2);
				path := pg_catalog.substr(uri_path, pos + 3);
			ELSE
				base := '';
				path := uri_path;
			END IF;
			IF path !~ '^/' THEN
				path := '/' || path;
			END IF;

			-- percent-decode the path (bytes, then UTF-8); malformed -> 400
			IF pg_catalog.strpos(path, '%') > 0 THEN
				BEGIN
					SELECT pg_catalog.convert_from(
							pg_catalog.string_agg(
								CASE WHEN m[1] IS NOT NULL
									THEN pg_catalog.decode(pg_catalog.substr(m[1], 2), 'hex')
									ELSE pg_catalog.convert_to(m[2], 'UTF8')
								END, ''::bytea ORDER BY n),
							'UTF8')
					  INTO STRICT path
					  FROM pg_catalog.regexp_matches(path, '(%[0-9A-Fa-f]{2})|([^%]+|%)', 'g')
						   WITH ORDINALITY AS t(m, n);
				EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character
						  OR null_value_not_allowed THEN
					path := NULL;
				END;
			END IF;

			IF path IS NULL THEN
				status := 400;
				log_detail := 'the request path is not valid percent-encoded UTF-8';
				out_body := pg_catalog.jsonb_build_object(
					'schemas', pg_catalog.jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:Error'),
					'status', '400',
					'scimType', 'invalidPath',
					'detail', log_detail);
				uri := pg_catalog.left(uri, 2000);
			ELSE
				-- the headers scim.handle sees: the request's, with the IdP's
				-- token as authorization (a JWT meant for PostgREST never is)
				-- (#15) a token header that came twice (request.headers is JSON
				-- text: duplicate keys survive until jsonb keeps the last) or is
				-- not a string goes on as it is, as a list, for scim.handle to
				-- refuse (401) rather than one of the tokens being picked
				fwd := req_headers - 'x-scim-method' - 'x-scim-uri' - 'x-scim-token' - 'authorization';
				IF req_headers ? 'x-scim-token' THEN
					SELECT CASE WHEN pg_catalog.count(*) > 1 THEN pg_catalog.jsonb_agg(pg_catalog.to_jsonb(t.value))
								ELSE req_headers -> 'x-scim-token' END
					  INTO auth_value
					  FROM pg_catalog.json_each(pg_catalog.current_setting('request.headers', true)::json) AS t
					 WHERE pg_catalog.lower(t.key) = 'x-scim-token';
					fwd := fwd || pg_catalog.jsonb_build_object('authorization', auth_value);
				END IF;

				-- PostgREST hands an empty body over as {}
				IF $1 IS NULL OR ($1 = '{}'::jsonb AND method IN ('GET', 'HEAD', 'DELETE')) THEN
					req_body := NULL;
				ELSE
					req_body := $1::text;
				END IF;

				-- The SCIM base URL as the IdP sees it: an absolute URI's own,
				-- else X-Forwarded-Proto :// X-Forwarded-Host (set by the
				-- proxy) followed by the base path.  Unless the administrator
				-- set scim_provision.base_url, scim.handle builds meta.location
				-- and Location from it for this request.
				IF base ~* '^https?://[^/?#]+' THEN
					origin := base;
				ELSIF (req_headers ->> 'x-forwarded-host') ~ '^[A-Za-z0-9.-]+(:[0-9]{1,5})?$' THEN
					origin := CASE WHEN pg_catalog.lower(req_headers ->> 'x-forwarded-proto') = 'http' THEN 'http' ELSE 'https' END
						|| '://' || (req_headers ->> 'x-forwarded-host') || base;
				END IF;
				IF origin IS NOT NULL AND coalesce(pg_catalog.current_setting('scim_provision.base_url', true), '') = '' THEN
					BEGIN
						PERFORM pg_catalog.set_config('scim_provision.base_url', origin, true);
					EXCEPTION WHEN invalid_name OR undefined_object OR insufficient_privilege THEN
						NULL;	-- a library without the setting: locations stay relative
					END;
				END IF;

				SELECT h.status, h.headers, h.body
				  INTO status, out_headers, out_body
				  FROM scim.handle(method, path, query, fwd, req_body) AS h
				 LIMIT 1;

				IF status IS NULL OR status < 100 OR status > 599 THEN
					RAISE EXCEPTION 'scim.handle answered % %', method, path
						USING ERRCODE = 'internal_error',
							  DETAIL = pg_catalog.format('status %s is not an HTTP status', coalesce(status::text, 'NULL'));
				END IF;
			END IF;
		END IF;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT;
		RAISE LOG 'scim_api.dispatch: unexpected error % for % %: %', err_state, method, path, err_msg;
		status := 500;
		out_headers := NULL;
		log_detail := pg_catalog.format('unexpected error in scim_api.dispatch (SQLSTATE %s); see the server log', err_state);
		out_body := pg_catalog.jsonb_build_object(
			'schemas', pg_catalog.jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:Error'),
			'status', '500',
			'detail', 'internal server error');
		uri := pg_catalog.left(uri, 2000);
		method := pg_catalog.left(method, 16);
	END;

	-- Requests answered here rather than by scim.handle get their log row
	-- here.  The log is best effort: a failure to log must not turn into a
	-- PostgREST error.
	IF log_detail IS NOT NULL THEN
		BEGIN
			PERFORM scim.log_attempt('scim', method, uri, NULL, NULL, status, out_body ->> 'scimType',
									 log_detail, NULL);
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT;
			RAISE LOG 'scim_api.dispatch: could not log a % answer: % %', status, err_state, err_msg;
		END;
	END IF;

	-- response.headers: an array of single-key objects.  scim.handle gives an
	-- object (or already such an array); values become strings.
	IF pg_catalog.jsonb_typeof(out_headers) = 'object' THEN
		FOR hname, hvalue IN SELECT e.key, e.value #>> '{}' FROM pg_catalog.jsonb_each(out_headers) AS e
		LOOP
			IF hvalue IS NOT NULL THEN
				arr := arr || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(hname, hvalue));
			END IF;
		END LOOP;
	ELSIF pg_catalog.jsonb_typeof(out_headers) = 'array' THEN
		FOR hname, hvalue IN
			SELECT e.key, e.value #>> '{}'
			  FROM pg_catalog.jsonb_array_elements(out_headers) AS a(item),
				   pg_catalog.jsonb_each(CASE WHEN pg_catalog.jsonb_typeof(a.item) = 'object' THEN a.item ELSE '{}' END) AS e
		LOOP
			IF hvalue IS NOT NULL THEN
				arr := arr || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(hname, hvalue));
			END IF;
		END LOOP;
	END IF;

	-- a Location scim.handle left relative becomes absolute
	IF origin IS NOT NULL THEN
		SELECT coalesce(pg_catalog.jsonb_agg(
				CASE WHEN pg_catalog.lower(e.key) = 'location' AND e.value #>> '{}' ~ '^/'
					THEN pg_catalog.jsonb_build_object(e.key, origin || (e.value #>> '{}'))
					ELSE a.item
				END ORDER BY a.n), '[]')
		  INTO arr
		  FROM pg_catalog.jsonb_array_elements(arr) WITH ORDINALITY AS a(item, n),
			   pg_catalog.jsonb_each(a.item) AS e;
	END IF;

	IF NOT EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(arr) AS a(item),
							   pg_catalog.jsonb_object_keys(a.item) AS k
				   WHERE pg_catalog.lower(k) = 'content-type') THEN
		arr := arr || '[{"Content-Type": "application/scim+json"}]'::jsonb;
	END IF;
	-- RFC 7235: a 401 names its scheme
	IF status = 401 AND NOT EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(arr) AS a(item),
										   pg_catalog.jsonb_object_keys(a.item) AS k
									WHERE pg_catalog.lower(k) = 'www-authenticate') THEN
		arr := arr || '[{"WWW-Authenticate": "Bearer realm=\"SCIM\""}]'::jsonb;
	END IF;

	PERFORM pg_catalog.set_config('response.status', status::text, true);
	PERFORM pg_catalog.set_config('response.headers', arr::text, true);
	RETURN out_body;
END;
$$;

-- scim._handle: two Authorization credentials are refused (401), never one
-- picked; a route's 503 carries Retry-After.
CREATE OR REPLACE FUNCTION scim._handle(p_method text, p_path text, p_query text, p_headers jsonb, p_body text,
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
						req := scim._request_json(p_body);
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

-- Group members: the users named are locked before they are checked (a
-- DELETE racing the add answers 400, not 500 on the foreign key), and the
-- nested-group message looks groups up in the caller's workspace only.
CREATE OR REPLACE FUNCTION scim._group_check_members(workspace text, ids uuid[]) RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	missing		uuid[];
	nested		boolean;
BEGIN
	SELECT array_agg(DISTINCT x), bool_or(EXISTS (SELECT FROM scim.groups g WHERE g.id = x AND g.workspace = $1))
	INTO missing, nested
	FROM unnest(ids) AS x
	WHERE x NOT IN (SELECT u.id FROM scim.users u WHERE u.id = ANY (ids) AND u.workspace = $1 FOR KEY SHARE);
	IF missing IS NOT NULL THEN
		IF nested THEN
			RAISE EXCEPTION 'invalidValue: a group cannot be a member of a group'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Nested groups are not supported: %s is a group.',
									  (SELECT string_agg(x::text, ', ') FROM unnest(missing) x
									   WHERE EXISTS (SELECT FROM scim.groups g WHERE g.id = x AND g.workspace = $1)));
		END IF;
		RAISE EXCEPTION 'invalidValue: % member% not found', cardinality(missing),
			CASE WHEN cardinality(missing) = 1 THEN '' ELSE 's' END
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('No user with id %s exists in workspace "%s".',
								  array_to_string(missing[1:5], ', ') ||
								  CASE WHEN cardinality(missing) > 5 THEN format(' (and %s more)', cardinality(missing) - 5) ELSE '' END,
								  $1),
				  HINT = 'Members are users of the same workspace, named by their id.';
	END IF;
END;
$$;

-- (end of hardening: security)


-- ===== Hardening (#15 input): limits before cost, nesting, body size =======

-- (end of hardening: input)


-- ===== Hardening (#15 contract): text bodies, column defaults, races =======

-- (end of hardening: contract)


-- ===== System Log lifecycle (#12): partitions, retention, operator's view ==

-- (end of System Log lifecycle)


-- ===== Search (#14): multi-valued attributes indexed, deep paging ==========

-- (end of search)


-- ===== OneLogin worker (#16) ===============================================

-- (end of OneLogin worker)


-- ===== Sharding (#11): tokens that name their partition ===================

-- (end of sharding)
