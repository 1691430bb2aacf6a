/*-------------------------------------------------------------------------
 *
 * mapping.h
 *		The one mapping between a SCIM 2.0 User resource and a scim.users row.
 *
 * Every path that writes or renders a user goes through mapping.c: the SCIM
 * endpoint (scim.handle: POST, PUT, PATCH, GET, lists), the upsert path
 * shared with the OneLogin worker (scim.provision_user) and the data teams'
 * SQL (scim.user_resource).  Where each attribute lives is fixed by
 * doc/CONTRACTS.md: synced and filterable attributes in columns, everything
 * else in the attributes jsonb (core attributes by name, extension
 * attributes under their schema URN).
 *
 * SQL-callable functions (declared in src/sql/50_users.sql):
 *	scim._user_from_resource(resource jsonb, mode text, workspace text,
 *							 current scim.users) RETURNS scim.users
 *	scim.user_resource(u scim.users, attributes text, excluded_attributes text)
 *		RETURNS jsonb
 *
 * src/mapping.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_MAPPING_H
#define SCIM_MAPPING_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "utils/jsonb.h"

/*
 * How a resource is applied to a row.
 *
 * CREATE	a new user: what the resource leaves out is unset (NULL), active
 *			defaults to true and the user type to the workspace's default.
 * REPLACE	PUT: the resource replaces the user, except that the synced
 *			attributes it leaves out (absent or null) keep their stored value
 *			(the seeds' rule): userName, name.givenName, name.familyName, the
 *			primary email (with the whole emails array), title, the primary
 *			phone number (with the whole phoneNumbers array), organization,
 *			department and userType.  active, when absent, also stays.
 * MERGE	the upsert path of the OneLogin worker: every attribute the
 *			resource leaves out (absent or null) keeps its stored value.
 * FULL		the resource is the complete new state (the result of applying a
 *			PATCH to the current resource): what it lacks is unset.
 */
typedef enum ScimMapMode
{
	SCIM_MAP_CREATE,
	SCIM_MAP_REPLACE,
	SCIM_MAP_MERGE,
	SCIM_MAP_FULL
} ScimMapMode;

/* URNs the mapping reads and writes. */
#define SCIM_MAP_URN_CORE			"urn:ietf:params:scim:schemas:core:2.0:User"
#define SCIM_MAP_URN_ENTERPRISE		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#define SCIM_MAP_URN_PROVISION		"urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User"
#define SCIM_MAP_URN_CORE_1_0		"urn:scim:schemas:core:1.0"
#define SCIM_MAP_URN_ENTERPRISE_1_0	"urn:scim:schemas:extension:enterprise:1.0"

/* GUC scim_provision.base_url (users.c): prefix of meta.location, "" = relative. */
extern char *scim_base_url;

/* Canonical user type (Regular, External, Collaborator), or NULL. */
extern const char *scim_canonical_user_type(const char *value, size_t len);

/*
 * The SCIM resource of a scim.users tuple (what scim.user_resource returns),
 * projected by attributes / excluded (comma-separated lists, NULL or "" =
 * none).  *cache (NULL at first) keeps what depends only on the row type
 * and the projection, allocated in cache_cxt.
 */
typedef struct ScimRenderCache ScimRenderCache;
extern Jsonb *scim_render_user_resource(HeapTuple tup, TupleDesc desc, const char *attributes,
										const char *excluded, ScimRenderCache **cache,
										MemoryContext cache_cxt);


#endif							/* SCIM_MAPPING_H */
