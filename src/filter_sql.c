/*-------------------------------------------------------------------------
 *
 * filter_sql.c
 *		SCIM filters in the backend: SQL pushdown over scim.users, the SQL
 *		functions of the filter engine, sortBy, /Schemas, and the GUCs.
 *
 * scim.filter_sql(filter, resource_type) turns a filter into a predicate
 * over the columns and indexes of scim.users, written against the table
 * alias "u":
 *
 *	 SELECT ... FROM scim.users u WHERE u.workspace = $1 AND (<predicate>)
 *
 * For resource type "Group" the predicate (over "scim.groups g") and the
 * sort expression come from groups.c, which shares this engine's parser,
 * registry and type checks.
 *
 * Every attribute resolves through the registry (registry.c); an unknown
 * attribute is invalidFilter, a returned:never one (password) is "false".
 * Values reach SQL only through quote_literal (E'' when they hold
 * backslashes), never spliced; LIKE patterns escape \ % _ themselves.
 *
 * Case-insensitive attributes compare through lower() on both sides, which
 * is what the indexes are built on (src/sql/30_filter.sql):
 *	- columns: lower(u.user_name) = lower('...') uses the unique index on
 *	  (workspace, lower(user_name)); co/sw/ew use LIKE over a pg_trgm GIN
 *	  index on lower(user_name).
 *	- attributes jsonb (emails, phoneNumbers, extensions, ...): equality is
 *	  containment over a GIN jsonb_path_ops index on
 *	  lower(attributes::text)::jsonb, e.g. emails[type eq "work" and value
 *	  eq "a@b"] is
 *		lower(u.attributes::text)::jsonb @> lower('{"emails":[{"type":"work","value":"a@b"}]}')::jsonb
 *	  which requires one element to hold both pairs, exactly the valuePath
 *	  semantics.  Lower-casing the JSON text lower-cases keys (attribute
 *	  names are case-insensitive too) and string values, and leaves JSON
 *	  syntax, numbers, booleans and escapes valid.  A caseExact attribute
 *	  adds the same containment without lower() as a recheck.
 * Why lower() and not citext or a nondeterministic collation: citext is
 * another extension to require, and PostgreSQL 15 refuses LIKE under
 * nondeterministic collations, which co/sw/ew need; lower() indexes serve
 * =, LIKE (through pg_trgm) and jsonb containment alike, and doc/CONTRACTS.md
 * already keys userName uniqueness on lower(user_name).
 *
 * Other operators on jsonb attributes become EXISTS over the elements
 * (jsonb_path_query(..., 'lax $[*]')).  Every leaf predicate yields false,
 * never NULL, under "not": not (X) is NOT coalesce((X), false), so an absent
 * attribute behaves exactly as in the matcher (filter_match.c).
 *
 * The examples above are abridged: the generated text names every function,
 * operator, type and collation with its schema (pg_catalog.lower(...),
 * OPERATOR(pg_catalog.=), ::pg_catalog.jsonb, COLLATE pg_catalog."C"; see
 * filter.h), so a predicate or sort expression means the same under any
 * search_path, also one that puts a schema with its own lower() or = before
 * pg_catalog.  These resolve to the objects the expression indexes were
 * built with, so the indexes match as before.  LIKE is written as its
 * operator, ~~, whose escape character is the backslash the patterns use.
 *
 * src/filter_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "scim_provision.h"
#include "element_keys.h"
#include "filter.h"
#include "filter_sql.h"
#include "groups.h"
#include "json_bridge.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(scim_parse_filter);
PG_FUNCTION_INFO_V1(scim_filter_match_sql);
PG_FUNCTION_INFO_V1(scim_filter_sql);
PG_FUNCTION_INFO_V1(scim_sort_expression);
PG_FUNCTION_INFO_V1(scim_schema_definitions);
PG_FUNCTION_INFO_V1(scim_resource_type_definitions);
PG_FUNCTION_INFO_V1(scim_jsonb_present);

static int	filter_max_length = SCIM_FILTER_DEFAULT_MAX_LENGTH;
static int	filter_max_depth = SCIM_FILTER_DEFAULT_MAX_DEPTH;
static bool filter_search_index = true;
static bool page_bookmarks = true;

/* The index expression of users_attributes_ci_idx (30_filter.sql). */
#define CI_DOC		SCIM_SQL_LOWER "(u.attributes::" SCIM_SQL_TEXT ")::" SCIM_SQL_JSONB

/* Short names for the qualified operators (filter.h) */
#define OP_EQ		SCIM_SQL_OP("=")
#define OP_NE		SCIM_SQL_OP("<>")
#define OP_LIKE		SCIM_SQL_OP("~~")
#define OP_CONTAINS SCIM_SQL_OP("@>")
#define OP_FIELD	SCIM_SQL_OP("->")
#define OP_FIELD_TEXT SCIM_SQL_OP("->>")
#define OP_CONCAT	SCIM_SQL_OP("||")

void
scim_filter_init_gucs(void)
{
	DefineCustomIntVariable("scim_provision.filter_max_length",
							"Longest SCIM filter accepted, in bytes.",
							"Longer filters are refused with invalidFilter.",
							&filter_max_length,
							SCIM_FILTER_DEFAULT_MAX_LENGTH, 64, 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("scim_provision.filter_max_depth",
							"Deepest nesting of parentheses, not and value filters in a SCIM filter.",
							"Deeper filters are refused with invalidFilter.",
							&filter_max_depth,
							SCIM_FILTER_DEFAULT_MAX_DEPTH, 1, 1000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("scim_provision.search_index",
							 "Adds the search-text trigram condition to co/sw/ew/eq filters on names and multi-valued attributes.",
							 "The condition only lets users_search_text_idx narrow the rows; off gives the "
							 "predicates of 0.2.0 (for comparison in benchmarks).",
							 &filter_search_index,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	/* read by scim._list_users (55_handle.sql) through current_setting() */
	DefineCustomBoolVariable("scim_provision.page_bookmarks",
							 "Resumes startIndex paging of the Users list from the previous page's last user.",
							 "Off pages by OFFSET only (for comparison in benchmarks).",
							 &page_bookmarks,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
}

void
scim_filter_limits_from_gucs(ScimFilterLimits *limits)
{
	limits->max_length = (size_t) filter_max_length;
	limits->max_depth = filter_max_depth;
}

/* ---------------------------------------------------------------------
 * Errors and text helpers
 * ---------------------------------------------------------------------
 */
static void
report(const char *scim_type, const ScimFilterError *err)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: %s", scim_type, err->message)));
}

static void pg_attribute_printf(3, 4) pg_attribute_noreturn()
invalid(const char *scim_type, int position, const char *fmt,...)
{
	ScimFilterError err;
	va_list		ap;

	err.position = position;
	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	report(scim_type, &err);
	pg_unreachable();
}

/* Filter text in UTF-8, whatever the server encoding. */
static const char *
to_utf8(const char *s, size_t *len)
{
	char	   *conv = pg_server_to_any(s, (int) *len, PG_UTF8);

	if (conv != s)
		*len = strlen(conv);
	return conv;
}

/* Append a UTF-8 string as an SQL literal (quote_literal semantics). */
void
scim_sql_append_literal(StringInfo buf, const char *s, size_t len)
{
	char	   *nul = pnstrdup(s, len);
	char	   *server = pg_any_to_server(nul, (int) len, PG_UTF8);

	appendStringInfoString(buf, quote_literal_cstr(server));
}

static void
append_literal_str(StringInfo buf, const char *s)
{
	scim_sql_append_literal(buf, s, strlen(s));
}

/* Append s as a JSON string (RFC 8259 escapes) to a JSON text under construction. */
static void
append_json_string(StringInfo buf, const char *s, size_t len)
{
	appendStringInfoChar(buf, '"');
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '"' || c == '\\')
		{
			appendStringInfoChar(buf, '\\');
			appendStringInfoChar(buf, (char) c);
		}
		else if (c < 0x20)
			appendStringInfo(buf, "\\u%04x", c);
		else
			appendStringInfoChar(buf, (char) c);
	}
	appendStringInfoChar(buf, '"');
}

/* A LIKE pattern literal: \ % _ escaped, then the wildcards for op. */
void
scim_sql_append_like_pattern(StringInfo buf, ScimFilterOp op, const char *s, size_t len)
{
	StringInfoData pat;

	initStringInfo(&pat);
	if (op == SF_CO || op == SF_EW)
		appendStringInfoChar(&pat, '%');
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] == '\\' || s[i] == '%' || s[i] == '_')
			appendStringInfoChar(&pat, '\\');
		appendStringInfoChar(&pat, s[i]);
	}
	if (op == SF_CO || op == SF_SW)
		appendStringInfoChar(&pat, '%');
	scim_sql_append_literal(buf, pat.data, pat.len);
}

const char *
scim_sql_operator(ScimFilterOp op)
{
	switch (op)
	{
		case SF_EQ:
			return OP_EQ;
		case SF_NE:
			return OP_NE;
		case SF_GT:
			return SCIM_SQL_OP(">");
		case SF_GE:
			return SCIM_SQL_OP(">=");
		case SF_LT:
			return SCIM_SQL_OP("<");
		case SF_LE:
			return SCIM_SQL_OP("<=");
		default:
			return OP_EQ;
	}
}

/* Days since 1970-01-01 -> civil date (inverse of filter_match.c's). */
static void
civil_from_days(long long z, int *y, int *m, int *d)
{
	long long	era,
				doe,
				yoe,
				doy,
				mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = (int) (yoe + era * 400 + (*m <= 2 ? 1 : 0));
}

/* A timestamptz literal (UTC, microseconds) for an instant. */
static void
append_timestamptz(StringInfo buf, const ScimDateTime *dt)
{
	long long	days = dt->seconds >= 0 ? dt->seconds / 86400 : -((-dt->seconds + 86399) / 86400);
	long long	secs = dt->seconds - days * 86400;
	int			y,
				m,
				d;

	civil_from_days(days, &y, &m, &d);
	appendStringInfo(buf, "'%04d-%02d-%02d %02d:%02d:%02d.%06d+00'::" SCIM_SQL_TIMESTAMPTZ,
					 y, m, d, (int) (secs / 3600), (int) (secs / 60 % 60), (int) (secs % 60),
					 dt->nanos / 1000);
}

/* ---------------------------------------------------------------------
 * Where a comparison reads its value
 * ---------------------------------------------------------------------
 */
typedef enum LocKind
{
	LOC_TEXT,					/* a text expression (column, constant, ->>) */
	LOC_BOOL,					/* a boolean column */
	LOC_TSTZ,					/* a timestamptz column */
	LOC_UUID,					/* u.id */
	LOC_JSONB					/* a jsonb value inside attributes or an element */
} LocKind;

typedef struct Loc
{
	LocKind		kind;
	StringInfoData expr;		/* text / bool / timestamptz / uuid expression */
	StringInfoData jexpr;		/* LOC_JSONB: jsonb-valued expression */
} Loc;

typedef struct SqlGen
{
	StringInfo	buf;
	const char *rt;				/* canonical resource type name */
	int			aliases;		/* element aliases e1, e2, ... */
} SqlGen;

static void emit_node(SqlGen *g, const ScimFilterNode *node, const ScimAttrPath *parent,
					  const char *elem);

/* Append the jsonb path of an attribute inside u.attributes: ->'urn'->'name' */
static void
append_jsonb_path(StringInfo buf, const ScimAttrRef *ref)
{
	appendStringInfoString(buf, "u.attributes");
	if (ref->schema->is_extension)
	{
		appendStringInfoString(buf, " " OP_FIELD " ");
		append_literal_str(buf, ref->schema->id);
	}
	appendStringInfoString(buf, " " OP_FIELD " ");
	append_literal_str(buf, ref->attr->name);
}

/* {"urn":{"attr":[{"sub":VALUE}]}} prefix/suffix for containment documents */
static void
containment_open(StringInfo doc, const ScimAttrRef *ref)
{
	appendStringInfoChar(doc, '{');
	if (ref->schema->is_extension)
	{
		append_json_string(doc, ref->schema->id, strlen(ref->schema->id));
		appendStringInfoString(doc, ":{");
	}
	append_json_string(doc, ref->attr->name, strlen(ref->attr->name));
	appendStringInfoChar(doc, ':');
	if (ref->attr->multi_valued)
		appendStringInfoChar(doc, '[');
}

static void
containment_close(StringInfo doc, const ScimAttrRef *ref)
{
	if (ref->attr->multi_valued)
		appendStringInfoChar(doc, ']');
	appendStringInfoChar(doc, '}');
	if (ref->schema->is_extension)
		appendStringInfoChar(doc, '}');
}

/* The JSON value of an eq comparison (string or boolean). */
static void
append_json_value(StringInfo doc, const ScimFilterTarget *t)
{
	if (t->kind == SFV_BOOL)
		appendStringInfoString(doc, t->boolean ? "true" : "false");
	else
		append_json_string(doc, t->str, t->len);
}

/* Emit (CI_DOC @> lower(doc)::jsonb [AND u.attributes @> doc::jsonb]) for a containment document. */
static void
emit_containment(SqlGen *g, const char *doc, bool case_exact)
{
	StringInfo	buf = g->buf;

	appendStringInfoString(buf, "(" CI_DOC " " OP_CONTAINS " " SCIM_SQL_LOWER "(");
	append_literal_str(buf, doc);
	appendStringInfoString(buf, ")::" SCIM_SQL_JSONB);
	if (case_exact)
	{
		appendStringInfoString(buf, " AND u.attributes " OP_CONTAINS " ");
		append_literal_str(buf, doc);
		appendStringInfoString(buf, "::" SCIM_SQL_JSONB);
	}
	appendStringInfoChar(buf, ')');
}

/* pr over a location */
static void
emit_present(SqlGen *g, const Loc *loc)
{
	StringInfo	buf = g->buf;

	switch (loc->kind)
	{
		case LOC_TEXT:
			appendStringInfo(buf, "(%s IS NOT NULL AND %s " OP_NE " '')", loc->expr.data, loc->expr.data);
			break;
		case LOC_JSONB:
			appendStringInfo(buf, "scim.jsonb_present(%s)", loc->jexpr.data);
			break;
		default:
			appendStringInfo(buf, "(%s IS NOT NULL)", loc->expr.data);
			break;
	}
}

/* Whether a string is the lower-case textual form of a UUID (as u.id renders). */
static bool
is_canonical_uuid(const char *s, size_t len)
{
	if (len != 36)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (c != '-')
				return false;
		}
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

/* A comparison (not pr, not null) over a location. */
static void
emit_compare_loc(SqlGen *g, const Loc *loc, const ScimFilterTarget *t, ScimFilterOp op,
				 int position, const char *name)
{
	StringInfo	buf = g->buf;

	switch (t->kind)
	{
		case SFV_BOOL:
			if (loc->kind == LOC_BOOL)
				appendStringInfo(buf, "(%s %s %s)", loc->expr.data, scim_sql_operator(op),
								 t->boolean ? "true" : "false");
			else if (loc->kind == LOC_JSONB)
				appendStringInfo(buf, "(%s %s '%s'::" SCIM_SQL_JSONB ")", loc->jexpr.data, scim_sql_operator(op),
								 t->boolean ? "true" : "false");
			else
				appendStringInfo(buf, "(" SCIM_SQL_LOWER "(%s) %s '%s')", loc->expr.data, scim_sql_operator(op),
								 t->boolean ? "true" : "false");
			return;

		case SFV_DATETIME:
			if (loc->kind != LOC_TSTZ)
				invalid("invalidFilter", position, "comparing the dateTime attribute \"%s\" is "
						"not supported at position %d", name, position);
			{
				ScimFilterOp eff = op;
				ScimDateTime dt = t->datetime;

				/* the column holds microseconds; a finer value shifts the bound */
				if (dt.nanos % 1000 != 0)
				{
					if (op == SF_EQ)
					{
						appendStringInfoString(buf, "false");
						return;
					}
					if (op == SF_NE)
					{
						appendStringInfo(buf, "(%s IS NOT NULL)", loc->expr.data);
						return;
					}
					if (op == SF_GE)
						eff = SF_GT;
					else if (op == SF_LT)
						eff = SF_LE;
				}
				dt.nanos -= dt.nanos % 1000;
				appendStringInfo(buf, "(%s %s ", loc->expr.data, scim_sql_operator(eff));
				append_timestamptz(buf, &dt);
				appendStringInfoChar(buf, ')');
			}
			return;

		case SFV_NUMBER:
			invalid("invalidFilter", position, "comparing \"%s\" with a number is not supported "
					"at position %d", name, position);
			return;

		case SFV_STRING:
			break;

		default:
			return;
	}

	/* strings */
	if (loc->kind == LOC_UUID)
	{
		if (op == SF_EQ || op == SF_NE)
		{
			if (is_canonical_uuid(t->str, t->len))
			{
				appendStringInfo(buf, "(%s %s ", loc->expr.data, scim_sql_operator(op));
				scim_sql_append_literal(buf, t->str, t->len);
				appendStringInfoString(buf, "::" SCIM_SQL_UUID ")");
			}
			else
				appendStringInfoString(buf, op == SF_EQ ? "false" : "true");
			return;
		}
		/* other operators compare the text form */
	}
	if (loc->kind != LOC_TEXT && loc->kind != LOC_JSONB && loc->kind != LOC_UUID)
		invalid("invalidFilter", position, "comparing \"%s\" with a string is not supported "
				"at position %d", name, position);

	{
		const char *expr = loc->expr.data;
		bool		ci = !t->case_exact;
		StringInfoData lhs;

		initStringInfo(&lhs);
		if (loc->kind == LOC_UUID)
			appendStringInfo(&lhs, "%s::" SCIM_SQL_TEXT, expr);
		else
			appendStringInfoString(&lhs, expr);

		if (op == SF_CO || op == SF_SW || op == SF_EW)
		{
			/* LIKE is the operator ~~, whose escape character is \ */
			if (ci)
				appendStringInfo(buf, "(" SCIM_SQL_LOWER "(%s) " OP_LIKE " " SCIM_SQL_LOWER "(", lhs.data);
			else
				appendStringInfo(buf, "(%s " OP_LIKE " (", lhs.data);
			scim_sql_append_like_pattern(buf, op, t->str, t->len);
			appendStringInfoString(buf, "))");
			return;
		}
		if (op == SF_EQ || op == SF_NE)
		{
			if (ci)
				appendStringInfo(buf, "(" SCIM_SQL_LOWER "(%s) %s " SCIM_SQL_LOWER "(", lhs.data, scim_sql_operator(op));
			else
				appendStringInfo(buf, "(%s %s (", lhs.data, scim_sql_operator(op));
			scim_sql_append_literal(buf, t->str, t->len);
			appendStringInfoString(buf, "))");
			return;
		}
		/* ordering: code point order, as the matcher */
		if (ci)
			appendStringInfo(buf, "(" SCIM_SQL_LOWER "(%s) " SCIM_SQL_COLLATE_C " %s " SCIM_SQL_LOWER "(",
							 lhs.data, scim_sql_operator(op));
		else
			appendStringInfo(buf, "(%s " SCIM_SQL_COLLATE_C " %s (", lhs.data, scim_sql_operator(op));
		scim_sql_append_literal(buf, t->str, t->len);
		appendStringInfoString(buf, "))");
	}
}

/* A full comparison over a location: pr, null, or a value. */
static void
emit_on_loc(SqlGen *g, const Loc *loc, const ScimFilterTarget *t, ScimFilterOp op,
			int position, const char *name)
{
	if (op == SF_PR || (t->kind == SFV_NULL && op == SF_NE))
		emit_present(g, loc);
	else if (t->kind == SFV_NULL)
	{
		appendStringInfoString(g->buf, "NOT ");
		emit_present(g, loc);
	}
	else
		emit_compare_loc(g, loc, t, op, position, name);
}

static void
loc_init(Loc *loc, LocKind kind)
{
	loc->kind = kind;
	initStringInfo(&loc->expr);
	initStringInfo(&loc->jexpr);
}

/* An element sub-attribute (elem is the alias "eN.v"). */
static void
loc_element(Loc *loc, const char *elem, const char *sub)
{
	loc_init(loc, LOC_JSONB);
	if (sub == NULL)
	{
		appendStringInfo(&loc->jexpr, "%s", elem);
		appendStringInfo(&loc->expr, "(%s " SCIM_SQL_OP("#>>") " '{}')", elem);
	}
	else
	{
		appendStringInfo(&loc->jexpr, "(%s " OP_FIELD " ", elem);
		append_literal_str(&loc->jexpr, sub);
		appendStringInfoChar(&loc->jexpr, ')');
		appendStringInfo(&loc->expr, "(%s " OP_FIELD_TEXT " ", elem);
		append_literal_str(&loc->expr, sub);
		appendStringInfoChar(&loc->expr, ')');
	}
}

/* The location of a stored (column) attribute definition. */
static bool
loc_column(Loc *loc, const ScimAttrDef *def, const char *rt)
{
	if (def->storage == SCIM_STORE_CONSTANT)
	{
		loc_init(loc, LOC_TEXT);
		append_literal_str(&loc->expr, def->constant ? def->constant : rt);
		appendStringInfoString(&loc->expr, "::" SCIM_SQL_TEXT);
		return true;
	}
	if (def->storage != SCIM_STORE_COLUMN)
		return false;
	if (strcmp(def->column, "id") == 0)
	{
		loc_init(loc, LOC_UUID);
		appendStringInfoString(&loc->expr, "u.id");
	}
	else if (strcmp(def->column, "version") == 0)
	{
		/* rendered as the weak ETag W/"<version>" */
		loc_init(loc, LOC_TEXT);
		appendStringInfoString(&loc->expr, "('W/\"' " OP_CONCAT " u.version::" SCIM_SQL_TEXT " " OP_CONCAT " '\"')");
	}
	else if (def->type == SCIM_TYPE_BOOLEAN)
	{
		loc_init(loc, LOC_BOOL);
		appendStringInfo(&loc->expr, "u.%s", def->column);
	}
	else if (def->type == SCIM_TYPE_DATETIME)
	{
		loc_init(loc, LOC_TSTZ);
		appendStringInfo(&loc->expr, "u.%s", def->column);
	}
	else
	{
		loc_init(loc, LOC_TEXT);
		appendStringInfo(&loc->expr, "u.%s", def->column);
	}
	return true;
}

/* The schemas a rendered User carries, as a text[] expression. */
static void
append_user_schemas(StringInfo buf)
{
	appendStringInfoString(buf, "(ARRAY[");
	append_literal_str(buf, SCIM_URN_CORE_USER);
	appendStringInfoString(buf, ", ");
	append_literal_str(buf, SCIM_URN_PROVISION);
	appendStringInfoString(buf, "] " OP_CONCAT " CASE WHEN u.organization IS NOT NULL OR u.department IS NOT NULL OR u.attributes "
						   SCIM_SQL_OP("?") " ");
	append_literal_str(buf, SCIM_URN_ENTERPRISE);
	appendStringInfoString(buf, " THEN ARRAY[");
	append_literal_str(buf, SCIM_URN_ENTERPRISE);
	appendStringInfoString(buf, "] ELSE '{}'::" SCIM_SQL_TEXT "[] END)");
}

static void
display_name(char *buf, size_t size, const ScimAttrPath *parent, const ScimAttrPath *path)
{
	if (parent != NULL)
		snprintf(buf, size, "%s.%s", parent->attr, path->attr);
	else if (path->sub != NULL)
		snprintf(buf, size, "%s.%s", path->attr, path->sub);
	else
		snprintf(buf, size, "%s", path->attr);
}

static void pg_attribute_noreturn()
unknown_attribute(SqlGen *g, const ScimAttrPath *parent, const ScimAttrPath *path, int position)
{
	char		name[160];
	const ScimAttrPath *top = parent ? parent : path;

	display_name(name, sizeof(name), parent, path);
	if (top->schema != NULL)
	{
		const ScimSchemaDef *sd = scim_registry_schema(top->schema);

		if (sd == NULL || !scim_registry_schema_allowed(scim_registry_resource_type(g->rt), sd))
		{
			char		q[80];

			snprintf(q, sizeof(q), "%s", top->schema);
			invalid("invalidFilter", position, "unknown schema \"%s\" for %s resources at position %d",
					q, g->rt, position);
		}
	}
	invalid("invalidFilter", position, "unknown attribute \"%s\" for %s resources at position %d",
			name, g->rt, position);
}

/*
 * A User's read-only "groups": not stored with the user but rendered by
 * scim.user_groups(id) (65_groups.sql) from scim.group_members.
 */
static bool
is_user_groups(const ScimAttrRef *ref)
{
	return !ref->common && ref->attr->storage == SCIM_STORE_COMPUTED &&
		ref->attr->multi_valued && strcmp(ref->attr->name, "groups") == 0;
}

/* EXISTS over the elements of a multi-valued jsonb attribute. */
static char *
open_elements(SqlGen *g, const ScimAttrRef *ref)
{
	char	   *alias = psprintf("e%d", ++g->aliases);

	appendStringInfoString(g->buf, "EXISTS (SELECT 1 FROM pg_catalog.jsonb_path_query(");
	if (is_user_groups(ref))
		appendStringInfoString(g->buf, "scim.user_groups(u.id)");
	else
		append_jsonb_path(g->buf, ref);
	appendStringInfo(g->buf, ", 'lax $[*]') AS %s(v) WHERE ", alias);
	return psprintf("%s.v", alias);
}

/* Whether a string is a UUID in its textual form, any case. */
static bool
is_uuid_text(const char *s, size_t len)
{
	char		lower[36];

	if (len != 36)
		return false;
	for (size_t i = 0; i < len; i++)
		lower[i] = (s[i] >= 'A' && s[i] <= 'F') ? s[i] + ('a' - 'A') : s[i];
	return is_canonical_uuid(lower, len);
}

/* groups[.sub] op value for a User: over the groups it is a direct member of */
static void
emit_user_groups(SqlGen *g, const ScimFilterTarget *t, ScimFilterOp op, const char *sub,
				 int position, const char *name)
{
	StringInfo	buf = g->buf;
	char	   *e;
	Loc			loc;

	if (op == SF_PR || t->kind == SFV_NULL)
	{
		if (t->kind == SFV_NULL && op == SF_EQ)
			appendStringInfoString(buf, "NOT ");
		if (sub == NULL)
		{
			appendStringInfoString(buf, "EXISTS (SELECT 1 FROM scim.group_members m WHERE m.member_id " OP_EQ " u.id)");
			return;
		}
		e = open_elements(g, &t->ref);
		loc_element(&loc, e, sub);
		emit_present(g, &loc);
		appendStringInfoChar(buf, ')');
		return;
	}
	if (op == SF_EQ && t->kind == SFV_STRING && strcmp(sub, "value") == 0)
	{
		/* index-backed: the primary key of scim.group_members */
		if (!is_uuid_text(t->str, t->len))
		{
			appendStringInfoString(buf, "false");
			return;
		}
		appendStringInfoString(buf, "EXISTS (SELECT 1 FROM scim.group_members m WHERE m.member_id " OP_EQ " u.id "
							   "AND m.group_id " OP_EQ " ");
		scim_sql_append_literal(buf, t->str, t->len);
		appendStringInfoString(buf, "::" SCIM_SQL_UUID ")");
		return;
	}
	e = open_elements(g, &t->ref);
	loc_element(&loc, e, sub);
	emit_compare_loc(g, &loc, t, op, position, name);
	appendStringInfoChar(buf, ')');
}

/* attrPath op value, at the top level or inside a value filter (elem) */
static void
emit_compare(SqlGen *g, const ScimFilterNode *node, const ScimAttrPath *parent, const char *elem)
{
	const ScimAttrPath *path = &node->u.cmp.path;
	ScimFilterOp op = node->u.cmp.op;
	ScimFilterTarget t;
	ScimFilterError err;
	char		name[160];
	const ScimAttrDef *attr;
	const char *sub;
	Loc			loc;

	if (scim_filter_resolve(g->rt, parent, node, &t, &err) < 0)
		report("invalidFilter", &err);
	if (!t.known)
		unknown_attribute(g, parent, path, node->position);
	display_name(name, sizeof(name), parent, path);
	if (t.never)
	{
		appendStringInfoString(g->buf, "false");
		return;
	}

	/* inside a value filter: a sub-attribute of the current element */
	if (elem != NULL)
	{
		loc_element(&loc, elem, t.def->name);
		emit_on_loc(g, &loc, &t, op, node->position, name);
		return;
	}

	attr = t.ref.attr;
	sub = t.ref.sub ? t.ref.sub->name : t.implicit_sub;

	/* computed attributes */
	if (attr->storage == SCIM_STORE_COMPUTED && t.ref.common && strcmp(attr->name, "schemas") == 0)
	{
		if (strcmp(g->rt, "User") != 0)
			invalid("invalidFilter", node->position, "filtering %s resources on \"schemas\" is "
					"not supported yet (position %d)", g->rt, node->position);
		if (op == SF_PR || (t.kind == SFV_NULL && op == SF_NE))
			appendStringInfoString(g->buf, "true");
		else if (t.kind == SFV_NULL)
			appendStringInfoString(g->buf, "false");
		else
		{
			char	   *alias = psprintf("s%d", ++g->aliases);

			appendStringInfoString(g->buf, "EXISTS (SELECT 1 FROM pg_catalog.unnest(");
			append_user_schemas(g->buf);
			appendStringInfo(g->buf, ") AS %s(v) WHERE ", alias);
			loc_init(&loc, LOC_TEXT);
			appendStringInfo(&loc.expr, "%s.v", alias);
			emit_compare_loc(g, &loc, &t, op, node->position, name);
			appendStringInfoChar(g->buf, ')');
		}
		return;
	}
	if (is_user_groups(&t.ref))
	{
		emit_user_groups(g, &t, op, sub, node->position, name);
		return;
	}
	if (attr->storage == SCIM_STORE_COMPUTED && !(t.ref.common && strcmp(attr->name, "meta") == 0))
		invalid("invalidFilter", node->position, "filtering on \"%s\" is not supported yet "
				"(position %d)", name, node->position);

	/* complex attribute without sub-attribute: only pr gets here */
	if (t.def->type == SCIM_TYPE_COMPLEX)
	{
		bool		first = true;

		Assert(op == SF_PR);
		if (attr->storage == SCIM_STORE_COMPUTED)
		{
			/* meta: every stored resource has one */
			appendStringInfoString(g->buf, "true");
			return;
		}
		appendStringInfoChar(g->buf, '(');
		for (int i = 0; i < attr->n_sub_attrs; i++)
		{
			const ScimAttrDef *sd = &attr->sub_attrs[i];

			if (sd->storage != SCIM_STORE_COLUMN)
				continue;
			if (!first)
				appendStringInfoString(g->buf, " OR ");
			loc_column(&loc, sd, g->rt);
			emit_present(g, &loc);
			first = false;
		}
		if (!first)
			appendStringInfoString(g->buf, " OR ");
		loc_init(&loc, LOC_JSONB);
		append_jsonb_path(&loc.jexpr, &t.ref);
		emit_present(g, &loc);
		appendStringInfoChar(g->buf, ')');
		return;
	}

	/* a column (or constant) */
	if (loc_column(&loc, t.def, g->rt))
	{
		emit_on_loc(g, &loc, &t, op, node->position, name);
		return;
	}
	if (t.def->storage == SCIM_STORE_COMPUTED)
		invalid("invalidFilter", node->position, "filtering on \"%s\" is not supported yet "
				"(position %d)", name, node->position);

	/* inside attributes jsonb: equality is index-backed containment */
	if ((op == SF_EQ) && (t.kind == SFV_STRING || t.kind == SFV_BOOL))
	{
		StringInfoData doc;

		initStringInfo(&doc);
		containment_open(&doc, &t.ref);
		if (sub != NULL)
		{
			appendStringInfoChar(&doc, '{');
			append_json_string(&doc, sub, strlen(sub));
			appendStringInfoChar(&doc, ':');
		}
		append_json_value(&doc, &t);
		if (sub != NULL)
			appendStringInfoChar(&doc, '}');
		containment_close(&doc, &t.ref);
		emit_containment(g, doc.data, t.case_exact && t.kind == SFV_STRING);
		return;
	}

	if (attr->multi_valued)
	{
		char	   *e;

		if (op == SF_PR || t.kind == SFV_NULL)
		{
			/* present when some element's sub-attribute is */
			if (t.kind == SFV_NULL && op == SF_EQ)
				appendStringInfoString(g->buf, "NOT ");
			e = open_elements(g, &t.ref);
			loc_element(&loc, e, sub);
			emit_present(g, &loc);
			appendStringInfoChar(g->buf, ')');
			return;
		}
		e = open_elements(g, &t.ref);
		loc_element(&loc, e, sub);
		emit_compare_loc(g, &loc, &t, op, node->position, name);
		appendStringInfoChar(g->buf, ')');
		return;
	}

	/* a single-valued attribute (or sub-attribute) inside attributes */
	loc_init(&loc, LOC_JSONB);
	append_jsonb_path(&loc.jexpr, &t.ref);
	append_jsonb_path(&loc.expr, &t.ref);
	if (sub != NULL)
	{
		appendStringInfoString(&loc.jexpr, " " OP_FIELD " ");
		append_literal_str(&loc.jexpr, sub);
		appendStringInfoString(&loc.expr, " " OP_FIELD_TEXT " ");
		append_literal_str(&loc.expr, sub);
	}
	else
	{
		/* turn the last -> into ->> for the text form */
		resetStringInfo(&loc.expr);
		appendStringInfoString(&loc.expr, "u.attributes");
		if (t.ref.schema->is_extension)
		{
			appendStringInfoString(&loc.expr, " " OP_FIELD " ");
			append_literal_str(&loc.expr, t.ref.schema->id);
		}
		appendStringInfoString(&loc.expr, " " OP_FIELD_TEXT " ");
		append_literal_str(&loc.expr, attr->name);
	}
	{
		/* parenthesise so that lower(...) and operators bind as intended */
		char	   *e = psprintf("(%s)", loc.expr.data);
		char	   *j = psprintf("(%s)", loc.jexpr.data);

		resetStringInfo(&loc.expr);
		appendStringInfoString(&loc.expr, e);
		resetStringInfo(&loc.jexpr);
		appendStringInfoString(&loc.jexpr, j);
	}
	emit_on_loc(g, &loc, &t, op, node->position, name);
}

/* Collect the eq conjuncts of a value filter for a containment prefilter. */
typedef struct EqPair
{
	const char *key;
	ScimFilterTarget t;
} EqPair;

static bool
collect_eqs(SqlGen *g, const ScimFilterNode *node, const ScimAttrPath *parent,
			EqPair *pairs, int *n, int max, bool *exact)
{
	ScimFilterTarget t;
	ScimFilterError err;

	if (node->kind == SF_AND)
	{
		collect_eqs(g, node->u.bin.left, parent, pairs, n, max, exact);
		collect_eqs(g, node->u.bin.right, parent, pairs, n, max, exact);
		return true;
	}
	if (node->kind != SF_COMPARE || node->u.cmp.op != SF_EQ ||
		scim_filter_resolve(g->rt, parent, node, &t, &err) < 0 || !t.known || t.never ||
		!(t.kind == SFV_STRING || t.kind == SFV_BOOL))
	{
		*exact = false;
		return false;
	}
	if (t.case_exact && t.kind == SFV_STRING)
		*exact = false;
	for (int i = 0; i < *n; i++)
		if (strcmp(pairs[i].key, t.def->name) == 0)
		{
			/* the same sub-attribute twice: keep the first as prefilter */
			*exact = false;
			return false;
		}
	if (*n >= max)
	{
		*exact = false;
		return false;
	}
	pairs[*n].key = t.def->name;
	pairs[*n].t = t;
	(*n)++;
	return true;
}

static void
emit_valuepath(SqlGen *g, const ScimFilterNode *node)
{
	const ScimAttrPath *path = &node->u.vp.path;
	ScimAttrRef ref;
	EqPair		pairs[16];
	int			n = 0;
	bool		exact = true;
	char	   *e;

	if (!scim_registry_lookup(g->rt, path->schema, path->attr, NULL, &ref))
		unknown_attribute(g, NULL, path, node->position);
	if (ref.attr->returned == SCIM_RET_NEVER)
	{
		appendStringInfoString(g->buf, "false");
		return;
	}
	if (is_user_groups(&ref))
	{
		e = open_elements(g, &ref);
		emit_node(g, node->u.vp.filter, path, e);
		appendStringInfoChar(g->buf, ')');
		return;
	}
	if (ref.attr->storage == SCIM_STORE_COMPUTED && !ref.common)
		invalid("invalidFilter", node->position, "filtering on \"%s\" is not supported yet "
				"(position %d)", path->attr, node->position);

	if (!ref.attr->multi_valued)
	{
		/* a single complex value: the filter applies to its sub-attributes */
		emit_node(g, node->u.vp.filter, path, NULL);
		return;
	}

	collect_eqs(g, node->u.vp.filter, path, pairs, &n, lengthof(pairs), &exact);

	/*
	 * When the containment is only a prefilter (other conditions follow), it
	 * pays only if it names a selective sub-attribute: "type" and "primary"
	 * match most elements, and the planner cannot tell, so a prefilter of
	 * those alone turns into an index scan over nearly every row plus a
	 * recheck of the lower()ed document per row.  Leave it out then.
	 */
	if (!exact && n > 0)
	{
		bool		selective = false;

		for (int i = 0; i < n; i++)
			if (pg_strcasecmp(pairs[i].key, "type") != 0 &&
				pg_strcasecmp(pairs[i].key, "primary") != 0)
				selective = true;
		if (!selective)
			n = 0;
	}
	if (n > 0)
	{
		StringInfoData doc;

		initStringInfo(&doc);
		containment_open(&doc, &ref);
		appendStringInfoChar(&doc, '{');
		for (int i = 0; i < n; i++)
		{
			if (i > 0)
				appendStringInfoChar(&doc, ',');
			append_json_string(&doc, pairs[i].key, strlen(pairs[i].key));
			appendStringInfoChar(&doc, ':');
			append_json_value(&doc, &pairs[i].t);
		}
		appendStringInfoChar(&doc, '}');
		containment_close(&doc, &ref);
		if (exact)
		{
			emit_containment(g, doc.data, false);
			return;
		}
		appendStringInfoChar(g->buf, '(');
		emit_containment(g, doc.data, false);
		appendStringInfoString(g->buf, " AND ");
	}
	e = open_elements(g, &ref);
	emit_node(g, node->u.vp.filter, path, e);
	appendStringInfoChar(g->buf, ')');
	if (n > 0)
		appendStringInfoChar(g->buf, ')');
}

/* ---------------------------------------------------------------------
 * The search-text condition (src/search_text.c)
 *
 * A comparison co/sw/ew on a jsonb name (name.formatted, name.middleName,
 * ...), nickName or a sub-attribute of emails, phoneNumbers or addresses
 * gets a necessary condition in front:
 *	 (SEARCH_TEXT ~~ lower('%value%') AND <exact predicate>)
 * which users_search_text_idx (pg_trgm) answers.  The exact predicate still
 * decides, so results are those of the predicate alone.
 * ---------------------------------------------------------------------
 */
#define SEARCH_TEXT "scim.search_text(u.attributes)"

/* Whether pg_trgm finds a trigram in a value: a run of 3 word characters. */
static bool
has_trigram(const char *s, size_t len)
{
	int			run = 0;

	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0xC0)
		{
			if (++run >= 3)
				return true;
		}
		else if (c < 0x80)
			run = 0;
		/* UTF-8 continuation bytes belong to the character before */
	}
	return false;
}

/* Whether search_text holds an attribute's values. */
static bool
in_search_text(const SqlGen *g, const ScimAttrRef *ref)
{
	const char *name = ref->attr->name;

	if (strcmp(g->rt, "User") != 0 || ref->common || ref->schema->is_extension)
		return false;
	if (ref->attr->multi_valued)
		return strcmp(name, "emails") == 0 || strcmp(name, "phoneNumbers") == 0 ||
			strcmp(name, "addresses") == 0;
	/*
	 * The name columns have trigram columns of their own in the index, on
	 * which their exact predicates (lower(u.given_name) LIKE/= ...) run
	 * directly: no condition in front.
	 */
	if (strcmp(name, "name") == 0 && ref->sub != NULL)
		return ref->sub->storage != SCIM_STORE_COLUMN;
	if (strcmp(name, "displayName") == 0)
		return false;
	return strcmp(name, "nickName") == 0;
}

static void
append_search_condition(SqlGen *g, const ScimFilterTarget *t)
{
	appendStringInfoString(g->buf, "(" SEARCH_TEXT " " OP_LIKE " " SCIM_SQL_LOWER "(");
	scim_sql_append_like_pattern(g->buf, SF_CO, t->str, t->len);
	appendStringInfoString(g->buf, ") AND ");
}

/*
 * The element-key condition (src/element_keys.c): sw/ew (and co with an
 * '@' on emails) on the value of an emails or phoneNumbers element, when
 * compared case-insensitively (the keys are lower-cased), gets
 *	 (KEYS @@ scim.element_keys_query(...) AND <exact predicate>)
 * which the second column of users_search_text_idx answers; it is preferred
 * to the search text, whose trigrams of an address are common to all.  When
 * the keys decide the comparison alone (scim_element_keys_exact), the exact
 * predicate is left to the users whose keys are incomplete:
 *	 (KEYS @@ <query> AND (KEYS @@ <exact query> OR <exact predicate>))
 * so that the users the index returns are not re-checked element by element.
 * A value path [type eq "t" and value co "@z"] (or ew "@z") uses the typed keys.
 * ---------------------------------------------------------------------
 */
#define ELEMENT_KEYS "u.element_keys"

typedef struct KeyCond
{
	ScimFilterTarget value;		/* the value comparison */
	ScimFilterOp op;
	ScimFilterTarget type;		/* the value path's type eq, if typed */
	bool		typed;
	bool		exact;
} KeyCond;

static bool
keys_apply(const SqlGen *g, const ScimFilterTarget *t, ScimFilterOp op)
{
	const char *name = t->ref.attr->name;

	if (strcmp(g->rt, "User") != 0 || t->ref.common || t->ref.schema->is_extension ||
		!t->ref.attr->multi_valued || t->def == t->ref.attr || t->case_exact ||
		t->kind != SFV_STRING || strcmp(t->def->name, "value") != 0)
		return false;
	if (strcmp(name, "emails") == 0)
		return scim_element_keys_apply(SCIM_ELEMENT_EMAILS, op, t->str, t->len);
	if (strcmp(name, "phoneNumbers") == 0)
		return scim_element_keys_apply(SCIM_ELEMENT_PHONES, op, t->str, t->len);
	return false;
}

static void
keys_set_exact(KeyCond *k)
{
	ScimElementAttr attr = strcmp(k->value.ref.attr->name, "emails") == 0 ?
		SCIM_ELEMENT_EMAILS : SCIM_ELEMENT_PHONES;

	k->exact = scim_element_keys_exact(attr, k->op, k->value.str, k->value.len,
									   k->typed ? k->type.str : NULL, k->typed ? k->type.len : 0);
}

static void
append_keys_query(SqlGen *g, const KeyCond *k, bool exact)
{
	appendStringInfoString(g->buf, ELEMENT_KEYS " " SCIM_SQL_OP("@@") " scim.element_keys_query(");
	append_literal_str(g->buf, k->value.ref.attr->name);
	appendStringInfoString(g->buf, ", ");
	append_literal_str(g->buf, k->op == SF_SW ? "sw" : k->op == SF_EW ? "ew" : k->op == SF_CO ? "co" : "eq");
	appendStringInfoString(g->buf, ", ");
	scim_sql_append_literal(g->buf, k->value.str, k->value.len);
	appendStringInfoString(g->buf, ", ");
	if (k->typed)
		scim_sql_append_literal(g->buf, k->type.str, k->type.len);
	else
		appendStringInfoString(g->buf, "NULL");
	appendStringInfoString(g->buf, exact ? ", true)" : ", false)");
}

/* What goes before the exact predicate (close_keys_condition after it). */
static void
open_keys_condition(SqlGen *g, const KeyCond *k)
{
	appendStringInfoChar(g->buf, '(');
	append_keys_query(g, k, false);
	appendStringInfoString(g->buf, " AND ");
	if (k->exact)
	{
		appendStringInfoChar(g->buf, '(');
		append_keys_query(g, k, true);
		appendStringInfoString(g->buf, " OR ");
	}
}

static void
close_keys_condition(SqlGen *g, const KeyCond *k)
{
	if (k->exact)
		appendStringInfoChar(g->buf, ')');
	appendStringInfoChar(g->buf, ')');
}

/* A comparison outside any element (top level, or inside name[...]). */
static void
emit_compare_searched(SqlGen *g, const ScimFilterNode *node)
{
	ScimFilterTarget t;
	ScimFilterError err;
	ScimFilterOp op = node->u.cmp.op;
	bool		use = false;
	KeyCond		k;

	memset(&k, 0, sizeof(k));
	if (filter_search_index &&
		scim_filter_resolve(g->rt, NULL, node, &t, &err) == 0 && t.known && !t.never &&
		t.kind == SFV_STRING)
	{
		if (op != SF_EQ && keys_apply(g, &t, op))
		{
			k.value = t;
			k.op = op;
			keys_set_exact(&k);
			open_keys_condition(g, &k);
			emit_compare(g, node, NULL, NULL);
			close_keys_condition(g, &k);
			return;
		}
		if (has_trigram(t.str, t.len) && in_search_text(g, &t.ref) &&
			(op == SF_CO || op == SF_SW || op == SF_EW))
		{
			append_search_condition(g, &t);
			use = true;
		}
	}
	emit_compare(g, node, NULL, NULL);
	if (use)
		appendStringInfoChar(g->buf, ')');
}

/*
 * The best co/sw/ew leaf of a value filter's AND chain (the longest value),
 * for the search-text condition; eq leaves are the containment's.
 */
static bool
valuepath_search_leaf(SqlGen *g, const ScimFilterNode *node, const ScimAttrPath *parent,
					  ScimFilterTarget *best)
{
	ScimFilterTarget t;
	ScimFilterError err;
	bool		found;

	if (node->kind == SF_AND)
	{
		found = valuepath_search_leaf(g, node->u.bin.left, parent, best);
		return valuepath_search_leaf(g, node->u.bin.right, parent, best) || found;
	}
	if (node->kind != SF_COMPARE ||
		(node->u.cmp.op != SF_CO && node->u.cmp.op != SF_SW && node->u.cmp.op != SF_EW))
		return false;
	if (scim_filter_resolve(g->rt, parent, node, &t, &err) < 0 || !t.known || t.never ||
		t.kind != SFV_STRING || !has_trigram(t.str, t.len))
		return false;
	if (best->str == NULL || t.len > best->len)
		*best = t;
	return true;
}

/* A sw/ew/co leaf of a value filter's AND chain that has a key condition. */
static bool
valuepath_keys_leaf(SqlGen *g, const ScimFilterNode *node, const ScimAttrPath *parent,
					KeyCond *k)
{
	ScimFilterTarget t;
	ScimFilterError err;

	if (node->kind == SF_AND)
		return valuepath_keys_leaf(g, node->u.bin.left, parent, k) ||
			valuepath_keys_leaf(g, node->u.bin.right, parent, k);
	if (node->kind != SF_COMPARE ||
		(node->u.cmp.op != SF_CO && node->u.cmp.op != SF_SW && node->u.cmp.op != SF_EW))
		return false;
	if (scim_filter_resolve(g->rt, parent, node, &t, &err) < 0 || !t.known || t.never ||
		!keys_apply(g, &t, node->u.cmp.op))
		return false;
	k->value = t;
	k->op = node->u.cmp.op;
	return true;
}

/* Whether a value filter's leaf is "type eq <string>" compared case-insensitively. */
static bool
valuepath_type_eq(SqlGen *g, const ScimFilterNode *node, const ScimAttrPath *parent,
				  ScimFilterTarget *t)
{
	ScimFilterError err;

	return node->kind == SF_COMPARE && node->u.cmp.op == SF_EQ &&
		scim_filter_resolve(g->rt, parent, node, t, &err) == 0 && t->known && !t->never &&
		t->kind == SFV_STRING && !t->case_exact && t->def != t->ref.attr &&
		strcmp(t->def->name, "type") == 0;
}

/*
 * The key condition of a value filter: the best case decides alone
 * ([value op x], or [type eq "t" and value co/ew "@z"] in either order), else
 * any leaf with a key condition narrows it.
 */
static bool
valuepath_keys(SqlGen *g, const ScimFilterNode *filter, const ScimAttrPath *parent, KeyCond *k)
{
	memset(k, 0, sizeof(*k));
	if (filter->kind == SF_COMPARE)
	{
		if (!valuepath_keys_leaf(g, filter, parent, k))
			return false;
		keys_set_exact(k);
		return true;
	}
	if (filter->kind == SF_AND)
	{
		const ScimFilterNode *l = filter->u.bin.left;
		const ScimFilterNode *r = filter->u.bin.right;

		/* exactly two leaves: a third (primary eq true) is not in the keys */
		if ((valuepath_type_eq(g, l, parent, &k->type) && r->kind == SF_COMPARE &&
			 valuepath_keys_leaf(g, r, parent, k)) ||
			(valuepath_type_eq(g, r, parent, &k->type) && l->kind == SF_COMPARE &&
			 valuepath_keys_leaf(g, l, parent, k)))
		{
			k->typed = true;
			keys_set_exact(k);
			if (k->exact)
				return true;
			k->typed = false;	/* only the typed keys decide with the type */
			return true;
		}
		memset(k, 0, sizeof(*k));
	}
	return valuepath_keys_leaf(g, filter, parent, k);
}

static void
emit_valuepath_searched(SqlGen *g, const ScimFilterNode *node)
{
	const ScimAttrPath *path = &node->u.vp.path;
	ScimAttrRef ref;
	ScimFilterTarget best;
	KeyCond		k;
	bool		use = false;

	memset(&best, 0, sizeof(best));
	if (filter_search_index &&
		scim_registry_lookup(g->rt, path->schema, path->attr, NULL, &ref) &&
		ref.attr->multi_valued && ref.attr->returned != SCIM_RET_NEVER &&
		in_search_text(g, &ref))
	{
		if (valuepath_keys(g, node->u.vp.filter, path, &k))
		{
			open_keys_condition(g, &k);
			emit_valuepath(g, node);
			close_keys_condition(g, &k);
			return;
		}
		else if (valuepath_search_leaf(g, node->u.vp.filter, path, &best))
		{
			append_search_condition(g, &best);
			use = true;
		}
	}
	emit_valuepath(g, node);
	if (use)
		appendStringInfoChar(g->buf, ')');
}

/* Emit a chain of same-kind binary nodes, flattened. */
static void
emit_chain(SqlGen *g, ScimFilterKind kind, const ScimFilterNode *node,
		   const ScimAttrPath *parent, const char *elem, bool *first)
{
	if (node->kind == kind)
	{
		emit_chain(g, kind, node->u.bin.left, parent, elem, first);
		emit_chain(g, kind, node->u.bin.right, parent, elem, first);
		return;
	}
	if (!*first)
		appendStringInfoString(g->buf, kind == SF_AND ? " AND " : " OR ");
	*first = false;
	emit_node(g, node, parent, elem);
}

/*
 * parent/elem: inside a value filter, the valuePath's attribute and the
 * SQL alias of the current element ("e1.v"); elem is NULL when the value
 * filter applies to a single complex attribute (name[...], meta[...]).
 */
static void
emit_node(SqlGen *g, const ScimFilterNode *node, const ScimAttrPath *parent, const char *elem)
{
	bool		first = true;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	switch (node->kind)
	{
		case SF_COMPARE:
			if (parent != NULL && elem == NULL)
			{
				/* relative to a single complex attribute: qualify the path */
				ScimFilterNode q = *node;

				q.u.cmp.path.schema = parent->schema;
				q.u.cmp.path.attr = parent->attr;
				q.u.cmp.path.sub = node->u.cmp.path.attr;
				emit_compare_searched(g, &q);
			}
			else if (parent == NULL && elem == NULL)
				emit_compare_searched(g, node);
			else
				emit_compare(g, node, parent, elem);
			break;
		case SF_AND:
		case SF_OR:
			appendStringInfoChar(g->buf, '(');
			emit_chain(g, node->kind, node, parent, elem, &first);
			appendStringInfoChar(g->buf, ')');
			break;
		case SF_NOT:
			appendStringInfoString(g->buf, "NOT coalesce(");
			emit_node(g, node->u.not.arg, parent, elem);
			appendStringInfoString(g->buf, ", false)");
			break;
		case SF_VALUEPATH:
			emit_valuepath_searched(g, node);
			break;
	}
}

/* Parse filter text (server encoding) with the GUC limits; ereports. */
static ScimFilterNode *
parse_or_report(ScimArena *arena, const char *text, size_t len)
{
	ScimFilterLimits limits;
	ScimFilterError err;
	ScimFilterNode *node;
	const char *utf8 = to_utf8(text, &len);

	scim_filter_limits_from_gucs(&limits);
	node = scim_filter_parse(arena, utf8, len, &limits, &err);
	if (node == NULL)
		report("invalidFilter", &err);
	return node;
}

static const char *
canonical_resource_type(const char *resource_type)
{
	const ScimResourceTypeDef *rt = scim_registry_resource_type(resource_type);

	if (rt == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidValue: unknown resource type \"%s\"", resource_type),
				 errhint("Use \"User\" or \"Group\".")));
	return rt->name;
}

char *
scim_filter_sql_predicate(const char *filter, size_t len, const char *resource_type)
{
	ScimArena	arena;
	ScimFilterNode *node;
	ScimFilterError err;
	StringInfoData buf;
	SqlGen		g;

	g.rt = canonical_resource_type(resource_type);
	if (strcmp(g.rt, "Group") == 0)
	{
		/* groups.c: a predicate over "scim.groups g" */
		const char *utf8 = to_utf8(filter, &len);

		return scim_group_filter_predicate(utf8, len);
	}

	scim_arena_init(&arena, &scim_palloc_allocator);
	node = parse_or_report(&arena, filter, len);
	if (scim_filter_validate(node, g.rt, &err) < 0)
		report("invalidFilter", &err);

	initStringInfo(&buf);
	g.buf = &buf;
	g.aliases = 0;
	emit_node(&g, node, NULL, NULL);
	return buf.data;
}

/* ---------------------------------------------------------------------
 * sortBy
 * ---------------------------------------------------------------------
 */
char *
scim_sort_expression_sql(const char *attr_path, size_t len, const char *resource_type)
{
	ScimArena	arena;
	ScimPatchPath pp;
	ScimFilterLimits limits;
	ScimFilterError err;
	ScimAttrRef ref;
	const char *rt = canonical_resource_type(resource_type);
	const ScimAttrDef *def;
	const ScimAttrDef *attr;
	StringInfoData buf;
	char		name[160];
	Loc			loc;

	if (strcmp(rt, "Group") == 0)
	{
		/* groups.c: an expression over "scim.groups g" */
		Datum		d = DirectFunctionCall1(scim_group_sort_expression,
											PointerGetDatum(cstring_to_text_with_len(attr_path, (int) len)));

		return text_to_cstring(DatumGetTextPP(d));
	}
	scim_arena_init(&arena, &scim_palloc_allocator);
	scim_filter_limits_from_gucs(&limits);
	attr_path = to_utf8(attr_path, &len);
	if (!scim_patch_path_parse(&arena, attr_path, len, &limits, &pp, &err))
		report("invalidPath", &err);
	if (pp.filter != NULL)
		invalid("invalidPath", 0, "sortBy takes an attribute path, not a value filter");
	display_name(name, sizeof(name), NULL, &pp.path);
	if (!scim_registry_lookup(rt, pp.path.schema, pp.path.attr, pp.path.sub, &ref))
		invalid("invalidPath", 0, "unknown attribute \"%s\" for sortBy on %s resources", name, rt);

	attr = ref.attr;
	def = ref.sub ? ref.sub : attr;
	if (def->type == SCIM_TYPE_COMPLEX)
	{
		const ScimAttrDef *value_sub = scim_registry_sub_attr(def, "value");

		if (value_sub == NULL)
			invalid("invalidPath", 0, "\"%s\" is a complex attribute; sort by one of its "
					"sub-attributes (e.g. \"%s.%s\")", name, name, def->sub_attrs[0].name);
		def = value_sub;
	}
	if (def->returned == SCIM_RET_NEVER || attr->returned == SCIM_RET_NEVER)
		invalid("invalidPath", 0, "\"%s\" is never returned and cannot be used for sorting", name);

	initStringInfo(&buf);
	if (ref.common && strcmp(attr->name, "meta") == 0 && strcmp(def->name, "location") == 0)
	{
		/* the location ends in the id: same order */
		appendStringInfoString(&buf, "u.id::" SCIM_SQL_TEXT);
		return buf.data;
	}
	if (ref.common && strcmp(attr->name, "meta") == 0 && strcmp(def->name, "version") == 0)
	{
		appendStringInfoString(&buf, "u.version");
		return buf.data;
	}
	if (loc_column(&loc, def, rt))
	{
		if (loc.kind == LOC_TEXT && !def->case_exact)
			appendStringInfo(&buf, SCIM_SQL_LOWER "(%s)", loc.expr.data);
		else
			appendStringInfoString(&buf, loc.expr.data);
		return buf.data;
	}
	if (attr->storage == SCIM_STORE_COMPUTED || def->storage == SCIM_STORE_COMPUTED ||
		def->storage == SCIM_STORE_NONE)
		invalid("invalidPath", 0, "sorting by \"%s\" is not supported", name);

	if (attr->multi_valued)
	{
		const char *sub = def->name;

		/* RFC 7644 3.4.2.3: the primary value; the mirror column holds it */
		if (attr->column != NULL && strcmp(sub, "value") == 0)
		{
			appendStringInfo(&buf, SCIM_SQL_LOWER "(u.%s)", attr->column);
			return buf.data;
		}
		appendStringInfoString(&buf, "(SELECT ");
		if (!def->case_exact && def->type != SCIM_TYPE_BOOLEAN)
			appendStringInfoString(&buf, SCIM_SQL_LOWER "(e.v " OP_FIELD_TEXT " ");
		else
			appendStringInfoString(&buf, "(e.v " OP_FIELD_TEXT " ");
		append_literal_str(&buf, sub);
		appendStringInfoString(&buf, ") FROM pg_catalog.jsonb_path_query(");
		append_jsonb_path(&buf, &ref);
		appendStringInfoString(&buf, ", 'lax $[*]') WITH ORDINALITY AS e(v, n) "
							   "ORDER BY (e.v " OP_FIELD " 'primary') " OP_EQ " 'true'::" SCIM_SQL_JSONB
							   " DESC NULLS LAST, e.n LIMIT 1)");
		return buf.data;
	}

	if (!def->case_exact && def->type != SCIM_TYPE_BOOLEAN)
		appendStringInfoString(&buf, SCIM_SQL_LOWER "(");
	else
		appendStringInfoChar(&buf, '(');
	appendStringInfoString(&buf, "u.attributes");
	if (ref.schema->is_extension)
	{
		appendStringInfoString(&buf, " " OP_FIELD " ");
		append_literal_str(&buf, ref.schema->id);
	}
	if (def != attr)
	{
		appendStringInfoString(&buf, " " OP_FIELD " ");
		append_literal_str(&buf, attr->name);
	}
	appendStringInfoString(&buf, " " OP_FIELD_TEXT " ");
	append_literal_str(&buf, def->name);
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/* ---------------------------------------------------------------------
 * SQL-callable functions
 * ---------------------------------------------------------------------
 */

/* An SjValue as jsonb; NULL means the builder ran out of memory. */
static Datum
sj_to_jsonb_datum(const SjValue *value)
{
	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while building JSON")));
	return JsonbPGetDatum(sj_to_jsonb(value));
}

/* scim.parse_filter(filter text) RETURNS jsonb */
Datum
scim_parse_filter(PG_FUNCTION_ARGS)
{
	text	   *filter = PG_GETARG_TEXT_PP(0);
	ScimArena	arena;
	ScimFilterNode *node;

	scim_arena_init(&arena, &scim_palloc_allocator);
	node = parse_or_report(&arena, VARDATA_ANY(filter), VARSIZE_ANY_EXHDR(filter));
	PG_RETURN_DATUM(sj_to_jsonb_datum(scim_filter_to_json(&arena, node)));
}

/*
 * The parsed filter of the previous call, kept in fn_mcxt: a query that
 * matches one filter against many rows parses it once.
 */
typedef struct MatchCache
{
	char	   *filter;			/* the filter text (server encoding) */
	size_t		len;
	int			max_length;		/* the limits it was parsed under */
	int			max_depth;
	ScimArena	arena;			/* holds the AST, in fn_mcxt */
	ScimFilterNode *node;
} MatchCache;

static ScimFilterNode *
cached_filter(FunctionCallInfo fcinfo, text *filter)
{
	MatchCache *cache = (MatchCache *) fcinfo->flinfo->fn_extra;
	const char *data = VARDATA_ANY(filter);
	size_t		len = VARSIZE_ANY_EXHDR(filter);
	MemoryContext old;

	if (cache != NULL && cache->node != NULL && cache->len == len &&
		memcmp(cache->filter, data, len) == 0 &&
		cache->max_length == filter_max_length && cache->max_depth == filter_max_depth)
		return cache->node;

	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (cache == NULL)
	{
		cache = palloc0(sizeof(MatchCache));
		fcinfo->flinfo->fn_extra = cache;
	}
	else
	{
		/* forget the previous filter before parsing (a parse error leaves no stale entry) */
		scim_arena_reset(&cache->arena);
		if (cache->filter != NULL)
			pfree(cache->filter);
		cache->filter = NULL;
		cache->node = NULL;
		cache->len = 0;
	}
	scim_arena_init(&cache->arena, &scim_palloc_allocator);
	cache->node = parse_or_report(&cache->arena, data, len);
	cache->filter = pnstrdup(data, len);
	cache->len = len;
	cache->max_length = filter_max_length;
	cache->max_depth = filter_max_depth;
	MemoryContextSwitchTo(old);
	return cache->node;
}

/*
 * scim.filter_match(filter text, resource jsonb) RETURNS boolean
 *
 * The resource type comes from meta.resourceType or the core schema in
 * "schemas"; a resource naming neither is taken as a User.
 */
Datum
scim_filter_match_sql(PG_FUNCTION_ARGS)
{
	text	   *filter = PG_GETARG_TEXT_PP(0);
	Jsonb	   *resource = PG_GETARG_JSONB_P(1);
	ScimArena	arena;
	ScimFilterNode *node;
	ScimFilterError err;
	SjValue    *doc;
	const char *rt;
	int			r;

	node = cached_filter(fcinfo, filter);
	scim_arena_init(&arena, &scim_palloc_allocator);
	doc = sj_from_jsonb(&arena, resource);

	/* a resource that names neither meta.resourceType nor a core schema: User */
	rt = scim_filter_resource_type_of(doc);
	r = scim_filter_match(node, doc, rt ? rt : "User", &err);
	if (r < 0)
		report("invalidFilter", &err);
	PG_RETURN_BOOL(r == 1);
}

/* scim.filter_sql(filter text, resource_type text DEFAULT 'User') RETURNS text */
Datum
scim_filter_sql(PG_FUNCTION_ARGS)
{
	text	   *filter = PG_GETARG_TEXT_PP(0);
	char	   *rt = text_to_cstring(PG_GETARG_TEXT_PP(1));

	PG_RETURN_TEXT_P(cstring_to_text(scim_filter_sql_predicate(VARDATA_ANY(filter),
															   VARSIZE_ANY_EXHDR(filter), rt)));
}

/* scim.sort_expression(attr_path text, resource_type text DEFAULT 'User') RETURNS text */
Datum
scim_sort_expression(PG_FUNCTION_ARGS)
{
	text	   *path = PG_GETARG_TEXT_PP(0);
	char	   *rt = text_to_cstring(PG_GETARG_TEXT_PP(1));

	PG_RETURN_TEXT_P(cstring_to_text(scim_sort_expression_sql(VARDATA_ANY(path),
															  VARSIZE_ANY_EXHDR(path), rt)));
}

/* scim.schema_definitions() RETURNS jsonb */
Datum
scim_schema_definitions(PG_FUNCTION_ARGS)
{
	ScimArena	arena;

	scim_arena_init(&arena, &scim_palloc_allocator);
	PG_RETURN_DATUM(sj_to_jsonb_datum(scim_registry_schemas_json(&arena)));
}

/* scim.resource_type_definitions() RETURNS jsonb */
Datum
scim_resource_type_definitions(PG_FUNCTION_ARGS)
{
	ScimArena	arena;

	scim_arena_init(&arena, &scim_palloc_allocator);
	PG_RETURN_DATUM(sj_to_jsonb_datum(scim_registry_resource_types_json(&arena)));
}

/*
 * scim.jsonb_present(value jsonb) RETURNS boolean: SCIM "pr" over jsonb,
 * true when some scalar inside is neither null nor "" (so null, "", [],
 * {} and arrays/objects of only those are absent).  NULL input: false.
 */
Datum
scim_jsonb_present(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	jb = PG_GETARG_JSONB_P(0);
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok != WJB_VALUE && tok != WJB_ELEM)
			continue;
		if (v.type == jbvNull)
			continue;
		if (v.type == jbvString && v.val.string.len == 0)
			continue;
		PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(false);
}
