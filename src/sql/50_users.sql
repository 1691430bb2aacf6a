
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

-- A request body as jsonb; missing or malformed -> 22023 "invalidSyntax: ...".
CREATE FUNCTION scim._request_json(body text)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'scim_request_json'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION scim._request_json(text) IS
	'Internal: a request body parsed as jsonb; a missing or malformed body is SCIM 400 invalidSyntax';

REVOKE ALL ON FUNCTION scim._user_from_resource(jsonb, text, text, scim.users),
	scim._query_params(text), scim._request_json(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION scim.user_resource(scim.users, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.user_resource(scim.users, text, text) TO scim_reader, scim_admin;

-- SQLSTATE -> SCIM status, scimType and detail (doc/CONTRACTS.md).
--   23505 -> 409 uniqueness; 23514, 23502 -> 400 invalidValue;
--   class 22 -> 400 with the message's "scimType: " prefix, else invalidValue;
--   42501 -> 403; anything else -> 500 with a generic detail (the server log
--   has the rest).
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
