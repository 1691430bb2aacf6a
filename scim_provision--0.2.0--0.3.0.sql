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

-- (end of search)


-- ===== OneLogin worker (#16) ===============================================
-- Gap detection: what the next users page of a pass is compared with, and
-- how often a run listed OneLogin's users again (scim.sync_status shows it).
ALTER TABLE scim.onelogin_state
	ADD COLUMN run_total bigint,
	ADD COLUMN run_shifted boolean NOT NULL DEFAULT false,
	ADD COLUMN run_relists integer NOT NULL DEFAULT 0,
	ADD COLUMN relists bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE VIEW scim.sync_status AS
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
	   a.pid AS worker_pid,
	   s.run_relists,
	   s.relists
FROM scim.onelogin_state s
JOIN scim.onelogin_connections c ON c.workspace = s.workspace
LEFT JOIN scim._worker_activity() a ON true;

-- (end of OneLogin worker)


-- ===== Sharding (#11): tokens that name their partition ===================

-- (end of sharding)
