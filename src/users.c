/*-------------------------------------------------------------------------
 *
 * users.c
 *		Request plumbing for the SCIM endpoint that is worth doing in C: the
 *		endpoint's GUCs and the URL query-string decoder.
 *
 * GUCs (all PGC_SUSET, so an IdP's session cannot change them):
 *	scim_provision.max_results	the largest "count" a list or search answers
 *								with (ServiceProviderConfig filter.maxResults)
 *	scim_provision.base_url		absolute SCIM base URL for meta.location and
 *								the Location header ("" = relative /Users/{id})
 *	scim_provision.fast_path	whether handle.c answers userName/externalId
 *								lookups and GET /Users/{id} itself (on) or
 *								hands every request to the PL/pgSQL router
 *								(off; for comparison)
 *
 * scim._query_params(query text) RETURNS jsonb decodes a raw query string
 * (percent-encoding and '+' as space, as HTML forms and some IdPs send it)
 * into an object of parameter name -> value.  The SCIM parameter names
 * (filter, startIndex, count, sortBy, sortOrder, attributes,
 * excludedAttributes) are matched case-insensitively and returned in their
 * canonical case; other parameters (Entra ID's aadOptscim062020, ...) are
 * kept as sent and ignored by the router.  A repeated parameter keeps its
 * last value.  A value that is not valid UTF-8 once decoded is SCIM 400
 * invalidSyntax.
 *
 * scim._request_json(body text) RETURNS jsonb parses a request body, and
 * reports a missing or malformed one as SCIM 400 invalidSyntax (a plain
 * ::jsonb cast would raise 22P02, which maps to invalidValue) without a
 * subtransaction: the text is checked with the non-throwing JSON parser
 * first.
 *
 * src/users.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "mapping.h"
#include "scim_provision.h"

PG_FUNCTION_INFO_V1(scim_query_params);
PG_FUNCTION_INFO_V1(scim_request_json);

int			scim_max_results = 1000;
char	   *scim_base_url = NULL;
bool		scim_fast_path = true;

void
scim_api_init_gucs(void)
{
	DefineCustomIntVariable("scim_provision.max_results",
							"Largest number of resources one SCIM list or search response returns.",
							"A larger \"count\" is lowered to this; advertised as filter.maxResults in /ServiceProviderConfig.",
							&scim_max_results,
							1000,
							1,
							100000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("scim_provision.fast_path",
							 "Answers the lookups IdPs send before they write in C.",
							 "GET /Users?filter=userName eq \"...\" (or externalId eq) and GET /Users/{id} are answered by handle.c "
							 "instead of the PL/pgSQL router, with the same response and System Log row; "
							 "off sends every request to the router.",
							 &scim_fast_path,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("scim_provision.base_url",
							   "Absolute SCIM base URL used in meta.location and the Location header.",
							   "Empty (the default) gives locations relative to the SCIM base, such as /Users/{id}.",
							   &scim_base_url,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode s[0..len) ('+' is a space); a malformed escape is kept as
 * is.  NULL when the result is not valid UTF-8 (or holds a NUL).
 */
static char *
url_decode(const char *s, int len, int *outlen)
{
	char	   *out = palloc(len + 1);
	int			o = 0;

	for (int i = 0; i < len; i++)
	{
		if (s[i] == '+')
			out[o++] = ' ';
		else if (s[i] == '%' && i + 2 < len &&
				 hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0)
		{
			out[o++] = (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		else
			out[o++] = s[i];
	}
	out[o] = '\0';
	if (memchr(out, '\0', o) != NULL || !pg_verifymbstr(out, o, true))
		return NULL;
	*outlen = o;
	return out;
}

const char *const scim_query_param_names[] = {
	"filter", "startIndex", "count", "sortBy", "sortOrder", "attributes", "excludedAttributes", "cursor", NULL
};

/*
 * Decode a raw query string into *params (palloc'd, in order of
 * appearance; a repeated name appears twice, the last one counts).  SCIM
 * parameter names are matched case-insensitively and given their canonical
 * spelling (a pointer into scim_query_param_names); other names are kept as sent.
 * Returns false, with nothing decoded, when a name or value is not valid
 * UTF-8 once decoded.
 */
bool
scim_query_decode(const char *q, int len, ScimQueryParam **params, int *nparams)
{
	int			i = 0;
	int			n = 0;
	int			cap = 8;
	ScimQueryParam *out = palloc(cap * sizeof(ScimQueryParam));

	if (len > 0 && q[0] == '?')
		i = 1;
	while (i < len)
	{
		int			start = i;
		int			eq = -1;
		int			klen;
		int			vlen = 0;
		char	   *key;
		char	   *val = "";

		while (i < len && q[i] != '&' && q[i] != ';')
		{
			if (q[i] == '=' && eq < 0)
				eq = i;
			i++;
		}
		if (i > start)
		{
			key = url_decode(q + start, (eq >= 0 ? eq : i) - start, &klen);
			if (key == NULL)
				return false;
			if (eq >= 0)
			{
				val = url_decode(q + eq + 1, i - eq - 1, &vlen);
				if (val == NULL)
					return false;
			}
			for (int p = 0; scim_query_param_names[p]; p++)
				if ((int) strlen(scim_query_param_names[p]) == klen && pg_strncasecmp(key, scim_query_param_names[p], klen) == 0)
				{
					key = (char *) scim_query_param_names[p];
					break;
				}
			if (klen > 0)
			{
				if (n == cap)
				{
					cap *= 2;
					out = repalloc(out, cap * sizeof(ScimQueryParam));
				}
				out[n].name = key;
				out[n].name_len = klen;
				out[n].value = val;
				out[n].value_len = vlen;
				n++;
			}
		}
		i++;					/* skip the separator */
	}
	*params = out;
	*nparams = n;
	return true;
}

Datum
scim_query_params(PG_FUNCTION_ARGS)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;
	ScimQueryParam *params = NULL;
	int			nparams = 0;

	if (!PG_ARGISNULL(0))
	{
		text	   *t = PG_GETARG_TEXT_PP(0);

		if (!scim_query_decode(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &params, &nparams))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalidSyntax: the query string is not valid UTF-8 once decoded")));
	}
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < nparams; i++)
	{
		JsonbValue	k;
		JsonbValue	v;

		k.type = jbvString;
		k.val.string.val = (char *) params[i].name;
		k.val.string.len = params[i].name_len;
		v.type = jbvString;
		v.val.string.val = (char *) params[i].value;
		v.val.string.len = params[i].value_len;
		pushJsonbValue(&st, WJB_KEY, &k);
		pushJsonbValue(&st, WJB_VALUE, &v);
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}

Datum
scim_request_json(PG_FUNCTION_ARGS)
{
	text	   *t;
	char	   *s;
	int			len;
	int			i;
	JsonLexContext *lex;
	JsonParseErrorType rc;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidSyntax: the request has no body")));
	t = PG_GETARG_TEXT_PP(0);
	s = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	for (i = 0; i < len; i++)
		if (!(s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
			break;
	if (i == len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidSyntax: the request has no body")));

	/* size and nesting first: nothing below is spent on a refused body */
	scim_check_request_body(s, len);

	lex = makeJsonLexContextCstringLen(s, len, GetDatabaseEncoding(), true);
	rc = pg_parse_json(lex, &nullSemAction);
	if (rc != JSON_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidSyntax: the request body is not valid JSON"),
				 errdetail("%s", json_errdetail(rc, lex))));
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(text_to_cstring(t))));
}
