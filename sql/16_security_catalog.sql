-- The catalog's security audit (#15, point 1): every function in schemas scim
-- and scim_api, with its owner, SECURITY DEFINER flag, pinned settings and
-- the roles that may execute it, compared with the allow-list below, so a
-- new function with a loose grant (PUBLIC's default EXECUTE, a SECURITY
-- DEFINER without a pinned search_path, a grant to scim_client) fails CI.
--
-- ADDING OR CHANGING A FUNCTION: add (or edit) its ONE row in the allow-list,
-- keeping the rows sorted by name:
--     ('scim.name(argtype,...)', 'definer' | 'invoker', 'pinned settings', 'grantees'),
-- * the signature as regprocedure prints it (SELECT 'scim.f(text)'::regprocedure);
-- * pinned settings: proconfig joined by '; ' ('' when none);
-- * grantees: the roles with EXECUTE besides the owner, sorted, comma
--   separated, PUBLIC first ('' when only the owner may execute it).
-- When this test fails, its diagnostics list each function whose catalog row
-- differs ("catalog" = what the extension created, "allowed" = this list).
-- Rules the list must keep (also asserted on their own below): a SECURITY
-- DEFINER function pins search_path and is not PUBLIC's; a trigger function
-- is executable by its owner only; scim_client executes scim_api only; every
-- function belongs to the extension and its owner.  PUBLIC keeps EXECUTE on
-- the pure functions that read no table (filter, PATCH, domain parsing,
-- discovery documents): schema scim's USAGE is granted to scim_reader and
-- scim_admin only, so no one else reaches them.  doc/SECURITY.md describes
-- the model.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(7);

CREATE TEMP TABLE allowed (fn text PRIMARY KEY, security text NOT NULL, settings text NOT NULL, grantees text NOT NULL);
INSERT INTO allowed (fn, security, settings, grantees) VALUES
	('scim._base64url_decode(text)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._base64url_encode(bytea)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._base_url()', 'invoker', 'search_path=pg_catalog, pg_temp', 'scim_admin,scim_reader'),
	('scim._bulk_refs(text,text)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._bulk_result(text,text,integer,jsonb,jsonb,text)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._bulk_route(text,text,jsonb,text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._bulk_substitute(text,jsonb,text[],boolean)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._canonical_user_type(text)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._count_users(text,text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp; jit=off', ''),
	('scim._cursor_key_text(anyelement)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._cursor_param(jsonb)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._discovery_list(jsonb)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._dispatch(text,boolean)', 'invoker', 'search_path=pg_catalog, scim, pg_temp; log_min_error_statement=panic; log_error_verbosity=terse', ''),
	('scim._error(integer,text,text)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._etag_matches(text,bigint)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._generate_token()', 'invoker', '', ''),
	('scim._generate_token(text)', 'invoker', '', ''),
	('scim._group_add_members(text,uuid,uuid[])', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._group_attr(jsonb,text)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._group_attr_list(text)', 'invoker', 'search_path=pg_catalog, pg_temp', 'scim_admin,scim_reader'),
	('scim._group_check_members(text,uuid[])', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._group_check_name(text,uuid,text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._group_create(text,jsonb)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._group_display_name(jsonb)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._group_error(text,text,text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._group_external_id(jsonb)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._group_filter_sql(text)', 'invoker', '', ''),
	('scim._group_finish(scim.groups,boolean)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._group_json(scim.groups,boolean,text[])', 'invoker', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin,scim_reader'),
	('scim._group_lock(text,uuid)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._group_member_keep(text,text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin,scim_reader'),
	('scim._group_members_after_delete()', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._group_members_matching(uuid,text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._group_patch(text,scim.groups,jsonb)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._group_project(jsonb,text,text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin,scim_reader'),
	('scim._group_remove_members(uuid,uuid[])', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._group_replace(text,scim.groups,jsonb)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._group_set_members(text,uuid,uuid[])', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._group_sort_expression(text)', 'invoker', '', ''),
	('scim._group_wants_members(text,text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin,scim_reader'),
	('scim._groups_before_write()', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._groups_route(text,text,text[],jsonb,jsonb,text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._handle(text,text,text,jsonb,text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._hmac_sha256(bytea,bytea)', 'invoker', '', ''),
	('scim._hmac_sha256_verify(bytea,bytea,bytea)', 'invoker', '', ''),
	('scim._int_param(text,text,bigint)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._list_cursor(text,text,jsonb)', 'invoker', 'search_path=pg_catalog, scim, pg_temp; jit=off', ''),
	('scim._list_cursor_route(text,text,jsonb)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._list_groups(text,jsonb)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._list_users(text,text,text,text,text,text,text,text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp; jit=off', ''),
	('scim._log_bounded(text,integer)', 'invoker', '', ''),
	('scim._log_create_partitions(timestamp with time zone,text,timestamp with time zone)', 'invoker', 'search_path=pg_catalog, pg_temp; TimeZone=UTC; DateStyle=ISO, YMD', ''),
	('scim._log_retention_of(text)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._member_filter_ids(jsonb)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._member_ids(jsonb)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._onelogin_map_user(jsonb)', 'invoker', '', 'scim_admin'),
	('scim._page_bookmark(text,text,bigint,text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._page_query_hash(text,text,text,text,text)', 'invoker', '', ''),
	('scim._project_subs(jsonb,text[],boolean)', 'invoker', 'search_path=pg_catalog, pg_temp', 'scim_admin,scim_reader'),
	('scim._query_params(text)', 'invoker', '', ''),
	('scim._random_bytes(integer)', 'invoker', '', ''),
	('scim._request_json(text)', 'invoker', '', ''),
	('scim._require_object(jsonb,text)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._require_workspace(text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._scim_error(text,text,text,text)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._scim_timestamp(timestamp with time zone)', 'invoker', 'search_path=pg_catalog, pg_temp', 'scim_admin,scim_reader'),
	('scim._search_params(jsonb)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._search_wants_cursor(text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._sort_direction(text)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._token_hash(text)', 'invoker', '', ''),
	('scim._user_from_resource(jsonb,text,text,scim.users)', 'invoker', '', ''),
	('scim._user_insert(scim.users)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._user_update(scim.users)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._users_before_write()', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._users_count_delta()', 'invoker', '', ''),
	('scim._users_count_move()', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._users_count_truncate()', 'invoker', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim._valid_base_url(text)', 'invoker', 'search_path=pg_catalog, pg_temp', ''),
	('scim._within_operation_limit(jsonb)', 'invoker', '', ''),
	('scim._worker_activity()', 'invoker', '', 'scim_admin,scim_reader'),
	('scim._worker_check()', 'invoker', '', ''),
	('scim._worker_wake()', 'invoker', '', ''),
	('scim.approve_domain(text,text,boolean)', 'definer', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin'),
	('scim.authenticate(text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim.create_token(text,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin'),
	('scim.create_workspace(text,text,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin'),
	('scim.cursor_decode(text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim.cursor_encode(jsonb)', 'definer', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim.deprovision_user(text,text,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim.dispatch_routed(text,text,boolean)', 'definer', 'search_path=pg_catalog, scim, pg_temp; log_min_error_statement=panic; log_error_verbosity=terse', 'scim_proxy'),
	('scim.domain_approved(text,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin,scim_reader'),
	('scim.element_keys(jsonb)', 'invoker', '', 'PUBLIC'),
	('scim.element_keys_query(text,text,text,text,boolean)', 'invoker', '', 'PUBLIC'),
	('scim.email_domain(text)', 'invoker', '', 'PUBLIC,scim_admin,scim_reader'),
	('scim.filter_match(text,jsonb)', 'invoker', '', 'PUBLIC'),
	('scim.filter_sql(text,text)', 'invoker', '', 'PUBLIC'),
	('scim.group_members_json(uuid,text[])', 'invoker', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin,scim_reader'),
	('scim.group_resource(scim.groups,text,text)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin,scim_reader'),
	('scim.handle(text,text,text,jsonb,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp; log_min_error_statement=panic; log_error_verbosity=terse', ''),
	('scim.jsonb_present(jsonb)', 'invoker', '', 'PUBLIC'),
	('scim.log_attempt(text,text,text,uuid,text,integer,text,text,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim.log_maintain_step(integer)', 'definer', 'search_path=pg_catalog, pg_temp; TimeZone=UTC; DateStyle=ISO, YMD; lock_timeout=100ms', 'scim_admin'),
	('scim.log_partitions()', 'invoker', 'search_path=pg_catalog, pg_temp', 'scim_admin,scim_reader'),
	('scim.maintain()', 'invoker', '', 'scim_admin'),
	('scim.normalize_domain(text)', 'invoker', '', 'PUBLIC,scim_admin,scim_reader'),
	('scim.onelogin_connect(text,text,text,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp; log_min_error_statement=panic', 'scim_admin'),
	('scim.onelogin_disconnect(text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin'),
	('scim.parse_filter(text)', 'invoker', '', 'PUBLIC'),
	('scim.patch_apply(jsonb,jsonb)', 'invoker', '', 'PUBLIC'),
	('scim.provision_user(jsonb,text,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim.provision_users(jsonb[],text,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim.recent_errors(text,timestamp with time zone)', 'invoker', '', 'scim_admin,scim_reader'),
	('scim.recount_users()', 'definer', 'search_path=pg_catalog, scim, pg_temp', ''),
	('scim.resource_type_definitions()', 'invoker', '', 'PUBLIC'),
	('scim.revoke_token(text,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin'),
	('scim.schema_definitions()', 'invoker', '', 'PUBLIC'),
	('scim.search_text(jsonb)', 'invoker', '', 'PUBLIC'),
	('scim.service_provider_config()', 'invoker', 'search_path=pg_catalog, pg_temp', 'PUBLIC,scim_admin,scim_reader'),
	('scim.set_default_user_type(text,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin'),
	('scim.set_deletion_policy(text,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin'),
	('scim.set_log_retention(interval,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin'),
	('scim.sort_expression(text,text)', 'invoker', '', 'PUBLIC'),
	('scim.sync_now(text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin'),
	('scim.unapprove_domain(text,text)', 'definer', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin'),
	('scim.user_groups(uuid)', 'invoker', 'search_path=pg_catalog, scim, pg_temp', 'scim_admin,scim_reader'),
	('scim.user_resource(scim.users,text,text)', 'invoker', '', 'scim_admin,scim_reader'),
	('scim_api.dispatch(jsonb)', 'definer', 'search_path=pg_catalog, scim, pg_temp; log_min_error_statement=panic; log_error_verbosity=terse', 'scim_client'),
	('scim_api.dispatch(text)', 'definer', 'search_path=pg_catalog, scim, pg_temp; log_min_error_statement=panic; log_error_verbosity=terse', 'scim_client'),
	('scim_api.pre_request()', 'invoker', 'search_path=pg_catalog, pg_temp', 'scim_client');

CREATE TEMP VIEW catalog AS
SELECT p.oid, p.oid::regprocedure::text AS fn, pg_get_userbyid(p.proowner) AS owner,
	   CASE WHEN p.prosecdef THEN 'definer' ELSE 'invoker' END AS security,
	   coalesce(array_to_string(p.proconfig, '; '), '') AS settings,
	   coalesce((SELECT string_agg(g.name, ',' ORDER BY g.name <> 'PUBLIC', g.name)
				 FROM (SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS name
					   FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
					   WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner) g), '') AS grantees,
	   p.prorettype = 'trigger'::regtype AS is_trigger
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('scim', 'scim_api');

SELECT is_empty($$
	SELECT coalesce(c.fn, a.fn),
		   CASE WHEN a.fn IS NULL THEN 'not in the allow-list'
				WHEN c.fn IS NULL THEN 'in the allow-list, not in the catalog' ELSE 'differs' END,
		   'catalog: ' || CASE WHEN c.fn IS NULL THEN '-' ELSE format('%s | %s | %s', c.security, c.settings, c.grantees) END,
		   'allowed: ' || CASE WHEN a.fn IS NULL THEN '-' ELSE format('%s | %s | %s', a.security, a.settings, a.grantees) END
	FROM catalog c FULL JOIN allowed a ON a.fn = c.fn
	WHERE (c.security, c.settings, c.grantees) IS DISTINCT FROM (a.security, a.settings, a.grantees)
	ORDER BY 1$$,
	'every function of scim and scim_api matches its allow-list row (security, pinned settings, EXECUTE grantees)');

SELECT is_empty($$
	SELECT c.fn, c.owner FROM catalog c, pg_extension e
	WHERE e.extname = 'scim_provision' AND c.owner <> pg_get_userbyid(e.extowner)$$,
	'every function is owned by the extension''s owner');

SELECT is_empty($$
	SELECT c.fn FROM catalog c
	WHERE NOT EXISTS (SELECT FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
					  WHERE d.classid = 'pg_proc'::regclass AND d.objid = c.oid
						AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
						AND e.extname = 'scim_provision')$$,
	'every function in scim and scim_api belongs to the extension');

SELECT is_empty($$
	SELECT c.fn FROM catalog c
	WHERE c.security = 'definer' AND c.settings !~ '(^|; )search_path=pg_catalog, '$$,
	'every SECURITY DEFINER function pins search_path, pg_catalog first');

SELECT is_empty($$
	SELECT c.fn FROM catalog c WHERE c.security = 'definer' AND c.grantees ~ '(^|,)PUBLIC(,|$)'$$,
	'no SECURITY DEFINER function is executable by PUBLIC');

SELECT is_empty($$
	SELECT c.fn, c.grantees, c.security FROM catalog c WHERE c.is_trigger AND (c.grantees <> '' OR c.security = 'definer')$$,
	'trigger functions are executable by their owner only and none is SECURITY DEFINER');

SELECT is_empty($$
	SELECT c.fn FROM catalog c
	WHERE has_function_privilege('scim_client', c.oid, 'EXECUTE') AND c.fn NOT LIKE 'scim\_api.%'
	  AND c.grantees !~ '(^|,)PUBLIC(,|$)'$$,
	'scim_client is granted EXECUTE on scim_api only');

SELECT * FROM finish();
ROLLBACK;
