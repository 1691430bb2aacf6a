/*-------------------------------------------------------------------------
 *
 * groups.h
 *		What groups.c offers the rest of the backend: the SQL pushdown of
 *		SCIM filters and sortBy over scim.groups, which filter_sql.c
 *		delegates to for resource type "Group" (scim.filter_sql and
 *		scim.sort_expression).
 *
 * src/groups.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_GROUPS_H
#define SCIM_GROUPS_H

#include "fmgr.h"

/*
 * The SQL predicate over "scim.groups g" for a SCIM filter (UTF-8 text of
 * len bytes), palloc'd; an invalid filter is reported with ereport
 * (SQLSTATE 22023, "invalidFilter: ...").
 */
extern char *scim_group_filter_predicate(const char *filter, size_t len);

/*
 * scim._group_sort_expression(attr_path text) RETURNS text: the ORDER BY
 * expression over "scim.groups g" for a sortBy attribute ("invalidPath:
 * ..." when it cannot sort).
 */
extern PGDLLEXPORT Datum scim_group_sort_expression(PG_FUNCTION_ARGS);

#endif							/* SCIM_GROUPS_H */
