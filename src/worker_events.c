/*-------------------------------------------------------------------------
 *
 * worker_events.c
 *		OneLogin worker: the deletions step, user-deleted events (type 17)
 *		page after page of GET /api/1/events, and the check the users step
 *		makes of them at the end of each pass.
 *
 * src/worker_events.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/backend_status.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "worker.h"

/* saved plans */
static SPIPlanPtr plan_state_events_page;
static SPIPlanPtr plan_state_events_end;

#define SQL_STATE_EVENTS_PAGE \
	"UPDATE scim.onelogin_state SET events_since = $3, events_cursor = $2," \
	" events_run_max = CASE WHEN $6 THEN $4 ELSE greatest(events_run_max, $4) END," \
	" events_seen = events_seen OPERATOR(pg_catalog.+) $5," \
	" deprovisioned = deprovisioned OPERATOR(pg_catalog.+) $7," \
	" consecutive_failures = 0, backoff_until = NULL, backoff_reason = NULL" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1"

#define SQL_STATE_EVENTS_END \
	"UPDATE scim.onelogin_state SET" \
	" events_high_water = greatest(events_high_water, events_run_max, $2)," \
	" events_cursor = NULL, events_since = NULL, events_run_max = NULL" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1"

/*
 * One page of user-deleted events (type 17) since "since", after "cursor"
 * (NULL: the first page), fetched and parsed into *page.  A failure is
 * recorded ("purpose" says in the malformed-page message what happens
 * next) and returned as the step's result; RUN_DONE when *page holds the
 * page.  A page that hands back the cursor it was given ends the list
 * (after_cursor NULL).  Allocates in the current context.
 */
static RunResult
fetch_deletions_page(Conn *c, TimestampTz since, const char *cursor, int pageno,
					 const char *purpose, OneLoginEventPage *page, OneLoginResponse *resp)
{
	StringInfoData url;
	FetchResult fr;
	char	   *detail;
	char		buf[64];

	initStringInfo(&url);
	appendStringInfo(&url, "%s/api/1/events", c->base_url);
	onelogin_url_append_param(&url, "event_type_id", "17");
	onelogin_format_timestamp(since, buf, sizeof(buf));
	onelogin_url_append_param(&url, "since", buf);
	if (cursor != NULL)
		onelogin_url_append_param(&url, "after_cursor", cursor);

	fr = fetch(c, url.data, "/api/1/events", resp);
	if (fr == FETCH_NOT_FOUND)
	{
		record_failure(c, FAIL_PERMANENT, 404, "GET", "/api/1/events", -1,
					   "OneLogin has no events endpoint at this base URL (HTTP 404)");
		fr = FETCH_FAILED;
	}
	if (fr != FETCH_OK)
		return fr == FETCH_ABANDONED ? RUN_ABANDONED : RUN_STOPPED;
	memset(page, 0, sizeof(*page));
	if (!onelogin_parse_events(resp->body, resp->body_len, page, &detail))
	{
		record_failure(c, FAIL_TRANSIENT, 502, "GET", "/api/1/events", -1,
					   psprintf("malformed events page %d, %s: %s", pageno, purpose, detail));
		return RUN_STOPPED;
	}
	if (page->after_cursor != NULL && cursor != NULL && strcmp(page->after_cursor, cursor) == 0)
		page->after_cursor = NULL;	/* the same cursor again: stop */
	return RUN_DONE;
}

/*
 * Deletions: user-deleted events (type 17) since the events high-water
 * mark minus the overlap, page by page with pagination.after_cursor.
 */
RunResult
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
		OneLoginResponse resp;
		OneLoginEventPage page;
		RunResult	r;
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

		set_phase(c->workspace, "fetching deletion events page %d", pageno);
		r = fetch_deletions_page(c, since, cursor, pageno, "nothing of it applied", &page, &resp);
		if (r != RUN_DONE)
		{
			MemoryContextSwitchTo(CycleContext);
			return r;
		}
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
		c->failures = 0;

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


/*
 * Deletions during a users pass (see "Gap detection" in worker_users.c):
 * whether OneLogin recorded a user-deleted event since "since" that is
 * newer, by (created_at, id), than (*seen_at, *seen_id), the newest one
 * this attempt has already accounted for; the mark moves on to the newest
 * event found.  An event already accounted for was returned before the
 * next pass's first request, so it cannot have shifted that pass: a pass
 * is never listed again for the same deletion twice, whatever the clocks
 * say.  Nothing is applied here (the deletions step deprovisions those
 * users) and no transaction is open; allocates in the current context.
 */
RunResult
deletions_during_pass(Conn *c, TimestampTz since, TimestampTz *seen_at, int64 *seen_id, bool *found)
{
	char	   *cursor = NULL;
	int			pageno;

	*found = false;
	for (pageno = 1;; pageno++)
	{
		OneLoginResponse resp;
		OneLoginEventPage page;
		RunResult	r;
		int			i;

		CHECK_FOR_INTERRUPTS();
		set_phase(c->workspace, "checking deletions during the users pass, events page %d", pageno);
		r = fetch_deletions_page(c, since, cursor, pageno, "the users pass is checked again", &page, &resp);
		if (r != RUN_DONE)
			return r;
		for (i = 0; i < page.nevents; i++)
		{
			OneLoginEvent *e = &page.events[i];

			/* OneLogin dates every event; an undated one cannot be placed */
			if (e->event_type_id != 17 || e->created_at == NULL)
				continue;
			if (*seen_at == NULL_TS || e->created_ts > *seen_at ||
				(e->created_ts == *seen_at && e->id > *seen_id))
			{
				*found = true;
				*seen_at = e->created_ts;
				*seen_id = e->id;
			}
		}
		if (page.after_cursor == NULL)
			return RUN_DONE;
		cursor = pstrdup(page.after_cursor);
		if (rate_budget_exhausted(c, &resp))
			return RUN_STOPPED;
	}
}
