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

-- scim._handle: two Authorization credentials are refused (401), never one
-- picked; a route's 503 carries Retry-After.

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
-- Request limits (src/request_limits.c, doc/LIMITS.md): scim._request_json
-- refuses bodies over scim_provision.max_body_size (413 tooLarge) and nested
-- deeper than scim_provision.max_json_depth (400) before parsing, and is
-- STABLE now that it reads settings; scim._within_operation_limit counts
-- PATCH operations and member values before anything is applied (Users and
-- Groups routes); tooLarge maps to 413 in scim._scim_error; the System Log
-- bounds its request-derived fields (scim._log_bounded, scim.log_attempt);
-- the Group PATCH collects its generic operations in O(1) each; /Bulk
-- resolves bulkIds in dependency order in one pass; ServiceProviderConfig
-- advertises the smaller of the two body limits for /Bulk.

CREATE FUNCTION scim._log_bounded(value text, max_chars integer) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN pg_catalog.length(value) OPERATOR(pg_catalog.<=) max_chars THEN value
				ELSE pg_catalog."left"(value, max_chars OPERATOR(pg_catalog.-) 14)
					 OPERATOR(pg_catalog.||) '...[truncated]' END;
$$;
COMMENT ON FUNCTION scim._log_bounded(text, integer) IS
	'Internal: a System Log field bounded to max_chars characters, marked "...[truncated]" when cut';
REVOKE ALL ON FUNCTION scim._log_bounded(text, integer) FROM PUBLIC;

CREATE FUNCTION scim._within_operation_limit(request jsonb)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'scim_within_operation_limit'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION scim._within_operation_limit(jsonb) IS
	'Internal: the request, or SCIM 413 tooLarge when it holds more than scim_provision.max_operations operations and member values';
REVOKE ALL ON FUNCTION scim._within_operation_limit(jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION scim.log_attempt(source text, method text, path text, resource_id uuid,
								 user_name text, status integer, scim_type text, detail text,
								 workspace text DEFAULT 'default')
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	log_id bigint;
BEGIN
	INSERT INTO scim.provisioning_log AS l (workspace, source, method, path, resource_id, user_name, status,
											scim_type, detail)
	-- request-derived fields bounded (doc/LIMITS.md): method 16, path 1000,
	-- user_name 256, scim_type 64, detail 2000 characters
	VALUES ($9, $1, scim._log_bounded($2, 16), scim._log_bounded($3, 1000), $4, scim._log_bounded($5, 256), $6,
			scim._log_bounded($7, 64), scim._log_bounded($8, 2000))
	RETURNING l.id INTO log_id;
	RETURN log_id;
END;
$$;

CREATE OR REPLACE FUNCTION scim._request_json(body text)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'scim_request_json'
	LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION scim._scim_error(sqlstate text, message text, message_detail text, user_name text,
								 OUT status integer, OUT scim_type text, OUT detail text)
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	prefix text;
BEGIN
	IF sqlstate = '23505' THEN
		status := 409;
		scim_type := 'uniqueness';
		detail := CASE WHEN user_name IS NOT NULL
					   THEN format('a user with userName "%s" already exists', user_name)
					   ELSE 'the resource conflicts with an existing one' END;
	ELSIF sqlstate IN ('23514', '23502') THEN
		status := 400;
		scim_type := 'invalidValue';
		detail := message;
	ELSIF left(sqlstate, 2) = '22' THEN
		status := 400;
		prefix := substring(message FROM '^([A-Za-z]+): ');
		IF prefix IN ('invalidFilter', 'invalidPath', 'noTarget', 'invalidValue', 'mutability',
					  'invalidSyntax', 'tooMany', 'uniqueness', 'invalidVers', 'sensitive', 'tooLarge') THEN
			-- tooLarge: a body or request over a limit of doc/LIMITS.md (413,
			-- as RFC 7644 section 3.7.4 answers a Bulk over its limits)
			status := CASE WHEN prefix = 'tooLarge' THEN 413 ELSE 400 END;
			scim_type := prefix;
			detail := substr(message, length(prefix) + 3);
		ELSE
			scim_type := 'invalidValue';
			detail := message;
		END IF;
	ELSIF sqlstate = '42501' THEN
		status := 403;
		detail := 'permission denied';
	ELSIF sqlstate IN ('40001', '40P01', '55P03') THEN
		-- a concurrent transaction won (serialization failure, deadlock, lock
		-- timeout): nothing was written, and the same request can succeed
		status := 503;
		detail := 'the request conflicted with a concurrent change and was not applied; retry it';
		RETURN;
	ELSE
		status := 500;
		detail := 'internal error; the server log has the details';
		RETURN;
	END IF;
	-- a unique violation's own detail names index internals: not for the client
	IF message_detail IS NOT NULL AND message_detail <> '' AND sqlstate <> '23505' THEN
		detail := detail || '. ' || message_detail;
	END IF;
END;
$$;

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

CREATE OR REPLACE FUNCTION scim.service_provider_config()
	RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.jsonb_build_object(
		'schemas', pg_catalog.jsonb_build_array('urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'),
		'patch', pg_catalog.jsonb_build_object('supported', true),
		'bulk', pg_catalog.jsonb_build_object('supported', true,	-- 67_bulk.sql; limits: GUCs of src/groups.c
			'maxOperations', pg_catalog.current_setting('scim_provision.bulk_max_operations')::integer,
			-- a /Bulk body is also a request body (scim_provision.max_body_size)
			'maxPayloadSize', LEAST(pg_catalog.current_setting('scim_provision.bulk_max_payload')::integer,
								  pg_catalog.current_setting('scim_provision.max_body_size')::integer)),
		'filter', pg_catalog.jsonb_build_object('supported', true,
			'maxResults', pg_catalog.current_setting('scim_provision.max_results')::integer),
		'changePassword', pg_catalog.jsonb_build_object('supported', false),
		'sort', pg_catalog.jsonb_build_object('supported', true),
		'pagination', pg_catalog.jsonb_build_object(	-- RFC 9865; 68_cursor.sql
			'cursor', true, 'index', true, 'defaultPaginationMethod', 'index',
			'defaultPageSize', pg_catalog.current_setting('scim_provision.max_results')::integer,
			'maxPageSize', pg_catalog.current_setting('scim_provision.max_results')::integer,
			'cursorTimeout', pg_catalog.current_setting('scim_provision.cursor_timeout')::integer),
		'etag', pg_catalog.jsonb_build_object('supported', true),
		'authenticationSchemes', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
			'type', 'oauthbearertoken',
			'name', 'OAuth Bearer Token',
			'description', 'A bearer token created with scim.create_token, sent as "Authorization: Bearer <token>"; every endpoint requires it.',
			'specUri', 'https://www.rfc-editor.org/info/rfc6750',
			'primary', true)),
		'meta', pg_catalog.jsonb_build_object(
			'resourceType', 'ServiceProviderConfig',
			'location', pg_catalog.rtrim(pg_catalog.current_setting('scim_provision.base_url'), '/') || '/ServiceProviderConfig'));
$$;

CREATE OR REPLACE FUNCTION scim._group_patch(workspace text, g scim.groups, request jsonb,
								  OUT result scim.groups, OUT added bigint, OUT removed bigint)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	ops			jsonb;
	op			jsonb;
	opname		text;
	path		text;
	bare		text;
	value		jsonb;
	has_value	boolean;
	mv			jsonb;
	rest		jsonb;
	m			text[];
	ids			uuid[];
	generic		jsonb[] := '{}';		-- appended in place: O(1) per operation
	patched		jsonb;
	n			integer := 0;
BEGIN
	added := 0;
	removed := 0;
	PERFORM scim._require_object(request, 'a PATCH body');
	SELECT e.value INTO ops FROM jsonb_each(request) e WHERE lower(e.key) = 'operations';
	IF jsonb_typeof(ops) IS DISTINCT FROM 'array' OR jsonb_array_length(ops) = 0 THEN
		RAISE EXCEPTION 'invalidSyntax: a PATCH body needs a non-empty "Operations" array'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	FOR op IN SELECT o FROM jsonb_array_elements(ops) o
	LOOP
		n := n + 1;
		IF jsonb_typeof(op) <> 'object' THEN
			RAISE EXCEPTION 'invalidSyntax: operation % is not a JSON object', n
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		SELECT lower(e.value #>> '{}') INTO opname FROM jsonb_each(op) e WHERE lower(e.key) = 'op';
		SELECT e.value INTO value FROM jsonb_each(op) e WHERE lower(e.key) = 'value';
		has_value := value IS NOT NULL AND jsonb_typeof(value) <> 'null';
		SELECT e.value INTO mv FROM jsonb_each(op) e WHERE lower(e.key) = 'path';
		IF mv IS NOT NULL AND jsonb_typeof(mv) NOT IN ('string', 'null') THEN
			RAISE EXCEPTION 'invalidPath: the path of operation % must be a string', n
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		path := nullif(btrim(mv #>> '{}'), '');
		IF opname IS NULL OR opname NOT IN ('add', 'remove', 'replace') THEN
			RAISE EXCEPTION 'invalidSyntax: operation % has op "%"; it must be add, remove or replace',
				n, coalesce(opname, '')
				USING ERRCODE = 'invalid_parameter_value';
		END IF;

		IF path IS NULL THEN
			-- no path: the value's keys are attributes; members handled here
			IF opname = 'remove' THEN
				RAISE EXCEPTION 'noTarget: a remove operation needs a path'
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			IF jsonb_typeof(value) IS DISTINCT FROM 'object' THEN
				RAISE EXCEPTION 'invalidValue: operation % has no path, so its value must be an object', n
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			mv := scim._group_attr(value, 'members');
			SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}') INTO rest
			FROM jsonb_each(value) e
			WHERE lower(e.key) NOT IN ('members', 'urn:ietf:params:scim:schemas:core:2.0:group:members');
			IF mv IS NOT NULL THEN
				IF opname = 'add' THEN
					added := added + scim._group_add_members($1, g.id, scim._member_ids(mv));
				ELSE
					SELECT _group_patch.added + s.added, _group_patch.removed + s.removed INTO added, removed
					FROM scim._group_set_members($1, g.id, scim._member_ids(mv)) s;
				END IF;
			END IF;
			IF rest <> '{}' THEN
				generic := array_append(generic, jsonb_build_object('op', opname, 'value', rest));
			END IF;
			CONTINUE;
		END IF;

		bare := regexp_replace(path, '^urn:ietf:params:scim:schemas:core:2\.0:group:', '', 'i');
		IF lower(bare) = 'members' THEN
			IF opname = 'add' THEN
				IF NOT has_value THEN
					RAISE EXCEPTION 'invalidValue: adding members needs a value'
						USING ERRCODE = 'invalid_parameter_value';
				END IF;
				added := added + scim._group_add_members($1, g.id, scim._member_ids(value));
			ELSIF opname = 'replace' THEN
				SELECT _group_patch.added + s.added, _group_patch.removed + s.removed INTO added, removed
				FROM scim._group_set_members($1, g.id, scim._member_ids(value)) s;
			ELSIF has_value THEN
				-- Entra ID: {"op":"Remove","path":"members","value":[{"value":"<id>"}]}
				removed := removed + scim._group_remove_members(g.id, scim._member_ids(value));
			ELSE
				SELECT _group_patch.added + s.added, _group_patch.removed + s.removed INTO added, removed
				FROM scim._group_set_members($1, g.id, '{}') s;
			END IF;
		ELSIF bare ~* '^members\s*\[' THEN
			m := regexp_match(bare, '^members\s*\[(.*)\]\s*(\.\s*(\S*))?$', 'i');
			IF m IS NULL THEN
				RAISE EXCEPTION 'invalidPath: "%" is not a valid path', left(path, 200)
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			IF m[2] IS NOT NULL THEN
				RAISE EXCEPTION 'invalidPath: the sub-attributes of a member cannot be changed one by one'
					USING ERRCODE = 'invalid_parameter_value',
						  DETAIL = format('Path "%s": add, replace or remove whole members instead.', left(path, 200));
			END IF;
			IF opname = 'add' THEN
				RAISE EXCEPTION 'invalidPath: add takes the path "members", not a value filter'
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			ids := scim._group_members_matching(g.id, m[1]);
			IF opname = 'remove' THEN
				-- removing members that are not there is not an error: IdPs
				-- retry, and the result is what they asked for
				removed := removed + scim._group_remove_members(g.id, ids);
			ELSE
				IF cardinality(ids) = 0 THEN
					RAISE EXCEPTION 'noTarget: no member matches "%"', left(m[1], 200)
						USING ERRCODE = 'invalid_parameter_value';
				END IF;
				IF NOT has_value THEN
					RAISE EXCEPTION 'invalidValue: replace needs a value'
						USING ERRCODE = 'invalid_parameter_value';
				END IF;
				removed := removed + scim._group_remove_members(g.id, ids);
				added := added + scim._group_add_members($1, g.id, scim._member_ids(value));
			END IF;
		ELSIF bare ~* '^members\s*\.' THEN
			RAISE EXCEPTION 'invalidPath: the sub-attributes of members cannot be changed on their own'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Path "%s": add, replace or remove whole members instead.', left(path, 200));
		ELSE
			generic := array_append(generic, op);
		END IF;
	END LOOP;

	IF cardinality(generic) > 0 THEN
		patched := scim.patch_apply(scim._group_json(g, false), to_jsonb(generic));
		g.display_name := scim._group_display_name(scim._group_attr(patched, 'displayName'));
		g.external_id := scim._group_external_id(scim._group_attr(patched, 'externalId'));
		PERFORM scim._group_check_name($1, g.id, g.display_name);
	END IF;
	result := scim._group_finish(g, added + removed > 0);
END;
$$;

CREATE OR REPLACE FUNCTION scim._groups_route(ws text, m text, segs text[], params jsonb, hdr jsonb, p_body text,
								   OUT status integer, OUT headers jsonb, OUT body jsonb,
								   OUT log_id uuid, OUT log_user text, OUT log_type text,
								   OUT log_detail text, OUT allow text)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	nseg		integer := cardinality(segs);
	seg2		text := segs[2];
	gid			uuid;
	g			scim.groups;
	req			jsonb;
	total		bigint;
	res			record;
	attrs		text := params ->> 'attributes';
	excl		text := params ->> 'excludedAttributes';
	err_state	text;
	err_msg		text;
	err_detail	text;
BEGIN
	headers := '{}';
	BEGIN
		IF nseg = 1 THEN
			IF m = 'GET' THEN
				SELECT l.body, l.total INTO body, total FROM scim._list_groups(ws, params) l;
				status := 200;
				log_detail := format('%s of %s result(s)', body -> 'itemsPerPage', total)
					|| coalesce('; filter: ' || (params ->> 'filter'), '');
			ELSIF m = 'POST' THEN
				req := scim._within_operation_limit(scim._request_json(p_body));
				IF jsonb_typeof(req) = 'object' AND jsonb_typeof(scim._group_attr(req, 'displayName')) = 'string' THEN
					log_user := scim._group_attr(req, 'displayName') #>> '{}';
				END IF;
				g := scim._group_create(ws, req);
				log_id := g.id;
				status := 201;
				body := scim.group_resource(g, attrs, excl);
				headers := jsonb_build_object(
					'Location', scim._base_url() || '/Groups/' || g.id,
					'ETag', format('W/"%s"', g.version));
			ELSE
				allow := 'GET, POST';
			END IF;
		ELSIF nseg = 2 AND lower(seg2) = '.search' THEN
			IF m = 'POST' THEN
				req := scim._request_json(p_body);
				SELECT l.body, l.total INTO body, total
				FROM scim._list_groups(ws, scim._search_params(req) || scim._cursor_param(req)) l;
				status := 200;
				log_detail := format('%s of %s result(s)', body -> 'itemsPerPage', total)
					|| coalesce('; filter: ' || (req ->> 'filter'), '');
			ELSE
				allow := 'POST';
			END IF;
		ELSIF nseg = 2 THEN
			IF m NOT IN ('GET', 'PUT', 'PATCH', 'DELETE') THEN
				allow := 'GET, PUT, PATCH, DELETE';
			ELSE
				IF seg2 ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' THEN
					gid := seg2::uuid;
					log_id := gid;
					IF m = 'GET' THEN
						SELECT * INTO g FROM scim.groups x WHERE x.id = gid AND x.workspace = ws;
					ELSE
						g := scim._group_lock(ws, gid);
					END IF;
				END IF;
				log_user := g.display_name;
				IF g.id IS NULL THEN
					status := 404;
					log_detail := format('no group with id "%s"', left(seg2, 100));
				ELSIF m <> 'GET' AND hdr ? 'if-match' AND NOT scim._etag_matches(hdr ->> 'if-match', g.version) THEN
					status := 412;
					log_detail := format('If-Match %s does not match the current version W/"%s"',
										 left(hdr ->> 'if-match', 100), g.version);
				ELSIF m = 'GET' THEN
					IF hdr ? 'if-none-match' AND scim._etag_matches(hdr ->> 'if-none-match', g.version) THEN
						status := 304;
					ELSE
						status := 200;
						body := scim.group_resource(g, attrs, excl);
					END IF;
				ELSIF m = 'PUT' THEN
					SELECT * INTO res FROM scim._group_replace(ws, g, scim._within_operation_limit(scim._request_json(p_body)));
					g := res.result;
					log_user := g.display_name;
					status := 200;
					body := scim.group_resource(g, attrs, excl);
					log_detail := format('%s member(s) added, %s removed', res.added, res.removed);
				ELSIF m = 'PATCH' THEN
					SELECT * INTO res FROM scim._group_patch(ws, g, scim._within_operation_limit(scim._request_json(p_body)));
					g := res.result;
					log_user := g.display_name;
					log_detail := format('%s member(s) added, %s removed', res.added, res.removed);
					-- the resource only when asked for: rendering members is O(group)
					IF coalesce(attrs, '') <> '' OR coalesce(excl, '') <> '' THEN
						status := 200;
						body := scim.group_resource(g, attrs, excl);
					ELSE
						status := 204;
					END IF;
				ELSE
					DELETE FROM scim.groups x WHERE x.id = g.id;
					status := 204;
					log_detail := 'group deleted';
				END IF;
				IF status IN (200, 204, 304) AND m <> 'DELETE' THEN
					headers := jsonb_build_object('ETag', format('W/"%s"', g.version));
				END IF;
			END IF;
		ELSE
			status := 404;
		END IF;
		PERFORM set_config('scim.group_write', '', true);
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT, err_detail = PG_EXCEPTION_DETAIL;
		SELECT e.status, e.scim_type, e.detail INTO status, log_type, log_detail
		FROM scim._group_error(err_state, err_msg, err_detail) e;
		IF status = 500 THEN
			RAISE LOG 'scim_provision: % /Groups failed: % (SQLSTATE %)', m, err_msg, err_state;
		END IF;
		IF m = 'POST' THEN
			log_id := NULL;		-- the new group was rolled back
		END IF;
		headers := '{}';
		body := NULL;
	END;
END;
$$;

CREATE OR REPLACE FUNCTION scim._bulk_route(ws text, m text, hdr jsonb, p_body text,
								 OUT status integer, OUT headers jsonb, OUT body jsonb,
								 OUT log_type text, OUT log_detail text, OUT allow text)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	max_ops		integer := current_setting('scim_provision.bulk_max_operations')::integer;
	max_bytes	integer := current_setting('scim_provision.bulk_max_payload')::integer;
	req			jsonb;
	ops			jsonb;
	fail_on		jsonb;
	fail_limit	bigint;
	n			integer;
	i			integer;
	j			integer;
	d			integer;
	p			integer;
	c			integer;
	op_method	text;
	op_path		text;
	op_bulk		text;
	op_data		text;
	op_hdr		jsonb;
	-- per operation, read once
	is_obj		boolean[];
	methods		text[];
	paths		text[];
	bulks		text[];
	datas		text[];
	versions	text[];
	malformed	boolean[];
	refs		jsonb[];			-- the bulkIds it references (a JSON array)
	-- the dependency graph: edges d -> j (j references the POST at d)
	defined		jsonb;				-- bulkId -> index of the POST defining it
	e_from		integer[] := '{}';
	e_to		integer[] := '{}';
	e_first		integer[];
	e_last		integer[];
	pending		integer[];			-- references not yet resolved
	lvl			integer[];			-- the scan it runs in
	queued		boolean[];
	-- the run
	heap		bigint[] := '{}';	-- (scan * (n + 1) + index), a min-heap
	hn			integer := 0;
	newkeys		bigint[] := '{}';
	hkey		bigint;
	tmp			bigint;
	cur_lvl		integer;
	done		boolean[];
	failed_op	boolean[];			-- a POST that failed
	res_id		text[];				-- the id a POST created
	results		jsonb[];
	my_refs		text[];
	bad_ref		text;
	any_failed	boolean;
	op_ids		jsonb;
	dup			text;
	errors		bigint := 0;
	ran			integer := 0;
	stopped		boolean := false;
	r			record;
	loc			text;
	base_hdr	jsonb;
	err_state	text;
	err_msg		text;
	err_detail	text;
BEGIN
	headers := '{}';
	IF m <> 'POST' THEN
		allow := 'POST';
		RETURN;
	END IF;
	BEGIN
		IF octet_length(p_body) > max_bytes THEN
			RAISE EXCEPTION 'tooLarge: the request is % bytes; maxPayloadSize is %', octet_length(p_body), max_bytes
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		req := scim._request_json(p_body);
		IF jsonb_typeof(req) IS DISTINCT FROM 'object' THEN
			RAISE EXCEPTION 'invalidSyntax: a BulkRequest must be a JSON object'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		SELECT e.value INTO ops FROM jsonb_each(req) e WHERE lower(e.key) = 'operations';
		IF jsonb_typeof(ops) IS DISTINCT FROM 'array' THEN
			RAISE EXCEPTION 'invalidSyntax: a BulkRequest needs an "Operations" array'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		n := jsonb_array_length(ops);
		IF n > max_ops THEN
			RAISE EXCEPTION 'tooLarge: the request has % operations; maxOperations is %', n, max_ops
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		SELECT e.value INTO fail_on FROM jsonb_each(req) e WHERE lower(e.key) = 'failonerrors';
		IF fail_on IS NOT NULL AND jsonb_typeof(fail_on) <> 'null' THEN
			IF NOT (fail_on #>> '{}') ~ '^\s*[0-9]+\s*$' OR (fail_on #>> '{}')::numeric < 1 THEN
				RAISE EXCEPTION 'invalidValue: failOnErrors must be a positive integer'
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			fail_limit := least((fail_on #>> '{}')::numeric, 9223372036854775807)::bigint;
		END IF;

		-- each operation's members, read once (names in any case; the first
		-- of repeated names, as jsonb orders them)
		SELECT array_agg(o.obj ORDER BY o.k), array_agg(f.method ORDER BY o.k), array_agg(f.path ORDER BY o.k),
			   array_agg(f.bulk ORDER BY o.k), array_agg(f.data ORDER BY o.k), array_agg(f.version ORDER BY o.k)
		  INTO is_obj, methods, paths, bulks, datas, versions
		  FROM (SELECT a.k, a.op, jsonb_typeof(a.op) = 'object' AS obj
				  FROM jsonb_array_elements(ops) WITH ORDINALITY a(op, k)) o,
			   LATERAL (SELECT (array_agg(upper(e.value #>> '{}')) FILTER (WHERE lower(e.key) = 'method'))[1] AS method,
							   (array_agg(e.value #>> '{}') FILTER (WHERE lower(e.key) = 'path'))[1] AS path,
							   (array_agg(e.value #>> '{}') FILTER (WHERE lower(e.key) = 'bulkid'))[1] AS bulk,
							   (array_agg(e.value::text) FILTER (WHERE lower(e.key) = 'data'))[1] AS data,
							   (array_agg(e.value #>> '{}') FILTER (WHERE lower(e.key) = 'version'
																   AND jsonb_typeof(e.value) = 'string'))[1] AS version
						  FROM jsonb_each(CASE WHEN o.obj THEN o.op ELSE '{}'::jsonb END) e) f;

		-- a bulkId defined by two POSTs refuses the request (the first
		-- repetition in request order is named)
		SELECT x.bulk INTO dup
		  FROM unnest(is_obj, methods, bulks) WITH ORDINALITY x(obj, method, bulk, k)
		 WHERE x.obj AND x.method = 'POST' AND x.bulk IS NOT NULL
		 GROUP BY x.bulk HAVING count(*) > 1
		 ORDER BY (array_agg(x.k ORDER BY x.k))[2] LIMIT 1;
		IF dup IS NOT NULL THEN
			RAISE EXCEPTION 'invalidValue: bulkId "%" is used by two operations', left(dup, 100)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		SELECT coalesce(jsonb_object_agg(x.bulk, x.k), '{}') INTO defined
		  FROM unnest(is_obj, methods, bulks) WITH ORDINALITY x(obj, method, bulk, k)
		 WHERE x.obj AND x.method = 'POST' AND x.bulk IS NOT NULL;

		base_hdr := hdr - 'if-match' - 'if-none-match';
		done := array_fill(false, ARRAY[greatest(n, 1)]);
		failed_op := array_fill(false, ARRAY[greatest(n, 1)]);
		queued := array_fill(false, ARRAY[greatest(n, 1)]);
		malformed := array_fill(false, ARRAY[greatest(n, 1)]);
		pending := array_fill(0, ARRAY[greatest(n, 1)]);
		lvl := array_fill(1, ARRAY[greatest(n, 1)]);
		res_id := array_fill(NULL::text, ARRAY[greatest(n, 1)]);
		refs := array_fill(NULL::jsonb, ARRAY[greatest(n, 1)]);
		results := array_fill(NULL::jsonb, ARRAY[greatest(n, 1)]);

		-- malformed operations are answered without being run, in the first
		-- scan; the others wait for the POSTs they reference
		FOR i IN 1 .. n LOOP
			op_method := methods[i];
			op_path := paths[i];
			malformed[i] := NOT is_obj[i]
				OR op_method IS NULL OR op_method NOT IN ('POST', 'PUT', 'PATCH', 'DELETE')
				OR op_path IS NULL OR op_path !~* '^/(Users|Groups)(/[^/?]+)?$'
				OR (op_method = 'POST' AND (bulks[i] IS NULL OR op_path !~* '^/(Users|Groups)$'))
				OR (op_method <> 'POST' AND op_path !~* '^/(Users|Groups)/[^/?]+$')
				OR (op_method IN ('POST', 'PUT', 'PATCH') AND datas[i] IS NULL);
			IF malformed[i] THEN
				queued[i] := true;
				newkeys := array_append(newkeys, (n + 1)::bigint + i);
				CONTINUE;
			END IF;
			my_refs := scim._bulk_refs(op_path, datas[i]);
			refs[i] := to_jsonb(my_refs);
			FOREACH op_bulk IN ARRAY my_refs LOOP
				IF defined ? op_bulk THEN
					e_from := array_append(e_from, (defined ->> op_bulk)::integer);
					e_to := array_append(e_to, i);
					pending[i] := pending[i] + 1;
				ELSE
					pending[i] := -1;	-- an undefined bulkId: 409 in the first scan
					EXIT;
				END IF;
			END LOOP;
			IF pending[i] <= 0 THEN
				queued[i] := true;
				newkeys := array_append(newkeys, (n + 1)::bigint + i);
			END IF;
		END LOOP;

		-- the edges grouped by the POST they wait on
		SELECT coalesce(array_agg(u.f ORDER BY u.f, u.t), '{}'), coalesce(array_agg(u.t ORDER BY u.f, u.t), '{}')
		  INTO e_from, e_to FROM unnest(e_from, e_to) u(f, t);
		e_first := array_fill(0, ARRAY[greatest(n, 1)]);
		e_last := array_fill(-1, ARRAY[greatest(n, 1)]);
		FOR p IN 1 .. coalesce(cardinality(e_from), 0) LOOP
			IF e_first[e_from[p]] = 0 THEN
				e_first[e_from[p]] := p;
			END IF;
			e_last[e_from[p]] := p;
		END LOOP;

		LOOP
			-- push what became ready
			FOREACH hkey IN ARRAY newkeys LOOP
				hn := hn + 1;
				heap[hn] := hkey;
				c := hn;
				WHILE c > 1 AND heap[c / 2] > heap[c] LOOP
					tmp := heap[c / 2];
					heap[c / 2] := heap[c];
					heap[c] := tmp;
					c := c / 2;
				END LOOP;
			END LOOP;
			newkeys := '{}';
			EXIT WHEN hn = 0 OR stopped;

			-- pop the next (scan, index)
			hkey := heap[1];
			heap[1] := heap[hn];
			hn := hn - 1;
			c := 1;
			LOOP
				p := c;
				IF 2 * c <= hn AND heap[2 * c] < heap[p] THEN
					p := 2 * c;
				END IF;
				IF 2 * c + 1 <= hn AND heap[2 * c + 1] < heap[p] THEN
					p := 2 * c + 1;
				END IF;
				EXIT WHEN p = c;
				tmp := heap[p];
				heap[p] := heap[c];
				heap[c] := tmp;
				c := p;
			END LOOP;
			cur_lvl := (hkey / (n + 1))::integer;
			i := (hkey % (n + 1))::integer;

			op_method := methods[i];
			op_path := paths[i];
			op_bulk := bulks[i];
			op_data := datas[i];
			op_hdr := base_hdr || CASE WHEN versions[i] IS NOT NULL THEN jsonb_build_object('if-match', versions[i]) ELSE '{}' END;
			IF malformed[i] THEN
				results[i] := scim._bulk_result(op_method, op_bulk, 400, '{}', scim._error(400, 'invalidSyntax',
					CASE WHEN NOT is_obj[i] THEN format('operation %s is not a JSON object', i)
						 WHEN op_method IS NULL OR op_method NOT IN ('POST', 'PUT', 'PATCH', 'DELETE')
							THEN format('operation %s: method must be POST, PUT, PATCH or DELETE', i)
						 WHEN op_method = 'POST' AND op_bulk IS NULL THEN format('operation %s: a POST needs a bulkId', i)
						 WHEN op_method IN ('POST', 'PUT', 'PATCH') AND op_data IS NULL AND op_path IS NOT NULL
							  AND op_path ~* '^/(Users|Groups)(/[^/?]+)?$'
							THEN format('operation %s: %s needs data', i, op_method)
						 ELSE format('operation %s: path "%s" is not a resource endpoint for %s', i, left(coalesce(op_path, ''), 100), op_method) END),
					NULL);
				IF op_method = 'POST' AND op_bulk IS NOT NULL THEN
					failed_op[i] := true;
				END IF;
			ELSE
				-- the references not resolved yet that never will be
				SELECT x, EXISTS (SELECT FROM jsonb_array_elements_text(refs[i]) y
								  WHERE defined ? y AND failed_op[(defined ->> y)::integer])
				  INTO bad_ref, any_failed
				  FROM jsonb_array_elements_text(refs[i]) WITH ORDINALITY z(x, o)
				 WHERE NOT defined ? x OR failed_op[(defined ->> x)::integer]
				 ORDER BY o LIMIT 1;
				IF bad_ref IS NOT NULL THEN
					results[i] := scim._bulk_result(op_method, op_bulk, 409, '{}', scim._error(409, 'invalidValue',
						format('operation %s references bulkId "%s", which %s', i, bad_ref,
							   CASE WHEN any_failed THEN 'failed' ELSE 'no POST of this request defines' END)),
						NULL);
					IF op_method = 'POST' THEN
						failed_op[i] := true;
					END IF;
				ELSE
					my_refs := ARRAY(SELECT jsonb_array_elements_text(refs[i]));
					SELECT coalesce(jsonb_object_agg(x, res_id[(defined ->> x)::integer]), '{}') INTO op_ids
					  FROM unnest(my_refs) x;
					op_path := scim._bulk_substitute(op_path, op_ids, my_refs, true);
					op_data := scim._bulk_substitute(op_data, op_ids, my_refs, false);
					SELECT * INTO r FROM scim._handle(op_method, op_path, NULL, op_hdr, op_data);
					ran := ran + 1;
					loc := CASE WHEN op_method <> 'POST' AND r.status < 400 THEN scim._base_url() || op_path END;
					results[i] := scim._bulk_result(op_method, op_bulk, r.status, r.headers, r.body, loc);
					IF op_method = 'POST' THEN
						IF r.status < 400 AND r.body ->> 'id' IS NOT NULL THEN
							res_id[i] := r.body ->> 'id';
						ELSE
							failed_op[i] := true;
						END IF;
					END IF;
				END IF;
			END IF;
			done[i] := true;

			-- the operations waiting on this POST: in this scan when they
			-- come after it, else in the next; one that waits on a failed
			-- POST is answered (409) at the first scan that sees the failure
			IF op_method = 'POST' AND op_bulk IS NOT NULL AND i <= cardinality(e_first) AND e_first[i] > 0 THEN
				FOR p IN e_first[i] .. e_last[i] LOOP
					j := e_to[p];
					CONTINUE WHEN queued[j];
					d := cur_lvl + CASE WHEN i > j THEN 1 ELSE 0 END;
					IF failed_op[i] THEN
						queued[j] := true;
						newkeys := array_append(newkeys, d::bigint * (n + 1) + j);
					ELSE
						lvl[j] := greatest(lvl[j], d);
						pending[j] := pending[j] - 1;
						IF pending[j] = 0 THEN
							queued[j] := true;
							newkeys := array_append(newkeys, lvl[j]::bigint * (n + 1) + j);
						END IF;
					END IF;
				END LOOP;
			END IF;

			IF (results[i] ->> 'status')::integer >= 400 THEN
				errors := errors + 1;
				IF errors >= fail_limit THEN
					stopped := true;
				END IF;
			END IF;
		END LOOP;

		-- what is left waits on itself: a cycle of bulkIds
		IF NOT stopped THEN
			FOR i IN 1 .. n LOOP
				CONTINUE WHEN done[i];
				results[i] := scim._bulk_result(methods[i], bulks[i], 409, '{}', scim._error(409, 'invalidValue',
					format('operation %s is part of a cycle of bulkId references that cannot be resolved', i)), NULL);
				errors := errors + 1;
			END LOOP;
		END IF;

		status := 200;
		body := jsonb_build_object(
			'schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:BulkResponse'),
			'Operations', coalesce((SELECT jsonb_agg(x ORDER BY k) FROM unnest(results) WITH ORDINALITY u(x, k)
									WHERE x IS NOT NULL), '[]'::jsonb));
		log_detail := format('%s operation(s): %s succeeded, %s failed', n,
							 jsonb_array_length(body -> 'Operations') - errors, errors)
			|| CASE WHEN stopped AND jsonb_array_length(body -> 'Operations') < n
					THEN format('; stopped by failOnErrors=%s', fail_limit) ELSE '' END;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT, err_detail = PG_EXCEPTION_DETAIL;
		SELECT e.status, e.scim_type, e.detail INTO status, log_type, log_detail
		FROM scim._group_error(err_state, err_msg, err_detail) e;
		IF status = 500 THEN
			RAISE LOG 'scim_provision: POST /Bulk failed: % (SQLSTATE %)', err_msg, err_state;
		END IF;
		body := NULL;
	END;
END;
$$;

-- (end of hardening: input)


-- ===== Hardening (#15 contract): text bodies, column defaults, races =======

-- #15.15: a plain INSERT without workspace lands in 'default', like every
-- function's workspace argument (it failed in the users trigger with
-- "e-mail domain ... is not approved for workspace "<NULL>"").
ALTER TABLE scim.users ALTER COLUMN workspace SET DEFAULT 'default';
ALTER TABLE scim.groups ALTER COLUMN workspace SET DEFAULT 'default';
ALTER TABLE scim.approved_domains ALTER COLUMN workspace SET DEFAULT 'default';
ALTER TABLE scim.tokens ALTER COLUMN workspace SET DEFAULT 'default';

-- #15.6 and #15.10: dispatch takes the raw body (text/plain) and accepts a
-- base URL from request headers only when it is a plain http(s)://host
-- [:port][/path]; the header handling moves into scim._dispatch, which both
-- dispatch variants call.
-- scim._valid_base_url(url): is url an absolute SCIM base URL that may be
-- put into Location and meta.location?  Only "http" or "https", "://", a
-- host name (dot-separated labels of letters, digits and inner hyphens, at
-- most 63 characters each), an IPv4 address or a bracketed IPv6 address, an
-- optional port 1-65535, and an optional path prefix of "/"-separated
-- segments of unreserved characters (letters, digits, "-", ".", "_", "~").
-- The headers dispatch builds it from (X-Scim-Uri, X-Forwarded-Host,
-- X-Forwarded-Proto) are the client's to choose whenever a proxy passes them
-- on; anything else (quotes, angle brackets, spaces, userinfo, a query or
-- fragment, percent-escapes, a host list) leaves locations relative.
CREATE FUNCTION scim._valid_base_url(url text) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.length(url) <= 2048
	   AND url OPERATOR(pg_catalog.~) ('^[Hh][Tt][Tt][Pp][Ss]?://'
			|| '([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*'
			|| '|\[[0-9A-Fa-f:.]{2,45}\])'
			|| '(:[0-9]{1,5})?'
			|| '(/[A-Za-z0-9._~-]+)*$')
	   AND pg_catalog.length(pg_catalog.substring(url, '^[A-Za-z]+://([^/:[]+|\[[^]]*\])')) <= 253
	   AND coalesce(pg_catalog.substring(url, '^[A-Za-z]+://(?:[^/:[]+|\[[^]]*\]):([0-9]+)')::integer
					BETWEEN 1 AND 65535, true)
$$;
COMMENT ON FUNCTION scim._valid_base_url(text) IS
	'true when url is http(s)://host[:port][/path] of safe characters only: what dispatch accepts as a base URL built from request headers';

-- scim._dispatch(req_text, from_json): one PostgREST request -> scim.handle
-- -> response.  Both scim_api.dispatch variants call it; it is the one
-- place that reads the request headers.
--
-- Reads the request.headers setting PostgREST fills (lower-cased names):
--   x-scim-method  the IdP's method (GET, POST, PUT, PATCH, DELETE)
--   x-scim-uri     the IdP's request URI as nginx's $request_uri has it, e.g.
--                  /scim/v2/Users?filter=userName%20eq%20%22a%22; the base, up
--                  to and including the first "/v2" segment, is stripped, the
--                  rest of the path is percent-decoded, the query stays raw
--   x-scim-token   the IdP's Authorization value, "Bearer <token>"
-- and passes the other headers on (If-Match, ...) with authorization set to
-- x-scim-token.  req_text is the body as the IdP sent it (from_json false:
-- dispatch(text), PostgREST passes an empty body as '') or PostgREST's
-- re-rendering of a parsed JSON body (from_json true: dispatch(jsonb), an
-- empty body arrives as {}); either kind of "no body" is passed on as NULL
-- ({} only on GET, HEAD and DELETE).  A body that is not JSON reaches
-- scim.handle, which answers 400 invalidSyntax and logs it.
--
-- Unless the administrator set scim_provision.base_url, the base URL the IdP
-- used (an absolute X-Scim-Uri's own, else X-Forwarded-Proto ://
-- X-Forwarded-Host, then the stripped base path) is set as
-- scim_provision.base_url for the request, so meta.location and Location
-- are absolute; when it is not a valid base URL (scim._valid_base_url) the
-- locations stay relative.
--
-- Sets response.status and response.headers (a JSON array of single-key
-- objects: Content-Type, Location, ETag, WWW-Authenticate) and returns the
-- SCIM body.  It never raises: an error is a SCIM error body with its status,
-- so PostgREST commits, and a refused request keeps its System Log row only
-- (scim.handle rolls the attempt back and logs it).  A request without
-- X-Scim-Method or X-Scim-Uri is answered 400; an error escaping scim.handle
-- is answered 500 with a generic detail, logged, and reported to the server
-- log.  Not SECURITY DEFINER itself: the scim_api functions that call it are.
CREATE FUNCTION scim._dispatch(req_text text, from_json boolean)
	RETURNS jsonb
	LANGUAGE plpgsql VOLATILE
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
	fwd_proto	text;
	auth_value	jsonb;
	err_state	text;
	err_msg		text;
	request_id	text;
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

		-- the request's correlation id (#12): X-Request-Id as the IdP or nginx
		-- sent it, else a new one; every System Log row of the request has it
		request_id := req_headers ->> 'x-request-id';
		IF request_id IS NULL OR request_id !~ '^[A-Za-z0-9._:@/+=-]{1,200}$' THEN
			request_id := pg_catalog.gen_random_uuid()::text;
		END IF;
		PERFORM pg_catalog.set_config('scim_provision.request_id', request_id, true);

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

				-- no body: '' as text/plain, {} as JSON (PostgREST's rendering
				-- of an empty JSON body)
				IF req_text IS NULL OR (NOT from_json AND req_text = '')
				   OR (from_json AND req_text = '{}' AND method IN ('GET', 'HEAD', 'DELETE')) THEN
					req_body := NULL;
				ELSE
					req_body := req_text;
				END IF;

				-- The SCIM base URL as the IdP sees it: an absolute URI's own,
				-- else X-Forwarded-Proto (https when absent) :// X-Forwarded-Host
				-- followed by the base path.  Unless the administrator set
				-- scim_provision.base_url, scim.handle builds meta.location and
				-- Location from it for this request.  Every part comes from a
				-- request header: anything but a plain http(s)://host[:port]
				-- [/path] leaves the locations relative.
				IF base ~ '^[A-Za-z][A-Za-z0-9+.-]*:' THEN
					origin := base;
				ELSIF pg_catalog.jsonb_typeof(req_headers -> 'x-forwarded-host') = 'string' THEN
					fwd_proto := coalesce(nullif(pg_catalog.lower(pg_catalog.btrim(req_headers ->> 'x-forwarded-proto')), ''), 'https');
					origin := fwd_proto || '://' || (req_headers ->> 'x-forwarded-host') || base;
				END IF;
				IF NOT coalesce(scim._valid_base_url(origin), false) THEN
					origin := NULL;
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
		IF request_id IS NOT NULL THEN	-- the failed block's setting was rolled back
			PERFORM pg_catalog.set_config('scim_provision.request_id', request_id, true);
		END IF;
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

	IF request_id IS NOT NULL THEN
		arr := arr || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('X-Request-Id', request_id));
	END IF;

	PERFORM pg_catalog.set_config('response.status', status::text, true);
	PERFORM pg_catalog.set_config('response.headers', arr::text, true);
	RETURN out_body;
END;
$$;
COMMENT ON FUNCTION scim._dispatch(text, boolean) IS
	'What both scim_api.dispatch variants run: the proxy''s headers to scim.handle and its answer to response.status/response.headers';

-- scim_api.dispatch(text): the PostgREST entry point.  nginx sends the IdP's
-- body untouched with Content-Type: text/plain; PostgREST hands a text/plain
-- body to a function with a single unnamed text parameter as it is, so a
-- body that is not JSON is answered by scim.handle (400 invalidSyntax, a
-- System Log row) instead of by PostgREST.  SECURITY DEFINER: scim_client
-- has no access to schema scim.
CREATE FUNCTION scim_api.dispatch(text)
	RETURNS scim_api."application/scim+json"
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
	SET log_min_error_statement = panic
	SET log_error_verbosity = terse
AS $$
BEGIN
	RETURN scim._dispatch($1, false);
END;
$$;
COMMENT ON FUNCTION scim_api.dispatch(text) IS
	'PostgREST entry point: POST /rpc/dispatch, Content-Type text/plain (the raw body), with X-Scim-Method, X-Scim-Uri and X-Scim-Token set by the proxy; calls scim.handle and answers with its status, headers and SCIM body';

-- scim_api.dispatch(jsonb): the 0.2.0 entry point, for a proxy that still
-- sends Content-Type: application/json (PostgREST then refuses a body that
-- is not JSON itself, in its own error format and without a System Log
-- row).  PostgREST picks the variant by Content-Type (a single unnamed
-- parameter: text for text/plain, json/jsonb for application/json), so the
-- two are never ambiguous to it.  Kept through 0.3.x; deploy/README.md says
-- how to switch.
CREATE OR REPLACE FUNCTION scim_api.dispatch(jsonb)
	RETURNS scim_api."application/scim+json"
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
	SET log_min_error_statement = panic
	SET log_error_verbosity = terse
AS $$
BEGIN
	RETURN scim._dispatch($1::text, true);
END;
$$;
COMMENT ON FUNCTION scim_api.dispatch(jsonb) IS
	'Deprecated PostgREST entry point (Content-Type application/json): as scim_api.dispatch(text) for a parsed JSON body; kept for 0.3.x';

REVOKE ALL ON FUNCTION scim_api.dispatch(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION scim._dispatch(text, boolean), scim._valid_base_url(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim_api.dispatch(text) TO scim_client;
NOTIFY pgrst, 'reload schema';

-- (end of hardening: contract)


-- ===== System Log lifecycle (#12): partitions, retention, operator's view ==

-- The 0.2.0 log is moved into the partitioned table: its rows keep their
-- ids, the sequence is kept (re-owned), partitions are made for every day
-- (or month, scim_provision.log_partition) that has rows and the next ones,
-- and the rows are copied straight into them.  The old table leaves the
-- extension and is dropped.  One transaction, like every update: on a large
-- log it takes the time of one copy of it (doc/OPERATIONS.md).
ALTER EXTENSION scim_provision DROP TABLE scim.provisioning_log;
ALTER SEQUENCE scim.provisioning_log_id_seq OWNED BY NONE;
ALTER TABLE scim.provisioning_log ALTER COLUMN id DROP DEFAULT;
ALTER TABLE scim.provisioning_log RENAME TO provisioning_log_0_2_0;
ALTER INDEX scim.provisioning_log_pkey RENAME TO provisioning_log_0_2_0_pkey;
ALTER INDEX scim.provisioning_log_workspace_at_idx RENAME TO provisioning_log_0_2_0_workspace_at_idx;

-- Partitioned by time (#12): scim.log_maintain_step() (src/sql/75_log_lifecycle.sql)
-- creates a partition per day or month ahead of time in schema scim_log and
-- drops whole partitions no workspace's retention still needs.  Each
-- partition has its own primary key (id, at) and indexes (workspace, at) and
-- (workspace, at) of refusals, made with it; the parent has none, so that
-- pg_dump's ATTACH of a dumped partition does not build them twice (an
-- extension's parent exists with its indexes before the dump's partitions).
-- id is unique because every writer leaves it to the sequence (no role but
-- the owner may INSERT into the table, and the functions that do never set
-- it; the update from 0.2.0 keeps the old ids and the sequence past them),
-- and the sequence never hands a value out twice.
-- A row for a time no dated partition covers lands in the DEFAULT partition
-- (never an error on the request path); maintenance moves such rows into
-- their dated partition when it creates it.  request_id: the request's
-- correlation id (X-Request-Id), which scim_api.dispatch sets as the
-- transaction-local scim_provision.request_id; every writer of the log,
-- scim.handle's fast path included, gets it from this default.
CREATE TABLE scim.provisioning_log (
	id					bigint NOT NULL DEFAULT nextval('scim.provisioning_log_id_seq'::regclass),
	at					timestamptz NOT NULL DEFAULT clock_timestamp(),
	workspace			text,
	source				scim.log_source NOT NULL,
	method				text,
	path				text,
	resource_id			uuid,
	user_name			text,
	status				integer NOT NULL,
	scim_type			text,
	detail				text,
	request_id			text DEFAULT NULLIF(pg_catalog.current_setting('scim_provision.request_id', true), '')
) PARTITION BY RANGE (at);
COMMENT ON TABLE scim.provisioning_log IS 'System Log: every provisioning attempt, accepted or refused, with its outcome';

-- The partitions live in their own schema: nobody is granted anything in it
-- (scim_reader and scim_admin read through scim.provisioning_log).  The
-- DEFAULT partition belongs to the extension; the dated ones are created by
-- maintenance and do not (pg_dump dumps them, their rows included, as
-- ordinary partitions; see doc/OPERATIONS.md).
CREATE SCHEMA scim_log;
COMMENT ON SCHEMA scim_log IS 'scim_provision: partitions of scim.provisioning_log (read through the parent)';
REVOKE ALL ON SCHEMA scim_log FROM PUBLIC;
CREATE TABLE scim_log.provisioning_log_default PARTITION OF scim.provisioning_log (PRIMARY KEY (id, at)) DEFAULT;
CREATE INDEX provisioning_log_default_workspace_at_idx ON scim_log.provisioning_log_default (workspace, at);
CREATE INDEX provisioning_log_default_errors_idx ON scim_log.provisioning_log_default (workspace, at) WHERE status >= 400;

ALTER SEQUENCE scim.provisioning_log_id_seq OWNED BY scim.provisioning_log.id;
GRANT SELECT ON scim.provisioning_log TO scim_reader, scim_admin;
SELECT pg_catalog.pg_extension_config_dump('scim_log.provisioning_log_default', '');

-- Retention per workspace.  A workspace without a row keeps 90 days; a row
-- with NULL keeps its log forever.  Log rows without a workspace (refused
-- before authentication) follow the 'default' workspace.
CREATE TABLE scim.log_retention (
	workspace			text PRIMARY KEY REFERENCES scim.workspaces (name) ON UPDATE CASCADE ON DELETE CASCADE,
	retention			interval CONSTRAINT log_retention_positive CHECK (retention > interval '0')
);
COMMENT ON TABLE scim.log_retention IS
	'How long each workspace keeps its System Log rows (no row: 90 days; NULL: forever); set with scim.set_log_retention';
SELECT pg_catalog.pg_extension_config_dump('scim.log_retention', '');
GRANT SELECT ON scim.log_retention TO scim_reader, scim_admin;

CREATE FUNCTION scim.set_log_retention(retention interval, workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM scim.workspaces w WHERE w.name = set_log_retention.workspace) THEN
		RAISE EXCEPTION 'workspace "%" does not exist', set_log_retention.workspace
			USING ERRCODE = 'undefined_object';
	END IF;
	IF retention IS NOT NULL AND retention <= interval '0' THEN
		RAISE EXCEPTION 'a log retention must be positive'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The retention given was %s.', retention),
				  HINT = 'NULL keeps the System Log of the workspace forever.';
	END IF;
	INSERT INTO scim.log_retention AS r (workspace, retention)
	VALUES (set_log_retention.workspace, set_log_retention.retention)
	ON CONFLICT ON CONSTRAINT log_retention_pkey DO UPDATE SET retention = EXCLUDED.retention;
END;
$$;
COMMENT ON FUNCTION scim.set_log_retention(interval, text) IS
	'How long a workspace keeps its System Log rows (default 90 days; NULL keeps them forever); maintenance applies it';
REVOKE ALL ON FUNCTION scim.set_log_retention(interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.set_log_retention(interval, text) TO scim_admin;

-- The dated partitions and their bounds (the DEFAULT partition is not listed).
CREATE FUNCTION scim.log_partitions()
	RETURNS TABLE (partition regclass, lower_bound timestamptz, upper_bound timestamptz)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT c.oid::regclass, b.m[1]::timestamptz, b.m[2]::timestamptz
	  FROM pg_catalog.pg_inherits i
	  JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid,
		   LATERAL (SELECT pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
												   '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$') AS m) b
	 WHERE i.inhparent = 'scim.provisioning_log'::regclass
	   AND b.m IS NOT NULL
	 ORDER BY 2;
$$;
COMMENT ON FUNCTION scim.log_partitions() IS
	'The dated partitions of scim.provisioning_log with their bounds (lower included, upper excluded)';
REVOKE ALL ON FUNCTION scim.log_partitions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.log_partitions() TO scim_reader, scim_admin;

-- Internal: create the partitions of the period (day or month) that holds
-- "at", for what no partition covers yet (so a change of
-- scim_provision.log_partition never overlaps), leaving out the parts that
-- end before "after".  Each is created on its own, rows of its range moved
-- in from the DEFAULT partition, then attached: ATTACH takes SHARE UPDATE
-- EXCLUSIVE on scim.provisioning_log, which requests writing the log do not
-- wait for (CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE).  A
-- partition created while an extension script runs (the update) is released
-- from the extension, like one maintenance creates.  Returns the new
-- partitions (an empty array when the period is covered already).
CREATE FUNCTION scim._log_create_partitions(at timestamptz, period text, after timestamptz DEFAULT '-infinity')
	RETURNS regclass[]
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	SET "TimeZone" = 'UTC'
	SET "DateStyle" = 'ISO, YMD'
AS $$
DECLARE
	period_lo	timestamptz := pg_catalog.date_trunc(period, at);
	period_hi	timestamptz := pg_catalog.date_trunc(period, at) + ('1 ' || period)::interval;
	lo			timestamptz := pg_catalog.date_trunc(period, at);
	hi			timestamptz;
	cover_hi	timestamptz;
	name		text;
	rel			regclass;
	made		regclass[] := '{}';
BEGIN
	WHILE lo < period_hi LOOP
		-- skip what existing partitions cover, up to the next one
		SELECT p.upper_bound INTO cover_hi
		  FROM scim.log_partitions() p WHERE p.lower_bound <= lo AND p.upper_bound > lo;
		IF FOUND THEN
			lo := cover_hi;
			CONTINUE;
		END IF;
		SELECT least(period_hi, min(p.lower_bound)) INTO hi FROM scim.log_partitions() p WHERE p.lower_bound > lo;
		hi := coalesce(hi, period_hi);
		IF hi > after THEN
			name := 'provisioning_log_' || pg_catalog.to_char(lo,
				CASE WHEN lo = period_lo AND hi = period_hi AND period = 'month' THEN 'YYYYMM' ELSE 'YYYYMMDD' END);
			EXECUTE pg_catalog.format('CREATE TABLE scim_log.%I (LIKE scim.provisioning_log, PRIMARY KEY (id, at),'
									  ' CONSTRAINT range_check CHECK (at IS NOT NULL AND at >= %L AND at < %L))',
									  name, lo, hi);
			rel := pg_catalog.format('scim_log.%I', name)::regclass;
			EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (workspace, at)', name || '_workspace_at_idx', rel);
			EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (workspace, at) WHERE status >= 400', name || '_errors_idx', rel);
			IF EXISTS (SELECT FROM pg_catalog.pg_depend d
					   WHERE d.classid = 'pg_class'::regclass AND d.objid = rel
						 AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e') THEN
				EXECUTE pg_catalog.format('ALTER EXTENSION scim_provision DROP TABLE %s', rel);
			END IF;
			EXECUTE pg_catalog.format('WITH moved AS (DELETE FROM scim_log.provisioning_log_default d'
									  ' WHERE d.at >= %L AND d.at < %L RETURNING d.*)'
									  ' INSERT INTO %s SELECT * FROM moved', lo, hi, rel);
			EXECUTE pg_catalog.format('ALTER TABLE scim.provisioning_log ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
									  rel, lo, hi);
			EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT range_check', rel);
			made := made || rel;
		END IF;
		lo := hi;
	END LOOP;
	RETURN made;
END;
$$;
COMMENT ON FUNCTION scim._log_create_partitions(timestamptz, text, timestamptz) IS
	'Internal: create and attach the System Log partitions of the day or month holding a time (maintenance)';
REVOKE ALL ON FUNCTION scim._log_create_partitions(timestamptz, text, timestamptz) FROM PUBLIC;

-- Internal: the retention that applies to a workspace's rows (NULL: forever).
CREATE FUNCTION scim._log_retention_of(workspace text)
	RETURNS interval
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN r.workspace IS NULL THEN interval '90 days' ELSE r.retention END
	  FROM (SELECT coalesce($1, 'default') AS w) k
	  LEFT JOIN scim.log_retention r ON r.workspace = k.w;
$$;
REVOKE ALL ON FUNCTION scim._log_retention_of(text) FROM PUBLIC;

-- One step of System Log maintenance, in the caller's (short) transaction:
--   1. create the partitions of the current period and the
--      scim_provision.log_partitions_ahead next ones (day or month after
--      scim_provision.log_partition), and of any period whose rows sit in the
--      DEFAULT partition;
--   2. else drop the oldest partition no workspace's retention still needs;
--   3. else delete up to batch_size expired rows of one workspace;
-- and says what it did, or NULL when nothing is left to do.  DDL waits for
-- its lock at most scim_provision.log_lock_timeout (default 100ms), and so
-- does a delete: a SCIM request queued behind it waits no longer; on a
-- timeout the step answers NULL and the next run retries.  Concurrent steps: one runs, the others
-- answer NULL at once (transaction-level advisory lock).
CREATE FUNCTION scim.log_maintain_step(batch_size integer DEFAULT 5000)
	RETURNS text
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET "TimeZone" = 'UTC'
	SET "DateStyle" = 'ISO, YMD'
	SET lock_timeout = '100ms'
AS $$
DECLARE
	period		text := coalesce(nullif(pg_catalog.current_setting('scim_provision.log_partition', true), ''), 'day');
	ahead		integer := coalesce(nullif(pg_catalog.current_setting('scim_provision.log_partitions_ahead', true), '')::integer, 7);
	lt			text := nullif(pg_catalog.current_setting('scim_provision.log_lock_timeout', true), '');
	t			timestamptz;
	made		text[] := '{}';
	p			record;
	ws			text[];
	has_null	boolean;
	needed		boolean;
	w			record;
	upto		timestamptz;
	n			bigint;
BEGIN
	IF batch_size IS NULL OR batch_size < 1 THEN
		RAISE EXCEPTION 'batch_size must be positive' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF period NOT IN ('day', 'month') THEN
		period := 'day';
	END IF;
	IF lt IS NOT NULL THEN
		PERFORM pg_catalog.set_config('lock_timeout', lt, true);
	END IF;
	-- one maintenance at a time; the others have nothing to do
	IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('scim_provision.log_maintain')) THEN
		RETURN NULL;
	END IF;

	BEGIN
		-- 1. partitions ahead (not parts of the current period already
		-- past), and for rows that fell into the DEFAULT partition
		FOR t IN
			SELECT g FROM pg_catalog.generate_series(pg_catalog.date_trunc(period, pg_catalog.now()),
													 pg_catalog.date_trunc(period, pg_catalog.now())
													 + ahead * ('1 ' || period)::interval,
													 ('1 ' || period)::interval) g
		LOOP
			made := made || scim._log_create_partitions(t, period, pg_catalog.now())::text[];
		END LOOP;
		FOR t IN
			SELECT DISTINCT pg_catalog.date_trunc(period, d.at) FROM scim_log.provisioning_log_default d
		LOOP
			made := made || scim._log_create_partitions(t, period)::text[];
		END LOOP;
		IF pg_catalog.cardinality(made) > 0 THEN
			RETURN 'created ' || pg_catalog.array_to_string(made, ', ');
		END IF;

		-- 2. the oldest partition that no workspace with rows in it still needs
		-- (only partitions past the shortest retention can be dropped)
		FOR p IN
			SELECT * FROM scim.log_partitions() lp
			 WHERE lp.upper_bound <= pg_catalog.now()
							   - (SELECT least(interval '90 days', min(r.retention)) FROM scim.log_retention r)
			 ORDER BY lp.lower_bound
		LOOP
			-- the workspaces with rows in it (a loose scan of its index)
			EXECUTE pg_catalog.format(
				'WITH RECURSIVE w AS ('
				'  (SELECT l.workspace FROM %1$s l WHERE l.workspace IS NOT NULL ORDER BY 1 LIMIT 1)'
				'  UNION ALL'
				'  SELECT (SELECT l.workspace FROM %1$s l WHERE l.workspace > w.workspace ORDER BY 1 LIMIT 1)'
				'    FROM w WHERE w.workspace IS NOT NULL)'
				' SELECT ARRAY(SELECT w.workspace FROM w WHERE w.workspace IS NOT NULL),'
				'        EXISTS (SELECT FROM %1$s l WHERE l.workspace IS NULL)', p.partition)
			  INTO ws, has_null;
			SELECT bool_or(r IS NULL OR p.upper_bound > pg_catalog.now() - r) INTO needed
			  FROM (SELECT scim._log_retention_of(x) AS r
					  FROM pg_catalog.unnest(ws || CASE WHEN has_null THEN ARRAY[NULL::text] ELSE '{}' END) x) s;
			IF NOT coalesce(needed, false) THEN
				made := ARRAY[p.partition::text];
				EXECUTE pg_catalog.format('DROP TABLE %s', p.partition);
				RETURN 'dropped ' || made[1];
			END IF;
		END LOOP;

		-- 3. expired rows of one workspace, a batch at a time (rows at the cutoff
		-- itself are kept)
		FOR w IN
			SELECT x.workspace, pg_catalog.now() - scim._log_retention_of(x.workspace) AS cutoff
			  FROM (SELECT ws2.name AS workspace FROM scim.workspaces ws2
					UNION ALL SELECT NULL) x
			 WHERE scim._log_retention_of(x.workspace) IS NOT NULL
		LOOP
			IF w.workspace IS NULL THEN
				SELECT l.at INTO upto FROM scim.provisioning_log l
				 WHERE l.workspace IS NULL AND l.at < w.cutoff ORDER BY l.at OFFSET batch_size - 1 LIMIT 1;
				DELETE FROM scim.provisioning_log l
				 WHERE l.workspace IS NULL AND l.at < w.cutoff AND l.at <= coalesce(upto, w.cutoff);
			ELSE
				SELECT l.at INTO upto FROM scim.provisioning_log l
				 WHERE l.workspace = w.workspace AND l.at < w.cutoff ORDER BY l.at OFFSET batch_size - 1 LIMIT 1;
				DELETE FROM scim.provisioning_log l
				 WHERE l.workspace = w.workspace AND l.at < w.cutoff AND l.at <= coalesce(upto, w.cutoff);
			END IF;
			GET DIAGNOSTICS n = ROW_COUNT;
			IF n > 0 THEN
				RETURN pg_catalog.format('deleted %s rows of workspace %s', n, coalesce(w.workspace, '(none)'));
			END IF;
		END LOOP;
		RETURN NULL;
	EXCEPTION WHEN lock_not_available THEN
		RAISE LOG 'scim_provision: System Log maintenance did not get its lock in time; the next run retries';
		RETURN NULL;
	END;
END;
$$;
COMMENT ON FUNCTION scim.log_maintain_step(integer) IS
	'One short step of System Log maintenance (partitions ahead, expired partitions dropped, expired rows deleted in a batch); NULL when nothing is left';
REVOKE ALL ON FUNCTION scim.log_maintain_step(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.log_maintain_step(integer) TO scim_admin;

-- scim.maintain(): all of the maintenance in one call, each step committed
-- on its own, so that no transaction is long.  For installations without
-- the preloaded background worker (pg_cron: see doc/OPERATIONS.md).  CALL it
-- outside a transaction block.
CREATE PROCEDURE scim.maintain()
	LANGUAGE plpgsql
AS $$
DECLARE
	did		text;
BEGIN
	LOOP
		did := scim.log_maintain_step();
		EXIT WHEN did IS NULL;
		RAISE DEBUG 'scim_provision: %', did;
		COMMIT;
	END LOOP;
END;
$$;
COMMENT ON PROCEDURE scim.maintain() IS
	'System Log maintenance in one call (CALL scim.maintain(), outside a transaction block): every step, each committed';
REVOKE ALL ON PROCEDURE scim.maintain() FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE scim.maintain() TO scim_admin;

-- The operator's view: the last day, per workspace, source, status class and
-- scimType.  A refusal is a status of 400 or more.
CREATE VIEW scim.log_summary AS
SELECT l.workspace,
	   l.source::text AS source,
	   (l.status / 100)::text || 'xx' AS status_class,
	   l.scim_type,
	   count(*) FILTER (WHERE l.at > pg_catalog.now() - interval '1 hour') AS attempts_last_hour,
	   count(*) FILTER (WHERE l.at > pg_catalog.now() - interval '1 hour' AND l.status >= 400) AS refusals_last_hour,
	   count(*) AS attempts_last_day,
	   count(*) FILTER (WHERE l.status >= 400) AS refusals_last_day,
	   max(l.at) FILTER (WHERE l.status >= 400) AS last_error_at,
	   (pg_catalog.array_agg(l.detail ORDER BY l.at DESC) FILTER (WHERE l.status >= 400))[1] AS last_error
  FROM scim.provisioning_log l
 WHERE l.at > pg_catalog.now() - interval '1 day'
 GROUP BY 1, 2, 3, 4;
COMMENT ON VIEW scim.log_summary IS
	'System Log of the last hour and day per workspace, source, status class and scimType: attempts, refusals, the last error and when';
GRANT SELECT ON scim.log_summary TO scim_reader, scim_admin;

-- A workspace's refused requests since a time, newest first, read through
-- the partial index of refusals.  The query is built with the values as
-- literals (quote_literal through format's %L) and planned once: the
-- planner then opens only the partitions between "since" and tomorrow
-- (rows are stamped with the server's clock, never later).  With the values
-- as parameters or expressions (now() - interval '1 day'), every partition
-- would be planned and pruned at run time, which costs more than the lookup.
CREATE FUNCTION scim.recent_errors(workspace text, since timestamptz DEFAULT pg_catalog.now() - interval '1 day')
	RETURNS TABLE (at timestamptz, id bigint, request_id text, source text, method text, path text,
				   status integer, scim_type text, user_name text, detail text)
	LANGUAGE plpgsql STABLE
AS $$
BEGIN
	RETURN QUERY EXECUTE pg_catalog.format(
		'SELECT l.at, l.id, l.request_id, l.source::text, l.method, l.path, l.status, l.scim_type, l.user_name, l.detail'
		'  FROM scim.provisioning_log l'
		' WHERE l.workspace = %L AND l.at >= %L AND l.at < %L AND l.status >= 400'
		' ORDER BY l.at DESC',
		$1, $2, pg_catalog.now() + interval '1 day');
END;
$$;
COMMENT ON FUNCTION scim.recent_errors(text, timestamptz) IS
	'Refused requests of a workspace since a time (default: the last day), newest first, with their request ids';
REVOKE ALL ON FUNCTION scim.recent_errors(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.recent_errors(text, timestamptz) TO scim_reader, scim_admin;

DO $move$
DECLARE
	period	text := coalesce(nullif(pg_catalog.current_setting('scim_provision.log_partition', true), ''), 'day');
	t		timestamptz;
BEGIN
	IF period NOT IN ('day', 'month') THEN
		period := 'day';
	END IF;
	FOR t IN
		SELECT DISTINCT pg_catalog.date_trunc(period, o.at, 'UTC') FROM scim.provisioning_log_0_2_0 o
		UNION
		SELECT g FROM pg_catalog.generate_series(pg_catalog.date_trunc(period, pg_catalog.now(), 'UTC'),
												 pg_catalog.date_trunc(period, pg_catalog.now(), 'UTC') + ('7 ' || period)::interval,
												 ('1 ' || period)::interval) g
		ORDER BY 1
	LOOP
		PERFORM scim._log_create_partitions(t, period);
	END LOOP;
END
$move$;
INSERT INTO scim.provisioning_log (id, at, workspace, source, method, path, resource_id, user_name, status,
								   scim_type, detail, request_id)
SELECT o.id, o.at, o.workspace, o.source, o.method, o.path, o.resource_id, o.user_name, o.status,
	   o.scim_type, o.detail, NULL
  FROM scim.provisioning_log_0_2_0 o;
DROP TABLE scim.provisioning_log_0_2_0;

-- scim._dispatch (the contract section creates it) sets the request id
-- (X-Request-Id, else a new UUID) for the transaction and echoes it.

-- (end of System Log lifecycle)


-- ===== Search (#14): multi-valued attributes indexed, deep paging ==========

-- co/sw/ew (and eq on name columns) on names and the elements of emails,
-- phoneNumbers, addresses: a trigram index over scim.search_text(...)
-- (src/sql/30_filter.sql).  CREATE INDEX reads every existing user, so the
-- index covers them from the start (no separate backfill).
CREATE FUNCTION scim.search_text(attributes jsonb)
	RETURNS text
	AS 'MODULE_PATHNAME', 'scim_search_text'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.search_text(jsonb) IS
	'The lower-cased searchable text of a User''s attributes (name.*, nickName, values of emails/phoneNumbers/addresses), one per line: a trigram column of users_search_text_idx';
-- as 70_postgrest.sql leaves every function of scim in a fresh install
REVOKE ALL ON FUNCTION scim.search_text(jsonb) FROM scim_client;

-- sw/ew/eq on emails.value and phoneNumbers.value, and co on emails.value
-- with an '@' (the domain of an address): prefix keys of every value, the
-- second column of users_search_text_idx; scim.filter_sql puts
--   scim.element_keys(u.attributes) @@ scim.element_keys_query('emails', 'co', value)
-- in front of the exact predicate, a necessary condition (src/element_keys.c
-- says which keys and why).
CREATE FUNCTION scim.element_keys(attributes jsonb)
	RETURNS tsvector
	AS 'MODULE_PATHNAME', 'scim_element_keys'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.element_keys(jsonb) IS
	'Prefix keys of the values of a User''s emails and phoneNumbers (value, reversed value, the text after and before each @): the second column of users_search_text_idx';
CREATE FUNCTION scim.element_keys_query(attribute text, op text, value text, type text DEFAULT NULL,
										exact boolean DEFAULT false)
	RETURNS tsquery
	AS 'MODULE_PATHNAME', 'scim_element_keys_query'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION scim.element_keys_query(text, text, text, text, boolean) IS
	'The tsquery of scim.element_keys for "<attribute>.value <op> value" (typed: in a value path with type eq): exact = false the index condition, a necessary one (NULL when none narrows it); exact = true the test that decides alone where the keys are complete (NULL when there is none)';

-- The keys, stored (this rewrites scim.users once, as ADD COLUMN ... STORED
-- does): the index is built on them, and a predicate that the
-- keys decide alone reads them from the row instead of computing them
-- again for every user the index returns (the way a tsvector column serves
-- full-text search).  Kept by PostgreSQL for every writer.
ALTER TABLE scim.users ADD COLUMN element_keys tsvector
	GENERATED ALWAYS AS (scim.element_keys(attributes)) STORED;
COMMENT ON COLUMN scim.users.element_keys IS
	'Prefix keys of the emails and phoneNumbers values (scim.element_keys(attributes)), for filters; generated';
REVOKE ALL ON FUNCTION scim.element_keys(jsonb) FROM scim_client;
REVOKE ALL ON FUNCTION scim.element_keys_query(text, text, text, text, boolean) FROM scim_client;

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
		'(lower(given_name) %1$I.gin_trgm_ops, lower(family_name) %1$I.gin_trgm_ops, '
		'lower(display_name) %1$I.gin_trgm_ops, scim.search_text(attributes) %1$I.gin_trgm_ops, '
		'element_keys)',
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
-- jit = off: a filter's EXISTS over jsonb_path_query is costed at 1000 rows
-- per user, so a 1M-user count crossed the JIT thresholds and spent 0.4 s
-- compiling a query that runs in less (also in _list_cursor, _count_users).
CREATE OR REPLACE FUNCTION scim._list_users(ws text, filter text, start_index text, count text, sort_by text,
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

-- the cursor lists count unfiltered Users through scim._count_users too
-- A cursor-paged ListResponse of Users or Groups (see the header).  params:
-- filter, sortBy, sortOrder, count, cursor, attributes, excludedAttributes.
CREATE OR REPLACE FUNCTION scim._list_cursor(resource_type text, ws text, params jsonb, OUT body jsonb, OUT total bigint)
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

-- as 70_postgrest.sql leaves every table and function of scim in a fresh install
REVOKE ALL ON scim.page_bookmarks, scim.user_counts FROM scim_client;
REVOKE ALL ON FUNCTION scim._page_query_hash(text, text, text, text, text),
	scim._page_bookmark(text, text, bigint, text),
	scim._users_count_delta(), scim._users_count_move(),
	scim._users_count_truncate(), scim._count_users(text, text), scim.recount_users() FROM scim_client;

-- (end of search)


-- ===== OneLogin worker (#16) ===============================================
-- Gap detection: what the next users page of a pass is compared with, and
-- how often a run listed OneLogin's users again (scim.sync_status shows it).
ALTER TABLE scim.onelogin_state
	ADD COLUMN run_total bigint,
	ADD COLUMN run_shifted boolean NOT NULL DEFAULT false,
	ADD COLUMN run_relists integer NOT NULL DEFAULT 0,
	ADD COLUMN relists bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE VIEW scim.sync_status AS
SELECT s.workspace,
	   c.base_url,
	   s.state,
	   (s.run_cursor IS NOT NULL OR s.verify_run IS NOT NULL OR s.events_cursor IS NOT NULL) AS sync_in_progress,
	   CASE WHEN a.workspace = s.workspace THEN a.phase END AS activity,
	   s.last_success_at,
	   s.last_attempt_at,
	   s.last_error,
	   s.last_error_at,
	   s.consecutive_failures,
	   CASE WHEN s.backoff_until > pg_catalog.now() THEN s.backoff_until - pg_catalog.now() END AS current_backoff,
	   s.backoff_until,
	   s.backoff_reason,
	   s.users_seen,
	   s.users_applied,
	   s.pages,
	   s.events_seen,
	   s.deprovisioned,
	   s.syncs_completed,
	   s.run_kind,
	   s.run_started_at,
	   s.run_finished_at,
	   s.run_pages,
	   s.run_users_seen,
	   s.run_users_applied,
	   s.users_high_water,
	   s.events_high_water,
	   s.last_reconcile_at,
	   a.pid AS worker_pid,
	   s.run_relists,
	   s.relists
FROM scim.onelogin_state s
JOIN scim.onelogin_connections c ON c.workspace = s.workspace
LEFT JOIN scim._worker_activity() a ON true;

-- (end of OneLogin worker)


-- ===== Sharding (#11): tokens that name their partition ===================

-- Token ids start with hashtext(workspace) (src/token.c); 0.2.0 tokens stay valid.
-- The token id starts with hashtext(workspace) in 8 hex digits: a router
-- (scim_provision_router) sends the request to the workspace's partition
-- without a round trip (see doc/SCALING.md).
CREATE FUNCTION scim._generate_token(workspace text) RETURNS text
	AS 'MODULE_PATHNAME', 'scim_generate_token_for'
	LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION scim._generate_token(text) IS
	'Internal: a new token for a workspace: its id starts with hashtext(workspace), its secret has 256 bits from pg_strong_random (use scim.create_token)';

REVOKE ALL ON FUNCTION scim._generate_token(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION scim.create_token(name text, workspace text DEFAULT 'default')
	RETURNS text
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	token text;
BEGIN
	PERFORM scim._require_workspace(workspace);
	IF name IS NULL OR btrim(name) = '' THEN
		RAISE EXCEPTION 'a token needs a name'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	token := scim._generate_token(workspace);
	BEGIN
		INSERT INTO scim.tokens (token_id, workspace, name, secret_hash)
		VALUES (substr(token, 6, 24), workspace, name, scim._token_hash(token));
	EXCEPTION WHEN unique_violation THEN
		RAISE EXCEPTION 'workspace "%" already has an active token named "%"', workspace, name
			USING ERRCODE = 'unique_violation',
				  HINT = 'Revoke it first with scim.revoke_token(name, workspace), or choose another name.';
	END;
	RETURN token;
END;
$$;
COMMENT ON FUNCTION scim.create_token(text, text) IS
	'Create a SCIM bearer token; the plaintext is returned this once and only its SHA-256 is stored';


-- ---------------------------------------------------------------------------
-- 75_routed.sql: what a shard offers a router (scim_provision_router, see
-- doc/SCALING.md).  The router runs PL/Proxy functions that connect to this
-- database as a login role the deployment creates and makes a member of
-- scim_proxy:
--   scim_proxy   may run scim.dispatch_routed (the SCIM endpoint, routed),
--                and, through scim_admin and scim_reader, the administration
--                functions and the data teams' reads the router forwards.
-- scim_client (PostgREST) never connects to a shard behind a router.
-- ---------------------------------------------------------------------------
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'scim_proxy') THEN
		CREATE ROLE scim_proxy NOLOGIN;
		GRANT scim_admin, scim_reader TO scim_proxy;
	END IF;
END
$roles$;

-- scim.dispatch_routed(request_headers, request_body, from_json): the node's
-- scim._dispatch for a request that PostgREST received on the router.  The
-- router's session holds request.headers; this connection does not, so the
-- router passes that setting's text as PostgREST set it (duplicate headers
-- included) and the body, raw (scim_api.dispatch(text), from_json false) or
-- parsed (dispatch(jsonb), true).  They are set for this transaction and
-- scim._dispatch answers exactly as for a direct call: status, headers
-- (response.headers as it set them, text) and body.  PL/Proxy runs each
-- call in its own transaction, so nothing leaks into the next request.
-- SECURITY DEFINER with the entry points' log policy: the router's role
-- may run this and nothing of scim_api.
CREATE FUNCTION scim.dispatch_routed(request_headers text, request_body text, from_json boolean,
									 OUT status integer, OUT headers text, OUT body jsonb)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
	SET log_min_error_statement = panic
	SET log_error_verbosity = terse
AS $$
BEGIN
	PERFORM pg_catalog.set_config('request.headers', coalesce(request_headers, ''), true);
	body := scim._dispatch(request_body, coalesce(from_json, false));
	status := nullif(pg_catalog.current_setting('response.status', true), '')::integer;
	headers := nullif(pg_catalog.current_setting('response.headers', true), '');
END;
$$;
COMMENT ON FUNCTION scim.dispatch_routed(text, text, boolean) IS
	'scim._dispatch for a request a router (scim_provision_router) forwards: PostgREST''s request.headers and body in, status, response headers and SCIM body out';
REVOKE ALL ON FUNCTION scim.dispatch_routed(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.dispatch_routed(text, text, boolean) TO scim_proxy;

-- (end of sharding)
