
-- ---------------------------------------------------------------------------
-- 75_log_lifecycle.sql: the System Log's lifecycle (#12).  Partitions of
-- scim.provisioning_log created ahead of time, retention per workspace
-- (whole partitions dropped, else old rows deleted in small batches), the
-- maintenance that does both (scim.log_maintain_step, one short transaction
-- per step; CALL scim.maintain() or the background worker runs the steps),
-- and an operator's view: scim.log_summary and scim.recent_errors.
-- See doc/OPERATIONS.md.
-- ---------------------------------------------------------------------------

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
-- its lock at most scim_provision.log_lock_timeout (default 100ms), and so
-- does a delete: a SCIM request queued behind it waits no longer; on a
-- timeout the step answers NULL and the next run retries.  Concurrent steps: one runs, the others
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
	EXCEPTION WHEN lock_not_available THEN
		RAISE LOG 'scim_provision: System Log maintenance did not get its lock in time; the next run retries';
		RETURN NULL;
	END;
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
