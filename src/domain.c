/*-------------------------------------------------------------------------
 *
 * domain.c
 *		E-mail and domain rules: which users a workspace may provision.
 *
 * scim.email_domain(email) extracts and normalises the domain of an e-mail
 * address, or returns NULL when the address is malformed.  The rules:
 *
 *	- surrounding white space is trimmed; the domain is lower-cased;
 *	- exactly one '@', a non-empty local part of at most 64 bytes without
 *	  white space or control characters;
 *	- a domain of at least two labels, each 1..63 of [a-z0-9-], not starting
 *	  or ending with '-', 253 bytes at most, no trailing dot;
 *	- internationalised domains must arrive in their ASCII (punycode,
 *	  "xn--") form, which is what IdPs send; a domain with non-ASCII bytes is
 *	  malformed, so such an address is never approved.  Approve the punycode
 *	  form of the domain instead.
 *
 * scim.domain_approved(email, workspace) says whether the domain, or, for
 * domains approved with include_subdomains, one of its parents, is on the
 * workspace's approved list.  scim.normalize_domain(domain) validates what an
 * administrator hands to scim.approve_domain.
 *
 * The parsing is plain C with no backend state (scim_email_domain_parse);
 * the SQL functions wrap it.
 *
 * src/domain.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "domain.h"
#include "scim_provision.h"

PG_FUNCTION_INFO_V1(scim_email_domain);
PG_FUNCTION_INFO_V1(scim_normalize_domain);
PG_FUNCTION_INFO_V1(scim_domain_approved);

#define MAX_LOCAL_PART	64
#define MAX_DOMAIN		253
#define MAX_LABEL		63

static inline bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * Validate and lower-case a domain in place-independent form.  Writes the
 * normalised domain into out (at least len + 1 bytes) and returns true, or
 * returns false when the domain is malformed.
 */
static bool
normalize_domain(const char *s, size_t len, char *out)
{
	size_t		label_len = 0;
	int			labels = 0;

	if (len == 0 || len > MAX_DOMAIN)
		return false;

	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '.')
		{
			/* empty label, or label ending in '-' */
			if (label_len == 0 || out[i - 1] == '-')
				return false;
			labels++;
			label_len = 0;
			out[i] = '.';
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c = c - 'A' + 'a';
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;		/* non-ASCII, '_', white space, ... */
		if (c == '-' && label_len == 0)
			return false;
		if (++label_len > MAX_LABEL)
			return false;
		out[i] = (char) c;
	}
	/* the last label: non-empty (no trailing dot), not ending in '-' */
	if (label_len == 0 || out[len - 1] == '-')
		return false;
	labels++;
	out[len] = '\0';
	return labels >= 2;
}

/*
 * Extract the normalised domain of an e-mail address.  Returns a palloc'd
 * string, or NULL when the address is malformed.
 */
char *
scim_email_domain_parse(const char *email, size_t len)
{
	const char *start = email;
	const char *end = email + len;
	const char *at = NULL;
	char	   *out;

	while (start < end && is_space(*start))
		start++;
	while (end > start && is_space(end[-1]))
		end--;

	for (const char *p = start; p < end; p++)
	{
		if (*p == '@')
		{
			if (at != NULL)
				return NULL;	/* two '@' */
			at = p;
		}
		else if (is_space(*p) || (unsigned char) *p < 0x20 || *p == 0x7f)
			return NULL;
	}
	if (at == NULL || at == start || at - start > MAX_LOCAL_PART)
		return NULL;

	out = palloc(end - at);
	if (!normalize_domain(at + 1, end - at - 1, out))
	{
		pfree(out);
		return NULL;
	}
	return out;
}

/*
 * scim.email_domain(email text) RETURNS text
 */
Datum
scim_email_domain(PG_FUNCTION_ARGS)
{
	text	   *email = PG_GETARG_TEXT_PP(0);
	char	   *domain;

	domain = scim_email_domain_parse(VARDATA_ANY(email), VARSIZE_ANY_EXHDR(email));
	if (domain == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(domain));
}

/*
 * scim.normalize_domain(domain text) RETURNS text: the domain as it will be
 * stored, or an error saying what is wrong with it.
 */
Datum
scim_normalize_domain(PG_FUNCTION_ARGS)
{
	text	   *arg = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(arg);
	size_t		len = VARSIZE_ANY_EXHDR(arg);
	char	   *out;

	while (len > 0 && is_space(*s))
		s++, len--;
	while (len > 0 && is_space(s[len - 1]))
		len--;
	/* a leading "@" is a common way of writing a domain; accept it */
	if (len > 0 && *s == '@')
		s++, len--;

	out = palloc(len + 1);
	if (!normalize_domain(s, len, out))
	{
		bool		ascii = true;

		for (size_t i = 0; i < len; i++)
			if ((unsigned char) s[i] >= 0x80)
				ascii = false;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid domain \"%s\"", text_to_cstring(arg)),
				 ascii ?
				 errdetail("A domain has at least two dot-separated labels of letters, digits and hyphens, each at most 63 characters, with no trailing dot.") :
				 errdetail("Internationalised domains must be given in their ASCII form."),
				 ascii ? 0 : errhint("Use the punycode form (\"xn--...\") of the domain, which is what identity providers send.")));
	}
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * scim.domain_approved(email text, workspace text DEFAULT 'default')
 * RETURNS boolean.  NULL or malformed addresses are never approved.
 */
Datum
scim_domain_approved(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	text	   *email;
	char	   *domain;
	Datum		values[3];
	Datum	   *parents;
	int			nparents = 0;
	bool		approved;
	int			ret;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);

	email = PG_GETARG_TEXT_PP(0);
	domain = scim_email_domain_parse(VARDATA_ANY(email), VARSIZE_ANY_EXHDR(email));
	if (domain == NULL)
		PG_RETURN_BOOL(false);

	/* every parent domain with at least two labels: a.b.example.com -> b.example.com, example.com */
	parents = palloc(sizeof(Datum) * (strlen(domain) / 2 + 1));
	for (const char *p = strchr(domain, '.'); p != NULL; p = strchr(p + 1, '.'))
	{
		if (strchr(p + 1, '.') == NULL)
			break;
		parents[nparents++] = CStringGetTextDatum(p + 1);
	}

	values[0] = PG_GETARG_DATUM(1);
	values[1] = CStringGetTextDatum(domain);
	values[2] = PointerGetDatum(construct_array(parents, nparents, TEXTOID, -1, false, TYPALIGN_INT));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan == NULL)
	{
		Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTARRAYOID};
		SPIPlanPtr	p;

		p = SPI_prepare("SELECT 1 FROM scim.approved_domains d"
						" WHERE d.workspace OPERATOR(pg_catalog.=) $1"
						" AND (d.domain OPERATOR(pg_catalog.=) $2"
						"      OR (d.include_subdomains AND d.domain OPERATOR(pg_catalog.=) ANY ($3)))"
						" LIMIT 1", 3, argtypes);
		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		plan = p;
	}
	ret = SPI_execute_plan(plan, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	approved = SPI_processed > 0;
	SPI_finish();

	PG_RETURN_BOOL(approved);
}
