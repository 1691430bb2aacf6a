# test/t/65_onelogin_secrets.pl - a OneLogin URL that answers errors by
# echoing the request (#15.3): the Basic credentials of the token call and
# the bearer token of resource calls come back in the error bodies and a
# header.  Only the status and a documented OneLogin error name or message
# may reach scim.provisioning_log, scim.sync_status and the server log.

use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use MIME::Base64 qw(encode_base64);

require "$FindBin::RealBin/onelogin_lib.pl";
our ($ONELOGIN_CLIENT_ID, $ONELOGIN_SECRET);

my $mock = start_mock();
mock($mock, 'POST', 'users', { users => [ map { ol_user($_) } 1 .. 30 ] });
my $node = new_node('secrets', port => 55536, page_size => 10);
connect_mock($node, $mock);
ok(wait_sync_done($node, 1), 'first sync completed');

sub log_id
{
	return $node->safe_psql('postgres', 'SELECT coalesce(max(id), 0) FROM scim.provisioning_log');
}

# Run a sync against an echoing fault; wait until the failure is logged,
# then until the sync recovers.
sub echo_fault
{
	my ($on, $status, $expect, $expire) = @_;
	my $since = log_id();
	mock($mock, 'POST', 'expire_tokens') if $expire;
	mock($mock, 'POST', 'fault', { kind => 'echo', on => $on, status => $status, retry_after => 1 });
	mock($mock, 'POST', 'touch', { ids => [5], set => { title => "T$on$status" } });
	$node->safe_psql('postgres', 'SELECT scim.sync_now()');
	ok( wait_for(
			$node,
			"SELECT count(*) > 0 FROM scim.provisioning_log WHERE id > $since AND source = 'onelogin' AND status = $status",
			't'),
		"echo $status on $on: the failure is logged");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM scim.sync_status WHERE strpos(coalesce(last_error, ''), '$ONELOGIN_SECRET') > 0"
			  . " OR strpos(coalesce(last_error, ''), '$ONELOGIN_CLIENT_ID') > 0"),
		'0', "echo $status on $on: sync_status.last_error holds no credentials");
	like($node->safe_psql('postgres',
			"SELECT detail FROM scim.provisioning_log WHERE id > $since AND status = $status ORDER BY id LIMIT 1"),
		$expect, "echo $status on $on: status and a known reason only");
	ok(wait_for($node, "SELECT title FROM scim.users WHERE external_id = '5'", "T$on$status"),
		"echo $status on $on: the sync recovers");
}

echo_fault('token', 400, qr/^OneLogin refused the client credentials \(HTTP 400\); next attempt/, 1);
echo_fault('token', 401, qr/^OneLogin refused the client credentials \(HTTP 401\); next attempt/, 1);
echo_fault('token', 500, qr/^OneLogin answered HTTP 500; next attempt/, 1);
echo_fault('users', 500, qr/^OneLogin answered HTTP 500; next attempt/, 0);
echo_fault('users', 429, qr/^OneLogin rate limit reached \(HTTP 429\); next attempt/, 0);
echo_fault('users', 403, qr/^OneLogin refused the request with HTTP 403; next attempt/, 0);
echo_fault('events', 500, qr/^OneLogin answered HTTP 500; next attempt/, 0);

# a documented error is still named
my $since = log_id();
mock($mock, 'POST', 'fault', { kind => 'status', on => 'users', status => 502 });
$node->safe_psql('postgres', 'SELECT scim.sync_now()');
ok( wait_for(
		$node, "SELECT detail LIKE 'OneLogin answered HTTP 502: InternalServerError;%' FROM scim.provisioning_log"
		  . " WHERE id > $since AND status = 502", 't'),
	'a documented OneLogin error name is kept');

# nothing anywhere holds the client id, the secret or the scheme of either header
my $b64 = encode_base64("$ONELOGIN_CLIENT_ID:$ONELOGIN_SECRET", '');
for my $what ($ONELOGIN_CLIENT_ID, $ONELOGIN_SECRET, $b64, 'Basic ', 'Bearer ')
{
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM scim.provisioning_log WHERE strpos(coalesce(detail, '') || coalesce(path, '')"
			  . " || coalesce(user_name, '') || coalesce(scim_type, ''), '$what') > 0"),
		'0', "System Log: no \"$what\"");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM scim.sync_status s WHERE strpos(row_to_json(s)::text, '$what') > 0"),
		'0', "sync_status: no \"$what\"");
	is($node->safe_psql('postgres',
			"SET ROLE scim_reader; SELECT count(*) FROM scim.sync_status s WHERE strpos(coalesce(last_error, ''), '$what') > 0"),
		'0', "sync_status as scim_reader: no \"$what\"");
}
my $server_log = slurp_file($node->logfile);
like($server_log, qr/OneLogin sync of workspace "default" failed: OneLogin refused the client credentials/,
	'the server log records the failures');
for my $what ($ONELOGIN_CLIENT_ID, $ONELOGIN_SECRET, $b64)
{
	ok(index($server_log, $what) < 0, "server log: no \"$what\"");
}
ok(mock_stats($mock)->{faults_injected} >= 8, 'the mock echoed the credentials back');

$node->stop;
stop_mock($mock);
done_testing();
