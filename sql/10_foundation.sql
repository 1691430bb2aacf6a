-- Foundation: domain rules, states set by triggers, tokens, System Log, privileges.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(86);

-- ---- e-mail domain parsing ------------------------------------------------
SELECT is(scim.email_domain('John@Example.COM'), 'example.com', 'domain is lower-cased');
SELECT is(scim.email_domain(E'  john@example.com \t\n'), 'example.com', 'surrounding white space is trimmed');
SELECT is(scim.email_domain('a@b@example.com'), NULL, 'two @ is malformed');
SELECT is(scim.email_domain('@example.com'), NULL, 'empty local part is malformed');
SELECT is(scim.email_domain('john.example.com'), NULL, 'no @ is malformed');
SELECT is(scim.email_domain('john@'), NULL, 'empty domain is malformed');
SELECT is(scim.email_domain('john@example.com.'), NULL, 'trailing dot is malformed');
SELECT is(scim.email_domain('john@example..com'), NULL, 'empty label is malformed');
SELECT is(scim.email_domain('john@-example.com'), NULL, 'label starting with a hyphen is malformed');
SELECT is(scim.email_domain('john@example-.com'), NULL, 'label ending with a hyphen is malformed');
SELECT is(scim.email_domain('john@exa_mple.com'), NULL, 'underscore in a label is malformed');
SELECT is(scim.email_domain('john@localhost'), NULL, 'a single-label domain is malformed');
SELECT is(scim.email_domain('jo hn@example.com'), NULL, 'white space inside the address is malformed');
SELECT is(scim.email_domain('john@' || repeat('a', 64) || '.com'), NULL, 'a 64-character label is malformed');
SELECT is(scim.email_domain(repeat('j', 65) || '@example.com'), NULL, 'a 65-byte local part is malformed');
SELECT is(scim.email_domain(''), NULL, 'empty string is malformed');
SELECT is(scim.email_domain(NULL), NULL, 'NULL gives NULL');
SELECT is(scim.email_domain('j@XN--Bcher-Kva.Example'), 'xn--bcher-kva.example', 'punycode domains are accepted and lower-cased');
SELECT is(scim.email_domain('j@bücher.example'), NULL, 'a Unicode (U-label) domain is malformed: punycode is required');

-- ---- approving domains ----------------------------------------------------
SELECT lives_ok($$SELECT scim.create_workspace('fnd')$$, 'create a workspace');
SELECT lives_ok($$SELECT scim.approve_domain('  @Example.COM ', 'fnd')$$, 'approve_domain normalises case, white space and a leading @');
SELECT is((SELECT domain FROM scim.approved_domains WHERE workspace = 'fnd'), 'example.com', 'the domain is stored normalised');
SELECT throws_ok($$SELECT scim.approve_domain('example.com.', 'fnd')$$, '22023', NULL, 'approve_domain refuses a trailing dot');
SELECT throws_ok($$SELECT scim.approve_domain('bücher.example', 'fnd')$$, '22023', NULL, 'approve_domain refuses a Unicode domain (punycode required)');
SELECT throws_ok($$SELECT scim.approve_domain('a@b.com', 'fnd')$$, '22023', NULL, 'approve_domain refuses an address');
SELECT throws_ok($$SELECT scim.approve_domain('example.com', 'no-such-ws')$$, '42704', NULL, 'approve_domain needs an existing workspace');
SELECT ok(scim.domain_approved('Ann@EXAMPLE.com', 'fnd'), 'an approved domain, any case');
SELECT ok(scim.domain_approved(' ann@example.com ', 'fnd'), 'an approved domain with surrounding white space');
SELECT ok(NOT scim.domain_approved('ann@sub.example.com', 'fnd'), 'a subdomain is not approved without the opt-in');
SELECT ok(NOT scim.domain_approved('ann@example.com', 'default'), 'approval is per workspace');
SELECT ok(NOT scim.domain_approved('ann@example.com.', 'fnd'), 'a trailing dot is never approved');
SELECT ok(NOT scim.domain_approved('ann@@example.com', 'fnd'), 'two @ is never approved');
SELECT ok(NOT scim.domain_approved(NULL, 'fnd'), 'NULL is never approved');
SELECT ok(NOT scim.domain_approved('', 'fnd'), 'empty is never approved');
SELECT ok(NOT scim.domain_approved('ann@badexample.com', 'fnd'), 'a suffix that is not a parent domain is not approved');
SELECT lives_ok($$SELECT scim.approve_domain('corp.example.org', 'fnd', include_subdomains => true)$$, 'approve a domain with its subdomains');
SELECT ok(scim.domain_approved('ann@eu.corp.example.org', 'fnd'), 'a subdomain is approved with the opt-in');
SELECT ok(scim.domain_approved('ann@a.b.corp.example.org', 'fnd'), 'a deeper subdomain is approved with the opt-in');
SELECT ok(scim.domain_approved('ann@corp.example.org', 'fnd'), 'the domain itself stays approved with the opt-in');
SELECT ok(NOT scim.domain_approved('ann@example.org', 'fnd'), 'a parent of an approved domain is not approved');
SELECT lives_ok($$SELECT scim.approve_domain('xn--bcher-kva.example', 'fnd')$$, 'approve a punycode domain');
SELECT ok(scim.domain_approved('ann@XN--BCHER-KVA.example', 'fnd'), 'a punycode address on it is approved');

-- ---- triggers: billable, deactivation, version, user type -------------------
INSERT INTO scim.users (workspace, user_name, email) VALUES ('fnd', 'ann@example.com', 'ann@example.com');
SELECT results_eq($$SELECT billable, billable_since IS NOT NULL, deactivated_at IS NULL, version, user_type FROM scim.users WHERE workspace = 'fnd' AND user_name = 'ann@example.com'$$,
	$$VALUES (true, true, true, 1::bigint, 'Regular')$$, 'a new active user is billable at once, version 1, user type Regular');
UPDATE scim.users SET billable = false, billable_since = NULL WHERE user_name = 'ann@example.com';
SELECT is((SELECT billable FROM scim.users WHERE user_name = 'ann@example.com'), true, 'a direct edit of billable is ignored: the trigger owns it');
UPDATE scim.users SET active = false WHERE user_name = 'ann@example.com';
SELECT results_eq($$SELECT active, billable, deactivated_at IS NOT NULL FROM scim.users WHERE user_name = 'ann@example.com'$$,
	$$VALUES (false, false, true)$$, 'deactivation sets deactivated_at and releases the seat');
SELECT is((SELECT count(*)::int FROM scim.users WHERE user_name = 'ann@example.com'), 1, 'a deactivated user keeps its row');
SELECT is((SELECT version FROM scim.users WHERE user_name = 'ann@example.com'), 2::bigint, 'version moves on a change (the ignored edit did not change the row)');
UPDATE scim.users SET billable_since = '2000-01-01' WHERE user_name = 'ann@example.com';
UPDATE scim.users SET active = true WHERE user_name = 'ann@example.com';
SELECT results_eq($$SELECT billable, deactivated_at IS NULL, billable_since > '2000-01-01' FROM scim.users WHERE user_name = 'ann@example.com'$$,
	$$VALUES (true, true, true)$$, 'reactivation clears deactivated_at and makes the user billable again with a new billable_since');
INSERT INTO scim.users (workspace, user_name, active) VALUES ('fnd', 'bob@example.com', false);
SELECT results_eq($$SELECT billable, deactivated_at IS NOT NULL FROM scim.users WHERE user_name = 'bob@example.com'$$,
	$$VALUES (false, true)$$, 'a user created inactive is not billable and is deactivated');
INSERT INTO scim.users (workspace, user_name, user_type) VALUES ('fnd', 'cy@example.com', 'collaborator');
SELECT is((SELECT user_type FROM scim.users WHERE user_name = 'cy@example.com'), 'Collaborator', 'user type is matched case-insensitively and stored in canonical case');
SELECT throws_ok($$INSERT INTO scim.users (workspace, user_name, user_type) VALUES ('fnd', 'dee@example.com', 'Admin')$$,
	'23514', 'invalid user type "Admin"', 'any other user type is refused with 23514');
SELECT lives_ok($$SELECT scim.set_default_user_type('External', 'fnd')$$, 'change the workspace default user type');
INSERT INTO scim.users (workspace, user_name) VALUES ('fnd', 'eve@example.com');
SELECT is((SELECT user_type FROM scim.users WHERE user_name = 'eve@example.com'), 'External', 'a user without a type gets the workspace default');
UPDATE scim.users SET user_type = NULL, title = 'CTO' WHERE user_name = 'cy@example.com';
SELECT is((SELECT user_type FROM scim.users WHERE user_name = 'cy@example.com'), 'Collaborator', 'an update without a user type keeps the stored one');
SELECT throws_ok($$UPDATE scim.users SET workspace = 'default' WHERE user_name = 'cy@example.com'$$, '23514', NULL, 'a user cannot move to another workspace');

-- ---- approved-domain gate on every writer ---------------------------------
SELECT throws_ok($$INSERT INTO scim.users (workspace, user_name) VALUES ('fnd', 'mallory@evil.com')$$,
	'23514', 'e-mail domain of "mallory@evil.com" is not approved for workspace "fnd"', 'an insert on a non-approved domain is refused with 23514');
SELECT throws_ok($$INSERT INTO scim.users (workspace, user_name, email) VALUES ('fnd', 'mallory', 'mallory@evil.com')$$,
	'23514', NULL, 'a non-approved primary email is refused');
SELECT throws_ok($$INSERT INTO scim.users (workspace, user_name) VALUES ('fnd', 'mallory')$$,
	'23514', 'user "mallory" has no e-mail address', 'a user with no e-mail at all is refused');
SELECT throws_ok($$UPDATE scim.users SET user_name = 'ann@evil.com' WHERE user_name = 'ann@example.com'$$,
	'23514', NULL, 'a plain UPDATE of user_name onto a non-approved domain is refused');
SELECT throws_ok($$UPDATE scim.users SET email = 'ann@evil.com' WHERE user_name = 'ann@example.com'$$,
	'23514', NULL, 'a plain UPDATE of email onto a non-approved domain is refused');
SELECT is((SELECT count(*)::int FROM scim.users WHERE workspace = 'fnd' AND (user_name ILIKE '%evil%' OR email ILIKE '%evil%' OR user_name = 'mallory')), 0, 'nothing refused was written');
SELECT throws_ok($$INSERT INTO scim.users (workspace, user_name) VALUES ('fnd', 'ANN@example.com')$$,
	'23505', NULL, 'userName is unique per workspace, case-insensitively');

-- ---- tokens ---------------------------------------------------------------
CREATE TEMP TABLE tok AS SELECT scim.create_token('okta', 'fnd') AS t;
SELECT matches((SELECT t FROM tok), '^scim_[0-9a-f]{24}_[A-Za-z0-9_-]{43}$', 'a token has a 24-hex id and a 256-bit base64url secret');
SELECT is((SELECT count(*)::int FROM scim.tokens t, tok WHERE t.secret_hash = sha256(convert_to(tok.t, 'UTF8'))), 1, 'only the SHA-256 of the token is stored');
SELECT is((SELECT count(*)::int FROM scim.tokens r, tok WHERE position(substr(tok.t, 31) IN r::text) > 0), 0, 'the secret appears in no column of scim.tokens');
SELECT is(scim.authenticate((SELECT t FROM tok)), 'fnd', 'a valid token authenticates to its workspace');
SELECT is(scim.authenticate('Bearer ' || (SELECT t FROM tok)), 'fnd', 'an Authorization header value works too');
SELECT isnt((SELECT last_used_at FROM scim.tokens WHERE workspace = 'fnd' AND name = 'okta'), NULL, 'authentication records last_used_at');
SELECT is(scim.authenticate(left((SELECT t FROM tok), -1) || 'x'), NULL, 'a wrong secret is refused');
SELECT is(scim.authenticate('scim_000000000000000000000000_' || repeat('A', 43)), NULL, 'an unknown token is refused');
SELECT is(scim.authenticate('garbage'), NULL, 'a malformed token is refused');
SELECT throws_ok($$SELECT scim.create_token('okta', 'fnd')$$, '23505', NULL, 'token names are unique among active tokens');
SELECT lives_ok($$SELECT scim.revoke_token('okta', 'fnd')$$, 'revoke a token');
SELECT is(scim.authenticate((SELECT t FROM tok)), NULL, 'a revoked token is refused');

-- ---- System Log: a refused attempt keeps its log row -------------------------
DO $$
BEGIN
	BEGIN
		INSERT INTO scim.users (workspace, user_name) VALUES ('fnd', 'zed@evil.com');
	EXCEPTION WHEN check_violation THEN
		PERFORM scim.log_attempt('scim', 'POST', '/Users', NULL, 'zed@evil.com', 400, 'invalidValue', SQLERRM, 'fnd');
	END;
END
$$;
SELECT results_eq($$SELECT status, scim_type, user_name FROM scim.provisioning_log WHERE workspace = 'fnd' AND user_name = 'zed@evil.com'$$,
	$$VALUES (400, 'invalidValue', 'zed@evil.com')$$, 'the refused attempt has its log row, after its rollback');
SELECT is((SELECT count(*)::int FROM scim.users WHERE user_name = 'zed@evil.com'), 0, 'and the refused user was not written');

-- ---- deletion policy --------------------------------------------------------
SELECT is((SELECT deletion_policy FROM scim.workspaces WHERE name = 'default'), 'deactivate', 'the default deletion policy is deactivate');
SELECT lives_ok($$SELECT scim.set_deletion_policy('Delete', 'fnd')$$, 'set the delete policy');
SELECT throws_ok($$SELECT scim.set_deletion_policy('purge', 'fnd')$$, '22023', NULL, 'an unknown policy is refused');

-- ---- privileges ------------------------------------------------------------
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname = 'scim' AND p.prosecdef AND NOT coalesce(p.proconfig::text LIKE '%search_path=%', false)), 0,
	'every SECURITY DEFINER function pins search_path');
SELECT ok(NOT has_schema_privilege('scim_client', 'scim', 'USAGE'), 'scim_client cannot use schema scim');
SELECT ok(NOT has_schema_privilege('public', 'scim', 'USAGE'), 'PUBLIC cannot use schema scim');
SELECT ok(has_table_privilege('scim_reader', 'scim.users', 'SELECT') AND NOT has_table_privilege('scim_reader', 'scim.users', 'INSERT'),
	'scim_reader reads users and cannot write them');
SELECT ok(NOT has_column_privilege('scim_admin', 'scim.tokens', 'secret_hash', 'SELECT') AND NOT has_table_privilege('scim_reader', 'scim.tokens', 'SELECT'),
	'nobody but the owner reads token hashes');
SELECT ok(NOT has_function_privilege('scim_client', 'scim.create_token(text, text)', 'EXECUTE')
	AND NOT has_function_privilege('scim_reader', 'scim.approve_domain(text, text, boolean)', 'EXECUTE'),
	'administration is for scim_admin only');
SELECT set_eq($$SELECT c::regclass::text FROM pg_extension e, unnest(e.extconfig) c WHERE e.extname = 'scim_provision'
	AND c::regclass::text IN ('scim.workspaces', 'scim.approved_domains', 'scim.tokens', 'scim.users', 'scim_log.provisioning_log_default', 'scim.provisioning_log_id_seq', 'scim.log_retention')$$,
	ARRAY['scim.workspaces', 'scim.approved_domains', 'scim.tokens', 'scim.users', 'scim_log.provisioning_log_default', 'scim.provisioning_log_id_seq', 'scim.log_retention'],
	'configuration and data tables are registered with pg_extension_config_dump');

SELECT * FROM finish();
ROLLBACK;
