/*-------------------------------------------------------------------------
 *
 * patch.c
 *		SCIM PATCH engine (RFC 7644 section 3.5.2) over the JSON DOM.
 *
 * The engine copies the resource, applies every operation to the copy in
 * order and returns it; the first failing operation stops everything and
 * the caller gets an error instead, so a request is applied entirely or not
 * at all.  Attribute facts (type, multi-valuedness, mutability, required,
 * caseExact, sub-attributes, canonical names, schema URNs and their SCIM 1.1
 * aliases) come from the attribute registry; names in requests match the
 * registry case-insensitively and the result always uses canonical names.
 *
 * Rules, following RFC 7644 section 3.5.2 and RFC 7643:
 *
 * add	- simple single-valued: set.  Complex single-valued: merge the given
 *		  sub-attributes.  Multi-valued: append each value that is not there
 *		  already; a complex value whose "value" (and every other sub-attribute
 *		  both sides carry) equals an existing element's is the same element
 *		  and its extra sub-attributes are merged into it.  With a value filter
 *		  the matching elements are merged into (or get the sub-attribute).
 *		  When the filter matches nothing and is a conjunction of "eq"
 *		  comparisons (emails[type eq "work"].value, what Entra ID sends),
 *		  a new element is built from those comparisons and the value (RFC
 *		  7644 erratum 8097); any other filter that matches nothing is
 *		  noTarget.
 * replace - like add for single-valued attributes (a complex value's
 *		  unnamed sub-attributes are left alone, RFC 7644 section 3.5.2.3).
 *		  Multi-valued without a filter: the attribute gets exactly the given
 *		  values.  With a filter: the matching elements are merged with the
 *		  value (or get the sub-attribute); when nothing matches, a filter of
 *		  "eq" comparisons joined by "and" builds the element exactly as add
 *		  does (Entra ID's replace emails[type eq "work"].value for a user
 *		  without one); any other filter that matches nothing is noTarget.
 * remove - a path is required (noTarget without one).  Removes the
 *		  attribute, sub-attribute, or the elements a filter matches; a filter
 *		  that matches nothing changes nothing (the resource is already in the
 *		  requested state, so retried requests succeed).  A "value" on a
 *		  remove of a multi-valued attribute (Entra ID and OneLogin send
 *		  {"op":"remove","path":"members","value":[{"value":"id"}]}) removes
 *		  just the elements that carry all the given sub-attribute values.
 * null, [] and a missing value are the same state (RFC 7643 section 2.5):
 *		  replace with null removes; add with null adds nothing.
 *		  An attribute, extension object or complex value left empty is
 *		  removed, never kept as [] or {}.
 * primary - when an operation sets "primary": true on one element, the
 *		  others lose it (RFC 7643 section 2.4); more than one new primary
 *		  element in one operation is invalidValue.
 * mutability - readOnly attributes cannot be added, replaced or removed;
 *		  in an operation without a path an unchanged readOnly value is
 *		  skipped, so a client echoing "id" back is not refused.  readOnly
 *		  sub-attributes inside a given complex value are ignored.  An
 *		  immutable attribute may be set while it has no value, and
 *		  setting its current value again is a no-op.  Removing a required
 *		  attribute (or replacing it with null) is mutability.
 *
 * What real IdPs send and is accepted: "op" in any case; member names of
 * an operation in any case; string booleans ("True", "false") for boolean
 * attributes; numbers for string attributes (kept as their text); for a
 * single-valued attribute a one-element array ([x] or [{"value":x}], Entra
 * ID), and for a simple single-valued attribute an object {"value": x}; a
 * bare string for a complex attribute with a "value" sub-attribute (Entra
 * ID's manager); a single object for a multi-valued attribute (OneLogin's
 * emails); no-path values whose keys are attribute paths ("name.givenName",
 * "urn:...:enterprise:2.0:User:department", even value-filter paths) or
 * schema URNs holding an object of that schema's attributes; a "schemas"
 * member in a no-path value, which is ignored (the engine keeps "schemas"
 * in step with the extension objects present); a whole PatchOp message in
 * place of the Operations array.
 *
 * Every recursion here is bounded: values are checked against the depth
 * limits before they are used, and filter templates stop at a fixed depth.
 *
 * src/patch.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"
#include "json.h"
#include "patch.h"
#include "registry.h"

const ScimPatchLimits scim_patch_default_limits = {
	SCIM_PATCH_DEFAULT_MAX_OPERATIONS,
	SCIM_PATCH_DEFAULT_MAX_VALUE_DEPTH,
	SCIM_PATCH_DEFAULT_MAX_RESOURCE_DEPTH,
	SCIM_PATCH_DEFAULT_MAX_PATH_LENGTH,
	SCIM_PATCH_DEFAULT_MAX_WORK
};

/* how deep an "and" chain of a value filter may be to build an element */
#define PA_TEMPLATE_MAX_DEPTH 32
/* how deep a value filter's tree may be for its names to be checked */
#define PA_FILTER_CHECK_MAX_DEPTH 256

typedef enum PaOp
{
	PA_OP_ADD,
	PA_OP_REMOVE,
	PA_OP_REPLACE
} PaOp;

/*
 * What the engine needs to know about an attribute, filled from the
 * registry.  Only pa_lookup_* below talk to the registry.
 */
typedef enum PaType
{
	PA_STRING,					/* string, dateTime, binary, reference */
	PA_BOOLEAN,
	PA_DECIMAL,
	PA_INTEGER,
	PA_COMPLEX
} PaType;

typedef enum PaMut
{
	PA_READWRITE,
	PA_READONLY,
	PA_IMMUTABLE,
	PA_WRITEONLY
} PaMut;

typedef struct PaAttr
{
	const char *name;			/* canonical name, NUL-terminated, static */
	size_t		namelen;
	PaType		type;
	PaMut		mut;
	bool		multi;
	bool		required;
	bool		case_exact;
	const void *reg;			/* registry definition, for sub-attributes */
} PaAttr;

typedef struct PaSchema
{
	const char *urn;			/* canonical URN, static */
	bool		core;			/* attributes at the top level of the resource */
	const void *reg;
} PaSchema;

typedef struct PaTarget
{
	PaSchema	schema;
	PaAttr		attr;
	bool		has_sub;
	PaAttr		sub;
	const ScimFilterNode *filter;	/* value filter, or NULL */
	bool		all_elements;	/* attr.sub on a multi-valued attribute */
} PaTarget;

typedef struct PaCtx
{
	ScimArena  *arena;
	const char *rtype;
	const ScimPatchLimits *limits;
	ScimPatchError *err;
	SjValue    *res;			/* the working copy */
	bool		nopath;			/* applying a member of a no-path value */
	size_t		work_left;		/* comparisons this request may still make */
} PaCtx;

/* Result of a mutability check. */
typedef enum PaGo
{
	PA_GO,						/* go ahead */
	PA_SKIP,					/* nothing to do (same value again) */
	PA_STOP						/* error already recorded */
} PaGo;

/* ---------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------
 */

#if defined(__GNUC__) || defined(__clang__)
#define PA_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PA_PRINTF(f, a)
#endif

static bool pa_fail(PaCtx *c, ScimPatchErrorCode code, const char *fmt,...) PA_PRINTF(3, 4);

static bool
pa_fail(PaCtx *c, ScimPatchErrorCode code, const char *fmt,...)
{
	va_list		ap;

	if (c->err->code != SCIM_PATCH_OK)
		return false;			/* keep the first error */
	c->err->code = code;
	va_start(ap, fmt);
	vsnprintf(c->err->message, sizeof(c->err->message), fmt, ap);
	va_end(ap);
	return false;
}

static bool
pa_oom(PaCtx *c)
{
	return pa_fail(c, SCIM_PATCH_OUT_OF_MEMORY, "out of memory while applying the patch");
}

/*
 * Account for work: comparisons of elements and object members.  The
 * engine never checks for interrupts, so a request whose values make the
 * quadratic parts (duplicate detection, merges) expensive is refused once
 * it has spent limits->max_work, instead of holding a backend for minutes.
 */
static bool
pa_spend(PaCtx *c, size_t units)
{
	if (units > c->work_left)
	{
		c->work_left = 0;
		return pa_fail(c, SCIM_PATCH_TOO_MANY,
					   "the request needs more than %zu comparisons; send fewer or smaller values per request",
					   c->limits->max_work);
	}
	c->work_left -= units;
	return true;
}

/* the cost of comparing two values: members of one times members of the other */
static size_t
pa_cost(const SjValue *a, const SjValue *b)
{
	size_t		na = a != NULL && a->type == SJ_OBJECT ? a->u.obj.count : 0;
	size_t		nb = b != NULL && b->type == SJ_OBJECT ? b->u.obj.count : 0;

	return 1 + na * (nb + 1);
}

const char *
scim_patch_error_type(ScimPatchErrorCode code)
{
	switch (code)
	{
		case SCIM_PATCH_INVALID_SYNTAX:
			return "invalidSyntax";
		case SCIM_PATCH_INVALID_PATH:
			return "invalidPath";
		case SCIM_PATCH_NO_TARGET:
			return "noTarget";
		case SCIM_PATCH_INVALID_VALUE:
			return "invalidValue";
		case SCIM_PATCH_MUTABILITY:
			return "mutability";
		case SCIM_PATCH_TOO_MANY:
			return "tooMany";
		case SCIM_PATCH_OK:
		case SCIM_PATCH_OUT_OF_MEMORY:
			break;
	}
	return NULL;
}

/* copy at most size-1 bytes of a possibly NUL-containing string */
static void
pa_copy_text(char *dst, size_t size, const char *src, size_t len)
{
	size_t		n = len < size - 1 ? len : size - 1;

	memcpy(dst, src, n);
	/* when cutting, do not leave half a UTF-8 sequence at the end */
	if (n < len)
	{
		while (n > 0 && ((unsigned char) dst[n - 1] & 0xC0) == 0x80)
			n--;
		if (n > 0 && ((unsigned char) dst[n - 1] & 0xC0) == 0xC0)
			n--;
	}
	dst[n] = '\0';
}

static const char *
pa_describe(const SjValue *v)
{
	if (v == NULL)
		return "nothing";
	switch (v->type)
	{
		case SJ_NULL:
			return "null";
		case SJ_BOOL:
			return "a boolean";
		case SJ_NUMBER:
			return "a number";
		case SJ_STRING:
			return "a string";
		case SJ_ARRAY:
			return "an array";
		case SJ_OBJECT:
			return "an object";
	}
	return "an unknown value";
}

/* ---------------------------------------------------------------------
 * Registry access (the only place that knows registry.h)
 * ---------------------------------------------------------------------
 */

static void
pa_attr_from_def(const ScimAttrDef *d, PaAttr *out)
{
	out->name = d->name;
	out->namelen = strlen(d->name);
	switch (d->type)
	{
		case SCIM_TYPE_BOOLEAN:
			out->type = PA_BOOLEAN;
			break;
		case SCIM_TYPE_DECIMAL:
			out->type = PA_DECIMAL;
			break;
		case SCIM_TYPE_INTEGER:
			out->type = PA_INTEGER;
			break;
		case SCIM_TYPE_COMPLEX:
			out->type = PA_COMPLEX;
			break;
		default:
			out->type = PA_STRING;
			break;
	}
	switch (d->mutability)
	{
		case SCIM_MUT_READ_ONLY:
			out->mut = PA_READONLY;
			break;
		case SCIM_MUT_IMMUTABLE:
			out->mut = PA_IMMUTABLE;
			break;
		case SCIM_MUT_WRITE_ONLY:
			out->mut = PA_WRITEONLY;
			break;
		default:
			out->mut = PA_READWRITE;
			break;
	}
	out->multi = d->multi_valued;
	out->required = d->required;
	out->case_exact = d->case_exact;
	out->reg = d;
}

static void
pa_schema_from_def(const ScimSchemaDef *s, PaSchema *out)
{
	out->urn = s->id;
	out->core = !s->is_extension;
	out->reg = s;
}

static bool
pa_core_schema(PaCtx *c, PaSchema *out)
{
	const ScimResourceTypeDef *rt = scim_registry_resource_type(c->rtype);

	if (rt == NULL)
		return false;
	pa_schema_from_def(rt->schema, out);
	return true;
}

/* A schema URN (or SCIM 1.1 alias) of this resource type. */
static bool
pa_lookup_schema(PaCtx *c, const char *urn, size_t len, PaSchema *out)
{
	const ScimSchemaDef *s = scim_registry_schema_n(urn, len);

	if (s == NULL ||
		!scim_registry_schema_allowed(scim_registry_resource_type(c->rtype), s))
		return false;
	pa_schema_from_def(s, out);
	return true;
}

/*
 * An attribute by name (NUL-terminated), in the given schema or, with
 * schema NULL, among the common attributes, the core schema and then the
 * extensions (the registry's order).  Sets *found_in to its schema.
 */
static bool
pa_lookup_attr(PaCtx *c, const PaSchema *schema, const char *name, PaSchema *found_in,
			   PaAttr *out)
{
	ScimAttrRef ref;

	if (!scim_registry_lookup(c->rtype, schema ? schema->urn : NULL, name, NULL, &ref))
		return false;
	pa_schema_from_def(ref.schema, found_in);
	pa_attr_from_def(ref.attr, out);
	return true;
}

static bool
pa_lookup_sub(const PaAttr *parent, const char *name, size_t len, PaAttr *out)
{
	const ScimAttrDef *d;

	if (parent->type != PA_COMPLEX || strlen(name) != len)
		return false;
	d = scim_registry_sub_attr(parent->reg, name);
	if (d == NULL)
		return false;
	pa_attr_from_def(d, out);
	return true;
}

/* ---------------------------------------------------------------------
 * DOM helpers
 * ---------------------------------------------------------------------
 */

static bool
pa_nullish(const SjValue *v)
{
	return v == NULL || v->type == SJ_NULL;
}

/* Depth of nesting, counting containers; stops counting past limit. */
static int
pa_depth(const SjValue *v, int limit)
{
	int			deepest = 0;

	if (v == NULL || (v->type != SJ_ARRAY && v->type != SJ_OBJECT))
		return 0;
	if (limit <= 0)
		return 1;
	if (v->type == SJ_ARRAY)
	{
		for (size_t i = 0; i < v->u.arr.count && deepest < limit; i++)
		{
			int			d = pa_depth(v->u.arr.items[i], limit - 1);

			if (d > deepest)
				deepest = d;
		}
	}
	else
	{
		for (size_t i = 0; i < v->u.obj.count && deepest < limit; i++)
		{
			int			d = pa_depth(v->u.obj.members[i].value, limit - 1);

			if (d > deepest)
				deepest = d;
		}
	}
	return deepest + 1;
}

static SjValue *
pa_get(const SjValue *obj, const char *key, size_t keylen)
{
	SjValue    *v = sj_object_get(obj, key, keylen, true);

	return pa_nullish(v) ? NULL : v;
}

/*
 * Set key (canonical spelling) in obj: the first case-insensitive match
 * takes the canonical key and the value, later case variants go.
 */
static bool
pa_put(PaCtx *c, SjValue *obj, const char *key, size_t keylen, SjValue *value)
{
	size_t		first = SIZE_MAX;
	size_t		out = 0;

	if (value == NULL)
		return pa_oom(c);
	if (!pa_spend(c, 1 + obj->u.obj.count))
		return false;
	for (size_t i = 0; i < obj->u.obj.count; i++)
	{
		SjMember   *m = &obj->u.obj.members[i];

		if (sj_strcaseeq(m->key, m->keylen, key, keylen))
		{
			if (first != SIZE_MAX)
				continue;		/* drop the later variant */
			first = out;
			m->key = key;
			m->keylen = keylen;
			m->value = value;
		}
		if (out != i)
			obj->u.obj.members[out] = *m;
		out++;
	}
	obj->u.obj.count = out;
	if (first != SIZE_MAX)
		return true;
	if (!sj_object_set(c->arena, obj, key, keylen, value, false))
		return pa_oom(c);
	return true;
}

static void
pa_drop(SjValue *obj, const char *key, size_t keylen)
{
	sj_object_remove(obj, key, keylen, true);
}

static bool
pa_is_primary(const SjValue *elem)
{
	const SjValue *p;

	if (elem == NULL || elem->type != SJ_OBJECT)
		return false;
	p = sj_object_get(elem, "primary", 7, true);
	return p != NULL && p->type == SJ_BOOL && p->u.boolean;
}

/* ---------------------------------------------------------------------
 * Values: coercion to the registry's types, comparison
 * ---------------------------------------------------------------------
 */

static bool
pa_number_is_integer(const SjValue *v)
{
	for (size_t i = 0; i < v->u.num.len; i++)
	{
		char		ch = v->u.num.text[i];

		if (ch == '.' || ch == 'e' || ch == 'E')
			return false;
	}
	return true;
}

/*
 * A single-valued attribute given as [x] (Entra ID) means x; for a simple
 * attribute {"value": x} and [{"value": x}] mean x too.  [] means no value.
 * Returns NULL for no value.
 */
static const SjValue *
pa_unwrap_single(const PaAttr *def, const SjValue *v)
{
	if (v != NULL && v->type == SJ_ARRAY)
	{
		if (v->u.arr.count == 0)
			return NULL;
		if (v->u.arr.count == 1)
			v = v->u.arr.items[0];
	}
	if (v != NULL && def->type != PA_COMPLEX && v->type == SJ_OBJECT &&
		v->u.obj.count == 1 &&
		sj_strcaseeq(v->u.obj.members[0].key, v->u.obj.members[0].keylen, "value", 5))
		v = v->u.obj.members[0].value;
	return pa_nullish(v) ? NULL : v;
}

static bool
pa_coerce_simple(PaCtx *c, const PaAttr *def, const SjValue *v, SjValue **out)
{
	*out = NULL;
	switch (def->type)
	{
		case PA_BOOLEAN:
			if (v->type == SJ_BOOL)
				*out = sj_new_bool(c->arena, v->u.boolean);
			else if (v->type == SJ_STRING && sj_strcaseeq(v->u.str.ptr, v->u.str.len, "true", 4))
				*out = sj_new_bool(c->arena, true);
			else if (v->type == SJ_STRING && sj_strcaseeq(v->u.str.ptr, v->u.str.len, "false", 5))
				*out = sj_new_bool(c->arena, false);
			else
				return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
							   "attribute \"%s\" needs a boolean (true or false), not %s",
							   def->name, v->type == SJ_STRING ? "that string" : pa_describe(v));
			break;
		case PA_INTEGER:
			if (v->type != SJ_NUMBER || !pa_number_is_integer(v))
				return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
							   "attribute \"%s\" needs an integer, not %s",
							   def->name, v->type == SJ_NUMBER ? "a fraction" : pa_describe(v));
			*out = sj_new_number(c->arena, v->u.num.text, v->u.num.len);
			break;
		case PA_DECIMAL:
			if (v->type != SJ_NUMBER)
				return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
							   "attribute \"%s\" needs a number, not %s",
							   def->name, pa_describe(v));
			*out = sj_new_number(c->arena, v->u.num.text, v->u.num.len);
			break;
		case PA_STRING:
			if (v->type == SJ_STRING)
				*out = sj_new_string(c->arena, v->u.str.ptr, v->u.str.len);
			else if (v->type == SJ_NUMBER)
				*out = sj_new_string(c->arena, v->u.num.text, v->u.num.len);
			else
				return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
							   "attribute \"%s\" needs a string, not %s",
							   def->name, pa_describe(v));
			break;
		case PA_COMPLEX:
			return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
						   "attribute \"%s\" needs an object, not %s",
						   def->name, pa_describe(v));
	}
	if (*out == NULL)
		return pa_oom(c);
	return true;
}

/* a simple multi-valued sub-attribute: array of coerced values, or NULL if none */
static bool
pa_coerce_simple_list(PaCtx *c, const PaAttr *def, const SjValue *v, SjValue **out)
{
	SjValue    *arr = sj_new_array(c->arena);
	size_t		n = v->type == SJ_ARRAY ? v->u.arr.count : 1;

	*out = NULL;
	if (arr == NULL)
		return pa_oom(c);
	for (size_t i = 0; i < n; i++)
	{
		const SjValue *item = v->type == SJ_ARRAY ? v->u.arr.items[i] : v;
		SjValue    *nv;

		if (pa_nullish(item))
			continue;
		if (!pa_coerce_simple(c, def, item, &nv))
			return false;
		if (!sj_array_append(c->arena, arr, nv))
			return pa_oom(c);
	}
	if (arr->u.arr.count > 0)
		*out = arr;
	return true;
}

/*
 * Coerce a complex value: known sub-attributes get their canonical name
 * and type, readOnly ones are ignored, unknown ones are kept as given.
 * With keep_nulls, null members stay (they mean "remove" in a merge);
 * without, they are dropped.  A bare scalar becomes {"value": scalar} when
 * the attribute has a "value" sub-attribute.
 */
static bool
pa_coerce_complex(PaCtx *c, const PaAttr *def, const SjValue *v, bool keep_nulls,
				  SjValue **out)
{
	SjValue    *obj;
	PaAttr		sub;

	*out = NULL;
	obj = sj_new_object(c->arena);
	if (obj == NULL)
		return pa_oom(c);
	if (v->type == SJ_STRING || v->type == SJ_NUMBER || v->type == SJ_BOOL)
	{
		SjValue    *nv;

		if (!pa_lookup_sub(def, "value", 5, &sub))
			return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
						   "attribute \"%s\" needs an object, not %s",
						   def->name, pa_describe(v));
		if (!pa_coerce_simple(c, &sub, v, &nv) ||
			!pa_put(c, obj, sub.name, sub.namelen, nv))
			return false;
		*out = obj;
		return true;
	}
	if (v->type != SJ_OBJECT)
		return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
					   "attribute \"%s\" needs an object, not %s",
					   def->name, pa_describe(v));
	for (size_t i = 0; i < v->u.obj.count; i++)
	{
		const SjMember *m = &v->u.obj.members[i];
		SjValue    *nv;

		if (!pa_lookup_sub(def, m->key, m->keylen, &sub))
		{
			/* not in the schema: kept as sent */
			char	   *key;

			if (pa_nullish(m->value) && !keep_nulls)
				continue;
			key = scim_arena_strndup(c->arena, m->key, m->keylen);
			nv = sj_deep_copy(c->arena, m->value);
			if (nv == NULL || key == NULL)
				return pa_oom(c);
			if (!pa_put(c, obj, key, m->keylen, nv))
				return false;
			continue;
		}
		if (sub.mut == PA_READONLY)
			continue;
		if (pa_nullish(m->value))
		{
			if (keep_nulls)
			{
				nv = sj_new_null(c->arena);
				if (!pa_put(c, obj, sub.name, sub.namelen, nv))
					return false;
			}
			continue;
		}
		if (sub.multi)
		{
			if (!pa_coerce_simple_list(c, &sub, m->value, &nv))
				return false;
		}
		else
		{
			const SjValue *sv = pa_unwrap_single(&sub, m->value);

			if (sv == NULL)
				nv = keep_nulls ? sj_new_null(c->arena) : NULL;
			else if (sv->type == SJ_ARRAY)
				return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
							   "sub-attribute \"%s.%s\" is single-valued, not an array",
							   def->name, sub.name);
			else if (!pa_coerce_simple(c, &sub, sv, &nv))
				return false;
			if (sv == NULL && !keep_nulls)
				continue;
		}
		if (nv == NULL)
		{
			if (keep_nulls)
				nv = sj_new_null(c->arena);
			else
				continue;
		}
		if (!pa_put(c, obj, sub.name, sub.namelen, nv))
			return false;
	}
	*out = obj;
	return true;
}

/* One element of a multi-valued attribute; *out NULL when it is empty. */
static bool
pa_coerce_element(PaCtx *c, const PaAttr *def, const SjValue *v, SjValue **out)
{
	*out = NULL;
	if (pa_nullish(v))
		return true;
	if (v->type == SJ_ARRAY)
		return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
					   "a value of attribute \"%s\" is an array; arrays do not nest",
					   def->name);
	if (def->type == PA_COMPLEX)
	{
		if (!pa_coerce_complex(c, def, v, false, out))
			return false;
		if ((*out)->u.obj.count == 0)
			*out = NULL;
		return true;
	}
	/* simple multi-valued: x or {"value": x} */
	v = pa_unwrap_single(def, v);
	if (v == NULL)
		return true;
	return pa_coerce_simple(c, def, v, out);
}

static bool
pa_values_equal(const PaAttr *def, const SjValue *a, const SjValue *b)
{
	if (def != NULL && def->type != PA_COMPLEX && !def->case_exact &&
		a != NULL && b != NULL && a->type == SJ_STRING && b->type == SJ_STRING)
		return sj_strcaseeq(a->u.str.ptr, a->u.str.len, b->u.str.ptr, b->u.str.len);
	return sj_equal(a, b);
}

/* compare member key of a complex value through its sub-attribute's caseExact */
static bool
pa_member_equal(const PaAttr *def, const char *key, size_t keylen,
				const SjValue *a, const SjValue *b)
{
	PaAttr		sub;

	if (pa_lookup_sub(def, key, keylen, &sub))
		return pa_values_equal(&sub, a, b);
	return sj_equal(a, b);
}

/* every member of part is in whole with an equal value */
static bool
pa_complex_contains(const PaAttr *def, const SjValue *whole, const SjValue *part)
{
	if (whole->type != SJ_OBJECT || part->type != SJ_OBJECT)
		return false;
	for (size_t i = 0; i < part->u.obj.count; i++)
	{
		const SjMember *m = &part->u.obj.members[i];
		const SjValue *other = sj_object_get(whole, m->key, m->keylen, true);

		if (pa_nullish(m->value))
		{
			if (!pa_nullish(other))
				return false;
			continue;
		}
		if (other == NULL || !pa_member_equal(def, m->key, m->keylen, m->value, other))
			return false;
	}
	return true;
}

/*
 * Is new element e the same as existing element x?  Simple values: equal.
 * Complex: if e has a "value", x must have an equal "value" and every
 * sub-attribute both carry must be equal; without "value", equal members.
 */
static bool
pa_same_element(const PaAttr *def, const SjValue *x, const SjValue *e)
{
	const SjValue *ev;

	if (def->type != PA_COMPLEX || x->type != SJ_OBJECT || e->type != SJ_OBJECT)
		return pa_values_equal(def, x, e);
	ev = pa_get(e, "value", 5);
	if (ev == NULL)
		return pa_complex_contains(def, x, e) && pa_complex_contains(def, e, x);
	for (size_t i = 0; i < e->u.obj.count; i++)
	{
		const SjMember *m = &e->u.obj.members[i];
		const SjValue *other = pa_get(x, m->key, m->keylen);

		if (other == NULL)
		{
			if (sj_strcaseeq(m->key, m->keylen, "value", 5))
				return false;
			continue;
		}
		if (!pa_member_equal(def, m->key, m->keylen, m->value, other))
			return false;
	}
	return true;
}

/* *index of the first element of arr that is the same as e, or -1 */
static bool
pa_find_same(PaCtx *c, const PaAttr *def, const SjValue *arr, const SjValue *e, long *index)
{
	*index = -1;
	for (size_t i = 0; i < arr->u.arr.count; i++)
	{
		if (!pa_spend(c, pa_cost(arr->u.arr.items[i], e)))
			return false;
		if (pa_same_element(def, arr->u.arr.items[i], e))
		{
			*index = (long) i;
			return true;
		}
	}
	return true;
}

/*
 * Merge the members of src into the object dst: null members remove,
 * others set.  Checks sub-attribute mutability for changed members;
 * "immutable_parent" makes any change of an existing member an error.
 */
static bool
pa_merge(PaCtx *c, const PaAttr *def, SjValue *dst, const SjValue *src,
		 bool immutable_parent)
{
	if (!pa_spend(c, pa_cost(src, dst)))
		return false;
	for (size_t i = 0; i < src->u.obj.count; i++)
	{
		const SjMember *m = &src->u.obj.members[i];
		SjValue    *cur = pa_get(dst, m->key, m->keylen);
		PaAttr		sub;
		bool		known = pa_lookup_sub(def, m->key, m->keylen, &sub);

		if (pa_nullish(m->value))
		{
			if (cur == NULL)
				continue;
			if (immutable_parent || (known && sub.mut == PA_IMMUTABLE))
				return pa_fail(c, SCIM_PATCH_MUTABILITY,
							   "sub-attribute \"%s.%s\" is immutable and cannot be removed",
							   def->name, known ? sub.name : m->key);
			if (known && sub.required)
				return pa_fail(c, SCIM_PATCH_MUTABILITY,
							   "sub-attribute \"%s.%s\" is required and cannot be removed",
							   def->name, sub.name);
			pa_drop(dst, m->key, m->keylen);
			continue;
		}
		if (cur != NULL && pa_member_equal(def, m->key, m->keylen, cur, m->value))
			continue;
		if (cur != NULL && (immutable_parent || (known && sub.mut == PA_IMMUTABLE)))
			return pa_fail(c, SCIM_PATCH_MUTABILITY,
						   "sub-attribute \"%s.%s\" is immutable and already has a value",
						   def->name, known ? sub.name : m->key);
		if (!pa_put(c, dst, m->key, m->keylen, m->value))
			return false;
	}
	return true;
}

/* ---------------------------------------------------------------------
 * Primary (RFC 7643 section 2.4)
 * ---------------------------------------------------------------------
 */

typedef struct PaPrimary
{
	SjValue   **before;			/* elements that were primary before */
	size_t		n;
} PaPrimary;

static bool
pa_primary_before(PaCtx *c, const SjValue *arr, PaPrimary *p)
{
	p->before = NULL;
	p->n = 0;
	if (arr == NULL || arr->type != SJ_ARRAY || arr->u.arr.count == 0)
		return true;
	if (!pa_spend(c, arr->u.arr.count))
		return false;
	p->before = scim_arena_alloc(c->arena, arr->u.arr.count * sizeof(SjValue *));
	if (p->before == NULL)
		return pa_oom(c);
	for (size_t i = 0; i < arr->u.arr.count; i++)
		if (pa_is_primary(arr->u.arr.items[i]))
			p->before[p->n++] = arr->u.arr.items[i];
	return true;
}

static bool
pa_primary_after(PaCtx *c, const PaAttr *def, SjValue *arr, const PaPrimary *p)
{
	SjValue    *fresh = NULL;
	size_t		nfresh = 0;

	if (arr == NULL || arr->type != SJ_ARRAY)
		return true;
	if (!pa_spend(c, arr->u.arr.count))
		return false;
	for (size_t i = 0; i < arr->u.arr.count; i++)
	{
		SjValue    *e = arr->u.arr.items[i];
		bool		was = false;

		if (!pa_is_primary(e))
			continue;
		if (!pa_spend(c, p->n))
			return false;
		for (size_t j = 0; j < p->n; j++)
			if (p->before[j] == e)
				was = true;
		if (!was)
		{
			fresh = e;
			nfresh++;
		}
	}
	if (nfresh > 1)
		return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
					   "more than one value of attribute \"%s\" is marked primary",
					   def->name);
	if (nfresh == 0)
		return true;
	for (size_t i = 0; i < arr->u.arr.count; i++)
	{
		SjValue    *e = arr->u.arr.items[i];

		if (e != fresh && pa_is_primary(e))
		{
			SjValue    *f = sj_new_bool(c->arena, false);

			if (!pa_put(c, e, "primary", 7, f))
				return false;
		}
	}
	return true;
}

/* ---------------------------------------------------------------------
 * Containers: the resource for core attributes, the extension object
 * (keyed by its schema URN) for extension attributes.
 * ---------------------------------------------------------------------
 */

static bool
pa_schemas_add(PaCtx *c, const char *urn)
{
	SjValue    *schemas = sj_object_get(c->res, "schemas", 7, true);
	size_t		len = strlen(urn);
	SjValue    *s;

	if (schemas == NULL || schemas->type != SJ_ARRAY)
		return true;
	for (size_t i = 0; i < schemas->u.arr.count; i++)
	{
		const SjValue *x = schemas->u.arr.items[i];

		if (x->type == SJ_STRING && sj_strcaseeq(x->u.str.ptr, x->u.str.len, urn, len))
			return true;
	}
	s = sj_new_string(c->arena, urn, len);
	if (s == NULL || !sj_array_append(c->arena, schemas, s))
		return pa_oom(c);
	return true;
}

static void
pa_schemas_remove(PaCtx *c, const char *urn)
{
	SjValue    *schemas = sj_object_get(c->res, "schemas", 7, true);
	size_t		len = strlen(urn);

	if (schemas == NULL || schemas->type != SJ_ARRAY)
		return;
	for (size_t i = schemas->u.arr.count; i-- > 0;)
	{
		const SjValue *x = schemas->u.arr.items[i];

		if (x->type == SJ_STRING && sj_strcaseeq(x->u.str.ptr, x->u.str.len, urn, len))
			sj_array_remove(schemas, i);
	}
}

static bool
pa_container(PaCtx *c, const PaSchema *s, bool create, SjValue **out)
{
	SjMember   *m;
	SjValue    *obj;
	size_t		len;

	*out = NULL;
	if (s->core)
	{
		*out = c->res;
		return true;
	}
	len = strlen(s->urn);
	m = sj_object_member(c->res, s->urn, len, true);
	if (m != NULL && m->value->type == SJ_OBJECT)
	{
		m->key = s->urn;
		m->keylen = len;
		*out = m->value;
		return true;
	}
	if (m != NULL && m->value->type != SJ_NULL)
		return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
					   "the resource's member \"%s\" is %s, not an object of that schema's attributes",
					   s->urn, pa_describe(m->value));
	if (!create)
		return true;
	obj = sj_new_object(c->arena);
	if (obj == NULL || !pa_put(c, c->res, s->urn, len, obj))
		return pa_oom(c);
	if (!pa_schemas_add(c, s->urn))
		return false;
	*out = obj;
	return true;
}

/* an extension object left empty goes, and so does its URN in "schemas" */
static void
pa_tidy_container(PaCtx *c, const PaSchema *s)
{
	SjValue    *obj;

	if (s->core)
		return;
	obj = sj_object_get(c->res, s->urn, strlen(s->urn), true);
	if (obj != NULL && (obj->type == SJ_NULL ||
						(obj->type == SJ_OBJECT && obj->u.obj.count == 0)))
	{
		pa_drop(c->res, s->urn, strlen(s->urn));
		pa_schemas_remove(c, s->urn);
	}
}

/* ---------------------------------------------------------------------
 * Mutability
 * ---------------------------------------------------------------------
 */

/* May the attribute (with current value cur, NULL if none) be removed? */
static bool
pa_may_remove(PaCtx *c, const PaAttr *def, const char *parent)
{
	const char *kind = parent ? "sub-attribute" : "attribute";
	const char *dot = parent ? "." : "";

	if (parent == NULL)
		parent = "";
	if (def->mut == PA_READONLY)
		return pa_fail(c, SCIM_PATCH_MUTABILITY, "%s \"%s%s%s\" is readOnly",
					   kind, parent, dot, def->name);
	if (def->mut == PA_IMMUTABLE)
		return pa_fail(c, SCIM_PATCH_MUTABILITY, "%s \"%s%s%s\" is immutable and cannot be removed",
					   kind, parent, dot, def->name);
	if (def->required)
		return pa_fail(c, SCIM_PATCH_MUTABILITY, "%s \"%s%s%s\" is required and cannot be removed",
					   kind, parent, dot, def->name);
	return true;
}

/*
 * May cur (NULL if none) become nv?  readOnly: never, except that a no-path
 * value repeating the current value is skipped.  immutable: only while it
 * has no value; the same value again is skipped.
 */
static PaGo
pa_may_set(PaCtx *c, const PaAttr *def, const char *parent, const SjValue *cur,
		   const SjValue *nv)
{
	const char *kind = parent ? "sub-attribute" : "attribute";
	const char *dot = parent ? "." : "";
	bool		same = cur != NULL && pa_values_equal(def, cur, nv);

	if (parent == NULL)
		parent = "";
	if (def->mut == PA_READONLY)
	{
		if (c->nopath && same)
			return PA_SKIP;
		pa_fail(c, SCIM_PATCH_MUTABILITY, "%s \"%s%s%s\" is readOnly",
				kind, parent, dot, def->name);
		return PA_STOP;
	}
	if (def->mut == PA_IMMUTABLE && cur != NULL)
	{
		if (same)
			return PA_SKIP;
		pa_fail(c, SCIM_PATCH_MUTABILITY, "%s \"%s%s%s\" is immutable and already has a value",
				kind, parent, dot, def->name);
		return PA_STOP;
	}
	return PA_GO;
}

/* ---------------------------------------------------------------------
 * Single-valued attributes
 * ---------------------------------------------------------------------
 */

/* name, title, active, manager, ...: no sub-attribute in the path */
static bool
pa_single(PaCtx *c, PaOp op, const PaTarget *t, SjValue *cont, SjValue *cur,
		  const SjValue *value)
{
	const PaAttr *a = &t->attr;
	const SjValue *v = op == PA_OP_REMOVE ? NULL : pa_unwrap_single(a, value);
	SjValue    *nv;

	if (v == NULL)
	{
		if (op == PA_OP_ADD || cur == NULL)
			return true;		/* nothing to add; nothing to remove */
		if (!pa_may_remove(c, a, NULL))
			return false;
		pa_drop(cont, a->name, a->namelen);
		return true;
	}
	if (v->type == SJ_ARRAY)
		return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
					   "attribute \"%s\" is single-valued and takes one value, not an array of %zu",
					   a->name, v->u.arr.count);
	if (a->type == PA_COMPLEX)
	{
		SjValue    *target;

		if (!pa_coerce_complex(c, a, v, true, &nv))
			return false;
		if (cur != NULL && cur->type == SJ_OBJECT)
			target = cur;
		else
		{
			target = sj_new_object(c->arena);
			if (target == NULL)
				return pa_oom(c);
		}
		if (!pa_merge(c, a, target, nv, a->mut == PA_IMMUTABLE && cur != NULL))
			return false;
		if (target->u.obj.count == 0)
		{
			if (cur != NULL && !pa_may_remove(c, a, NULL))
				return false;
			pa_drop(cont, a->name, a->namelen);
			return true;
		}
		if (!pa_container(c, &t->schema, true, &cont))
			return false;
		return pa_put(c, cont, a->name, a->namelen, target);
	}
	if (!pa_coerce_simple(c, a, v, &nv))
		return false;
	switch (pa_may_set(c, a, NULL, cur, nv))
	{
		case PA_STOP:
			return false;
		case PA_SKIP:
			return true;
		case PA_GO:
			break;
	}
	if (!pa_container(c, &t->schema, true, &cont))
		return false;
	return pa_put(c, cont, a->name, a->namelen, nv);
}

/* name.givenName, manager.value: a sub-attribute of a single-valued complex */
static bool
pa_single_sub(PaCtx *c, PaOp op, const PaTarget *t, SjValue *cont, SjValue *cur,
			  const SjValue *value)
{
	const PaAttr *a = &t->attr;
	const PaAttr *s = &t->sub;
	SjValue    *obj = cur != NULL && cur->type == SJ_OBJECT ? cur : NULL;
	SjValue    *sv = obj ? pa_get(obj, s->name, s->namelen) : NULL;
	const SjValue *v = op == PA_OP_REMOVE ? NULL : value;
	SjValue    *nv;

	if (v != NULL && !s->multi)
		v = pa_unwrap_single(s, v);
	if (pa_nullish(v))
	{
		if (op == PA_OP_ADD || sv == NULL)
			return true;
		if (a->mut == PA_IMMUTABLE)
			return pa_may_remove(c, a, NULL);
		if (!pa_may_remove(c, s, a->name))
			return false;
		pa_drop(obj, s->name, s->namelen);
		if (obj->u.obj.count == 0)
			pa_drop(cont, a->name, a->namelen);
		return true;
	}
	if (s->multi)
	{
		if (!pa_coerce_simple_list(c, s, v, &nv))
			return false;
		if (nv == NULL)
			return true;
	}
	else if (v->type == SJ_ARRAY)
		return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
					   "sub-attribute \"%s.%s\" is single-valued and takes one value, not an array",
					   a->name, s->name);
	else if (!pa_coerce_simple(c, s, v, &nv))
		return false;
	switch (pa_may_set(c, s, a->name, sv, nv))
	{
		case PA_STOP:
			return false;
		case PA_SKIP:
			return true;
		case PA_GO:
			break;
	}
	if (a->mut == PA_IMMUTABLE && sv != NULL && !pa_values_equal(s, sv, nv))
		return pa_fail(c, SCIM_PATCH_MUTABILITY,
					   "attribute \"%s\" is immutable and already has a value", a->name);
	if (obj == NULL)
	{
		obj = sj_new_object(c->arena);
		if (obj == NULL)
			return pa_oom(c);
		if (!pa_container(c, &t->schema, true, &cont) ||
			!pa_put(c, cont, a->name, a->namelen, obj))
			return false;
	}
	return pa_put(c, obj, s->name, s->namelen, nv);
}

/* ---------------------------------------------------------------------
 * Multi-valued attributes
 * ---------------------------------------------------------------------
 */

/*
 * The current elements as an array in the container.  A stored single
 * object or scalar (OneLogin's "emails": {...}) becomes a one-element array.
 */
static bool
pa_current_array(PaCtx *c, const PaTarget *t, SjValue *cont, SjValue *cur, SjValue **out)
{
	SjValue    *arr;

	*out = NULL;
	if (cur == NULL)
		return true;
	if (cur->type == SJ_ARRAY)
	{
		*out = cur;
		return true;
	}
	arr = sj_new_array(c->arena);
	if (arr == NULL || !sj_array_append(c->arena, arr, cur))
		return pa_oom(c);
	if (!pa_put(c, cont, t->attr.name, t->attr.namelen, arr))
		return false;
	*out = arr;
	return true;
}

/* the given values of a multi-valued attribute, coerced, without repeats */
static bool
pa_coerce_values(PaCtx *c, const PaAttr *a, const SjValue *v, SjValue **out)
{
	SjValue    *arr = sj_new_array(c->arena);
	size_t		n;

	*out = arr;
	if (arr == NULL)
		return pa_oom(c);
	if (pa_nullish(v))
		return true;
	n = v->type == SJ_ARRAY ? v->u.arr.count : 1;
	for (size_t i = 0; i < n; i++)
	{
		SjValue    *e;
		long		same;

		if (!pa_coerce_element(c, a, v->type == SJ_ARRAY ? v->u.arr.items[i] : v, &e))
			return false;
		if (e == NULL)
			continue;
		if (!pa_find_same(c, a, arr, e, &same))
			return false;
		if (same >= 0)
		{
			if (a->type == PA_COMPLEX &&
				!pa_merge(c, a, arr->u.arr.items[same], e, false))
				return false;
			continue;
		}
		if (!sj_array_append(c->arena, arr, e))
			return pa_oom(c);
	}
	return true;
}

/* put arr as the attribute's value, or remove the attribute when it is empty */
static bool
pa_store_array(PaCtx *c, const PaTarget *t, SjValue *cont, SjValue *arr, bool had)
{
	if (arr->u.arr.count == 0)
	{
		if (!had)
			return true;
		if (t->attr.required)
			return pa_fail(c, SCIM_PATCH_MUTABILITY,
						   "attribute \"%s\" is required and cannot be left without values",
						   t->attr.name);
		if (cont != NULL)
			pa_drop(cont, t->attr.name, t->attr.namelen);
		return true;
	}
	if (!pa_container(c, &t->schema, true, &cont))
		return false;
	return pa_put(c, cont, t->attr.name, t->attr.namelen, arr);
}

/* emails, members, ... with neither filter nor sub-attribute */
static bool
pa_multi(PaCtx *c, PaOp op, const PaTarget *t, SjValue *cont, SjValue *cur,
		 const SjValue *value)
{
	const PaAttr *a = &t->attr;
	SjValue    *arr;
	SjValue    *nv;
	PaPrimary	prim;

	if (!pa_current_array(c, t, cont, cur, &arr))
		return false;

	if (op == PA_OP_REMOVE)
	{
		SjValue    *given;

		if (arr == NULL)
			return true;
		if (pa_nullish(value))
		{
			/* the attribute and all its values */
			if (!pa_may_remove(c, a, NULL))
				return false;
			pa_drop(cont, a->name, a->namelen);
			return true;
		}
		if (a->mut == PA_IMMUTABLE)
			return pa_may_remove(c, a, NULL);
		/* just the given values */
		if (!pa_coerce_values(c, a, value, &given))
			return false;
		for (size_t g = 0; g < given->u.arr.count; g++)
		{
			const SjValue *gv = given->u.arr.items[g];

			for (size_t i = arr->u.arr.count; i-- > 0;)
			{
				const SjValue *x = arr->u.arr.items[i];
				bool		hit;

				if (!pa_spend(c, pa_cost(gv, x)))
					return false;
				hit = a->type == PA_COMPLEX ?
					pa_complex_contains(a, x, gv) : pa_values_equal(a, x, gv);

				if (hit)
					sj_array_remove(arr, i);
			}
		}
		return pa_store_array(c, t, cont, arr, true);
	}

	if (!pa_coerce_values(c, a, value, &nv))
		return false;

	if (op == PA_OP_REPLACE)
	{
		bool		same = arr != NULL && arr->u.arr.count == nv->u.arr.count;

		for (size_t i = 0; same && a->mut == PA_IMMUTABLE && i < nv->u.arr.count; i++)
		{
			long		k1;
			long		k2;

			if (!pa_find_same(c, a, arr, nv->u.arr.items[i], &k1) ||
				!pa_find_same(c, a, nv, arr->u.arr.items[i], &k2))
				return false;
			same = k1 >= 0 && k2 >= 0;
		}
		if (a->mut == PA_IMMUTABLE && arr != NULL && !same)
			return pa_fail(c, SCIM_PATCH_MUTABILITY,
						   "attribute \"%s\" is immutable and already has values", a->name);
		prim.before = NULL;
		prim.n = 0;
		if (!pa_primary_after(c, a, nv, &prim))
			return false;
		return pa_store_array(c, t, cont, nv, arr != NULL);
	}

	/* add */
	if (nv->u.arr.count == 0)
		return true;
	if (arr == NULL)
	{
		arr = sj_new_array(c->arena);
		if (arr == NULL)
			return pa_oom(c);
	}
	if (!pa_primary_before(c, arr, &prim))
		return false;
	for (size_t i = 0; i < nv->u.arr.count; i++)
	{
		SjValue    *e = nv->u.arr.items[i];
		long		k;

		if (!pa_find_same(c, a, arr, e, &k))
			return false;
		if (k >= 0)
		{
			if (a->type == PA_COMPLEX &&
				!pa_merge(c, a, arr->u.arr.items[k], e, a->mut == PA_IMMUTABLE))
				return false;
			continue;
		}
		if (!sj_array_append(c->arena, arr, e))
			return pa_oom(c);
	}
	if (!pa_primary_after(c, a, arr, &prim))
		return false;
	return pa_store_array(c, t, cont, arr, true);
}

/*
 * Build the element a value filter describes: a conjunction of
 * "sub eq literal" comparisons.  false when the filter is anything else.
 */
static bool
pa_template(PaCtx *c, const PaAttr *a, const ScimFilterNode *n, SjValue *elem,
			int depth, bool *ok)
{
	PaAttr		sub;
	SjValue    *nv;

	if (depth > PA_TEMPLATE_MAX_DEPTH)
	{
		*ok = false;
		return true;
	}
	if (n->kind == SF_AND)
		return pa_template(c, a, n->u.bin.left, elem, depth + 1, ok) &&
			(!*ok || pa_template(c, a, n->u.bin.right, elem, depth + 1, ok));
	if (n->kind != SF_COMPARE || n->u.cmp.op != SF_EQ || n->u.cmp.value == NULL ||
		n->u.cmp.value->type == SJ_NULL || n->u.cmp.path.schema != NULL ||
		n->u.cmp.path.sub != NULL ||
		!pa_lookup_sub(a, n->u.cmp.path.attr, strlen(n->u.cmp.path.attr), &sub) ||
		sub.multi)
	{
		*ok = false;
		return true;
	}
	if (!pa_coerce_simple(c, &sub, n->u.cmp.value, &nv))
		return false;
	return pa_put(c, elem, sub.name, sub.namelen, nv);
}

/* evaluate the target's filter over arr into matched[]; returns match count */
static bool
pa_match(PaCtx *c, const PaTarget *t, const SjValue *arr, bool *matched, size_t *nmatch)
{
	*nmatch = 0;
	if (arr == NULL)
		return true;
	if (!pa_spend(c, arr->u.arr.count))
		return false;
	for (size_t i = 0; i < arr->u.arr.count; i++)
	{
		int			r = 1;

		if (t->filter != NULL)
		{
			ScimFilterError fe;

			memset(&fe, 0, sizeof(fe));
			r = scim_filter_match_element(t->filter, arr->u.arr.items[i], c->rtype,
										  t->attr.name, &fe);
			if (r < 0)
				return pa_fail(c, SCIM_PATCH_INVALID_PATH, "%s", fe.message);
		}
		matched[i] = r > 0;
		if (r > 0)
			(*nmatch)++;
	}
	return true;
}

/* emails[type eq "work"], emails[type eq "work"].value, emails.value */
static bool
pa_multi_filtered(PaCtx *c, PaOp op, const PaTarget *t, SjValue *cont, SjValue *cur,
				  const SjValue *value)
{
	const PaAttr *a = &t->attr;
	const PaAttr *s = t->has_sub ? &t->sub : NULL;
	SjValue    *arr;
	bool	   *matched = NULL;
	size_t		nmatch;
	SjValue    *nv = NULL;
	PaPrimary	prim;

	if (!pa_current_array(c, t, cont, cur, &arr))
		return false;
	if (arr != NULL && arr->u.arr.count > 0)
	{
		matched = scim_arena_alloc0(c->arena, arr->u.arr.count * sizeof(bool));
		if (matched == NULL)
			return pa_oom(c);
	}
	if (!pa_match(c, t, arr, matched, &nmatch))
		return false;

	if (op != PA_OP_REMOVE)
	{
		const SjValue *v = value;

		if (s != NULL && !s->multi)
			v = pa_unwrap_single(s, v);
		else if (s == NULL)
			v = pa_unwrap_single(a, v);
		if (pa_nullish(v))
		{
			if (op == PA_OP_ADD)
				return true;
			op = PA_OP_REMOVE;	/* replace with null: remove the target */
		}
		else if (s != NULL && s->multi)
		{
			if (!pa_coerce_simple_list(c, s, v, &nv))
				return false;
			if (nv == NULL)
				return true;
		}
		else if (v->type == SJ_ARRAY)
			return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
						   "the target of \"%s\" takes one value, not an array of %zu",
						   a->name, v->u.arr.count);
		else if (s != NULL)
		{
			if (!pa_coerce_simple(c, s, v, &nv))
				return false;
		}
		else if (a->type == PA_COMPLEX)
		{
			if (!pa_coerce_complex(c, a, v, true, &nv))
				return false;
		}
		else if (!pa_coerce_simple(c, a, v, &nv))
			return false;
	}

	if (op == PA_OP_REMOVE)
	{
		if (nmatch == 0)
			return true;		/* already absent */
		if (s == NULL && (a->mut == PA_IMMUTABLE))
			return pa_may_remove(c, a, NULL);
		for (size_t i = arr->u.arr.count; i-- > 0;)
		{
			SjValue    *e = arr->u.arr.items[i];

			if (!matched[i])
				continue;
			if (s == NULL)
			{
				sj_array_remove(arr, i);
				continue;
			}
			if (e->type != SJ_OBJECT || pa_get(e, s->name, s->namelen) == NULL)
				continue;
			if (a->mut == PA_IMMUTABLE)
				return pa_may_remove(c, a, NULL);
			if (!pa_may_remove(c, s, a->name))
				return false;
			pa_drop(e, s->name, s->namelen);
			if (e->u.obj.count == 0)
				sj_array_remove(arr, i);
		}
		return pa_store_array(c, t, cont, arr, true);
	}

	if (!pa_primary_before(c, arr, &prim))
		return false;
	if (nmatch == 0)
	{
		SjValue    *elem;
		bool		ok = true;

		/*
		 * A replace whose filter matches nothing builds the element like an
		 * add when the filter is a conjunction of "eq" comparisons: Entra ID
		 * sends replace emails[type eq "work"].value for a user without a
		 * work e-mail, and Microsoft's reference implementation and the SCIM
		 * SDKs create it.  Any other no-match replace is noTarget.
		 */
		if (a->type != PA_COMPLEX)
			return pa_fail(c, SCIM_PATCH_NO_TARGET,
						   t->filter != NULL && op == PA_OP_REPLACE ?
						   "the value filter of attribute \"%s\" matches no value to replace" :
						   "the value filter of attribute \"%s\" matches no value", a->name);
		elem = sj_new_object(c->arena);
		if (elem == NULL)
			return pa_oom(c);
		if (t->filter != NULL &&
			!pa_template(c, a, t->filter, elem, 0, &ok))
			return false;
		if (!ok && op == PA_OP_REPLACE)
			return pa_fail(c, SCIM_PATCH_NO_TARGET,
						   "the value filter of attribute \"%s\" matches no value to replace, and a new value can only be made from a filter of \"eq\" comparisons joined by \"and\"",
						   a->name);
		if (!ok)
			return pa_fail(c, SCIM_PATCH_NO_TARGET,
						   "the value filter of attribute \"%s\" matches no value, and a new value can only be made from a filter of \"eq\" comparisons joined by \"and\"",
						   a->name);
		if (s != NULL)
		{
			if (!pa_put(c, elem, s->name, s->namelen, nv))
				return false;
		}
		else if (!pa_merge(c, a, elem, nv, false))
			return false;
		if (arr == NULL)
		{
			arr = sj_new_array(c->arena);
			if (arr == NULL)
				return pa_oom(c);
		}
		{
			long		k;

			if (!pa_find_same(c, a, arr, elem, &k))
				return false;
			if (k < 0 && !sj_array_append(c->arena, arr, elem))
				return pa_oom(c);
		}
	}
	else
	{
		for (size_t i = 0; i < arr->u.arr.count; i++)
		{
			SjValue    *e = arr->u.arr.items[i];

			if (!matched[i])
				continue;
			if (a->type != PA_COMPLEX)
			{
				if (a->mut == PA_IMMUTABLE && !pa_values_equal(a, e, nv))
					return pa_fail(c, SCIM_PATCH_MUTABILITY,
								   "attribute \"%s\" is immutable and already has values", a->name);
				arr->u.arr.items[i] = sj_deep_copy(c->arena, nv);
				if (arr->u.arr.items[i] == NULL)
					return pa_oom(c);
				continue;
			}
			if (e->type != SJ_OBJECT)
				return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
							   "a value of attribute \"%s\" is %s, not an object",
							   a->name, pa_describe(e));
			if (s != NULL)
			{
				SjValue    *sv = pa_get(e, s->name, s->namelen);

				switch (pa_may_set(c, s, a->name, sv, nv))
				{
					case PA_STOP:
						return false;
					case PA_SKIP:
						continue;
					case PA_GO:
						break;
				}
				if (a->mut == PA_IMMUTABLE && sv != NULL)
					return pa_fail(c, SCIM_PATCH_MUTABILITY,
								   "attribute \"%s\" is immutable and already has values", a->name);
				if (!pa_put(c, e, s->name, s->namelen, sj_deep_copy(c->arena, nv)))
					return false;
			}
			else
			{
				SjValue    *copy = sj_deep_copy(c->arena, nv);

				if (copy == NULL)
					return pa_oom(c);
				if (!pa_merge(c, a, e, copy, a->mut == PA_IMMUTABLE))
					return false;
				if (e->u.obj.count == 0)
				{
					sj_array_remove(arr, i);
					memmove(&matched[i], &matched[i + 1],
							(arr->u.arr.count - i) * sizeof(bool));
					i--;
				}
			}
		}
	}
	if (!pa_primary_after(c, a, arr, &prim))
		return false;
	return pa_store_array(c, t, cont, arr, true);
}

/* ---------------------------------------------------------------------
 * Paths and operations
 * ---------------------------------------------------------------------
 */

/*
 * Every name a value filter compares must be a sub-attribute of the
 * attribute (emails[typo eq "x"] is a mistake, not a filter that matches
 * nothing).  Names with a schema or a dot are left to the matcher.
 */
static bool
pa_check_filter_names(PaCtx *c, const PaAttr *a, const ScimFilterNode *n, int depth)
{
	PaAttr		sub;

	if (depth > PA_FILTER_CHECK_MAX_DEPTH)
		return pa_fail(c, SCIM_PATCH_INVALID_PATH,
					   "the value filter of attribute \"%s\" is nested too deeply", a->name);
	switch (n->kind)
	{
		case SF_AND:
		case SF_OR:
			return pa_check_filter_names(c, a, n->u.bin.left, depth + 1) &&
				pa_check_filter_names(c, a, n->u.bin.right, depth + 1);
		case SF_NOT:
			return pa_check_filter_names(c, a, n->u.not.arg, depth + 1);
		case SF_VALUEPATH:
			return pa_fail(c, SCIM_PATCH_INVALID_PATH,
						   "a value filter of attribute \"%s\" cannot hold another value filter",
						   a->name);
		case SF_COMPARE:
			if (n->u.cmp.path.schema != NULL || n->u.cmp.path.sub != NULL)
				return true;
			if (!pa_lookup_sub(a, n->u.cmp.path.attr, strlen(n->u.cmp.path.attr), &sub))
				return pa_fail(c, SCIM_PATCH_INVALID_PATH,
							   "attribute \"%s\" has no sub-attribute \"%s\"",
							   a->name, n->u.cmp.path.attr);
			return true;
	}
	return true;
}

/*
 * Resolve a path (attrPath or valuePath) to a target.  "within" restricts
 * it to one schema (keys of an extension object in a no-path value).
 * *whole_schema is set when the text is a schema URN by itself.
 */
static bool
pa_resolve(PaCtx *c, const PaSchema *within, const char *text, size_t len,
		   PaTarget *t, bool *whole_schema)
{
	ScimFilterLimits fl;
	ScimFilterError fe;
	ScimPatchPath pp;
	const char *subname;

	memset(t, 0, sizeof(*t));
	*whole_schema = false;
	if (len > c->limits->max_path_length)
		return pa_fail(c, SCIM_PATCH_INVALID_PATH, "path is longer than %zu bytes",
					   c->limits->max_path_length);
	if (memchr(text, '\0', len) != NULL)
		return pa_fail(c, SCIM_PATCH_INVALID_PATH, "path contains a NUL character");
	if (within == NULL && pa_lookup_schema(c, text, len, &t->schema))
	{
		*whole_schema = true;
		return true;
	}

	fl.max_length = c->limits->max_path_length;
	fl.max_depth = SCIM_FILTER_DEFAULT_MAX_DEPTH;
	memset(&fe, 0, sizeof(fe));
	memset(&pp, 0, sizeof(pp));
	if (!scim_patch_path_parse(c->arena, text, len, &fl, &pp, &fe))
	{
		if (c->arena->failed)
			return pa_oom(c);
		return pa_fail(c, SCIM_PATCH_INVALID_PATH, "%s", fe.message);
	}

	if (pp.path.schema != NULL)
	{
		PaSchema	named;

		if (!pa_lookup_schema(c, pp.path.schema, strlen(pp.path.schema), &named))
			return pa_fail(c, SCIM_PATCH_INVALID_PATH,
						   "schema \"%s\" is not a schema of %s resources",
						   pp.path.schema, c->rtype);
		if (within != NULL && named.reg != within->reg)
			return pa_fail(c, SCIM_PATCH_INVALID_PATH,
						   "attribute \"%s:%s\" is not in schema \"%s\"",
						   pp.path.schema, pp.path.attr, within->urn);
		within = &named;
		if (!pa_lookup_attr(c, &named, pp.path.attr, &t->schema, &t->attr))
			return pa_fail(c, SCIM_PATCH_INVALID_PATH,
						   "attribute \"%s\" is not defined in schema \"%s\"",
						   pp.path.attr, named.urn);
	}
	else if (!pa_lookup_attr(c, within, pp.path.attr, &t->schema, &t->attr))
	{
		if (within != NULL)
			return pa_fail(c, SCIM_PATCH_INVALID_PATH,
						   "attribute \"%s\" is not defined in schema \"%s\"",
						   pp.path.attr, within->urn);
		return pa_fail(c, SCIM_PATCH_INVALID_PATH,
					   "attribute \"%s\" is not defined for %s resources",
					   pp.path.attr, c->rtype);
	}

	if (pp.path.sub != NULL && (pp.sub != NULL || pp.filter != NULL))
		return pa_fail(c, SCIM_PATCH_INVALID_PATH,
					   "a value filter must follow the attribute name itself, as in \"%s[...]\"",
					   t->attr.name);
	subname = pp.path.sub != NULL ? pp.path.sub : pp.sub;
	if (subname != NULL)
	{
		if (t->attr.type != PA_COMPLEX)
			return pa_fail(c, SCIM_PATCH_INVALID_PATH,
						   "attribute \"%s\" has no sub-attributes", t->attr.name);
		if (!pa_lookup_sub(&t->attr, subname, strlen(subname), &t->sub))
			return pa_fail(c, SCIM_PATCH_INVALID_PATH,
						   "attribute \"%s\" has no sub-attribute \"%s\"",
						   t->attr.name, subname);
		t->has_sub = true;
	}
	if (pp.filter != NULL)
	{
		if (!t->attr.multi)
			return pa_fail(c, SCIM_PATCH_INVALID_PATH,
						   "a value filter needs a multi-valued attribute, and \"%s\" is single-valued",
						   t->attr.name);
		if (t->attr.type == PA_COMPLEX &&
			!pa_check_filter_names(c, &t->attr, pp.filter, 0))
			return false;
		t->filter = pp.filter;
	}
	else if (t->has_sub && t->attr.multi)
		t->all_elements = true;
	return true;
}

static bool
pa_apply_target(PaCtx *c, PaOp op, const PaTarget *t, const SjValue *value)
{
	SjValue    *cont;
	SjValue    *cur = NULL;
	bool		ok;

	if (!pa_container(c, &t->schema, false, &cont))
		return false;
	if (cont != NULL)
		cur = pa_get(cont, t->attr.name, t->attr.namelen);

	/*
	 * readOnly attributes (id, meta, groups, schemas) cannot be touched; a
	 * no-path value that repeats the current value exactly is let through,
	 * so a client echoing part of a GET is not refused.
	 */
	if (t->attr.mut == PA_READONLY)
	{
		if (c->nopath && op != PA_OP_REMOVE && cur != NULL && !t->has_sub &&
			t->filter == NULL && pa_values_equal(&t->attr, cur, value))
			return true;
		return pa_fail(c, SCIM_PATCH_MUTABILITY, "attribute \"%s\" is readOnly", t->attr.name);
	}

	if (!t->attr.multi)
		ok = t->has_sub ? pa_single_sub(c, op, t, cont, cur, value)
			: pa_single(c, op, t, cont, cur, value);
	else if (t->filter == NULL && !t->all_elements)
		ok = pa_multi(c, op, t, cont, cur, value);
	else
		ok = pa_multi_filtered(c, op, t, cont, cur, value);
	if (ok)
		pa_tidy_container(c, &t->schema);
	return ok;
}

/* remove a whole extension object (path = its schema URN) */
static bool
pa_remove_schema(PaCtx *c, const PaSchema *s)
{
	SjValue    *cont;

	if (s->core)
		return pa_fail(c, SCIM_PATCH_INVALID_PATH,
					   "the core schema cannot be removed");
	if (!pa_container(c, s, false, &cont))
		return false;
	if (cont == NULL)
		return true;
	for (size_t i = 0; i < cont->u.obj.count; i++)
	{
		PaAttr		a;
		const SjMember *m = &cont->u.obj.members[i];

		PaSchema	in;

		if (!pa_nullish(m->value) && strlen(m->key) == m->keylen &&
			pa_lookup_attr(c, s, m->key, &in, &a) && !pa_may_remove(c, &a, NULL))
			return false;
	}
	pa_drop(c->res, s->urn, strlen(s->urn));
	pa_schemas_remove(c, s->urn);
	return true;
}

/* add/replace with an object of one schema's attributes (keys may be paths) */
static bool
pa_apply_schema_object(PaCtx *c, PaOp op, const PaSchema *s, const SjValue *v)
{
	if (pa_nullish(v))
		return op == PA_OP_ADD ? true : pa_remove_schema(c, s);
	if (v->type != SJ_OBJECT)
		return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
					   "the value for schema \"%s\" must be an object of its attributes, not %s",
					   s->urn, pa_describe(v));
	for (size_t i = 0; i < v->u.obj.count; i++)
	{
		const SjMember *m = &v->u.obj.members[i];
		PaTarget	t;
		bool		whole;

		if (sj_strcaseeq(m->key, m->keylen, "schemas", 7))
			continue;
		if (!pa_resolve(c, s, m->key, m->keylen, &t, &whole) ||
			!pa_apply_target(c, op, &t, m->value))
			return false;
	}
	return true;
}

/* add/replace without a path: every key of the value object is a path */
static bool
pa_apply_nopath(PaCtx *c, PaOp op, const SjValue *v)
{
	if (v->type != SJ_OBJECT)
		return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
					   "an operation without a path needs an object of attributes as its value, not %s",
					   pa_describe(v));
	c->nopath = true;
	for (size_t i = 0; i < v->u.obj.count; i++)
	{
		const SjMember *m = &v->u.obj.members[i];
		PaTarget	t;
		bool		whole;

		if (sj_strcaseeq(m->key, m->keylen, "schemas", 7))
			continue;
		pa_copy_text(c->err->path, sizeof(c->err->path), m->key, m->keylen);
		c->err->in_value = true;
		if (!pa_resolve(c, NULL, m->key, m->keylen, &t, &whole))
			return false;
		if (whole)
		{
			if (t.schema.core)
			{
				if (pa_nullish(m->value) || m->value->type != SJ_OBJECT)
					return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
								   "the value for schema \"%s\" must be an object of its attributes",
								   t.schema.urn);
				if (!pa_apply_schema_object(c, op, &t.schema, m->value))
					return false;
			}
			else if (!pa_apply_schema_object(c, op, &t.schema, m->value))
				return false;
		}
		else if (!pa_apply_target(c, op, &t, m->value))
			return false;
	}
	c->nopath = false;
	c->err->in_value = false;
	c->err->path[0] = '\0';
	return true;
}

static const SjValue *
pa_member(const SjValue *obj, const char *key)
{
	return sj_object_get(obj, key, strlen(key), true);
}

static bool
pa_apply_operation(PaCtx *c, const SjValue *opv)
{
	const SjValue *opname;
	const SjValue *pathv;
	const SjValue *value;
	PaOp		op;

	if (opv->type != SJ_OBJECT)
		return pa_fail(c, SCIM_PATCH_INVALID_SYNTAX,
					   "an operation must be an object, not %s", pa_describe(opv));
	opname = pa_member(opv, "op");
	if (opname == NULL || opname->type != SJ_STRING)
		return pa_fail(c, SCIM_PATCH_INVALID_SYNTAX,
					   "an operation needs an \"op\" member that is a string");
	if (sj_strcaseeq(opname->u.str.ptr, opname->u.str.len, "add", 3))
		op = PA_OP_ADD;
	else if (sj_strcaseeq(opname->u.str.ptr, opname->u.str.len, "remove", 6))
		op = PA_OP_REMOVE;
	else if (sj_strcaseeq(opname->u.str.ptr, opname->u.str.len, "replace", 7))
		op = PA_OP_REPLACE;
	else
		return pa_fail(c, SCIM_PATCH_INVALID_SYNTAX,
					   "\"op\" must be \"add\", \"remove\" or \"replace\"");
	strcpy(c->err->op, op == PA_OP_ADD ? "add" : op == PA_OP_REMOVE ? "remove" : "replace");

	pathv = pa_member(opv, "path");
	if (pathv != NULL && pathv->type == SJ_NULL)
		pathv = NULL;
	if (pathv != NULL && pathv->type != SJ_STRING)
		return pa_fail(c, SCIM_PATCH_INVALID_SYNTAX,
					   "\"path\" must be a string, not %s", pa_describe(pathv));
	if (pathv != NULL)
		pa_copy_text(c->err->path, sizeof(c->err->path), pathv->u.str.ptr, pathv->u.str.len);

	value = pa_member(opv, "value");
	if (value == NULL && op != PA_OP_REMOVE)
		return pa_fail(c, SCIM_PATCH_INVALID_SYNTAX,
					   "the \"%s\" operation needs a \"value\" member", c->err->op);
	if (value != NULL && pa_depth(value, c->limits->max_value_depth) > c->limits->max_value_depth)
		return pa_fail(c, SCIM_PATCH_INVALID_VALUE,
					   "the value is nested more than %d levels deep",
					   c->limits->max_value_depth);

	if (pathv == NULL)
	{
		if (op == PA_OP_REMOVE)
			return pa_fail(c, SCIM_PATCH_NO_TARGET,
						   "a \"remove\" operation needs a path");
		return pa_apply_nopath(c, op, value);
	}
	else
	{
		PaTarget	t;
		bool		whole;

		if (pathv->u.str.len == 0)
			return pa_fail(c, SCIM_PATCH_INVALID_PATH, "the path is empty");
		if (!pa_resolve(c, NULL, pathv->u.str.ptr, pathv->u.str.len, &t, &whole))
			return false;
		if (whole)
		{
			if (op == PA_OP_REMOVE)
				return pa_remove_schema(c, &t.schema);
			if (pa_nullish(value))
				return op == PA_OP_ADD ? true : pa_remove_schema(c, &t.schema);
			return pa_apply_schema_object(c, op, &t.schema, value);
		}
		return pa_apply_target(c, op, &t, value);
	}
}

/* "User" or "Group" from meta.resourceType or the schemas list; default User */
static const char *
pa_infer_type(const SjValue *res)
{
	const SjValue *meta = sj_object_get(res, "meta", 4, true);
	const SjValue *rt = meta ? sj_object_get(meta, "resourceType", 12, true) : NULL;
	const SjValue *schemas = sj_object_get(res, "schemas", 7, true);

	if (rt != NULL && rt->type == SJ_STRING)
	{
		if (sj_strcaseeq(rt->u.str.ptr, rt->u.str.len, "Group", 5))
			return "Group";
		if (sj_strcaseeq(rt->u.str.ptr, rt->u.str.len, "User", 4))
			return "User";
	}
	if (schemas != NULL && schemas->type == SJ_ARRAY)
	{
		for (size_t i = 0; i < schemas->u.arr.count; i++)
		{
			const SjValue *s = schemas->u.arr.items[i];

			if (s->type == SJ_STRING &&
				sj_strcaseeq(s->u.str.ptr, s->u.str.len,
							 "urn:ietf:params:scim:schemas:core:2.0:Group", 43))
				return "Group";
		}
	}
	return "User";
}

SjValue *
scim_patch_apply(ScimArena *arena, const SjValue *resource, const SjValue *operations,
				 const char *resource_type, const ScimPatchLimits *limits,
				 ScimPatchError *err)
{
	PaCtx		ctx;
	PaCtx	   *c = &ctx;
	const SjValue *ops = operations;
	PaSchema	core;

	memset(err, 0, sizeof(*err));
	memset(&ctx, 0, sizeof(ctx));
	c->arena = arena;
	c->err = err;
	c->limits = limits ? limits : &scim_patch_default_limits;
	c->rtype = resource_type ? resource_type : "User";
	c->work_left = c->limits->max_work;

	if (resource == NULL || resource->type != SJ_OBJECT)
	{
		pa_fail(c, SCIM_PATCH_INVALID_SYNTAX, "the resource must be a JSON object, not %s",
				pa_describe(resource));
		return NULL;
	}
	if (resource_type == NULL)
		c->rtype = pa_infer_type(resource);
	if (!pa_core_schema(c, &core))
	{
		pa_fail(c, SCIM_PATCH_INVALID_SYNTAX, "resource type \"%s\" is not known", c->rtype);
		return NULL;
	}
	if (ops != NULL && ops->type == SJ_OBJECT)
		ops = sj_object_get(ops, "Operations", 10, true);
	if (ops == NULL || ops->type != SJ_ARRAY)
	{
		pa_fail(c, SCIM_PATCH_INVALID_SYNTAX,
				"the operations must be an array of operation objects, or a PatchOp message with one in \"Operations\"");
		return NULL;
	}
	if (ops->u.arr.count == 0)
	{
		pa_fail(c, SCIM_PATCH_INVALID_SYNTAX, "a PATCH request needs at least one operation");
		return NULL;
	}
	if (ops->u.arr.count > (size_t) c->limits->max_operations)
	{
		pa_fail(c, SCIM_PATCH_TOO_MANY,
				"the request has %zu operations, more than the %d allowed",
				ops->u.arr.count, c->limits->max_operations);
		return NULL;
	}
	if (pa_depth(resource, c->limits->max_resource_depth) > c->limits->max_resource_depth)
	{
		pa_fail(c, SCIM_PATCH_INVALID_SYNTAX, "the resource is nested more than %d levels deep",
				c->limits->max_resource_depth);
		return NULL;
	}

	c->res = sj_deep_copy(arena, resource);
	if (c->res == NULL)
	{
		pa_oom(c);
		return NULL;
	}
	for (size_t i = 0; i < ops->u.arr.count; i++)
	{
		err->op_index = (int) i + 1;
		err->op[0] = '\0';
		err->path[0] = '\0';
		err->in_value = false;
		c->nopath = false;
		if (!pa_apply_operation(c, ops->u.arr.items[i]))
		{
			if (err->code == SCIM_PATCH_OK)
				pa_oom(c);
			return NULL;
		}
		if (arena->failed)
		{
			pa_oom(c);
			return NULL;
		}
	}
	err->op_index = 0;
	return c->res;
}
