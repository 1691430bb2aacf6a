/*-------------------------------------------------------------------------
 *
 * worker_apply.c
 *		OneLogin worker: applying one batch of OneLogin users (or deletions)
 *		inside the caller's transaction, exactly once: users whose updated_at
 *		is unchanged since they were applied are skipped.
 *
 * src/worker_apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/uuid.h"

#include "worker.h"

/* saved plans */
static SPIPlanPtr plan_map_lookup;
static SPIPlanPtr plan_provision_batch;
static SPIPlanPtr plan_provision_one;
static SPIPlanPtr plan_map_upsert;
static SPIPlanPtr plan_map_seen;
static SPIPlanPtr plan_map_delete;
static SPIPlanPtr plan_deprovision;

/* ---------------------------------------------------------------------
 * Applying users
 * ---------------------------------------------------------------------
 */

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

void
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
int
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
int
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

