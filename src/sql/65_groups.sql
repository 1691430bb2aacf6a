-- ---------------------------------------------------------------------------
-- 65_groups.sql: Groups (RFC 7643 section 4.2) and their members, the
-- /Groups endpoint behind scim.handle, membership PATCH at O(members
-- changed), and the read-only "groups" attribute of a User.
--
-- Storage: scim.groups holds one row per group (displayName unique per
-- workspace, case-insensitively); scim.group_members one row per direct
-- member.  Members are users of the same workspace; nested groups are not
-- supported (a group id as a member value is refused with invalidValue).
-- Deleting a user removes its memberships (ON DELETE CASCADE) and moves the
-- version of every group it left.
--
-- Cost model: a membership change touches only the rows it names (primary
-- key and member_id index) plus the group row, whose version bump also
-- serialises concurrent PATCHes of one group.  Only rendering the members
-- (GET without excludedAttributes=members, PUT, PATCH answered with the
-- resource) reads the whole member list.
-- ---------------------------------------------------------------------------

CREATE TABLE scim.groups (
	id					uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	workspace			text NOT NULL DEFAULT 'default' REFERENCES scim.workspaces (name) ON UPDATE CASCADE,
	display_name		text NOT NULL CHECK (btrim(display_name) <> ''),
	external_id			text,
	attributes			jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
	version				bigint NOT NULL DEFAULT 1,
	created_at			timestamptz NOT NULL DEFAULT now(),
	updated_at			timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE scim.groups IS 'Provisioned groups, one row each; members in scim.group_members';
COMMENT ON COLUMN scim.groups.attributes IS 'SCIM attributes of the group other than displayName, externalId and members';

-- displayName is unique per workspace, case-insensitively (409 uniqueness).
CREATE UNIQUE INDEX groups_workspace_display_name_idx ON scim.groups (workspace, lower(display_name));
CREATE INDEX groups_workspace_external_id_idx ON scim.groups (workspace, external_id) WHERE external_id IS NOT NULL;
-- lists in their default order (creation time, then id), by startIndex or
-- by cursor (68_cursor.sql)
CREATE INDEX groups_workspace_created_idx ON scim.groups (workspace, created_at, id);

CREATE TABLE scim.group_members (
	group_id			uuid NOT NULL REFERENCES scim.groups (id) ON DELETE CASCADE,
	member_id			uuid NOT NULL REFERENCES scim.users (id) ON DELETE CASCADE,
	added_at			timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_member_id_idx ON scim.group_members (member_id);
COMMENT ON TABLE scim.group_members IS 'Direct members (users) of each group';

SELECT pg_catalog.pg_extension_config_dump('scim.groups', '');
SELECT pg_catalog.pg_extension_config_dump('scim.group_members', '');

-- version and updated_at move on every change of a group row; id, workspace
-- and created_at never change.
CREATE FUNCTION scim._groups_before_write() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		NEW.version := 1;
		NEW.created_at := now();
		NEW.updated_at := now();
		RETURN NEW;
	END IF;
	IF NEW.id IS DISTINCT FROM OLD.id OR NEW.workspace IS DISTINCT FROM OLD.workspace THEN
		RAISE EXCEPTION 'a group''s id and workspace cannot change'
			USING ERRCODE = 'check_violation', CONSTRAINT = 'groups_immutable',
				  DETAIL = format('Group %s belongs to workspace "%s".', OLD.id, OLD.workspace);
	END IF;
	NEW.created_at := OLD.created_at;
	IF NEW IS DISTINCT FROM OLD THEN
		NEW.version := OLD.version + 1;
		NEW.updated_at := greatest(now(), OLD.updated_at);
	ELSE
		NEW.version := OLD.version;
		NEW.updated_at := OLD.updated_at;
	END IF;
	RETURN NEW;
END;
$$;
COMMENT ON FUNCTION scim._groups_before_write() IS
	'Trigger: a group''s version and updated_at move on every change; id and workspace are immutable';

CREATE TRIGGER groups_before_write
	BEFORE INSERT OR UPDATE ON scim.groups
	FOR EACH ROW EXECUTE FUNCTION scim._groups_before_write();

-- Members deleted by anything but a group request (a user deleted: ON
-- DELETE CASCADE; a data team's DELETE) change their groups: move their
-- versions.  The group a request is writing is skipped (it moves its own
-- version once, in _group_finish).
CREATE FUNCTION scim._group_members_after_delete() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	writing		text := coalesce(current_setting('scim.group_write', true), '');
BEGIN
	UPDATE scim.groups g SET version = g.version + 1
	WHERE g.id IN (SELECT DISTINCT o.group_id FROM old_members o)
	  AND g.id::text <> writing;
	RETURN NULL;
END;
$$;
COMMENT ON FUNCTION scim._group_members_after_delete() IS
	'Trigger: members removed outside a group request (a user deleted) move the version of their groups';

CREATE TRIGGER group_members_after_delete
	AFTER DELETE ON scim.group_members
	REFERENCING OLD TABLE AS old_members
	FOR EACH STATEMENT EXECUTE FUNCTION scim._group_members_after_delete();

GRANT SELECT ON scim.groups, scim.group_members TO scim_reader, scim_admin;

-- ---- members: parsing, validation, O(changed) writes ------------------------

-- The member ids a request names.  Accepts what IdPs send: an array of
-- {"value": id, ...} objects (Entra, Okta), a single such object, bare id
-- strings, or an array of them.  display, $ref and type are read-only or
-- derived; type, when given, must be "User" (nested groups are not
-- supported).  A value that is not a uuid is invalidValue.
CREATE FUNCTION scim._member_ids(members jsonb) RETURNS uuid[]
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	elem		jsonb;
	raw			text;
	ids			uuid[] := '{}';
BEGIN
	IF members IS NULL OR jsonb_typeof(members) = 'null' THEN
		RETURN ids;
	END IF;
	IF jsonb_typeof(members) <> 'array' THEN
		members := jsonb_build_array(members);
	END IF;
	FOR elem IN SELECT e FROM jsonb_array_elements(members) AS e
	LOOP
		CASE jsonb_typeof(elem)
			WHEN 'string' THEN
				raw := elem #>> '{}';
			WHEN 'object' THEN
				SELECT m.value #>> '{}' INTO raw
				FROM jsonb_each(elem) AS m WHERE lower(m.key) = 'value' LIMIT 1;
				IF raw IS NULL THEN
					RAISE EXCEPTION 'invalidValue: a member needs a "value"'
						USING ERRCODE = 'invalid_parameter_value',
							  DETAIL = format('Member %s has no "value" (the id of a user).', elem);
				END IF;
				IF EXISTS (SELECT FROM jsonb_each_text(elem) AS m
						   WHERE lower(m.key) = 'type' AND lower(m.value) <> 'user') THEN
					RAISE EXCEPTION 'invalidValue: only users can be members of a group'
						USING ERRCODE = 'invalid_parameter_value',
							  DETAIL = format('Member %s has a type other than "User"; nested groups are not supported.', elem);
				END IF;
			ELSE
				RAISE EXCEPTION 'invalidValue: a member must be an object with a "value"'
					USING ERRCODE = 'invalid_parameter_value',
						  DETAIL = format('Got %s.', elem);
		END CASE;
		raw := btrim(raw);
		IF raw !~* '^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$' THEN
			RAISE EXCEPTION 'invalidValue: member "%" is not the id of a user', left(raw, 100)
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'Member values are the ids of users of the same workspace.';
		END IF;
		ids := ids || raw::uuid;
	END LOOP;
	RETURN ids;
END;
$$;

-- Refuse ids that are not users of the workspace (invalidValue), naming a
-- few of them.  Cost: one index probe per id.
--
-- The users found are locked as they are read (FOR KEY SHARE, the lock the
-- foreign key of group_members takes anyway): a DELETE of one of them that
-- is in progress is waited for, the deleted row is not returned, and the
-- check answers 400 "member not found" instead of the insert failing
-- later on group_members_member_id_fkey (23503, a 500;
-- #15, test/isolation/specs/65_group_member_delete_race.spec).  Under
-- REPEATABLE READ the lock raises 40001 instead, answered 503.
-- Every lookup behind a message is scoped to the workspace: another
-- workspace's group id is "not found", never "is a group" (#15).
CREATE FUNCTION scim._group_check_members(workspace text, ids uuid[]) RETURNS void
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

-- Add members (idempotent: present ones are skipped, as Entra re-adds).
-- Returns the number of rows added.
CREATE FUNCTION scim._group_add_members(workspace text, group_id uuid, ids uuid[]) RETURNS bigint
	LANGUAGE plpgsql
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	n			bigint;
BEGIN
	IF cardinality(ids) = 0 THEN
		RETURN 0;
	END IF;
	PERFORM scim._group_check_members($1, ids);
	INSERT INTO scim.group_members (group_id, member_id)
	SELECT DISTINCT $2, x FROM unnest(ids) AS x
	ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END;
$$;

-- Remove the named members (absent ones are skipped).  Returns the count.
CREATE FUNCTION scim._group_remove_members(group_id uuid, ids uuid[]) RETURNS bigint
	LANGUAGE plpgsql
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	n			bigint;
BEGIN
	IF cardinality(ids) = 0 THEN
		RETURN 0;
	END IF;
	DELETE FROM scim.group_members m WHERE m.group_id = $1 AND m.member_id = ANY (ids);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END;
$$;

-- Replace the member list (PUT, PATCH replace of "members", remove of all
-- members).  O(old + new): the client asked for the whole list.
CREATE FUNCTION scim._group_set_members(workspace text, group_id uuid, ids uuid[],
										OUT added bigint, OUT removed bigint)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	IF cardinality(ids) = 0 THEN
		DELETE FROM scim.group_members m WHERE m.group_id = $2;
	ELSE
		DELETE FROM scim.group_members m
		WHERE m.group_id = $2 AND m.member_id NOT IN (SELECT unnest(ids));	-- hashed
	END IF;
	GET DIAGNOSTICS removed = ROW_COUNT;
	added := scim._group_add_members($1, $2, ids);
END;
$$;

-- ---- rendering ----------------------------------------------------------------

-- Prefix of meta.location and $ref: the GUC scim_provision.base_url without
-- trailing slashes ("" = relative to the SCIM base, like /Users/{id}).
CREATE FUNCTION scim._base_url() RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT rtrim(coalesce(current_setting('scim_provision.base_url', true), ''), '/');
$$;

CREATE FUNCTION scim._scim_timestamp(ts timestamptz) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
$$;

-- The members of a group as SCIM renders them: value, $ref, display (the
-- user's displayName, else userName) and type "User", or only the
-- sub-attributes named in keep (lower case; NULL: all).  Reads the whole
-- member list: O(group).
CREATE FUNCTION scim.group_members_json(group_id uuid, keep text[] DEFAULT NULL) RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object(
				'value', m.member_id,
				'$ref', b.base || m.member_id::text,
				'display', coalesce(u.display_name, u.user_name),
				'type', 'User') - b.dropped ORDER BY m.member_id), '[]'::jsonb)
	FROM (SELECT scim._base_url() || '/Users/' AS base,
				 ARRAY(SELECT s FROM unnest(ARRAY['value', '$ref', 'display', 'type']) s
					   WHERE $2 IS NOT NULL AND NOT s = ANY ($2)) AS dropped) b,
		 scim.group_members m
	JOIN scim.users u ON u.id = m.member_id
	WHERE m.group_id = $1;
$$;
COMMENT ON FUNCTION scim.group_members_json(uuid, text[]) IS
	'The members of a group as SCIM renders them (value, $ref, display, type; or only those in keep)';

-- A user's read-only "groups" attribute (RFC 7643 section 4.1.2): the groups
-- it is a direct member of, as value, $ref, display and type "direct".  An
-- empty array when there are none.  Cost: one probe of the member_id index
-- per membership.
CREATE FUNCTION scim.user_groups(user_id uuid) RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object(
				'value', g.id,
				'$ref', scim._base_url() || '/Groups/' || g.id,
				'display', g.display_name,
				'type', 'direct') ORDER BY g.display_name, g.id), '[]'::jsonb)
	FROM scim.group_members m
	JOIN scim.groups g ON g.id = m.group_id
	WHERE m.member_id = $1;
$$;
COMMENT ON FUNCTION scim.user_groups(uuid) IS
	'A user''s read-only SCIM "groups" attribute: the groups it is a direct member of';

-- An attributes / excludedAttributes list as [{"attr": ..., "sub": ...}],
-- names lower-cased, the core Group URN prefix removed.
CREATE FUNCTION scim._group_attr_list(list text) RETURNS jsonb
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object(
				'attr', split_part(p, '.', 1),
				'sub', nullif(substr(p, length(split_part(p, '.', 1)) + 2), ''))), '[]'::jsonb)
	FROM (SELECT regexp_replace(lower(btrim(x)),
								'^urn:ietf:params:scim:schemas:core:2\.0:group:', '') AS p
		  FROM regexp_split_to_table(coalesce(list, ''), ',') AS x) s
	WHERE p <> '';
$$;

-- Whether a response with this projection shows members (if not, the
-- member table is never read).
CREATE FUNCTION scim._group_wants_members(attributes text, excluded_attributes text) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
	SELECT (jsonb_array_length(scim._group_attr_list($1)) = 0
			OR EXISTS (SELECT FROM jsonb_array_elements(scim._group_attr_list($1)) r WHERE r->>'attr' = 'members'))
	   AND NOT EXISTS (SELECT FROM jsonb_array_elements(scim._group_attr_list($2)) r
					   WHERE r->>'attr' = 'members' AND r->>'sub' IS NULL);
$$;

-- The member sub-attributes a projection keeps (NULL: all of them), so
-- that members are rendered projected instead of projected afterwards.
CREATE FUNCTION scim._group_member_keep(attributes text, excluded_attributes text) RETURNS text[]
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
	WITH inc AS (SELECT r->>'sub' AS sub FROM jsonb_array_elements(scim._group_attr_list($1)) r WHERE r->>'attr' = 'members'),
		 exc AS (SELECT r->>'sub' AS sub FROM jsonb_array_elements(scim._group_attr_list($2)) r
				 WHERE r->>'attr' = 'members' AND r->>'sub' IS NOT NULL),
		 kept AS (SELECT s FROM unnest(ARRAY['value', '$ref', 'display', 'type']) s
				  WHERE (NOT EXISTS (SELECT FROM inc WHERE inc.sub IS NOT NULL) OR EXISTS (SELECT FROM inc WHERE inc.sub IS NULL)
						 OR s IN (SELECT inc.sub FROM inc))
					AND s NOT IN (SELECT exc.sub FROM exc))
	SELECT CASE WHEN (SELECT count(*) FROM kept) = 4 THEN NULL ELSE (SELECT coalesce(array_agg(s), '{}') FROM kept) END;
$$;

-- Keep (keep = true) or drop the sub-attributes named in subs of an object,
-- or of every object of an array.
CREATE FUNCTION scim._project_subs(value jsonb, subs text[], keep boolean) RETURNS jsonb
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE jsonb_typeof($1)
		WHEN 'object' THEN
			(SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)
			 FROM jsonb_each($1) e WHERE (lower(e.key) = ANY ($2)) = $3)
		WHEN 'array' THEN
			(SELECT coalesce(jsonb_agg(scim._project_subs(a.value, $2, $3) ORDER BY a.n), '[]'::jsonb)
			 FROM jsonb_array_elements($1) WITH ORDINALITY a(value, n))
		ELSE $1
	END;
$$;

-- RFC 7644 section 3.9 over a rendered group: attributes keeps only what it
-- names (id and schemas are always returned), then excludedAttributes drops
-- what it names (never id or schemas; members are rendered projected, see
-- _group_wants_members and _group_member_keep).  Names are case-insensitive and may
-- carry the core Group URN; "a.b" names a sub-attribute.
CREATE FUNCTION scim._group_project(resource jsonb, attributes text, excluded_attributes text) RETURNS jsonb
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	inc			jsonb := scim._group_attr_list(attributes);
	exc			jsonb := scim._group_attr_list(excluded_attributes);
	result		jsonb := resource;
	k			text;
	v			jsonb;
	subs		text[];
	whole		boolean;
BEGIN
	IF jsonb_array_length(inc) > 0 THEN
		result := '{}';
		FOR k, v IN SELECT e.key, e.value FROM jsonb_each(resource) e
		LOOP
			-- members come rendered with their projection (_group_member_keep)
			IF lower(k) IN ('id', 'schemas', 'members') THEN
				result := result || jsonb_build_object(k, v);
				CONTINUE;
			END IF;
			SELECT bool_or(r->>'sub' IS NULL), array_agg(r->>'sub') FILTER (WHERE r->>'sub' IS NOT NULL)
			INTO whole, subs
			FROM jsonb_array_elements(inc) r WHERE r->>'attr' = lower(k);
			IF whole THEN
				result := result || jsonb_build_object(k, v);
			ELSIF subs IS NOT NULL THEN
				result := result || jsonb_build_object(k, scim._project_subs(v, subs, true));
			END IF;
		END LOOP;
	END IF;
	IF jsonb_array_length(exc) > 0 THEN
		FOR k, v IN SELECT e.key, e.value FROM jsonb_each(result) e
		LOOP
			CONTINUE WHEN lower(k) IN ('id', 'schemas', 'members');
			SELECT bool_or(r->>'sub' IS NULL), array_agg(r->>'sub') FILTER (WHERE r->>'sub' IS NOT NULL)
			INTO whole, subs
			FROM jsonb_array_elements(exc) r WHERE r->>'attr' = lower(k);
			IF whole THEN
				result := result - k;
			ELSIF subs IS NOT NULL THEN
				result := jsonb_set(result, ARRAY[k], scim._project_subs(v, subs, false));
			END IF;
		END LOOP;
	END IF;
	RETURN result;
END;
$$;

-- The SCIM Group resource of a row.  with_members false leaves members out
-- without reading the member table; member_keep: their sub-attributes.
CREATE FUNCTION scim._group_json(g scim.groups, with_members boolean, member_keep text[] DEFAULT NULL) RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
	SELECT g.attributes || jsonb_strip_nulls(jsonb_build_object(
			'schemas', jsonb_build_array('urn:ietf:params:scim:schemas:core:2.0:Group'),
			'id', g.id,
			'externalId', g.external_id,
			'displayName', g.display_name,
			'meta', jsonb_build_object(
				'resourceType', 'Group',
				'created', scim._scim_timestamp(g.created_at),
				'lastModified', scim._scim_timestamp(g.updated_at),
				'location', scim._base_url() || '/Groups/' || g.id,
				'version', format('W/"%s"', g.version))))
		|| CASE WHEN with_members THEN jsonb_build_object('members', scim.group_members_json(g.id, member_keep))
				ELSE '{}'::jsonb END;
$$;

-- The resource as a response shows it: members read only when the
-- projection keeps them.
CREATE FUNCTION scim.group_resource(g scim.groups, attributes text DEFAULT NULL,
									excluded_attributes text DEFAULT NULL) RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
	SELECT scim._group_project(scim._group_json(g, scim._group_wants_members($2, $3), scim._group_member_keep($2, $3)), $2, $3);
$$;
COMMENT ON FUNCTION scim.group_resource(scim.groups, text, text) IS
	'The SCIM 2.0 Group resource of a scim.groups row (RFC 7644 attributes / excludedAttributes projection)';

-- ---- reading a Group resource from a request --------------------------------

-- The value of a top-level attribute of a request body, by name,
-- case-insensitively, also when qualified with the core Group URN.  NULL
-- when absent.
CREATE FUNCTION scim._group_attr(resource jsonb, name text) RETURNS jsonb
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT e.value FROM jsonb_each($1) e
	WHERE lower(e.key) IN (lower($2), 'urn:ietf:params:scim:schemas:core:2.0:group:' || lower($2))
	ORDER BY lower(e.key) = lower($2) DESC
	LIMIT 1;
$$;

-- displayName as a request gives it: a non-empty string.
CREATE FUNCTION scim._group_display_name(value jsonb) RETURNS text
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF value IS NULL OR jsonb_typeof(value) = 'null' OR btrim(value #>> '{}') = '' THEN
		RAISE EXCEPTION 'invalidValue: displayName is required'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A group needs a non-empty displayName.';
	END IF;
	IF jsonb_typeof(value) <> 'string' THEN
		RAISE EXCEPTION 'invalidValue: displayName must be a string'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Got %s.', left(value::text, 200));
	END IF;
	RETURN value #>> '{}';
END;
$$;

-- externalId as a request gives it: a string; null and "" mean none.
CREATE FUNCTION scim._group_external_id(value jsonb) RETURNS text
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF value IS NULL OR jsonb_typeof(value) = 'null' OR value = '""' THEN
		RETURN NULL;
	END IF;
	IF jsonb_typeof(value) NOT IN ('string', 'number') THEN
		RAISE EXCEPTION 'invalidValue: externalId must be a string'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Got %s.', left(value::text, 200));
	END IF;
	RETURN value #>> '{}';
END;
$$;

CREATE FUNCTION scim._require_object(body jsonb, what text) RETURNS void
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF body IS NULL OR jsonb_typeof(body) <> 'object' THEN
		RAISE EXCEPTION 'invalidSyntax: % must be a JSON object', what
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END;
$$;

-- The group row of (workspace, id) locked for a write, or NULL.  The lock
-- (FOR NO KEY UPDATE: inserts of members, which take KEY SHARE through the
-- foreign key, go on) serialises writes of one group, so concurrent
-- membership PATCHes each see the other's result and each move the
-- version.  Sets the marker that tells the after-delete trigger of
-- group_members that this request keeps the version itself.
CREATE FUNCTION scim._group_lock(workspace text, group_id uuid) RETURNS scim.groups
	LANGUAGE plpgsql
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	g			scim.groups;
BEGIN
	SELECT * INTO g FROM scim.groups x WHERE x.id = $2 AND x.workspace = $1 FOR NO KEY UPDATE;
	IF g.id IS NOT NULL THEN
		PERFORM set_config('scim.group_write', $2::text, true);
	END IF;
	RETURN g;
END;
$$;

-- displayName is unique per workspace, case-insensitively: 23505 (409
-- uniqueness) with a detail naming the group.  The unique index stays the
-- guard against a concurrent insert.
CREATE FUNCTION scim._group_check_name(workspace text, group_id uuid, display_name text) RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT FROM scim.groups x
			   WHERE x.workspace = $1 AND lower(x.display_name) = lower($3)
				 AND x.id IS DISTINCT FROM $2) THEN
		RAISE EXCEPTION 'a group named "%" already exists', $3
			USING ERRCODE = 'unique_violation',
				  DETAIL = format('A group with displayName "%s" already exists in this workspace (names are compared case-insensitively).', $3);
	END IF;
END;
$$;

-- The end of a write: bump the version when only members changed (a
-- change of the row itself moves it through the trigger), release the
-- trigger marker.
CREATE FUNCTION scim._group_finish(g scim.groups, members_changed boolean) RETURNS scim.groups
	LANGUAGE plpgsql
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	result		scim.groups;
BEGIN
	UPDATE scim.groups x
	SET display_name = g.display_name, external_id = g.external_id, attributes = g.attributes,
		version = CASE WHEN members_changed THEN x.version + 1 ELSE x.version END
	WHERE x.id = g.id
	RETURNING x.* INTO result;
	PERFORM set_config('scim.group_write', '', true);
	RETURN result;
END;
$$;

-- ---- the operations behind /Groups ----------------------------------------------

-- POST /Groups.  displayName required and unique (23505 -> 409).
CREATE FUNCTION scim._group_create(workspace text, resource jsonb) RETURNS scim.groups
	LANGUAGE plpgsql
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	g			scim.groups;
	ids			uuid[];
	name		text;
BEGIN
	PERFORM scim._require_object(resource, 'a group');
	name := scim._group_display_name(scim._group_attr(resource, 'displayName'));
	ids := scim._member_ids(scim._group_attr(resource, 'members'));
	PERFORM scim._group_check_name($1, NULL, name);
	INSERT INTO scim.groups AS x (workspace, display_name, external_id)
	VALUES ($1, name, scim._group_external_id(scim._group_attr(resource, 'externalId')))
	RETURNING x.* INTO g;
	-- the new group starts at version 1 whatever it holds
	PERFORM scim._group_add_members($1, g.id, ids);
	RETURN g;
END;
$$;

-- PUT /Groups/{id} on a locked row.  displayName is replaced (required);
-- members, when present, replace the member list ([] empties it);
-- externalId and members left out (absent or null) keep their values, as
-- the synced attributes of a User do.
CREATE FUNCTION scim._group_replace(workspace text, g scim.groups, resource jsonb,
									OUT result scim.groups, OUT added bigint, OUT removed bigint)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	mv			jsonb;
	ext			jsonb;
BEGIN
	added := 0;
	removed := 0;
	PERFORM scim._require_object(resource, 'a group');
	g.display_name := scim._group_display_name(scim._group_attr(resource, 'displayName'));
	PERFORM scim._group_check_name($1, g.id, g.display_name);
	ext := scim._group_attr(resource, 'externalId');
	IF ext IS NOT NULL AND jsonb_typeof(ext) <> 'null' THEN
		g.external_id := scim._group_external_id(ext);
	END IF;
	mv := scim._group_attr(resource, 'members');
	IF mv IS NOT NULL AND jsonb_typeof(mv) <> 'null' THEN
		SELECT s.added, s.removed INTO added, removed
		FROM scim._group_set_members($1, g.id, scim._member_ids(mv)) s;
	END IF;
	result := scim._group_finish(g, added + removed > 0);
END;
$$;

-- ---- PATCH (RFC 7644 section 3.5.2) -----------------------------------------

-- The member ids a value filter of a PATCH path names when it is "value eq
-- <id>" or a disjunction of such comparisons (what Entra ID and Okta send):
-- then removal is O(ids).  NULL for any other filter.  Values that are not
-- uuids can match no member and are dropped.
CREATE FUNCTION scim._member_filter_ids(ast jsonb) RETURNS uuid[]
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	arg			jsonb;
	ids			uuid[] := '{}';
	sub			uuid[];
	v			text;
BEGIN
	IF ast ->> 'op' = 'or' THEN
		FOR arg IN SELECT a FROM jsonb_array_elements(ast -> 'args') a
		LOOP
			sub := scim._member_filter_ids(arg);
			IF sub IS NULL THEN
				RETURN NULL;
			END IF;
			ids := ids || sub;
		END LOOP;
		RETURN ids;
	END IF;
	IF ast ->> 'op' = 'eq' AND lower(ast ->> 'attr') = 'value' AND ast ->> 'sub' IS NULL
	   AND (ast ->> 'schema' IS NULL OR lower(ast ->> 'schema') = 'urn:ietf:params:scim:schemas:core:2.0:group')
	   AND jsonb_typeof(ast -> 'value') = 'string' THEN
		v := btrim(ast ->> 'value');
		IF v ~* '^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$' THEN
			RETURN ARRAY[v::uuid];
		END IF;
		RETURN ids;
	END IF;
	RETURN NULL;
END;
$$;

-- The members of a group a value filter selects.  Simple filters (see
-- _member_filter_ids) cost O(ids); any other filter is evaluated over every
-- member (O(group)) with the filter engine's matcher.
CREATE FUNCTION scim._group_members_matching(group_id uuid, filter text) RETURNS uuid[]
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	ast			jsonb;
	ids			uuid[];
BEGIN
	BEGIN
		ast := scim.parse_filter(filter);
	EXCEPTION WHEN invalid_parameter_value THEN
		RAISE EXCEPTION 'invalidPath: %', regexp_replace(SQLERRM, '^[A-Za-z]+: ', '')
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The value filter of members[%s] is not a valid filter.', left(filter, 200));
	END;
	ids := scim._member_filter_ids(ast);
	IF ids IS NOT NULL THEN
		SELECT coalesce(array_agg(m.member_id), '{}') INTO ids
		FROM scim.group_members m WHERE m.group_id = $1 AND m.member_id = ANY (ids);
		RETURN ids;
	END IF;
	SELECT coalesce(array_agg(m.member_id), '{}') INTO ids
	FROM scim.group_members m
	JOIN scim.users u ON u.id = m.member_id
	WHERE m.group_id = $1
	  AND scim.filter_match(filter, jsonb_build_object(
			'value', u.id::text,
			'$ref', scim._base_url() || '/Users/' || u.id,
			'display', coalesce(u.display_name, u.user_name),
			'type', 'User'));
	RETURN ids;
END;
$$;

-- PATCH /Groups/{id} on a locked row.  Membership operations go straight
-- to scim.group_members and cost O(members they name):
--   add      path "members" (or no path, value {"members": [...]}): insert,
--            present members skipped
--   remove   path "members[<filter>]": the members the filter selects;
--            path "members" with a value list (Entra ID): those members;
--            path "members" without a value: every member
--   replace  path "members" (or no path): the list becomes the value
--            (delete + insert, O(group)); path "members[<filter>]": the
--            selected members are replaced by the value (noTarget if none)
-- op names in any case.  Every other operation (displayName, externalId,
-- ...) goes through scim.patch_apply over the group without its members.
-- Returns the updated row; the version moves once if anything changed.
CREATE FUNCTION scim._group_patch(workspace text, g scim.groups, request jsonb,
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

-- ---- C (src/groups.c) -------------------------------------------------------

-- The SQL predicate of a SCIM filter over "scim.groups g" (use as: FROM
-- scim.groups g WHERE g.workspace = $1 AND (<predicate>)).  Attribute names
-- resolve through the registry; values are quoted literals.
CREATE FUNCTION scim._group_filter_sql(filter text) RETURNS text
	AS 'MODULE_PATHNAME', 'scim_group_filter_sql'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim._group_filter_sql(text) IS
	'Internal: the SQL predicate for a SCIM filter over "scim.groups g"';

CREATE FUNCTION scim._group_sort_expression(attr_path text) RETURNS text
	AS 'MODULE_PATHNAME', 'scim_group_sort_expression'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim._group_sort_expression(text) IS
	'Internal: the ORDER BY expression over "scim.groups g" for a SCIM sortBy attribute';

-- ---- lists ------------------------------------------------------------------

-- A ListResponse of the workspace's groups (RFC 7644 sections 3.4.2,
-- 3.4.3): filter through scim._group_filter_sql, sortBy through
-- scim._group_sort_expression (both resolve names through the registry and
-- quote values), 1-based startIndex (below 1 = 1), count capped by
-- scim_provision.max_results (negative = 0; 0 = totalResults only), ties
-- broken on id, projection through scim.group_resource (members read only
-- when the projection keeps them).  cursor (not NULL; "" = the first page)
-- switches to cursor pagination (68_cursor.sql).
CREATE FUNCTION scim._list_groups(ws text, params jsonb, OUT body jsonb, OUT total bigint)
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	filter		text := params ->> 'filter';
	sort_by		text := params ->> 'sortBy';
	sort_order	text := params ->> 'sortOrder';
	pred		text := 'true';
	sort_expr	text := 'g.created_at';
	dir			text := 'ASC';
	start_n		bigint;
	count_n		bigint;
	max_n		bigint := current_setting('scim_provision.max_results')::bigint;
	resources	jsonb;
BEGIN
	IF params ? 'cursor' THEN
		SELECT c.body, c.total INTO body, total FROM scim._list_cursor('Group', ws, params) c;
		RETURN;
	END IF;
	IF filter IS NOT NULL AND btrim(filter) <> '' THEN
		pred := scim._group_filter_sql(filter);
	END IF;
	IF sort_by IS NOT NULL AND btrim(sort_by) <> '' THEN
		sort_expr := scim._group_sort_expression(btrim(sort_by));
	END IF;
	dir := scim._sort_direction(sort_order);
	start_n := greatest(scim._int_param(params ->> 'startIndex', 'startIndex', 1), 1);
	count_n := least(greatest(scim._int_param(params ->> 'count', 'count', max_n), 0), max_n);

	EXECUTE format('SELECT count(*) FROM scim.groups g WHERE g.workspace OPERATOR(pg_catalog.=) $1 AND (%s)', pred)
		INTO total USING ws;
	IF count_n = 0 THEN
		resources := '[]';
	ELSE
		EXECUTE format(
			$q$SELECT coalesce(pg_catalog.jsonb_agg(scim.group_resource(p.g, $4, $5) ORDER BY p.k1 %3$s, p.k2), '[]'::jsonb)
			   FROM (SELECT g, %2$s AS k1, g.id AS k2
					 FROM scim.groups g
					 WHERE g.workspace OPERATOR(pg_catalog.=) $1 AND (%1$s)
					 ORDER BY k1 %3$s, k2
					 LIMIT $2 OFFSET $3) p$q$,
			pred, sort_expr, dir)
			INTO resources
			USING ws, count_n, start_n - 1, params ->> 'attributes', params ->> 'excludedAttributes';
	END IF;
	body := jsonb_build_object(
		'schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:ListResponse'),
		'totalResults', total, 'startIndex', start_n,
		'itemsPerPage', jsonb_array_length(resources), 'Resources', resources);
END;
$$;

-- ---- the /Groups endpoint ---------------------------------------------------

-- Errors a refused request maps to: the SQLSTATE mapping of scim.handle
-- (scim._scim_error), plus a detail naming the group for a displayName
-- conflict (409 uniqueness) and the scimTypes this file and 67/68 raise
-- that it does not know (invalidCursor, expiredCursor, invalidCount: 400;
-- tooLarge: 413).
CREATE FUNCTION scim._group_error(sqlstate text, message text, message_detail text,
								  OUT status integer, OUT scim_type text, OUT detail text)
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	prefix		text := substring(message FROM '^([A-Za-z]+): ');
BEGIN
	IF sqlstate = '23505' AND (message LIKE 'a group named %' OR message LIKE '%groups_workspace_display_name_idx%') THEN
		status := 409;
		scim_type := 'uniqueness';
		detail := CASE WHEN message LIKE 'a group named %' THEN message
					   ELSE 'a group with this displayName already exists' END;
	ELSIF left(sqlstate, 2) = '22' AND prefix IN ('invalidCursor', 'expiredCursor', 'invalidCount', 'tooLarge') THEN
		status := CASE WHEN prefix = 'tooLarge' THEN 413 ELSE 400 END;
		scim_type := prefix;
		detail := substr(message, length(prefix) + 3);
		IF message_detail IS NOT NULL AND message_detail <> '' THEN
			detail := detail || '. ' || message_detail;
		END IF;
	ELSE
		SELECT e.status, e.scim_type, e.detail INTO status, scim_type, detail
		FROM scim._scim_error(sqlstate, message, message_detail, NULL) e;
	END IF;
END;
$$;

-- One request under /Groups, for scim.handle's router: ws is the
-- authenticated workspace, segs the path segments (segs[1] = "Groups"),
-- params the decoded query, hdr the lower-cased headers.  The request runs
-- in its own subtransaction: a refusal rolls it back and comes back as
-- status, scim_type and detail (never raised), with body NULL for the
-- router to render.  Responses:
--   GET /Groups, POST /Groups/.search    200 ListResponse
--   POST /Groups                         201, Location, ETag
--   GET /Groups/{id}                     200 (304 on If-None-Match), ETag
--   PUT /Groups/{id}                     200, ETag
--   PATCH /Groups/{id}                   204 with ETag; 200 with the
--                                        resource when the query asks for
--                                        attributes or excludedAttributes
--   DELETE /Groups/{id}                  204
--   unknown id 404; stale If-Match 412; other methods 405 (allow says which)
CREATE FUNCTION scim._groups_route(ws text, m text, segs text[], params jsonb, hdr jsonb, p_body text,
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

-- The cursor member of a SearchRequest (RFC 9865 section 3), name in any
-- case, as a parameter object ({"cursor": "..."}), or {} when absent.
CREATE FUNCTION scim._cursor_param(request jsonb) RETURNS jsonb
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce((SELECT jsonb_build_object('cursor', coalesce(e.value #>> '{}', ''))
					 FROM jsonb_each(CASE WHEN jsonb_typeof($1) = 'object' THEN $1 ELSE '{}' END) e
					 WHERE lower(e.key) = 'cursor' LIMIT 1), '{}'::jsonb);
$$;

-- ---- privileges ---------------------------------------------------------------
REVOKE ALL ON FUNCTION scim._groups_before_write(), scim._group_members_after_delete(),
	scim._member_ids(jsonb), scim._group_check_members(text, uuid[]),
	scim._group_add_members(text, uuid, uuid[]), scim._group_remove_members(uuid, uuid[]),
	scim._group_set_members(text, uuid, uuid[]),
	scim._base_url(), scim._scim_timestamp(timestamptz),
	scim.group_members_json(uuid, text[]), scim.user_groups(uuid),
	scim._group_attr_list(text), scim._group_wants_members(text, text), scim._group_member_keep(text, text),
	scim._project_subs(jsonb, text[], boolean), scim._group_project(jsonb, text, text),
	scim._group_json(scim.groups, boolean, text[]), scim.group_resource(scim.groups, text, text),
	scim._group_attr(jsonb, text), scim._group_display_name(jsonb), scim._group_external_id(jsonb),
	scim._require_object(jsonb, text), scim._group_lock(text, uuid),
	scim._group_check_name(text, uuid, text), scim._group_finish(scim.groups, boolean),
	scim._group_create(text, jsonb), scim._group_replace(text, scim.groups, jsonb),
	scim._member_filter_ids(jsonb), scim._group_members_matching(uuid, text),
	scim._group_patch(text, scim.groups, jsonb),
	scim._group_filter_sql(text), scim._group_sort_expression(text),
	scim._list_groups(text, jsonb), scim._group_error(text, text, text),
	scim._groups_route(text, text, text[], jsonb, jsonb, text),
	scim._cursor_param(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.group_members_json(uuid, text[]), scim.user_groups(uuid),
	scim.group_resource(scim.groups, text, text), scim._base_url(), scim._scim_timestamp(timestamptz),
	scim._group_json(scim.groups, boolean, text[]), scim._group_project(jsonb, text, text),
	scim._group_wants_members(text, text), scim._group_member_keep(text, text), scim._group_attr_list(text),
	scim._project_subs(jsonb, text[], boolean)
	TO scim_reader, scim_admin;
