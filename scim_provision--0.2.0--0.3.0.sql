/* scim_provision--0.2.0--0.3.0.sql: from 0.2.0 to 0.3.0 (never edited once released) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION scim_provision UPDATE TO '0.3.0'" to load this file. \quit

-- One section per concern of 0.3.0, in the order they apply.


-- ===== Hardening (#15 security): grants, trigger functions, audit =========

-- (end of hardening: security)


-- ===== Hardening (#15 input): limits before cost, nesting, body size =======

-- (end of hardening: input)


-- ===== Hardening (#15 contract): text bodies, column defaults, races =======

-- (end of hardening: contract)


-- ===== System Log lifecycle (#12): partitions, retention, operator's view ==

-- (end of System Log lifecycle)


-- ===== Search (#14): multi-valued attributes indexed, deep paging ==========

-- co/sw/ew (and eq on name columns) on names and the elements of emails,
-- phoneNumbers, addresses: a trigram index over scim.search_text(...)
-- (src/sql/30_filter.sql).  CREATE INDEX reads every existing user, so the
-- index covers them from the start (no separate backfill).
CREATE FUNCTION scim.search_text(attributes jsonb, given_name text, family_name text, display_name text)
	RETURNS text
	AS 'MODULE_PATHNAME', 'scim_search_text'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION scim.search_text(jsonb, text, text, text) IS
	'The lower-cased searchable text of a User (names, nickName, values of emails/phoneNumbers/addresses), one per line: the expression of users_search_text_idx';
-- as 70_postgrest.sql leaves every function of scim in a fresh install
REVOKE ALL ON FUNCTION scim.search_text(jsonb, text, text, text) FROM scim_client;

DO $$
DECLARE
	trgm_schema name;
BEGIN
	SELECT n.nspname INTO trgm_schema
	  FROM pg_catalog.pg_extension e
	  JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
	 WHERE e.extname = 'pg_trgm';
	EXECUTE pg_catalog.format(
		'CREATE INDEX users_search_text_idx ON scim.users USING gin '
		'(scim.search_text(attributes, given_name, family_name, display_name) %I.gin_trgm_ops)',
		trgm_schema);
END;
$$;

CREATE INDEX users_workspace_updated_idx ON scim.users (workspace, updated_at);

-- (end of search)


-- ===== OneLogin worker (#16) ===============================================

-- (end of OneLogin worker)


-- ===== Sharding (#11): tokens that name their partition ===================

-- (end of sharding)
