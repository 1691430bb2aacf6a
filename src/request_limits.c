/*-------------------------------------------------------------------------
 *
 * request_limits.c
 *		Limits a SCIM request body is held to before anything is spent on it
 *		(issue #15, doc/LIMITS.md).
 *
 *	scim_provision.max_body_size	bytes of one request body (413 tooLarge)
 *	scim_provision.max_json_depth	nesting of arrays and objects in a body
 *									(400 invalidSyntax)
 *	scim_provision.max_operations	PATCH operations plus the member values
 *									they carry, and the members of a Group
 *									POST/PUT (413 tooLarge)
 *
 * All are PGC_SUSET: a client's session cannot raise them.  The body checks
 * run in scim._request_json (users.c) before the text is parsed: the size
 * is compared first, then one pass over the bytes measures the nesting
 * without recursion, so a body nested 100,000 deep never reaches a
 * recursive parser.  The operation count (scim._within_operation_limit) is
 * O(operations): it reads the top level of the jsonb and the top level of
 * each operation, never the values themselves.
 *
 * src/request_limits.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "scim_provision.h"

PG_FUNCTION_INFO_V1(scim_within_operation_limit);

int			scim_max_body_size = 1048576;
int			scim_max_json_depth = 64;
int			scim_max_operations = 1000;

void
scim_request_limits_init_gucs(void)
{
	DefineCustomIntVariable("scim_provision.max_body_size",
							"Largest SCIM request body, in bytes.",
							"A larger body is refused with 413 (scimType tooLarge) before it is parsed; "
							"like nginx's client_max_body_size.",
							&scim_max_body_size,
							1048576, 1024, 256 * 1024 * 1024,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("scim_provision.max_json_depth",
							"Deepest nesting of arrays and objects a SCIM request body may have.",
							"A deeper body is refused with 400 (scimType invalidSyntax) before it is parsed.",
							&scim_max_json_depth,
							64, 8, 256,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("scim_provision.max_operations",
							"Largest number of PATCH operations and member values one SCIM request may hold.",
							"Each PATCH operation counts once, or once per member value it carries; the members "
							"of a Group POST or PUT count the same way.  More is refused with 413 (scimType "
							"tooLarge) before any of it is applied.",
							&scim_max_operations,
							1000, 1, 1000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}

/*
 * Deepest nesting of arrays and objects in a JSON text, stopping as soon as
 * it passes limit (then limit + 1).  Brackets inside strings do not count;
 * the text need not be valid JSON (the parser judges that afterwards).
 */
int
scim_json_text_depth(const char *s, size_t len, int limit)
{
	int			depth = 0;
	int			deepest = 0;
	bool		in_string = false;

	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];

		if (in_string)
		{
			if (c == '\\')
				i++;			/* the escaped character is never a quote */
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"')
			in_string = true;
		else if (c == '[' || c == '{')
		{
			if (++depth > deepest)
			{
				deepest = depth;
				if (deepest > limit)
					return deepest;
			}
		}
		else if ((c == ']' || c == '}') && depth > 0)
			depth--;
	}
	return deepest;
}

/*
 * Refuse a request body over max_body_size (413) or nested deeper than
 * max_json_depth (400), before it is parsed.
 */
void
scim_check_request_body(const char *s, size_t len)
{
	if (len > (size_t) scim_max_body_size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tooLarge: the request body is %zu bytes; the limit is %d",
						len, scim_max_body_size),
				 errdetail("The body was refused before it was parsed (scim_provision.max_body_size).")));
	if (scim_json_text_depth(s, len, scim_max_json_depth) > scim_max_json_depth)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidSyntax: the request body nests arrays and objects deeper than %d levels",
						scim_max_json_depth),
				 errdetail("The body was refused before it was parsed (scim_provision.max_json_depth).")));
}

/* The value of a top-level key of an object container, ASCII case-insensitive. */
static bool
container_get_ci(JsonbContainer *c, const char *key, const char *alt_key, JsonbValue *out)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	bool		want = false;
	bool		found = false;

	if (!JsonContainerIsObject(c))
		return false;
	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			size_t		klen = v.val.string.len;

			want = (klen == strlen(key) && pg_strncasecmp(v.val.string.val, key, klen) == 0) ||
				(alt_key != NULL && klen == strlen(alt_key) &&
				 pg_strncasecmp(v.val.string.val, alt_key, klen) == 0);
		}
		else if (tok == WJB_VALUE && want && !found)
		{
			*out = v;
			found = true;
			want = false;
		}
	}
	return found;
}

/* Number of elements of a value when it is an array, else -1. */
static int64
array_size(const JsonbValue *v)
{
	if (v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data) &&
		!JsonContainerIsScalar(v->val.binary.data))
		return JsonContainerSize(v->val.binary.data);
	return -1;
}

#define GROUP_MEMBERS_URN "urn:ietf:params:scim:schemas:core:2.0:Group:members"

/*
 * The units of a request for scim_provision.max_operations: each PATCH
 * operation counts max(1, the member values it carries: its value when that
 * is an array, or the members array of its value object); a top-level
 * "members" array (Group POST, PUT) counts its elements.
 */
static int64
request_units(Jsonb *jb)
{
	JsonbContainer *root = &jb->root;
	JsonbValue	v;
	int64		units = 0;

	if (!JsonContainerIsObject(root))
		return 0;
	if (container_get_ci(root, "members", GROUP_MEMBERS_URN, &v))
		units += Max(array_size(&v), 0);
	if (container_get_ci(root, "Operations", NULL, &v) && array_size(&v) >= 0)
	{
		JsonbIterator *it = JsonbIteratorInit(v.val.binary.data);
		JsonbIteratorToken tok;
		JsonbValue	op;

		while ((tok = JsonbIteratorNext(&it, &op, true)) != WJB_DONE)
		{
			JsonbValue	value;
			JsonbValue	members;
			int64		n = -1;

			if (tok != WJB_ELEM)
				continue;
			CHECK_FOR_INTERRUPTS();
			if (op.type == jbvBinary &&
				container_get_ci(op.val.binary.data, "value", NULL, &value))
			{
				n = array_size(&value);
				if (n < 0 && value.type == jbvBinary &&
					container_get_ci(value.val.binary.data, "members", GROUP_MEMBERS_URN, &members))
					n = array_size(&members);
			}
			units += Max(n, 1);
		}
	}
	return units;
}

/*
 * scim._within_operation_limit(request jsonb) RETURNS jsonb: the request
 * itself, or 413 tooLarge when it holds more than max_operations units.
 */
Datum
scim_within_operation_limit(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	int64		units = request_units(jb);

	if (units > scim_max_operations)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tooLarge: the request holds %lld operations and member values; the limit is %d",
						(long long) units, scim_max_operations),
				 errdetail("The request as a whole was refused before any of it was applied "
						   "(scim_provision.max_operations).")));
	PG_RETURN_JSONB_P(jb);
}
