/*-------------------------------------------------------------------------
 *
 * json_bridge.c
 *		Conversions between jsonb and the pure JSON DOM (see json_bridge.h).
 *
 * sj_from_jsonb walks the jsonb with a JsonbIterator, never through text,
 * keeping an explicit stack of open containers so that nesting depth costs
 * no C stack, and refusing documents nested deeper than
 * scim_provision.max_json_depth (request_limits.c).  Numerics become their numeric_out text.  sj_to_jsonb builds
 * the jsonb with pushJsonbValue; numbers go through numeric_in, after a
 * check that their text is a JSON number (numeric_in alone would also take
 * "NaN" or " 1 ").  Strings cross the boundary as UTF-8 on the DOM side and
 * in the database encoding on the jsonb side, and are verified on the way
 * in, so a DOM string holding NUL or invalid UTF-8 is refused.
 *
 * src/json_bridge.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "json_bridge.h"
#include "scim_provision.h"

void
scim_backend_arena_init(ScimArena *a)
{
	scim_arena_init(a, &scim_palloc_allocator);
}

static void
arena_exhausted(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("out of memory"),
			 errdetail("The JSON document does not fit in the memory limit of its arena.")));
}

/* A jsonb scalar as a DOM value. */
static SjValue *
scalar_from_jsonb(ScimArena *arena, const JsonbValue *v)
{
	SjValue    *result = NULL;

	switch (v->type)
	{
		case jbvNull:
			result = sj_new_null(arena);
			break;
		case jbvBool:
			result = sj_new_bool(arena, v->val.boolean);
			break;
		case jbvNumeric:
			{
				char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out,
																		NumericGetDatum(v->val.numeric)));

				result = sj_new_number(arena, text, strlen(text));
				pfree(text);
			}
			break;
		case jbvString:
			{
				char	   *utf8 = pg_server_to_any(v->val.string.val, v->val.string.len, PG_UTF8);

				if (utf8 == v->val.string.val)
					result = sj_new_string(arena, utf8, v->val.string.len);
				else
				{
					result = sj_new_string(arena, utf8, strlen(utf8));
					pfree(utf8);
				}
			}
			break;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
	if (result == NULL)
		arena_exhausted();
	return result;
}

/* Attach a finished value to the innermost open container. */
static void
attach(ScimArena *arena, SjValue *parent, const char *key, size_t keylen, SjValue *child)
{
	bool		ok;

	if (parent->type == SJ_ARRAY)
		ok = sj_array_append(arena, parent, child);
	else
		ok = sj_object_append(arena, parent, key, keylen, child);	/* jsonb keys are unique */
	if (!ok)
		arena_exhausted();
}

SjValue *
sj_from_jsonb(ScimArena *arena, Jsonb *jb)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	SjValue   **stack;
	int			depth = 0;
	int			stack_size = 16;
	SjValue    *root = NULL;
	bool		raw_scalar = false;
	char	   *key = NULL;
	size_t		keylen = 0;

	stack = palloc(stack_size * sizeof(SjValue *));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		SjValue    *value;

		CHECK_FOR_INTERRUPTS();
		switch (tok)
		{
			case WJB_BEGIN_ARRAY:
				if (v.val.array.rawScalar)
				{
					/* a scalar document: one element in a pseudo-array */
					raw_scalar = true;
					continue;
				}
				value = sj_new_array(arena);
				if (value == NULL)
					arena_exhausted();
				if (v.val.array.nElems > 0)
				{
					value->u.arr.items = scim_arena_alloc(arena, v.val.array.nElems * sizeof(SjValue *));
					if (value->u.arr.items == NULL)
						arena_exhausted();
					value->u.arr.cap = v.val.array.nElems;
				}
				break;
			case WJB_BEGIN_OBJECT:
				value = sj_new_object(arena);
				if (value == NULL)
					arena_exhausted();
				if (v.val.object.nPairs > 0)
				{
					value->u.obj.members = scim_arena_alloc(arena, v.val.object.nPairs * sizeof(SjMember));
					if (value->u.obj.members == NULL)
						arena_exhausted();
					value->u.obj.cap = v.val.object.nPairs;
				}
				break;
			case WJB_KEY:
				{
					char	   *utf8 = pg_server_to_any(v.val.string.val, v.val.string.len, PG_UTF8);

					if (utf8 == v.val.string.val)
					{
						key = utf8;
						keylen = v.val.string.len;
					}
					else
					{
						key = utf8;
						keylen = strlen(utf8);
					}
				}
				continue;
			case WJB_VALUE:
			case WJB_ELEM:
				value = scalar_from_jsonb(arena, &v);
				if (raw_scalar)
					root = value;
				else
					attach(arena, stack[depth - 1], key, keylen, value);
				continue;
			case WJB_END_ARRAY:
			case WJB_END_OBJECT:
				if (raw_scalar)
					continue;
				Assert(depth > 0);
				value = stack[--depth];
				if (depth == 0)
					root = value;
				continue;
			default:
				elog(ERROR, "unexpected jsonb iterator token %d", (int) tok);
				continue;
		}

		/*
		 * a container begins: refuse a document nested deeper than
		 * scim_provision.max_json_depth, so that the DOM's recursive walks
		 * (serializer, comparisons, PATCH, matcher) stay shallow
		 */
		if (depth >= scim_max_json_depth)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalidSyntax: the JSON document nests arrays and objects deeper than %d levels",
							scim_max_json_depth)));
		if (depth > 0)
			attach(arena, stack[depth - 1], key, keylen, value);
		if (depth == stack_size)
		{
			stack_size *= 2;
			stack = repalloc(stack, stack_size * sizeof(SjValue *));
		}
		stack[depth++] = value;
	}
	pfree(stack);
	if (root == NULL)
		elog(ERROR, "empty jsonb document");
	return root;
}

/*
 * A DOM string (UTF-8) as a jsonb string in the database encoding.
 * pg_any_to_server verifies the bytes, so NUL and invalid UTF-8 are refused.
 */
static void
string_to_jsonb(const char *str, size_t len, JsonbValue *out)
{
	char	   *s;

	if (len > (size_t) JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("string too long to represent as jsonb string"),
				 errdetail("Due to an implementation restriction, jsonb strings cannot exceed %d bytes.",
						   JENTRY_OFFLENMASK)));
	s = pg_any_to_server(str, (int) len, PG_UTF8);
	out->type = jbvString;
	out->val.string.val = s;
	out->val.string.len = (s == str) ? (int) len : (int) strlen(s);
}

/* A DOM scalar as a jsonb scalar. */
static void
scalar_to_jsonb(const SjValue *v, JsonbValue *out)
{
	switch (v->type)
	{
		case SJ_NULL:
			out->type = jbvNull;
			break;
		case SJ_BOOL:
			out->type = jbvBool;
			out->val.boolean = v->u.boolean;
			break;
		case SJ_NUMBER:
			if (!sj_number_text_valid(v->u.num.text, v->u.num.len))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid JSON number \"%s\"", v->u.num.text)));
			out->type = jbvNumeric;
			out->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																   CStringGetDatum(v->u.num.text),
																   ObjectIdGetDatum(InvalidOid),
																   Int32GetDatum(-1)));
			break;
		case SJ_STRING:
			string_to_jsonb(v->u.str.ptr, v->u.str.len, out);
			break;
		default:
			elog(ERROR, "unexpected JSON value type %d", (int) v->type);
	}
}

static JsonbValue *
push_value(JsonbParseState **state, const SjValue *v, JsonbIteratorToken as)
{
	JsonbValue	jv;
	JsonbValue *result = NULL;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	switch (v->type)
	{
		case SJ_ARRAY:
			pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
			for (size_t i = 0; i < v->u.arr.count; i++)
				push_value(state, v->u.arr.items[i], WJB_ELEM);
			result = pushJsonbValue(state, WJB_END_ARRAY, NULL);
			break;
		case SJ_OBJECT:
			pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
			for (size_t i = 0; i < v->u.obj.count; i++)
			{
				const SjMember *m = &v->u.obj.members[i];
				JsonbValue	k;

				string_to_jsonb(m->key, m->keylen, &k);
				pushJsonbValue(state, WJB_KEY, &k);
				push_value(state, m->value, WJB_VALUE);
			}
			/* jsonb keeps the last of repeated keys, as the parser does */
			result = pushJsonbValue(state, WJB_END_OBJECT, NULL);
			break;
		default:
			scalar_to_jsonb(v, &jv);
			result = pushJsonbValue(state, as, &jv);
			break;
	}
	return result;
}

Jsonb *
sj_to_jsonb(const SjValue *v)
{
	JsonbParseState *state = NULL;
	JsonbValue	jv;

	if (v == NULL)
		elog(ERROR, "cannot convert a missing JSON value to jsonb");
	if (v->type != SJ_ARRAY && v->type != SJ_OBJECT)
	{
		/* JsonbValueToJsonb wraps a scalar in the raw-scalar pseudo-array */
		scalar_to_jsonb(v, &jv);
		return JsonbValueToJsonb(&jv);
	}
	return JsonbValueToJsonb(push_value(&state, v, WJB_ELEM));
}

JsonbValue *
scim_jsonb_member(JsonbContainer *c, const char *key)
{
	JsonbValue	k;

	if (!JsonContainerIsObject(c))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = (int) strlen(key);
	return findJsonbValueFromContainer(c, JB_FOBJECT, &k);
}
