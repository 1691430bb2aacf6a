/*-------------------------------------------------------------------------
 *
 * filter_sql.h
 *		SQL text generation shared by the filter pushdowns of Users
 *		(filter_sql.c) and Groups (groups.c): values only ever reach the
 *		generated SQL through these quoting helpers.
 *
 * src/filter_sql.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_FILTER_SQL_H
#define SCIM_FILTER_SQL_H

#include "lib/stringinfo.h"

#include "filter.h"

/* A UTF-8 value as an SQL string literal (quote_literal, E'' when needed). */
extern void scim_sql_append_literal(StringInfo buf, const char *s, size_t len);

/* A LIKE pattern literal for co/sw/ew: \ % _ escaped, then the wildcards. */
extern void scim_sql_append_like_pattern(StringInfo buf, ScimFilterOp op, const char *s, size_t len);

/* The schema-qualified comparison operator for eq/ne/gt/ge/lt/le. */
extern const char *scim_sql_operator(ScimFilterOp op);

#endif							/* SCIM_FILTER_SQL_H */
