
-- ---------------------------------------------------------------------------
-- 50_users.sql: the one SCIM <-> scim.users mapping (C, src/mapping.c), the
-- SQLSTATE -> SCIM error mapping, and the upsert path shared by the SCIM
-- endpoint's callers and the OneLogin worker (scim.provision_user,
-- scim.deprovision_user).  See doc/CONTRACTS.md.
-- ---------------------------------------------------------------------------

-- The row a SCIM User resource describes.  mode: create | replace (PUT: the
-- synced attributes left out keep their value) | merge (everything left out
-- keeps its value) | full (the resource is the whole new state, e.g. after a
-- PATCH).  Raises 22023 "invalidValue: ..." / "invalidSyntax: ...".
CREATE FUNCTION scim._user_from_resource(resource jsonb, mode text, workspace text, current scim.users)
	RETURNS scim.users
	AS 'MODULE_PATHNAME', 'scim_user_from_resource'
	LANGUAGE C STABLE;
COMMENT ON FUNCTION scim._user_from_resource(jsonb, text, text, scim.users) IS
	'Internal: the scim.users row a SCIM User resource describes (modes create, replace, merge, full)';

-- The SCIM resource of a row, with the attributes / excludedAttributes projection.
CREATE FUNCTION scim.user_resource(u scim.users, attributes text DEFAULT NULL, excluded_attributes text DEFAULT NULL)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'scim_user_resource'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION scim.user_resource(scim.users, text, text) IS
	'The SCIM 2.0 User resource of a scim.users row (RFC 7644 attributes / excludedAttributes projection)';

-- A raw URL query string as an object of parameter -> decoded value.
CREATE FUNCTION scim._query_params(query text)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'scim_query_params'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION scim._query_params(text) IS
	'Internal: percent-decoded query parameters (+ is a space; SCIM parameter names in canonical case)';

-- A request body as jsonb; missing or malformed -> 22023 "invalidSyntax: ...";
-- over scim_provision.max_body_size -> "tooLarge: ..." (413), nested deeper
-- than scim_provision.max_json_depth -> "invalidSyntax: ...", both before
-- parsing (src/request_limits.c).  STABLE: the limits are settings.
CREATE FUNCTION scim._request_json(body text)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'scim_request_json'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION scim._request_json(text) IS
	'Internal: a request body parsed as jsonb; a missing or malformed body is SCIM 400 invalidSyntax';

-- The request itself, or "tooLarge: ..." (413) when its PATCH operations and
-- member values outnumber scim_provision.max_operations; O(operations),
-- before any of it is applied (src/request_limits.c).
CREATE FUNCTION scim._within_operation_limit(request jsonb)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'scim_within_operation_limit'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION scim._within_operation_limit(jsonb) IS
	'Internal: the request, or SCIM 413 tooLarge when it holds more than scim_provision.max_operations operations and member values';

REVOKE ALL ON FUNCTION scim._user_from_resource(jsonb, text, text, scim.users),
	scim._query_params(text), scim._request_json(text), scim._within_operation_limit(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION scim.user_resource(scim.users, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.user_resource(scim.users, text, text) TO scim_reader, scim_admin;

-- SQLSTATE -> SCIM status, scimType and detail (doc/CONTRACTS.md).
--   23505 -> 409 uniqueness; 23514, 23502 -> 400 invalidValue;
--   class 22 -> 400 with the message's "scimType: " prefix, else invalidValue
--   (prefix tooLarge: 413, a limit of doc/LIMITS.md);
--   42501 -> 403; 40001, 40P01, 55P03 -> 503 (retryable: a concurrent
--   transaction won; scim.handle adds Retry-After); anything else -> 500
--   with a generic detail (the server log has the rest).
CREATE FUNCTION scim._scim_error(sqlstate text, message text, message_detail text, user_name text,
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
COMMENT ON FUNCTION scim._scim_error(text, text, text, text) IS
	'Internal: the SCIM error (HTTP status, scimType, detail) for an SQLSTATE and message';

-- Writes of a mapped row.  The triggers own the states (billable,
-- deactivated_at), version and timestamps.
CREATE FUNCTION scim._user_insert(r scim.users)
	RETURNS scim.users
	LANGUAGE plpgsql
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	result scim.users;
BEGIN
	INSERT INTO scim.users AS u (workspace, user_name, external_id, given_name, family_name, display_name,
								 email, title, phone, organization, department, user_type, active, attributes)
	VALUES (r.workspace, r.user_name, r.external_id, r.given_name, r.family_name, r.display_name,
			r.email, r.title, r.phone, r.organization, r.department, r.user_type, r.active, r.attributes)
	RETURNING u.* INTO result;
	RETURN result;
END;
$$;

CREATE FUNCTION scim._user_update(r scim.users)
	RETURNS scim.users
	LANGUAGE plpgsql
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	result scim.users;
BEGIN
	UPDATE scim.users AS u
	SET user_name = r.user_name, external_id = r.external_id, given_name = r.given_name,
		family_name = r.family_name, display_name = r.display_name, email = r.email, title = r.title,
		phone = r.phone, organization = r.organization, department = r.department,
		user_type = r.user_type, active = r.active, attributes = r.attributes
	WHERE u.id = r.id AND u.workspace = r.workspace
	RETURNING u.* INTO result;
	RETURN result;
END;
$$;
REVOKE ALL ON FUNCTION scim._scim_error(text, text, text, text), scim._user_insert(scim.users),
	scim._user_update(scim.users) FROM PUBLIC;

-- The upsert path shared by SCIM and the OneLogin worker (doc/CONTRACTS.md).
-- Finds the user by externalId, else by userName (case-insensitive); creates
-- (201) or updates with the merge rule (200): whatever the resource leaves
-- out (absent or null) keeps its stored value.  A refusal (400 domain, user
-- type, bad input; 409 userName taken by another user) writes nothing but
-- its System Log row.  Exactly one log row per call, with the given source.
CREATE FUNCTION scim.provision_user(resource jsonb, source text, workspace text DEFAULT 'default')
	RETURNS TABLE(status integer, scim_type text, detail text, id uuid)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	keys		scim.users;
	cur			scim.users;
	new			scim.users;
	log_method	text := 'POST';
	log_path	text := '/Users';
	log_user	text;
	err_state	text;
	err_msg		text;
	err_detail	text;
BEGIN
	status := NULL;
	scim_type := NULL;
	detail := NULL;
	id := NULL;
	-- an unknown workspace: nothing to do but say so (and log it)
	IF NOT EXISTS (SELECT FROM scim.workspaces w WHERE w.name = provision_user.workspace) THEN
		status := 404;
		detail := format('workspace "%s" does not exist', provision_user.workspace);
		PERFORM scim.log_attempt(provision_user.source, 'POST', '/Users', NULL, CASE WHEN jsonb_typeof(resource -> 'userName') = 'string' THEN resource ->> 'userName' END, status, NULL, detail, provision_user.workspace);
		RETURN NEXT;
		RETURN;
	END IF;
	BEGIN
		IF resource IS NULL OR jsonb_typeof(resource) <> 'object' THEN
			RAISE EXCEPTION 'invalidSyntax: a user resource must be a JSON object'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		-- the lookup keys, read through the mapping (any spelling the mapping accepts)
		keys := scim._user_from_resource(resource, 'merge', provision_user.workspace, NULL);
		log_user := keys.user_name;
		IF keys.external_id IS NOT NULL THEN
			SELECT u.* INTO cur FROM scim.users u
			WHERE u.workspace = provision_user.workspace AND u.external_id = keys.external_id
			ORDER BY u.created_at, u.id
			LIMIT 1
			FOR UPDATE;
		END IF;
		IF cur.id IS NULL AND keys.user_name IS NOT NULL THEN
			SELECT u.* INTO cur FROM scim.users u
			WHERE u.workspace = provision_user.workspace AND lower(u.user_name) = lower(keys.user_name)
			FOR UPDATE;
		END IF;

		IF cur.id IS NULL THEN
			new := scim._user_from_resource(resource, 'create', provision_user.workspace, NULL);
			cur := scim._user_insert(new);
			status := 201;
		ELSE
			log_method := 'PUT';
			log_path := '/Users/' || cur.id;
			new := scim._user_from_resource(resource, 'merge', provision_user.workspace, cur);
			cur := scim._user_update(new);
			status := 200;
		END IF;
		id := cur.id;
		log_user := cur.user_name;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT, err_detail = PG_EXCEPTION_DETAIL;
		IF log_user IS NULL AND jsonb_typeof(resource -> 'userName') = 'string' THEN
			log_user := resource ->> 'userName';
		END IF;
		SELECT e.status, e.scim_type, e.detail INTO status, scim_type, detail
		FROM scim._scim_error(err_state, err_msg, err_detail, log_user) e;
		IF status = 500 THEN
			RAISE LOG 'scim_provision: provision_user failed: % (SQLSTATE %)', err_msg, err_state;
		END IF;
		id := NULL;
	END;
	PERFORM scim.log_attempt(provision_user.source, log_method, log_path, provision_user.id, log_user,
							 provision_user.status, provision_user.scim_type, provision_user.detail,
							 provision_user.workspace);
	RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION scim.provision_user(jsonb, text, text) IS
	'Create or update a user from a SCIM User resource (by externalId, else userName); left-out attributes keep their values; logs one System Log row';

-- Deprovisioning by externalId, by the workspace's deletion policy:
-- deactivate (active = false, row and history kept) or delete (row removed).
-- 204 on success (detail says which), 404 when no user has that externalId.
CREATE FUNCTION scim.deprovision_user(external_id text, source text, workspace text DEFAULT 'default')
	RETURNS TABLE(status integer, scim_type text, detail text, id uuid)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	cur			scim.users;
	policy		text;
	log_path	text := '/Users';
	err_state	text;
	err_msg		text;
	err_detail	text;
BEGIN
	status := NULL;
	scim_type := NULL;
	detail := NULL;
	id := NULL;
	-- an unknown workspace: nothing to do but say so (and log it)
	IF NOT EXISTS (SELECT FROM scim.workspaces w WHERE w.name = deprovision_user.workspace) THEN
		status := 404;
		detail := format('workspace "%s" does not exist', deprovision_user.workspace);
		PERFORM scim.log_attempt(deprovision_user.source, 'DELETE', '/Users', NULL, NULL, status, NULL, detail, deprovision_user.workspace);
		RETURN NEXT;
		RETURN;
	END IF;
	BEGIN
		IF deprovision_user.external_id IS NOT NULL THEN
			SELECT u.* INTO cur FROM scim.users u
			WHERE u.workspace = deprovision_user.workspace AND u.external_id = deprovision_user.external_id
			ORDER BY u.created_at, u.id
			LIMIT 1
			FOR UPDATE;
		END IF;
		IF cur.id IS NULL THEN
			status := 404;
			detail := format('no user with externalId "%s"', deprovision_user.external_id);
		ELSE
			id := cur.id;
			log_path := '/Users/' || cur.id;
			SELECT w.deletion_policy INTO policy FROM scim.workspaces w WHERE w.name = deprovision_user.workspace;
			IF policy = 'delete' THEN
				DELETE FROM scim.users u WHERE u.id = cur.id;
				detail := 'user deleted (deletion policy "delete")';
			ELSE
				UPDATE scim.users u SET active = false WHERE u.id = cur.id;
				detail := 'user deactivated (deletion policy "deactivate")';
			END IF;
			status := 204;
		END IF;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT, err_detail = PG_EXCEPTION_DETAIL;
		SELECT e.status, e.scim_type, e.detail INTO status, scim_type, detail
		FROM scim._scim_error(err_state, err_msg, err_detail, cur.user_name) e;
		IF status = 500 THEN
			RAISE LOG 'scim_provision: deprovision_user failed: % (SQLSTATE %)', err_msg, err_state;
		END IF;
	END;
	PERFORM scim.log_attempt(deprovision_user.source, 'DELETE', log_path, deprovision_user.id, cur.user_name,
							 deprovision_user.status, deprovision_user.scim_type, deprovision_user.detail,
							 deprovision_user.workspace);
	RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION scim.deprovision_user(text, text, text) IS
	'Deprovision the user with that externalId by the workspace''s deletion policy; logs one System Log row';

REVOKE ALL ON FUNCTION scim.provision_user(jsonb, text, text), scim.deprovision_user(text, text, text) FROM PUBLIC;

-- The set-based upsert of a batch (the OneLogin worker's pages): per user
-- exactly what scim.provision_user does (same lookups, statuses, refusals,
-- one System Log row each), without a subtransaction per user.
--  1. One statement maps every resource (the C mapping), finds and locks
--     its user (externalId, else userName), maps the new row, checks what
--     the users trigger would refuse (user type, approved domain, no
--     address) and writes the rest at once: one INSERT, one UPDATE, one
--     INSERT of the log rows.  A user whose lookup or write could depend on
--     another user of the batch (any userName, externalId or matched row
--     they share: in-batch duplicates, renames onto each other) is left
--     out of it, as is a resource that is not an object.
--  2. Those left out go through scim.provision_user one by one, in batch
--     order, after the set-based write: since they share no key with the
--     users written in step 1, the outcome is that of sequential calls.
--  3. When step 1 raises anyway (a resource the mapping rejects, a
--     concurrent insert of the same userName, ...), it is rolled back and
--     the whole batch goes through scim.provision_user one by one, so one
--     bad user never loses a batch.
-- The triggers still run for every written row: they own the states.
-- Returns one row per resource, ord being its 1-based position.
CREATE FUNCTION scim.provision_users(resources jsonb[], source text, workspace text DEFAULT 'default')
	RETURNS TABLE(ord integer, status integer, scim_type text, detail text, id uuid)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	ws			text := provision_users.workspace;
	src			text := provision_users.source;
	r_ord		integer[];
	r_status	integer[];
	r_type		text[];
	r_detail	text[];
	r_id		uuid[];
	seq_ords	integer[];
	all_updated	boolean;
	dom_exact	text[];
	dom_sub		text[];
	o			integer;
	err_msg		text;
	err_state	text;
BEGIN
	IF resources IS NULL OR cardinality(resources) = 0 THEN
		RETURN;
	END IF;
	IF NOT EXISTS (SELECT FROM scim.workspaces w WHERE w.name = ws) THEN
		-- 404 for each, logged by provision_user
		seq_ords := ARRAY(SELECT g FROM generate_series(1, cardinality(resources)) g);
	ELSE
		-- the workspace's approved domains, read once: the pre-check below
		-- approves whatever scim.domain_approved approves (the trigger has
		-- the last word; were the pre-check laxer, the batch falls back)
		SELECT coalesce(array_agg(d.domain), '{}'),
			   coalesce(array_agg(d.domain) FILTER (WHERE d.include_subdomains), '{}')
		INTO dom_exact, dom_sub
		FROM scim.approved_domains d WHERE d.workspace = ws;
		BEGIN
			WITH r AS MATERIALIZED (
				SELECT x.res, x.n::integer AS ord
				FROM unnest(resources) WITH ORDINALITY AS x(res, n)
			), k AS MATERIALIZED (
				SELECT r.ord, r.res,
					   -- the row a create would write; its userName and externalId
					   -- are the lookup keys (as the merge mapping reads them)
					   CASE WHEN jsonb_typeof(r.res) = 'object'
							THEN scim._user_from_resource(r.res, 'create', ws, NULL) END AS key
				FROM r
			), c AS MATERIALIZED (
				SELECT k.ord, k.res, k.key,
					   coalesce((SELECT u FROM scim.users u
								 WHERE u.workspace = ws AND u.external_id = (k.key).external_id
								 ORDER BY u.created_at, u.id LIMIT 1 FOR UPDATE),
								(SELECT u FROM scim.users u
								 WHERE u.workspace = ws AND lower(u.user_name) = lower((k.key).user_name)
								 FOR UPDATE)) AS cur
				FROM k
				WHERE jsonb_typeof(k.res) = 'object'
			), m AS MATERIALIZED (
				-- a new user's id is chosen here, so results need no join back
				SELECT c.ord, c.key, c.cur,
					   CASE WHEN (c.cur).id IS NULL THEN gen_random_uuid() ELSE (c.cur).id END AS uid,
					   CASE WHEN (c.cur).id IS NULL
							THEN c.key
							ELSE scim._user_from_resource(c.res, 'merge', ws, c.cur) END AS new
				FROM c
			), kk AS (
				-- the keys a user's lookup reads or its write changes (the new
				-- row's userName and externalId are the resource's when it has them)
				SELECT m.ord, x.key
				FROM m, unnest(ARRAY['n:' || lower((m.new).user_name), 'n:' || lower((m.cur).user_name),
									 'e:' || (m.new).external_id, 'e:' || (m.cur).external_id,
									 'i:' || (m.cur).id]) AS x(key)
				WHERE x.key IS NOT NULL
			), shared AS MATERIALIZED (
				SELECT DISTINCT kk.ord
				FROM kk
				WHERE kk.key IN (SELECT kk2.key FROM kk kk2 GROUP BY kk2.key HAVING count(DISTINCT kk2.ord) > 1)
			), v AS MATERIALIZED (
				-- what the users trigger would refuse, with its message and detail
				SELECT m.ord, m.key, m.cur, m.new, m.uid,
					   (m.cur).id IS NULL AS creating,
					   CASE
						 WHEN (m.new).user_type IS NOT NULL AND scim._canonical_user_type((m.new).user_type) IS NULL
						 THEN format('invalid user type "%s". A user type is Regular, External or Collaborator.',
									 (m.new).user_type)
						 WHEN (m.cur).id IS NOT NULL
							  AND (m.new).user_name IS NOT DISTINCT FROM (m.cur).user_name
							  AND (m.new).email IS NOT DISTINCT FROM (m.cur).email
						 THEN NULL
						 WHEN (m.new).email IS NULL AND position('@' IN (m.new).user_name) = 0
						 THEN format('user "%s" has no e-mail address. Only users with an e-mail address on an approved domain are provisioned.',
									 (m.new).user_name)
						 WHEN position('@' IN (m.new).user_name) > 0
							  AND NOT coalesce(d.dn = ANY (dom_exact)
											   OR (cardinality(dom_sub) > 0
												   AND EXISTS (SELECT FROM unnest(dom_sub) AS s(dom)
															   WHERE right(d.dn, length(s.dom) + 1) = '.' || s.dom)), false)
						 THEN format('e-mail domain of "%s" is not approved for workspace "%s". %s', (m.new).user_name, ws,
									 CASE WHEN d.dn IS NULL THEN 'The address is malformed.'
										  ELSE format('Domain "%s" is not on the workspace''s approved list.', d.dn) END)
						 WHEN (m.new).email IS NOT NULL
							  AND NOT coalesce(d.de = ANY (dom_exact)
											   OR (cardinality(dom_sub) > 0
												   AND EXISTS (SELECT FROM unnest(dom_sub) AS s(dom)
															   WHERE right(d.de, length(s.dom) + 1) = '.' || s.dom)), false)
						 THEN format('e-mail domain of "%s" is not approved for workspace "%s". %s', (m.new).email, ws,
									 CASE WHEN d.de IS NULL THEN 'The address is malformed.'
										  ELSE format('Domain "%s" is not on the workspace''s approved list.', d.de) END)
					   END AS refusal
				FROM m
				CROSS JOIN LATERAL (SELECT scim.email_domain((m.new).user_name) AS dn,
										   scim.email_domain((m.new).email) AS de) AS d
				WHERE m.ord NOT IN (SELECT shared.ord FROM shared)
			), ins AS (
				INSERT INTO scim.users AS u (id, workspace, user_name, external_id, given_name, family_name, display_name,
											 email, title, phone, organization, department, user_type, active, attributes)
				SELECT v.uid, (v.new).workspace, (v.new).user_name, (v.new).external_id, (v.new).given_name,
					   (v.new).family_name, (v.new).display_name, (v.new).email, (v.new).title, (v.new).phone,
					   (v.new).organization, (v.new).department, (v.new).user_type, (v.new).active,
					   (v.new).attributes
				FROM v
				WHERE v.creating AND v.refusal IS NULL
				ORDER BY v.ord
				RETURNING u.id, u.user_name
			), upd AS (
				UPDATE scim.users AS u
				SET user_name = (v.new).user_name, external_id = (v.new).external_id,
					given_name = (v.new).given_name, family_name = (v.new).family_name,
					display_name = (v.new).display_name, email = (v.new).email, title = (v.new).title,
					phone = (v.new).phone, organization = (v.new).organization,
					department = (v.new).department, user_type = (v.new).user_type,
					active = (v.new).active, attributes = (v.new).attributes
				FROM v
				WHERE NOT v.creating AND v.refusal IS NULL
				  AND u.id = (v.cur).id AND u.workspace = ws
				RETURNING u.id
			), res AS MATERIALIZED (
				-- written (ins and upd write them all, or the statement fails)
				SELECT v.ord, CASE WHEN v.creating THEN 201 ELSE 200 END AS status, NULL::text AS scim_type,
					   NULL::text AS detail, v.uid AS id, (v.new).user_name AS user_name,
					   CASE WHEN v.creating THEN 'POST' ELSE 'PUT' END AS method,
					   CASE WHEN v.creating THEN '/Users' ELSE '/Users/' || v.uid END AS path
				FROM v
				WHERE v.refusal IS NULL
				UNION ALL
				-- a refused update is logged as the PUT it was (provision_user does likewise)
				SELECT v.ord, 400, 'invalidValue', v.refusal, NULL::uuid, (v.key).user_name,
					   CASE WHEN v.creating THEN 'POST' ELSE 'PUT' END,
					   CASE WHEN v.creating THEN '/Users' ELSE '/Users/' || (v.cur).id END
				FROM v
				WHERE v.refusal IS NOT NULL
			), logged AS (
				INSERT INTO scim.provisioning_log (workspace, source, method, path, resource_id, user_name,
												   status, scim_type, detail)
				SELECT ws, src, res.method, res.path, res.id, res.user_name, res.status, res.scim_type,
					   left(res.detail, 2000)
				FROM res
				ORDER BY res.ord
			)
			SELECT array_agg(res.ord), array_agg(res.status), array_agg(res.scim_type),
				   array_agg(res.detail), array_agg(res.id),
				   ARRAY(SELECT g FROM generate_series(1, cardinality(resources)) g
						 EXCEPT SELECT res2.ord FROM res res2 ORDER BY 1),
				   (SELECT count(*) FROM upd) = (SELECT count(*) FROM res WHERE res.status = 200)
			INTO r_ord, r_status, r_type, r_detail, r_id, seq_ords, all_updated
			FROM res;
			IF NOT all_updated THEN
				-- a user found above is gone: undo, and go one by one
				RAISE EXCEPTION 'a user to update has disappeared';
			END IF;
		EXCEPTION WHEN OTHERS THEN
			-- everything above is undone: the whole batch, user by user
			GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT;
			RAISE DEBUG 'scim_provision: set-based provisioning of % users failed (%: %), applying them one by one',
				cardinality(resources), err_state, err_msg;
			r_ord := NULL;
			seq_ords := ARRAY(SELECT g FROM generate_series(1, cardinality(resources)) g);
		END;
	END IF;

	IF r_ord IS NOT NULL THEN
		RETURN QUERY
			SELECT t.o, t.s, t.y, t.d, t.i
			FROM ROWS FROM (unnest(r_ord), unnest(r_status), unnest(r_type), unnest(r_detail), unnest(r_id))
				 AS t(o, s, y, d, i);
	END IF;
	IF seq_ords IS NOT NULL THEN
		FOREACH o IN ARRAY seq_ords
		LOOP
			RETURN QUERY
				SELECT o, p.status, p.scim_type, p.detail, p.id
				FROM scim.provision_user(resources[o], src, ws) AS p;
		END LOOP;
	END IF;
END;
$$;
COMMENT ON FUNCTION scim.provision_users(jsonb[], text, text) IS
	'scim.provision_user for a batch (ord = 1-based position), set-based: one log row per user, same results as sequential calls';
REVOKE ALL ON FUNCTION scim.provision_users(jsonb[], text, text) FROM PUBLIC;
