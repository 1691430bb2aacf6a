/*-------------------------------------------------------------------------
 *
 * worker_reconcile.c
 *		OneLogin worker: the reconciliation after a full run; every mapped id
 *		the run did not see is looked up one by one (404 deprovisions,
 *		200 applies).
 *
 * src/worker_reconcile.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/backend_status.h"
#include "utils/memutils.h"

#include "worker.h"

/* saved plans */
static SPIPlanPtr plan_verify_list;
static SPIPlanPtr plan_state_verify;
static SPIPlanPtr plan_state_verify_end;

#define SQL_VERIFY_LIST \
	"SELECT m.onelogin_id FROM scim.onelogin_users m" \
	" WHERE m.workspace OPERATOR(pg_catalog.=) $1 AND m.seen_run OPERATOR(pg_catalog.<) $2" \
	" ORDER BY m.onelogin_id LIMIT " CppAsString2(VERIFY_BATCH)

#define SQL_STATE_VERIFY \
	"UPDATE scim.onelogin_state SET deprovisioned = deprovisioned OPERATOR(pg_catalog.+) $2," \
	" users_applied = users_applied OPERATOR(pg_catalog.+) $3," \
	" consecutive_failures = 0, backoff_until = NULL, backoff_reason = NULL" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1"

#define SQL_STATE_VERIFY_END \
	"UPDATE scim.onelogin_state SET verify_run = NULL, last_reconcile_at = pg_catalog.now()," \
	" consecutive_failures = 0, backoff_until = NULL, backoff_reason = NULL" \
	" WHERE workspace OPERATOR(pg_catalog.=) $1"

/*
 * Reconciliation after a full run: every id we know that the run did not
 * see is looked up one by one; 404 deprovisions, 200 applies.
 */
RunResult
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
			c->failures = 0;
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
		c->failures = 0;
	}
}

