-- Limits are the administrator's (#15, point 5): no scim_provision setting
-- can be changed by a plain session.  In 0.2.0 filter_max_length and
-- filter_max_depth were PGC_USERSET, so a scim_client login could lift them
-- (one 30k-term filter then took 165 s).  Every setting is now PGC_SUSET
-- (sessions of a superuser, ALTER ROLE/DATABASE SET by one, the
-- configuration), PGC_SIGHUP or PGC_POSTMASTER; the toggles fast_path and
-- base_url are superuser-only too.  A setting a later change adds is covered
-- by the first two assertions without editing this file.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(21);

SELECT is_empty($$
	SELECT name, context FROM pg_settings
	WHERE name LIKE 'scim\_provision.%' AND context NOT IN ('superuser', 'sighup', 'postmaster')$$,
	'every scim_provision setting is superuser, sighup or postmaster');

-- every setting, as each role that reaches the extension: SET is refused
CREATE TEMP TABLE refused (role name, setting text, sqlstate text);
GRANT INSERT ON refused TO PUBLIC;
DO $$
DECLARE
	r	name;
	s	record;
BEGIN
	FOREACH r IN ARRAY ARRAY['scim_client', 'scim_reader', 'scim_admin']::name[] LOOP
		FOR s IN SELECT name, setting FROM pg_settings WHERE name LIKE 'scim\_provision.%' ORDER BY name LOOP
			EXECUTE format('SET LOCAL ROLE %I', r);
			BEGIN
				PERFORM set_config(s.name, s.setting, true);
				INSERT INTO refused VALUES (r, s.name, 'accepted');
			EXCEPTION WHEN insufficient_privilege OR cant_change_runtime_param THEN
				INSERT INTO refused VALUES (r, s.name, SQLSTATE);
			END;
			RESET ROLE;
		END LOOP;
	END LOOP;
END
$$;
SELECT is_empty($$SELECT role, setting FROM refused WHERE sqlstate = 'accepted'$$,
	'scim_client, scim_reader and scim_admin can change no scim_provision setting');
SELECT cmp_ok((SELECT count(DISTINCT setting) FROM refused), '>=', 18::bigint,
	'(the loop saw every setting)');

-- the limits named in the issue, one by one, as scim_client and scim_reader
SET LOCAL ROLE scim_client;
SELECT throws_ok($$SET scim_provision.filter_max_length = 1048576$$, '42501', NULL,
	'scim_client cannot raise filter_max_length');
SELECT throws_ok($$SET scim_provision.filter_max_depth = 1000$$, '42501', NULL,
	'scim_client cannot raise filter_max_depth');
SELECT throws_ok($$SET scim_provision.bulk_max_operations = 100000$$, '42501', NULL,
	'scim_client cannot raise bulk_max_operations');
SELECT throws_ok($$SET scim_provision.bulk_max_payload = 268435456$$, '42501', NULL,
	'scim_client cannot raise bulk_max_payload');
SELECT throws_ok($$SET scim_provision.max_results = 100000$$, '42501', NULL,
	'scim_client cannot raise max_results');
SELECT throws_ok($$SET scim_provision.cursor_timeout = 604800$$, '42501', NULL,
	'scim_client cannot raise cursor_timeout');
SELECT throws_ok($$SET scim_provision.fast_path = off$$, '42501', NULL,
	'scim_client cannot switch the fast path');
SELECT throws_ok($$SET scim_provision.base_url = 'https://evil.example'$$, '42501', NULL,
	'scim_client cannot set base_url');
RESET ROLE;
SET LOCAL ROLE scim_reader;
SELECT throws_ok($$SET scim_provision.filter_max_length = 1048576$$, '42501', NULL,
	'scim_reader cannot raise filter_max_length');
SELECT throws_ok($$SELECT set_config('scim_provision.filter_max_depth', '1000', false)$$, '42501', NULL,
	'scim_reader cannot raise filter_max_depth through set_config either');
SELECT throws_ok($$SET scim_provision.max_results = 100000$$, '42501', NULL,
	'scim_reader cannot raise max_results');
RESET ROLE;
SELECT is(current_setting('scim_provision.filter_max_length'), '8kB', 'filter_max_length kept its default');

-- the superuser can
SET LOCAL scim_provision.filter_max_length = 100;
SELECT is(current_setting('scim_provision.filter_max_length'), '100B', 'a superuser sets filter_max_length');
SET LOCAL scim_provision.filter_max_depth = 3;
SELECT is(current_setting('scim_provision.filter_max_depth'), '3', 'a superuser sets filter_max_depth');
SET LOCAL scim_provision.max_results = 7;
SELECT is(current_setting('scim_provision.max_results'), '7', 'a superuser sets max_results');
SET LOCAL scim_provision.bulk_max_operations = 5;
SELECT is(current_setting('scim_provision.bulk_max_operations'), '5', 'a superuser sets bulk_max_operations');
-- and the limit it set holds for what the extension does
SELECT throws_ok($$SELECT scim.parse_filter('((((userName eq "a"))))')$$, NULL, NULL,
	'the superuser''s lowered filter_max_depth is enforced');
SELECT lives_ok($$SELECT scim.parse_filter('userName eq "a"')$$, 'a shallow filter still parses');

SELECT * FROM finish();
ROLLBACK;
