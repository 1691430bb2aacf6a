/*-------------------------------------------------------------------------
 *
 * log_upkeep.c
 *		System Log upkeep (#12): the settings of the log's lifecycle and the
 *		background worker's scheduled maintenance.
 *
 * The maintenance itself is SQL (scim.log_maintain_step, in
 * src/sql/75_log_lifecycle.sql): partitions ahead, expired partitions
 * dropped, expired rows deleted a batch at a time.  When the library is
 * preloaded, the worker's main loop calls scim_log_upkeep() every time
 * round; every scim_provision.log_maintenance_interval it runs the steps,
 * each in its own short transaction, until none is left (a step that does
 * not get its lock in time answers "nothing left": the next run retries).
 * An error in a step is reported and the run ends; the worker carries on.
 * Without the preload, CALL scim.maintain() does the same steps (pg_cron).
 *
 * src/log_upkeep.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "scim_provision.h"

/* at most this many steps per run, so that a huge backlog never starves the sync */
#define UPKEEP_MAX_STEPS	10000

static int	log_maintenance_interval = 3600;	/* seconds; 0 disables */
static char *log_partition = NULL;
static int	log_partitions_ahead = 7;
static int	log_lock_timeout = 100;		/* ms */
static char *log_request_id = NULL;

static TimestampTz next_upkeep = 0;

static bool
check_log_partition(char **newval, void **extra, GucSource source)
{
	if (strcmp(*newval, "day") == 0 || strcmp(*newval, "month") == 0)
		return true;
	GUC_check_errdetail("The System Log is partitioned by \"day\" or by \"month\".");
	return false;
}

void
scim_log_upkeep_init_gucs(void)
{
	DefineCustomStringVariable("scim_provision.log_partition",
							   "Period of one System Log partition: day or month.",
							   "Takes effect for the partitions maintenance creates next.",
							   &log_partition, "day",
							   PGC_SUSET, 0, check_log_partition, NULL, NULL);
	DefineCustomIntVariable("scim_provision.log_partitions_ahead",
							"System Log partitions created ahead of the current one.",
							NULL, &log_partitions_ahead, 7, 1, 366,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("scim_provision.log_lock_timeout",
							"Longest wait of System Log maintenance for a lock (DROP, ATTACH).",
							"A SCIM request queued behind maintenance waits no longer; maintenance retries on its next run.",
							&log_lock_timeout, 100, 1, 60000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("scim_provision.log_maintenance_interval",
							"Seconds between two System Log maintenance runs of the background worker (0: none).",
							NULL, &log_maintenance_interval, 3600, 0, 7 * 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("scim_provision.request_id",
							   "Correlation id of the current SCIM request, stored on its System Log rows.",
							   "Set per transaction by scim_api.dispatch (SECURITY DEFINER) from X-Request-Id; superuser-only like every setting, so a client cannot forge it.",
							   &log_request_id, "",
							   PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL, NULL, NULL, NULL);
}

/* One step in its own transaction; true when it did something. */
static bool
upkeep_step(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool did = false;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (OidIsValid(get_extension_oid("scim_provision", true)))
		{
			const char *sql = "SELECT scim.log_maintain_step()";
			int			ret;

			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			/* an extension not yet updated to 0.3.0 has no maintenance */
			ret = SPI_execute("SELECT pg_catalog.to_regprocedure('scim.log_maintain_step(integer)') IS NOT NULL",
							  true, 1);
			if (ret != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
			if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") == 0)
			{
				char	   *what;

				pgstat_report_activity(STATE_RUNNING, sql);
				ret = SPI_execute(sql, false, 1);
				if (ret != SPI_OK_SELECT || SPI_processed != 1)
					elog(ERROR, "%s failed: %s", sql, SPI_result_code_string(ret));
				what = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
				if (what != NULL)
				{
					ereport(LOG, (errmsg("scim_provision System Log maintenance: %s", what)));
					did = true;
				}
			}
			SPI_finish();
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		debug_query_string = NULL;
		did = false;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	return did;
}

/*
 * Called once per round of the worker's main loop with the time it means to
 * sleep; runs the maintenance when due and returns how long to sleep so as
 * to wake for the next run.  The first run is at the worker's start.
 */
long
scim_log_upkeep(long sleep_ms)
{
	TimestampTz now;
	long		until;
	int			i;

	if (log_maintenance_interval <= 0)
		return sleep_ms;
	now = GetCurrentTimestamp();
	if (now >= next_upkeep)
	{
		for (i = 0; i < UPKEEP_MAX_STEPS && upkeep_step(); i++)
			CHECK_FOR_INTERRUPTS();
		next_upkeep = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												  (int64) log_maintenance_interval * 1000);
	}
	until = (long) ((next_upkeep - GetCurrentTimestamp()) / 1000) + 1;
	if (sleep_ms <= 0)
		return sleep_ms;
	return Min(sleep_ms, Max(until, 1));
}
