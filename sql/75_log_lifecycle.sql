-- The System Log's lifecycle (#12): partitions ahead, rows in the right
-- partition, retention per workspace (whole partitions dropped, else expired
-- rows deleted in batches), maintenance in short steps, the request id on
-- every log row (router, fast path, dispatch's own answers) and echoed, and
-- the operator's view (scim.log_summary, scim.recent_errors).  Maintenance
-- commits, so this file runs outside a transaction block.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_STOP true
SELECT plan(47);

SET scim_provision.log_partitions_ahead = 7;
CALL scim.maintain();

-- ---- partitions ahead --------------------------------------------------------
SELECT is((SELECT count(*) FROM scim.log_partitions() p
		   WHERE p.upper_bound > now() AND p.lower_bound <= now() + interval '7 days'), 8::bigint,
	'maintenance made the partitions of today and the next 7 days');
SELECT is((SELECT count(*) FROM scim.log_partitions() p
		   WHERE p.upper_bound - p.lower_bound <> interval '1 day'), 0::bigint,
	'a partition per day by default');
SELECT ok(NOT EXISTS (SELECT FROM scim.log_partitions() a JOIN scim.log_partitions() b
					  ON a.partition <> b.partition AND a.lower_bound < b.upper_bound AND b.lower_bound < a.upper_bound),
	'no two partitions overlap');
SELECT is((SELECT string_agg(DISTINCT n.nspname || ' ' || pg_get_userbyid(c.relowner) || ' ' || coalesce(c.relacl::text, '-'), ',')
		   FROM scim.log_partitions() p JOIN pg_class c ON c.oid = p.partition JOIN pg_namespace n ON n.oid = c.relnamespace),
	'scim_log ' || (SELECT pg_get_userbyid(e.extowner) FROM pg_extension e WHERE e.extname = 'scim_provision') || ' -',
	'partitions live in scim_log, are owned by the extension owner and grant nothing');
SELECT ok(NOT EXISTS (SELECT FROM scim.log_partitions() p JOIN pg_depend d ON d.classid = 'pg_class'::regclass
					  AND d.objid = p.partition AND d.deptype = 'e'),
	'dated partitions do not belong to the extension (pg_dump dumps them with their rows)');
SELECT is((SELECT count(*) FROM scim.log_partitions() p, pg_index x WHERE x.indrelid = p.partition),
		  3 * (SELECT count(*) FROM scim.log_partitions()),
	'every partition has its primary key and two indexes');
SELECT is(scim.log_maintain_step(), NULL::text, 'nothing left to do: a step says so');

-- ---- rows land in the right partition -----------------------------------------
SELECT scim.log_attempt('scim', 'GET', '/lc/now', NULL, NULL, 200, NULL, NULL, 'default') AS now_id \gset
SELECT is((SELECT l.tableoid::regclass::text FROM scim.provisioning_log l WHERE l.id = :now_id),
		  'scim_log.provisioning_log_' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD'),
	'a log row lands in the partition of its day');
SELECT is((SELECT count(*) FROM scim.provisioning_log l WHERE l.id = :now_id), 1::bigint, 'one row per attempt');

-- a time no dated partition covers: the DEFAULT partition, then moved
SET scim_provision.log_partitions_ahead = 1;
INSERT INTO scim.provisioning_log (at, workspace, source, status, path)
VALUES (now() + interval '40 days', 'default', 'scim', 200, '/lc/future');
SELECT is((SELECT l.tableoid::regclass::text FROM scim.provisioning_log l WHERE l.path = '/lc/future'),
	'scim_log.provisioning_log_default', 'a row for a time without a partition goes to the DEFAULT partition');
SELECT matches(scim.log_maintain_step(), '^created scim_log\.provisioning_log_[0-9]{8}$',
	'maintenance makes the partition of a row in the DEFAULT partition');
SELECT is((SELECT l.tableoid::regclass::text FROM scim.provisioning_log l WHERE l.path = '/lc/future'),
		  'scim_log.provisioning_log_' || to_char((now() + interval '40 days') AT TIME ZONE 'UTC', 'YYYYMMDD'),
	'and moves the row into it');
SELECT is((SELECT count(*) FROM scim_log.provisioning_log_default), 0::bigint, 'the DEFAULT partition is empty again');
DELETE FROM scim.provisioning_log WHERE path = '/lc/future';

-- ---- retention -------------------------------------------------------------------
SELECT scim.create_workspace('lc_a');
SELECT scim.create_workspace('lc_b');
SELECT scim.approve_domain('example.com', 'lc_a');
SELECT scim.set_log_retention(interval '10 days', 'lc_a');
SELECT scim.set_log_retention(NULL, 'lc_b');
SELECT is((SELECT string_agg(workspace || '=' || coalesce((retention = interval '10 days')::text, 'forever'), ',' ORDER BY workspace) FROM scim.log_retention),
	'lc_a=true,lc_b=forever', 'set_log_retention records per workspace (NULL: forever)');
SELECT throws_ok($$SELECT scim.set_log_retention(interval '-1 day', 'lc_a')$$, '22023',
	'a log retention must be positive', 'a retention must be positive');
SELECT throws_ok($$SELECT scim.set_log_retention(interval '1 day', 'lc_nowhere')$$, '42704',
	'workspace "lc_nowhere" does not exist', 'a retention is for an existing workspace');

-- old rows (they land in the DEFAULT partition; maintenance makes their partitions)
INSERT INTO scim.provisioning_log (at, workspace, source, status, path)
SELECT now() - d.age, d.ws, 'scim', 200, '/lc/' || d.tag
FROM (VALUES
	(interval '40 days', 'lc_a', 'a40-1'), (interval '40 days', 'lc_a', 'a40-2'),	-- only lc_a: dropped
	(interval '30 days', 'lc_a', 'a30-1'), (interval '30 days 1 minute', 'lc_a', 'a30-2'),
	(interval '30 days 2 minutes', 'lc_a', 'a30-3'), (interval '30 days 3 minutes', 'lc_a', 'a30-4'),
	(interval '30 days 4 minutes', 'lc_a', 'a30-5'),
	(interval '30 days', 'lc_b', 'b30'),											-- lc_b keeps it
	(interval '20 days', 'lc_a', 'a20'), (interval '20 days', 'default', 'd20'),	-- default keeps 90 days
	(interval '10 days 1 hour', 'lc_a', 'a10-older'),								-- just past the edge
	(interval '10 days' - interval '1 hour', 'lc_a', 'a10-younger'),					-- just inside it
	(interval '100 days', 'lc_b', 'b100'),
	(interval '95 days', NULL, 'none95'),											-- no workspace: default's 90 days
	(interval '95 days', 'default', 'd95')) AS d(age, ws, tag);
SELECT is((SELECT count(*) FROM scim_log.provisioning_log_default), 15::bigint, 'old rows wait in the DEFAULT partition');

-- step by step, with a batch of 2: partitions first, then drops, then batches
CREATE TEMP TABLE steps (n serial, did text);
DO $$
DECLARE
	did text;
BEGIN
	LOOP
		did := scim.log_maintain_step(2);
		EXIT WHEN did IS NULL;
		INSERT INTO steps (did) VALUES (did);
	END LOOP;
END
$$;
SELECT is((SELECT count(*) FROM scim_log.provisioning_log_default), 0::bigint, 'every old row went to its partition');
SELECT ok((SELECT bool_and(did ~ '^(created|dropped|deleted [12] rows of workspace )') FROM steps),
	'each step did one thing: created, dropped, or deleted at most a batch');
SELECT cmp_ok((SELECT count(*) FROM steps WHERE did ~ '^deleted'), '>=', 3::bigint,
	'the 5 expired rows of lc_a in the partition lc_b keeps took batches of at most 2');
SELECT is((SELECT string_agg(substr(path, 5), ',' ORDER BY path) FROM scim.provisioning_log WHERE path LIKE '/lc/%'),
	'a10-younger,b100,b30,d20,now', 'exactly the expired rows are gone');
SELECT is((SELECT count(*) FROM scim.log_partitions() p
		   WHERE p.lower_bound = date_trunc('day', (now() - interval '40 days') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
	0::bigint, 'the partition only lc_a had rows in was dropped');
SELECT is((SELECT count(*) FROM scim.log_partitions() p
		   WHERE p.lower_bound = date_trunc('day', (now() - interval '95 days') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
	0::bigint, 'a partition past 90 days of the default workspace and of rows without workspace was dropped');
SELECT is((SELECT count(*) FROM scim.log_partitions() p
		   WHERE p.lower_bound = date_trunc('day', (now() - interval '30 days') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
	1::bigint, 'the partition lc_b still needs is kept (its lc_a rows deleted)');
SELECT ok(EXISTS (SELECT FROM steps WHERE did ~ '^dropped') AND NOT EXISTS (SELECT FROM steps s1, steps s2
		  WHERE s1.n < s2.n AND s1.did ~ '^deleted' AND s2.did !~ '^deleted'),
	'partitions are dropped before rows are deleted');

-- a workspace that keeps everything
SELECT scim.set_log_retention(NULL, 'lc_a');
INSERT INTO scim.provisioning_log (at, workspace, source, status, path)
VALUES (now() - interval '300 days', 'lc_a', 'scim', 200, '/lc/a300');
CALL scim.maintain();
SELECT is((SELECT count(*) FROM scim.provisioning_log WHERE path = '/lc/a300'), 1::bigint,
	'a workspace whose retention is NULL keeps its rows forever');
SELECT scim.set_log_retention(interval '90 days', 'lc_a');
CALL scim.maintain();
SELECT is((SELECT count(*) FROM scim.provisioning_log WHERE path = '/lc/a300'), 0::bigint,
	'and loses them once it has a retention again');

-- ---- month partitions -------------------------------------------------------------
SET scim_provision.log_partition = 'month';
SET scim_provision.log_partitions_ahead = 2;
CALL scim.maintain();
SELECT ok(EXISTS (SELECT FROM scim.log_partitions() p
				  WHERE p.lower_bound = date_trunc('month', (now() + interval '2 months') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
					AND p.upper_bound = p.lower_bound + interval '1 month'),
	'scim_provision.log_partition = month: whole months ahead');
SELECT ok(NOT EXISTS (SELECT FROM scim.log_partitions() a JOIN scim.log_partitions() b
					  ON a.partition <> b.partition AND a.lower_bound < b.upper_bound AND b.lower_bound < a.upper_bound),
	'switching from days to months overlaps nothing');
SELECT ok(NOT EXISTS (SELECT FROM scim.log_partitions() a
					  WHERE a.upper_bound > now() AND a.upper_bound < now() + interval '2 months'
						AND NOT EXISTS (SELECT FROM scim.log_partitions() b WHERE b.lower_bound = a.upper_bound)),
	'and leaves no gap: the days already made are followed by the rest of the month');
RESET scim_provision.log_partition;
RESET scim_provision.log_partitions_ahead;

-- ---- request id ----------------------------------------------------------------------
SELECT 'Bearer ' || scim.create_token('idp', 'lc_a') AS tok \gset
SELECT status FROM scim.handle('POST', '/Users', NULL, jsonb_build_object('authorization', :'tok'),
	'{"userName":"lc.ann@example.com"}') \g /dev/null
BEGIN;
SELECT set_config('scim_provision.request_id', 'req-fast-1', true) \g /dev/null
SELECT status FROM scim.handle('GET', '/Users', 'filter=userName%20eq%20%22lc.ann%40example.com%22',
	jsonb_build_object('authorization', :'tok')) \g /dev/null
COMMIT;
SELECT is((SELECT request_id FROM scim.provisioning_log WHERE workspace = 'lc_a' AND method = 'GET' ORDER BY id DESC LIMIT 1),
	'req-fast-1', 'the fast path''s log row has the request id');
BEGIN;
SELECT set_config('scim_provision.request_id', 'req-refused-1', true) \g /dev/null
SELECT status FROM scim.handle('POST', '/Users', NULL, jsonb_build_object('authorization', :'tok'),
	'{"userName":"not-an-email"}') \g /dev/null
COMMIT;
SELECT is((SELECT status || ' ' || request_id FROM scim.provisioning_log WHERE workspace = 'lc_a' ORDER BY id DESC LIMIT 1),
	'400 req-refused-1', 'a refused request leaves its row, with the request id');
SELECT is((SELECT l.tableoid::regclass::text FROM scim.provisioning_log l WHERE l.request_id = 'req-refused-1'),
		  'scim_log.provisioning_log_' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD'),
	'in today''s partition');
SELECT is((SELECT count(*) FROM scim.provisioning_log WHERE request_id = 'req-refused-1'), 1::bigint,
	'one row for the refused attempt');

-- through PostgREST's contract: X-Request-Id kept, echoed; generated when absent or unusable
CREATE FUNCTION pg_temp.rpc(req_headers jsonb, OUT status integer, OUT headers jsonb, OUT rid text)
	LANGUAGE plpgsql
AS $$
DECLARE
	body jsonb;
BEGIN
	PERFORM set_config('role', 'scim_client', true), set_config('request.headers', req_headers::text, true);
	EXECUTE 'SELECT scim_api.dispatch(''{}''::jsonb)' INTO body;
	status := current_setting('response.status')::integer;
	headers := current_setting('response.headers')::jsonb;
	SELECT h ->> 'X-Request-Id' INTO rid FROM jsonb_array_elements(headers) h WHERE h ? 'X-Request-Id';
	PERFORM set_config('role', 'none', true);
END;
$$;
BEGIN;
SELECT * FROM pg_temp.rpc(jsonb_build_object('x-scim-method', 'GET', 'x-scim-token', :'tok',
	'x-scim-uri', '/scim/v2/Users?filter=userName%20eq%20%22lc.ann%40example.com%22', 'x-request-id', 'idp-abc-123')) \gset r1_
COMMIT;
SELECT is(:'r1_status' || ' ' || :'r1_rid', '200 idp-abc-123', 'X-Request-Id is echoed');
SELECT is((SELECT count(*) FROM scim.provisioning_log WHERE request_id = 'idp-abc-123'), 1::bigint,
	'and stored on the request''s one log row');
BEGIN;
SELECT * FROM pg_temp.rpc(jsonb_build_object('x-scim-method', 'GET', 'x-scim-token', :'tok',
	'x-scim-uri', '/scim/v2/Users/not-a-uuid')) \gset r2_
COMMIT;
SELECT matches(:'r2_rid'::text, '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$', 'without X-Request-Id one is generated');
SELECT is((SELECT status FROM scim.provisioning_log WHERE request_id = :'r2_rid'), :'r2_status'::integer,
	'and stored on the log row of that answer');
BEGIN;
SELECT * FROM pg_temp.rpc(jsonb_build_object('x-scim-method', 'GET', 'x-scim-uri', '/scim/v2/Users',
	'x-request-id', repeat('x', 201))) \gset r3_
COMMIT;
SELECT ok(:'r3_rid' <> repeat('x', 201) AND (SELECT count(*) FROM scim.provisioning_log WHERE request_id = :'r3_rid') = 1,
	'an unusable X-Request-Id (too long) is replaced, and the 401 is logged with the new one');
BEGIN;
SELECT * FROM pg_temp.rpc(jsonb_build_object('x-request-id', 'no-method-1')) \gset r4_
COMMIT;
SELECT is((SELECT status || ' ' || source FROM scim.provisioning_log WHERE request_id = 'no-method-1'), '400 scim',
	'a request dispatch answers itself (no X-Scim-Method) is logged with its request id');

-- ---- the operator's view ---------------------------------------------------------------
SELECT is((SELECT attempts_last_day || ' ' || refusals_last_day || ' ' || (last_error IS NOT NULL)
		   FROM scim.log_summary WHERE workspace = 'lc_a' AND status_class = '4xx' AND scim_type = 'invalidValue'),
	'1 1 true', 'log_summary counts the refusals of a workspace with the last error');
SELECT is((SELECT sum(attempts_last_hour)::bigint FROM scim.log_summary WHERE workspace = 'lc_a'),
		  (SELECT count(*) FROM scim.provisioning_log WHERE workspace = 'lc_a' AND at > now() - interval '1 hour'),
	'log_summary: attempts of the last hour');
SELECT is((SELECT string_agg(status || ' ' || coalesce(request_id, '-'), ',') FROM scim.recent_errors('lc_a')),
	'404 ' || :'r2_rid' || ',400 req-refused-1', 'recent_errors: the refusals of a workspace, newest first');
SELECT is((SELECT count(*) FROM scim.recent_errors('lc_a', now() + interval '1 minute')), 0::bigint,
	'recent_errors since a later time: none');
SET ROLE scim_reader;
SELECT is((SELECT count(*) FROM scim.recent_errors('lc_a')), 2::bigint, 'scim_reader reads recent_errors');
SELECT throws_ok('SELECT count(*) FROM scim_log.provisioning_log_default', '42501', NULL,
	'scim_reader reads the log through scim.provisioning_log only, not its partitions');
RESET ROLE;
SELECT ok(NOT has_function_privilege('scim_reader', 'scim.set_log_retention(interval, text)', 'EXECUTE')
		  AND has_function_privilege('scim_admin', 'scim.set_log_retention(interval, text)', 'EXECUTE')
		  AND NOT has_function_privilege('scim_client', 'scim.log_maintain_step(integer)', 'EXECUTE'),
	'retention and maintenance are for scim_admin');

SELECT * FROM finish();
