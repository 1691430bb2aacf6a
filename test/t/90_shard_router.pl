
# Copyright (c) scim_provision contributors

# test/t/90_shard_router.pl - a sharded deployment: a router cluster running
# scim_provision_router in front of two shard clusters running
# scim_provision (doc/SCALING.md).
#
# The router reaches the shards through PL/Proxy (cluster scim_shards, 8
# partitions: even ones on shard 1, odd ones on shard 2) over their Unix
# sockets, as a login role that is a member of scim_proxy there.  Requests
# are sent as PostgREST sends them (role scim_client, request.headers, the
# body to scim_api.dispatch, response.status/headers read back).
#
# Comparing with a direct call: a request that changes nothing (a GET, a
# refused write) is sent through the router and then the same to the shard
# directly, and the two answers (status, response.headers text, body text)
# must be equal byte for byte.  A write cannot be sent twice, so its answer
# through the router is compared with the shard's state: the resource read
# directly on the shard (body, ETag, Location), or its absence after a
# DELETE, and the System Log row the request left there.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $json = JSON::PP->new->canonical->allow_nonref->utf8(0);

# ---------------------------------------------------------------------------
# Clusters
# ---------------------------------------------------------------------------

my @shards;
for my $i (1, 2)
{
	my $s = PostgreSQL::Test::Cluster->new("shard$i");
	$s->init;
	$s->append_conf('postgresql.conf',
		"shared_preload_libraries = 'scim_provision'\nscim_provision.database = 'postgres'\n");
	$s->start;
	$s->safe_psql(
		'postgres', q{
CREATE EXTENSION scim_provision CASCADE;
CREATE ROLE scim_router LOGIN;
GRANT scim_proxy TO scim_router;
SELECT scim.create_workspace('ignored');
});
	push @shards, $s;
}
my ($s1, $s2) = @shards;

my $router = PostgreSQL::Test::Cluster->new('router');
$router->init;
# statements as a production server logs them (the test default logs every
# statement, request.headers included): the router's own lines are checked
$router->append_conf('postgresql.conf', "log_statement = none\n");
$router->start;
my $shard_connstr = join(',', map { "'host=" . $_->host . ' port=' . $_->port . " dbname=postgres connect_timeout=5'" } @shards);
$router->safe_psql(
	'postgres', qq{
CREATE EXTENSION scim_provision_router CASCADE;
SELECT scim_router.create_cluster(ARRAY[$shard_connstr], 8, 'scim_router');
CREATE ROLE reader LOGIN IN ROLE scim_reader;
CREATE ROLE admin LOGIN IN ROLE scim_admin;
CREATE ROLE authenticator LOGIN NOINHERIT IN ROLE scim_client;
});
is($router->safe_psql('postgres', q{SELECT string_agg(partition::text, ',' ORDER BY partition) FROM scim_router.partitions()}),
	'0,1,2,3,4,5,6,7', 'the cluster has 8 partitions p0..p7');
is($router->safe_psql('postgres', q{SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname IN ('scim_router', 'scim_api') AND c.relkind IN ('r', 'p', 'm')}),
	'0', 'the router keeps no tables');

sub rq { return $router->safe_psql('postgres', $_[0]); }

# Workspaces: two whose hash lands on shard 1 (even partitions), two on shard 2.
my @on1 = split /\n/, rq(q{SELECT n FROM generate_series(1, 200) i, LATERAL (SELECT 'acme' || i AS n) x
	WHERE (hashtext(n) & 7) % 2 = 0 ORDER BY i LIMIT 2});
my @on2 = split /\n/, rq(q{SELECT n FROM generate_series(1, 200) i, LATERAL (SELECT 'globex' || i AS n) x
	WHERE (hashtext(n) & 7) % 2 = 1 ORDER BY i LIMIT 2});
my %token;
for my $ws (@on1, @on2)
{
	rq(qq{SELECT scim_router.create_workspace('$ws'); SELECT scim_router.approve_domain('example.com', '$ws')});
	$token{$ws} = $router->safe_psql('postgres', qq{SELECT scim_router.create_token('idp', '$ws')},
		connstr => $router->connstr('postgres') . ' user=admin');
}
is($s1->safe_psql('postgres', q{SELECT string_agg(name, ',' ORDER BY name) FROM scim.workspaces WHERE name ~ '^(acme|globex)'}),
	join(',', sort @on1), 'create_workspace placed the shard-1 workspaces on shard 1 only');
is($s2->safe_psql('postgres', q{SELECT string_agg(name, ',' ORDER BY name) FROM scim.workspaces WHERE name ~ '^(acme|globex)'}),
	join(',', sort @on2), 'create_workspace placed the shard-2 workspaces on shard 2 only');
for my $ws ($on1[0], $on2[0])
{
	my $expect = rq(qq{SELECT lpad(to_hex(hashtext('$ws')), 8, '0')});
	like($token{$ws}, qr/^scim_${expect}[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/,
		"the token of $ws starts its id with hashtext('$ws')");
}

# ---------------------------------------------------------------------------
# PostgREST's call of scim_api.dispatch, on the router or on a shard
# ---------------------------------------------------------------------------

sub dispatch
{
	my ($node, $method, $uri, %o) = @_;
	my %h = (
		'x-scim-method' => $method,
		'x-scim-uri' => $uri,
		'content-type' => 'application/json',
		'accept' => 'application/scim+json',
		'x-forwarded-host' => 'scim.example.com',
		'x-forwarded-proto' => 'https',
		'user-agent' => $o{agent} // 'OneLogin SCIM',
		# the same correlation id on both sides of a comparison: echoed as
		# sent, so the router must pass it through (a node generates one
		# per request when none is sent)
		'x-request-id' => 'shard-router-test',
		%{ $o{headers} // {} });
	$h{'x-scim-token'} = $o{auth} // "Bearer $o{token}" if defined $o{token} || defined $o{auth};
	# PostgREST's two variants: text/plain (the raw body, '' when none, as
	# deploy/ sends it) or application/json (parsed; {} when none)
	my $variant = $o{variant} // 'text';
	my $body = $o{body};
	$body = $json->encode($body) if ref $body;
	$body //= $variant eq 'text' ? '' : '{}';
	my $script = join("\n",
		'BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;',
		q{SELECT set_config('role', 'scim_client', true), set_config('request.headers', :'hdrs', true) \gset},
		qq{SELECT scim_api.dispatch(:'body'::$variant)::text AS b, current_setting('response.headers', true) AS h, current_setting('response.status', true) AS s \\gset},
		q{\echo :s},
		q{\echo :h},
		q{\echo :b},
		'COMMIT;', '');
	my ($out, $err) = ('', '');
	$node->psql('postgres', $script, stdout => \$out, stderr => \$err,
		extra_params => [ '-v', 'hdrs=' . ($o{raw_headers} // $json->encode(\%h)), '-v', "body=$body" ]);
	my ($status, $headers, $raw) = split /\n/, $out, 3;
	my %hd;
	my $items = eval { $json->decode($headers // '[]') } // [];
	for my $item (@$items)
	{
		while (my ($k, $v) = each %$item) { $hd{ lc $k } = $v; }
	}
	return {
		status => ($status // 0) + 0,
		headers_raw => $headers // '',
		headers => \%hd,
		raw => $raw // '',
		body => (defined $raw && $raw ne '' ? eval { $json->decode($raw) } : undef),
		err => $err,
	};
}

sub same_answer
{
	my ($a, $b, $name) = @_;
	ok($a->{status} == $b->{status} && $a->{headers_raw} eq $b->{headers_raw} && $a->{raw} eq $b->{raw}, $name)
	  or diag(explain({ router => $a, direct => $b }));
}

my %shard_of = ((map { ($_ => $s1) } @on1), (map { ($_ => $s2) } @on2));

sub last_log
{
	my ($ws) = @_;
	return $shard_of{$ws}->safe_psql('postgres',
		qq{SELECT method || ' ' || path || ' ' || status FROM scim.provisioning_log WHERE workspace = '$ws' ORDER BY id DESC LIMIT 1});
}

# One request through the router, checked against the shard it belongs to.
sub check
{
	my ($ws, $method, $uri, %o) = @_;
	my $name = $o{name} // "$method $uri";
	my $shard = $shard_of{$ws};
	my $r = dispatch($router, $method, $uri, token => $token{$ws}, %o);
	is($r->{status}, $o{status}, "$ws: $name: $o{status}") if defined $o{status};
	my $path = $uri;
	$path =~ s{^/scim/v2}{};
	$path =~ s{\?.*$}{};
	if ($method ne 'GET' && $path !~ m{^/Bulk})
	{
		is(last_log($ws), "$method $path $r->{status}", "$ws: $name: the shard's System Log has the attempt");
	}
	if ($method eq 'GET' || $r->{status} >= 400)
	{
		# nothing changed: the same request directly on the shard
		my $d = dispatch($shard, $method, $uri, token => $token{$ws}, %o);
		same_answer($r, $d, "$ws: $name: the answer is the shard's, byte for byte");
	}
	elsif ($method eq 'DELETE')
	{
		my $d = dispatch($shard, 'GET', $uri, token => $token{$ws});
		ok($d->{status} == 404 || ($d->{status} == 200 && !$d->{body}{active}),
			"$ws: $name: gone (or deactivated) on the shard");
	}
	elsif (ref $r->{body} eq 'HASH' && $r->{body}{meta}{location})
	{
		my ($res) = $r->{body}{meta}{location} =~ m{(/scim/v2/\w+/[0-9a-f-]{36})$};
		my $d = dispatch($shard, 'GET', $res, token => $token{$ws});
		ok( $d->{status} == 200
			  && $d->{raw} eq $r->{raw}
			  && ($d->{headers}{etag} // '') eq ($r->{headers}{etag} // '')
			  && (!defined $r->{headers}{location} || $r->{headers}{location} eq $r->{body}{meta}{location}),
			"$ws: $name: body, ETag and Location are the shard's resource")
		  or diag(explain({ router => $r, direct => $d }));
	}
	return $r;
}

sub user_body
{
	my (%a) = @_;
	return {
		schemas => [
			'urn:ietf:params:scim:schemas:core:2.0:User',
			'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'
		],
		userName => $a{userName},
		(defined $a{externalId} ? (externalId => $a{externalId}) : ()),
		name => { givenName => $a{given} // 'Ann', familyName => $a{family} // 'Lee' },
		emails => [ { value => $a{userName}, type => 'work', primary => JSON::PP::true } ],
		(defined $a{title} ? (title => $a{title}) : ()),
		active => (exists $a{active} ? $a{active} : JSON::PP::true),
		'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User' => { department => 'R&D' },
	};
}

# ---------------------------------------------------------------------------
# The IdP sessions, through the router, on a workspace of each shard
# ---------------------------------------------------------------------------

my %ids;
for my $ws ($on1[0], $on2[0])
{
	my $fa = 'filter=userName%20eq%20%22ann%40example.com%22';
	# OneLogin: look up, create, look up, replace, deactivate, delete
	check($ws, 'GET', "/scim/v2/Users?$fa", status => 200, name => 'OneLogin lookup (none)');
	my $r = check($ws, 'POST', '/scim/v2/Users', body => user_body(userName => 'ann@example.com', title => 'Engineer'),
		status => 201, name => 'OneLogin create');
	my $ann = $r->{body}{id};
	$ids{$ws}{ann} = $ann;
	like($r->{headers}{location} // '', qr{^https://scim\.example\.com/scim/v2/Users/$ann$}, "$ws: Location is absolute");
	check($ws, 'GET', "/scim/v2/Users?$fa", status => 200, name => 'OneLogin lookup (found)');
	check($ws, 'GET', "/scim/v2/Users/$ann", status => 200, name => 'GET /Users/{id}');
	check($ws, 'PUT', "/scim/v2/Users/$ann",
		body => user_body(userName => 'ann@example.com', given => 'Annie', title => 'Lead'), status => 200,
		name => 'OneLogin replace');
	check($ws, 'PUT', "/scim/v2/Users/$ann", headers => { 'if-match' => 'W/"999"' },
		body => user_body(userName => 'ann@example.com'), status => 412, name => 'PUT with a stale If-Match');
	check($ws, 'PUT', "/scim/v2/Users/$ann",
		body => user_body(userName => 'ann@example.com', given => 'Annie', active => JSON::PP::false), status => 200,
		name => 'OneLogin deactivate');
	check($ws, 'POST', '/scim/v2/Users', body => user_body(userName => 'ANN@example.com'), status => 409,
		name => 'duplicate userName');
	check($ws, 'POST', '/scim/v2/Users', body => user_body(userName => 'mallory@elsewhere.test'),
		name => 'unapproved domain');

	# Okta: filter with paging, create, read, PATCH active false
	check($ws, 'GET', '/scim/v2/Users?filter=userName%20eq%20%22bob%40example.com%22&startIndex=1&count=100',
		agent => 'Okta SCIM Client', status => 200, name => 'Okta lookup');
	$r = check($ws, 'POST', '/scim/v2/Users', agent => 'Okta SCIM Client',
		body => user_body(userName => 'bob@example.com', given => 'Bob'), status => 201, name => 'Okta create');
	my $bob = $r->{body}{id};
	$ids{$ws}{bob} = $bob;
	check($ws, 'PATCH', "/scim/v2/Users/$bob", agent => 'Okta SCIM Client',
		body => { schemas => ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
			Operations => [ { op => 'replace', value => { active => JSON::PP::false } } ] },
		name => 'Okta PATCH active false');

	# Entra ID: externalId lookup, create, PATCH with paths, filters
	check($ws, 'GET', '/scim/v2/Users?filter=externalId%20eq%20%22e-4711%22', agent => 'Azure AD SCIM', status => 200,
		name => 'Entra lookup by externalId');
	$r = check($ws, 'POST', '/scim/v2/Users', agent => 'Azure AD SCIM',
		body => user_body(userName => 'cy@example.com', externalId => 'e-4711'), status => 201, name => 'Entra create');
	my $cy = $r->{body}{id};
	$ids{$ws}{cy} = $cy;
	check($ws, 'PATCH', "/scim/v2/Users/$cy", agent => 'Azure AD SCIM',
		body => { schemas => ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
			Operations => [
				{ op => 'Replace', path => 'title', value => 'Manager' },
				{ op => 'Replace', path => 'emails[type eq "work"].value', value => 'cy@example.com' },
				{ op => 'Replace', path => 'active', value => 'False' } ] },
		name => 'Entra PATCH with paths');
	check($ws, 'GET', '/scim/v2/Users?filter=externalId%20eq%20%22e-4711%22', agent => 'Azure AD SCIM', status => 200,
		name => 'Entra lookup after PATCH');
	check($ws, 'GET', '/scim/v2/Users?filter=title%20co%20%22anag%22&sortBy=userName', status => 200,
		name => 'filter co, sorted');
	check($ws, 'GET', '/scim/v2/Users?filter=userName%20eq', status => 400, name => 'bad filter');

	# Groups (Entra/Okta group push): create with a member, look up, add, remove, rename, delete
	$r = check($ws, 'POST', '/scim/v2/Groups', agent => 'Azure AD SCIM',
		body => { schemas => ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName => 'Engineers',
			members => [ { value => $ann } ] }, status => 201, name => 'group create');
	my $g = $r->{body}{id};
	$ids{$ws}{group} = $g;
	check($ws, 'GET', '/scim/v2/Groups?filter=displayName%20eq%20%22Engineers%22', status => 200,
		name => 'group lookup');
	check($ws, 'PATCH', "/scim/v2/Groups/$g",
		body => { schemas => ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
			Operations => [ { op => 'Add', path => 'members', value => [ { value => $bob } ] } ] },
		name => 'group add member');
	check($ws, 'PATCH', "/scim/v2/Groups/$g",
		body => { schemas => ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
			Operations => [ { op => 'Remove', path => "members[value eq \"$ann\"]" } ] },
		name => 'group remove member by filter');
	check($ws, 'PATCH', "/scim/v2/Groups/$g",
		body => { schemas => ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
			Operations => [ { op => 'Replace', path => 'displayName', value => 'Platform' } ] },
		name => 'group rename');
	check($ws, 'GET', "/scim/v2/Groups/$g", status => 200, name => 'GET /Groups/{id}');
	check($ws, 'GET', "/scim/v2/Users/$bob", status => 200, name => 'a member shows its groups');

	# Bulk, discovery, deletes
	$r = check($ws, 'POST', '/scim/v2/Bulk',
		body => { schemas => ['urn:ietf:params:scim:api:messages:2.0:BulkRequest'], Operations => [
			{ method => 'POST', path => '/Users', bulkId => 'd', data => { userName => 'dee@example.com' } } ] },
		status => 200, name => 'POST /Bulk');
	is($s1->safe_psql('postgres', qq{SELECT count(*) FROM scim.users WHERE workspace = '$ws' AND user_name = 'dee\@example.com'})
		+ $s2->safe_psql('postgres', qq{SELECT count(*) FROM scim.users WHERE workspace = '$ws' AND user_name = 'dee\@example.com'}),
		1, "$ws: the Bulk write landed once");
	is($shard_of{$ws}->safe_psql('postgres', qq{SELECT count(*) FROM scim.users WHERE workspace = '$ws' AND user_name = 'dee\@example.com'}),
		1, "$ws: on its own shard");
	check($ws, 'GET', '/scim/v2/ServiceProviderConfig', status => 200, name => 'ServiceProviderConfig');
	check($ws, 'GET', "/scim/v2/Users/$bob", variant => 'jsonb', status => 200, name => 'GET through dispatch(jsonb)');
	check($ws, 'POST', '/scim/v2/Users', variant => 'jsonb', body => user_body(userName => 'fay@example.com'),
		status => 201, name => 'POST through dispatch(jsonb)');
	check($ws, 'POST', '/scim/v2/Users', body => '{"userName": "x@example.com",', status => 400,
		name => 'a body that is not JSON (dispatch(text))');
	check($ws, 'DELETE', "/scim/v2/Groups/$g", status => 204, name => 'group delete');
	check($ws, 'DELETE', "/scim/v2/Users/$cy", status => 204, name => 'user delete');
	check($ws, 'GET', "/scim/v2/Users/6f1c2a4e-0000-4000-8000-000000000000", status => 404, name => 'unknown id');
}

# ---------------------------------------------------------------------------
# Refusals and garbled tokens
# ---------------------------------------------------------------------------

{
	my @cases = (
		[ 'no token', () ],
		[ 'not Bearer', auth => 'Basic dXNlcjpwYXNz' ],
		[ 'garbled token', auth => 'Bearer scim_garbled' ],
		[ 'wrong shape', auth => 'Bearer scim_000000000000000000000000_notavalidsecret' ],
	);
	for my $c (@cases)
	{
		my ($name, @o) = @$c;
		my $before1 = $s1->safe_psql('postgres', 'SELECT count(*) FROM scim.provisioning_log');
		my $before2 = $s2->safe_psql('postgres', 'SELECT count(*) FROM scim.provisioning_log');
		my $r = dispatch($router, 'GET', '/scim/v2/Users', @o);
		is($r->{status}, 401, "$name: 401 through the router");
		ok(exists $r->{headers}{'www-authenticate'}, "$name: with WWW-Authenticate");
		# a token that names no hash goes to hash 0, which is shard 1 here
		is($s1->safe_psql('postgres', 'SELECT count(*) FROM scim.provisioning_log') - $before1, 1,
			"$name: refused and logged by the fixed partition's shard");
		is($s1->safe_psql('postgres', 'SELECT workspace IS NULL FROM scim.provisioning_log ORDER BY id DESC LIMIT 1'), 't',
			"$name: the log row belongs to no workspace");
		is($s2->safe_psql('postgres', 'SELECT count(*) FROM scim.provisioning_log') - $before2, 0,
			"$name: the other shard saw nothing");
		same_answer($r, dispatch($s1, 'GET', '/scim/v2/Users', @o), "$name: the same 401 as a single node, byte for byte");
	}
	# request.headers as PostgREST sets it with X-Scim-Token sent twice: the
	# shard sees the router's text, duplicate included, and refuses it as a node does
	my $t2 = $token{ $on2[0] };
	my $dup = qq({"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users", "x-scim-token": "Bearer $t2", "x-scim-token": "Bearer $t2", "x-request-id": "shard-router-test"});
	my $r = dispatch($router, 'GET', '/scim/v2/Users', raw_headers => $dup);
	is($r->{status}, 401, 'X-Scim-Token twice: 401 through the router');
	same_answer($r, dispatch($s2, 'GET', '/scim/v2/Users', raw_headers => $dup), 'X-Scim-Token twice: the shard\'s answer, byte for byte');
	$r = dispatch($router, 'GET', '/scim/v2/Users', token => $token{ $on1[0] }, headers => { 'x-scim-method' => '' });
	same_answer($r, dispatch($s1, 'GET', '/scim/v2/Users', token => $token{ $on1[0] }, headers => { 'x-scim-method' => '' }),
		'a request without X-Scim-Method: the shard\'s 400');
}

# ---------------------------------------------------------------------------
# Isolation: a token of a shard-1 workspace against shard-2 data
# ---------------------------------------------------------------------------

{
	my ($wa, $wc) = ($on1[0], $on2[0]);
	my $bob_c = $ids{$wc}{bob};
	my $state2 = sub {
		$s2->safe_psql('postgres',
			q{SELECT md5(string_agg(u::text, ',' ORDER BY id)) FROM scim.users u}) . ' '
		  . $s2->safe_psql('postgres',
			q{SELECT md5(coalesce(string_agg(m::text, ',' ORDER BY group_id, member_id), '')) FROM scim.group_members m});
	};
	my $before = $state2->();
	my $r = dispatch($router, 'GET', "/scim/v2/Users/$bob_c", token => $token{$wa});
	is($r->{status}, 404, 'a shard-2 user id with a shard-1 token: 404');
	$r = dispatch($router, 'GET', '/scim/v2/Users?filter=userName%20eq%20%22bob%40example.com%22', token => $token{$wa});
	ok(!grep({ $_->{id} eq $bob_c } @{ $r->{body}{Resources} // [] }), 'a filter never finds the shard-2 user');
	$r = dispatch($router, 'GET', '/scim/v2/Users?filter=id%20eq%20%22' . $bob_c . '%22', token => $token{$wa});
	is($r->{body}{totalResults}, 0, 'filter id eq the shard-2 id: nothing');
	$r = dispatch($router, 'PATCH', "/scim/v2/Users/$bob_c", token => $token{$wa},
		body => { schemas => ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
			Operations => [ { op => 'replace', value => { active => JSON::PP::true } } ] });
	is($r->{status}, 404, 'PATCH of the shard-2 user: 404');
	$r = dispatch($router, 'PUT', "/scim/v2/Users/$bob_c", token => $token{$wa}, body => user_body(userName => 'bob@example.com'));
	is($r->{status}, 404, 'PUT of the shard-2 user: 404');
	$r = dispatch($router, 'DELETE', "/scim/v2/Users/$bob_c", token => $token{$wa});
	is($r->{status}, 404, 'DELETE of the shard-2 user: 404');
	$r = dispatch($router, 'POST', '/scim/v2/Bulk', token => $token{$wa},
		body => { schemas => ['urn:ietf:params:scim:api:messages:2.0:BulkRequest'], Operations => [
			{ method => 'PATCH', path => "/Users/$bob_c", data => { schemas => ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
				Operations => [ { op => 'replace', path => 'title', value => 'pwned' } ] } },
			{ method => 'DELETE', path => "/Users/$bob_c" },
			{ method => 'PATCH', path => "/Groups/$ids{$wc}{group}", data => { schemas => ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
				Operations => [ { op => 'add', path => 'members', value => [ { value => $ids{$wa}{ann} } ] } ] } } ] });
	is_deeply([ map { $_->{status} } @{ $r->{body}{Operations} // [] } ], [ '404', '404', '404' ],
		'/Bulk operations on shard-2 ids: each 404');
	$r = dispatch($router, 'POST', '/scim/v2/Groups', token => $token{$wa},
		body => { schemas => ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName => 'Spies', members => [ { value => $bob_c } ] });
	is($r->{status}, 400, 'a group with a shard-2 user as member value: 400');
	is($r->{body}{scimType}, 'invalidValue', '... invalidValue');
	is($state2->(), $before, 'shard 2: users and memberships unchanged');

	# forged tokens: the other workspace's hash with this token's secret, or a made-up id
	(my $forged = $token{$wa}) =~ s/^scim_[0-9a-f]{8}/'scim_' . substr($token{$wc}, 5, 8)/e;
	my $before2 = $s2->safe_psql('postgres', 'SELECT count(*) FROM scim.provisioning_log WHERE status = 401');
	$r = dispatch($router, 'GET', "/scim/v2/Users/$bob_c", token => $forged);
	is($r->{status}, 401, 'a token naming shard 2 with a shard-1 secret: 401');
	is($s2->safe_psql('postgres', 'SELECT count(*) FROM scim.provisioning_log WHERE status = 401') - $before2, 1,
		'... refused by shard 2 (the secret does not match)');
	(my $made_up = $token{$wc}) =~ s/^(scim_[0-9a-f]{8})[0-9a-f]{16}/${1}0123456789abcdef/;
	$r = dispatch($router, 'GET', "/scim/v2/Users/$bob_c", token => $made_up);
	is($r->{status}, 401, 'a made-up token id with the right hash: 401');

	# a 0.2.0 token (random id) still authenticates on a node
	my $old = $s1->safe_psql('postgres', qq{
		WITH t AS (SELECT scim._generate_token() AS tok)
		INSERT INTO scim.tokens (token_id, workspace, name, secret_hash)
		SELECT substr(tok, 6, 24), '$wa', 'old', scim._token_hash(tok) FROM t RETURNING (SELECT tok FROM t)});
	is(dispatch($s1, 'GET', '/scim/v2/Users', token => $old)->{status}, 200, 'a 0.2.0-format token authenticates on its node');
}

# ---------------------------------------------------------------------------
# Administration routed, cross-shard reads, privileges
# ---------------------------------------------------------------------------

{
	my ($wa, $wc) = ($on1[0], $on2[0]);
	for my $ws ($wa, $wc)
	{
		$router->safe_psql('postgres', qq{SELECT scim_router.onelogin_connect('http://127.0.0.1:9', 'id', 'secret', '$ws');
			SELECT scim_router.sync_now('$ws');
			SELECT scim_router.set_deletion_policy('delete', '$ws');
			SELECT scim_router.set_default_user_type('External', '$ws');},
			connstr => $router->connstr('postgres') . ' user=admin');
		is($shard_of{$ws}->safe_psql('postgres', qq{SELECT deletion_policy || ' ' || default_user_type FROM scim.workspaces WHERE name = '$ws'}),
			'delete External', "$ws: policy and user type set through the router on its shard");
	}
	is(rq(q{SELECT string_agg(workspace, ',' ORDER BY workspace) FROM scim_router.sync_status()}),
		join(',', sort($wa, $wc)), 'sync_status(): both shards\' OneLogin connections');
	is(rq(qq{SELECT count(*) FROM scim_router.sync_status('$wc')}), 1, "sync_status('$wc'): one row");

	my $n1 = $s1->safe_psql('postgres', 'SELECT count(*) FROM scim.users');
	my $n2 = $s2->safe_psql('postgres', 'SELECT count(*) FROM scim.users');
	ok($n1 > 0 && $n2 > 0, 'both shards hold users');
	is($router->safe_psql('postgres', 'SELECT count(*) FROM scim_router.users()', connstr => $router->connstr('postgres') . ' user=reader'),
		$n1 + $n2, 'users(): the union of both shards (as scim_reader)');
	my $row = q{id::text || ' ' || user_name || ' ' || workspace || ' ' || version};
	is(join(',', sort split /\n/, rq("SELECT $row FROM scim_router.users()")),
		join(',', sort map { split /\n/, $_->safe_psql('postgres', "SELECT $row FROM scim.users") } @shards),
		'users(): exactly the shards\' rows');
	is(rq(qq{SELECT count(*) FROM scim_router.users('$wa')}),
		$s1->safe_psql('postgres', qq{SELECT count(*) FROM scim.users WHERE workspace = '$wa'}), "users('$wa'): its rows");
	# SCIM rows only: the workers (connected above to a closed port) log their failures meanwhile
	my $l1 = $s1->safe_psql('postgres', q{SELECT count(*) FROM scim.provisioning_log WHERE source = 'scim'});
	my $l2 = $s2->safe_psql('postgres', q{SELECT count(*) FROM scim.provisioning_log WHERE source = 'scim'});
	is(rq(q{SELECT count(*) FROM scim_router.system_log() WHERE source = 'scim'}), $l1 + $l2, 'system_log(): the union');
	is(rq(qq{SELECT count(*) FROM scim_router.system_log('$wc') WHERE source = 'scim'}),
		$s2->safe_psql('postgres', qq{SELECT count(*) FROM scim.provisioning_log WHERE workspace = '$wc' AND source = 'scim'}),
		"system_log('$wc'): its rows");

	# privileges as on a node
	my ($rc, $out, $err) = $router->psql('postgres', 'SET ROLE scim_client; SELECT count(*) FROM scim_router.users()',
		connstr => $router->connstr('postgres') . ' user=authenticator');
	like($err, qr/permission denied/, 'scim_client cannot read users through the router');
	($rc, $out, $err) = $router->psql('postgres', qq{SET ROLE scim_client; SELECT scim_router.create_token('x', '$wa')},
		connstr => $router->connstr('postgres') . ' user=authenticator');
	like($err, qr/permission denied/, 'scim_client cannot create tokens');
	($rc, $out, $err) = $router->psql('postgres', qq{SET ROLE scim_client; SELECT scim_router._dispatch(0, '{}', '', false)},
		connstr => $router->connstr('postgres') . ' user=authenticator');
	like($err, qr/permission denied/, 'scim_client cannot call the PL/Proxy function itself');
	($rc, $out, $err) = $router->psql('postgres', qq{SELECT scim_router.create_token('x', '$wa')},
		connstr => $router->connstr('postgres') . ' user=reader');
	like($err, qr/permission denied/, 'scim_reader cannot create tokens');
	is($router->safe_psql('postgres', q{SELECT string_agg(p.oid::regprocedure::text, ',' ORDER BY p.oid::regprocedure::text)
		FROM pg_proc p WHERE has_function_privilege('scim_client', p.oid, 'EXECUTE')
		AND p.pronamespace IN ('scim_router'::regnamespace, 'scim_api'::regnamespace)}),
		'scim_api.dispatch(jsonb),scim_api.dispatch(text),scim_api.pre_request()', 'scim_client may run dispatch (and the pre-request hook) only');
	($rc, $out, $err) = $s1->psql('postgres', q{SELECT scim.dispatch_routed('{}', '', false)},
		connstr => $s1->connstr('postgres') . ' user=scim_router');
	is($rc, 0, 'on a shard, the router\'s login role runs scim.dispatch_routed');
	is($s1->safe_psql('postgres', q{SELECT string_agg(r.rolname, ',' ORDER BY r.rolname) FROM pg_roles r
		WHERE has_function_privilege(r.oid, 'scim.dispatch_routed(text, text, boolean)', 'EXECUTE') AND NOT r.rolsuper}),
		'scim_proxy,scim_router', 'on a shard, only scim_proxy (and its members) may run scim.dispatch_routed');
}

# ---------------------------------------------------------------------------
# A shard down: its workspaces get 503, the other shard's keep working
# ---------------------------------------------------------------------------

{
	my ($wa, $wc) = ($on1[0], $on2[0]);
	$s2->stop;
	my $log_pos = -s $router->logfile;
	my $r = dispatch($router, 'GET', '/scim/v2/Users', token => $token{$wc});
	is($r->{status}, 503, 'shard 2 down: its workspace gets 503');
	is($r->{headers}{'retry-after'}, '5', '... with Retry-After');
	is($r->{body}{schemas}[0], 'urn:ietf:params:scim:api:messages:2.0:Error', '... and a SCIM error body');
	is($r->{headers}{'content-type'}, 'application/scim+json', '... as application/scim+json');
	is($r->{err}, '', '... nothing but the answer reaches the client');
	is(dispatch($router, 'GET', '/scim/v2/Users', token => $token{$on2[1]})->{status}, 503, 'the other shard-2 workspace too');
	is(dispatch($router, 'GET', '/scim/v2/Users', token => $token{$wa})->{status}, 200, 'a shard-1 workspace keeps answering');
	is(dispatch($router, 'POST', '/scim/v2/Users', token => $token{$on1[1]}, body => user_body(userName => 'eve@example.com'))->{status},
		201, 'and keeps accepting writes');
	my $log = slurp_file($router->logfile, $log_pos);
	like($log, qr/scim_router: partition [1357] is unavailable/, 'the router logs the unavailable partition');
	my $secret = substr($token{$wc}, 5);
	unlike($log, qr/\Q$secret\E/, '... never the token');
	is(rq(qq{SELECT count(*) > 0 FROM scim_router.users('$wa')}), 't', "users('$wa') touches shard 1 only: it still answers");
	my ($rc, $out, $err) = $router->psql('postgres', 'SELECT count(*) FROM scim_router.users()');
	isnt($rc, 0, 'users() of every shard fails while one is down');
	$s2->start;
	is(dispatch($router, 'GET', '/scim/v2/Users', token => $token{$wc})->{status}, 200, 'shard 2 back: its workspace answers again');
	is(dispatch($router, 'GET', '/scim/v2/Users', token => $token{$wa})->{status}, 200, 'and shard 1\'s still does');
}

$router->stop;
$_->stop for @shards;
done_testing();
