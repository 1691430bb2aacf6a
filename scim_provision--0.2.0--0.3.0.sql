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

-- The 0.2.0 log is moved into the partitioned table: its rows keep their
-- ids, the sequence is kept (re-owned), partitions are made for every day
-- (or month, scim_provision.log_partition) that has rows and the next ones,
-- and the rows are copied straight into them.  The old table leaves the
-- extension and is dropped.  One transaction, like every update: on a large
-- log it takes the time of one copy of it (doc/OPERATIONS.md).
ALTER EXTENSION scim_provision DROP TABLE scim.provisioning_log;
ALTER SEQUENCE scim.provisioning_log_id_seq OWNED BY NONE;
ALTER TABLE scim.provisioning_log ALTER COLUMN id DROP DEFAULT;
ALTER TABLE scim.provisioning_log RENAME TO provisioning_log_0_2_0;
ALTER INDEX scim.provisioning_log_pkey RENAME TO provisioning_log_0_2_0_pkey;
ALTER INDEX scim.provisioning_log_workspace_at_idx RENAME TO provisioning_log_0_2_0_workspace_at_idx;

-- Partitioned by time (#12): scim.log_maintain_step() (src/sql/75_log_lifecycle.sql)
-- creates a partition per day or month ahead of time in schema scim_log and
-- drops whole partitions no workspace's retention still needs.  Each
-- partition has its own primary key (id, at) and indexes (workspace, at) and
-- (workspace, at) of refusals, made with it; the parent has none, so that
-- pg_dump's ATTACH of a dumped partition does not build them twice (an
-- extension's parent exists with its indexes before the dump's partitions).
-- id is unique because every writer leaves it to the sequence (no role but
-- the owner may INSERT into the table, and the functions that do never set
-- it; the update from 0.2.0 keeps the old ids and the sequence past them),
-- and the sequence never hands a value out twice.
-- A row for a time no dated partition covers lands in the DEFAULT partition
-- (never an error on the request path); maintenance moves such rows into
-- their dated partition when it creates it.  request_id: the request's
-- correlation id (X-Request-Id), which scim_api.dispatch sets as the
-- transaction-local scim_provision.request_id; every writer of the log,
-- scim.handle's fast path included, gets it from this default.
CREATE TABLE scim.provisioning_log (
	id					bigint NOT NULL DEFAULT nextval('scim.provisioning_log_id_seq'::regclass),
	at					timestamptz NOT NULL DEFAULT clock_timestamp(),
	workspace			text,
	source				scim.log_source NOT NULL,
	method				text,
	path				text,
	resource_id			uuid,
	user_name			text,
	status				integer NOT NULL,
	scim_type			text,
	detail				text,
	request_id			text DEFAULT NULLIF(pg_catalog.current_setting('scim_provision.request_id', true), '')
) PARTITION BY RANGE (at);
COMMENT ON TABLE scim.provisioning_log IS 'System Log: every provisioning attempt, accepted or refused, with its outcome';

-- The partitions live in their own schema: nobody is granted anything in it
-- (scim_reader and scim_admin read through scim.provisioning_log).  The
-- DEFAULT partition belongs to the extension; the dated ones are created by
-- maintenance and do not (pg_dump dumps them, their rows included, as
-- ordinary partitions; see doc/OPERATIONS.md).
CREATE SCHEMA scim_log;
COMMENT ON SCHEMA scim_log IS 'scim_provision: partitions of scim.provisioning_log (read through the parent)';
REVOKE ALL ON SCHEMA scim_log FROM PUBLIC;
CREATE TABLE scim_log.provisioning_log_default PARTITION OF scim.provisioning_log (PRIMARY KEY (id, at)) DEFAULT;
CREATE INDEX provisioning_log_default_workspace_at_idx ON scim_log.provisioning_log_default (workspace, at);
CREATE INDEX provisioning_log_default_errors_idx ON scim_log.provisioning_log_default (workspace, at) WHERE status >= 400;

ALTER SEQUENCE scim.provisioning_log_id_seq OWNED BY scim.provisioning_log.id;
GRANT SELECT ON scim.provisioning_log TO scim_reader, scim_admin;
SELECT pg_catalog.pg_extension_config_dump('scim_log.provisioning_log_default', '');

-- Retention per workspace.  A workspace without a row keeps 90 days; a row
-- with NULL keeps its log forever.  Log rows without a workspace (refused
-- before authentication) follow the 'default' workspace.
CREATE TABLE scim.log_retention (
	workspace			text PRIMARY KEY REFERENCES scim.workspaces (name) ON UPDATE CASCADE ON DELETE CASCADE,
	retention			interval CONSTRAINT log_retention_positive CHECK (retention > interval '0')
);
COMMENT ON TABLE scim.log_retention IS
	'How long each workspace keeps its System Log rows (no row: 90 days; NULL: forever); set with scim.set_log_retention';
SELECT pg_catalog.pg_extension_config_dump('scim.log_retention', '');
GRANT SELECT ON scim.log_retention TO scim_reader, scim_admin;

CREATE FUNCTION scim.set_log_retention(retention interval, workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, scim, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM scim.workspaces w WHERE w.name = set_log_retention.workspace) THEN
		RAISE EXCEPTION 'workspace "%" does not exist', set_log_retention.workspace
			USING ERRCODE = 'undefined_object';
	END IF;
	IF retention IS NOT NULL AND retention <= interval '0' THEN
		RAISE EXCEPTION 'a log retention must be positive'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The retention given was %s.', retention),
				  HINT = 'NULL keeps the System Log of the workspace forever.';
	END IF;
	INSERT INTO scim.log_retention AS r (workspace, retention)
	VALUES (set_log_retention.workspace, set_log_retention.retention)
	ON CONFLICT ON CONSTRAINT log_retention_pkey DO UPDATE SET retention = EXCLUDED.retention;
END;
$$;
COMMENT ON FUNCTION scim.set_log_retention(interval, text) IS
	'How long a workspace keeps its System Log rows (default 90 days; NULL keeps them forever); maintenance applies it';
REVOKE ALL ON FUNCTION scim.set_log_retention(interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.set_log_retention(interval, text) TO scim_admin;

-- The dated partitions and their bounds (the DEFAULT partition is not listed).
CREATE FUNCTION scim.log_partitions()
	RETURNS TABLE (partition regclass, lower_bound timestamptz, upper_bound timestamptz)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT c.oid::regclass, b.m[1]::timestamptz, b.m[2]::timestamptz
	  FROM pg_catalog.pg_inherits i
	  JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid,
		   LATERAL (SELECT pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
												   '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$') AS m) b
	 WHERE i.inhparent = 'scim.provisioning_log'::regclass
	   AND b.m IS NOT NULL
	 ORDER BY 2;
$$;
COMMENT ON FUNCTION scim.log_partitions() IS
	'The dated partitions of scim.provisioning_log with their bounds (lower included, upper excluded)';
REVOKE ALL ON FUNCTION scim.log_partitions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.log_partitions() TO scim_reader, scim_admin;

-- Internal: create the partitions of the period (day or month) that holds
-- "at", for what no partition covers yet (so a change of
-- scim_provision.log_partition never overlaps), leaving out the parts that
-- end before "after".  Each is created on its own, rows of its range moved
-- in from the DEFAULT partition, then attached: ATTACH takes SHARE UPDATE
-- EXCLUSIVE on scim.provisioning_log, which requests writing the log do not
-- wait for (CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE).  A
-- partition created while an extension script runs (the update) is released
-- from the extension, like one maintenance creates.  Returns the new
-- partitions (an empty array when the period is covered already).
CREATE FUNCTION scim._log_create_partitions(at timestamptz, period text, after timestamptz DEFAULT '-infinity')
	RETURNS regclass[]
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	SET "TimeZone" = 'UTC'
	SET "DateStyle" = 'ISO, YMD'
AS $$
DECLARE
	period_lo	timestamptz := pg_catalog.date_trunc(period, at);
	period_hi	timestamptz := pg_catalog.date_trunc(period, at) + ('1 ' || period)::interval;
	lo			timestamptz := pg_catalog.date_trunc(period, at);
	hi			timestamptz;
	cover_hi	timestamptz;
	name		text;
	rel			regclass;
	made		regclass[] := '{}';
BEGIN
	WHILE lo < period_hi LOOP
		-- skip what existing partitions cover, up to the next one
		SELECT p.upper_bound INTO cover_hi
		  FROM scim.log_partitions() p WHERE p.lower_bound <= lo AND p.upper_bound > lo;
		IF FOUND THEN
			lo := cover_hi;
			CONTINUE;
		END IF;
		SELECT least(period_hi, min(p.lower_bound)) INTO hi FROM scim.log_partitions() p WHERE p.lower_bound > lo;
		hi := coalesce(hi, period_hi);
		IF hi > after THEN
			name := 'provisioning_log_' || pg_catalog.to_char(lo,
				CASE WHEN lo = period_lo AND hi = period_hi AND period = 'month' THEN 'YYYYMM' ELSE 'YYYYMMDD' END);
			EXECUTE pg_catalog.format('CREATE TABLE scim_log.%I (LIKE scim.provisioning_log, PRIMARY KEY (id, at),'
									  ' CONSTRAINT range_check CHECK (at IS NOT NULL AND at >= %L AND at < %L))',
									  name, lo, hi);
			rel := pg_catalog.format('scim_log.%I', name)::regclass;
			EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (workspace, at)', name || '_workspace_at_idx', rel);
			EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (workspace, at) WHERE status >= 400', name || '_errors_idx', rel);
			IF EXISTS (SELECT FROM pg_catalog.pg_depend d
					   WHERE d.classid = 'pg_class'::regclass AND d.objid = rel
						 AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e') THEN
				EXECUTE pg_catalog.format('ALTER EXTENSION scim_provision DROP TABLE %s', rel);
			END IF;
			EXECUTE pg_catalog.format('WITH moved AS (DELETE FROM scim_log.provisioning_log_default d'
									  ' WHERE d.at >= %L AND d.at < %L RETURNING d.*)'
									  ' INSERT INTO %s SELECT * FROM moved', lo, hi, rel);
			EXECUTE pg_catalog.format('ALTER TABLE scim.provisioning_log ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
									  rel, lo, hi);
			EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT range_check', rel);
			made := made || rel;
		END IF;
		lo := hi;
	END LOOP;
	RETURN made;
END;
$$;
COMMENT ON FUNCTION scim._log_create_partitions(timestamptz, text, timestamptz) IS
	'Internal: create and attach the System Log partitions of the day or month holding a time (maintenance)';
REVOKE ALL ON FUNCTION scim._log_create_partitions(timestamptz, text, timestamptz) FROM PUBLIC;

-- Internal: the retention that applies to a workspace's rows (NULL: forever).
CREATE FUNCTION scim._log_retention_of(workspace text)
	RETURNS interval
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN r.workspace IS NULL THEN interval '90 days' ELSE r.retention END
	  FROM (SELECT coalesce($1, 'default') AS w) k
	  LEFT JOIN scim.log_retention r ON r.workspace = k.w;
$$;
REVOKE ALL ON FUNCTION scim._log_retention_of(text) FROM PUBLIC;

-- One step of System Log maintenance, in the caller's (short) transaction:
--   1. create the partitions of the current period and the
--      scim_provision.log_partitions_ahead next ones (day or month after
--      scim_provision.log_partition), and of any period whose rows sit in the
--      DEFAULT partition;
--   2. else drop the oldest partition no workspace's retention still needs;
--   3. else delete up to batch_size expired rows of one workspace;
-- and says what it did, or NULL when nothing is left to do.  DDL waits for
-- its lock at most scim_provision.log_lock_timeout (default 100ms): a SCIM
-- request queued behind it waits no longer; on a timeout the step answers
-- NULL and the next run retries.  Concurrent steps: one runs, the others
-- answer NULL at once (transaction-level advisory lock).
CREATE FUNCTION scim.log_maintain_step(batch_size integer DEFAULT 5000)
	RETURNS text
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET "TimeZone" = 'UTC'
	SET "DateStyle" = 'ISO, YMD'
	SET lock_timeout = '100ms'
AS $$
DECLARE
	period		text := coalesce(nullif(pg_catalog.current_setting('scim_provision.log_partition', true), ''), 'day');
	ahead		integer := coalesce(nullif(pg_catalog.current_setting('scim_provision.log_partitions_ahead', true), '')::integer, 7);
	lt			text := nullif(pg_catalog.current_setting('scim_provision.log_lock_timeout', true), '');
	t			timestamptz;
	made		text[] := '{}';
	p			record;
	ws			text[];
	has_null	boolean;
	needed		boolean;
	w			record;
	upto		timestamptz;
	n			bigint;
BEGIN
	IF batch_size IS NULL OR batch_size < 1 THEN
		RAISE EXCEPTION 'batch_size must be positive' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF period NOT IN ('day', 'month') THEN
		period := 'day';
	END IF;
	IF lt IS NOT NULL THEN
		PERFORM pg_catalog.set_config('lock_timeout', lt, true);
	END IF;
	-- one maintenance at a time; the others have nothing to do
	IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('scim_provision.log_maintain')) THEN
		RETURN NULL;
	END IF;

	BEGIN
		-- 1. partitions ahead (not parts of the current period already
		-- past), and for rows that fell into the DEFAULT partition
		FOR t IN
			SELECT g FROM pg_catalog.generate_series(pg_catalog.date_trunc(period, pg_catalog.now()),
													 pg_catalog.date_trunc(period, pg_catalog.now())
													 + ahead * ('1 ' || period)::interval,
													 ('1 ' || period)::interval) g
		LOOP
			made := made || scim._log_create_partitions(t, period, pg_catalog.now())::text[];
		END LOOP;
		FOR t IN
			SELECT DISTINCT pg_catalog.date_trunc(period, d.at) FROM scim_log.provisioning_log_default d
		LOOP
			made := made || scim._log_create_partitions(t, period)::text[];
		END LOOP;
		IF pg_catalog.cardinality(made) > 0 THEN
			RETURN 'created ' || pg_catalog.array_to_string(made, ', ');
		END IF;

		-- 2. the oldest partition that no workspace with rows in it still needs
		-- (only partitions past the shortest retention can be dropped)
		FOR p IN
			SELECT * FROM scim.log_partitions() lp
			 WHERE lp.upper_bound <= pg_catalog.now()
							   - (SELECT least(interval '90 days', min(r.retention)) FROM scim.log_retention r)
			 ORDER BY lp.lower_bound
		LOOP
			-- the workspaces with rows in it (a loose scan of its index)
			EXECUTE pg_catalog.format(
				'WITH RECURSIVE w AS ('
				'  (SELECT l.workspace FROM %1$s l WHERE l.workspace IS NOT NULL ORDER BY 1 LIMIT 1)'
				'  UNION ALL'
				'  SELECT (SELECT l.workspace FROM %1$s l WHERE l.workspace > w.workspace ORDER BY 1 LIMIT 1)'
				'    FROM w WHERE w.workspace IS NOT NULL)'
				' SELECT ARRAY(SELECT w.workspace FROM w WHERE w.workspace IS NOT NULL),'
				'        EXISTS (SELECT FROM %1$s l WHERE l.workspace IS NULL)', p.partition)
			  INTO ws, has_null;
			SELECT bool_or(r IS NULL OR p.upper_bound > pg_catalog.now() - r) INTO needed
			  FROM (SELECT scim._log_retention_of(x) AS r
					  FROM pg_catalog.unnest(ws || CASE WHEN has_null THEN ARRAY[NULL::text] ELSE '{}' END) x) s;
			IF NOT coalesce(needed, false) THEN
				made := ARRAY[p.partition::text];
				EXECUTE pg_catalog.format('DROP TABLE %s', p.partition);
				RETURN 'dropped ' || made[1];
			END IF;
		END LOOP;
	EXCEPTION WHEN lock_not_available THEN
		RAISE LOG 'scim_provision: System Log maintenance did not get its lock in time; the next run retries';
		RETURN NULL;
	END;

	-- 3. expired rows of one workspace, a batch at a time (rows at the cutoff
	-- itself are kept)
	FOR w IN
		SELECT x.workspace, pg_catalog.now() - scim._log_retention_of(x.workspace) AS cutoff
		  FROM (SELECT ws2.name AS workspace FROM scim.workspaces ws2
				UNION ALL SELECT NULL) x
		 WHERE scim._log_retention_of(x.workspace) IS NOT NULL
	LOOP
		IF w.workspace IS NULL THEN
			SELECT l.at INTO upto FROM scim.provisioning_log l
			 WHERE l.workspace IS NULL AND l.at < w.cutoff ORDER BY l.at OFFSET batch_size - 1 LIMIT 1;
			DELETE FROM scim.provisioning_log l
			 WHERE l.workspace IS NULL AND l.at < w.cutoff AND l.at <= coalesce(upto, w.cutoff);
		ELSE
			SELECT l.at INTO upto FROM scim.provisioning_log l
			 WHERE l.workspace = w.workspace AND l.at < w.cutoff ORDER BY l.at OFFSET batch_size - 1 LIMIT 1;
			DELETE FROM scim.provisioning_log l
			 WHERE l.workspace = w.workspace AND l.at < w.cutoff AND l.at <= coalesce(upto, w.cutoff);
		END IF;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n > 0 THEN
			RETURN pg_catalog.format('deleted %s rows of workspace %s', n, coalesce(w.workspace, '(none)'));
		END IF;
	END LOOP;
	RETURN NULL;
END;
$$;
COMMENT ON FUNCTION scim.log_maintain_step(integer) IS
	'One short step of System Log maintenance (partitions ahead, expired partitions dropped, expired rows deleted in a batch); NULL when nothing is left';
REVOKE ALL ON FUNCTION scim.log_maintain_step(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.log_maintain_step(integer) TO scim_admin;

-- scim.maintain(): all of the maintenance in one call, each step committed
-- on its own, so that no transaction is long.  For installations without
-- the preloaded background worker (pg_cron: see doc/OPERATIONS.md).  CALL it
-- outside a transaction block.
CREATE PROCEDURE scim.maintain()
	LANGUAGE plpgsql
AS $$
DECLARE
	did		text;
BEGIN
	LOOP
		did := scim.log_maintain_step();
		EXIT WHEN did IS NULL;
		RAISE DEBUG 'scim_provision: %', did;
		COMMIT;
	END LOOP;
END;
$$;
COMMENT ON PROCEDURE scim.maintain() IS
	'System Log maintenance in one call (CALL scim.maintain(), outside a transaction block): every step, each committed';
REVOKE ALL ON PROCEDURE scim.maintain() FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE scim.maintain() TO scim_admin;

-- The operator's view: the last day, per workspace, source, status class and
-- scimType.  A refusal is a status of 400 or more.
CREATE VIEW scim.log_summary AS
SELECT l.workspace,
	   l.source::text AS source,
	   (l.status / 100)::text || 'xx' AS status_class,
	   l.scim_type,
	   count(*) FILTER (WHERE l.at > pg_catalog.now() - interval '1 hour') AS attempts_last_hour,
	   count(*) FILTER (WHERE l.at > pg_catalog.now() - interval '1 hour' AND l.status >= 400) AS refusals_last_hour,
	   count(*) AS attempts_last_day,
	   count(*) FILTER (WHERE l.status >= 400) AS refusals_last_day,
	   max(l.at) FILTER (WHERE l.status >= 400) AS last_error_at,
	   (pg_catalog.array_agg(l.detail ORDER BY l.at DESC) FILTER (WHERE l.status >= 400))[1] AS last_error
  FROM scim.provisioning_log l
 WHERE l.at > pg_catalog.now() - interval '1 day'
 GROUP BY 1, 2, 3, 4;
COMMENT ON VIEW scim.log_summary IS
	'System Log of the last hour and day per workspace, source, status class and scimType: attempts, refusals, the last error and when';
GRANT SELECT ON scim.log_summary TO scim_reader, scim_admin;

-- A workspace's refused requests since a time, newest first, read through
-- the partial index of refusals.  The query is built with the values as
-- literals (quote_literal through format's %L) and planned once: the
-- planner then opens only the partitions between "since" and tomorrow
-- (rows are stamped with the server's clock, never later).  With the values
-- as parameters or expressions (now() - interval '1 day'), every partition
-- would be planned and pruned at run time, which costs more than the lookup.
CREATE FUNCTION scim.recent_errors(workspace text, since timestamptz DEFAULT pg_catalog.now() - interval '1 day')
	RETURNS TABLE (at timestamptz, id bigint, request_id text, source text, method text, path text,
				   status integer, scim_type text, user_name text, detail text)
	LANGUAGE plpgsql STABLE
AS $$
BEGIN
	RETURN QUERY EXECUTE pg_catalog.format(
		'SELECT l.at, l.id, l.request_id, l.source::text, l.method, l.path, l.status, l.scim_type, l.user_name, l.detail'
		'  FROM scim.provisioning_log l'
		' WHERE l.workspace = %L AND l.at >= %L AND l.at < %L AND l.status >= 400'
		' ORDER BY l.at DESC',
		$1, $2, pg_catalog.now() + interval '1 day');
END;
$$;
COMMENT ON FUNCTION scim.recent_errors(text, timestamptz) IS
	'Refused requests of a workspace since a time (default: the last day), newest first, with their request ids';
REVOKE ALL ON FUNCTION scim.recent_errors(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.recent_errors(text, timestamptz) TO scim_reader, scim_admin;

DO $move$
DECLARE
	period	text := coalesce(nullif(pg_catalog.current_setting('scim_provision.log_partition', true), ''), 'day');
	t		timestamptz;
BEGIN
	IF period NOT IN ('day', 'month') THEN
		period := 'day';
	END IF;
	FOR t IN
		SELECT DISTINCT pg_catalog.date_trunc(period, o.at, 'UTC') FROM scim.provisioning_log_0_2_0 o
		UNION
		SELECT g FROM pg_catalog.generate_series(pg_catalog.date_trunc(period, pg_catalog.now(), 'UTC'),
												 pg_catalog.date_trunc(period, pg_catalog.now(), 'UTC') + ('7 ' || period)::interval,
												 ('1 ' || period)::interval) g
		ORDER BY 1
	LOOP
		PERFORM scim._log_create_partitions(t, period);
	END LOOP;
END
$move$;
INSERT INTO scim.provisioning_log (id, at, workspace, source, method, path, resource_id, user_name, status,
								   scim_type, detail, request_id)
SELECT o.id, o.at, o.workspace, o.source, o.method, o.path, o.resource_id, o.user_name, o.status,
	   o.scim_type, o.detail, NULL
  FROM scim.provisioning_log_0_2_0 o;
DROP TABLE scim.provisioning_log_0_2_0;

-- the request id (X-Request-Id) set for the transaction, echoed
CREATE OR REPLACE FUNCTION scim_api.dispatch(jsonb)
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
	request_id	text;
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

		-- the request's correlation id (#12): X-Request-Id as the IdP or nginx
		-- sent it, else a new one; every System Log row of the request has it
		request_id := req_headers ->> 'x-request-id';
		IF request_id IS NULL OR request_id !~ '^[A-Za-z0-9._:@/+=-]{1,200}$' THEN
			request_id := pg_catalog.gen_random_uuid()::text;
		END IF;
		PERFORM pg_catalog.set_config('scim_provision.request_id', request_id, true);

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
		IF request_id IS NOT NULL THEN	-- the failed block's setting was rolled back
			PERFORM pg_catalog.set_config('scim_provision.request_id', request_id, true);
		END IF;
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

	IF request_id IS NOT NULL THEN
		arr := arr || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('X-Request-Id', request_id));
	END IF;

	PERFORM pg_catalog.set_config('response.status', status::text, true);
	PERFORM pg_catalog.set_config('response.headers', arr::text, true);
	RETURN out_body;
END;
$$;

-- (end of System Log lifecycle)


-- ===== Search (#14): multi-valued attributes indexed, deep paging ==========

-- (end of search)


-- ===== OneLogin worker (#16) ===============================================

-- (end of OneLogin worker)


-- ===== Sharding (#11): tokens that name their partition ===================

-- (end of sharding)
