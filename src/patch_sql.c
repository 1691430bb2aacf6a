/*-------------------------------------------------------------------------
 *
 * patch_sql.c
 *		scim.patch_apply(resource jsonb, operations jsonb): the SQL face of
 *		the PATCH engine (patch.c).
 *
 * Converts both arguments to the JSON DOM, runs the pure engine and turns
 * the result back into jsonb, all inside a short-lived memory context, so
 * nothing but the result outlives the call.  The resource type comes from
 * the resource itself (meta.resourceType, else the Group core schema in
 * "schemas", else User).  Engine errors become SQLSTATE 22023 with the SCIM
 * scimType as the message prefix (doc/CONTRACTS.md), and an errdetail that
 * names the failing operation by its 1-based index, its op and its path.
 *
 * src/patch_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "json_bridge.h"
#include "patch.h"
#include "scim_provision.h"

PG_FUNCTION_INFO_V1(scim_patch_apply_sql);

static void report_patch_error(const ScimPatchError *err) pg_attribute_noreturn();

static void
report_patch_error(const ScimPatchError *err)
{
	const char *type = scim_patch_error_type(err->code);

	if (type == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("The PATCH engine could not allocate memory for operation %d.",
						   err->op_index)));
	if (err->op_index == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s", type, err->message),
				 errdetail("The request as a whole was refused before any operation was applied.")));
	if (err->in_value)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s", type, err->message),
				 errdetail("Operation %d (\"%s\" without a path) failed at the member \"%s\" of its value; no operation was applied.",
						   err->op_index, err->op, err->path)));
	if (err->path[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s", type, err->message),
				 errdetail("Operation %d (\"%s\" with path \"%s\") failed; no operation was applied.",
						   err->op_index, err->op, err->path)));
	if (err->op[0] != '\0' && err->code != SCIM_PATCH_INVALID_SYNTAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s", type, err->message),
				 errdetail("Operation %d (\"%s\" without a path) failed; no operation was applied.",
						   err->op_index, err->op)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: %s", type, err->message),
			 errdetail("Operation %d is malformed; no operation was applied.",
					   err->op_index)));
}

Datum
scim_patch_apply_sql(PG_FUNCTION_ARGS)
{
	Jsonb	   *resource = PG_GETARG_JSONB_P(0);
	Jsonb	   *operations = PG_GETARG_JSONB_P(1);
	MemoryContext work;
	MemoryContext old;
	ScimArena	arena;
	ScimPatchError err;
	ScimPatchLimits limits;
	SjValue    *res;
	SjValue    *ops;
	SjValue    *out;
	Jsonb	   *built;
	Jsonb	   *result;

	work = AllocSetContextCreate(CurrentMemoryContext, "scim patch_apply",
								 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	scim_backend_arena_init(&arena);
	res = sj_from_jsonb(&arena, resource);
	ops = sj_from_jsonb(&arena, operations);
	limits = scim_patch_default_limits;
	limits.max_operations = scim_max_operations;	/* request_limits.c */
	out = scim_patch_apply(&arena, res, ops, NULL, &limits, &err);
	if (out == NULL)
	{
		ScimPatchError copy = err;

		MemoryContextSwitchTo(old);
		MemoryContextDelete(work);
		report_patch_error(&copy);
	}
	built = sj_to_jsonb(out);
	MemoryContextSwitchTo(old);
	result = (Jsonb *) palloc(VARSIZE(built));
	memcpy(result, built, VARSIZE(built));
	MemoryContextDelete(work);
	PG_RETURN_JSONB_P(result);
}
