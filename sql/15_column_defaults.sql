-- Columns named workspace default to 'default', like every function's
-- workspace argument (#15.15): a plain INSERT without it lands in the
-- default workspace instead of failing in the users trigger with
-- "e-mail domain ... is not approved for workspace "<NULL>"".  The System
-- Log's workspace stays without a default: NULL there means "no workspace
-- known" (a request refused before its token was checked).
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(14);

SELECT col_default_is('scim', 'users', 'workspace', 'default', 'scim.users.workspace defaults to ''default''');
SELECT col_default_is('scim', 'groups', 'workspace', 'default', 'scim.groups.workspace defaults to ''default''');
SELECT col_default_is('scim', 'approved_domains', 'workspace', 'default', 'scim.approved_domains.workspace defaults to ''default''');
SELECT col_default_is('scim', 'tokens', 'workspace', 'default', 'scim.tokens.workspace defaults to ''default''');
SELECT col_hasnt_default('scim', 'provisioning_log', 'workspace', 'the System Log''s workspace has no default (NULL: not known)');

SELECT lives_ok($$INSERT INTO scim.approved_domains (domain) VALUES ('plain.example')$$,
				'an approved domain inserted without workspace');
SELECT is((SELECT workspace FROM scim.approved_domains WHERE domain = 'plain.example'), 'default', 'it is the default workspace''s');

SELECT lives_ok($$INSERT INTO scim.users (user_name, email) VALUES ('ann@plain.example', 'ann@plain.example')$$,
				'a plain INSERT INTO scim.users (user_name, email) without workspace');
SELECT is((SELECT workspace || ' ' || user_type || ' ' || active FROM scim.users WHERE user_name = 'ann@plain.example'),
		  'default Regular true', 'the user is in the default workspace, with its default user type');
SELECT throws_ok($$INSERT INTO scim.users (user_name, email) VALUES ('bob@elsewhere.example', 'bob@elsewhere.example')$$,
				 '23514', NULL, 'a domain the default workspace has not approved is still refused');
-- the refusal names the workspace the row was checked against
CREATE FUNCTION pg_temp.refusal() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO scim.users (user_name, email) VALUES ('bob@elsewhere.example', 'bob@elsewhere.example');
	RETURN NULL;
EXCEPTION WHEN check_violation THEN
	RETURN SQLERRM;
END;
$$;
SELECT matches(pg_temp.refusal(), 'workspace "default"', 'the refusal names workspace "default", not "<NULL>"');

SELECT throws_ok($$INSERT INTO scim.users (workspace, user_name, email) VALUES (NULL, 'cy@plain.example', 'cy@plain.example')$$,
				 '23502', 'null value in column "workspace" of relation "users" violates not-null constraint',
				 'an explicit NULL workspace is the not-null violation that names the column');

SELECT lives_ok($$INSERT INTO scim.groups (display_name) VALUES ('Plain group')$$, 'a group inserted without workspace');
SELECT is((SELECT workspace FROM scim.groups WHERE display_name = 'Plain group'), 'default', 'the group is in the default workspace');

SELECT * FROM finish();
ROLLBACK;
