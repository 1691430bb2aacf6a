
# Copyright (c) scim_provision contributors

# test/t/80_upgrade.pl - ALTER EXTENSION scim_provision UPDATE from every
# released version gives what a fresh CREATE EXTENSION gives, and keeps the
# data.
#
# For each released version (scim_provision--0.1.0.sql, --0.2.0.sql, kept
# as released) a database creates it, writes users, tokens and System Log rows through it, then
# updates to the current version; another creates the current version
# directly.  Their catalogs are compared object by object: every function's
# full definition and privileges, every table's columns, constraints,
# indexes, triggers and privileges, every domain and its constraint, every
# comment, and the set of objects that belong to the extension.  Then the
# old data is read and written through the updated extension.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'scim_provision'");
$node->start;

my $current = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'scim_provision'});
my @released = ('0.1.0', '0.2.0');

# Everything a version defines, one line per fact, in a stable order.
my $catalog_sql = q{
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'scim_provision'),
members AS (
	SELECT d.classid, d.objid FROM pg_depend d, ext WHERE d.refclassid = 'pg_extension'::regclass
	   AND d.refobjid = ext.oid AND d.deptype = 'e'
)
SELECT line FROM (
	SELECT 'member ' || pg_describe_object(m.classid, m.objid, 0) AS line FROM members m
	UNION ALL
	SELECT 'function ' || p.oid::regprocedure || ' acl ' || coalesce(p.proacl::text, '-') || E'\n'
		   || pg_get_functiondef(p.oid)
	FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname IN ('scim', 'scim_api') AND p.prokind IN ('f', 'p')
	UNION ALL
	SELECT 'column ' || c.oid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
		   || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		   || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
	WHERE n.nspname IN ('scim', 'scim_api') AND c.relkind IN ('r', 'v', 'p')
	UNION ALL
	SELECT 'relation ' || c.oid::regclass || ' ' || c.relkind::text || ' acl ' || coalesce(c.relacl::text, '-')
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname IN ('scim', 'scim_api') AND c.relkind IN ('r', 'v', 'p', 'S')
	UNION ALL
	SELECT 'constraint ' || coalesce(cn.conrelid::regclass::text, cn.contypid::regtype::text) || ' '
		   || cn.conname || ' ' || pg_get_constraintdef(cn.oid)
	FROM pg_constraint cn JOIN pg_namespace n ON n.oid = cn.connamespace
	WHERE n.nspname IN ('scim', 'scim_api')
	UNION ALL
	SELECT 'index ' || pg_get_indexdef(i.indexrelid)
	FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname IN ('scim', 'scim_api')
	UNION ALL
	SELECT 'trigger ' || pg_get_triggerdef(t.oid)
	FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname IN ('scim', 'scim_api') AND NOT t.tgisinternal
	UNION ALL
	SELECT 'type ' || t.oid::regtype || ' ' || t.typtype::text || ' ' || format_type(t.typbasetype, t.typtypmod)
	FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
	WHERE n.nspname IN ('scim', 'scim_api') AND t.typtype IN ('d', 'e')
	UNION ALL
	SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ': ' || d.description
	FROM pg_description d JOIN members m ON m.classid = d.classoid AND m.objid = d.objoid
	UNION ALL
	-- The System Log's partitions (#12) are named after their day or month,
	-- so an updated log has partitions for the days its old rows fell on that
	-- a fresh one has not: their names are compared with the date left out
	-- (every partition, the DEFAULT one included, must be alike), and which
	-- partitions hold which rows is checked on the data below.
	SELECT 'partition ' || regexp_replace(c.oid::regclass::text, '_[0-9]{6,8}$', '_<date>') || ' ' || c.relkind::text
		   || ' acl ' || coalesce(c.relacl::text, '-') || ' owner ' || pg_get_userbyid(c.relowner)
		   || CASE WHEN EXISTS (SELECT FROM members m WHERE m.classid = 'pg_class'::regclass AND m.objid = c.oid)
				   THEN ' member' ELSE '' END
		   || ' columns ' || (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
											   || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY a.attnum)
							  FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
		   || ' indexes ' || (SELECT string_agg(regexp_replace(pg_get_indexdef(x.indexrelid), '[0-9]{6,8}', '<date>', 'g'), '; '
											   ORDER BY 1)
							  FROM pg_index x WHERE x.indrelid = c.oid)
	FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	WHERE i.inhparent = 'scim.provisioning_log'::regclass
	UNION ALL
	SELECT 'config ' || c.oid::regclass || ' ' || coalesce(e.extcondition[array_position(e.extconfig, c.oid)], '')
	FROM pg_extension e JOIN pg_class c ON c.oid = ANY (e.extconfig)
	WHERE e.extname = 'scim_provision'
) facts
ORDER BY line COLLATE "C";
};

for my $old (@released)
{
	my $db = 'up_' . ($old =~ tr/./_/r);
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
		CREATE EXTENSION pg_trgm;
		CREATE EXTENSION scim_provision VERSION '$old';
		SELECT scim.approve_domain('example.com');
	});
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'scim_provision'}),
		$old, "$old: created as released");

	# data written by the old version
	my $token = $node->safe_psql($db, q{SELECT scim.create_token('idp')});
	my $auth = qq{jsonb_build_object('authorization', 'Bearer $token')};
	is($node->safe_psql($db, qq{
		SELECT status FROM scim.handle('POST', '/Users', NULL, $auth,
			'{"userName":"ann\@example.com","name":{"givenName":"Ann"}}')}),
		'201', "$old: a user created through the old version");
	$node->safe_psql($db, qq{SELECT status FROM scim.handle('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22', $auth)});
	# System Log rows in several months (#12): they move into partitions
	$node->safe_psql($db, q{
		INSERT INTO scim.provisioning_log (at, workspace, source, method, path, status)
		SELECT now() - d * interval '1 day' - interval '1 hour', 'default', 'onelogin', 'GET', '/api/2/users', 200
		  FROM unnest(ARRAY[85, 62, 33, 31, 3]) d});
	my $log_before = $node->safe_psql($db,
		q{SELECT string_agg(id || ' ' || at || ' ' || source || ' ' || method || ' ' || status, ',' ORDER BY id) FROM scim.provisioning_log});
	my $seq_before = $node->safe_psql($db, q{SELECT last_value FROM scim.provisioning_log_id_seq});

	$node->safe_psql($db, 'ALTER EXTENSION scim_provision UPDATE');
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'scim_provision'}),
		$current, "$old: updated to $current");

	# the updated catalog is the fresh one
	$node->safe_psql('postgres', "CREATE DATABASE fresh_$db");
	$node->safe_psql("fresh_$db", qq{
		CREATE EXTENSION pg_trgm;
		CREATE EXTENSION scim_provision;
		SELECT scim.log_maintain_step();	-- its partitions ahead, as the update made them
	});
	my @updated = split /\n(?=(?:member|function|column|relation|constraint|index|trigger|type|comment|partition|config) )/,
		$node->safe_psql($db, $catalog_sql);
	my @fresh = split /\n(?=(?:member|function|column|relation|constraint|index|trigger|type|comment|partition|config) )/,
		$node->safe_psql("fresh_$db", $catalog_sql);
	cmp_ok(scalar(@fresh), '>', 100, "$old: the catalog comparison covers the whole extension");
	my %in_fresh = map { $_ => 1 } @fresh;
	my %in_updated = map { $_ => 1 } @updated;
	my @missing = grep { !$in_updated{$_} } @fresh;
	my @extra = grep { !$in_fresh{$_} } @updated;
	is(join("\n----\n", @missing), '', "$old -> $current: nothing of a fresh install is missing after the update");
	is(join("\n----\n", @extra), '', "$old -> $current: the update leaves nothing a fresh install does not have");

	# the old data through the updated extension
	is($node->safe_psql($db,
		q{SELECT string_agg(id || ' ' || at || ' ' || source || ' ' || method || ' ' || status, ',' ORDER BY id) FROM scim.provisioning_log}),
		$log_before, "$old: the System Log is kept, ids and times included");
	is($node->safe_psql($db, q{
		SELECT count(*) FILTER (WHERE l.tableoid::regclass::text
									  <> 'scim_log.provisioning_log_' || to_char(l.at AT TIME ZONE 'UTC', 'YYYYMMDD'))
			   || ' misplaced of ' || count(*) || ' in ' || count(DISTINCT l.tableoid) || ' partitions'
		FROM scim.provisioning_log l}),
		'0 misplaced of 7 in 6 partitions', "$old: every log row is in the partition of its day");
	is($node->safe_psql($db, q{SELECT last_value FROM scim.provisioning_log_id_seq}),
		$seq_before, "$old: the log's sequence is kept");
	is($node->safe_psql($db, qq{
		SELECT scim.log_attempt('scim', 'GET', '/x', NULL, NULL, 200, NULL, NULL) = $seq_before + 1}),
		't', "$old: new log rows continue the sequence");
	is($node->safe_psql($db, q{SELECT count(*) FROM scim.provisioning_log WHERE id IN (SELECT id FROM scim.provisioning_log GROUP BY id HAVING count(*) > 1)}),
		'0', "$old: log ids are unique");
	is($node->safe_psql($db, qq{
		SELECT (body -> 'Resources' -> 0 -> 'name' ->> 'givenName') || ' ' || (body ->> 'totalResults')
		FROM scim.handle('GET', '/Users', 'filter=userName%20eq%20%22ann%40example.com%22', $auth)}),
		'Ann 1', "$old: the old user is found with the old token (fast path)");
	is($node->safe_psql($db, qq{
		SELECT status FROM scim.handle('POST', '/Users', NULL, $auth, '{"userName":"bob\@example.com"}')}),
		'201', "$old: users are created after the update");
	is($node->safe_psql($db, q{SELECT billable FROM scim.users WHERE user_name = 'bob@example.com'}),
		't', "$old: the users trigger runs after the update");
	my ($rc, $out, $err) = $node->psql($db,
		q{INSERT INTO scim.provisioning_log (source, status) VALUES ('elsewhere', 200)});
	like($err, qr/violates check constraint "log_source_check"/, "$old: the log's source is still checked");
}

$node->stop;
done_testing();
