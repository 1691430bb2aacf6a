/*-------------------------------------------------------------------------
 *
 * worker_users.c
 *		OneLogin worker: the users step of a run, page after page of
 *		GET /api/2/users, each page applied in one transaction with its
 *		cursor, the run's high-water mark and counters.
 *
 * src/worker_users.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "worker.h"

/* saved plans */
static SPIPlanPtr plan_state_page;
static SPIPlanPtr plan_state_run_end;

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
	"UPDATE scim.onelogin_state SET state = 'syncing', run_kind = $3, run_since = $5," \
	" run_id = CASE WHEN $14 AND $3 OPERATOR(pg_catalog.=) 'full' THEN $4 OPERATOR(pg_catalog.+) 1 ELSE $4 END," \
	" run_started_at = CASE WHEN $9 THEN $6 ELSE run_started_at END," \
	" run_wake_seq = CASE WHEN $9 THEN $11 ELSE run_wake_seq END," \
	" run_finished_at = CASE WHEN $9 THEN NULL ELSE run_finished_at END," \
	" run_max_updated = CASE WHEN $9 THEN $7 ELSE greatest(run_max_updated, $7) END," \
	" run_pages = CASE WHEN $9 THEN 1 ELSE run_pages OPERATOR(pg_catalog.+) 1 END," \
	" run_users_seen = CASE WHEN $9 THEN 0 ELSE run_users_seen END OPERATOR(pg_catalog.+) $8," \
	" run_users_applied = CASE WHEN $9 THEN 0 ELSE run_users_applied END OPERATOR(pg_catalog.+) $10," \
	" pages = pages OPERATOR(pg_catalog.+) 1, users_seen = users_seen OPERATOR(pg_catalog.+) $8," \
	" users_applied = users_applied OPERATOR(pg_catalog.+) $10," \
	" run_cursor = CASE WHEN $14 THEN '' ELSE $2 END," \
	" run_total = CASE WHEN $14 THEN NULL ELSE $12 END," \
	" run_shifted = $13 AND NOT $14," \
	" run_relists = CASE WHEN $9 THEN 0 ELSE run_relists END" \
	"   OPERATOR(pg_catalog.+) CASE WHEN $14 THEN 1 ELSE 0 END," \
	" relists = relists OPERATOR(pg_catalog.+) CASE WHEN $14 THEN 1 ELSE 0 END," \
	" consecutive_failures = 0, backoff_until = NULL, backoff_reason = NULL" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1"

#define SQL_STATE_RUN_END \
	"UPDATE scim.onelogin_state SET" \
	" users_high_water = coalesce(greatest(users_high_water, run_max_updated), run_started_at)," \
	" events_high_water = coalesce(events_high_water, run_started_at)," \
	" verify_run = CASE WHEN run_kind OPERATOR(pg_catalog.=) 'full' THEN run_id ELSE verify_run END," \
	" run_finished_at = pg_catalog.now()" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1"

/*
 * Gap detection.  OneLogin pages by offset (the cursor encodes limit and
 * page): between two page requests, a user deleted at or before the next
 * page's offset moves every later user up by one, and the user that moves
 * across the page boundary is never served; a user inserted there pushes
 * one back (served twice, harmless) and is not served itself.  Nothing
 * else can move a user across the cursor, because the pass asks for a
 * stable order, sort=+id: ids never change, so an update leaves a user
 * where it was (under updated_since it may enter the list, which is an
 * insertion).  So a pass can miss a user only if a user was inserted or
 * deleted while it ran, and the run looks for both:
 *
 * - insertions change Total-Count, which every page carries: a page whose
 *   Total-Count differs from the previous page's marks the pass;
 * - deletions are learnt from OneLogin's user-deleted events: once the
 *   last page is fetched, and before it is applied, the run asks for the
 *   events dated since the pass's first request (minus sync_overlap for
 *   the clocks; see deletions_during_pass) and any it has not accounted
 *   for marks the pass.  This covers the case Total-Count cannot see, a
 *   deletion and an insertion between the same two page requests.
 *
 * A marked pass is listed again from the first page within the same run
 * (same updated_since; a full run's new pass takes the next run id, so the
 * reconciliation afterwards checks what only an earlier pass saw, e.g. a
 * user deleted meanwhile).  Users already applied are skipped as
 * unchanged, so nothing is applied twice, and the user that was skipped is
 * applied.  The Total-Count marks are committed with each page, so a
 * restart resumes that check; a pass resumed after a restart checks the
 * deletions since the run started, a superset.  What remains is what
 * OneLogin itself must provide: a deletion whose event is not yet
 * returned by the events API when the pass ends.
 *
 * Returns whether this page shows a change; updates what the next page is
 * compared with.
 */
static bool
list_changed(int total_count, int64 *total)
{
	bool		changed = false;

	if (total_count >= 0)
	{
		if (*total >= 0 && total_count != *total)
			changed = true;
		*total = total_count;
	}
	return changed;
}

/*
 * Users: resume the run in progress or start one, and apply page after
 * page, each page in one transaction with its cursor.  A pass that saw the
 * list change under it is listed again (see list_changed), at most
 * MAX_RELISTS times per attempt; then the run waits for a back-off and
 * lists again, so it never ends while it may have missed a user.
 */
RunResult
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
	int64		total = -1;
	bool		shifted = false;
	int			relists_now = 0;
	TimestampTz pass_started;
	TimestampTz deletions_seen_at = NULL_TS;
	int64		deletions_seen_id = -1;

	if (c->run_cursor != NULL)
	{
		pagebase = c->run_pages;
		first = false;
		full = c->run_full;
		run_id = c->run_id;
		since = c->run_since;
		started = c->run_started_at;
		/* "" marks a pass to be listed again from the first page */
		cursor = c->run_cursor[0] != '\0' ? c->run_cursor : NULL;
		total = c->run_total;
		shifted = c->run_shifted;
		/* a pass resumed mid-way checks the deletions since the run began */
		pass_started = cursor != NULL ? started : now;
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
		pass_started = now;
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
		Datum		v[14];
		char		nulls[15] = "              ";
		bool		relist = false;
		bool		give_up = false;
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
		/* a stable order: ids never change, so updates move no one */
		onelogin_url_append_param(&url, "sort", "+id");
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
		if (scim_gap_detection && list_changed(resp.total_count, &total))
			shifted = true;
		if (next == NULL && scim_gap_detection)
		{
			/*
			 * The last page: before it is applied (and the run may end),
			 * the deletions OneLogin recorded since the pass began.
			 */
			bool		deleted;
			RunResult	r;

			r = deletions_during_pass(c,
									  TimestampTzPlusMilliseconds(pass_started,
																  -(int64) scim_sync_overlap * 1000),
									  &deletions_seen_at, &deletions_seen_id, &deleted);
			if (r != RUN_DONE)
			{
				MemoryContextSwitchTo(CycleContext);
				return r;
			}
			if (deleted)
				shifted = true;
		}
		if (next == NULL && shifted && scim_gap_detection)
		{
			relist = true;
			give_up = (relists_now >= MAX_RELISTS);
		}
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
		v[11] = Int64GetDatum(total);
		nulls[11] = (total >= 0) ? ' ' : 'n';
		v[12] = BoolGetDatum(shifted);
		v[13] = BoolGetDatum(relist);
		run_plan(PLAN(plan_state_page, SQL_STATE_PAGE, TEXTOID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID,
					  TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, BOOLOID, INT8OID, INT8OID,
					  INT8OID, BOOLOID, BOOLOID),
				 SQL_STATE_PAGE, v, nulls, SPI_OK_UPDATE);
		if (next == NULL && !relist)
			run_plan(PLAN(plan_state_run_end, SQL_STATE_RUN_END, TEXTOID), SQL_STATE_RUN_END, v, NULL,
					 SPI_OK_UPDATE);
		tx_commit();
		first = false;
		c->failures = 0;
		maybe_analyze_users(c->workspace, created);

		if (relist)
		{
			/*
			 * The list changed under this pass: list it again from the start.
			 * A full run's new pass gets a run id of its own, so that the
			 * reconciliation checks every id only an earlier pass saw (a
			 * user deleted during the run, say) one by one.
			 */
			if (full)
				run_id++;
			c->run_id = run_id;
			c->run_cursor = MemoryContextStrdup(CycleContext, "");
			c->run_relists++;
			cursor = NULL;
			total = -1;
			shifted = false;
			pass_started = GetCurrentTimestamp();
			if (give_up)
			{
				record_failure(c, FAIL_TRANSIENT, 503, "GET", "/api/2/users", -1,
							   psprintf("OneLogin's user list changed during each of %d listings in a row; "
										"listing again after a back-off", relists_now + 1));
				MemoryContextSwitchTo(CycleContext);
				return RUN_STOPPED;
			}
			relists_now++;
			if (rate_budget_exhausted(c, &resp))
			{
				MemoryContextSwitchTo(CycleContext);
				return RUN_STOPPED;
			}
			continue;
		}

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

