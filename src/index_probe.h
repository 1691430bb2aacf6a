/*-------------------------------------------------------------------------
 *
 * index_probe.h
 *		Equality lookups in the extension's own tables straight through one
 *		of their btree indexes, for the per-request hot path.
 *
 * A kept SPI plan still starts an executor per call; a token check, a
 * userName lookup or a membership probe needs one index descent.  The
 * probe opens scim.<table> and scim.<index> by name (AccessShareLock, held
 * to the end of the transaction as the executor would), scans with the
 * active snapshot, and returns each visible tuple.  No permission checks:
 * only SECURITY DEFINER code, running as the extension's owner, uses it.
 *
 * src/index_probe.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_INDEX_PROBE_H
#define SCIM_INDEX_PROBE_H

#include "postgres.h"

#include "access/genam.h"
#include "executor/tuptable.h"
#include "utils/rel.h"

typedef struct ScimProbe
{
	Relation	heap;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;		/* the current tuple, after scim_probe_next */
} ScimProbe;

/*
 * Start an equality scan of scim.<index> (on scim.<table>) on its first
 * nkeys columns: column i equals values[i], compared by the function
 * eqfuncs[i] (F_TEXTEQ, F_UUID_EQ, ...) in the index column's collation.
 */
extern void scim_probe_begin(ScimProbe *probe, const char *table, const char *index,
							 int nkeys, const Datum *values, const Oid *eqfuncs);

/* The next visible tuple into probe->slot; false at the end. */
extern bool scim_probe_next(ScimProbe *probe);

extern void scim_probe_end(ScimProbe *probe);

/* Attribute number of a column of the probed table, by name (error if none). */
extern AttrNumber scim_probe_attnum(ScimProbe *probe, const char *column);

#endif							/* SCIM_INDEX_PROBE_H */
