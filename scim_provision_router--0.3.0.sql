/* scim_provision_router--0.3.0.sql: the router of a sharded scim_provision (doc/SCALING.md) */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION scim_provision_router CASCADE" to load this file. \quit

-- ---------------------------------------------------------------------------
-- The router database holds no user data.  Every workspace lives on one
-- shard (a database running scim_provision), chosen by hashtext(workspace)
-- masked by the number of PL/Proxy partitions; a SCIM token names its
-- workspace's hash in the first 8 hex digits of its id (src/token.c), so a
-- request is routed without a lookup.  The router offers:
--   scim_api.dispatch(jsonb)   the PostgREST endpoint, as on a node
--   scim_router.*              cluster set-up, the admin API routed to the
--                              workspace's shard, the data teams' reads
--                              across shards
-- PL/Proxy connects to the shards through the user mapping of the cluster
-- scim_shards (a login role that is a member of scim_proxy there).
-- ---------------------------------------------------------------------------

-- Roles as on a node (cluster-wide, created only when missing, NOLOGIN):
-- scim_client runs scim_api.dispatch and nothing else, scim_reader reads,
-- scim_admin administers.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'scim_client') THEN
		CREATE ROLE scim_client NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'scim_reader') THEN
		CREATE ROLE scim_reader NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'scim_admin') THEN
		CREATE ROLE scim_admin NOLOGIN;
	END IF;
END
$roles$;

CREATE SCHEMA scim_router;
COMMENT ON SCHEMA scim_router IS
	'scim_provision_router: cluster set-up, routed administration and cross-shard reads';
REVOKE ALL ON SCHEMA scim_router FROM PUBLIC;
GRANT USAGE ON SCHEMA scim_router TO scim_reader, scim_admin;

-- ===== The cluster =========================================================

-- Partition i of the PL/Proxy cluster scim_shards is the option "p<i>" of
-- the foreign server of that name: a libpq connection string.
CREATE FUNCTION scim_router.partitions()
	RETURNS TABLE (partition integer, connstr text)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.substr(o.k, 2)::integer, o.v
	  FROM pg_catalog.pg_foreign_server s,
		   LATERAL (SELECT pg_catalog.split_part(opt, '=', 1) AS k,
						   pg_catalog.substr(opt, pg_catalog.strpos(opt, '=') + 1) AS v
					  FROM pg_catalog.unnest(s.srvoptions) AS opt) AS o
	 WHERE s.srvname = 'scim_shards' AND o.k ~ '^p[0-9]+$'
	 ORDER BY 1;
$$;
COMMENT ON FUNCTION scim_router.partitions() IS
	'Partitions of the cluster scim_shards and the connection string of the shard each one is on';

CREATE FUNCTION scim_router.partition_count() RETURNS integer
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.count(*)::integer FROM scim_router.partitions();
$$;
COMMENT ON FUNCTION scim_router.partition_count() IS 'Number of partitions of the cluster scim_shards (a power of two)';

-- scim_router.create_cluster(shards, partitions, shard_user, shard_password):
-- the SQL/MED definition of the cluster.  Partition i goes to
-- shards[i mod n]; with more partitions than shards a partition can later
-- move to a new node (scim_router.move_partition).  PL/Proxy connects as
-- shard_user (a member of scim_proxy on every shard).  Connection strings
-- are readable in pg_foreign_server: keep passwords in the user mapping
-- (shard_password) or in ~/.pgpass, never in a connection string.
CREATE FUNCTION scim_router.create_cluster(shards text[], partitions integer DEFAULT 16,
										   shard_user text DEFAULT 'scim_router',
										   shard_password text DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer := coalesce(pg_catalog.array_length(shards, 1), 0);
	opts text;
BEGIN
	IF n = 0 OR pg_catalog.array_position(shards, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'a cluster needs at least one shard connection string'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF partitions IS NULL OR partitions < n OR partitions > 65536 OR (partitions & (partitions - 1)) <> 0 THEN
		RAISE EXCEPTION 'invalid number of partitions: %', partitions
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'PL/Proxy needs a power of two, at least the number of shards.',
				  HINT = 'Take several partitions per shard (16 or more), so that partitions can later move to new nodes.';
	END IF;
	IF EXISTS (SELECT FROM pg_catalog.pg_foreign_server WHERE srvname = 'scim_shards') THEN
		RAISE EXCEPTION 'the cluster scim_shards exists already'
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Move partitions with scim_router.move_partition(partition, connstr).';
	END IF;
	SELECT pg_catalog.string_agg(pg_catalog.format('%I %L', 'p' || i, shards[i % n + 1]), ', ' ORDER BY i)
	  INTO opts
	  FROM pg_catalog.generate_series(0, partitions - 1) AS i;
	EXECUTE pg_catalog.format(
		'CREATE SERVER scim_shards FOREIGN DATA WRAPPER plproxy OPTIONS (connection_lifetime %L, %s)',
		'1800', opts);
	IF shard_password IS NULL THEN
		EXECUTE pg_catalog.format('CREATE USER MAPPING FOR PUBLIC SERVER scim_shards OPTIONS (user %L)', shard_user);
	ELSE
		EXECUTE pg_catalog.format('CREATE USER MAPPING FOR PUBLIC SERVER scim_shards OPTIONS (user %L, password %L)',
								  shard_user, shard_password);
	END IF;
END;
$$;
COMMENT ON FUNCTION scim_router.create_cluster(text[], integer, text, text) IS
	'Define the PL/Proxy cluster scim_shards (SQL/MED): partitions (a power of two) spread over the shards'' connection strings';

-- scim_router.move_partition(partition, connstr): point a partition at
-- another shard, once its workspaces are there (doc/SCALING.md).  PL/Proxy
-- rereads the cluster at the next call of every session.
CREATE FUNCTION scim_router.move_partition(partition integer, connstr text)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM scim_router.partitions() p WHERE p.partition = move_partition.partition) THEN
		RAISE EXCEPTION 'the cluster scim_shards has no partition %', partition
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	EXECUTE pg_catalog.format('ALTER SERVER scim_shards OPTIONS (SET %I %L)', 'p' || partition, connstr);
END;
$$;
COMMENT ON FUNCTION scim_router.move_partition(integer, text) IS
	'Point a partition of scim_shards at another shard (after its workspaces were copied there)';

-- ===== Routing keys ========================================================

-- A workspace's hash: PL/Proxy masks it with (partitions - 1).
CREATE FUNCTION scim_router.workspace_hash(workspace text) RETURNS integer
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.hashtext(workspace);
$$;
COMMENT ON FUNCTION scim_router.workspace_hash(text) IS
	'hashtext(workspace): the hash PL/Proxy places a workspace by';

-- The hash a token names: the first 8 hex digits of its id, when the value
-- has exactly the shape a node accepts ("Bearer " + spaces + token + trailing
-- blanks, src/token.c).  Anything else is routed to hash 0: that shard
-- refuses it with the same 401 (and System Log row) as a single node, and a
-- forged token that names a hash reaches only the shard of that hash, where
-- its secret does not match.  The token is never logged.
CREATE FUNCTION scim_router.token_hash(authorization_value text) RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(('x' || (pg_catalog.regexp_match(authorization_value,
			'^[Bb][Ee][Aa][Rr][Ee][Rr] +scim_([0-9a-f]{8})[0-9a-f]{16}_[A-Za-z0-9_-]{43}[ \r\n]*$'))[1])::bit(32)::integer,
		0);
$$;
COMMENT ON FUNCTION scim_router.token_hash(text) IS
	'Hash named by a "Bearer scim_..." value (the first 8 hex digits of the token id), else 0';

-- The hashes a read goes to: one workspace's, or one per partition.
CREATE FUNCTION scim_router._targets(workspace text) RETURNS SETOF integer
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.hashtext(workspace) WHERE workspace IS NOT NULL
	UNION ALL
	SELECT p.partition FROM scim_router.partitions() p WHERE workspace IS NULL;
$$;

-- ===== The SCIM endpoint ===================================================

-- PL/Proxy: scim.dispatch_routed on the shard of a hash.  Called only by
-- scim_router._route (under scim_api.dispatch, SECURITY DEFINER, so
-- PL/Proxy connects with its owner's user mapping); no SET clause, which
-- would cost a GUC nest level per request, and nothing in it depends on
-- search_path.
CREATE FUNCTION scim_router._dispatch(route integer, request_headers text, request_body text,
									  from_json boolean,
									  OUT status integer, OUT headers text, OUT body jsonb)
	LANGUAGE plproxy VOLATILE
AS $$
	CLUSTER 'scim_shards';
	RUN ON route;
	SELECT * FROM scim.dispatch_routed(request_headers, request_body, from_json);
$$;

CREATE SCHEMA scim_api;
COMMENT ON SCHEMA scim_api IS
	'scim_provision_router: what PostgREST exposes (db-schemas = "scim_api"); the SCIM endpoint is scim_api.dispatch';
REVOKE ALL ON SCHEMA scim_api FROM PUBLIC;

CREATE DOMAIN scim_api."application/scim+json" AS jsonb;
COMMENT ON DOMAIN scim_api."application/scim+json" IS
	'SCIM media type (RFC 7644 section 8.1); a PostgREST media type handler';

-- scim_router._route(body, from_json): the node's PostgREST endpoint,
-- routed; scim_api.dispatch(text) and scim_api.dispatch(jsonb) below are
-- the node's two variants and hand their body here as the node's hand it to
-- scim._dispatch.  The request (PostgREST's request.headers, as text, and
-- the body) goes to the shard of
-- the hash its X-Scim-Token names, whose scim._dispatch answers it: the
-- status, response.headers and body are set and returned unchanged, so an
-- answer is the shard's, byte for byte.  A shard that cannot be reached
-- (connection refused or lost, shutting down, starting up, query timeout)
-- is answered 503 with Retry-After and a SCIM error body, and written to
-- this server's log without the request's headers; any other failure is
-- the node's generic 500.  It never raises.  As on a node, the statement
-- (PostgREST's query) and context are kept out of the log line
-- (log_min_error_statement, log_error_verbosity, pinned by the callers).
-- Called only by scim_api.dispatch, SECURITY DEFINER, so PL/Proxy connects
-- with the owner's user mapping; scim_client may run those and nothing else.
CREATE FUNCTION scim_router._route(req_text text, from_json boolean)
	RETURNS jsonb
	LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
	raw_headers	text;
	req_headers	jsonb;
	route		integer;
	status		integer;
	out_headers	text;
	out_body	jsonb;
	err_state	text;
	err_msg		text;
BEGIN
	raw_headers := pg_catalog.current_setting('request.headers', true);
	BEGIN
		req_headers := nullif(raw_headers, '')::jsonb;
	EXCEPTION WHEN invalid_text_representation THEN
		req_headers := NULL;
	END;
	-- scim_router.token_hash, inline (a function with a SET clause is
	-- never inlined and would cost an executor per request)
	IF pg_catalog.jsonb_typeof(req_headers -> 'x-scim-token') = 'string' THEN
		route := ('x' || (pg_catalog.regexp_match(req_headers ->> 'x-scim-token',
			'^[Bb][Ee][Aa][Rr][Ee][Rr] +scim_([0-9a-f]{8})[0-9a-f]{16}_[A-Za-z0-9_-]{43}[ \r\n]*$'))[1])::bit(32)::integer;
	END IF;
	route := coalesce(route, 0);

	BEGIN
		SELECT d.status, d.headers, d.body INTO status, out_headers, out_body
		  FROM scim_router._dispatch(route, raw_headers, req_text, from_json) AS d;
	EXCEPTION
		-- PL/Proxy reports a failed connection or send as internal_error; a
		-- shard going away answers with its own SQLSTATE
		WHEN internal_error OR connection_exception OR admin_shutdown OR crash_shutdown
			 OR cannot_connect_now OR query_canceled THEN
			GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT;
			RAISE LOG 'scim_router: partition % is unavailable (SQLSTATE %): %',
				route & (scim_router.partition_count() - 1), err_state, err_msg;
			status := 503;
			out_headers := '[{"Retry-After": "5"}, {"Content-Type": "application/scim+json"}]';
			out_body := pg_catalog.jsonb_build_object(
				'schemas', pg_catalog.jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:Error'),
				'status', '503',
				'detail', 'the shard holding this workspace is unavailable; retry later');
		WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT;
			RAISE LOG 'scim_router: unexpected error % routing to partition %: %',
				err_state, route & (scim_router.partition_count() - 1), err_msg;
			status := 500;
			out_headers := '[{"Content-Type": "application/scim+json"}]';
			out_body := pg_catalog.jsonb_build_object(
				'schemas', pg_catalog.jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:Error'),
				'status', '500',
				'detail', 'internal server error');
	END;

	PERFORM pg_catalog.set_config('response.status', status::text, true);
	PERFORM pg_catalog.set_config('response.headers', coalesce(out_headers, '[]'), true);
	RETURN out_body;
END;
$$;
COMMENT ON FUNCTION scim_router._route(text, boolean) IS
	'Internal: a PostgREST request sent to the shard its token names (scim.dispatch_routed) and answered as that shard answers it; 503 with Retry-After when the shard is down';

-- The node's two entry points (src/sql/70_postgrest.sql): dispatch(text)
-- for Content-Type text/plain (the raw body), dispatch(jsonb), 0.2.0's, for
-- application/json.  Same log policy as the node's.
CREATE FUNCTION scim_api.dispatch(text)
	RETURNS scim_api."application/scim+json"
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET log_min_error_statement = panic
	SET log_error_verbosity = terse
AS $$
BEGIN
	RETURN scim_router._route($1, false);
END;
$$;
COMMENT ON FUNCTION scim_api.dispatch(text) IS
	'PostgREST entry point on the router (Content-Type text/plain): the request goes to the shard its token names and is answered as that shard answers it; 503 with Retry-After when the shard is down';

CREATE FUNCTION scim_api.dispatch(jsonb)
	RETURNS scim_api."application/scim+json"
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET log_min_error_statement = panic
	SET log_error_verbosity = terse
AS $$
BEGIN
	RETURN scim_router._route($1::text, true);
END;
$$;
COMMENT ON FUNCTION scim_api.dispatch(jsonb) IS
	'Deprecated PostgREST entry point on the router (Content-Type application/json): as scim_api.dispatch(text) for a parsed JSON body';

-- scim_api.pre_request(): the node's optional PostgREST db-pre-request hook, unchanged.
CREATE FUNCTION scim_api.pre_request()
	RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	req_headers	jsonb;
BEGIN
	BEGIN
		req_headers := nullif(pg_catalog.current_setting('request.headers', true), '')::jsonb;
	EXCEPTION WHEN invalid_text_representation THEN
		req_headers := NULL;
	END;
	IF pg_catalog.jsonb_typeof(req_headers -> 'x-scim-token') = 'string'
	   AND (req_headers ->> 'x-scim-token') ~* '^[[:space:]]*bearer[[:space:]]+[^[:space:]]' THEN
		RETURN;
	END IF;
	RAISE SQLSTATE 'PGRST' USING
		MESSAGE = pg_catalog.jsonb_build_object(
			'code', 'SCIM401',
			'message', 'authentication required: send "Authorization: Bearer <token>"',
			'details', 'a SCIM bearer token is created with scim.create_token(name, workspace); the proxy forwards the Authorization header as X-Scim-Token',
			'hint', 'see deploy/README.md')::text,
		DETAIL = pg_catalog.jsonb_build_object(
			'status', 401,
			'status_text', 'Unauthorized',
			'headers', pg_catalog.jsonb_build_object('WWW-Authenticate', 'Bearer realm="SCIM"'))::text;
END;
$$;
COMMENT ON FUNCTION scim_api.pre_request() IS
	'Optional PostgREST db-pre-request: refuses a request without "X-Scim-Token: Bearer ..." early with 401 (PostgREST error shape, not logged)';

-- ===== Administration, routed ==============================================
-- The admin API of a node, same names and arguments, run on the shard of
-- hashtext(workspace).  A workspace is created on its hash's shard
-- (scim_router.create_workspace), so every later call finds it there.  Note:
-- CREATE EXTENSION scim_provision creates a workspace "default" on every
-- shard; through the router only the one on hashtext('default')'s shard is
-- reachable.

CREATE FUNCTION scim_router.create_workspace(name text, deletion_policy text DEFAULT 'deactivate',
											 default_user_type text DEFAULT 'Regular')
	RETURNS void
	LANGUAGE plproxy VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	CLUSTER 'scim_shards';
	RUN ON hashtext(name);
	TARGET scim.create_workspace;
$$;

CREATE FUNCTION scim_router.approve_domain(domain text, workspace text DEFAULT 'default',
										   include_subdomains boolean DEFAULT false)
	RETURNS void
	LANGUAGE plproxy VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	CLUSTER 'scim_shards';
	RUN ON hashtext(workspace);
	TARGET scim.approve_domain;
$$;

CREATE FUNCTION scim_router.unapprove_domain(domain text, workspace text DEFAULT 'default')
	RETURNS boolean
	LANGUAGE plproxy VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	CLUSTER 'scim_shards';
	RUN ON hashtext(workspace);
	TARGET scim.unapprove_domain;
$$;

CREATE FUNCTION scim_router.create_token(name text, workspace text DEFAULT 'default')
	RETURNS text
	LANGUAGE plproxy VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	CLUSTER 'scim_shards';
	RUN ON hashtext(workspace);
	TARGET scim.create_token;
$$;

CREATE FUNCTION scim_router.revoke_token(name text, workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plproxy VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	CLUSTER 'scim_shards';
	RUN ON hashtext(workspace);
	TARGET scim.revoke_token;
$$;

CREATE FUNCTION scim_router.set_deletion_policy(policy text, workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plproxy VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	CLUSTER 'scim_shards';
	RUN ON hashtext(workspace);
	TARGET scim.set_deletion_policy;
$$;

CREATE FUNCTION scim_router.set_default_user_type(user_type text, workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plproxy VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	CLUSTER 'scim_shards';
	RUN ON hashtext(workspace);
	TARGET scim.set_default_user_type;
$$;

-- The client secret travels to the shard as a bind parameter.
CREATE FUNCTION scim_router.onelogin_connect(base_url text, client_id text, client_secret text,
											 workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plproxy VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET log_min_error_statement = panic
AS $$
	CLUSTER 'scim_shards';
	RUN ON hashtext(workspace);
	TARGET scim.onelogin_connect;
$$;

CREATE FUNCTION scim_router.onelogin_disconnect(workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plproxy VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	CLUSTER 'scim_shards';
	RUN ON hashtext(workspace);
	TARGET scim.onelogin_disconnect;
$$;

CREATE FUNCTION scim_router.sync_now(workspace text DEFAULT 'default')
	RETURNS void
	LANGUAGE plproxy VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	CLUSTER 'scim_shards';
	RUN ON hashtext(workspace);
	TARGET scim.sync_now;
$$;

-- ===== Reads for data teams ================================================
-- Each runs on every shard (one query per shard, however many partitions it
-- holds) and returns the union, or, given a workspace, on that workspace's
-- shard only.

CREATE FUNCTION scim_router.users(in_workspace text DEFAULT NULL)
	RETURNS TABLE (id uuid, workspace text, user_name text, external_id text, given_name text,
				   family_name text, display_name text, email text, title text, department text,
				   user_type text, active boolean, billable boolean, deactivated_at timestamptz,
				   created_at timestamptz, updated_at timestamptz, version bigint)
	LANGUAGE plproxy VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	CLUSTER 'scim_shards';
	RUN ON scim_router._targets(in_workspace);
	SELECT u.id, u.workspace, u.user_name, u.external_id, u.given_name, u.family_name, u.display_name,
		   u.email, u.title, u.department, u.user_type, u.active, u.billable, u.deactivated_at,
		   u.created_at, u.updated_at, u.version
	  FROM scim.users u
	 WHERE in_workspace::text IS NULL OR u.workspace = in_workspace::text;
$$;
COMMENT ON FUNCTION scim_router.users(text) IS
	'Users of every shard, or of one workspace (routed to its shard only)';

CREATE FUNCTION scim_router.system_log(in_workspace text DEFAULT NULL, since timestamptz DEFAULT NULL)
	RETURNS TABLE (id bigint, at timestamptz, workspace text, source text, method text, path text,
				   resource_id uuid, user_name text, status integer, scim_type text, detail text)
	LANGUAGE plproxy VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	CLUSTER 'scim_shards';
	RUN ON scim_router._targets(in_workspace);
	SELECT l.id, l.at, l.workspace, l.source::text AS source, l.method, l.path, l.resource_id,
		   l.user_name, l.status, l.scim_type, l.detail
	  FROM scim.provisioning_log l
	 WHERE (in_workspace::text IS NULL OR l.workspace = in_workspace::text)
	   AND (since::timestamptz IS NULL OR l.at >= since::timestamptz);
$$;
COMMENT ON FUNCTION scim_router.system_log(text, timestamptz) IS
	'System Log rows of every shard, or of one workspace (routed to its shard only), optionally since a time; ids are per shard';

CREATE FUNCTION scim_router.sync_status(in_workspace text DEFAULT NULL)
	RETURNS TABLE (workspace text, base_url text, state text, sync_in_progress boolean, activity text,
				   last_success_at timestamptz, last_attempt_at timestamptz, last_error text,
				   consecutive_failures integer, users_seen bigint, users_applied bigint,
				   syncs_completed bigint)
	LANGUAGE plproxy VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	CLUSTER 'scim_shards';
	RUN ON scim_router._targets(in_workspace);
	SELECT s.workspace, s.base_url, s.state::text AS state, s.sync_in_progress, s.activity::text AS activity,
		   s.last_success_at, s.last_attempt_at, s.last_error, s.consecutive_failures::integer AS consecutive_failures,
		   s.users_seen::bigint AS users_seen, s.users_applied::bigint AS users_applied,
		   s.syncs_completed::bigint AS syncs_completed
	  FROM scim.sync_status s
	 WHERE in_workspace::text IS NULL OR s.workspace = in_workspace::text;
$$;
COMMENT ON FUNCTION scim_router.sync_status(text) IS
	'OneLogin sync status of every shard, or of one workspace (routed to its shard only)';

-- ===== Privileges ==========================================================
-- As on a node: scim_client runs scim_api.dispatch (and the optional
-- pre-request hook) and nothing else; scim_admin administers; scim_reader
-- and scim_admin read.  The cluster set-up stays with superusers.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA scim_router FROM PUBLIC;
REVOKE ALL ON FUNCTION scim_api.dispatch(text), scim_api.dispatch(jsonb), scim_api.pre_request() FROM PUBLIC;
GRANT USAGE ON SCHEMA scim_api TO scim_client;
GRANT EXECUTE ON FUNCTION scim_api.dispatch(text), scim_api.dispatch(jsonb), scim_api.pre_request() TO scim_client;
GRANT EXECUTE ON FUNCTION scim_router.create_workspace(text, text, text),
	scim_router.approve_domain(text, text, boolean),
	scim_router.unapprove_domain(text, text),
	scim_router.create_token(text, text),
	scim_router.revoke_token(text, text),
	scim_router.set_deletion_policy(text, text),
	scim_router.set_default_user_type(text, text),
	scim_router.onelogin_connect(text, text, text, text),
	scim_router.onelogin_disconnect(text),
	scim_router.sync_now(text),
	scim_router.partitions(),
	scim_router.partition_count() TO scim_admin;
GRANT EXECUTE ON FUNCTION scim_router.users(text), scim_router.system_log(text, timestamptz),
	scim_router.sync_status(text), scim_router.workspace_hash(text),
	scim_router._targets(text) TO scim_reader, scim_admin;

-- A running PostgREST picks up the new scim_api at commit.
NOTIFY pgrst, 'reload schema';
