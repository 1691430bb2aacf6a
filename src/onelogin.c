/*-------------------------------------------------------------------------
 *
 * onelogin.c
 *		libcurl client for OneLogin's REST API and parsers for its pages.
 *
 * HTTP: one easy handle, driven through a multi handle that keeps the
 * connection to OneLogin alive between pages.  The transfer loop polls in
 * steps of 100 ms and stops as soon as a die or cancel interrupt is pending
 * (the XFERINFO callback does the same from inside libcurl), so SIGTERM
 * ends a sync well within a second.  Only https is allowed unless the
 * caller allows plain http; TLS verification stays on; no redirects are
 * followed; libcurl never prints (no VERBOSE) and never raises signals
 * (NOSIGNAL).  Nothing here throws while libcurl is on the stack: the
 * callbacks allocate with MCXT_ALLOC_NO_OOM and report failures through
 * flags, and every slist is freed before the function returns or reports.
 *
 * JSON: the users page (a bare array, v2), the events page (v1 envelope
 * with pagination.after_cursor), the token response and error bodies are
 * parsed with the backend's streaming JSON parser and semantic actions, in
 * one pass, picking out only the fields we use.  Malformed input returns
 * false with a detail; it is never thrown, so a bad page is retried and
 * nothing of it is applied.
 *
 * src/onelogin.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <limits.h>
#include <time.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/datetime.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "onelogin.h"

#ifndef EXTVERSION
#define EXTVERSION "unknown"
#endif

#define ONELOGIN_USER_AGENT "scim_provision/" EXTVERSION

/* Longest header value we keep (cursors are short base64 strings). */
#define MAX_HEADER_VALUE 4096

static CURL *ol_easy = NULL;
static CURLM *ol_multi = NULL;
static bool ol_initialized = false;

/* Where the callbacks of one transfer put what they receive. */
typedef struct TransferState
{
	MemoryContext cxt;
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		too_large;
	bool		out_of_memory;
	char	   *after_cursor;
	int			retry_after;
	int			ratelimit_reset;
	int			ratelimit_remaining;
	int			total_count;
} TransferState;

static void
onelogin_http_cleanup(int code, Datum arg)
{
	if (ol_multi != NULL && ol_easy != NULL)
		curl_multi_remove_handle(ol_multi, ol_easy);
	if (ol_easy != NULL)
		curl_easy_cleanup(ol_easy);
	if (ol_multi != NULL)
		curl_multi_cleanup(ol_multi);
	ol_easy = NULL;
	ol_multi = NULL;
	if (ol_initialized)
		curl_global_cleanup();
	ol_initialized = false;
}

/*
 * Initialise libcurl once per process (the worker), with cleanup at exit.
 */
void
onelogin_http_init(void)
{
	if (ol_initialized)
		return;
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not initialize libcurl")));
	ol_initialized = true;
	ol_multi = curl_multi_init();
	ol_easy = curl_easy_init();
	if (ol_multi == NULL || ol_easy == NULL)
	{
		onelogin_http_cleanup(0, (Datum) 0);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));
	}
	on_proc_exit(onelogin_http_cleanup, (Datum) 0);
}

static void *
alloc_no_oom(MemoryContext cxt, size_t size)
{
	return MemoryContextAllocExtended(cxt, size, MCXT_ALLOC_NO_OOM);
}

static size_t
write_callback(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	TransferState *ts = (TransferState *) userdata;
	size_t		n = size * nmemb;

	if (ts->len + n + 1 > ts->cap)
	{
		size_t		newcap;
		char	   *p;

		if (ts->len + n > ONELOGIN_MAX_BODY)
		{
			ts->too_large = true;
			return 0;			/* libcurl aborts with CURLE_WRITE_ERROR */
		}
		newcap = Max(ts->cap * 2, ts->len + n + 1);
		newcap = Max(newcap, 16384);
		newcap = Min(newcap, (size_t) ONELOGIN_MAX_BODY + 1);
		p = alloc_no_oom(ts->cxt, newcap);
		if (p == NULL)
		{
			ts->out_of_memory = true;
			return 0;
		}
		if (ts->data != NULL)
		{
			memcpy(p, ts->data, ts->len);
			pfree(ts->data);
		}
		ts->data = p;
		ts->cap = newcap;
	}
	memcpy(ts->data + ts->len, ptr, n);
	ts->len += n;
	ts->data[ts->len] = '\0';
	return n;
}

/* Non-negative integer header value, -1 if it is not one. */
static int
header_int(const char *v)
{
	char	   *end;
	long		l;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	l = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || l < 0)
		return -1;
	return (int) Min(l, (long) INT_MAX);
}

static size_t
header_callback(char *buffer, size_t size, size_t nitems, void *userdata)
{
	TransferState *ts = (TransferState *) userdata;
	size_t		n = size * nitems;
	size_t		namelen;
	const char *colon;
	const char *v;
	const char *vend;
	char		value[MAX_HEADER_VALUE + 1];
	size_t		vlen;

	/* A new status line (after 100 Continue, say) starts a fresh set. */
	if (n >= 5 && strncmp(buffer, "HTTP/", 5) == 0)
	{
		ts->after_cursor = NULL;
		ts->retry_after = -1;
		ts->ratelimit_reset = -1;
		ts->ratelimit_remaining = -1;
		ts->total_count = -1;
		return n;
	}
	colon = memchr(buffer, ':', n);
	if (colon == NULL)
		return n;
	namelen = colon - buffer;
	v = colon + 1;
	vend = buffer + n;
	while (v < vend && (*v == ' ' || *v == '\t'))
		v++;
	while (vend > v && (vend[-1] == '\r' || vend[-1] == '\n' || vend[-1] == ' ' || vend[-1] == '\t'))
		vend--;
	vlen = vend - v;
	if (vlen > MAX_HEADER_VALUE)
		return n;				/* nothing we want is that long */
	memcpy(value, v, vlen);
	value[vlen] = '\0';

#define HEADER_IS(name) (namelen == strlen(name) && pg_strncasecmp(buffer, (name), namelen) == 0)
	if (HEADER_IS("After-Cursor"))
	{
		ts->after_cursor = NULL;
		if (vlen > 0)
		{
			char	   *copy = alloc_no_oom(ts->cxt, vlen + 1);

			if (copy == NULL)
			{
				ts->out_of_memory = true;
				return 0;
			}
			memcpy(copy, value, vlen + 1);
			ts->after_cursor = copy;
		}
	}
	else if (HEADER_IS("Retry-After"))
	{
		int			secs = header_int(value);

		if (secs < 0)
		{
			/* an HTTP-date */
			time_t		when = curl_getdate(value, NULL);

			if (when != (time_t) -1)
			{
				time_t		now = time(NULL);

				secs = (when > now) ? (int) Min((long) (when - now), (long) INT_MAX) : 0;
			}
		}
		ts->retry_after = secs;
	}
	else if (HEADER_IS("X-RateLimit-Reset"))
		ts->ratelimit_reset = header_int(value);
	else if (HEADER_IS("X-RateLimit-Remaining"))
		ts->ratelimit_remaining = header_int(value);
	else if (HEADER_IS("Total-Count"))
		ts->total_count = header_int(value);
#undef HEADER_IS

	return n;
}

/* Aborts the transfer (CURLE_ABORTED_BY_CALLBACK) when we must stop. */
static int
xferinfo_callback(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
				  curl_off_t ultotal, curl_off_t ulnow)
{
	return (ProcDiePending || QueryCancelPending) ? 1 : 0;
}

/*
 * Whether url uses plain http (it is then refused unless allowed).
 */
bool
onelogin_url_is_http(const char *url)
{
	return pg_strncasecmp(url, "http://", 7) == 0;
}

/*
 * Append name=value to a URL, percent-encoding everything but RFC 3986
 * unreserved characters.
 */
void
onelogin_url_append_param(StringInfo url, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	appendStringInfoChar(url, strchr(url->data, '?') ? '&' : '?');
	appendStringInfoString(url, name);
	appendStringInfoChar(url, '=');
	for (p = (const unsigned char *) value; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			appendStringInfoChar(url, (char) *p);
		else
		{
			appendStringInfoChar(url, '%');
			appendStringInfoChar(url, hex[*p >> 4]);
			appendStringInfoChar(url, hex[*p & 0x0F]);
		}
	}
}

/*
 * Perform one request.  Never throws for network or HTTP trouble: the
 * outcome is in *resp (status, transport_failed, interrupted, ...).  The
 * body and headers are allocated in CurrentMemoryContext.  Throws only for
 * "cannot happen" libcurl setup failures, after freeing what it holds.
 */
void
onelogin_http_perform(const OneLoginRequest *req, OneLoginResponse *resp)
{
	TransferState ts;
	struct curl_slist *headers = NULL;
	struct curl_slist *tmp;
	char		errbuf[CURL_ERROR_SIZE];
	CURLcode	cc = CURLE_OK;
	CURLMcode	mc;
	CURLcode	result = CURLE_OK;
	bool		done = false;
	const char *protocols = req->allow_http ? "http,https" : "https";
	const char *failed_option = NULL;
	CURLMsg    *msg;
	int			queued;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	resp->ratelimit_reset = -1;
	resp->ratelimit_remaining = -1;
	resp->total_count = -1;

	if (!ol_initialized)
		onelogin_http_init();

	memset(&ts, 0, sizeof(ts));
	ts.cxt = CurrentMemoryContext;
	ts.retry_after = -1;
	ts.ratelimit_reset = -1;
	ts.ratelimit_remaining = -1;
	ts.total_count = -1;
	errbuf[0] = '\0';

	/* Our own headers; libcurl copies them. */
	tmp = curl_slist_append(headers, "Accept: application/json");
	if (tmp != NULL)
	{
		headers = tmp;
		if (req->post)
			tmp = curl_slist_append(headers, "Content-Type: application/json");
	}
	if (tmp == NULL)
	{
		curl_slist_free_all(headers);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not build the request headers")));
	}
	headers = tmp;

	curl_easy_reset(ol_easy);

#define SETOPT(opt, val) \
	do { \
		if ((cc = curl_easy_setopt(ol_easy, (opt), (val))) != CURLE_OK) \
		{ \
			failed_option = #opt; \
			goto setopt_failed; \
		} \
	} while (0)

	SETOPT(CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(CURLOPT_PROTOCOLS_STR, protocols);
	SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, protocols);
#else
	SETOPT(CURLOPT_PROTOCOLS, req->allow_http ? (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS) : (long) CURLPROTO_HTTPS);
	SETOPT(CURLOPT_REDIR_PROTOCOLS, req->allow_http ? (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS) : (long) CURLPROTO_HTTPS);
#endif
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_VERBOSE, 0L);
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long) req->connect_timeout_ms);
	SETOPT(CURLOPT_TIMEOUT_MS, (long) req->timeout_ms);
	SETOPT(CURLOPT_USERAGENT, ONELOGIN_USER_AGENT);
	SETOPT(CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(CURLOPT_ACCEPT_ENCODING, "");
	SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(CURLOPT_NOPROGRESS, 0L);
	SETOPT(CURLOPT_XFERINFOFUNCTION, xferinfo_callback);
	SETOPT(CURLOPT_XFERINFODATA, NULL);
	SETOPT(CURLOPT_WRITEFUNCTION, write_callback);
	SETOPT(CURLOPT_WRITEDATA, &ts);
	SETOPT(CURLOPT_HEADERFUNCTION, header_callback);
	SETOPT(CURLOPT_HEADERDATA, &ts);
	SETOPT(CURLOPT_HTTPHEADER, headers);
	if (req->post)
	{
		const char *body = req->body ? req->body : "";

		SETOPT(CURLOPT_POST, 1L);
		SETOPT(CURLOPT_POSTFIELDSIZE, (long) strlen(body));
		SETOPT(CURLOPT_POSTFIELDS, body);
	}
	if (req->basic_user != NULL)
	{
		SETOPT(CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
		SETOPT(CURLOPT_USERNAME, req->basic_user);
		SETOPT(CURLOPT_PASSWORD, req->basic_password ? req->basic_password : "");
	}
	else if (req->bearer != NULL)
	{
		SETOPT(CURLOPT_HTTPAUTH, (long) CURLAUTH_BEARER);
		SETOPT(CURLOPT_XOAUTH2_BEARER, req->bearer);
	}
#undef SETOPT

	mc = curl_multi_add_handle(ol_multi, ol_easy);
	if (mc != CURLM_OK)
	{
		curl_slist_free_all(headers);
		curl_easy_reset(ol_easy);
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not start a libcurl transfer: %s", curl_multi_strerror(mc))));
	}

	for (;;)
	{
		int			running = 0;

		mc = curl_multi_perform(ol_multi, &running);
		if (mc != CURLM_OK)
			break;
		if (ProcDiePending || QueryCancelPending)
		{
			resp->interrupted = true;
			break;
		}
		if (running == 0)
			break;
		mc = curl_multi_poll(ol_multi, NULL, 0, 100, NULL);
		if (mc != CURLM_OK)
			break;
	}
	while ((msg = curl_multi_info_read(ol_multi, &queued)) != NULL)
	{
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == ol_easy)
		{
			result = msg->data.result;
			done = true;
		}
	}
	if (done && result == CURLE_OK)
	{
		long		code = 0;

		if (curl_easy_getinfo(ol_easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK)
			resp->status = code;
	}
	{
		double		secs = 0;

		if (curl_easy_getinfo(ol_easy, CURLINFO_TOTAL_TIME, &secs) == CURLE_OK)
			resp->seconds = secs;
	}
	curl_multi_remove_handle(ol_multi, ol_easy);
	/* drop the credentials and the header list from the handle */
	curl_easy_reset(ol_easy);
	curl_slist_free_all(headers);

	if (ts.out_of_memory)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while receiving a OneLogin response")));

	resp->too_large = ts.too_large;
	resp->body = ts.data ? ts.data : pstrdup("");
	resp->body_len = ts.len;
	resp->after_cursor = ts.after_cursor;
	resp->retry_after = ts.retry_after;
	resp->ratelimit_reset = ts.ratelimit_reset;
	resp->ratelimit_remaining = ts.ratelimit_remaining;
	resp->total_count = ts.total_count;

	if (resp->interrupted || (done && result == CURLE_ABORTED_BY_CALLBACK))
	{
		resp->interrupted = true;
		resp->status = 0;
		strlcpy(resp->error, "transfer interrupted", sizeof(resp->error));
	}
	else if (!done || mc != CURLM_OK)
	{
		resp->transport_failed = true;
		resp->status = 0;
		snprintf(resp->error, sizeof(resp->error), "%s",
				 mc != CURLM_OK ? curl_multi_strerror(mc) : "transfer did not complete");
	}
	else if (result != CURLE_OK)
	{
		resp->transport_failed = true;
		resp->status = 0;
		resp->timed_out = (result == CURLE_OPERATION_TIMEDOUT);
		if (ts.too_large)
			snprintf(resp->error, sizeof(resp->error),
					 "response larger than %d bytes", ONELOGIN_MAX_BODY);
		else
			snprintf(resp->error, sizeof(resp->error), "%s",
					 errbuf[0] ? errbuf : curl_easy_strerror(result));
	}
	return;

setopt_failed:
	curl_easy_reset(ol_easy);
	curl_slist_free_all(headers);
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("could not set libcurl option %s: %s", failed_option, curl_easy_strerror(cc))));
}

/* ---------------------------------------------------------------------
 * JSON
 * ---------------------------------------------------------------------
 */

/*
 * Validate UTF-8 and convert to the database encoding, then run the
 * streaming parser.  Returns the parser's result; *lexp for error details.
 */
static bool
run_json_parser(const char *json, size_t len, JsonSemAction *sem, bool quote_input,
				char **detail)
{
	char	   *text;
	int			textlen;
	JsonLexContext *lex;
	JsonParseErrorType res;

	if (len > (size_t) (INT_MAX / 4))
	{
		*detail = pstrdup("the response is too large");
		return false;
	}
	if (!pg_verify_mbstr(PG_UTF8, json, (int) len, true))
	{
		*detail = pstrdup("the response is not valid UTF-8");
		return false;
	}
	text = pg_any_to_server(json, (int) len, PG_UTF8);
	textlen = (text == json) ? (int) len : (int) strlen(text);
	lex = makeJsonLexContextCstringLen(text, textlen, GetDatabaseEncoding(), true);
	res = pg_parse_json(lex, sem);
	if (res != JSON_SUCCESS)
	{
		/*
		 * json_errdetail() quotes the offending token, which may be anything
		 * the server sent (an echoed credential, say): give the position only.
		 */
		if (quote_input)
			*detail = psprintf("invalid JSON at byte %d", (int) (lex->token_start - lex->input));
		else
			*detail = pstrdup("invalid JSON");
		return false;
	}
	return true;
}

/* Copy of a scalar that counts as a value: not null, not "". */
static char *
scalar_value(char *token, JsonTokenType type)
{
	if (type == JSON_TOKEN_NULL || token == NULL || token[0] == '\0')
		return NULL;
	return token;
}

static bool
parse_int64_token(const char *token, JsonTokenType type, int64 *out)
{
	char	   *end;
	long long	v;

	if (type != JSON_TOKEN_NUMBER && type != JSON_TOKEN_STRING)
		return false;
	if (token == NULL || *token == '\0')
		return false;
	errno = 0;
	v = strtoll(token, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (int64) v;
	return true;
}

static int
parse_small_int(const char *token, JsonTokenType type)
{
	int64		v;

	if (!parse_int64_token(token, type, &v) || v < 0 || v > INT_MAX)
		return -1;
	return (int) v;
}

static bool
digits(const char *s, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int
two_digits(const char *s)
{
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/*
 * Parse an ISO-8601 date-time with a zone, as OneLogin sends it:
 * YYYY-MM-DDTHH:MM[:SS[.fraction]](Z|+HH[:MM]|-HH[:MM]).  Never throws.
 */
bool
onelogin_parse_timestamp(const char *s, TimestampTz *out)
{
	struct pg_tm tm;
	fsec_t		fsec = 0;
	int			tz = 0;
	int			year;
	Timestamp	ts;

	if (s == NULL || strlen(s) < 17)
		return false;
	if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
		!digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
		!digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2))
		return false;
	memset(&tm, 0, sizeof(tm));
	year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + two_digits(s + 2);
	tm.tm_year = year;
	tm.tm_mon = two_digits(s + 5);
	tm.tm_mday = two_digits(s + 8);
	tm.tm_hour = two_digits(s + 11);
	tm.tm_min = two_digits(s + 14);
	if (year < 1 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
		tm.tm_mday > day_tab[isleap(year) ? 1 : 0][tm.tm_mon - 1] ||
		tm.tm_hour > 23 || tm.tm_min > 59)
		return false;
	s += 16;
	if (*s == ':')
	{
		if (!digits(s + 1, 2))
			return false;
		tm.tm_sec = two_digits(s + 1);
		if (tm.tm_sec > 59)
			return false;
		s += 3;
		if (*s == '.')
		{
			int			n = 0;
			int			scale = 100000;

			s++;
			while (*s >= '0' && *s <= '9')
			{
				if (n < 6)
				{
					fsec += (*s - '0') * scale;
					scale /= 10;
				}
				s++, n++;
			}
			if (n == 0 || n > 9)
				return false;
		}
	}
	if (*s == 'Z' || *s == 'z')
	{
		if (s[1] != '\0')
			return false;
	}
	else if (*s == '+' || *s == '-')
	{
		int			secs;

		if (!digits(s + 1, 2))
			return false;
		secs = two_digits(s + 1) * 3600;
		if (s[3] == ':')
		{
			if (!digits(s + 4, 2) || s[6] != '\0')
				return false;
			secs += two_digits(s + 4) * 60;
		}
		else if (s[3] != '\0')
		{
			if (!digits(s + 3, 2) || s[5] != '\0')
				return false;
			secs += two_digits(s + 3) * 60;
		}
		if (secs > 18 * 3600)
			return false;
		/* PostgreSQL counts zone offsets west of Greenwich as positive */
		tz = (*s == '+') ? -secs : secs;
	}
	else
		return false;
	if (tm2timestamp(&tm, fsec, &tz, &ts) != 0 || !IS_VALID_TIMESTAMP(ts))
		return false;
	*out = (TimestampTz) ts;
	return true;
}

/*
 * Format a timestamp as OneLogin expects query values: UTC with
 * milliseconds, "2020-07-01T20:38:24.123Z".
 */
void
onelogin_format_timestamp(TimestampTz ts, char *buf, size_t buflen)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
	{
		strlcpy(buf, "1970-01-01T00:00:00.000Z", buflen);
		return;
	}
	snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
			 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int) (fsec / 1000));
}

/* ---------- users page ---------- */

typedef struct UsersParse
{
	OneLoginUserPage *page;
	const char *user_type_attr;
	bool		single;
	int			user_depth;		/* depth of a user object */
	int			depth;
	OneLoginUser *cur;
	bool		cur_has_id;
	char	   *field;			/* current field of the user object */
	bool		in_custom;		/* inside its custom_attributes */
	char	   *cfield;			/* current field of custom_attributes */
	char	   *error;
} UsersParse;

static void
users_set_error(UsersParse *p, const char *msg)
{
	if (p->error == NULL)
		p->error = pstrdup(msg);
}

static void
users_object_start(void *state)
{
	UsersParse *p = (UsersParse *) state;

	p->depth++;
	if (p->depth == 1 && !p->single)
		users_set_error(p, "expected a JSON array of users, found an object");
	if (p->depth == p->user_depth)
	{
		OneLoginUserPage *page = p->page;

		if (page->nusers == page->cap)
		{
			page->cap = Max(page->cap * 2, 64);
			page->users = page->users
				? repalloc_huge(page->users, sizeof(OneLoginUser) * page->cap)
				: palloc_extended(sizeof(OneLoginUser) * page->cap, MCXT_ALLOC_HUGE);
		}
		p->cur = &page->users[page->nusers++];
		memset(p->cur, 0, sizeof(OneLoginUser));
		p->cur->status = -1;
		p->cur->state = -1;
		p->cur_has_id = false;
		p->field = NULL;
	}
	else if (p->depth == p->user_depth + 1 && p->cur != NULL && p->field != NULL &&
			 strcmp(p->field, "custom_attributes") == 0)
	{
		p->in_custom = true;
		p->cfield = NULL;
	}
}

static void
users_object_end(void *state)
{
	UsersParse *p = (UsersParse *) state;

	if (p->depth == p->user_depth && p->cur != NULL)
	{
		if (!p->cur_has_id)
			users_set_error(p, "a user has no numeric \"id\"");
		p->cur = NULL;
	}
	else if (p->depth == p->user_depth + 1)
		p->in_custom = false;
	p->depth--;
}

static void
users_array_start(void *state)
{
	UsersParse *p = (UsersParse *) state;

	p->depth++;
	if (p->depth == 1 && p->single)
		users_set_error(p, "expected a JSON object, found an array");
	else if (p->depth == p->user_depth)
		users_set_error(p, "expected user objects in the array");
}

static void
users_array_end(void *state)
{
	UsersParse *p = (UsersParse *) state;

	p->depth--;
}

static void
users_field_start(void *state, char *fname, bool isnull)
{
	UsersParse *p = (UsersParse *) state;

	if (p->depth == p->user_depth)
		p->field = fname;
	else if (p->depth == p->user_depth + 1 && p->in_custom)
		p->cfield = fname;
}

static void
users_scalar(void *state, char *token, JsonTokenType type)
{
	UsersParse *p = (UsersParse *) state;
	OneLoginUser *u = p->cur;
	const char *f = p->field;

	if (p->depth < p->user_depth)
	{
		users_set_error(p, p->single ? "expected a JSON object" : "expected user objects in the array");
		return;
	}
	if (u == NULL)
		return;
	if (p->depth == p->user_depth + 1 && p->in_custom)
	{
		if (p->cfield != NULL && p->user_type_attr != NULL &&
			pg_strcasecmp(p->cfield, p->user_type_attr) == 0)
			u->user_type = scalar_value(token, type);
		return;
	}
	if (p->depth != p->user_depth || f == NULL)
		return;

	switch (f[0])
	{
		case 'c':
			if (strcmp(f, "company") == 0)
				u->company = scalar_value(token, type);
			break;
		case 'd':
			if (strcmp(f, "department") == 0)
				u->department = scalar_value(token, type);
			break;
		case 'e':
			if (strcmp(f, "email") == 0)
				u->email = scalar_value(token, type);
			break;
		case 'f':
			if (strcmp(f, "firstname") == 0)
				u->firstname = scalar_value(token, type);
			break;
		case 'i':
			if (strcmp(f, "id") == 0)
			{
				if (parse_int64_token(token, type, &u->id) && u->id >= 0)
					p->cur_has_id = true;
				else
					users_set_error(p, "a user's \"id\" is not a non-negative integer");
			}
			break;
		case 'l':
			if (strcmp(f, "lastname") == 0)
				u->lastname = scalar_value(token, type);
			break;
		case 'p':
			if (strcmp(f, "phone") == 0)
				u->phone = scalar_value(token, type);
			break;
		case 's':
			if (strcmp(f, "status") == 0)
				u->status = parse_small_int(token, type);
			else if (strcmp(f, "state") == 0)
				u->state = parse_small_int(token, type);
			break;
		case 't':
			if (strcmp(f, "title") == 0)
				u->title = scalar_value(token, type);
			break;
		case 'u':
			if (strcmp(f, "username") == 0)
				u->username = scalar_value(token, type);
			else if (strcmp(f, "updated_at") == 0)
			{
				char	   *v = scalar_value(token, type);

				u->updated_at = onelogin_parse_timestamp(v, &u->updated_ts) ? v : NULL;
			}
			break;
		default:
			break;
	}
}

/*
 * Parse a users page (a JSON array of user objects) or, with
 * single_object, one user object.  Users are appended to *page.
 */
bool
onelogin_parse_users(const char *json, size_t len, const char *user_type_attr,
					 bool single_object, OneLoginUserPage *page, char **detail)
{
	UsersParse	p;
	JsonSemAction sem;

	memset(&p, 0, sizeof(p));
	p.page = page;
	p.user_type_attr = user_type_attr;
	p.single = single_object;
	p.user_depth = single_object ? 1 : 2;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &p;
	sem.object_start = users_object_start;
	sem.object_end = users_object_end;
	sem.array_start = users_array_start;
	sem.array_end = users_array_end;
	sem.object_field_start = users_field_start;
	sem.scalar = users_scalar;

	*detail = NULL;
	if (!run_json_parser(json, len, &sem, true, detail))
		return false;
	if (p.error != NULL)
	{
		*detail = p.error;
		return false;
	}
	return true;
}

/* ---------- events page ---------- */

typedef struct EventsParse
{
	OneLoginEventPage *page;
	int			depth;
	char	   *tfield;			/* field of the envelope */
	char	   *sfield;			/* field inside pagination or status */
	char	   *efield;			/* field of an event */
	bool		in_pagination;
	bool		in_status;
	bool		in_data;
	bool		saw_data;
	bool		status_error;
	char	   *status_message;
	OneLoginEvent *cur;
	char	   *error;
} EventsParse;

static void
events_set_error(EventsParse *p, const char *msg)
{
	if (p->error == NULL)
		p->error = pstrdup(msg);
}

static void
events_object_start(void *state)
{
	EventsParse *p = (EventsParse *) state;

	p->depth++;
	if (p->depth == 2 && p->tfield != NULL)
	{
		p->in_pagination = strcmp(p->tfield, "pagination") == 0;
		p->in_status = strcmp(p->tfield, "status") == 0;
		p->sfield = NULL;
	}
	else if (p->depth == 3 && p->in_data)
	{
		OneLoginEventPage *page = p->page;

		if (page->nevents == page->cap)
		{
			page->cap = Max(page->cap * 2, 64);
			page->events = page->events
				? repalloc_huge(page->events, sizeof(OneLoginEvent) * page->cap)
				: palloc_extended(sizeof(OneLoginEvent) * page->cap, MCXT_ALLOC_HUGE);
		}
		p->cur = &page->events[page->nevents++];
		p->cur->id = -1;
		p->cur->event_type_id = -1;
		p->cur->user_id = -1;
		p->cur->created_at = NULL;
		p->efield = NULL;
	}
}

static void
events_object_end(void *state)
{
	EventsParse *p = (EventsParse *) state;

	if (p->depth == 2)
	{
		p->in_pagination = false;
		p->in_status = false;
	}
	else if (p->depth == 3)
		p->cur = NULL;
	p->depth--;
}

static void
events_array_start(void *state)
{
	EventsParse *p = (EventsParse *) state;

	p->depth++;
	if (p->depth == 1)
		events_set_error(p, "expected a JSON object with \"data\" and \"pagination\", found an array");
	else if (p->depth == 2 && p->tfield != NULL && strcmp(p->tfield, "data") == 0)
	{
		p->in_data = true;
		p->saw_data = true;
	}
	else if (p->depth == 3 && p->in_data)
		events_set_error(p, "expected event objects in \"data\"");
}

static void
events_array_end(void *state)
{
	EventsParse *p = (EventsParse *) state;

	if (p->depth == 2)
		p->in_data = false;
	p->depth--;
}

static void
events_field_start(void *state, char *fname, bool isnull)
{
	EventsParse *p = (EventsParse *) state;

	if (p->depth == 1)
		p->tfield = fname;
	else if (p->depth == 2)
		p->sfield = fname;
	else if (p->depth == 3 && p->cur != NULL)
		p->efield = fname;
}

static void
events_scalar(void *state, char *token, JsonTokenType type)
{
	EventsParse *p = (EventsParse *) state;

	if (p->depth == 0)
	{
		events_set_error(p, "expected a JSON object with \"data\" and \"pagination\"");
		return;
	}
	if (p->depth == 2 && p->in_pagination && p->sfield != NULL)
	{
		if (strcmp(p->sfield, "after_cursor") == 0)
			p->page->after_cursor = (type == JSON_TOKEN_STRING) ? scalar_value(token, type) : NULL;
	}
	else if (p->depth == 2 && p->in_status && p->sfield != NULL)
	{
		if (strcmp(p->sfield, "error") == 0)
			p->status_error = (type == JSON_TOKEN_TRUE);
		else if (strcmp(p->sfield, "message") == 0 && type == JSON_TOKEN_STRING)
			p->status_message = token;
	}
	else if (p->depth == 2 && p->in_data)
		events_set_error(p, "expected event objects in \"data\"");
	else if (p->depth == 3 && p->cur != NULL && p->efield != NULL)
	{
		OneLoginEvent *e = p->cur;
		int64		v;

		if (strcmp(p->efield, "id") == 0)
		{
			if (parse_int64_token(token, type, &v))
				e->id = v;
		}
		else if (strcmp(p->efield, "event_type_id") == 0)
			e->event_type_id = parse_small_int(token, type);
		else if (strcmp(p->efield, "user_id") == 0)
		{
			if (parse_int64_token(token, type, &v) && v >= 0)
				e->user_id = v;
		}
		else if (strcmp(p->efield, "created_at") == 0)
		{
			char	   *s = scalar_value(token, type);

			e->created_at = onelogin_parse_timestamp(s, &e->created_ts) ? s : NULL;
		}
	}
}

/*
 * Parse an events page: {"status":…, "pagination":{"after_cursor":…}, "data":[…]}.
 */
bool
onelogin_parse_events(const char *json, size_t len, OneLoginEventPage *page, char **detail)
{
	EventsParse p;
	JsonSemAction sem;

	memset(&p, 0, sizeof(p));
	p.page = page;
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &p;
	sem.object_start = events_object_start;
	sem.object_end = events_object_end;
	sem.array_start = events_array_start;
	sem.array_end = events_array_end;
	sem.object_field_start = events_field_start;
	sem.scalar = events_scalar;

	*detail = NULL;
	if (!run_json_parser(json, len, &sem, true, detail))
		return false;
	if (p.error == NULL && p.status_error)
		p.error = pstrdup("the events endpoint reported an error");
	if (p.error == NULL && !p.saw_data)
		p.error = pstrdup("the response has no \"data\" array");
	if (p.error != NULL)
	{
		*detail = p.error;
		return false;
	}
	return true;
}

/* ---------- token and error bodies ---------- */

typedef struct FlatParse
{
	int			depth;
	bool		top_is_object;
	char	   *field;			/* field at depth 1 */
	char	   *subfield;		/* field at depth 2 */
	char	   *access_token;
	char	   *expires_in;
	char	   *message;
	char	   *status_message;
	char	   *name;
} FlatParse;

static void
flat_object_start(void *state)
{
	FlatParse  *p = (FlatParse *) state;

	p->depth++;
	if (p->depth == 1)
		p->top_is_object = true;
	p->subfield = NULL;
}

static void
flat_object_end(void *state)
{
	FlatParse  *p = (FlatParse *) state;

	p->depth--;
}

static void
flat_array_start(void *state)
{
	FlatParse  *p = (FlatParse *) state;

	p->depth++;
}

static void
flat_field_start(void *state, char *fname, bool isnull)
{
	FlatParse  *p = (FlatParse *) state;

	if (p->depth == 1)
		p->field = fname;
	else if (p->depth == 2)
		p->subfield = fname;
}

static void
flat_scalar(void *state, char *token, JsonTokenType type)
{
	FlatParse  *p = (FlatParse *) state;

	if (p->depth == 1 && p->field != NULL)
	{
		if (strcmp(p->field, "access_token") == 0 && type == JSON_TOKEN_STRING)
			p->access_token = scalar_value(token, type);
		else if (strcmp(p->field, "expires_in") == 0)
			p->expires_in = scalar_value(token, type);
		else if (strcmp(p->field, "message") == 0 && type == JSON_TOKEN_STRING)
			p->message = scalar_value(token, type);
		else if (strcmp(p->field, "name") == 0 && type == JSON_TOKEN_STRING)
			p->name = scalar_value(token, type);
	}
	else if (p->depth == 2 && p->field != NULL && strcmp(p->field, "status") == 0 &&
			 p->subfield != NULL && strcmp(p->subfield, "message") == 0 &&
			 type == JSON_TOKEN_STRING)
		p->status_message = scalar_value(token, type);
}

static bool
run_flat_parser(const char *json, size_t len, FlatParse *p)
{
	JsonSemAction sem;
	char	   *detail;

	memset(p, 0, sizeof(*p));
	memset(&sem, 0, sizeof(sem));
	sem.semstate = p;
	sem.object_start = flat_object_start;
	sem.object_end = flat_object_end;
	sem.array_start = flat_array_start;
	sem.array_end = flat_object_end;
	sem.object_field_start = flat_field_start;
	sem.scalar = flat_scalar;
	return run_json_parser(json, len, &sem, false, &detail) && p->top_is_object;
}

/*
 * Parse the token endpoint's answer.  The detail never quotes the body.
 */
bool
onelogin_parse_token(const char *json, size_t len, char **access_token, int64 *expires_in,
					 char **detail)
{
	FlatParse	p;
	int64		v;

	*detail = NULL;
	if (!run_flat_parser(json, len, &p))
	{
		*detail = pstrdup("the token response is not a JSON object");
		return false;
	}
	if (p.access_token == NULL)
	{
		*detail = pstrdup("the token response has no \"access_token\"");
		return false;
	}
	*access_token = p.access_token;
	if (p.expires_in != NULL && parse_int64_token(p.expires_in, JSON_TOKEN_NUMBER, &v) && v > 0)
		*expires_in = v;
	else
		*expires_in = 3600;
	return true;
}

/*
 * OneLogin's documented error names (v2 bodies) and messages (v1, token
 * endpoint); see doc/ONELOGIN.md.  Only these ever reach a log.
 */
static const char *const known_errors[] = {
	/* v2 "name" */
	"BadRequestError", "UnauthorizedError", "ForbiddenError", "NotFoundError",
	"UnprocessableEntityError", "UnprocessableEntityFieldError", "TooManyRequestsError",
	"InternalServerError", "ServiceUnavailableError",
	/* v2 "message" and v1 "status.message" */
	"Unauthorized", "Forbidden", "Too Many Requests",
	"The resource with the given id could not be found",
	"Authentication Failure", "Authorization Information is incorrect",
	"grant_type is incorrect/absent", "No Route Exists",
	"Internal Server Error", "Service Unavailable"
};

static const char *
known_error(const char *s)
{
	int			i;

	if (s == NULL)
		return NULL;
	for (i = 0; i < lengthof(known_errors); i++)
		if (pg_strcasecmp(s, known_errors[i]) == 0)
			return known_errors[i];
	return NULL;
}

/*
 * A bounded reason for an error answer: OneLogin's error message or name
 * when it is one of the documented ones, else NULL.  The text returned is
 * always one of ours, never the server's, so a body that echoes the
 * request (client credentials, an access token) cannot reach the System
 * Log, scim.sync_status or the server log.
 */
const char *
onelogin_error_reason(const char *json, size_t len)
{
	FlatParse	p;
	const char *r;

	if (json == NULL || len == 0 || len > 64 * 1024 || !run_flat_parser(json, len, &p))
		return NULL;
	if ((r = known_error(p.message)) != NULL ||
		(r = known_error(p.status_message)) != NULL ||
		(r = known_error(p.name)) != NULL)
		return r;
	return NULL;
}
