
-- ---------------------------------------------------------------------------
-- 70_postgrest.sql: the PostgREST front.  Schema scim_api holds only what
-- PostgREST exposes (db-schemas = "scim_api"):
--   "application/scim+json"   a domain over jsonb: PostgREST (>= 12) serves a
--                             function returning it as that media type
--   scim_api.dispatch(jsonb)  the one RPC behind https://<host>/scim/v2/*;
--                             nginx turns every SCIM request into
--                             POST /rpc/dispatch and moves the original
--                             method, URI and Authorization into
--                             X-Scim-Method, X-Scim-Uri and X-Scim-Token
--   scim_api.pre_request()    optional db-pre-request hook
-- Its anonymous role scim_client may execute these and nothing else.  The
-- login role PostgREST connects as ("authenticator") is not created here:
-- see deploy/README.md.
-- ---------------------------------------------------------------------------

CREATE SCHEMA scim_api;
COMMENT ON SCHEMA scim_api IS
	'scim_provision: what PostgREST exposes (db-schemas = "scim_api"); the SCIM endpoint is scim_api.dispatch';
REVOKE ALL ON SCHEMA scim_api FROM PUBLIC;

CREATE DOMAIN scim_api."application/scim+json" AS jsonb;
COMMENT ON DOMAIN scim_api."application/scim+json" IS
	'SCIM media type (RFC 7644 section 8.1); a PostgREST media type handler';

-- scim_api.dispatch(jsonb): one PostgREST request -> scim.handle -> response.
--
-- Reads the request.headers setting PostgREST fills (lower-cased names):
--   x-scim-method  the IdP's method (GET, POST, PUT, PATCH, DELETE)
--   x-scim-uri     the IdP's request URI as nginx's $request_uri has it, e.g.
--                  /scim/v2/Users?filter=userName%20eq%20%22a%22; the base, up
--                  to and including the first "/v2" segment, is stripped, the
--                  rest of the path is percent-decoded, the query stays raw
--   x-scim-token   the IdP's Authorization value, "Bearer <token>"
-- and passes the other headers on (If-Match, ...) with authorization set to
-- x-scim-token.  The body arrives parsed; PostgREST turns an empty body into
-- {}, which is passed on as NULL for GET, HEAD and DELETE.  Unless the
-- administrator set scim_provision.base_url, the base URL the IdP used
-- (X-Forwarded-Proto, X-Forwarded-Host and the stripped base) is set as
-- scim_provision.base_url for the request, so meta.location and Location
-- are absolute.
--
-- Sets response.status and response.headers (a JSON array of single-key
-- objects: Content-Type, Location, ETag, WWW-Authenticate) and returns the
-- SCIM body.  It never raises: an error is a SCIM error body with its status,
-- so PostgREST commits, and a refused request keeps its System Log row only
-- (scim.handle rolls the attempt back and logs it).  A request without
-- X-Scim-Method or X-Scim-Uri is answered 400; an error escaping scim.handle
-- is answered 500 with a generic detail, logged, and reported to the server
-- log.  SECURITY DEFINER: scim_client has no access to schema scim.  Its
-- server-log reports carry neither the statement nor the context (the log
-- policy of scim.handle, 55_handle.sql).
CREATE FUNCTION scim_api.dispatch(jsonb)
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
COMMENT ON FUNCTION scim_api.dispatch(jsonb) IS
	'PostgREST entry point: POST /rpc/dispatch with X-Scim-Method, X-Scim-Uri and X-Scim-Token set by the proxy; calls scim.handle and answers with its status, headers and SCIM body';

-- scim_api.pre_request(): optional PostgREST db-pre-request hook.  It refuses
-- a request without "X-Scim-Token: Bearer <token>" before dispatch runs, as
-- 401 with WWW-Authenticate.  PostgREST (>= 12) renders a RAISE SQLSTATE
-- 'PGRST' as {"code","message","details","hint"} only, so that answer is not
-- a SCIM error document, and an early refusal leaves no System Log row;
-- without the hook scim.handle answers the same request with a SCIM 401 and
-- logs it.  deploy/postgrest.conf leaves it commented out.
CREATE FUNCTION scim_api.pre_request()
	RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	req_headers	jsonb;
BEGIN
	BEGIN
		req_headers := nullif(pg_catalog.current_setting('request.headers', true), '')::jsonb;
	EXCEPTION WHEN invalid_text_representation THEN
		req_headers := NULL;
	END;
	IF pg_catalog.jsonb_typeof(req_headers -> 'x-scim-token') = 'string'
	   AND (req_headers ->> 'x-scim-token') ~* '^[[:space:]]*bearer[[:space:]]+[^[:space:]]' THEN
		RETURN;
	END IF;
	RAISE SQLSTATE 'PGRST' USING
		MESSAGE = pg_catalog.jsonb_build_object(
			'code', 'SCIM401',
			'message', 'authentication required: send "Authorization: Bearer <token>"',
			'details', 'a SCIM bearer token is created with scim.create_token(name, workspace); the proxy forwards the Authorization header as X-Scim-Token',
			'hint', 'see deploy/README.md')::text,
		DETAIL = pg_catalog.jsonb_build_object(
			'status', 401,
			'status_text', 'Unauthorized',
			'headers', pg_catalog.jsonb_build_object('WWW-Authenticate', 'Bearer realm="SCIM"'))::text;
END;
$$;
COMMENT ON FUNCTION scim_api.pre_request() IS
	'Optional PostgREST db-pre-request: refuses a request without "X-Scim-Token: Bearer ..." early with 401 (PostgREST error shape, not logged)';

-- Privileges: PostgREST's anonymous role may use scim_api and nothing in scim.
REVOKE ALL ON FUNCTION scim_api.dispatch(jsonb), scim_api.pre_request() FROM PUBLIC;
GRANT USAGE ON SCHEMA scim_api TO scim_client;
GRANT EXECUTE ON FUNCTION scim_api.dispatch(jsonb), scim_api.pre_request() TO scim_client;
REVOKE ALL ON SCHEMA scim FROM scim_client;
REVOKE ALL ON ALL TABLES IN SCHEMA scim FROM scim_client;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA scim FROM scim_client;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA scim FROM scim_client;

-- A running PostgREST picks up the new or changed scim_api at commit.
NOTIFY pgrst, 'reload schema';
