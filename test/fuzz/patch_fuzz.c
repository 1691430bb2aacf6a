/* deps: src/patch.c src/filter_parse.c src/filter_match.c src/registry.c src/json.c src/arena.c */
/*-------------------------------------------------------------------------
 *
 * patch_fuzz.c
 *		libFuzzer harness for the pure PATCH engine (src/patch.c).
 *
 * Input: a resource and the operations, both JSON, separated by the first
 * NUL byte; input without a NUL byte is taken as the operations and
 * applied to a built-in User with an enterprise extension, so most of the
 * fuzzer's effort goes into operations.  Inputs that are not JSON stop
 * early.  Checked on every run: the engine never crashes (ASan/UBSan), an
 * error always carries a known code, the input resource is unchanged, and
 * a result is an object that serializes and parses back equal.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *     test/fuzz/patch_fuzz.c src/patch.c src/filter_parse.c \
 *     src/filter_match.c src/registry.c src/json.c src/arena.c
 *
 * test/fuzz/patch_fuzz.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "json.h"
#include "patch.h"

static const char default_resource[] =
"{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\","
"\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"],"
"\"id\":\"2819c223\",\"externalId\":\"bjensen\",\"meta\":{\"resourceType\":\"User\",\"version\":\"W/\\\"1\\\"\"},"
"\"userName\":\"bjensen@example.com\",\"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\"},"
"\"displayName\":\"Babs\",\"active\":true,"
"\"emails\":[{\"value\":\"bj@example.com\",\"type\":\"work\",\"primary\":true},{\"value\":\"b@home.org\",\"type\":\"home\"}],"
"\"phoneNumbers\":[{\"value\":\"555\",\"type\":\"work\"}],"
"\"addresses\":[{\"type\":\"work\",\"streetAddress\":\"100 Plaza\"}],"
"\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":{\"department\":\"Tours\",\"manager\":{\"value\":\"m1\"}}}";

/* 64 MB per run: hostile operations may not exhaust the fuzzer's memory */
#define FUZZ_ARENA_LIMIT ((size_t) 64 * 1024 * 1024)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ScimArena	arena;
	SjError		jerr;
	ScimPatchError perr;
	const char *text = (const char *) data;
	const char *sep = memchr(text, '\0', size);
	SjValue    *resource;
	SjValue    *ops;
	SjValue    *out;
	char	   *before;
	char	   *after;
	size_t		before_len;
	size_t		after_len;

	scim_arena_init(&arena, &scim_malloc_allocator);
	arena.limit = FUZZ_ARENA_LIMIT;
	if (sep != NULL)
	{
		resource = sj_parse(&arena, text, sep - text, &jerr);
		ops = sj_parse(&arena, sep + 1, size - (sep - text) - 1, &jerr);
	}
	else
	{
		resource = sj_parse(&arena, default_resource, sizeof(default_resource) - 1, &jerr);
		ops = sj_parse(&arena, text, size, &jerr);
	}
	if (resource == NULL || ops == NULL)
	{
		scim_arena_reset(&arena);
		return 0;
	}
	before = sj_to_string(&arena, resource, &before_len);

	out = scim_patch_apply(&arena, resource, ops, NULL, NULL, &perr);
	if (out == NULL)
	{
		if (perr.code == SCIM_PATCH_OK ||
			(perr.code != SCIM_PATCH_OUT_OF_MEMORY && scim_patch_error_type(perr.code) == NULL) ||
			memchr(perr.message, '\0', sizeof(perr.message)) == NULL ||
			memchr(perr.path, '\0', sizeof(perr.path)) == NULL)
			abort();
	}
	else
	{
		char	   *ser;
		size_t		len;
		SjValue    *back;

		if (out->type != SJ_OBJECT)
			abort();
		ser = sj_to_string(&arena, out, &len);
		if (ser != NULL)
		{
			back = sj_parse(&arena, ser, len, &jerr);
			if (back != NULL && !sj_equal(back, out))
				abort();
		}
	}
	/* the input resource is never modified */
	after = sj_to_string(&arena, resource, &after_len);
	if (before != NULL && after != NULL &&
		(before_len != after_len || memcmp(before, after, before_len) != 0))
		abort();

	scim_arena_reset(&arena);
	return 0;
}
