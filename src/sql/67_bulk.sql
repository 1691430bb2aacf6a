
-- ---------------------------------------------------------------------------
-- 67_bulk.sql: POST /Bulk (RFC 7644 section 3.7).
--
-- A BulkRequest's operations run one by one through scim.handle's own
-- request logic (scim._handle: authentication, routing, the Users and
-- Groups code, errors), so each one is exactly the request it describes:
-- it runs in its own subtransaction (a failed operation changes nothing)
-- and leaves its own System Log row; the /Bulk request leaves one more.
--
-- bulkId: a POST's bulkId names the resource it creates; "bulkId:<id>" in
-- a later (or earlier) operation's path or data (as a whole JSON string,
-- e.g. a member's value, or inside a PATCH path's filter) is replaced by
-- that resource's id.  Operations wait until every bulkId they reference is
-- resolved, so forward references work; an operation that references a
-- bulkId no POST defines, or whose POST failed, or that can never be
-- resolved (a cycle), is answered 409 without being run.
--
-- Limits (GUCs of src/groups.c, advertised in /ServiceProviderConfig): a
-- body over scim_provision.bulk_max_payload bytes or with more than
-- scim_provision.bulk_max_operations operations is refused whole with 413
-- (scimType tooLarge).  failOnErrors stops the run after that many failed
-- operations; the response lists the operations that ran, in request order.
-- ---------------------------------------------------------------------------

-- The bulkIds an operation's path and data reference ("bulkId:<id>" as a
-- whole JSON string, or as a quoted value inside a string such as a PATCH
-- path filter, or as the last segment of the path).
CREATE FUNCTION scim._bulk_refs(path text, data_text text) RETURNS text[]
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(array_agg(DISTINCT r), '{}')
	FROM (SELECT coalesce(m[1], m[2]) AS r
		  FROM regexp_matches(coalesce(data_text, ''), '\\"bulkId:([^"\\]+)\\"|"bulkId:([^"\\]+)"', 'g') AS m
		  UNION ALL
		  SELECT (regexp_match(coalesce(path, ''), '/bulkId:([^/?]+)$'))[1]) s
	WHERE r IS NOT NULL;
$$;

-- path and data with every resolved "bulkId:<id>" replaced by its resource id.
CREATE FUNCTION scim._bulk_substitute(text_value text, ids jsonb, refs text[], in_path boolean) RETURNS text
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r			text;
	result		text := text_value;
BEGIN
	IF result IS NULL THEN
		RETURN NULL;
	END IF;
	FOREACH r IN ARRAY refs
	LOOP
		CONTINUE WHEN NOT ids ? r;
		IF in_path THEN
			result := regexp_replace(result, '/bulkId:' || regexp_replace(r, '([^A-Za-z0-9])', '\\\1', 'g') || '$', '/' || (ids ->> r));
		ELSE
			result := replace(result, '"bulkId:' || r || '"', '"' || (ids ->> r) || '"');
			result := replace(result, '\"bulkId:' || r || '\"', '\"' || (ids ->> r) || '\"');
		END IF;
	END LOOP;
	RETURN result;
END;
$$;

-- One result of a BulkResponse (RFC 7644 section 3.7.3): method, bulkId,
-- version, location, status (a string) and, for an error, the response.
CREATE FUNCTION scim._bulk_result(method text, bulk_id text, status integer, headers jsonb, body jsonb, location text)
	RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT jsonb_strip_nulls(jsonb_build_object(
		'method', method,
		'bulkId', bulk_id,
		'version', headers ->> 'ETag',
		'location', coalesce(headers ->> 'Location', location),
		'status', status::text,
		'response', CASE WHEN status >= 400 THEN body END));
$$;

-- POST /Bulk for scim.handle's router (same contract as scim._groups_route:
-- refusals come back as status, scim_type and detail, never raised).
CREATE FUNCTION scim._bulk_route(ws text, m text, hdr jsonb, p_body text,
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
	op			jsonb;
	op_method	text;
	op_path		text;
	op_bulk		text;
	op_data		text;
	op_hdr		jsonb;
	done		boolean[];
	results		jsonb[];
	ids			jsonb := '{}';			-- bulkId -> resource id
	failed_ids	text[] := '{}';			-- bulkIds whose POST failed
	defined		text[] := '{}';			-- bulkIds some POST defines
	my_refs		text[];
	unresolved	text[];
	progress	boolean;
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

		-- each operation: its method, path, bulkId, data, references
		base_hdr := hdr - 'if-match' - 'if-none-match';
		done := array_fill(false, ARRAY[greatest(n, 1)]);
		results := array_fill(NULL::jsonb, ARRAY[greatest(n, 1)]);
		FOR i IN 1 .. n LOOP
			op := ops -> (i - 1);
			IF jsonb_typeof(op) = 'object' THEN
				SELECT e.value #>> '{}' INTO op_bulk FROM jsonb_each(op) e WHERE lower(e.key) = 'bulkid';
				SELECT upper(e.value #>> '{}') INTO op_method FROM jsonb_each(op) e WHERE lower(e.key) = 'method';
				IF op_method = 'POST' AND op_bulk IS NOT NULL THEN
					IF op_bulk = ANY (defined) THEN
						RAISE EXCEPTION 'invalidValue: bulkId "%" is used by two operations', left(op_bulk, 100)
							USING ERRCODE = 'invalid_parameter_value';
					END IF;
					defined := defined || op_bulk;
				END IF;
			END IF;
		END LOOP;

		-- run them in order; an operation waits until its references resolve
		LOOP
			progress := false;
			FOR i IN 1 .. n LOOP
				CONTINUE WHEN done[i];
				EXIT WHEN stopped;
				op := ops -> (i - 1);
				op_method := NULL;
				op_path := NULL;
				op_bulk := NULL;
				op_data := NULL;
				op_hdr := base_hdr;
				IF jsonb_typeof(op) = 'object' THEN
					SELECT upper(e.value #>> '{}') INTO op_method FROM jsonb_each(op) e WHERE lower(e.key) = 'method';
					SELECT e.value #>> '{}' INTO op_path FROM jsonb_each(op) e WHERE lower(e.key) = 'path';
					SELECT e.value #>> '{}' INTO op_bulk FROM jsonb_each(op) e WHERE lower(e.key) = 'bulkid';
					SELECT e.value::text INTO op_data FROM jsonb_each(op) e WHERE lower(e.key) = 'data';
					op_hdr := op_hdr || coalesce((SELECT jsonb_build_object('if-match', e.value #>> '{}')
												  FROM jsonb_each(op) e
												  WHERE lower(e.key) = 'version' AND jsonb_typeof(e.value) = 'string'), '{}');
				END IF;

				-- malformed operations are answered without being run
				IF jsonb_typeof(op) IS DISTINCT FROM 'object'
				   OR op_method IS NULL OR op_method NOT IN ('POST', 'PUT', 'PATCH', 'DELETE')
				   OR op_path IS NULL OR op_path !~* '^/(Users|Groups)(/[^/?]+)?$'
				   OR (op_method = 'POST' AND (op_bulk IS NULL OR op_path !~* '^/(Users|Groups)$'))
				   OR (op_method <> 'POST' AND op_path !~* '^/(Users|Groups)/[^/?]+$')
				   OR (op_method IN ('POST', 'PUT', 'PATCH') AND op_data IS NULL) THEN
					results[i] := scim._bulk_result(op_method, op_bulk, 400, '{}', scim._error(400, 'invalidSyntax',
						CASE WHEN jsonb_typeof(op) IS DISTINCT FROM 'object' THEN format('operation %s is not a JSON object', i)
							 WHEN op_method IS NULL OR op_method NOT IN ('POST', 'PUT', 'PATCH', 'DELETE')
								THEN format('operation %s: method must be POST, PUT, PATCH or DELETE', i)
							 WHEN op_method = 'POST' AND op_bulk IS NULL THEN format('operation %s: a POST needs a bulkId', i)
							 WHEN op_method IN ('POST', 'PUT', 'PATCH') AND op_data IS NULL AND op_path IS NOT NULL
								  AND op_path ~* '^/(Users|Groups)(/[^/?]+)?$'
								THEN format('operation %s: %s needs data', i, op_method)
							 ELSE format('operation %s: path "%s" is not a resource endpoint for %s', i, left(coalesce(op_path, ''), 100), op_method) END),
						NULL);
					IF op_method = 'POST' AND op_bulk IS NOT NULL THEN
						failed_ids := failed_ids || op_bulk;
					END IF;
				ELSE
					my_refs := scim._bulk_refs(op_path, op_data);
					SELECT array_agg(x) INTO unresolved FROM unnest(my_refs) x WHERE NOT ids ? x;
					IF unresolved IS NOT NULL AND EXISTS (SELECT FROM unnest(unresolved) x
														 WHERE x = ANY (failed_ids) OR NOT x = ANY (defined)) THEN
						results[i] := scim._bulk_result(op_method, op_bulk, 409, '{}', scim._error(409, 'invalidValue',
							format('operation %s references bulkId "%s", which %s', i,
								   (SELECT x FROM unnest(unresolved) x WHERE x = ANY (failed_ids) OR NOT x = ANY (defined) LIMIT 1),
								   CASE WHEN EXISTS (SELECT FROM unnest(unresolved) x WHERE x = ANY (failed_ids))
										THEN 'failed' ELSE 'no POST of this request defines' END)),
							NULL);
						IF op_method = 'POST' THEN
							failed_ids := failed_ids || op_bulk;
						END IF;
					ELSIF unresolved IS NOT NULL THEN
						CONTINUE;		-- wait for the POSTs it references
					ELSE
						op_path := scim._bulk_substitute(op_path, ids, my_refs, true);
						op_data := scim._bulk_substitute(op_data, ids, my_refs, false);
						SELECT * INTO r FROM scim._handle(op_method, op_path, NULL, op_hdr, op_data);
						ran := ran + 1;
						loc := CASE WHEN op_method <> 'POST' AND r.status < 400 THEN scim._base_url() || op_path END;
						results[i] := scim._bulk_result(op_method, op_bulk, r.status, r.headers, r.body, loc);
						IF op_method = 'POST' THEN
							IF r.status < 400 AND r.body ->> 'id' IS NOT NULL THEN
								ids := ids || jsonb_build_object(op_bulk, r.body ->> 'id');
							ELSE
								failed_ids := failed_ids || op_bulk;
							END IF;
						END IF;
					END IF;
				END IF;
				done[i] := true;
				progress := true;
				IF (results[i] ->> 'status')::integer >= 400 THEN
					errors := errors + 1;
					IF errors >= fail_limit THEN
						stopped := true;
					END IF;
				END IF;
			END LOOP;
			EXIT WHEN stopped OR NOT progress;
		END LOOP;

		-- what is left waits on itself: a cycle of bulkIds
		IF NOT stopped THEN
			FOR i IN 1 .. n LOOP
				CONTINUE WHEN done[i];
				op := ops -> (i - 1);
				SELECT upper(e.value #>> '{}') INTO op_method FROM jsonb_each(op) e WHERE lower(e.key) = 'method';
				SELECT e.value #>> '{}' INTO op_bulk FROM jsonb_each(op) e WHERE lower(e.key) = 'bulkid';
				results[i] := scim._bulk_result(op_method, op_bulk, 409, '{}', scim._error(409, 'invalidValue',
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

REVOKE ALL ON FUNCTION scim._bulk_refs(text, text), scim._bulk_substitute(text, jsonb, text[], boolean),
	scim._bulk_result(text, text, integer, jsonb, jsonb, text),
	scim._bulk_route(text, text, jsonb, text) FROM PUBLIC;
