-- The users trigger cannot be turned against the server (#15, point 1).
--
-- scim._users_before_write() is C and forms tuples from the column layout of
-- scim.users.  In 0.2.0 PUBLIC could execute it, it found its columns by
-- name only, and a role with USAGE on schema scim (scim_reader) could attach
-- it to its own table whose "version" is text: the insert wrote a bigint
-- where a text pointer belongs and crashed the server (signal 11, every
-- backend restarted).  Now PUBLIC may not execute it, it refuses any
-- relation but scim.users (42809) and any column of another type (42804),
-- and it is not SECURITY DEFINER.  Without the guard the inserts below crash
-- the server, and this file's output ends there.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(9);

DO $$ BEGIN PERFORM scim.approve_domain('guard.example'); END $$;

CREATE ROLE regress_scim_guard NOLOGIN IN ROLE scim_reader;
CREATE SCHEMA regress_guard AUTHORIZATION regress_scim_guard;
-- scim.users' column names, "version" as text
CREATE TABLE regress_guard.users (
	id uuid, workspace text, user_name text, email text, user_type text, active boolean,
	billable boolean, billable_since timestamptz, deactivated_at timestamptz,
	created_at timestamptz, updated_at timestamptz, version text);
ALTER TABLE regress_guard.users OWNER TO regress_scim_guard;

-- ---- a reader cannot attach the trigger ------------------------------------
SET ROLE regress_scim_guard;
SELECT throws_ok(
	$$CREATE TRIGGER hijack BEFORE INSERT OR UPDATE ON regress_guard.users
	  FOR EACH ROW EXECUTE FUNCTION scim._users_before_write()$$,
	'42501', NULL,
	'a scim_reader role cannot attach scim._users_before_write() to its own table (no EXECUTE)');
RESET ROLE;

-- ---- attached anyway (by a superuser), it refuses the relation --------------
CREATE OR REPLACE TRIGGER hijack BEFORE INSERT OR UPDATE ON regress_guard.users
	FOR EACH ROW EXECUTE FUNCTION scim._users_before_write();
SET ROLE regress_scim_guard;
SELECT throws_ok(
	$$INSERT INTO regress_guard.users (id, workspace, user_name, active, version)
	  VALUES (gen_random_uuid(), 'default', 'crash@guard.example', true, 'x')$$,
	'42809', 'scim._users_before_write() fires only on scim.users, not on "regress_guard.users"',
	'the insert that crashed 0.2.0 gets a clean error: the trigger fires on scim.users only');
SELECT throws_ok(
	$$INSERT INTO regress_guard.users (id, workspace, user_name, active, version)
	  VALUES (gen_random_uuid(), 'default', 'crash2@guard.example', false, 'x')$$,
	'42809', NULL,
	'and again in the same session (the cached OID of scim.users is not fooled)');
RESET ROLE;
ALTER TABLE regress_guard.users DISABLE TRIGGER hijack;
INSERT INTO regress_guard.users (id, workspace, user_name, version) VALUES (gen_random_uuid(), 'default', 'u@guard.example', 'x');
ALTER TABLE regress_guard.users ENABLE TRIGGER hijack;
SELECT throws_ok(
	$$UPDATE regress_guard.users SET version = 'y'$$,
	'42809', NULL, 'an UPDATE of another table is refused as well (even by a superuser)');
SELECT lives_ok(
	$$INSERT INTO scim.users (workspace, user_name) VALUES ('default', 'fine@guard.example')$$,
	'scim.users itself still works in the same session');
SELECT is((SELECT version FROM scim.users WHERE user_name = 'fine@guard.example'), 1::bigint,
	'and the trigger still set its version');

-- ---- a column of scim.users of another type is refused, not trusted ---------
SAVEPOINT retype;
ALTER TABLE scim.users ALTER COLUMN version TYPE numeric;
SELECT throws_ok(
	$$INSERT INTO scim.users (workspace, user_name) VALUES ('default', 'retyped@guard.example')$$,
	'42804', 'column "version" of scim.users has type numeric, not bigint',
	'a column of another type than the trigger writes is refused (42804)');
ROLLBACK TO SAVEPOINT retype;

-- ---- the function's own guards ---------------------------------------------
SELECT ok(NOT p.prosecdef, 'scim._users_before_write() is not SECURITY DEFINER')
FROM pg_proc p WHERE p.oid = 'scim._users_before_write()'::regprocedure;
SELECT ok(NOT has_function_privilege('scim_reader', 'scim._users_before_write()', 'EXECUTE')
		  AND NOT has_function_privilege('scim_client', 'scim._users_before_write()', 'EXECUTE'),
	'neither scim_reader nor scim_client (nor PUBLIC) may execute it');

SELECT * FROM finish();
ROLLBACK;
