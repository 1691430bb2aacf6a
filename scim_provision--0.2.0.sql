/* scim_provision--<version>.sql, assembled from src/sql/NN_*.sql by the Makefile */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION scim_provision" to load this file. \quit

-- ---------------------------------------------------------------------------
-- 10_schema.sql: schema scim, workspaces, approved domains, tokens, users and
-- the provisioning log (the "System Log").
-- ---------------------------------------------------------------------------

CREATE SCHEMA IF NOT EXISTS scim;
COMMENT ON SCHEMA scim IS 'scim_provision: SCIM 2.0 service provider data and SQL API';
REVOKE ALL ON SCHEMA scim FROM PUBLIC;

-- Workspaces: the tenants a SCIM token belongs to.
CREATE TABLE scim.workspaces (
	name				text PRIMARY KEY
		CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
	deletion_policy		text NOT NULL DEFAULT 'deactivate'
		CONSTRAINT workspaces_deletion_policy_check CHECK (deletion_policy IN ('deactivate', 'delete')),
	default_user_type	text NOT NULL DEFAULT 'Regular'
		CONSTRAINT workspaces_default_user_type_check CHECK (default_user_type IN ('Regular', 'External', 'Collaborator')),
	created_at			timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE scim.workspaces IS 'Workspaces (tenants); every SCIM token, user and log row belongs to one';

INSERT INTO scim.workspaces (name) VALUES ('default');

-- Approved e-mail domains, stored normalised (lower case, ASCII/punycode).
CREATE TABLE scim.approved_domains (
	workspace			text NOT NULL REFERENCES scim.workspaces (name) ON UPDATE CASCADE ON DELETE CASCADE,
	domain				text NOT NULL CHECK (domain = lower(domain)),
	include_subdomains	boolean NOT NULL DEFAULT false,
	approved_at			timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace, domain)
);
COMMENT ON TABLE scim.approved_domains IS 'Only users whose e-mail is on an approved domain are provisioned';
COMMENT ON COLUMN scim.approved_domains.include_subdomains IS 'true: any subdomain (a.b.example.com) of domain is approved too';

-- SCIM bearer tokens.  The plaintext exists only in create_token's result;
-- token_id is the public lookup part, secret_hash the SHA-256 of the whole token.
CREATE TABLE scim.tokens (
	token_id			text PRIMARY KEY CHECK (token_id ~ '^[0-9a-f]{24}$'),
	workspace			text NOT NULL REFERENCES scim.workspaces (name) ON UPDATE CASCADE ON DELETE CASCADE,
	name				text NOT NULL,
	secret_hash			bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
	created_at			timestamptz NOT NULL DEFAULT now(),
	last_used_at		timestamptz,
	revoked_at			timestamptz
);
CREATE UNIQUE INDEX tokens_active_name_idx ON scim.tokens (workspace, name) WHERE revoked_at IS NULL;
COMMENT ON TABLE scim.tokens IS 'SCIM bearer tokens: only a SHA-256 hash is stored';

-- Users.  See doc/CONTRACTS.md for which SCIM attribute lives where.
CREATE TABLE scim.users (
	id					uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	workspace			text NOT NULL REFERENCES scim.workspaces (name) ON UPDATE CASCADE,
	user_name			text NOT NULL CHECK (user_name <> ''),
	external_id			text,
	given_name			text,
	family_name			text,
	display_name		text,
	email				text,
	title				text,
	phone				text,
	organization		text,
	department			text,
	user_type			text NOT NULL	-- NULL on insert: the workspace's default_user_type (trigger)
		CONSTRAINT users_user_type_check CHECK (user_type IN ('Regular', 'External', 'Collaborator')),
	active				boolean NOT NULL DEFAULT true,
	billable			boolean NOT NULL DEFAULT false,
	billable_since		timestamptz,
	deactivated_at		timestamptz,
	created_at			timestamptz NOT NULL DEFAULT now(),
	updated_at			timestamptz NOT NULL DEFAULT now(),
	version				bigint NOT NULL DEFAULT 1,
	attributes			jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object')
);
COMMENT ON TABLE scim.users IS 'Provisioned users, one row each; states (billable, deactivated) are set by triggers';

-- userName is case-insensitive (RFC 7643 caseExact=false) and unique per workspace.
CREATE UNIQUE INDEX users_workspace_user_name_idx ON scim.users (workspace, lower(user_name));
CREATE INDEX users_workspace_external_id_idx ON scim.users (workspace, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX users_workspace_email_idx ON scim.users (workspace, lower(email));

-- The System Log: every provisioning attempt, accepted or refused, from either path.
-- Which path wrote a row is a domain rather than a CHECK of the table: the
-- executor plans a table's CHECK constraints anew for every INSERT
-- statement, a domain's once per session, and most log rows are written by
-- single-row INSERTs (one per SCIM request).
CREATE DOMAIN scim.log_source AS text
	CONSTRAINT log_source_check CHECK (VALUE IN ('scim', 'onelogin'));
CREATE TABLE scim.provisioning_log (
	id					bigserial PRIMARY KEY,
	at					timestamptz NOT NULL DEFAULT clock_timestamp(),
	workspace			text,
	source				scim.log_source NOT NULL,
	method				text,
	path				text,
	resource_id			uuid,
	user_name			text,
	status				integer NOT NULL,
	scim_type			text,
	detail				text
);
CREATE INDEX provisioning_log_workspace_at_idx ON scim.provisioning_log (workspace, at);
COMMENT ON TABLE scim.provisioning_log IS 'System Log: every provisioning attempt, accepted or refused, with its outcome';

-- pg_dump keeps the rows of these extension tables.  The default workspace
-- row is created by CREATE EXTENSION itself, so it is not dumped.
SELECT pg_catalog.pg_extension_config_dump('scim.workspaces', 'WHERE name <> ''default''');
SELECT pg_catalog.pg_extension_config_dump('scim.approved_domains', '');
SELECT pg_catalog.pg_extension_config_dump('scim.tokens', '');
SELECT pg_catalog.pg_extension_config_dump('scim.users', '');
SELECT pg_catalog.pg_extension_config_dump('scim.provisioning_log', '');
SELECT pg_catalog.pg_extension_config_dump('scim.provisioning_log_id_seq', '');

-- ---------------------------------------------------------------------------
-- 11_roles.sql: the roles scim_provision grants to.  Roles are cluster-wide
-- and outlive the extension; they are created only when missing, NOLOGIN,
-- and hold nothing until the extension's scripts grant it.
--   scim_client  the SCIM endpoint (PostgREST's db-anon-role): may execute
--                scim_api.dispatch and nothing else.
--   scim_reader  data teams: read users, the System Log and sync status.
--   scim_admin   administrators: domains, tokens, policies, OneLogin setup.
-- ---------------------------------------------------------------------------
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'scim_client') THEN
		CREATE ROLE scim_client NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'scim_reader') THEN
		CREATE ROLE scim_reader NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'scim_admin') THEN
		CREATE ROLE scim_admin NOLOGIN;
	END IF;
END
$roles$;

GRANT USAGE ON SCHEMA scim TO scim_reader, scim_admin;
GRANT SELECT ON scim.users, scim.provisioning_log, scim.workspaces, scim.approved_domains TO scim_reader, scim_admin;
-- tokens: admins see names and dates, never hashes
GRANT SELECT (token_id, workspace, name, created_at, last_used_at, revoked_at) ON scim.tokens TO scim_admin;

-- ---------------------------------------------------------------------------
-- 12_domain_token.sql: e-mail/domain rules and token primitives (C), and the
-- System Log writer.
-- ---------------------------------------------------------------------------

CREATE FUNCTION scim.email_domain(email text) RETURNS text
	AS 'MODULE_PATHNAME', 'scim_email_domain'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.email_domain(text) IS
	'Normalised (lower-case) domain of an e-mail address, or NULL when the address is malformed';

CREATE FUNCTION scim.normalize_domain(domain text) RETURNS text
	AS 'MODULE_PATHNAME', 'scim_normalize_domain'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.normalize_domain(text) IS
	'A domain as scim.approve_domain stores it (lower case, white space and a leading @ removed); error if invalid';

CREATE FUNCTION scim.domain_approved(email text, workspace text DEFAULT 'default') RETURNS boolean
	AS 'MODULE_PATHNAME', 'scim_domain_approved'
	LANGUAGE C STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp;
COMMENT ON FUNCTION scim.domain_approved(text, text) IS
	'Whether the e-mail address is on an approved domain of the workspace (NULL or malformed: false)';

CREATE FUNCTION scim._generate_token() RETURNS text
	AS 'MODULE_PATHNAME', 'scim_generate_token'
	LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION scim._generate_token() IS
	'Internal: a new token with a 256-bit secret from pg_strong_random (use scim.create_token)';

CREATE FUNCTION scim._token_hash(token text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'scim_token_hash'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim._token_hash(text) IS 'Internal: SHA-256 of a token';

CREATE FUNCTION scim.authenticate(token text) RETURNS text
	AS 'MODULE_PATHNAME', 'scim_authenticate'
	LANGUAGE C VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp;
COMMENT ON FUNCTION scim.authenticate(text) IS
	'Workspace of a valid unrevoked token (bare or "Bearer ..."), else NULL; records last_used_at';

REVOKE ALL ON FUNCTION scim._generate_token(), scim._token_hash(text), scim.authenticate(text) FROM PUBLIC;

-- The System Log writer.  Callers run the attempt in a subtransaction, roll
-- it back when refused, and log in the outer transaction: the row survives
-- the rollback of the attempt.  PL/pgSQL rather than SQL: a SECURITY
-- DEFINER SQL function is never inlined and plans its INSERT on every
-- call, where PL/pgSQL keeps the plan for the session.
CREATE FUNCTION scim.log_attempt(source text, method text, path text, resource_id uuid,
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
COMMENT ON FUNCTION scim.log_attempt(text, text, text, uuid, text, integer, text, text, text) IS
	'Append one provisioning attempt to the System Log (scim.provisioning_log)';
REVOKE ALL ON FUNCTION scim.log_attempt(text, text, text, uuid, text, integer, text, text, text) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- 15_triggers.sql: the triggers own the user states, for every writer (SCIM,
-- the OneLogin worker, and a data team's plain INSERT/UPDATE).
--
-- C (src/users_trigger.c): every bulk writer runs this per row, and the
-- PL/pgSQL version with its two queries per row (default user type,
-- approved domains) was about a fifth of a OneLogin sync.  The C version
-- reads the workspace's default user type and approved domains once per
-- statement.
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

-- The rules, in C (src/users_trigger.c, whose header lists them): user type
-- default and check, approved-domain gate, billable/deactivated states,
-- created_at, updated_at and version.
CREATE FUNCTION scim._users_before_write() RETURNS trigger
	AS 'MODULE_PATHNAME', 'scim_users_before_write'
	LANGUAGE C SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp;
COMMENT ON FUNCTION scim._users_before_write() IS
	'Trigger: user type default and check, approved-domain gate, billable/deactivated states, version';

CREATE TRIGGER users_before_write
	BEFORE INSERT OR UPDATE ON scim.users
	FOR EACH ROW EXECUTE FUNCTION scim._users_before_write();

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
	token := scim._generate_token();
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
GRANT EXECUTE ON FUNCTION scim.email_domain(text), scim.domain_approved(text, text),
	scim.normalize_domain(text) TO scim_reader, scim_admin;

-- ---------------------------------------------------------------------------
-- 30_filter.sql: the filter engine (RFC 7644 section 3.4.2.2), sortBy, the
-- attribute registry's /Schemas and /ResourceTypes, and the indexes the SQL
-- pushdown of scim.filter_sql relies on.  C code: src/filter_parse.c,
-- src/filter_match.c, src/filter_sql.c, src/registry.c.
-- ---------------------------------------------------------------------------

-- parse_filter, filter_match, filter_sql and sort_expression read the GUCs
-- scim_provision.filter_max_length / filter_max_depth (a filter may be
-- refused or not), so they are STABLE; the registry outputs are IMMUTABLE.
-- The canonical AST of scim.parse_filter:
--   {"op":"eq"|"ne"|"co"|"sw"|"ew"|"gt"|"ge"|"lt"|"le", ["schema":URN,] "attr":"name[.sub]", "value":JSON}
--   {"op":"pr", ["schema":URN,] "attr":"name[.sub]"}
--   {"op":"and"|"or", "args":[AST, AST, ...]}   (chains flattened, parentheses dropped)
--   {"op":"not", "arg":AST}
--   {"op":"valuePath", ["schema":URN,] "attr":"name", "filter":AST over sub-attribute names}
-- Operators are lower-cased; names keep the client's case.
CREATE FUNCTION scim.parse_filter(filter text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'scim_parse_filter'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.parse_filter(text) IS
	'Parse a SCIM filter (RFC 7644 3.4.2.2) into its canonical AST; invalid input raises SQLSTATE 22023 naming the position';

CREATE FUNCTION scim.filter_match(filter text, resource jsonb) RETURNS boolean
	AS 'MODULE_PATHNAME', 'scim_filter_match_sql'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.filter_match(text, jsonb) IS
	'Whether a SCIM resource matches a filter (RFC semantics: caseExact from the schema, any value of a multi-valued attribute, dateTime by instant)';

CREATE FUNCTION scim.filter_sql(filter text, resource_type text DEFAULT 'User') RETURNS text
	AS 'MODULE_PATHNAME', 'scim_filter_sql'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.filter_sql(text, text) IS
	'The SQL predicate for a SCIM filter over "scim.users u" (use as: FROM scim.users u WHERE u.workspace = $1 AND (<predicate>)), or for resource_type Group over "scim.groups g"; values are quoted literals';

CREATE FUNCTION scim.sort_expression(attr_path text, resource_type text DEFAULT 'User') RETURNS text
	AS 'MODULE_PATHNAME', 'scim_sort_expression'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.sort_expression(text, text) IS
	'The ORDER BY expression over "scim.users u" (Group: "scim.groups g") for a SCIM sortBy attribute (lower() for case-insensitive ones, the primary value for multi-valued ones)';

CREATE FUNCTION scim.schema_definitions() RETURNS jsonb
	AS 'MODULE_PATHNAME', 'scim_schema_definitions'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION scim.schema_definitions() IS
	'RFC 7643 section 7 Schema resources (User, Group, Enterprise User, scim_provision extension) generated from the attribute registry';

CREATE FUNCTION scim.resource_type_definitions() RETURNS jsonb
	AS 'MODULE_PATHNAME', 'scim_resource_type_definitions'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION scim.resource_type_definitions() IS
	'RFC 7643 section 6 ResourceType resources (User, Group) generated from the attribute registry';

-- Not STRICT: NULL (an absent attribute) is simply not present.
CREATE FUNCTION scim.jsonb_present(value jsonb) RETURNS boolean
	AS 'MODULE_PATHNAME', 'scim_jsonb_present'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION scim.jsonb_present(jsonb) IS
	'SCIM "pr" over jsonb: true when some scalar inside is neither null nor the empty string';

-- ---------------------------------------------------------------------------
-- Indexes behind scim.filter_sql (see the header of src/filter_sql.c).
--
-- Equality on attributes kept in the attributes jsonb (emails.value,
-- emails[type eq "work" and value eq "..."], extension attributes, ...) is
-- containment over the lower-cased document: keys and string values
-- lower-cased, so case-insensitive names and values match, and one array
-- element must hold every pair of a value filter.
CREATE INDEX users_attributes_ci_idx ON scim.users
	USING gin ((lower(attributes::text)::jsonb) jsonb_path_ops);

-- co / sw / ew on userName (case-insensitive): LIKE over lower(user_name).
-- pg_trgm may live in any schema, so its operator class is looked up.
DO $$
DECLARE
	trgm_schema name;
BEGIN
	SELECT n.nspname INTO trgm_schema
	  FROM pg_catalog.pg_extension e
	  JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
	 WHERE e.extname = 'pg_trgm';
	IF trgm_schema IS NULL THEN
		RAISE EXCEPTION 'scim_provision needs the pg_trgm extension';
	END IF;
	EXECUTE pg_catalog.format(
		'CREATE INDEX users_user_name_trgm_idx ON scim.users USING gin (lower(user_name) %I.gin_trgm_ops)',
		trgm_schema);
END;
$$;

-- ---------------------------------------------------------------------------
-- 40_patch.sql: the RFC 7644 section 3.5.2 PATCH engine (src/patch.c).
-- ---------------------------------------------------------------------------

CREATE FUNCTION scim.patch_apply(resource jsonb, operations jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'scim_patch_apply_sql'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.patch_apply(jsonb, jsonb) IS
	'Apply SCIM PATCH operations (the Operations array, or a whole PatchOp message) to a SCIM User or Group resource (type from meta.resourceType or schemas; default User) and return the new resource; all operations or none.  Errors raise SQLSTATE 22023 with the scimType (invalidSyntax, invalidPath, noTarget, invalidValue, mutability, tooMany) as the message prefix and the failing operation''s index and path in the detail';

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

-- ---------------------------------------------------------------------------
-- 55_handle.sql: scim.handle, the HTTP-shaped SCIM 2.0 endpoint (RFC 7644):
-- authentication, routing, Users (POST, GET, list, .search, PUT, PATCH,
-- DELETE, ETags), discovery, SCIM errors and the System Log.  /Groups,
-- /Bulk and cursor-paged lists are routed to 65_groups.sql, 67_bulk.sql
-- and 68_cursor.sql, which answer in the same shape (status, body,
-- log fields) so that the error body and the log row are written here.
--
-- Routing and orchestration are PL/pgSQL: a request is a handful of
-- branches and statements whose plans PL/pgSQL caches, while the work per
-- request is in C (mapping and rendering, src/mapping.c; query decoding and
-- body parsing, src/users.c; filter -> SQL, PATCH, tokens).  The expensive
-- parts are the row writes, the System Log insert and, for filtered lists,
-- planning the filter's SQL; the router's own cost is small next to them.
--
-- Attempt-then-log: every request runs in one subtransaction (the BEGIN ...
-- EXCEPTION block of scim._handle); an error rolls the attempt back and is
-- answered per doc/CONTRACTS.md, and the System Log row is written after
-- it, in the outer transaction.  Every request, accepted or refused, reads
-- included, leaves exactly one scim.provisioning_log row (source 'scim').
--
-- Authentication: every endpoint, discovery included, needs
-- "Authorization: Bearer <token>" (RFC 7644 section 4 lets a provider
-- serve discovery anonymously; we do not, so that every request is tied to
-- a workspace and logged under it).  The token itself is never logged and
-- never appears in a response.
-- ---------------------------------------------------------------------------

-- Lists start at created_at, id: a stable order (new users go to the end,
-- so paging by startIndex does not skip or repeat users that existed
-- before the first page).
CREATE INDEX users_workspace_created_idx ON scim.users (workspace, created_at, id);

-- A SCIM error resource (RFC 7644 section 3.12).
CREATE FUNCTION scim._error(status integer, scim_type text, detail text)
	RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
		'schemas', pg_catalog.jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:Error'),
		'status', status::text,
		'scimType', scim_type,
		'detail', detail));
$$;

-- Whether an If-Match / If-None-Match header value names the version:
-- "*", or a comma-separated list of entity tags, weak (W/"3") or not ("3").
CREATE FUNCTION scim._etag_matches(header text, version bigint)
	RETURNS boolean
	LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT EXISTS (
		SELECT FROM pg_catalog.regexp_split_to_table(header, ',') AS t(tag)
		WHERE pg_catalog.btrim(t.tag) = '*'
		   OR pg_catalog.regexp_replace(pg_catalog.btrim(t.tag), '^[Ww]/', '') = '"' || version::text || '"');
$$;

-- The SQL direction of a sortOrder parameter (RFC 7644 section 3.4.2.3):
-- NULL or "" = ascending; anything but ascending/descending is refused.
CREATE FUNCTION scim._sort_direction(sort_order text)
	RETURNS text
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF sort_order IS NULL OR btrim(sort_order) = '' THEN
		RETURN 'ASC';
	END IF;
	CASE lower(btrim(sort_order))
		WHEN 'ascending' THEN RETURN 'ASC';
		WHEN 'descending' THEN RETURN 'DESC';
		ELSE
			RAISE EXCEPTION 'invalidValue: sortOrder must be "ascending" or "descending", not "%"', left(sort_order, 40)
				USING ERRCODE = 'invalid_parameter_value';
	END CASE;
END;
$$;

-- An integer query or SearchRequest parameter (NULL or "" = dflt).
CREATE FUNCTION scim._int_param(value text, name text, dflt bigint)
	RETURNS bigint
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF value IS NULL OR btrim(value) = '' THEN
		RETURN dflt;
	END IF;
	IF btrim(value) !~ '^[+-]?[0-9]+$' THEN
		RAISE EXCEPTION 'invalidValue: % must be an integer, not "%"', name, left(value, 40)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- clamp: anything beyond the bigint range is as good as its bound
	RETURN greatest(least(btrim(value)::numeric, 9223372036854775807), -9223372036854775808)::bigint;
END;
$$;

-- A ListResponse of the workspace's users (RFC 7644 sections 3.4.2, 3.4.3):
-- filter through scim.filter_sql, sortBy through scim.sort_expression
-- (both whitelist attribute names through the registry and quote values),
-- 1-based startIndex (below 1 = 1), count capped by
-- scim_provision.max_results (negative = 0; 0 = totalResults only), ties
-- broken on id, projection through scim.user_resource.
CREATE FUNCTION scim._list_users(ws text, filter text, start_index text, count text, sort_by text,
								 sort_order text, attrs text, excluded text,
								 OUT body jsonb, OUT total bigint)
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	pred		text := 'true';
	sort_expr	text := 'u.created_at';
	dir			text := 'ASC';
	start_n		bigint;
	count_n		bigint;
	max_n		bigint := current_setting('scim_provision.max_results')::bigint;
	resources	jsonb;
	page_n		bigint;
	ast			jsonb;
BEGIN
	IF filter IS NOT NULL AND btrim(filter) <> '' THEN
		pred := scim.filter_sql(filter, 'User');
	END IF;
	IF sort_by IS NOT NULL AND btrim(sort_by) <> '' THEN
		sort_expr := scim.sort_expression(btrim(sort_by), 'User');
	END IF;
	dir := scim._sort_direction(sort_order);
	start_n := greatest(scim._int_param(start_index, 'startIndex', 1), 1);
	count_n := least(greatest(scim._int_param(count, 'count', max_n), 0), max_n);

	IF count_n = 0 THEN
		EXECUTE format('SELECT count(*) FROM scim.users u WHERE u.workspace OPERATOR(pg_catalog.=) $1 AND (%s)', pred)
			INTO total USING ws;
		body := jsonb_build_object(
			'schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:ListResponse'),
			'totalResults', total, 'startIndex', start_n, 'itemsPerPage', 0);
		RETURN;
	END IF;

	-- The page first; a page that is not full (or an empty first page) tells
	-- the total, so the count runs only when it cannot.
	--
	-- Fast path: the lookups every IdP sends before it creates or updates
	-- (userName eq "..." and externalId eq "...", default order) run as
	-- static SQL whose plans PL/pgSQL keeps, instead of planning the
	-- filter's SQL anew; the conditions are exactly those scim.filter_sql
	-- produces for them (userName case-insensitive, externalId caseExact).
	IF filter IS NOT NULL AND btrim(filter) <> '' AND (sort_by IS NULL OR btrim(sort_by) = '') AND dir = 'ASC' THEN
		ast := scim.parse_filter(filter);
		IF ast ->> 'op' = 'eq' AND jsonb_typeof(ast -> 'value') = 'string'
		   AND ast - 'op' - 'attr' - 'value' - 'schema' = '{}'::jsonb
		   AND lower(coalesce(ast ->> 'schema', 'urn:ietf:params:scim:schemas:core:2.0:User')) = 'urn:ietf:params:scim:schemas:core:2.0:user' THEN
			IF lower(ast ->> 'attr') = 'username' THEN
				SELECT coalesce(jsonb_agg(scim.user_resource(p.u, attrs, excluded) ORDER BY p.k1, p.k2), '[]'::jsonb), count(*)
				INTO resources, page_n
				FROM (SELECT u, u.created_at AS k1, u.id AS k2
					  FROM scim.users u
					  WHERE u.workspace = ws AND lower(u.user_name) = lower(ast ->> 'value')
					  ORDER BY k1, k2
					  LIMIT count_n OFFSET start_n - 1) p;
			ELSIF lower(ast ->> 'attr') = 'externalid' THEN
				SELECT coalesce(jsonb_agg(scim.user_resource(p.u, attrs, excluded) ORDER BY p.k1, p.k2), '[]'::jsonb), count(*)
				INTO resources, page_n
				FROM (SELECT u, u.created_at AS k1, u.id AS k2
					  FROM scim.users u
					  WHERE u.workspace = ws AND u.external_id = ast ->> 'value'
					  ORDER BY k1, k2
					  LIMIT count_n OFFSET start_n - 1) p;
			END IF;
		END IF;
	END IF;

	IF page_n IS NULL THEN
		EXECUTE format(
			$q$SELECT coalesce(pg_catalog.jsonb_agg(scim.user_resource(p.u, $4, $5) ORDER BY p.k1 %2$s, p.k2), '[]'::jsonb),
					  count(*)
			   FROM (SELECT u, %1$s AS k1, u.id AS k2
					 FROM scim.users u
					 WHERE u.workspace OPERATOR(pg_catalog.=) $1 AND (%3$s)
					 ORDER BY k1 %2$s, k2
					 LIMIT $2 OFFSET $3) p$q$,
			sort_expr, dir, pred)
			INTO resources, page_n
			USING ws, count_n, start_n - 1, attrs, excluded;
	END IF;
	IF page_n < count_n AND (page_n > 0 OR start_n = 1) THEN
		total := start_n - 1 + page_n;
	ELSE
		EXECUTE format('SELECT count(*) FROM scim.users u WHERE u.workspace OPERATOR(pg_catalog.=) $1 AND (%s)', pred)
			INTO total USING ws;
	END IF;
	body := jsonb_build_object(
		'schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:ListResponse'),
		'totalResults', total, 'startIndex', start_n,
		'itemsPerPage', jsonb_array_length(resources), 'Resources', resources);
END;
$$;

-- SearchRequest (RFC 7644 section 3.4.3) members as the text parameters of
-- _list_users: names case-insensitive, attributes as an array or a
-- comma-separated string.
CREATE FUNCTION scim._search_params(request jsonb)
	RETURNS jsonb
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r		jsonb;
	result	jsonb := '{}';
	k		text;
	v		jsonb;
	names	text[] := ARRAY['filter', 'startIndex', 'count', 'sortBy', 'sortOrder', 'attributes', 'excludedAttributes'];
BEGIN
	IF jsonb_typeof(request) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'invalidSyntax: a SearchRequest must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT jsonb_object_agg(lower(e.key), e.value) INTO r FROM jsonb_each(request) e;
	FOREACH k IN ARRAY names LOOP
		v := r -> lower(k);
		CONTINUE WHEN v IS NULL OR jsonb_typeof(v) = 'null';
		IF k IN ('attributes', 'excludedAttributes') AND jsonb_typeof(v) = 'array' THEN
			IF EXISTS (SELECT FROM jsonb_array_elements(v) a WHERE jsonb_typeof(a) <> 'string') THEN
				RAISE EXCEPTION 'invalidValue: % must be an array of strings', k
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			result := result || jsonb_build_object(k, (SELECT string_agg(a, ',') FROM jsonb_array_elements_text(v) a));
		ELSIF k IN ('startIndex', 'count') AND jsonb_typeof(v) IN ('number', 'string') THEN
			result := result || jsonb_build_object(k, v #>> '{}');
		ELSIF jsonb_typeof(v) = 'string' THEN
			result := result || jsonb_build_object(k, v #>> '{}');
		ELSE
			RAISE EXCEPTION 'invalidValue: % has the wrong type (%)', k, jsonb_typeof(v)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	RETURN result;
END;
$$;

-- The request, in one subtransaction, then its System Log row.
CREATE FUNCTION scim._handle(p_method text, p_path text, p_query text, p_headers jsonb, p_body text,
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

-- The public entry point (fixed signature, DESIGN.md section 3), in C
-- (src/handle.c): it answers GET /Users?filter=userName eq "..." (and
-- externalId eq) and GET /Users/{id}, the reads every IdP sends before it
-- writes, with index probes and kept plans and exactly the router's
-- response and log row, and hands every other request to scim._handle
-- above.  SECURITY DEFINER so that
-- scim_api.dispatch, running as scim_client, can call it without any
-- access to scim's tables.
CREATE FUNCTION scim.handle(method text, path text, query text DEFAULT NULL, headers jsonb DEFAULT '{}',
							body text DEFAULT NULL)
	RETURNS TABLE(status integer, headers jsonb, body jsonb)
	AS 'MODULE_PATHNAME', 'scim_handle'
	LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1
	SET search_path = pg_catalog, scim, pg_temp;
COMMENT ON FUNCTION scim.handle(text, text, text, jsonb, text) IS
	'SCIM 2.0 endpoint: (method, path, raw query, lower-cased headers, raw body) -> (status, headers, body); logs every request';

REVOKE ALL ON FUNCTION scim._error(integer, text, text), scim._etag_matches(text, bigint),
	scim._int_param(text, text, bigint),
	scim._list_users(text, text, text, text, text, text, text, text),
	scim._search_params(jsonb),
	scim._handle(text, text, text, jsonb, text),
	scim.handle(text, text, text, jsonb, text) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- 58_discovery.sql: the discovery endpoints' documents (RFC 7644 section 4,
-- RFC 7643 sections 5-7).  /Schemas and /ResourceTypes come from the
-- attribute registry (scim.schema_definitions, scim.resource_type_definitions
-- in 30_filter.sql); ServiceProviderConfig says what scim.handle really does:
-- PATCH yes, filter yes (maxResults = scim_provision.max_results), sort yes,
-- ETags yes, bulk yes (67_bulk.sql), changePassword no, bearer tokens.
-- ---------------------------------------------------------------------------

CREATE FUNCTION scim.service_provider_config()
	RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.jsonb_build_object(
		'schemas', pg_catalog.jsonb_build_array('urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'),
		'patch', pg_catalog.jsonb_build_object('supported', true),
		'bulk', pg_catalog.jsonb_build_object('supported', true,	-- 67_bulk.sql; limits: GUCs of src/groups.c
			'maxOperations', pg_catalog.current_setting('scim_provision.bulk_max_operations')::integer,
			'maxPayloadSize', pg_catalog.current_setting('scim_provision.bulk_max_payload')::integer),
		'filter', pg_catalog.jsonb_build_object('supported', true,
			'maxResults', pg_catalog.current_setting('scim_provision.max_results')::integer),
		'changePassword', pg_catalog.jsonb_build_object('supported', false),
		'sort', pg_catalog.jsonb_build_object('supported', true),
		'pagination', pg_catalog.jsonb_build_object(	-- RFC 9865; 68_cursor.sql
			'cursor', true, 'index', true, 'defaultPaginationMethod', 'index',
			'defaultPageSize', pg_catalog.current_setting('scim_provision.max_results')::integer,
			'maxPageSize', pg_catalog.current_setting('scim_provision.max_results')::integer,
			'cursorTimeout', pg_catalog.current_setting('scim_provision.cursor_timeout')::integer),
		'etag', pg_catalog.jsonb_build_object('supported', true),
		'authenticationSchemes', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
			'type', 'oauthbearertoken',
			'name', 'OAuth Bearer Token',
			'description', 'A bearer token created with scim.create_token, sent as "Authorization: Bearer <token>"; every endpoint requires it.',
			'specUri', 'https://www.rfc-editor.org/info/rfc6750',
			'primary', true)),
		'meta', pg_catalog.jsonb_build_object(
			'resourceType', 'ServiceProviderConfig',
			'location', pg_catalog.rtrim(pg_catalog.current_setting('scim_provision.base_url'), '/') || '/ServiceProviderConfig'));
$$;
COMMENT ON FUNCTION scim.service_provider_config() IS
	'The SCIM ServiceProviderConfig resource (RFC 7643 section 5) describing this endpoint';

-- A ListResponse of discovery resources (all of them: no paging).
CREATE FUNCTION scim._discovery_list(resources jsonb)
	RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.jsonb_build_object(
		'schemas', pg_catalog.jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:ListResponse'),
		'totalResults', pg_catalog.jsonb_array_length(resources),
		'startIndex', 1,
		'itemsPerPage', pg_catalog.jsonb_array_length(resources),
		'Resources', resources);
$$;

REVOKE ALL ON FUNCTION scim._discovery_list(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.service_provider_config() TO scim_reader, scim_admin;

-- ---------------------------------------------------------------------------
-- 60_onelogin.sql: OneLogin pull (background worker, src/worker.c).
--   scim.onelogin_connections  one OneLogin account per workspace; holds the
--                              client secret, so nobody but the extension
--                              owner (and the worker) may read it
--   scim.onelogin_state        per connection: schedule, cursors, high-water
--                              marks, counters; written page by page together
--                              with the users of the page (exactly once)
--   scim.onelogin_users        OneLogin id -> user, updated_at and outcome of
--                              the last apply (skips unchanged users; the set
--                              of ids a reconciliation compares)
--   scim.onelogin_connect / onelogin_disconnect / sync_now, view sync_status
-- ---------------------------------------------------------------------------

CREATE TABLE scim.onelogin_connections (
	workspace			text PRIMARY KEY
		REFERENCES scim.workspaces (name) ON UPDATE CASCADE ON DELETE CASCADE,
	base_url			text NOT NULL,
	client_id			text NOT NULL,
	client_secret		text NOT NULL,
	config_version		bigint NOT NULL DEFAULT 1,
	created_at			timestamptz NOT NULL DEFAULT now(),
	updated_at			timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE scim.onelogin_connections IS
	'OneLogin API credentials per workspace; readable only by the extension owner and the worker';
REVOKE ALL ON scim.onelogin_connections FROM PUBLIC;

CREATE TABLE scim.onelogin_state (
	workspace			text PRIMARY KEY
		REFERENCES scim.onelogin_connections (workspace) ON UPDATE CASCADE ON DELETE CASCADE,
	config_version		bigint NOT NULL,
	state				text NOT NULL DEFAULT 'new'
		CHECK (state IN ('new', 'idle', 'syncing', 'backoff', 'failing')),
	wake_seq			bigint NOT NULL DEFAULT 1,
	handled_seq			bigint NOT NULL DEFAULT 0,
	-- users: a run is in progress while run_cursor is set
	users_high_water	timestamptz,
	run_kind			text CHECK (run_kind IN ('full', 'incremental')),
	run_id				bigint NOT NULL DEFAULT 0,
	run_since			timestamptz,
	run_cursor			text,
	run_max_updated		timestamptz,
	run_started_at		timestamptz,
	run_wake_seq		bigint,
	run_finished_at		timestamptz,
	run_pages			integer NOT NULL DEFAULT 0,
	run_users_seen		bigint NOT NULL DEFAULT 0,
	run_users_applied	bigint NOT NULL DEFAULT 0,
	verify_run			bigint,
	last_reconcile_at	timestamptz,
	-- deletion events
	events_high_water	timestamptz,
	events_since		timestamptz,
	events_cursor		text,
	events_run_max		timestamptz,
	-- outcome and back-off
	last_attempt_at		timestamptz,
	last_success_at		timestamptz,
	last_error			text,
	last_error_at		timestamptz,
	consecutive_failures integer NOT NULL DEFAULT 0,
	backoff_until		timestamptz,
	backoff_reason		text,
	-- totals
	pages				bigint NOT NULL DEFAULT 0,
	users_seen			bigint NOT NULL DEFAULT 0,
	users_applied		bigint NOT NULL DEFAULT 0,
	events_seen			bigint NOT NULL DEFAULT 0,
	deprovisioned		bigint NOT NULL DEFAULT 0,
	syncs_completed		bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE scim.onelogin_state IS
	'OneLogin sync state per connection: cursors and high-water marks committed with each page';
REVOKE ALL ON scim.onelogin_state FROM PUBLIC;

CREATE TABLE scim.onelogin_users (
	workspace			text NOT NULL
		REFERENCES scim.onelogin_connections (workspace) ON UPDATE CASCADE ON DELETE CASCADE,
	onelogin_id			bigint NOT NULL,
	user_id				uuid,
	updated_at			text,
	status				integer,
	seen_run			bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (workspace, onelogin_id)
);
CREATE INDEX onelogin_users_seen_idx ON scim.onelogin_users (workspace, seen_run);
COMMENT ON TABLE scim.onelogin_users IS
	'OneLogin users the worker applied: id, updated_at and status of the last attempt';
REVOKE ALL ON scim.onelogin_users FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('scim.onelogin_connections', '');
SELECT pg_catalog.pg_extension_config_dump('scim.onelogin_state', '');
SELECT pg_catalog.pg_extension_config_dump('scim.onelogin_users', '');

-- C helpers (src/worker.c, src/onelogin_map.c)
CREATE FUNCTION scim._worker_check() RETURNS void
	AS 'MODULE_PATHNAME', 'scim_worker_check'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION scim._worker_check() IS
	'Internal: error unless the OneLogin worker is preloaded and serves this database';

CREATE FUNCTION scim._worker_wake() RETURNS void
	AS 'MODULE_PATHNAME', 'scim_worker_wake'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION scim._worker_wake() IS
	'Internal: wake the OneLogin worker when the current transaction commits';

CREATE FUNCTION scim._worker_activity(OUT pid integer, OUT workspace text, OUT phase text,
									  OUT phase_since timestamptz)
	AS 'MODULE_PATHNAME', 'scim_worker_activity'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION scim._worker_activity() IS
	'Internal: what the OneLogin worker is doing now (NULLs when it is not running)';

CREATE FUNCTION scim._onelogin_map_user(onelogin_user jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'scim_onelogin_map_user'
	LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION scim._onelogin_map_user(jsonb) IS
	'The SCIM User the worker applies for a OneLogin user object under the current settings';

-- Configuration.  The worker never reports the credentials (not in a log
-- line, an error, the System Log or pg_stat_activity), and this function
-- never echoes them; an error raised inside it does not log the statement
-- (log_min_error_statement = panic while it runs).
-- Caller-side caveat: the secret is an argument, so it is part of the
-- caller's statement text.  While the call runs, pg_stat_activity.query of
-- the calling session shows it (to that role, superusers and
-- pg_read_all_stats), and log_statement = 'all' or log_min_duration_statement
-- would write it to the server log.  Pass it as a bind parameter (extended
-- protocol: pg_stat_activity shows $3, and log_parameter_max_length = 0
-- keeps the value out of the log), or call it from a session with
-- log_statement = 'none' and log_min_duration_statement = -1.
CREATE FUNCTION scim.onelogin_connect(base_url text, client_id text, client_secret text,
									  workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
	SET log_min_error_statement = panic
AS $$
DECLARE
	url text := pg_catalog.rtrim(pg_catalog.btrim(onelogin_connect.base_url), '/');
	old_url text;
	version bigint;
BEGIN
	PERFORM scim._worker_check();
	PERFORM scim._require_workspace(onelogin_connect.workspace);
	IF url IS NULL OR url !~* '^https?://[a-z0-9.-]+(:[0-9]{1,5})?(/[^?#[:space:]]*)?$' THEN
		RAISE EXCEPTION 'invalid OneLogin base URL'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A base URL looks like https://<subdomain>.onelogin.com: a scheme and a host, optionally a port and a path, without user name, password, query or fragment.';
	END IF;
	IF coalesce(onelogin_connect.client_id, '') = ''
	   OR coalesce(onelogin_connect.client_secret, '') = '' THEN
		RAISE EXCEPTION 'OneLogin client_id and client_secret must not be empty'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	SELECT c.base_url, c.config_version INTO old_url, version
	FROM scim.onelogin_connections c
	WHERE c.workspace = onelogin_connect.workspace
	FOR UPDATE;

	IF NOT FOUND THEN
		INSERT INTO scim.onelogin_connections (workspace, base_url, client_id, client_secret)
		VALUES (onelogin_connect.workspace, url, onelogin_connect.client_id, onelogin_connect.client_secret);
		INSERT INTO scim.onelogin_state (workspace, config_version)
		VALUES (onelogin_connect.workspace, 1);
	ELSE
		UPDATE scim.onelogin_connections c
		SET base_url = url, client_id = onelogin_connect.client_id,
			client_secret = onelogin_connect.client_secret,
			config_version = version + 1, updated_at = pg_catalog.now()
		WHERE c.workspace = onelogin_connect.workspace;
		-- new credentials: clear failures and sync at once; another account
		-- (base URL) starts over with a full sync and reconciliation
		UPDATE scim.onelogin_state s
		SET config_version = version + 1,
			state = CASE WHEN s.state IN ('failing', 'backoff') THEN 'idle' ELSE s.state END,
			consecutive_failures = 0, backoff_until = NULL, backoff_reason = NULL,
			wake_seq = s.wake_seq + 1
		WHERE s.workspace = onelogin_connect.workspace;
		IF old_url IS DISTINCT FROM url THEN
			UPDATE scim.onelogin_state s
			SET state = 'new', users_high_water = NULL, run_kind = NULL, run_since = NULL,
				run_cursor = NULL, run_max_updated = NULL, verify_run = NULL,
				last_reconcile_at = NULL, events_high_water = NULL, events_since = NULL,
				events_cursor = NULL, events_run_max = NULL
			WHERE s.workspace = onelogin_connect.workspace;
		END IF;
	END IF;

	IF url ILIKE 'http://%' AND NOT pg_catalog.current_setting('scim_provision.allow_http')::boolean THEN
		RAISE WARNING 'the OneLogin base URL uses plain http'
			USING DETAIL = 'The worker refuses it while scim_provision.allow_http is off.',
				  HINT = 'Use https; plain http is meant for loopback tests only.';
	END IF;
	PERFORM scim._worker_wake();
END;
$$;
COMMENT ON FUNCTION scim.onelogin_connect(text, text, text, text) IS
	'Connect a workspace to a OneLogin account (API credentials with Read Users); the worker starts pulling. Pass client_secret as a bind parameter: a literal is visible in pg_stat_activity and in statement logs';

CREATE FUNCTION scim.onelogin_disconnect(workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	DELETE FROM scim.onelogin_connections c WHERE c.workspace = onelogin_disconnect.workspace;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'workspace "%" has no OneLogin connection', onelogin_disconnect.workspace
			USING ERRCODE = 'undefined_object';
	END IF;
END;
$$;
COMMENT ON FUNCTION scim.onelogin_disconnect(text) IS
	'Stop pulling from OneLogin for a workspace; its credentials and sync state are removed, users stay';

CREATE FUNCTION scim.sync_now(workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	PERFORM scim._worker_check();
	-- a wait OneLogin asked for (429) stands; an error back-off does not
	UPDATE scim.onelogin_state s
	SET wake_seq = s.wake_seq + 1,
		backoff_until = CASE WHEN s.backoff_reason = 'rate_limit' THEN s.backoff_until END,
		backoff_reason = CASE WHEN s.backoff_reason = 'rate_limit' THEN s.backoff_reason END
	WHERE s.workspace = sync_now.workspace;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'workspace "%" has no OneLogin connection', sync_now.workspace
			USING ERRCODE = 'undefined_object',
				  HINT = 'Connect it with scim.onelogin_connect(base_url, client_id, client_secret, workspace).';
	END IF;
	PERFORM scim._worker_wake();
END;
$$;
COMMENT ON FUNCTION scim.sync_now(text) IS
	'Ask the OneLogin worker to sync this workspace now (it is woken when the transaction commits)';

CREATE VIEW scim.sync_status AS
SELECT s.workspace,
	   c.base_url,
	   s.state,
	   (s.run_cursor IS NOT NULL OR s.verify_run IS NOT NULL OR s.events_cursor IS NOT NULL) AS sync_in_progress,
	   CASE WHEN a.workspace = s.workspace THEN a.phase END AS activity,
	   s.last_success_at,
	   s.last_attempt_at,
	   s.last_error,
	   s.last_error_at,
	   s.consecutive_failures,
	   CASE WHEN s.backoff_until > pg_catalog.now() THEN s.backoff_until - pg_catalog.now() END AS current_backoff,
	   s.backoff_until,
	   s.backoff_reason,
	   s.users_seen,
	   s.users_applied,
	   s.pages,
	   s.events_seen,
	   s.deprovisioned,
	   s.syncs_completed,
	   s.run_kind,
	   s.run_started_at,
	   s.run_finished_at,
	   s.run_pages,
	   s.run_users_seen,
	   s.run_users_applied,
	   s.users_high_water,
	   s.events_high_water,
	   s.last_reconcile_at,
	   a.pid AS worker_pid
FROM scim.onelogin_state s
JOIN scim.onelogin_connections c ON c.workspace = s.workspace
LEFT JOIN scim._worker_activity() a ON true;
COMMENT ON VIEW scim.sync_status IS
	'OneLogin sync per connection: state, last success and error, counters, back-off, progress of a running sync';

REVOKE ALL ON FUNCTION scim._worker_check(), scim._worker_wake(), scim._worker_activity(),
	scim._onelogin_map_user(jsonb),
	scim.onelogin_connect(text, text, text, text), scim.onelogin_disconnect(text),
	scim.sync_now(text) FROM PUBLIC;
REVOKE ALL ON scim.sync_status FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.onelogin_connect(text, text, text, text), scim.onelogin_disconnect(text),
	scim.sync_now(text), scim._onelogin_map_user(jsonb) TO scim_admin;
-- a view's functions run with the reader's privileges
GRANT EXECUTE ON FUNCTION scim._worker_activity() TO scim_reader, scim_admin;
GRANT SELECT ON scim.sync_status TO scim_reader, scim_admin;
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
	workspace			text NOT NULL REFERENCES scim.workspaces (name) ON UPDATE CASCADE,
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
CREATE FUNCTION scim._group_check_members(workspace text, ids uuid[]) RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	missing		uuid[];
	nested		boolean;
BEGIN
	SELECT array_agg(DISTINCT x), bool_or(EXISTS (SELECT FROM scim.groups g WHERE g.id = x AND g.workspace = $1))
	INTO missing, nested
	FROM unnest(ids) AS x
	WHERE NOT EXISTS (SELECT FROM scim.users u WHERE u.id = x AND u.workspace = $1);
	IF missing IS NOT NULL THEN
		IF nested THEN
			RAISE EXCEPTION 'invalidValue: a group cannot be a member of a group'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Nested groups are not supported: %s is a group.',
									  (SELECT string_agg(x::text, ', ') FROM unnest(missing) x
									   WHERE EXISTS (SELECT FROM scim.groups g WHERE g.id = x)));
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
	generic		jsonb := '[]';
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
				generic := generic || jsonb_build_array(jsonb_build_object('op', opname, 'value', rest));
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
			generic := generic || jsonb_build_array(op);
		END IF;
	END LOOP;

	IF jsonb_array_length(generic) > 0 THEN
		patched := scim.patch_apply(scim._group_json(g, false), generic);
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
				req := scim._request_json(p_body);
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
					SELECT * INTO res FROM scim._group_replace(ws, g, scim._request_json(p_body));
					g := res.result;
					log_user := g.display_name;
					status := 200;
					body := scim.group_resource(g, attrs, excl);
					log_detail := format('%s member(s) added, %s removed', res.added, res.removed);
				ELSIF m = 'PATCH' THEN
					SELECT * INTO res FROM scim._group_patch(ws, g, scim._request_json(p_body));
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

-- ---------------------------------------------------------------------------
-- 68_cursor.sql: cursor pagination (RFC 9865) for the lists and .search of
-- Users and Groups, alongside startIndex paging.
--
-- A request with a "cursor" parameter (query or SearchRequest member; ""
-- asks for the first page) is answered with keyset pagination on (sort key,
-- id): the page holds the next "count" resources after the position the
-- cursor names, in the order of sortBy/sortOrder (default: creation time),
-- ties broken on id.  The response has totalResults, itemsPerPage,
-- Resources and, unless it is the last page, nextCursor (no previousCursor).
-- Keyset pages are stable under concurrent writes: a resource that exists
-- throughout is returned exactly once, whatever is inserted or deleted
-- between pages.
--
-- A cursor is base64url(payload) "." base64url(HMAC-SHA-256(payload)) under
-- a per-installation secret (scim._cursor_secret, readable by nobody but
-- the extension's owner, not dumped: a restored database has a new secret
-- and refuses older cursors).  The payload binds the cursor to its resource
-- type, workspace and query (filter, sortBy, sortOrder) and holds the last
-- sort key, its type, the last id and an expiry (scim_provision.
-- cursor_timeout seconds after it was issued).  A cursor that does not
-- verify, or belongs to another query, is 400 invalidCursor; an expired one
-- 400 expiredCursor; a count below 1 400 invalidCount (above
-- scim_provision.max_results it is lowered to it).
-- ---------------------------------------------------------------------------

CREATE TABLE scim._cursor_secret (
	id					integer PRIMARY KEY CHECK (id = 1),
	secret				bytea NOT NULL CHECK (octet_length(secret) >= 32),
	created_at			timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE scim._cursor_secret IS
	'The per-installation key of the pagination cursors'' HMAC; private to the extension''s owner';
REVOKE ALL ON scim._cursor_secret FROM PUBLIC;

CREATE FUNCTION scim._hmac_sha256(key bytea, message bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'scim_hmac_sha256'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION scim._hmac_sha256_verify(key bytea, message bytea, mac bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'scim_hmac_sha256_verify'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION scim._random_bytes(n integer) RETURNS bytea
	AS 'MODULE_PATHNAME', 'scim_random_bytes'
	LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION scim._hmac_sha256_verify(bytea, bytea, bytea) IS
	'Internal: whether mac is the HMAC-SHA-256 of message under key (constant-time comparison)';

INSERT INTO scim._cursor_secret (id, secret) VALUES (1, scim._random_bytes(32));

CREATE FUNCTION scim._base64url_encode(data bytea) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT translate(encode(data, 'base64'), E'+/=\n', '-_');
$$;

-- NULL when the text is not base64url.
CREATE FUNCTION scim._base64url_decode(data text) RETURNS bytea
	LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF data !~ '^[A-Za-z0-9_-]*$' OR length(data) % 4 = 1 THEN
		RETURN NULL;
	END IF;
	RETURN decode(translate(data, '-_', '+/') || repeat('=', (4 - length(data) % 4) % 4), 'base64');
END;
$$;

-- A cursor for a payload (an object): the payload gains its expiry "x"
-- (epoch seconds) and is signed.  SECURITY DEFINER: it reads the secret.
CREATE FUNCTION scim.cursor_encode(payload jsonb) RETURNS text
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	msg			bytea;
BEGIN
	IF jsonb_typeof(payload) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'a cursor payload must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	msg := convert_to((payload || jsonb_build_object('x',
		floor(extract(epoch FROM clock_timestamp())) + current_setting('scim_provision.cursor_timeout')::integer))::text, 'UTF8');
	RETURN scim._base64url_encode(msg) || '.' ||
		scim._base64url_encode(scim._hmac_sha256((SELECT s.secret FROM scim._cursor_secret s WHERE s.id = 1), msg));
END;
$$;
COMMENT ON FUNCTION scim.cursor_encode(jsonb) IS
	'An opaque, tamper-evident pagination cursor for a payload (HMAC-SHA-256 under the installation''s secret, expiring after scim_provision.cursor_timeout)';

-- The payload of a cursor scim.cursor_encode made, or SQLSTATE 22023
-- "invalidCursor: ..." (malformed, forged or altered) / "expiredCursor: ...".
CREATE FUNCTION scim.cursor_decode(cursor text) RETURNS jsonb
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	dot			integer := position('.' IN coalesce(cursor, ''));
	msg			bytea;
	mac			bytea;
	payload		jsonb;
BEGIN
	IF dot > 1 THEN
		msg := scim._base64url_decode(left(cursor, dot - 1));
		mac := scim._base64url_decode(substr(cursor, dot + 1));
	END IF;
	IF msg IS NULL OR mac IS NULL
	   OR NOT scim._hmac_sha256_verify((SELECT s.secret FROM scim._cursor_secret s WHERE s.id = 1), msg, mac) THEN
		RAISE EXCEPTION 'invalidCursor: the cursor is not one this service issued'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Send an empty cursor for the first page, then the nextCursor of the previous response.';
	END IF;
	payload := convert_from(msg, 'UTF8')::jsonb;
	IF (payload ->> 'x')::numeric < extract(epoch FROM clock_timestamp()) THEN
		RAISE EXCEPTION 'expiredCursor: the cursor has expired'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Cursors are valid for %s seconds.', current_setting('scim_provision.cursor_timeout')),
				  HINT = 'Start again with an empty cursor.';
	END IF;
	RETURN payload;
END;
$$;
COMMENT ON FUNCTION scim.cursor_decode(text) IS
	'The payload of a pagination cursor; invalidCursor when it does not verify, expiredCursor when too old';

-- A sort key as the cursor keeps it: its text form, timestamps in ISO 8601
-- UTC (read back the same whatever the session's DateStyle).
CREATE FUNCTION scim._cursor_key_text(key anyelement) RETURNS text
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_typeof(key) = 'timestamp with time zone'::regtype THEN
		RETURN to_char(key::text::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
	END IF;
	RETURN key::text;
END;
$$;

-- A cursor-paged ListResponse of Users or Groups (see the header).  params:
-- filter, sortBy, sortOrder, count, cursor, attributes, excludedAttributes.
CREATE FUNCTION scim._list_cursor(resource_type text, ws text, params jsonb, OUT body jsonb, OUT total bigint)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	is_user		boolean := resource_type = 'User';
	tbl			text := CASE WHEN resource_type = 'User' THEN 'scim.users u' ELSE 'scim.groups g' END;
	alias		text := CASE WHEN resource_type = 'User' THEN 'u' ELSE 'g' END;
	filter		text := nullif(btrim(params ->> 'filter'), '');
	sort_by		text := nullif(btrim(params ->> 'sortBy'), '');
	sort_order	text := lower(coalesce(nullif(btrim(params ->> 'sortOrder'), ''), 'ascending'));
	cur			text := btrim(coalesce(params ->> 'cursor', ''));
	pred		text := 'true';
	sort_expr	text;
	render		text;
	descending	boolean;
	max_n		bigint := current_setting('scim_provision.max_results')::bigint;
	count_n		bigint;
	query_hash	text;
	pos			jsonb;
	after		text := 'true';
	k			text;
	resources	jsonb;
	rows_n		integer;
	last_k		text;
	last_t		text;
	last_id		uuid;
BEGIN
	IF resource_type NOT IN ('User', 'Group') THEN
		RAISE EXCEPTION 'unknown resource type "%"', resource_type USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF nullif(btrim(params ->> 'startIndex'), '') IS NOT NULL THEN
		RAISE EXCEPTION 'invalidValue: use either startIndex or cursor, not both'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF filter IS NOT NULL THEN
		pred := CASE WHEN is_user THEN scim.filter_sql(filter, 'User') ELSE scim._group_filter_sql(filter) END;
	END IF;
	IF sort_by IS NOT NULL THEN
		sort_expr := CASE WHEN is_user THEN scim.sort_expression(sort_by, 'User') ELSE scim._group_sort_expression(sort_by) END;
	ELSE
		sort_expr := alias || '.created_at';
	END IF;
	IF sort_order NOT IN ('ascending', 'descending') THEN
		RAISE EXCEPTION 'invalidValue: sortOrder must be "ascending" or "descending", not "%"', left(params ->> 'sortOrder', 40)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	descending := sort_order = 'descending';
	IF nullif(btrim(params ->> 'count'), '') IS NULL THEN
		count_n := max_n;
	ELSIF btrim(params ->> 'count') !~ '^[+]?[0-9]+$' OR btrim(params ->> 'count')::numeric < 1 THEN
		RAISE EXCEPTION 'invalidCount: count must be a positive integer, not "%"', left(params ->> 'count', 40)
			USING ERRCODE = 'invalid_parameter_value';
	ELSE
		count_n := least(btrim(params ->> 'count')::numeric, max_n)::bigint;
	END IF;
	render := CASE WHEN is_user THEN 'scim.user_resource(p.r, $2, $3)' ELSE 'scim.group_resource(p.r, $2, $3)' END;

	-- where the previous page ended
	query_hash := md5(concat_ws(E'\x1f', resource_type, ws, coalesce(filter, ''), coalesce(sort_by, ''), sort_order));
	IF cur <> '' THEN
		pos := scim.cursor_decode(cur);
		IF pos ->> 'q' IS DISTINCT FROM query_hash THEN
			RAISE EXCEPTION 'invalidCursor: the cursor belongs to another query'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Repeat the query parameters of the first page, changing only the cursor.';
		END IF;
		IF (pos ->> 't') NOT IN ('text', 'uuid', 'timestamp with time zone', 'bigint', 'integer', 'boolean', 'numeric') THEN
			RAISE EXCEPTION 'invalidCursor: the cursor names an unsupported sort key type'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		k := CASE WHEN pos -> 'k' = 'null' THEN NULL ELSE format('%L::%s', pos ->> 'k', pos ->> 't') END;
		IF sort_by IS NULL AND NOT descending AND k IS NOT NULL THEN
			-- the default key (created_at) is never NULL: a row comparison,
			-- which the (workspace, created_at, id) index answers
			after := format('((p.k1, p.id) > (%s, %L::uuid))', k, pos ->> 'i');
		ELSIF NOT descending THEN
			-- ascending: NULLs last
			after := CASE WHEN k IS NULL
						  THEN format('(p.k1 IS NULL AND p.id > %L::uuid)', pos ->> 'i')
						  ELSE format('(p.k1 > %1$s OR (p.k1 = %1$s AND p.id > %2$L::uuid) OR p.k1 IS NULL)', k, pos ->> 'i') END;
		ELSE
			-- descending: NULLs first
			after := CASE WHEN k IS NULL
						  THEN format('((p.k1 IS NULL AND p.id > %L::uuid) OR p.k1 IS NOT NULL)', pos ->> 'i')
						  ELSE format('(p.k1 < %1$s OR (p.k1 = %1$s AND p.id > %2$L::uuid))', k, pos ->> 'i') END;
		END IF;
	END IF;

	EXECUTE format('SELECT count(*) FROM %s WHERE %s.workspace OPERATOR(pg_catalog.=) $1 AND (%s)', tbl, alias, pred)
		INTO total USING ws;
	EXECUTE format(
		$q$WITH p AS (SELECT %2$s AS r, %3$s AS k1, %2$s.id AS id
					  FROM %1$s
					  WHERE %2$s.workspace OPERATOR(pg_catalog.=) $1 AND (%4$s)),
			   page AS (SELECT p.r, p.k1, p.id FROM p WHERE %5$s
						ORDER BY p.k1 %6$s, p.id LIMIT $4 + 1),
			   numbered AS (SELECT page.*, row_number() OVER (ORDER BY page.k1 %6$s, page.id) AS n FROM page)
		   SELECT coalesce(jsonb_agg(%7$s ORDER BY p.n) FILTER (WHERE p.n <= $4), '[]'::jsonb),
				  count(*)::integer,
				  (array_agg(scim._cursor_key_text(p.k1)) FILTER (WHERE p.n = $4))[1],
				  (array_agg(pg_typeof(p.k1)::text) FILTER (WHERE p.n = $4))[1],
				  (array_agg(p.id) FILTER (WHERE p.n = $4))[1]
		   FROM numbered p$q$,
		tbl, alias, sort_expr, pred, after, CASE WHEN descending THEN 'DESC' ELSE 'ASC' END, render)
		INTO resources, rows_n, last_k, last_t, last_id
		USING ws, params ->> 'attributes', params ->> 'excludedAttributes', count_n;

	body := jsonb_build_object(
		'schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:ListResponse'),
		'totalResults', total,
		'itemsPerPage', jsonb_array_length(resources),
		'Resources', resources);
	IF rows_n > count_n THEN
		body := body || jsonb_build_object('nextCursor', scim.cursor_encode(jsonb_build_object(
			'v', 1, 'q', query_hash, 'k', last_k, 't', last_t, 'i', last_id)));
	END IF;
END;
$$;

-- _list_cursor for scim.handle's router: refusals come back as status,
-- scim_type and detail (never raised), as in scim._groups_route.
CREATE FUNCTION scim._list_cursor_route(resource_type text, ws text, params jsonb,
										OUT status integer, OUT body jsonb, OUT log_type text, OUT log_detail text)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
DECLARE
	total		bigint;
	err_state	text;
	err_msg		text;
	err_detail	text;
BEGIN
	BEGIN
		SELECT l.body, l.total INTO body, total FROM scim._list_cursor(resource_type, ws, params) l;
		status := 200;
		log_detail := format('%s of %s result(s), cursor page', body -> 'itemsPerPage', total)
			|| coalesce('; filter: ' || (params ->> 'filter'), '');
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT, err_detail = PG_EXCEPTION_DETAIL;
		SELECT e.status, e.scim_type, e.detail INTO status, log_type, log_detail
		FROM scim._group_error(err_state, err_msg, err_detail) e;
		IF status = 500 THEN
			RAISE LOG 'scim_provision: cursor list of % failed: % (SQLSTATE %)', resource_type, err_msg, err_state;
		END IF;
		body := NULL;
	END;
END;
$$;

-- Whether a .search body asks for cursor pagination (a "cursor" member);
-- false for a malformed body, which the .search route then refuses.
CREATE FUNCTION scim._search_wants_cursor(body text) RETURNS boolean
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	IF body IS NULL OR body !~* '"cursor"' THEN
		RETURN false;
	END IF;
	RETURN scim._cursor_param(scim._request_json(body)) <> '{}';
EXCEPTION WHEN invalid_parameter_value OR invalid_text_representation THEN
	RETURN false;
END;
$$;

REVOKE ALL ON FUNCTION scim._hmac_sha256(bytea, bytea), scim._hmac_sha256_verify(bytea, bytea, bytea),
	scim._random_bytes(integer), scim._base64url_encode(bytea), scim._base64url_decode(text),
	scim.cursor_encode(jsonb), scim.cursor_decode(text),
	scim._list_cursor(text, text, jsonb), scim._list_cursor_route(text, text, jsonb),
	scim._search_wants_cursor(text), scim._cursor_key_text(anyelement) FROM PUBLIC;

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
-- log.  SECURITY DEFINER: scim_client has no access to schema scim.
CREATE FUNCTION scim_api.dispatch(jsonb)
	RETURNS scim_api."application/scim+json"
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
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
				fwd := req_headers - 'x-scim-method' - 'x-scim-uri' - 'x-scim-token' - 'authorization';
				IF req_headers ? 'x-scim-token' AND pg_catalog.jsonb_typeof(req_headers -> 'x-scim-token') = 'string' THEN
					fwd := fwd || pg_catalog.jsonb_build_object('authorization', req_headers ->> 'x-scim-token');
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
