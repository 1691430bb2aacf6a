
-- ---------------------------------------------------------------------------
-- 15_triggers.sql: the triggers own the user states, for every writer (SCIM,
-- the OneLogin worker, and a data team's plain INSERT/UPDATE).
--
-- PL/pgSQL rather than C: the rules are a handful of assignments whose
-- cost is small next to the domain check (C, cached plan) and the row write
-- itself, and keeping them in one readable place matters more here.
--
-- Refusals use SQLSTATE 23514 (check_violation), which scim.handle answers
-- as SCIM 400 invalidValue (doc/CONTRACTS.md).
-- ---------------------------------------------------------------------------

CREATE FUNCTION scim._canonical_user_type(value text) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE lower(btrim(value))
		WHEN 'regular' THEN 'Regular'
		WHEN 'external' THEN 'External'
		WHEN 'collaborator' THEN 'Collaborator'
	END;
$$;
COMMENT ON FUNCTION scim._canonical_user_type(text) IS
	'Canonical case of a user type (Regular, External, Collaborator), NULL when not one of them';

CREATE FUNCTION scim._users_before_write() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	addr text;
	canonical text;
BEGIN
	IF TG_OP = 'UPDATE' THEN
		IF NEW.id IS DISTINCT FROM OLD.id OR NEW.workspace IS DISTINCT FROM OLD.workspace THEN
			RAISE EXCEPTION 'a user''s id and workspace cannot change'
				USING ERRCODE = 'check_violation', CONSTRAINT = 'users_immutable',
					  DETAIL = format('User %s belongs to workspace "%s".', OLD.id, OLD.workspace);
		END IF;
		NEW.created_at := OLD.created_at;
	END IF;

	-- user type: default from the workspace, canonical case, one of three
	IF NEW.user_type IS NULL THEN
		IF TG_OP = 'UPDATE' THEN
			NEW.user_type := OLD.user_type;
		ELSE
			SELECT w.default_user_type INTO canonical FROM scim.workspaces w WHERE w.name = NEW.workspace;
			NEW.user_type := coalesce(canonical, 'Regular');
		END IF;
	ELSE
		canonical := scim._canonical_user_type(NEW.user_type);
		IF canonical IS NULL THEN
			RAISE EXCEPTION 'invalid user type "%"', NEW.user_type
				USING ERRCODE = 'check_violation', CONSTRAINT = 'users_user_type_check',
					  DETAIL = 'A user type is Regular, External or Collaborator.';
		END IF;
		NEW.user_type := canonical;
	END IF;

	-- approved domains, on insert and whenever user_name or email changes
	IF TG_OP = 'INSERT'
	   OR NEW.user_name IS DISTINCT FROM OLD.user_name
	   OR NEW.email IS DISTINCT FROM OLD.email THEN
		IF NEW.email IS NULL AND position('@' IN NEW.user_name) = 0 THEN
			RAISE EXCEPTION 'user "%" has no e-mail address', NEW.user_name
				USING ERRCODE = 'check_violation', CONSTRAINT = 'users_approved_domain',
					  DETAIL = 'Only users with an e-mail address on an approved domain are provisioned.',
					  HINT = 'Send an e-mail address as userName or as the primary email.';
		END IF;
		FOREACH addr IN ARRAY ARRAY[CASE WHEN position('@' IN NEW.user_name) > 0 THEN NEW.user_name END, NEW.email]
		LOOP
			CONTINUE WHEN addr IS NULL;
			IF NOT scim.domain_approved(addr, NEW.workspace) THEN
				RAISE EXCEPTION 'e-mail domain of "%" is not approved for workspace "%"', addr, NEW.workspace
					USING ERRCODE = 'check_violation', CONSTRAINT = 'users_approved_domain',
						  DETAIL = CASE WHEN scim.email_domain(addr) IS NULL
									   THEN 'The address is malformed.'
									   ELSE format('Domain "%s" is not on the workspace''s approved list.', scim.email_domain(addr)) END,
						  HINT = 'Approve the domain with scim.approve_domain(domain, workspace).';
			END IF;
		END LOOP;
	END IF;

	-- states: billable on provisioning, deactivation keeps the row
	IF TG_OP = 'INSERT' THEN
		IF NEW.active THEN
			NEW.billable := true;
			NEW.billable_since := now();
			NEW.deactivated_at := NULL;
		ELSE
			NEW.billable := false;
			NEW.billable_since := NULL;
			NEW.deactivated_at := now();
		END IF;
		NEW.version := 1;
		NEW.created_at := now();
		NEW.updated_at := now();
	ELSE
		IF OLD.active AND NOT NEW.active THEN
			NEW.billable := false;
			NEW.deactivated_at := now();
			NEW.billable_since := OLD.billable_since;
		ELSIF NOT OLD.active AND NEW.active THEN
			NEW.billable := true;
			NEW.billable_since := now();
			NEW.deactivated_at := NULL;
		ELSE
			-- the states are derived; direct edits of them are ignored
			NEW.billable := OLD.billable;
			NEW.billable_since := OLD.billable_since;
			NEW.deactivated_at := OLD.deactivated_at;
		END IF;
		IF NEW IS DISTINCT FROM OLD THEN
			NEW.version := OLD.version + 1;
			NEW.updated_at := greatest(now(), OLD.updated_at);
		ELSE
			NEW.version := OLD.version;
			NEW.updated_at := OLD.updated_at;
		END IF;
	END IF;
	RETURN NEW;
END;
$$;
COMMENT ON FUNCTION scim._users_before_write() IS
	'Trigger: user type default and check, approved-domain gate, billable/deactivated states, version';

CREATE TRIGGER users_before_write
	BEFORE INSERT OR UPDATE ON scim.users
	FOR EACH ROW EXECUTE FUNCTION scim._users_before_write();
