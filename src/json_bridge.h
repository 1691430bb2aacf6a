/*-------------------------------------------------------------------------
 *
 * json_bridge.h
 *		Backend bridge between jsonb and the pure JSON DOM (json.h).
 *
 * Backend-only: the pure cores never include this header.  Conversions in
 * both directions are exact: every jsonb value survives
 * sj_to_jsonb(sj_from_jsonb(x)) unchanged, numbers included (they travel as
 * numeric text).  Errors are raised with ereport.
 *
 * src/json_bridge.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_JSON_BRIDGE_H
#define SCIM_JSON_BRIDGE_H

#include "postgres.h"

#include "utils/jsonb.h"

#include "arena.h"
#include "json.h"

/* An arena whose chunks are palloc'd in CurrentMemoryContext. */
extern void scim_backend_arena_init(ScimArena *a);

/* Walk a jsonb into a DOM allocated in arena. */
extern SjValue *sj_from_jsonb(ScimArena *arena, Jsonb *jb);

/* Build a jsonb (palloc'd in CurrentMemoryContext) from a DOM value. */
extern Jsonb *sj_to_jsonb(const SjValue *v);

/* The member key of an object container, or NULL (also when c is no object). */
extern JsonbValue *scim_jsonb_member(JsonbContainer *c, const char *key);

#endif							/* SCIM_JSON_BRIDGE_H */
