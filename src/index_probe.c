/*-------------------------------------------------------------------------
 *
 * index_probe.c
 *		Equality lookups in the extension's own tables straight through one
 *		of their btree indexes (see index_probe.h).
 *
 * src/index_probe.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "executor/executor.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "index_probe.h"

#define PROBE_MAX_KEYS 4

static Oid
scim_relid(const char *name)
{
	Oid			nsp = get_namespace_oid("scim", false);
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation \"scim.%s\" does not exist", name),
				 errhint("The scim_provision extension's objects are incomplete; reinstall the extension.")));
	return relid;
}

void
scim_probe_begin(ScimProbe *probe, const char *table, const char *index,
				 int nkeys, const Datum *values, const Oid *eqfuncs)
{
	ScanKeyData keys[PROBE_MAX_KEYS];

	Assert(nkeys > 0 && nkeys <= PROBE_MAX_KEYS);
	if (!ActiveSnapshotSet())
		elog(ERROR, "scim_probe_begin called without an active snapshot");
	probe->heap = table_open(scim_relid(table), AccessShareLock);
	probe->index = index_open(scim_relid(index), AccessShareLock);
	if (probe->index->rd_index->indrelid != RelationGetRelid(probe->heap) ||
		probe->index->rd_rel->relam != BTREE_AM_OID ||
		probe->index->rd_index->indnkeyatts < nkeys)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index \"scim.%s\" is not a btree index of \"scim.%s\" with %d key columns",
						index, table, nkeys)));
	for (int i = 0; i < nkeys; i++)
	{
		ScanKeyInit(&keys[i], i + 1, BTEqualStrategyNumber, eqfuncs[i], values[i]);
		keys[i].sk_collation = probe->index->rd_indcollation[i];
	}
	probe->slot = table_slot_create(probe->heap, NULL);
	probe->scan = index_beginscan(probe->heap, probe->index, GetActiveSnapshot(), nkeys, 0);
	index_rescan(probe->scan, keys, nkeys, NULL, 0);
}

bool
scim_probe_next(ScimProbe *probe)
{
	return index_getnext_slot(probe->scan, ForwardScanDirection, probe->slot);
}

void
scim_probe_end(ScimProbe *probe)
{
	index_endscan(probe->scan);
	ExecDropSingleTupleTableSlot(probe->slot);
	/* the locks stay until the end of the transaction, as the executor's do */
	index_close(probe->index, NoLock);
	table_close(probe->heap, NoLock);
}

AttrNumber
scim_probe_attnum(ScimProbe *probe, const char *column)
{
	TupleDesc	desc = RelationGetDescr(probe->heap);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), column) == 0)
			return att->attnum;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of relation \"scim.%s\" does not exist", column,
					RelationGetRelationName(probe->heap))));
	return InvalidAttrNumber;	/* not reached */
}
