/* scim_provision--0.2.0--0.3.0.sql: from 0.2.0 to 0.3.0 (never edited once released) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION scim_provision UPDATE TO '0.3.0'" to load this file. \quit

-- One section per concern of 0.3.0, in the order they apply.


-- ===== Hardening (#15 security): grants, trigger functions, audit =========

-- The users trigger: not SECURITY DEFINER, not PUBLIC's (the C guard that
-- refuses any relation but scim.users is in the library); internal helpers
-- and the SECURITY DEFINER domain_approved are no longer PUBLIC's
-- (sql/16_security_catalog.sql holds the allow-list).
ALTER FUNCTION scim._users_before_write() SECURITY INVOKER;
REVOKE ALL ON FUNCTION scim._users_before_write(), scim._canonical_user_type(text),
	scim._sort_direction(text), scim.domain_approved(text, text) FROM PUBLIC;

-- Log policy: nothing the entry points report to the server log carries the
-- caller's statement (with the bearer token in it) or the context.
ALTER FUNCTION scim.handle(text, text, text, jsonb, text)
	SET log_min_error_statement = panic;
ALTER FUNCTION scim.handle(text, text, text, jsonb, text)
	SET log_error_verbosity = terse;
ALTER FUNCTION scim_api.dispatch(jsonb)
	SET log_min_error_statement = panic;
ALTER FUNCTION scim_api.dispatch(jsonb)
	SET log_error_verbosity = terse;

-- (end of hardening: security)


-- ===== Hardening (#15 input): limits before cost, nesting, body size =======

-- (end of hardening: input)


-- ===== Hardening (#15 contract): text bodies, column defaults, races =======

-- (end of hardening: contract)


-- ===== System Log lifecycle (#12): partitions, retention, operator's view ==

-- (end of System Log lifecycle)


-- ===== Search (#14): multi-valued attributes indexed, deep paging ==========

-- (end of search)


-- ===== OneLogin worker (#16) ===============================================

-- (end of OneLogin worker)


-- ===== Sharding (#11): tokens that name their partition ===================

-- (end of sharding)
