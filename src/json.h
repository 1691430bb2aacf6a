/*-------------------------------------------------------------------------
 *
 * json.h
 *		A small JSON DOM for the pure cores (filter matcher, PATCH engine).
 *
 * Values live in a ScimArena and are never freed one by one.  Strings are
 * stored unescaped as UTF-8 with an explicit length (RFC 8259 allows
 * "\u0000", so they may contain NUL bytes; they are also NUL-terminated for
 * convenience).  Numbers keep their source text, so nothing is lost in a
 * round trip; sj_number_double() converts when a comparison needs it.
 * Object members keep their order; keys may repeat only if the input did
 * (the parser keeps the last one, like jsonb).
 *
 * No backend headers here: the fuzzer links this file alone.
 *
 * src/json.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_JSON_H
#define SCIM_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

typedef enum SjType
{
	SJ_NULL,
	SJ_BOOL,
	SJ_NUMBER,
	SJ_STRING,
	SJ_ARRAY,
	SJ_OBJECT
} SjType;

typedef struct SjValue SjValue;

typedef struct SjMember
{
	const char *key;			/* unescaped UTF-8, NUL-terminated */
	size_t		keylen;
	SjValue    *value;
} SjMember;

struct SjValue
{
	SjType		type;
	union
	{
		bool		boolean;
		struct
		{
			const char *text;	/* JSON number text, NUL-terminated */
			size_t		len;
		}			num;
		struct
		{
			const char *ptr;	/* unescaped UTF-8, NUL-terminated */
			size_t		len;
		}			str;
		struct
		{
			SjValue   **items;
			size_t		count;
			size_t		cap;
		}			arr;
		struct
		{
			SjMember   *members;
			size_t		count;
			size_t		cap;
		}			obj;
	}			u;
};

/* Parse errors: byte offset (0-based) into the input and a static message. */
typedef struct SjError
{
	size_t		position;
	const char *message;
} SjError;

/* Limits: inputs nested deeper than this are refused, never a stack overflow. */
#define SJ_MAX_DEPTH 256

/* Parse exactly one JSON text (surrounding white space allowed).  NULL on error. */
extern SjValue *sj_parse(ScimArena *arena, const char *text, size_t len, SjError *err);
/* The same with the caller's nesting limit (clamped to 1 .. SJ_MAX_DEPTH;
 * request bodies are held to 64, scim_provision.max_json_depth, see
 * doc/LIMITS.md): arrays and objects
 * nested deeper fail with "nesting too deep" at the first bracket past it. */
extern SjValue *sj_parse_depth(ScimArena *arena, const char *text, size_t len, int max_depth,
							   SjError *err);

/* Output buffer used by the serializer (grows through the arena). */
typedef struct SjBuf
{
	ScimArena  *arena;
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		failed;			/* an allocation failed */
} SjBuf;

extern void sj_buf_init(SjBuf *buf, ScimArena *arena);
extern void sj_buf_append(SjBuf *buf, const char *s, size_t len);
/* Compact serialization (no spaces), strings escaped per RFC 8259. */
extern void sj_serialize(SjBuf *buf, const SjValue *value);
extern char *sj_to_string(ScimArena *arena, const SjValue *value, size_t *len);

/* Constructors (NULL on allocation failure). */
extern SjValue *sj_new_null(ScimArena *arena);
extern SjValue *sj_new_bool(ScimArena *arena, bool b);
extern SjValue *sj_new_number(ScimArena *arena, const char *text, size_t len);
extern SjValue *sj_new_string(ScimArena *arena, const char *s, size_t len);
extern SjValue *sj_new_array(ScimArena *arena);
extern SjValue *sj_new_object(ScimArena *arena);
extern SjValue *sj_deep_copy(ScimArena *arena, const SjValue *value);

/* Arrays. */
extern bool sj_array_append(ScimArena *arena, SjValue *array, SjValue *item);
extern void sj_array_remove(SjValue *array, size_t index);	/* keeps order */

/* Objects.  Lookups compare keys exactly, or ASCII case-insensitively when
 * ci is true (SCIM attribute names are case-insensitive). */
extern SjValue *sj_object_get(const SjValue *object, const char *key, size_t keylen, bool ci);
extern SjMember *sj_object_member(const SjValue *object, const char *key, size_t keylen, bool ci);
/* Replace the value of the (case-insensitively, if ci) matching key, or append. */
extern bool sj_object_set(ScimArena *arena, SjValue *object, const char *key, size_t keylen,
						  SjValue *value, bool ci);
extern bool sj_object_remove(SjValue *object, const char *key, size_t keylen, bool ci);
/* Append a member (key copied) without looking for an existing one: for
 * callers whose keys are known to be unique, e.g. when converting jsonb. */
extern bool sj_object_append(ScimArena *arena, SjValue *object, const char *key, size_t keylen,
							 SjValue *value);

/* Helpers. */
extern bool sj_equal(const SjValue *a, const SjValue *b);	/* deep; numbers by value */
extern bool sj_number_double(const SjValue *value, double *out);
/* Exact decimal order of two numbers (-1, 0, 1 in *result; 1.0 == 1,
 * 1e2 > 99.5); false if either is not a number with valid JSON text. */
extern bool sj_number_cmp(const SjValue *a, const SjValue *b, int *result);
/* Whether text is exactly one JSON number per RFC 8259 (no sign '+', no
 * leading zeros, no NaN/Infinity). */
extern bool sj_number_text_valid(const char *text, size_t len);
extern bool sj_is_empty(const SjValue *value);	/* null, "", [] or {} */
extern bool sj_strcaseeq(const char *a, size_t alen, const char *b, size_t blen);	/* ASCII ci */

#endif							/* SCIM_JSON_H */
