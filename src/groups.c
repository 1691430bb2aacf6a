/*-------------------------------------------------------------------------
 *
 * groups.c
 *		Backend C for Groups, /Bulk and cursor pagination: their GUCs, the
 *		SQL pushdown of SCIM filters and sortBy over scim.groups, and the
 *		primitives of the tamper-evident cursor.
 *
 * GUCs (PGC_SUSET: an IdP's session cannot change them):
 *	scim_provision.bulk_max_operations	operations one /Bulk request may hold
 *	scim_provision.bulk_max_payload		bytes one /Bulk request body may have
 *	scim_provision.cursor_timeout		seconds a cursor stays valid
 * Advertised in /ServiceProviderConfig (bulk.maxOperations,
 * bulk.maxPayloadSize, pagination.cursorTimeout); enforced by
 * src/sql/67_bulk.sql and src/sql/68_cursor.sql.
 *
 * scim._group_filter_sql(filter text) RETURNS text turns a filter into a
 * predicate over "scim.groups g", the way scim.filter_sql does for
 * "scim.users u": attribute names resolve through the attribute registry
 * (registry.c, resource type Group) and comparison values through the
 * filter engine's resolver (scim_filter_resolve), so both engines accept
 * and refuse the same filters; only the storage differs:
 *	id							g.id (uuid: eq/ne compare uuids)
 *	externalId					g.external_id (caseExact)
 *	displayName					lower(g.display_name): the unique index on
 *								(workspace, lower(display_name)) serves eq
 *	meta.created/lastModified	g.created_at / g.updated_at
 *	meta.version				W/"<g.version>";  meta.location, resourceType
 *	members[.value|.display|.type|.$ref], members[<value filter>]
 *								EXISTS over scim.group_members m (and
 *								scim.users mu when display is compared): a
 *								semi-join the planner drives from the
 *								member_id index for members[value eq "<id>"]
 * Values reach SQL only through quote_literal_cstr; LIKE patterns escape
 * \ % _ themselves.  A leaf yields false, never NULL, under "not".
 * Functions, comparison and text operators, types and the "C" collation
 * are schema-qualified as in filter_sql.c (filter.h: pg_catalog.lower,
 * OPERATOR(pg_catalog.=), ...), so the predicate means the same under any
 * search_path; the uuid joins of the members' EXISTS are still plain.
 *
 * scim._group_sort_expression(attr text) RETURNS text: the ORDER BY
 * expression for sortBy over "scim.groups g".
 *
 * scim._hmac_sha256(key bytea, message bytea) RETURNS bytea and
 * scim._hmac_sha256_verify(key, message, mac) RETURNS boolean (constant
 * time), scim._random_bytes(n) RETURNS bytea (pg_strong_random): the cursor
 * of 68_cursor.sql is base64url(payload) "." base64url(HMAC-SHA-256 of the
 * payload under a per-installation secret).
 *
 * src/groups.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"

#include "scim_provision.h"
#include "filter.h"
#include "filter_sql.h"
#include "groups.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(scim_group_filter_sql);
PG_FUNCTION_INFO_V1(scim_group_sort_expression);
PG_FUNCTION_INFO_V1(scim_hmac_sha256);
PG_FUNCTION_INFO_V1(scim_hmac_sha256_verify);
PG_FUNCTION_INFO_V1(scim_random_bytes);

static int	bulk_max_operations = 1000;
static int	bulk_max_payload = 1048576;
static int	cursor_timeout = 3600;

void
scim_groups_init_gucs(void)
{
	DefineCustomIntVariable("scim_provision.bulk_max_operations",
							"Largest number of operations one SCIM /Bulk request may hold.",
							"A larger request is refused with 413; advertised as bulk.maxOperations in /ServiceProviderConfig.",
							&bulk_max_operations,
							1000, 1, 100000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("scim_provision.bulk_max_payload",
							"Largest SCIM /Bulk request body, in bytes.",
							"A larger body is refused with 413; advertised as bulk.maxPayloadSize in /ServiceProviderConfig.",
							&bulk_max_payload,
							1048576, 1024, 256 * 1024 * 1024,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("scim_provision.cursor_timeout",
							"Seconds a SCIM pagination cursor stays valid.",
							"An older cursor is refused with expiredCursor; advertised as pagination.cursorTimeout in /ServiceProviderConfig.",
							&cursor_timeout,
							3600, 1, 7 * 86400,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}

/* ---------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------
 */
static void pg_attribute_printf(2, 3) pg_attribute_noreturn()
refuse(const char *scim_type, const char *fmt,...)
{
	char		msg[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: %s", scim_type, msg)));
}

/* The filter text as UTF-8 (the cores work in UTF-8), with its length. */
static const char *
text_to_utf8(text *t, size_t *len)
{
	const char *s = VARDATA_ANY(t);
	int			n = VARSIZE_ANY_EXHDR(t);
	char	   *nul = pnstrdup(s, n);
	char	   *conv = pg_server_to_any(nul, n, PG_UTF8);

	*len = strlen(conv);
	return conv;
}

/* ---------------------------------------------------------------------
 * Filters over scim.groups g
 * ---------------------------------------------------------------------
 */
typedef enum GLocKind
{
	GLOC_TEXT,
	GLOC_UUID,
	GLOC_TSTZ
} GLocKind;

typedef struct GLoc
{
	GLocKind	kind;
	const char *expr;
	bool		needs_user;		/* reads mu (scim.users of the member) */
} GLoc;

/* A uuid in any case and with or without hyphens, as canonical text, or NULL. */
static char *
uuid_text(const char *s, size_t len)
{
	char		hex[33];
	int			n = 0;

	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];

		if (c == '-' && (n == 8 || n == 12 || n == 16 || n == 20))
			continue;
		if (n >= 32 || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return NULL;
		hex[n++] = (c >= 'A' && c <= 'F') ? c - 'A' + 'a' : c;
	}
	if (n != 32)
		return NULL;
	hex[32] = '\0';
	return psprintf("%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* A timestamptz literal (UTC, microseconds) for an instant. */
static void
append_instant(StringInfo buf, const ScimDateTime *dt)
{
	long long	days = dt->seconds >= 0 ? dt->seconds / 86400 : -((-dt->seconds + 86399) / 86400);
	long long	secs = dt->seconds - days * 86400;
	int			y,
				m,
				d;

	j2date((int) (days + UNIX_EPOCH_JDATE), &y, &m, &d);
	appendStringInfo(buf, "'%04d-%02d-%02d %02d:%02d:%02d.%06d+00'::" SCIM_SQL_TIMESTAMPTZ,
					 y, m, d, (int) (secs / 3600), (int) (secs / 60 % 60), (int) (secs % 60),
					 dt->nanos / 1000);
}

static void
emit_present(StringInfo buf, const GLoc *loc)
{
	if (loc->kind == GLOC_TEXT)
		appendStringInfo(buf, "(%s IS NOT NULL AND %s " SCIM_SQL_OP("<>") " '')", loc->expr, loc->expr);
	else
		appendStringInfo(buf, "(%s IS NOT NULL)", loc->expr);
}

/* pr, eq/ne null, or a comparison of a location with the resolved value. */
static void
emit_on_loc(StringInfo buf, const GLoc *loc, const ScimFilterTarget *t, ScimFilterOp op,
			const char *name, int position)
{
	if (op == SF_PR || (t->kind == SFV_NULL && op == SF_NE))
	{
		emit_present(buf, loc);
		return;
	}
	if (t->kind == SFV_NULL)
	{
		appendStringInfoString(buf, "(NOT ");
		emit_present(buf, loc);
		appendStringInfoChar(buf, ')');
		return;
	}
	switch (t->kind)
	{
		case SFV_DATETIME:
			{
				ScimFilterOp eff = op;
				ScimDateTime dt = t->datetime;

				if (loc->kind != GLOC_TSTZ)
					refuse("invalidFilter", "comparing \"%s\" with a dateTime is not supported at position %d",
						   name, position);
				/* the columns hold microseconds; a finer value shifts the bound */
				if (dt.nanos % 1000 != 0)
				{
					if (op == SF_EQ)
					{
						appendStringInfoString(buf, "false");
						return;
					}
					if (op == SF_NE)
					{
						emit_present(buf, loc);
						return;
					}
					if (op == SF_GE)
						eff = SF_GT;
					else if (op == SF_LT)
						eff = SF_LE;
				}
				dt.nanos -= dt.nanos % 1000;
				appendStringInfo(buf, "(%s %s ", loc->expr, scim_sql_operator(eff));
				append_instant(buf, &dt);
				appendStringInfoChar(buf, ')');
				return;
			}
		case SFV_STRING:
			break;
		case SFV_BOOL:
			refuse("invalidFilter", "comparing \"%s\" with a boolean is not supported at position %d",
				   name, position);
		case SFV_NUMBER:
			refuse("invalidFilter", "comparing \"%s\" with a number is not supported at position %d",
				   name, position);
		default:
			refuse("invalidFilter", "unsupported comparison on \"%s\" at position %d", name, position);
	}

	if (loc->kind == GLOC_TSTZ)
		refuse("invalidFilter", "comparing the dateTime attribute \"%s\" with a string is not supported at position %d",
			   name, position);

	if (loc->kind == GLOC_UUID && (op == SF_EQ || op == SF_NE))
	{
		char	   *u = uuid_text(t->str, t->len);

		if (u == NULL)
			appendStringInfoString(buf, op == SF_EQ ? "false" : "true");
		else
			appendStringInfo(buf, "(%s %s '%s'::" SCIM_SQL_UUID ")", loc->expr, scim_sql_operator(op), u);
		return;
	}

	{
		const char *lhs = loc->kind == GLOC_UUID ? psprintf("%s::" SCIM_SQL_TEXT, loc->expr) : loc->expr;
		bool		ci = !t->case_exact;

		if (op == SF_CO || op == SF_SW || op == SF_EW)
		{
			/* LIKE is the operator ~~, whose escape character is \ */
			appendStringInfo(buf, ci ? "(" SCIM_SQL_LOWER "(%s) " SCIM_SQL_OP("~~") " " SCIM_SQL_LOWER "(" :
							 "(%s " SCIM_SQL_OP("~~") " (", lhs);
			scim_sql_append_like_pattern(buf, op, t->str, t->len);
			appendStringInfoString(buf, "))");
		}
		else if (op == SF_EQ || op == SF_NE)
		{
			appendStringInfo(buf, ci ? "(" SCIM_SQL_LOWER "(%s) %s " SCIM_SQL_LOWER "(" : "(%s %s (",
							 lhs, scim_sql_operator(op));
			scim_sql_append_literal(buf, t->str, t->len);
			appendStringInfoString(buf, "))");
		}
		else
		{
			/* ordering: code point order, as the matcher */
			appendStringInfo(buf, ci ? "(" SCIM_SQL_LOWER "(%s) " SCIM_SQL_COLLATE_C " %s " SCIM_SQL_LOWER "(" :
							 "(%s " SCIM_SQL_COLLATE_C " %s (",
							 lhs, scim_sql_operator(op));
			scim_sql_append_literal(buf, t->str, t->len);
			appendStringInfoString(buf, "))");
		}
	}
}

/* Where a sub-attribute of a member lives (m: group_members, mu: users). */
static void
member_loc(GLoc *loc, const char *sub)
{
	loc->needs_user = false;
	if (pg_strcasecmp(sub, "value") == 0)
	{
		loc->kind = GLOC_UUID;
		loc->expr = "m.member_id";
	}
	else if (pg_strcasecmp(sub, "display") == 0)
	{
		loc->kind = GLOC_TEXT;
		loc->expr = "coalesce(mu.display_name, mu.user_name)";
		loc->needs_user = true;
	}
	else if (pg_strcasecmp(sub, "type") == 0)
	{
		loc->kind = GLOC_TEXT;
		loc->expr = "'User'::" SCIM_SQL_TEXT;
	}
	else
	{
		/* $ref */
		loc->kind = GLOC_TEXT;
		loc->expr = "(scim._base_url() " SCIM_SQL_OP("||") " '/Users/' "
			SCIM_SQL_OP("||") " m.member_id::" SCIM_SQL_TEXT ")";
	}
}

static void
open_members(StringInfo buf, bool needs_user)
{
	appendStringInfoString(buf, "EXISTS (SELECT 1 FROM scim.group_members m");
	if (needs_user)
		appendStringInfoString(buf, " JOIN scim.users mu ON mu.id " SCIM_SQL_OP("=") " m.member_id");
	appendStringInfoString(buf, " WHERE m.group_id " SCIM_SQL_OP("=") " g.id AND ");
}

/* Whether a value filter compares "display" (then the users join is needed). */
static bool
mentions_display(const ScimFilterNode *node)
{
	switch (node->kind)
	{
		case SF_COMPARE:
			return pg_strcasecmp(node->u.cmp.path.attr, "display") == 0 ||
				(node->u.cmp.path.sub != NULL && pg_strcasecmp(node->u.cmp.path.sub, "display") == 0);
		case SF_AND:
		case SF_OR:
			return mentions_display(node->u.bin.left) || mentions_display(node->u.bin.right);
		case SF_NOT:
			return mentions_display(node->u.not.arg);
		case SF_VALUEPATH:
			return mentions_display(node->u.vp.filter);
	}
	return false;
}

static void emit_node(StringInfo buf, const ScimFilterNode *node, const ScimAttrPath *parent);

static void
emit_compare(StringInfo buf, const ScimFilterNode *node, const ScimAttrPath *parent)
{
	const ScimAttrPath *path = &node->u.cmp.path;
	ScimFilterOp op = node->u.cmp.op;
	ScimFilterTarget t;
	ScimFilterError err;
	char		name[160];
	const char *attr;
	GLoc		loc;

	if (parent != NULL)
		snprintf(name, sizeof(name), "%s.%s", parent->attr, path->attr);
	else if (path->sub != NULL)
		snprintf(name, sizeof(name), "%s.%s", path->attr, path->sub);
	else
		snprintf(name, sizeof(name), "%s", path->attr);

	if (scim_filter_resolve("Group", parent, node, &t, &err) < 0)
		refuse("invalidFilter", "%s", err.message);
	if (!t.known)
		refuse("invalidFilter", "unknown attribute \"%s\" for Group resources at position %d",
			   name, node->position);
	if (t.never)
	{
		appendStringInfoString(buf, "false");
		return;
	}

	/* inside members[...]: a sub-attribute of the current member */
	if (parent != NULL)
	{
		member_loc(&loc, t.def->name);
		emit_on_loc(buf, &loc, &t, op, name, node->position);
		return;
	}

	attr = t.ref.attr->name;
	loc.needs_user = false;
	if (strcmp(attr, "members") == 0)
	{
		if (t.def->type == SCIM_TYPE_COMPLEX)
		{
			/* members pr / members eq null */
			bool		absent = (t.kind == SFV_NULL && op == SF_EQ);

			appendStringInfo(buf, "(%sEXISTS (SELECT 1 FROM scim.group_members m WHERE m.group_id " SCIM_SQL_OP("=") " g.id))",
							 absent ? "NOT " : "");
			return;
		}
		member_loc(&loc, t.def->name);
		if (op == SF_PR || t.kind == SFV_NULL)
		{
			/* every stored member has a value, a type and a $ref */
			bool		absent = (t.kind == SFV_NULL && op == SF_EQ);

			appendStringInfoString(buf, absent ? "(NOT " : "(");
			open_members(buf, loc.needs_user);
			emit_present(buf, &loc);
			appendStringInfoString(buf, "))");
			return;
		}
		open_members(buf, loc.needs_user);
		emit_on_loc(buf, &loc, &t, op, name, node->position);
		appendStringInfoChar(buf, ')');
		return;
	}

	loc.kind = GLOC_TEXT;
	if (strcmp(attr, "id") == 0)
	{
		loc.kind = GLOC_UUID;
		loc.expr = "g.id";
	}
	else if (strcmp(attr, "externalId") == 0)
		loc.expr = "g.external_id";
	else if (strcmp(attr, "displayName") == 0)
		loc.expr = "g.display_name";
	else if (strcmp(attr, "schemas") == 0)
		loc.expr = "'" SCIM_URN_CORE_GROUP "'::" SCIM_SQL_TEXT;
	else if (strcmp(attr, "meta") == 0)
	{
		const char *sub = t.def->name;

		if (t.def->type == SCIM_TYPE_COMPLEX)
		{
			/* meta pr: every group has one */
			appendStringInfoString(buf, (t.kind == SFV_NULL && op == SF_EQ) ? "false" : "true");
			return;
		}
		if (strcmp(sub, "created") == 0)
		{
			loc.kind = GLOC_TSTZ;
			loc.expr = "g.created_at";
		}
		else if (strcmp(sub, "lastModified") == 0)
		{
			loc.kind = GLOC_TSTZ;
			loc.expr = "g.updated_at";
		}
		else if (strcmp(sub, "version") == 0)
			loc.expr = "('W/\"' " SCIM_SQL_OP("||") " g.version::" SCIM_SQL_TEXT " "
				SCIM_SQL_OP("||") " '\"')";
		else if (strcmp(sub, "location") == 0)
			loc.expr = "(scim._base_url() " SCIM_SQL_OP("||") " '/Groups/' "
				SCIM_SQL_OP("||") " g.id::" SCIM_SQL_TEXT ")";
		else if (strcmp(sub, "resourceType") == 0)
			loc.expr = "'Group'::" SCIM_SQL_TEXT;
		else
			refuse("invalidFilter", "filtering on \"%s\" is not supported (position %d)", name, node->position);
	}
	else
		refuse("invalidFilter", "filtering on \"%s\" is not supported (position %d)", name, node->position);
	emit_on_loc(buf, &loc, &t, op, name, node->position);
}

static void
emit_node(StringInfo buf, const ScimFilterNode *node, const ScimAttrPath *parent)
{
	check_stack_depth();
	switch (node->kind)
	{
		case SF_COMPARE:
			emit_compare(buf, node, parent);
			break;
		case SF_AND:
		case SF_OR:
			appendStringInfoChar(buf, '(');
			emit_node(buf, node->u.bin.left, parent);
			appendStringInfoString(buf, node->kind == SF_AND ? " AND " : " OR ");
			emit_node(buf, node->u.bin.right, parent);
			appendStringInfoChar(buf, ')');
			break;
		case SF_NOT:
			appendStringInfoString(buf, "(NOT coalesce(");
			emit_node(buf, node->u.not.arg, parent);
			appendStringInfoString(buf, ", false))");
			break;
		case SF_VALUEPATH:
			{
				ScimAttrRef ref;

				if (!scim_registry_lookup("Group", node->u.vp.path.schema, node->u.vp.path.attr, NULL, &ref) ||
					strcmp(ref.attr->name, "members") != 0)
					refuse("invalidFilter", "\"%s\" takes no value filter on Group resources (position %d)",
						   node->u.vp.path.attr, node->position);
				appendStringInfoChar(buf, '(');
				open_members(buf, mentions_display(node->u.vp.filter));
				appendStringInfoChar(buf, '(');
				emit_node(buf, node->u.vp.filter, &node->u.vp.path);
				appendStringInfoString(buf, ")))");
			}
			break;
	}
}

/* The SQL predicate over "scim.groups g" for a SCIM filter (UTF-8 text). */
char *
scim_group_filter_predicate(const char *filter, size_t len)
{
	ScimArena	arena;
	ScimFilterLimits limits;
	ScimFilterError err;
	ScimFilterNode *node;
	StringInfoData buf;

	scim_arena_init(&arena, &scim_palloc_allocator);
	scim_filter_limits_from_gucs(&limits);
	node = scim_filter_parse(&arena, filter, len, &limits, &err);
	if (node == NULL)
		refuse("invalidFilter", "%s", err.message);
	if (scim_filter_validate(node, "Group", &err) < 0)
		refuse("invalidFilter", "%s", err.message);
	initStringInfo(&buf);
	emit_node(&buf, node, NULL);
	return buf.data;
}

Datum
scim_group_filter_sql(PG_FUNCTION_ARGS)
{
	size_t		len;
	const char *filter = text_to_utf8(PG_GETARG_TEXT_PP(0), &len);

	PG_RETURN_TEXT_P(cstring_to_text(scim_group_filter_predicate(filter, len)));
}

/* ---------------------------------------------------------------------
 * sortBy over scim.groups g
 * ---------------------------------------------------------------------
 */
Datum
scim_group_sort_expression(PG_FUNCTION_ARGS)
{
	size_t		len;
	const char *path = text_to_utf8(PG_GETARG_TEXT_PP(0), &len);
	ScimArena	arena;
	ScimFilterLimits limits;
	ScimFilterError err;
	ScimPatchPath pp;
	ScimAttrRef ref;
	const char *attr;
	const char *sub;
	const char *expr = NULL;

	scim_arena_init(&arena, &scim_palloc_allocator);
	scim_filter_limits_from_gucs(&limits);
	if (!scim_patch_path_parse(&arena, path, len, &limits, &pp, &err))
		refuse("invalidPath", "%s", err.message);
	if (pp.filter != NULL)
		refuse("invalidPath", "sortBy takes an attribute path, not a value filter");
	if (!scim_registry_lookup("Group", pp.path.schema, pp.path.attr, pp.path.sub, &ref))
		refuse("invalidPath", "unknown attribute \"%s%s%s\" for sortBy on Group resources",
			   pp.path.attr, pp.path.sub ? "." : "", pp.path.sub ? pp.path.sub : "");
	attr = ref.attr->name;
	sub = ref.sub ? ref.sub->name : NULL;
	if (strcmp(attr, "id") == 0)
		expr = "g.id";
	else if (strcmp(attr, "externalId") == 0)
		expr = "g.external_id";
	else if (strcmp(attr, "displayName") == 0)
		expr = SCIM_SQL_LOWER "(g.display_name)";
	else if (strcmp(attr, "meta") == 0 && sub != NULL)
	{
		if (strcmp(sub, "created") == 0)
			expr = "g.created_at";
		else if (strcmp(sub, "lastModified") == 0)
			expr = "g.updated_at";
		else if (strcmp(sub, "version") == 0)
			expr = "g.version";
		else if (strcmp(sub, "location") == 0)
			expr = "g.id::" SCIM_SQL_TEXT;
		else if (strcmp(sub, "resourceType") == 0)
			expr = "'Group'::" SCIM_SQL_TEXT;
	}
	if (expr == NULL)
		refuse("invalidPath", "sorting Group resources by \"%s%s%s\" is not supported",
			   attr, sub ? "." : "", sub ? sub : "");
	PG_RETURN_TEXT_P(cstring_to_text(expr));
}

/* ---------------------------------------------------------------------
 * Cursor primitives
 * ---------------------------------------------------------------------
 */
static void
hmac_sha256(bytea *key, bytea *msg, uint8 *out)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (pg_hmac_init(ctx, (uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)) < 0 ||
		pg_hmac_update(ctx, (uint8 *) VARDATA_ANY(msg), VARSIZE_ANY_EXHDR(msg)) < 0 ||
		pg_hmac_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
	{
		const char *why = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute HMAC-SHA-256: %s", why)));
	}
	pg_hmac_free(ctx);
}

Datum
scim_hmac_sha256(PG_FUNCTION_ARGS)
{
	bytea	   *result = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);

	hmac_sha256(PG_GETARG_BYTEA_PP(0), PG_GETARG_BYTEA_PP(1), (uint8 *) VARDATA(result));
	SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	PG_RETURN_BYTEA_P(result);
}

/* Whether mac is the HMAC of the message, compared in constant time. */
Datum
scim_hmac_sha256_verify(PG_FUNCTION_ARGS)
{
	bytea	   *mac = PG_GETARG_BYTEA_PP(2);
	uint8		expected[PG_SHA256_DIGEST_LENGTH];
	const uint8 *given = (const uint8 *) VARDATA_ANY(mac);
	uint8		diff = 0;

	hmac_sha256(PG_GETARG_BYTEA_PP(0), PG_GETARG_BYTEA_PP(1), expected);
	if (VARSIZE_ANY_EXHDR(mac) != PG_SHA256_DIGEST_LENGTH)
		PG_RETURN_BOOL(false);
	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		diff |= expected[i] ^ given[i];
	PG_RETURN_BOOL(diff == 0);
}

Datum
scim_random_bytes(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	bytea	   *result;

	if (n < 1 || n > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of random bytes must be between 1 and 1024")));
	result = palloc(VARHDRSZ + n);
	if (!pg_strong_random(VARDATA(result), n))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	SET_VARSIZE(result, VARHDRSZ + n);
	PG_RETURN_BYTEA_P(result);
}
