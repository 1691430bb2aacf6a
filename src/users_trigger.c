/*-------------------------------------------------------------------------
 *
 * users_trigger.c
 *		The BEFORE INSERT OR UPDATE trigger of scim.users in C: the user
 *		type default and check, the approved-domain gate, the billable and
 *		deactivated states, created_at, updated_at and version.
 *
 * The rules are those src/sql/15_triggers.sql documents (and that the
 * PL/pgSQL version of this trigger implemented, message for message):
 *
 *	- id and workspace never change (23514, constraint users_immutable);
 *	- user_type NULL: the old value on update, the workspace's default on
 *	  insert; otherwise trimmed of spaces, matched case-insensitively and
 *	  stored in canonical case, Regular, External or Collaborator only
 *	  (23514, users_user_type_check);
 *	- on insert, and whenever user_name or email changes, the user must have
 *	  an address (an '@' in user_name, or an email), and every address it has
 *	  must be on an approved domain of its workspace, exactly as
 *	  scim.domain_approved decides (23514, users_approved_domain);
 *	- insert: billable (and billable_since) when active, deactivated_at
 *	  otherwise; version 1; created_at and updated_at now();
 *	- update: active true -> false releases the seat and sets
 *	  deactivated_at, false -> true makes the user billable again; the three
 *	  state columns are derived and direct edits of them are ignored;
 *	  version and updated_at move only when the row really changes (by each
 *	  column type's equality, as a record comparison does).
 *
 * Guard (#15): the function refuses any relation but scim.users (by OID)
 * and any column of the wrong type, it is not SECURITY DEFINER (the reads
 * it makes run with the writer's rights) and PUBLIC may not execute it.
 *
 * Why C: a bulk write (the OneLogin worker's pages, a data team's INSERT ...
 * SELECT) ran the PL/pgSQL trigger and, per row, an SPI query for the
 * workspace's default user type and one for its approved domains; that was
 * about a fifth of a sync's time.  Here the workspace's default user type
 * and approved domains are read once per statement: the cache is keyed by
 * the workspace, the local transaction, the command id and the statement
 * start, so anything that changes them (scim.approve_domain in the same
 * transaction bumps the command id; another transaction's commit is seen by
 * the next statement) is seen exactly where a per-row query would have seen
 * it, except for a commit that lands in the middle of one statement, which
 * that statement's remaining rows judge by the statement's first view.
 *
 * src/users_trigger.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/uuid.h"

#include "domain.h"

PG_FUNCTION_INFO_V1(scim_users_before_write);

/* ---------- the workspace's rules, cached per statement ---------- */

typedef struct WorkspaceRules
{
	bool		valid;
	LocalTransactionId lxid;
	CommandId	cid;
	TimestampTz stmt_start;
	char	   *workspace;
	char	   *default_user_type;	/* "Regular" when the workspace is unknown */
	int			ndomains;
	char	  **domains;
	bool	   *include_subdomains;
} WorkspaceRules;

static WorkspaceRules rules;
static MemoryContext rules_cxt = NULL;
static SPIPlanPtr plan_default_type = NULL;
static SPIPlanPtr plan_domains = NULL;

static SPIPlanPtr
keep_plan(SPIPlanPtr *slot, const char *sql)
{
	if (*slot == NULL)
	{
		Oid			argtypes[1] = {TEXTOID};
		SPIPlanPtr	p = SPI_prepare(sql, 1, argtypes);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = p;
	}
	return *slot;
}

static const WorkspaceRules *
workspace_rules(const char *workspace)
{
	LocalTransactionId lxid = MyProc->lxid;
	CommandId	cid = GetCurrentCommandId(false);
	TimestampTz stmt_start = GetCurrentStatementStartTimestamp();
	Datum		arg[1];
	MemoryContext oldcxt;
	int			ret;

	if (rules.valid && rules.lxid == lxid && rules.cid == cid && rules.stmt_start == stmt_start &&
		strcmp(rules.workspace, workspace) == 0)
		return &rules;

	rules.valid = false;
	if (rules_cxt == NULL)
		rules_cxt = AllocSetContextCreate(TopMemoryContext, "scim users trigger cache",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(rules_cxt);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	arg[0] = CStringGetTextDatum(workspace);

	ret = SPI_execute_plan(keep_plan(&plan_default_type,
									 "SELECT w.default_user_type FROM scim.workspaces w"
									 " WHERE w.name OPERATOR(pg_catalog.=) $1"),
						   arg, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	oldcxt = MemoryContextSwitchTo(rules_cxt);
	rules.workspace = pstrdup(workspace);
	rules.default_user_type = NULL;
	if (SPI_processed > 0)
		rules.default_user_type = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (rules.default_user_type == NULL)
		rules.default_user_type = pstrdup("Regular");
	MemoryContextSwitchTo(oldcxt);

	ret = SPI_execute_plan(keep_plan(&plan_domains,
									 "SELECT d.domain, d.include_subdomains FROM scim.approved_domains d"
									 " WHERE d.workspace OPERATOR(pg_catalog.=) $1"),
						   arg, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	oldcxt = MemoryContextSwitchTo(rules_cxt);
	rules.ndomains = (int) SPI_processed;
	rules.domains = palloc(sizeof(char *) * Max(rules.ndomains, 1));
	rules.include_subdomains = palloc(sizeof(bool) * Max(rules.ndomains, 1));
	for (int i = 0; i < rules.ndomains; i++)
	{
		bool		isnull;
		Datum		sub;

		rules.domains[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		sub = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
		rules.include_subdomains[i] = !isnull && DatumGetBool(sub);
		if (rules.domains[i] == NULL)
			rules.domains[i] = pstrdup("");
	}
	MemoryContextSwitchTo(oldcxt);
	SPI_finish();

	rules.lxid = lxid;
	rules.cid = cid;
	rules.stmt_start = stmt_start;
	rules.valid = true;
	return &rules;
}

/*
 * Whether the normalised domain is approved: listed itself, or a parent
 * with at least two labels is listed with include_subdomains (the rule of
 * scim.domain_approved).
 */
static bool
domain_is_approved(const WorkspaceRules *r, const char *domain)
{
	for (int i = 0; i < r->ndomains; i++)
		if (strcmp(r->domains[i], domain) == 0)
			return true;
	for (const char *p = strchr(domain, '.'); p != NULL; p = strchr(p + 1, '.'))
	{
		if (strchr(p + 1, '.') == NULL)
			break;
		for (int i = 0; i < r->ndomains; i++)
			if (r->include_subdomains[i] && strcmp(r->domains[i], p + 1) == 0)
				return true;
	}
	return false;
}

/* ---------- the relation and its columns ---------- */

enum
{
	C_ID, C_WORKSPACE, C_USER_NAME, C_EMAIL, C_USER_TYPE, C_ACTIVE, C_BILLABLE,
	C_BILLABLE_SINCE, C_DEACTIVATED_AT, C_CREATED_AT, C_UPDATED_AT, C_VERSION, NCOLS
};

static const char *const col_names[NCOLS] = {
	"id", "workspace", "user_name", "email", "user_type", "active", "billable",
	"billable_since", "deactivated_at", "created_at", "updated_at", "version"
};

/* The type each column must have: the code below reads and writes them as such. */
static const Oid col_types[NCOLS] = {
	UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, BOOLOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID
};

static int	col_attnum[NCOLS];
static Oid	users_relid = InvalidOid;

/*
 * The trigger fires on scim.users and nothing else (#15): it forms tuples
 * from the column layout it expects, so on any other relation (a table a
 * role with USAGE on schema scim built with the same column names) it
 * would write a bigint where a text is and crash the server.  scim.users
 * is resolved at the first call and again when the OID differs (the
 * extension dropped and created again in this session).
 */
static void
require_users_relation(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);

	if (relid == users_relid && OidIsValid(relid))
		return;
	users_relid = get_relname_relid("users", get_namespace_oid("scim", false));
	if (relid != users_relid || !OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("scim._users_before_write() fires only on scim.users, not on \"%s.%s\"",
						get_namespace_name(RelationGetNamespace(rel)), RelationGetRelationName(rel)),
				 errdetail("The trigger function derives the states of scim.users and reads its columns by their types.")));
}

/* Attribute numbers of the columns the rules use, checked by name and type against the descriptor. */
static void
resolve_columns(TupleDesc desc)
{
	for (int c = 0; c < NCOLS; c++)
	{
		int			a = col_attnum[c];
		Form_pg_attribute att;

		if (a <= 0 || a > desc->natts || TupleDescAttr(desc, a - 1)->attisdropped ||
			strcmp(NameStr(TupleDescAttr(desc, a - 1)->attname), col_names[c]) != 0)
		{
			a = SPI_fnumber(desc, col_names[c]);
			if (a <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("scim.users has no column \"%s\"", col_names[c])));
			col_attnum[c] = a;
		}
		att = TupleDescAttr(desc, a - 1);
		if (att->atttypid != col_types[c])
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of scim.users has type %s, not %s", col_names[c],
							format_type_be(att->atttypid), format_type_be(col_types[c]))));
	}
}

#define IDX(c)	(col_attnum[(c)] - 1)

static char *
text_or_null(Datum *values, bool *nulls, int c)
{
	return nulls[IDX(c)] ? NULL : TextDatumGetCString(values[IDX(c)]);
}

/* The canonical user type, or NULL (scim._canonical_user_type: lower(btrim(value))). */
static const char *
canonical_user_type(const char *value)
{
	static const char *const types[] = {"Regular", "External", "Collaborator"};
	size_t		len = strlen(value);

	while (len > 0 && *value == ' ')
		value++, len--;
	while (len > 0 && value[len - 1] == ' ')
		len--;
	for (int i = 0; i < lengthof(types); i++)
		if (strlen(types[i]) == len && pg_strncasecmp(value, types[i], len) == 0)
			return types[i];
	return NULL;
}

/* Whether two values of an attribute are equal by the type's equality (NULLs equal). */
static bool
attr_equal(Form_pg_attribute att, Datum a, bool anull, Datum b, bool bnull)
{
	TypeCacheEntry *tc;

	if (anull || bnull)
		return anull && bnull;
	if (datumIsEqual(a, b, att->attbyval, att->attlen))
		return true;
	tc = lookup_type_cache(att->atttypid, TYPECACHE_EQ_OPR_FINFO);
	if (!OidIsValid(tc->eq_opr_finfo.fn_oid))
		return false;
	return DatumGetBool(FunctionCall2Coll(&tc->eq_opr_finfo, att->attcollation, a, b));
}

static void
check_address(const WorkspaceRules *r, const char *addr, const char *workspace)
{
	char	   *domain = scim_email_domain_parse(addr, strlen(addr));

	if (domain != NULL && domain_is_approved(r, domain))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("e-mail domain of \"%s\" is not approved for workspace \"%s\"", addr,
					workspace ? workspace : "<NULL>"),
			 domain == NULL ? errdetail("The address is malformed.")
			 : errdetail("Domain \"%s\" is not on the workspace's approved list.", domain),
			 errhint("Approve the domain with scim.approve_domain(domain, workspace)."),
			 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "users_approved_domain")));
}

/*
 * scim._users_before_write() RETURNS trigger
 */
Datum
scim_users_before_write(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	bool		is_insert;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	Datum	   *values;
	bool	   *nulls;
	Datum	   *ovalues = NULL;
	bool	   *onulls = NULL;
	char	   *workspace;
	const WorkspaceRules *r = NULL;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	HeapTuple	result;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trig->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trig->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trig->tg_event) || TRIGGER_FIRED_BY_UPDATE(trig->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("scim._users_before_write() must be a BEFORE INSERT OR UPDATE row trigger")));

	require_users_relation(trig->tg_relation);
	desc = RelationGetDescr(trig->tg_relation);
	resolve_columns(desc);
	is_insert = TRIGGER_FIRED_BY_INSERT(trig->tg_event);
	newtup = is_insert ? trig->tg_trigtuple : trig->tg_newtuple;

	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(newtup, desc, values, nulls);
	if (!is_insert)
	{
		oldtup = trig->tg_trigtuple;
		ovalues = palloc(sizeof(Datum) * desc->natts);
		onulls = palloc(sizeof(bool) * desc->natts);
		heap_deform_tuple(oldtup, desc, ovalues, onulls);

		if (!attr_equal(TupleDescAttr(desc, IDX(C_ID)), values[IDX(C_ID)], nulls[IDX(C_ID)],
						ovalues[IDX(C_ID)], onulls[IDX(C_ID)]) ||
			!attr_equal(TupleDescAttr(desc, IDX(C_WORKSPACE)), values[IDX(C_WORKSPACE)],
						nulls[IDX(C_WORKSPACE)], ovalues[IDX(C_WORKSPACE)], onulls[IDX(C_WORKSPACE)]))
		{
			char	   *oid = onulls[IDX(C_ID)] ? "<NULL>"
				: DatumGetCString(DirectFunctionCall1(uuid_out, ovalues[IDX(C_ID)]));
			char	   *ows = onulls[IDX(C_WORKSPACE)] ? "<NULL>"
				: TextDatumGetCString(ovalues[IDX(C_WORKSPACE)]);

			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("a user's id and workspace cannot change"),
					 errdetail("User %s belongs to workspace \"%s\".", oid, ows),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "users_immutable")));
		}
		values[IDX(C_CREATED_AT)] = ovalues[IDX(C_CREATED_AT)];
		nulls[IDX(C_CREATED_AT)] = onulls[IDX(C_CREATED_AT)];
	}
	workspace = text_or_null(values, nulls, C_WORKSPACE);

	/*
	 * The column is NOT NULL, but a BEFORE trigger runs before that check:
	 * say what the constraint would, not "workspace <NULL>" further down.
	 */
	if (workspace == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null value in column \"workspace\" of relation \"users\" violates not-null constraint"),
				 errdetail("Every user belongs to a workspace; leave the column out to use \"default\"."),
				 errtablecol(trig->tg_relation, IDX(C_WORKSPACE) + 1)));

	/* user type: default from the workspace, canonical case, one of three */
	if (nulls[IDX(C_USER_TYPE)])
	{
		if (!is_insert)
		{
			values[IDX(C_USER_TYPE)] = ovalues[IDX(C_USER_TYPE)];
			nulls[IDX(C_USER_TYPE)] = onulls[IDX(C_USER_TYPE)];
		}
		else
		{
			const char *dflt = "Regular";

			if (workspace != NULL)
			{
				r = workspace_rules(workspace);
				dflt = r->default_user_type;
			}
			values[IDX(C_USER_TYPE)] = CStringGetTextDatum(dflt);
			nulls[IDX(C_USER_TYPE)] = false;
		}
	}
	else
	{
		char	   *given = TextDatumGetCString(values[IDX(C_USER_TYPE)]);
		const char *canonical = canonical_user_type(given);

		if (canonical == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("invalid user type \"%s\"", given),
					 errdetail("A user type is Regular, External or Collaborator."),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "users_user_type_check")));
		if (strcmp(given, canonical) != 0)
			values[IDX(C_USER_TYPE)] = CStringGetTextDatum(canonical);
	}

	/* approved domains, on insert and whenever user_name or email changes */
	if (is_insert ||
		!attr_equal(TupleDescAttr(desc, IDX(C_USER_NAME)), values[IDX(C_USER_NAME)],
					nulls[IDX(C_USER_NAME)], ovalues[IDX(C_USER_NAME)], onulls[IDX(C_USER_NAME)]) ||
		!attr_equal(TupleDescAttr(desc, IDX(C_EMAIL)), values[IDX(C_EMAIL)], nulls[IDX(C_EMAIL)],
					ovalues[IDX(C_EMAIL)], onulls[IDX(C_EMAIL)]))
	{
		char	   *user_name = text_or_null(values, nulls, C_USER_NAME);
		char	   *email = text_or_null(values, nulls, C_EMAIL);
		bool		name_is_address = user_name != NULL && strchr(user_name, '@') != NULL;

		if (email == NULL && user_name != NULL && !name_is_address)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("user \"%s\" has no e-mail address", user_name),
					 errdetail("Only users with an e-mail address on an approved domain are provisioned."),
					 errhint("Send an e-mail address as userName or as the primary email."),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "users_approved_domain")));
		if (name_is_address || email != NULL)
		{
			static const WorkspaceRules none;

			if (workspace != NULL && r == NULL)
				r = workspace_rules(workspace);
			if (name_is_address)
				check_address(workspace ? r : &none, user_name, workspace);
			if (email != NULL)
				check_address(workspace ? r : &none, email, workspace);
		}
	}

	/* states: billable on provisioning, deactivation keeps the row */
	if (is_insert)
	{
		bool		active = !nulls[IDX(C_ACTIVE)] && DatumGetBool(values[IDX(C_ACTIVE)]);

		values[IDX(C_BILLABLE)] = BoolGetDatum(active);
		nulls[IDX(C_BILLABLE)] = false;
		values[IDX(C_BILLABLE_SINCE)] = TimestampTzGetDatum(now);
		nulls[IDX(C_BILLABLE_SINCE)] = !active;
		values[IDX(C_DEACTIVATED_AT)] = TimestampTzGetDatum(now);
		nulls[IDX(C_DEACTIVATED_AT)] = active;
		values[IDX(C_VERSION)] = Int64GetDatum(1);
		nulls[IDX(C_VERSION)] = false;
		values[IDX(C_CREATED_AT)] = TimestampTzGetDatum(now);
		nulls[IDX(C_CREATED_AT)] = false;
		values[IDX(C_UPDATED_AT)] = TimestampTzGetDatum(now);
		nulls[IDX(C_UPDATED_AT)] = false;
	}
	else
	{
		bool		old_active = !onulls[IDX(C_ACTIVE)] && DatumGetBool(ovalues[IDX(C_ACTIVE)]);
		bool		old_null = onulls[IDX(C_ACTIVE)];
		bool		new_null = nulls[IDX(C_ACTIVE)];
		bool		new_active = !new_null && DatumGetBool(values[IDX(C_ACTIVE)]);
		bool		distinct = false;

		if (!old_null && old_active && !new_null && !new_active)
		{
			values[IDX(C_BILLABLE)] = BoolGetDatum(false);
			nulls[IDX(C_BILLABLE)] = false;
			values[IDX(C_DEACTIVATED_AT)] = TimestampTzGetDatum(now);
			nulls[IDX(C_DEACTIVATED_AT)] = false;
			values[IDX(C_BILLABLE_SINCE)] = ovalues[IDX(C_BILLABLE_SINCE)];
			nulls[IDX(C_BILLABLE_SINCE)] = onulls[IDX(C_BILLABLE_SINCE)];
		}
		else if (!old_null && !old_active && !new_null && new_active)
		{
			values[IDX(C_BILLABLE)] = BoolGetDatum(true);
			nulls[IDX(C_BILLABLE)] = false;
			values[IDX(C_BILLABLE_SINCE)] = TimestampTzGetDatum(now);
			nulls[IDX(C_BILLABLE_SINCE)] = false;
			nulls[IDX(C_DEACTIVATED_AT)] = true;
		}
		else
		{
			/* the states are derived; direct edits of them are ignored */
			int			keep[3] = {C_BILLABLE, C_BILLABLE_SINCE, C_DEACTIVATED_AT};

			for (int k = 0; k < 3; k++)
			{
				values[IDX(keep[k])] = ovalues[IDX(keep[k])];
				nulls[IDX(keep[k])] = onulls[IDX(keep[k])];
			}
		}

		/* NEW IS DISTINCT FROM OLD, column by column */
		for (int i = 0; i < desc->natts && !distinct; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			/* generated columns are computed after this trigger */
			if (att->attisdropped || att->attgenerated)
				continue;
			if (!attr_equal(att, values[i], nulls[i], ovalues[i], onulls[i]))
				distinct = true;
		}
		if (distinct)
		{
			int64		version;

			if (onulls[IDX(C_VERSION)])
				nulls[IDX(C_VERSION)] = true;
			else
			{
				if (pg_add_s64_overflow(DatumGetInt64(ovalues[IDX(C_VERSION)]), 1, &version))
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("bigint out of range")));
				values[IDX(C_VERSION)] = Int64GetDatum(version);
				nulls[IDX(C_VERSION)] = false;
			}
			/* greatest(now(), OLD.updated_at) */
			if (!onulls[IDX(C_UPDATED_AT)] &&
				DatumGetTimestampTz(ovalues[IDX(C_UPDATED_AT)]) > now)
				values[IDX(C_UPDATED_AT)] = ovalues[IDX(C_UPDATED_AT)];
			else
				values[IDX(C_UPDATED_AT)] = TimestampTzGetDatum(now);
			nulls[IDX(C_UPDATED_AT)] = false;
		}
		else
		{
			values[IDX(C_VERSION)] = ovalues[IDX(C_VERSION)];
			nulls[IDX(C_VERSION)] = onulls[IDX(C_VERSION)];
			values[IDX(C_UPDATED_AT)] = ovalues[IDX(C_UPDATED_AT)];
			nulls[IDX(C_UPDATED_AT)] = onulls[IDX(C_UPDATED_AT)];
		}
	}

	result = heap_form_tuple(desc, values, nulls);
	/* keep the identity of the row the executor handed us */
	result->t_self = newtup->t_self;
	result->t_tableOid = newtup->t_tableOid;
	return PointerGetDatum(result);
}
