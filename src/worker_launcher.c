/*-------------------------------------------------------------------------
 *
 * worker_launcher.c
 *		OneLogin worker: GUCs, shared memory, registration of the launcher,
 *		the launcher process (starts and restarts the worker in
 *		scim_provision.database), and the SQL functions that wake the
 *		worker or report what it does.
 *
 * src/worker_launcher.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

#include "scim_provision.h"
#include "worker.h"

PGDLLEXPORT void scim_launcher_main(Datum main_arg) pg_attribute_noreturn();

PG_FUNCTION_INFO_V1(scim_worker_check);
PG_FUNCTION_INFO_V1(scim_worker_wake);
PG_FUNCTION_INFO_V1(scim_worker_activity);

/* ---------- GUCs ---------- */

char	   *scim_worker_database = NULL;
int			scim_sync_interval = 300;
int			scim_connect_timeout = 10000;
int			scim_request_timeout = 60000;
int			scim_page_size = 100;
int			scim_max_backoff = 600;
bool		scim_allow_http = false;
int			scim_reconcile_interval = 86400;
int			scim_sync_overlap = 60;
bool		scim_gap_detection = true;
char	   *scim_onelogin_user_type_attribute = NULL;
char	   *scim_onelogin_inactive_statuses = NULL;
char	   *scim_onelogin_inactive_states = NULL;

/* ---------- shared memory ---------- */

ScimWorkerShared *scim_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* wake-at-commit state of a backend calling scim.sync_now() */
static bool wake_callback_registered = false;
static bool wake_at_commit = false;

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
	DefineCustomBoolVariable("scim_provision.gap_detection",
							 "Lists OneLogin's users again when the list changed during a sync.",
							 "OneLogin pages by offset: a user deleted on an earlier page moves the later ones up, "
							 "and one user is never served.  Turn off only to measure what the check costs.",
							 &scim_gap_detection, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
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

