/*-------------------------------------------------------------------------
 *
 * filter_match.c
 *		Evaluate a SCIM filter AST over a JSON DOM resource (pure core).
 *
 * Semantics (RFC 7644 section 3.4.2.2, RFC 7643 section 2):
 *
 *	- Attribute names are matched case-insensitively.  Types and caseExact
 *	  come from the registry (userName is case-insensitive, externalId and
 *	  id are case-exact); attributes the registry does not know get the RFC
 *	  7643 defaults: string, caseExact false, multi-valued when the value is
 *	  an array.
 *	- A multi-valued attribute matches when any of its values does; a
 *	  multi-valued complex attribute without a sub-attribute ("emails co x")
 *	  compares its "value" sub-attribute.  In a value filter
 *	  (emails[type eq "work" and value co "@x"]) one element must satisfy
 *	  the whole bracketed filter.
 *	- pr is false for null, "", [] and {} (and arrays of only those).
 *	  "eq null" means "not pr", "ne null" means "pr".
 *	- ne is "some value differs": an absent attribute matches neither eq nor
 *	  ne, exactly as the SQL predicate of filter_sql.c (NULL) behaves.
 *	- dateTime attributes compare by instant (time zones honoured, no zone
 *	  = UTC); numbers by exact decimal value; strings by code point after
 *	  simple lower-casing when caseExact is false.
 *	- Ordering operators on booleans or binary, co/sw/ew on booleans,
 *	  numbers and dateTimes, and values of the wrong type for a known
 *	  attribute are invalidFilter (checked for the whole tree before any
 *	  resource is looked at, so the answer never depends on the data).
 *	- returned:never attributes (password) never match.
 *
 * No allocation: comparisons stream over UTF-8.  Recursion follows the AST,
 * whose depth the parser bounds.
 *
 * src/filter_match.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"

/* ---------------------------------------------------------------------
 * Case-insensitive text
 * ---------------------------------------------------------------------
 */

/*
 * Simple lower-case mapping of one code point: ASCII, Latin-1, Latin
 * Extended-A/B (pairs), Greek, Cyrillic, Armenian, Georgian-free, Latin
 * Extended Additional, Greek Extended is left alone, full-width Latin.
 * This mirrors what lower() does for the scripts SCIM user data contains;
 * anything else compares exactly.
 */
static unsigned int
lower_cp(unsigned int c)
{
	if (c < 0x80)
		return (c >= 'A' && c <= 'Z') ? c + 32 : c;
	if (c < 0x100)
		return ((c >= 0xC0 && c <= 0xDE) && c != 0xD7) ? c + 32 : c;
	if (c < 0x180)
	{
		if (c == 0x130)
			return 'i';
		if (c == 0x178)
			return 0xFF;
		if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) ||
			(c >= 0x14A && c <= 0x177))
			return (c & 1) ? c : c + 1;
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
			return (c & 1) ? c + 1 : c;
		return c;
	}
	if (c >= 0x370 && c < 0x400)
	{
		if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)
			return c + 32;
		if (c == 0x386)
			return 0x3AC;
		if (c >= 0x388 && c <= 0x38A)
			return c + 37;
		if (c == 0x38C)
			return 0x3CC;
		if (c == 0x38E || c == 0x38F)
			return c + 63;
		return c;
	}
	if (c >= 0x400 && c < 0x530)
	{
		if (c <= 0x40F)
			return c + 80;
		if (c <= 0x42F)
			return c + 32;
		if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) ||
			(c >= 0x4D0 && c <= 0x52F))
			return (c & 1) ? c : c + 1;
		if (c == 0x4C0)
			return 0x4CF;
		if (c >= 0x4C1 && c <= 0x4CE)
			return (c & 1) ? c + 1 : c;
		return c;
	}
	if (c >= 0x531 && c <= 0x556)
		return c + 48;
	if (c >= 0x1E00 && c <= 0x1EFF)
		return (c == 0x1E9E) ? 0xDF : ((c >= 0x1E96 && c <= 0x1E9F) ? c : ((c & 1) ? c : c + 1));
	if (c == 0x212A)
		return 'k';
	if (c == 0x212B)
		return 0xE5;
	if (c >= 0xFF21 && c <= 0xFF3A)
		return c + 32;
	return c;
}

/* Decode one code point at s[*i]; malformed bytes map above U+10FFFF. */
static unsigned int
next_cp(const char *s, size_t len, size_t *i)
{
	const unsigned char *u = (const unsigned char *) s + *i;
	size_t		avail = len - *i;
	unsigned int c = u[0];
	size_t		n;
	unsigned int cp;

	if (c < 0x80)
	{
		(*i)++;
		return c;
	}
	if (c >= 0xC2 && c <= 0xDF)
	{
		n = 2;
		cp = c & 0x1F;
	}
	else if (c >= 0xE0 && c <= 0xEF)
	{
		n = 3;
		cp = c & 0x0F;
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		n = 4;
		cp = c & 0x07;
	}
	else
	{
		(*i)++;
		return 0x110000 + c;
	}
	if (n > avail)
	{
		(*i)++;
		return 0x110000 + c;
	}
	for (size_t k = 1; k < n; k++)
	{
		if ((u[k] & 0xC0) != 0x80)
		{
			(*i)++;
			return 0x110000 + c;
		}
		cp = (cp << 6) | (u[k] & 0x3F);
	}
	*i += n;
	return cp;
}

int
scim_text_casecmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t		i = 0,
				j = 0;

	while (i < alen && j < blen)
	{
		unsigned int ca = lower_cp(next_cp(a, alen, &i));
		unsigned int cb = lower_cp(next_cp(b, blen, &j));

		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
	if (i < alen)
		return 1;
	if (j < blen)
		return -1;
	return 0;
}

/* Whether folded h starts with folded n; *consumed = bytes of h used. */
static bool
case_prefix(const char *h, size_t hlen, const char *n, size_t nlen, size_t *consumed)
{
	size_t		i = 0,
				j = 0;

	while (j < nlen)
	{
		if (i >= hlen)
			return false;
		if (lower_cp(next_cp(h, hlen, &i)) != lower_cp(next_cp(n, nlen, &j)))
			return false;
	}
	if (consumed)
		*consumed = i;
	return true;
}

static size_t
count_cps(const char *s, size_t len)
{
	size_t		i = 0,
				n = 0;

	while (i < len)
	{
		next_cp(s, len, &i);
		n++;
	}
	return n;
}

static int
text_cmp(const char *a, size_t alen, const char *b, size_t blen, bool case_exact)
{
	if (!case_exact)
		return scim_text_casecmp(a, alen, b, blen);
	else
	{
		int			r = memcmp(a, b, alen < blen ? alen : blen);

		if (r != 0)
			return r < 0 ? -1 : 1;
		return alen < blen ? -1 : (alen > blen ? 1 : 0);
	}
}

static bool
text_starts(const char *h, size_t hlen, const char *n, size_t nlen, bool case_exact)
{
	if (case_exact)
		return hlen >= nlen && memcmp(h, n, nlen) == 0;
	return case_prefix(h, hlen, n, nlen, NULL);
}

static bool
text_ends(const char *h, size_t hlen, const char *n, size_t nlen, bool case_exact)
{
	size_t		hc,
				nc,
				i = 0;

	if (case_exact)
		return hlen >= nlen && memcmp(h + hlen - nlen, n, nlen) == 0;
	/* simple lower-casing maps code points one to one: skip by count */
	hc = count_cps(h, hlen);
	nc = count_cps(n, nlen);
	if (nc > hc)
		return false;
	for (size_t k = 0; k < hc - nc; k++)
		next_cp(h, hlen, &i);
	return scim_text_casecmp(h + i, hlen - i, n, nlen) == 0;
}

static bool
text_contains(const char *h, size_t hlen, const char *n, size_t nlen, bool case_exact)
{
	size_t		i = 0;

	if (nlen == 0)
		return true;
	while (i < hlen)
	{
		if (case_exact ? (hlen - i >= nlen && memcmp(h + i, n, nlen) == 0)
			: case_prefix(h + i, hlen - i, n, nlen, NULL))
			return true;
		next_cp(h, hlen, &i);
	}
	return false;
}

/* ---------------------------------------------------------------------
 * dateTime
 * ---------------------------------------------------------------------
 */
static bool
digits(const char *s, size_t len, size_t at, int n, int *out)
{
	int			v = 0;

	if (at + n > len)
		return false;
	for (int k = 0; k < n; k++)
	{
		char		c = s[at + k];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*out = v;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static long long
days_from_civil(int y, int m, int d)
{
	long long	yy = (m <= 2) ? y - 1 : y;
	long long	era = (yy >= 0 ? yy : yy - 399) / 400;
	long long	yoe = yy - era * 400;
	long long	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

bool
scim_datetime_parse(const char *s, size_t len, ScimDateTime *out)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			y,
				mo,
				d,
				h,
				mi,
				se;
	size_t		i = 19;
	long long	nanos = 0;
	long long	offset = 0;
	int			maxday;

	if (len < 19 || !digits(s, len, 0, 4, &y) || s[4] != '-' || !digits(s, len, 5, 2, &mo) ||
		s[7] != '-' || !digits(s, len, 8, 2, &d) ||
		(s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
		!digits(s, len, 11, 2, &h) || s[13] != ':' || !digits(s, len, 14, 2, &mi) ||
		s[16] != ':' || !digits(s, len, 17, 2, &se))
		return false;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 60)
		return false;
	maxday = mdays[mo - 1];
	if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		maxday = 29;
	if (d > maxday)
		return false;

	if (i < len && s[i] == '.')
	{
		int			nd = 0;

		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9')
		{
			if (nd < 9)
			{
				nanos = nanos * 10 + (s[i] - '0');
				nd++;
			}
			i++;
		}
		if (nd == 0)
			return false;
		for (; nd < 9; nd++)
			nanos *= 10;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z'))
		i++;
	else if (i < len && (s[i] == '+' || s[i] == '-'))
	{
		int			oh,
					om;

		if (!digits(s, len, i + 1, 2, &oh) || i + 3 >= len || s[i + 3] != ':' ||
			!digits(s, len, i + 4, 2, &om) || oh > 23 || om > 59)
			return false;
		offset = (oh * 60LL + om) * 60;
		if (s[i] == '-')
			offset = -offset;
		i += 6;
	}
	if (i != len)
		return false;

	out->seconds = days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + se - offset;
	out->nanos = (int) nanos;
	return true;
}

int
scim_datetime_cmp(const ScimDateTime *a, const ScimDateTime *b)
{
	if (a->seconds != b->seconds)
		return a->seconds < b->seconds ? -1 : 1;
	if (a->nanos != b->nanos)
		return a->nanos < b->nanos ? -1 : 1;
	return 0;
}

/* ---------------------------------------------------------------------
 * Resolution and type checks (shared with filter_sql.c)
 * ---------------------------------------------------------------------
 */
#if defined(__GNUC__)
#define SCIM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SCIM_PRINTF(f, a)
#endif

static int fail(ScimFilterError *err, int position, const char *fmt,...) SCIM_PRINTF(3, 4);

static int
fail(ScimFilterError *err, int position, const char *fmt,...)
{
	va_list		ap;

	if (err != NULL)
	{
		err->position = position;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* The attribute as the client wrote it, for messages (printable ASCII). */
static const char *
display_path(char *buf, size_t size, const ScimAttrPath *parent, const ScimAttrPath *path)
{
	if (parent != NULL)
		snprintf(buf, size, "%s.%s", parent->attr, path->attr);
	else if (path->sub != NULL)
		snprintf(buf, size, "%s.%s", path->attr, path->sub);
	else
		snprintf(buf, size, "%s", path->attr);
	return buf;
}

/* A value quoted for a message: printable ASCII, at most 40 bytes. */
static const char *
display_value(char *buf, size_t size, const char *s, size_t len)
{
	size_t		n = 0;

	for (size_t i = 0; i < len && n + 5 < size; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (i == 40)
		{
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		buf[n++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char) c : '?';
	}
	buf[n] = '\0';
	return buf;
}

static bool
is_ordering(ScimFilterOp op)
{
	return op == SF_GT || op == SF_GE || op == SF_LT || op == SF_LE;
}

static bool
is_substring(ScimFilterOp op)
{
	return op == SF_CO || op == SF_SW || op == SF_EW;
}

static const char *
json_type_name(const SjValue *v)
{
	switch (v->type)
	{
		case SJ_NULL:
			return "null";
		case SJ_BOOL:
			return v->u.boolean ? "true" : "false";
		case SJ_NUMBER:
			return "a number";
		case SJ_STRING:
			return "a string";
		case SJ_ARRAY:
			return "an array";
		case SJ_OBJECT:
			return "an object";
	}
	return "a value";
}

int
scim_filter_resolve(const char *resource_type, const ScimAttrPath *parent,
					const ScimFilterNode *node, ScimFilterTarget *out,
					ScimFilterError *err)
{
	const ScimAttrPath *path = &node->u.cmp.path;
	ScimFilterOp op = node->u.cmp.op;
	const SjValue *v = node->u.cmp.value;
	const char *opname = scim_filter_op_name(op);
	char		name[160];
	int			pos = node->position;

	memset(out, 0, sizeof(*out));
	display_path(name, sizeof(name), parent, path);

	if (parent != NULL)
		out->known = scim_registry_lookup(resource_type, parent->schema, parent->attr,
										  path->attr, &out->ref);
	else
		out->known = scim_registry_lookup(resource_type, path->schema, path->attr,
										  path->sub, &out->ref);

	if (out->known)
	{
		out->def = out->ref.sub ? out->ref.sub : out->ref.attr;
		if (out->def->type == SCIM_TYPE_COMPLEX)
		{
			const ScimAttrDef *value_sub = scim_registry_sub_attr(out->def, "value");

			if (value_sub != NULL && op != SF_PR)
			{
				out->def = value_sub;
				out->implicit_sub = value_sub->name;
			}
			else if (op != SF_PR)
				return fail(err, pos, "\"%s\" is a complex attribute; compare one of its "
							"sub-attributes (e.g. \"%s.%s\") at position %d",
							name, name, out->def->sub_attrs[0].name, pos);
		}
		out->type = out->def->type;
		out->case_exact = out->def->case_exact;
		out->never = (out->def->returned == SCIM_RET_NEVER ||
					  out->ref.attr->returned == SCIM_RET_NEVER);
	}
	else
	{
		out->type = SCIM_TYPE_STRING;
		out->case_exact = false;
	}

	if (op == SF_PR)
	{
		out->kind = SFV_NONE;
		return 0;
	}
	if (v->type == SJ_NULL)
	{
		if (op != SF_EQ && op != SF_NE)
			return fail(err, pos, "operator %s cannot compare \"%s\" with null at position %d",
						opname, name, pos);
		out->kind = SFV_NULL;
		return 0;
	}

	if (!out->known)
	{
		/* RFC 7643 defaults; the value decides how to compare */
		switch (v->type)
		{
			case SJ_BOOL:
				if (op != SF_EQ && op != SF_NE)
					return fail(err, pos, "operator %s cannot compare \"%s\" with a boolean "
								"at position %d", opname, name, pos);
				out->kind = SFV_BOOL;
				out->boolean = v->u.boolean;
				break;
			case SJ_NUMBER:
				if (is_substring(op))
				{
					out->kind = SFV_STRING;
					out->str = v->u.num.text;
					out->len = v->u.num.len;
				}
				else
				{
					out->kind = SFV_NUMBER;
					out->number = v;
				}
				break;
			default:
				out->kind = SFV_STRING;
				out->str = v->u.str.ptr;
				out->len = v->u.str.len;
				break;
		}
		return 0;
	}

	switch (out->type)
	{
		case SCIM_TYPE_BOOLEAN:
			if (op != SF_EQ && op != SF_NE)
				return fail(err, pos, "operator %s is not supported for the boolean attribute "
							"\"%s\" at position %d", opname, name, pos);
			out->kind = SFV_BOOL;
			if (v->type == SJ_BOOL)
				out->boolean = v->u.boolean;
			else if (v->type == SJ_STRING && sj_strcaseeq(v->u.str.ptr, v->u.str.len, "true", 4))
				out->boolean = true;
			else if (v->type == SJ_STRING && sj_strcaseeq(v->u.str.ptr, v->u.str.len, "false", 5))
				out->boolean = false;
			else
				return fail(err, pos, "expected true or false for the boolean attribute \"%s\", "
							"not %s, at position %d", name, json_type_name(v), pos);
			return 0;

		case SCIM_TYPE_INTEGER:
		case SCIM_TYPE_DECIMAL:
			if (is_substring(op))
				return fail(err, pos, "operator %s is not supported for the %s attribute \"%s\" "
							"at position %d", opname, scim_attr_type_name(out->type), name, pos);
			if (v->type != SJ_NUMBER)
				return fail(err, pos, "expected a number for the %s attribute \"%s\", not %s, "
							"at position %d", scim_attr_type_name(out->type), name,
							json_type_name(v), pos);
			out->kind = SFV_NUMBER;
			out->number = v;
			return 0;

		case SCIM_TYPE_DATETIME:
			if (is_substring(op))
				return fail(err, pos, "operator %s is not supported for the dateTime attribute "
							"\"%s\" at position %d", opname, name, pos);
			if (v->type != SJ_STRING)
				return fail(err, pos, "expected a dateTime string for \"%s\", not %s, at position %d",
							name, json_type_name(v), pos);
			if (!scim_datetime_parse(v->u.str.ptr, v->u.str.len, &out->datetime))
			{
				char		q[64];

				return fail(err, pos, "\"%s\" is not a valid dateTime for \"%s\" (expected e.g. "
							"2011-05-13T04:42:34Z) at position %d",
							display_value(q, sizeof(q), v->u.str.ptr, v->u.str.len), name, pos);
			}
			out->kind = SFV_DATETIME;
			return 0;

		case SCIM_TYPE_BINARY:
			if (is_ordering(op))
				return fail(err, pos, "operator %s is not supported for the binary attribute "
							"\"%s\" at position %d", opname, name, pos);
			/* FALLTHROUGH */
		case SCIM_TYPE_STRING:
		case SCIM_TYPE_REFERENCE:
			if (v->type == SJ_STRING)
			{
				out->str = v->u.str.ptr;
				out->len = v->u.str.len;
			}
			else if (v->type == SJ_NUMBER)
			{
				out->str = v->u.num.text;
				out->len = v->u.num.len;
			}
			else
				return fail(err, pos, "expected a string for the %s attribute \"%s\", not %s, "
							"at position %d", scim_attr_type_name(out->type), name,
							json_type_name(v), pos);
			out->kind = SFV_STRING;
			return 0;

		case SCIM_TYPE_COMPLEX:
			/* only pr reaches here, handled above */
			break;
	}
	return 0;
}

/* Check a value filter's attribute: it must be complex when known. */
static int
resolve_parent(const char *resource_type, const ScimFilterNode *vp, ScimAttrRef *ref,
			   ScimFilterError *err)
{
	const ScimAttrPath *path = &vp->u.vp.path;

	if (!scim_registry_lookup(resource_type, path->schema, path->attr, NULL, ref))
		return 0;
	if (ref->attr->type != SCIM_TYPE_COMPLEX)
		return fail(err, vp->position, "a value filter needs a complex attribute; \"%s\" is a "
					"%s at position %d", path->attr, scim_attr_type_name(ref->attr->type),
					vp->position);
	return 0;
}

static int
validate(const ScimFilterNode *node, const char *resource_type, const ScimAttrPath *parent,
		 ScimFilterError *err)
{
	ScimFilterTarget t;
	ScimAttrRef ref;

	switch (node->kind)
	{
		case SF_COMPARE:
			return scim_filter_resolve(resource_type, parent, node, &t, err);
		case SF_AND:
		case SF_OR:
			if (validate(node->u.bin.left, resource_type, parent, err) < 0)
				return -1;
			return validate(node->u.bin.right, resource_type, parent, err);
		case SF_NOT:
			return validate(node->u.not.arg, resource_type, parent, err);
		case SF_VALUEPATH:
			if (resolve_parent(resource_type, node, &ref, err) < 0)
				return -1;
			return validate(node->u.vp.filter, resource_type, &node->u.vp.path, err);
	}
	return 0;
}

int
scim_filter_validate(const ScimFilterNode *node, const char *resource_type, ScimFilterError *err)
{
	return validate(node, resource_type, NULL, err);
}

const char *
scim_filter_resource_type_of(const SjValue *resource)
{
	const SjValue *meta;
	const SjValue *schemas;

	if (resource == NULL || resource->type != SJ_OBJECT)
		return NULL;
	meta = sj_object_get(resource, "meta", 4, true);
	if (meta != NULL && meta->type == SJ_OBJECT)
	{
		const SjValue *rt = sj_object_get(meta, "resourceType", 12, true);

		if (rt != NULL && rt->type == SJ_STRING)
		{
			const ScimResourceTypeDef *def = scim_registry_resource_type(rt->u.str.ptr);

			if (def != NULL && strlen(rt->u.str.ptr) == rt->u.str.len)
				return def->name;
		}
	}
	schemas = sj_object_get(resource, "schemas", 7, true);
	if (schemas != NULL && schemas->type == SJ_ARRAY)
	{
		for (size_t i = 0; i < schemas->u.arr.count; i++)
		{
			const SjValue *s = schemas->u.arr.items[i];
			const ScimSchemaDef *sd;

			if (s->type != SJ_STRING || strlen(s->u.str.ptr) != s->u.str.len)
				continue;
			sd = scim_registry_schema(s->u.str.ptr);
			for (int k = 0; sd != NULL && k < scim_registry_n_resource_types(); k++)
				if (scim_registry_resource_type_at(k)->schema == sd)
					return scim_registry_resource_type_at(k)->name;
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------------
 * Evaluation
 * ---------------------------------------------------------------------
 */
typedef struct MatchCtx
{
	const char *resource_type;
	ScimFilterError *err;
} MatchCtx;

/* pr: not null, "", [] or {}; arrays and objects when any member is. */
static bool
present(const SjValue *v)
{
	if (v == NULL)
		return false;
	switch (v->type)
	{
		case SJ_NULL:
			return false;
		case SJ_STRING:
			return v->u.str.len > 0;
		case SJ_ARRAY:
			for (size_t i = 0; i < v->u.arr.count; i++)
				if (present(v->u.arr.items[i]))
					return true;
			return false;
		case SJ_OBJECT:
			for (size_t i = 0; i < v->u.obj.count; i++)
				if (present(v->u.obj.members[i].value))
					return true;
			return false;
		default:
			return true;
	}
}

static bool
apply_order(ScimFilterOp op, int cmp)
{
	switch (op)
	{
		case SF_EQ:
			return cmp == 0;
		case SF_NE:
			return cmp != 0;
		case SF_GT:
			return cmp > 0;
		case SF_GE:
			return cmp >= 0;
		case SF_LT:
			return cmp < 0;
		case SF_LE:
			return cmp <= 0;
		default:
			return false;
	}
}

/* Text of a scalar candidate for string comparisons (NULL if none). */
static const char *
scalar_text(const SjValue *c, size_t *len)
{
	switch (c->type)
	{
		case SJ_STRING:
			*len = c->u.str.len;
			return c->u.str.ptr;
		case SJ_NUMBER:
			*len = c->u.num.len;
			return c->u.num.text;
		case SJ_BOOL:
			*len = c->u.boolean ? 4 : 5;
			return c->u.boolean ? "true" : "false";
		default:
			return NULL;
	}
}

/* Compare one candidate value (not an array) with the target. */
static bool
compare_one(const ScimFilterTarget *t, ScimFilterOp op, const SjValue *c)
{
	if (c == NULL || c->type == SJ_NULL || c->type == SJ_ARRAY || c->type == SJ_OBJECT)
		return false;

	switch (t->kind)
	{
		case SFV_STRING:
			{
				size_t		len;
				const char *s = scalar_text(c, &len);

				if (s == NULL)
					return false;
				if (t->type == SCIM_TYPE_DATETIME)
					return false;
				switch (op)
				{
					case SF_CO:
						return text_contains(s, len, t->str, t->len, t->case_exact);
					case SF_SW:
						return text_starts(s, len, t->str, t->len, t->case_exact);
					case SF_EW:
						return text_ends(s, len, t->str, t->len, t->case_exact);
					default:
						return apply_order(op, text_cmp(s, len, t->str, t->len, t->case_exact));
				}
			}
		case SFV_BOOL:
			{
				bool		b;

				if (c->type == SJ_BOOL)
					b = c->u.boolean;
				else if (c->type == SJ_STRING && sj_strcaseeq(c->u.str.ptr, c->u.str.len, "true", 4))
					b = true;
				else if (c->type == SJ_STRING && sj_strcaseeq(c->u.str.ptr, c->u.str.len, "false", 5))
					b = false;
				else
					return op == SF_NE;
				return op == SF_EQ ? (b == t->boolean) : (b != t->boolean);
			}
		case SFV_NUMBER:
			{
				int			cmp;

				if (c->type == SJ_NUMBER && sj_number_cmp(c, t->number, &cmp))
					return apply_order(op, cmp);
				if (op == SF_EQ || op == SF_NE)
				{
					size_t		len;
					const char *s = scalar_text(c, &len);

					if (s == NULL)
						return false;
					/* a number filter against a string: compare the texts */
					cmp = scim_text_casecmp(s, len, t->number->u.num.text, t->number->u.num.len);
					return apply_order(op, cmp);
				}
				return false;
			}
		case SFV_DATETIME:
			{
				ScimDateTime dt;

				if (c->type != SJ_STRING ||
					!scim_datetime_parse(c->u.str.ptr, c->u.str.len, &dt))
					return false;
				return apply_order(op, scim_datetime_cmp(&dt, &t->datetime));
			}
		case SFV_NONE:
		case SFV_NULL:
			break;
	}
	return false;
}

/* Any value of v (array elements one level down) matching. */
static bool
compare_any(const ScimFilterTarget *t, ScimFilterOp op, const SjValue *v)
{
	if (v == NULL)
		return false;
	if (v->type == SJ_ARRAY)
	{
		for (size_t i = 0; i < v->u.arr.count; i++)
			if (compare_one(t, op, v->u.arr.items[i]))
				return true;
		return false;
	}
	return compare_one(t, op, v);
}

/* The object that holds the attribute: the resource, or an extension's object. */
static const SjValue *
container_for(const SjValue *resource, const ScimAttrPath *path, const ScimAttrRef *ref,
			  bool known)
{
	const ScimSchemaDef *sd = NULL;

	if (resource == NULL || resource->type != SJ_OBJECT)
		return NULL;
	if (known && !ref->schema->is_extension)
		return resource;
	if (known)
		sd = ref->schema;
	else if (path->schema != NULL)
		sd = scim_registry_schema(path->schema);
	if (sd != NULL && !sd->is_extension)
		return resource;
	if (sd != NULL)
	{
		const SjValue *ext = sj_object_get(resource, sd->id, strlen(sd->id), true);

		/* the client may have written an alias URN as the key */
		if (ext == NULL && path->schema != NULL)
			ext = sj_object_get(resource, path->schema, strlen(path->schema), true);
		return ext;
	}
	if (path->schema != NULL)
		return sj_object_get(resource, path->schema, strlen(path->schema), true);
	return resource;
}

static int	eval(const ScimFilterNode *node, const SjValue *obj, const ScimAttrPath *parent,
				 MatchCtx *ctx);

static int
eval_compare(const ScimFilterNode *node, const SjValue *obj, const ScimAttrPath *parent,
			 MatchCtx *ctx)
{
	const ScimAttrPath *path = &node->u.cmp.path;
	ScimFilterOp op = node->u.cmp.op;
	ScimFilterTarget t;
	const SjValue *container;
	const SjValue *v;
	const char *sub;
	bool		found = false;

	if (scim_filter_resolve(ctx->resource_type, parent, node, &t, ctx->err) < 0)
		return -1;
	if (t.never)
		return 0;

	if (parent != NULL)
	{
		/* relative to one element of a multi-valued attribute */
		if (obj == NULL || obj->type != SJ_OBJECT)
			return 0;
		v = sj_object_get(obj, path->attr, strlen(path->attr), true);
		sub = NULL;
	}
	else
	{
		container = container_for(obj, path, &t.ref, t.known);
		if (container == NULL || container->type != SJ_OBJECT)
			v = NULL;
		else
			v = sj_object_get(container, path->attr, strlen(path->attr), true);
		sub = path->sub ? path->sub : t.implicit_sub;
		/* unknown multi-valued complex attribute without sub: its "value" */
		if (sub == NULL && !t.known && v != NULL && v->type == SJ_ARRAY && op != SF_PR)
			sub = "value";
	}

	if (v != NULL && sub != NULL)
	{
		/* collect the sub-attribute of each element (or of the one object) */
		size_t		sublen = strlen(sub);
		bool		implicit = (path->sub == NULL);

		if (v->type == SJ_ARRAY)
		{
			for (size_t i = 0; i < v->u.arr.count && !found; i++)
			{
				const SjValue *e = v->u.arr.items[i];
				const SjValue *c;

				if (e->type == SJ_OBJECT)
					c = sj_object_get(e, sub, sublen, true);
				else
					c = implicit ? e : NULL;	/* multi-valued simple */
				if (op == SF_PR || t.kind == SFV_NULL)
					found = present(c);
				else
					found = compare_any(&t, op, c);
			}
		}
		else if (v->type == SJ_OBJECT)
		{
			const SjValue *c = sj_object_get(v, sub, sublen, true);

			if (op == SF_PR || t.kind == SFV_NULL)
				found = present(c);
			else
				found = compare_any(&t, op, c);
		}
		else if (implicit)
		{
			/* a sloppy scalar where a complex value was expected */
			if (op == SF_PR || t.kind == SFV_NULL)
				found = present(v);
			else
				found = compare_one(&t, op, v);
		}
	}
	else if (op == SF_PR || t.kind == SFV_NULL)
		found = present(v);
	else
		found = compare_any(&t, op, v);

	if (t.kind == SFV_NULL && op == SF_EQ)
		return found ? 0 : 1;	/* eq null: absent */
	return found ? 1 : 0;
}

static int
eval_valuepath(const ScimFilterNode *node, const SjValue *resource, MatchCtx *ctx)
{
	const ScimAttrPath *path = &node->u.vp.path;
	ScimAttrRef ref;
	bool		known;
	const SjValue *container;
	const SjValue *v;

	known = scim_registry_lookup(ctx->resource_type, path->schema, path->attr, NULL, &ref);
	container = container_for(resource, path, &ref, known);
	if (container == NULL || container->type != SJ_OBJECT)
		return 0;
	v = sj_object_get(container, path->attr, strlen(path->attr), true);
	if (v == NULL)
		return 0;
	if (known && ref.attr->returned == SCIM_RET_NEVER)
		return 0;
	if (v->type == SJ_ARRAY)
	{
		for (size_t i = 0; i < v->u.arr.count; i++)
		{
			int			r = eval(node->u.vp.filter, v->u.arr.items[i], path, ctx);

			if (r != 0)
				return r;
		}
		return 0;
	}
	if (v->type == SJ_OBJECT)
		return eval(node->u.vp.filter, v, path, ctx);
	return 0;
}

static int
eval(const ScimFilterNode *node, const SjValue *obj, const ScimAttrPath *parent, MatchCtx *ctx)
{
	int			r;

	switch (node->kind)
	{
		case SF_COMPARE:
			return eval_compare(node, obj, parent, ctx);
		case SF_AND:
			r = eval(node->u.bin.left, obj, parent, ctx);
			if (r <= 0)
				return r;
			return eval(node->u.bin.right, obj, parent, ctx);
		case SF_OR:
			r = eval(node->u.bin.left, obj, parent, ctx);
			if (r != 0)
				return r;
			return eval(node->u.bin.right, obj, parent, ctx);
		case SF_NOT:
			r = eval(node->u.not.arg, obj, parent, ctx);
			return r < 0 ? r : !r;
		case SF_VALUEPATH:
			if (parent != NULL)
				return 0;		/* the parser never nests value filters */
			return eval_valuepath(node, obj, ctx);
	}
	return 0;
}

int
scim_filter_match(const ScimFilterNode *node, const SjValue *resource,
				  const char *resource_type, ScimFilterError *err)
{
	MatchCtx	ctx = {resource_type, err};

	if (validate(node, resource_type, NULL, err) < 0)
		return -1;
	return eval(node, resource, NULL, &ctx);
}

int
scim_filter_match_element(const ScimFilterNode *node, const SjValue *element,
						  const char *resource_type, const char *parent_attr,
						  ScimFilterError *err)
{
	MatchCtx	ctx = {resource_type, err};
	ScimAttrPath parent = {NULL, parent_attr ? parent_attr : "", NULL};

	if (validate(node, resource_type, &parent, err) < 0)
		return -1;
	return eval(node, element, &parent, &ctx);
}
