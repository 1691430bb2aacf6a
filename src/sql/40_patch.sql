
-- ---------------------------------------------------------------------------
-- 40_patch.sql: the RFC 7644 section 3.5.2 PATCH engine (src/patch.c).
-- ---------------------------------------------------------------------------

CREATE FUNCTION scim.patch_apply(resource jsonb, operations jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'scim_patch_apply_sql'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scim.patch_apply(jsonb, jsonb) IS
	'Apply SCIM PATCH operations (the Operations array, or a whole PatchOp message) to a SCIM User or Group resource (type from meta.resourceType or schemas; default User) and return the new resource; all operations or none.  Errors raise SQLSTATE 22023 with the scimType (invalidSyntax, invalidPath, noTarget, invalidValue, mutability, tooMany) as the message prefix and the failing operation''s index and path in the detail';
