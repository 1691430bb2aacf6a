
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
	syncs_completed		bigint NOT NULL DEFAULT 0,
	-- gap detection (0.3.0): what the next page of the pass is compared with
	run_total			bigint,
	run_shifted			boolean NOT NULL DEFAULT false,
	run_relists			integer NOT NULL DEFAULT 0,
	relists				bigint NOT NULL DEFAULT 0
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
	   a.pid AS worker_pid,
	   s.run_relists,
	   s.relists
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
