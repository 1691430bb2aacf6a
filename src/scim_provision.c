/*-------------------------------------------------------------------------
 *
 * scim_provision.c
 *		Module entry point: _PG_init and the backend allocator for the cores.
 *
 * Every subsystem owns its GUCs (all under "scim_provision.") and defines
 * them from its own init function; this file only calls them in order and
 * reserves the prefix.  Every scim_provision setting is PGC_SUSET or
 * stricter (#15): a limit a client session could raise (a scim_client
 * login lifting filter_max_length) is no limit.  sql/17_security_gucs.sql
 * fails on any setting a plain session may change.
 *
 * src/scim_provision.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "scim_provision.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static void *
palloc_alloc(void *ctx, size_t size)
{
	return palloc(size);
}

static void
palloc_release(void *ctx, void *ptr)
{
	pfree(ptr);
}

/* Allocates in CurrentMemoryContext; palloc throws on out-of-memory. */
const ScimAllocator scim_palloc_allocator = {palloc_alloc, palloc_release, NULL};

void
_PG_init(void)
{
	scim_api_init_gucs();
	scim_filter_init_gucs();
	scim_groups_init_gucs();
	scim_request_limits_init_gucs();
	scim_worker_init();
	MarkGUCPrefixReserved("scim_provision");
}
