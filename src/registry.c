/*-------------------------------------------------------------------------
 *
 * registry.c
 *		The attribute registry: static tables of the SCIM schemas we serve.
 *
 * One definition per attribute, with its RFC 7643 characteristics and its
 * storage in scim.users (doc/CONTRACTS.md).  Everything that needs to know
 * about an attribute asks here: /Schemas and /ResourceTypes are generated
 * from these tables, the filter engine takes types, caseExact and storage
 * from them, and so do sortBy, the PATCH engine and the mapping code.
 *
 * Pure C (no backend headers); JSON output goes through the arena.
 *
 * src/registry.c
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "registry.h"

#define lengthof(a) ((int) (sizeof(a) / sizeof((a)[0])))

/* Shorthands for the tables below. */
#define STR		SCIM_TYPE_STRING
#define BOOL	SCIM_TYPE_BOOLEAN
#define DTIME	SCIM_TYPE_DATETIME
#define BIN		SCIM_TYPE_BINARY
#define REF		SCIM_TYPE_REFERENCE
#define CPLX	SCIM_TYPE_COMPLEX
#define RW		SCIM_MUT_READ_WRITE
#define RO		SCIM_MUT_READ_ONLY
#define IMM		SCIM_MUT_IMMUTABLE
#define WO		SCIM_MUT_WRITE_ONLY

/* ---------------------------------------------------------------------
 * Canonical values and reference types
 * ---------------------------------------------------------------------
 */
static const char *const cv_email_type[] = {"work", "home", "other", NULL};
static const char *const cv_phone_type[] = {"work", "home", "mobile", "fax", "pager", "other", NULL};
static const char *const cv_im_type[] = {"aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo", NULL};
static const char *const cv_photo_type[] = {"photo", "thumbnail", NULL};
static const char *const cv_address_type[] = {"work", "home", "other", NULL};
static const char *const cv_group_membership[] = {"direct", "indirect", NULL};
static const char *const cv_member_type[] = {"User", "Group", NULL};
static const char *const cv_user_type[] = {"Regular", "External", "Collaborator", NULL};

static const char *const rt_external[] = {"external", NULL};
static const char *const rt_uri[] = {"uri", NULL};
static const char *const rt_user_group[] = {"User", "Group", NULL};
static const char *const rt_user[] = {"User", NULL};

/* ---------------------------------------------------------------------
 * Common attributes (RFC 7643 section 3.1): id, externalId, meta, schemas.
 * They are not part of any schema's "attributes" in /Schemas.
 * ---------------------------------------------------------------------
 */
static const ScimAttrDef meta_sub[] = {
	{.name = "resourceType", .type = STR, .case_exact = true, .mutability = RO,
		.description = "The name of the resource type of the resource.",
	.storage = SCIM_STORE_CONSTANT},
	{.name = "created", .type = DTIME, .mutability = RO,
		.description = "The date and time the resource was added to the service provider.",
	.storage = SCIM_STORE_COLUMN, .column = "created_at"},
	{.name = "lastModified", .type = DTIME, .mutability = RO,
		.description = "The most recent date and time the resource was modified.",
	.storage = SCIM_STORE_COLUMN, .column = "updated_at"},
	{.name = "location", .type = REF, .case_exact = true, .mutability = RO,
		.reference_types = rt_uri,
		.description = "The URI of the resource being returned.",
	.storage = SCIM_STORE_COMPUTED},
	{.name = "version", .type = STR, .case_exact = true, .mutability = RO,
		.description = "The version (weak ETag) of the resource being returned.",
	.storage = SCIM_STORE_COLUMN, .column = "version"},
};

static const ScimAttrDef common_attrs[] = {
	{.name = "id", .type = STR, .case_exact = true, .mutability = RO,
		.returned = SCIM_RET_ALWAYS, .uniqueness = SCIM_UNIQ_SERVER,
		.description = "Unique identifier for the SCIM resource as defined by the service provider.",
	.storage = SCIM_STORE_COLUMN, .column = "id"},
	{.name = "externalId", .type = STR, .case_exact = true, .mutability = RW,
		.description = "Identifier of the resource as defined by the provisioning client.",
	.storage = SCIM_STORE_COLUMN, .column = "external_id"},
	{.name = "meta", .type = CPLX, .mutability = RO,
		.sub_attrs = meta_sub, .n_sub_attrs = lengthof(meta_sub),
		.description = "Resource metadata.",
	.storage = SCIM_STORE_COMPUTED},
	{.name = "schemas", .type = REF, .multi_valued = true, .required = true, .case_exact = true,
		.mutability = RO, .returned = SCIM_RET_ALWAYS, .reference_types = rt_uri,
		.description = "The schema URIs the resource conforms to.",
	.storage = SCIM_STORE_COMPUTED},
};

/* ---------------------------------------------------------------------
 * User (RFC 7643 section 4.1, schema representation section 8.7.1)
 * ---------------------------------------------------------------------
 */
static const ScimAttrDef name_sub[] = {
	{.name = "formatted", .type = STR,
		.description = "The full name, including all middle names, titles and suffixes, formatted for display."},
	{.name = "familyName", .type = STR,
		.description = "The family name of the User, or last name in most Western languages.",
	.storage = SCIM_STORE_COLUMN, .column = "family_name"},
	{.name = "givenName", .type = STR,
		.description = "The given name of the User, or first name in most Western languages.",
	.storage = SCIM_STORE_COLUMN, .column = "given_name"},
	{.name = "middleName", .type = STR,
	.description = "The middle name(s) of the User."},
	{.name = "honorificPrefix", .type = STR,
	.description = "The honorific prefix(es) of the User, or title in most Western languages."},
	{.name = "honorificSuffix", .type = STR,
	.description = "The honorific suffix(es) of the User, or suffix in most Western languages."},
};

/* value/display/type/primary, the usual shape of a multi-valued attribute */
#define MV_SUB(value_type, value_desc, value_case_exact, value_refs, types, type_desc) \
	{.name = "value", .type = value_type, .case_exact = value_case_exact, \
		.reference_types = value_refs, .description = value_desc}, \
	{.name = "display", .type = STR, \
		.description = "A human-readable name, primarily used for display purposes."}, \
	{.name = "type", .type = STR, .canonical_values = types, .description = type_desc}, \
	{.name = "primary", .type = BOOL, \
		.description = "Whether this is the primary or preferred value of the attribute."}

static const ScimAttrDef emails_sub[] = {
	MV_SUB(STR, "Email address of the User, canonicalized as RFC 5321 specifies.", false, NULL,
		   cv_email_type, "A label indicating the attribute's function, e.g. 'work' or 'home'."),
};
static const ScimAttrDef phones_sub[] = {
	MV_SUB(STR, "Phone number of the User.", false, NULL,
		   cv_phone_type, "A label indicating the attribute's function, e.g. 'work', 'home', 'mobile'."),
};
static const ScimAttrDef ims_sub[] = {
	MV_SUB(STR, "Instant messaging address for the User.", false, NULL,
		   cv_im_type, "A label indicating the attribute's function, e.g. 'aim', 'gtalk', 'xmpp'."),
};
static const ScimAttrDef photos_sub[] = {
	MV_SUB(REF, "URL of a photo of the User.", false, rt_external,
		   cv_photo_type, "A label indicating the attribute's function, i.e. 'photo' or 'thumbnail'."),
};
static const ScimAttrDef entitlements_sub[] = {
	MV_SUB(STR, "The value of an entitlement.", false, NULL,
		   NULL, "A label indicating the attribute's function."),
};
static const ScimAttrDef roles_sub[] = {
	MV_SUB(STR, "The value of a role.", false, NULL,
		   NULL, "A label indicating the attribute's function."),
};
static const ScimAttrDef x509_sub[] = {
	MV_SUB(BIN, "The value of an X.509 certificate (DER, base64-encoded).", true, NULL,
		   NULL, "A label indicating the attribute's function."),
};

static const ScimAttrDef addresses_sub[] = {
	{.name = "formatted", .type = STR,
	.description = "The full mailing address, formatted for display or use with a mailing label."},
	{.name = "streetAddress", .type = STR,
	.description = "The full street address component, which may include house number, street name, P.O. box and multi-line extended street address information."},
	{.name = "locality", .type = STR,
	.description = "The city or locality component."},
	{.name = "region", .type = STR,
	.description = "The state or region component."},
	{.name = "postalCode", .type = STR,
	.description = "The zip code or postal code component."},
	{.name = "country", .type = STR,
	.description = "The country name component (ISO 3166-1 alpha-2 code)."},
	{.name = "type", .type = STR, .canonical_values = cv_address_type,
	.description = "A label indicating the attribute's function, e.g. 'work' or 'home'."},
	{.name = "primary", .type = BOOL,
	.description = "Whether this is the primary or preferred mailing address."},
};

static const ScimAttrDef user_groups_sub[] = {
	{.name = "value", .type = STR, .mutability = RO,
	.description = "The identifier of the User's group."},
	{.name = "$ref", .type = REF, .mutability = RO, .reference_types = rt_user_group,
	.description = "The URI of the corresponding 'Group' resource to which the user belongs."},
	{.name = "display", .type = STR, .mutability = RO,
	.description = "A human-readable name, primarily used for display purposes."},
	{.name = "type", .type = STR, .mutability = RO, .canonical_values = cv_group_membership,
	.description = "A label indicating the attribute's function, e.g. 'direct' or 'indirect'."},
};

static const ScimAttrDef user_attrs[] = {
	{.name = "userName", .type = STR, .required = true, .uniqueness = SCIM_UNIQ_SERVER,
		.description = "Unique identifier for the User, typically used by the user to directly authenticate to the service provider.  Case-insensitive.",
	.storage = SCIM_STORE_COLUMN, .column = "user_name"},
	{.name = "name", .type = CPLX, .sub_attrs = name_sub, .n_sub_attrs = lengthof(name_sub),
	.description = "The components of the user's real name."},
	{.name = "displayName", .type = STR,
		.description = "The name of the User, suitable for display to end-users.",
	.storage = SCIM_STORE_COLUMN, .column = "display_name"},
	{.name = "nickName", .type = STR,
	.description = "The casual way to address the user in real life."},
	{.name = "profileUrl", .type = REF, .reference_types = rt_external,
	.description = "A fully qualified URL pointing to a page representing the User's online profile."},
	{.name = "title", .type = STR,
		.description = "The user's title, such as \"Vice President\".",
	.storage = SCIM_STORE_COLUMN, .column = "title"},
	{.name = "userType", .type = STR, .canonical_values = cv_user_type,
		.description = "The kind of member: Regular, External or Collaborator (matched case-insensitively, answered in canonical case).",
	.storage = SCIM_STORE_COLUMN, .column = "user_type"},
	{.name = "preferredLanguage", .type = STR,
	.description = "The User's preferred written or spoken language (RFC 7231 Accept-Language format)."},
	{.name = "locale", .type = STR,
	.description = "The User's default location for localizing items such as currency and date formats."},
	{.name = "timezone", .type = STR,
	.description = "The User's time zone in the IANA Time Zone database format, e.g. 'America/Los_Angeles'."},
	{.name = "active", .type = BOOL,
		.description = "The User's administrative status; false deactivates the member and releases the seat.",
	.storage = SCIM_STORE_COLUMN, .column = "active"},
	{.name = "password", .type = STR, .mutability = WO, .returned = SCIM_RET_NEVER,
		.description = "The User's cleartext password; never stored or returned by this service provider.",
	.storage = SCIM_STORE_NONE},
	{.name = "emails", .type = CPLX, .multi_valued = true,
		.sub_attrs = emails_sub, .n_sub_attrs = lengthof(emails_sub),
		.description = "Email addresses for the user.",
	.column = "email"},
	{.name = "phoneNumbers", .type = CPLX, .multi_valued = true,
		.sub_attrs = phones_sub, .n_sub_attrs = lengthof(phones_sub),
		.description = "Phone numbers for the User.",
	.column = "phone"},
	{.name = "ims", .type = CPLX, .multi_valued = true,
		.sub_attrs = ims_sub, .n_sub_attrs = lengthof(ims_sub),
	.description = "Instant messaging addresses for the User."},
	{.name = "photos", .type = CPLX, .multi_valued = true,
		.sub_attrs = photos_sub, .n_sub_attrs = lengthof(photos_sub),
	.description = "URLs of photos of the User."},
	{.name = "addresses", .type = CPLX, .multi_valued = true,
		.sub_attrs = addresses_sub, .n_sub_attrs = lengthof(addresses_sub),
	.description = "A physical mailing address for this User."},
	{.name = "groups", .type = CPLX, .multi_valued = true, .mutability = RO,
		.sub_attrs = user_groups_sub, .n_sub_attrs = lengthof(user_groups_sub),
		.description = "A list of groups to which the user belongs, either through direct membership or through nested groups.",
	.storage = SCIM_STORE_COMPUTED},
	{.name = "entitlements", .type = CPLX, .multi_valued = true,
		.sub_attrs = entitlements_sub, .n_sub_attrs = lengthof(entitlements_sub),
	.description = "A list of entitlements for the User that represent a thing the User has."},
	{.name = "roles", .type = CPLX, .multi_valued = true,
		.sub_attrs = roles_sub, .n_sub_attrs = lengthof(roles_sub),
	.description = "A list of roles for the User that collectively represent who the User is."},
	{.name = "x509Certificates", .type = CPLX, .multi_valued = true,
		.sub_attrs = x509_sub, .n_sub_attrs = lengthof(x509_sub),
	.description = "A list of certificates issued to the User."},
};

/* ---------------------------------------------------------------------
 * Group (RFC 7643 section 4.2)
 * ---------------------------------------------------------------------
 */
static const ScimAttrDef members_sub[] = {
	{.name = "value", .type = STR, .mutability = IMM,
	.description = "Identifier of the member of this Group."},
	{.name = "$ref", .type = REF, .mutability = IMM, .reference_types = rt_user_group,
	.description = "The URI corresponding to a SCIM resource that is a member of this Group."},
	{.name = "display", .type = STR, .mutability = RO,
	.description = "A human-readable name, primarily used for display purposes."},
	{.name = "type", .type = STR, .mutability = IMM, .canonical_values = cv_member_type,
	.description = "A label indicating the type of resource, e.g. 'User' or 'Group'."},
};

static const ScimAttrDef group_attrs[] = {
	{.name = "displayName", .type = STR, .required = true,
	.description = "A human-readable name for the Group."},
	{.name = "members", .type = CPLX, .multi_valued = true,
		.sub_attrs = members_sub, .n_sub_attrs = lengthof(members_sub),
	.description = "A list of members of the Group."},
};

/* ---------------------------------------------------------------------
 * Enterprise User extension (RFC 7643 section 4.3)
 * ---------------------------------------------------------------------
 */
static const ScimAttrDef manager_sub[] = {
	{.name = "value", .type = STR,
	.description = "The id of the SCIM resource representing the User's manager."},
	{.name = "$ref", .type = REF, .reference_types = rt_user,
	.description = "The URI of the SCIM resource representing the User's manager."},
	{.name = "displayName", .type = STR, .mutability = RO,
	.description = "The displayName of the User's manager."},
};

static const ScimAttrDef enterprise_attrs[] = {
	{.name = "employeeNumber", .type = STR,
	.description = "Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization."},
	{.name = "costCenter", .type = STR,
	.description = "Identifies the name of a cost center."},
	{.name = "organization", .type = STR,
		.description = "Identifies the name of an organization.",
	.storage = SCIM_STORE_COLUMN, .column = "organization"},
	{.name = "division", .type = STR,
	.description = "Identifies the name of a division."},
	{.name = "department", .type = STR,
		.description = "Identifies the name of a department.",
	.storage = SCIM_STORE_COLUMN, .column = "department"},
	{.name = "manager", .type = CPLX, .sub_attrs = manager_sub, .n_sub_attrs = lengthof(manager_sub),
	.description = "The User's manager."},
};

/* ---------------------------------------------------------------------
 * Our extension: the user type as a custom attribute
 * ---------------------------------------------------------------------
 */
static const ScimAttrDef provision_attrs[] = {
	{.name = "userType", .type = STR, .canonical_values = cv_user_type,
		.description = "The kind of member: Regular (default), External or Collaborator; matched case-insensitively and answered in canonical case.",
	.storage = SCIM_STORE_COLUMN, .column = "user_type"},
};

/* ---------------------------------------------------------------------
 * Schemas and resource types
 * ---------------------------------------------------------------------
 */
static const ScimSchemaDef schema_user = {
	SCIM_URN_CORE_USER, "User", "User Account",
	user_attrs, lengthof(user_attrs), false
};
static const ScimSchemaDef schema_group = {
	SCIM_URN_CORE_GROUP, "Group", "Group",
	group_attrs, lengthof(group_attrs), false
};
static const ScimSchemaDef schema_enterprise = {
	SCIM_URN_ENTERPRISE, "EnterpriseUser", "Enterprise User",
	enterprise_attrs, lengthof(enterprise_attrs), true
};
static const ScimSchemaDef schema_provision = {
	SCIM_URN_PROVISION, "ScimProvisionUser", "scim_provision User extension: the member's user type",
	provision_attrs, lengthof(provision_attrs), true
};

static const ScimSchemaDef *const all_schemas[] = {
	&schema_user, &schema_group, &schema_enterprise, &schema_provision
};

static const ScimSchemaExtension user_extensions[] = {
	{&schema_enterprise, false},
	{&schema_provision, false},
};

static const ScimResourceTypeDef resource_types[] = {
	{"User", "/Users", "User Account", &schema_user, user_extensions, lengthof(user_extensions)},
	{"Group", "/Groups", "Group", &schema_group, NULL, 0},
};

static const struct
{
	const char *alias;
	const ScimSchemaDef *schema;
}			schema_aliases[] = {
	{SCIM_URN_CORE_1_1, &schema_user},
	{SCIM_URN_ENTERPRISE_1_1, &schema_enterprise},
};

/* ---------------------------------------------------------------------
 * Lookups
 * ---------------------------------------------------------------------
 */
static bool
ci_equal_n(const char *a, size_t alen, const char *b)
{
	size_t		blen = strlen(b);

	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
	{
		unsigned char ca = (unsigned char) a[i];
		unsigned char cb = (unsigned char) b[i];

		if (ca >= 'A' && ca <= 'Z')
			ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z')
			cb += 'a' - 'A';
		if (ca != cb)
			return false;
	}
	return true;
}

static bool
ci_equal(const char *a, const char *b)
{
	return ci_equal_n(a, strlen(a), b);
}

const ScimResourceTypeDef *
scim_registry_resource_type(const char *name)
{
	if (name == NULL)
		return NULL;
	for (int i = 0; i < lengthof(resource_types); i++)
		if (ci_equal(name, resource_types[i].name))
			return &resource_types[i];
	return NULL;
}

int
scim_registry_n_resource_types(void)
{
	return lengthof(resource_types);
}

const ScimResourceTypeDef *
scim_registry_resource_type_at(int i)
{
	if (i < 0 || i >= lengthof(resource_types))
		return NULL;
	return &resource_types[i];
}

const ScimSchemaDef *
scim_registry_schema_n(const char *urn, size_t len)
{
	if (urn == NULL)
		return NULL;
	for (int i = 0; i < lengthof(all_schemas); i++)
		if (ci_equal_n(urn, len, all_schemas[i]->id))
			return all_schemas[i];
	for (int i = 0; i < lengthof(schema_aliases); i++)
		if (ci_equal_n(urn, len, schema_aliases[i].alias))
			return schema_aliases[i].schema;
	return NULL;
}

const ScimSchemaDef *
scim_registry_schema(const char *urn)
{
	if (urn == NULL)
		return NULL;
	return scim_registry_schema_n(urn, strlen(urn));
}

bool
scim_registry_schema_allowed(const ScimResourceTypeDef *rt, const ScimSchemaDef *schema)
{
	if (rt == NULL || schema == NULL)
		return false;
	if (rt->schema == schema)
		return true;
	for (int i = 0; i < rt->n_extensions; i++)
		if (rt->extensions[i].schema == schema)
			return true;
	return false;
}

const ScimAttrDef *
scim_registry_sub_attr(const ScimAttrDef *parent, const char *name)
{
	if (parent == NULL || name == NULL)
		return NULL;
	for (int i = 0; i < parent->n_sub_attrs; i++)
		if (ci_equal(name, parent->sub_attrs[i].name))
			return &parent->sub_attrs[i];
	return NULL;
}

const ScimAttrDef *
scim_registry_schema_attr(const ScimSchemaDef *schema, const char *name)
{
	if (schema == NULL || name == NULL)
		return NULL;
	for (int i = 0; i < schema->n_attrs; i++)
		if (ci_equal(name, schema->attrs[i].name))
			return &schema->attrs[i];
	return NULL;
}

static const ScimAttrDef *
common_attr(const char *name)
{
	for (int i = 0; i < lengthof(common_attrs); i++)
		if (ci_equal(name, common_attrs[i].name))
			return &common_attrs[i];
	return NULL;
}

bool
scim_registry_lookup(const char *resource_type, const char *schema,
					 const char *attr, const char *sub, ScimAttrRef *out)
{
	const ScimResourceTypeDef *rt = scim_registry_resource_type(resource_type);
	const ScimSchemaDef *sd = NULL;
	const ScimAttrDef *ad = NULL;
	bool		common = false;

	memset(out, 0, sizeof(*out));
	if (rt == NULL || attr == NULL)
		return false;

	if (schema != NULL)
	{
		sd = scim_registry_schema(schema);
		if (!scim_registry_schema_allowed(rt, sd))
			return false;
		if (sd == rt->schema && (ad = common_attr(attr)) != NULL)
			common = true;
		else
			ad = scim_registry_schema_attr(sd, attr);
	}
	else if ((ad = common_attr(attr)) != NULL)
	{
		sd = rt->schema;
		common = true;
	}
	else if ((ad = scim_registry_schema_attr(rt->schema, attr)) != NULL)
		sd = rt->schema;
	else
	{
		for (int i = 0; i < rt->n_extensions && ad == NULL; i++)
		{
			sd = rt->extensions[i].schema;
			ad = scim_registry_schema_attr(sd, attr);
		}
	}
	if (ad == NULL)
		return false;

	out->resource_type = rt;
	out->schema = sd;
	out->attr = ad;
	out->common = common;
	if (sub != NULL)
	{
		out->sub = scim_registry_sub_attr(ad, sub);
		if (out->sub == NULL)
		{
			memset(out, 0, sizeof(*out));
			return false;
		}
	}
	return true;
}

const char *
scim_attr_type_name(ScimAttrType type)
{
	switch (type)
	{
		case SCIM_TYPE_STRING:
			return "string";
		case SCIM_TYPE_BOOLEAN:
			return "boolean";
		case SCIM_TYPE_DECIMAL:
			return "decimal";
		case SCIM_TYPE_INTEGER:
			return "integer";
		case SCIM_TYPE_DATETIME:
			return "dateTime";
		case SCIM_TYPE_BINARY:
			return "binary";
		case SCIM_TYPE_REFERENCE:
			return "reference";
		case SCIM_TYPE_COMPLEX:
			return "complex";
	}
	return "string";
}

const char *
scim_mutability_name(ScimMutability m)
{
	switch (m)
	{
		case SCIM_MUT_READ_WRITE:
			return "readWrite";
		case SCIM_MUT_READ_ONLY:
			return "readOnly";
		case SCIM_MUT_IMMUTABLE:
			return "immutable";
		case SCIM_MUT_WRITE_ONLY:
			return "writeOnly";
	}
	return "readWrite";
}

const char *
scim_returned_name(ScimReturned r)
{
	switch (r)
	{
		case SCIM_RET_DEFAULT:
			return "default";
		case SCIM_RET_ALWAYS:
			return "always";
		case SCIM_RET_NEVER:
			return "never";
		case SCIM_RET_REQUEST:
			return "request";
	}
	return "default";
}

const char *
scim_uniqueness_name(ScimUniqueness u)
{
	switch (u)
	{
		case SCIM_UNIQ_NONE:
			return "none";
		case SCIM_UNIQ_SERVER:
			return "server";
		case SCIM_UNIQ_GLOBAL:
			return "global";
	}
	return "none";
}

/* ---------------------------------------------------------------------
 * JSON generation (/Schemas, /ResourceTypes)
 * ---------------------------------------------------------------------
 */
typedef struct JsonBuilder
{
	ScimArena  *arena;
	bool		failed;
} JsonBuilder;

static SjValue *
jb_check(JsonBuilder *jb, SjValue *v)
{
	if (v == NULL)
		jb->failed = true;
	return v;
}

static SjValue *
jb_string(JsonBuilder *jb, const char *s)
{
	return jb_check(jb, sj_new_string(jb->arena, s, strlen(s)));
}

static void
jb_set(JsonBuilder *jb, SjValue *obj, const char *key, SjValue *value)
{
	if (obj == NULL || value == NULL ||
		!sj_object_append(jb->arena, obj, key, strlen(key), value))
		jb->failed = true;
}

static void
jb_append(JsonBuilder *jb, SjValue *arr, SjValue *value)
{
	if (arr == NULL || value == NULL || !sj_array_append(jb->arena, arr, value))
		jb->failed = true;
}

static SjValue *
jb_string_list(JsonBuilder *jb, const char *const *list)
{
	SjValue    *arr = jb_check(jb, sj_new_array(jb->arena));

	for (; list != NULL && *list != NULL; list++)
		jb_append(jb, arr, jb_string(jb, *list));
	return arr;
}

static SjValue *
attr_json(JsonBuilder *jb, const ScimAttrDef *ad)
{
	SjValue    *o = jb_check(jb, sj_new_object(jb->arena));
	bool		textual = (ad->type == SCIM_TYPE_STRING || ad->type == SCIM_TYPE_REFERENCE ||
						   ad->type == SCIM_TYPE_BINARY);

	jb_set(jb, o, "name", jb_string(jb, ad->name));
	jb_set(jb, o, "type", jb_string(jb, scim_attr_type_name(ad->type)));
	if (ad->type == SCIM_TYPE_COMPLEX)
	{
		SjValue    *subs = jb_check(jb, sj_new_array(jb->arena));

		for (int i = 0; i < ad->n_sub_attrs; i++)
			jb_append(jb, subs, attr_json(jb, &ad->sub_attrs[i]));
		jb_set(jb, o, "subAttributes", subs);
	}
	jb_set(jb, o, "multiValued", jb_check(jb, sj_new_bool(jb->arena, ad->multi_valued)));
	jb_set(jb, o, "description", jb_string(jb, ad->description ? ad->description : ""));
	jb_set(jb, o, "required", jb_check(jb, sj_new_bool(jb->arena, ad->required)));
	if (textual)
		jb_set(jb, o, "caseExact", jb_check(jb, sj_new_bool(jb->arena, ad->case_exact)));
	if (ad->canonical_values != NULL)
		jb_set(jb, o, "canonicalValues", jb_string_list(jb, ad->canonical_values));
	if (ad->type == SCIM_TYPE_REFERENCE && ad->reference_types != NULL)
		jb_set(jb, o, "referenceTypes", jb_string_list(jb, ad->reference_types));
	jb_set(jb, o, "mutability", jb_string(jb, scim_mutability_name(ad->mutability)));
	jb_set(jb, o, "returned", jb_string(jb, scim_returned_name(ad->returned)));
	if (textual)
		jb_set(jb, o, "uniqueness", jb_string(jb, scim_uniqueness_name(ad->uniqueness)));
	return o;
}

static SjValue *
meta_json(JsonBuilder *jb, const char *resource_type, const char *collection, const char *id)
{
	SjValue    *meta = jb_check(jb, sj_new_object(jb->arena));
	size_t		clen = strlen(collection);
	size_t		ilen = strlen(id);
	char	   *loc = scim_arena_alloc(jb->arena, clen + ilen + 1);

	jb_set(jb, meta, "resourceType", jb_string(jb, resource_type));
	if (loc == NULL)
	{
		jb->failed = true;
		return meta;
	}
	memcpy(loc, collection, clen);
	memcpy(loc + clen, id, ilen + 1);
	jb_set(jb, meta, "location", jb_string(jb, loc));
	return meta;
}

SjValue *
scim_registry_schemas_json(ScimArena *arena)
{
	JsonBuilder jb = {arena, false};
	SjValue    *list = jb_check(&jb, sj_new_array(arena));

	for (int i = 0; i < lengthof(all_schemas); i++)
	{
		const ScimSchemaDef *sd = all_schemas[i];
		SjValue    *o = jb_check(&jb, sj_new_object(arena));
		SjValue    *schemas = jb_check(&jb, sj_new_array(arena));
		SjValue    *attrs = jb_check(&jb, sj_new_array(arena));

		jb_append(&jb, schemas, jb_string(&jb, SCIM_URN_SCHEMA));
		jb_set(&jb, o, "schemas", schemas);
		jb_set(&jb, o, "id", jb_string(&jb, sd->id));
		jb_set(&jb, o, "name", jb_string(&jb, sd->name));
		jb_set(&jb, o, "description", jb_string(&jb, sd->description));
		for (int j = 0; j < sd->n_attrs; j++)
			jb_append(&jb, attrs, attr_json(&jb, &sd->attrs[j]));
		jb_set(&jb, o, "attributes", attrs);
		jb_set(&jb, o, "meta", meta_json(&jb, "Schema", "/Schemas/", sd->id));
		jb_append(&jb, list, o);
	}
	return jb.failed ? NULL : list;
}

SjValue *
scim_registry_resource_types_json(ScimArena *arena)
{
	JsonBuilder jb = {arena, false};
	SjValue    *list = jb_check(&jb, sj_new_array(arena));

	for (int i = 0; i < lengthof(resource_types); i++)
	{
		const ScimResourceTypeDef *rt = &resource_types[i];
		SjValue    *o = jb_check(&jb, sj_new_object(arena));
		SjValue    *schemas = jb_check(&jb, sj_new_array(arena));
		SjValue    *exts = jb_check(&jb, sj_new_array(arena));

		jb_append(&jb, schemas, jb_string(&jb, SCIM_URN_RESOURCE_TYPE));
		jb_set(&jb, o, "schemas", schemas);
		jb_set(&jb, o, "id", jb_string(&jb, rt->name));
		jb_set(&jb, o, "name", jb_string(&jb, rt->name));
		jb_set(&jb, o, "endpoint", jb_string(&jb, rt->endpoint));
		jb_set(&jb, o, "description", jb_string(&jb, rt->description));
		jb_set(&jb, o, "schema", jb_string(&jb, rt->schema->id));
		for (int j = 0; j < rt->n_extensions; j++)
		{
			SjValue    *e = jb_check(&jb, sj_new_object(arena));

			jb_set(&jb, e, "schema", jb_string(&jb, rt->extensions[j].schema->id));
			jb_set(&jb, e, "required", jb_check(&jb, sj_new_bool(arena, rt->extensions[j].required)));
			jb_append(&jb, exts, e);
		}
		if (rt->n_extensions > 0)
			jb_set(&jb, o, "schemaExtensions", exts);
		jb_set(&jb, o, "meta", meta_json(&jb, "ResourceType", "/ResourceTypes/", rt->name));
		jb_append(&jb, list, o);
	}
	return jb.failed ? NULL : list;
}
