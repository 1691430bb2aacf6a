/*-------------------------------------------------------------------------
 *
 * scim_provision.h
 *		Declarations shared across the backend parts of scim_provision.
 *
 * Each subsystem defines its own GUCs in its own file through an init
 * function listed here; _PG_init (scim_provision.c) calls them in order.
 *
 * src/scim_provision.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_PROVISION_H
#define SCIM_PROVISION_H

#include "postgres.h"

#include "arena.h"

/* GUC/initialisation hooks, one per subsystem (called from _PG_init). */
extern void scim_filter_init_gucs(void);	/* filter_sql.c */
extern void scim_api_init_gucs(void);	/* users.c */
extern void scim_groups_init_gucs(void);	/* groups.c: bulk and cursor limits */
extern void scim_worker_init(void); /* worker_launcher.c: GUCs and, when preloaded, registration */
extern void scim_request_limits_init_gucs(void);	/* request_limits.c */

/* Request limits checked before a body costs anything (request_limits.c). */
extern int	scim_max_body_size;		/* scim_provision.max_body_size */
extern int	scim_max_json_depth;	/* scim_provision.max_json_depth */
extern int	scim_max_operations;	/* scim_provision.max_operations */
extern int	scim_json_text_depth(const char *s, size_t len, int limit);
extern void scim_check_request_body(const char *s, size_t len);

/* GUCs of the SCIM endpoint (users.c). */
extern int	scim_max_results;		/* scim_provision.max_results */
extern bool scim_fast_path;			/* scim_provision.fast_path */

/* A decoded query-string parameter (users.c). */
typedef struct ScimQueryParam
{
	const char *name;			/* canonical spelling for SCIM parameters */
	int			name_len;
	const char *value;
	int			value_len;
} ScimQueryParam;

extern bool scim_query_decode(const char *q, int len, ScimQueryParam **params, int *nparams);

/* The SCIM parameter names, NULL-terminated; a decoded SCIM name points into it. */
extern const char *const scim_query_param_names[];

/* Workspace of a valid unrevoked token, or NULL (token.c). */
extern text *scim_token_workspace(const char *value, size_t value_len);

/* Backend ScimAllocator over palloc in CurrentMemoryContext (scim_provision.c). */
extern const ScimAllocator scim_palloc_allocator;

#endif							/* SCIM_PROVISION_H */
