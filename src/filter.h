/*-------------------------------------------------------------------------
 *
 * filter.h
 *		SCIM filter AST (RFC 7644 section 3.4.2.2) and the pure-core API.
 *
 * filter_parse.c turns filter text into this AST inside a ScimArena, with
 * no backend state, so fuzzers and benchmarks drive it directly.  The same
 * lexer also parses PATCH paths (RFC 7644 section 3.5.2: attrPath, or
 * valuePath with an optional sub-attribute).  filter_match.c evaluates the
 * AST over a JSON DOM resource (json.h), also without backend state.
 * filter_sql.c (backend) turns the AST into an SQL predicate over
 * scim.users through the attribute registry (registry.h).
 *
 * Names keep the case the client wrote; comparisons of attribute names are
 * ASCII case-insensitive everywhere.
 *
 * src/filter.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_FILTER_H
#define SCIM_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "json.h"
#include "registry.h"

typedef enum ScimFilterOp
{
	SF_EQ,
	SF_NE,
	SF_CO,
	SF_SW,
	SF_EW,
	SF_GT,
	SF_GE,
	SF_LT,
	SF_LE,
	SF_PR
} ScimFilterOp;

typedef enum ScimFilterKind
{
	SF_COMPARE,					/* attrPath op compValue, or attrPath pr */
	SF_AND,
	SF_OR,
	SF_NOT,
	SF_VALUEPATH				/* attrPath "[" valFilter "]" */
} ScimFilterKind;

/* attrPath = [URI ":"] ATTRNAME *1subAttr */
typedef struct ScimAttrPath
{
	const char *schema;			/* schema URN prefix or NULL */
	const char *attr;			/* attribute name, NUL-terminated */
	const char *sub;			/* sub-attribute name or NULL */
} ScimAttrPath;

typedef struct ScimFilterNode ScimFilterNode;

struct ScimFilterNode
{
	ScimFilterKind kind;
	int			position;		/* 0-based offset of the node in the text */
	union
	{
		struct
		{
			ScimAttrPath path;
			ScimFilterOp op;
			SjValue    *value;	/* NULL for pr; else string/number/bool/null */
		}			cmp;
		struct
		{
			ScimFilterNode *left;
			ScimFilterNode *right;
		}			bin;		/* SF_AND, SF_OR */
		struct
		{
			ScimFilterNode *arg;
		}			not;		/* SF_NOT */
		struct
		{
			ScimAttrPath path;	/* the multi-valued attribute (sub is NULL) */
			ScimFilterNode *filter; /* paths inside are relative to one element */
		}			vp;			/* SF_VALUEPATH */
	}			u;
};

/* Limits; the backend takes them from GUCs. */
typedef struct ScimFilterLimits
{
	size_t		max_length;		/* bytes of filter text; 0 = unlimited */
	int			max_depth;		/* nesting of parentheses/not/valuePath */
} ScimFilterLimits;

#define SCIM_FILTER_DEFAULT_MAX_LENGTH 8192
#define SCIM_FILTER_DEFAULT_MAX_DEPTH 64

typedef struct ScimFilterError
{
	int			position;		/* 0-based byte offset where the error was found */
	char		message[256];	/* e.g. expected a comparison operator after "userName" at position 9 */
} ScimFilterError;

/* Parse a whole filter.  NULL on error (err filled in). */
extern ScimFilterNode *scim_filter_parse(ScimArena *arena, const char *text, size_t len,
										 const ScimFilterLimits *limits, ScimFilterError *err);

/*
 * PATCH path: attrPath, or attrPath "[" valFilter "]" [ "." subAttr ].
 * For "emails[type eq \"work\"].value": path.attr = "emails", filter = the
 * bracketed filter, sub = "value".  For "name.givenName": path.attr = "name",
 * path.sub = "givenName", filter = NULL.
 */
typedef struct ScimPatchPath
{
	ScimAttrPath path;
	ScimFilterNode *filter;		/* value filter or NULL */
	const char *sub;			/* sub-attribute after the filter, or NULL */
} ScimPatchPath;

extern bool scim_patch_path_parse(ScimArena *arena, const char *text, size_t len,
								  const ScimFilterLimits *limits, ScimPatchPath *out,
								  ScimFilterError *err);

/* Canonical AST as JSON (what scim.parse_filter returns). */
extern SjValue *scim_filter_to_json(ScimArena *arena, const ScimFilterNode *node);

extern const char *scim_filter_op_name(ScimFilterOp op);	/* "eq", "ne", ... */

/*
 * Match a filter against a resource.  resource_type is "User", "Group" or
 * NULL (unknown shape: RFC 7643 defaults).  Returns 1 on match, 0 on no
 * match, -1 on an invalid filter for that resource (err filled in: e.g. an
 * ordering operator on a boolean), which the caller reports as
 * invalidFilter.
 */
extern int	scim_filter_match(const ScimFilterNode *node, const SjValue *resource,
							  const char *resource_type, ScimFilterError *err);

/* Match a value filter (relative paths) against one element of a multi-valued attribute. */
extern int	scim_filter_match_element(const ScimFilterNode *node, const SjValue *element,
									  const char *resource_type, const char *parent_attr,
									  ScimFilterError *err);

/* ---------------------------------------------------------------------
 * Additions (filter engine internals shared by filter_match.c and
 * filter_sql.c, and helpers for other parts).
 * ---------------------------------------------------------------------
 */
/* An xsd:dateTime (RFC 7643 section 2.3.5) as an instant. */
typedef struct ScimDateTime
{
	long long	seconds;		/* since 1970-01-01T00:00:00Z */
	int			nanos;			/* 0 .. 999999999 */
} ScimDateTime;

/*
 * Parse YYYY-MM-DDThh:mm:ss[.fraction][Z|(+|-)hh:mm]; without a zone the
 * time is taken as UTC.  Years 0001..9999; false when malformed.
 */
extern bool scim_datetime_parse(const char *s, size_t len, ScimDateTime *out);
extern int	scim_datetime_cmp(const ScimDateTime *a, const ScimDateTime *b);

/* The comparison value of a filter node after type checking. */
typedef enum ScimFilterValueKind
{
	SFV_NONE,					/* pr */
	SFV_NULL,					/* eq null / ne null: absence / presence */
	SFV_STRING,					/* str/len (numbers compared to strings: their text) */
	SFV_BOOL,
	SFV_NUMBER,
	SFV_DATETIME
} ScimFilterValueKind;

/*
 * How one comparison resolves against the registry: the attribute, its
 * type and caseExact, and the normalised comparison value.  The matcher and
 * the SQL generator both go through scim_filter_resolve, so they accept and
 * refuse exactly the same filters.
 */
typedef struct ScimFilterTarget
{
	bool		known;			/* false: the registry does not know it (RFC
								 * 7643 defaults: string, caseExact false) */
	ScimAttrRef ref;			/* when known */
	const ScimAttrDef *def;		/* the attribute actually compared: ref.sub,
								 * ref.attr, or the implicit "value" */
	const char *implicit_sub;	/* "value" when "emails eq x" means
								 * "emails.value eq x", else NULL */
	bool		never;			/* returned:never (password): never matches */
	ScimAttrType type;
	bool		case_exact;
	ScimFilterValueKind kind;
	const char *str;			/* SFV_STRING */
	size_t		len;
	bool		boolean;		/* SFV_BOOL */
	const SjValue *number;		/* SFV_NUMBER */
	ScimDateTime datetime;		/* SFV_DATETIME */
} ScimFilterTarget;

/*
 * Resolve node (an SF_COMPARE) for resource_type ("User", "Group" or NULL).
 * parent is the valuePath's attribute when node sits inside a value filter,
 * else NULL.  Returns 0, or -1 with err filled in for a comparison the
 * attribute's type does not allow (invalidFilter).
 */
extern int	scim_filter_resolve(const char *resource_type, const ScimAttrPath *parent,
								const ScimFilterNode *node, ScimFilterTarget *out,
								ScimFilterError *err);

/* Check a whole tree once (every comparison resolved); 0 or -1 (err). */
extern int	scim_filter_validate(const ScimFilterNode *node, const char *resource_type,
								 ScimFilterError *err);

/* "User"/"Group" from meta.resourceType or the core schema URN in schemas, else NULL. */
extern const char *scim_filter_resource_type_of(const SjValue *resource);

/* ASCII and common Unicode simple lower-case comparison of UTF-8 text. */
extern int	scim_text_casecmp(const char *a, size_t alen, const char *b, size_t blen);

/*
 * Backend only (filter_sql.c; not linked into the pure cores).  They report
 * errors with ereport (SQLSTATE 22023, "invalidFilter: ..." or
 * "invalidPath: ...") and return palloc'd text.
 *
 * scim_filter_sql_predicate: the SQL predicate for a filter over
 * "scim.users u", e.g. for
 *	 SELECT ... FROM scim.users u WHERE u.workspace = $1 AND (<predicate>)
 * scim_sort_expression_sql: the ORDER BY expression for a sortBy attribute.
 * scim_filter_limits_from_gucs: the limits set by scim_provision.filter_max_length
 * and scim_provision.filter_max_depth.
 */
extern char *scim_filter_sql_predicate(const char *filter, size_t len, const char *resource_type);
extern char *scim_sort_expression_sql(const char *attr_path, size_t len, const char *resource_type);
extern void scim_filter_limits_from_gucs(ScimFilterLimits *limits);

/*
 * Schema-qualified names for the SQL the filter engine generates
 * (filter_sql.c for Users, groups.c for Groups): every function, operator,
 * type and collation a predicate or sort expression mentions is written
 * with its schema, so the text means the same under any search_path, also
 * one that puts a schema with its own lower() or = before pg_catalog.
 * They resolve to the very functions and operators the expression indexes
 * were built with, so the indexes still match.
 */
#define SCIM_SQL_LOWER			"pg_catalog.lower"
#define SCIM_SQL_OP(op)			"OPERATOR(pg_catalog." op ")"
#define SCIM_SQL_TEXT			"pg_catalog.text"
#define SCIM_SQL_JSONB			"pg_catalog.jsonb"
#define SCIM_SQL_UUID			"pg_catalog.uuid"
#define SCIM_SQL_TIMESTAMPTZ	"pg_catalog.timestamptz"
#define SCIM_SQL_COLLATE_C		"COLLATE pg_catalog.\"C\""

#endif							/* SCIM_FILTER_H */
