# test/t/63_onelogin_lifecycle.pl - registration and life cycle of the
# OneLogin worker: the error without shared_preload_libraries, a database
# that does not exist yet, an extension that does not exist yet, DROP
# EXTENSION during a sync (never blocked), CREATE EXTENSION again, and
# binary-upgrade mode.

use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

require "$FindBin::RealBin/onelogin_lib.pl";
our ($ONELOGIN_CLIENT_ID, $ONELOGIN_SECRET);

# ---------------------------------------------------------------------------
# without shared_preload_libraries
# ---------------------------------------------------------------------------
my $plain = new_node('plain', port => 55457, preload => 0);
my ($rc, $out, $err) = $plain->psql('postgres', 'SELECT scim.sync_now()');
like($err, qr/scim_provision is not loaded through shared_preload_libraries/, 'no preload: sync_now fails clearly');
like($err, qr/HINT:  Add scim_provision to shared_preload_libraries/, 'no preload: with a hint');
($rc, $out, $err) = $plain->psql('postgres', "SELECT scim.onelogin_connect('https://x.onelogin.com', 'a', 'b')");
like($err, qr/not loaded through shared_preload_libraries/, 'no preload: onelogin_connect fails clearly');
is($plain->safe_psql('postgres', 'SELECT count(*) FROM scim.sync_status'), '0', 'no preload: sync_status readable');
is($plain->safe_psql('postgres', 'SELECT pid IS NULL FROM scim._worker_activity()'), 't',
	'no preload: no worker activity');
$plain->stop;

# ---------------------------------------------------------------------------
# the worker's database does not exist yet
# ---------------------------------------------------------------------------
my $mock = start_mock();
mock($mock, 'POST', 'users', { users => [ map { ol_user($_) } 1 .. 50 ] });
my $node = new_node('life', port => 55458, database => 'scimdb', extension => 0);
ok( wait_for(
		$node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'scim_provision launcher'", '1'),
	'the launcher runs');
ok($node->wait_for_log(qr/scim_provision is waiting for database "scimdb"/), 'the missing database is reported');
# wake the launcher a few times: it checks again, quietly
for (1 .. 3)
{
	$node->reload;
	usleep(300_000);
}
my $log = slurp_file($node->logfile);
my $count = () = $log =~ /waiting for database "scimdb"/g;
is($count, 1, 'reported once, then waited for quietly');
unlike($log, qr/scim_provision (worker|launcher) (ERROR|FATAL)/, 'no errors or restarts while waiting');
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'scim_provision worker'"),
	'0', 'no worker without its database');

$node->safe_psql('postgres', 'CREATE EXTENSION scim_provision CASCADE');
($rc, $out, $err) = $node->psql('postgres', 'SELECT scim.sync_now()');
like($err, qr/the scim_provision worker does not run in this database/, 'sync_now in another database fails');
like($err, qr/scim_provision.database is "scimdb"/, 'and names the worker\'s database');

$node->safe_psql('postgres', 'CREATE DATABASE scimdb');
$node->reload;    # wake the launcher rather than wait for its next check
ok( wait_for(
		$node,
		"SELECT datname FROM pg_stat_activity WHERE backend_type = 'scim_provision worker'", 'scimdb', 30),
	'once the database exists the worker starts in it');

# ---------------------------------------------------------------------------
# the extension does not exist yet
# ---------------------------------------------------------------------------
ok( wait_for(
		$node,
		"SELECT query FROM pg_stat_activity WHERE backend_type = 'scim_provision worker'",
		'idle: waiting for extension scim_provision'),
	'without the extension the worker idles');
$node->safe_psql('scimdb', 'CREATE EXTENSION scim_provision CASCADE');
$node->safe_psql('scimdb', "SELECT scim.approve_domain('example.com')");
$node->safe_psql('scimdb',
	"SELECT scim.onelogin_connect('$mock->{url}', '$ONELOGIN_CLIENT_ID', '$ONELOGIN_SECRET')");
my $synced = sub {
	my $deadline = time() + 30;
	while (time() < $deadline)
	{
		my $n = $node->safe_psql('scimdb',
			"SELECT count(*) FROM scim.users WHERE title = '$_[0]'");
		return 1 if $n eq $_[1];
		usleep(100_000);
	}
	return 0;
};
ok($synced->('Engineer', '50'), 'after CREATE EXTENSION and onelogin_connect the users arrive');

# ---------------------------------------------------------------------------
# DROP EXTENSION during a sync, CREATE EXTENSION again
# ---------------------------------------------------------------------------
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'scim_provision worker'");
mock($mock, 'POST', 'touch', { ids => [ 1 .. 50 ], set => { title => 'Second' } });
my $faults = mock_stats($mock)->{faults_injected};
mock($mock, 'POST', 'fault', { kind => 'stall', on => 'users', delay => 3 });
$node->safe_psql('scimdb', 'SELECT scim.sync_now()');
my $t = time() + 30;
usleep(50_000) while mock_stats($mock)->{faults_injected} == $faults && time() < $t;
my $t0 = time();
($rc, $out, $err) = $node->psql('scimdb', "SET lock_timeout = '5s'; DROP EXTENSION scim_provision");
is($rc, 0, 'DROP EXTENSION during a transfer succeeds');
cmp_ok(time() - $t0, '<', 2, 'and is not blocked by the worker');
sleep 4;    # the stalled transfer ends, the worker finds no extension
is( $node->safe_psql(
		'postgres', "SELECT pid, query FROM pg_stat_activity WHERE backend_type = 'scim_provision worker'"),
	"$pid|idle: waiting for extension scim_provision",
	'the same worker idles again, without an error');
$log = slurp_file($node->logfile);
unlike($log, qr/scim_provision worker (ERROR|FATAL)/, 'no worker errors around DROP EXTENSION');

$node->safe_psql('scimdb', 'CREATE EXTENSION scim_provision');
$node->safe_psql('scimdb', "SELECT scim.approve_domain('example.com')");
$node->safe_psql('scimdb',
	"SELECT scim.onelogin_connect('$mock->{url}', '$ONELOGIN_CLIENT_ID', '$ONELOGIN_SECRET')");
ok($synced->('Second', '50'), 'after CREATE EXTENSION again the worker syncs into the new tables');
is( $node->safe_psql(
		'postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'scim_provision worker'"),
	$pid, 'still the same worker process');

# ---------------------------------------------------------------------------
# binary-upgrade mode (pg_upgrade's server) registers nothing
# ---------------------------------------------------------------------------
$node->stop;
PostgreSQL::Test::Utils::system_or_bail('pg_ctl', '-w', '-D', $node->data_dir, '-l', $node->logfile,
	'-o', '-b', 'start');
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'scim_provision%'"),
	'0', 'binary-upgrade mode: no launcher, no worker');
PostgreSQL::Test::Utils::system_or_bail('pg_ctl', '-w', '-D', $node->data_dir, '-m', 'fast', 'stop');

stop_mock($mock);
done_testing();
