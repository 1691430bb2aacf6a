
# Copyright (c) scim_provision contributors

# test/t/75_log_upkeep.pl - the System Log upkeep of the background worker
# (#12): with the library preloaded, the worker makes the partitions ahead
# and applies the retention every scim_provision.log_maintenance_interval,
# again and again, and once at its start after a restart; pg_dump and a
# restore keep the partitions and their rows.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upkeep');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'scim_provision'
scim_provision.database = 'postgres'
scim_provision.log_maintenance_interval = 1
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_trgm; CREATE EXTENSION scim_provision;');

# A row of a day 200 days ago lands in the DEFAULT partition; the worker
# makes its partition, moves the row in, and drops it as expired (90 days).
sub expired_row
{
	my ($tag) = @_;
	$node->safe_psql('postgres', qq{
		INSERT INTO scim.provisioning_log (at, workspace, source, status, path)
		VALUES (now() - interval '200 days', 'default', 'scim', 200, '/upkeep/$tag')});
}

ok($node->poll_query_until('postgres',
		q{SELECT count(*) >= 8 FROM scim.log_partitions() WHERE upper_bound > now()}),
	'the worker makes the partitions ahead once the extension exists');

expired_row('first');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM scim.provisioning_log WHERE path = '/upkeep/first'}),
	'the worker applies the retention');
ok($node->wait_for_log(qr/scim_provision System Log maintenance: dropped scim_log\.provisioning_log_\d{8}/),
	'it says which partition it dropped');

# on schedule: again, without being woken
my $offset = -s $node->logfile;
expired_row('second');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM scim.provisioning_log WHERE path = '/upkeep/second'}),
	'and again on its next run');
ok($node->wait_for_log(qr/System Log maintenance: dropped/, $offset), 'logged again');

# off: nothing happens; after a restart with a long interval, the worker
# does the upkeep once at its start
$node->safe_psql('postgres', q{ALTER SYSTEM SET scim_provision.log_maintenance_interval = 0; SELECT pg_reload_conf();});
sleep(1);	# a run under way when the reload arrived ends
expired_row('third');
sleep(3);
is($node->safe_psql('postgres', q{SELECT count(*) FROM scim.provisioning_log WHERE path = '/upkeep/third'}), '1',
	'scim_provision.log_maintenance_interval = 0: no upkeep');
$node->safe_psql('postgres', q{ALTER SYSTEM SET scim_provision.log_maintenance_interval = '1h'});
$node->restart;
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM scim.provisioning_log WHERE path = '/upkeep/third'}),
	'after a restart the worker does the upkeep at its start');

# pg_dump keeps the dated partitions (not extension members) with their rows
$node->safe_psql('postgres', q{
	SELECT scim.log_attempt('scim', 'GET', '/upkeep/dumped', NULL, NULL, 200, NULL, NULL);
	INSERT INTO scim.provisioning_log (at, workspace, source, status, path)
	VALUES (now() - interval '20 days', 'default', 'scim', 404, '/upkeep/dumped-old');
	SELECT scim.log_maintain_step();});
my $rows_sql = q{SELECT string_agg(l.id || ' ' || l.tableoid::regclass || ' ' || l.path, ',' ORDER BY l.id)
				 FROM scim.provisioning_log l WHERE l.path LIKE '/upkeep/dumped%'};
my $rows = $node->safe_psql('postgres', $rows_sql);
like($rows, qr/provisioning_log_\d{8} \/upkeep\/dumped,\d+ scim_log\.provisioning_log_\d{8} \/upkeep\/dumped-old$/,
	'rows in their day\'s partitions before the dump');
my $dump = $node->basedir . '/log.sql';
$node->command_ok([ 'pg_dump', '-d', $node->connstr('postgres'), '-f', $dump ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('restored'), '-f', $dump ],
	'the dump restores without an error');
is($node->safe_psql('restored', $rows_sql), $rows, 'the restored log has the same rows in the same partitions');
is($node->safe_psql('restored', q{SELECT count(*) FROM scim.log_partitions()}),
	$node->safe_psql('postgres', q{SELECT count(*) FROM scim.log_partitions()}), 'and the same partitions');
my $max_id = $node->safe_psql('restored', q{SELECT max(id) FROM scim.provisioning_log});
cmp_ok($node->safe_psql('restored', q{SELECT scim.log_attempt('scim', 'GET', '/x', NULL, NULL, 200, NULL, NULL)}),
	'>', $max_id, 'its sequence continues past the restored ids');

$node->stop;
done_testing();
