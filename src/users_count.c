/*-------------------------------------------------------------------------
 *
 * users_count.c
 *		The statement triggers that keep scim.user_counts (69_paging.sql):
 *		one delta row per INSERT or DELETE statement on scim.users and
 *		workspace, counted from the statement's transition table.
 *
 * totalResults of an unfiltered Users list is the sum of the deltas of the
 * workspace.  Every statement inserts its own rows and nobody updates a
 * shared counter, so concurrent POSTs never wait on each other; readers
 * fold the deltas (scim._count_users).  In C, writing the delta with one
 * heap insert (the table has no index and no trigger; checked), because it
 * runs for every POST: the PL/pgSQL version, and one through SPI, cost
 * about 100 us per statement, most of it executor startup.  Kept apart
 * from users_trigger.c (the per-row rules).
 *
 * src/users_count.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(scim_users_count_delta);

typedef struct WorkspaceCount
{
	text	   *workspace;
	int64		n;
} WorkspaceCount;

/* the attribute number of scim.users.workspace, a text column */
static AttrNumber
workspace_attnum(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), "workspace") == 0 &&
			att->atttypid == TEXTOID)
			return att->attnum;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
			 errmsg("relation \"%s\" has no text column \"workspace\"", RelationGetRelationName(rel)),
			 errhint("scim._users_count_delta() belongs on scim.users only.")));
	return InvalidAttrNumber;
}

/*
 * scim._users_count_delta() RETURNS trigger: AFTER INSERT (REFERENCING NEW
 * TABLE) or AFTER DELETE (REFERENCING OLD TABLE), FOR EACH STATEMENT.
 */
Datum
scim_users_count_delta(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Tuplestorestate *rows;
	int			sign;
	AttrNumber	attnum;
	TupleTableSlot *slot;
	WorkspaceCount *counts;
	int			ncounts = 0;
	int			maxcounts = 4;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("scim._users_count_delta() must run as an AFTER ... FOR EACH STATEMENT trigger")));
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		rows = td->tg_newtable;
		sign = 1;
	}
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		rows = td->tg_oldtable;
		sign = -1;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("scim._users_count_delta() runs on INSERT or DELETE only")));
	if (rows == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("scim._users_count_delta() needs the statement's transition table")));

	/* on scim.users only (as the users trigger guard: doc/SECURITY.md) */
	if (RelationGetRelid(td->tg_relation) !=
		get_relname_relid("users", get_namespace_oid("scim", false)))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("scim._users_count_delta() fires on scim.users only, not on \"%s\"",
						RelationGetRelationName(td->tg_relation))));
	attnum = workspace_attnum(td->tg_relation);
	counts = palloc(sizeof(WorkspaceCount) * maxcounts);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(td->tg_relation), &TTSOpsMinimalTuple);
	tuplestore_rescan(rows);
	while (tuplestore_gettupleslot(rows, true, false, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, attnum, &isnull);
		text	   *ws;
		int			i;

		if (isnull)
			continue;			/* NOT NULL column: cannot happen */
		ws = DatumGetTextPP(d);
		for (i = 0; i < ncounts; i++)
			if (VARSIZE_ANY_EXHDR(counts[i].workspace) == VARSIZE_ANY_EXHDR(ws) &&
				memcmp(VARDATA_ANY(counts[i].workspace), VARDATA_ANY(ws), VARSIZE_ANY_EXHDR(ws)) == 0)
				break;
		if (i == ncounts)
		{
			if (ncounts == maxcounts)
			{
				maxcounts *= 2;
				counts = repalloc(counts, sizeof(WorkspaceCount) * maxcounts);
			}
			counts[i].workspace = DatumGetTextPCopy(d);
			counts[i].n = 0;
			ncounts++;
		}
		counts[i].n += sign;
	}
	ExecDropSingleTupleTableSlot(slot);
	if (ncounts == 0)
		return PointerGetDatum(NULL);

	{
		Oid			nsp = get_namespace_oid("scim", false);
		Oid			relid = get_relname_relid("user_counts", nsp);
		Relation	rel;
		TupleDesc	desc;

		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation \"scim.user_counts\" does not exist")));
		rel = table_open(relid, RowExclusiveLock);
		desc = RelationGetDescr(rel);
		if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relhasindex ||
			rel->trigdesc != NULL || desc->natts != 2 ||
			TupleDescAttr(desc, 0)->atttypid != TEXTOID || TupleDescAttr(desc, 1)->atttypid != INT8OID)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("scim.user_counts is not as scim_provision created it"),
					 errdetail("The users count trigger writes it directly: a plain table (workspace text, n bigint) without indexes or triggers."),
					 errhint("Recreate it as in 69_paging.sql and run scim.recount_users().")));
		for (int i = 0; i < ncounts; i++)
		{
			Datum		values[2] = {PointerGetDatum(counts[i].workspace), Int64GetDatum(counts[i].n)};
			bool		nulls[2] = {false, false};
			HeapTuple	tup = heap_form_tuple(desc, values, nulls);

			simple_heap_insert(rel, tup);
			heap_freetuple(tup);
		}
		table_close(rel, RowExclusiveLock);
	}
	return PointerGetDatum(NULL);
}
