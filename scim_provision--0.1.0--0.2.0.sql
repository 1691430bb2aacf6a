/* scim_provision--0.1.0--0.2.0.sql: from 0.1.0 to 0.2.0 (never edited once released) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION scim_provision UPDATE TO '0.2.0'" to load this file. \quit

-- The System Log's source: a domain instead of a table CHECK (the executor
-- plans a table's CHECK constraints for every INSERT statement, a domain's
-- once per session).
CREATE DOMAIN scim.log_source AS text
	CONSTRAINT log_source_check CHECK (VALUE IN ('scim', 'onelogin'));
ALTER TABLE scim.provisioning_log DROP CONSTRAINT provisioning_log_source_check;
ALTER TABLE scim.provisioning_log ALTER COLUMN source TYPE scim.log_source;

-- The System Log writer in PL/pgSQL, which keeps its INSERT's plan for the
-- session (a SECURITY DEFINER SQL function plans it on every call).
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
	VALUES ($9, $1, $2, $3, $4, $5, $6, $7, left($8, 2000))
	RETURNING l.id INTO log_id;
	RETURN log_id;
END;
$$;

-- The users trigger in C (src/users_trigger.c): the workspace's default
-- user type and approved domains read once per statement.
CREATE OR REPLACE FUNCTION scim._users_before_write() RETURNS trigger
	AS 'MODULE_PATHNAME', 'scim_users_before_write'
	LANGUAGE C SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp;

COMMENT ON FUNCTION scim._users_before_write() IS
	'Trigger: user type default and check, approved-domain gate, billable/deactivated states, version';

-- A lost race (serialization failure, deadlock, lock timeout) is SCIM 503
-- with Retry-After instead of 500.
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
					  'invalidSyntax', 'tooMany', 'uniqueness', 'invalidVers', 'sensitive') THEN
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
BEGIN
	headers := jsonb_build_object('Content-Type', 'application/scim+json');

	-- header names are lower-cased by the caller; tolerate any case
	IF jsonb_typeof(p_headers) = 'object' THEN
		SELECT coalesce(jsonb_object_agg(lower(h.key), h.value), '{}') INTO hdr FROM jsonb_each(p_headers) h;
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

	-- authentication: Bearer token -> workspace
	auth := hdr ->> 'authorization';
	IF auth ~* '^\s*bearer\s+\S' THEN
		ws := scim.authenticate(auth);
	END IF;
	IF ws IS NULL THEN
		status := 401;
		log_detail := CASE WHEN auth IS NULL OR btrim(auth) = '' THEN 'authentication required: no Authorization header'
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

-- scim.handle in C (src/handle.c): the lookup fast path, and the router
-- called through fmgr.
CREATE OR REPLACE FUNCTION scim.handle(method text, path text, query text DEFAULT NULL, headers jsonb DEFAULT '{}',
							body text DEFAULT NULL)
	RETURNS TABLE(status integer, headers jsonb, body jsonb)
	AS 'MODULE_PATHNAME', 'scim_handle'
	LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1
	SET search_path = pg_catalog, scim, pg_temp;
