/*-------------------------------------------------------------------------
 *
 * token.c
 *		SCIM bearer tokens: minting, hashing, and checking.
 *
 * A token is "scim_<id>_<secret>": <id> is 12 bytes in hex (the public
 * lookup key, stored as scim.tokens.token_id) and <secret> 32 random bytes
 * (256 bits) from pg_strong_random in unpadded base64url.  Since 0.3.0 the
 * first 4 bytes of <id> are hashtext(workspace) (big-endian) and the other
 * 8 are random: a router (scim_provision_router) reads the workspace's
 * partition off the token without a round trip.  The hash is public (any
 * workspace name hashes the same everywhere), so it grants nothing: the
 * secret's hash is still what authenticates.  Tokens of 0.2.0 have 12 random
 * bytes and keep authenticating on a node.  Only the
 * SHA-256 of the whole token is stored.  Authentication looks the row up by
 * id and compares hashes in constant time, so response timing says nothing
 * about the secret.  The plaintext is never stored, logged or put into an
 * error message.
 *
 * src/token.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/timestamp.h"

#include "index_probe.h"
#include "scim_provision.h"

PG_FUNCTION_INFO_V1(scim_generate_token);
PG_FUNCTION_INFO_V1(scim_generate_token_for);
PG_FUNCTION_INFO_V1(scim_token_hash);
PG_FUNCTION_INFO_V1(scim_authenticate);

#define TOKEN_PREFIX		"scim_"
#define TOKEN_ID_BYTES		12
#define TOKEN_SECRET_BYTES	32
#define TOKEN_ID_HEX		(TOKEN_ID_BYTES * 2)
#define TOKEN_SECRET_B64	43		/* ceil(32 * 4 / 3), unpadded */
#define TOKEN_LEN			(sizeof(TOKEN_PREFIX) - 1 + TOKEN_ID_HEX + 1 + TOKEN_SECRET_B64)

static const char b64url[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
sha256_bytes(const char *data, size_t len, uint8 *out)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL ||
		pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
	{
		const char *err = ctx ? pg_cryptohash_error(ctx) : "out of memory";

		pg_cryptohash_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute SHA-256 hash: %s", err)));
	}
	pg_cryptohash_free(ctx);
}

/*
 * Format "scim_<hex of id>_<base64url of secret>" into a new text and wipe
 * the buffer and the secret.
 */
static text *
format_token(const uint8 *id, uint8 *secret)
{
	char		buf[TOKEN_LEN + 1];
	char	   *p = buf;
	int			bits = 0;
	uint32		acc = 0;
	text	   *result;

	memcpy(p, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
	p += sizeof(TOKEN_PREFIX) - 1;
	for (int i = 0; i < TOKEN_ID_BYTES; i++)
	{
		*p++ = "0123456789abcdef"[id[i] >> 4];
		*p++ = "0123456789abcdef"[id[i] & 0xf];
	}
	*p++ = '_';
	for (int i = 0; i < TOKEN_SECRET_BYTES; i++)
	{
		acc = (acc << 8) | secret[i];
		bits += 8;
		while (bits >= 6)
		{
			bits -= 6;
			*p++ = b64url[(acc >> bits) & 0x3f];
		}
	}
	if (bits > 0)
		*p++ = b64url[(acc << (6 - bits)) & 0x3f];
	*p = '\0';
	Assert(p - buf == TOKEN_LEN);

	result = cstring_to_text_with_len(buf, p - buf);
	explicit_bzero(buf, sizeof(buf));
	explicit_bzero(secret, TOKEN_SECRET_BYTES);
	return result;
}

/*
 * scim._generate_token() RETURNS text: a token with a fully random id (the
 * 0.1.0/0.2.0 format; kept for their install scripts).
 */
Datum
scim_generate_token(PG_FUNCTION_ARGS)
{
	uint8		id[TOKEN_ID_BYTES];
	uint8		secret[TOKEN_SECRET_BYTES];

	if (!pg_strong_random(id, sizeof(id)) ||
		!pg_strong_random(secret, sizeof(secret)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random token")));
	PG_RETURN_TEXT_P(format_token(id, secret));
}

/*
 * scim._generate_token(workspace text) RETURNS text: a fresh token
 * (plaintext) whose id starts with hashtext(workspace) in 8 hex digits, the
 * hash PL/Proxy routes the workspace by.  Called only by scim.create_token,
 * which stores its hash and hands it out once.
 */
Datum
scim_generate_token_for(PG_FUNCTION_ARGS)
{
	uint32		hash;
	uint8		id[TOKEN_ID_BYTES];
	uint8		secret[TOKEN_SECRET_BYTES];

	/* hashtext() as SQL computes it: the workspace's name is text in C order */
	hash = DatumGetUInt32(DirectFunctionCall1Coll(hashtext, C_COLLATION_OID,
												  PG_GETARG_DATUM(0)));
	id[0] = (uint8) (hash >> 24);
	id[1] = (uint8) (hash >> 16);
	id[2] = (uint8) (hash >> 8);
	id[3] = (uint8) hash;
	if (!pg_strong_random(id + 4, sizeof(id) - 4) ||
		!pg_strong_random(secret, sizeof(secret)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random token")));
	PG_RETURN_TEXT_P(format_token(id, secret));
}

/*
 * scim._token_hash(token text) RETURNS bytea: SHA-256 of the token.
 */
Datum
scim_token_hash(PG_FUNCTION_ARGS)
{
	text	   *token = PG_GETARG_TEXT_PP(0);
	bytea	   *result = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);

	sha256_bytes(VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token), (uint8 *) VARDATA(result));
	SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	PG_RETURN_BYTEA_P(result);
}

/* Constant-time comparison of two equal-length byte strings. */
static bool
bytes_equal_ct(const uint8 *a, const uint8 *b, size_t len)
{
	volatile uint8 diff = 0;

	for (size_t i = 0; i < len; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/*
 * Parse "scim_<24 hex>_<43 base64url>" (optionally behind "Bearer ");
 * returns the token proper and sets *id_out to its id, or returns NULL.
 */
static const char *
parse_token(const char *s, size_t len, size_t *token_len, char *id_out)
{
	if (len > 7 && pg_strncasecmp(s, "bearer ", 7) == 0)
	{
		s += 7;
		len -= 7;
		while (len > 0 && *s == ' ')
			s++, len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\r' || s[len - 1] == '\n'))
		len--;
	if (len != TOKEN_LEN || strncmp(s, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1) != 0)
		return NULL;
	for (int i = 0; i < TOKEN_ID_HEX; i++)
	{
		char		c = s[sizeof(TOKEN_PREFIX) - 1 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return NULL;
		id_out[i] = c;
	}
	id_out[TOKEN_ID_HEX] = '\0';
	*token_len = len;
	return s;
}

/*
 * The workspace of a valid, unrevoked token (a bare token or an
 * "Authorization: Bearer ..." value), or NULL.  Records last_used_at, at
 * most once a minute per token so that concurrent requests do not queue on
 * the token's row (not in a read-only transaction, which cannot write).
 * The result is allocated in the caller's memory context.
 */
text *
scim_token_workspace(const char *value, size_t value_len)
{
	static SPIPlanPtr touch_plan = NULL;
	const char *token;
	size_t		token_len;
	char		id[TOKEN_ID_HEX + 1];
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	Datum		key;
	Oid			eq[1] = {F_TEXTEQ};
	ScimProbe	probe;
	text	   *workspace = NULL;
	bool		touch = false;
	int			ret;

	token = parse_token(value, value_len, &token_len, id);
	if (token == NULL)
		return NULL;
	sha256_bytes(token, token_len, digest);

	/* the row of token_id (tokens_pkey), if not revoked */
	key = CStringGetTextDatum(id);
	scim_probe_begin(&probe, "tokens", "tokens_pkey", 1, &key, eq);
	if (scim_probe_next(&probe))
	{
		bool		isnull;
		Datum		hash;
		Datum		last_used;

		hash = slot_getattr(probe.slot, scim_probe_attnum(&probe, "secret_hash"), &isnull);
		if (!isnull && slot_attisnull(probe.slot, scim_probe_attnum(&probe, "revoked_at")))
		{
			bytea	   *stored = DatumGetByteaPP(hash);

			if (VARSIZE_ANY_EXHDR(stored) == PG_SHA256_DIGEST_LENGTH &&
				bytes_equal_ct((const uint8 *) VARDATA_ANY(stored), digest, PG_SHA256_DIGEST_LENGTH))
			{
				workspace = DatumGetTextPCopy(slot_getattr(probe.slot,
														   scim_probe_attnum(&probe, "workspace"),
														   &isnull));
				last_used = slot_getattr(probe.slot, scim_probe_attnum(&probe, "last_used_at"), &isnull);
				touch = isnull || DatumGetTimestampTz(last_used) <
					GetCurrentTransactionStartTimestamp() - 60 * USECS_PER_SEC;
			}
		}
	}
	scim_probe_end(&probe);

	/*
	 * Record use at most once a minute (the touch plan checks again).  Not
	 * in a read-only transaction (e.g. a GET through PostgREST), which
	 * cannot, nor under REPEATABLE READ or SERIALIZABLE, where a concurrent
	 * request's touch of the same token would make this update fail with a
	 * serialization error: a last-use time is not worth failing a request.
	 */
	if (touch && !XactReadOnly && !IsolationUsesXactSnapshot())
	{
		Datum		values[1] = {key};

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (touch_plan == NULL)
		{
			Oid			argtypes[1] = {TEXTOID};
			SPIPlanPtr	p;

			p = SPI_prepare("UPDATE scim.tokens t SET last_used_at = pg_catalog.now()"
							" WHERE t.token_id OPERATOR(pg_catalog.=) $1"
							" AND (t.last_used_at IS NULL"
							"      OR t.last_used_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 minute'))",
							1, argtypes);
			if (p == NULL)
				elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
			SPI_keepplan(p);
			touch_plan = p;
		}
		ret = SPI_execute_plan(touch_plan, values, NULL, false, 0);
		if (ret != SPI_OK_UPDATE)
			elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
		SPI_finish();
	}
	return workspace;
}

/*
 * scim.authenticate(token text) RETURNS text
 *
 * The workspace of a valid, unrevoked token (a bare token or an
 * "Authorization: Bearer ..." value), or NULL; see scim_token_workspace.
 */
Datum
scim_authenticate(PG_FUNCTION_ARGS)
{
	text	   *arg;
	text	   *workspace;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	arg = PG_GETARG_TEXT_PP(0);
	workspace = scim_token_workspace(VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg));
	if (workspace == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(workspace);
}
