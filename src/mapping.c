/*-------------------------------------------------------------------------
 *
 * mapping.c
 *		SCIM 2.0 User resource <-> scim.users row, in both directions.
 *
 * Input (scim._user_from_resource): a SCIM User as IdPs really send it is
 * read into the columns of doc/CONTRACTS.md plus the residual attributes
 * jsonb.  Sloppy forms are accepted: attribute names in any case, SCIM 1.1
 * URNs (urn:scim:schemas:core:1.0, urn:scim:schemas:extension:enterprise:1.0)
 * as aliases of their 2.0 schemas, URN-qualified attribute names
 * ("urn:...:enterprise:2.0:User:department"), a multi-valued attribute sent
 * as one object instead of an array, booleans as the strings "true"/"False",
 * enterprise manager.managerId (SCIM 1.1) for manager.value.  Read-only
 * attributes (id, meta, groups, schemas) are ignored, password is accepted
 * and discarded (we authenticate nobody, so we keep no secret), unknown
 * attributes and unknown extension schemas are ignored, and so is every
 * (sub-)attribute the attribute registry (registry.c) marks readOnly, such
 * as manager.displayName.  An empty string is
 * treated like null ("not sent"), because IdP templates render a missing
 * source value as "".  Errors are SQLSTATE 22023 with a "scimType: "
 * message prefix (invalidValue, invalidSyntax), which scim.handle turns into
 * SCIM 400 responses.
 *
 * Output (scim.user_resource): a strict SCIM 2.0 resource: the schemas array
 * lists the extensions present, meta carries resourceType, created,
 * lastModified, location and version (the ETag W/"<version>"), and the
 * attributes/excludedAttributes projection of RFC 7644 section 3.9 is
 * applied with the registry's "returned" characteristic: "always" ones
 * (id) and schemas are always there, "never" ones (password) never,
 * "request" ones only when asked for by name.
 *
 * Everything is built on PostgreSQL's jsonb API (in-memory JsonbValue
 * trees), inside the caller's short-lived memory context.
 *
 * src/mapping.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/uuid.h"

#include "index_probe.h"
#include "mapping.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(scim_user_from_resource);
PG_FUNCTION_INFO_V1(scim_user_resource);

/* ------------------------------------------------------------------------
 * In-memory JsonbValue trees
 * ------------------------------------------------------------------------
 */

static JsonbValue *
jv_string(const char *s, int len)
{
	JsonbValue *v = palloc(sizeof(JsonbValue));

	v->type = jbvString;
	v->val.string.val = (char *) s;
	v->val.string.len = len;
	return v;
}

static JsonbValue *
jv_cstring(const char *s)
{
	return jv_string(s, strlen(s));
}

static JsonbValue *
jv_bool(bool b)
{
	JsonbValue *v = palloc(sizeof(JsonbValue));

	v->type = jbvBool;
	v->val.boolean = b;
	return v;
}

static JsonbValue *
jv_object(void)
{
	JsonbValue *v = palloc0(sizeof(JsonbValue));

	v->type = jbvObject;
	return v;
}

static JsonbValue *
jv_array(void)
{
	JsonbValue *v = palloc0(sizeof(JsonbValue));

	v->type = jbvArray;
	return v;
}

static inline bool
key_eq(const JsonbValue *key, const char *name, bool ci)
{
	size_t		len = strlen(name);

	if ((size_t) key->val.string.len != len)
		return false;
	return ci ? pg_strncasecmp(key->val.string.val, name, len) == 0
		: memcmp(key->val.string.val, name, len) == 0;
}

/* Member of an object tree by name (ASCII case-insensitively if ci), or NULL. */
static JsonbValue *
jv_get(const JsonbValue *obj, const char *name, bool ci)
{
	if (obj == NULL || obj->type != jbvObject)
		return NULL;
	for (int i = 0; i < obj->val.object.nPairs; i++)
		if (key_eq(&obj->val.object.pairs[i].key, name, ci))
			return &obj->val.object.pairs[i].value;
	return NULL;
}

/* Set a member (exact key): replaces an existing one, else appends. */
static void
jv_put(JsonbValue *obj, const char *name, const JsonbValue *value)
{
	int			n = obj->val.object.nPairs;
	JsonbPair  *p;

	for (int i = 0; i < n; i++)
		if (key_eq(&obj->val.object.pairs[i].key, name, false))
		{
			obj->val.object.pairs[i].value = *value;
			return;
		}
	obj->val.object.pairs = n == 0 ? palloc(sizeof(JsonbPair))
		: repalloc(obj->val.object.pairs, (n + 1) * sizeof(JsonbPair));
	p = &obj->val.object.pairs[n];
	p->key.type = jbvString;
	p->key.val.string.val = pstrdup(name);
	p->key.val.string.len = strlen(name);
	p->value = *value;
	p->order = n;
	obj->val.object.nPairs = n + 1;
}

static void
jv_remove(JsonbValue *obj, int index)
{
	JsonbPair  *pairs = obj->val.object.pairs;

	memmove(&pairs[index], &pairs[index + 1], (obj->val.object.nPairs - index - 1) * sizeof(JsonbPair));
	obj->val.object.nPairs--;
}

static void
jv_append(JsonbValue *arr, const JsonbValue *value)
{
	int			n = arr->val.array.nElems;

	arr->val.array.elems = n == 0 ? palloc(sizeof(JsonbValue))
		: repalloc(arr->val.array.elems, (n + 1) * sizeof(JsonbValue));
	arr->val.array.elems[n] = *value;
	arr->val.array.nElems = n + 1;
}

/* A jsonb container as a fully unpacked in-memory tree. */
static JsonbValue *
jv_unpack_container(JsonbContainer *c)
{
	JsonbParseState *st = NULL;
	JsonbIterator *it = JsonbIteratorInit(c);
	JsonbValue	v;
	JsonbValue *res = NULL;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
		res = pushJsonbValue(&st, tok, tok < WJB_BEGIN_ARRAY ? &v : NULL);
	return res;
}

/* Unpack a value that may be a binary container; scalars are returned as is. */
static JsonbValue *
jv_unpack(JsonbValue *v)
{
	if (v->type == jbvBinary)
		return jv_unpack_container(v->val.binary.data);
	return v;
}

/* Push a tree into a parse state (objects come out sorted and unique). */
static JsonbValue *
jv_push(JsonbParseState **st, JsonbIteratorToken seq, JsonbValue *v)
{
	if (v->type == jbvObject)
	{
		JsonbValue *res;

		pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
		for (int i = 0; i < v->val.object.nPairs; i++)
		{
			pushJsonbValue(st, WJB_KEY, &v->val.object.pairs[i].key);
			jv_push(st, WJB_VALUE, &v->val.object.pairs[i].value);
		}
		res = pushJsonbValue(st, WJB_END_OBJECT, NULL);
		return res;
	}
	if (v->type == jbvArray)
	{
		pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
		for (int i = 0; i < v->val.array.nElems; i++)
			jv_push(st, WJB_ELEM, &v->val.array.elems[i]);
		return pushJsonbValue(st, WJB_END_ARRAY, NULL);
	}
	return pushJsonbValue(st, seq, v);
}

static Jsonb *
jv_to_jsonb(JsonbValue *tree)
{
	JsonbParseState *st = NULL;

	return JsonbValueToJsonb(jv_push(&st, WJB_VALUE, tree));
}

static char *
jv_cstr(const JsonbValue *v)
{
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static const char *
jv_type_name(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvArray:
			return "an array";
		case jbvObject:
			return "an object";
		default:
			return "a container";
	}
}

/* The registry's definition of a User's [urn:]attr[.sub] (urn NULL = core), or NULL. */
static const ScimAttrDef *
user_attr_def(const char *urn, const char *attr, const char *sub)
{
	ScimAttrRef ref;

	if (!scim_registry_lookup("User", urn ? urn : SCIM_URN_CORE_USER, attr, sub, &ref))
		return NULL;
	return sub ? ref.sub : ref.attr;
}

/* Whether the registry marks a User's (sub-)attribute readOnly: ignored on input. */
static bool
read_only(const char *urn, const char *attr, const char *sub)
{
	const ScimAttrDef *def = user_attr_def(urn, attr, sub);

	return def != NULL && def->mutability == SCIM_MUT_READ_ONLY;
}

/* ------------------------------------------------------------------------
 * Input: resource -> fields
 * ------------------------------------------------------------------------
 */

typedef enum FieldState
{
	FS_ABSENT = 0,				/* not in the resource */
	FS_NULL,					/* null, "" or an empty multi-valued attribute */
	FS_VALUE
} FieldState;

typedef struct MapField
{
	FieldState	state;
	char	   *value;
} MapField;

/* The text columns the mapping writes, in this order. */
typedef enum MapColumn
{
	COL_USER_NAME,
	COL_EXTERNAL_ID,
	COL_GIVEN_NAME,
	COL_FAMILY_NAME,
	COL_DISPLAY_NAME,
	COL_EMAIL,
	COL_TITLE,
	COL_PHONE,
	COL_ORGANIZATION,
	COL_DEPARTMENT,
	COL_USER_TYPE,
	N_MAP_COLUMNS
} MapColumn;

static const char *const column_names[N_MAP_COLUMNS] = {
	"user_name", "external_id", "given_name", "family_name", "display_name",
	"email", "title", "phone", "organization", "department", "user_type"
};

/* The seeds' synced attributes: left out of a PUT, they keep their value. */
static const bool column_synced[N_MAP_COLUMNS] = {
	true, false, true, true, false, true, true, true, true, true, true
};

typedef struct MappedUser
{
	MapField	cols[N_MAP_COLUMNS];
	MapField	core_user_type; /* core userType, canonical */
	MapField	ext_user_type;	/* our extension's userType, canonical */
	FieldState	active_state;
	bool		active;
	JsonbValue *core;			/* residual core attributes present (value
								 * jbvNull when sent as null) */
	JsonbValue *name;			/* residual name sub-attributes */
	FieldState	name_state;
	JsonbValue *enterprise;		/* residual enterprise attributes */
	FieldState	enterprise_state;
} MappedUser;

typedef enum AttrKind
{
	AK_IGNORE,					/* read-only or never stored */
	AK_COLUMN,					/* string, in column */
	AK_STRING,					/* string, in attributes */
	AK_ACTIVE,
	AK_USER_TYPE,
	AK_NAME,
	AK_MULTI,					/* multi-valued complex, in attributes */
	AK_MANAGER
} AttrKind;

typedef struct InAttr
{
	const char *name;			/* canonical case */
	AttrKind	kind;
	int			column;			/* AK_COLUMN: the column; AK_MULTI: the
								 * mirror of the primary value, or -1 */
} InAttr;

static const InAttr core_attrs[] = {
	{"id", AK_IGNORE, -1},
	{"externalId", AK_COLUMN, COL_EXTERNAL_ID},
	{"meta", AK_IGNORE, -1},
	{"schemas", AK_IGNORE, -1},
	{"userName", AK_COLUMN, COL_USER_NAME},
	{"name", AK_NAME, -1},
	{"displayName", AK_COLUMN, COL_DISPLAY_NAME},
	{"nickName", AK_STRING, -1},
	{"profileUrl", AK_STRING, -1},
	{"title", AK_COLUMN, COL_TITLE},
	{"userType", AK_USER_TYPE, -1},
	{"preferredLanguage", AK_STRING, -1},
	{"locale", AK_STRING, -1},
	{"timezone", AK_STRING, -1},
	{"active", AK_ACTIVE, -1},
	{"password", AK_IGNORE, -1},
	{"emails", AK_MULTI, COL_EMAIL},
	{"phoneNumbers", AK_MULTI, COL_PHONE},
	{"ims", AK_MULTI, -1},
	{"photos", AK_MULTI, -1},
	{"addresses", AK_MULTI, -1},
	{"groups", AK_IGNORE, -1},
	{"entitlements", AK_MULTI, -1},
	{"roles", AK_MULTI, -1},
	{"x509Certificates", AK_MULTI, -1},
	{NULL, AK_IGNORE, -1}
};

static const InAttr name_attrs[] = {
	{"givenName", AK_COLUMN, COL_GIVEN_NAME},
	{"familyName", AK_COLUMN, COL_FAMILY_NAME},
	{"formatted", AK_STRING, -1},
	{"middleName", AK_STRING, -1},
	{"honorificPrefix", AK_STRING, -1},
	{"honorificSuffix", AK_STRING, -1},
	{NULL, AK_IGNORE, -1}
};

static const InAttr enterprise_attrs[] = {
	{"organization", AK_COLUMN, COL_ORGANIZATION},
	{"department", AK_COLUMN, COL_DEPARTMENT},
	{"employeeNumber", AK_STRING, -1},
	{"costCenter", AK_STRING, -1},
	{"division", AK_STRING, -1},
	{"manager", AK_MANAGER, -1},
	{NULL, AK_IGNORE, -1}
};

/* Sub-attributes kept for the elements of multi-valued attributes. */
static const char *const element_subs[] = {
	"value", "display", "type", "primary", "$ref",
	/* addresses */
	"formatted", "streetAddress", "locality", "region", "postalCode", "country",
	NULL
};

static const InAttr *
find_attr(const InAttr *table, const char *name, int len)
{
	for (const InAttr *a = table; a->name; a++)
		if ((int) strlen(a->name) == len && pg_strncasecmp(a->name, name, len) == 0)
			return a;
	return NULL;
}

const char *
scim_canonical_user_type(const char *value, size_t len)
{
	static const char *const types[] = {"Regular", "External", "Collaborator", NULL};

	while (len > 0 && isspace((unsigned char) *value))
		value++, len--;
	while (len > 0 && isspace((unsigned char) value[len - 1]))
		len--;
	for (int i = 0; types[i]; i++)
		if (strlen(types[i]) == len && pg_strncasecmp(types[i], value, len) == 0)
			return types[i];
	return NULL;
}

/*
 * Read a string attribute: a string (empty -> null), or null.  Anything else
 * is SCIM 400 invalidValue.
 */
static MapField
read_string(const JsonbValue *v, const char *attr)
{
	MapField	f = {FS_NULL, NULL};

	if (v->type == jbvNull)
		return f;
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidValue: attribute \"%s\" must be a string, not %s", attr, jv_type_name(v))));
	if (v->val.string.len == 0)
		return f;
	f.state = FS_VALUE;
	f.value = jv_cstr(v);
	return f;
}

/* A boolean, or the strings "true"/"false" in any case (Entra ID, OneLogin templates). */
static FieldState
read_boolean(const JsonbValue *v, const char *attr, bool *out)
{
	if (v->type == jbvNull)
		return FS_NULL;
	if (v->type == jbvBool)
	{
		*out = v->val.boolean;
		return FS_VALUE;
	}
	if (v->type == jbvString)
	{
		const char *s = v->val.string.val;
		int			len = v->val.string.len;

		while (len > 0 && isspace((unsigned char) *s))
			s++, len--;
		while (len > 0 && isspace((unsigned char) s[len - 1]))
			len--;
		if (len == 4 && pg_strncasecmp(s, "true", 4) == 0)
		{
			*out = true;
			return FS_VALUE;
		}
		if (len == 5 && pg_strncasecmp(s, "false", 5) == 0)
		{
			*out = false;
			return FS_VALUE;
		}
		if (len == 0)
			return FS_NULL;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalidValue: attribute \"%s\" must be a boolean, not %s", attr, jv_type_name(v))));
	return FS_NULL;				/* keep compiler quiet */
}

static MapField
read_user_type(const JsonbValue *v, const char *attr)
{
	MapField	f = read_string(v, attr);

	if (f.state == FS_VALUE)
	{
		const char *canonical = scim_canonical_user_type(f.value, strlen(f.value));

		if (canonical == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalidValue: \"%s\" is not a user type", f.value),
					 errdetail("A user type is Regular, External or Collaborator (any case).")));
		f.value = (char *) canonical;
	}
	return f;
}

/*
 * A multi-valued complex attribute: an array of objects, or one object
 * (OneLogin's SCIM 1.1 templates).  Elements keep the known sub-attributes
 * in canonical case; "primary" may be a string; elements whose value is
 * null or "" are dropped (a template rendering an empty source field).  At
 * most one element may be primary.  Returns the normalised array (NULL when
 * there is nothing left) and, when mirror is given, the primary value (the
 * primary element's, else the first element's).
 */
static JsonbValue *
read_multi(JsonbValue *v, const char *attr, MapField *mirror)
{
	JsonbValue *in = jv_unpack(v);
	JsonbValue *out = jv_array();
	JsonbValue	single;
	int			nprimary = 0;
	char	   *first_value = NULL;
	char	   *primary_value = NULL;

	if (in->type == jbvNull)
	{
		if (mirror)
			mirror->state = FS_NULL;
		return NULL;
	}
	if (in->type == jbvObject)
	{
		/* one object instead of an array */
		single.type = jbvArray;
		single.val.array.nElems = 1;
		single.val.array.rawScalar = false;
		single.val.array.elems = in;
		in = &single;
	}
	if (in->type != jbvArray)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidValue: attribute \"%s\" must be an array of objects, not %s", attr, jv_type_name(in))));

	for (int i = 0; i < in->val.array.nElems; i++)
	{
		JsonbValue *el = jv_unpack(&in->val.array.elems[i]);
		JsonbValue *elem;
		bool		has_value_sub = false;
		char	   *value = NULL;
		bool		primary = false;

		if (el->type == jbvNull)
			continue;
		if (el->type != jbvObject)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalidValue: elements of \"%s\" must be objects, not %s", attr, jv_type_name(el))));
		elem = jv_object();
		for (int j = 0; j < el->val.object.nPairs; j++)
		{
			JsonbValue *k = &el->val.object.pairs[j].key;
			JsonbValue *sv = &el->val.object.pairs[j].value;
			const char *sub = NULL;

			for (int s = 0; element_subs[s]; s++)
				if (key_eq(k, element_subs[s], true))
				{
					sub = element_subs[s];
					break;
				}
			if (sub == NULL || sv->type == jbvNull || read_only(NULL, attr, sub))
				continue;		/* unknown and read-only sub-attributes are ignored */
			if (strcmp(sub, "primary") == 0)
			{
				if (read_boolean(sv, "primary", &primary) == FS_VALUE)
					jv_put(elem, "primary", jv_bool(primary));
				continue;
			}
			if (strcmp(sub, "value") == 0)
				has_value_sub = true;
			if (sv->type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalidValue: attribute \"%s.%s\" must be a string, not %s", attr, sub, jv_type_name(sv))));
			if (sv->val.string.len == 0)
			{
				if (strcmp(sub, "value") == 0)
					has_value_sub = false;
				continue;
			}
			if (strcmp(sub, "value") == 0)
				value = jv_cstr(sv);
			jv_put(elem, sub, sv);
		}
		/* an element without a value (emails[].value "") carries nothing */
		if (!has_value_sub && strcmp(attr, "addresses") != 0)
			continue;
		if (elem->val.object.nPairs == 0)
			continue;
		if (primary)
		{
			nprimary++;
			primary_value = value;
		}
		if (first_value == NULL)
			first_value = value;
		jv_append(out, elem);
	}
	if (nprimary > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidValue: more than one element of \"%s\" is primary", attr),
				 errdetail("RFC 7643 allows the primary value \"true\" at most once per attribute.")));
	if (mirror)
	{
		char	   *m = primary_value ? primary_value : first_value;

		mirror->state = m ? FS_VALUE : FS_NULL;
		mirror->value = m;
	}
	return out->val.array.nElems > 0 ? out : NULL;
}

/* enterprise manager: {value, $ref, displayName}; managerId (SCIM 1.1) = value; a bare string = value */
static JsonbValue *
read_manager(JsonbValue *v)
{
	JsonbValue *in = jv_unpack(v);
	JsonbValue *out = jv_object();

	if (in->type == jbvNull)
		return NULL;
	if (in->type == jbvString)
	{
		if (in->val.string.len == 0)
			return NULL;
		jv_put(out, "value", in);
		return out;
	}
	if (in->type != jbvObject)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidValue: attribute \"manager\" must be an object, not %s", jv_type_name(in))));
	for (int i = 0; i < in->val.object.nPairs; i++)
	{
		JsonbValue *k = &in->val.object.pairs[i].key;
		JsonbValue *sv = &in->val.object.pairs[i].value;
		const char *sub;
		MapField	f;

		if (key_eq(k, "value", true) || key_eq(k, "managerId", true))
			sub = "value";
		else if (key_eq(k, "$ref", true))
			sub = "$ref";
		else if (key_eq(k, "displayName", true))
			sub = "displayName";
		else
			continue;
		if (read_only(SCIM_MAP_URN_ENTERPRISE, "manager", sub))
			continue;
		f = read_string(sv, "manager");
		/* managerId must not override an explicit value */
		if (f.state == FS_VALUE && !(strcmp(sub, "value") == 0 && key_eq(k, "managerId", true) && jv_get(out, "value", false)))
			jv_put(out, sub, jv_cstring(f.value));
	}
	return out->val.object.nPairs > 0 ? out : NULL;
}

static void read_core_attr(MappedUser *m, const char *name, int len, JsonbValue *v);

static void
read_name(MappedUser *m, JsonbValue *v)
{
	JsonbValue *in = jv_unpack(v);
	JsonbValue	null_value = {.type = jbvNull};

	if (in->type == jbvNull)
	{
		m->name_state = FS_NULL;
		if (m->cols[COL_GIVEN_NAME].state == FS_ABSENT)
			m->cols[COL_GIVEN_NAME].state = FS_NULL;
		if (m->cols[COL_FAMILY_NAME].state == FS_ABSENT)
			m->cols[COL_FAMILY_NAME].state = FS_NULL;
		return;
	}
	if (in->type != jbvObject)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidValue: attribute \"name\" must be an object, not %s", jv_type_name(in))));
	if (m->name == NULL)
		m->name = jv_object();
	m->name_state = FS_VALUE;
	for (int i = 0; i < in->val.object.nPairs; i++)
	{
		JsonbValue *k = &in->val.object.pairs[i].key;
		const InAttr *a = find_attr(name_attrs, k->val.string.val, k->val.string.len);
		MapField	f;

		if (a == NULL || read_only(NULL, "name", a->name))
			continue;
		f = read_string(&in->val.object.pairs[i].value, a->name);
		if (a->kind == AK_COLUMN)
			m->cols[a->column] = f;
		else
			jv_put(m->name, a->name, f.state == FS_VALUE ? jv_cstring(f.value) : &null_value);
	}
}

static void
read_enterprise_attr(MappedUser *m, const char *name, int len, JsonbValue *v)
{
	const InAttr *a = find_attr(enterprise_attrs, name, len);
	JsonbValue	null_value = {.type = jbvNull};

	if (a == NULL || read_only(SCIM_MAP_URN_ENTERPRISE, a->name, NULL))
		return;
	if (m->enterprise == NULL)
		m->enterprise = jv_object();
	m->enterprise_state = FS_VALUE;
	if (a->kind == AK_COLUMN)
		m->cols[a->column] = read_string(v, a->name);
	else if (a->kind == AK_MANAGER)
	{
		JsonbValue *mgr = read_manager(v);

		jv_put(m->enterprise, a->name, mgr ? mgr : &null_value);
	}
	else
	{
		MapField	f = read_string(v, a->name);

		jv_put(m->enterprise, a->name, f.state == FS_VALUE ? jv_cstring(f.value) : &null_value);
	}
}

static void
read_enterprise(MappedUser *m, JsonbValue *v)
{
	JsonbValue *in = jv_unpack(v);

	if (in->type == jbvNull)
	{
		if (m->enterprise_state == FS_ABSENT)
			m->enterprise_state = FS_NULL;
		if (m->cols[COL_ORGANIZATION].state == FS_ABSENT)
			m->cols[COL_ORGANIZATION].state = FS_NULL;
		if (m->cols[COL_DEPARTMENT].state == FS_ABSENT)
			m->cols[COL_DEPARTMENT].state = FS_NULL;
		return;
	}
	if (in->type != jbvObject)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidValue: the enterprise extension must be an object, not %s", jv_type_name(in))));
	if (m->enterprise == NULL)
		m->enterprise = jv_object();
	m->enterprise_state = FS_VALUE;
	for (int i = 0; i < in->val.object.nPairs; i++)
	{
		JsonbValue *k = &in->val.object.pairs[i].key;

		read_enterprise_attr(m, k->val.string.val, k->val.string.len, &in->val.object.pairs[i].value);
	}
}

static void
read_provision_attr(MappedUser *m, const char *name, int len, JsonbValue *v)
{
	if (len == 8 && pg_strncasecmp(name, "userType", 8) == 0)
		m->ext_user_type = read_user_type(v, "userType");
}

static void
read_provision(MappedUser *m, JsonbValue *v)
{
	JsonbValue *in = jv_unpack(v);

	if (in->type == jbvNull)
	{
		if (m->ext_user_type.state == FS_ABSENT)
			m->ext_user_type.state = FS_NULL;
		return;
	}
	if (in->type != jbvObject)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidValue: the extension %s must be an object, not %s", SCIM_MAP_URN_PROVISION, jv_type_name(in))));
	for (int i = 0; i < in->val.object.nPairs; i++)
	{
		JsonbValue *k = &in->val.object.pairs[i].key;

		read_provision_attr(m, k->val.string.val, k->val.string.len, &in->val.object.pairs[i].value);
	}
}

static void
read_core_attr(MappedUser *m, const char *name, int len, JsonbValue *v)
{
	const InAttr *a = find_attr(core_attrs, name, len);
	JsonbValue	null_value = {.type = jbvNull};

	if (a == NULL)
	{
		/* "name.givenName" style (URN-qualified paths end up here too) */
		const char *dot = memchr(name, '.', len);

		if (dot && dot - name == 4 && pg_strncasecmp(name, "name", 4) == 0)
		{
			JsonbValue *wrapper = jv_object();

			jv_put(wrapper, pnstrdup(dot + 1, len - 5), v);
			read_name(m, wrapper);
		}
		return;
	}
	if (read_only(NULL, a->name, NULL))
		return;					/* id, meta, groups */
	switch (a->kind)
	{
		case AK_IGNORE:
			break;
		case AK_COLUMN:
			m->cols[a->column] = read_string(v, a->name);
			break;
		case AK_STRING:
			{
				MapField	f = read_string(v, a->name);

				jv_put(m->core, a->name, f.state == FS_VALUE ? jv_cstring(f.value) : &null_value);
				break;
			}
		case AK_ACTIVE:
			m->active_state = read_boolean(v, a->name, &m->active);
			break;
		case AK_USER_TYPE:
			m->core_user_type = read_user_type(v, a->name);
			break;
		case AK_NAME:
			read_name(m, v);
			break;
		case AK_MULTI:
			{
				MapField	mirror = {FS_ABSENT, NULL};
				JsonbValue *arr = read_multi(v, a->name, a->column >= 0 ? &mirror : NULL);

				jv_put(m->core, a->name, arr ? arr : &null_value);
				if (a->column >= 0)
					m->cols[a->column] = mirror;
				break;
			}
		case AK_MANAGER:
			break;
	}
}

/* Whether key is urn (any case) or urn + ":" + attribute (sets *rest). */
static bool
urn_match(const JsonbValue *key, const char *urn, const char **rest, int *restlen)
{
	size_t		ulen = strlen(urn);
	size_t		klen = key->val.string.len;

	if (klen < ulen || pg_strncasecmp(key->val.string.val, urn, ulen) != 0)
		return false;
	if (klen == ulen)
	{
		*rest = NULL;
		*restlen = 0;
		return true;
	}
	if (key->val.string.val[ulen] != ':' || klen == ulen + 1)
		return false;
	*rest = key->val.string.val + ulen + 1;
	*restlen = klen - ulen - 1;
	return true;
}

static void
read_resource(MappedUser *m, JsonbValue *root)
{
	memset(m, 0, sizeof(*m));
	m->core = jv_object();

	for (int i = 0; i < root->val.object.nPairs; i++)
	{
		JsonbValue *k = &root->val.object.pairs[i].key;
		JsonbValue *v = &root->val.object.pairs[i].value;
		const char *rest;
		int			restlen;

		if (k->val.string.len > 4 && pg_strncasecmp(k->val.string.val, "urn:", 4) == 0)
		{
			if (urn_match(k, SCIM_MAP_URN_ENTERPRISE, &rest, &restlen) ||
				urn_match(k, SCIM_MAP_URN_ENTERPRISE_1_0, &rest, &restlen))
			{
				if (rest == NULL)
					read_enterprise(m, v);
				else
				{
					/* "urn:...:User:manager.value" style */
					const char *dot = memchr(rest, '.', restlen);

					if (dot && dot - rest == 7 && pg_strncasecmp(rest, "manager", 7) == 0)
					{
						JsonbValue *mgr = jv_object();

						jv_put(mgr, pnstrdup(dot + 1, restlen - 8), v);
						read_enterprise_attr(m, "manager", 7, mgr);
					}
					else
						read_enterprise_attr(m, rest, restlen, v);
				}
			}
			else if (urn_match(k, SCIM_MAP_URN_PROVISION, &rest, &restlen))
			{
				if (rest == NULL)
					read_provision(m, v);
				else
					read_provision_attr(m, rest, restlen, v);
			}
			else if (urn_match(k, SCIM_MAP_URN_CORE, &rest, &restlen) ||
					 urn_match(k, SCIM_MAP_URN_CORE_1_0, &rest, &restlen))
			{
				if (rest != NULL)
					read_core_attr(m, rest, restlen, v);
				else
				{
					/* the core attributes wrapped in their URN */
					JsonbValue *in = jv_unpack(v);

					if (in->type == jbvObject)
						for (int j = 0; j < in->val.object.nPairs; j++)
							read_core_attr(m, in->val.object.pairs[j].key.val.string.val,
										   in->val.object.pairs[j].key.val.string.len,
										   &in->val.object.pairs[j].value);
				}
			}
			/* other extension schemas are not ours: ignored */
			continue;
		}
		read_core_attr(m, k->val.string.val, k->val.string.len, v);
	}
}

/* ------------------------------------------------------------------------
 * Input: fields -> row
 * ------------------------------------------------------------------------
 */

typedef struct CurrentRow
{
	HeapTupleHeader tuple;
	TupleDesc	desc;
	HeapTupleData tmptup;
} CurrentRow;

static Datum
current_value(CurrentRow *cur, const char *column, bool *isnull)
{
	for (int i = 0; i < cur->desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(cur->desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), column) == 0)
			return heap_getattr(&cur->tmptup, i + 1, cur->desc, isnull);
	}
	*isnull = true;
	return (Datum) 0;
}

static char *
current_text(CurrentRow *cur, const char *column)
{
	bool		isnull;
	Datum		d;

	if (cur == NULL)
		return NULL;
	d = current_value(cur, column, &isnull);
	return isnull ? NULL : TextDatumGetCString(d);
}

static JsonbValue *
current_attributes(CurrentRow *cur)
{
	bool		isnull;
	Datum		d;
	Jsonb	   *jb;

	if (cur == NULL)
		return jv_object();
	d = current_value(cur, "attributes", &isnull);
	if (isnull)
		return jv_object();
	jb = DatumGetJsonbP(d);
	if (!JB_ROOT_IS_OBJECT(jb))
		return jv_object();
	return jv_unpack_container(&jb->root);
}

/* Drop members whose value is null. */
static JsonbValue *
without_nulls(JsonbValue *obj)
{
	for (int i = obj->val.object.nPairs - 1; i >= 0; i--)
		if (obj->val.object.pairs[i].value.type == jbvNull)
			jv_remove(obj, i);
	return obj;
}

/* Members of patch over base: members present in patch with a non-null value win. */
static JsonbValue *
merge_object(JsonbValue *base, JsonbValue *patch)
{
	JsonbValue *out = (base && base->type == jbvObject) ? base : jv_object();

	if (patch == NULL)
		return out;
	for (int i = 0; i < patch->val.object.nPairs; i++)
	{
		JsonbPair  *p = &patch->val.object.pairs[i];

		if (p->value.type != jbvNull)
			jv_put(out, jv_cstr(&p->key), &p->value);
	}
	return out;
}

/* The residual attributes object, per mode. */
static JsonbValue *
build_attributes(MappedUser *m, ScimMapMode mode, CurrentRow *cur)
{
	JsonbValue *result;
	JsonbValue *name;
	JsonbValue *ent;

	if (mode == SCIM_MAP_MERGE)
	{
		JsonbValue *old = current_attributes(cur);

		result = merge_object(old, m->core);
		name = merge_object(jv_unpack(jv_get(old, "name", false) ? jv_get(old, "name", false) : jv_object()), m->name);
		ent = merge_object(jv_unpack(jv_get(old, SCIM_MAP_URN_ENTERPRISE, false) ? jv_get(old, SCIM_MAP_URN_ENTERPRISE, false) : jv_object()),
						   m->enterprise);
	}
	else
	{
		result = without_nulls(m->core);
		name = m->name ? without_nulls(m->name) : NULL;
		ent = m->enterprise ? without_nulls(m->enterprise) : NULL;

		if (mode == SCIM_MAP_REPLACE)
		{
			/* the primary email and phone are synced: their arrays stay when left out */
			static const char *const kept[] = {"emails", "phoneNumbers", NULL};
			JsonbValue *old = NULL;

			for (int i = 0; kept[i]; i++)
			{
				if (jv_get(result, kept[i], false) != NULL)
					continue;
				if (old == NULL)
					old = current_attributes(cur);
				if (jv_get(old, kept[i], false) != NULL)
					jv_put(result, kept[i], jv_get(old, kept[i], false));
			}
		}
	}
	if (name && name->val.object.nPairs > 0)
		jv_put(result, "name", name);
	else
		for (int i = 0; i < result->val.object.nPairs; i++)
			if (key_eq(&result->val.object.pairs[i].key, "name", false))
			{
				jv_remove(result, i);
				break;
			}
	if (ent && ent->val.object.nPairs > 0)
		jv_put(result, SCIM_MAP_URN_ENTERPRISE, ent);
	else
		for (int i = 0; i < result->val.object.nPairs; i++)
			if (key_eq(&result->val.object.pairs[i].key, SCIM_MAP_URN_ENTERPRISE, false))
			{
				jv_remove(result, i);
				break;
			}
	return result;
}

/* Which user type the resource asks for (core or our extension). */
static MapField
resolve_user_type(MappedUser *m, CurrentRow *cur)
{
	MapField   *core = &m->core_user_type;
	MapField   *ext = &m->ext_user_type;

	if (core->state == FS_VALUE && ext->state == FS_VALUE && strcmp(core->value, ext->value) != 0)
	{
		/*
		 * Both given and different: a PATCH of one of them leaves the other
		 * at the stored value, so the one that differs from it is the
		 * change.  Otherwise our extension, the explicit one, wins.
		 */
		char	   *stored = current_text(cur, "user_type");

		if (stored && strcmp(ext->value, stored) == 0)
			return *core;
		return *ext;
	}
	if (ext->state == FS_VALUE)
		return *ext;
	if (core->state == FS_VALUE)
		return *core;
	if (ext->state == FS_NULL || core->state == FS_NULL)
		return (MapField)
	{
		FS_NULL, NULL
	};
	return (MapField)
	{
		FS_ABSENT, NULL
	};
}

/*
 * scim._user_from_resource(resource jsonb, mode text, workspace text,
 *							current scim.users) RETURNS scim.users
 *
 * The row the resource describes.  mode is create, replace, merge or full
 * (see mapping.h); current is the stored row (NULL for create).  Columns
 * the mapping does not own (id, states, timestamps, version) are copied
 * from current; the triggers own them on write.
 */
Datum
scim_user_from_resource(PG_FUNCTION_ARGS)
{
	Jsonb	   *resource;
	text	   *mode_text;
	char	   *mode_str;
	ScimMapMode mode;
	CurrentRow	curbuf;
	CurrentRow *cur = NULL;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	MappedUser	m;
	MapField	user_type;
	JsonbValue *root;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidSyntax: a user resource is required")));
	resource = PG_GETARG_JSONB_P(0);
	mode_text = PG_GETARG_TEXT_PP(1);
	mode_str = text_to_cstring(mode_text);
	if (strcmp(mode_str, "create") == 0)
		mode = SCIM_MAP_CREATE;
	else if (strcmp(mode_str, "replace") == 0)
		mode = SCIM_MAP_REPLACE;
	else if (strcmp(mode_str, "merge") == 0)
		mode = SCIM_MAP_MERGE;
	else if (strcmp(mode_str, "full") == 0)
		mode = SCIM_MAP_FULL;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown mapping mode \"%s\"", mode_str),
				 errhint("Use create, replace, merge or full.")));

	if (!PG_ARGISNULL(3))
	{
		HeapTupleHeader t = PG_GETARG_HEAPTUPLEHEADER(3);

		curbuf.tuple = t;
		curbuf.desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(t), HeapTupleHeaderGetTypMod(t));
		curbuf.tmptup.t_len = HeapTupleHeaderGetDatumLength(t);
		ItemPointerSetInvalid(&curbuf.tmptup.t_self);
		curbuf.tmptup.t_tableOid = InvalidOid;
		curbuf.tmptup.t_data = t;
		cur = &curbuf;
	}

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("function returning record called in context that cannot accept type record")));
	desc = BlessTupleDesc(desc);

	if (!JB_ROOT_IS_OBJECT(resource) || JB_ROOT_IS_SCALAR(resource))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalidSyntax: a user resource must be a JSON object")));
	root = jv_unpack_container(&resource->root);
	read_resource(&m, root);

	user_type = resolve_user_type(&m, cur);
	m.cols[COL_USER_TYPE] = user_type;

	if (mode == SCIM_MAP_CREATE || mode == SCIM_MAP_FULL)
	{
		if (m.cols[COL_USER_NAME].state != FS_VALUE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalidValue: userName is required"),
					 errdetail("A User resource needs a non-empty userName (RFC 7643 section 4.1.1).")));
	}

	values = palloc0(desc->natts * sizeof(Datum));
	nulls = palloc(desc->natts * sizeof(bool));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *col = NameStr(att->attname);
		int			c;

		nulls[i] = true;
		if (att->attisdropped)
			continue;
		for (c = 0; c < N_MAP_COLUMNS; c++)
			if (strcmp(column_names[c], col) == 0)
				break;
		if (c < N_MAP_COLUMNS)
		{
			MapField   *f = &m.cols[c];
			char	   *v = NULL;

			if (f->state == FS_VALUE)
				v = f->value;
			else if (mode == SCIM_MAP_MERGE || (mode == SCIM_MAP_REPLACE && column_synced[c]))
				v = current_text(cur, col);
			else if (c == COL_USER_TYPE && cur != NULL)
				v = current_text(cur, col); /* never unset: stays */
			if (v != NULL)
			{
				values[i] = CStringGetTextDatum(v);
				nulls[i] = false;
			}
		}
		else if (strcmp(col, "workspace") == 0)
		{
			if (cur != NULL)
				values[i] = current_value(cur, col, &nulls[i]);
			else if (!PG_ARGISNULL(2))
			{
				values[i] = PointerGetDatum(PG_GETARG_TEXT_PP(2));
				nulls[i] = false;
			}
		}
		else if (strcmp(col, "active") == 0)
		{
			if (m.active_state == FS_VALUE)
			{
				values[i] = BoolGetDatum(m.active);
				nulls[i] = false;
			}
			else if (cur != NULL)
				values[i] = current_value(cur, col, &nulls[i]);
			else
			{
				values[i] = BoolGetDatum(true);
				nulls[i] = false;
			}
		}
		else if (strcmp(col, "attributes") == 0)
		{
			values[i] = JsonbPGetDatum(jv_to_jsonb(build_attributes(&m, mode, cur)));
			nulls[i] = false;
		}
		else if (cur != NULL)
			values[i] = current_value(cur, col, &nulls[i]);
	}
	if (cur != NULL)
		ReleaseTupleDesc(cur->desc);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* ------------------------------------------------------------------------
 * Output: row -> resource
 * ------------------------------------------------------------------------
 */

static char *
format_timestamp(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		return NULL;
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
					tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
}

/* Row columns by position, resolved once per row type. */
typedef struct RenderColumns
{
	Oid			typid;
	int			id,
				user_name,
				external_id,
				given_name,
				family_name,
				display_name,
				email,
				title,
				phone,
				organization,
				department,
				user_type,
				active,
				created_at,
				updated_at,
				version,
				attributes;
} RenderColumns;

static void
resolve_columns(TupleDesc desc, RenderColumns *rc)
{
	int		   *slots[] = {&rc->id, &rc->user_name, &rc->external_id, &rc->given_name,
		&rc->family_name, &rc->display_name, &rc->email, &rc->title, &rc->phone,
		&rc->organization, &rc->department, &rc->user_type, &rc->active,
	&rc->created_at, &rc->updated_at, &rc->version, &rc->attributes};
	static const char *const names[] = {"id", "user_name", "external_id", "given_name",
		"family_name", "display_name", "email", "title", "phone", "organization",
		"department", "user_type", "active", "created_at", "updated_at", "version",
	"attributes"};

	for (int s = 0; s < lengthof(names); s++)
	{
		*slots[s] = 0;
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && strcmp(NameStr(att->attname), names[s]) == 0)
			{
				*slots[s] = i + 1;
				break;
			}
		}
		if (*slots[s] == 0)
			elog(ERROR, "row type has no column \"%s\"", names[s]);
	}
}

/* A row's columns, deformed once (heap_getattr per column walks the row anew). */
typedef struct RowColumns
{
	Datum	   *values;
	bool	   *nulls;
} RowColumns;

static bool
get_col(const RowColumns *row, int attno, Datum *out)
{
	*out = row->values[attno - 1];
	return !row->nulls[attno - 1];
}

static void
put_text_col(JsonbValue *obj, const char *name, const RowColumns *row, int attno)
{
	Datum		d;

	if (get_col(row, attno, &d))
		jv_put(obj, name, jv_cstring(TextDatumGetCString(d)));
}

/*
 * The multi-valued attribute arr (may be NULL) reconciled with its mirror
 * column: the column is the synced value, so when no element carries it, it
 * is added as the primary element.
 */
static JsonbValue *
reconcile_multi(JsonbValue *arr, const char *column_value)
{
	JsonbValue *out;
	JsonbValue *primary;

	if (column_value == NULL)
		return arr;
	arr = arr ? jv_unpack(arr) : NULL;
	if (arr && arr->type == jbvArray)
	{
		for (int i = 0; i < arr->val.array.nElems; i++)
		{
			JsonbValue *v = jv_get(&arr->val.array.elems[i], "value", false);

			if (v && v->type == jbvString && v->val.string.len == (int) strlen(column_value) &&
				pg_strncasecmp(v->val.string.val, column_value, v->val.string.len) == 0)
				return arr;
		}
	}
	out = jv_array();
	primary = jv_object();
	jv_put(primary, "value", jv_cstring(column_value));
	jv_put(primary, "primary", jv_bool(true));
	jv_append(out, primary);
	if (arr && arr->type == jbvArray)
		for (int i = 0; i < arr->val.array.nElems; i++)
		{
			JsonbValue *el = jv_unpack(&arr->val.array.elems[i]);

			if (el->type == jbvObject && jv_get(el, "primary", false))
				jv_put(el, "primary", jv_bool(false));
			jv_append(out, el);
		}
	return out;
}

/* The full resource of a row, as a tree (no projection). */
static JsonbValue *
render_user(HeapTuple tup, TupleDesc desc, RenderColumns *rc)
{
	JsonbValue *res = jv_object();
	JsonbValue *attrs = NULL;
	JsonbValue *name;
	JsonbValue *ent;
	JsonbValue *ext;
	JsonbValue *meta;
	JsonbValue *schemas;
	Datum		d;
	char	   *id = NULL;
	char	   *email = NULL;
	char	   *phone = NULL;
	RowColumns	row;

	row.values = palloc(desc->natts * sizeof(Datum));
	row.nulls = palloc(desc->natts * sizeof(bool));
	heap_deform_tuple(tup, desc, row.values, row.nulls);

	if (get_col(&row, rc->attributes, &d))
	{
		Jsonb	   *jb = DatumGetJsonbP(d);

		if (JB_ROOT_IS_OBJECT(jb))
			attrs = jv_unpack_container(&jb->root);
	}
	if (attrs == NULL)
		attrs = jv_object();

	/* residual core attributes first; the columns override */
	for (int i = 0; i < attrs->val.object.nPairs; i++)
	{
		JsonbPair  *p = &attrs->val.object.pairs[i];

		if (p->key.val.string.len > 4 && strncmp(p->key.val.string.val, "urn:", 4) == 0)
			continue;
		if (key_eq(&p->key, "name", false))
			continue;
		jv_put(res, jv_cstr(&p->key), &p->value);
	}

	if (get_col(&row, rc->id, &d))
	{
		id = DatumGetCString(DirectFunctionCall1(uuid_out, d));
		jv_put(res, "id", jv_cstring(id));
	}
	put_text_col(res, "externalId", &row, rc->external_id);
	put_text_col(res, "userName", &row, rc->user_name);

	name = jv_get(attrs, "name", false);
	name = name ? jv_unpack(name) : jv_object();
	if (name->type != jbvObject)
		name = jv_object();
	put_text_col(name, "givenName", &row, rc->given_name);
	put_text_col(name, "familyName", &row, rc->family_name);
	if (name->val.object.nPairs > 0)
		jv_put(res, "name", name);

	put_text_col(res, "displayName", &row, rc->display_name);
	put_text_col(res, "title", &row, rc->title);
	put_text_col(res, "userType", &row, rc->user_type);
	if (get_col(&row, rc->active, &d))
		jv_put(res, "active", jv_bool(DatumGetBool(d)));

	if (get_col(&row, rc->email, &d))
		email = TextDatumGetCString(d);
	if (get_col(&row, rc->phone, &d))
		phone = TextDatumGetCString(d);
	if (email || jv_get(res, "emails", false))
		jv_put(res, "emails", reconcile_multi(jv_get(res, "emails", false), email));
	if (phone || jv_get(res, "phoneNumbers", false))
		jv_put(res, "phoneNumbers", reconcile_multi(jv_get(res, "phoneNumbers", false), phone));

	schemas = jv_array();
	jv_append(schemas, jv_cstring(SCIM_MAP_URN_CORE));

	ent = jv_get(attrs, SCIM_MAP_URN_ENTERPRISE, false);
	ent = ent ? jv_unpack(ent) : jv_object();
	if (ent->type != jbvObject)
		ent = jv_object();
	put_text_col(ent, "organization", &row, rc->organization);
	put_text_col(ent, "department", &row, rc->department);
	if (ent->val.object.nPairs > 0)
	{
		jv_put(res, SCIM_MAP_URN_ENTERPRISE, ent);
		jv_append(schemas, jv_cstring(SCIM_MAP_URN_ENTERPRISE));
	}

	ext = jv_object();
	put_text_col(ext, "userType", &row, rc->user_type);
	if (ext->val.object.nPairs > 0)
	{
		jv_put(res, SCIM_MAP_URN_PROVISION, ext);
		jv_append(schemas, jv_cstring(SCIM_MAP_URN_PROVISION));
	}
	jv_put(res, "schemas", schemas);

	meta = jv_object();
	jv_put(meta, "resourceType", jv_cstring("User"));
	if (get_col(&row, rc->created_at, &d))
	{
		char	   *s = format_timestamp(DatumGetTimestampTz(d));

		if (s)
			jv_put(meta, "created", jv_cstring(s));
	}
	if (get_col(&row, rc->updated_at, &d))
	{
		char	   *s = format_timestamp(DatumGetTimestampTz(d));

		if (s)
			jv_put(meta, "lastModified", jv_cstring(s));
	}
	if (id)
	{
		const char *base = scim_base_url ? scim_base_url : "";
		size_t		blen = strlen(base);

		while (blen > 0 && base[blen - 1] == '/')
			blen--;
		jv_put(meta, "location", jv_cstring(psprintf("%.*s/Users/%s", (int) blen, base, id)));
	}
	if (get_col(&row, rc->version, &d))
		jv_put(meta, "version", jv_cstring(psprintf("W/\"" INT64_FORMAT "\"", DatumGetInt64(d))));
	jv_put(res, "meta", meta);
	return res;
}

/* ------------------------------------------------------------------------
 * Projection: attributes / excludedAttributes (RFC 7644 section 3.9)
 * ------------------------------------------------------------------------
 */

typedef struct ProjRef
{
	const char *urn;			/* extension URN (canonical), or NULL: core */
	char	   *attr;			/* NULL: the whole extension */
	char	   *sub;
} ProjRef;

/* An attribute to leave out whatever the lists say (returned never / request). */
typedef struct DropRef
{
	const char *urn;			/* NULL: core */
	const char *attr;
} DropRef;

typedef struct Projection
{
	int			n_include;
	ProjRef    *include;
	int			n_exclude;
	ProjRef    *exclude;
	int			n_drop;
	DropRef    *drop;
} Projection;

static const char *const known_extensions[] = {SCIM_MAP_URN_ENTERPRISE, SCIM_MAP_URN_PROVISION, NULL};

static void
parse_ref(const char *s, int len, ProjRef *ref)
{
	const char *dot;

	ref->urn = NULL;
	ref->attr = NULL;
	ref->sub = NULL;

	if (len > 4 && pg_strncasecmp(s, "urn:", 4) == 0)
	{
		static const char *const aliases[][2] = {
			{SCIM_MAP_URN_CORE, NULL},
			{SCIM_MAP_URN_CORE_1_0, NULL},
			{SCIM_MAP_URN_ENTERPRISE, SCIM_MAP_URN_ENTERPRISE},
			{SCIM_MAP_URN_ENTERPRISE_1_0, SCIM_MAP_URN_ENTERPRISE},
			{SCIM_MAP_URN_PROVISION, SCIM_MAP_URN_PROVISION},
		};
		bool		found = false;

		for (int i = 0; i < lengthof(aliases); i++)
		{
			int			ulen = strlen(aliases[i][0]);

			if (len >= ulen && pg_strncasecmp(s, aliases[i][0], ulen) == 0 &&
				(len == ulen || s[ulen] == ':'))
			{
				ref->urn = aliases[i][1];
				found = true;
				if (len == ulen)
				{
					/* a whole schema: the core schema means every core attribute */
					ref->attr = ref->urn ? NULL : pstrdup("*");
					return;
				}
				s += ulen + 1;
				len -= ulen + 1;
				break;
			}
		}
		if (!found)
		{
			/* unknown schema: matches nothing */
			ref->urn = "";
			ref->attr = pnstrdup(s, len);
			return;
		}
	}
	dot = memchr(s, '.', len);
	if (dot)
	{
		ref->attr = pnstrdup(s, dot - s);
		ref->sub = pnstrdup(dot + 1, len - (dot - s) - 1);
	}
	else
		ref->attr = pnstrdup(s, len);
}

static int
parse_ref_list(const char *list, ProjRef **out)
{
	int			n = 0;
	int			cap = 8;
	const char *p = list;

	*out = palloc(cap * sizeof(ProjRef));
	while (*p)
	{
		const char *start;
		const char *end;

		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (!*p)
			break;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (n == cap)
		{
			cap *= 2;
			*out = repalloc(*out, cap * sizeof(ProjRef));
		}
		parse_ref(start, end - start, &(*out)[n++]);
	}
	return n;
}

static bool
name_eq(const JsonbValue *key, const char *name)
{
	return key_eq(key, name, true);
}

/* Attributes always returned: schemas, and those the registry says "always" (id). */
static bool
always_returned(const char *urn, const JsonbValue *key)
{
	char	   *name;
	const ScimAttrDef *def;

	if (urn == NULL && key_eq(key, "schemas", false))
		return true;
	name = jv_cstr(key);
	def = user_attr_def(urn, name, NULL);
	pfree(name);
	return def != NULL && def->returned == SCIM_RET_ALWAYS;
}

/* Keep only the sub-attributes named by refs (for one complex value or an array of them). */
static JsonbValue *
keep_subs(JsonbValue *v, ProjRef *refs, int n, const char *urn, const JsonbValue *attr, bool exclude)
{
	v = jv_unpack(v);
	if (v->type == jbvArray)
	{
		for (int i = 0; i < v->val.array.nElems; i++)
			v->val.array.elems[i] = *keep_subs(&v->val.array.elems[i], refs, n, urn, attr, exclude);
		return v;
	}
	if (v->type != jbvObject)
		return v;
	for (int i = v->val.object.nPairs - 1; i >= 0; i--)
	{
		bool		named = false;

		for (int r = 0; r < n; r++)
			if (refs[r].urn == urn && refs[r].attr && refs[r].sub &&
				name_eq(attr, refs[r].attr) && name_eq(&v->val.object.pairs[i].key, refs[r].sub))
				named = true;
		if (named == exclude)
			jv_remove(v, i);
	}
	return v;
}

/*
 * Apply the projection to the members of obj (the resource, urn NULL, or an
 * extension object).  Returns false when obj ends up empty.
 */
static bool
project_members(JsonbValue *obj, const char *urn, Projection *proj)
{
	for (int i = obj->val.object.nPairs - 1; i >= 0; i--)
	{
		JsonbPair  *p = &obj->val.object.pairs[i];
		bool		whole = false;
		bool		partial = false;

		if (always_returned(urn, &p->key))
			continue;
		if (urn == NULL && p->key.val.string.len > 4 && strncmp(p->key.val.string.val, "urn:", 4) == 0)
		{
			/* an extension object */
			const char *ext = NULL;
			JsonbValue *inner;

			for (int e = 0; known_extensions[e]; e++)
				if (key_eq(&p->key, known_extensions[e], false))
					ext = known_extensions[e];
			if (ext == NULL)
				continue;
			if (proj->n_include > 0)
			{
				for (int r = 0; r < proj->n_include; r++)
					if (proj->include[r].urn == ext && proj->include[r].attr == NULL)
						whole = true;
				if (whole)
					continue;
			}
			for (int r = 0; r < proj->n_exclude; r++)
				if (proj->exclude[r].urn == ext && proj->exclude[r].attr == NULL)
					whole = true;
			if (whole)
			{
				jv_remove(obj, i);
				continue;
			}
			inner = jv_unpack(&p->value);
			if (inner->type != jbvObject || !project_members(inner, ext, proj))
				jv_remove(obj, i);
			else
				p->value = *inner;
			continue;
		}

		if (proj->n_include > 0)
		{
			for (int r = 0; r < proj->n_include; r++)
			{
				ProjRef    *ref = &proj->include[r];

				if (ref->attr == NULL)
					continue;
				if (ref->urn == NULL && urn == NULL && strcmp(ref->attr, "*") == 0)
					whole = true;
				else if ((ref->urn == urn || (ref->urn == NULL && urn != NULL)) && name_eq(&p->key, ref->attr))
				{
					if (ref->sub)
						partial = true;
					else
						whole = true;
				}
			}
			if (whole)
				continue;
			if (partial)
			{
				p->value = *keep_subs(&p->value, proj->include, proj->n_include, urn, &p->key, false);
				continue;
			}
			jv_remove(obj, i);
			continue;
		}
		for (int r = 0; r < proj->n_exclude; r++)
		{
			ProjRef    *ref = &proj->exclude[r];

			if (ref->attr == NULL)
				continue;
			if ((ref->urn == urn || (ref->urn == NULL && urn != NULL)) && name_eq(&p->key, ref->attr))
			{
				if (ref->sub)
					partial = true;
				else
					whole = true;
			}
		}
		if (whole)
			jv_remove(obj, i);
		else if (partial)
			p->value = *keep_subs(&p->value, proj->exclude, proj->n_exclude, urn, &p->key, true);
	}
	return obj->val.object.nPairs > 0;
}

/*
 * The registry's User attributes that are never returned, or only on
 * request and not requested by name in the attributes list.
 */
static void
compute_drops(Projection *proj)
{
	const ScimResourceTypeDef *rt = scim_registry_resource_type("User");
	int			cap = 8;

	proj->n_drop = 0;
	proj->drop = palloc(cap * sizeof(DropRef));
	if (rt == NULL)
		return;
	for (int s = -1; s < rt->n_extensions; s++)
	{
		const ScimSchemaDef *sd = s < 0 ? rt->schema : rt->extensions[s].schema;
		const char *urn = s < 0 ? NULL : sd->id;

		for (int a = 0; a < sd->n_attrs; a++)
		{
			const ScimAttrDef *def = &sd->attrs[a];
			bool		requested = false;

			if (def->returned != SCIM_RET_NEVER && def->returned != SCIM_RET_REQUEST)
				continue;
			if (def->returned == SCIM_RET_REQUEST)
				for (int r = 0; r < proj->n_include; r++)
					if (proj->include[r].attr && pg_strcasecmp(proj->include[r].attr, def->name) == 0 &&
						(proj->include[r].urn == NULL || (urn && strcmp(proj->include[r].urn, urn) == 0)))
						requested = true;
			if (requested)
				continue;
			if (proj->n_drop == cap)
			{
				cap *= 2;
				proj->drop = repalloc(proj->drop, cap * sizeof(DropRef));
			}
			proj->drop[proj->n_drop].urn = urn;
			proj->drop[proj->n_drop].attr = def->name;
			proj->n_drop++;
		}
	}
}

static void
apply_drops(JsonbValue *res, Projection *proj)
{
	for (int d = 0; d < proj->n_drop; d++)
	{
		JsonbValue *obj = res;

		if (proj->drop[d].urn)
		{
			obj = jv_get(res, proj->drop[d].urn, false);
			if (obj == NULL || obj->type != jbvObject)
				continue;
		}
		for (int i = 0; i < obj->val.object.nPairs; i++)
			if (key_eq(&obj->val.object.pairs[i].key, proj->drop[d].attr, true))
			{
				jv_remove(obj, i);
				break;
			}
	}
}

static void
project(JsonbValue *res, Projection *proj)
{
	JsonbValue *schemas;

	apply_drops(res, proj);
	if (proj->n_include == 0 && proj->n_exclude == 0)
		return;
	project_members(res, NULL, proj);
	/* the schemas array lists the extensions still present */
	schemas = jv_array();
	jv_append(schemas, jv_cstring(SCIM_MAP_URN_CORE));
	for (int e = 0; known_extensions[e]; e++)
		if (jv_get(res, known_extensions[e], false))
			jv_append(schemas, jv_cstring(known_extensions[e]));
	jv_put(res, "schemas", schemas);
}

/* Per-call-site cache: the row type's columns and the parsed projection. */
typedef struct ScimRenderCache
{
	RenderColumns cols;
	char	   *attributes;
	char	   *excluded;
	Projection	proj;
} RenderCache;

static bool
same_text(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * Whether the projection may keep the read-only "groups" attribute: only
 * then is the membership table read.  A false "yes" costs one index probe;
 * the projection still decides.
 */
static bool
groups_wanted(const char *attributes, const char *excluded)
{
	if (attributes != NULL)
		return strcasestr(attributes, "groups") != NULL;
	if (excluded != NULL && strcasestr(excluded, "groups") != NULL)
		return false;
	return true;
}

/*
 * The query of a user's read-only "groups" attribute (RFC 7643 section
 * 4.1.2), as scim.user_groups(id) (65_groups.sql) answers it but NULL for
 * none: $1 the user's id, $2 the base URL without its trailing slashes.
 */
#define USER_GROUPS_QUERY \
	"SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(" \
	"'value', g.id," \
	" '$ref', $2 OPERATOR(pg_catalog.||) '/Groups/' OPERATOR(pg_catalog.||) g.id::pg_catalog.text," \
	" 'display', g.display_name, 'type', 'direct') ORDER BY g.display_name, g.id)" \
	" FROM scim.group_members m" \
	" JOIN scim.groups g ON g.id OPERATOR(pg_catalog.=) m.group_id" \
	" WHERE m.member_id OPERATOR(pg_catalog.=) $1"

/* The base URL without its trailing slashes, as scim._base_url() gives it. */
static text *
base_url_text(void)
{
	const char *base = scim_base_url ? scim_base_url : "";
	size_t		len = strlen(base);

	while (len > 0 && base[len - 1] == '/')
		len--;
	return cstring_to_text_with_len(base, len);
}

/*
 * The user's "groups" (RFC 7643 section 4.1.2: read-only, the groups the
 * user is a direct member of), or NULL when none.  The same array as
 * scim.user_groups(id) (65_groups.sql), read through a kept plan: calling
 * that SQL function from here would plan its body anew on every call,
 * which cost more than rendering the whole user.
 */
/*
 * Whether the user is a member of any group, by one probe of
 * group_members_member_id_idx: most users of most workspaces are in none,
 * and the probe costs a fraction of starting the membership query's
 * executor.
 */
static bool
user_in_any_group(Datum id)
{
	ScimProbe	probe;
	Oid			eq[1] = {F_UUID_EQ};
	bool		found;

	/* group_members_member_id_idx is on (member_id) */
	scim_probe_begin(&probe, "group_members", "group_members_member_id_idx", 1, &id, eq);
	found = scim_probe_next(&probe);
	scim_probe_end(&probe);
	return found;
}

static Jsonb *
user_groups(Datum id)
{
	static SPIPlanPtr plan = NULL;
	Datum		values[2];
	Jsonb	   *result = NULL;
	int			ret;

	if (!user_in_any_group(id))
		return NULL;
	values[0] = id;
	values[1] = PointerGetDatum(base_url_text());

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan == NULL)
	{
		Oid			argtypes[2] = {UUIDOID, TEXTOID};
		SPIPlanPtr	p;

		p = SPI_prepare(USER_GROUPS_QUERY, 2, argtypes);
		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		plan = p;
	}
	ret = SPI_execute_plan(plan, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			/*
			 * Copied out of the SPI context before SPI_finish releases it,
			 * then detoasted: a small value in a tuple has a short header.
			 */
			result = DatumGetJsonbP(SPI_datumTransfer(d, false, -1));
		}
	}
	SPI_finish();
	return result;
}

/*
 * scim.user_resource(u scim.users, attributes text DEFAULT NULL,
 *					  excluded_attributes text DEFAULT NULL) RETURNS jsonb
 *
 * The SCIM resource of a row, with the RFC 7644 section 3.9 projection:
 * attributes (comma-separated, URN-qualified or not, "attr.sub" allowed)
 * returns those plus id and schemas; excluded_attributes drops those from
 * the default set (id and schemas stay).
 */
/*
 * The SCIM resource of a scim.users tuple, projected by attributes or
 * excluded_attributes (NULL or "" = none).  *cachep holds what depends only
 * on the row type and the projection (allocated in cache_cxt, rebuilt when
 * either changes); scim.user_resource keeps it in fn_extra, the request
 * fast path (handle.c) in its own call cache.
 */
Jsonb *
scim_render_user_resource(HeapTuple tup, TupleDesc desc, const char *attributes,
						  const char *excluded, ScimRenderCache **cachep, MemoryContext cache_cxt)
{
	RenderCache *cache = *cachep;
	Oid			typid = desc->tdtypeid;
	JsonbValue *res;
	Jsonb	   *groups = NULL;

	if (attributes && attributes[0] == '\0')
		attributes = NULL;
	if (excluded && excluded[0] == '\0')
		excluded = NULL;

	if (cache == NULL || cache->cols.typid != typid ||
		!same_text(cache->attributes, attributes) || !same_text(cache->excluded, excluded))
	{
		MemoryContext old = MemoryContextSwitchTo(cache_cxt);

		if (cache == NULL)
			cache = palloc0(sizeof(RenderCache));
		resolve_columns(desc, &cache->cols);
		cache->cols.typid = typid;
		cache->attributes = attributes ? pstrdup(attributes) : NULL;
		cache->excluded = excluded ? pstrdup(excluded) : NULL;
		memset(&cache->proj, 0, sizeof(cache->proj));
		if (attributes)
			cache->proj.n_include = parse_ref_list(attributes, &cache->proj.include);
		else if (excluded)
			cache->proj.n_exclude = parse_ref_list(excluded, &cache->proj.exclude);
		compute_drops(&cache->proj);
		*cachep = cache;
		MemoryContextSwitchTo(old);
	}

	/* the membership query runs first, before the tree points into the row */
	if (groups_wanted(attributes, excluded))
	{
		bool		isnull;
		Datum		id = heap_getattr(tup, cache->cols.id, desc, &isnull);

		if (!isnull)
			groups = user_groups(id);
	}
	res = render_user(tup, desc, &cache->cols);
	if (groups != NULL && JB_ROOT_IS_ARRAY(groups) && JB_ROOT_COUNT(groups) > 0)
		jv_put(res, "groups", jv_unpack_container(&groups->root));
	project(res, &cache->proj);
	return jv_to_jsonb(res);
}

Datum
scim_user_resource(PG_FUNCTION_ARGS)
{
	HeapTupleHeader t;
	TupleDesc	desc;
	HeapTupleData tup;
	char	   *attributes = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *excluded = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	Jsonb	   *result;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_HEAPTUPLEHEADER(0);
	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(t), HeapTupleHeaderGetTypMod(t));
	tup.t_len = HeapTupleHeaderGetDatumLength(t);
	ItemPointerSetInvalid(&tup.t_self);
	tup.t_tableOid = InvalidOid;
	tup.t_data = t;
	result = scim_render_user_resource(&tup, desc, attributes, excluded,
									   (ScimRenderCache **) &fcinfo->flinfo->fn_extra,
									   fcinfo->flinfo->fn_mcxt);
	ReleaseTupleDesc(desc);
	PG_RETURN_JSONB_P(result);
}
