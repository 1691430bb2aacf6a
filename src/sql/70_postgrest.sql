
-- ---------------------------------------------------------------------------
-- 70_postgrest.sql: the PostgREST front.  Schema scim_api holds only what
-- PostgREST exposes (db-schemas = "scim_api"):
--   "application/scim+json"   a domain over jsonb: PostgREST (>= 12) serves a
--                             function returning it as that media type
--   scim_api.dispatch(text)   the one RPC behind https://<host>/scim/v2/*;
--                             nginx turns every SCIM request into
--                             POST /rpc/dispatch with Content-Type
--                             text/plain (the raw body, JSON or not) and
--                             moves the original method, URI and
--                             Authorization into X-Scim-Method, X-Scim-Uri
--                             and X-Scim-Token
--   scim_api.dispatch(jsonb)  the same for proxies still sending
--                             application/json (0.2.0's contract; kept for
--                             0.3.x, to be dropped after it)
--   scim._dispatch            what both run: headers, base URL, scim.handle,
--                             response settings (the one place that reads
--                             the request headers)
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
-- Its server-log reports carry neither the statement nor the context (the
-- log policy of scim.handle, 55_handle.sql).
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
COMMENT ON FUNCTION scim._dispatch(text, boolean) IS
	'What both scim_api.dispatch variants run: the proxy''s headers to scim.handle and its answer to response.status/response.headers';

-- scim_api.dispatch(text): the PostgREST entry point.  nginx sends the IdP's
-- body untouched with Content-Type: text/plain; PostgREST hands a text/plain
-- body to a function with a single unnamed text parameter as it is, so a
-- body that is not JSON is answered by scim.handle (400 invalidSyntax, a
-- System Log row) instead of by PostgREST.  SECURITY DEFINER: scim_client
-- has no access to schema scim.  Same log policy as scim._dispatch.
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
-- row).  Same log policy as scim._dispatch.  PostgREST picks the variant by Content-Type (a single unnamed
-- parameter: text for text/plain, json/jsonb for application/json), so the
-- two are never ambiguous to it.  Kept through 0.3.x; deploy/README.md says
-- how to switch.
CREATE FUNCTION scim_api.dispatch(jsonb)
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
REVOKE ALL ON FUNCTION scim_api.dispatch(text), scim_api.dispatch(jsonb), scim_api.pre_request() FROM PUBLIC;
REVOKE ALL ON FUNCTION scim._dispatch(text, boolean), scim._valid_base_url(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA scim_api TO scim_client;
GRANT EXECUTE ON FUNCTION scim_api.dispatch(text), scim_api.dispatch(jsonb), scim_api.pre_request() TO scim_client;
REVOKE ALL ON SCHEMA scim FROM scim_client;
REVOKE ALL ON ALL TABLES IN SCHEMA scim FROM scim_client;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA scim FROM scim_client;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA scim FROM scim_client;

-- A running PostgREST picks up the new or changed scim_api at commit.
NOTIFY pgrst, 'reload schema';
