
-- ---------------------------------------------------------------------------
-- 58_discovery.sql: the discovery endpoints' documents (RFC 7644 section 4,
-- RFC 7643 sections 5-7).  /Schemas and /ResourceTypes come from the
-- attribute registry (scim.schema_definitions, scim.resource_type_definitions
-- in 30_filter.sql); ServiceProviderConfig says what scim.handle really does:
-- PATCH yes, filter yes (maxResults = scim_provision.max_results), sort yes,
-- ETags yes, bulk yes (67_bulk.sql), changePassword no, bearer tokens.
-- ---------------------------------------------------------------------------

CREATE FUNCTION scim.service_provider_config()
	RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.jsonb_build_object(
		'schemas', pg_catalog.jsonb_build_array('urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'),
		'patch', pg_catalog.jsonb_build_object('supported', true),
		'bulk', pg_catalog.jsonb_build_object('supported', true,	-- 67_bulk.sql; limits: GUCs of src/groups.c
			'maxOperations', pg_catalog.current_setting('scim_provision.bulk_max_operations')::integer,
			-- a /Bulk body is also a request body (scim_provision.max_body_size)
			'maxPayloadSize', LEAST(pg_catalog.current_setting('scim_provision.bulk_max_payload')::integer,
								  pg_catalog.current_setting('scim_provision.max_body_size')::integer)),
		'filter', pg_catalog.jsonb_build_object('supported', true,
			'maxResults', pg_catalog.current_setting('scim_provision.max_results')::integer),
		'changePassword', pg_catalog.jsonb_build_object('supported', false),
		'sort', pg_catalog.jsonb_build_object('supported', true),
		'pagination', pg_catalog.jsonb_build_object(	-- RFC 9865; 68_cursor.sql
			'cursor', true, 'index', true, 'defaultPaginationMethod', 'index',
			'defaultPageSize', pg_catalog.current_setting('scim_provision.max_results')::integer,
			'maxPageSize', pg_catalog.current_setting('scim_provision.max_results')::integer,
			'cursorTimeout', pg_catalog.current_setting('scim_provision.cursor_timeout')::integer),
		'etag', pg_catalog.jsonb_build_object('supported', true),
		'authenticationSchemes', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
			'type', 'oauthbearertoken',
			'name', 'OAuth Bearer Token',
			'description', 'A bearer token created with scim.create_token, sent as "Authorization: Bearer <token>"; every endpoint requires it.',
			'specUri', 'https://www.rfc-editor.org/info/rfc6750',
			'primary', true)),
		'meta', pg_catalog.jsonb_build_object(
			'resourceType', 'ServiceProviderConfig',
			'location', pg_catalog.rtrim(pg_catalog.current_setting('scim_provision.base_url'), '/') || '/ServiceProviderConfig'));
$$;
COMMENT ON FUNCTION scim.service_provider_config() IS
	'The SCIM ServiceProviderConfig resource (RFC 7643 section 5) describing this endpoint';

-- A ListResponse of discovery resources (all of them: no paging).
CREATE FUNCTION scim._discovery_list(resources jsonb)
	RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.jsonb_build_object(
		'schemas', pg_catalog.jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:ListResponse'),
		'totalResults', pg_catalog.jsonb_array_length(resources),
		'startIndex', 1,
		'itemsPerPage', pg_catalog.jsonb_array_length(resources),
		'Resources', resources);
$$;

REVOKE ALL ON FUNCTION scim._discovery_list(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scim.service_provider_config() TO scim_reader, scim_admin;
