-- Search (#14): the search-text condition scim.filter_sql puts in front of
-- co/sw/ew on the jsonb names and on the elements of emails, phoneNumbers
-- and addresses (src/search_text.c) changes no result: over generated users
-- (several elements, primary flags, missing and null values, mixed case,
-- unicode) every corpus filter gives the matcher's answer, with the
-- condition (scim_provision.search_index on) and without it.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(9);

DO $$
BEGIN
	PERFORM scim.create_workspace('searchgen');
	PERFORM scim.approve_domain('gen.example', 'searchgen');
END;
$$;
-- written as the write path would (the email column mirrors the primary
-- email, as it renders); the domain rules are not what is tested here
SET LOCAL session_replication_role = replica;
INSERT INTO scim.users (workspace, user_name, given_name, family_name, display_name, user_type, active, attributes)
SELECT 'searchgen', format('user%s@gen.example', i),
	   (ARRAY['Ana', 'ÄRGER', 'Straße', 'Σίσυφος', 'O''Brien', NULL])[1 + i % 6] || CASE WHEN i % 4 = 0 THEN i::text ELSE '' END,
	   'Fam' || (i % 37),
	   CASE WHEN i % 5 <> 0 THEN 'Ana Display ' || i END,
	   'Regular', i % 9 <> 0,
	   jsonb_strip_nulls(jsonb_build_object(
		'emails', CASE i % 6
			WHEN 0 THEN jsonb_build_array(jsonb_build_object('value', format('u%s@gen.example', i), 'type', 'work', 'primary', true))
			WHEN 1 THEN jsonb_build_array(jsonb_build_object('value', format('u%s@gen.example', i), 'type', 'work', 'primary', true),
										  jsonb_build_object('value', format('U%s@ACME.Example.COM', i), 'type', 'work'))
			WHEN 2 THEN jsonb_build_array(jsonb_build_object('value', format('home%s@mail.example', i), 'type', 'home'),
										  jsonb_build_object('value', NULL, 'type', 'work'))
			WHEN 3 THEN jsonb_build_array(jsonb_build_object('type', 'other'))
			WHEN 4 THEN '[]'::jsonb
			ELSE jsonb_build_array(jsonb_build_object('value', format('x%s@ünïcode.example', i), 'type', 'Work', 'primary', false),
								   jsonb_build_object('value', format('y%s@acme.example.com', i), 'primary', true))
			END,
		'phoneNumbers', CASE WHEN i % 4 = 0 THEN jsonb_build_array(jsonb_build_object('value', '+1 555 01' || i, 'type', 'mobile')) END,
		'addresses', CASE WHEN i % 7 = 0 THEN jsonb_build_array(
			jsonb_build_object('locality', 'Zürich', 'country', 'CH', 'type', 'work', 'postalCode', '80' || i),
			jsonb_build_object('locality', 'Paris', 'type', 'home')) END,
		'nickName', CASE WHEN i % 3 = 0 THEN 'Nick' || i END,
		'name', CASE WHEN i % 11 = 0 THEN jsonb_build_object('formatted', 'Formatted Name ' || i) END))
  FROM generate_series(1, 600) i;
UPDATE scim.users u SET email = (SELECT e ->> 'value' FROM jsonb_array_elements(u.attributes -> 'emails') WITH ORDINALITY AS x(e, n)
								  ORDER BY (e -> 'primary') = 'true' DESC, n LIMIT 1)
 WHERE workspace = 'searchgen';
-- jsonb_strip_nulls dropped the null values inside elements too; put some back
UPDATE scim.users SET attributes = jsonb_set(attributes, '{emails,1,value}', 'null')
 WHERE workspace = 'searchgen' AND attributes #>> '{emails,1,type}' = 'work' AND attributes #> '{emails,1,value}' IS NULL;
RESET session_replication_role;
SELECT cmp_ok(count(*)::int, '>', 50, 'some elements hold "value": null')
  FROM scim.users WHERE workspace = 'searchgen' AND attributes #> '{emails,1,value}' = 'null'::jsonb;

CREATE FUNCTION pg_temp.sql_ids(f text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
	r text[];
BEGIN
	EXECUTE format('SELECT coalesce(array_agg(u.user_name ORDER BY u.user_name), ''{}'') FROM scim.users u WHERE u.workspace = $1 AND (%s)',
				   scim.filter_sql(f)) INTO r USING 'searchgen';
	RETURN r;
END;
$$;
CREATE FUNCTION pg_temp.match_ids(f text) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(u.user_name ORDER BY u.user_name), '{}')
	  FROM scim.users u
	 WHERE u.workspace = 'searchgen' AND scim.filter_match(f, scim.user_resource(u))
$$;

CREATE TEMP TABLE corpus (f text, with_search boolean) ON COMMIT DROP;
INSERT INTO corpus (f) VALUES
	('emails.value co "acme"'), ('emails.value co "ACME.example"'), ('emails.value sw "U1"'), ('emails.value sw "home1"'),
	('emails.value ew "@acme.example.com"'), ('emails co "acme"'), ('emails ew "EXAMPLE.COM"'),
	('emails[type eq "work" and value co "acme"]'), ('emails[type eq "work" and value ew "ACME.EXAMPLE.COM"]'),
	('emails[type eq "home" and value co "acme"]'), ('emails[value co "acme" and primary eq true]'),
	('emails[value co "acme" and not (primary eq true)]'), ('emails[value co "ünï"]'), ('emails.value co "ÜNÏCODE"'),
	('emails[value sw "home1" or value sw "u1"]'), ('not (emails.value co "acme")'),
	('emails.value co "mail.example" and active eq true'), ('emails.value eq "home14@mail.example"'),
	('emails.type eq "other"'), ('emails.type co "wor"'), ('emails.primary eq true'), ('emails[type eq "work" and value pr]'),
	('emails.value pr'), ('not (emails.value pr)'), ('emails[type eq "work" and not (value pr)]'),
	('emails[type sw "wor" and value co "unicode"]'), ('emails[type eq "work" and value co "gen.example" and primary eq true]'),
	('name.givenName co "ärg"'), ('name.givenName co "ÄRG"'), ('name.givenName eq "straße"'), ('name.givenName sw "σίσ"'),
	('name.givenName eq "ana"'), ('name.givenName co "o''bri"'), ('name.familyName ew "m17"'), ('name.familyName eq "FAM12"'),
	('name.formatted co "formatted name 1"'), ('name[givenName co "ana" and familyName eq "fam3"]'),
	('displayName co "display 12"'), ('displayName eq "ana display 101"'), ('nickName sw "nick1"'), ('nickName ew "12"'),
	('phoneNumbers.value co "555 01"'), ('phoneNumbers[type eq "mobile" and value ew "12"]'), ('phoneNumbers pr'),
	('addresses.locality eq "zürich"'), ('addresses.locality co "ZÜR"'), ('addresses[type eq "work" and postalCode sw "807"]'),
	('addresses[locality co "par" and type eq "work"]'), ('addresses[locality co "par" and type eq "home"]'),
	('addresses.country sw "ch"'), ('emails.value co "_"'), ('emails.value co "%"'), ('emails.value co "ac"'),
	('userName co "user1" and emails.value co "acme"'), ('emails.value co "acme" or name.givenName co "ana"'),
	('not (name.givenName co "ana" or nickName sw "nick")');
UPDATE corpus SET with_search = scim.filter_sql(f) LIKE '%scim.search_text(%';

SELECT cmp_ok(count(*)::int, '>=', 50, 'a corpus of at least 50 filters') FROM corpus;
SELECT cmp_ok(count(*)::int, '>=', 20, 'at least 20 of them carry the search-text condition (names stored in columns have trigram columns of their own, emails sw/ew and co with an @ the element keys)') FROM corpus WHERE with_search;
SELECT is(array_agg(f ORDER BY f), NULL, 'filters without a trigram to look up carry no search-text condition')
  FROM corpus WHERE with_search AND f IN ('emails.value co "_"', 'emails.value co "%"', 'emails.value co "ac"');
SELECT is(array_agg(f ORDER BY f), NULL, 'pushdown with the search-text condition = the matcher, on every corpus filter')
  FROM corpus WHERE pg_temp.sql_ids(f) IS DISTINCT FROM pg_temp.match_ids(f);
SELECT cmp_ok(count(DISTINCT pg_temp.match_ids(f))::int, '>=', 30, 'the corpus discriminates (at least 30 distinct result sets)')
  FROM corpus;
SELECT cmp_ok(count(*)::int, '>=', 30, 'at least 30 corpus filters match someone') FROM corpus WHERE cardinality(pg_temp.match_ids(f)) > 0;

SET LOCAL scim_provision.search_index = off;
SELECT is(count(*)::int, 0, 'scim_provision.search_index = off: the predicates of 0.2.0, without the condition')
  FROM corpus WHERE scim.filter_sql(f) LIKE '%search_text%';
SELECT is(array_agg(f ORDER BY f), NULL, 'and the same answers')
  FROM corpus WHERE pg_temp.sql_ids(f) IS DISTINCT FROM pg_temp.match_ids(f);
RESET scim_provision.search_index;

SELECT * FROM finish();
ROLLBACK;
