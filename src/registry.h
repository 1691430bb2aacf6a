/*-------------------------------------------------------------------------
 *
 * registry.h
 *		The attribute registry: one definition of every SCIM schema we serve.
 *
 * Static tables (registry.c) describe the User and Group schemas (RFC 7643
 * sections 4.1 and 4.2), the Enterprise User extension (section 4.3), our
 * extension urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User
 * (userType) and the common attributes (id, externalId, meta, schemas).
 * For every attribute they hold its RFC 7643 characteristics and where a
 * User keeps it in scim.users (doc/CONTRACTS.md): a column, a path inside
 * the attributes jsonb, a constant, or nowhere (computed or never stored).
 *
 * The registry is the single source for /Schemas and /ResourceTypes, for
 * the filter engine (types, caseExact, storage), for sortBy, and for the
 * PATCH engine and the mapping code.  Pure C: no backend headers, so the
 * fuzzers and unit tests link it directly.
 *
 * Lookups are ASCII case-insensitive and accept the SCIM 1.1 URNs
 * urn:scim:schemas:core:1.0 and urn:scim:schemas:extension:enterprise:1.0
 * as aliases of their 2.0 schemas.
 *
 * src/registry.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_REGISTRY_H
#define SCIM_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "json.h"

#define SCIM_URN_CORE_USER		"urn:ietf:params:scim:schemas:core:2.0:User"
#define SCIM_URN_CORE_GROUP		"urn:ietf:params:scim:schemas:core:2.0:Group"
#define SCIM_URN_ENTERPRISE		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#define SCIM_URN_PROVISION		"urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User"
#define SCIM_URN_SCHEMA			"urn:ietf:params:scim:schemas:core:2.0:Schema"
#define SCIM_URN_RESOURCE_TYPE	"urn:ietf:params:scim:schemas:core:2.0:ResourceType"
/* SCIM 1.1 URNs still sent by older IdP templates (aliases). */
#define SCIM_URN_CORE_1_1		"urn:scim:schemas:core:1.0"
#define SCIM_URN_ENTERPRISE_1_1	"urn:scim:schemas:extension:enterprise:1.0"

typedef enum ScimAttrType
{
	SCIM_TYPE_STRING,
	SCIM_TYPE_BOOLEAN,
	SCIM_TYPE_DECIMAL,
	SCIM_TYPE_INTEGER,
	SCIM_TYPE_DATETIME,
	SCIM_TYPE_BINARY,
	SCIM_TYPE_REFERENCE,
	SCIM_TYPE_COMPLEX
} ScimAttrType;

typedef enum ScimMutability
{
	SCIM_MUT_READ_WRITE,
	SCIM_MUT_READ_ONLY,
	SCIM_MUT_IMMUTABLE,
	SCIM_MUT_WRITE_ONLY
} ScimMutability;

typedef enum ScimReturned
{
	SCIM_RET_DEFAULT,
	SCIM_RET_ALWAYS,
	SCIM_RET_NEVER,
	SCIM_RET_REQUEST
} ScimReturned;

typedef enum ScimUniqueness
{
	SCIM_UNIQ_NONE,
	SCIM_UNIQ_SERVER,
	SCIM_UNIQ_GLOBAL
} ScimUniqueness;

/* Where a User keeps an attribute (doc/CONTRACTS.md). */
typedef enum ScimStorage
{
	SCIM_STORE_JSONB,			/* in attributes jsonb: core attributes by their
								 * name, extension attributes under the schema
								 * URN key; sub-attributes nested below */
	SCIM_STORE_COLUMN,			/* a column of scim.users (column) */
	SCIM_STORE_CONSTANT,		/* the same for every row (constant) */
	SCIM_STORE_COMPUTED,		/* derived when a resource is rendered
								 * (meta.location, schemas, groups) */
	SCIM_STORE_NONE				/* never stored (password) */
} ScimStorage;

typedef struct ScimAttrDef ScimAttrDef;

struct ScimAttrDef
{
	const char *name;			/* canonical case, e.g. "userName" */
	ScimAttrType type;
	bool		multi_valued;
	bool		required;
	bool		case_exact;
	ScimMutability mutability;
	ScimReturned returned;
	ScimUniqueness uniqueness;
	const char *const *canonical_values;	/* NULL-terminated, or NULL */
	const char *const *reference_types; /* NULL-terminated, or NULL */
	const ScimAttrDef *sub_attrs;	/* complex: sub-attributes */
	int			n_sub_attrs;
	const char *description;
	ScimStorage storage;
	const char *column;			/* SCIM_STORE_COLUMN: column of scim.users;
								 * multi-valued JSONB attributes: the column
								 * mirroring the primary value (email, phone),
								 * else NULL */
	const char *constant;		/* SCIM_STORE_CONSTANT: the value; NULL means
								 * the resource type's name (meta.resourceType) */
};

typedef struct ScimSchemaDef
{
	const char *id;				/* URN */
	const char *name;
	const char *description;
	const ScimAttrDef *attrs;
	int			n_attrs;
	bool		is_extension;	/* attributes live under the URN key */
} ScimSchemaDef;

typedef struct ScimSchemaExtension
{
	const ScimSchemaDef *schema;
	bool		required;
} ScimSchemaExtension;

typedef struct ScimResourceTypeDef
{
	const char *name;			/* "User" */
	const char *endpoint;		/* "/Users" */
	const char *description;
	const ScimSchemaDef *schema;	/* core schema */
	const ScimSchemaExtension *extensions;
	int			n_extensions;
} ScimResourceTypeDef;

/* The result of a lookup. */
typedef struct ScimAttrRef
{
	const ScimResourceTypeDef *resource_type;
	const ScimSchemaDef *schema;	/* the schema the attribute belongs to; for
									 * the common attributes (id, externalId,
									 * meta, schemas) the core schema */
	const ScimAttrDef *attr;	/* the attribute */
	const ScimAttrDef *sub;		/* the sub-attribute, or NULL */
	bool		common;			/* id, externalId, meta or schemas */
} ScimAttrRef;

/* Resource types and schemas (ASCII case-insensitive; schema URN aliases). */
extern const ScimResourceTypeDef *scim_registry_resource_type(const char *name);
extern const ScimSchemaDef *scim_registry_schema(const char *urn);
extern const ScimSchemaDef *scim_registry_schema_n(const char *urn, size_t len);
extern int	scim_registry_n_resource_types(void);
extern const ScimResourceTypeDef *scim_registry_resource_type_at(int i);

/* Whether schema is the core schema or one of the extensions of rt. */
extern bool scim_registry_schema_allowed(const ScimResourceTypeDef *rt, const ScimSchemaDef *schema);

/*
 * Look up [schema:]attr[.sub] for a resource type.  schema may be NULL
 * (then the common attributes, the core schema and the extensions are
 * searched in that order), the core schema's URN, an extension's URN, or an
 * alias.  sub may be NULL.  Returns false when the resource type, the schema,
 * the attribute or the sub-attribute is unknown (then *out is zeroed).
 */
extern bool scim_registry_lookup(const char *resource_type, const char *schema,
								 const char *attr, const char *sub, ScimAttrRef *out);

/* A sub-attribute of a complex attribute, case-insensitively, or NULL. */
extern const ScimAttrDef *scim_registry_sub_attr(const ScimAttrDef *parent, const char *name);
/* An attribute of one schema (no common attributes), or NULL. */
extern const ScimAttrDef *scim_registry_schema_attr(const ScimSchemaDef *schema, const char *name);

/* Names as RFC 7643 spells them ("string", "readWrite", "default", ...). */
extern const char *scim_attr_type_name(ScimAttrType type);
extern const char *scim_mutability_name(ScimMutability m);
extern const char *scim_returned_name(ScimReturned r);
extern const char *scim_uniqueness_name(ScimUniqueness u);

/*
 * RFC 7643 section 7 Schema resources for every schema (User, Group,
 * Enterprise User, our extension), as a JSON array, each with
 * meta.resourceType "Schema" and meta.location "/Schemas/<id>".
 * NULL on allocation failure.
 */
extern SjValue *scim_registry_schemas_json(ScimArena *arena);

/* RFC 7643 section 6 ResourceType resources (User, Group) as a JSON array. */
extern SjValue *scim_registry_resource_types_json(ScimArena *arena);

#endif							/* SCIM_REGISTRY_H */
