/*-------------------------------------------------------------------------
 *
 * worker_loop.c
 *		OneLogin worker process: the main loop, the scheduling cycle that
 *		picks the connections that are due, and the run of one connection
 *		(users, reconciliation, deletions, then success).
 *
 * src/worker_loop.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "worker.h"

PGDLLEXPORT void scim_worker_main(Datum main_arg) pg_attribute_noreturn();

MemoryContext WorkerContext = NULL;
MemoryContext CycleContext = NULL;
MemoryContext PageContext = NULL;

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
void
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
		if (sleep_ms > 0)
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

