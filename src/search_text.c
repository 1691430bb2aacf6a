/*-------------------------------------------------------------------------
 *
 * search_text.c
 *		scim.search_text(): the lower-cased text of a User's searchable
 *		string values inside attributes, a trigram column of
 *		users_search_text_idx that serves co/sw/ew on the jsonb names and on
 *		the elements of multi-valued attributes.
 *
 * The text holds, one per line and lower-cased as a whole:
 *	- attributes.name.* and attributes.nickName;
 *	- every member value of every element of attributes.emails,
 *	  attributes.phoneNumbers and attributes.addresses (a scalar element
 *	  counts as its own value), strings as their text, anything else as its
 *	  JSON text.
 * If an element's value v satisfies lower(v) LIKE lower('%x%'), so does the
 * text: lower() works character by character, so lower(v) is a substring of
 * the lower-cased text.  filter_sql.c therefore adds
 *
 *	 scim.search_text(u.attributes) ~~ '%x%'
 *
 * in front of the exact predicate of such a comparison: a necessary
 * condition the index answers, never a replacement for the exact
 * predicate, which still decides (same-element semantics of value paths,
 * caseExact, sw/ew anchoring).  Being an expression of the row, the index
 * is exact for every writer (SCIM, OneLogin worker, plain SQL) without a
 * trigger.  The name columns (given_name, family_name, display_name) have
 * trigram columns of their own in the same index, on which their exact
 * predicates run directly.
 *
 * src/search_text.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "json_bridge.h"

PG_FUNCTION_INFO_V1(scim_search_text);

/* the multi-valued attributes whose elements are searchable */
static const char *const element_attrs[] = {"emails", "phoneNumbers", "addresses"};

static void
append_line(StringInfo buf, const char *s, int len)
{
	if (buf->len > 0)
		appendStringInfoChar(buf, '\n');
	appendBinaryStringInfo(buf, s, len);
}

/* a scalar or container as text: strings as themselves, the rest as JSON */
static void
append_value(StringInfo buf, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			append_line(buf, v->val.string.val, v->val.string.len);
			break;
		case jbvNull:
			break;
		case jbvBinary:
			{
				char	   *s = JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);

				append_line(buf, s, (int) strlen(s));
				pfree(s);
			}
			break;
		default:
			{
				Jsonb	   *j = JsonbValueToJsonb(v);
				char	   *s = JsonbToCString(NULL, &j->root, VARSIZE(j));

				append_line(buf, s, (int) strlen(s));
				pfree(s);
			}
			break;
	}
}

/* every member value of an object (one level) */
static void
append_members(StringInfo buf, JsonbContainer *c)
{
	JsonbIterator *it = JsonbIteratorInit(c);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_VALUE)
			append_value(buf, &v);
}

/* an element: an object's member values, or the scalar itself */
static void
append_element(StringInfo buf, JsonbValue *v)
{
	if (v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
		append_members(buf, v->val.binary.data);
	else if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		append_value(buf, v);
}

/* the elements of a multi-valued attribute ('lax $[*]': a lone object is one element) */
static void
append_elements(StringInfo buf, JsonbValue *attr)
{
	if (attr->type == jbvBinary && JsonContainerIsArray(attr->val.binary.data))
	{
		JsonbIterator *it = JsonbIteratorInit(attr->val.binary.data);
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
			if (tok == WJB_ELEM)
				append_element(buf, &v);
	}
	else
		append_element(buf, attr);
}

/*
 * scim.search_text(attributes jsonb) RETURNS text
 * IMMUTABLE STRICT (an index expression).
 */
Datum
scim_search_text(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	Jsonb	   *attrs = PG_GETARG_JSONB_P(0);
	JsonbValue *v;

	initStringInfo(&buf);
	if ((v = scim_jsonb_member(&attrs->root, "name")) != NULL)
		append_element(&buf, v);
	if ((v = scim_jsonb_member(&attrs->root, "nickName")) != NULL)
		append_value(&buf, v);
	for (int i = 0; i < lengthof(element_attrs); i++)
		if ((v = scim_jsonb_member(&attrs->root, element_attrs[i])) != NULL)
			append_elements(&buf, v);
	if (buf.len == 0)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	/* lower() of the default collation: the function the predicates use */
	PG_RETURN_DATUM(DirectFunctionCall1Coll(lower, DEFAULT_COLLATION_OID,
											PointerGetDatum(cstring_to_text_with_len(buf.data, buf.len))));
}
