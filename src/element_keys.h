/*-------------------------------------------------------------------------
 *
 * element_keys.h
 *		The prefix keys of emails and phoneNumbers values (element_keys.c)
 *		and the key condition filter_sql.c puts in front of a comparison.
 *
 * src/element_keys.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_ELEMENT_KEYS_H
#define SCIM_ELEMENT_KEYS_H

#include "filter.h"

typedef enum ScimElementAttr
{
	SCIM_ELEMENT_EMAILS,
	SCIM_ELEMENT_PHONES
} ScimElementAttr;

/* Whether a key condition narrows "<attr>.value <op> value" (case-insensitive). */
extern bool scim_element_keys_apply(ScimElementAttr attr, ScimFilterOp op,
									const char *value, size_t len);

/* Whether it decides the comparison alone (typed: with "type eq <type>"). */
extern bool scim_element_keys_exact(ScimElementAttr attr, ScimFilterOp op,
									const char *value, size_t len,
									const char *type, size_t typelen);

/* The tsquery text of that condition (server encoding). */
extern char *scim_element_keys_query_text(ScimElementAttr attr, ScimFilterOp op,
										  const char *value, size_t len,
										  const char *type, size_t typelen,
										  bool overflow);

#endif							/* SCIM_ELEMENT_KEYS_H */
