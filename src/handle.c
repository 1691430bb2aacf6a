/*-------------------------------------------------------------------------
 *
 * handle.c
 *		scim.handle(method, path, query, headers, body): the entry point of
 *		the SCIM endpoint, and its fast path for the reads every IdP sends
 *		before it creates or updates a user.
 *
 * Every request goes to the PL/pgSQL router scim._handle (55_handle.sql),
 * called straight through fmgr, except
 *
 *		GET /Users?filter=userName eq "..."		(or externalId eq "..."),
 *			with at most startIndex and count besides;
 *		GET /Users/{id}, with no SCIM parameter and no If-None-Match,
 *
 * which are answered here: the token, the userName lookup and the user by
 * id by one probe of their unique indexes (index_probe.c), the externalId
 * lookup by kept plans of the SQL the router's own fast path runs, the
 * resources through the one mapping (mapping.c), and the System Log row by
 * a kept plan.  The status, headers, body and log row are exactly the
 * router's: sql/55_handle_fast.sql sends the same requests both ways and
 * compares them.  A request the fast path does not recognise down to the
 * last detail, a token it cannot accept, a user it does not find, or any
 * error inside it goes to the router, which answers it as it answers every
 * other request.  So the fast path never refuses anything itself, and has
 * no error responses of its own to keep in step with the router's.
 *
 * GUC scim_provision.fast_path (users.c) turns it off.
 *
 * src/handle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/resowner.h"
#include "utils/typcache.h"

#include "filter.h"
#include "index_probe.h"
#include "mapping.h"
#include "scim_provision.h"

PG_FUNCTION_INFO_V1(scim_handle);

#define URN_LIST_RESPONSE "urn:ietf:params:scim:api:messages:2.0:ListResponse"

typedef enum FastKind
{
	FAST_BY_USER_NAME,			/* GET /Users?filter=userName eq "..." */
	FAST_BY_EXTERNAL_ID,		/* GET /Users?filter=externalId eq "..." */
	FAST_BY_ID					/* GET /Users/{id} */
} FastKind;

/* What the fast path found in a request it can answer. */
typedef struct FastLookup
{
	FastKind	kind;
	char	   *value;			/* the compared string (lists) */
	char	   *filter;			/* the filter parameter as decoded (lists) */
	int64		start;			/* startIndex, >= 1 (lists) */
	int64		count;			/* count, 1 .. max_results (lists) */
	Datum		id;				/* the user's id (FAST_BY_ID) */
	text	   *workspace;		/* from the token */
	/* what the answer found, for the log row and the headers (FAST_BY_ID) */
	text	   *user_name;
	int64		version;
} FastLookup;

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* s[0..len) equals word, ASCII case-insensitively. */
static bool
equals_ci(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && pg_strncasecmp(s, word, len) == 0;
}

/* The method is GET, as upper(btrim(method)) reads it. */
static bool
method_is_get(text *method)
{
	const char *s = VARDATA_ANY(method);
	size_t		len = VARSIZE_ANY_EXHDR(method);

	while (len > 0 && s[0] == ' ')
		s++, len--;
	while (len > 0 && s[len - 1] == ' ')
		len--;
	return equals_ci(s, len, "GET");
}

/*
 * The path is /Users or /Users/{segment} (non-empty segments, the first in
 * any case, slashes around them tolerated, as the router splits it): the
 * number of segments (1 or 2), else 0.  A query string after '?' is
 * returned in *query_in_path, the second segment in *seg2.
 */
static int
users_path(text *path, const char **query_in_path, int *query_len, const char **seg2, int *seg2_len)
{
	const char *s = VARDATA_ANY(path);
	int			len = VARSIZE_ANY_EXHDR(path);
	const char *q = memchr(s, '?', len);
	int			plen = q ? q - s : len;
	int			segments = 0;
	bool		users = false;

	*query_in_path = NULL;
	if (q)
	{
		*query_in_path = q + 1;
		*query_len = len - plen - 1;
	}
	for (int i = 0; i < plen;)
	{
		int			start;

		while (i < plen && s[i] == '/')
			i++;
		if (i == plen)
			break;
		start = i;
		while (i < plen && s[i] != '/')
			i++;
		segments++;
		if (segments == 1)
			users = equals_ci(s + start, i - start, "users");
		else if (segments == 2)
		{
			*seg2 = s + start;
			*seg2_len = i - start;
		}
	}
	return users && segments <= 2 ? segments : 0;
}

/* 8-4-4-4-12 hexadecimal digits, each hyphen optional, as the router's pattern reads an id. */
static bool
is_user_id(const char *s, int len)
{
	static const int groups[5] = {8, 4, 4, 4, 12};
	int			i = 0;

	for (int g = 0; g < 5; g++)
	{
		if (g > 0 && i < len && s[i] == '-')
			i++;
		for (int k = 0; k < groups[g]; k++, i++)
			if (i >= len || !isxdigit((unsigned char) s[i]))
				return false;
	}
	return i == len;
}

/*
 * An integer parameter as scim._int_param reads it: blank = dflt, else an
 * optionally signed run of digits between spaces.  False for anything else
 * (the router answers it) and for values too long to bother with.
 */
static bool
int_param(const char *s, int len, int64 dflt, int64 *out)
{
	int64		v = 0;
	bool		neg = false;
	int			digits = 0;

	while (len > 0 && s[0] == ' ')
		s++, len--;
	while (len > 0 && s[len - 1] == ' ')
		len--;
	if (len == 0)
	{
		*out = dflt;
		return true;
	}
	if (s[0] == '+' || s[0] == '-')
	{
		neg = s[0] == '-';
		s++, len--;
	}
	for (int i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9' || ++digits > 15)
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (digits == 0)
		return false;
	*out = neg ? -v : v;
	return true;
}

/*
 * The one Authorization header value, when it is "Bearer <something>";
 * *conditional tells whether an If-None-Match header came too.
 */
static bool
bearer_header(Jsonb *headers, const char **value, int *value_len, bool *conditional)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	bool		found = false;
	bool		is_auth = false;

	*conditional = false;
	if (headers == NULL || !JB_ROOT_IS_OBJECT(headers))
		return false;
	it = JsonbIteratorInit(&headers->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r == WJB_KEY)
		{
			is_auth = equals_ci(v.val.string.val, v.val.string.len, "authorization");
			if (equals_ci(v.val.string.val, v.val.string.len, "if-none-match"))
				*conditional = true;
		}
		else if (r == WJB_VALUE && is_auth)
		{
			/* twice in different case, or not a string: the router decides */
			if (found || v.type != jbvString)
				return false;
			found = true;
			*value = v.val.string.val;
			*value_len = v.val.string.len;
		}
	}
	if (!found)
		return false;
	/* two credentials joined by a proxy: the router refuses them (401) */
	if (memchr(*value, ',', *value_len) != NULL)
		return false;

	/* ^\s*bearer\s+\S, as the router checks it */
	{
		const char *s = *value;
		int			len = *value_len;
		int			i = 0;

		while (i < len && is_space(s[i]))
			i++;
		if (len - i < 6 || pg_strncasecmp(s + i, "bearer", 6) != 0)
			return false;
		i += 6;
		if (i >= len || !is_space(s[i]))
			return false;
		while (i < len && is_space(s[i]))
			i++;
		return i < len;
	}
}

/*
 * Whether the request is one the fast path answers; fills *f but for the
 * workspace.  Pure checks: nothing here raises an error.
 */
static bool
recognise(FunctionCallInfo fcinfo, FastLookup *f)
{
	const char *query;
	int			query_len = 0;
	ScimQueryParam *params;
	int			nparams;
	const char *filter = NULL;
	int			filter_len = 0;
	const char *start = "";
	int			start_len = 0;
	const char *count = "";
	int			count_len = 0;
	ScimArena	arena;
	ScimFilterLimits limits;
	ScimFilterError err;
	ScimFilterNode *node;
	const char *attr;
	const char *seg2 = NULL;
	int			seg2_len = 0;
	int			segments;
	bool		ok = false;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || !method_is_get(PG_GETARG_TEXT_PP(0)))
		return false;
	segments = users_path(PG_GETARG_TEXT_PP(1), &query, &query_len, &seg2, &seg2_len);
	if (segments == 0)
		return false;
	/* the query argument wins over one left in the path */
	if (!PG_ARGISNULL(2))
	{
		text	   *q = PG_GETARG_TEXT_PP(2);

		query = VARDATA_ANY(q);
		query_len = VARSIZE_ANY_EXHDR(q);
	}
	if (segments == 2)
	{
		/* GET /Users/{id}: no SCIM parameter (attributes, ...) at all */
		if (!is_user_id(seg2, seg2_len))
			return false;
		if (query != NULL)
		{
			if (!scim_query_decode(query, query_len, &params, &nparams))
				return false;
			for (int i = 0; i < nparams; i++)
				for (int p = 0; scim_query_param_names[p]; p++)
					if (params[i].name == scim_query_param_names[p])
						return false;
		}
		f->kind = FAST_BY_ID;
		f->id = DirectFunctionCall1(uuid_in, CStringGetDatum(pnstrdup(seg2, seg2_len)));
		return true;
	}
	if (query == NULL || !scim_query_decode(query, query_len, &params, &nparams))
		return false;

	/* the last of a repeated parameter counts */
	for (int i = 0; i < nparams; i++)
	{
		const char *name = params[i].name;

		if (strcmp(name, "filter") == 0)
			filter = params[i].value, filter_len = params[i].value_len;
		else if (strcmp(name, "startIndex") == 0)
			start = params[i].value, start_len = params[i].value_len;
		else if (strcmp(name, "count") == 0)
			count = params[i].value, count_len = params[i].value_len;
		else if (strcmp(name, "sortBy") == 0 || strcmp(name, "sortOrder") == 0 ||
				 strcmp(name, "attributes") == 0 || strcmp(name, "excludedAttributes") == 0 ||
				 strcmp(name, "cursor") == 0)
			return false;
		/* anything else (aadOptscim062020, ...) is ignored, as by the router */
	}
	if (filter == NULL ||
		!int_param(start, start_len, 1, &f->start) ||
		!int_param(count, count_len, scim_max_results, &f->count))
		return false;
	f->start = Max(f->start, 1);
	f->count = Min(Max(f->count, 0), scim_max_results);
	if (f->count == 0)
		return false;

	/* attrPath eq "string", attrPath userName or externalId of the core schema */
	scim_arena_init(&arena, &scim_palloc_allocator);
	scim_filter_limits_from_gucs(&limits);
	node = scim_filter_parse(&arena, filter, filter_len, &limits, &err);
	if (node != NULL && node->kind == SF_COMPARE && node->u.cmp.op == SF_EQ &&
		node->u.cmp.value != NULL && node->u.cmp.value->type == SJ_STRING &&
		node->u.cmp.path.sub == NULL &&
		(node->u.cmp.path.schema == NULL ||
		 pg_strcasecmp(node->u.cmp.path.schema, SCIM_MAP_URN_CORE) == 0))
	{
		attr = node->u.cmp.path.attr;
		if (pg_strcasecmp(attr, "userName") == 0 || pg_strcasecmp(attr, "externalId") == 0)
		{
			f->kind = pg_strcasecmp(attr, "userName") == 0 ? FAST_BY_USER_NAME : FAST_BY_EXTERNAL_ID;
			f->value = pnstrdup(node->u.cmp.value->u.str.ptr, node->u.cmp.value->u.str.len);
			f->filter = pnstrdup(filter, filter_len);
			ok = true;
		}
	}
	scim_arena_reset(&arena);
	return ok;
}

static SPIPlanPtr
keep_plan(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

	if (p == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	SPI_keepplan(p);
	return p;
}

static Jsonb *
jsonb_of(JsonbValue *v)
{
	return JsonbValueToJsonb(v);
}

static void
push_key(JsonbParseState **st, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &k);
}

static void
push_int(JsonbParseState **st, const char *key, int64 n)
{
	JsonbValue	v;

	push_key(st, key);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(n);
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* A page of rendered users and the total of the lookup. */
typedef struct FastPage
{
	Jsonb	  **resources;
	int			page;
	int64		total;
} FastPage;

/*
 * userName eq: at most one user (users_workspace_user_name_idx is unique),
 * found by one probe of that index; on the first page or on none.
 */
static void
page_by_user_name(FastLookup *f, ScimRenderCache **render_cache, MemoryContext result_cxt,
				  FastPage *out)
{
	ScimProbe	probe;
	Datum		keys[2];
	Oid			eq[2] = {F_TEXTEQ, F_TEXTEQ};

	/* the index is on (workspace, lower(user_name)) */
	keys[0] = PointerGetDatum(f->workspace);
	keys[1] = DirectFunctionCall1Coll(lower, DEFAULT_COLLATION_OID, CStringGetTextDatum(f->value));
	out->resources = MemoryContextAlloc(result_cxt, sizeof(Jsonb *));
	out->page = 0;
	out->total = 0;
	scim_probe_begin(&probe, "users", "users_workspace_user_name_idx", 2, keys, eq);
	if (scim_probe_next(&probe))
	{
		out->total = 1;
		if (f->start == 1)
		{
			bool		should_free;
			HeapTuple	tup = ExecFetchSlotHeapTuple(probe.slot, false, &should_free);

			out->resources[0] = scim_render_user_resource(tup, RelationGetDescr(probe.heap), NULL, NULL,
														  render_cache, result_cxt);
			out->page = 1;
			if (should_free)
				heap_freetuple(tup);
		}
	}
	scim_probe_end(&probe);
}

/* externalId eq (not unique): as scim._list_users runs it, with kept plans. */
static void
page_by_external_id(FastLookup *f, ScimRenderCache **render_cache, MemoryContext result_cxt,
					FastPage *out)
{
	static SPIPlanPtr page_plan = NULL;
	static SPIPlanPtr count_plan = NULL;
	Datum		values[4];
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (page_plan == NULL)
	{
		Oid			types[4] = {TEXTOID, TEXTOID, INT8OID, INT8OID};

		page_plan = keep_plan("SELECT u FROM scim.users u"
							  " WHERE u.workspace OPERATOR(pg_catalog.=) $1"
							  " AND u.external_id OPERATOR(pg_catalog.=) $2"
							  " ORDER BY u.created_at, u.id LIMIT $3 OFFSET $4", 4, types);
		count_plan = keep_plan("SELECT pg_catalog.count(*) FROM scim.users u"
							   " WHERE u.workspace OPERATOR(pg_catalog.=) $1"
							   " AND u.external_id OPERATOR(pg_catalog.=) $2", 2, types);
	}
	values[0] = PointerGetDatum(f->workspace);
	values[1] = CStringGetTextDatum(f->value);
	values[2] = Int64GetDatum(f->count);
	values[3] = Int64GetDatum(f->start - 1);
	ret = SPI_execute_plan(page_plan, values, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	out->page = (int) SPI_processed;

	/* rendered in the caller's context: the tuples go with SPI_finish */
	out->resources = MemoryContextAlloc(result_cxt, sizeof(Jsonb *) * Max(out->page, 1));
	for (int i = 0; i < out->page; i++)
	{
		bool		isnull;
		HeapTupleHeader th = DatumGetHeapTupleHeader(SPI_getbinval(SPI_tuptable->vals[i],
																	 SPI_tuptable->tupdesc, 1, &isnull));
		TupleDesc	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(th),
												  HeapTupleHeaderGetTypMod(th));
		HeapTupleData tup;
		MemoryContext old;

		tup.t_len = HeapTupleHeaderGetDatumLength(th);
		ItemPointerSetInvalid(&tup.t_self);
		tup.t_tableOid = InvalidOid;
		tup.t_data = th;
		old = MemoryContextSwitchTo(result_cxt);
		out->resources[i] = scim_render_user_resource(&tup, desc, NULL, NULL, render_cache, result_cxt);
		MemoryContextSwitchTo(old);
		ReleaseTupleDesc(desc);
	}

	/* a page that is not full (or an empty first page) tells the total */
	if (out->page < f->count && (out->page > 0 || f->start == 1))
		out->total = f->start - 1 + out->page;
	else
	{
		bool		isnull;

		ret = SPI_execute_plan(count_plan, values, NULL, true, 1);
		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
		out->total = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
}

/*
 * GET /Users/{id}: the user's resource, found by one probe of users_pkey,
 * or NULL when the id is unknown or another workspace's (the router
 * answers 404).
 */
static Jsonb *
user_by_id(FastLookup *f, ScimRenderCache **render_cache, MemoryContext result_cxt)
{
	ScimProbe	probe;
	Oid			eq[1] = {F_UUID_EQ};
	Jsonb	   *result = NULL;

	scim_probe_begin(&probe, "users", "users_pkey", 1, &f->id, eq);
	if (scim_probe_next(&probe))
	{
		bool		isnull;
		Datum		ws = slot_getattr(probe.slot, scim_probe_attnum(&probe, "workspace"), &isnull);

		if (!isnull && DatumGetBool(DirectFunctionCall2Coll(texteq, DEFAULT_COLLATION_OID, ws,
															PointerGetDatum(f->workspace))))
		{
			bool		should_free;
			HeapTuple	tup = ExecFetchSlotHeapTuple(probe.slot, false, &should_free);
			MemoryContext old = MemoryContextSwitchTo(result_cxt);

			f->user_name = DatumGetTextPCopy(slot_getattr(probe.slot,
														  scim_probe_attnum(&probe, "user_name"), &isnull));
			f->version = DatumGetInt64(slot_getattr(probe.slot, scim_probe_attnum(&probe, "version"), &isnull));
			result = scim_render_user_resource(tup, RelationGetDescr(probe.heap), NULL, NULL,
											   render_cache, result_cxt);
			MemoryContextSwitchTo(old);
			if (should_free)
				heap_freetuple(tup);
		}
	}
	scim_probe_end(&probe);
	return result;
}

/*
 * The answer of a recognised request, NULL when the router must give it.
 * Runs in a subtransaction of the caller's: any error is the router's to
 * answer.
 */
static Jsonb *
answer(FastLookup *f, ScimRenderCache **render_cache, MemoryContext result_cxt, int64 *total_out,
	   int *page_out)
{
	FastPage	pg;
	JsonbParseState *st = NULL;
	JsonbValue	v;

	if (f->kind == FAST_BY_ID)
		return user_by_id(f, render_cache, result_cxt);
	if (f->kind == FAST_BY_USER_NAME)
		page_by_user_name(f, render_cache, result_cxt, &pg);
	else
		page_by_external_id(f, render_cache, result_cxt, &pg);

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	push_key(&st, "schemas");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	v.type = jbvString;
	v.val.string.val = URN_LIST_RESPONSE;
	v.val.string.len = strlen(URN_LIST_RESPONSE);
	pushJsonbValue(&st, WJB_ELEM, &v);
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	push_int(&st, "totalResults", pg.total);
	push_int(&st, "startIndex", f->start);
	push_int(&st, "itemsPerPage", pg.page);
	push_key(&st, "Resources");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < pg.page; i++)
	{
		v.type = jbvBinary;
		v.val.binary.data = &pg.resources[i]->root;
		v.val.binary.len = VARSIZE(pg.resources[i]) - VARHDRSZ;
		pushJsonbValue(&st, WJB_ELEM, &v);
	}
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	*total_out = pg.total;
	*page_out = pg.page;
	return jsonb_of(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/*
 * A request-derived System Log field bounded as scim._log_bounded bounds it
 * (12_domain_token.sql), inline: the library may run before ALTER EXTENSION
 * UPDATE has created that function.
 */
#define LOG_BOUNDED(param, max) \
	"CASE WHEN pg_catalog.length(" param ") OPERATOR(pg_catalog.<=) " max " THEN " param \
	" ELSE pg_catalog.\"left\"(" param ", " max " - 14) OPERATOR(pg_catalog.||) '...[truncated]' END"

/*
 * The System Log row of an answered request, as scim.log_attempt writes it:
 * a list's with its count and filter, a user's with its id and userName.
 */
static void
log_lookup(FastLookup *f, text *path, int page, int64 total)
{
	static SPIPlanPtr plan = NULL;
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan == NULL)
	{
		Oid			types[5] = {TEXTOID, TEXTOID, UUIDOID, TEXTOID, TEXTOID};

		plan = keep_plan("INSERT INTO scim.provisioning_log"
						 " (workspace, source, method, path, resource_id, user_name, status, scim_type, detail)"
						 " VALUES ($1, 'scim', 'GET', " LOG_BOUNDED("$2", "1000") ", $3, "
						 LOG_BOUNDED("$4", "256") ", 200, NULL, " LOG_BOUNDED("$5", "2000") ")",
						 5, types);
	}
	values[0] = PointerGetDatum(f->workspace);
	values[1] = PointerGetDatum(path);
	if (f->kind == FAST_BY_ID)
	{
		values[2] = f->id;
		values[3] = PointerGetDatum(f->user_name);
		nulls[4] = 'n';
	}
	else
	{
		nulls[2] = nulls[3] = 'n';
		values[4] = CStringGetTextDatum(psprintf("%d of " INT64_FORMAT " result(s); filter: %s",
												 page, total, f->filter));
	}
	ret = SPI_execute_plan(plan, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	SPI_finish();
}

/*
 * The fast path: true with *body filled in when it answered (log row
 * written), false when the router must answer instead (nothing written).
 */
static bool
fast_path(FunctionCallInfo fcinfo, Jsonb **body, int64 *etag_version)
{
	FastLookup	f;
	const char *auth = NULL;
	int			auth_len = 0;
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ScimRenderCache *render_cache = NULL;
	FastPage   *counts = palloc0(sizeof(FastPage));	/* written inside PG_TRY */
	volatile bool answered = false;
	Jsonb	   *volatile result = NULL;
	bool		conditional;

	if (!scim_fast_path || !recognise(fcinfo, &f) ||
		!bearer_header(PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3), &auth, &auth_len, &conditional))
		return false;
	/* If-None-Match on a user (304 or 200): the router's */
	if (f.kind == FAST_BY_ID && conditional)
		return false;

	/* the router authenticates outside its subtransaction too */
	f.workspace = scim_token_workspace(auth, auth_len);
	if (f.workspace == NULL)
		return false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		result = answer(&f, &render_cache, oldcontext, &counts->total, &counts->page);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		answered = result != NULL;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		/* what the router's exception block would not catch either */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED || edata->sqlerrcode == ERRCODE_ASSERT_FAILURE)
			ReThrowError(edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();

	if (!answered)
		return false;
	log_lookup(&f, PG_GETARG_TEXT_PP(1), counts->page, counts->total);
	*body = result;
	*etag_version = f.kind == FAST_BY_ID ? f.version : -1;
	return true;
}

/* scim._handle(method, path, query, headers, body) through fmgr. */
static void
route(FunctionCallInfo fcinfo, Datum *values, bool *nulls)
{
	Oid			argtypes[5] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID};
	Oid			router = LookupFuncName(list_make2(makeString("scim"), makeString("_handle")),
										5, argtypes, false);
	FmgrInfo	flinfo;
	LOCAL_FCINFO(call, 5);
	Datum		result;
	HeapTupleHeader th;
	TupleDesc	desc;
	HeapTupleData tup;

	fmgr_info(router, &flinfo);
	InitFunctionCallInfoData(*call, &flinfo, 5, PG_GET_COLLATION(), NULL, NULL);
	for (int i = 0; i < 5; i++)
	{
		call->args[i].value = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		call->args[i].isnull = PG_ARGISNULL(i);
	}
	result = FunctionCallInvoke(call);
	if (call->isnull)
		elog(ERROR, "scim._handle returned NULL");

	th = DatumGetHeapTupleHeader(result);
	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(th), HeapTupleHeaderGetTypMod(th));
	tup.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tup.t_self);
	tup.t_tableOid = InvalidOid;
	tup.t_data = th;
	heap_deform_tuple(&tup, desc, values, nulls);
	ReleaseTupleDesc(desc);
}

/*
 * scim.handle(method text, path text, query text, headers jsonb, body text)
 *		RETURNS TABLE(status integer, headers jsonb, body jsonb)
 */
Datum
scim_handle(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	Jsonb	   *body;
	int64		etag_version;

	InitMaterializedSRF(fcinfo, 0);
	if (fast_path(fcinfo, &body, &etag_version))
	{
		JsonbParseState *st = NULL;
		JsonbValue	k;
		JsonbValue	v;

		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		k.type = jbvString;
		k.val.string.val = "Content-Type";
		k.val.string.len = strlen("Content-Type");
		pushJsonbValue(&st, WJB_KEY, &k);
		v.type = jbvString;
		v.val.string.val = "application/scim+json";
		v.val.string.len = strlen("application/scim+json");
		pushJsonbValue(&st, WJB_VALUE, &v);
		if (etag_version >= 0)
		{
			char	   *etag = psprintf("W/\"" INT64_FORMAT "\"", etag_version);

			k.val.string.val = "ETag";
			k.val.string.len = strlen("ETag");
			pushJsonbValue(&st, WJB_KEY, &k);
			v.val.string.val = etag;
			v.val.string.len = strlen(etag);
			pushJsonbValue(&st, WJB_VALUE, &v);
		}
		values[0] = Int32GetDatum(200);
		values[1] = JsonbPGetDatum(jsonb_of(pushJsonbValue(&st, WJB_END_OBJECT, NULL)));
		values[2] = JsonbPGetDatum(body);
	}
	else
		route(fcinfo, values, nulls);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
