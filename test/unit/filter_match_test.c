/* deps: src/filter_parse.c src/filter_match.c src/registry.c src/json.c src/arena.c */
/*-------------------------------------------------------------------------
 *
 * filter_match_test.c
 *		Unit tests (TAP) for the SCIM filter matcher over JSON resources,
 *		dateTime parsing and case-insensitive comparison.
 *
 * Standalone: no PostgreSQL.  Built and run by the unit test runner as
 *   cc -O1 -g -fsanitize=address,undefined -Isrc -o X test/unit/filter_match_test.c <deps>
 *
 * test/unit/filter_match_test.c
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200809L	/* open_memstream */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

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

/* RFC 7643 section 8.2 (full User), trimmed, plus the enterprise extension. */
static const char *bjensen =
"{"
"  \"schemas\": [\"urn:ietf:params:scim:schemas:core:2.0:User\","
"               \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"],"
"  \"id\": \"2819c223-7f76-453a-919d-413861904646\","
"  \"externalId\": \"701984\","
"  \"userName\": \"bjensen@example.com\","
"  \"name\": {\"formatted\": \"Ms. Barbara J Jensen, III\", \"familyName\": \"Jensen\","
"           \"givenName\": \"Barbara\", \"middleName\": \"Jane\"},"
"  \"displayName\": \"Babs Jensen\","
"  \"nickName\": \"Babs\","
"  \"emails\": [{\"value\": \"bjensen@example.com\", \"type\": \"work\", \"primary\": true},"
"             {\"value\": \"babs@jensen.org\", \"type\": \"home\"}],"
"  \"phoneNumbers\": [{\"value\": \"555-555-5555\", \"type\": \"work\"}],"
"  \"ims\": [{\"value\": \"someaimhandle\", \"type\": \"aim\"}],"
"  \"userType\": \"Employee\","
"  \"title\": \"Tour Guide\","
"  \"preferredLanguage\": \"en-US\","
"  \"active\": true,"
"  \"password\": \"t1meMa$heen\","
"  \"x509Certificates\": [{\"value\": \"MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw\"}],"
"  \"meta\": {\"resourceType\": \"User\", \"created\": \"2010-01-23T04:56:22Z\","
"           \"lastModified\": \"2011-05-13T04:42:34Z\", \"version\": \"W/\\\"a330bc54f0671c9\\\"\","
"           \"location\": \"https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646\"},"
"  \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\": {"
"    \"employeeNumber\": \"701984\", \"costCenter\": \"4130\", \"organization\": \"Universal Studios\","
"    \"department\": \"Tour Operations\","
"    \"manager\": {\"value\": \"26118915-6090-4610-87e4-49d8ca9f808d\", \"displayName\": \"John Smith\"}},"
"  \"custom\": [\"Alpha\", \"beta\"],"
"  \"score\": 12.5,"
"  \"flag\": false,"
"  \"blank\": \"\","
"  \"empty\": [],"
"  \"nothing\": null"
"}";

static SjValue *resource;

static void
expect(const char *filter, int want)
{
	ScimFilterError err;
	ScimFilterNode *node = scim_filter_parse(&arena, filter, strlen(filter), NULL, &err);
	int			got = node ? scim_filter_match(node, resource, "User", &err) : -2;
	char		label[600];

	snprintf(label, sizeof(label), "%s -> %s", filter,
			 want == 1 ? "match" : want == 0 ? "no match" : "invalidFilter");
	ok(got == want, label, NULL);
	if (got != want)
		fprintf(tap, "# got %d%s%s\n", got, got < 0 ? ": " : "", got < 0 ? err.message : "");
}

static void
expect_error(const char *filter, const char *message)
{
	ScimFilterError err;
	ScimFilterNode *node = scim_filter_parse(&arena, filter, strlen(filter), NULL, &err);
	int			got = node ? scim_filter_match(node, resource, "User", &err) : -2;

	ok(got == -1 && strcmp(err.message, message) == 0, "invalidFilter", filter);
	if (got != -1 || strcmp(err.message, message) != 0)
		fprintf(tap, "# got %d: %s\n#  want: %s\n", got, got < 0 ? err.message : "", message);
}

static void
test_rfc_examples(void)
{
	expect("userName eq \"bjensen@example.com\"", 1);
	expect("name.familyName co \"O'Malley\"", 0);
	expect("name.familyName co \"ENS\"", 1);
	expect("userName sw \"J\"", 0);
	expect("userName sw \"B\"", 1);
	expect("urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"bJ\"", 1);
	expect("title pr", 1);
	expect("meta.lastModified gt \"2011-05-13T04:42:34Z\"", 0);
	expect("meta.lastModified ge \"2011-05-13T04:42:34Z\"", 1);
	expect("meta.lastModified lt \"2011-05-13T04:42:34Z\"", 0);
	expect("meta.lastModified le \"2011-05-13T04:42:34Z\"", 1);
	expect("title pr and userType eq \"Employee\"", 1);
	expect("title pr or userType eq \"Intern\"", 1);
	expect("schemas eq \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"", 1);
	expect("userType eq \"Employee\" and (emails co \"example.com\" or emails.value co \"example.org\")", 1);
	expect("userType ne \"Employee\" and not (emails co \"example.com\" or emails.value co \"example.org\")", 0);
	expect("userType eq \"Employee\" and (emails.type eq \"work\")", 1);
	expect("userType eq \"Employee\" and emails[type eq \"work\" and value co \"@example.com\"]", 1);
	expect("emails[type eq \"work\" and value co \"@example.com\"] or ims[type eq \"xmpp\" and value co \"@foo.com\"]", 1);
}

static void
test_semantics(void)
{
	/* caseExact from the registry */
	expect("USERNAME EQ \"BJENSEN@EXAMPLE.COM\"", 1);
	expect("externalId eq \"701984\"", 1);
	expect("id eq \"2819C223-7F76-453A-919D-413861904646\"", 0);
	expect("id eq \"2819c223-7f76-453a-919d-413861904646\"", 1);
	expect("meta.version eq \"W/\\\"A330BC54F0671C9\\\"\"", 0);
	expect("x509Certificates.value sw \"miid\"", 0);
	expect("x509Certificates.value sw \"MIID\"", 1);
	expect("emails.type eq \"WORK\"", 1);
	/* unknown attributes: string, case-insensitive, multi-valued when an array */
	expect("custom eq \"ALPHA\"", 1);
	expect("custom eq \"gamma\"", 0);
	expect("CUSTOM ew \"TA\"", 1);
	expect("score gt 12", 1);
	expect("score eq 12.50", 1);
	expect("score lt 1.25e1", 0);
	expect("flag eq false", 1);
	expect("flag ne true", 1);
	/* multi-valued: any value */
	expect("emails.value eq \"babs@jensen.org\"", 1);
	expect("emails ew \".ORG\"", 1);
	expect("emails.value ne \"babs@jensen.org\"", 1);
	expect("phoneNumbers.value eq \"555-555-5555\"", 1);
	/* value filter: one element satisfies everything */
	expect("emails[type eq \"work\" and value eq \"babs@jensen.org\"]", 0);
	expect("emails[type eq \"home\" and value eq \"babs@jensen.org\"]", 1);
	expect("emails[type eq \"home\" and primary eq true]", 0);
	expect("emails[primary eq true]", 1);
	expect("emails[not (primary pr)]", 1);
	expect("emails[type eq \"work\" or type eq \"other\"]", 1);
	expect("emails.type eq \"home\" and emails.primary eq true", 1);
	expect("name[givenName eq \"barbara\" and familyName sw \"J\"]", 1);
	expect("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager[value sw \"2611\"]", 1);
	/* extensions */
	expect("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"701984\"", 1);
	expect("urn:scim:schemas:extension:enterprise:1.0:costCenter eq \"4130\"", 1);
	expect("department eq \"tour operations\"", 1);
	expect("manager.value eq \"26118915-6090-4610-87e4-49d8ca9f808d\"", 1);
	expect("manager eq \"26118915-6090-4610-87E4-49d8ca9f808d\"", 1);
	expect("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName pr", 1);
	expect("urn:ietf:params:scim:schemas:extension:scim_provision:2.0:User:userType pr", 0);
	/* pr */
	expect("blank pr", 0);
	expect("empty pr", 0);
	expect("nothing pr", 0);
	expect("missing pr", 0);
	expect("name pr", 1);
	expect("emails pr", 1);
	expect("flag pr", 1);
	expect("nothing eq null", 1);
	expect("title eq null", 0);
	expect("title ne null", 1);
	expect("missing eq null", 1);
	/* ne and absent attributes: neither matches */
	expect("missing ne \"x\"", 0);
	expect("missing eq \"x\"", 0);
	expect("not (missing eq \"x\")", 1);
	/* dateTime by instant */
	expect("meta.created eq \"2010-01-23T05:56:22+01:00\"", 1);
	expect("meta.created eq \"2010-01-23T04:56:22.000Z\"", 1);
	expect("meta.created gt \"2010-01-23T04:56:21.999999999Z\"", 1);
	expect("meta.created lt \"2010-01-22T23:56:22-05:01\"", 1);
	expect("meta.lastModified gt \"2011-05-13\"", -1);
	/* password: returned never, never matches */
	expect("password eq \"t1meMa$heen\"", 0);
	expect("password pr", 0);
	expect("not (password pr)", 1);
	/* groups and other empty multi-valued attributes */
	expect("groups.value eq \"x\"", 0);
	/* sloppy values: "true" for a boolean */
	expect("active eq \"True\"", 1);
	expect("active ne true", 0);
	/* numbers against string attributes compare the text */
	expect("externalId eq 701984", 1);
	/* unicode case-insensitivity */
	expect("displayName eq \"BABS JENSEN\"", 1);
}

static void
test_errors(void)
{
	expect_error("active gt true", "operator gt is not supported for the boolean attribute \"active\" at position 0");
	expect_error("active co \"t\"", "operator co is not supported for the boolean attribute \"active\" at position 0");
	expect_error("emails.primary le false", "operator le is not supported for the boolean attribute \"emails.primary\" at position 0");
	expect_error("x509Certificates.value gt \"a\"", "operator gt is not supported for the binary attribute \"x509Certificates.value\" at position 0");
	expect_error("meta.created co \"2010\"", "operator co is not supported for the dateTime attribute \"meta.created\" at position 0");
	expect_error("meta.created gt \"yesterday\"", "\"yesterday\" is not a valid dateTime for \"meta.created\" (expected e.g. 2011-05-13T04:42:34Z) at position 0");
	expect_error("meta.created gt 5", "expected a dateTime string for \"meta.created\", not a number, at position 0");
	expect_error("userName eq true", "expected a string for the string attribute \"userName\", not true, at position 0");
	expect_error("active eq 1", "expected true or false for the boolean attribute \"active\", not a number, at position 0");
	expect_error("title gt null", "operator gt cannot compare \"title\" with null at position 0");
	expect_error("name eq \"x\"", "\"name\" is a complex attribute; compare one of its sub-attributes (e.g. \"name.formatted\") at position 0");
	expect_error("flag lt true", "operator lt cannot compare \"flag\" with a boolean at position 0");
	expect_error("userName[value eq \"x\"]", "a value filter needs a complex attribute; \"userName\" is a string at position 0");
	expect_error("emails[primary gt true]", "operator gt is not supported for the boolean attribute \"emails.primary\" at position 7");
	/* the whole tree is checked, even behind a short-circuit */
	expect_error("userName eq \"nobody\" and active gt true",
				 "operator gt is not supported for the boolean attribute \"active\" at position 25");
}

static void
test_element(void)
{
	ScimFilterError err;
	const char *f = "type eq \"WORK\" and value ew \"example.com\"";
	ScimFilterNode *node = scim_filter_parse(&arena, f, strlen(f), NULL, &err);
	const SjValue *emails = sj_object_get(resource, "emails", 6, false);

	ok(node && scim_filter_match_element(node, emails->u.arr.items[0], "User", "emails", &err) == 1,
	   "match_element: the work email", NULL);
	ok(node && scim_filter_match_element(node, emails->u.arr.items[1], "User", "emails", &err) == 0,
	   "match_element: not the home email", NULL);
	f = "primary gt true";
	node = scim_filter_parse(&arena, f, strlen(f), NULL, &err);
	ok(node && scim_filter_match_element(node, emails->u.arr.items[0], "User", "emails", &err) == -1,
	   "match_element: ordering on a boolean sub-attribute is invalid", err.message);
	f = "value eq \"x\"";
	node = scim_filter_parse(&arena, f, strlen(f), NULL, &err);
	ok(node && scim_filter_match_element(node, emails->u.arr.items[0], NULL, NULL, &err) == 0,
	   "match_element without a parent or resource type", NULL);
}

static void
test_datetime(void)
{
	ScimDateTime a,
				b;

	ok(scim_datetime_parse("1970-01-01T00:00:00Z", 20, &a) && a.seconds == 0 && a.nanos == 0,
	   "epoch", NULL);
	ok(scim_datetime_parse("2011-05-13T04:42:34Z", 20, &a) && a.seconds == 1305261754, "RFC example instant", NULL);
	ok(scim_datetime_parse("2011-05-13T06:42:34.5+02:00", 27, &b) && b.seconds == 1305261754 &&
	   b.nanos == 500000000, "offset and fraction", NULL);
	ok(scim_datetime_parse("1969-12-31T23:59:59.999999999Z", 30, &a) && a.seconds == -1 &&
	   a.nanos == 999999999, "before the epoch, nanoseconds", NULL);
	ok(scim_datetime_parse("2000-02-29T12:00:00", 19, &a), "leap day, no zone (UTC)", NULL);
	ok(!scim_datetime_parse("1900-02-29T12:00:00Z", 20, &a), "1900 is not a leap year", NULL);
	ok(!scim_datetime_parse("2011-13-01T00:00:00Z", 20, &a), "month 13", NULL);
	ok(!scim_datetime_parse("2011-05-13T24:00:00Z", 20, &a), "hour 24", NULL);
	ok(!scim_datetime_parse("2011-05-13T04:42:34+0200", 24, &a), "offset without colon", NULL);
	ok(!scim_datetime_parse("2011-05-13T04:42:34.Z", 21, &a), "empty fraction", NULL);
	ok(!scim_datetime_parse("2011-05-13", 10, &a), "date only", NULL);
	ok(!scim_datetime_parse("0000-01-01T00:00:00Z", 20, &a), "year 0", NULL);
	ok(scim_datetime_parse("9999-12-31T23:59:60Z", 20, &a) && scim_datetime_parse("10000-01-01", 0, &b) == false,
	   "leap second accepted; empty text refused", NULL);
	scim_datetime_parse("2011-05-13T04:42:34.1Z", 22, &a);
	scim_datetime_parse("2011-05-13T04:42:34.01Z", 23, &b);
	ok(scim_datetime_cmp(&a, &b) > 0 && scim_datetime_cmp(&b, &a) < 0 && scim_datetime_cmp(&a, &a) == 0,
	   "comparison by instant", NULL);
}

static void
test_casefold(void)
{
	ok(scim_text_casecmp("ABC", 3, "abc", 3) == 0, "ASCII", NULL);
	ok(scim_text_casecmp("\xc3\x89MILIE", 7, "\xc3\xa9milie", 7) == 0, "Latin-1 (E acute)", NULL);
	ok(scim_text_casecmp("\xd0\x9f\xd0\xa0\xd0\x98", 6, "\xd0\xbf\xd1\x80\xd0\xb8", 6) == 0, "Cyrillic", NULL);
	ok(scim_text_casecmp("\xce\xa3\xce\x91", 4, "\xcf\x83\xce\xb1", 4) == 0, "Greek", NULL);
	ok(scim_text_casecmp("\xc5\x81\xc3\xb3" "d\xc5\xba", 7, "\xc5\x82\xc3\xb3" "d\xc5\xba", 7) == 0, "Latin Extended-A (L stroke)", NULL);
	ok(scim_text_casecmp("a", 1, "b", 1) < 0 && scim_text_casecmp("B", 1, "a", 1) > 0, "order after folding", NULL);
	ok(scim_text_casecmp("ab", 2, "abc", 3) < 0, "prefix sorts first", NULL);
	ok(scim_text_casecmp("\xff", 1, "\xff", 1) == 0 && scim_text_casecmp("\xff", 1, "\xfe", 1) != 0,
	   "invalid UTF-8 compares bytewise", NULL);
}

int
main(void)
{
	char	   *results = NULL;
	size_t		results_len = 0;
	SjError		jerr;

	tap = open_memstream(&results, &results_len);
	if (tap == NULL)
	{
		perror("open_memstream");
		return 1;
	}
	scim_arena_init(&arena, &scim_malloc_allocator);
	resource = sj_parse(&arena, bjensen, strlen(bjensen), &jerr);
	if (resource == NULL)
	{
		fprintf(stderr, "test resource does not parse: %s\n", jerr.message);
		return 1;
	}
	ok(strcmp(scim_filter_resource_type_of(resource), "User") == 0, "resource type from meta", NULL);

	test_rfc_examples();
	test_semantics();
	test_errors();
	test_element();
	test_datetime();
	test_casefold();

	scim_arena_reset(&arena);
	fclose(tap);
	printf("1..%d\n", test_no);
	fputs(results, stdout);
	free(results);
	return failures ? 1 : 0;
}
