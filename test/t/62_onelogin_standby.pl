# test/t/62_onelogin_standby.pl - a streaming standby runs no OneLogin
# worker; once promoted it starts one, which resumes the primary's sync from
# the last committed page: nothing lost, nothing applied twice.

use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

require "$FindBin::RealBin/onelogin_lib.pl";

my $mock = start_mock();
mock($mock, 'POST', 'generate', { count => 1500, start_id => 1, domain => 'example.com' });

my $primary = new_node('primary', port => 55455, streaming => 1, page_size => 100);
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby', port => 55456);
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# The primary commits 7 of 15 pages, then page 8 hangs.
mock($mock, 'POST', 'fault', { kind => 'stall', on => 'users', skip => 7, delay => 120 });
connect_mock($primary, $mock);
ok(wait_for($primary, 'SELECT run_pages, sync_in_progress FROM scim.sync_status', '7|t'),
	'primary: 7 pages committed, sync in progress');
my $t = time() + 30;
usleep(50_000) while mock_stats($mock)->{faults_injected} < 1 && time() < $t;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'standby in recovery');
is($standby->safe_psql('postgres', 'SELECT run_pages, sync_in_progress FROM scim.sync_status'),
	'7|t', 'standby: the committed cursor has been replicated');
sleep 2;
is( $standby->safe_psql(
		'postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'scim_provision%'"),
	'0', 'standby: no launcher and no worker while in recovery');
my $served = mock_stats($mock)->{users_pages};
is($served, 7, 'seven pages served to the primary');

# The primary goes away in the middle of page 8; the standby takes over.
$primary->stop('immediate');
$standby->promote;
ok( wait_for(
		$standby,
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'scim_provision worker'", '1', 30),
	'promoted: the worker starts');
ok(wait_sync_done($standby, 1, 'default', 60), 'promoted: the sync completes');
db_matches_mock($standby, $mock, 'promoted: final state equals the mock');
is( $standby->safe_psql(
		'postgres',
		"SELECT count(*), count(DISTINCT user_name) FROM scim.provisioning_log WHERE status = 201"),
	'1500|1500', 'promoted: each user applied exactly once across the failover');
is($standby->safe_psql('postgres', 'SELECT pages, run_pages FROM scim.sync_status'),
	'15|15', 'promoted: 15 pages committed in all');
is(mock_stats($mock)->{users_pages}, 15, 'promoted: resumed at page 8, no page fetched twice');
unlike(slurp_file($standby->logfile), qr/scim_provision (worker|launcher) (ERROR|FATAL)/,
	'standby log: no errors from the worker');

$standby->stop;
stop_mock($mock);
done_testing();
