
# Copyright (c) scim_provision contributors

# test/t/70_postgrest_replay.pl - the PostgREST contract, replayed.
#
# PostgREST cannot be installed here, so this test does what it does for
# POST /rpc/dispatch (PostgREST 12+: Query/PreQuery.hs, Query/Statements.hs):
# connect as the login role, BEGIN, set search_path, role, request.jwt.claims,
# request.method, request.path, request.headers, request.cookies with
# set_config(..., true), optionally run the pre-request function, run the
# main query, read response.status and response.headers, COMMIT (or roll
# back on error).  Each request is its own transaction, so what a refused
# request leaves behind is checked from another session after the commit.
#
# Part 1 replays whole IdP sessions (OneLogin, Okta, Entra ID) and the error
# cases with the headers deploy/nginx/scim_provision.conf sends.  Part 2
# starts that nginx site on spare ports in front of a small HTTP stand-in for
# PostgREST that runs the same replay, sends requests with curl, and checks
# both the answers and what nginx forwarded (skipped without nginx, curl or
# openssl).

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $top = abs_path(dirname(__FILE__) . '/../..');
my $json = JSON::PP->new->canonical->allow_nonref->utf8(0);

my $node = PostgreSQL::Test::Cluster->new('postgrest');
$node->init;
$node->start;

# What deploy/README.md has the administrator do.
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION scim_provision CASCADE;
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT scim_client TO authenticator;
SELECT scim.approve_domain('example.com');
SELECT scim.create_workspace('acme');
SELECT scim.approve_domain('acme.test', 'acme');
});
my $token = $node->safe_psql('postgres', q{SELECT scim.create_token('idp')});
my $acme_token = $node->safe_psql('postgres', q{SELECT scim.create_token('idp', 'acme')});
like($token, qr/^\S{20,}$/, 'a SCIM token for workspace default');

# ---------------------------------------------------------------------------
# PostgREST stand-in
# ---------------------------------------------------------------------------

# QueryBuilder.callPlanToQuery: a single unnamed parameter is passed as
# $1::<its type>; Plan.findProc picks the dispatch variant whose type fits
# the Content-Type (text/plain: text, application/json: json/jsonb)
my $main_query =
	q{WITH pgrst_source AS (SELECT pgrst_call.pgrst_scalar FROM (SELECT "scim_api"."dispatch"(:'body'::ARGTYPE) pgrst_scalar) pgrst_call) }
  . q{SELECT null::bigint AS total_result_set, 1 AS page_total, }
  . q{"scim_api"."application/scim+json"(_postgrest_t.pgrst_scalar) AS body, }
  . q{nullif(current_setting('response.headers', true), '') AS response_headers, }
  . q{nullif(current_setting('response.status', true), '') AS response_status, }
  . q{'' AS response_inserted }
  . q{FROM (SELECT "pgrst_source".* FROM "pgrst_source") _postgrest_t;};

# PostgREST's own error answer
sub pgrst_error
{
	my ($status, $code, $message, %extra) = @_;
	my $body = { code => $code, message => $message, details => $extra{details}, hint => $extra{hint} };
	return {
		status => $status,
		headers => { 'content-type' => 'application/json; charset=utf-8', %{ $extra{headers} // {} } },
		raw => $json->encode($body),
		body => $body,
		pgrst_error => 1,
	};
}

# One HTTP request to PostgREST as nginx forwards it: method and path of the
# request line, headers (any case), body bytes.  Returns status, headers
# (lower-case names), raw body and decoded body.
sub postgrest
{
	my (%req) = @_;
	my $pre_request = $req{pre_request};

	return pgrst_error(404, 'PGRST125', 'Invalid path specified in request URL')
	  unless ($req{method} // '') eq 'POST' && ($req{path} // '') eq '/rpc/dispatch';

	my %h;
	while (my ($k, $v) = each %{ $req{headers} }) { $h{ lc $k } = $v; }

	# a Bearer value is a JWT to PostgREST; this deployment never sends one
	return pgrst_error(401, 'PGRST301', 'Expected 3 parts in JWT; got 1',
		headers => { 'www-authenticate' => 'Bearer error="invalid_token"' })
	  if exists $h{authorization};

	# MediaType.hs: a missing Content-Type is JSON; Payload.hs: text/plain
	# is passed raw (RawPay) to a single unnamed text parameter
	my $ct = $h{'content-type'} // 'application/json';
	my $argtype;
	if ($ct =~ m{^application/json\b}i) { $argtype = 'jsonb'; }
	elsif ($ct =~ m{^text/plain\b}i) { $argtype = 'text'; }
	else { return pgrst_error(400, 'PGRST102', "Content-Type not acceptable: $ct"); }
	my $accept = $h{accept} // '*/*';
	return pgrst_error(406, 'PGRST107', "None of these media types are available: $accept")
	  unless $accept =~ m{^(application/scim\+json|application/json|\*/\*)\b}i;

	# Payload.hs: an empty JSON body on /rpc is {}; a JSON scalar becomes [];
	# a text/plain body is passed as it is, '' when empty
	my $body = $req{body} // '';
	if ($argtype eq 'text')
	{
		# PostgreSQL's text input refuses bytes that are not UTF-8
		my $copy = $body;
		return pgrst_error(400, '22021', 'invalid byte sequence for encoding "UTF8"')
		  unless utf8::decode($copy);
	}
	elsif ($body eq '')
	{
		$body = '{}';
	}
	else
	{
		my $v = eval { JSON::PP->new->allow_nonref->decode($body) };
		return pgrst_error(400, 'PGRST102', 'Empty or invalid json') if $@;
		$body = '[]' unless ref $v eq 'HASH' || ref $v eq 'ARRAY';
	}
	(my $query = $main_query) =~ s/ARGTYPE/$argtype/;

	delete $h{cookie};
	my $headers_json = $json->encode(\%h);

	my $script = join("\n",
		'\set VERBOSITY verbose',
		'BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;',
		q{select set_config('search_path', '"scim_api", "public"', true), set_config('role', 'scim_client', true), }
		  . q{set_config('request.jwt.claims', '{"role":"scim_client"}', true), }
		  . q{set_config('request.method', 'POST', true), set_config('request.path', '/rpc/dispatch', true), }
		  . q{set_config('request.headers', :'hdrs', true), set_config('request.cookies', '{}', true) \gset},
		($pre_request ? 'select "scim_api"."pre_request"() \gset' : ()),
		$query,
		'COMMIT;', '');

	my ($out, $err) = ('', '');
	my $rc = $node->psql(
		'postgres', $script,
		connstr => $node->connstr('postgres') . ' user=authenticator',
		stdout => \$out,
		stderr => \$err,
		extra_params => [ '-F', "\x1f", '-v', "hdrs=$headers_json", '-v', "body=$body" ]);

	if ($rc != 0)
	{
		# Error.hs: RAISE SQLSTATE 'PGRST' carries status and headers in
		# MESSAGE/DETAIL; other SQLSTATEs map to a status
		# (psql prefixes "psql:<stdin>:N: " to the first line)
		my ($state, $message) = $err =~ /\bERROR:\s+(\w{5}):\s+(.*)$/m;
		my ($detail) = $err =~ /^DETAIL:\s+(.*)$/m;
		$state //= 'XX000';
		if ($state eq 'PGRST')
		{
			my $m = eval { $json->decode($message) } // {};
			my $d = eval { $json->decode($detail // '') } // {};
			return pgrst_error($d->{status} // 500, $m->{code}, $m->{message},
				details => $m->{details}, hint => $m->{hint},
				headers => { map { (lc $_ => $d->{headers}{$_}) } keys %{ $d->{headers} // {} } });
		}
		my %map = ('42501' => 401, 'P0001' => 400, '42883' => 404, '23505' => 409);
		return pgrst_error($map{$state} // 500, $state, $message // $err, details => $detail);
	}

	chomp $out;
	my @f = split /\x1f/, $out, -1;
	my ($raw, $rheaders, $rstatus) = @f[ 2, 3, 4 ];
	my %out_headers = ('content-type' => 'application/scim+json');
	for my $item (@{ $json->decode($rheaders || '[]') })
	{
		while (my ($k, $v) = each %$item) { $out_headers{ lc $k } = $v; }
	}
	return {
		status => ($rstatus || 200) + 0,
		headers => \%out_headers,
		raw => $raw,
		body => (defined $raw && $raw ne '' ? $json->decode($raw) : undef),
	};
}

# The PostgREST stand-in's HTTP side: one request per connection, recorded.
sub serve
{
	my ($server, $record) = @_;
	while (my $c = $server->accept)
	{
		local $/ = "\r\n";
		my $line = <$c>;
		next unless defined $line;
		$line =~ s/\r\n$//;
		my ($method, $target) = split / /, $line;
		my %h;
		while (my $l = <$c>)
		{
			$l =~ s/\r\n$//;
			last if $l eq '';
			my ($k, $v) = split /:\s*/, $l, 2;
			$h{$k} = $v;
		}
		my ($len) = map { $h{$_} } grep { lc $_ eq 'content-length' } keys %h;
		my $body = '';
		read($c, $body, $len) if $len;
		my $res = postgrest(method => $method, path => $target, headers => \%h, body => $body);
		open my $fh, '>>', $record or die;
		print $fh $json->encode({ method => $method, target => $target, headers => \%h, body => $body }), "\n";
		close $fh;
		my $payload = $res->{raw} // '';
		utf8::encode($payload) if utf8::is_utf8($payload);
		my $status_line = "HTTP/1.1 $res->{status} X\r\n";
		my $hdrs = join '', map { "$_: $res->{headers}{$_}\r\n" } sort keys %{ $res->{headers} };
		print $c $status_line, $hdrs, 'Content-Length: ' . length($payload) . "\r\n",
		  "Connection: close\r\n\r\n", ($res->{status} == 204 ? '' : $payload);
		close $c;
	}
}

# ---------------------------------------------------------------------------
# Part 1: requests as nginx forwards them
# ---------------------------------------------------------------------------

# What deploy/nginx/scim_provision.conf sends PostgREST for an IdP request.
sub via_nginx_headers
{
	my ($method, $uri, %o) = @_;
	my %h = (
		'Host' => 'scim_postgrest',
		'X-Scim-Method' => $method,
		'X-Scim-Uri' => $uri,
		'Content-Type' => 'text/plain',
		'Accept' => 'application/scim+json',
		'X-Forwarded-Host' => 'scim.example.com',
		'X-Forwarded-Proto' => 'https',
		'X-Forwarded-For' => '192.0.2.10',
		'User-Agent' => $o{agent} // 'OneLogin SCIM',
		%{ $o{headers} // {} });
	my $t = exists $o{token} ? $o{token} : $token;
	$h{'X-Scim-Token'} = "Bearer $t" if defined $t;
	return \%h;
}

sub scim
{
	my ($method, $uri, %o) = @_;
	my $body = $o{body};
	$body = $json->encode($body) if ref $body;
	return postgrest(
		method => 'POST',
		path => '/rpc/dispatch',
		headers => via_nginx_headers($method, $uri, %o),
		body => $body // '',
		pre_request => $o{pre_request});
}

sub q_ { my ($sql) = @_; return $node->safe_psql('postgres', $sql); }
sub log_count { return q_('SELECT count(*) FROM scim.provisioning_log') + 0; }

sub is_scim_error
{
	my ($r, $status, $scim_type, $name) = @_;
	ok( $r->{status} == $status
		  && !$r->{pgrst_error}
		  && ref $r->{body} eq 'HASH'
		  && ($r->{body}{schemas}[0] // '') eq 'urn:ietf:params:scim:api:messages:2.0:Error'
		  && ($r->{body}{status} // '') eq "$status"
		  && (!defined $scim_type || ($r->{body}{scimType} // '') eq $scim_type)
		  && $r->{headers}{'content-type'} eq 'application/scim+json',
		$name)
	  or diag(explain($r));
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
		emails => [ { value => $a{email} // $a{userName}, type => 'work', primary => JSON::PP::true } ],
		(defined $a{title} ? (title => $a{title}) : ()),
		active => (exists $a{active} ? $a{active} : JSON::PP::true),
		'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User' => { department => $a{department} // 'R&D' },
	};
}

my $filter_ann = 'filter=userName%20eq%20%22ann%40example.com%22';

# -- the login role is powerless by itself (NOINHERIT) -----------------------
{
	my ($rc, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM scim.users',
		connstr => $node->connstr('postgres') . ' user=authenticator');
	like($err, qr/permission denied for schema scim/, 'authenticator cannot read scim.users');
	($rc, $out, $err) = $node->psql('postgres', q{SELECT scim_api.dispatch('{}')},
		connstr => $node->connstr('postgres') . ' user=authenticator');
	like($err, qr/permission denied/, 'authenticator cannot call dispatch without switching to scim_client');
	($rc, $out, $err) = $node->psql('postgres', q{SET ROLE scim_client; SELECT count(*) FROM scim.tokens},
		connstr => $node->connstr('postgres') . ' user=authenticator');
	like($err, qr/permission denied for schema scim/, 'as scim_client it cannot read scim.tokens either');
}

# -- OneLogin: look up, create, replace, deactivate, delete -------------------
my $r = scim('GET', "/scim/v2/Users?$filter_ann");
is($r->{status}, 200, 'OneLogin GET /Users?filter=userName eq: 200');
is($r->{headers}{'content-type'}, 'application/scim+json', 'OneLogin lookup: Content-Type application/scim+json');
is_deeply([ $r->{body}{schemas}, $r->{body}{totalResults} ],
	[ ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], 0 ], 'OneLogin lookup: an empty ListResponse');

$r = scim('POST', '/scim/v2/Users', body => user_body(userName => 'ann@example.com', title => 'Engineer'));
is($r->{status}, 201, 'OneLogin POST /Users: 201');
my $ann = $r->{body}{id} // '';
like($ann, qr/^[0-9a-f-]{36}$/, 'OneLogin create: the answer carries the id');
is($r->{headers}{location}, "https://scim.example.com/scim/v2/Users/$ann", 'OneLogin create: Location is the absolute resource URL');
is($r->{body}{meta}{location}, $r->{headers}{location}, 'OneLogin create: meta.location equals Location');
like($r->{headers}{etag} // '', qr{^W/"\d+"$}, 'OneLogin create: a weak ETag');
is(q_(qq{SELECT user_name || ' ' || title || ' ' || billable FROM scim.users WHERE id = '$ann'}),
	'ann@example.com Engineer true', 'OneLogin create: committed, billable at once');

$r = scim('GET', "/scim/v2/Users?$filter_ann");
is($r->{body}{totalResults}, 1, 'OneLogin lookup after the create finds her');

$r = scim('PUT', "/scim/v2/Users/$ann",
	body => user_body(userName => 'ann@example.com', given => 'Annie', title => 'Lead Engineer'));
is($r->{status}, 200, 'OneLogin PUT /Users/{id} (full body): 200');
is(q_(qq{SELECT given_name || ' ' || title FROM scim.users WHERE id = '$ann'}),
	'Annie Lead Engineer', 'OneLogin replace: committed');

$r = scim('PUT', "/scim/v2/Users/$ann",
	body => user_body(userName => 'ann@example.com', given => 'Annie', active => JSON::PP::false));
is($r->{status}, 200, 'OneLogin PUT active:false: 200');
ok(defined $r->{body}{active} && !$r->{body}{active}, 'OneLogin deactivate: the answer says active false');
is(q_(qq{SELECT active || ' ' || billable || ' ' || (deactivated_at IS NOT NULL) || ' ' || title FROM scim.users WHERE id = '$ann'}),
	'false false true Lead Engineer', 'OneLogin deactivate: deactivated, seat released, title left out stays');

$r = scim('DELETE', "/scim/v2/Users/$ann");
is($r->{status}, 204, 'OneLogin DELETE /Users/{id}: 204');
ok(!defined $r->{body}, 'OneLogin delete: no body');
is(q_(qq{SELECT count(*) || ' ' || bool_and(NOT active) FROM scim.users WHERE id = '$ann'}),
	'1 true', 'OneLogin delete under the default policy: deactivated, row kept');

# -- Okta: paged lookup, create, PATCH active without a path ------------------
$r = scim('GET', '/scim/v2/Users?filter=userName%20eq%20%22bob%40example.com%22&startIndex=1&count=100', agent => 'Okta SCIM Client');
is($r->{status}, 200, 'Okta GET /Users?filter&startIndex&count: 200');
is_deeply([ $r->{body}{totalResults}, $r->{body}{startIndex} ], [ 0, 1 ], 'Okta lookup: totalResults 0, startIndex 1');

$r = scim('POST', '/scim/v2/Users', body => user_body(userName => 'bob@example.com', given => 'Bob', family => 'Ray'), agent => 'Okta SCIM Client');
is($r->{status}, 201, 'Okta POST /Users: 201');
my $bob = $r->{body}{id} // '';

$r = scim('GET', "/scim/v2/Users/$bob", agent => 'Okta SCIM Client');
is_deeply([ $r->{status}, $r->{body}{userName} ], [ 200, 'bob@example.com' ], 'Okta GET /Users/{id}: 200 with the user');

$r = scim('PATCH', "/scim/v2/Users/$bob", agent => 'Okta SCIM Client', body => {
	schemas => ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
	Operations => [ { op => 'replace', value => { active => JSON::PP::false } } ] });
is($r->{status}, 200, 'Okta PATCH replace without a path: 200');
is(q_(qq{SELECT active || ' ' || billable FROM scim.users WHERE id = '$bob'}), 'false false', 'Okta PATCH: deactivated');

# -- Entra ID: externalId lookup, create, PATCH Replace with a string boolean ---
$r = scim('GET', '/scim/v2/Users?filter=externalId%20eq%20%22e-4711%22', agent => 'Azure AD SCIM');
is_deeply([ $r->{status}, $r->{body}{totalResults} ], [ 200, 0 ], 'Entra GET /Users?filter=externalId eq: 200, none');

$r = scim('POST', '/scim/v2/Users', agent => 'Azure AD SCIM',
	body => user_body(userName => 'cy@example.com', externalId => 'e-4711', given => 'Cy'));
is($r->{status}, 201, 'Entra POST /Users with externalId: 201');
my $cy = $r->{body}{id} // '';

$r = scim('GET', '/scim/v2/Users?filter=externalId%20eq%20%22e-4711%22', agent => 'Azure AD SCIM');
is_deeply([ $r->{body}{totalResults}, $r->{body}{Resources}[0]{id} ], [ 1, $cy ], 'Entra externalId lookup finds the user');

$r = scim('PATCH', "/scim/v2/Users/$cy", agent => 'Azure AD SCIM', body => {
	schemas => ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
	Operations => [ { op => 'Replace', path => 'active', value => 'False' } ] });
is($r->{status}, 200, 'Entra PATCH "Replace" active "False": 200');
is(q_(qq{SELECT active::text FROM scim.users WHERE id = '$cy'}), 'false', 'Entra PATCH: deactivated');

# -- errors ---------------------------------------------------------------------
my $before = log_count();
$r = scim('GET', '/scim/v2/Users', token => undef);
is_scim_error($r, 401, undef, 'no token: SCIM 401');
like($r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, 'no token: WWW-Authenticate: Bearer');

$r = scim('GET', '/scim/v2/Users', token => 'scim_000000000000000000000000_notavalidsecret');
is_scim_error($r, 401, undef, 'an unknown token: SCIM 401');

$r = scim('GET', '/scim/v2/Users/6f1c2a4e-0000-4000-8000-000000000000');
is_scim_error($r, 404, undef, 'an unknown id: SCIM 404');

$r = scim('POST', '/scim/v2/Users', body => user_body(userName => 'BOB@example.com', given => 'Bobby'));
is_scim_error($r, 409, 'uniqueness', 'a userName taken (in another case): SCIM 409 uniqueness');

$r = scim('PUT', "/scim/v2/Users/$bob", headers => { 'If-Match' => 'W/"999"' },
	body => user_body(userName => 'bob@example.com', title => 'Stale'));
is_scim_error($r, 412, undef, 'If-Match with a stale ETag: SCIM 412');
is(q_(qq{SELECT coalesce(title, '<none>') FROM scim.users WHERE id = '$bob'}), '<none>', 'the stale PUT wrote nothing');

$r = scim('GET', '/scim/v2/Users', headers => { 'X-Scim-Method' => '' });
is_scim_error($r, 400, undef, 'no X-Scim-Method from the proxy: SCIM 400');

# a refused request: its log row is committed, nothing else
my $users_before = q_('SELECT count(*) FROM scim.users');
my $log_before = log_count();
$r = scim('POST', '/scim/v2/Users', body => user_body(userName => 'mallory@elsewhere.test'));
is_scim_error($r, 400, 'invalidValue', 'a user outside the approved domains: SCIM 400 invalidValue');
is(q_('SELECT count(*) FROM scim.users'), $users_before, 'refused: after COMMIT another session sees no new user');
is(log_count(), $log_before + 1, 'refused: after COMMIT another session sees one new log row');
is(q_(q{SELECT status || ' ' || coalesce(scim_type, '') || ' ' || coalesce(method, '') FROM scim.provisioning_log ORDER BY id DESC LIMIT 1}),
	'400 invalidValue POST', 'refused: the log row has the outcome');

$r = scim('PUT', "/scim/v2/Users/$bob", body => user_body(userName => 'bob@elsewhere.test', title => 'Moved'));
is_scim_error($r, 400, 'invalidValue', 'moving a user to a domain that is not approved: SCIM 400');
is(q_(qq{SELECT user_name || ' ' || coalesce(title, '<none>') FROM scim.users WHERE id = '$bob'}),
	'bob@example.com <none>', 'refused PUT: the user is unchanged after COMMIT');

# every token sees its own workspace only
$r = scim('POST', '/scim/v2/Users', token => $acme_token, body => user_body(userName => 'dee@acme.test', given => 'Dee'));
is($r->{status}, 201, 'a user created with workspace acme\'s token');
my $dee = $r->{body}{id} // '';
is(q_(qq{SELECT workspace FROM scim.users WHERE id = '$dee'}), 'acme', 'it lands in workspace acme');
$r = scim('GET', "/scim/v2/Users/$dee");
is_scim_error($r, 404, undef, 'the default workspace\'s token cannot read it');
$r = scim('GET', '/scim/v2/Users?filter=userName%20eq%20%22dee%40acme.test%22');
is($r->{body}{totalResults}, 0, 'nor find it by filter');
$r = scim('DELETE', "/scim/v2/Users/$dee");
is_scim_error($r, 404, undef, 'nor delete it');
is(q_(qq{SELECT active::text FROM scim.users WHERE id = '$dee'}), 'true', 'it is untouched');

# -- a body that is not JSON: answered and logged by the extension -------------
$log_before = log_count();
$users_before = q_('SELECT count(*) FROM scim.users');
$r = scim('POST', '/scim/v2/Users', body => '{"userName": "nojson@example.com", ');
is_scim_error($r, 400, 'invalidSyntax', 'a body that is not JSON (text/plain, dispatch(text)): SCIM 400 invalidSyntax');
is(log_count(), $log_before + 1, 'a body that is not JSON: its System Log row is committed');
is(q_('SELECT count(*) FROM scim.users'), $users_before, 'a body that is not JSON: nothing else');
$r = scim('PATCH', "/scim/v2/Users/$bob", body => 'op=replace&title=x');
is_scim_error($r, 400, 'invalidSyntax', 'PATCH with a form body: SCIM 400 invalidSyntax');

# -- 0.2.0's contract: a proxy still sending application/json -------------------
my %legacy = (headers => { 'Content-Type' => 'application/json' });
$r = scim('GET', "/scim/v2/Users/$bob", %legacy);
is_deeply([ $r->{status}, $r->{body}{userName} ], [ 200, 'bob@example.com' ],
	'application/json reaches dispatch(jsonb): GET /Users/{id} 200');
$r = scim('PATCH', "/scim/v2/Users/$bob", %legacy, body => {
	schemas => ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
	Operations => [ { op => 'replace', path => 'title', value => 'Legacy' } ] });
is($r->{status}, 200, 'application/json: PATCH 200');
is(q_(qq{SELECT title FROM scim.users WHERE id = '$bob'}), 'Legacy', 'application/json: the PATCH is committed');
$log_before = log_count();
$r = scim('POST', '/scim/v2/Users', %legacy, body => '{"userName": ');
ok($r->{pgrst_error} && $r->{status} == 400,
	'application/json: a body that is not JSON is refused by PostgREST itself (why nginx now sends text/plain)');
is(log_count(), $log_before, 'application/json: that refusal leaves no System Log row');

# -- the optional pre-request hook ----------------------------------------------
$log_before = log_count();
$r = scim('GET', '/scim/v2/Users', token => undef, pre_request => 1);
ok($r->{pgrst_error} && $r->{status} == 401, 'pre_request: no token is refused with 401 before dispatch');
like($r->{headers}{'www-authenticate'} // '', qr/^Bearer/, 'pre_request: the refusal carries WWW-Authenticate');
is(log_count(), $log_before, 'pre_request: the early refusal is rolled back, no log row');
$r = scim('GET', "/scim/v2/Users?$filter_ann", pre_request => 1);
is($r->{status}, 200, 'pre_request: a request with a token goes through');

# ---------------------------------------------------------------------------
# Part 2: through the shipped nginx site
# ---------------------------------------------------------------------------

my ($nginx) = grep { -f $_ && -x _ } ('/usr/sbin/nginx', map { "$_/nginx" } split /:/, $ENV{PATH});
my $have_curl = (system('curl --version >/dev/null 2>&1') == 0);
my $have_openssl = (system('openssl version >/dev/null 2>&1') == 0);

SKIP:
{
	skip 'nginx, curl or openssl missing', 42 unless $nginx && $have_curl && $have_openssl;

	my $dir = PostgreSQL::Test::Utils::tempdir('nginx');
	my $upstream_port = PostgreSQL::Test::Cluster::get_free_port();
	my $https_port = PostgreSQL::Test::Cluster::get_free_port();
	my $http_port = PostgreSQL::Test::Cluster::get_free_port();
	my $record = "$dir/forwarded.jsonl";

	# the PostgREST stand-in: an HTTP/1.1 server that records what it gets
	my $server = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1', LocalPort => $upstream_port,
		Listen => 16, ReuseAddr => 1, Proto => 'tcp') or die "listen: $!";
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		# never return into the test (its END blocks would stop the cluster)
		eval { serve($server, $record) };
		POSIX::_exit(0);
	}
	close $server;

	# the shipped site on spare ports, with a throwaway certificate
	system("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=scim.example.com "
		  . "-keyout $dir/scim.key -out $dir/scim.crt >/dev/null 2>&1") == 0 or die 'openssl';
	open my $in, '<', "$top/deploy/nginx/scim_provision.conf" or die;
	my $site = do { local $/; <$in> };
	close $in;
	my $n = 0;
	$n += $site =~ s/^(\s*ssl_certificate)\s+[^;]+;/$1 $dir\/scim.crt;/m;
	$n += $site =~ s/^(\s*ssl_certificate_key)\s+[^;]+;/$1 $dir\/scim.key;/m;
	$n += $site =~ s/^(\s*listen\s+)443 ssl;/${1}127.0.0.1:$https_port ssl;/m;
	$n += $site =~ s/^(\s*listen\s+)80;/${1}127.0.0.1:$http_port;/m;
	$n += $site =~ s/^(\s*server\s+)127\.0\.0\.1:3000;/${1}127.0.0.1:$upstream_port;/m;
	is($n, 5, 'the shipped site has the lines the test adapts (certificate, ports, upstream)');
	open my $out, '>', "$dir/site.conf" or die;
	print $out $site;
	close $out;
	open $out, '>', "$dir/nginx.conf" or die;
	print $out <<"EOF";
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 64; }
http {
	access_log $dir/access.log;
	client_body_temp_path $dir/body;
	proxy_temp_path $dir/proxy;
	fastcgi_temp_path $dir/fastcgi;
	uwsgi_temp_path $dir/uwsgi;
	scgi_temp_path $dir/scgi;
	include $dir/site.conf;
}
EOF
	close $out;
	my @nginx = ($nginx, '-p', "$dir/", '-e', "$dir/error.log", '-c', "$dir/nginx.conf");
	ok(system(@nginx) == 0, 'nginx starts with the shipped site') or diag(slurp_file("$dir/error.log"));

	my $base = "https://scim.example.com:$https_port/scim/v2";
	my $curl = sub {
		my ($method, $url, %o) = @_;
		my @cmd = ('curl', '-sk', '--max-time', '30', '--resolve', "scim.example.com:$https_port:127.0.0.1",
			'--resolve', "scim.example.com:$http_port:127.0.0.1", '-X', $method, '-D', "$dir/h", '-o', "$dir/b",
			'-w', '%{http_code}');
		push @cmd, '-H', "Authorization: Bearer $o{token}" if defined $o{token};
		push @cmd, '-H', 'Content-Type: application/scim+json', '--data-binary', "\@$dir/req" if defined $o{body};
		push @cmd, @{ $o{args} // [] };
		if (defined $o{body})
		{
			open my $f, '>', "$dir/req" or die;
			print $f (ref $o{body} ? $json->encode($o{body}) : $o{body});
			close $f;
		}
		my ($stdout, $stderr) = ('', '');
		IPC::Run::run([ @cmd, $url ], '>', \$stdout, '2>', \$stderr);
		my %h;
		for (split /\r\n/, slurp_file("$dir/h")) { $h{ lc $1 } = $2 if /^([^:]+):\s*(.*)$/; }
		my $b = slurp_file("$dir/b");
		return { status => $stdout + 0, headers => \%h, raw => $b, body => scalar(eval { $json->decode($b) }) };
	};
	my $last_forwarded = sub {
		my @l = split /\n/, slurp_file($record);
		my $f = $json->decode($l[-1]);
		my %h;
		$h{ lc $_ } = $f->{headers}{$_} for keys %{ $f->{headers} };
		$f->{headers} = \%h;
		return $f;
	};

	my $h = $curl->('GET', "$base/Users?$filter_ann", token => $token);
	is($h->{status}, 200, 'curl GET /scim/v2/Users?filter: 200');
	is($h->{headers}{'content-type'}, 'application/scim+json', 'curl GET: Content-Type application/scim+json');
	is($h->{body}{totalResults}, 1, 'curl GET: finds the user');
	my $f = $last_forwarded->();
	is("$f->{method} $f->{target}", 'POST /rpc/dispatch', 'nginx forwards POST /rpc/dispatch without the query string');
	is_deeply(
		[ @{ $f->{headers} }{qw(x-scim-method x-scim-uri x-scim-token content-type accept x-forwarded-host x-forwarded-proto)} ],
		[ 'GET', "/scim/v2/Users?$filter_ann", "Bearer $token", 'text/plain', 'application/scim+json', 'scim.example.com', 'https' ],
		'nginx forwards method, URI, token, text/plain content type, SCIM accept, forwarded host and scheme');
	ok(!exists $f->{headers}{authorization}, 'nginx removes Authorization');
	is($f->{body}, '', 'a GET reaches PostgREST with an empty body');

	$h = $curl->('GET', "$base/ServiceProviderConfig", token => $token);
	is_deeply([ $h->{status}, $h->{body}{schemas} ], [ 200, ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'] ],
		'curl GET /scim/v2/ServiceProviderConfig: 200');

	# as in deploy/README.md: curl -G --data-urlencode 'filter=userName eq "..."'
	$h = $curl->('GET', "$base/Users", token => $token,
		args => [ '-G', '--data-urlencode', 'filter=userName eq "bob@example.com"' ]);
	is_deeply([ $h->{status}, $h->{body}{totalResults} ], [ 200, 1 ], 'curl -G --data-urlencode filter: finds the user');

	my $create = user_body(userName => 'eve@example.com', given => 'Eve');
	$h = $curl->('POST', "$base/Users", token => $token, body => $create);
	is($h->{status}, 201, 'curl POST /scim/v2/Users: 201');
	my $eve = $h->{body}{id} // '';
	is($h->{headers}{location}, "https://scim.example.com/scim/v2/Users/$eve", 'curl POST: Location');
	like($h->{headers}{etag} // '', qr{^W/"\d+"$}, 'curl POST: ETag');
	ok(!exists $h->{headers}{'content-range'} && !exists $h->{headers}{'content-location'},
		'PostgREST-only response headers are hidden');
	is($last_forwarded->()->{body}, $json->encode($create), 'the body reaches PostgREST byte for byte');

	$h = $curl->('POST', "$base/Users", token => $token, body => user_body(userName => 'fwd@example.com'),
		args => [ '-H', 'X-Forwarded-Host: evil.example"><x>', '-H', 'X-Forwarded-Proto: javascript',
				  '-H', 'X-Scim-Uri: https://evil.example/scim/v2/Users' ]);
	is_deeply([ $h->{status}, $h->{headers}{location}, $h->{body}{meta}{location} ],
		[ 201, "https://scim.example.com/scim/v2/Users/$h->{body}{id}", "https://scim.example.com/scim/v2/Users/$h->{body}{id}" ],
		'a client\'s own X-Forwarded-Host, X-Forwarded-Proto and X-Scim-Uri are replaced by nginx\'s');

	$h = $curl->('POST', "$base/Users", token => $token, body => '{"userName": "half');
	is_deeply([ $h->{status}, $h->{body}{scimType}, $h->{headers}{'content-type'} ], [ 400, 'invalidSyntax', 'application/scim+json' ],
		'curl POST with a body that is not JSON: a SCIM 400 invalidSyntax from the extension');

	$h = $curl->('PATCH', "$base/Users/$eve", token => $token, body => {
		schemas => ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
		Operations => [ { op => 'replace', value => { title => 'Engineer' } } ] });
	is_deeply([ $h->{status}, $h->{body}{title} ], [ 200, 'Engineer' ], 'curl PATCH: 200 with the new title');
	is($last_forwarded->()->{headers}{'x-scim-method'}, 'PATCH', 'PATCH becomes X-Scim-Method: PATCH');

	$h = $curl->('PUT', "$base/Users/$eve", token => $token, body => {
		schemas => ['urn:ietf:params:scim:schemas:core:2.0:User'], userName => 'eve@example.com', active => JSON::PP::false });
	ok($h->{status} == 200 && !$h->{body}{active} && $h->{body}{title} eq 'Engineer',
		'curl PUT active false: 200, deactivated, the title left out stays');

	$h = $curl->('POST', "$base/Users", token => $token, body => { userName => 'mallory@elsewhere.test', active => JSON::PP::true });
	is_deeply([ $h->{status}, $h->{body}{scimType} ], [ 400, 'invalidValue' ], 'curl POST outside the approved domains: 400 invalidValue');

	$h = $curl->('DELETE', "$base/Users/$eve", token => $token);
	is_deeply([ $h->{status}, $h->{raw} ], [ 204, '' ], 'curl DELETE: 204, no body');

	$h = $curl->('GET', "$base/Users");
	is($h->{status}, 401, 'curl without a token: 401');
	like($h->{headers}{'www-authenticate'} // '', qr/^Bearer/, 'curl without a token: WWW-Authenticate');
	is($h->{body}{schemas}[0], 'urn:ietf:params:scim:api:messages:2.0:Error', 'curl without a token: a SCIM error document');
	ok(!exists $last_forwarded->()->{headers}{'x-scim-token'}, 'no Authorization: no X-Scim-Token either');

	$h = $curl->('GET', "$base/Users", args => [ '-H', 'X-Scim-Token: Bearer ' . $token ]);
	is($h->{status}, 401, 'a client cannot smuggle its own X-Scim-Token past nginx');

	$h = $curl->('GET', "https://scim.example.com:$https_port/admin", token => $token);
	is_deeply([ $h->{status}, $h->{body}{status} ], [ 404, '404' ], 'outside /scim/v2/: a SCIM 404 from nginx');

	$h = $curl->('POST', "$base/Users", token => $token, body => '{"userName":"' . ('x' x (1024 * 1024)) . '"}');
	is_deeply([ $h->{status}, $h->{body}{status} ], [ 413, '413' ], 'a body over 1 MB: a SCIM 413 from nginx');

	$h = $curl->('POST', "http://scim.example.com:$http_port/scim/v2/Users", token => $token);
	is_deeply([ $h->{status}, $h->{headers}{location} ], [ 308, "https://scim.example.com/scim/v2/Users" ],
		'plain HTTP: 308 to https (method and body kept)');

	system(@nginx, '-s', 'stop');

	# -- Part 3: the rate limits, with small numbers ----------------------------
	# The shipped site again, its per-token limit lowered to 1 request a
	# minute with a burst of 4: the first 5 requests of a token pass, the
	# 6th is refused by nginx itself.
	my $limited = $site;
	my $m = 0;
	$m += $limited =~ s/(zone=scim_per_token:\S+\s+rate=)600r\/m;/${1}1r\/m;/;
	$m += $limited =~ s/(limit_req\s+zone=scim_per_token\s+burst=)120\b/${1}4/;
	is($m, 2, 'the shipped site has the per-token zone and limit the test lowers');
	my $https2 = PostgreSQL::Test::Cluster::get_free_port();
	my $http2 = PostgreSQL::Test::Cluster::get_free_port();
	$limited =~ s/127\.0\.0\.1:$https_port ssl;/127.0.0.1:$https2 ssl;/;
	$limited =~ s/127\.0\.0\.1:$http_port;/127.0.0.1:$http2;/;
	open $out, '>', "$dir/site.conf" or die;
	print $out $limited;
	close $out;
	ok(system(@nginx) == 0, 'nginx starts with the lowered limits') or diag(slurp_file("$dir/error.log"));
	$https_port = $https2;
	$base = "https://scim.example.com:$https2/scim/v2";

	my $forwarded_before = (slurp_file($record) =~ tr/\n//);
	my @statuses = map { $curl->('GET', "$base/ServiceProviderConfig", token => $token)->{status} } 1 .. 5;
	is_deeply(\@statuses, [ (200) x 5 ], 'rate limit: 5 requests of one token (1 + a burst of 4) pass');
	$h = $curl->('GET', "$base/ServiceProviderConfig", token => $token);
	is($h->{status}, 429, 'rate limit: the 6th request of that token is 429');
	is_deeply([ $h->{body}{schemas}, $h->{body}{status} ], [ ['urn:ietf:params:scim:api:messages:2.0:Error'], '429' ],
		'rate limit: the 429 is a SCIM error document');
	is($h->{headers}{'content-type'}, 'application/scim+json', 'rate limit: the 429 is application/scim+json');
	like($h->{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/, 'rate limit: the 429 carries Retry-After in seconds');
	$h = $curl->('GET', "$base/ServiceProviderConfig", args => [ '-H', "Authorization: bearer   $token " ]);
	is($h->{status}, 429, 'rate limit: the same token with "bearer" in another case and more spaces is the same bucket');
	my $forwarded_after = (slurp_file($record) =~ tr/\n//);
	is($forwarded_after - $forwarded_before, 5, 'rate limit: refused requests never reach PostgREST');
	$h = $curl->('GET', "$base/ServiceProviderConfig", token => $acme_token);
	is($h->{status}, 200, 'rate limit: another token has its own bucket');
	unlike(slurp_file("$dir/error.log"), qr/\Q$token\E/, 'rate limit: the token is not in nginx\'s error log');

	system(@nginx, '-s', 'stop');
	kill 'TERM', $pid;
	waitpid($pid, 0);
}

$node->stop;
done_testing();
