/*-------------------------------------------------------------------------
 *
 * onelogin.h
 *		OneLogin pull: the libcurl client, the JSON page parsers and the
 *		mapping of a OneLogin user onto a SCIM 2.0 User.
 *
 * onelogin.c holds the HTTP client (one easy handle driven through a multi
 * handle, so transfers stay interruptible) and the parsers for the token,
 * users (v2, bare array), events (v1 envelope) and error bodies; it never
 * throws from inside libcurl and never keeps secrets beyond a request.
 * onelogin_map.c turns a parsed user into SCIM JSON text.  worker_*.c drive
 * both from the background worker.
 *
 * src/onelogin.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_ONELOGIN_H
#define SCIM_ONELOGIN_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

/* Largest response body accepted (a page of 1000 users is about 0.5 MB). */
#define ONELOGIN_MAX_BODY		(64 * 1024 * 1024)

/* Custom attribute holding the user type when nothing else is configured. */
#define ONELOGIN_DEFAULT_USER_TYPE_ATTRIBUTE "usertype"

/* ---------- HTTP client (onelogin.c) ---------- */

typedef struct OneLoginRequest
{
	const char *url;
	bool		post;			/* POST (token endpoint) rather than GET */
	const char *body;			/* POST body, application/json */
	const char *bearer;			/* access token for resource calls, or NULL */
	const char *basic_user;		/* client credentials for the token call */
	const char *basic_password;
	bool		allow_http;		/* plain http allowed besides https */
	int			connect_timeout_ms;
	int			timeout_ms;
} OneLoginRequest;

typedef struct OneLoginResponse
{
	long		status;			/* HTTP status; 0 when no response arrived */
	bool		transport_failed;	/* connect, TLS, timeout, reset, ... */
	bool		timed_out;
	bool		interrupted;	/* aborted for a pending die or cancel */
	bool		too_large;		/* body exceeded ONELOGIN_MAX_BODY */
	char		error[256];		/* libcurl's message when transport_failed */
	char	   *body;			/* NUL-terminated, in the caller's context */
	size_t		body_len;
	char	   *after_cursor;	/* After-Cursor header, NULL when absent/empty */
	int			retry_after;	/* Retry-After in seconds, -1 when absent */
	int			ratelimit_reset;	/* X-RateLimit-Reset seconds, -1 absent */
	int			ratelimit_remaining;	/* X-RateLimit-Remaining, -1 absent */
	int			total_count;	/* Total-Count header, -1 absent */
	double		seconds;		/* total transfer time */
} OneLoginResponse;

extern void onelogin_http_init(void);
extern void onelogin_http_perform(const OneLoginRequest *req, OneLoginResponse *resp);
extern void onelogin_url_append_param(StringInfo url, const char *name, const char *value);
extern bool onelogin_url_is_http(const char *url);

/* ---------- JSON parsing (onelogin.c) ---------- */

typedef struct OneLoginUser
{
	int64		id;
	char	   *username;		/* NULL when absent, null or "" */
	char	   *email;
	char	   *firstname;
	char	   *lastname;
	char	   *title;
	char	   *phone;
	char	   *company;
	char	   *department;
	char	   *user_type;		/* custom_attributes.<user type shortname> */
	char	   *updated_at;		/* ISO-8601 as sent; NULL if absent/invalid */
	TimestampTz updated_ts;		/* updated_at parsed (valid when updated_at) */
	int			status;			/* -1 when absent */
	int			state;			/* -1 when absent */
} OneLoginUser;

typedef struct OneLoginUserPage
{
	OneLoginUser *users;
	int			nusers;
	int			cap;
} OneLoginUserPage;

typedef struct OneLoginEvent
{
	int64		id;
	int			event_type_id;	/* -1 when absent */
	int64		user_id;		/* -1 when absent */
	char	   *created_at;		/* ISO-8601; NULL if absent/invalid */
	TimestampTz created_ts;		/* created_at parsed (valid when created_at) */
} OneLoginEvent;

typedef struct OneLoginEventPage
{
	OneLoginEvent *events;
	int			nevents;
	int			cap;
	char	   *after_cursor;	/* pagination.after_cursor, NULL at the end */
} OneLoginEventPage;

/*
 * Parsers return false and set *detail (a lower-case sentence fragment,
 * palloc'd) on malformed input; nothing is thrown for bad input.  The token
 * parser's detail never quotes the body, which holds the access token.
 */
extern bool onelogin_parse_users(const char *json, size_t len, const char *user_type_attr,
								 bool single_object, OneLoginUserPage *page, char **detail);
extern bool onelogin_parse_events(const char *json, size_t len, OneLoginEventPage *page,
								  char **detail);
extern bool onelogin_parse_token(const char *json, size_t len, char **access_token,
								 int64 *expires_in, char **detail);
extern const char *onelogin_error_reason(const char *json, size_t len);
extern bool onelogin_parse_timestamp(const char *s, TimestampTz *out);
extern void onelogin_format_timestamp(TimestampTz ts, char *buf, size_t buflen);

/* ---------- Mapping to SCIM (onelogin_map.c) ---------- */

/* OneLogin status and state codes (0..63) that make a user inactive. */
typedef struct OneLoginActivePolicy
{
	uint64		inactive_statuses;
	uint64		inactive_states;
} OneLoginActivePolicy;

extern bool onelogin_parse_code_list(const char *list, uint64 *mask);
extern bool onelogin_user_active(const OneLoginUser *user, const OneLoginActivePolicy *policy,
								 bool *active);
extern void onelogin_user_to_scim(StringInfo out, const OneLoginUser *user,
								  const OneLoginActivePolicy *policy);

#endif							/* SCIM_ONELOGIN_H */
