
# Copyright (c) scim_provision contributors

# test/t/85_log_secrets.pl - no bearer token in the server log (#15, point 2).
#
# A 500 inside scim.handle raises a LOG line, and LOG outranks ERROR for
# log_min_error_statement: with the default setting (error) the server log
# got "STATEMENT: SELECT ... scim.handle(..., '{"authorization": "Bearer
# scim_..."}')", and called from PL/pgSQL the CONTEXT lines quote that
# statement too.  Here every kind of 500 reachable from scim.handle,
# scim_api.dispatch and /Bulk is provoked with fault-injection triggers and
# a renamed column (rolled back), as direct SQL calls that carry the token
# in their text, and the server log is searched for the token and for its
# secret part.  The LOG lines themselves must still be there.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('log_secrets');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'scim_provision'
log_min_error_statement = error
log_statement = none
log_min_messages = warning
log_error_verbosity = default
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION scim_provision CASCADE;
SELECT scim.approve_domain('example.com');
-- fault injection: the rows and requests named "boom" fail with XX000
CREATE FUNCTION public.boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF (TG_TABLE_NAME = 'users' AND to_jsonb(NEW) ->> 'user_name' LIKE 'boom%')
	   OR (TG_TABLE_NAME = 'groups' AND to_jsonb(NEW) ->> 'display_name' LIKE 'boom%')
	   OR (TG_TABLE_NAME = 'provisioning_log'
		   AND (to_jsonb(NEW) ->> 'path' LIKE '%boom%' OR current_setting('test.boom', true) = 'on')) THEN
		RAISE EXCEPTION 'injected fault in %', TG_TABLE_NAME USING ERRCODE = 'internal_error';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER boom BEFORE INSERT ON scim.users FOR EACH ROW EXECUTE FUNCTION public.boom();
CREATE TRIGGER boom BEFORE INSERT ON scim.groups FOR EACH ROW EXECUTE FUNCTION public.boom();
CREATE TRIGGER boom BEFORE INSERT ON scim.provisioning_log FOR EACH ROW EXECUTE FUNCTION public.boom();
INSERT INTO scim.users (workspace, user_name) VALUES ('default', 'a@example.com'), ('default', 'b@example.com');
});
my $token = $node->safe_psql('postgres', q{SELECT scim.create_token('idp')});
like($token, qr/^scim_[0-9a-f]{24}_[A-Za-z0-9_-]{43}$/, 'a SCIM token');
my ($secret) = $token =~ /^scim_[0-9a-f]{24}_(.+)$/;
my $hdr = qq{'{"authorization": "Bearer $token", "content-type": "application/scim+json"}'::jsonb};
my $user_id = $node->safe_psql('postgres', q{SELECT id FROM scim.users WHERE user_name = 'a@example.com'});

my $log_start = -s $node->logfile;

# one status from scim.handle, called by a top-level statement with the token in it
sub handle_status
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

# 1. the router: POST /Users, a failing trigger on scim.users
is( handle_status(
		qq{SELECT status FROM scim.handle('POST', '/Users', NULL, $hdr, '{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "boom1\@example.com"}')}
	),
	'500',
	'POST /Users: 500 from a failing write');

# 2. the same from PL/pgSQL: the CONTEXT of a report would quote the SQL
is( handle_status(
		qq{DO \$\$ DECLARE s integer; BEGIN SELECT status INTO s FROM scim.handle('POST', '/Users', NULL, $hdr, '{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "boom2\@example.com"}'); RAISE NOTICE 'status %', s; END \$\$; SELECT 'done'}
	),
	'done',
	'POST /Users from PL/pgSQL: ran');

# 3. /Groups: a failing trigger on scim.groups
is( handle_status(
		qq{SELECT status FROM scim.handle('POST', '/Groups', NULL, $hdr, '{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "boom group"}')}
	),
	'500',
	'POST /Groups: 500 from a failing write');

# 4. /Bulk: an operation whose System Log row cannot be written
is( handle_status(
		qq{SELECT status FROM scim.handle('POST', '/Bulk', NULL, $hdr, '{"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [{"method": "DELETE", "path": "/Users/boom-bulk"}]}')}
	),
	'500',
	'POST /Bulk: 500 when an operation fails beyond its own error handling');

# 5. cursor pagination: the cursor key's column renamed (rolled back)
is( handle_status(
		qq{BEGIN; ALTER TABLE scim._cursor_secret RENAME COLUMN secret TO secret_gone; SELECT status FROM scim.handle('GET', '/Users', 'cursor&count=1', $hdr); ROLLBACK;}
	),
	'500',
	'GET /Users?cursor: 500 when the cursor cannot be signed');

# 6. scim_api.dispatch: an error escaping scim.handle (its log row fails),
#    then dispatch's own log row fails too
is( handle_status(
		qq{BEGIN; SELECT set_config('request.headers', '{"x-scim-method": "GET", "x-scim-uri": "/scim/v2/Users/boom-dispatch", "x-scim-token": "Bearer $token"}', true) IS NULL; SELECT scim_api.dispatch('{}'::jsonb) ->> 'status'; COMMIT;}
	),
	"f\n500",
	'scim_api.dispatch: 500 when scim.handle fails');

# 7. an error escaping scim.handle to the caller (router, then fast path)
my ($rc, $out, $err) = $node->psql('postgres',
	qq{SELECT status FROM scim.handle('GET', '/Users/boom-escape', NULL, $hdr)});
like($err, qr/injected fault in provisioning_log/, 'router: the error escapes scim.handle');
($rc, $out, $err) = $node->psql('postgres',
	qq{SET test.boom = 'on'; SELECT status FROM scim.handle('GET', '/Users/$user_id', NULL, $hdr)});
like($err, qr/injected fault in provisioning_log/, 'fast path: the error escapes scim.handle');

# what the server log got
my $log = slurp_file($node->logfile, $log_start);
like($log, qr/scim_provision: POST \/Users failed: injected fault in users/, 'the /Users 500 was reported (LOG)');
like($log, qr/scim_provision: POST \/Groups failed: injected fault in groups/, 'the /Groups 500 was reported (LOG)');
like($log, qr/scim_provision: POST \/Bulk failed: injected fault in provisioning_log/, 'the /Bulk 500 was reported (LOG)');
like($log, qr/scim_provision: cursor list of User failed/, 'the cursor 500 was reported (LOG)');
like($log, qr/scim_api.dispatch: unexpected error XX000/, 'the dispatch 500 was reported (LOG)');
like($log, qr/scim_api.dispatch: could not log a 500 answer/, 'the failed dispatch log row was reported (LOG)');
like($log, qr/ERROR:  injected fault in provisioning_log/, 'the escaping errors were reported (ERROR)');
unlike($log, qr/\Q$token\E/, 'the server log holds no bearer token');
unlike($log, qr/\Q$secret\E/, 'the server log holds no token secret');
unlike($log, qr/STATEMENT:.*scim\.handle|STATEMENT:.*request\.headers/, 'no report carries the caller\'s statement');

done_testing();
