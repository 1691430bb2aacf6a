/*-------------------------------------------------------------------------
 *
 * worker_state.c
 *		OneLogin worker state: short transactions with SPI, saved plans
 *		(re-prepared when the extension is re-created), reading the
 *		connections, and committing outcomes to scim.onelogin_state (success,
 *		failure with back-off, rate-limit pause) and the System Log.
 *
 * src/worker_state.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "commands/extension.h"
#include "common/pg_prng.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "worker.h"

static Oid	plans_extension_oid = InvalidOid;

/*
 * Every saved plan of the worker, wherever its slot lives: a re-created
 * extension has new objects, so all of them are freed and prepared again.
 */
#define MAX_PLANS 64
static SPIPlanPtr *plan_slots[MAX_PLANS];
static int	nplan_slots = 0;

/* plans of this file */
static SPIPlanPtr plan_load_conns;
static SPIPlanPtr plan_lock_state;
static SPIPlanPtr plan_log_attempt;
static SPIPlanPtr plan_success;
static SPIPlanPtr plan_failure;
static SPIPlanPtr plan_pause;

Datum
text_datum(const char *s)
{
	return PointerGetDatum(cstring_to_text(s));
}

Datum
int8_array(const int64 *vals, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Int64GetDatum(vals[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* text[] from C strings, NULL entries becoming SQL NULLs */
Datum
text_array(char *const *vals, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;

	for (i = 0; i < n; i++)
	{
		nulls[i] = (vals[i] == NULL);
		d[i] = nulls[i] ? (Datum) 0 : text_datum(vals[i]);
	}
	return PointerGetDatum(construct_md_array(d, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

char *
get_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

int64
get_int8(HeapTuple tup, TupleDesc desc, int col, int64 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? dflt : DatumGetInt64(d);
}

int32
get_int4(HeapTuple tup, TupleDesc desc, int col, int32 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? dflt : DatumGetInt32(d);
}

TimestampTz
get_ts(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL_TS : DatumGetTimestampTz(d);
}

void
ts_param(TimestampTz ts, Datum *value, char *null)
{
	*value = TimestampTzGetDatum(ts);
	*null = (ts == NULL_TS) ? 'n' : ' ';
}

void
text_param(const char *s, Datum *value, char *null)
{
	*value = s ? text_datum(s) : (Datum) 0;
	*null = s ? ' ' : 'n';
}

/* ---------------------------------------------------------------------
 * Transactions and plans
 * ---------------------------------------------------------------------
 */

static MemoryContext tx_caller_cxt = NULL;

/* Lock a table of ours without waiting; false if it is missing or busy. */
static bool
lock_table(Oid nsp, const char *relname)
{
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid))
		return false;
	if (!ConditionalLockRelationOid(relid, AccessShareLock))
		return false;
	/* it might have been dropped while we were getting the lock */
	return get_relname_relid(relname, nsp) == relid;
}

/*
 * Whether scim_provision is installed and its tables usable right now.
 * Called at the start of every transaction; never waits for a lock, so a
 * DROP EXTENSION (or anything else holding an exclusive lock) simply makes
 * the worker idle.
 */
static bool
extension_ready(void)
{
	Oid			ext = get_extension_oid("scim_provision", true);
	Oid			nsp;
	int			i;

	if (!OidIsValid(ext))
		return false;
	nsp = get_namespace_oid("scim", true);
	if (!OidIsValid(nsp))
		return false;
	if (!lock_table(nsp, "onelogin_connections") || !lock_table(nsp, "onelogin_state") ||
		!lock_table(nsp, "onelogin_users") || !lock_table(nsp, "users") ||
		!lock_table(nsp, "provisioning_log"))
		return false;

	/* a re-created extension has new objects: re-plan everything */
	if (ext != plans_extension_oid)
	{
		for (i = 0; i < nplan_slots; i++)
		{
			if (*plan_slots[i] != NULL)
				SPI_freeplan(*plan_slots[i]);
			*plan_slots[i] = NULL;
		}
		plans_extension_oid = ext;
	}
	return true;
}

/*
 * Start a transaction with a snapshot and SPI.  Returns false (nothing
 * open) when the extension is not usable.
 */
bool
tx_begin(void)
{
	tx_caller_cxt = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	MemoryContextSwitchTo(tx_caller_cxt);
	if (!extension_ready())
	{
		AbortCurrentTransaction();
		MemoryContextSwitchTo(tx_caller_cxt);
		return false;
	}
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	return true;
}

void
tx_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(tx_caller_cxt);
	pgstat_report_stat(false);
	debug_query_string = NULL;
}

void
tx_abort(void)
{
	AbortCurrentTransaction();
	MemoryContextSwitchTo(tx_caller_cxt);
	debug_query_string = NULL;
}

SPIPlanPtr
get_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	int			i;

	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = plan;
		for (i = 0; i < nplan_slots && plan_slots[i] != slot; i++)
			;
		if (i == nplan_slots)
		{
			if (nplan_slots >= MAX_PLANS)
				elog(ERROR, "too many saved plans in the scim_provision worker");
			plan_slots[nplan_slots++] = slot;
		}
	}
	return *slot;
}

int
run_plan(SPIPlanPtr plan, const char *sql, Datum *values, const char *nulls, int expect)
{
	int			rc;

	debug_query_string = sql;
	rc = SPI_execute_plan(plan, values, nulls, false, 0);
	if (rc != expect)
		elog(ERROR, "unexpected SPI result %s for \"%s\"", SPI_result_code_string(rc), sql);
	return rc;
}

/*
 * Run a plan inside a subtransaction.  On error the subtransaction is
 * rolled back, *errmsg set and false returned; the caller's transaction
 * stays usable.  Cancels are re-thrown.
 */
bool
run_guarded(SPIPlanPtr plan, const char *sql, Datum *values, const char *nulls, char **errmsg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = false;

	*errmsg = NULL;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		run_plan(plan, sql, values, nulls, SPI_OK_SELECT);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			PG_RE_THROW();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		*errmsg = pstrdup(edata->message ? edata->message : "unknown error");
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return ok;
}

/* ---------------------------------------------------------------------
 * State: loading connections, recording outcomes
 * ---------------------------------------------------------------------
 */

#define SQL_LOAD_CONNS \
	"SELECT c.workspace, c.base_url, s.config_version, s.wake_seq, s.handled_seq," \
	" s.last_attempt_at, s.backoff_until, s.consecutive_failures, s.run_cursor," \
	" s.run_kind OPERATOR(pg_catalog.=) 'full', s.run_id, s.run_since, s.run_started_at," \
	" s.users_high_water, s.verify_run, s.last_reconcile_at, s.events_cursor, s.events_since," \
	" s.events_high_water, s.run_pages, s.run_total, s.run_shifted, s.run_relists" \
	" FROM scim.onelogin_connections c" \
	" JOIN scim.onelogin_state s ON s.workspace OPERATOR(pg_catalog.=) c.workspace" \
	" WHERE s.config_version OPERATOR(pg_catalog.=) c.config_version" \
	" ORDER BY c.workspace"

/* Read every connection (in CycleContext); false if the extension is not ready. */
bool
load_connections(List **conns)
{
	uint64		i;

	*conns = NIL;
	if (!tx_begin())
		return false;
	run_plan(get_plan(&plan_load_conns, SQL_LOAD_CONNS, 0, NULL), SQL_LOAD_CONNS, NULL, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(CycleContext);
		Conn	   *c = palloc0(sizeof(Conn));
		char	   *ws = get_text(tup, desc, 1);
		bool		isnull;

		strlcpy(c->workspace, ws, sizeof(c->workspace));
		c->base_url = get_text(tup, desc, 2);
		c->config_version = get_int8(tup, desc, 3, 0);
		c->wake_seq = get_int8(tup, desc, 4, 0);
		c->handled_seq = get_int8(tup, desc, 5, 0);
		c->last_attempt_at = get_ts(tup, desc, 6);
		c->backoff_until = get_ts(tup, desc, 7);
		c->failures = get_int4(tup, desc, 8, 0);
		c->run_cursor = get_text(tup, desc, 9);
		c->run_full = DatumGetBool(SPI_getbinval(tup, desc, 10, &isnull)) && !isnull;
		c->run_id = get_int8(tup, desc, 11, 0);
		c->run_since = get_ts(tup, desc, 12);
		c->run_started_at = get_ts(tup, desc, 13);
		c->users_high_water = get_ts(tup, desc, 14);
		c->verify_run = get_int8(tup, desc, 15, -1);
		c->last_reconcile_at = get_ts(tup, desc, 16);
		c->events_cursor = get_text(tup, desc, 17);
		c->events_since = get_ts(tup, desc, 18);
		c->events_high_water = get_ts(tup, desc, 19);
		c->run_pages = get_int4(tup, desc, 20, 0);
		c->run_total = get_int8(tup, desc, 21, -1);
		c->run_shifted = DatumGetBool(SPI_getbinval(tup, desc, 22, &isnull)) && !isnull;
		c->run_relists = get_int4(tup, desc, 23, 0);
		*conns = lappend(*conns, c);
		MemoryContextSwitchTo(old);
	}
	tx_commit();
	return true;
}

#define SQL_LOCK_STATE \
	"SELECT s.config_version FROM scim.onelogin_state s" \
	" WHERE s.workspace OPERATOR(pg_catalog.=) $1 FOR UPDATE"

/*
 * Inside a transaction: lock the connection's state row and check that it
 * was not reconfigured (or removed) since the cycle started.
 */
bool
lock_state(Conn *c)
{
	Datum		v[1] = {text_datum(c->workspace)};

	run_plan(PLAN(plan_lock_state, SQL_LOCK_STATE, TEXTOID), SQL_LOCK_STATE, v, NULL, SPI_OK_SELECT);
	return SPI_processed == 1 &&
		get_int8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, -1) == c->config_version;
}

#define SQL_LOG_ATTEMPT \
	"SELECT scim.log_attempt('onelogin', $2, $3, NULL, $4, $5, NULL, $6, $1)"

void
log_attempt(Conn *c, const char *method, const char *path, const char *user_name,
			int status, const char *detail)
{
	Datum		v[6];
	char		n[7] = "      ";

	v[0] = text_datum(c->workspace);
	v[1] = text_datum(method);
	v[2] = text_datum(path);
	text_param(user_name, &v[3], &n[3]);
	v[4] = Int32GetDatum(status);
	v[5] = text_datum(detail);
	run_plan(PLAN(plan_log_attempt, SQL_LOG_ATTEMPT, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID),
			 SQL_LOG_ATTEMPT, v, n, SPI_OK_SELECT);
}

/*
 * A sync request (wake_seq) counts as handled only by a users run that
 * started after it: a run resumed or begun before scim.sync_now() may have
 * passed the changed users already, so another run follows.
 */
#define SQL_SUCCESS \
	"UPDATE scim.onelogin_state SET state = 'idle', last_attempt_at = pg_catalog.now()," \
	" last_success_at = pg_catalog.now(), consecutive_failures = 0, backoff_until = NULL," \
	" backoff_reason = NULL," \
	" handled_seq = greatest(handled_seq, LEAST($2, coalesce(run_wake_seq, $2)))," \
	" syncs_completed = syncs_completed OPERATOR(pg_catalog.+) 1" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1 AND config_version OPERATOR(pg_catalog.=) $3"

void
record_success(Conn *c)
{
	Datum		v[3];

	if (!tx_begin())
		return;
	v[0] = text_datum(c->workspace);
	v[1] = Int64GetDatum(c->wake_seq);
	v[2] = Int64GetDatum(c->config_version);
	run_plan(PLAN(plan_success, SQL_SUCCESS, TEXTOID, INT8OID, INT8OID), SQL_SUCCESS, v, NULL, SPI_OK_UPDATE);
	tx_commit();
	c->failures = 0;
}

#define SQL_FAILURE \
	"UPDATE scim.onelogin_state SET state = $2, last_attempt_at = pg_catalog.now()," \
	" last_error = $3, last_error_at = pg_catalog.now()," \
	" consecutive_failures = consecutive_failures OPERATOR(pg_catalog.+) $8," \
	" backoff_until = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+)" \
	"   pg_catalog.make_interval(secs => $4::pg_catalog.float8 OPERATOR(pg_catalog./) 1000)," \
	" backoff_reason = $5, handled_seq = greatest(handled_seq, $6)" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1 AND config_version OPERATOR(pg_catalog.=) $7"

#define SQL_PAUSE \
	"UPDATE scim.onelogin_state SET state = 'backoff'," \
	" backoff_until = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+)" \
	"   pg_catalog.make_interval(secs => $2::pg_catalog.float8 OPERATOR(pg_catalog./) 1000)," \
	" backoff_reason = 'rate_limit'" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1 AND config_version OPERATOR(pg_catalog.=) $3"

/* Exponential back-off with jitter: 1 s, 2 s, 4 s, ... up to max_backoff. */
static int64
backoff_ms(int failures)
{
	int64		cap = (int64) scim_max_backoff * 1000;
	int64		delay = INT64CONST(1000) << Min(Max(failures - 1, 0), 30);

	delay = Min(delay, cap);
	/* "equal jitter": half fixed, half random */
	return delay / 2 + (int64) (pg_prng_double(&pg_global_prng_state) * (double) (delay / 2 + 1));
}

/*
 * Record a failed step: state, last error, back-off, and one System Log row
 * (source 'onelogin').  status is the HTTP status, or 502/504 for transport
 * failures and malformed responses.  wait_s >= 0 is a wait OneLogin asked
 * for (Retry-After); detail must not contain secrets.
 *
 * Only failures count towards the exponential back-off: a 429 waits for
 * what OneLogin said (Retry-After, else X-RateLimit-Reset, else the current
 * step of the back-off) and leaves the count alone, and every page that
 * succeeds resets it (reset_failures), so isolated errors on a long sync
 * each wait about the base delay.
 */
void
record_failure(Conn *c, FailKind kind, int status, const char *method, const char *path,
			   int wait_s, const char *detail)
{
	int64		delay;
	const char *state;
	const char *reason;
	char	   *full;
	Datum		v[8];
	bool		counts = (kind != FAIL_RATE_LIMIT && kind != FAIL_PAUSE);

	if (!counts)
		delay = (wait_s >= 0) ? (int64) Min(Max(wait_s, 1), MAX_RATE_LIMIT_WAIT_S) * 1000
			: backoff_ms(Max(c->failures, 1));
	else
		delay = backoff_ms(c->failures + 1);

	if (kind == FAIL_PAUSE)
	{
		if (!tx_begin())
			return;
		v[0] = text_datum(c->workspace);
		v[1] = Int64GetDatum(delay);
		v[2] = Int64GetDatum(c->config_version);
		run_plan(PLAN(plan_pause, SQL_PAUSE, TEXTOID, INT8OID, INT8OID), SQL_PAUSE, v, NULL, SPI_OK_UPDATE);
		tx_commit();
		return;
	}

	state = (kind == FAIL_AUTH || kind == FAIL_PERMANENT) ? "failing" : "backoff";
	reason = (kind == FAIL_RATE_LIMIT) ? "rate_limit" : (kind == FAIL_AUTH ? "auth" : "error");
	full = psprintf("%s; next attempt in %.1f s", detail, (double) delay / 1000.0);

	ereport(LOG,
			(errmsg("OneLogin sync of workspace \"%s\" failed: %s", c->workspace, full)));

	if (!tx_begin())
		return;
	v[0] = text_datum(c->workspace);
	v[1] = text_datum(state);
	v[2] = text_datum(full);
	v[3] = Int64GetDatum(delay);
	v[4] = text_datum(reason);
	v[5] = Int64GetDatum(c->wake_seq);
	v[6] = Int64GetDatum(c->config_version);
	v[7] = Int32GetDatum(counts ? 1 : 0);
	run_plan(PLAN(plan_failure, SQL_FAILURE, TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID, INT8OID, INT8OID,
				  INT4OID),
			 SQL_FAILURE, v, NULL, SPI_OK_UPDATE);
	log_attempt(c, method, path, NULL, status, full);
	tx_commit();
	if (counts)
		c->failures++;
}

