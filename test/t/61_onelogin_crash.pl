# test/t/61_onelogin_crash.pl - exactly-once effects across crashes:
# kill -9 of the worker in the middle of a page, repeated kills at random
# moments, SIGTERM ending a transfer within a second, and a postmaster
# restart in the middle of a sync.  After each, the final state equals the
# mock's, every user is applied once and no committed page is fetched again.

use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

require "$FindBin::RealBin/onelogin_lib.pl";

my $mock = start_mock();
mock($mock, 'POST', 'generate', { count => 2000, start_id => 1, domain => 'example.com' });

my $node = new_node('crash', port => 55454, page_size => 100);

# Every user applied once: one 201 per user, nothing created twice.
sub applied_once
{
	my ($from_id, $to_id, $msg) = @_;
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*), count(DISTINCT user_name) FROM scim.provisioning_log "
			  . "WHERE status = 201 AND user_name ~ '^user[0-9]+\@example.com\$' "
			  . "AND substring(user_name FROM '[0-9]+')::int BETWEEN $from_id AND $to_id"),
		($to_id - $from_id + 1) . '|' . ($to_id - $from_id + 1), $msg);
}

sub wait_back_up
{
	my $deadline = time() + 60;
	while (time() < $deadline)
	{
		my $rc = eval { ($node->psql('postgres', 'SELECT 1'))[0] };
		return 1 if defined $rc && $rc == 0;
		usleep(100_000);
	}
	return 0;
}

# ---------------------------------------------------------------------------
# kill -9 while page 6 of 20 is being transferred
# ---------------------------------------------------------------------------
mock($mock, 'POST', 'fault', { kind => 'stall', on => 'users', skip => 5, delay => 60 });
connect_mock($node, $mock);
ok(wait_for($node, 'SELECT run_pages, sync_in_progress FROM scim.sync_status', '5|t'),
	'five pages committed, the run in progress');
ok( wait_for(
		$node,
		"SELECT phase LIKE '%fetching users page 6%' FROM scim._worker_activity()", 't'),
	'the worker is inside the transfer of page 6');
is(mock_stats($mock)->{faults_injected}, 1, 'the mock is stalling page 6');
my $pid = worker_pid($node);
ok(kill('KILL', $pid), "kill -9 the worker ($pid)");
ok(wait_back_up(), 'server back after crash recovery');
ok(wait_sync_done($node, 1), 'the sync completed after the crash');
db_matches_mock($node, $mock, 'kill -9 mid-page: final state equals the mock');
applied_once(1, 2000, 'kill -9 mid-page: each user applied exactly once');
is($node->safe_psql('postgres', 'SELECT pages, run_pages, users_seen FROM scim.sync_status'),
	'20|20|2000', 'kill -9 mid-page: 20 pages committed once each');
is(mock_stats($mock)->{users_pages}, 20, 'kill -9 mid-page: the run resumed at page 6, no page fetched twice');
like(slurp_file($node->logfile), qr/scim_provision worker.*was terminated by signal 9/,
	'the server log shows the kill');

# ---------------------------------------------------------------------------
# kill -9 at random moments while 3000 new users arrive
# ---------------------------------------------------------------------------
mock($mock, 'POST', 'users', { users => [ map { ol_user($_) } 5001 .. 8000 ] });
my $before = syncs_completed($node);
$node->safe_psql('postgres', 'SELECT scim.sync_now()');
my $kills = 0;
srand(42);
for my $round (1 .. 3)
{
	usleep(200_000 + int(rand(900_000)));
	my ($rc, $p) = eval {
		$node->psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'scim_provision worker'");
	};
	next unless defined $rc && $rc == 0 && $p =~ /^\d+$/;
	my $busy = $node->safe_psql('postgres', 'SELECT sync_in_progress OR syncs_completed = ' . $before . ' FROM scim.sync_status');
	next unless $busy eq 't';
	$kills++ if kill('KILL', $p);
	wait_back_up();
}
note("killed the worker $kills times");
ok(wait_sync_done($node, $before + 1, 'default', 120), 'the sync completed after the kills');
db_matches_mock($node, $mock, 'random kills: final state equals the mock');
applied_once(5001, 8000, 'random kills: each new user applied exactly once');
is( $node->safe_psql(
		'postgres', 'SELECT count(*) FROM scim.onelogin_users'),
	'5000', 'random kills: every OneLogin id mapped once');

# ---------------------------------------------------------------------------
# SIGTERM ends a transfer within a second
# ---------------------------------------------------------------------------
mock($mock, 'POST', 'touch', { ids => [7], set => { title => 'After SIGTERM' } });
my $faults = mock_stats($mock)->{faults_injected};
mock($mock, 'POST', 'fault', { kind => 'stall', on => 'users', delay => 60 });
$node->safe_psql('postgres', 'SELECT scim.sync_now()');
ok(wait_for($node, "SELECT phase LIKE '%fetching users page 1%' FROM scim._worker_activity()", 't'),
	'the worker is inside a transfer');
my $waited = time() + 10;
usleep(50_000) while mock_stats($mock)->{faults_injected} == $faults && time() < $waited;
$pid = worker_pid($node);
my $t0 = time();
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
usleep(10_000) while kill(0, $pid) && time() - $t0 < 10;
my $elapsed = time() - $t0;
cmp_ok($elapsed, '<', 1.0, sprintf('SIGTERM ended the worker within a second (%.3f s)', $elapsed));
ok(wait_for($node, "SELECT title FROM scim.users WHERE external_id = '7'", 'After SIGTERM', 60),
	'the launcher restarted the worker and the sync finished');
like(slurp_file($node->logfile), qr/terminating background worker "scim_provision worker" due to administrator command/,
	'SIGTERM logged');

# ---------------------------------------------------------------------------
# postmaster restart in the middle of a sync
# ---------------------------------------------------------------------------
ok(wait_for($node, 'SELECT sync_in_progress FROM scim.sync_status', 'f'), 'no sync in progress');
mock($mock, 'POST', 'touch', { ids => [ 100 .. 399 ], set => { title => 'After restart' } });
$faults = mock_stats($mock)->{faults_injected};
mock($mock, 'POST', 'fault', { kind => 'stall', on => 'users', skip => 1, delay => 60 });
my $pages = mock_stats($mock)->{users_pages};
$node->safe_psql('postgres', 'SELECT scim.sync_now()');
$waited = time() + 30;
usleep(50_000) while mock_stats($mock)->{faults_injected} == $faults && time() < $waited;
ok( wait_for(
		$node, "SELECT phase LIKE '%fetching users page 2%' AND sync_in_progress FROM scim._worker_activity(), scim.sync_status", 't'),
	'the worker is inside the transfer of page 2, page 1 committed');
$t0 = time();
$node->restart;
cmp_ok(time() - $t0, '<', 15, 'a fast restart is not held up by the transfer');
ok(wait_for($node, "SELECT count(*) FROM scim.users WHERE title = 'After restart'", '300', 60),
	'after the restart the sync resumes and finishes');
applied_once(1, 2000, 'after the restart no user was created twice');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM scim.provisioning_log WHERE user_name ~ '^user([1-3][0-9][0-9])\@' AND method = 'PUT' AND status = 200 AND substring(user_name FROM '[0-9]+')::int BETWEEN 100 AND 399"),
	'300', 'after the restart each changed user was updated exactly once');
db_matches_mock($node, $mock, 'after the restart the final state equals the mock');
ok(mock_stats($mock)->{users_pages} - $pages >= 3, 'the restarted worker fetched the remaining pages');

$node->stop;
stop_mock($mock);
done_testing();
