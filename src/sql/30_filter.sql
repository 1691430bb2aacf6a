
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

-- co / sw / ew (and eq on the name columns) on names and on the elements of
-- emails, phoneNumbers and addresses: scim.filter_sql puts
--   scim.search_text(u.attributes) ~~ lower('%value%')
-- in front of the exact predicate, a necessary condition this trigram index
-- answers (src/search_text.c says what the text holds; doc/SEARCH.md why an
-- expression index rather than a side table).
CREATE FUNCTION scim.search_text(attributes jsonb)
	RETURNS text
	AS 'MODULE_PATHNAME', 'scim_search_text'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.search_text(jsonb) IS
	'The lower-cased searchable text of a User''s attributes (name.*, nickName, values of emails/phoneNumbers/addresses), one per line: a trigram column of users_search_text_idx';

-- sw/ew/eq on emails.value and phoneNumbers.value, and co on emails.value
-- with an '@' (the domain of an address): prefix keys of every value, the
-- second column of users_search_text_idx; scim.filter_sql puts
--   scim.element_keys(u.attributes) @@ scim.element_keys_query('emails', 'co', value)
-- in front of the exact predicate, a necessary condition (src/element_keys.c
-- says which keys and why).
CREATE FUNCTION scim.element_keys(attributes jsonb)
	RETURNS tsvector
	AS 'MODULE_PATHNAME', 'scim_element_keys'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.element_keys(jsonb) IS
	'Prefix keys of the values of a User''s emails and phoneNumbers (value, reversed value, the text after and before each @): the second column of users_search_text_idx';
CREATE FUNCTION scim.element_keys_query(attribute text, op text, value text, type text DEFAULT NULL,
										exact boolean DEFAULT false)
	RETURNS tsquery
	AS 'MODULE_PATHNAME', 'scim_element_keys_query'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION scim.element_keys_query(text, text, text, text, boolean) IS
	'The tsquery of scim.element_keys for "<attribute>.value <op> value" (typed: in a value path with type eq): exact = false the index condition, a necessary one (NULL when none narrows it); exact = true the test that decides alone where the keys are complete (NULL when there is none)';

-- The keys, stored: the index is built on them, and a predicate that the
-- keys decide alone reads them from the row instead of computing them
-- again for every user the index returns (the way a tsvector column serves
-- full-text search).  Kept by PostgreSQL for every writer.
ALTER TABLE scim.users ADD COLUMN element_keys tsvector
	GENERATED ALWAYS AS (scim.element_keys(attributes)) STORED;
COMMENT ON COLUMN scim.users.element_keys IS
	'Prefix keys of the emails and phoneNumbers values (scim.element_keys(attributes)), for filters; generated';

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
		'(lower(given_name) %1$I.gin_trgm_ops, lower(family_name) %1$I.gin_trgm_ops, '
		'lower(display_name) %1$I.gin_trgm_ops, scim.search_text(attributes) %1$I.gin_trgm_ops, '
		'element_keys)',
		trgm_schema);
END;
$$;

-- meta.lastModified gt/ge/lt/le (incremental exports: "what changed since").
CREATE INDEX users_workspace_updated_idx ON scim.users (workspace, updated_at);
