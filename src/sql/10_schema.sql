
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
	workspace			text NOT NULL DEFAULT 'default' REFERENCES scim.workspaces (name) ON UPDATE CASCADE ON DELETE CASCADE,
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
	workspace			text NOT NULL DEFAULT 'default' REFERENCES scim.workspaces (name) ON UPDATE CASCADE ON DELETE CASCADE,
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
	-- 'default' like every function's workspace argument: a plain INSERT
	-- without it lands in the default workspace (the users trigger checks
	-- the domain against that workspace's approved domains)
	workspace			text NOT NULL DEFAULT 'default' REFERENCES scim.workspaces (name) ON UPDATE CASCADE,
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
