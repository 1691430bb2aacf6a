/*-------------------------------------------------------------------------
 *
 * worker_token.c
 *		OneLogin worker: the access token (client credentials, cached in
 *		this process only, minted again once on a 401) and the GET requests
 *		made with it; unsuccessful answers become recorded failures.
 *
 * src/worker_token.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/backend_status.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "worker.h"

/* saved plans */
static SPIPlanPtr plan_credentials;

static List *token_cache = NIL;

/* Cached access token of a connection (worker memory only). */
typedef struct TokenEntry
{
	char		workspace[NAMEDATALEN];
	int64		config_version;
	char	   *token;
	TimestampTz expires_at;
} TokenEntry;

/* ---------------------------------------------------------------------
 * HTTP with the access token
 * ---------------------------------------------------------------------
 */

static TokenEntry *
token_entry(Conn *c, bool create)
{
	ListCell   *lc;
	TokenEntry *t;

	foreach(lc, token_cache)
	{
		t = (TokenEntry *) lfirst(lc);
		if (strcmp(t->workspace, c->workspace) == 0)
			return t;
	}
	if (!create)
		return NULL;
	t = MemoryContextAllocZero(WorkerContext, sizeof(TokenEntry));
	strlcpy(t->workspace, c->workspace, sizeof(t->workspace));
	{
		MemoryContext old = MemoryContextSwitchTo(WorkerContext);

		token_cache = lappend(token_cache, t);
		MemoryContextSwitchTo(old);
	}
	return t;
}

static void
forget_token(Conn *c)
{
	TokenEntry *t = token_entry(c, false);

	if (t != NULL && t->token != NULL)
	{
		explicit_bzero(t->token, strlen(t->token));
		pfree(t->token);
		t->token = NULL;
	}
}

static const char *
cached_token(Conn *c)
{
	TokenEntry *t = token_entry(c, false);

	if (t == NULL || t->token == NULL)
		return NULL;
	if (t->config_version != c->config_version || GetCurrentTimestamp() >= t->expires_at)
	{
		forget_token(c);
		return NULL;
	}
	return t->token;
}

static void
init_request(OneLoginRequest *req, const char *url)
{
	memset(req, 0, sizeof(*req));
	req->url = url;
	req->allow_http = scim_allow_http;
	req->connect_timeout_ms = scim_connect_timeout;
	req->timeout_ms = scim_request_timeout;
}

/*
 * Turn an unsuccessful response into a recorded failure.  Returns
 * FETCH_OK for 2xx, FETCH_NOT_FOUND for 404 (callers decide), else
 * FETCH_FAILED.
 */
static FetchResult
classify(Conn *c, const char *method, const char *path, OneLoginResponse *resp)
{
	const char *why;

	if (resp->transport_failed)
	{
		record_failure(c, FAIL_TRANSIENT, resp->timed_out ? 504 : 502, method, path, -1,
					   psprintf("request to OneLogin failed: %s", resp->error));
		return FETCH_FAILED;
	}
	if (resp->status >= 200 && resp->status < 300)
		return FETCH_OK;
	if (resp->status == 404)
		return FETCH_NOT_FOUND;
	/* only a documented error name or message, never the body itself */
	why = onelogin_error_reason(resp->body, resp->body_len);
	if (resp->status == 429)
	{
		int			wait = resp->retry_after >= 0 ? resp->retry_after : resp->ratelimit_reset;

		record_failure(c, FAIL_RATE_LIMIT, 429, method, path, wait,
					   psprintf("OneLogin rate limit reached (HTTP 429%s%s)",
								why ? ": " : "", why ? why : ""));
	}
	else if (resp->status >= 500)
		record_failure(c, FAIL_TRANSIENT, (int) resp->status, method, path, -1,
					   psprintf("OneLogin answered HTTP %ld%s%s", resp->status,
								why ? ": " : "", why ? why : ""));
	else
		record_failure(c, FAIL_PERMANENT, (int) resp->status, method, path, -1,
					   psprintf("OneLogin refused the request with HTTP %ld%s%s", resp->status,
								why ? ": " : "", why ? why : ""));
	return FETCH_FAILED;
}

#define SQL_CREDENTIALS \
	"SELECT c.client_id, c.client_secret FROM scim.onelogin_connections c" \
	" WHERE c.workspace OPERATOR(pg_catalog.=) $1 AND c.config_version OPERATOR(pg_catalog.=) $2"

/*
 * Mint an access token (client credentials, HTTP Basic) and cache it.
 * The credentials live in a private context that is wiped afterwards.
 */
static FetchResult
mint_token(Conn *c)
{
	MemoryContext secret_cxt;
	MemoryContext old;
	char	   *client_id = NULL;
	char	   *client_secret = NULL;
	OneLoginRequest req;
	OneLoginResponse resp;
	StringInfoData url;
	Datum		v[2];
	char	   *token;
	int64		expires_in;
	char	   *detail;
	FetchResult result;
	TokenEntry *t;

	if (!tx_begin())
		return FETCH_ABANDONED;
	v[0] = text_datum(c->workspace);
	v[1] = Int64GetDatum(c->config_version);
	run_plan(PLAN(plan_credentials, SQL_CREDENTIALS, TEXTOID, INT8OID), SQL_CREDENTIALS, v, NULL, SPI_OK_SELECT);
	secret_cxt = AllocSetContextCreate(WorkerContext, "scim_provision credentials", ALLOCSET_SMALL_SIZES);
	if (SPI_processed == 1)
	{
		old = MemoryContextSwitchTo(secret_cxt);
		client_id = get_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		client_secret = get_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		MemoryContextSwitchTo(old);
	}
	/* wipe the copies SPI made */
	if (SPI_processed == 1)
	{
		bool		isnull;
		text	   *s = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

		if (!isnull && !VARATT_IS_EXTENDED(s))
			explicit_bzero(VARDATA_ANY(s), VARSIZE_ANY_EXHDR(s));
	}
	tx_commit();
	if (client_id == NULL || client_secret == NULL)
	{
		MemoryContextDelete(secret_cxt);
		return FETCH_ABANDONED;	/* reconfigured meanwhile */
	}

	initStringInfo(&url);
	appendStringInfo(&url, "%s/auth/oauth2/v2/token", c->base_url);
	init_request(&req, url.data);
	req.post = true;
	req.body = "{\"grant_type\":\"client_credentials\"}";
	req.basic_user = client_id;
	req.basic_password = client_secret;
	set_phase(c->workspace, "minting an access token");
	onelogin_http_perform(&req, &resp);

	explicit_bzero(client_id, strlen(client_id));
	explicit_bzero(client_secret, strlen(client_secret));
	MemoryContextDelete(secret_cxt);

	if (resp.interrupted)
		CHECK_FOR_INTERRUPTS();
	if (resp.status == 400 || resp.status == 401 || resp.status == 403)
	{
		const char *why = onelogin_error_reason(resp.body, resp.body_len);

		explicit_bzero(resp.body, resp.body_len);
		record_failure(c, FAIL_AUTH, (int) resp.status, "POST", "/auth/oauth2/v2/token", -1,
					   psprintf("OneLogin refused the client credentials (HTTP %ld%s%s)",
								resp.status, why ? ": " : "", why ? why : ""));
		return FETCH_FAILED;
	}
	result = classify(c, "POST", "/auth/oauth2/v2/token", &resp);
	if (result == FETCH_NOT_FOUND)
	{
		record_failure(c, FAIL_PERMANENT, 404, "POST", "/auth/oauth2/v2/token", -1,
					   "OneLogin has no token endpoint at this base URL (HTTP 404)");
		return FETCH_FAILED;
	}
	if (result != FETCH_OK)
		return result;
	if (!onelogin_parse_token(resp.body, resp.body_len, &token, &expires_in, &detail))
	{
		explicit_bzero(resp.body, resp.body_len);
		record_failure(c, FAIL_TRANSIENT, 502, "POST", "/auth/oauth2/v2/token", -1,
					   psprintf("malformed token response: %s", detail));
		return FETCH_FAILED;
	}

	forget_token(c);
	t = token_entry(c, true);
	t->token = MemoryContextStrdup(WorkerContext, token);
	t->config_version = c->config_version;
	t->expires_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												Max(expires_in - TOKEN_MARGIN_S, expires_in / 2) * 1000);
	explicit_bzero(token, strlen(token));
	explicit_bzero(resp.body, resp.body_len);
	return FETCH_OK;
}

/*
 * GET a resource URL with the cached token; on a 401 mint a new token once
 * and try again.  Failures are recorded.
 */
FetchResult
fetch(Conn *c, const char *url, const char *path, OneLoginResponse *resp)
{
	int			attempt;

	for (attempt = 0;; attempt++)
	{
		bool		fresh = false;
		const char *token = cached_token(c);
		OneLoginRequest req;
		FetchResult r;

		if (token == NULL)
		{
			r = mint_token(c);
			if (r != FETCH_OK)
				return r;
			token = cached_token(c);
			fresh = true;
			if (token == NULL)
				return FETCH_ABANDONED;
		}
		init_request(&req, url);
		req.bearer = token;
		onelogin_http_perform(&req, resp);
		if (resp->interrupted)
		{
			CHECK_FOR_INTERRUPTS();
			record_failure(c, FAIL_TRANSIENT, 502, "GET", path, -1, "transfer interrupted");
			return FETCH_FAILED;
		}
		if (resp->status == 401)
		{
			forget_token(c);
			if (fresh || attempt > 0)
			{
				const char *why = onelogin_error_reason(resp->body, resp->body_len);

				record_failure(c, FAIL_AUTH, 401, "GET", path, -1,
							   psprintf("OneLogin refused a freshly minted access token (HTTP 401%s%s)",
										why ? ": " : "", why ? why : ""));
				return FETCH_FAILED;
			}
			continue;
		}
		return classify(c, "GET", path, resp);
	}
}

/* Honour an exhausted rate budget before the next request. */
bool
rate_budget_exhausted(Conn *c, OneLoginResponse *resp)
{
	if (resp->ratelimit_remaining == 0 && resp->ratelimit_reset > 0)
	{
		record_failure(c, FAIL_PAUSE, 429, "GET", "", resp->ratelimit_reset, "rate budget used up");
		return true;
	}
	return false;
}

