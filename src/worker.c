/*-------------------------------------------------------------------------
 *
 * worker.c
 *		Background worker that pulls users from OneLogin: lifecycle, GUCs,
 *		registration, scheduling loop and the exactly-once sync steps.
 *
 * Processes.  Loaded through shared_preload_libraries, _PG_init registers a
 * "scim_provision launcher" (skipped in binary-upgrade mode).  Both the
 * launcher and the worker start only once recovery has finished, so a
 * standby runs neither and a promoted standby starts them.  The launcher
 * connects to no database: every 10 s (or when woken) it looks up
 * scim_provision.database in pg_database and, once that database exists,
 * starts one dynamic "scim_provision worker" connected to it, restarting it
 * 5 s after it stops.  A missing database is reported once and otherwise
 * waited for quietly; there is no FATAL restart loop.  One worker serves
 * every OneLogin connection (workspace) of that database, one after the
 * other: a pull is a few requests a minute per connection, far below what
 * one process handles, and one process keeps the rate limit of a shared
 * OneLogin account in one place.
 *
 * Each cycle the worker opens a short transaction, checks that the
 * extension and its tables exist, taking their locks only conditionally
 * (so DROP EXTENSION is never blocked by an idle worker and the worker never
 * queues behind it), reads the connections and runs the ones that are due:
 * never synced, woken by scim.sync_now/onelogin_connect, resuming an
 * unfinished run, back-off elapsed, or scim_provision.sync_interval seconds
 * after the last attempt.  Then it sleeps on its latch until the next one
 * is due; SIGHUP reloads the settings and wakes it.
 *
 * A sync of one connection:
 *	1. users: GET /api/2/users?fields=...&limit=...[&updated_since=high-water
 *	   mark minus scim_provision.sync_overlap] following After-Cursor.  The
 *	   first run and every scim_provision.reconcile_interval a "full" run
 *	   without updated_since marks every id it sees;
 *	2. reconciliation (after a full run): every mapped id the full run did
 *	   not see is checked with GET /api/2/users/{id}; 404 deprovisions it,
 *	   200 applies it (a page shifted under the cursor);
 *	3. deletions: GET /api/1/events?event_type_id=17&since=... following
 *	   pagination.after_cursor; each deleted user we provisioned goes through
 *	   scim.deprovision_user.
 *
 * Exactly once.  No transaction is open during HTTP.  Each page is applied
 * in one transaction together with the cursor of the next page, the run's
 * high-water mark and the counters in scim.onelogin_state, so a crash or
 * kill -9 resumes at the first uncommitted page.  scim.onelogin_users keeps
 * (OneLogin id, updated_at, outcome) of every user applied; a user whose
 * updated_at is unchanged is not applied again, which makes the overlap
 * window and a replayed page no-ops (a refused or failed user is retried by
 * full runs).  scim.sync_now() is satisfied only by a users run that starts
 * after it, so a change made before the call is never skipped by a run
 * already past that user's page.
 *
 * Faults.  429 waits for Retry-After (or X-RateLimit-Reset); 5xx, timeouts,
 * transport errors and malformed or truncated JSON back off exponentially
 * with jitter up to scim_provision.max_backoff, and the page is fetched
 * again (nothing of it was applied).  The access token is kept in memory
 * until it expires and minted again once on a 401; a 401 on a fresh token,
 * refused credentials or another 4xx mark the connection "failing" (retried
 * with back-off).  Every failure is written to the System Log with source
 * 'onelogin' through scim.log_attempt; every user attempt is logged by
 * scim.provision_user / scim.deprovision_user themselves.
 *
 * Secrets.  client_secret is read from scim.onelogin_connections (no grants)
 * only to mint a token and wiped right after; the token lives only in this
 * process's memory.  Neither is ever put in a log line, an error, the
 * System Log or pg_stat_activity (which shows the phase only).
 *
 * src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

/* These are always necessary for a bgworker */
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"

/* these headers are used by this particular worker's code */
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "utils/wait_event.h"

#include "onelogin.h"
#include "scim_provision.h"

PGDLLEXPORT void scim_launcher_main(Datum main_arg) pg_attribute_noreturn();
PGDLLEXPORT void scim_worker_main(Datum main_arg) pg_attribute_noreturn();

PG_FUNCTION_INFO_V1(scim_worker_check);
PG_FUNCTION_INFO_V1(scim_worker_wake);
PG_FUNCTION_INFO_V1(scim_worker_activity);

/* How long the launcher waits before starting a stopped worker again. */
#define WORKER_RESTART_MS		5000
/* How often the launcher and an idle worker look for the database/extension. */
#define RECHECK_MS				10000
/* Longest wait a 429 may impose (Retry-After beyond this is clamped). */
#define MAX_RATE_LIMIT_WAIT_S	3600
/* Unseen ids checked per reconciliation step. */
#define VERIFY_BATCH			50
/* Mint a token again this long before OneLogin says it expires. */
#define TOKEN_MARGIN_S			60

#define USER_FIELDS "id,username,email,firstname,lastname,title,phone,company,department," \
	"status,state,updated_at,custom_attributes"

/* ---------- GUCs ---------- */

static char *scim_worker_database = NULL;
static int	scim_sync_interval = 300;
static int	scim_connect_timeout = 10000;
static int	scim_request_timeout = 60000;
static int	scim_page_size = 100;
static int	scim_max_backoff = 600;
static bool scim_allow_http = false;
static int	scim_reconcile_interval = 86400;
static int	scim_sync_overlap = 60;
char	   *scim_onelogin_user_type_attribute = NULL;
char	   *scim_onelogin_inactive_statuses = NULL;
char	   *scim_onelogin_inactive_states = NULL;

/* ---------- shared memory ---------- */

typedef struct ScimWorkerShared
{
	slock_t		mutex;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	pid_t		worker_pid;
	Latch	   *worker_latch;
	char		workspace[NAMEDATALEN];	/* being synced; "" when none */
	char		phase[96];
	TimestampTz phase_since;
} ScimWorkerShared;

static ScimWorkerShared *scim_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* wake-at-commit state of a backend calling scim.sync_now() */
static bool wake_callback_registered = false;
static bool wake_at_commit = false;

/* ---------- worker-private state ---------- */

#define NULL_TS DT_NOBEGIN

/* One OneLogin connection and its sync state, as read at the cycle start. */
typedef struct Conn
{
	char		workspace[NAMEDATALEN];
	char	   *base_url;
	int64		config_version;
	int64		wake_seq;
	int64		handled_seq;
	TimestampTz last_attempt_at;
	TimestampTz backoff_until;
	int			failures;
	char	   *run_cursor;		/* non-NULL: a users run is in progress */
	bool		run_full;
	int64		run_id;
	int			run_pages;		/* pages of the run committed so far */
	TimestampTz run_since;
	TimestampTz run_started_at;
	TimestampTz users_high_water;
	int64		verify_run;		/* -1: no reconciliation pending */
	TimestampTz last_reconcile_at;
	char	   *events_cursor;	/* non-NULL: an events run is in progress */
	TimestampTz events_since;
	TimestampTz events_high_water;
} Conn;

/* Cached access token of a connection (worker memory only). */
typedef struct TokenEntry
{
	char		workspace[NAMEDATALEN];
	int64		config_version;
	char	   *token;
	TimestampTz expires_at;
} TokenEntry;

typedef enum FailKind
{
	FAIL_TRANSIENT,				/* 5xx, timeout, transport, malformed: back off */
	FAIL_RATE_LIMIT,			/* 429: wait as told */
	FAIL_AUTH,					/* credentials or token refused: failing */
	FAIL_PERMANENT,				/* other 4xx, configuration: failing */
	FAIL_PAUSE					/* rate budget used up: wait, not a failure */
} FailKind;

typedef enum FetchResult
{
	FETCH_OK,
	FETCH_NOT_FOUND,
	FETCH_FAILED,				/* failure recorded */
	FETCH_ABANDONED				/* connection changed or extension gone */
} FetchResult;

typedef enum RunResult
{
	RUN_DONE,
	RUN_STOPPED,				/* failure recorded; retried later */
	RUN_ABANDONED				/* not ready / reconfigured: re-read state */
} RunResult;

static MemoryContext WorkerContext = NULL;
static MemoryContext CycleContext = NULL;
static MemoryContext PageContext = NULL;
static List *token_cache = NIL;
static Oid	plans_extension_oid = InvalidOid;

/* saved plans */
static SPIPlanPtr plan_load_conns;
static SPIPlanPtr plan_lock_state;
static SPIPlanPtr plan_credentials;
static SPIPlanPtr plan_map_lookup;
static SPIPlanPtr plan_provision_batch;
static SPIPlanPtr plan_provision_one;
static SPIPlanPtr plan_map_upsert;
static SPIPlanPtr plan_map_seen;
static SPIPlanPtr plan_map_delete;
static SPIPlanPtr plan_deprovision;
static SPIPlanPtr plan_log_attempt;
static SPIPlanPtr plan_state_page;
static SPIPlanPtr plan_state_run_end;
static SPIPlanPtr plan_verify_list;
static SPIPlanPtr plan_state_verify;
static SPIPlanPtr plan_state_verify_end;
static SPIPlanPtr plan_state_events_page;
static SPIPlanPtr plan_state_events_end;
static SPIPlanPtr plan_success;
static SPIPlanPtr plan_failure;
static SPIPlanPtr plan_pause;

static SPIPlanPtr *const all_plans[] = {
	&plan_load_conns, &plan_lock_state, &plan_credentials, &plan_map_lookup,
	&plan_provision_batch, &plan_provision_one, &plan_map_upsert, &plan_map_seen,
	&plan_map_delete, &plan_deprovision, &plan_log_attempt, &plan_state_page,
	&plan_state_run_end, &plan_verify_list, &plan_state_verify, &plan_state_verify_end,
	&plan_state_events_page, &plan_state_events_end, &plan_success, &plan_failure,
	&plan_pause
};

/* ---------------------------------------------------------------------
 * GUCs, shared memory, registration
 * ---------------------------------------------------------------------
 */

static bool
check_code_list(char **newval, void **extra, GucSource source)
{
	uint64		mask;

	if (!onelogin_parse_code_list(*newval, &mask))
	{
		GUC_check_errdetail("The value must be a comma-separated list of codes from 0 to 63.");
		return false;
	}
	return true;
}

static void
scim_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(ScimWorkerShared)));
}

static void
scim_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	scim_shared = ShmemInitStruct("scim_provision worker", sizeof(ScimWorkerShared), &found);
	if (!found)
	{
		memset(scim_shared, 0, sizeof(ScimWorkerShared));
		SpinLockInit(&scim_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Called from _PG_init: define the GUCs and, when preloaded, reserve shared
 * memory and register the launcher.
 */
void
scim_worker_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("scim_provision.sync_interval",
							"Seconds between two incremental OneLogin syncs of a connection.",
							NULL, &scim_sync_interval, 300, 1, 7 * 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("scim_provision.connect_timeout",
							"Time allowed to connect to OneLogin.",
							NULL, &scim_connect_timeout, 10000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("scim_provision.request_timeout",
							"Time allowed for one OneLogin request, transfer included.",
							NULL, &scim_request_timeout, 60000, 1000, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("scim_provision.page_size",
							"Users requested per OneLogin page (the limit parameter).",
							NULL, &scim_page_size, 100, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("scim_provision.max_backoff",
							"Longest wait after repeated OneLogin failures.",
							NULL, &scim_max_backoff, 600, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomBoolVariable("scim_provision.allow_http",
							 "Allows plain http OneLogin URLs besides https (for loopback tests).",
							 NULL, &scim_allow_http, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("scim_provision.reconcile_interval",
							"Seconds between full reconciliations of OneLogin ids (0 disables them).",
							NULL, &scim_reconcile_interval, 86400, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("scim_provision.sync_overlap",
							"How far before the high-water mark an incremental sync starts.",
							"Covers clock skew and updated_since rounding; users seen again unchanged are skipped.",
							&scim_sync_overlap, 60, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("scim_provision.onelogin_user_type_attribute",
							   "OneLogin custom attribute (shortname) holding the user type.",
							   "Empty: user types are not taken from OneLogin.",
							   &scim_onelogin_user_type_attribute, ONELOGIN_DEFAULT_USER_TYPE_ATTRIBUTE,
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("scim_provision.onelogin_inactive_statuses",
							   "OneLogin status codes that make a user inactive (comma-separated).",
							   "Default 2 (Suspended).",
							   &scim_onelogin_inactive_statuses, "2",
							   PGC_SIGHUP, 0, check_code_list, NULL, NULL);
	DefineCustomStringVariable("scim_provision.onelogin_inactive_states",
							   "OneLogin state codes that make a user inactive (comma-separated).",
							   "Default 2 (Rejected).",
							   &scim_onelogin_inactive_states, "2",
							   PGC_SIGHUP, 0, check_code_list, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomStringVariable("scim_provision.database",
							   "Database in which the OneLogin worker runs.",
							   NULL, &scim_worker_database, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = scim_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = scim_shmem_startup;

	/* pg_upgrade's server must not pull anything */
	if (IsBinaryUpgrade)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "scim_provision");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "scim_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "scim_provision launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "scim_provision launcher");
	RegisterBackgroundWorker(&worker);
}

/* ---------------------------------------------------------------------
 * Launcher
 * ---------------------------------------------------------------------
 */

static void
launcher_detach(int code, Datum arg)
{
	SpinLockAcquire(&scim_shared->mutex);
	if (scim_shared->launcher_pid == MyProcPid)
	{
		scim_shared->launcher_pid = 0;
		scim_shared->launcher_latch = NULL;
	}
	SpinLockRelease(&scim_shared->mutex);
}

/* Whether a database of that name exists and accepts connections. */
static bool
database_exists(const char *name)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (strcmp(NameStr(db->datname), name) == 0)
		{
			found = db->datallowconn && !database_is_invalid_form(db);
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return found;
}

void
scim_launcher_main(Datum main_arg)
{
	BackgroundWorkerHandle *handle = NULL;
	TimestampTz start_after = 0;
	bool		reported_missing = false;
	bool		reported_no_slot = false;
	MemoryContext cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("scim_provision launcher");

	SpinLockAcquire(&scim_shared->mutex);
	scim_shared->launcher_pid = MyProcPid;
	scim_shared->launcher_latch = MyLatch;
	SpinLockRelease(&scim_shared->mutex);
	before_shmem_exit(launcher_detach, (Datum) 0);

	cxt = AllocSetContextCreate(TopMemoryContext, "scim_provision launcher", ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(cxt);

	for (;;)
	{
		TimestampTz now;
		long		timeout = RECHECK_MS;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (handle != NULL)
		{
			pid_t		pid;

			if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED)
			{
				pfree(handle);
				handle = NULL;
				start_after = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), WORKER_RESTART_MS);
			}
		}

		now = GetCurrentTimestamp();
		if (handle == NULL && scim_worker_database != NULL && scim_worker_database[0] != '\0')
		{
			if (now < start_after)
				timeout = Min(timeout, (long) ((start_after - now) / 1000) + 1);
			else if (!database_exists(scim_worker_database))
			{
				if (!reported_missing)
					ereport(LOG,
							(errmsg("scim_provision is waiting for database \"%s\"", scim_worker_database),
							 errdetail("The OneLogin worker starts once the database named by scim_provision.database exists.")));
				reported_missing = true;
			}
			else
			{
				BackgroundWorker worker;

				reported_missing = false;
				memset(&worker, 0, sizeof(worker));
				worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
				worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
				worker.bgw_restart_time = BGW_NEVER_RESTART;
				snprintf(worker.bgw_library_name, BGW_MAXLEN, "scim_provision");
				snprintf(worker.bgw_function_name, BGW_MAXLEN, "scim_worker_main");
				snprintf(worker.bgw_name, BGW_MAXLEN, "scim_provision worker");
				snprintf(worker.bgw_type, BGW_MAXLEN, "scim_provision worker");
				worker.bgw_notify_pid = MyProcPid;
				if (RegisterDynamicBackgroundWorker(&worker, &handle))
					reported_no_slot = false;
				else
				{
					handle = NULL;
					if (!reported_no_slot)
						ereport(LOG,
								(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
								 errmsg("scim_provision could not start its worker"),
								 errhint("Raise max_worker_processes.")));
					reported_no_slot = true;
					start_after = TimestampTzPlusMilliseconds(now, WORKER_RESTART_MS);
				}
			}
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---------------------------------------------------------------------
 * Worker: small helpers
 * ---------------------------------------------------------------------
 */

static void
worker_detach(int code, Datum arg)
{
	SpinLockAcquire(&scim_shared->mutex);
	if (scim_shared->worker_pid == MyProcPid)
	{
		scim_shared->worker_pid = 0;
		scim_shared->worker_latch = NULL;
		scim_shared->workspace[0] = '\0';
		scim_shared->phase[0] = '\0';
	}
	SpinLockRelease(&scim_shared->mutex);
}

/* Publish what the worker does (shared memory and pg_stat_activity). */
static void
set_phase(const char *workspace, const char *fmt,...) pg_attribute_printf(2, 3);

static void
set_phase(const char *workspace, const char *fmt,...)
{
	char		phase[96];
	char		activity[200];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(phase, sizeof(phase), fmt, ap);
	va_end(ap);

	SpinLockAcquire(&scim_shared->mutex);
	strlcpy(scim_shared->workspace, workspace ? workspace : "", sizeof(scim_shared->workspace));
	strlcpy(scim_shared->phase, phase, sizeof(scim_shared->phase));
	scim_shared->phase_since = GetCurrentTimestamp();
	SpinLockRelease(&scim_shared->mutex);

	if (workspace != NULL)
	{
		snprintf(activity, sizeof(activity), "onelogin sync of workspace \"%s\": %s", workspace, phase);
		pgstat_report_activity(STATE_RUNNING, activity);
	}
	else
		pgstat_report_activity(STATE_IDLE, phase);
}

static Datum
text_datum(const char *s)
{
	return PointerGetDatum(cstring_to_text(s));
}

static Datum
int8_array(const int64 *vals, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Int64GetDatum(vals[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* text[] from C strings, NULL entries becoming SQL NULLs */
static Datum
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

static char *
get_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static int64
get_int8(HeapTuple tup, TupleDesc desc, int col, int64 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? dflt : DatumGetInt64(d);
}

static int32
get_int4(HeapTuple tup, TupleDesc desc, int col, int32 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? dflt : DatumGetInt32(d);
}

static TimestampTz
get_ts(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL_TS : DatumGetTimestampTz(d);
}

static void
ts_param(TimestampTz ts, Datum *value, char *null)
{
	*value = TimestampTzGetDatum(ts);
	*null = (ts == NULL_TS) ? 'n' : ' ';
}

static void
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
		for (i = 0; i < lengthof(all_plans); i++)
		{
			if (*all_plans[i] != NULL)
				SPI_freeplan(*all_plans[i]);
			*all_plans[i] = NULL;
		}
		plans_extension_oid = ext;
	}
	return true;
}

/*
 * Start a transaction with a snapshot and SPI.  Returns false (nothing
 * open) when the extension is not usable.
 */
static bool
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

static void
tx_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(tx_caller_cxt);
	pgstat_report_stat(false);
	debug_query_string = NULL;
}

static void
tx_abort(void)
{
	AbortCurrentTransaction();
	MemoryContextSwitchTo(tx_caller_cxt);
	debug_query_string = NULL;
}

static SPIPlanPtr
get_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = plan;
	}
	return *slot;
}

static int
run_plan(SPIPlanPtr plan, const char *sql, Datum *values, const char *nulls, int expect)
{
	int			rc;

	debug_query_string = sql;
	rc = SPI_execute_plan(plan, values, nulls, false, 0);
	if (rc != expect)
		elog(ERROR, "unexpected SPI result %s for \"%s\"", SPI_result_code_string(rc), sql);
	return rc;
}

#define PLAN(slot, sql, ...) \
	get_plan(&(slot), (sql), lengthof(((Oid[]){__VA_ARGS__})), (Oid[]){__VA_ARGS__})

/*
 * Run a plan inside a subtransaction.  On error the subtransaction is
 * rolled back, *errmsg set and false returned; the caller's transaction
 * stays usable.  Cancels are re-thrown.
 */
static bool
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
	" s.events_high_water, s.run_pages" \
	" FROM scim.onelogin_connections c" \
	" JOIN scim.onelogin_state s ON s.workspace OPERATOR(pg_catalog.=) c.workspace" \
	" WHERE s.config_version OPERATOR(pg_catalog.=) c.config_version" \
	" ORDER BY c.workspace"

/* Read every connection (in CycleContext); false if the extension is not ready. */
static bool
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
static bool
lock_state(Conn *c)
{
	Datum		v[1] = {text_datum(c->workspace)};

	run_plan(PLAN(plan_lock_state, SQL_LOCK_STATE, TEXTOID), SQL_LOCK_STATE, v, NULL, SPI_OK_SELECT);
	return SPI_processed == 1 &&
		get_int8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, -1) == c->config_version;
}

#define SQL_LOG_ATTEMPT \
	"SELECT scim.log_attempt('onelogin', $2, $3, NULL, $4, $5, NULL, $6, $1)"

static void
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

static void
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
	" consecutive_failures = consecutive_failures OPERATOR(pg_catalog.+) 1," \
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
 */
static void
record_failure(Conn *c, FailKind kind, int status, const char *method, const char *path,
			   int wait_s, const char *detail)
{
	int64		delay;
	const char *state;
	const char *reason;
	char	   *full;
	Datum		v[7];

	if (kind == FAIL_RATE_LIMIT || kind == FAIL_PAUSE)
		delay = (wait_s >= 0) ? (int64) Min(Max(wait_s, 1), MAX_RATE_LIMIT_WAIT_S) * 1000
			: backoff_ms(c->failures + 1);
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
	run_plan(PLAN(plan_failure, SQL_FAILURE, TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID, INT8OID, INT8OID),
			 SQL_FAILURE, v, NULL, SPI_OK_UPDATE);
	log_attempt(c, method, path, NULL, status, full);
	tx_commit();
	c->failures++;
}

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
	char	   *msg;

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
	msg = onelogin_error_message(resp->body, resp->body_len);
	if (resp->status == 429)
	{
		int			wait = resp->retry_after >= 0 ? resp->retry_after : resp->ratelimit_reset;

		record_failure(c, FAIL_RATE_LIMIT, 429, method, path, wait,
					   psprintf("OneLogin rate limit reached (HTTP 429%s%s)",
								msg ? ": " : "", msg ? msg : ""));
	}
	else if (resp->status >= 500)
		record_failure(c, FAIL_TRANSIENT, (int) resp->status, method, path, -1,
					   psprintf("OneLogin answered HTTP %ld%s%s", resp->status,
								msg ? ": " : "", msg ? msg : ""));
	else
		record_failure(c, FAIL_PERMANENT, (int) resp->status, method, path, -1,
					   psprintf("OneLogin refused the request with HTTP %ld%s%s", resp->status,
								msg ? ": " : "", msg ? msg : ""));
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
		char	   *msg = onelogin_error_message(resp.body, resp.body_len);

		record_failure(c, FAIL_AUTH, (int) resp.status, "POST", "/auth/oauth2/v2/token", -1,
					   psprintf("OneLogin refused the client credentials (HTTP %ld%s%s)",
								resp.status, msg ? ": " : "", msg ? msg : ""));
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
static FetchResult
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
				char	   *msg = onelogin_error_message(resp->body, resp->body_len);

				record_failure(c, FAIL_AUTH, 401, "GET", path, -1,
							   psprintf("OneLogin refused a freshly minted access token (HTTP 401%s%s)",
										msg ? ": " : "", msg ? msg : ""));
				return FETCH_FAILED;
			}
			continue;
		}
		return classify(c, "GET", path, resp);
	}
}

/* Honour an exhausted rate budget before the next request. */
static bool
rate_budget_exhausted(Conn *c, OneLoginResponse *resp)
{
	if (resp->ratelimit_remaining == 0 && resp->ratelimit_reset > 0)
	{
		record_failure(c, FAIL_PAUSE, 429, "GET", "", resp->ratelimit_reset, "rate budget used up");
		return true;
	}
	return false;
}

/* ---------------------------------------------------------------------
 * Applying users
 * ---------------------------------------------------------------------
 */

/* Users of a page, unique by id (the last occurrence wins), sorted by id. */
typedef struct PreparedUsers
{
	int			n;
	OneLoginUser **users;
	char	  **json;			/* SCIM User per user */
	bool	   *skip;			/* unchanged since last applied */
	TimestampTz max_updated;	/* NULL_TS when none */
} PreparedUsers;

static int
user_ptr_cmp(const void *a, const void *b)
{
	const OneLoginUser *ua = *(OneLoginUser *const *) a;
	const OneLoginUser *ub = *(OneLoginUser *const *) b;

	if (ua->id != ub->id)
		return ua->id < ub->id ? -1 : 1;
	/* same id: keep page order, so the last one sorts last */
	return ua < ub ? -1 : (ua > ub ? 1 : 0);
}

static void
prepare_users(OneLoginUser *users, int n, PreparedUsers *out)
{
	OneLoginActivePolicy policy;
	OneLoginUser **sorted = palloc(sizeof(OneLoginUser *) * Max(n, 1));
	int			i;
	int			k = 0;

	/* the check hooks validated both lists */
	(void) onelogin_parse_code_list(scim_onelogin_inactive_statuses, &policy.inactive_statuses);
	(void) onelogin_parse_code_list(scim_onelogin_inactive_states, &policy.inactive_states);

	for (i = 0; i < n; i++)
		sorted[i] = &users[i];
	qsort(sorted, n, sizeof(OneLoginUser *), user_ptr_cmp);

	out->users = palloc(sizeof(OneLoginUser *) * Max(n, 1));
	out->json = palloc(sizeof(char *) * Max(n, 1));
	out->skip = palloc0(sizeof(bool) * Max(n, 1));
	out->max_updated = NULL_TS;
	for (i = 0; i < n; i++)
	{
		StringInfoData buf;
		OneLoginUser *u = sorted[i];

		if (i + 1 < n && sorted[i + 1]->id == u->id)
			continue;			/* a later copy follows */
		initStringInfo(&buf);
		onelogin_user_to_scim(&buf, u, &policy);
		out->users[k] = u;
		out->json[k] = buf.data;
		if (u->updated_at != NULL && (out->max_updated == NULL_TS || u->updated_ts > out->max_updated))
			out->max_updated = u->updated_ts;
		k++;
	}
	out->n = k;
}

static int
find_user(PreparedUsers *p, int64 id)
{
	int			lo = 0,
				hi = p->n - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (p->users[mid]->id == id)
			return mid;
		if (p->users[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

#define SQL_MAP_LOOKUP \
	"SELECT m.onelogin_id, m.updated_at, m.status FROM scim.onelogin_users m" \
	" WHERE m.workspace OPERATOR(pg_catalog.=) $1 AND m.onelogin_id OPERATOR(pg_catalog.=) ANY ($2)"

/* set-based: one statement for the page, ord is the user's 1-based position */
#define SQL_PROVISION_BATCH \
	"SELECT p.ord::pg_catalog.int8, p.status, p.id" \
	" FROM scim.provision_users($2::pg_catalog.jsonb[], 'onelogin', $1) AS p"

#define SQL_PROVISION_ONE \
	"SELECT 1::pg_catalog.int8, p.status, p.id" \
	" FROM scim.provision_user($2::pg_catalog.jsonb, 'onelogin', $1) AS p"

#define SQL_MAP_UPSERT \
	"INSERT INTO scim.onelogin_users AS m (workspace, onelogin_id, updated_at, user_id, status, seen_run)" \
	" SELECT $1, t.i, t.u, t.uid, t.st, $6" \
	" FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.int8[]), pg_catalog.unnest($3::pg_catalog.text[])," \
	"  pg_catalog.unnest($4::pg_catalog.uuid[]), pg_catalog.unnest($5::pg_catalog.int4[])) AS t(i, u, uid, st)" \
	" ON CONFLICT (workspace, onelogin_id) DO UPDATE SET updated_at = excluded.updated_at," \
	" user_id = coalesce(excluded.user_id, m.user_id), status = excluded.status," \
	" seen_run = greatest(m.seen_run, excluded.seen_run)"

#define SQL_MAP_SEEN \
	"UPDATE scim.onelogin_users m SET seen_run = $3" \
	" WHERE m.workspace OPERATOR(pg_catalog.=) $1 AND m.onelogin_id OPERATOR(pg_catalog.=) ANY ($2)" \
	" AND m.seen_run OPERATOR(pg_catalog.<) $3"

/* Read the rows of a provision query into the result arrays. */
static void
read_provision_results(int offset, int count, int *status, Datum *ids, bool *id_null)
{
	uint64		r;

	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		int64		ord = get_int8(tup, desc, 1, 0);
		bool		isnull;
		Datum		d;
		int			i;

		if (ord < 1 || ord > count)
			continue;
		i = offset + (int) ord - 1;
		status[i] = get_int4(tup, desc, 2, 0);
		d = SPI_getbinval(tup, desc, 3, &isnull);
		id_null[i] = isnull;
		if (!isnull)
		{
			pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

			memcpy(u, DatumGetUUIDP(d), sizeof(pg_uuid_t));
			ids[i] = UUIDPGetDatum(u);
		}
	}
}

/*
 * Inside a transaction: apply the users that changed, record them in
 * scim.onelogin_users and, for a full run, mark every id seen.  Returns
 * the number of users sent to scim.provision_user.
 */
static int
apply_users(Conn *c, PreparedUsers *p, bool full, int64 run_id, int *created)
{
	int64	   *all_ids;
	int			i;
	int			n = 0;
	char	  **todo_json;
	int64	   *todo_ids;
	char	  **todo_updated;
	int		   *status;
	Datum	   *uids;
	bool	   *uid_null;
	Datum		v[6];
	char	   *err;

	*created = 0;
	if (p->n == 0)
		return 0;

	all_ids = palloc(sizeof(int64) * p->n);
	for (i = 0; i < p->n; i++)
		all_ids[i] = p->users[i]->id;

	/* skip users applied before with the same updated_at */
	v[0] = text_datum(c->workspace);
	v[1] = int8_array(all_ids, p->n);
	run_plan(PLAN(plan_map_lookup, SQL_MAP_LOOKUP, TEXTOID, INT8ARRAYOID), SQL_MAP_LOOKUP, v, NULL, SPI_OK_SELECT);
	for (i = 0; i < (int) SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		int			k = find_user(p, get_int8(tup, desc, 1, -1));
		char	   *updated = get_text(tup, desc, 2);
		int			st = get_int4(tup, desc, 3, 0);

		if (k < 0 || updated == NULL || p->users[k]->updated_at == NULL)
			continue;
		/* a refused or failed user is retried by full runs only */
		if (strcmp(updated, p->users[k]->updated_at) == 0 && (!full || (st >= 200 && st < 300)))
			p->skip[k] = true;
	}

	todo_json = palloc(sizeof(char *) * p->n);
	todo_ids = palloc(sizeof(int64) * p->n);
	todo_updated = palloc(sizeof(char *) * p->n);
	for (i = 0; i < p->n; i++)
	{
		if (p->skip[i])
			continue;
		todo_json[n] = p->json[i];
		todo_ids[n] = p->users[i]->id;
		todo_updated[n] = p->users[i]->updated_at;
		n++;
	}

	if (n > 0)
	{
		status = palloc0(sizeof(int) * n);
		uids = palloc0(sizeof(Datum) * n);
		uid_null = palloc(sizeof(bool) * n);
		for (i = 0; i < n; i++)
			uid_null[i] = true;

		/* fast path: the whole page in one statement */
		v[0] = text_datum(c->workspace);
		v[1] = text_array(todo_json, n);
		if (run_guarded(PLAN(plan_provision_batch, SQL_PROVISION_BATCH, TEXTOID, TEXTARRAYOID),
						SQL_PROVISION_BATCH, v, NULL, &err))
			read_provision_results(0, n, status, uids, uid_null);
		else
		{
			/* an unexpected error: find it user by user, log it, go on */
			ereport(LOG,
					(errmsg("OneLogin sync of workspace \"%s\": applying a page failed, applying its users one by one",
							c->workspace),
					 errdetail("%s", err)));
			for (i = 0; i < n; i++)
			{
				v[1] = text_datum(todo_json[i]);
				if (run_guarded(PLAN(plan_provision_one, SQL_PROVISION_ONE, TEXTOID, TEXTOID),
								SQL_PROVISION_ONE, v, NULL, &err))
					read_provision_results(i, 1, status, uids, uid_null);
				else
				{
					char	   *path = psprintf("/api/2/users/" INT64_FORMAT, todo_ids[i]);

					status[i] = 500;
					log_attempt(c, "GET", path, NULL, 500,
								psprintf("applying OneLogin user " INT64_FORMAT " failed: %s", todo_ids[i], err));
				}
			}
		}

		for (i = 0; i < n; i++)
			if (status[i] == 201)
				(*created)++;

		v[0] = text_datum(c->workspace);
		v[1] = int8_array(todo_ids, n);
		v[2] = text_array(todo_updated, n);
		{
			int			dims[1] = {n};
			int			lbs[1] = {1};
			Datum	   *st = palloc(sizeof(Datum) * n);

			v[3] = PointerGetDatum(construct_md_array(uids, uid_null, 1, dims, lbs,
													  UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
			for (i = 0; i < n; i++)
				st[i] = Int32GetDatum(status[i]);
			v[4] = PointerGetDatum(construct_array(st, n, INT4OID, 4, true, TYPALIGN_INT));
		}
		v[5] = Int64GetDatum(run_id);
		run_plan(PLAN(plan_map_upsert, SQL_MAP_UPSERT, TEXTOID, INT8ARRAYOID, TEXTARRAYOID,
					  UUIDARRAYOID, INT4ARRAYOID, INT8OID),
				 SQL_MAP_UPSERT, v, NULL, SPI_OK_INSERT);
	}

	/* users applied above carry seen_run already; mark the unchanged ones */
	if (full && n < p->n)
	{
		int			nskip = 0;

		for (i = 0; i < p->n; i++)
			if (p->skip[i])
				all_ids[nskip++] = p->users[i]->id;
		v[0] = text_datum(c->workspace);
		v[1] = int8_array(all_ids, nskip);
		v[2] = Int64GetDatum(run_id);
		run_plan(PLAN(plan_map_seen, SQL_MAP_SEEN, TEXTOID, INT8ARRAYOID, INT8OID),
				 SQL_MAP_SEEN, v, NULL, SPI_OK_UPDATE);
	}
	return n;
}

#define SQL_DEPROVISION \
	"SELECT 1::pg_catalog.int8, p.status, p.id FROM scim.deprovision_user($2, 'onelogin', $1) AS p"

#define SQL_MAP_DELETE \
	"DELETE FROM scim.onelogin_users m" \
	" WHERE m.workspace OPERATOR(pg_catalog.=) $1 AND m.onelogin_id OPERATOR(pg_catalog.=) ANY ($2)" \
	" RETURNING m.onelogin_id, m.user_id IS NOT NULL"

/*
 * Inside a transaction: forget these OneLogin ids and deprovision the ones
 * we had provisioned.  Returns the number deprovisioned.
 */
static int
deprovision_ids(Conn *c, int64 *ids, int n)
{
	Datum		v[2];
	int64	   *with_user;
	int			nu = 0;
	int			done = 0;
	int			i;
	char	   *err;

	if (n == 0)
		return 0;
	v[0] = text_datum(c->workspace);
	v[1] = int8_array(ids, n);
	run_plan(PLAN(plan_map_delete, SQL_MAP_DELETE, TEXTOID, INT8ARRAYOID), SQL_MAP_DELETE, v, NULL,
			 SPI_OK_DELETE_RETURNING);
	with_user = palloc(sizeof(int64) * Max((int) SPI_processed, 1));
	for (i = 0; i < (int) SPI_processed; i++)
	{
		bool		isnull;
		HeapTuple	tup = SPI_tuptable->vals[i];

		if (DatumGetBool(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull)))
			with_user[nu++] = get_int8(tup, SPI_tuptable->tupdesc, 1, -1);
	}
	for (i = 0; i < nu; i++)
	{
		char		idtext[32];

		snprintf(idtext, sizeof(idtext), INT64_FORMAT, with_user[i]);
		v[1] = text_datum(idtext);
		if (run_guarded(PLAN(plan_deprovision, SQL_DEPROVISION, TEXTOID, TEXTOID), SQL_DEPROVISION,
						v, NULL, &err))
		{
			if (SPI_processed > 0 &&
				get_int4(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, 0) < 300)
				done++;
		}
		else
			log_attempt(c, "DELETE", psprintf("/api/2/users/%s", idtext), NULL, 500,
						psprintf("deprovisioning OneLogin user %s failed: %s", idtext, err));
	}
	return done;
}

/* ---------------------------------------------------------------------
 * Sync steps
 * ---------------------------------------------------------------------
 */

/*
 * Bulk loads outgrow the planner's picture of scim.users and
 * scim.onelogin_users: plans cached for nearly empty tables (the upsert
 * path's lookups, the worker's own) turn into sequential scans, and a first
 * sync of 100k users becomes quadratic long before autovacuum's next
 * ANALYZE.  So after every page the worker counts the users it created and,
 * once they reach what pg_class believed scim.users held (at least 1000),
 * analyzes both tables itself: one ANALYZE each time the table doubles
 * (7 for a first sync of 100k users), none for ordinary incremental syncs.
 */
static int64 created_since_analyze = 0;
static double users_reltuples = -1;

/*
 * The columns the upsert path and the worker look rows up by, listed so
 * that ANALYZE skips the statistics of expression indexes: on scim.users
 * those include the lower-cased attributes document behind the filter
 * engine's GIN index, whose evaluation over a 30000-row sample made each
 * ANALYZE cost as much as applying a few pages.  The row counts the plans
 * need are updated all the same (autovacuum still computes the rest).
 * With the smaller sample below, the 7 ANALYZEs of a first sync of 100k
 * users went from about 3 s to 0.3 s.
 */
#define SQL_ANALYZE \
	"ANALYZE scim.users (id, workspace, user_name, external_id, email)," \
	" scim.onelogin_users (workspace, onelogin_id, seen_run)"

#define SQL_USERS_RELTUPLES \
	"SELECT GREATEST(c.reltuples, 0)::pg_catalog.float8 FROM pg_catalog.pg_class c" \
	" WHERE c.oid OPERATOR(pg_catalog.=) 'scim.users'::pg_catalog.regclass"

static void
maybe_analyze_users(const char *workspace, int created)
{
	created_since_analyze += created;
	if (created_since_analyze < 1000 ||
		(users_reltuples >= 0 && created_since_analyze < users_reltuples))
		return;
	if (!tx_begin())
		return;
	set_phase(workspace, "analyzing after %lld new users", (long long) created_since_analyze);
	/*
	 * A 3000-row sample gives the plans what they need (row counts, the
	 * distinctness of the keys) at a tenth of the default's cost;
	 * autovacuum's next ANALYZE refines the rest.
	 */
	(void) set_config_option("default_statistics_target", "10", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	debug_query_string = SQL_ANALYZE;
	if (SPI_execute(SQL_ANALYZE, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "ANALYZE failed");
	if (SPI_execute(SQL_USERS_RELTUPLES, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		users_reltuples = isnull ? 0 : DatumGetFloat8(d);
	}
	tx_commit();
	created_since_analyze = 0;
}

#define SQL_STATE_PAGE \
	"UPDATE scim.onelogin_state SET state = 'syncing', run_kind = $3, run_id = $4, run_since = $5," \
	" run_started_at = CASE WHEN $9 THEN $6 ELSE run_started_at END," \
	" run_wake_seq = CASE WHEN $9 THEN $11 ELSE run_wake_seq END," \
	" run_finished_at = CASE WHEN $9 THEN NULL ELSE run_finished_at END," \
	" run_cursor = $2," \
	" run_max_updated = CASE WHEN $9 THEN $7 ELSE greatest(run_max_updated, $7) END," \
	" run_pages = CASE WHEN $9 THEN 1 ELSE run_pages OPERATOR(pg_catalog.+) 1 END," \
	" run_users_seen = CASE WHEN $9 THEN 0 ELSE run_users_seen END OPERATOR(pg_catalog.+) $8," \
	" run_users_applied = CASE WHEN $9 THEN 0 ELSE run_users_applied END OPERATOR(pg_catalog.+) $10," \
	" pages = pages OPERATOR(pg_catalog.+) 1, users_seen = users_seen OPERATOR(pg_catalog.+) $8," \
	" users_applied = users_applied OPERATOR(pg_catalog.+) $10" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1"

#define SQL_STATE_RUN_END \
	"UPDATE scim.onelogin_state SET" \
	" users_high_water = coalesce(greatest(users_high_water, run_max_updated), run_started_at)," \
	" events_high_water = coalesce(events_high_water, run_started_at)," \
	" verify_run = CASE WHEN run_kind OPERATOR(pg_catalog.=) 'full' THEN run_id ELSE verify_run END," \
	" run_finished_at = pg_catalog.now()" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1"

/*
 * Users: resume the run in progress or start one, and apply page after
 * page, each page in one transaction with its cursor.
 */
static RunResult
sync_users(Conn *c)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		first;
	bool		full;
	int64		run_id;
	TimestampTz since;
	TimestampTz started;
	char	   *cursor;
	int			pageno;
	int			pagebase = 0;

	if (c->run_cursor != NULL)
	{
		pagebase = c->run_pages;
		first = false;
		full = c->run_full;
		run_id = c->run_id;
		since = c->run_since;
		started = c->run_started_at;
		cursor = c->run_cursor;
	}
	else
	{
		if (c->verify_run >= 0)
			return RUN_DONE;	/* finish the reconciliation first */
		first = true;
		full = (c->last_reconcile_at == NULL_TS || c->users_high_water == NULL_TS ||
				(scim_reconcile_interval > 0 &&
				 now >= TimestampTzPlusMilliseconds(c->last_reconcile_at,
													(int64) scim_reconcile_interval * 1000)));
		run_id = full ? c->run_id + 1 : c->run_id;
		since = full ? NULL_TS
			: TimestampTzPlusMilliseconds(c->users_high_water, -(int64) scim_sync_overlap * 1000);
		started = now;
		cursor = NULL;
	}

	for (pageno = 1;; pageno++)
	{
		StringInfoData url;
		OneLoginResponse resp;
		OneLoginUserPage page;
		PreparedUsers prep;
		char	   *detail;
		char	   *next;
		FetchResult fr;
		Datum		v[11];
		char		nulls[12] = "           ";
		int			applied;
		int			created;
		char		buf[64];

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(PageContext);
		MemoryContextSwitchTo(PageContext);

		initStringInfo(&url);
		appendStringInfo(&url, "%s/api/2/users", c->base_url);
		onelogin_url_append_param(&url, "fields", USER_FIELDS);
		snprintf(buf, sizeof(buf), "%d", scim_page_size);
		onelogin_url_append_param(&url, "limit", buf);
		if (since != NULL_TS)
		{
			onelogin_format_timestamp(since, buf, sizeof(buf));
			onelogin_url_append_param(&url, "updated_since", buf);
		}
		if (cursor != NULL)
			onelogin_url_append_param(&url, "cursor", cursor);

		set_phase(c->workspace, "%s sync, fetching users page %d", full ? "full" : "incremental",
				  pagebase + pageno);
		fr = fetch(c, url.data, "/api/2/users", &resp);
		if (fr == FETCH_NOT_FOUND)
		{
			record_failure(c, FAIL_PERMANENT, 404, "GET", "/api/2/users", -1,
						   "OneLogin has no users endpoint at this base URL (HTTP 404)");
			fr = FETCH_FAILED;
		}
		if (fr != FETCH_OK)
		{
			MemoryContextSwitchTo(CycleContext);
			return fr == FETCH_ABANDONED ? RUN_ABANDONED : RUN_STOPPED;
		}

		memset(&page, 0, sizeof(page));
		if (!onelogin_parse_users(resp.body, resp.body_len, scim_onelogin_user_type_attribute, false,
								  &page, &detail))
		{
			record_failure(c, FAIL_TRANSIENT, 502, "GET", "/api/2/users", -1,
						   psprintf("malformed users page %d, nothing of it applied: %s", pagebase + pageno, detail));
			MemoryContextSwitchTo(CycleContext);
			return RUN_STOPPED;
		}
		next = resp.after_cursor;
		/* a server that hands back the cursor it was given would loop forever */
		if (next != NULL && cursor != NULL && strcmp(next, cursor) == 0)
			next = NULL;
		prepare_users(page.users, page.nusers, &prep);

		set_phase(c->workspace, "%s sync, applying users page %d (%d users)",
				  full ? "full" : "incremental", pagebase + pageno, page.nusers);
		if (!tx_begin())
		{
			MemoryContextSwitchTo(CycleContext);
			return RUN_ABANDONED;
		}
		if (!lock_state(c))
		{
			tx_abort();
			MemoryContextSwitchTo(CycleContext);
			return RUN_ABANDONED;
		}
		applied = apply_users(c, &prep, full, run_id, &created);

		v[0] = text_datum(c->workspace);
		text_param(next, &v[1], &nulls[1]);
		v[2] = text_datum(full ? "full" : "incremental");
		v[3] = Int64GetDatum(run_id);
		ts_param(since, &v[4], &nulls[4]);
		ts_param(started, &v[5], &nulls[5]);
		ts_param(prep.max_updated, &v[6], &nulls[6]);
		v[7] = Int64GetDatum((int64) page.nusers);
		v[8] = BoolGetDatum(first);
		v[9] = Int64GetDatum((int64) applied);
		v[10] = Int64GetDatum(c->wake_seq);
		run_plan(PLAN(plan_state_page, SQL_STATE_PAGE, TEXTOID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID,
					  TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, BOOLOID, INT8OID, INT8OID),
				 SQL_STATE_PAGE, v, nulls, SPI_OK_UPDATE);
		if (next == NULL)
			run_plan(PLAN(plan_state_run_end, SQL_STATE_RUN_END, TEXTOID), SQL_STATE_RUN_END, v, NULL,
					 SPI_OK_UPDATE);
		tx_commit();
		first = false;
		maybe_analyze_users(c->workspace, created);

		if (next == NULL)
		{
			if (full)
				c->verify_run = run_id;
			c->run_cursor = NULL;
			MemoryContextSwitchTo(CycleContext);
			return rate_budget_exhausted(c, &resp) ? RUN_STOPPED : RUN_DONE;
		}
		cursor = MemoryContextStrdup(CycleContext, next);
		c->run_cursor = cursor;
		if (rate_budget_exhausted(c, &resp))
		{
			MemoryContextSwitchTo(CycleContext);
			return RUN_STOPPED;
		}
	}
}

#define SQL_VERIFY_LIST \
	"SELECT m.onelogin_id FROM scim.onelogin_users m" \
	" WHERE m.workspace OPERATOR(pg_catalog.=) $1 AND m.seen_run OPERATOR(pg_catalog.<) $2" \
	" ORDER BY m.onelogin_id LIMIT " CppAsString2(VERIFY_BATCH)

#define SQL_STATE_VERIFY \
	"UPDATE scim.onelogin_state SET deprovisioned = deprovisioned OPERATOR(pg_catalog.+) $2," \
	" users_applied = users_applied OPERATOR(pg_catalog.+) $3" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1"

#define SQL_STATE_VERIFY_END \
	"UPDATE scim.onelogin_state SET verify_run = NULL, last_reconcile_at = pg_catalog.now()" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1"

/*
 * Reconciliation after a full run: every id we know that the run did not
 * see is looked up one by one; 404 deprovisions, 200 applies.
 */
static RunResult
verify_unseen(Conn *c)
{
	int			checked = 0;

	if (c->verify_run < 0)
		return RUN_DONE;

	for (;;)
	{
		int64	   *ids;
		int			nids;
		int64	   *gone;
		int			ngone = 0;
		OneLoginUserPage found;
		PreparedUsers prep;
		Datum		v[3];
		int			i;
		int			applied;
		int			created;
		int			deprovisioned;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(PageContext);
		MemoryContextSwitchTo(PageContext);

		if (!tx_begin())
		{
			MemoryContextSwitchTo(CycleContext);
			return RUN_ABANDONED;
		}
		v[0] = text_datum(c->workspace);
		v[1] = Int64GetDatum(c->verify_run);
		run_plan(PLAN(plan_verify_list, SQL_VERIFY_LIST, TEXTOID, INT8OID), SQL_VERIFY_LIST, v, NULL,
				 SPI_OK_SELECT);
		nids = (int) SPI_processed;
		ids = MemoryContextAlloc(PageContext, sizeof(int64) * Max(nids, 1));
		for (i = 0; i < nids; i++)
			ids[i] = get_int8(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, -1);
		if (nids == 0)
		{
			if (!lock_state(c))
			{
				tx_abort();
				MemoryContextSwitchTo(CycleContext);
				return RUN_ABANDONED;
			}
			run_plan(PLAN(plan_state_verify_end, SQL_STATE_VERIFY_END, TEXTOID), SQL_STATE_VERIFY_END,
					 v, NULL, SPI_OK_UPDATE);
			tx_commit();
			c->verify_run = -1;
			MemoryContextSwitchTo(CycleContext);
			return RUN_DONE;
		}
		tx_commit();

		gone = palloc(sizeof(int64) * nids);
		memset(&found, 0, sizeof(found));
		for (i = 0; i < nids; i++)
		{
			StringInfoData url;
			OneLoginResponse resp;
			FetchResult fr;
			char	   *detail;
			char		path[64];

			snprintf(path, sizeof(path), "/api/2/users/" INT64_FORMAT, ids[i]);
			initStringInfo(&url);
			appendStringInfo(&url, "%s%s", c->base_url, path);
			onelogin_url_append_param(&url, "fields", USER_FIELDS);
			set_phase(c->workspace, "reconciliation, checking user %d", ++checked);
			fr = fetch(c, url.data, "/api/2/users/{id}", &resp);
			if (fr == FETCH_NOT_FOUND)
				gone[ngone++] = ids[i];
			else if (fr != FETCH_OK)
			{
				MemoryContextSwitchTo(CycleContext);
				return fr == FETCH_ABANDONED ? RUN_ABANDONED : RUN_STOPPED;
			}
			else if (!onelogin_parse_users(resp.body, resp.body_len, scim_onelogin_user_type_attribute,
										   true, &found, &detail))
			{
				record_failure(c, FAIL_TRANSIENT, 502, "GET", "/api/2/users/{id}", -1,
							   psprintf("malformed user " INT64_FORMAT ": %s", ids[i], detail));
				MemoryContextSwitchTo(CycleContext);
				return RUN_STOPPED;
			}
			else if (found.nusers > 0 && found.users[found.nusers - 1].id != ids[i])
			{
				/* OneLogin answered for another id: never trust that */
				found.nusers--;
			}
		}
		prepare_users(found.users, found.nusers, &prep);

		if (!tx_begin())
		{
			MemoryContextSwitchTo(CycleContext);
			return RUN_ABANDONED;
		}
		if (!lock_state(c))
		{
			tx_abort();
			MemoryContextSwitchTo(CycleContext);
			return RUN_ABANDONED;
		}
		applied = apply_users(c, &prep, true, c->verify_run, &created);
		deprovisioned = deprovision_ids(c, gone, ngone);
		v[0] = text_datum(c->workspace);
		v[1] = Int64GetDatum((int64) deprovisioned);
		v[2] = Int64GetDatum((int64) applied);
		run_plan(PLAN(plan_state_verify, SQL_STATE_VERIFY, TEXTOID, INT8OID, INT8OID), SQL_STATE_VERIFY,
				 v, NULL, SPI_OK_UPDATE);
		tx_commit();
	}
}

#define SQL_STATE_EVENTS_PAGE \
	"UPDATE scim.onelogin_state SET events_since = $3, events_cursor = $2," \
	" events_run_max = CASE WHEN $6 THEN $4 ELSE greatest(events_run_max, $4) END," \
	" events_seen = events_seen OPERATOR(pg_catalog.+) $5," \
	" deprovisioned = deprovisioned OPERATOR(pg_catalog.+) $7" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1"

#define SQL_STATE_EVENTS_END \
	"UPDATE scim.onelogin_state SET" \
	" events_high_water = greatest(events_high_water, events_run_max, $2)," \
	" events_cursor = NULL, events_since = NULL, events_run_max = NULL" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1"

/*
 * Deletions: user-deleted events (type 17) since the events high-water
 * mark minus the overlap, page by page with pagination.after_cursor.
 */
static RunResult
sync_events(Conn *c)
{
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz since;
	char	   *cursor = c->events_cursor;
	bool		first = (cursor == NULL);
	int			pageno;

	if (cursor != NULL && c->events_since != NULL_TS)
		since = c->events_since;
	else if (c->events_high_water != NULL_TS)
		since = TimestampTzPlusMilliseconds(c->events_high_water, -(int64) scim_sync_overlap * 1000);
	else
		return RUN_DONE;		/* no full sync yet: nothing to delete */

	for (pageno = 1;; pageno++)
	{
		StringInfoData url;
		OneLoginResponse resp;
		OneLoginEventPage page;
		FetchResult fr;
		char	   *detail;
		char		buf[64];
		int64	   *ids;
		int			nids = 0;
		int			i;
		int			deprovisioned;
		TimestampTz max_created = NULL_TS;
		Datum		v[7];
		char		nulls[8] = "       ";

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(PageContext);
		MemoryContextSwitchTo(PageContext);

		initStringInfo(&url);
		appendStringInfo(&url, "%s/api/1/events", c->base_url);
		onelogin_url_append_param(&url, "event_type_id", "17");
		onelogin_format_timestamp(since, buf, sizeof(buf));
		onelogin_url_append_param(&url, "since", buf);
		if (cursor != NULL)
			onelogin_url_append_param(&url, "after_cursor", cursor);

		set_phase(c->workspace, "fetching deletion events page %d", pageno);
		fr = fetch(c, url.data, "/api/1/events", &resp);
		if (fr == FETCH_NOT_FOUND)
		{
			record_failure(c, FAIL_PERMANENT, 404, "GET", "/api/1/events", -1,
						   "OneLogin has no events endpoint at this base URL (HTTP 404)");
			fr = FETCH_FAILED;
		}
		if (fr != FETCH_OK)
		{
			MemoryContextSwitchTo(CycleContext);
			return fr == FETCH_ABANDONED ? RUN_ABANDONED : RUN_STOPPED;
		}
		memset(&page, 0, sizeof(page));
		if (!onelogin_parse_events(resp.body, resp.body_len, &page, &detail))
		{
			record_failure(c, FAIL_TRANSIENT, 502, "GET", "/api/1/events", -1,
						   psprintf("malformed events page %d, nothing of it applied: %s", pageno, detail));
			MemoryContextSwitchTo(CycleContext);
			return RUN_STOPPED;
		}

		if (page.after_cursor != NULL && cursor != NULL && strcmp(page.after_cursor, cursor) == 0)
			page.after_cursor = NULL;	/* the same cursor again: stop */
		ids = palloc(sizeof(int64) * Max(page.nevents, 1));
		for (i = 0; i < page.nevents; i++)
		{
			OneLoginEvent *e = &page.events[i];

			if (e->created_at != NULL && (max_created == NULL_TS || e->created_ts > max_created))
				max_created = e->created_ts;
			if (e->event_type_id == 17 && e->user_id >= 0)
				ids[nids++] = e->user_id;
		}

		if (!tx_begin())
		{
			MemoryContextSwitchTo(CycleContext);
			return RUN_ABANDONED;
		}
		if (!lock_state(c))
		{
			tx_abort();
			MemoryContextSwitchTo(CycleContext);
			return RUN_ABANDONED;
		}
		deprovisioned = deprovision_ids(c, ids, nids);
		v[0] = text_datum(c->workspace);
		text_param(page.after_cursor, &v[1], &nulls[1]);
		ts_param(since, &v[2], &nulls[2]);
		ts_param(max_created, &v[3], &nulls[3]);
		v[4] = Int64GetDatum((int64) page.nevents);
		v[5] = BoolGetDatum(first);
		v[6] = Int64GetDatum((int64) deprovisioned);
		run_plan(PLAN(plan_state_events_page, SQL_STATE_EVENTS_PAGE, TEXTOID, TEXTOID, TIMESTAMPTZOID,
					  TIMESTAMPTZOID, INT8OID, BOOLOID, INT8OID),
				 SQL_STATE_EVENTS_PAGE, v, nulls, SPI_OK_UPDATE);
		if (page.after_cursor == NULL)
		{
			v[1] = TimestampTzGetDatum(started);
			run_plan(PLAN(plan_state_events_end, SQL_STATE_EVENTS_END, TEXTOID, TIMESTAMPTZOID),
					 SQL_STATE_EVENTS_END, v, NULL, SPI_OK_UPDATE);
		}
		tx_commit();
		first = false;

		if (page.after_cursor == NULL)
		{
			c->events_cursor = NULL;
			MemoryContextSwitchTo(CycleContext);
			return rate_budget_exhausted(c, &resp) ? RUN_STOPPED : RUN_DONE;
		}
		cursor = MemoryContextStrdup(CycleContext, page.after_cursor);
		c->events_cursor = cursor;
		if (rate_budget_exhausted(c, &resp))
		{
			MemoryContextSwitchTo(CycleContext);
			return RUN_STOPPED;
		}
	}
}

/* One connection: users, reconciliation, deletions, then success. */
static RunResult
sync_connection(Conn *c)
{
	RunResult	r;

	if (onelogin_url_is_http(c->base_url) && !scim_allow_http)
	{
		record_failure(c, FAIL_PERMANENT, 0, "GET", "", -1,
					   "the OneLogin base URL uses plain http, which scim_provision.allow_http = off refuses");
		return RUN_STOPPED;
	}
	r = sync_users(c);
	if (r == RUN_DONE)
		r = verify_unseen(c);
	if (r == RUN_DONE)
		r = sync_events(c);
	if (r == RUN_DONE)
		record_success(c);
	return r;
}

/*
 * Run one connection, turning an unexpected error into a recorded failure
 * instead of a worker restart.
 */
static RunResult
run_connection(Conn *c)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile RunResult r = RUN_STOPPED;

	PG_TRY();
	{
		r = sync_connection(c);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		debug_query_string = NULL;
		record_failure(c, FAIL_TRANSIENT, 500, "GET", "", -1,
					   psprintf("internal error: %s", edata->message ? edata->message : "unknown"));
		FreeErrorData(edata);
		r = RUN_STOPPED;
	}
	PG_END_TRY();
	return r;
}

/* Whether a connection is due now; otherwise when it will be. */
static bool
connection_due(Conn *c, TimestampTz now, TimestampTz *due_at)
{
	if (c->backoff_until != NULL_TS)
	{
		if (now < c->backoff_until)
		{
			*due_at = c->backoff_until;
			return false;
		}
		return true;			/* retry after the back-off */
	}
	if (c->run_cursor != NULL || c->verify_run >= 0 || c->events_cursor != NULL)
		return true;			/* resume an unfinished run */
	if (c->wake_seq > c->handled_seq || c->last_attempt_at == NULL_TS)
		return true;
	*due_at = TimestampTzPlusMilliseconds(c->last_attempt_at, (int64) scim_sync_interval * 1000);
	return now >= *due_at;
}

/*
 * One scheduling cycle; returns how long to sleep (ms).
 */
static long
run_cycle(void)
{
	List	   *conns;
	ListCell   *lc;
	TimestampTz now;
	TimestampTz next;
	bool		ran = false;
	bool		abandoned = false;

	MemoryContextReset(CycleContext);
	MemoryContextSwitchTo(CycleContext);

	if (RecoveryInProgress())
	{
		set_phase(NULL, "idle: server in recovery");
		return RECHECK_MS;
	}
	if (!load_connections(&conns))
	{
		set_phase(NULL, "idle: waiting for extension scim_provision");
		return RECHECK_MS;
	}

	now = GetCurrentTimestamp();
	next = TimestampTzPlusMilliseconds(now, (int64) scim_sync_interval * 1000);
	foreach(lc, conns)
	{
		Conn	   *c = (Conn *) lfirst(lc);
		TimestampTz due_at = next;

		if (connection_due(c, now, &due_at))
		{
			RunResult	r = run_connection(c);

			ran = true;
			if (r == RUN_ABANDONED)
				abandoned = true;
			MemoryContextSwitchTo(CycleContext);
		}
		else if (due_at < next)
			next = due_at;
	}
	set_phase(NULL, "idle");
	if (abandoned)
		return 1000;			/* things are changing under us: look again soon */
	if (ran)
		return 0;				/* re-read the state and schedule again */
	now = GetCurrentTimestamp();
	if (next <= now)
		return 0;
	return (long) Min((next - now) / 1000 + 1, (int64) INT_MAX);
}

/*
 * Each page allocates a few megabytes (the response, the parsed users, the
 * SCIM documents, the executor's state for a batch of 1000 rows) and frees
 * them when it is done.  glibc hands blocks that large back to the kernel
 * (mmap'd chunks at once, the top of the heap beyond the trim threshold),
 * so every page faulted the same memory in again: on a virtualised host a
 * third of a bulk pull went to page faults.  This process keeps what it
 * freed instead, up to a bound; it is a long-lived worker whose peak is a
 * page's worth of memory.
 */
static void
keep_freed_memory(void)
{
#ifdef __GLIBC__
	(void) mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	(void) mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024);
	(void) mallopt(M_TOP_PAD, 4 * 1024 * 1024);
#endif
}

void
scim_worker_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(scim_worker_database, NULL, 0);
	pgstat_report_appname("scim_provision worker");
	/* our SQL is schema-qualified; make sure nothing else can interfere */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

	SpinLockAcquire(&scim_shared->mutex);
	scim_shared->worker_pid = MyProcPid;
	scim_shared->worker_latch = MyLatch;
	SpinLockRelease(&scim_shared->mutex);
	before_shmem_exit(worker_detach, (Datum) 0);

	WorkerContext = AllocSetContextCreate(TopMemoryContext, "scim_provision worker",
										  ALLOCSET_DEFAULT_SIZES);
	CycleContext = AllocSetContextCreate(WorkerContext, "scim_provision cycle",
										 ALLOCSET_DEFAULT_SIZES);
	PageContext = AllocSetContextCreate(WorkerContext, "scim_provision page",
										ALLOCSET_DEFAULT_SIZES);
	onelogin_http_init();
	keep_freed_memory();

	ereport(LOG,
			(errmsg("scim_provision worker started in database \"%s\"", scim_worker_database)));

	for (;;)
	{
		long		sleep_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		sleep_ms = run_cycle();
		MemoryContextSwitchTo(WorkerContext);
		sleep_ms = scim_log_upkeep(sleep_ms);	/* log_upkeep.c: System Log maintenance when due */
		MemoryContextSwitchTo(WorkerContext);
		if (sleep_ms > 0)
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---------------------------------------------------------------------
 * SQL-callable helpers
 * ---------------------------------------------------------------------
 */

/*
 * scim._worker_check() RETURNS void: raise a clear error when the OneLogin
 * worker cannot serve this database.
 */
Datum
scim_worker_check(PG_FUNCTION_ARGS)
{
	char	   *dbname;

	if (scim_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("scim_provision is not loaded through shared_preload_libraries"),
				 errdetail("The OneLogin sync runs in a background worker, which only a preloaded library can start."),
				 errhint("Add scim_provision to shared_preload_libraries in postgresql.conf and restart the server.")));
	dbname = get_database_name(MyDatabaseId);
	if (scim_worker_database == NULL || dbname == NULL || strcmp(dbname, scim_worker_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the scim_provision worker does not run in this database"),
				 errdetail("scim_provision.database is \"%s\".", scim_worker_database ? scim_worker_database : ""),
				 errhint("Connect to that database, or set scim_provision.database to \"%s\" and restart the server.",
						 dbname ? dbname : "")));
	PG_RETURN_VOID();
}

static void
wake_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		if (wake_at_commit && scim_shared != NULL)
		{
			Latch	   *worker;
			Latch	   *launcher;

			SpinLockAcquire(&scim_shared->mutex);
			worker = scim_shared->worker_latch;
			launcher = scim_shared->launcher_latch;
			SpinLockRelease(&scim_shared->mutex);
			if (worker != NULL)
				SetLatch(worker);
			else if (launcher != NULL)
				SetLatch(launcher);
		}
		wake_at_commit = false;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
			 event == XACT_EVENT_PREPARE)
		wake_at_commit = false;
}

/*
 * scim._worker_wake() RETURNS void: wake the worker when the calling
 * transaction commits (once, however often it is called).
 */
Datum
scim_worker_wake(PG_FUNCTION_ARGS)
{
	if (!wake_callback_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		wake_callback_registered = true;
	}
	wake_at_commit = true;
	PG_RETURN_VOID();
}

/*
 * scim._worker_activity(OUT pid, OUT workspace, OUT phase, OUT phase_since):
 * what the worker is doing right now (all NULL when it is not running).
 */
Datum
scim_worker_activity(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {true, true, true, true};
	pid_t		pid = 0;
	char		workspace[NAMEDATALEN];
	char		phase[96];
	TimestampTz since = 0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);

	if (scim_shared != NULL)
	{
		SpinLockAcquire(&scim_shared->mutex);
		pid = scim_shared->worker_pid;
		strlcpy(workspace, scim_shared->workspace, sizeof(workspace));
		strlcpy(phase, scim_shared->phase, sizeof(phase));
		since = scim_shared->phase_since;
		SpinLockRelease(&scim_shared->mutex);
	}
	if (pid != 0)
	{
		values[0] = Int32GetDatum((int32) pid);
		nulls[0] = false;
		if (workspace[0] != '\0')
		{
			values[1] = CStringGetTextDatum(workspace);
			nulls[1] = false;
		}
		if (phase[0] != '\0')
		{
			values[2] = CStringGetTextDatum(phase);
			values[3] = TimestampTzGetDatum(since);
			nulls[2] = nulls[3] = false;
		}
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
