/* deps: src/patch.c src/filter_parse.c src/filter_match.c src/registry.c src/json.c src/arena.c */
/*-------------------------------------------------------------------------
 *
 * patch_test.c
 *		Unit tests (TAP) for the pure PATCH engine (src/patch.c).
 *
 * Standalone: no PostgreSQL.  Table-driven cases give a resource, the
 * operations and either the expected resource or the expected error
 * (scimType, operation index, path); further tests check that the input is
 * never modified, that the result shares nothing with it, that limits are
 * honoured and that every allocation failure ends in a clean error.
 *
 * test/unit/patch_test.c
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200809L	/* open_memstream */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "json.h"
#include "patch.h"

static int	test_no = 0;
static int	failures = 0;
static FILE *tap;
static ScimArena arena;

static void
ok(int cond, const char *label)
{
	test_no++;
	if (!cond)
		failures++;
	fprintf(tap, "%s %d - ", cond ? "ok" : "not ok", test_no);
	for (const unsigned char *c = (const unsigned char *) label; *c; c++)
		fputc(*c < 0x20 ? '?' : *c, tap);
	fputc('\n', tap);
}

static void
diag(const char *what, const char *got)
{
	fprintf(tap, "# %s: %s\n", what, got ? got : "(null)");
}

static SjValue *
parse(const char *text)
{
	SjError		err;
	SjValue    *v = sj_parse(&arena, text, strlen(text), &err);

	if (v == NULL)
	{
		fprintf(stderr, "bad test JSON at %zu (%s): %s\n", err.position, err.message, text);
		exit(2);
	}
	return v;
}

static char *
ser(const SjValue *v)
{
	return v ? sj_to_string(&arena, v, NULL) : NULL;
}

#define USER \
	"{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"id\":\"u1\"," \
	"\"meta\":{\"resourceType\":\"User\"},\"userName\":\"bjensen@example.com\"," \
	"\"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\"},\"active\":true," \
	"\"emails\":[{\"value\":\"bj@example.com\",\"type\":\"work\",\"primary\":true}," \
	"{\"value\":\"b@home.org\",\"type\":\"home\"}]}"

#define GROUP \
	"{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"id\":\"g1\"," \
	"\"displayName\":\"Guides\",\"members\":[{\"value\":\"m1\",\"type\":\"User\"}," \
	"{\"value\":\"m2\",\"type\":\"User\"}]}"

#define ENT "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

/*
 * Apply ops to resource; expect either the resource "expected" (compared
 * with sj_equal, so member order does not matter) or, when expected starts
 * with "!", the error "!scimType op_index path".
 */
static void
check(const char *label, const char *resource, const char *ops, const char *expected)
{
	ScimPatchError err;
	SjValue    *res = parse(resource);
	char	   *before = ser(res);
	SjValue    *out = scim_patch_apply(&arena, res, parse(ops), NULL, NULL, &err);
	int			good;
	char		got[1024];

	if (out == NULL)
		snprintf(got, sizeof(got), "!%s %d %s",
				 scim_patch_error_type(err.code) ? scim_patch_error_type(err.code) : "oom",
				 err.op_index, err.path);
	if (expected[0] == '!')
		good = out == NULL && strcmp(got, expected) == 0;
	else
		good = out != NULL && sj_equal(out, parse(expected));
	/* the input is never modified */
	good = good && strcmp(before, ser(res)) == 0;
	ok(good, label);
	if (!good)
	{
		diag("expected", expected);
		diag("got", out ? ser(out) : got);
		if (out == NULL)
			diag("message", err.message);
	}
}

static void
test_rules(void)
{
	/* add */
	check("add simple attribute", USER,
		  "[{\"op\":\"add\",\"path\":\"nickName\",\"value\":\"Babs\"}]",
		  "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"id\":\"u1\",\"meta\":{\"resourceType\":\"User\"},"
		  "\"userName\":\"bjensen@example.com\",\"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\"},\"active\":true,"
		  "\"emails\":[{\"value\":\"bj@example.com\",\"type\":\"work\",\"primary\":true},{\"value\":\"b@home.org\",\"type\":\"home\"}],"
		  "\"nickName\":\"Babs\"}");
	check("add appends to a multi-valued attribute, no duplicates", GROUP,
		  "[{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"m2\"},{\"value\":\"m3\"},{\"value\":\"m3\"}]}]",
		  "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"id\":\"g1\",\"displayName\":\"Guides\","
		  "\"members\":[{\"value\":\"m1\",\"type\":\"User\"},{\"value\":\"m2\",\"type\":\"User\"},{\"value\":\"m3\"}]}");
	check("add merges a complex single-valued attribute", "{\"userName\":\"a\",\"name\":{\"givenName\":\"A\"}}",
		  "[{\"op\":\"add\",\"path\":\"name\",\"value\":{\"familyName\":\"B\"}}]",
		  "{\"userName\":\"a\",\"name\":{\"givenName\":\"A\",\"familyName\":\"B\"}}");
	check("add with a matching filter merges into the element", USER,
		  "[{\"op\":\"add\",\"path\":\"emails[type eq \\\"home\\\"]\",\"value\":{\"display\":\"H\"}}]",
		  "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"id\":\"u1\",\"meta\":{\"resourceType\":\"User\"},"
		  "\"userName\":\"bjensen@example.com\",\"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\"},\"active\":true,"
		  "\"emails\":[{\"value\":\"bj@example.com\",\"type\":\"work\",\"primary\":true},{\"value\":\"b@home.org\",\"type\":\"home\",\"display\":\"H\"}]}");
	check("add through an unmatched eq filter builds the element", "{\"userName\":\"a\"}",
		  "[{\"op\":\"add\",\"path\":\"emails[type eq \\\"work\\\" and primary eq true].value\",\"value\":\"a@x.org\"}]",
		  "{\"userName\":\"a\",\"emails\":[{\"type\":\"work\",\"primary\":true,\"value\":\"a@x.org\"}]}");
	check("add with null adds nothing", "{\"userName\":\"a\"}",
		  "[{\"op\":\"add\",\"path\":\"title\",\"value\":null}]", "{\"userName\":\"a\"}");
	check("add of an extension attribute creates the extension and lists its schema",
		  "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"a\"}",
		  "[{\"op\":\"add\",\"path\":\"" ENT ":department\",\"value\":\"Tours\"}]",
		  "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" ENT "\"],\"userName\":\"a\",\"" ENT "\":{\"department\":\"Tours\"}}");
	check("our extension's userType lives under its URN", "{\"userName\":\"a\"}",
		  "[{\"op\":\"add\",\"path\":\"urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User:usertype\",\"value\":\"External\"}]",
		  "{\"userName\":\"a\",\"urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User\":{\"userType\":\"External\"}}");

	/* replace */
	check("replace without filter sets exactly the given values",
		  "{\"userName\":\"a\",\"emails\":[{\"value\":\"a@x\"},{\"value\":\"b@x\"}]}",
		  "[{\"op\":\"replace\",\"path\":\"emails\",\"value\":[{\"value\":\"n@x.org\"}]}]",
		  "{\"userName\":\"a\",\"emails\":[{\"value\":\"n@x.org\"}]}");
	check("remove of meta is mutability, at operation 2", USER,
		  "[{\"op\":\"replace\",\"path\":\"emails\",\"value\":[{\"value\":\"n@x.org\"}]},{\"op\":\"remove\",\"path\":\"meta\"}]",
		  "!mutability 2 meta");
	check("replace sub-attribute of matching elements", GROUP,
		  "[{\"op\":\"replace\",\"path\":\"members[value eq \\\"m2\\\"].type\",\"value\":\"User\"}]", GROUP);
	check("replace through an unmatched eq filter builds the element (Entra ID)", "{\"userName\":\"a\"}",
		  "[{\"op\":\"Replace\",\"path\":\"emails[type eq \\\"work\\\"].value\",\"value\":\"a@x.org\"}]",
		  "{\"userName\":\"a\",\"emails\":[{\"type\":\"work\",\"value\":\"a@x.org\"}]}");
	check("replace through an unmatched conjunction of eq builds the element", USER,
		  "[{\"op\":\"replace\",\"path\":\"emails[type eq \\\"other\\\" and display eq \\\"O\\\"].value\",\"value\":\"o@x.org\"}]",
		  "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"id\":\"u1\",\"meta\":{\"resourceType\":\"User\"},"
		  "\"userName\":\"bjensen@example.com\",\"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\"},\"active\":true,"
		  "\"emails\":[{\"value\":\"bj@example.com\",\"type\":\"work\",\"primary\":true},{\"value\":\"b@home.org\",\"type\":\"home\"},"
		  "{\"type\":\"other\",\"display\":\"O\",\"value\":\"o@x.org\"}]}");
	check("replace of a whole element through an unmatched eq filter builds it", "{\"userName\":\"a\"}",
		  "[{\"op\":\"replace\",\"path\":\"addresses[type eq \\\"home\\\"]\",\"value\":{\"locality\":\"X\"}}]",
		  "{\"userName\":\"a\",\"addresses\":[{\"type\":\"home\",\"locality\":\"X\"}]}");
	check("replace through an unmatched ne filter is noTarget", USER,
		  "[{\"op\":\"replace\",\"path\":\"emails[type ne \\\"work\\\" and type ne \\\"home\\\"].value\",\"value\":\"x\"}]",
		  "!noTarget 1 emails[type ne \"work\" and type ne \"home\"].value");
	check("replace through an unmatched or filter is noTarget", USER,
		  "[{\"op\":\"replace\",\"path\":\"emails[type eq \\\"other\\\" or type eq \\\"fax\\\"].value\",\"value\":\"x\"}]",
		  "!noTarget 1 emails[type eq \"other\" or type eq \"fax\"].value");
	check("replace of a multi-valued sub-attribute without filter applies to every element",
		  "{\"userName\":\"a\",\"emails\":[{\"value\":\"a@x\"},{\"value\":\"b@x\"}]}",
		  "[{\"op\":\"replace\",\"path\":\"emails.type\",\"value\":\"work\"}]",
		  "{\"userName\":\"a\",\"emails\":[{\"value\":\"a@x\",\"type\":\"work\"},{\"value\":\"b@x\",\"type\":\"work\"}]}");
	check("replace with null removes; the empty complex attribute goes too",
		  "{\"userName\":\"a\",\"name\":{\"givenName\":\"A\"}}",
		  "[{\"op\":\"replace\",\"path\":\"name.givenName\",\"value\":null}]", "{\"userName\":\"a\"}");
	check("replace of a complex value with a null member removes that member",
		  "{\"userName\":\"a\",\"name\":{\"givenName\":\"A\",\"familyName\":\"B\"}}",
		  "[{\"op\":\"replace\",\"path\":\"name\",\"value\":{\"givenName\":null}}]",
		  "{\"userName\":\"a\",\"name\":{\"familyName\":\"B\"}}");

	/* remove */
	check("remove without path is noTarget", USER, "[{\"op\":\"remove\"}]", "!noTarget 1 ");
	check("remove of the last element leaves the attribute absent",
		  "{\"userName\":\"a\",\"emails\":[{\"value\":\"a@x\",\"type\":\"work\"}]}",
		  "[{\"op\":\"remove\",\"path\":\"emails[type eq \\\"work\\\"]\"}]", "{\"userName\":\"a\"}");
	check("remove with a value removes only those members", GROUP,
		  "[{\"op\":\"remove\",\"path\":\"members\",\"value\":[{\"value\":\"m1\"}]}]",
		  "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"id\":\"g1\",\"displayName\":\"Guides\","
		  "\"members\":[{\"value\":\"m2\",\"type\":\"User\"}]}");
	check("remove of a required attribute is mutability", USER,
		  "[{\"op\":\"remove\",\"path\":\"userName\"}]", "!mutability 1 userName");
	check("remove of the Group's required displayName is mutability", GROUP,
		  "[{\"op\":\"remove\",\"path\":\"displayName\"}]", "!mutability 1 displayName");
	check("remove of the extension object by its URN",
		  "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" ENT "\"],\"userName\":\"a\",\"" ENT "\":{\"department\":\"T\"}}",
		  "[{\"op\":\"remove\",\"path\":\"" ENT "\"}]",
		  "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"a\"}");

	/* mutability */
	check("replace of id is mutability", USER, "[{\"op\":\"replace\",\"path\":\"id\",\"value\":\"x\"}]",
		  "!mutability 1 id");
	check("add of groups is mutability", USER,
		  "[{\"op\":\"add\",\"path\":\"groups\",\"value\":[{\"value\":\"g\"}]}]", "!mutability 1 groups");
	check("an immutable sub-attribute may be set while absent",
		  "{\"meta\":{\"resourceType\":\"Group\"},\"displayName\":\"G\",\"members\":[{\"type\":\"User\"}]}",
		  "[{\"op\":\"add\",\"path\":\"members[type eq \\\"User\\\"].value\",\"value\":\"u9\"}]",
		  "{\"meta\":{\"resourceType\":\"Group\"},\"displayName\":\"G\",\"members\":[{\"type\":\"User\",\"value\":\"u9\"}]}");
	check("an immutable sub-attribute cannot change", GROUP,
		  "[{\"op\":\"replace\",\"path\":\"members[value eq \\\"m1\\\"].value\",\"value\":\"zz\"}]",
		  "!mutability 1 members[value eq \"m1\"].value");

	/* primary */
	check("a new primary clears the old one", USER,
		  "[{\"op\":\"replace\",\"path\":\"emails[type eq \\\"home\\\"].primary\",\"value\":true}]",
		  "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"id\":\"u1\",\"meta\":{\"resourceType\":\"User\"},"
		  "\"userName\":\"bjensen@example.com\",\"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\"},\"active\":true,"
		  "\"emails\":[{\"value\":\"bj@example.com\",\"type\":\"work\",\"primary\":false},{\"value\":\"b@home.org\",\"type\":\"home\",\"primary\":true}]}");
	check("replace with two primaries is invalidValue", USER,
		  "[{\"op\":\"replace\",\"path\":\"emails\",\"value\":[{\"value\":\"a@x\",\"primary\":true},{\"value\":\"b@x\",\"primary\":\"TRUE\"}]}]",
		  "!invalidValue 1 emails");

	/* IdP habits */
	check("Okta: no-path replace of active", "{\"userName\":\"a\",\"active\":true}",
		  "{\"Operations\":[{\"op\":\"replace\",\"value\":{\"active\":false}}]}",
		  "{\"userName\":\"a\",\"active\":false}");
	check("Entra: Replace with \"False\"", "{\"userName\":\"a\",\"active\":true}",
		  "[{\"op\":\"Replace\",\"path\":\"active\",\"value\":\"False\"}]",
		  "{\"userName\":\"a\",\"active\":false}");
	check("Entra: dotted and URN keys without path", "{\"userName\":\"a\"}",
		  "[{\"op\":\"replace\",\"value\":{\"name.givenName\":\"K\",\"" ENT ":employeeNumber\":\"7\",\"DisplayName\":\"D\"}}]",
		  "{\"userName\":\"a\",\"name\":{\"givenName\":\"K\"},\"" ENT "\":{\"employeeNumber\":\"7\"},\"displayName\":\"D\"}");
	check("a resource key in another case is rewritten in canonical case", "{\"USERNAME\":\"a\",\"Title\":\"x\"}",
		  "[{\"op\":\"replace\",\"path\":\"title\",\"value\":\"y\"}]", "{\"USERNAME\":\"a\",\"title\":\"y\"}");
	check("a stored single email object is treated as one element",
		  "{\"userName\":\"a\",\"emails\":{\"value\":\"a@x\",\"type\":\"work\"}}",
		  "[{\"op\":\"add\",\"path\":\"emails\",\"value\":[{\"value\":\"b@x\",\"type\":\"home\"}]}]",
		  "{\"userName\":\"a\",\"emails\":[{\"value\":\"a@x\",\"type\":\"work\"},{\"value\":\"b@x\",\"type\":\"home\"}]}");

	/* syntax */
	check("operation not an object is invalidSyntax (index 2)", USER,
		  "[{\"op\":\"add\",\"path\":\"nickName\",\"value\":\"x\"},1]", "!invalidSyntax 2 ");
	check("unknown op is invalidSyntax", USER, "[{\"op\":\"move\",\"path\":\"a\"}]", "!invalidSyntax 1 ");
	check("empty path is invalidPath", USER, "[{\"op\":\"add\",\"path\":\"\",\"value\":1}]", "!invalidPath 1 ");
	check("path with NUL is invalidPath", USER, "[{\"op\":\"add\",\"path\":\"nick\\u0000Name\",\"value\":1}]",
		  "!invalidPath 1 nick");
	check("resource not an object is invalidSyntax", "[1]", "[{\"op\":\"remove\",\"path\":\"a\"}]",
		  "!invalidSyntax 0 ");
	check("no-path key that is unknown names the key", USER,
		  "[{\"op\":\"add\",\"value\":{\"nickName\":\"x\",\"bogus\":1}}]", "!invalidPath 1 bogus");
}

/* the result shares no structure with the input or the operations */
static void
test_no_sharing(void)
{
	ScimPatchError err;
	SjValue    *res = parse(USER);
	SjValue    *ops = parse("[{\"op\":\"add\",\"path\":\"emails\",\"value\":[{\"value\":\"n@x\",\"type\":\"other\"}]},"
						   "{\"op\":\"add\",\"path\":\"name\",\"value\":{\"middleName\":\"M\"}}]");
	char	   *res_before = ser(res);
	char	   *ops_before = ser(ops);
	SjValue    *out = scim_patch_apply(&arena, res, ops, "User", NULL, &err);
	SjValue    *emails;
	SjValue    *name;

	ok(out != NULL, "patch applies");
	if (out == NULL)
		return;
	/* scribble over every string of the result */
	emails = sj_object_get(out, "emails", 6, false);
	name = sj_object_get(out, "name", 4, false);
	for (size_t i = 0; i < emails->u.arr.count; i++)
	{
		SjValue    *v = sj_object_get(emails->u.arr.items[i], "value", 5, false);

		memset((char *) v->u.str.ptr, 'Z', v->u.str.len);
	}
	memset((char *) sj_object_get(name, "middleName", 10, false)->u.str.ptr, 'Z', 1);
	ok(strcmp(res_before, ser(res)) == 0, "changing the result leaves the input resource alone");
	ok(strcmp(ops_before, ser(ops)) == 0, "changing the result leaves the operations alone");
}

static void
test_error_fields(void)
{
	ScimPatchError err;
	SjValue    *out;

	out = scim_patch_apply(&arena, parse(USER),
						   parse("[{\"op\":\"replace\",\"path\":\"active\",\"value\":true},"
								 "{\"op\":\"Replace\",\"value\":{\"name.givenName\":\"x\",\"id\":\"other\"}}]"),
						   NULL, NULL, &err);
	ok(out == NULL && err.code == SCIM_PATCH_MUTABILITY && err.op_index == 2 &&
	   strcmp(err.op, "replace") == 0 && err.in_value && strcmp(err.path, "id") == 0 &&
	   strcmp(err.message, "attribute \"id\" is readOnly") == 0,
	   "error names operation 2, its op, the value key and the reason");
	ok(strcmp(scim_patch_error_type(SCIM_PATCH_NO_TARGET), "noTarget") == 0 &&
	   strcmp(scim_patch_error_type(SCIM_PATCH_INVALID_PATH), "invalidPath") == 0 &&
	   strcmp(scim_patch_error_type(SCIM_PATCH_INVALID_SYNTAX), "invalidSyntax") == 0 &&
	   strcmp(scim_patch_error_type(SCIM_PATCH_INVALID_VALUE), "invalidValue") == 0 &&
	   strcmp(scim_patch_error_type(SCIM_PATCH_MUTABILITY), "mutability") == 0 &&
	   strcmp(scim_patch_error_type(SCIM_PATCH_TOO_MANY), "tooMany") == 0 &&
	   scim_patch_error_type(SCIM_PATCH_OUT_OF_MEMORY) == NULL,
	   "scimType names");
}

static void
test_limits(void)
{
	ScimPatchError err;
	ScimPatchLimits lim = scim_patch_default_limits;
	SjValue    *out;
	char		deep[200];

	lim.max_operations = 2;
	out = scim_patch_apply(&arena, parse(USER),
						   parse("[{\"op\":\"remove\",\"path\":\"title\"},{\"op\":\"remove\",\"path\":\"title\"},"
								 "{\"op\":\"remove\",\"path\":\"title\"}]"),
						   NULL, &lim, &err);
	ok(out == NULL && err.code == SCIM_PATCH_TOO_MANY && err.op_index == 0,
	   "more operations than max_operations is tooMany");

	lim = scim_patch_default_limits;
	lim.max_value_depth = 3;
	out = scim_patch_apply(&arena, parse(USER),
						   parse("[{\"op\":\"add\",\"value\":{\"name\":{\"givenName\":\"x\"}}}]"), NULL, &lim, &err);
	ok(out != NULL, "a value at the depth limit is accepted");
	out = scim_patch_apply(&arena, parse(USER),
						   parse("[{\"op\":\"add\",\"value\":{\"name\":{\"givenName\":[[\"x\"]]}}}]"), NULL, &lim, &err);
	ok(out == NULL && err.code == SCIM_PATCH_INVALID_VALUE, "a value past the depth limit is refused");

	lim = scim_patch_default_limits;
	lim.max_resource_depth = 4;
	snprintf(deep, sizeof(deep), "{\"userName\":\"a\",\"x\":[[[[[1]]]]]}");
	out = scim_patch_apply(&arena, parse(deep), parse("[{\"op\":\"remove\",\"path\":\"title\"}]"),
						   NULL, &lim, &err);
	ok(out == NULL && err.code == SCIM_PATCH_INVALID_SYNTAX && err.op_index == 0,
	   "a resource past the depth limit is refused");

	/* the work budget: many values against many values */
	{
		SjValue    *members = sj_new_array(&arena);
		SjValue    *group = parse("{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"displayName\":\"G\"}");
		SjValue    *opsv = parse("[{\"op\":\"add\",\"path\":\"members\",\"value\":[]}]");
		SjValue    *value = sj_object_get(opsv->u.arr.items[0], "value", 5, false);
		char		id[32];

		for (int i = 0; i < 3000; i++)
		{
			SjValue    *m = sj_new_object(&arena);

			snprintf(id, sizeof(id), "member-%d", i);
			sj_object_set(&arena, m, "value", 5, sj_new_string(&arena, id, strlen(id)), false);
			sj_array_append(&arena, i < 1500 ? members : value, m);
		}
		sj_object_set(&arena, group, "members", 7, members, false);
		out = scim_patch_apply(&arena, group, opsv, NULL, NULL, &err);
		ok(out != NULL && sj_object_get(out, "members", 7, false)->u.arr.count == 3000,
		   "1500 new members join 1500 within the default work budget");
		lim = scim_patch_default_limits;
		lim.max_work = 100000;
		out = scim_patch_apply(&arena, group, opsv, NULL, &lim, &err);
		ok(out == NULL && err.code == SCIM_PATCH_TOO_MANY && err.op_index == 1,
		   "the same request past a small work budget is tooMany");
	}

	lim = scim_patch_default_limits;
	lim.max_path_length = 8;
	out = scim_patch_apply(&arena, parse(USER),
						   parse("[{\"op\":\"remove\",\"path\":\"displayName\"}]"), NULL, &lim, &err);
	ok(out == NULL && err.code == SCIM_PATCH_INVALID_PATH, "a path longer than max_path_length is refused");
}

/* every allocation failure ends in SCIM_PATCH_OUT_OF_MEMORY, never a crash */
static void
test_out_of_memory(void)
{
	const char *ops = "[{\"op\":\"add\",\"path\":\"emails[type eq \\\"other\\\"].value\",\"value\":\"o@x\"},"
		"{\"op\":\"replace\",\"value\":{\"name.givenName\":\"K\",\"" ENT ":manager\":\"m\",\"active\":\"false\"}},"
		"{\"op\":\"add\",\"path\":\"emails\",\"value\":[{\"value\":\"p@x\",\"primary\":true}]},"
		"{\"op\":\"remove\",\"path\":\"emails[type eq \\\"home\\\"]\"}]";
	SjValue    *res = parse(USER);
	SjValue    *opv = parse(ops);
	int			oom_seen = 0;
	int			bad = 0;
	int			succeeded = 0;

	for (size_t limit = 64; limit < 200000 && !succeeded; limit += 64)
	{
		ScimArena	a;
		ScimPatchError err;
		SjValue    *out;

		scim_arena_init(&a, &scim_malloc_allocator);
		a.limit = limit;
		out = scim_patch_apply(&a, res, opv, NULL, NULL, &err);
		if (out != NULL)
			succeeded = 1;
		else if (err.code == SCIM_PATCH_OUT_OF_MEMORY)
			oom_seen++;
		else
			bad++;
		scim_arena_reset(&a);
	}
	ok(oom_seen > 0 && bad == 0 && succeeded,
	   "allocation failures give out-of-memory errors until the arena is large enough");
}

int
main(void)
{
	char	   *results = NULL;
	size_t		results_len = 0;

	tap = open_memstream(&results, &results_len);
	if (tap == NULL)
	{
		perror("open_memstream");
		return 1;
	}
	scim_arena_init(&arena, &scim_malloc_allocator);

	test_rules();
	test_no_sharing();
	test_error_fields();
	test_limits();
	test_out_of_memory();

	scim_arena_reset(&arena);
	fclose(tap);
	printf("1..%d\n", test_no);
	fwrite(results, 1, results_len, stdout);
	free(results);
	return failures ? 1 : 0;
}
