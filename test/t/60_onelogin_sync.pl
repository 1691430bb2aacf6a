# test/t/60_onelogin_sync.pl - the OneLogin pull against the mock: mapping,
# first full sync, incremental change, deactivation, deletion by event,
# reconciliation, 429 with Retry-After, a burst of 500s, garbage and
# truncated pages, token expiry and refusal, SIGHUP changing the interval,
# secrets, and a second workspace served by the same worker.

use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use JSON::PP;

require "$FindBin::RealBin/onelogin_lib.pl";
our ($ONELOGIN_CLIENT_ID, $ONELOGIN_SECRET);

my $mock = start_mock();
mock($mock, 'POST', 'users', { users => [ map { ol_user($_) } 1001 .. 1120 ] });
mock($mock, 'POST', 'users',
	{ users => [ ol_user(2001, username => 'mallory@evil.com', email => 'mallory@evil.com') ] });

my $node = new_node('sync', port => 55452, page_size => 25);

# ---------------------------------------------------------------------------
# mapping (scim._onelogin_map_user, the C mapping the worker applies)
# ---------------------------------------------------------------------------
sub map_is
{
	my ($in, $expected, $name) = @_;
	my $got = $node->safe_psql('postgres', "SELECT scim._onelogin_map_user('$in'::jsonb)");
	my $same = $node->safe_psql('postgres', "SELECT '$got'::jsonb = '$expected'::jsonb");
	is($same, 't', $name) or diag("got $got");
}

map_is(
	'{"id": 7, "username": "kelly@example.com", "email": "kelly@example.com", "firstname": "Kelly",'
	  . ' "lastname": "Slater", "title": "Surfer", "phone": "+64272001122", "company": "WSL",'
	  . ' "department": "Waves", "status": 1, "state": 1, "role_ids": [1, 2],'
	  . ' "custom_attributes": {"usertype": "external", "food": "chicken"}}',
	'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],'
	  . ' "externalId": "7", "userName": "kelly@example.com", "name": {"givenName": "Kelly", "familyName": "Slater"},'
	  . ' "emails": [{"value": "kelly@example.com", "type": "work", "primary": true}], "title": "Surfer",'
	  . ' "phoneNumbers": [{"value": "+64272001122", "type": "work", "primary": true}], "userType": "external",'
	  . ' "active": true, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"organization": "WSL", "department": "Waves"}}',
	'map: every synced attribute');
map_is(
	'{"id": 8, "username": "", "email": "b@example.com", "firstname": "", "lastname": null, "title": null,'
	  . ' "phone": "", "company": null, "status": 2, "custom_attributes": {"usertype": null}}',
	'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "externalId": "8", "userName": "b@example.com",'
	  . ' "emails": [{"value": "b@example.com", "type": "work", "primary": true}], "active": false}',
	'map: empty attributes are left out, userName falls back to email, status 2 is inactive');
map_is('{"id": 9, "username": "c@example.com", "state": 2}',
	'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "externalId": "9", "userName": "c@example.com", "active": false}',
	'map: state 2 (rejected) is inactive');
map_is('{"id": 10, "username": "d@example.com"}',
	'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "externalId": "10", "userName": "d@example.com"}',
	'map: without status or state "active" is left out');
my ($rc, $out, $err) = $node->psql('postgres', "SELECT scim._onelogin_map_user('[1]')");
like($err, qr/invalid OneLogin user/, 'map: a non-object is refused');
($rc, $out, $err) = $node->psql('postgres', "SELECT scim._onelogin_map_user('{\"id\": \"x\"}')");
like($err, qr/is not a non-negative integer/, 'map: a non-numeric id is refused');
($rc, $out, $err) = $node->psql('postgres', "ALTER SYSTEM SET scim_provision.onelogin_inactive_statuses = '2,x'");
like($err, qr/invalid value for parameter/, 'the inactive status list is validated');

# ---------------------------------------------------------------------------
# first full sync
# ---------------------------------------------------------------------------
connect_mock($node, $mock);
ok(wait_sync_done($node, 1), 'first sync completed');
is($node->safe_psql('postgres', "SELECT count(*) FROM scim.users WHERE workspace = 'default'"),
	'120', 'first sync: 120 users on the approved domain provisioned');
db_matches_mock($node, $mock, 'first sync: the database holds the mock\'s users');
is( $node->safe_psql(
		'postgres',
		"SELECT user_name, given_name, family_name, email, title, phone, organization, department, user_type, active, billable, external_id "
		  . "FROM scim.users WHERE external_id = '1042'"),
	'user1042@example.com|First1042|Last1042|user1042@example.com|Engineer|+15550001042|Example Corp|R&D|Regular|t|t|1042',
	'first sync: attributes mapped');
is( $node->safe_psql(
		'postgres',
		"SELECT status, scim_type, source, user_name FROM scim.provisioning_log WHERE user_name = 'mallory\@evil.com'"),
	'400|invalidValue|onelogin|mallory@evil.com',
	'first sync: a user off the approved domains is refused and logged');
is( $node->safe_psql(
		'postgres', "SELECT count(*), count(*) FILTER (WHERE source = 'onelogin') FROM scim.provisioning_log"),
	'121|121', 'first sync: one System Log row per user attempt, source onelogin');
is( $node->safe_psql(
		'postgres',
		"SELECT state, run_kind, run_pages, run_users_seen, run_users_applied, last_reconcile_at IS NOT NULL FROM scim.sync_status"
	),
	'idle|full|5|121|121|t',
	'first sync: sync_status shows a full run of 5 pages');
my $stats = mock_stats($mock);
like($stats->{fields_seen}, qr/custom_attributes/, 'the users request names its fields explicitly');
is(scalar(@{ $stats->{updated_since_seen} }), 0, 'the first sync has no updated_since');
like($stats->{user_agents}[0], qr{^scim_provision/\d}, 'User-Agent is scim_provision/<version>');

# ---------------------------------------------------------------------------
# incremental change
# ---------------------------------------------------------------------------
my $logged = $node->safe_psql('postgres', 'SELECT count(*) FROM scim.provisioning_log');
mock($mock, 'POST', 'touch',
	{ ids => [1005], set => { title => 'Lead', firstname => '', department => undef,
		custom_attributes => { usertype => 'collaborator' } } });
ok(sync_and_wait($node), 'incremental sync completed');
is( $node->safe_psql(
		'postgres', "SELECT title, given_name, department, user_type FROM scim.users WHERE external_id = '1005'"),
	'Lead|First1005|R&D|Collaborator',
	'incremental: the change is applied, attributes OneLogin leaves empty keep their values');
is($node->safe_psql('postgres', 'SELECT count(*) FROM scim.provisioning_log') - $logged,
	1, 'incremental: only the changed user is applied (one log row)');
is($node->safe_psql('postgres', 'SELECT run_kind, run_users_applied FROM scim.sync_status'),
	'incremental|1', 'incremental: sync_status shows one user applied');
$stats = mock_stats($mock);
ok(scalar(@{ $stats->{updated_since_seen} }) > 0, 'incremental: updated_since sent');

# ---------------------------------------------------------------------------
# deactivation and reactivation (status policy)
# ---------------------------------------------------------------------------
mock($mock, 'POST', 'touch', { ids => [1006], set => { status => 2 } });
ok(sync_and_wait($node), 'sync after suspension');
is( $node->safe_psql(
		'postgres',
		"SELECT active, billable, deactivated_at IS NOT NULL FROM scim.users WHERE external_id = '1006'"),
	'f|f|t', 'deactivation: a suspended OneLogin user is deactivated and its seat released');
mock($mock, 'POST', 'touch', { ids => [1006], set => { status => 1 } });
ok(sync_and_wait($node), 'sync after reactivation');
is($node->safe_psql('postgres', "SELECT active, billable FROM scim.users WHERE external_id = '1006'"),
	't|t', 'reactivation: active and billable again');

# ---------------------------------------------------------------------------
# deletion by event (default policy deactivates; "delete" removes the row)
# ---------------------------------------------------------------------------
mock($mock, 'POST', 'delete', { ids => [1007] });
ok(sync_and_wait($node), 'sync after a deletion');
is($node->safe_psql('postgres', "SELECT active FROM scim.users WHERE external_id = '1007'"),
	'f', 'deletion event: the user is deactivated (policy deactivate)');
is( $node->safe_psql(
		'postgres',
		"SELECT method, status, source FROM scim.provisioning_log WHERE method = 'DELETE' ORDER BY id DESC LIMIT 1"),
	'DELETE|204|onelogin', 'deletion event: logged as a DELETE');
$node->safe_psql('postgres', "SELECT scim.set_deletion_policy('delete')");
mock($mock, 'POST', 'delete', { ids => [1008] });
ok(sync_and_wait($node), 'sync after a deletion under policy delete');
is($node->safe_psql('postgres', "SELECT count(*) FROM scim.users WHERE external_id = '1008'"),
	'0', 'deletion event: the row is removed under policy delete');
$node->safe_psql('postgres', "SELECT scim.set_deletion_policy('deactivate')");
is($node->safe_psql('postgres', 'SELECT events_seen >= 2, deprovisioned FROM scim.sync_status'),
	't|2', 'sync_status counts events and deprovisionings');

# ---------------------------------------------------------------------------
# reconciliation: deletions the events missed
# ---------------------------------------------------------------------------
mock($mock, 'POST', 'delete', { ids => [ 1009, 1010 ], event => JSON::PP::false });
ok(sync_and_wait($node), 'incremental sync after silent deletions');
is($node->safe_psql('postgres', "SELECT string_agg(active::text, ',') FROM scim.users WHERE external_id IN ('1009', '1010')"),
	'true,true', 'without an event an incremental sync cannot see a deletion');
$node->append_conf('postgresql.conf', "scim_provision.reconcile_interval = 1\n");
$node->reload;
my $gets = mock_stats($mock)->{user_gets};
ok(sync_and_wait($node), 'sync with a reconciliation due');
is($node->safe_psql('postgres', "SELECT string_agg(active::text, ',') FROM scim.users WHERE external_id IN ('1009', '1010')"),
	'false,false', 'reconciliation: users gone from OneLogin are deprovisioned');
is(mock_stats($mock)->{user_gets} - $gets, 2, 'reconciliation: each unseen id was checked once by id');
is($node->safe_psql('postgres', "SELECT run_kind, last_reconcile_at > now() - interval '1 minute' FROM scim.sync_status"),
	'full|t', 'reconciliation: recorded in sync_status');
$node->append_conf('postgresql.conf', "scim_provision.reconcile_interval = 86400\n");
$node->reload;
db_matches_mock($node, $mock, 'after reconciliation the database matches the mock');

# ---------------------------------------------------------------------------
# 429 with Retry-After
# ---------------------------------------------------------------------------
mock($mock, 'POST', 'fault', { kind => '429', on => 'users', retry_after => 3 });
mock($mock, 'POST', 'touch', { ids => [1011], set => { title => 'Rate limited' } });
ok(sync_and_wait($node), 'sync completes after a 429');
is( $node->safe_psql(
		'postgres',
		"SELECT status, source, path FROM scim.provisioning_log WHERE status = 429"),
	'429|onelogin|/api/2/users', '429: logged');
my $waited = $node->safe_psql(
	'postgres',
	"SELECT extract(epoch FROM (SELECT at FROM scim.provisioning_log WHERE user_name = 'user1011\@example.com' ORDER BY id DESC LIMIT 1)"
	  . " - (SELECT at FROM scim.provisioning_log WHERE status = 429))");
cmp_ok($waited, '>=', 2.9, "429: Retry-After honoured (waited ${waited}s)");
is($node->safe_psql('postgres', "SELECT title FROM scim.users WHERE external_id = '1011'"),
	'Rate limited', '429: the change arrives afterwards');

# without Retry-After the X-RateLimit-Reset header says how long to wait
my $last429 = $node->safe_psql('postgres', 'SELECT max(id) FROM scim.provisioning_log WHERE status = 429');
mock($mock, 'POST', 'fault', { kind => '429', on => 'users', reset => 2 });
mock($mock, 'POST', 'touch', { ids => [1014], set => { title => 'Reset header' } });
ok(sync_and_wait($node), 'sync completes after a 429 with X-RateLimit-Reset');
$waited = $node->safe_psql(
	'postgres',
	"SELECT extract(epoch FROM (SELECT at FROM scim.provisioning_log WHERE user_name = 'user1014\@example.com' ORDER BY id DESC LIMIT 1)"
	  . " - (SELECT at FROM scim.provisioning_log WHERE status = 429 AND id > $last429))");
cmp_ok($waited, '>=', 1.9, "429: X-RateLimit-Reset honoured (waited ${waited}s)");

# ---------------------------------------------------------------------------
# a request that outlives scim_provision.request_timeout
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf', "scim_provision.request_timeout = '1s'\n");
$node->reload;
mock($mock, 'POST', 'fault', { kind => 'slow', on => 'users', delay => 3 });
mock($mock, 'POST', 'touch', { ids => [1015], set => { title => 'After timeout' } });
ok(sync_and_wait($node), 'sync completes after a timed-out request');
is( $node->safe_psql(
		'postgres',
		"SELECT status, detail LIKE 'request to OneLogin failed: %timed out%' FROM scim.provisioning_log WHERE status = 504"),
	'504|t', 'timeout: logged as 504 with libcurl\'s reason');
is($node->safe_psql('postgres', "SELECT title FROM scim.users WHERE external_id = '1015'"),
	'After timeout', 'timeout: the retry applies the change');
$node->append_conf('postgresql.conf', "scim_provision.request_timeout = '60s'\n");
$node->reload;

# ---------------------------------------------------------------------------
# a burst of 500s, then recovery (exponential back-off with jitter)
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf', "scim_provision.max_backoff = 4\n");
$node->reload;
mock($mock, 'POST', 'fault', { kind => 'status', status => 500, count => 3, on => 'users' });
mock($mock, 'POST', 'touch', { ids => [1012], set => { title => 'After outage' } });
ok(sync_and_wait($node, 'default', 60), 'sync completes after a burst of 500s');
my @delays = split /\n/,
  $node->safe_psql('postgres',
	"SELECT substring(detail FROM 'next attempt in ([0-9.]+) s') FROM scim.provisioning_log WHERE status = 500 ORDER BY id");
is(scalar(@delays), 3, '500s: each failure logged');
ok($delays[0] >= 0.5 && $delays[0] <= 1.0
	  && $delays[1] >= 1.0 && $delays[1] <= 2.0
	  && $delays[2] >= 2.0 && $delays[2] <= 4.0,
	"500s: back-off doubles with jitter (@delays)");
is($node->safe_psql('postgres', "SELECT title FROM scim.users WHERE external_id = '1012'"),
	'After outage', '500s: recovery applies the change');
is($node->safe_psql('postgres', 'SELECT state, consecutive_failures FROM scim.sync_status'),
	'idle|0', '500s: state idle again');
$node->append_conf('postgresql.conf', "scim_provision.max_backoff = 1\n");
$node->reload;

# ---------------------------------------------------------------------------
# garbage and truncated JSON: the page is retried, nothing of it applied
# ---------------------------------------------------------------------------
for my $kind ('garbage', 'truncate')
{
	my @ids = map { 1020 + $_ } 0 .. 29;
	mock($mock, 'POST', 'touch', { ids => \@ids, set => { title => "Title $kind" } });
	# page 1 is fine, page 2 arrives broken
	mock($mock, 'POST', 'fault', { kind => $kind, on => 'users', skip => 1 });
	my $pages = mock_stats($mock)->{users_pages};
	my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM scim.provisioning_log');
	ok(sync_and_wait($node), "$kind: sync completes");
	is( $node->safe_psql(
			'postgres', "SELECT count(*) FROM scim.users WHERE title = 'Title $kind'"),
		'30', "$kind: every user of both pages applied");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM scim.provisioning_log WHERE id > $before AND status = 502 AND detail LIKE 'malformed users page 2%'"),
		'1', "$kind: the broken page is logged as malformed");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM scim.provisioning_log WHERE id > $before AND user_name LIKE 'user10__\@example.com'"),
		'30', "$kind: each user applied exactly once");
	# the broken answer is not counted as a page served; a page fetched
	# twice would make the mock serve one page more than the run committed
	is(mock_stats($mock)->{users_pages} - $pages,
		$node->safe_psql('postgres', 'SELECT run_pages FROM scim.sync_status'),
		"$kind: no page was fetched twice");
}

# ---------------------------------------------------------------------------
# access token: expiry (401, minted again once) and refusal
# ---------------------------------------------------------------------------
my $minted = mock_stats($mock)->{tokens_minted};
mock($mock, 'POST', 'expire_tokens');
my $failures = $node->safe_psql('postgres', 'SELECT count(*) FROM scim.provisioning_log WHERE status = 401');
ok(sync_and_wait($node), 'sync after the token expired');
is(mock_stats($mock)->{tokens_minted} - $minted, 1, 'token: minted again once after a 401');
is($node->safe_psql('postgres', 'SELECT count(*) FROM scim.provisioning_log WHERE status = 401'),
	$failures, 'token: a 401 cured by a fresh token is not a failure');
ok(sync_and_wait($node), 'another sync');
is(mock_stats($mock)->{tokens_minted} - $minted, 1, 'token: kept in memory until it expires');

mock($mock, 'POST', 'fault', { kind => 'unauthorized', on => 'users', count => 1000 });
$node->safe_psql('postgres', 'SELECT scim.sync_now()');
ok( wait_for(
		$node,
		"SELECT state = 'failing' AND last_error LIKE '%freshly minted access token (HTTP 401%' FROM scim.sync_status",
		't'),
	'token: a 401 on a fresh token marks the connection failing');
is( $node->safe_psql(
		'postgres',
		"SELECT status, path FROM scim.provisioning_log WHERE status = 401 ORDER BY id DESC LIMIT 1"),
	'401|/api/2/users', 'token: the refusal is logged');
mock($mock, 'POST', 'clear_faults');
ok(sync_and_wait($node), 'failing connection recovers once OneLogin accepts again');
is($node->safe_psql('postgres', 'SELECT state FROM scim.sync_status'), 'idle', 'state idle after recovery');

# ---------------------------------------------------------------------------
# SIGHUP changes the interval
# ---------------------------------------------------------------------------
my $done = syncs_completed($node);
mock($mock, 'POST', 'touch', { ids => [1013], set => { title => 'Periodic' } });
sleep 3;
is($node->safe_psql('postgres', "SELECT title FROM scim.users WHERE external_id = '1013'"),
	'Engineer', 'sync_interval 3600: no sync yet');
$node->append_conf('postgresql.conf', "scim_provision.sync_interval = 1\n");
$node->reload;
ok(wait_for($node, "SELECT title FROM scim.users WHERE external_id = '1013'", 'Periodic', 15),
	'after SIGHUP with sync_interval = 1 the periodic sync picks the change up');
ok(wait_sync_done($node, $done + 2), 'and keeps syncing every second');
$node->append_conf('postgresql.conf', "scim_provision.sync_interval = 3600\n");
$node->reload;

# ---------------------------------------------------------------------------
# secrets
# ---------------------------------------------------------------------------
($rc, $out, $err) = $node->psql('postgres', 'SET ROLE scim_client; SELECT client_secret FROM scim.onelogin_connections');
like($err, qr/permission denied/, 'scim_client cannot read the credentials');
($rc, $out, $err) = $node->psql('postgres', 'SET ROLE scim_reader; SELECT client_secret FROM scim.onelogin_connections');
like($err, qr/permission denied/, 'scim_reader cannot read the credentials');
($rc, $out, $err) = $node->psql('postgres', 'SET ROLE scim_client; SELECT scim.sync_now()');
like($err, qr/permission denied/, 'scim_client cannot call sync_now');
is($node->safe_psql('postgres', 'SET ROLE scim_reader; SELECT state FROM scim.sync_status'),
	'idle', 'scim_reader reads sync_status');
unlike(
	$node->safe_psql('postgres', 'SELECT row_to_json(s)::text FROM scim.sync_status s'),
	qr/\Q$ONELOGIN_SECRET\E|\Q$ONELOGIN_CLIENT_ID\E/,
	'sync_status shows no credentials');
($rc, $out, $err) = $node->psql('postgres',
	"SELECT scim.onelogin_connect('ftp://nowhere', 'id', 'SECRET-IN-A-FAILED-CALL')");
like($err, qr/invalid OneLogin base URL/, 'onelogin_connect validates the URL');
unlike($err, qr/SECRET-IN-A-FAILED-CALL/, 'the error does not echo the secret');
($rc, $out, $err) = $node->psql('postgres',
	"SELECT scim.onelogin_connect('https://user:pw\@example.onelogin.com', 'id', 'x')");
like($err, qr/invalid OneLogin base URL/, 'a base URL with credentials is refused');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM scim.provisioning_log WHERE detail LIKE '%$ONELOGIN_SECRET%' OR detail LIKE '%Bearer%'"),
	'0', 'the System Log holds no secret');
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$ONELOGIN_SECRET\E/, 'the server log holds no client secret');
unlike($log, qr/SECRET-IN-A-FAILED-CALL/,
	'an error inside onelogin_connect does not log the statement with the secret');
ok($log =~ /OneLogin sync of workspace "default" failed/, 'failures are reported in the server log');

# ---------------------------------------------------------------------------
# allow_http = off: https only
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf', "scim_provision.allow_http = off\n");
$node->reload;
($rc, $out, $err) = $node->psql('postgres',
	"SELECT scim.onelogin_connect('$mock->{url}', '$ONELOGIN_CLIENT_ID', '$ONELOGIN_SECRET')");
like($err, qr/WARNING:  the OneLogin base URL uses plain http/, 'onelogin_connect warns about plain http');
ok( wait_for(
		$node,
		"SELECT state = 'failing' AND last_error LIKE '%plain http%allow_http = off%' FROM scim.sync_status WHERE workspace = 'default'",
		't'),
	'allow_http = off: the worker refuses the http URL');
my $requests = mock_stats($mock)->{requests};
sleep 2;
is(mock_stats($mock)->{requests}, $requests, 'allow_http = off: nothing is sent to the http URL');
$node->append_conf('postgresql.conf', "scim_provision.allow_http = on\n");
$node->reload;
ok(sync_and_wait($node), 'allow_http = on again: syncing resumes');

# ---------------------------------------------------------------------------
# one worker serves a second workspace
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT scim.create_workspace('second')");
$node->safe_psql('postgres', "SELECT scim.approve_domain('example.com', 'second')");
connect_mock($node, $mock, 'second');
ok(wait_sync_done($node, 1, 'second'), 'second workspace synced');
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM scim.users WHERE workspace = 'second' AND active"),
	$node->safe_psql('postgres', "SELECT count(*) FROM scim.users WHERE workspace = 'default' AND active"),
	'second workspace holds the same active users');
my ($rc2, $out2, $err2) = $node->psql('postgres', "SELECT scim.sync_now('nowhere')");
like($err2, qr/workspace "nowhere" has no OneLogin connection/, 'sync_now names a missing connection');
$node->safe_psql('postgres', "SELECT scim.onelogin_disconnect('second')");
is( $node->safe_psql(
		'postgres',
		"SELECT (SELECT count(*) FROM scim.sync_status WHERE workspace = 'second'),"
		  . " (SELECT count(*) FROM scim.onelogin_users WHERE workspace = 'second'),"
		  . " (SELECT count(*) > 0 FROM scim.users WHERE workspace = 'second')"),
	'0|0|t', 'onelogin_disconnect removes the connection and its state, the users stay');

$node->stop;
stop_mock($mock);
done_testing();
