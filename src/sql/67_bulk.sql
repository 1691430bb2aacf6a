
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
-- resolved, so forward references work, in dependency order computed once
-- (O(operations), see scim._bulk_route); an operation that references a
-- bulkId no POST defines, or whose POST failed, or that can never be
-- resolved (a cycle, RFC 7644 section 3.7.2), is answered 409 without
-- being run.
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
--
-- Order: operations run in request order, an operation waiting until the
-- POSTs it references have run, as if the operations were scanned again
-- and again in request order and each ran at the first scan that found its
-- references resolved (the order of 0.2.0).  That order is computed instead
-- of scanned for: an operation that waits on the POST at index d runs in
-- the same scan as d when it comes after d, else in the next one; a heap of
-- (scan, index) keys gives the next operation to run.  Each operation is
-- read once, each reference is one edge, so a chain of 1,000 forward
-- references costs what 1,000 independent operations cost (plus
-- O(log n) heap steps each), not one scan per link.  An operation whose
-- references include an undefined or failed POST is answered 409 at the
-- scan that first sees it; what never becomes ready waits on a cycle (409).
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

REVOKE ALL ON FUNCTION scim._bulk_refs(text, text), scim._bulk_substitute(text, jsonb, text[], boolean),
	scim._bulk_result(text, text, integer, jsonb, jsonb, text),
	scim._bulk_route(text, text, jsonb, text) FROM PUBLIC;
