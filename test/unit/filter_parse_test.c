/* deps: src/filter_parse.c src/filter_match.c src/registry.c src/json.c src/arena.c */
/*-------------------------------------------------------------------------
 *
 * filter_parse_test.c
 *		Unit tests (TAP) for the SCIM filter parser, the PATCH path parser
 *		and the attribute registry.
 *
 * Standalone: no PostgreSQL.  Built and run by the unit test runner as
 *   cc -O1 -g -fsanitize=address,undefined -Isrc -o X test/unit/filter_parse_test.c <deps>
 *
 * test/unit/filter_parse_test.c
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200809L	/* open_memstream */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "registry.h"

static int	test_no = 0;
static int	failures = 0;
static FILE *tap;
static ScimArena arena;

static void
ok(int cond, const char *what, const char *arg)
{
	char		label[600];

	test_no++;
	if (!cond)
		failures++;
	snprintf(label, sizeof(label), "%s%s%s", what, arg ? ": " : "", arg ? arg : "");
	fprintf(tap, "%s %d - ", cond ? "ok" : "not ok", test_no);
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
	fprintf(tap, "# %s: %s\n", what, got ? got : "(null)");
}

/* The canonical JSON of a filter, or "ERR <position>: <message>". */
static char *
canon(const char *filter, size_t len, const ScimFilterLimits *limits)
{
	ScimFilterError err;
	ScimFilterNode *node = scim_filter_parse(&arena, filter, len, limits, &err);
	char	   *out;

	if (node == NULL)
	{
		size_t		n = strlen(err.message) + 32;

		out = scim_arena_alloc(&arena, n);
		snprintf(out, n, "ERR %d: %s", err.position, err.message);
		return out;
	}
	return sj_to_string(&arena, scim_filter_to_json(&arena, node), NULL);
}

static void
expect_json(const char *filter, const char *json)
{
	char	   *got = canon(filter, strlen(filter), NULL);

	ok(got != NULL && strcmp(got, json) == 0, "parses", filter);
	if (got == NULL || strcmp(got, json) != 0)
	{
		diag("expected", json);
		diag("got", got);
	}
}

static void
expect_error(const char *filter, int position, const char *message)
{
	char		want[400];
	char	   *got = canon(filter, strlen(filter), NULL);

	snprintf(want, sizeof(want), "ERR %d: %s", position, message);
	ok(got != NULL && strcmp(got, want) == 0, "error", filter);
	if (got == NULL || strcmp(got, want) != 0)
	{
		diag("expected", want);
		diag("got", got);
	}
}

/* expect_json / expect_error for the first len bytes of a buffer */
static void
expect_json_len(const char *filter, size_t len, const char *json)
{
	char	   *got = canon(filter, len, NULL);

	ok(got != NULL && strcmp(got, json) == 0, "parses (given length)", filter);
	if (got == NULL || strcmp(got, json) != 0)
	{
		diag("expected", json);
		diag("got", got);
	}
}

static void
expect_error_len(const char *filter, size_t len, int position, const char *message)
{
	char		want[400];
	char	   *got = canon(filter, len, NULL);

	snprintf(want, sizeof(want), "ERR %d: %s", position, message);
	ok(got != NULL && strcmp(got, want) == 0, "error (given length)", filter);
	if (got == NULL || strcmp(got, want) != 0)
	{
		diag("expected", want);
		diag("got", got);
	}
}

static void
test_rfc_examples(void)
{
	/* RFC 7644 section 3.4.2.2, every example filter */
	expect_json("userName eq \"bjensen\"",
				"{\"op\":\"eq\",\"attr\":\"userName\",\"value\":\"bjensen\"}");
	expect_json("name.familyName co \"O'Malley\"",
				"{\"op\":\"co\",\"attr\":\"name.familyName\",\"value\":\"O'Malley\"}");
	expect_json("userName sw \"J\"",
				"{\"op\":\"sw\",\"attr\":\"userName\",\"value\":\"J\"}");
	expect_json("urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"J\"",
				"{\"op\":\"sw\",\"schema\":\"urn:ietf:params:scim:schemas:core:2.0:User\",\"attr\":\"userName\",\"value\":\"J\"}");
	expect_json("title pr", "{\"op\":\"pr\",\"attr\":\"title\"}");
	expect_json("meta.lastModified gt \"2011-05-13T04:42:34Z\"",
				"{\"op\":\"gt\",\"attr\":\"meta.lastModified\",\"value\":\"2011-05-13T04:42:34Z\"}");
	expect_json("meta.lastModified ge \"2011-05-13T04:42:34Z\"",
				"{\"op\":\"ge\",\"attr\":\"meta.lastModified\",\"value\":\"2011-05-13T04:42:34Z\"}");
	expect_json("meta.lastModified lt \"2011-05-13T04:42:34Z\"",
				"{\"op\":\"lt\",\"attr\":\"meta.lastModified\",\"value\":\"2011-05-13T04:42:34Z\"}");
	expect_json("meta.lastModified le \"2011-05-13T04:42:34Z\"",
				"{\"op\":\"le\",\"attr\":\"meta.lastModified\",\"value\":\"2011-05-13T04:42:34Z\"}");
	expect_json("title pr and userType eq \"Employee\"",
				"{\"op\":\"and\",\"args\":[{\"op\":\"pr\",\"attr\":\"title\"},{\"op\":\"eq\",\"attr\":\"userType\",\"value\":\"Employee\"}]}");
	expect_json("title pr or userType eq \"Intern\"",
				"{\"op\":\"or\",\"args\":[{\"op\":\"pr\",\"attr\":\"title\"},{\"op\":\"eq\",\"attr\":\"userType\",\"value\":\"Intern\"}]}");
	expect_json("schemas eq \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"",
				"{\"op\":\"eq\",\"attr\":\"schemas\",\"value\":\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"}");
	expect_json("userType eq \"Employee\" and (emails co \"example.com\" or emails.value co \"example.org\")",
				"{\"op\":\"and\",\"args\":[{\"op\":\"eq\",\"attr\":\"userType\",\"value\":\"Employee\"},"
				"{\"op\":\"or\",\"args\":[{\"op\":\"co\",\"attr\":\"emails\",\"value\":\"example.com\"},"
				"{\"op\":\"co\",\"attr\":\"emails.value\",\"value\":\"example.org\"}]}]}");
	expect_json("userType ne \"Employee\" and not (emails co \"example.com\" or emails.value co \"example.org\")",
				"{\"op\":\"and\",\"args\":[{\"op\":\"ne\",\"attr\":\"userType\",\"value\":\"Employee\"},"
				"{\"op\":\"not\",\"arg\":{\"op\":\"or\",\"args\":[{\"op\":\"co\",\"attr\":\"emails\",\"value\":\"example.com\"},"
				"{\"op\":\"co\",\"attr\":\"emails.value\",\"value\":\"example.org\"}]}}]}");
	expect_json("userType eq \"Employee\" and (emails.type eq \"work\")",
				"{\"op\":\"and\",\"args\":[{\"op\":\"eq\",\"attr\":\"userType\",\"value\":\"Employee\"},"
				"{\"op\":\"eq\",\"attr\":\"emails.type\",\"value\":\"work\"}]}");
	expect_json("userType eq \"Employee\" and emails[type eq \"work\" and value co \"@example.com\"]",
				"{\"op\":\"and\",\"args\":[{\"op\":\"eq\",\"attr\":\"userType\",\"value\":\"Employee\"},"
				"{\"op\":\"valuePath\",\"attr\":\"emails\",\"filter\":{\"op\":\"and\",\"args\":["
				"{\"op\":\"eq\",\"attr\":\"type\",\"value\":\"work\"},{\"op\":\"co\",\"attr\":\"value\",\"value\":\"@example.com\"}]}}]}");
	expect_json("emails[type eq \"work\" and value co \"@example.com\"] or ims[type eq \"xmpp\" and value co \"@foo.com\"]",
				"{\"op\":\"or\",\"args\":[{\"op\":\"valuePath\",\"attr\":\"emails\",\"filter\":{\"op\":\"and\",\"args\":["
				"{\"op\":\"eq\",\"attr\":\"type\",\"value\":\"work\"},{\"op\":\"co\",\"attr\":\"value\",\"value\":\"@example.com\"}]}},"
				"{\"op\":\"valuePath\",\"attr\":\"ims\",\"filter\":{\"op\":\"and\",\"args\":["
				"{\"op\":\"eq\",\"attr\":\"type\",\"value\":\"xmpp\"},{\"op\":\"co\",\"attr\":\"value\",\"value\":\"@foo.com\"}]}}]}");
	/* Microsoft Entra ID's form: emails[type eq "work"].value eq "x" = emails[type eq "work" and value eq "x"] */
	expect_json("emails[type eq \"work\"].value eq \"ann@example.com\"",
				"{\"op\":\"valuePath\",\"attr\":\"emails\",\"filter\":{\"op\":\"and\",\"args\":["
				"{\"op\":\"eq\",\"attr\":\"type\",\"value\":\"work\"},{\"op\":\"eq\",\"attr\":\"value\",\"value\":\"ann@example.com\"}]}}");
	expect_json("emails[type eq \"work\" or primary eq true].value pr and active eq true",
				"{\"op\":\"and\",\"args\":[{\"op\":\"valuePath\",\"attr\":\"emails\",\"filter\":{\"op\":\"and\",\"args\":["
				"{\"op\":\"or\",\"args\":[{\"op\":\"eq\",\"attr\":\"type\",\"value\":\"work\"},{\"op\":\"eq\",\"attr\":\"primary\",\"value\":true}]},"
				"{\"op\":\"pr\",\"attr\":\"value\"}]}},{\"op\":\"eq\",\"attr\":\"active\",\"value\":true}]}");
	/* the examples of section 3.4.3 (POST /.search) and 3.5.2 paths */
	expect_json("displayName sw \"smith\"",
				"{\"op\":\"sw\",\"attr\":\"displayName\",\"value\":\"smith\"}");
	expect_json("members[value eq \"2819c223-7f76-453a-919d-413861904646\"]",
				"{\"op\":\"valuePath\",\"attr\":\"members\",\"filter\":{\"op\":\"eq\",\"attr\":\"value\",\"value\":\"2819c223-7f76-453a-919d-413861904646\"}}");
}

static void
test_precedence(void)
{
	/* and binds tighter than or */
	expect_json("a pr or b pr and c pr",
				"{\"op\":\"or\",\"args\":[{\"op\":\"pr\",\"attr\":\"a\"},{\"op\":\"and\",\"args\":[{\"op\":\"pr\",\"attr\":\"b\"},{\"op\":\"pr\",\"attr\":\"c\"}]}]}");
	expect_json("a pr and b pr or c pr",
				"{\"op\":\"or\",\"args\":[{\"op\":\"and\",\"args\":[{\"op\":\"pr\",\"attr\":\"a\"},{\"op\":\"pr\",\"attr\":\"b\"}]},{\"op\":\"pr\",\"attr\":\"c\"}]}");
	expect_json("(a pr or b pr) and c pr",
				"{\"op\":\"and\",\"args\":[{\"op\":\"or\",\"args\":[{\"op\":\"pr\",\"attr\":\"a\"},{\"op\":\"pr\",\"attr\":\"b\"}]},{\"op\":\"pr\",\"attr\":\"c\"}]}");
	/* chains flatten; redundant parentheses vanish */
	expect_json("a pr and (b pr and c pr) and ((d pr))",
				"{\"op\":\"and\",\"args\":[{\"op\":\"pr\",\"attr\":\"a\"},{\"op\":\"pr\",\"attr\":\"b\"},{\"op\":\"pr\",\"attr\":\"c\"},{\"op\":\"pr\",\"attr\":\"d\"}]}");
	expect_json("not (a pr) and b pr",
				"{\"op\":\"and\",\"args\":[{\"op\":\"not\",\"arg\":{\"op\":\"pr\",\"attr\":\"a\"}},{\"op\":\"pr\",\"attr\":\"b\"}]}");
	expect_json("not(not(a pr))",
				"{\"op\":\"not\",\"arg\":{\"op\":\"not\",\"arg\":{\"op\":\"pr\",\"attr\":\"a\"}}}");
	/* keywords and operators are case-insensitive; names keep their case */
	expect_json("UserName EQ \"x\" AND Title PR Or NOT (a Sw \"y\")",
				"{\"op\":\"or\",\"args\":[{\"op\":\"and\",\"args\":[{\"op\":\"eq\",\"attr\":\"UserName\",\"value\":\"x\"},"
				"{\"op\":\"pr\",\"attr\":\"Title\"}]},{\"op\":\"not\",\"arg\":{\"op\":\"sw\",\"attr\":\"a\",\"value\":\"y\"}}]}");
	/* "not" is an attribute name when an operator follows it */
	expect_json("not eq \"x\"", "{\"op\":\"eq\",\"attr\":\"not\",\"value\":\"x\"}");
	expect_json("and pr and or pr", "{\"op\":\"and\",\"args\":[{\"op\":\"pr\",\"attr\":\"and\"},{\"op\":\"pr\",\"attr\":\"or\"}]}");
	/* white space: tabs and newlines, none around parentheses or before a string */
	expect_json("\ta eq\"x\"\nand(b pr)",
				"{\"op\":\"and\",\"args\":[{\"op\":\"eq\",\"attr\":\"a\",\"value\":\"x\"},{\"op\":\"pr\",\"attr\":\"b\"}]}");
}

static void
test_values(void)
{
	expect_json("x eq \"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"",
				"{\"op\":\"eq\",\"attr\":\"x\",\"value\":\"\\\" \\\\ / \\b \\f \\n \\r \\t\"}");
	expect_json("x eq \"\\u00e9\\u00C9 \\u20AC \\ud83d\\ude00\"",
				"{\"op\":\"eq\",\"attr\":\"x\",\"value\":\"\xc3\xa9\xc3\x89 \xe2\x82\xac \xf0\x9f\x98\x80\"}");
	expect_json("x eq \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
				"{\"op\":\"eq\",\"attr\":\"x\",\"value\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}");
	expect_json("x eq \"\"", "{\"op\":\"eq\",\"attr\":\"x\",\"value\":\"\"}");
	expect_json("x eq 42", "{\"op\":\"eq\",\"attr\":\"x\",\"value\":42}");
	expect_json("x gt -3.25", "{\"op\":\"gt\",\"attr\":\"x\",\"value\":-3.25}");
	expect_json("x lt 1.5E+10", "{\"op\":\"lt\",\"attr\":\"x\",\"value\":1.5E+10}");
	expect_json("x le 2e-3", "{\"op\":\"le\",\"attr\":\"x\",\"value\":2e-3}");
	expect_json("x eq 0", "{\"op\":\"eq\",\"attr\":\"x\",\"value\":0}");
	expect_json("x eq true", "{\"op\":\"eq\",\"attr\":\"x\",\"value\":true}");
	expect_json("x eq FALSE", "{\"op\":\"eq\",\"attr\":\"x\",\"value\":false}");
	expect_json("x eq Null", "{\"op\":\"eq\",\"attr\":\"x\",\"value\":null}");
	expect_json("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"x\"",
				"{\"op\":\"eq\",\"schema\":\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\",\"attr\":\"manager.value\",\"value\":\"x\"}");
	expect_json("urn:scim:schemas:core:1.0:userName eq \"x\"",
				"{\"op\":\"eq\",\"schema\":\"urn:scim:schemas:core:1.0\",\"attr\":\"userName\",\"value\":\"x\"}");
	expect_json("groups.$ref pr", "{\"op\":\"pr\",\"attr\":\"groups.$ref\"}");
	expect_json("x-y_z9 pr", "{\"op\":\"pr\",\"attr\":\"x-y_z9\"}");
}

static void
test_errors(void)
{
	expect_error("userName xx \"bob\"", 9, "expected a comparison operator after \"userName\" at position 9");
	expect_error("userName", 8, "expected a comparison operator after \"userName\" at end of filter, position 8");
	expect_error("userName eq", 11, "expected a value (a string, number, true, false or null) after \"eq\" at end of filter, position 11");
	expect_error("userName eq bob", 12, "expected a value (a string, number, true, false or null) after \"eq\" at position 12; found \"bob\"");
	expect_error("", 0, "the filter is empty");
	expect_error("   ", 3, "expected an attribute name, \"(\" or \"not\" at end of filter, position 3");
	expect_error("userName eq \"abc", 12, "unterminated string starting at position 12");
	expect_error("(userName eq \"a\"", 16, "expected \")\" at end of filter, position 16 (to close the \"(\" at position 0)");
	expect_error("userName eq \"a\")", 15, "unmatched \")\" at position 15");
	expect_error("userName eq \"a\"]", 15, "unmatched \"]\" at position 15");
	expect_error("userName eq \"a\" xx", 16, "expected \"and\", \"or\" or the end of the filter at position 16");
	expect_error("userName eq \"a\" and", 19, "expected an attribute name, \"(\" or \"not\" after \"and\" at end of filter, position 19");
	expect_error("userName eq \"a\" or )", 19, "expected an attribute name, \"(\" or \"not\" after \"or\" at position 19");
	expect_error("not userName eq \"x\"", 4, "expected \"(\" after \"not\" at position 4");
	expect_error("x eq \"\\q\"", 6, "invalid escape sequence (backslash followed by \"q\") in string at position 6");
	expect_error("x eq \"\\u12G4\"", 6, "invalid \\u escape in string at position 6 (four hexadecimal digits expected)");
	expect_error("x eq \"\\u12\"", 6, "invalid \\u escape in string at position 6 (four hexadecimal digits expected)");
	expect_error("x eq \"\\ud83d\"", 6, "high surrogate \\uD83D in string at position 6 is not followed by a low surrogate escape");
	expect_error("x eq \"\\ud83d\\u0041\"", 6, "high surrogate \\uD83D in string at position 6 is not followed by a low surrogate escape");
	expect_error("x eq \"\\ude00\"", 6, "unpaired low surrogate \\uDE00 in string at position 6");
	expect_error("x eq \"\\u0000\"", 6, "\\u0000 is not allowed in a filter string (position 6)");
	expect_error("x eq \"a\tb\"", 7, "unescaped control character U+0009 in string at position 7");
	expect_error("x eq \"\xff\"", 6, "invalid UTF-8 (byte 0xFF) in string at position 6");
	expect_error("x eq \"\xc3\"", 6, "invalid UTF-8 (byte 0xC3) in string at position 6");
	expect_error("x eq \"\xed\xa0\x80\"", 6, "invalid UTF-8 (byte 0xED) in string at position 6");
	expect_error("x eq 01", 5, "invalid number \"01\" at position 5");
	expect_error("x eq 1.", 5, "invalid number \"1.\" at position 5");
	expect_error("x eq -", 5, "invalid number \"-\" at position 5");
	expect_error("x eq 1e", 5, "invalid number \"1e\" at position 5");
	expect_error("x eq +1", 5, "unexpected character \"+\" at position 5");
	expect_error("x eq 12abc", 5, "invalid number \"12abc\" at position 5");
	expect_error("x eq 'a'", 5, "unexpected character \"'\" at position 5");
	expect_error("\xc3\xa9 pr", 0, "unexpected character U+00E9 at position 0");
	expect_error("\x01 pr", 0, "unexpected character U+0001 at position 0");
	expect_error("a.b.c eq 1", 0, "attribute path \"a.b.c\" has more than one sub-attribute at position 0");
	expect_error("a..b eq 1", 0, "attribute path \"a..b\" has more than one sub-attribute at position 0");
	expect_error("a. eq 1", 0, "invalid attribute path \"a.\" at position 0");
	expect_error("a-$ eq 1", 0, "invalid attribute path \"a-$\" at position 0");
	expect_error("urn:foo: eq 1", 0, "expected an attribute name after the schema URN in \"urn:foo:\" at position 0");
	/* Entra ID's attr[filter].sub op value: a sub-attribute and a comparison must follow */
	expect_error("emails[type eq \"work\"].", 23, "expected a sub-attribute name after \".\" at position 22");
	expect_error("emails[type eq \"work\"].value", 28,
				 "expected a comparison operator after \"value\" at end of filter, position 28");
	expect_error("emails[type eq \"work\"].value[x eq 1]", 28, "value filters cannot be nested (\"[\" at position 28)");
	expect_error("emails[type eq \"work\"].name.x eq 1", 23,
				 "inside the value filter of \"emails\", \"name.x\" must be a plain sub-attribute name (position 23)");
	expect_error("emails[type[x eq 1] eq 2]", 11, "value filters cannot be nested (\"[\" at position 11)");
	expect_error("emails.value[type eq \"x\"]", 12,
				 "a value filter must follow an attribute name, not the sub-attribute \"emails.value\" (\"[\" at position 12)");
	expect_error("emails[name.x eq 1]", 7,
				 "inside the value filter of \"emails\", \"name.x\" must be a plain sub-attribute name (position 7)");
	expect_error("emails[type eq \"work\"", 21, "expected \"]\" at end of filter, position 21 (to close the \"[\" at position 6)");
	expect_error("emails[]", 7, "expected an attribute name, \"(\" or \"not\" at position 7");
	expect_error("()", 1, "expected an attribute name, \"(\" or \"not\" at position 1");
	/* long names are shortened in messages */
	expect_error("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 60,
				 "expected a comparison operator after \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" at end of filter, position 60");
}

/*
 * The parser lexes a copy of the input that ends in NUL padding, scans
 * strings eight bytes at a time and NUL-terminates names and strings in
 * that copy: it must never read the caller's buffer past len nor write it,
 * and a special byte must be found wherever it falls in an eight-byte
 * window.
 */
static void
test_input_buffer(void)
{
	static const char *const filters[] = {
		"title pr",
		"userName eq \"bjensen\"",
		"emails[type eq \"work\" and value co \"@example.com\"]",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"x\"",
		"not (a.b eq \"\\u00e9\") or c[d eq 1.5e3]",
		"x eq true and y eq null or z eq false",
	};
	char		label[96];

	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
	{
		size_t		len = strlen(filters[i]);
		char	   *exact = malloc(len);	/* no NUL after it: ASan sees over-reads */
		char	   *before;
		char	   *after;

		memcpy(exact, filters[i], len);
		before = canon(filters[i], len, NULL);
		after = canon(exact, len, NULL);
		snprintf(label, sizeof(label), "%.60s", filters[i]);
		ok(strncmp(after, "ERR", 3) != 0 && strcmp(before, after) == 0,
		   "parses from a buffer of exactly its length", label);
		ok(memcmp(exact, filters[i], len) == 0, "leaves the caller's buffer as it was", label);
		free(exact);
	}

	/* a length shorter than the text: the rest is not read */
	expect_json_len("title pr and x", 8, "{\"op\":\"pr\",\"attr\":\"title\"}");
	expect_json_len("x eq \"ab\"cd", 9, "{\"op\":\"eq\",\"attr\":\"x\",\"value\":\"ab\"}");
	/* NUL bytes inside the given length are input like any other byte */
	expect_error_len("x eq \"a\0b\"", 10, 7, "unescaped control character U+0000 in string at position 7");
	expect_error_len("x\0 pr", 5, 1, "unexpected character U+0000 at position 1");
	expect_error_len("x pr\0", 5, 4, "unexpected character U+0000 at position 4");
}

/* A special byte after 0..24 plain ones, at every offset of the scans. */
static void
test_string_windows(void)
{
	for (int k = 0; k <= 24; k++)
	{
		char		filter[96];
		char		want[160];
		char		a[32];

		memset(a, 'a', k);
		a[k] = '\0';

		snprintf(filter, sizeof(filter), "x eq \"%s\"", a);
		snprintf(want, sizeof(want), "{\"op\":\"eq\",\"attr\":\"x\",\"value\":\"%s\"}", a);
		expect_json(filter, want);

		snprintf(filter, sizeof(filter), "x eq \"%s\tb\"", a);
		snprintf(want, sizeof(want), "unescaped control character U+0009 in string at position %d", 6 + k);
		expect_error(filter, 6 + k, want);

		snprintf(filter, sizeof(filter), "x eq \"%s", a);
		expect_error(filter, 5, "unterminated string starting at position 5");

		snprintf(filter, sizeof(filter), "x eq \"%s\\n\x7f\xc3\xa9\"", a);
		snprintf(want, sizeof(want), "{\"op\":\"eq\",\"attr\":\"x\",\"value\":\"%s\\n\x7f\xc3\xa9\"}", a);
		expect_json(filter, want);

		snprintf(filter, sizeof(filter), "x eq \"%s\xff\"", a);
		snprintf(want, sizeof(want), "invalid UTF-8 (byte 0xFF) in string at position %d", 6 + k);
		expect_error(filter, 6 + k, want);
	}
}

static void
test_limits(void)
{
	ScimFilterLimits lim = {100, 4};
	char		buf[200000];
	char	   *got;
	size_t		n;
	ScimFilterError err;
	ScimFilterNode *node;
	int			depth;

	got = canon("((((a pr))))", 12, &lim);
	ok(strncmp(got, "{", 1) == 0, "nesting at the depth limit parses", got);
	got = canon("(((((a pr)))))", 14, &lim);
	ok(strcmp(got, "ERR 4: filter is nested more than 4 levels deep at position 4") == 0,
	   "nesting beyond the depth limit is refused", got);
	got = canon("not (not (emails[not (not (x pr))]))", 36, &lim);
	ok(strncmp(got, "ERR", 3) == 0 && strstr(got, "more than 4 levels") != NULL,
	   "not and value filters count as nesting", got);

	memset(buf, 'a', 101);
	got = canon(buf, 101, &lim);
	ok(strcmp(got, "ERR 100: the filter is 101 bytes long; the limit is 100 bytes") == 0,
	   "length limit", got);

	/* 100000 nested parentheses: an error, never a stack overflow */
	for (n = 0; n < 100000; n++)
		buf[n] = '(';
	got = canon(buf, n, NULL);
	ok(strstr(got, "more than 64 levels") != NULL, "default depth limit stops deep nesting", got);
	for (n = 0; n < 100000; n += 5)
		memcpy(buf + n, "not (", 5);
	got = canon(buf, n, NULL);
	ok(strstr(got, "more than 64 levels") != NULL, "deep not nesting is refused", got);

	/* a very long flat chain parses into a balanced tree */
	n = 0;
	for (int i = 0; i < 15000; i++)
		n += (size_t) sprintf(buf + n, "%sa%d pr", i ? " or " : "", i % 10);
	node = scim_filter_parse(&arena, buf, n, NULL, &err);
	ok(node != NULL, "a 15000-term or chain parses (no length limit)", NULL);
	depth = 0;
	for (const ScimFilterNode *x = node; x && x->kind == SF_OR; x = x->u.bin.left)
		depth++;
	ok(depth > 0 && depth <= 15, "the chain is balanced (left depth <= 15)", NULL);
}

static void
test_patch_paths(void)
{
	ScimPatchPath pp;
	ScimFilterError err;
	const char *p;

	p = "emails[type eq \"work\"].value";
	ok(scim_patch_path_parse(&arena, p, strlen(p), NULL, &pp, &err) &&
	   strcmp(pp.path.attr, "emails") == 0 && pp.path.sub == NULL && pp.filter != NULL &&
	   pp.filter->kind == SF_COMPARE && strcmp(pp.filter->u.cmp.path.attr, "type") == 0 &&
	   strcmp(pp.sub, "value") == 0, "patch path with filter and sub-attribute", p);
	p = "name.givenName";
	ok(scim_patch_path_parse(&arena, p, strlen(p), NULL, &pp, &err) &&
	   strcmp(pp.path.attr, "name") == 0 && strcmp(pp.path.sub, "givenName") == 0 &&
	   pp.filter == NULL && pp.sub == NULL, "patch path attr.sub", p);
	p = "members[value eq \"2819c223\"]";
	ok(scim_patch_path_parse(&arena, p, strlen(p), NULL, &pp, &err) &&
	   strcmp(pp.path.attr, "members") == 0 && pp.filter != NULL && pp.sub == NULL,
	   "patch path with filter", p);
	p = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value";
	ok(scim_patch_path_parse(&arena, p, strlen(p), NULL, &pp, &err) &&
	   strcmp(pp.path.schema, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User") == 0 &&
	   strcmp(pp.path.attr, "manager") == 0 && strcmp(pp.path.sub, "value") == 0,
	   "patch path with schema URN", p);
	p = "addresses[type eq \"work\" and primary eq true].streetAddress";
	ok(scim_patch_path_parse(&arena, p, strlen(p), NULL, &pp, &err) &&
	   pp.filter != NULL && pp.filter->kind == SF_AND && strcmp(pp.sub, "streetAddress") == 0,
	   "patch path with a logical value filter", p);

	p = "emails[type eq \"work\"].";
	ok(!scim_patch_path_parse(&arena, p, strlen(p), NULL, &pp, &err) &&
	   strcmp(err.message, "expected a sub-attribute name after \".\" at position 22") == 0,
	   "patch path ending in a dot", err.message);
	p = "emails[type eq \"work\"].value.x";
	ok(!scim_patch_path_parse(&arena, p, strlen(p), NULL, &pp, &err) &&
	   strcmp(err.message, "expected a sub-attribute name after \".\" at position 22") == 0,
	   "patch path with two sub-attributes after the filter", err.message);
	p = "userName eq \"x\"";
	ok(!scim_patch_path_parse(&arena, p, strlen(p), NULL, &pp, &err) &&
	   strcmp(err.message, "expected the end of the path at position 9") == 0,
	   "a filter is not a patch path", err.message);
	p = "";
	ok(!scim_patch_path_parse(&arena, p, 0, NULL, &pp, &err) &&
	   strcmp(err.message, "the path is empty") == 0, "empty patch path", err.message);
	p = "emails[type eq]";
	ok(!scim_patch_path_parse(&arena, p, strlen(p), NULL, &pp, &err) && err.position == 14,
	   "patch path with a broken filter", err.message);
}

static void
test_registry(void)
{
	ScimAttrRef r;
	SjValue    *schemas;
	SjValue    *types;
	char	   *text;

	ok(scim_registry_lookup("user", NULL, "USERNAME", NULL, &r) && strcmp(r.attr->name, "userName") == 0 &&
	   !r.attr->case_exact && r.attr->storage == SCIM_STORE_COLUMN &&
	   strcmp(r.attr->column, "user_name") == 0, "userName: case-insensitive lookup, column user_name", NULL);
	ok(scim_registry_lookup("User", NULL, "externalId", NULL, &r) && r.common && r.attr->case_exact,
	   "externalId is common and caseExact", NULL);
	ok(scim_registry_lookup("User", NULL, "emails", "VALUE", &r) && r.sub != NULL &&
	   strcmp(r.sub->name, "value") == 0 && r.attr->multi_valued, "emails.value", NULL);
	ok(scim_registry_lookup("User", NULL, "department", NULL, &r) &&
	   strcmp(r.schema->id, SCIM_URN_ENTERPRISE) == 0 && strcmp(r.attr->column, "department") == 0,
	   "an unqualified extension attribute resolves to its extension", NULL);
	ok(scim_registry_lookup("User", "urn:scim:schemas:extension:enterprise:1.0", "employeeNumber", NULL, &r) &&
	   strcmp(r.schema->id, SCIM_URN_ENTERPRISE) == 0, "SCIM 1.1 enterprise URN alias", NULL);
	ok(scim_registry_lookup("User", "urn:scim:schemas:core:1.0", "userName", NULL, &r) &&
	   strcmp(r.schema->id, SCIM_URN_CORE_USER) == 0, "SCIM 1.1 core URN alias", NULL);
	ok(scim_registry_lookup("User", SCIM_URN_PROVISION, "usertype", NULL, &r) &&
	   strcmp(r.schema->id, SCIM_URN_PROVISION) == 0 && strcmp(r.attr->column, "user_type") == 0,
	   "our extension's userType maps to user_type", NULL);
	ok(scim_registry_lookup("User", NULL, "userType", NULL, &r) && r.schema->id == scim_registry_schema(SCIM_URN_CORE_USER)->id,
	   "unqualified userType is the core attribute", NULL);
	ok(scim_registry_lookup("User", SCIM_URN_CORE_USER, "meta", "lastModified", &r) && r.common &&
	   r.sub->type == SCIM_TYPE_DATETIME && strcmp(r.sub->column, "updated_at") == 0,
	   "meta.lastModified under the core URN", NULL);
	ok(scim_registry_lookup("User", NULL, "password", NULL, &r) && r.attr->returned == SCIM_RET_NEVER &&
	   r.attr->mutability == SCIM_MUT_WRITE_ONLY, "password is writeOnly, returned never", NULL);
	ok(!scim_registry_lookup("User", NULL, "members", NULL, &r), "members is not a User attribute", NULL);
	ok(!scim_registry_lookup("User", SCIM_URN_CORE_GROUP, "displayName", NULL, &r),
	   "the Group schema is not allowed for User", NULL);
	ok(!scim_registry_lookup("User", NULL, "emails", "nope", &r) && r.attr == NULL,
	   "unknown sub-attribute", NULL);
	ok(!scim_registry_lookup("Widget", NULL, "id", NULL, &r), "unknown resource type", NULL);
	ok(scim_registry_lookup("Group", NULL, "members", "value", &r) && r.attr->multi_valued,
	   "Group members.value", NULL);

	schemas = scim_registry_schemas_json(&arena);
	ok(schemas != NULL && schemas->type == SJ_ARRAY && schemas->u.arr.count == 4,
	   "four Schema resources", NULL);
	text = sj_to_string(&arena, schemas, NULL);
	ok(text != NULL && strstr(text, "\"meta\":{\"resourceType\":\"Schema\",\"location\":\"/Schemas/urn:ietf:params:scim:schemas:core:2.0:User\"}") != NULL,
	   "Schema resources carry meta.resourceType Schema", NULL);
	ok(text != NULL && strstr(text, "{\"name\":\"userName\",\"type\":\"string\",\"multiValued\":false,") != NULL &&
	   strstr(text, "\"required\":true,\"caseExact\":false,\"mutability\":\"readWrite\",\"returned\":\"default\",\"uniqueness\":\"server\"}") != NULL,
	   "userName characteristics", NULL);
	ok(text != NULL && strstr(text, "\"canonicalValues\":[\"Regular\",\"External\",\"Collaborator\"]") != NULL,
	   "userType canonical values", NULL);
	ok(text != NULL && strstr(text, "\"name\":\"id\"") == NULL,
	   "common attributes are not listed as schema attributes", NULL);
	types = scim_registry_resource_types_json(&arena);
	text = sj_to_string(&arena, types, NULL);
	ok(text != NULL && strstr(text, "\"schemaExtensions\":[{\"schema\":\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\",\"required\":false}") != NULL,
	   "User resource type lists its extensions", NULL);
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

	test_rfc_examples();
	test_precedence();
	test_values();
	test_errors();
	test_input_buffer();
	test_string_windows();
	test_limits();
	test_patch_paths();
	test_registry();

	scim_arena_reset(&arena);
	fclose(tap);
	printf("1..%d\n", test_no);
	fputs(results, stdout);
	free(results);
	return failures ? 1 : 0;
}
