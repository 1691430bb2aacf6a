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

/* Percent-decode s[0..len) ('+' is a space); a malformed escape is kept as is. */
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
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidSyntax: the query string is not valid UTF-8 once decoded")));
	*outlen = o;
	return out;
}

static const char *const scim_params[] = {
	"filter", "startIndex", "count", "sortBy", "sortOrder", "attributes", "excludedAttributes", "cursor", NULL
};

Datum
scim_query_params(PG_FUNCTION_ARGS)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;
	const char *q;
	int			len;
	int			i = 0;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	if (!PG_ARGISNULL(0))
	{
		text	   *t = PG_GETARG_TEXT_PP(0);

		q = VARDATA_ANY(t);
		len = VARSIZE_ANY_EXHDR(t);
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
			JsonbValue	k;
			JsonbValue	v;

			while (i < len && q[i] != '&' && q[i] != ';')
			{
				if (q[i] == '=' && eq < 0)
					eq = i;
				i++;
			}
			if (i > start)
			{
				key = url_decode(q + start, (eq >= 0 ? eq : i) - start, &klen);
				if (eq >= 0)
					val = url_decode(q + eq + 1, i - eq - 1, &vlen);
				for (int p = 0; scim_params[p]; p++)
					if ((int) strlen(scim_params[p]) == klen && pg_strncasecmp(key, scim_params[p], klen) == 0)
					{
						key = (char *) scim_params[p];
						break;
					}
				if (klen > 0)
				{
					k.type = jbvString;
					k.val.string.val = key;
					k.val.string.len = klen;
					v.type = jbvString;
					v.val.string.val = val;
					v.val.string.len = vlen;
					pushJsonbValue(&st, WJB_KEY, &k);
					pushJsonbValue(&st, WJB_VALUE, &v);
				}
			}
			i++;				/* skip the separator */
		}
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

	lex = makeJsonLexContextCstringLen(s, len, GetDatabaseEncoding(), true);
	rc = pg_parse_json(lex, &nullSemAction);
	if (rc != JSON_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidSyntax: the request body is not valid JSON"),
				 errdetail("%s", json_errdetail(rc, lex))));
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(text_to_cstring(t))));
}
