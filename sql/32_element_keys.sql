-- Search (#14): the element-key condition (src/element_keys.c) scim.filter_sql
-- puts in front of sw/ew on the values of emails and phoneNumbers and of co
-- with an '@' on emails (the domain of an address) changes no result: over
-- users whose values are made to break it (several '@', none, at either end,
-- longer than a key, multibyte characters at the clipping point, mixed case,
-- non-string values, more elements than keys are kept for, a lone object
-- instead of an array) every corpus filter gives the matcher's answer, by
-- the stored keys read from each row and through users_search_text_idx.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(20);

-- the keys, and the queries that find them
SELECT is(replace(scim.element_keys('{"emails":[{"value":"Ab@C.com","type":"Work"},{"value":"x@y@z"}],"phoneNumbers":[{"value":"+1 555"}]}')::text, E'\x1f', '|'),
	$$'Ea:work|c.com' 'ea:c.com' 'ea:y@z' 'ea:z' 'eb:ba' 'eb:x' 'eb:y@x' 'er:moc.c@ba' 'er:z@y@x' 'ev:ab@c.com' 'ev:x@y@z' 'pr:555 1+' 'pv:+1 555'$$,
	'keys: the value, reversed, the text after and before each @ (emails only), after each @ with the type, lower-cased');
SELECT is(array[scim.element_keys('{"emails":[{"value":"a@b","type":5}]}')::text, scim.element_keys(jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('value', 'a@b', 'type', E'w\x1fx'))))::text],
	array[$$'e!:'$$, $$'e!:'$$], 'a type the typed keys cannot spell (not a string, or holding their separator): the key every query accepts');
SELECT is(array[replace(scim.element_keys_query('emails', 'co', '@Acme', 'WORK')::text, E'\x1f', '|'),
				replace(scim.element_keys_query('emails', 'co', '@Acme', 'WORK', true)::text, E'\x1f', '|'),
				scim.element_keys_query('emails', 'co', 'x@acme', 'work')::text, scim.element_keys_query('emails', 'sw', 'x', 'work')::text,
				scim.element_keys_query('emails', 'sw', 'U4', exact => true)::text, scim.element_keys_query('emails', 'co', 'y@', exact => true)::text,
				scim.element_keys_query('emails', 'co', 'y@z', exact => true)::text, scim.element_keys_query('emails', 'eq', 'y@z', exact => true)::text,
				scim.element_keys_query('emails', 'sw', repeat('x', 200), exact => true)::text,
				replace(scim.element_keys_query('emails', 'ew', '@Acme', 'WORK', true)::text, E'\x1f', '|')],
	array[$$'Ea:work|acme':* | 'e!:'$$, $$'Ea:work|acme':*$$, NULL, NULL, $$'ev:u4':*$$, $$'eb:y':*$$, NULL, NULL, NULL, $$'Ea:work|acme'$$],
	'exact queries: typed for co and ew "@z" with a type, sw/ew, co with the @ at either end; none for co y@z, eq, a value that might be clipped');
SELECT is(scim.element_keys('{"emails":[{"value":5}],"phoneNumbers":{"value":"+1 555"}}')::text,
	$$'e!:' 'pr:555 1+' 'pv:+1 555'$$,
	'a non-string value gives its attribute the key every query accepts; a lone object is one element');
SELECT is(scim.element_keys(jsonb_build_object('emails', (SELECT jsonb_agg(jsonb_build_object('value', 'v' || i || '@x')) FROM generate_series(1, 65) i)))::text,
	$$'e!:'$$, 'more than 64 elements: the key every query accepts');
SELECT is(scim.element_keys('{"emails":[{"type":"work"},{"value":null},"a@b",[{"value":"c@d"}]]}')::text, '',
	'no keys for elements without a string "value" (as ->> ''value'' finds none)');
SELECT is(length(scim.element_keys(jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('value', repeat('@', 600)))))), 1,
	'a value of many @: the key every query accepts instead of hundreds of keys');
SELECT is(array[scim.element_keys_query('emails', 'co', 'U42@Acme')::text, scim.element_keys_query('emails', 'co', '@acme')::text,
				scim.element_keys_query('emails', 'co', 'x@')::text, scim.element_keys_query('emails', 'ew', 'it''s\x')::text,
				scim.element_keys_query('phoneNumbers', 'sw', '+1')::text],
	array[$$'ea:acme':* & 'eb:24u':* | 'e!:'$$, $$'ea:acme':* | 'e!:'$$, $$'eb:x':* | 'e!:'$$, $$'er:x\\s''ti':* | 'e!:'$$, $$'pv:+1':* | 'p!:'$$],
	'queries: prefixes, quoted, with the overflow key');
SELECT is(array[scim.element_keys_query('emails', 'co', 'acme'), scim.element_keys_query('emails', 'co', '@'),
				scim.element_keys_query('phoneNumbers', 'co', '5@5')], array[NULL, NULL, NULL]::tsquery[],
	'no key condition for co without @, for a lone @, for co on phoneNumbers');
SELECT throws_ok($$SELECT scim.element_keys_query('addresses', 'sw', 'x')$$, '22023', NULL, 'keys are kept for emails and phoneNumbers only');

DO $$
BEGIN
	PERFORM scim.create_workspace('keysgen');
	PERFORM scim.approve_domain('gen.example', 'keysgen');
END;
$$;
SET LOCAL session_replication_role = replica;
INSERT INTO scim.users (workspace, user_name, user_type, attributes)
SELECT 'keysgen', format(CASE WHEN i % 12 = 6 THEN 'objval%s@gen.example' ELSE 'user%s@gen.example' END, i), 'Regular',
	   jsonb_build_object(
		'emails', CASE i % 12
			WHEN 0 THEN jsonb_build_array(jsonb_build_object('value', format('u%s@gen.example', i), 'type', 'work'))
			WHEN 1 THEN jsonb_build_array(jsonb_build_object('value', format('U%s@ACME.Example.COM', i), 'type', 'Work'),
										  jsonb_build_object('value', format('alias%s@gen.example', i), 'type', 'home'))
			WHEN 2 THEN jsonb_build_array(jsonb_build_object('value', format('a%s@b@acme.example.com', i), 'type', 'work'))
			WHEN 3 THEN jsonb_build_array(jsonb_build_object('value', format('@lead%s', i)), jsonb_build_object('value', format('trail%s@', i)))
			WHEN 4 THEN jsonb_build_array(jsonb_build_object('value', 'no-at-' || i, 'type', 'work'))
			WHEN 5 THEN jsonb_build_array(jsonb_build_object('value', repeat('ä', 200 + i % 3) || '@' || repeat('ß', 140) || i, 'type', 'work'))
			WHEN 6 THEN jsonb_build_array(jsonb_build_object('value', i, 'type', 'work'), jsonb_build_object('value', jsonb_build_object('x', 'y@acme')))
			WHEN 7 THEN (SELECT jsonb_agg(jsonb_build_object('value', format('m%s.%s@acme.example.com', i, k), 'type', 'work')) FROM generate_series(1, 70) k)
			WHEN 8 THEN jsonb_build_object('value', format('Lone%s@Acme.Example.com', i), 'type', 'work')
			WHEN 9 THEN jsonb_build_array(jsonb_build_object('value', format('Σίσυφος%s@ÜNÏ.example', i), 'type', 'work'))
			WHEN 10 THEN jsonb_build_array(jsonb_build_object('value', format('x%s@acme.example.com.evil', i), 'type', 'work'), 'scalar@acme')
			ELSE jsonb_build_array(jsonb_build_object('value', format('t%s@acme.example.com', i), 'type', 7),
								   jsonb_build_object('value', format('s%s@acme.example.com', i), 'type', E'work\x1f'),
								   jsonb_build_object('value', format('n%s@acme.example.com', i), 'type', NULL))
			END,
		'phoneNumbers', CASE WHEN i % 3 = 0 THEN jsonb_build_array(jsonb_build_object('value', '+1 555 01' || i, 'type', 'mobile'))
							 WHEN i % 3 = 1 THEN jsonb_build_array(jsonb_build_object('value', 5550 + i, 'type', 'work')) END)
  FROM generate_series(1, 480) i;
RESET session_replication_role;
UPDATE scim.users SET attributes = jsonb_set(attributes, '{emails,0,value}', '"Moved@Acme.Example.com"')
 WHERE workspace = 'keysgen' AND user_name IN ('user12@gen.example', 'user13@gen.example');
ANALYZE scim.users;
SELECT is(count(*)::int, 0, 'the stored keys are those of the attributes, also after an UPDATE (a generated column)')
  FROM scim.users u WHERE u.workspace = 'keysgen' AND u.element_keys IS DISTINCT FROM scim.element_keys(u.attributes);

-- Users whose "value" is a JSON object (objval*) are compared between the
-- two pushdowns only: the pushdown compares such a value by its JSON text,
-- the matcher never matches it (a difference older than the keys, which
-- give such an attribute the key every query accepts and so change nothing).
CREATE FUNCTION pg_temp.sql_ids(f text, with_objval boolean DEFAULT false) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
	r text[];
BEGIN
	-- the workspace as an expression, so that no btree index can serve it and
	-- (with seqscan and indexscan off below) users_search_text_idx must
	EXECUTE format('SELECT coalesce(array_agg(u.user_name ORDER BY u.user_name), ''{}'') FROM scim.users u WHERE u.workspace || '''' = $1 AND ($2 OR u.user_name NOT LIKE ''objval%%'') AND (%s)',
				   scim.filter_sql(f)) INTO r USING 'keysgen', with_objval;
	RETURN r;
END;
$$;
CREATE FUNCTION pg_temp.match_ids(f text) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(u.user_name ORDER BY u.user_name), '{}')
	  FROM scim.users u
	 WHERE u.workspace = 'keysgen' AND u.user_name NOT LIKE 'objval%' AND scim.filter_match(f, scim.user_resource(u))
$$;

CREATE TEMP TABLE corpus (f text) ON COMMIT DROP;
INSERT INTO corpus (f) VALUES
	('emails.value co "@acme.example.com"'), ('emails co "@ACME.example"'), ('emails.value co "1@acme"'), ('emails.value co "@b@acme"'),
	('emails.value co "b@"'), ('emails.value co "@lead1"'), ('emails.value co "1@"'), ('emails.value co "l1@"'), ('emails.value co "@"'),
	('emails.value sw "u1"'), ('emails.value sw "U12@GEN"'), ('emails.value sw "@lead"'), ('emails.value sw "lone"'), ('emails.value sw "no-at-1"'),
	('emails.value ew "@acme.example.com"'), ('emails.value ew ".EVIL"'), ('emails.value ew "@"'), ('emails ew "acme.example.com"'),
	('emails.value ew "@gen.example"'), ('emails.value sw "σίσυφος2"'), ('emails.value co "@ünï"'), ('emails.value ew "ÜNÏ.EXAMPLE"'),
	('emails.value sw "' || repeat('Ä', 200) || '"'), ('emails.value sw "' || repeat('ä', 201) || '@"'),
	('emails.value co "' || repeat('ä', 130) || '@' || repeat('ß', 140) || '5"'), ('emails.value co "@' || repeat('ß', 140) || '"'),
	('emails.value ew "' || repeat('ß', 140) || '17"'), ('emails.value ew "ä@' || repeat('ß', 140) || '17"'),
	('emails.value co "@acme"'), ('emails.value sw "6"'), ('emails.value ew "18"'), ('emails.value co "y@acme"'),
	('emails.value sw "m7.3"'), ('emails.value co ".69@acme"'), ('emails.value sw "scalar"'), ('emails.value co "scalar@"'),
	('emails[type eq "work" and value co "@acme.example.com"]'), ('emails[type eq "work" and value co "@acme.example.com"] and active eq true'),
	('emails[type eq "home" and value sw "alias"]'), ('emails[value ew "@gen.example" and type eq "work"]'),
	('emails[value co "@acme" or value sw "u1"]'), ('emails[not (value co "@acme")]'), ('not (emails.value co "@acme")'),
	('emails.value co "@acme" or emails.value sw "no-at"'), ('emails.value co "@acme" and emails.value ew ".com"'),
	('phoneNumbers.value sw "+1 555 01"'), ('phoneNumbers.value ew "12"'), ('phoneNumbers.value sw "555"'),
	('phoneNumbers[type eq "mobile" and value sw "+1 555 013"]'), ('phoneNumbers.value ew "0"'),
	('emails[value co "@acme" and type eq "WORK"]'), ('emails[type eq "home" and value co "@gen"]'), ('emails[type eq "work" and value co "@"]'),
	('emails[type eq "work" and value co "x1@acme"]'), ('emails[type eq "Work" and value co "@ünï"]'), ('emails[type eq "7" and value co "@acme"]'),
	('emails[type eq "work" and value co "@acme.example.com" and primary eq true]'), ('emails[type eq "work" and value sw "u1"]'),
	('emails[value ew ".com" and type eq "work"]'), ('not (emails[type eq "work" and value co "@acme"])'),
	('emails[type eq "work" and value ew "@acme.example.com"]'), ('emails[value ew "@ACME.example.com" and type eq "WORK"]'),
	('emails[type eq "work" and value ew "@b@acme.example.com"]'), ('emails[type eq "work" and value ew "@acme"]'),
	('emails[type eq "home" and value ew "@gen.example"]');
SELECT cmp_ok(count(*)::int, '>=', 20, 'at least 20 corpus filters are decided by the keys where they are complete')
  FROM corpus WHERE scim.filter_sql(f) LIKE '%, true)%';

SELECT cmp_ok(count(*)::int, '>=', 45, 'a corpus of at least 45 filters') FROM corpus;
SELECT is(array_agg(f ORDER BY f), NULL, 'every corpus filter but those of a lone @, or not(...) around it, carries the element-key condition')
  FROM corpus WHERE scim.filter_sql(f) NOT LIKE '%u.element_keys OPERATOR%'
   AND f NOT IN ('emails.value co "@"', 'emails.value ew "@"', 'emails[not (value co "@acme")]', 'emails[value co "@acme" or value sw "u1"]',
				 'emails[type eq "work" and value co "@"]');
SELECT is(array_agg(f ORDER BY f), NULL, 'pushdown with the element-key condition = the matcher, on every corpus filter')
  FROM corpus WHERE pg_temp.sql_ids(f) IS DISTINCT FROM pg_temp.match_ids(f);
SELECT cmp_ok(count(DISTINCT pg_temp.match_ids(f))::int, '>=', 30, 'the corpus discriminates (at least 30 distinct result sets)')
  FROM corpus;

-- the same through the index (GIN's prefix ranges, not the function on each row)
SET LOCAL enable_seqscan = off;
SET LOCAL enable_indexscan = off;
CREATE FUNCTION pg_temp.plan(f text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text := '';
	l text;
BEGIN
	FOR l IN EXECUTE format('EXPLAIN (COSTS OFF) SELECT u.user_name FROM scim.users u WHERE u.workspace || '''' = %L AND (%s)',
							'keysgen', scim.filter_sql(f)) LOOP
		r := r || l || E'\n';
	END LOOP;
	RETURN r;
END;
$$;
SELECT is(array_agg(f ORDER BY f), NULL, 'each filter with the condition (but under not) runs through users_search_text_idx')
  FROM corpus WHERE f NOT LIKE 'not (%' AND scim.filter_sql(f) LIKE '%u.element_keys OPERATOR%' AND pg_temp.plan(f) NOT LIKE '%Bitmap Index Scan on users_search_text_idx%';
SELECT is(array_agg(f ORDER BY f), NULL, 'and through users_search_text_idx the same answers')
  FROM corpus WHERE pg_temp.sql_ids(f) IS DISTINCT FROM pg_temp.match_ids(f);
RESET enable_seqscan;
RESET enable_indexscan;

CREATE TEMP TABLE with_keys ON COMMIT DROP AS SELECT f, pg_temp.sql_ids(f, true) AS ids FROM corpus;
SET LOCAL scim_provision.search_index = off;
SELECT is(count(*)::int, 0, 'scim_provision.search_index = off: no element-key condition either')
  FROM corpus WHERE scim.filter_sql(f) LIKE '%element_keys%';
SELECT is(array_agg(f ORDER BY f), NULL, 'and the same answers as with it, objval users included')
  FROM with_keys WHERE pg_temp.sql_ids(f, true) IS DISTINCT FROM ids;
RESET scim_provision.search_index;

SELECT * FROM finish();
ROLLBACK;
