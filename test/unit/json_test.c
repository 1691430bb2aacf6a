/* deps: src/json.c src/arena.c */
/*-------------------------------------------------------------------------
 *
 * json_test.c
 *		Unit tests (TAP) for the arena and the pure JSON DOM.
 *
 * Standalone: no PostgreSQL.  Built and run by the unit test runner as
 *   cc -O1 -g -fsanitize=address,undefined -Isrc -o X test/unit/json_test.c <deps>
 * where <deps> is the list on the first line of this file.
 *
 * test/unit/json_test.c
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200809L	/* open_memstream, clock_gettime */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "json.h"

static int	test_no = 0;
static int	failures = 0;
static FILE *tap;				/* results, printed after the plan */
static ScimArena arena;

static void
ok(int cond, const char *fmt, const char *arg)
{
	test_no++;
	if (!cond)
		failures++;
	char		label[400];

	fprintf(tap, "%s %d - ", cond ? "ok" : "not ok", test_no);
	snprintf(label, sizeof(label), fmt, arg ? arg : "");
	/* keep TAP lines intact: show control bytes as \xNN */
	for (const unsigned char *c = (const unsigned char *) label; *c; c++)
	{
		if (*c < 0x20 || *c == 0x7f)
			fprintf(tap, "\\x%02x", *c);
		else
			fputc(*c, tap);
	}
	fputc('\n', tap);
}

static void
diag(const char *what, const char *got)
{
	fprintf(tap, "# %s: ", what);
	for (const unsigned char *c = (const unsigned char *) (got ? got : "(null)"); *c; c++)
	{
		if (*c < 0x20 || *c == 0x7f)
			fprintf(tap, "\\x%02x", *c);
		else
			fputc(*c, tap);
	}
	fputc('\n', tap);
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static SjValue *
parse(const char *text, size_t len, SjError *err)
{
	return sj_parse(&arena, text, len, err);
}

static char *
ser(const SjValue *v)
{
	return v ? sj_to_string(&arena, v, NULL) : NULL;
}

/* Parse input and compare its compact serialization with expected. */
static void
check_parse(const char *input, const char *expected)
{
	SjError		err;
	SjValue    *v = parse(input, strlen(input), &err);
	char	   *out = ser(v);
	int			good = out != NULL && strcmp(out, expected) == 0;

	ok(good, "parse %s", input);
	if (!good)
	{
		diag("expected", expected);
		diag("got", out ? out : err.message);
	}
}

/* Parse input (len bytes) and expect an error at position whose message contains msg. */
static void
check_error_len(const char *input, size_t len, size_t position, const char *msg, const char *label)
{
	SjError		err = {999, NULL};
	SjValue    *v = parse(input, len, &err);
	int			good = v == NULL && err.message != NULL &&
		err.position == position && strstr(err.message, msg) != NULL;

	ok(good, "rejects %s", label);
	if (!good)
	{
		char		buf[200];

		snprintf(buf, sizeof(buf), "position %zu message \"%s\" (wanted %zu \"%s\")",
				 err.position, err.message ? err.message : "(none)", position, msg);
		diag("got", v ? "a value" : buf);
	}
}

static void
check_error(const char *input, size_t position, const char *msg)
{
	check_error_len(input, strlen(input), position, msg, input);
}

/* Parse one string literal and compare its unescaped bytes. */
static void
check_string(const char *input, const char *bytes, size_t nbytes, const char *label)
{
	SjError		err;
	SjValue    *v = parse(input, strlen(input), &err);
	int			good = v != NULL && v->type == SJ_STRING && v->u.str.len == nbytes &&
		memcmp(v->u.str.ptr, bytes, nbytes) == 0 && v->u.str.ptr[nbytes] == '\0';

	ok(good, "string escape %s", label);
}

static int
json_eq(const char *a, const char *b)
{
	SjValue    *va = parse(a, strlen(a), NULL);
	SjValue    *vb = parse(b, strlen(b), NULL);

	if (va == NULL || vb == NULL)
		return -1;
	return sj_equal(va, vb);
}

static void
check_equal(const char *a, const char *b, int expected)
{
	char		label[300];

	snprintf(label, sizeof(label), "%s %s %s", a, expected ? "==" : "!=", b);
	ok(json_eq(a, b) == expected && json_eq(b, a) == expected, "sj_equal %s", label);
}

static void
check_cmp(const char *a, const char *b, int expected)
{
	SjValue    *va = parse(a, strlen(a), NULL);
	SjValue    *vb = parse(b, strlen(b), NULL);
	int			r1 = 99,
				r2 = 99;
	char		label[300];

	snprintf(label, sizeof(label), "%s <=> %s is %d", a, b, expected);
	ok(va && vb && sj_number_cmp(va, vb, &r1) && sj_number_cmp(vb, va, &r2) &&
	   r1 == expected && r2 == -expected, "sj_number_cmp %s", label);
}

/* Allocator that counts live chunks, to check that reset releases them all. */
static long live_chunks = 0;

static void *
counting_alloc(void *ctx, size_t size)
{
	(void) ctx;
	live_chunks++;
	return malloc(size);
}

static void
counting_release(void *ctx, void *ptr)
{
	(void) ctx;
	live_chunks--;
	free(ptr);
}

static void
test_arena(void)
{
	ScimAllocator counting = {counting_alloc, counting_release, NULL};
	ScimArena	a;
	int			aligned = 1;
	int			intact = 1;
	char	   *ptrs[2000];

	scim_arena_init(&a, &counting);
	for (int i = 0; i < 2000; i++)
	{
		size_t		sz = (size_t) (i % 37) + 1;

		ptrs[i] = scim_arena_alloc(&a, sz);
		if (ptrs[i] == NULL || ((unsigned long) ptrs[i] % 8) != 0)
			aligned = 0;
		else
			memset(ptrs[i], i & 0xFF, sz);
	}
	for (int i = 0; i < 2000 && aligned; i++)
	{
		size_t		sz = (size_t) (i % 37) + 1;

		for (size_t k = 0; k < sz; k++)
			if ((unsigned char) ptrs[i][k] != (i & 0xFF))
				intact = 0;
	}
	ok(aligned, "arena: 2000 odd-sized allocations are 8-byte aligned", NULL);
	ok(intact, "arena: allocations do not overlap", NULL);
	ok(live_chunks > 1, "arena: grows by several chunks", NULL);

	{
		char	   *small1 = scim_arena_alloc(&a, 16);
		char	   *big = scim_arena_alloc(&a, 10 * 1024 * 1024);
		char	   *small2 = scim_arena_alloc(&a, 16);

		ok(big != NULL && ((unsigned long) big % 8) == 0, "arena: 10 MB allocation succeeds", NULL);
		if (big)
			memset(big, 0xAB, 10 * 1024 * 1024);
		ok(small1 && small2 && small2 == small1 + 16,
		   "arena: a large allocation does not waste the current chunk", NULL);
	}
	{
		unsigned char *z = scim_arena_alloc0(&a, 100);
		int			zero = z != NULL;

		for (int i = 0; zero && i < 100; i++)
			if (z[i] != 0)
				zero = 0;
		ok(zero, "arena: alloc0 zeroes", NULL);
	}
	{
		char	   *s = scim_arena_strndup(&a, "abcdef", 3);

		ok(s && strcmp(s, "abc") == 0, "arena: strndup copies and terminates", NULL);
	}
	ok(scim_arena_alloc(&a, 0) != NULL, "arena: zero-byte allocation returns a pointer", NULL);
	ok(a.failed == 0, "arena: not failed without a limit", NULL);
	scim_arena_reset(&a);
	ok(live_chunks == 0 && a.total == 0 && a.chunks == NULL,
	   "arena: reset releases every chunk through the allocator", NULL);

	/* limit */
	a.limit = 64 * 1024;
	{
		void	   *p1 = scim_arena_alloc(&a, 1000);
		void	   *p2 = scim_arena_alloc(&a, 100 * 1024);

		ok(p1 != NULL && p2 == NULL && a.failed, "arena: past the limit returns NULL and sets failed", NULL);
		ok(a.total <= a.limit, "arena: total stays within the limit", NULL);
	}
	{
		int			n = 0;

		while (scim_arena_alloc(&a, 1024) != NULL && n < 1000)
			n++;
		ok(n > 10 && n < 64 && a.total <= a.limit,
		   "arena: many small allocations stop at the limit", NULL);
	}
	ok(scim_arena_alloc(&a, (size_t) -1) == NULL, "arena: SIZE_MAX request fails cleanly", NULL);
	scim_arena_reset(&a);
	ok(live_chunks == 0 && a.failed == 0, "arena: reset after failure clears the flag", NULL);
	ok(scim_arena_alloc(&a, 100) != NULL, "arena: usable again after reset", NULL);
	scim_arena_reset(&a);
}

static void
test_escapes(void)
{
	check_string("\"\\\"\"", "\"", 1, "\\\"");
	check_string("\"\\\\\"", "\\", 1, "\\\\");
	check_string("\"\\/\"", "/", 1, "\\/");
	check_string("\"\\b\"", "\b", 1, "\\b");
	check_string("\"\\f\"", "\f", 1, "\\f");
	check_string("\"\\n\"", "\n", 1, "\\n");
	check_string("\"\\r\"", "\r", 1, "\\r");
	check_string("\"\\t\"", "\t", 1, "\\t");
	check_string("\"\\u0041\"", "A", 1, "\\u0041 (ASCII)");
	check_string("\"\\u00e9\"", "\xC3\xA9", 2, "\\u00e9 (two bytes)");
	check_string("\"\\u00E9\"", "\xC3\xA9", 2, "\\u00E9 (upper-case hex)");
	check_string("\"\\u20AC\"", "\xE2\x82\xAC", 3, "\\u20AC (three bytes)");
	check_string("\"\\uFFFF\"", "\xEF\xBF\xBF", 3, "\\uFFFF");
	check_string("\"\\u0000\"", "\0", 1, "\\u0000 (NUL kept with its length)");
	check_string("\"\\uD83D\\uDE00\"", "\xF0\x9F\x98\x80", 4, "surrogate pair U+1F600");
	check_string("\"\\uD800\\uDC00\"", "\xF0\x90\x80\x80", 4, "surrogate pair U+10000");
	check_string("\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF", 4, "surrogate pair U+10FFFF");
	check_string("\"a\\tb\\u00e9c\\\\d\"", "a\tb\xC3\xA9" "c\\d", 8, "mixed escapes and text");
	check_string("\"caf\xC3\xA9 \xF0\x9F\x98\x80\"", "caf\xC3\xA9 \xF0\x9F\x98\x80", 10, "raw UTF-8 kept");
	check_string("\"\"", "", 0, "empty string");
}

static void
test_serializer(void)
{
	SjValue    *s;
	char	   *out;
	size_t		len;

	s = sj_new_string(&arena, "a\"b\\c\x01\x1f\n\r\t\b\f/\xC3\xA9\0z", 17);
	out = sj_to_string(&arena, s, &len);
	ok(out && strcmp(out, "\"a\\\"b\\\\c\\u0001\\u001f\\n\\r\\t\\b\\f/\xC3\xA9\\u0000z\"") == 0 &&
	   len == strlen(out), "serializer escapes quotes, backslashes and control characters, keeps UTF-8", NULL);
	if (out == NULL || strcmp(out, "\"a\\\"b\\\\c\\u0001\\u001f\\n\\r\\t\\b\\f/\xC3\xA9\\u0000z\"") != 0)
		diag("serialized", out);
	{
		SjValue    *back = parse(out, len, NULL);

		ok(back && sj_equal(back, s), "escaped string parses back to the same bytes", NULL);
	}
	check_parse(" { \"a\" : [ 1 , 2.50 , -0 , 1E+5 , 1e-3 ] , \"b\" : { } ,\t\"c\" : [ ] ,\n\"d\":true,\"e\":false,\"f\":null } ",
				"{\"a\":[1,2.50,-0,1E+5,1e-3],\"b\":{},\"c\":[],\"d\":true,\"e\":false,\"f\":null}");
	check_parse("\"\\u00e9\"", "\"\xC3\xA9\"");
	check_parse("\"\\uD83D\\uDE00\"", "\"\xF0\x9F\x98\x80\"");
	check_parse("\"\\u007f\"", "\"\x7f\"");
	check_parse("\"\\/\"", "\"/\"");
	check_parse("123", "123");
	check_parse("-0.0e-0", "-0.0e-0");
	check_parse("null", "null");
	check_parse("{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":3,\"b\":2}");
	check_parse("{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":10,\"k2\":\"x\",\"k11\":11,\"k10\":[]}",
				"{\"k1\":1,\"k2\":\"x\",\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":[],\"k11\":11}");
	check_parse("{\"a\":1,\"A\":2}", "{\"a\":1,\"A\":2}");

	/* round trips of canonical compact texts */
	{
		static const char *const texts[] = {
			"{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"bjensen@example.com\",\"name\":{\"givenName\":\"Barbara\"},\"emails\":[{\"value\":\"b@example.com\",\"primary\":true}],\"active\":true}",
			"[[[[[]]]],{},[{}],\"\",0,-1,3.14159,6.02e23,1E-7]",
			"\"\\u0001\\u001f\\\"\\\\\\n\"",
			"{\"\xE2\x82\xAC\":\"\xF0\x9F\x98\x80\",\"\\n\":null}",
			"12345678901234567890123456789012345678901234567890.000000000000000000001",
		};

		for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		{
			SjValue    *v = parse(texts[i], strlen(texts[i]), NULL);
			char	   *o = ser(v);

			ok(o && strcmp(o, texts[i]) == 0, "round trip %s", texts[i]);
		}
	}
}

static void
test_errors(void)
{
	check_error("", 0, "unexpected end of input");
	check_error("   ", 3, "unexpected end of input");
	check_error("\f1", 0, "unexpected character");
	check_error("[1,]", 3, "unexpected character");
	check_error("[1 2]", 3, "expected ',' or ']'");
	check_error("[", 1, "unexpected end of input");
	check_error("[1", 2, "unexpected end of input");
	check_error("{", 1, "unexpected end of input");
	check_error("{1:2}", 1, "expected a string as object key");
	check_error("{\"a\" 1}", 5, "expected ':'");
	check_error("{\"a\":1,}", 7, "expected a string as object key");
	check_error("{\"a\":1 \"b\":2}", 7, "expected ',' or '}'");
	check_error("{'a':1}", 1, "expected a string as object key");
	check_error("01", 1, "leading zeros");
	check_error("-01", 2, "leading zeros");
	check_error("[00]", 2, "leading zeros");
	check_error("-", 1, "expected a digit");
	check_error("-a", 1, "expected a digit");
	check_error("+1", 0, "unexpected character");
	check_error(".5", 0, "unexpected character");
	check_error("1.", 2, "decimal point");
	check_error("1.e5", 2, "decimal point");
	check_error("1e", 2, "exponent");
	check_error("1e+", 3, "exponent");
	check_error("NaN", 0, "unexpected character");
	check_error("Infinity", 0, "unexpected character");
	check_error("tru", 3, "unexpected end of input");
	check_error("trUe", 0, "invalid literal");
	check_error("nul", 3, "unexpected end of input");
	check_error("fals e", 0, "invalid literal");
	check_error("1 2", 2, "unexpected data after");
	check_error("{} x", 3, "unexpected data after");
	check_error("nulll", 4, "unexpected data after");
	check_error("[1]]", 3, "unexpected data after");
	check_error_len("1\0", 2, 1, "unexpected data after", "NUL byte after the value");
	check_error_len("\0", 1, 0, "unexpected character", "NUL byte as the value");
	check_error("\"abc", 4, "unterminated string");
	check_error("\"abc\\", 5, "unterminated string");
	check_error("\"a\x01\"", 2, "control character");
	check_error("\"a\nb\"", 2, "control character");
	check_error("\"a\tb\"", 2, "control character");
	check_error_len("\"a\0b\"", 5, 2, "control character", "raw NUL in string");
	check_error("\"\\x\"", 1, "invalid escape");
	check_error("\"\\U0041\"", 1, "invalid escape");
	check_error("\"\\'\"", 1, "invalid escape");
	check_error("\"\\u12G4\"", 1, "four hexadecimal digits");
	check_error("\"\\u12\"", 1, "four hexadecimal digits");
	check_error("\"\\u", 1, "four hexadecimal digits");
	check_error("\"\\uDC00\"", 1, "unpaired low surrogate");
	check_error("\"ab\\uDFFF\\uD800\"", 3, "unpaired low surrogate");
	check_error("\"\\uD800\"", 1, "unpaired high surrogate");
	check_error("\"\\uD800x\"", 1, "unpaired high surrogate");
	check_error("\"\\uD800\\u0041\"", 1, "unpaired high surrogate");
	check_error("\"\\uD800\\uD800\"", 1, "unpaired high surrogate");
	check_error("\"\\uD800\\n\"", 1, "unpaired high surrogate");
	check_error("\"\\uD800\\uZZZZ\"", 7, "four hexadecimal digits");
	check_error("\"\xC3\"", 1, "invalid UTF-8");
	check_error("\"ab\xC3", 3, "invalid UTF-8");
	check_error("\"\xC0\xAF\"", 1, "invalid UTF-8");
	check_error("\"\xC1\xBF\"", 1, "invalid UTF-8");
	check_error("\"\xE0\x80\xAF\"", 1, "invalid UTF-8");
	check_error("\"\xED\xA0\x80\"", 1, "invalid UTF-8");
	check_error("\"\xF0\x80\x80\xAF\"", 1, "invalid UTF-8");
	check_error("\"\xF4\x90\x80\x80\"", 1, "invalid UTF-8");
	check_error("\"\xF5\x80\x80\x80\"", 1, "invalid UTF-8");
	check_error("\"\xFF\"", 1, "invalid UTF-8");
	check_error("\"\x80\"", 1, "invalid UTF-8");
	check_error("\"\xE2\x82\"", 1, "invalid UTF-8");
	check_error("\xC3\xA9", 0, "unexpected character");
	check_error("\xEF\xBB\xBF{}", 0, "unexpected character");
	check_error("[1,{\"a\":[tru]}]", 9, "invalid literal");

	{
		SjError		err = {0, NULL};

		ok(sj_parse(&arena, "[1,2]", 5, NULL) != NULL, "a NULL error pointer is allowed", NULL);
		ok(sj_parse(&arena, "[1,", 3, NULL) == NULL, "a NULL error pointer is allowed on failure", NULL);
		ok(sj_parse(&arena, "[1,2] junk", 5, &err) != NULL, "parses only the len bytes given", NULL);
	}
}

static char *
nested(char open, char close, int depth, const char *inner)
{
	size_t		il = strlen(inner);
	char	   *s = malloc(depth * 2 + il + 1);

	for (int i = 0; i < depth; i++)
		s[i] = open;
	memcpy(s + depth, inner, il);
	for (int i = 0; i < depth; i++)
		s[depth + il + i] = close;
	s[depth * 2 + il] = '\0';
	return s;
}

static char *
nested_objects(int depth)
{
	char	   *o = malloc(depth * 6 + 2);
	size_t		k = 0;

	for (int i = 0; i < depth; i++)
	{
		memcpy(o + k, "{\"a\":", 5);
		k += 5;
	}
	o[k++] = '1';
	for (int i = 0; i < depth; i++)
		o[k++] = '}';
	o[k] = '\0';
	return o;
}

static void
test_depth(void)
{
	char	   *s;
	SjError		err;
	SjValue    *v;

	s = nested('[', ']', SJ_MAX_DEPTH, "");
	v = parse(s, strlen(s), &err);
	ok(v != NULL, "accepts arrays nested SJ_MAX_DEPTH deep", NULL);
	ok(v && strcmp(ser(v), s) == 0, "deeply nested arrays round trip", NULL);
	free(s);

	s = nested('[', ']', SJ_MAX_DEPTH + 1, "");
	check_error(s, SJ_MAX_DEPTH, "nesting too deep");
	free(s);

	/* objects count too: {"a":{"a":...1...}} */
	s = nested_objects(SJ_MAX_DEPTH);
	v = parse(s, strlen(s), &err);
	ok(v != NULL, "accepts objects nested SJ_MAX_DEPTH deep", NULL);
	free(s);
	s = nested_objects(SJ_MAX_DEPTH + 1);
	check_error_len(s, strlen(s), SJ_MAX_DEPTH * 5, "nesting too deep", "objects nested SJ_MAX_DEPTH + 1 deep");
	free(s);
	s = nested('[', ']', SJ_MAX_DEPTH / 2, "");
	{
		char	   *inner = nested_objects(SJ_MAX_DEPTH / 2 + 1);

		free(s);
		s = nested('[', ']', SJ_MAX_DEPTH / 2, inner);
		check_error_len(s, strlen(s), SJ_MAX_DEPTH / 2 + (SJ_MAX_DEPTH / 2) * 5, "nesting too deep",
						"arrays and objects count together toward the depth limit");
		free(inner);
	}
	free(s);

	s = nested('[', ']', 1000000, "");
	check_error_len(s, strlen(s), SJ_MAX_DEPTH, "nesting too deep", "a million nested arrays without overflowing the stack");
	free(s);
	s = nested('[', ']', 1000000, "");
	s[1000000] = '\0';			/* unterminated */
	check_error_len(s, 1000000, SJ_MAX_DEPTH, "nesting too deep", "a million unterminated arrays");
	free(s);

	/* the caller's limit (sj_parse_depth), e.g. 64 for request bodies */
	s = nested('[', ']', 64, "1");
	ok(sj_parse_depth(&arena, s, strlen(s), 64, &err) != NULL, "a limit of 64 accepts 64 levels", NULL);
	free(s);
	s = nested('[', ']', 65, "1");
	v = sj_parse_depth(&arena, s, strlen(s), 64, &err);
	ok(v == NULL && err.position == 64 && strcmp(err.message, "nesting too deep") == 0,
	   "a limit of 64 refuses 65 levels at the 65th bracket", NULL);
	free(s);
	s = nested_objects(65);
	v = sj_parse_depth(&arena, s, strlen(s), 64, &err);
	ok(v == NULL && err.position == 64 * 5 && strcmp(err.message, "nesting too deep") == 0,
	   "objects count toward the caller's limit", NULL);
	free(s);
	s = nested('[', ']', 100000, "");
	v = sj_parse_depth(&arena, s, strlen(s), 64, &err);
	ok(v == NULL && err.position == 64, "100,000 levels (200 kB) stop at the caller's limit", NULL);
	free(s);
	s = nested('[', ']', SJ_MAX_DEPTH + 1, "");
	ok(sj_parse_depth(&arena, s, strlen(s), 1000000, &err) == NULL && err.position == SJ_MAX_DEPTH,
	   "a limit above SJ_MAX_DEPTH is clamped to it", NULL);
	free(s);
	ok(sj_parse_depth(&arena, "[1]", 3, 0, &err) != NULL && sj_parse_depth(&arena, "[[1]]", 5, 0, &err) == NULL,
	   "a limit below 1 is 1", NULL);
}

static void
test_equality(void)
{
	check_equal("1", "1.0", 1);
	check_equal("1", "1e0", 1);
	check_equal("100", "1e2", 1);
	check_equal("100", "1E+2", 1);
	check_equal("0.1", "1e-1", 1);
	check_equal("0.1", "0.10000", 1);
	check_equal("1234.5", "1.2345e3", 1);
	check_equal("0", "-0", 1);
	check_equal("0", "0.000e10", 1);
	check_equal("-1.50", "-1.5", 1);
	check_equal("10", "1", 0);
	check_equal("1", "1.0001", 0);
	check_equal("-1", "1", 0);
	check_equal("0.1", "0.01", 0);
	check_equal("12345678901234567890", "12345678901234567891", 0);
	check_equal("1e400", "1e401", 0);
	check_equal("1", "\"1\"", 0);
	check_equal("\"a\"", "\"A\"", 0);
	check_equal("\"a\"", "\"a\"", 1);
	check_equal("\"\\u00e9\"", "\"\xC3\xA9\"", 1);
	check_equal("\"a\\u0000b\"", "\"a\\u0000c\"", 0);
	check_equal("null", "false", 0);
	check_equal("true", "true", 1);
	check_equal("true", "false", 0);
	check_equal("[1,2]", "[1,2.0]", 1);
	check_equal("[1,2]", "[2,1]", 0);
	check_equal("[1,2]", "[1,2,3]", 0);
	check_equal("[]", "{}", 0);
	check_equal("{\"a\":1,\"b\":[true,{\"c\":null}]}", "{\"b\":[true,{\"c\":null}],\"a\":1.0}", 1);
	check_equal("{\"a\":1}", "{\"a\":1,\"b\":2}", 0);
	check_equal("{\"a\":1}", "{\"A\":1}", 0);
	check_equal("{\"a\":1,\"b\":2}", "{\"a\":1,\"c\":2}", 0);
	check_equal("{\"a\":{\"x\":1}}", "{\"a\":{\"x\":2}}", 0);

	{
		/* hand-built objects with a repeated key */
		SjValue    *a = sj_new_object(&arena);
		SjValue    *b = parse("{\"x\":1,\"y\":1}", 13, NULL);

		a->u.obj.members = scim_arena_alloc(&arena, 2 * sizeof(SjMember));
		a->u.obj.cap = 2;
		a->u.obj.count = 2;
		a->u.obj.members[0] = (SjMember) {"y", 1, sj_new_number(&arena, "1", 1)};
		a->u.obj.members[1] = (SjMember) {"y", 1, sj_new_number(&arena, "1", 1)};
		ok(!sj_equal(a, b) && !sj_equal(b, a), "sj_equal: repeated keys do not fake equal key sets", NULL);
	}

	check_cmp("2", "1.5", 1);
	check_cmp("-2", "-1.5", -1);
	check_cmp("1e2", "99.5", 1);
	check_cmp("0.1", "0.11", -1);
	check_cmp("-0.0", "0", 0);
	check_cmp("0", "0.0001", -1);
	check_cmp("0", "-0.0001", 1);
	check_cmp("1e1000000000000000000000", "1e999999999", 1);
	check_cmp("1e-1000000000000000000000", "0", 1);
	check_cmp("123456789012345678901234567890", "123456789012345678901234567891", -1);
	check_cmp("5", "50e-1", 0);
	{
		SjValue    *n = sj_new_number(&arena, "1.5", 3);
		SjValue    *bad = sj_new_number(&arena, "NaN", 3);
		SjValue    *str = sj_new_string(&arena, "1", 1);
		double		d = 0;
		int			r;

		ok(sj_number_double(n, &d) && d == 1.5, "sj_number_double converts 1.5", NULL);
		ok(!sj_number_double(bad, &d) && !sj_number_double(str, &d),
		   "sj_number_double refuses NaN text and non-numbers", NULL);
		ok(!sj_number_cmp(n, bad, &r) && !sj_number_cmp(n, str, &r),
		   "sj_number_cmp refuses invalid number text and non-numbers", NULL);
		ok(sj_number_text_valid("-12.5e+3", 8) && !sj_number_text_valid("012", 3) &&
		   !sj_number_text_valid("1.", 2) && !sj_number_text_valid(" 1", 2) &&
		   !sj_number_text_valid("", 0) && !sj_number_text_valid("+1", 2),
		   "sj_number_text_valid follows the RFC 8259 grammar", NULL);
	}

	ok(sj_is_empty(parse("null", 4, NULL)) && sj_is_empty(parse("\"\"", 2, NULL)) &&
	   sj_is_empty(parse("[]", 2, NULL)) && sj_is_empty(parse("{ }", 3, NULL)),
	   "sj_is_empty: null, \"\", [] and {}", NULL);
	ok(!sj_is_empty(parse("0", 1, NULL)) && !sj_is_empty(parse("false", 5, NULL)) &&
	   !sj_is_empty(parse("\" \"", 3, NULL)) && !sj_is_empty(parse("[null]", 6, NULL)) &&
	   !sj_is_empty(parse("{\"a\":null}", 10, NULL)),
	   "sj_is_empty: 0, false, \" \", [null], {\"a\":null} are not empty", NULL);
	ok(sj_strcaseeq("userName", 8, "USERNAME", 8) && !sj_strcaseeq("userName", 8, "userNam", 7) &&
	   !sj_strcaseeq("a", 1, "b", 1) && !sj_strcaseeq("\xC3\xA9", 2, "\xC3\x89", 2),
	   "sj_strcaseeq folds ASCII only", NULL);
}

static void
test_dom(void)
{
	const char *fixture = "{\"userName\":\"b\",\"name\":{\"givenName\":\"B\"},\"Name\":1}";
	SjValue    *o = parse(fixture, strlen(fixture), NULL);
	SjValue    *v;
	SjMember   *m;

	ok(o != NULL, "dom: fixture parses", NULL);
	v = sj_object_get(o, "USERNAME", 8, true);
	ok(v && v->type == SJ_STRING && strcmp(v->u.str.ptr, "b") == 0, "object_get ci finds USERNAME", NULL);
	ok(sj_object_get(o, "USERNAME", 8, false) == NULL, "object_get exact misses USERNAME", NULL);
	v = sj_object_get(o, "Name", 4, true);
	ok(v && v->type == SJ_NUMBER, "object_get ci prefers the exact key over a case variant", NULL);
	v = sj_object_get(o, "NAME", 4, true);
	ok(v && v->type == SJ_OBJECT, "object_get ci without exact key returns the first variant", NULL);
	m = sj_object_member(o, "username", 8, true);
	ok(m && strcmp(m->key, "userName") == 0 && m->keylen == 8, "object_member returns the stored key", NULL);
	ok(sj_object_get(o, "user", 4, true) == NULL, "object_get does not match prefixes", NULL);

	ok(sj_object_set(&arena, o, "USERNAME", 8, sj_new_string(&arena, "c", 1), true) &&
	   o->u.obj.count == 3, "object_set ci replaces without adding a member", NULL);
	ok(strcmp(ser(o), "{\"userName\":\"c\",\"name\":{\"givenName\":\"B\"},\"Name\":1}") == 0,
	   "object_set ci keeps the stored key spelling and order", NULL);
	{
		char		key[] = "title";

		ok(sj_object_set(&arena, o, key, 5, sj_new_string(&arena, "Dr", 2), true) &&
		   o->u.obj.count == 4, "object_set appends a new key", NULL);
		key[0] = 'X';			/* the object must own its copy of the key */
	}
	ok(strcmp(ser(o), "{\"userName\":\"c\",\"name\":{\"givenName\":\"B\"},\"Name\":1,\"title\":\"Dr\"}") == 0,
	   "object_set copies the key", NULL);
	ok(sj_object_set(&arena, o, "TITLE", 5, sj_new_null(&arena), false) && o->u.obj.count == 5,
	   "object_set exact adds a case variant as a new key", NULL);
	ok(sj_object_remove(o, "title", 5, true) && o->u.obj.count == 3 &&
	   sj_object_get(o, "title", 5, true) == NULL, "object_remove ci removes every case variant", NULL);
	ok(!sj_object_remove(o, "title", 5, true), "object_remove of a missing key returns false", NULL);
	ok(sj_object_remove(o, "name", 4, false) && o->u.obj.count == 2 &&
	   strcmp(ser(o), "{\"userName\":\"c\",\"Name\":1}") == 0, "object_remove exact keeps the other variant and order", NULL);
	{
		SjValue    *ap = sj_new_object(&arena);
		char		key[] = "k";
		int			good = 1;

		for (int i = 0; i < 10 && good; i++)
			good = sj_object_append(&arena, ap, key, 1, sj_new_number(&arena, "1", 1));
		key[0] = 'z';
		ok(good && ap->u.obj.count == 10 && strcmp(ap->u.obj.members[9].key, "k") == 0,
		   "object_append appends without searching and copies the key", NULL);
		ok(!sj_object_append(&arena, ap, "x", 1, NULL), "object_append refuses a NULL value", NULL);
	}
	ok(!sj_object_set(&arena, o, "x", 1, NULL, false) &&
	   !sj_object_set(&arena, parse("[]", 2, NULL), "x", 1, sj_new_null(&arena), false),
	   "object_set refuses a NULL value and non-objects", NULL);

	{
		SjValue    *a = parse("[0,1,2,3,4]", 11, NULL);

		sj_array_remove(a, 2);
		ok(strcmp(ser(a), "[0,1,3,4]") == 0, "array_remove in the middle keeps order", NULL);
		sj_array_remove(a, 0);
		sj_array_remove(a, 2);
		ok(strcmp(ser(a), "[1,3]") == 0, "array_remove first and last", NULL);
		sj_array_remove(a, 5);
		ok(a->u.arr.count == 2, "array_remove out of range is a no-op", NULL);
		ok(sj_array_append(&arena, a, sj_new_bool(&arena, true)) && strcmp(ser(a), "[1,3,true]") == 0,
		   "array_append", NULL);
		ok(!sj_array_append(&arena, a, NULL), "array_append refuses NULL", NULL);
	}
	{
		const char *t = "{\"a\":[1,{\"b\":\"x\\u0000y\"}],\"c\":null,\"d\":-2.5e3}";
		SjValue    *src = parse(t, strlen(t), NULL);
		SjValue    *copy = sj_deep_copy(&arena, src);

		ok(copy && copy != src && sj_equal(src, copy) && strcmp(ser(copy), ser(src)) == 0,
		   "deep_copy is equal", NULL);
		sj_object_set(&arena, sj_object_get(copy, "a", 1, false)->u.arr.items[1], "b", 1,
					  sj_new_number(&arena, "7", 1), false);
		ok(strcmp(ser(src), "{\"a\":[1,{\"b\":\"x\\u0000y\"}],\"c\":null,\"d\":-2.5e3}") == 0 &&
		   !sj_equal(src, copy), "deep_copy is independent of the original", NULL);
	}
	{
		SjValue    *n = sj_new_number(&arena, "42xyz", 2);

		ok(n && n->u.num.len == 2 && strcmp(n->u.num.text, "42") == 0, "new_number copies len bytes", NULL);
	}
	{
		SjBuf		b;

		sj_buf_init(&b, &arena);
		for (int i = 0; i < 1000; i++)
			sj_buf_append(&b, "abc", 3);
		ok(!b.failed && b.len == 3000 && b.data[2999] == 'c' && b.data[3000] == '\0',
		   "sj_buf grows and stays NUL-terminated", NULL);
	}
	{
		ScimArena	small;
		SjError		err;
		SjValue    *v2;
		SjBuf		b;

		scim_arena_init(&small, &scim_malloc_allocator);
		small.limit = 8192;
		v2 = sj_parse(&small, "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,100,101,102,103,104,105,106,107,108,109,110,111,112,113,114,115,116,117,118,119,120,121,122,123,124,125,126,127,128,129,130,131,132,133,134,135,136,137,138,139,140,141,142,143,144,145,146,147,148,149,150]",
					  575, &err);
		ok(v2 == NULL && err.message && strstr(err.message, "out of memory") && small.failed,
		   "parse reports out of memory when the arena limit is reached", NULL);
		scim_arena_reset(&small);
		small.limit = 8192;
		sj_buf_init(&b, &small);
		for (int i = 0; i < 10000; i++)
			sj_buf_append(&b, "abc", 3);
		ok(b.failed, "sj_buf reports failure when the arena limit is reached", NULL);
		ok(sj_to_string(&small, parse("[1]", 3, NULL), NULL) == NULL || small.failed,
		   "sj_to_string returns NULL on a failed arena", NULL);
		scim_arena_reset(&small);
	}
}

static void
test_big(void)
{
	const size_t n = 100000;
	char	   *text;
	size_t		k = 0;
	double		t0,
				t1;
	SjValue    *v;
	SjError		err;
	char	   *out;
	size_t		outlen;

	/* array of 100k numbers */
	text = malloc(n * 12 + 16);
	text[k++] = '[';
	for (size_t i = 0; i < n; i++)
		k += sprintf(text + k, "%s%zu", i ? "," : "", i);
	text[k++] = ']';
	text[k] = '\0';
	t0 = now_seconds();
	v = parse(text, k, &err);
	out = sj_to_string(&arena, v, &outlen);
	t1 = now_seconds();
	ok(v && v->u.arr.count == n && out && outlen == k && memcmp(out, text, k) == 0,
	   "100k-element array parses and round trips", NULL);
	ok(t1 - t0 < 2.0, "100k-element array in well under quadratic time", NULL);
	free(text);

	/* object with 100k distinct keys, then a duplicate of the first */
	text = malloc(n * 24 + 64);
	k = 0;
	text[k++] = '{';
	for (size_t i = 0; i < n; i++)
		k += sprintf(text + k, "%s\"key%zu\":%zu", i ? "," : "", i, i);
	k += sprintf(text + k, ",\"key0\":\"last\"}");
	t0 = now_seconds();
	v = parse(text, k, &err);
	t1 = now_seconds();
	ok(v && v->u.obj.count == n, "100k-member object parses with one duplicate folded", NULL);
	ok(v && v->u.obj.members[0].value->type == SJ_STRING, "duplicate key in a big object: last value wins", NULL);
	ok(t1 - t0 < 2.0, "100k-member object in well under quadratic time", NULL);
	{
		SjValue    *c = sj_deep_copy(&arena, v);

		t0 = now_seconds();
		ok(c && sj_equal(v, c), "100k-member object equals its deep copy", NULL);
		t1 = now_seconds();
		ok(t1 - t0 < 2.0, "sj_equal on 100k members in linear time", NULL);
	}
	free(text);

	/* 100k appends and objects built by hand */
	{
		SjValue    *a = sj_new_array(&arena);
		int			good = 1;

		t0 = now_seconds();
		for (size_t i = 0; i < n && good; i++)
			good = sj_array_append(&arena, a, sj_new_null(&arena));
		t1 = now_seconds();
		ok(good && a->u.arr.count == n && t1 - t0 < 1.0, "100k sj_array_append calls in amortized time", NULL);
	}
	{
		SjValue    *o = sj_new_object(&arena);
		int			good = 1;
		char		key[32];

		t0 = now_seconds();
		for (size_t i = 0; i < n && good; i++)
		{
			int			kl = snprintf(key, sizeof(key), "k%zu", i);

			good = sj_object_append(&arena, o, key, kl, sj_new_null(&arena));
		}
		t1 = now_seconds();
		ok(good && o->u.obj.count == n && t1 - t0 < 1.0, "100k sj_object_append calls in amortized time", NULL);
	}

	/* one string of 100k escapes and one of 1 MB of plain text */
	text = malloc(n * 12 + 3);
	k = 0;
	text[k++] = '"';
	for (size_t i = 0; i < n; i++)
	{
		memcpy(text + k, "\\uD83D\\uDE00", 12);
		k += 12;
	}
	text[k++] = '"';
	t0 = now_seconds();
	v = parse(text, k, &err);
	out = sj_to_string(&arena, v, &outlen);
	t1 = now_seconds();
	ok(v && v->u.str.len == n * 4 && out && outlen == n * 4 + 2, "string with 100k surrogate pairs", NULL);
	ok(t1 - t0 < 1.0, "100k escapes in linear time", NULL);
	free(text);

	text = malloc(1000002);
	text[0] = '"';
	memset(text + 1, 'x', 1000000);
	text[1000001] = '"';
	v = parse(text, 1000002, &err);
	ok(v && v->u.str.len == 1000000, "1 MB string", NULL);
	free(text);
}

int
main(void)
{
	char	   *results = NULL;
	size_t		results_len = 0;

	/* collect the results so that the plan can come first */
	tap = open_memstream(&results, &results_len);
	if (tap == NULL)
	{
		perror("open_memstream");
		return 1;
	}
	scim_arena_init(&arena, &scim_malloc_allocator);

	test_arena();
	test_escapes();
	test_serializer();
	test_errors();
	test_depth();
	test_equality();
	test_dom();
	test_big();

	scim_arena_reset(&arena);
	fclose(tap);
	printf("1..%d\n", test_no);
	fwrite(results, 1, results_len, stdout);
	free(results);
	return failures ? 1 : 0;
}
