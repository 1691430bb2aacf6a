-- Filter engine: scim.filter_match over SCIM resources (RFC semantics).
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(58);

-- RFC 7643 section 8.2 (trimmed) with the enterprise extension
CREATE FUNCTION pg_temp.bjensen() RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User",
	                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	  "id":"2819c223-7f76-453a-919d-413861904646","externalId":"701984",
	  "userName":"bjensen@example.com",
	  "name":{"formatted":"Ms. Barbara J Jensen, III","familyName":"Jensen","givenName":"Barbara"},
	  "displayName":"Babs Jensen","nickName":"Babs","title":"Tour Guide","userType":"Employee",
	  "active":true,"password":"t1meMa$heen",
	  "emails":[{"value":"bjensen@example.com","type":"work","primary":true},
	            {"value":"babs@jensen.org","type":"home"}],
	  "ims":[{"value":"someaimhandle","type":"aim"}],
	  "x509Certificates":[{"value":"MIIDQzCCAqygAwIBAgICEAAwDQYJ"}],
	  "meta":{"resourceType":"User","created":"2010-01-23T04:56:22Z",
	          "lastModified":"2011-05-13T04:42:34Z","version":"W/\"a330bc54f0671c9\""},
	  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{
	      "employeeNumber":"701984","department":"Tour Operations",
	      "manager":{"value":"26118915-6090-4610-87e4-49d8ca9f808d","displayName":"John Smith"}},
	  "custom":["Alpha","beta"],"score":12.5,"blank":"","empty":[],"nothing":null}'::jsonb
$$;
CREATE FUNCTION pg_temp.m(f text) RETURNS boolean LANGUAGE sql AS $$
	SELECT scim.filter_match(f, pg_temp.bjensen())
$$;

-- ---- the RFC examples against the RFC user ---------------------------------
SELECT ok(pg_temp.m('userName eq "bjensen@example.com"'), 'userName eq');
SELECT ok(NOT pg_temp.m('name.familyName co "O''Malley"'), 'name.familyName co: no match');
SELECT ok(pg_temp.m('name.familyName co "ENS"'), 'name.familyName co, case-insensitive');
SELECT ok(NOT pg_temp.m('userName sw "J"'), 'userName sw J: no match');
SELECT ok(pg_temp.m('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "BJ"'), 'URN-qualified sw');
SELECT ok(pg_temp.m('title pr'), 'title pr');
SELECT ok(NOT pg_temp.m('meta.lastModified gt "2011-05-13T04:42:34Z"'), 'lastModified gt the same instant');
SELECT ok(pg_temp.m('meta.lastModified ge "2011-05-13T04:42:34Z"'), 'lastModified ge');
SELECT ok(NOT pg_temp.m('meta.lastModified lt "2011-05-13T04:42:34Z"'), 'lastModified lt');
SELECT ok(pg_temp.m('meta.lastModified le "2011-05-13T04:42:34Z"'), 'lastModified le');
SELECT ok(pg_temp.m('title pr and userType eq "Employee"'), 'and');
SELECT ok(pg_temp.m('title pr or userType eq "Intern"'), 'or');
SELECT ok(pg_temp.m('schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"'), 'schemas eq');
SELECT ok(pg_temp.m('userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")'), 'and (or)');
SELECT ok(NOT pg_temp.m('userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")'), 'and not (or)');
SELECT ok(pg_temp.m('userType eq "Employee" and (emails.type eq "work")'), 'emails.type eq');
SELECT ok(pg_temp.m('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]'), 'value filter');
SELECT ok(pg_temp.m('emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]'), 'two value filters');

-- ---- case rules from the registry --------------------------------------------
SELECT ok(pg_temp.m('USERNAME eq "BJENSEN@EXAMPLE.COM"'), 'userName is case-insensitive, names too');
SELECT ok(NOT pg_temp.m('externalId eq "701984 "'), 'externalId is compared exactly');
SELECT ok(NOT pg_temp.m('id eq "2819C223-7F76-453A-919D-413861904646"'), 'id is caseExact');
SELECT ok(NOT pg_temp.m('x509Certificates.value sw "miid"'), 'binary values are caseExact');
SELECT ok(pg_temp.m('custom eq "ALPHA"'), 'unknown attribute: case-insensitive string');
SELECT ok(pg_temp.m('custom ew "TA"'), 'unknown array attribute is multi-valued');
SELECT ok(pg_temp.m('score ge 12.50'), 'unknown number: numeric comparison');

-- ---- multi-valued and value filters ------------------------------------------
SELECT ok(pg_temp.m('emails.value eq "babs@jensen.org"'), 'any value of a multi-valued attribute');
SELECT ok(pg_temp.m('emails ew ".ORG"'), 'multi-valued complex without sub-attribute compares value');
SELECT ok(NOT pg_temp.m('emails[type eq "work" and value eq "babs@jensen.org"]'), 'one element must satisfy the whole value filter');
SELECT ok(pg_temp.m('emails[type eq "home" and value eq "babs@jensen.org"]'), 'the home element satisfies it');
SELECT ok(pg_temp.m('emails.type eq "home" and emails.primary eq true'), 'without brackets, different elements may match');
SELECT ok(pg_temp.m('name[givenName eq "barbara" and familyName sw "j"]'), 'value filter on a single complex attribute');

-- ---- extensions ---------------------------------------------------------------
SELECT ok(pg_temp.m('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"'), 'enterprise attribute');
SELECT ok(pg_temp.m('urn:scim:schemas:extension:enterprise:1.0:department eq "tour operations"'), 'SCIM 1.1 enterprise URN alias');
SELECT ok(pg_temp.m('manager eq "26118915-6090-4610-87E4-49D8CA9F808D"'), 'complex attribute with a value sub-attribute');
SELECT ok(pg_temp.m('department sw "Tour"'), 'unqualified extension attribute');

-- ---- pr, null, absent ------------------------------------------------------------
SELECT ok(NOT pg_temp.m('blank pr'), 'pr is false for ""');
SELECT ok(NOT pg_temp.m('empty pr'), 'pr is false for []');
SELECT ok(NOT pg_temp.m('nothing pr'), 'pr is false for null');
SELECT ok(NOT pg_temp.m('missing pr'), 'pr is false for an absent attribute');
SELECT ok(pg_temp.m('nothing eq null') AND pg_temp.m('missing eq null') AND NOT pg_temp.m('title eq null'), 'eq null means absent');
SELECT ok(NOT pg_temp.m('missing ne "x"') AND pg_temp.m('not (missing eq "x")'), 'an absent attribute matches neither eq nor ne');
SELECT ok(NOT pg_temp.m('password eq "t1meMa$heen"') AND NOT pg_temp.m('password pr'), 'password (returned never) never matches');

-- ---- dateTime by instant -----------------------------------------------------------
SELECT ok(pg_temp.m('meta.created eq "2010-01-23T05:56:22+01:00"'), 'same instant in another zone');
SELECT ok(pg_temp.m('meta.created gt "2010-01-23T04:56:21.999999Z"'), 'fractional seconds');
SELECT ok(pg_temp.m('meta.created lt "2010-01-22T23:56:22-05:01"'), 'negative offset');

-- ---- other resources ---------------------------------------------------------------
SELECT ok(scim.filter_match('members[value eq "2819c223-7f76-453a-919d-413861904646"]',
	'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Tour Guides",
	  "members":[{"value":"2819c223-7f76-453a-919d-413861904646","type":"User"}]}'), 'a Group (from its schemas)');
SELECT ok(NOT scim.filter_match('externalId eq "A"', '{"externalId":"a"}'), 'a resource without schemas is taken as a User');
SELECT ok(scim.filter_match('a.b eq 1', '{"a":[{"b":1},{"b":2}]}'), 'unknown multi-valued complex attribute');
SELECT is(scim.filter_match('userName pr', NULL), NULL, 'STRICT');

-- ---- invalidFilter ------------------------------------------------------------------
SELECT throws_ok($$SELECT pg_temp.m('active gt true')$$, '22023',
	'invalidFilter: operator gt is not supported for the boolean attribute "active" at position 0', 'ordering on a boolean');
SELECT throws_ok($$SELECT pg_temp.m('emails.primary le false')$$, '22023',
	'invalidFilter: operator le is not supported for the boolean attribute "emails.primary" at position 0', 'ordering on a boolean sub-attribute');
SELECT throws_ok($$SELECT pg_temp.m('x509Certificates.value gt "a"')$$, '22023',
	'invalidFilter: operator gt is not supported for the binary attribute "x509Certificates.value" at position 0', 'ordering on binary');
SELECT throws_ok($$SELECT pg_temp.m('meta.created co "2010"')$$, '22023',
	'invalidFilter: operator co is not supported for the dateTime attribute "meta.created" at position 0', 'co on a dateTime');
SELECT throws_ok($$SELECT pg_temp.m('meta.created gt "last week"')$$, '22023',
	'invalidFilter: "last week" is not a valid dateTime for "meta.created" (expected e.g. 2011-05-13T04:42:34Z) at position 0', 'bad dateTime');
SELECT throws_ok($$SELECT pg_temp.m('name eq "Barbara"')$$, '22023',
	'invalidFilter: "name" is a complex attribute; compare one of its sub-attributes (e.g. "name.formatted") at position 0', 'complex without sub-attribute');
SELECT throws_ok($$SELECT pg_temp.m('userName eq "nobody" and active lt true')$$, '22023',
	'invalidFilter: operator lt is not supported for the boolean attribute "active" at position 25', 'the whole filter is checked, not just what is evaluated');
SELECT throws_ok($$SELECT pg_temp.m('flag gt false')$$, '22023',
	'invalidFilter: operator gt cannot compare "flag" with a boolean at position 0', 'ordering with a boolean value');
SELECT throws_ok($$SELECT pg_temp.m('userName eq "x" or')$$, '22023',
	'invalidFilter: expected an attribute name, "(" or "not" after "or" at end of filter, position 18', 'syntax errors too');

SELECT * FROM finish();
ROLLBACK;
