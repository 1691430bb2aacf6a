# test/t/onelogin_lib.pl - helpers shared by the OneLogin worker TAP tests
# (6x_onelogin_*.pl): start the mock OneLogin server, talk to its control
# endpoints, set up a cluster that preloads scim_provision, and wait for the
# worker.  Loaded with "require"; run on its own (prove test/t/*.pl) it only
# reports itself as skipped.

use strict;
use warnings;

use Test::More;

# Test::Builder's output is what reaches prove (STDOUT goes to the test log)
plan skip_all => 'helper library for the OneLogin tests, not a test' unless caller;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time usleep);

our $ONELOGIN_CLIENT_ID = 'test-client-id';
our $ONELOGIN_SECRET = 'S3cret-' . join('', map { ('a' .. 'z')[ int(rand(26)) ] } 1 .. 24);

my $json = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(timeout => 30, keep_alive => 0);
my @mocks;

# Start the mock on an ephemeral loopback port; returns a hash with
# port, url and the IPC::Run harness.
sub start_mock
{
	my $script = abs_path(dirname(__FILE__) . '/../onelogin_mock.py');
	my $dir = PostgreSQL::Test::Utils::tempdir('mock');
	my $portfile = "$dir/port";
	my $log = "$PostgreSQL::Test::Utils::log_path/onelogin_mock_" . scalar(@mocks) . '.log';
	my $h = IPC::Run::start(
		[
			'python3', $script, '--client-id', $ONELOGIN_CLIENT_ID,
			'--client-secret', $ONELOGIN_SECRET, '--port-file', $portfile,
			'--log', $log
		],
		'>', "$log.out", '2>&1');
	my $deadline = time() + 30;
	while (!-s $portfile)
	{
		die "mock OneLogin did not start (see $log.out)" if time() > $deadline;
		usleep(50_000);
	}
	open(my $fh, '<', $portfile) or die "cannot read $portfile: $!";
	my $port = <$fh>;
	close $fh;
	chomp $port;
	my $mock = { port => $port, url => "http://127.0.0.1:$port", harness => $h };
	push @mocks, $mock;
	return $mock;
}

sub stop_mock
{
	my ($mock) = @_;
	eval { mock($mock, 'POST', 'shutdown') };
	eval { $mock->{harness}->finish; };
	$mock->{harness}->kill_kill if $@;
	@mocks = grep { $_ != $mock } @mocks;
}

END
{
	for my $m (@mocks)
	{
		eval { $m->{harness}->kill_kill };
	}
}

# Call a control endpoint: mock($mock, 'POST', 'users', {users => [...]}).
sub mock
{
	my ($mock, $method, $name, $body) = @_;
	my $res = $http->request(
		$method,
		"$mock->{url}/_mock/$name",
		$method eq 'GET'
		? {}
		: {
			headers => { 'Content-Type' => 'application/json' },
			content => $json->encode($body // {})
		});
	die "mock $name: $res->{status} $res->{content}" unless $res->{success};
	return $json->decode($res->{content});
}

sub mock_stats { return mock($_[0], 'GET', 'stats'); }

# A OneLogin user as the mock stores it.
sub ol_user
{
	my ($id, %over) = @_;
	return {
		id => $id,
		username => "user$id\@example.com",
		email => "user$id\@example.com",
		firstname => "First$id",
		lastname => "Last$id",
		title => 'Engineer',
		department => 'R&D',
		company => 'Example Corp',
		phone => sprintf('+1555%07d', $id),
		status => 1,
		state => 1,
		custom_attributes => { usertype => 'Regular' },
		%over
	};
}

# A cluster that preloads scim_provision (and so requires pg_trgm at
# CREATE EXTENSION ... CASCADE), with the worker in database "postgres".
sub new_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name, $opt{port} ? (port => $opt{port}) : ());
	$node->init(allows_streaming => $opt{streaming} ? 1 : 0);
	my $preload = exists $opt{preload} ? $opt{preload} : 1;
	my $conf = '';
	$conf .= "shared_preload_libraries = 'scim_provision'\n" if $preload;
	$conf .= "scim_provision.database = '" . ($opt{database} // 'postgres') . "'\n" if $preload;
	$conf .= "scim_provision.allow_http = on\n";
	$conf .= "scim_provision.sync_interval = " . ($opt{sync_interval} // 3600) . "\n";
	$conf .= "scim_provision.max_backoff = " . ($opt{max_backoff} // 1) . "\n";
	$conf .= "scim_provision.page_size = " . ($opt{page_size} // 100) . "\n";
	$conf .= "scim_provision.reconcile_interval = " . ($opt{reconcile_interval} // 86400) . "\n";
	$conf .= "log_line_prefix = '%m [%p] %b '\n";
	# the callers' statements carry the client secret (see the docs)
	$conf .= "log_statement = none\n";
	# the crash tests kill -9 the worker and expect crash recovery
	$conf .= "restart_after_crash = on\n";
	$conf .= $opt{conf} if $opt{conf};
	$node->append_conf('postgresql.conf', $conf);
	$node->start;
	if ($opt{extension} // 1)
	{
		$node->safe_psql('postgres', 'CREATE EXTENSION scim_provision CASCADE');
		$node->safe_psql('postgres', "SELECT scim.approve_domain('example.com')");
	}
	return $node;
}

sub connect_mock
{
	my ($node, $mock, $workspace) = @_;
	$workspace //= 'default';
	$node->safe_psql('postgres',
		"SELECT scim.onelogin_connect('$mock->{url}', '$ONELOGIN_CLIENT_ID', '$ONELOGIN_SECRET', '$workspace')"
	);
}

sub worker_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'scim_provision worker'");
}

# Poll until the query returns the expected value; true on success.
sub wait_for
{
	my ($node, $sql, $expected, $timeout) = @_;
	$timeout //= 60;
	my $deadline = time() + $timeout;
	my $last = '';
	while (time() < $deadline)
	{
		my ($rc, $out) = $node->psql('postgres', $sql);
		$last = $out;
		return 1 if $rc == 0 && $out eq $expected;
		usleep(100_000);
	}
	diag("waited ${timeout}s for [$sql] = [$expected], last [$last]");
	return 0;
}

# Wait until the last sync of the workspace completed after the given count.
sub wait_sync_done
{
	my ($node, $min_completed, $workspace, $timeout) = @_;
	$workspace //= 'default';
	return wait_for($node,
		"SELECT syncs_completed >= $min_completed AND NOT sync_in_progress FROM scim.sync_status WHERE workspace = '$workspace'",
		't', $timeout);
}

sub syncs_completed
{
	my ($node, $workspace) = @_;
	$workspace //= 'default';
	return $node->safe_psql('postgres',
		"SELECT syncs_completed FROM scim.sync_status WHERE workspace = '$workspace'");
}

# sync_now and wait for that sync to complete.
sub sync_and_wait
{
	my ($node, $workspace, $timeout) = @_;
	$workspace //= 'default';
	my $before = syncs_completed($node, $workspace);
	$node->safe_psql('postgres', "SELECT scim.sync_now('$workspace')");
	return wait_sync_done($node, $before + 1, $workspace, $timeout);
}

# The users of the mock as {external_id => {...}} and of the database.
sub mock_users
{
	my ($mock) = @_;
	my %u = map { ($_->{id} => $_) } @{ mock($mock, 'GET', 'users') };
	return \%u;
}

sub db_users
{
	my ($node, $workspace) = @_;
	$workspace //= 'default';
	my $rows = $node->safe_psql('postgres',
		"SELECT external_id, user_name, coalesce(given_name, ''), coalesce(family_name, ''), coalesce(title, ''), active::text "
		  . "FROM scim.users WHERE workspace = '$workspace' AND external_id IS NOT NULL ORDER BY 1");
	my %u;
	for my $line (split /\n/, $rows)
	{
		my @f = split /\|/, $line, -1;
		$u{ $f[0] } = {
			user_name => $f[1],
			given_name => $f[2],
			family_name => $f[3],
			title => $f[4],
			active => $f[5]
		};
	}
	return \%u;
}

# Whether the database holds exactly the mock's users (active ones active),
# as far as the approved domain lets them in.
sub db_matches_mock
{
	my ($node, $mock, $msg) = @_;
	my $m = mock_users($mock);
	my $d = db_users($node);
	my @problems;
	for my $id (sort keys %$m)
	{
		my $u = $m->{$id};
		next unless ($u->{email} // '') =~ /\@example\.com$/;
		my $r = $d->{$id};
		if (!$r)
		{
			push @problems, "missing $id";
			next;
		}
		my $want_active = ($u->{status} // 1) == 2 ? 'false' : 'true';
		push @problems, "$id active $r->{active}" if $r->{active} ne $want_active;
		push @problems, "$id title $r->{title}"
		  if defined $u->{title} && $u->{title} ne '' && $r->{title} ne $u->{title};
		push @problems, "$id user_name $r->{user_name}" if lc($r->{user_name}) ne lc($u->{username});
	}
	for my $id (sort keys %$d)
	{
		push @problems, "extra active $id" if !$m->{$id} && $d->{$id}{active} eq 'true';
	}
	diag(join(', ', @problems[ 0 .. ($#problems < 9 ? $#problems : 9) ])) if @problems;
	ok(!@problems, $msg);
}

1;
