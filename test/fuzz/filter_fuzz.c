/* deps: src/filter_parse.c src/filter_match.c src/registry.c src/json.c src/arena.c */
/*-------------------------------------------------------------------------
 *
 * filter_fuzz.c
 *		libFuzzer harness over the pure filter core (parser, canonical JSON,
 *		matcher, PATCH path parser).
 *
 * For every input:
 *	- parse it as a filter under small limits (max_length 4096, depth 16);
 *	- when it parses: build the canonical JSON and serialise it, validate it
 *	  against the User registry, match it against fixed resources (result
 *	  must be -1, 0 or 1), then print the AST back as filter text, parse
 *	  that again and require the same canonical JSON (round trip);
 *	- parse it as a PATCH path as well.
 * Any crash, sanitizer report, leak or broken property aborts.
 *
 * Built by test/fuzz/run.sh with clang -fsanitize=fuzzer,address,undefined.
 *
 * test/fuzz/filter_fuzz.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

static const char *const resources[] = {
	"{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\","
	"\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"],"
	"\"id\":\"2819c223-7f76-453a-919d-413861904646\",\"externalId\":\"bjensen\","
	"\"meta\":{\"resourceType\":\"User\",\"created\":\"2011-08-01T18:29:49.793Z\","
	"\"lastModified\":\"2011-08-01T18:29:49.793+02:00\",\"version\":\"W/\\\"3\\\"\"},"
	"\"name\":{\"formatted\":\"Ms. Barbara J Jensen III\",\"familyName\":\"Jensen\",\"givenName\":\"Barbara\"},"
	"\"userName\":\"bjensen@example.com\",\"title\":\"Tour Guide\",\"userType\":\"Employee\",\"active\":true,"
	"\"emails\":[{\"value\":\"bjensen@example.com\",\"type\":\"work\",\"primary\":true},"
	"{\"value\":\"babs@jensen.org\",\"type\":\"home\"}],"
	"\"ims\":[{\"value\":\"someaimhandle\",\"type\":\"aim\"}],\"x\":[1,2.5,\"3\",true,null,{}],"
	"\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":{\"employeeNumber\":\"701984\","
	"\"manager\":{\"value\":\"26118915-6090-4610-87e4-49d8ca9f808d\"}}}",
	"{\"userName\":\"\\u00c9milie\",\"emails\":{\"value\":\"E@x\"},\"n\":-1e3,\"b\":false,\"d\":\"2020-02-29T23:59:60Z\"}",
	"[]",
};

static ScimArena doc_arena;
static SjValue *docs[sizeof(resources) / sizeof(resources[0])];

/* Print an AST back as filter text (fully parenthesised). */
static void
print_path(SjBuf *b, const ScimAttrPath *p)
{
	if (p->schema)
	{
		sj_buf_append(b, p->schema, strlen(p->schema));
		sj_buf_append(b, ":", 1);
	}
	sj_buf_append(b, p->attr, strlen(p->attr));
	if (p->sub)
	{
		sj_buf_append(b, ".", 1);
		sj_buf_append(b, p->sub, strlen(p->sub));
	}
}

static void
print_node(SjBuf *b, const ScimFilterNode *n)
{
	switch (n->kind)
	{
		case SF_COMPARE:
			print_path(b, &n->u.cmp.path);
			sj_buf_append(b, " ", 1);
			sj_buf_append(b, scim_filter_op_name(n->u.cmp.op), 2);
			if (n->u.cmp.op != SF_PR)
			{
				sj_buf_append(b, " ", 1);
				sj_serialize(b, n->u.cmp.value);
			}
			break;
		case SF_AND:
		case SF_OR:
			sj_buf_append(b, "(", 1);
			print_node(b, n->u.bin.left);
			sj_buf_append(b, n->kind == SF_AND ? ") and (" : ") or (", n->kind == SF_AND ? 7 : 6);
			print_node(b, n->u.bin.right);
			sj_buf_append(b, ")", 1);
			break;
		case SF_NOT:
			sj_buf_append(b, "not (", 5);
			print_node(b, n->u.not.arg);
			sj_buf_append(b, ")", 1);
			break;
		case SF_VALUEPATH:
			print_path(b, &n->u.vp.path);
			sj_buf_append(b, "[", 1);
			print_node(b, n->u.vp.filter);
			sj_buf_append(b, "]", 1);
			break;
	}
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ScimArena	arena;
	ScimFilterLimits limits = {4096, 16};
	ScimFilterError err;
	ScimFilterNode *node;
	ScimPatchPath pp;

	if (docs[0] == NULL)
	{
		scim_arena_init(&doc_arena, &scim_malloc_allocator);
		for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++)
		{
			SjError		jerr;

			docs[i] = sj_parse(&doc_arena, resources[i], strlen(resources[i]), &jerr);
			if (docs[i] == NULL)
				abort();
		}
	}

	scim_arena_init(&arena, &scim_malloc_allocator);
	node = scim_filter_parse(&arena, (const char *) data, size, &limits, &err);
	if (node == NULL)
	{
		/* an error always says where */
		if (err.message[0] == '\0' || err.position < 0 || (size_t) err.position > size + 1)
			abort();
	}
	else
	{
		SjValue    *json = scim_filter_to_json(&arena, node);
		char	   *text;
		char	   *text2;
		size_t		len,
					len2;
		SjBuf		b;
		ScimFilterNode *again;
		ScimFilterLimits loose = {0, 100000};

		if (json == NULL)
			abort();
		text = sj_to_string(&arena, json, &len);
		if (text == NULL)
			abort();

		(void) scim_filter_validate(node, "User", &err);
		(void) scim_filter_validate(node, "Group", &err);
		for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		{
			int			r1 = scim_filter_match(node, docs[i], "User", &err);
			int			r2 = scim_filter_match(node, docs[i], NULL, &err);

			if (r1 < -1 || r1 > 1 || r2 < -1 || r2 > 1)
				abort();
		}

		/* round trip through printed filter text */
		sj_buf_init(&b, &arena);
		print_node(&b, node);
		if (b.failed)
			abort();
		again = scim_filter_parse(&arena, b.data, b.len, &loose, &err);
		if (again == NULL)
		{
			fprintf(stderr, "reparse failed: %s\n%.*s\n", err.message, (int) b.len, b.data);
			abort();
		}
		text2 = sj_to_string(&arena, scim_filter_to_json(&arena, again), &len2);
		if (text2 == NULL || len != len2 || memcmp(text, text2, len) != 0)
		{
			fprintf(stderr, "round trip differs:\n%s\n%s\n", text, text2 ? text2 : "(null)");
			abort();
		}
	}

	if (scim_patch_path_parse(&arena, (const char *) data, size, &limits, &pp, &err))
	{
		if (pp.path.attr == NULL)
			abort();
		if (pp.filter != NULL)
			(void) scim_filter_match_element(pp.filter, docs[0], "User", pp.path.attr, &err);
	}
	scim_arena_reset(&arena);
	return 0;
}
