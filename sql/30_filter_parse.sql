-- Filter engine: scim.parse_filter (RFC 7644 section 3.4.2.2): every RFC
-- example, precedence, escapes, case rules, each error class, limits.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(65);

-- ---- every example filter of RFC 7644 section 3.4.2.2 ----------------------
SELECT is(scim.parse_filter('userName eq "bjensen"'),
	'{"op":"eq","attr":"userName","value":"bjensen"}', 'RFC: userName eq');
SELECT is(scim.parse_filter('name.familyName co "O''Malley"'),
	'{"op":"co","attr":"name.familyName","value":"O''Malley"}', 'RFC: sub-attribute co with a quote');
SELECT is(scim.parse_filter('userName sw "J"'),
	'{"op":"sw","attr":"userName","value":"J"}', 'RFC: sw');
SELECT is(scim.parse_filter('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"'),
	'{"op":"sw","schema":"urn:ietf:params:scim:schemas:core:2.0:User","attr":"userName","value":"J"}',
	'RFC: schema URN prefix');
SELECT is(scim.parse_filter('title pr'), '{"op":"pr","attr":"title"}', 'RFC: pr');
SELECT is(scim.parse_filter('meta.lastModified gt "2011-05-13T04:42:34Z"'),
	'{"op":"gt","attr":"meta.lastModified","value":"2011-05-13T04:42:34Z"}', 'RFC: gt');
SELECT is(scim.parse_filter('meta.lastModified ge "2011-05-13T04:42:34Z"'),
	'{"op":"ge","attr":"meta.lastModified","value":"2011-05-13T04:42:34Z"}', 'RFC: ge');
SELECT is(scim.parse_filter('meta.lastModified lt "2011-05-13T04:42:34Z"'),
	'{"op":"lt","attr":"meta.lastModified","value":"2011-05-13T04:42:34Z"}', 'RFC: lt');
SELECT is(scim.parse_filter('meta.lastModified le "2011-05-13T04:42:34Z"'),
	'{"op":"le","attr":"meta.lastModified","value":"2011-05-13T04:42:34Z"}', 'RFC: le');
SELECT is(scim.parse_filter('title pr and userType eq "Employee"'),
	'{"op":"and","args":[{"op":"pr","attr":"title"},{"op":"eq","attr":"userType","value":"Employee"}]}', 'RFC: and');
SELECT is(scim.parse_filter('title pr or userType eq "Intern"'),
	'{"op":"or","args":[{"op":"pr","attr":"title"},{"op":"eq","attr":"userType","value":"Intern"}]}', 'RFC: or');
SELECT is(scim.parse_filter('schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"'),
	'{"op":"eq","attr":"schemas","value":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}', 'RFC: schemas eq');
SELECT is(scim.parse_filter('userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")'),
	'{"op":"and","args":[{"op":"eq","attr":"userType","value":"Employee"},
	  {"op":"or","args":[{"op":"co","attr":"emails","value":"example.com"},{"op":"co","attr":"emails.value","value":"example.org"}]}]}',
	'RFC: and with a parenthesised or');
SELECT is(scim.parse_filter('userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")'),
	'{"op":"and","args":[{"op":"ne","attr":"userType","value":"Employee"},
	  {"op":"not","arg":{"op":"or","args":[{"op":"co","attr":"emails","value":"example.com"},{"op":"co","attr":"emails.value","value":"example.org"}]}}]}',
	'RFC: not');
SELECT is(scim.parse_filter('userType eq "Employee" and (emails.type eq "work")'),
	'{"op":"and","args":[{"op":"eq","attr":"userType","value":"Employee"},{"op":"eq","attr":"emails.type","value":"work"}]}',
	'RFC: parenthesised single comparison');
SELECT is(scim.parse_filter('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]'),
	'{"op":"and","args":[{"op":"eq","attr":"userType","value":"Employee"},
	  {"op":"valuePath","attr":"emails","filter":{"op":"and","args":[{"op":"eq","attr":"type","value":"work"},{"op":"co","attr":"value","value":"@example.com"}]}}]}',
	'RFC: value filter');
SELECT is(scim.parse_filter('emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]'),
	'{"op":"or","args":[
	  {"op":"valuePath","attr":"emails","filter":{"op":"and","args":[{"op":"eq","attr":"type","value":"work"},{"op":"co","attr":"value","value":"@example.com"}]}},
	  {"op":"valuePath","attr":"ims","filter":{"op":"and","args":[{"op":"eq","attr":"type","value":"xmpp"},{"op":"co","attr":"value","value":"@foo.com"}]}}]}',
	'RFC: two value filters');
SELECT is(scim.parse_filter('ew pr and ne ne "x"'),
	'{"op":"and","args":[{"op":"pr","attr":"ew"},{"op":"ne","attr":"ne","value":"x"}]}',
	'operator words are attribute names where the grammar expects one');

-- ---- precedence -------------------------------------------------------------
SELECT is(scim.parse_filter('a pr or b pr and c pr'),
	'{"op":"or","args":[{"op":"pr","attr":"a"},{"op":"and","args":[{"op":"pr","attr":"b"},{"op":"pr","attr":"c"}]}]}',
	'and binds tighter than or (right)');
SELECT is(scim.parse_filter('a pr and b pr or c pr'),
	'{"op":"or","args":[{"op":"and","args":[{"op":"pr","attr":"a"},{"op":"pr","attr":"b"}]},{"op":"pr","attr":"c"}]}',
	'and binds tighter than or (left)');
SELECT is(scim.parse_filter('a pr and (b pr or c pr)'),
	'{"op":"and","args":[{"op":"pr","attr":"a"},{"op":"or","args":[{"op":"pr","attr":"b"},{"op":"pr","attr":"c"}]}]}',
	'parentheses override precedence');
SELECT is(scim.parse_filter('((a pr) and (b pr)) and c pr'),
	scim.parse_filter('a pr and b pr and c pr'), 'the canonical AST flattens chains and drops parentheses');
SELECT is(scim.parse_filter('not (a pr) or b pr'),
	'{"op":"or","args":[{"op":"not","arg":{"op":"pr","attr":"a"}},{"op":"pr","attr":"b"}]}',
	'not applies to its parenthesised operand only');

-- ---- case rules -------------------------------------------------------------
SELECT is(scim.parse_filter('userName EQ "X" AnD Title Pr oR NOT (a SW "y")'),
	'{"op":"or","args":[{"op":"and","args":[{"op":"eq","attr":"userName","value":"X"},{"op":"pr","attr":"Title"}]},
	  {"op":"not","arg":{"op":"sw","attr":"a","value":"y"}}]}',
	'operators and keywords are case-insensitive; names keep their case');
SELECT is(scim.parse_filter('active eq TRUE or x eq False or y eq NULL'),
	'{"op":"or","args":[{"op":"eq","attr":"active","value":true},{"op":"eq","attr":"x","value":false},{"op":"eq","attr":"y","value":null}]}',
	'true, false and null are case-insensitive');

-- ---- values and escapes -----------------------------------------------------
SELECT is(scim.parse_filter(E'x eq "\\" \\\\ \\/ \\b \\f \\n \\r \\t"')->'value',
	to_jsonb(E'" \\ / \b \f \n \r \t'::text), 'every JSON escape');
SELECT is(scim.parse_filter(E'x eq "\\u00e9\\u20AC\\ud83d\\ude00"')->>'value',
	E'\u00e9\u20ac\U0001F600', '\u escapes, including a surrogate pair');
SELECT is(scim.parse_filter(E'x eq "\u00e9\u20ac\U0001F600 \u65e5\u672c"')->>'value',
	E'\u00e9\u20ac\U0001F600 \u65e5\u672c', 'raw UTF-8 in strings');
SELECT is(scim.parse_filter('x eq 42')->'value', '42', 'integer');
SELECT is(scim.parse_filter('x gt -3.25')->'value', '-3.25', 'decimal');
SELECT is(scim.parse_filter('x lt 1.5E+10')->'value', '15000000000', 'exponent');
SELECT is(scim.parse_filter('x eq ""')->'value', '""', 'empty string');

-- ---- errors: SQLSTATE 22023, "invalidFilter: ", position and expectation ---
SELECT throws_ok($$SELECT scim.parse_filter('userName xx "bob"')$$, '22023',
	'invalidFilter: expected a comparison operator after "userName" at position 9', 'unknown operator');
SELECT throws_ok($$SELECT scim.parse_filter('userName')$$, '22023',
	'invalidFilter: expected a comparison operator after "userName" at end of filter, position 8', 'missing operator');
SELECT throws_ok($$SELECT scim.parse_filter('userName eq')$$, '22023',
	'invalidFilter: expected a value (a string, number, true, false or null) after "eq" at end of filter, position 11', 'missing value');
SELECT throws_ok($$SELECT scim.parse_filter('userName eq bob')$$, '22023',
	'invalidFilter: expected a value (a string, number, true, false or null) after "eq" at position 12; found "bob"', 'unquoted value');
SELECT throws_ok($$SELECT scim.parse_filter('')$$, '22023', 'invalidFilter: the filter is empty', 'empty filter');
SELECT throws_ok($$SELECT scim.parse_filter('userName eq "abc')$$, '22023',
	'invalidFilter: unterminated string starting at position 12', 'unterminated string');
SELECT throws_ok($$SELECT scim.parse_filter('(a pr')$$, '22023',
	'invalidFilter: expected ")" at end of filter, position 5 (to close the "(" at position 0)', 'unclosed parenthesis');
SELECT throws_ok($$SELECT scim.parse_filter('a pr)')$$, '22023',
	'invalidFilter: unmatched ")" at position 4', 'unmatched parenthesis');
SELECT throws_ok($$SELECT scim.parse_filter('a pr b pr')$$, '22023',
	'invalidFilter: expected "and", "or" or the end of the filter at position 5', 'missing logical operator');
SELECT throws_ok($$SELECT scim.parse_filter('a pr and')$$, '22023',
	'invalidFilter: expected an attribute name, "(" or "not" after "and" at end of filter, position 8', 'dangling and');
SELECT throws_ok($$SELECT scim.parse_filter('not a pr')$$, '22023',
	'invalidFilter: expected "(" after "not" at position 4', 'not without parentheses');
SELECT throws_ok($$SELECT scim.parse_filter(E'x eq "\\x"')$$, '22023',
	'invalidFilter: invalid escape sequence (backslash followed by "x") in string at position 6', 'bad escape');
SELECT throws_ok($$SELECT scim.parse_filter(E'x eq "\\ud800"')$$, '22023',
	'invalidFilter: high surrogate \uD800 in string at position 6 is not followed by a low surrogate escape', 'lone high surrogate');
SELECT throws_ok($$SELECT scim.parse_filter(E'x eq "\\udc00"')$$, '22023',
	'invalidFilter: unpaired low surrogate \uDC00 in string at position 6', 'lone low surrogate');
SELECT throws_ok($$SELECT scim.parse_filter(E'x eq "\\u0000"')$$, '22023',
	'invalidFilter: \u0000 is not allowed in a filter string (position 6)', 'NUL escape');
SELECT throws_ok($$SELECT scim.parse_filter(E'x eq "a\tb"')$$, '22023',
	'invalidFilter: unescaped control character U+0009 in string at position 7', 'raw control character');
SELECT throws_ok($$SELECT scim.parse_filter('x eq 007')$$, '22023',
	'invalidFilter: invalid number "007" at position 5', 'leading zeros');
SELECT throws_ok($$SELECT scim.parse_filter('x eq 1.e5')$$, '22023',
	'invalidFilter: invalid number "1.e5" at position 5', 'malformed decimal');
SELECT throws_ok($$SELECT scim.parse_filter('x eq ''single''')$$, '22023',
	'invalidFilter: unexpected character "''" at position 5', 'single quotes are not strings');
SELECT throws_ok($$SELECT scim.parse_filter('a.b.c pr')$$, '22023',
	'invalidFilter: attribute path "a.b.c" has more than one sub-attribute at position 0', 'two sub-attributes');
SELECT throws_ok($$SELECT scim.parse_filter('urn:x:y: pr')$$, '22023',
	'invalidFilter: expected an attribute name after the schema URN in "urn:x:y:" at position 0', 'URN without attribute');
SELECT throws_ok($$SELECT scim.parse_filter('emails[type[x pr]]')$$, '22023',
	'invalidFilter: value filters cannot be nested ("[" at position 11)', 'nested value filter');
SELECT is(scim.parse_filter('emails[type eq "work"].value pr'), scim.parse_filter('emails[type eq "work" and value pr]'),
	'Entra ID''s sub-attribute comparison after a value filter is the conjunction inside it');
SELECT throws_ok($$SELECT scim.parse_filter('emails[type eq "work"].value')$$, '22023',
	'invalidFilter: expected a comparison operator after "value" at end of filter, position 28',
	'a sub-attribute after a value filter needs a comparison');
SELECT throws_ok($$SELECT scim.parse_filter('emails[type eq "work"')$$, '22023',
	'invalidFilter: expected "]" at end of filter, position 21 (to close the "[" at position 6)', 'unclosed bracket');
SELECT throws_ok($$SELECT scim.parse_filter(E'\u00e9 pr')$$, '22023',
	'invalidFilter: unexpected character U+00E9 at position 0', 'non-ASCII attribute name');

-- ---- limits (GUCs) ----------------------------------------------------------
SELECT throws_ok($$SELECT scim.parse_filter(repeat('(', 65) || 'a pr' || repeat(')', 65))$$, '22023',
	'invalidFilter: filter is nested more than 64 levels deep at position 64', 'default depth limit (64)');
SELECT lives_ok($$SELECT scim.parse_filter(repeat('(', 64) || 'a pr' || repeat(')', 64))$$,
	'nesting at the depth limit is accepted');
SELECT throws_ok($$SELECT scim.parse_filter(repeat('(', 1000000))$$, '22023',
	'invalidFilter: the filter is 1000000 bytes long; the limit is 8192 bytes', 'default length limit (8192)');
SET LOCAL scim_provision.filter_max_depth = 3;
SELECT throws_ok($$SELECT scim.parse_filter('not (emails[not ((x pr))])')$$, '22023',
	'invalidFilter: filter is nested more than 3 levels deep at position 17', 'not, value filters and parentheses count');
SET LOCAL scim_provision.filter_max_length = 64;
SELECT throws_ok($$SELECT scim.parse_filter(repeat('a pr or ', 8) || 'a pr')$$, '22023',
	'invalidFilter: the filter is 68 bytes long; the limit is 64 bytes', 'length limit from the GUC');
SELECT is(jsonb_array_length(scim.parse_filter(left(repeat('a pr or ', 8), -4))->'args'), 8,
	'a filter within the limits parses');
RESET scim_provision.filter_max_length;
RESET scim_provision.filter_max_depth;
SELECT is((SELECT count(*) FROM jsonb_array_elements(
		scim.parse_filter(left(repeat('a pr or ', 1000), -4))->'args'))::int, 1000,
	'a 1000-term or chain flattens into one args array');

SELECT * FROM finish();
ROLLBACK;
