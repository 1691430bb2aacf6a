/*-------------------------------------------------------------------------
 *
 * onelogin_map.c
 *		OneLogin user -> SCIM 2.0 User (JSON text), and the active policy.
 *
 * The mapping (externalId = OneLogin id):
 *
 *	 username (else email)	-> userName
 *	 firstname, lastname	-> name.givenName, name.familyName
 *	 email					-> emails[{value, type "work", primary true}]
 *	 title					-> title
 *	 phone					-> phoneNumbers[{value, type "work", primary true}]
 *	 company, department	-> enterprise extension organization, department
 *	 custom_attributes.<scim_provision.onelogin_user_type_attribute>
 *							-> userType (matched case-insensitively downstream)
 *	 status, state			-> active (policy below)
 *
 * An attribute OneLogin leaves empty (absent, null or "") is omitted, so the
 * upsert path keeps its stored value.  Active policy: a user is inactive when
 * its status is in scim_provision.onelogin_inactive_statuses (default "2",
 * Suspended) or its state is in scim_provision.onelogin_inactive_states
 * (default "2", Rejected); active otherwise.  Without status and state,
 * active is omitted (a new user is then active, an existing one keeps it).
 *
 * The scim._onelogin_map_user(jsonb) SQL function exposes the mapping for
 * previews and tests.
 *
 * src/onelogin_map.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "onelogin.h"

#define SCIM_CORE_USER	"urn:ietf:params:scim:schemas:core:2.0:User"
#define SCIM_ENTERPRISE	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

/* defined in worker_launcher.c */
extern char *scim_onelogin_user_type_attribute;
extern char *scim_onelogin_inactive_statuses;
extern char *scim_onelogin_inactive_states;

PG_FUNCTION_INFO_V1(scim_onelogin_map_user);

/*
 * Parse "2, 5,7" into a bit mask of codes 0..63.  The empty string is the
 * empty set.  Returns false on anything else.
 */
bool
onelogin_parse_code_list(const char *list, uint64 *mask)
{
	const char *p = list;

	*mask = 0;
	if (p == NULL)
		return true;
	p += strspn(p, " \t");
	if (*p == '\0')
		return true;			/* the empty set */
	for (;;)
	{
		int			v = 0;
		int			ndigits = 0;

		p += strspn(p, " \t");
		while (*p >= '0' && *p <= '9')
		{
			v = v * 10 + (*p - '0');
			if (v > 63)
				return false;
			p++;
			ndigits++;
		}
		if (ndigits == 0)
			return false;
		*mask |= UINT64CONST(1) << v;
		p += strspn(p, " \t");
		if (*p == '\0')
			return true;
		if (*p != ',')
			return false;
		p++;
	}
}

/*
 * Whether the user is active under the policy; false when OneLogin sent
 * neither status nor state (then the SCIM resource carries no "active").
 */
bool
onelogin_user_active(const OneLoginUser *user, const OneLoginActivePolicy *policy, bool *active)
{
	bool		known = false;

	*active = true;
	if (user->status >= 0)
	{
		known = true;
		if (user->status < 64 && (policy->inactive_statuses & (UINT64CONST(1) << user->status)))
			*active = false;
	}
	if (user->state >= 0)
	{
		known = true;
		if (user->state < 64 && (policy->inactive_states & (UINT64CONST(1) << user->state)))
			*active = false;
	}
	return known;
}

static void
append_member(StringInfo out, bool *first, const char *key)
{
	if (!*first)
		appendStringInfoChar(out, ',');
	*first = false;
	escape_json(out, key);
	appendStringInfoChar(out, ':');
}

static void
append_string_member(StringInfo out, bool *first, const char *key, const char *value)
{
	if (value == NULL)
		return;
	append_member(out, first, key);
	escape_json(out, value);
}

static void
append_primary_multi(StringInfo out, bool *first, const char *key, const char *value)
{
	if (value == NULL)
		return;
	append_member(out, first, key);
	appendStringInfoString(out, "[{\"value\":");
	escape_json(out, value);
	appendStringInfoString(out, ",\"type\":\"work\",\"primary\":true}]");
}

/*
 * Append the SCIM User for a OneLogin user to out (compact JSON).
 */
void
onelogin_user_to_scim(StringInfo out, const OneLoginUser *u, const OneLoginActivePolicy *policy)
{
	bool		first = true;
	bool		active;
	bool		enterprise = (u->company != NULL || u->department != NULL);
	const char *user_name = u->username ? u->username : u->email;

	appendStringInfoChar(out, '{');
	append_member(out, &first, "schemas");
	appendStringInfoString(out, "[\"" SCIM_CORE_USER "\"");
	if (enterprise)
		appendStringInfoString(out, ",\"" SCIM_ENTERPRISE "\"");
	appendStringInfoChar(out, ']');

	append_member(out, &first, "externalId");
	appendStringInfo(out, "\"" INT64_FORMAT "\"", u->id);
	append_string_member(out, &first, "userName", user_name);
	if (u->firstname != NULL || u->lastname != NULL)
	{
		bool		nfirst = true;

		append_member(out, &first, "name");
		appendStringInfoChar(out, '{');
		append_string_member(out, &nfirst, "givenName", u->firstname);
		append_string_member(out, &nfirst, "familyName", u->lastname);
		appendStringInfoChar(out, '}');
	}
	append_primary_multi(out, &first, "emails", u->email);
	append_string_member(out, &first, "title", u->title);
	append_primary_multi(out, &first, "phoneNumbers", u->phone);
	append_string_member(out, &first, "userType", u->user_type);
	if (onelogin_user_active(u, policy, &active))
	{
		append_member(out, &first, "active");
		appendStringInfoString(out, active ? "true" : "false");
	}
	if (enterprise)
	{
		bool		efirst = true;

		append_member(out, &first, SCIM_ENTERPRISE);
		appendStringInfoChar(out, '{');
		append_string_member(out, &efirst, "organization", u->company);
		append_string_member(out, &efirst, "department", u->department);
		appendStringInfoChar(out, '}');
	}
	appendStringInfoChar(out, '}');
}

/*
 * scim._onelogin_map_user(onelogin_user jsonb) RETURNS jsonb
 *
 * The SCIM User the worker would apply for this OneLogin user object,
 * under the current settings.
 */
Datum
scim_onelogin_map_user(PG_FUNCTION_ARGS)
{
	Jsonb	   *in = PG_GETARG_JSONB_P(0);
	char	   *text = JsonbToCString(NULL, &in->root, VARSIZE(in));
	OneLoginUserPage page;
	OneLoginActivePolicy policy;
	char	   *detail;
	StringInfoData out;

	memset(&page, 0, sizeof(page));
	if (!onelogin_parse_users(text, strlen(text), scim_onelogin_user_type_attribute, true,
							  &page, &detail))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid OneLogin user"),
				 errdetail("The object could not be read: %s.", detail)));
	if (!onelogin_parse_code_list(scim_onelogin_inactive_statuses, &policy.inactive_statuses) ||
		!onelogin_parse_code_list(scim_onelogin_inactive_states, &policy.inactive_states))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid OneLogin active policy"),
				 errhint("Set scim_provision.onelogin_inactive_statuses and scim_provision.onelogin_inactive_states to comma-separated lists of codes 0 to 63.")));

	initStringInfo(&out);
	onelogin_user_to_scim(&out, &page.users[0], &policy);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}
