/*-------------------------------------------------------------------------
 *
 * element_keys.c
 *		scim.element_keys(): prefix keys of the values of a User's emails and
 *		phoneNumbers (stored as the generated column scim.users.element_keys,
 *		the second column of users_search_text_idx), and the tsqueries that
 *		find the users whose keys satisfy a comparison.
 *
 * Trigrams (search_text.c) serve co/sw/ew anywhere in a value, but a pattern
 * made of common trigrams (`co "@acme.example.com"`: `exa`, `com`, ... occur
 * in every address) costs a scan of long posting lists.  A GIN index over a
 * tsvector answers a *prefix* query (`'key':*`) by a range of its sorted
 * keys, as a btree would, and one such index holds any number of keys per
 * row: a btree per element without a side table.
 *
 * For every element of attributes.emails and attributes.phoneNumbers (an
 * element as 'lax $[*]' sees it) whose "value" is a string V, lower-cased
 * as a whole (lower() of the default collation, the predicates' function):
 *	  <tag>v:V					 sw x: prefix <tag>v:x
 *	  <tag>r:reverse(V)			 ew x: prefix <tag>r:reverse(x)
 * and, for emails, for every '@' in V at position i:
 *	  ea:V[i+1..]				 co "@z": prefix ea:z
 *	  eb:reverse(V[..i-1])		 co "y@": prefix eb:reverse(y)
 *	  Ea:T<0x1f>V[i+1..]		 [type eq "t" and value co "@z"]: prefix Ea:t<0x1f>z,
 *								 [type eq "t" and value ew "@z"]: the key Ea:t<0x1f>z
 * (<tag>: e for emails, p for phoneNumbers; T the element's type, lower-
 * cased, when it has one).  lower() works character by character and '@' is
 * its own lower case, so lower(V) contains lower(x) = y@z exactly when some
 * '@' of V is preceded by y and followed by z: a key query is *exact* for
 * sw, ew, co "@z", co "y@" (y without '@') and the typed forms, and
 * *necessary* for co "y@z" (y and z may come from different '@'s or
 * elements); scim_element_keys_exact() says which.
 *
 * Keys are clipped to KEY_MAX_BYTES (whole characters), and so are query
 * prefixes: a clipped prefix is still a prefix, and a query short enough
 * not to be clipped stays exact.  An attribute whose keys cannot all be
 * written (more than MAX_ELEMENTS elements or MAX_KEYS keys, a non-string
 * value, which the predicates compare by its JSON text, a type that is no
 * string or holds the separator) gets the key <tag>! instead, and every
 * index query accepts it: such users are always candidates, and the exact
 * predicate decides for them (filter_sql.c).
 *
 * src/element_keys.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "tsearch/ts_type.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/jsonb.h"

#include "element_keys.h"
#include "json_bridge.h"

PG_FUNCTION_INFO_V1(scim_element_keys);
PG_FUNCTION_INFO_V1(scim_element_keys_query);

#define KEY_MAX_BYTES	256		/* of a key's text after its tag */
#define MAX_ELEMENTS	64		/* per attribute */
#define MAX_KEYS		512		/* per attribute (a value of many '@'s) */
#define TYPE_END		'\x1f'	/* ends the type in a typed key */

/*
 * The keys of one row, written one after the other into text; key i is
 * text.data[off[i] .. off[i] + len[i]).
 */
typedef struct KeyList
{
	StringInfoData text;
	int		   *off;
	int		   *len;
	int			n;
	int			cap;
} KeyList;

/* lower() of the default collation, as the predicates compute it */
static char *
lower_text(const char *s, int len, int *out_len)
{
	char	   *l = str_tolower(s, len, DEFAULT_COLLATION_OID);

	*out_len = (int) strlen(l);
	return l;
}

/* The length of s clipped to whole characters within KEY_MAX_BYTES. */
static int
clip_length(const char *s, int len)
{
	int			n = 0;

	while (n < len)
	{
		int			l = pg_mblen(s + n);

		if (n + l > KEY_MAX_BYTES || n + l > len)
			break;
		n += l;
	}
	return n;
}

/*
 * Append the key (or query prefix) of a kind to buf: "<tag><kind>:" and the
 * text, reversed character by character if asked, clipped.  Reversal comes
 * before clipping, so that a key and a query prefix clip the same leading
 * characters.
 */
static void
append_key(StringInfo buf, char tag, char kind, const char *s, int len, bool reversed)
{
	appendStringInfoChar(buf, tag);
	appendStringInfoChar(buf, kind);
	appendStringInfoChar(buf, ':');
	if (reversed)
	{
		int		   *starts = palloc(sizeof(int) * (len + 1));
		int			nchars = 0;
		int			kept = 0;

		/* where each character starts, then the characters from the end while they fit */
		for (int n = 0; n < len; n += pg_mblen(s + n))
			starts[nchars++] = n;
		starts[nchars] = len;
		for (int c = nchars - 1; c >= 0; c--)
		{
			int			l = Min(starts[c + 1], len) - starts[c];

			if (kept + l > KEY_MAX_BYTES)
				break;
			appendBinaryStringInfo(buf, s + starts[c], l);
			kept += l;
		}
		pfree(starts);
	}
	else
		appendBinaryStringInfo(buf, s, clip_length(s, len));
}

static void
add_key(KeyList *list, char tag, char kind, const char *s, int len, bool reversed)
{
	if (list->n == list->cap)
	{
		list->cap *= 2;
		list->off = repalloc(list->off, sizeof(int) * list->cap);
		list->len = repalloc(list->len, sizeof(int) * list->cap);
	}
	list->off[list->n] = list->text.len;
	append_key(&list->text, tag, kind, s, len, reversed);
	list->len[list->n] = list->text.len - list->off[list->n];
	list->n++;
}

/*
 * The keys of one element (the attribute's start at list->keys[first]).
 * Returns false when its "value" is there but no string (the predicates
 * compare its JSON text), or when the attribute has too many keys: the
 * attribute gets <tag>! instead.
 */
static bool
element_keys(KeyList *list, int first, char tag, JsonbValue *elem)
{
	JsonbValue *v;
	const char *s;
	int			len;

	JsonbValue *t;
	char	   *type = NULL;
	int			typelen = 0;
	StringInfoData typed;

	if (elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
		return true;			/* no "value": nothing a comparison finds */
	v = scim_jsonb_member(elem->val.binary.data, "value");
	if (v == NULL || v->type == jbvNull)
		return true;
	if (v->type != jbvString || list->n - first + 2 > MAX_KEYS)
		return false;
	t = scim_jsonb_member(elem->val.binary.data, "type");
	if (t != NULL && t->type != jbvNull)
	{
		/* a type the typed keys cannot spell: compared by the predicate */
		if (t->type != jbvString || memchr(t->val.string.val, TYPE_END, t->val.string.len) != NULL)
			return false;
		type = lower_text(t->val.string.val, t->val.string.len, &typelen);
	}
	s = lower_text(v->val.string.val, v->val.string.len, &len);
	add_key(list, tag, 'v', s, len, false);
	add_key(list, tag, 'r', s, len, true);
	if (tag != 'e')
		return true;
	initStringInfo(&typed);
	for (int i = 0; i < len; i++)
		if (s[i] == '@')
		{
			if (list->n - first + 3 > MAX_KEYS)
				return false;
			add_key(list, tag, 'a', s + i + 1, len - i - 1, false);
			add_key(list, tag, 'b', s, i, true);
			if (type != NULL)
			{
				resetStringInfo(&typed);
				appendBinaryStringInfo(&typed, type, typelen);
				appendStringInfoChar(&typed, TYPE_END);
				appendBinaryStringInfo(&typed, s + i + 1, len - i - 1);
				add_key(list, 'E', 'a', typed.data, typed.len, false);
			}
		}
	return true;
}

/* The keys of a multi-valued attribute ('lax $[*]': a lone object is one element). */
static void
attribute_keys(KeyList *list, char tag, JsonbValue *attr)
{
	int			first = list->n;
	int			first_text = list->text.len;
	bool		ok = true;

	if (attr->type == jbvBinary && JsonContainerIsArray(attr->val.binary.data))
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;

		if (JsonContainerSize(attr->val.binary.data) > MAX_ELEMENTS)
			ok = false;
		else
		{
			it = JsonbIteratorInit(attr->val.binary.data);
			while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
				if (tok == WJB_ELEM && !element_keys(list, first, tag, &v))
				{
					ok = false;
					break;
				}
		}
	}
	else
		ok = element_keys(list, first, tag, attr);
	if (!ok)
	{
		/* the attribute's keys give way to the one that every query accepts */
		list->text.len = first_text;
		list->text.data[first_text] = '\0';
		list->n = first;
		add_key(list, tag, '!', "", 0, false);
	}
}

/* tsvector order: memcmp of the common length, then the shorter first */
static const char *sort_text;

static int
compare_keys(const void *a, const void *b)
{
	const int  *ka = (const int *) a;
	const int  *kb = (const int *) b;
	int			r = memcmp(sort_text + ka[0], sort_text + kb[0], Min(ka[1], kb[1]));

	if (r != 0)
		return r;
	return (ka[1] > kb[1]) - (ka[1] < kb[1]);
}

/* The keys as a tsvector without positions: sorted, without duplicates. */
static TSVector
keys_tsvector(KeyList *list)
{
	int		   *pairs = palloc(sizeof(int) * 2 * Max(list->n, 1));
	int			n = 0;
	int			lenstr = 0;
	TSVector	tsv;
	char	   *str;
	int			pos = 0;

	for (int i = 0; i < list->n; i++)
	{
		pairs[2 * i] = list->off[i];
		pairs[2 * i + 1] = list->len[i];
	}
	sort_text = list->text.data;
	qsort(pairs, list->n, sizeof(int) * 2, compare_keys);
	for (int i = 0; i < list->n; i++)
	{
		if (n > 0 && compare_keys(&pairs[2 * (n - 1)], &pairs[2 * i]) == 0)
			continue;
		pairs[2 * n] = pairs[2 * i];
		pairs[2 * n + 1] = pairs[2 * i + 1];
		lenstr += pairs[2 * n + 1];
		n++;
	}
	/* keys are short (KEY_MAX_BYTES) and few (MAX_KEYS per attribute) */
	Assert(lenstr <= MAXSTRPOS);
	tsv = palloc0(CALCDATASIZE(n, lenstr));
	SET_VARSIZE(tsv, CALCDATASIZE(n, lenstr));
	tsv->size = n;
	str = STRPTR(tsv);
	for (int i = 0; i < n; i++)
	{
		WordEntry  *we = &ARRPTR(tsv)[i];

		we->haspos = 0;
		we->len = pairs[2 * i + 1];
		we->pos = pos;
		memcpy(str + pos, list->text.data + pairs[2 * i], we->len);
		pos += we->len;
	}
	pfree(pairs);
	return tsv;
}

/*
 * scim.element_keys(attributes jsonb) RETURNS tsvector
 * IMMUTABLE STRICT (an index expression).
 */
Datum
scim_element_keys(PG_FUNCTION_ARGS)
{
	Jsonb	   *attrs = PG_GETARG_JSONB_P(0);
	KeyList		list;
	JsonbValue *v;

	initStringInfo(&list.text);
	list.cap = 8;
	list.n = 0;
	list.off = palloc(sizeof(int) * list.cap);
	list.len = palloc(sizeof(int) * list.cap);
	if ((v = scim_jsonb_member(&attrs->root, "emails")) != NULL)
		attribute_keys(&list, 'e', v);
	if ((v = scim_jsonb_member(&attrs->root, "phoneNumbers")) != NULL)
		attribute_keys(&list, 'p', v);
	PG_RETURN_TSVECTOR(keys_tsvector(&list));
}

/* a prefix operand of tsquery's input syntax: 'key':* with ' and \ escaped */
static void
append_operand(StringInfo q, const char *key, int len, bool prefix)
{
	appendStringInfoChar(q, '\'');
	for (int i = 0; i < len; i++)
	{
		if (key[i] == '\'' || key[i] == '\\')
			appendStringInfoChar(q, '\\');
		appendStringInfoChar(q, key[i]);
	}
	appendStringInfoString(q, prefix ? "':*" : "'");
}

/* the operand of a key: a prefix ('key':*) or the whole key ('key') */
static void
append_key_operand(StringInfo q, char tag, char kind, const char *s, int len, bool reversed, bool prefix)
{
	StringInfoData key;

	initStringInfo(&key);
	append_key(&key, tag, kind, s, len, reversed);
	append_operand(q, key.data, key.len, prefix);
	pfree(key.data);
}

static void
append_prefix(StringInfo q, char tag, char kind, const char *s, int len, bool reversed)
{
	append_key_operand(q, tag, kind, s, len, reversed, true);
}

bool
scim_element_keys_apply(ScimElementAttr attr, ScimFilterOp op, const char *value, size_t len)
{
	const char *at;

	if (op == SF_EQ || op == SF_SW || op == SF_EW)
		return true;
	if (op != SF_CO || attr != SCIM_ELEMENT_EMAILS)
		return false;
	/* co: only an '@' with text on at least one side narrows anything */
	at = memchr(value, '@', len);
	return at != NULL && len > 1;
}

/*
 * Whether the key condition decides a comparison alone (filter_sql.c then
 * skips the exact predicate for the users it holds keys of):
 *	- sw, ew: the value is a prefix of the key (or of the reversed key);
 *	- co "@z" and co "y@" (no other '@' before the end of y): the keys hold
 *	  the text after and before every '@' of every value;
 *	- typed (value path [type eq "t" and value co/ew "@z"]): the typed key
 *	  of that '@' exists exactly when the element's type is t (for ew, the
 *	  key is t<0x1f>z itself: the text after that '@' is z);
 * as long as the query's text is not clipped (then a clipped key still
 * starts with it).  Not co "y@z" (y and z may come from different '@'s),
 * and not eq (containment serves it).
 */
bool
scim_element_keys_exact(ScimElementAttr attr, ScimFilterOp op, const char *value, size_t len,
						const char *type, size_t typelen)
{
	const char *at;
	size_t		textlen;

	if (!scim_element_keys_apply(attr, op, value, len) || op == SF_EQ)
		return false;
	if (type != NULL)
	{
		/* typed keys: co "@z" (a prefix) and ew "@z" (the whole key) on emails */
		if ((op != SF_CO && op != SF_EW) || attr != SCIM_ELEMENT_EMAILS || value[0] != '@' || len < 2 ||
			memchr(type, TYPE_END, typelen) != NULL)
			return false;
		textlen = typelen + 1 + len - 1;
	}
	else if (op == SF_CO)
	{
		at = memchr(value, '@', len);
		if (at != value && at != value + len - 1)
			return false;
		textlen = len - 1;
	}
	else
		textlen = len;
	/* lower() may lengthen a character: leave room for it */
	return textlen * 2 + 3 <= KEY_MAX_BYTES;
}

/*
 * The tsquery text for a comparison of a value with op: the key condition
 * that scim_element_keys_apply() said exists; typed (type not NULL) when
 * scim_element_keys_exact() said so for the type.  With the overflow key
 * (every query of filter_sql.c's index condition), or without (the test that
 * decides alone).
 */
char *
scim_element_keys_query_text(ScimElementAttr attr, ScimFilterOp op, const char *value, size_t len,
							 const char *type, size_t typelen, bool overflow)
{
	char		tag = attr == SCIM_ELEMENT_EMAILS ? 'e' : 'p';
	StringInfoData q;
	const char *s;
	int			n;

	Assert(scim_element_keys_apply(attr, op, value, len));
	s = lower_text(value, (int) len, &n);
	initStringInfo(&q);
	appendStringInfoChar(&q, '(');
	if (type != NULL)
	{
		StringInfoData typed;
		int			tn;
		const char *t = lower_text(type, (int) typelen, &tn);

		Assert((op == SF_CO || op == SF_EW) && n > 1 && s[0] == '@');
		initStringInfo(&typed);
		appendBinaryStringInfo(&typed, t, tn);
		appendStringInfoChar(&typed, TYPE_END);
		appendBinaryStringInfo(&typed, s + 1, n - 1);
		if (op == SF_CO)
			append_prefix(&q, 'E', 'a', typed.data, typed.len, false);
		else
			/* ew "@z": the text after that '@' is z itself */
			append_key_operand(&q, 'E', 'a', typed.data, typed.len, false, false);
	}
	else
		switch (op)
		{
			case SF_EQ:
			case SF_SW:
				append_prefix(&q, tag, 'v', s, n, false);
				break;
			case SF_EW:
				append_prefix(&q, tag, 'r', s, n, true);
				break;
			default:
				{
					/* co y@z: the first '@' of the pattern */
					int			i = (int) ((const char *) memchr(s, '@', n) - s);
					bool		both = i > 0 && i < n - 1;

					if (i < n - 1)
						append_prefix(&q, tag, 'a', s + i + 1, n - i - 1, false);
					if (both)
						appendStringInfoString(&q, " & ");
					if (i > 0)
						append_prefix(&q, tag, 'b', s, i, true);
				}
				break;
		}
	appendStringInfoChar(&q, ')');
	if (overflow)
	{
		appendStringInfoString(&q, " | ");
		append_key_operand(&q, tag, '!', "", 0, false, false);
	}
	return q.data;
}

/*
 * scim.element_keys_query(attribute text, op text, value text,
 *						   type text DEFAULT NULL, exact boolean DEFAULT false)
 * RETURNS tsquery, IMMUTABLE: what filter_sql.c puts on the right of @@,
 * folded to a constant when the query is planned.  attribute: 'emails' or
 * 'phoneNumbers'; op: eq, sw, ew or co; type: the value path's type eq (typed
 * keys).  exact = false: the index condition (with the overflow key), NULL
 * when no key condition applies; exact = true: the test that decides alone,
 * NULL when there is none.
 */
Datum
scim_element_keys_query(PG_FUNCTION_ARGS)
{
	char	   *attr;
	char	   *op;
	text	   *value;
	text	   *type = NULL;
	bool		exact;
	ScimElementAttr a;
	ScimFilterOp o;
	const char *t = NULL;
	size_t		tlen = 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(4))
		PG_RETURN_NULL();
	attr = text_to_cstring(PG_GETARG_TEXT_PP(0));
	op = text_to_cstring(PG_GETARG_TEXT_PP(1));
	value = PG_GETARG_TEXT_PP(2);
	exact = PG_GETARG_BOOL(4);
	if (!PG_ARGISNULL(3))
	{
		type = PG_GETARG_TEXT_PP(3);
		t = VARDATA_ANY(type);
		tlen = VARSIZE_ANY_EXHDR(type);
	}
	if (strcmp(attr, "emails") == 0)
		a = SCIM_ELEMENT_EMAILS;
	else if (strcmp(attr, "phoneNumbers") == 0)
		a = SCIM_ELEMENT_PHONES;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("element keys are kept for \"emails\" and \"phoneNumbers\" only, not \"%s\"", attr)));
	if (strcmp(op, "eq") == 0)
		o = SF_EQ;
	else if (strcmp(op, "sw") == 0)
		o = SF_SW;
	else if (strcmp(op, "ew") == 0)
		o = SF_EW;
	else if (strcmp(op, "co") == 0)
		o = SF_CO;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("element keys serve eq, sw, ew and co, not \"%s\"", op)));
	if (!scim_element_keys_apply(a, o, VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value)))
		PG_RETURN_NULL();
	/* typed keys answer only what they answer exactly */
	if ((exact || type != NULL) &&
		!scim_element_keys_exact(a, o, VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value), t, tlen))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(DirectFunctionCall1(tsqueryin,
										CStringGetDatum(scim_element_keys_query_text(a, o, VARDATA_ANY(value),
																					 VARSIZE_ANY_EXHDR(value),
																					 t, tlen, !exact))));
}
