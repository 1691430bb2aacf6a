# test/t/64_onelogin_gaps.pl - OneLogin's offset paging shifting under a
# sync (#16): a user deleted or inserted while a later page is fetched, on a
# full and on an incremental run, and both while the same page is fetched
# (Total-Count unchanged: the deletion event shows it); after each run the database holds exactly
# the mock's users, and nothing is applied twice.  Then the back-off: a
# failure on every other page waits about the base delay each time, and a
# 429 waits what the server said without growing the back-off.

use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

require "$FindBin::RealBin/onelogin_lib.pl";

my $mock = start_mock();
# 250 users last updated years ago (ids 11..260; ids below 11 are free for
# users inserted "before the cursor")
mock($mock, 'POST', 'generate',
	{ count => 250, start_id => 11, updated_at => '2019-03-01T00:00:00Z', spread_seconds => 3600 });

my $node = new_node('gaps', port => 55533, page_size => 100, max_backoff => 60);

sub active_count
{
	return $node->safe_psql('postgres', "SELECT count(*) FROM scim.users WHERE workspace = 'default' AND active");
}

sub log_id
{
	return $node->safe_psql('postgres', 'SELECT coalesce(max(id), 0) FROM scim.provisioning_log');
}

# users applied more than once since a log id (a provision row per user and change)
sub applied_twice
{
	my ($since) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM (SELECT user_name FROM scim.provisioning_log WHERE id > $since"
		  . " AND source = 'onelogin' AND method <> 'DELETE' AND user_name IS NOT NULL"
		  . " GROUP BY user_name HAVING count(*) > 1) d");
}

sub relists
{
	return $node->safe_psql('postgres', 'SELECT relists FROM scim.sync_status');
}

# ---------------------------------------------------------------------------
# full run, a user on page 1 deleted while page 2 is served (the issue's
# reproduction): user 111, first of page 2, moves up onto page 1
# ---------------------------------------------------------------------------
mock($mock, 'POST', 'on_page', { page => 2, delete => [13] });
my $since = log_id();
connect_mock($node, $mock);
ok(wait_sync_done($node, 1), 'full run with a deletion during page 2 completes');
is(mock_stats($mock)->{page_hooks_fired}, 1, 'the mock shifted its pages under the sync');
is(active_count(), '249', 'full run, deletion: 249 users right after the run');
db_matches_mock($node, $mock, 'full run, deletion: the database holds the mock\'s users');
is($node->safe_psql('postgres', "SELECT count(*) FROM scim.users WHERE external_id = '111'"),
	'1', 'full run, deletion: the user the shift skipped is there');
ok(relists() >= 1, 'full run, deletion: the run listed the users again');
is(applied_twice($since), '0', 'full run, deletion: no user applied twice');
for (1 .. 2)
{
	ok(sync_and_wait($node), "sync_now $_ after the full run");
}
is(active_count(), '249', 'two sync_now() later: still 249');
db_matches_mock($node, $mock, 'two sync_now() later: the database holds the mock\'s users');

# ---------------------------------------------------------------------------
# incremental run, a changed user deleted while page 2 is served: the first
# changed user of page 2 moves up and would keep its old title
# ---------------------------------------------------------------------------
mock($mock, 'POST', 'touch', { ids => [ 21 .. 170 ], set => { title => 'Moved' } });
mock($mock, 'POST', 'on_page', { page => 2, delete => [22] });
$since = log_id();
my $before = relists();
ok(sync_and_wait($node), 'incremental run with a deletion during page 2 completes');
is($node->safe_psql('postgres', 'SELECT run_kind FROM scim.sync_status'), 'incremental', 'it was incremental');
db_matches_mock($node, $mock, 'incremental run, deletion: the database holds the mock\'s users');
is($node->safe_psql('postgres', "SELECT title FROM scim.users WHERE external_id = '121'"),
	'Moved', 'incremental run, deletion: the skipped user\'s change is applied');
ok(relists() > $before, 'incremental run, deletion: listed again');
is(applied_twice($since), '0', 'incremental run, deletion: no user applied twice');

# ---------------------------------------------------------------------------
# incremental run, a user inserted before the cursor while page 2 is served
# ---------------------------------------------------------------------------
mock($mock, 'POST', 'touch', { ids => [ 31 .. 180 ], set => { title => 'Again' } });
mock($mock, 'POST', 'on_page', { page => 2, insert => [ ol_user(2) ] });
$since = log_id();
ok(sync_and_wait($node), 'incremental run with an insertion during page 2 completes');
is($node->safe_psql('postgres', "SELECT count(*) FROM scim.users WHERE external_id = '2' AND active"),
	'1', 'incremental run, insertion: the inserted user is there after the run');
db_matches_mock($node, $mock, 'incremental run, insertion: the database holds the mock\'s users');
is(applied_twice($since), '0', 'incremental run, insertion: no user applied twice');

# ---------------------------------------------------------------------------
# full run, a user inserted before the cursor while page 3 is served
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf', "scim_provision.reconcile_interval = 1\n");
$node->reload;
sleep 1;
mock($mock, 'POST', 'on_page', { page => 3, insert => [ ol_user(3) ] });
$since = log_id();
ok(sync_and_wait($node), 'full run with an insertion during page 3 completes');
is($node->safe_psql('postgres', 'SELECT run_kind FROM scim.sync_status'), 'full', 'it was full');
is($node->safe_psql('postgres', "SELECT count(*) FROM scim.users WHERE external_id = '3' AND active"),
	'1', 'full run, insertion: the inserted user is there after the run');
db_matches_mock($node, $mock, 'full run, insertion: the database holds the mock\'s users');
is(applied_twice($since), '0', 'full run, insertion: no user applied twice');
$node->append_conf('postgresql.conf', "scim_provision.reconcile_interval = 86400\n");
$node->reload;

# ---------------------------------------------------------------------------
# a deletion AND an insertion while the same page is served: Total-Count is
# unchanged, only the deletion event shows the shift.  The new user takes a
# larger id (the end of the list, as OneLogin's new users do).
# ---------------------------------------------------------------------------

# incremental run: the first changed user of page 2 moves up onto page 1
mock($mock, 'POST', 'touch', { ids => [ 21 .. 180 ], set => { title => 'Both' } });
mock($mock, 'POST', 'on_page', { page => 2, delete => [25], insert => [ ol_user(1001, title => 'Both') ] });
$since = log_id();
my $hooks = mock_stats($mock)->{page_hooks_fired};
ok(sync_and_wait($node), 'incremental run with a deletion and an insertion during page 2 completes');
is($node->safe_psql('postgres', 'SELECT run_kind FROM scim.sync_status'), 'incremental', 'it was incremental');
is(mock_stats($mock)->{page_hooks_fired}, $hooks + 1, 'incremental run, deletion and insertion: the mock shifted');
is(mock_stats($mock)->{last_sort}, '+id', 'the worker asks for the users in id order');
db_matches_mock($node, $mock, 'incremental run, deletion and insertion: the database holds the mock\'s users');
is(applied_twice($since), '0', 'incremental run, deletion and insertion: no user applied twice');

# full run: users that no incremental run fetches (updated years ago, never
# seen) right after the page boundary; one of them moves up onto page 1
my $known = grep { $_->{id} < 301 } @{ mock($mock, 'GET', 'users') };
mock($mock, 'POST', 'generate',
	{ count => 5, start_id => 301, updated_at => '2019-03-01T00:00:00Z', spread_seconds => 60 });
$node->append_conf('postgresql.conf',
	"scim_provision.page_size = $known\nscim_provision.reconcile_interval = 1\n");
$node->reload;
sleep 1;
mock($mock, 'POST', 'on_page', { page => 2, delete => [15], insert => [ ol_user(1002) ] });
$since = log_id();
ok(sync_and_wait($node), 'full run with a deletion and an insertion during page 2 completes');
is($node->safe_psql('postgres', 'SELECT run_kind FROM scim.sync_status'), 'full', 'it was full');
is(mock_stats($mock)->{page_hooks_fired}, $hooks + 2, 'full run, deletion and insertion: the mock shifted');
is($node->safe_psql('postgres', "SELECT count(*) FROM scim.users WHERE external_id IN ('301', '1002') AND active"),
	'2', 'full run, deletion and insertion: the user the shift skipped and the new user are there');
db_matches_mock($node, $mock, 'full run, deletion and insertion: the database holds the mock\'s users');
is(applied_twice($since), '0', 'full run, deletion and insertion: no user applied twice');
$node->append_conf('postgresql.conf', "scim_provision.page_size = 100\nscim_provision.reconcile_interval = 86400\n");
$node->reload;

# ---------------------------------------------------------------------------
# back-off: a 500 on every other page waits about the base delay each time
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf', "scim_provision.page_size = 25\n");
$node->reload;
mock($mock, 'POST', 'touch', { ids => [ 41 .. 240 ], set => { title => 'Alternate' } });
# faults are taken in order, each skip counted per request: pages 1, 3, 5, 7
for my $skip (0, 2, 4, 6)
{
	mock($mock, 'POST', 'fault', { kind => 'status', status => 500, on => 'users', skip => $skip });
}
$since = log_id();
ok(sync_and_wait($node, 'default', 90), 'a sync with a 500 on every other page completes');
my @waits = split /\n/,
  $node->safe_psql('postgres',
	"SELECT substring(detail FROM 'next attempt in ([0-9.]+) s') FROM scim.provisioning_log"
	  . " WHERE id > $since AND status = 500 ORDER BY id");
is(scalar(@waits), 4, 'alternate pages: four failures logged');
# base delay 1 s with equal jitter: 0.5 .. 1.0 s (growing it would give 1-2, 2-4, 4-8 s)
ok(!grep({ $_ < 0.5 || $_ > 1.05 } @waits), "alternate pages: each wait about the base delay (@waits)");
is($node->safe_psql('postgres', 'SELECT state, consecutive_failures FROM scim.sync_status'),
	'idle|0', 'alternate pages: no failures left over');
db_matches_mock($node, $mock, 'alternate pages: every change applied');

# consecutive failures of one page still double
mock($mock, 'POST', 'touch', { ids => [ 41 .. 60 ], set => { title => 'Twice' } });
mock($mock, 'POST', 'fault', { kind => 'status', status => 500, on => 'users', count => 2 });
$since = log_id();
ok(sync_and_wait($node, 'default', 60), 'two 500s in a row on one page, then success');
@waits = split /\n/,
  $node->safe_psql('postgres',
	"SELECT substring(detail FROM 'next attempt in ([0-9.]+) s') FROM scim.provisioning_log"
	  . " WHERE id > $since AND status = 500 ORDER BY id");
ok(@waits == 2 && $waits[0] <= 1.05 && $waits[1] >= 1.0 && $waits[1] <= 2.05,
	"one page failing twice: the back-off doubles (@waits)");

# a 429 waits for Retry-After and does not grow the back-off
mock($mock, 'POST', 'touch', { ids => [ 41 .. 60 ], set => { title => 'Limited' } });
mock($mock, 'POST', 'fault', { kind => '429', on => 'users', retry_after => 2 });
mock($mock, 'POST', 'fault', { kind => 'status', status => 500, on => 'users' });
$since = log_id();
ok(sync_and_wait($node, 'default', 60), '429 then 500 on one page, then success');
my @rows = split /\n/,
  $node->safe_psql('postgres',
	"SELECT status || ' ' || substring(detail FROM 'next attempt in ([0-9.]+) s') FROM scim.provisioning_log"
	  . " WHERE id > $since AND status IN (429, 500) ORDER BY id");
is(scalar(@rows), 2, '429 then 500: both logged');
like($rows[0] // '', qr/^429 2\.0$/, '429: waits what Retry-After says');
ok(($rows[1] // '') =~ /^500 ([0-9.]+)$/ && $1 >= 0.5 && $1 <= 1.05,
	"429 then 500: the 500 waits the base delay, the 429 did not count (@rows)");
db_matches_mock($node, $mock, '429 and 500: every change applied');

$node->stop;
stop_mock($mock);
done_testing();
