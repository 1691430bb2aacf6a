-- bench/soak/soak.sql - the soak's schema: a journal of committed requests,
-- the request generator the pgbench scripts call, the replay and the checks.
-- Loaded by bench/soak/run.sh into a throwaway cluster; not part of the
-- extension.
--
-- How "completed" is made checkable: soak.step() sends one request through
-- scim.handle and writes its journal row (request and answer) in the same
-- transaction.  A request whose connection dies before COMMIT leaves
-- nothing (no effect, no log row, no journal row); one that committed has
-- its journal row even if the client never saw the answer.  So the journal
-- is exactly the set of completed requests, and its rows' xmin is their
-- transaction: scim.handle writes the request's System Log row in that
-- same top-level transaction (a /Bulk writes one more row per operation,
-- inside subtransactions).
--
-- Each client works on its own users (c<client>-u<1..20>@soak.example) and
-- groups (c<client>-g<1..3>), one request at a time, so the final state
-- does not depend on how clients interleave: replaying every client's
-- journal in order, in another workspace, must give the same users and
-- groups (ids mapped) and the same statuses.  The shared_* kinds race all
-- clients over 8 shared users (shared-u<1..8>@soak.example) and 2 shared
-- groups (shared-g<1..2>): creates, deletes and member adds of the same
-- rows at once.  Their outcome depends on the interleaving, so they are
-- checked for "no 500, one log row" but left out of the replay.

CREATE SCHEMA soak;

SELECT scim.create_workspace('soak', 'delete');
SELECT scim.create_workspace('replay', 'delete');
SELECT scim.approve_domain('soak.example', 'soak');
SELECT scim.approve_domain('soak.example', 'replay');

CREATE TABLE soak.auth (workspace text PRIMARY KEY, headers jsonb NOT NULL);
INSERT INTO soak.auth
	SELECT w, jsonb_build_object('authorization', 'Bearer ' || scim.create_token('soak', w))
	  FROM unnest(ARRAY['soak', 'replay']) AS w;

CREATE TABLE soak.journal (
	id			bigserial PRIMARY KEY,
	at			timestamptz NOT NULL DEFAULT clock_timestamp(),
	client		integer NOT NULL,
	kind		text NOT NULL,
	method		text NOT NULL,
	path		text NOT NULL,
	query		text,
	body		text,
	status		integer NOT NULL,
	answer		jsonb
);

-- faults the chaos loop injected (written after the fact by run.sh)
CREATE TABLE soak.faults (at timestamptz NOT NULL DEFAULT clock_timestamp(), kind text NOT NULL);

-- One request of the given kind for client c: user i, group j, r a random
-- number for the values.  Ids are looked up by name in the same transaction
-- (an unknown one is a well-formed id nobody has: 404).
CREATE FUNCTION soak.step(c integer, kind text, i integer, j integer, r integer) RETURNS integer
	LANGUAGE plpgsql
AS $$
DECLARE
	zero	constant text := '00000000-0000-4000-8000-000000000000';
	uname	text := CASE WHEN kind LIKE 'shared%' THEN format('shared-u%s@soak.example', i % 8 + 1)
						 ELSE format('c%s-u%s@soak.example', c, i) END;
	gname	text := CASE WHEN kind LIKE 'shared%' THEN format('shared-g%s', j % 2 + 1)
						 ELSE format('c%s-g%s', c, j) END;
	uid		text;
	gid		text;
	m		text;
	p		text;
	q		text;
	b		jsonb;
	st		integer;
	ans		jsonb;
	usr		jsonb;
BEGIN
	SELECT u.id::text INTO uid FROM scim.users u WHERE u.workspace = 'soak' AND lower(u.user_name) = lower(uname);
	SELECT g.id::text INTO gid FROM scim.groups g WHERE g.workspace = 'soak' AND lower(g.display_name) = lower(gname);
	uid := coalesce(uid, zero);
	gid := coalesce(gid, zero);
	usr := jsonb_build_object(
		'schemas', jsonb_build_array('urn:ietf:params:scim:schemas:core:2.0:User'),
		'userName', uname,
		'name', jsonb_build_object('givenName', 'C' || c, 'familyName', 'U' || i),
		'emails', jsonb_build_array(jsonb_build_object('value', uname, 'type', 'work', 'primary', true)),
		'title', 'T' || r,
		'active', true);

	CASE regexp_replace(kind, '^shared_', '')
	WHEN 'lookup' THEN
		m := 'GET'; p := '/Users';
		q := 'filter=userName%20eq%20%22' || replace(uname, '@', '%40') || '%22';
	WHEN 'get' THEN
		m := 'GET'; p := '/Users/' || uid;
	WHEN 'create' THEN
		m := 'POST'; p := '/Users'; b := usr;
	WHEN 'put' THEN
		m := 'PUT'; p := '/Users/' || uid;
		b := usr || jsonb_build_object('active', r % 4 <> 0, 'displayName', 'D' || r);
	WHEN 'patch' THEN
		m := 'PATCH'; p := '/Users/' || uid;
		b := jsonb_build_object('schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:PatchOp'),
			'Operations', jsonb_build_array(jsonb_build_object('op', 'replace', 'path', 'title', 'value', 'P' || r),
											jsonb_build_object('op', 'replace', 'value', jsonb_build_object('active', true))));
	WHEN 'deactivate' THEN
		m := 'PATCH'; p := '/Users/' || uid;
		b := jsonb_build_object('schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:PatchOp'),
			'Operations', jsonb_build_array(jsonb_build_object('op', 'Replace', 'path', 'active', 'value', 'False')));
	WHEN 'delete' THEN
		m := 'DELETE'; p := '/Users/' || uid;
	WHEN 'group_create' THEN
		m := 'POST'; p := '/Groups';
		b := jsonb_build_object('schemas', jsonb_build_array('urn:ietf:params:scim:schemas:core:2.0:Group'),
			'displayName', gname);
	WHEN 'group_add' THEN
		m := 'PATCH'; p := '/Groups/' || gid;
		b := jsonb_build_object('schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:PatchOp'),
			'Operations', jsonb_build_array(jsonb_build_object('op', 'add', 'path', 'members',
				'value', jsonb_build_array(jsonb_build_object('value', uid)))));
	WHEN 'group_remove' THEN
		m := 'PATCH'; p := '/Groups/' || gid;
		b := jsonb_build_object('schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:PatchOp'),
			'Operations', jsonb_build_array(jsonb_build_object('op', 'remove',
				'path', format('members[value eq "%s"]', uid))));
	WHEN 'bulk' THEN
		-- create user i (409 when it exists), then retitle it by its id as
		-- known before the request (404 when it did not exist)
		m := 'POST'; p := '/Bulk';
		b := jsonb_build_object('schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:BulkRequest'),
			'Operations', jsonb_build_array(
				jsonb_build_object('method', 'POST', 'path', '/Users', 'bulkId', 'u', 'data', usr),
				jsonb_build_object('method', 'PATCH', 'path', '/Users/' || uid,
					'data', jsonb_build_object('schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:PatchOp'),
						'Operations', jsonb_build_array(jsonb_build_object('op', 'replace', 'path', 'title', 'value', 'B' || r))))));
	END CASE;

	SELECT h.status, h.body INTO st, ans
	  FROM scim.handle(m, p, q, (SELECT a.headers FROM soak.auth a WHERE a.workspace = 'soak'), b::text) AS h;
	INSERT INTO soak.journal (client, kind, method, path, query, body, status, answer)
	VALUES (c, kind, m, p, q, b::text, st, ans);
	RETURN st;
END;
$$;

-- ---------------------------------------------------------------------------
-- Replay: every journaled request in client order, in workspace replay.
-- Requests answered 503 are skipped (by contract they changed nothing; a
-- replay without contention would carry them out).
-- ---------------------------------------------------------------------------

CREATE TABLE soak.id_map (old_id text PRIMARY KEY, new_id text NOT NULL);
CREATE TABLE soak.replay_diff (journal_id bigint, status integer, replay_status integer, answer jsonb, replay_answer jsonb);

-- the ids in t, mapped from the soak workspace's to the replay's
CREATE FUNCTION soak.map_ids(t text) RETURNS text
	LANGUAGE plpgsql
AS $$
DECLARE
	was		text;
	now_is	text;
BEGIN
	IF t IS NULL THEN
		RETURN NULL;
	END IF;
	FOR was IN SELECT DISTINCT x[1] FROM regexp_matches(t, '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})', 'g') AS x
	LOOP
		SELECT mp.new_id INTO now_is FROM soak.id_map mp WHERE mp.old_id = was;
		IF FOUND THEN
			t := replace(t, was, now_is);
		END IF;
	END LOOP;
	RETURN t;
END;
$$;

-- one client's journal, in order; a COMMIT every 100 requests keeps the
-- transaction small (clients are independent: run.sh replays several at
-- once)
CREATE PROCEDURE soak.replay_client(c integer)
	LANGUAGE plpgsql
AS $$
DECLARE
	rec		record;
	st		integer;
	ans		jsonb;
	n		integer := 0;
	k		integer;
	was		text;
	now_is	text;
	hdrs	jsonb := (SELECT a.headers FROM soak.auth a WHERE a.workspace = 'replay');
	uuid_re	constant text := '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
BEGIN
	FOR rec IN SELECT * FROM soak.journal j WHERE j.client = c AND j.status <> 503 AND j.kind NOT LIKE 'shared%' ORDER BY j.id
	LOOP
		SELECT h.status, h.body INTO st, ans
		  FROM scim.handle(rec.method, soak.map_ids(rec.path), rec.query, hdrs, soak.map_ids(rec.body)) AS h;
		IF st IS DISTINCT FROM rec.status THEN
			INSERT INTO soak.replay_diff VALUES (rec.id, rec.status, st, rec.answer, ans);
		END IF;
		IF rec.method = 'POST' AND rec.path IN ('/Users', '/Groups') AND rec.status = 201 AND st = 201 THEN
			INSERT INTO soak.id_map VALUES (rec.answer ->> 'id', ans ->> 'id') ON CONFLICT DO NOTHING;
		ELSIF rec.path = '/Bulk' THEN
			FOR k IN 0 .. coalesce(jsonb_array_length(rec.answer -> 'Operations'), 0) - 1
			LOOP
				was := substring(rec.answer -> 'Operations' -> k ->> 'location' FROM uuid_re);
				now_is := substring(ans -> 'Operations' -> k ->> 'location' FROM uuid_re);
				IF was IS NOT NULL AND now_is IS NOT NULL THEN
					INSERT INTO soak.id_map VALUES (was, now_is) ON CONFLICT DO NOTHING;
				END IF;
			END LOOP;
		END IF;
		n := n + 1;
		IF n % 100 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
END;
$$;

-- the state compared: users and groups of a workspace without ids and times
CREATE FUNCTION soak.users_of(ws text)
	RETURNS TABLE(user_name text, external_id text, given_name text, family_name text, display_name text, email text,
				  title text, active boolean, user_type text, version bigint, attributes jsonb)
	LANGUAGE sql STABLE
AS $$
	SELECT u.user_name, u.external_id, u.given_name, u.family_name, u.display_name, u.email,
		   u.title, u.active, u.user_type, u.version, u.attributes
	  FROM scim.users u WHERE u.workspace = ws AND u.user_name NOT LIKE 'shared-%'
$$;
CREATE FUNCTION soak.groups_of(ws text)
	RETURNS TABLE(display_name text, version bigint, attributes jsonb, members text[])
	LANGUAGE sql STABLE
AS $$
	SELECT g.display_name, g.version, g.attributes,
		   ARRAY(SELECT u.user_name FROM scim.group_members gm JOIN scim.users u ON u.id = gm.member_id
				  WHERE gm.group_id = g.id ORDER BY 1)
	  FROM scim.groups g WHERE g.workspace = ws AND g.display_name NOT LIKE 'shared-%'
$$;
