-- PATCH engine: scim.patch_apply (RFC 7644 section 3.5.2), IdP habits, atomicity, errors.
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(96);

-- ---- fixtures -------------------------------------------------------------
CREATE FUNCTION pg_temp.usr() RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
	  "id":"2819c223-7f76-453a-919d-413861904646","externalId":"bjensen",
	  "meta":{"resourceType":"User","version":"W/\"3\""},
	  "userName":"bjensen@example.com",
	  "name":{"givenName":"Barbara","familyName":"Jensen"},
	  "displayName":"Babs Jensen","active":true,
	  "emails":[{"value":"bjensen@example.com","type":"work","primary":true},
	            {"value":"babs@jensen.org","type":"home"}],
	  "addresses":[{"type":"work","streetAddress":"100 Universal City Plaza","locality":"Hollywood"}]}'::jsonb
$$;
CREATE FUNCTION pg_temp.grp() RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],
	  "id":"e9e30dba-f08f-4109-8486-d5c6a331660a","displayName":"Tour Guides",
	  "meta":{"resourceType":"Group"},
	  "members":[{"value":"2819c223-7f76-453a-919d-413861904646","type":"User"},
	             {"value":"902c246b-6245-4190-8e05-00816be7344a","type":"User"}]}'::jsonb
$$;
-- the error of a PATCH as "SQLSTATE message | detail", or 'no error'
CREATE FUNCTION pg_temp.perr(r jsonb, o jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
BEGIN
	PERFORM scim.patch_apply(r, o);
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	RETURN st || ' ' || msg || ' | ' || det;
END
$$;
CREATE FUNCTION pg_temp.p(r jsonb, o text) RETURNS jsonb LANGUAGE sql AS $$
	SELECT scim.patch_apply(r, o::jsonb)
$$;

-- ---- the function itself ----------------------------------------------------
SELECT is((SELECT provolatile::text || proisstrict::text || proparallel::text FROM pg_proc
			WHERE oid = 'scim.patch_apply(jsonb, jsonb)'::regprocedure),
		  'itrues', 'scim.patch_apply is IMMUTABLE STRICT PARALLEL SAFE');
SELECT isnt(obj_description('scim.patch_apply(jsonb, jsonb)'::regprocedure, 'pg_proc'), NULL,
			'scim.patch_apply has a comment');
SELECT is(scim.patch_apply(NULL, '[]'), NULL, 'NULL resource gives NULL (STRICT)');

-- ---- RFC 7644 section 3.5.2.1 add ------------------------------------------
SELECT is(pg_temp.p(pg_temp.grp(), '[{"op":"add","path":"members","value":[{"display":"Babs Jensen","$ref":"https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646","value":"2819c223-7f76-453a-919d-413861904646"}]}]')->'members',
		  '[{"value":"2819c223-7f76-453a-919d-413861904646","type":"User","$ref":"https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"},
		    {"value":"902c246b-6245-4190-8e05-00816be7344a","type":"User"}]',
		  'RFC add of an existing member merges into it (no duplicate; readOnly display ignored)');
SELECT is(jsonb_array_length(pg_temp.p(pg_temp.grp(), '[{"op":"add","path":"members","value":[{"value":"a1"},{"value":"a2"}]}]')->'members'),
		  4, 'add to a multi-valued attribute appends new values');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"add","value":{"emails":[{"value":"babs@jensen.org","type":"home"},{"value":"b@example.net","type":"other"}],"nickname":"Babs"}}]')
			- 'meta',
		  pg_temp.usr() - 'meta' || '{"nickName":"Babs","emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"},{"value":"b@example.net","type":"other"}]}',
		  'RFC add without path: attributes in canonical case, emails appended without duplicates');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"add","path":"name","value":{"middleName":"Q","givenName":"Barb"}}]')->'name',
		  '{"givenName":"Barb","familyName":"Jensen","middleName":"Q"}',
		  'add on a complex single-valued attribute merges sub-attributes');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"add","path":"nickName","value":"Babs"}]')->>'nickName',
		  'Babs', 'add of a simple attribute');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"add","path":"emails","value":{"value":"BJensen@Example.com","type":"work"}}]')->'emails',
		  pg_temp.usr()->'emails', 'add of a value already there (caseExact=false) changes nothing');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"add","path":"emails[type eq \"other\"].value","value":"o@example.org"}]')->'emails'->2,
		  '{"type":"other","value":"o@example.org"}',
		  'add through an eq filter that matches nothing creates that element (Entra ID, RFC 7644 erratum 8097)');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"add","path":"emails[type eq \"home\"].display","value":"Home"}]')->'emails'->1,
		  '{"value":"babs@jensen.org","type":"home","display":"Home"}',
		  'add through a filter that matches sets the sub-attribute on the match');

-- ---- RFC 7644 section 3.5.2.2 remove ---------------------------------------
SELECT is(pg_temp.p(pg_temp.grp(), '[{"op":"remove","path":"members"}]') ? 'members',
		  false, 'RFC remove of all members leaves the attribute absent');
SELECT is(pg_temp.p(pg_temp.grp(), '[{"op":"remove","path":"members[value eq \"2819c223-7f76-453a-919d-413861904646\"]"}]')->'members',
		  '[{"value":"902c246b-6245-4190-8e05-00816be7344a","type":"User"}]',
		  'RFC remove of a single member through a value filter');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"remove","path":"emails[type eq \"work\" and value ew \"example.com\"]"}]')->'emails',
		  '[{"value":"babs@jensen.org","type":"home"}]',
		  'RFC remove with a complex filter removes the matching element');
SELECT is(pg_temp.p(pg_temp.grp(), '[{"op":"remove","path":"members[value eq \"2819c223-7f76-453a-919d-413861904646\"]"},{"op":"add","path":"members","value":[{"value":"08e1d05d-121c-4561-8b96-473d93df9210"}]}]')->'members',
		  '[{"value":"902c246b-6245-4190-8e05-00816be7344a","type":"User"},{"value":"08e1d05d-121c-4561-8b96-473d93df9210"}]',
		  'RFC remove then add in one request (replacing a member)');
SELECT is(pg_temp.p(pg_temp.p(pg_temp.usr(), '[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber","value":"701984"}]'),
					'[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"}]'),
		  pg_temp.usr(), 'removing the last extension attribute removes the extension object and its URN in schemas');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"remove","path":"emails[type eq \"work\"]"},{"op":"remove","path":"emails[type eq \"home\"]"}]') ? 'emails',
		  false, 'removing the last element leaves the attribute absent, not []');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"remove","path":"name.givenName"},{"op":"remove","path":"name.familyName"}]') ? 'name',
		  false, 'removing the last sub-attribute leaves the complex attribute absent, not {}');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"remove","path":"emails[type eq \"fax\"]"}]'),
		  pg_temp.usr(), 'remove with a filter that matches nothing changes nothing (idempotent)');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"remove","path":"nickName"}]'),
		  pg_temp.usr(), 'remove of an absent attribute changes nothing');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"remove","path":"emails[type eq \"home\"].value"}]')->'emails'->1,
		  '{"type":"home"}', 'remove of a sub-attribute of the filtered elements');

-- ---- RFC 7644 section 3.5.2.3 replace --------------------------------------
SELECT is(pg_temp.p(pg_temp.grp(), '[{"op":"replace","path":"members","value":[{"display":"Babs Jensen","value":"2819c223-7f76-453a-919d-413861904646"},{"display":"James Smith","value":"08e1d05d-121c-4561-8b96-473d93df9210"}]}]')->'members',
		  '[{"value":"2819c223-7f76-453a-919d-413861904646"},{"value":"08e1d05d-121c-4561-8b96-473d93df9210"}]',
		  'RFC replace of members without a filter sets exactly the given values');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","path":"addresses[type eq \"work\"]","value":{"type":"work","streetAddress":"911 Universal City Plaza","locality":"Hollywood","region":"CA","postalCode":"91608","country":"US","primary":true}}]')->'addresses',
		  '[{"type":"work","streetAddress":"911 Universal City Plaza","locality":"Hollywood","region":"CA","postalCode":"91608","country":"US","primary":true}]',
		  'RFC replace of a filtered complex element');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","path":"addresses[type eq \"work\"].streetAddress","value":"1010 Broadway Ave"}]')->'addresses'->0->>'streetAddress',
		  '1010 Broadway Ave', 'RFC replace of a sub-attribute of a filtered element');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","value":{"emails":[{"value":"bjensen@example.com","type":"work","primary":true}],"nickname":"Babs"}}]')
			- 'meta',
		  pg_temp.usr() - 'meta' || '{"nickName":"Babs","emails":[{"value":"bjensen@example.com","type":"work","primary":true}]}',
		  'RFC replace without path');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","path":"name","value":{"givenName":"Barb"}}]')->'name',
		  '{"givenName":"Barb","familyName":"Jensen"}',
		  'replace of a complex attribute leaves unnamed sub-attributes alone (RFC 7644 3.5.2.3)');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","path":"title","value":"Tour Guide"}]')->>'title',
		  'Tour Guide', 'replace of an absent attribute adds it');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","path":"displayName","value":null}]') ? 'displayName',
		  false, 'replace with null removes the attribute (RFC 7643 2.5)');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","path":"emails","value":[]}]') ? 'emails',
		  false, 'replace with [] removes a multi-valued attribute');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"department":"Tours","manager":{"value":"26118915-6090-4610-87e4-49d8ca9f808d","displayName":"ignored"}}}]')
			->'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
		  '{"department":"Tours","manager":{"value":"26118915-6090-4610-87e4-49d8ca9f808d"}}',
		  'replace with an extension URN path sets that schema''s attributes (readOnly manager.displayName ignored)');

-- ---- primary (RFC 7643 section 2.4) -----------------------------------------
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"add","path":"emails","value":[{"value":"new@example.com","type":"other","primary":true}]}]')->'emails',
		  '[{"value":"bjensen@example.com","type":"work","primary":false},{"value":"babs@jensen.org","type":"home"},{"value":"new@example.com","type":"other","primary":true}]',
		  'a new primary value clears primary on the others');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","path":"emails[type eq \"home\"].primary","value":"True"}]')->'emails',
		  '[{"value":"bjensen@example.com","type":"work","primary":false},{"value":"babs@jensen.org","type":"home","primary":true}]',
		  'setting primary through a filter (string boolean) moves the primary flag');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"add","path":"emails","value":[{"value":"a@example.com","primary":true},{"value":"b@example.com","primary":true}]}]'),
		  '22023 invalidValue: more than one value of attribute "emails" is marked primary | Operation 1 ("add" with path "emails") failed; no operation was applied.',
		  'two new primary values in one operation are invalidValue');

-- ---- IdP habits ---------------------------------------------------------------
SELECT is(pg_temp.p(pg_temp.usr(), '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}')->'active',
		  'false', 'Okta: replace without path {"active":false} in a whole PatchOp message');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"Replace","path":"active","value":"False"}]')->'active',
		  'false', 'Entra ID: "Replace" and the string "False" for a boolean');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"REPLACE","path":"active","value":"true"}]')->'active',
		  'true', 'op in upper case, "true" as a string');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"OP":"Add","Path":"nickName","Value":"Babs"}]')->>'nickName',
		  'Babs', 'operation member names in any case');
SELECT is(pg_temp.p(pg_temp.usr(),
		  '[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"barbara@example.com"},
		    {"op":"Replace","path":"name.givenName","value":"Barbara2"},
		    {"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber","value":"42"}]')
			- 'meta',
		  pg_temp.usr() - 'meta'
			|| '{"emails":[{"value":"barbara@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],"name":{"givenName":"Barbara2","familyName":"Jensen"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"42"}}'
			|| '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]}',
		  'Entra ID: filtered work email, sub-attribute and URN-qualified paths in one request');
SELECT is(pg_temp.p(pg_temp.usr(),
		  '[{"op":"replace","value":{"displayName":"Bjfe","name.givenName":"Kkom","name.familyName":"Unua","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"Aklq"}}]')
			- 'meta' - 'emails' - 'addresses',
		  '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		    "id":"2819c223-7f76-453a-919d-413861904646","externalId":"bjensen","userName":"bjensen@example.com",
		    "name":{"givenName":"Kkom","familyName":"Unua"},"displayName":"Bjfe","active":true,
		    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"Aklq"}}',
		  'Entra ID (aadOptscim062020): no-path value with dotted and URN-qualified keys');
SELECT is(pg_temp.p(pg_temp.grp(), '[{"op":"Remove","path":"members","value":[{"value":"902c246b-6245-4190-8e05-00816be7344a"}]}]')->'members',
		  '[{"value":"2819c223-7f76-453a-919d-413861904646","type":"User"}]',
		  'Entra ID / OneLogin: remove members with a value removes just those members');
SELECT is(pg_temp.p(pg_temp.grp(), '[{"op":"Remove","path":"members","value":[{"value":"no-such-member"}]}]'),
		  pg_temp.grp(), 'remove of a member that is not there changes nothing');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"Add","path":"nickName","value":[{"value":"Babs"}]}]')->>'nickName',
		  'Babs', 'a single-valued attribute given as [{"value": x}] takes x');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","path":"title","value":{"value":"Boss"}}]')->>'title',
		  'Boss', 'a simple attribute given as {"value": x} takes x');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","path":"name","value":[{"givenName":"B"}]}]')->'name',
		  '{"givenName":"B","familyName":"Jensen"}', 'a complex single-valued attribute given as a one-element array');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"26118915-6090-4610-87e4-49d8ca9f808d"}]')
			->'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'->'manager',
		  '{"value":"26118915-6090-4610-87e4-49d8ca9f808d"}', 'a manager given as a bare id becomes {"value": id}');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","value":{"USERNAME":"Barbara@Example.com","Name.GivenName":"B","ACTIVE":"false"}}]')
			- 'meta' - 'emails' - 'addresses',
		  '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"2819c223-7f76-453a-919d-413861904646","externalId":"bjensen",
		    "userName":"Barbara@Example.com","name":{"givenName":"B","familyName":"Jensen"},"displayName":"Babs Jensen","active":false}',
		  'attribute names in any case come out in canonical case');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours","costCenter":4130}}}]')
			->'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
		  '{"department":"Tours","costCenter":"4130"}',
		  'no-path value with an extension URN key holding an object; a number for a string attribute keeps its text');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"add","path":"urn:scim:schemas:extension:enterprise:1.0:department","value":"Tours"}]')
			->'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
		  '{"department":"Tours"}', 'the SCIM 1.1 enterprise URN is an alias of the 2.0 one');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","value":{"id":"2819c223-7f76-453a-919d-413861904646","schemas":["x"],"active":false}}]')->'active',
		  'false', 'a no-path value repeating the readOnly id (and carrying schemas) is accepted');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"add","path":"emails","value":{"value":"x@example.org","type":"other"}}]')->'emails'->2,
		  '{"value":"x@example.org","type":"other"}', 'a single object for a multi-valued attribute is one value');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","path":"emails[type eq \"work\"].primary","value":"FALSE"}]')->'emails'->0->'primary',
		  'false', 'string booleans for boolean sub-attributes');
SELECT is(pg_temp.p(pg_temp.grp(), '[{"op":"replace","path":"displayName","value":"Guides"}]')->>'displayName',
		  'Guides', 'the resource type comes from meta.resourceType (Group)');

-- ---- mutability -----------------------------------------------------------------
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","path":"id","value":"x"}]'),
		  '22023 mutability: attribute "id" is readOnly | Operation 1 ("replace" with path "id") failed; no operation was applied.',
		  'replace of id is mutability');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"add","path":"meta","value":{"version":"W/\"9\""}}]'),
		  '22023 mutability: attribute "meta" is readOnly | Operation 1 ("add" with path "meta") failed; no operation was applied.',
		  'add of meta is mutability');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"add","path":"groups","value":[{"value":"g1"}]}]'),
		  '22023 mutability: attribute "groups" is readOnly | Operation 1 ("add" with path "groups") failed; no operation was applied.',
		  'add of groups is mutability');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"remove","path":"id"}]'),
		  '22023 mutability: attribute "id" is readOnly | Operation 1 ("remove" with path "id") failed; no operation was applied.',
		  'remove of id is mutability');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"remove","path":"userName"}]'),
		  '22023 mutability: attribute "userName" is required and cannot be removed | Operation 1 ("remove" with path "userName") failed; no operation was applied.',
		  'remove of the required userName is mutability');
SELECT is(pg_temp.perr(pg_temp.grp(), '[{"op":"replace","path":"displayName","value":null}]'),
		  '22023 mutability: attribute "displayName" is required and cannot be removed | Operation 1 ("replace" with path "displayName") failed; no operation was applied.',
		  'replace of the required Group displayName with null is mutability');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","value":{"id":"another-id"}}]'),
		  '22023 mutability: attribute "id" is readOnly | Operation 1 ("replace" without a path) failed at the member "id" of its value; no operation was applied.',
		  'a no-path value changing id is mutability');
SELECT is(pg_temp.perr(pg_temp.grp(), '[{"op":"replace","path":"members[value eq \"2819c223-7f76-453a-919d-413861904646\"].value","value":"other"}]'),
		  '22023 mutability: sub-attribute "members.value" is immutable and already has a value | Operation 1 ("replace" with path "members[value eq "2819c223-7f76-453a-919d-413861904646"].value") failed; no operation was applied.',
		  'changing an immutable sub-attribute is mutability');
SELECT is(pg_temp.p('{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G","members":[{"type":"User"}]}',
					'[{"op":"add","path":"members[type eq \"User\"].value","value":"u1"}]')->'members',
		  '[{"type":"User","value":"u1"}]', 'an immutable sub-attribute may be set while it has no value');
SELECT is(pg_temp.p(pg_temp.grp(), '[{"op":"replace","path":"members[value eq \"2819c223-7f76-453a-919d-413861904646\"].value","value":"2819c223-7f76-453a-919d-413861904646"}]'),
		  pg_temp.grp(), 'setting an immutable sub-attribute to its current value is a no-op');

-- ---- noTarget -------------------------------------------------------------------
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"remove"}]'),
		  '22023 noTarget: a "remove" operation needs a path | Operation 1 ("remove" without a path) failed; no operation was applied.',
		  'remove without path is noTarget');
-- a replace whose eq filter matches nothing builds the element, as add does
-- (Entra ID; issue #15 point 14); other no-match replaces stay noTarget
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"Replace","path":"emails[type eq \"other\"].value","value":"x@example.org"}]') -> 'emails' -> -1,
		  '{"type":"other","value":"x@example.org"}', 'replace through an eq filter that matches nothing builds the element');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","path":"addresses[type eq \"home\"]","value":{"locality":"X"}}]') -> 'addresses',
		  '[{"type": "work", "locality": "Hollywood", "streetAddress": "100 Universal City Plaza"}, {"type": "home", "locality": "X"}]', 'replace of a whole element through an eq filter that matches nothing builds it');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","path":"emails[type ne \"work\" and type ne \"home\"].value","value":"x@example.org"}]'),
		  '22023 noTarget: the value filter of attribute "emails" matches no value to replace, and a new value can only be made from a filter of "eq" comparisons joined by "and" | Operation 1 ("replace" with path "emails[type ne "work" and type ne "home"].value") failed; no operation was applied.',
		  'replace through a non-eq filter that matches nothing is noTarget');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","path":"emails[type eq \"other\" or type eq \"fax\"].value","value":"x@example.org"}]'),
		  '22023 noTarget: the value filter of attribute "emails" matches no value to replace, and a new value can only be made from a filter of "eq" comparisons joined by "and" | Operation 1 ("replace" with path "emails[type eq "other" or type eq "fax"].value") failed; no operation was applied.',
		  'replace through an "or" filter that matches nothing is noTarget');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","path":"name[givenName eq \"X\"]","value":"x"}]') IS NOT NULL, true,
		  'a value filter on a single-valued attribute is still refused');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"add","path":"emails[type ne \"work\" and type ne \"home\"].value","value":"x@example.org"}]'),
		  '22023 noTarget: the value filter of attribute "emails" matches no value, and a new value can only be made from a filter of "eq" comparisons joined by "and" | Operation 1 ("add" with path "emails[type ne "work" and type ne "home"].value") failed; no operation was applied.',
		  'add through a non-eq filter that matches nothing is noTarget');

-- ---- invalidPath ----------------------------------------------------------------
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"add","path":"favouriteColour","value":"blue"}]'),
		  '22023 invalidPath: attribute "favouriteColour" is not defined for User resources | Operation 1 ("add" with path "favouriteColour") failed; no operation was applied.',
		  'an unknown attribute is invalidPath');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"add","path":"name.nick","value":"x"}]'),
		  '22023 invalidPath: attribute "name" has no sub-attribute "nick" | Operation 1 ("add" with path "name.nick") failed; no operation was applied.',
		  'an unknown sub-attribute is invalidPath');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","path":"emails[typo eq \"work\"].value","value":"x"}]'),
		  '22023 invalidPath: attribute "emails" has no sub-attribute "typo" | Operation 1 ("replace" with path "emails[typo eq "work"].value") failed; no operation was applied.',
		  'a value filter naming an unknown sub-attribute is invalidPath');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"add","path":"title.x","value":"x"}]'),
		  '22023 invalidPath: attribute "title" has no sub-attributes | Operation 1 ("add" with path "title.x") failed; no operation was applied.',
		  'a sub-attribute of a simple attribute is invalidPath');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","path":"name[givenName eq \"B\"]","value":{}}]'),
		  '22023 invalidPath: a value filter needs a multi-valued attribute, and "name" is single-valued | Operation 1 ("replace" with path "name[givenName eq "B"]") failed; no operation was applied.',
		  'a value filter on a single-valued attribute is invalidPath');
SELECT alike(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","path":"emails[type eq \"work\"","value":"x"}]'),
			'22023 invalidPath: % | Operation 1 ("replace" with path "emails[type eq "work"") failed; no operation was applied.',
			'a malformed path is invalidPath');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","path":"urn:example:unknown:2.0:User:x","value":"x"}]'),
		  '22023 invalidPath: schema "urn:example:unknown:2.0:User" is not a schema of User resources | Operation 1 ("replace" with path "urn:example:unknown:2.0:User:x") failed; no operation was applied.',
		  'an unknown schema URN is invalidPath');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","value":{"name.nick":"x"}}]'),
		  '22023 invalidPath: attribute "name" has no sub-attribute "nick" | Operation 1 ("replace" without a path) failed at the member "name.nick" of its value; no operation was applied.',
		  'an unknown key in a no-path value is invalidPath and the detail names the key');

-- ---- invalidValue ---------------------------------------------------------------
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","path":"active","value":"maybe"}]'),
		  '22023 invalidValue: attribute "active" needs a boolean (true or false), not that string | Operation 1 ("replace" with path "active") failed; no operation was applied.',
		  'a string that is not a boolean is invalidValue');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","path":"displayName","value":["a","b"]}]'),
		  '22023 invalidValue: attribute "displayName" is single-valued and takes one value, not an array of 2 | Operation 1 ("replace" with path "displayName") failed; no operation was applied.',
		  'two values for a single-valued attribute are invalidValue');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","path":"userName","value":true}]'),
		  '22023 invalidValue: attribute "userName" needs a string, not a boolean | Operation 1 ("replace" with path "userName") failed; no operation was applied.',
		  'a boolean for a string attribute is invalidValue');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"add","value":"Babs"}]'),
		  '22023 invalidValue: an operation without a path needs an object of attributes as its value, not a string | Operation 1 ("add" without a path) failed; no operation was applied.',
		  'a no-path operation whose value is not an object is invalidValue');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"add","path":"name","value":"Babs"}]'),
		  '22023 invalidValue: attribute "name" needs an object, not a string | Operation 1 ("add" with path "name") failed; no operation was applied.',
		  'a string for a complex attribute without a value sub-attribute is invalidValue');

-- ---- invalidSyntax and limits -------------------------------------------------
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"frobnicate","path":"active","value":true}]'),
		  '22023 invalidSyntax: "op" must be "add", "remove" or "replace" | Operation 1 is malformed; no operation was applied.',
		  'an unknown op is invalidSyntax');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","path":"active","value":false},"not an object"]'),
		  '22023 invalidSyntax: an operation must be an object, not a string | Operation 2 is malformed; no operation was applied.',
		  'an operation that is not an object is invalidSyntax, with its index');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"path":"active","value":false}]'),
		  '22023 invalidSyntax: an operation needs an "op" member that is a string | Operation 1 is malformed; no operation was applied.',
		  'an operation without op is invalidSyntax');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"add","path":"nickName"}]'),
		  '22023 invalidSyntax: the "add" operation needs a "value" member | Operation 1 ("add" with path "nickName") failed; no operation was applied.',
		  'add without value is invalidSyntax');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"add","path":7,"value":1}]'),
		  '22023 invalidSyntax: "path" must be a string, not a number | Operation 1 is malformed; no operation was applied.',
		  'a path that is not a string is invalidSyntax');
SELECT is(pg_temp.perr(pg_temp.usr(), '{"Operations":{"op":"add"}}'),
		  '22023 invalidSyntax: the operations must be an array of operation objects, or a PatchOp message with one in "Operations" | The request as a whole was refused before any operation was applied.',
		  'Operations that is not an array is invalidSyntax');
SELECT is(pg_temp.perr(pg_temp.usr(), '[]'),
		  '22023 invalidSyntax: a PATCH request needs at least one operation | The request as a whole was refused before any operation was applied.',
		  'an empty Operations array is invalidSyntax');
SELECT is(pg_temp.perr(pg_temp.usr(), (SELECT jsonb_agg('{"op":"replace","path":"active","value":true}'::jsonb) FROM generate_series(1, 1001))),
		  '22023 tooMany: the request has 1001 operations, more than the 1000 allowed | The request as a whole was refused before any operation was applied.',
		  'more than 1000 operations is tooMany');
SELECT is(jsonb_typeof(pg_temp.p(pg_temp.usr(), (SELECT jsonb_agg('{"op":"replace","path":"active","value":true}'::jsonb)::text FROM generate_series(1, 1000)))),
		  'object', '1000 operations are accepted');
SELECT is(pg_temp.perr(pg_temp.usr(), jsonb_build_array(jsonb_build_object('op', 'add', 'path', 'nickName', 'value',
		  (SELECT repeat('[', 40) || repeat(']', 40))::jsonb))),
		  '22023 invalidValue: the value is nested more than 32 levels deep | Operation 1 ("add" with path "nickName") failed; no operation was applied.',
		  'a value nested too deeply is refused');

-- ---- atomicity ------------------------------------------------------------------
CREATE TEMP TABLE patched(id int PRIMARY KEY, doc jsonb);
INSERT INTO patched VALUES (1, pg_temp.usr());
SELECT throws_ok($$UPDATE patched SET doc = scim.patch_apply(doc, '[{"op":"replace","path":"displayName","value":"Changed"},{"op":"replace","path":"id","value":"x"}]')$$,
				 '22023', 'mutability: attribute "id" is readOnly',
				 'a request whose second operation fails raises an error');
SELECT is((SELECT doc FROM patched WHERE id = 1), pg_temp.usr(), 'after the failed request the stored resource is unchanged');
SELECT is(pg_temp.perr(pg_temp.usr(), '[{"op":"replace","path":"displayName","value":"Changed"},{"op":"replace","path":"emails[type sw \"fax\"].value","value":"x"}]'),
		  '22023 noTarget: the value filter of attribute "emails" matches no value to replace, and a new value can only be made from a filter of "eq" comparisons joined by "and" | Operation 2 ("replace" with path "emails[type sw "fax"].value") failed; no operation was applied.',
		  'the error names the failing operation by its 1-based index');
SELECT lives_ok($$UPDATE patched SET doc = scim.patch_apply(doc, '[{"op":"replace","path":"displayName","value":"Changed"},{"op":"replace","path":"active","value":false}]')$$,
				'a request whose operations all succeed applies');
SELECT is((SELECT doc->>'displayName' || ' ' || (doc->>'active') FROM patched WHERE id = 1), 'Changed false',
		  'both operations of the successful request are applied');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"replace","path":"displayName","value":"A"},{"op":"replace","path":"displayName","value":"B"}]')->>'displayName',
		  'B', 'operations apply in order');
SELECT is(pg_temp.p(pg_temp.usr(), '[{"op":"add","path":"nickName","value":"Babs"},{"op":"remove","path":"nickName"}]'),
		  pg_temp.usr(), 'add then remove gives back the resource');

SELECT * FROM finish();
ROLLBACK;
