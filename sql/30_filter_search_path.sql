-- Filter engine: the SQL of scim.filter_sql and scim.sort_expression names
-- every function, operator and type with its schema, so it finds the same
-- users under a hostile search_path: one that puts a schema with its own
-- lower(), =, ~~ (LIKE), <> and @> before pg_catalog.  Those hostile
-- objects answer wrongly and count their calls in a sequence; the
-- generated SQL must never call them, while plain unqualified SQL under the
-- same search_path does (the control at the end).
\unset ECHO
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(17);

DO $$
BEGIN
	PERFORM scim.create_workspace('filthost');
	PERFORM scim.approve_domain('host.example', 'filthost');
END;
$$;
INSERT INTO scim.users (workspace, user_name, external_id, title, email, attributes) VALUES
	('filthost', 'Ann@host.example', 'a-1', 'Manager', 'ann@host.example',
	 '{"emails":[{"value":"ann@host.example","type":"work","primary":true}],"nickName":"Annie"}'),
	('filthost', 'bob@host.example', 'b-2', 'engineer', 'bob@host.example',
	 '{"emails":[{"value":"bob@host.example","type":"home"}]}'),
	('filthost', 'carol@host.example', NULL, NULL, 'carol@host.example',
	 '{"emails":[{"value":"CAROL@host.example","type":"work"}]}');
INSERT INTO scim.groups (workspace, display_name) VALUES ('filthost', 'Sales'), ('filthost', 'Support');

-- ---- the hostile schema ------------------------------------------------------------
CREATE SCHEMA hostile;
CREATE SEQUENCE hostile.calls;
-- lower() that answers a counter instead of the lower-case text
CREATE FUNCTION hostile.lower(text) RETURNS text LANGUAGE sql VOLATILE
	AS $$ SELECT pg_catalog.nextval('hostile.calls')::pg_catalog.text $$;
-- text comparisons and jsonb containment that are always true
CREATE FUNCTION hostile.always_text(text, text) RETURNS boolean LANGUAGE sql VOLATILE
	AS $$ SELECT pg_catalog.nextval('hostile.calls') OPERATOR(pg_catalog.>) 0 $$;
CREATE FUNCTION hostile.always_jsonb(jsonb, jsonb) RETURNS boolean LANGUAGE sql VOLATILE
	AS $$ SELECT pg_catalog.nextval('hostile.calls') OPERATOR(pg_catalog.>) 0 $$;
CREATE OPERATOR hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.always_text);
CREATE OPERATOR hostile.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.always_text);
CREATE OPERATOR hostile.~~ (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.always_text);
CREATE OPERATOR hostile.@> (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = hostile.always_jsonb);

-- user names a generated predicate selects (and their order under a
-- generated sort expression), run under search_path = hostile, pg_catalog
CREATE FUNCTION pg_temp.hostile_ids(f text, sort_by text DEFAULT 'userName') RETURNS text[]
LANGUAGE plpgsql SET search_path = hostile, pg_catalog AS $$
DECLARE
	r text[];
BEGIN
	EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(u.user_name ORDER BY %s, u.id) FROM scim.users u '
							  'WHERE u.workspace OPERATOR(pg_catalog.=) $1 AND (%s)',
							  scim.sort_expression(sort_by), scim.filter_sql(f))
		INTO r USING 'filthost';
	RETURN r;
END;
$$;
CREATE FUNCTION pg_temp.hostile_groups(f text) RETURNS text[]
LANGUAGE plpgsql SET search_path = hostile, pg_catalog AS $$
DECLARE
	r text[];
BEGIN
	EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(g.display_name ORDER BY %s) FROM scim.groups g '
							  'WHERE g.workspace OPERATOR(pg_catalog.=) $1 AND (%s)',
							  scim.sort_expression('displayName', 'Group'), scim.filter_sql(f, 'Group'))
		INTO r USING 'filthost';
	RETURN r;
END;
$$;
CREATE FUNCTION pg_temp.hostile_plan(f text) RETURNS text
LANGUAGE plpgsql SET search_path = hostile, pg_catalog SET enable_seqscan = off AS $$
DECLARE
	line text;
	result text := '';
BEGIN
	FOR line IN EXECUTE pg_catalog.format('EXPLAIN (COSTS OFF) SELECT u.id FROM scim.users u '
										  'WHERE u.workspace OPERATOR(pg_catalog.=) %L AND (%s)',
										  'filthost', scim.filter_sql(f))
	LOOP
		result := result OPERATOR(pg_catalog.||) line OPERATOR(pg_catalog.||) E'\n';
	END LOOP;
	RETURN result;
END;
$$;

-- ---- generated SQL under the hostile search_path ------------------------------------
SELECT is(pg_temp.hostile_ids('userName eq "ANN@HOST.EXAMPLE"'), '{Ann@host.example}',
	'userName eq: lower() and = of pg_catalog');
SELECT is(pg_temp.hostile_ids('userName ne "ann@host.example"'), '{bob@host.example,carol@host.example}',
	'userName ne: <> of pg_catalog');
SELECT is(pg_temp.hostile_ids('userName sw "BO"'), '{bob@host.example}', 'userName sw: LIKE (~~) of pg_catalog');
SELECT is(pg_temp.hostile_ids('externalId eq "b-2"'), '{bob@host.example}', 'externalId eq (caseExact)');
SELECT is(pg_temp.hostile_ids('emails.value eq "carol@HOST.example"'), '{carol@host.example}',
	'jsonb containment: @>, lower() and the casts of pg_catalog');
SELECT is(pg_temp.hostile_ids('emails[type eq "work" and value co "AN"]'), '{Ann@host.example}',
	'a value filter over the elements (jsonb_path_query, ->>)');
SELECT is(pg_temp.hostile_ids('title gt "f"'), '{Ann@host.example}', 'ordering: COLLATE "C" and > of pg_catalog');
SELECT is(pg_temp.hostile_ids('not (title pr)'), '{carol@host.example}', 'not pr: IS NOT NULL and <>');
SELECT is(pg_temp.hostile_ids('nickName eq "annie"'), '{Ann@host.example}', 'a single-valued attribute in the jsonb');
SELECT is(pg_temp.hostile_ids('userName pr', 'title'), '{bob@host.example,Ann@host.example,carol@host.example}',
	'sortBy title: pg_catalog.lower() orders bob (engineer) before Ann (Manager)');
SELECT is(pg_temp.hostile_ids('userName pr', 'emails.value'),
	'{Ann@host.example,bob@host.example,carol@host.example}', 'sortBy emails.value');
SELECT is(pg_temp.hostile_groups('displayName eq "SALES"'), '{Sales}', 'Group displayName eq (groups.c)');
SELECT is(pg_temp.hostile_groups('displayName sw "su"'), '{Support}', 'Group displayName sw (groups.c)');
SELECT matches(pg_temp.hostile_plan('userName eq "ann@host.example"'), 'users_workspace_user_name_idx',
	'pg_catalog.lower(user_name) still matches the index on lower(user_name)');
SELECT is((SELECT is_called FROM hostile.calls), false, 'the hostile functions and operators were never called');

-- ---- control: unqualified SQL under the same search_path is hijacked ------------------
CREATE FUNCTION pg_temp.unqualified_count() RETURNS bigint
LANGUAGE plpgsql SET search_path = hostile, pg_catalog AS $$
DECLARE
	n bigint;
BEGIN
	EXECUTE 'SELECT count(*) FROM scim.users u WHERE u.workspace OPERATOR(pg_catalog.=) $1 '
			'AND lower(u.user_name) = lower(''ann@host.example'')'
		INTO n USING 'filthost';
	RETURN n;
END;
$$;
SELECT is(pg_temp.unqualified_count(), 3::bigint, 'control: unqualified lower() and = resolve to the hostile schema');
SELECT is((SELECT is_called FROM hostile.calls), true, 'control: and the hostile functions were called');

SELECT * FROM finish();
ROLLBACK;
