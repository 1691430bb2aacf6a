/*-------------------------------------------------------------------------
 *
 * patch.h
 *		SCIM PATCH engine (RFC 7644 section 3.5.2): the pure-core API.
 *
 * scim_patch_apply() applies a list of PATCH operations to a SCIM resource
 * held as a JSON DOM (json.h) and returns a new resource, or NULL and a
 * ScimPatchError saying why, with the SCIM scimType, the 1-based index of
 * the failing operation and its path.  The input resource is never
 * modified: the engine works on a copy, so a failing operation leaves
 * nothing half-applied.  Attribute types, multi-valuedness and mutability
 * come from the attribute registry (registry.h).
 *
 * No backend headers and no global state: everything is allocated in the
 * caller's ScimArena, so the fuzzer and the benchmark drive this directly.
 * patch_sql.c wraps it as scim.patch_apply(resource jsonb, operations jsonb).
 *
 * src/patch.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_PATCH_H
#define SCIM_PATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "json.h"

/* Why an operation failed; scim_patch_error_type() gives the scimType. */
typedef enum ScimPatchErrorCode
{
	SCIM_PATCH_OK = 0,
	SCIM_PATCH_INVALID_SYNTAX,	/* malformed request or operation object */
	SCIM_PATCH_INVALID_PATH,	/* path malformed or names no known attribute */
	SCIM_PATCH_NO_TARGET,		/* remove without path; filter matched nothing */
	SCIM_PATCH_INVALID_VALUE,	/* value of the wrong type or shape */
	SCIM_PATCH_MUTABILITY,		/* readOnly/immutable/required attribute */
	SCIM_PATCH_TOO_MANY,		/* more operations or work than the limits allow */
	SCIM_PATCH_OUT_OF_MEMORY	/* the arena refused an allocation */
} ScimPatchErrorCode;

typedef struct ScimPatchError
{
	ScimPatchErrorCode code;
	int			op_index;		/* 1-based index of the operation; 0 = the request */
	char		op[16];			/* "add", "remove", "replace" or "" */
	char		path[256];		/* the path as sent (truncated), "" if none; with
								 * in_value, the key of the no-path value */
	bool		in_value;		/* the operation had no path; path is a key */
	char		message[384];	/* lower-case, without the scimType prefix */
} ScimPatchError;

typedef struct ScimPatchLimits
{
	int			max_operations; /* operations per request */
	int			max_value_depth;	/* nesting of an operation's value */
	int			max_resource_depth; /* nesting of the resource */
	size_t		max_path_length;	/* bytes of one path */
	size_t		max_work;		/* element and member comparisons per request */
} ScimPatchLimits;

#define SCIM_PATCH_DEFAULT_MAX_OPERATIONS 1000
#define SCIM_PATCH_DEFAULT_MAX_VALUE_DEPTH 32
#define SCIM_PATCH_DEFAULT_MAX_RESOURCE_DEPTH 64
#define SCIM_PATCH_DEFAULT_MAX_PATH_LENGTH 4096
/* about half a second of work at most; far above any real IdP request */
#define SCIM_PATCH_DEFAULT_MAX_WORK ((size_t) 50000000)

extern const ScimPatchLimits scim_patch_default_limits;

/*
 * Apply "operations" to "resource" of type resource_type ("User" or
 * "Group").  "operations" is the Operations array, or a whole PatchOp
 * message (an object with an "Operations" member).  Returns the new
 * resource, allocated in arena (it shares no structure with the inputs;
 * canonical attribute names point to the registry's static strings), or
 * NULL with *err filled in.  limits may be NULL for the defaults.
 */
extern SjValue *scim_patch_apply(ScimArena *arena, const SjValue *resource,
								 const SjValue *operations, const char *resource_type,
								 const ScimPatchLimits *limits, ScimPatchError *err);

/* "invalidPath", "noTarget", ...; NULL for SCIM_PATCH_OK and out-of-memory. */
extern const char *scim_patch_error_type(ScimPatchErrorCode code);

#endif							/* SCIM_PATCH_H */
