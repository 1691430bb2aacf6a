
-- ---------------------------------------------------------------------------
-- 18_admin.sql: administration (workspaces, approved domains, tokens,
-- deletion policy).  SECURITY DEFINER with a pinned search_path so that
-- members of scim_admin need no table privileges; revoked from PUBLIC.
-- ---------------------------------------------------------------------------

CREATE FUNCTION scim._require_workspace(workspace text) RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM scim.workspaces w WHERE w.name = workspace) THEN
		RAISE EXCEPTION 'workspace "%" does not exist', workspace
			USING ERRCODE = 'undefined_object',
				  HINT = 'Create it with scim.create_workspace(name).';
	END IF;
END;
$$;

CREATE FUNCTION scim.create_workspace(name text, deletion_policy text DEFAULT 'deactivate',
									  default_user_type text DEFAULT 'Regular')
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	INSERT INTO scim.workspaces (name, deletion_policy, default_user_type)
	VALUES (name, lower(deletion_policy), coalesce(scim._canonical_user_type(default_user_type), default_user_type));
END;
$$;
COMMENT ON FUNCTION scim.create_workspace(text, text, text) IS
	'Create a workspace (tenant) with its deletion policy and default user type';

CREATE FUNCTION scim.approve_domain(domain text, workspace text DEFAULT 'default',
									include_subdomains boolean DEFAULT false)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	PERFORM scim._require_workspace(workspace);
	INSERT INTO scim.approved_domains AS d (workspace, domain, include_subdomains)
	VALUES (workspace, scim.normalize_domain(domain), include_subdomains)
	ON CONFLICT ON CONSTRAINT approved_domains_pkey
	DO UPDATE SET include_subdomains = EXCLUDED.include_subdomains;
END;
$$;
COMMENT ON FUNCTION scim.approve_domain(text, text, boolean) IS
	'Approve an e-mail domain for a workspace; include_subdomains also approves every subdomain of it';

CREATE FUNCTION scim.unapprove_domain(domain text, workspace text DEFAULT 'default')
	RETURNS boolean
	LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
	WITH d AS (
		DELETE FROM scim.approved_domains a
		WHERE a.workspace = $2 AND a.domain = scim.normalize_domain($1)
		RETURNING 1)
	SELECT count(*) > 0 FROM d;
$$;
COMMENT ON FUNCTION scim.unapprove_domain(text, text) IS
	'Remove a domain from the approved list (existing users stay; new ones on it are refused)';

CREATE FUNCTION scim.create_token(name text, workspace text DEFAULT 'default')
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

CREATE FUNCTION scim.revoke_token(name text, workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	UPDATE scim.tokens t SET revoked_at = now()
	WHERE t.workspace = revoke_token.workspace AND t.name = revoke_token.name AND t.revoked_at IS NULL;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'workspace "%" has no active token named "%"', workspace, name
			USING ERRCODE = 'undefined_object';
	END IF;
END;
$$;
COMMENT ON FUNCTION scim.revoke_token(text, text) IS 'Revoke a SCIM bearer token; it is refused from then on';

CREATE FUNCTION scim.set_deletion_policy(policy text, workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	PERFORM scim._require_workspace(workspace);
	IF lower(policy) IS DISTINCT FROM 'deactivate' AND lower(policy) IS DISTINCT FROM 'delete' THEN
		RAISE EXCEPTION 'invalid deletion policy "%"', policy
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A deletion policy is "deactivate" (the default: the user is deactivated and kept) or "delete" (the row is removed).';
	END IF;
	UPDATE scim.workspaces w SET deletion_policy = lower(policy) WHERE w.name = workspace;
END;
$$;
COMMENT ON FUNCTION scim.set_deletion_policy(text, text) IS
	'What a SCIM DELETE or a OneLogin deletion does: deactivate (default) or delete';

CREATE FUNCTION scim.set_default_user_type(user_type text, workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	canonical text := scim._canonical_user_type(user_type);
BEGIN
	PERFORM scim._require_workspace(workspace);
	IF canonical IS NULL THEN
		RAISE EXCEPTION 'invalid user type "%"', user_type
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A user type is Regular, External or Collaborator.';
	END IF;
	UPDATE scim.workspaces w SET default_user_type = canonical WHERE w.name = workspace;
END;
$$;
COMMENT ON FUNCTION scim.set_default_user_type(text, text) IS
	'User type given to new users that arrive without one (Regular unless changed)';

REVOKE ALL ON FUNCTION scim._require_workspace(text),
	scim.create_workspace(text, text, text),
	scim.approve_domain(text, text, boolean),
	scim.unapprove_domain(text, text),
	scim.create_token(text, text),
	scim.revoke_token(text, text),
	scim.set_deletion_policy(text, text),
	scim.set_default_user_type(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.create_workspace(text, text, text),
	scim.approve_domain(text, text, boolean),
	scim.unapprove_domain(text, text),
	scim.create_token(text, text),
	scim.revoke_token(text, text),
	scim.set_deletion_policy(text, text),
	scim.set_default_user_type(text, text) TO scim_admin;
-- domain_approved is SECURITY DEFINER (it reads approved_domains): not PUBLIC's
REVOKE ALL ON FUNCTION scim.domain_approved(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.email_domain(text), scim.domain_approved(text, text),
	scim.normalize_domain(text) TO scim_reader, scim_admin;
