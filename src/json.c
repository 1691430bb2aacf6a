/*-------------------------------------------------------------------------
 *
 * json.c
 *		Strict RFC 8259 parser, serializer and DOM helpers (see json.h).
 *
 * The parser is a recursive descent bounded by the caller's nesting limit
 * (sj_parse_depth; at most SJ_MAX_DEPTH), so hostile input can never
 * exhaust the stack: a text nested deeper fails at the first bracket past
 * the limit, before any deeper recursion.  It validates everything RFC 8259
 * requires (number grammar, escapes, UTF-8, no raw control characters in
 * strings, nothing after the value) and reports the byte offset of the first
 * problem.  Arrays and objects grow geometrically, and objects with many
 * members detect duplicate keys through a hash table, so parsing stays
 * linear in the input size.  Duplicate keys keep the position of their first
 * occurrence and the value of their last one, which is what jsonb keeps.
 *
 * Numbers keep their source text; sj_equal and sj_number_cmp compare them
 * by exact decimal value, never through binary floating point.
 *
 * No backend headers here: the fuzzer links this file alone.
 *
 * src/json.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "utf8.h"

/* objects with more members than this use a hash table to find duplicates */
#define SJ_HASH_THRESHOLD 8

typedef struct SjParser
{
	ScimArena  *arena;
	const unsigned char *text;
	size_t		len;
	size_t		pos;
	SjError    *err;
	bool		failed;
	int			max_depth;		/* 1 .. SJ_MAX_DEPTH */
} SjParser;

static SjValue *parse_value(SjParser *p, int depth);

static bool
parse_fail(SjParser *p, size_t position, const char *message)
{
	if (!p->failed)
	{
		p->failed = true;
		if (p->err != NULL)
		{
			p->err->position = position;
			p->err->message = message;
		}
	}
	return false;
}

static bool
parse_oom(SjParser *p)
{
	return parse_fail(p, p->pos, "out of memory");
}

static inline void
skip_ws(SjParser *p)
{
	while (p->pos < p->len)
	{
		unsigned char c = p->text[p->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

/* Read the four hex digits after "\u" at p->text[at]; -1 if malformed. */
static long
read_hex4(SjParser *p, size_t at)
{
	long		v = 0;
	int			i;

	if (p->len - at < 4)
		return -1;
	for (i = 0; i < 4; i++)
	{
		int			h = scim_hex_value(p->text[at + i]);

		if (h < 0)
			return -1;
		v = (v << 4) | h;
	}
	return v;
}

/*
 * Parse a string whose opening quote is at p->pos.  On success *out and *outlen
 * hold the unescaped, NUL-terminated UTF-8 copy in the arena.
 */
static bool
parse_string(SjParser *p, const char **out, size_t *outlen)
{
	const unsigned char *s = p->text;
	size_t		start = p->pos + 1;
	size_t		i = start;
	bool		has_escape = false;
	char	   *buf;
	size_t		n;

	/* first pass: find the closing quote and validate everything */
	for (;;)
	{
		unsigned char c;

		if (i >= p->len)
			return parse_fail(p, p->len, "unterminated string");
		c = s[i];
		if (c == '"')
			break;
		if (c < 0x20)
			return parse_fail(p, i, "control character in string");
		if (c == '\\')
		{
			has_escape = true;
			if (i + 1 >= p->len)
				return parse_fail(p, p->len, "unterminated string");
			switch (s[i + 1])
			{
				case '"':
				case '\\':
				case '/':
				case 'b':
				case 'f':
				case 'n':
				case 'r':
				case 't':
					i += 2;
					break;
				case 'u':
					{
						long		cp = read_hex4(p, i + 2);

						if (cp < 0)
							return parse_fail(p, i, "invalid \\u escape: expected four hexadecimal digits");
						if (cp >= 0xDC00 && cp <= 0xDFFF)
							return parse_fail(p, i, "unpaired low surrogate in \\u escape");
						if (cp >= 0xD800 && cp <= 0xDBFF)
						{
							long		lo;

							if (p->len - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u')
								return parse_fail(p, i, "unpaired high surrogate in \\u escape");
							lo = read_hex4(p, i + 8);
							if (lo < 0)
								return parse_fail(p, i + 6, "invalid \\u escape: expected four hexadecimal digits");
							if (lo < 0xDC00 || lo > 0xDFFF)
								return parse_fail(p, i, "unpaired high surrogate in \\u escape");
							i += 12;
						}
						else
							i += 6;
					}
					break;
				default:
					return parse_fail(p, i, "invalid escape sequence in string");
			}
			continue;
		}
		if (c < 0x80)
		{
			i++;
			continue;
		}
		n = scim_utf8_sequence_length(s + i, p->len - i);
		if (n == 0)
			return parse_fail(p, i, "invalid UTF-8 in string");
		i += n;
	}

	p->pos = i + 1;
	if (!has_escape)
	{
		buf = scim_arena_strndup(p->arena, (const char *) s + start, i - start);
		if (buf == NULL)
			return parse_oom(p);
		*out = buf;
		*outlen = i - start;
		return true;
	}

	/* second pass: unescape (the result is never longer than the source) */
	buf = scim_arena_alloc(p->arena, i - start + 1);
	if (buf == NULL)
		return parse_oom(p);
	n = 0;
	for (size_t j = start; j < i;)
	{
		unsigned char c = s[j];

		if (c != '\\')
		{
			buf[n++] = (char) c;
			j++;
			continue;
		}
		switch (s[j + 1])
		{
			case 'b':
				buf[n++] = '\b';
				break;
			case 'f':
				buf[n++] = '\f';
				break;
			case 'n':
				buf[n++] = '\n';
				break;
			case 'r':
				buf[n++] = '\r';
				break;
			case 't':
				buf[n++] = '\t';
				break;
			case 'u':
				{
					unsigned long cp = (unsigned long) read_hex4(p, j + 2);

					if (cp >= 0xD800 && cp <= 0xDBFF)
					{
						unsigned long lo = (unsigned long) read_hex4(p, j + 8);

						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
						j += 6;
					}
					n += scim_utf8_encode(cp, buf + n);
					j += 6;
					continue;
				}
			default:			/* '"', '\\', '/' */
				buf[n++] = (char) s[j + 1];
				break;
		}
		j += 2;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return true;
}

static SjValue *
parse_number(SjParser *p)
{
	const unsigned char *s = p->text;
	size_t		start = p->pos;
	size_t		i = start;
	SjValue    *v;

	if (s[i] == '-')
		i++;
	if (i >= p->len || !(s[i] >= '0' && s[i] <= '9'))
	{
		parse_fail(p, i, "expected a digit in number");
		return NULL;
	}
	if (s[i] == '0')
	{
		i++;
		if (i < p->len && s[i] >= '0' && s[i] <= '9')
		{
			parse_fail(p, i, "leading zeros are not allowed in numbers");
			return NULL;
		}
	}
	else
	{
		while (i < p->len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i < p->len && s[i] == '.')
	{
		i++;
		if (i >= p->len || !(s[i] >= '0' && s[i] <= '9'))
		{
			parse_fail(p, i, "expected a digit after the decimal point");
			return NULL;
		}
		while (i < p->len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i < p->len && (s[i] == 'e' || s[i] == 'E'))
	{
		i++;
		if (i < p->len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= p->len || !(s[i] >= '0' && s[i] <= '9'))
		{
			parse_fail(p, i, "expected a digit in exponent");
			return NULL;
		}
		while (i < p->len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	p->pos = i;
	v = sj_new_number(p->arena, (const char *) s + start, i - start);
	if (v == NULL)
		parse_oom(p);
	return v;
}

static bool
match_literal(SjParser *p, const char *word, size_t wlen)
{
	size_t		k;

	for (k = 0; k < wlen; k++)
	{
		if (p->pos + k >= p->len)
			return parse_fail(p, p->len, "unexpected end of input");
		if (p->text[p->pos + k] != (unsigned char) word[k])
			return parse_fail(p, p->pos, "invalid literal");
	}
	p->pos += wlen;
	return true;
}

static SjValue *
parse_array(SjParser *p, int depth)
{
	SjValue    *arr;

	if (depth > p->max_depth)
	{
		parse_fail(p, p->pos, "nesting too deep");
		return NULL;
	}
	arr = sj_new_array(p->arena);
	if (arr == NULL)
	{
		parse_oom(p);
		return NULL;
	}
	p->pos++;					/* '[' */
	skip_ws(p);
	if (p->pos < p->len && p->text[p->pos] == ']')
	{
		p->pos++;
		return arr;
	}
	for (;;)
	{
		SjValue    *item;

		skip_ws(p);
		item = parse_value(p, depth);
		if (item == NULL)
			return NULL;
		if (!sj_array_append(p->arena, arr, item))
		{
			parse_oom(p);
			return NULL;
		}
		skip_ws(p);
		if (p->pos >= p->len)
		{
			parse_fail(p, p->len, "unexpected end of input");
			return NULL;
		}
		if (p->text[p->pos] == ',')
		{
			p->pos++;
			continue;
		}
		if (p->text[p->pos] == ']')
		{
			p->pos++;
			return arr;
		}
		parse_fail(p, p->pos, "expected ',' or ']' in array");
		return NULL;
	}
}

static uint32_t
key_hash(const char *key, size_t len)
{
	uint32_t	h = 2166136261u;

	for (size_t i = 0; i < len; i++)
	{
		h ^= (unsigned char) key[i];
		h *= 16777619u;
	}
	return h;
}

/* Open-addressing index of an object's members while it is being parsed. */
typedef struct KeyIndex
{
	uint32_t   *slots;			/* member index + 1; 0 = empty */
	size_t		mask;
} KeyIndex;

static bool
key_index_build(ScimArena *arena, KeyIndex *ix, const SjValue *obj)
{
	size_t		size = 64;

	while (size < obj->u.obj.count * 4)
		size *= 2;
	ix->slots = scim_arena_alloc0(arena, size * sizeof(uint32_t));
	if (ix->slots == NULL)
		return false;
	ix->mask = size - 1;
	for (size_t m = 0; m < obj->u.obj.count; m++)
	{
		const SjMember *mem = &obj->u.obj.members[m];
		size_t		h = key_hash(mem->key, mem->keylen) & ix->mask;

		while (ix->slots[h] != 0)
			h = (h + 1) & ix->mask;
		ix->slots[h] = (uint32_t) (m + 1);
	}
	return true;
}

/* Index of the member with exactly this key, or -1; *slot is where it goes. */
static long
key_index_find(const KeyIndex *ix, const SjValue *obj, const char *key,
			   size_t keylen, size_t *slot)
{
	size_t		h = key_hash(key, keylen) & ix->mask;

	while (ix->slots[h] != 0)
	{
		const SjMember *mem = &obj->u.obj.members[ix->slots[h] - 1];

		if (mem->keylen == keylen && memcmp(mem->key, key, keylen) == 0)
			return (long) ix->slots[h] - 1;
		h = (h + 1) & ix->mask;
	}
	*slot = h;
	return -1;
}

static SjValue *
parse_object(SjParser *p, int depth)
{
	SjValue    *obj;
	KeyIndex	ix = {NULL, 0};

	if (depth > p->max_depth)
	{
		parse_fail(p, p->pos, "nesting too deep");
		return NULL;
	}
	obj = sj_new_object(p->arena);
	if (obj == NULL)
	{
		parse_oom(p);
		return NULL;
	}
	p->pos++;					/* '{' */
	skip_ws(p);
	if (p->pos < p->len && p->text[p->pos] == '}')
	{
		p->pos++;
		return obj;
	}
	for (;;)
	{
		const char *key;
		size_t		keylen;
		SjValue    *value;
		long		existing = -1;
		size_t		slot = 0;

		skip_ws(p);
		if (p->pos >= p->len)
		{
			parse_fail(p, p->len, "unexpected end of input");
			return NULL;
		}
		if (p->text[p->pos] != '"')
		{
			parse_fail(p, p->pos, "expected a string as object key");
			return NULL;
		}
		if (!parse_string(p, &key, &keylen))
			return NULL;
		skip_ws(p);
		if (p->pos >= p->len)
		{
			parse_fail(p, p->len, "unexpected end of input");
			return NULL;
		}
		if (p->text[p->pos] != ':')
		{
			parse_fail(p, p->pos, "expected ':' after object key");
			return NULL;
		}
		p->pos++;
		skip_ws(p);
		value = parse_value(p, depth);
		if (value == NULL)
			return NULL;

		/* duplicate keys: the last value wins, at the first position */
		if (ix.slots != NULL)
			existing = key_index_find(&ix, obj, key, keylen, &slot);
		else
		{
			for (size_t m = 0; m < obj->u.obj.count; m++)
			{
				const SjMember *mem = &obj->u.obj.members[m];

				if (mem->keylen == keylen && memcmp(mem->key, key, keylen) == 0)
				{
					existing = (long) m;
					break;
				}
			}
		}
		if (existing >= 0)
			obj->u.obj.members[existing].value = value;
		else
		{
			SjMember   *mem;

			if (obj->u.obj.count == obj->u.obj.cap)
			{
				size_t		ncap = obj->u.obj.cap ? obj->u.obj.cap * 2 : 4;
				SjMember   *nm = scim_arena_alloc(p->arena, ncap * sizeof(SjMember));

				if (nm == NULL)
				{
					parse_oom(p);
					return NULL;
				}
				if (obj->u.obj.count > 0)
					memcpy(nm, obj->u.obj.members, obj->u.obj.count * sizeof(SjMember));
				obj->u.obj.members = nm;
				obj->u.obj.cap = ncap;
			}
			mem = &obj->u.obj.members[obj->u.obj.count++];
			mem->key = key;
			mem->keylen = keylen;
			mem->value = value;

			if (ix.slots != NULL)
			{
				if (obj->u.obj.count * 2 > ix.mask + 1)
				{
					if (!key_index_build(p->arena, &ix, obj))
					{
						parse_oom(p);
						return NULL;
					}
				}
				else
					ix.slots[slot] = (uint32_t) obj->u.obj.count;
			}
			else if (obj->u.obj.count > SJ_HASH_THRESHOLD)
			{
				if (!key_index_build(p->arena, &ix, obj))
				{
					parse_oom(p);
					return NULL;
				}
			}
		}

		skip_ws(p);
		if (p->pos >= p->len)
		{
			parse_fail(p, p->len, "unexpected end of input");
			return NULL;
		}
		if (p->text[p->pos] == ',')
		{
			p->pos++;
			continue;
		}
		if (p->text[p->pos] == '}')
		{
			p->pos++;
			return obj;
		}
		parse_fail(p, p->pos, "expected ',' or '}' in object");
		return NULL;
	}
}

/* Parse one value at p->pos (white space already skipped). */
static SjValue *
parse_value(SjParser *p, int depth)
{
	unsigned char c;
	SjValue    *v;

	if (p->pos >= p->len)
	{
		parse_fail(p, p->len, "unexpected end of input");
		return NULL;
	}
	c = p->text[p->pos];
	switch (c)
	{
		case '{':
			return parse_object(p, depth + 1);
		case '[':
			return parse_array(p, depth + 1);
		case '"':
			{
				const char *s;
				size_t		len;

				if (!parse_string(p, &s, &len))
					return NULL;
				v = scim_arena_alloc(p->arena, sizeof(SjValue));
				if (v == NULL)
				{
					parse_oom(p);
					return NULL;
				}
				v->type = SJ_STRING;
				v->u.str.ptr = s;
				v->u.str.len = len;
				return v;
			}
		case 't':
			if (!match_literal(p, "true", 4))
				return NULL;
			v = sj_new_bool(p->arena, true);
			break;
		case 'f':
			if (!match_literal(p, "false", 5))
				return NULL;
			v = sj_new_bool(p->arena, false);
			break;
		case 'n':
			if (!match_literal(p, "null", 4))
				return NULL;
			v = sj_new_null(p->arena);
			break;
		default:
			if (c == '-' || (c >= '0' && c <= '9'))
				return parse_number(p);
			parse_fail(p, p->pos, "unexpected character");
			return NULL;
	}
	if (v == NULL)
		parse_oom(p);
	return v;
}

SjValue *
sj_parse(ScimArena *arena, const char *text, size_t len, SjError *err)
{
	return sj_parse_depth(arena, text, len, SJ_MAX_DEPTH, err);
}

SjValue *
sj_parse_depth(ScimArena *arena, const char *text, size_t len, int max_depth, SjError *err)
{
	SjParser	p;
	SjValue    *v;

	p.max_depth = max_depth < 1 ? 1 : max_depth > SJ_MAX_DEPTH ? SJ_MAX_DEPTH : max_depth;
	p.arena = arena;
	p.text = (const unsigned char *) text;
	p.len = len;
	p.pos = 0;
	p.err = err;
	p.failed = false;
	if (err != NULL)
	{
		err->position = 0;
		err->message = NULL;
	}

	skip_ws(&p);
	v = parse_value(&p, 0);
	if (v == NULL)
	{
		if (!p.failed)
			parse_oom(&p);
		return NULL;
	}
	skip_ws(&p);
	if (p.pos < p.len)
	{
		parse_fail(&p, p.pos, "unexpected data after the JSON value");
		return NULL;
	}
	return v;
}

/* ---------------------------------------------------------------------
 * Serializer
 * ---------------------------------------------------------------------
 */

void
sj_buf_init(SjBuf *buf, ScimArena *arena)
{
	buf->arena = arena;
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
	buf->failed = false;
}

/* Make room for extra more bytes plus a terminating NUL. */
static bool
sj_buf_reserve(SjBuf *buf, size_t extra)
{
	size_t		ncap;
	char	   *nd;

	if (buf->failed)
		return false;
	if (buf->cap > 0 && extra < buf->cap - buf->len)
		return true;
	if (extra > SIZE_MAX / 4 - buf->len)
	{
		buf->failed = true;
		return false;
	}
	ncap = buf->cap ? buf->cap : 64;
	while (ncap <= buf->len + extra)
		ncap *= 2;
	nd = scim_arena_alloc(buf->arena, ncap);
	if (nd == NULL)
	{
		buf->failed = true;
		return false;
	}
	if (buf->len > 0)
		memcpy(nd, buf->data, buf->len);
	nd[buf->len] = '\0';
	buf->data = nd;
	buf->cap = ncap;
	return true;
}

void
sj_buf_append(SjBuf *buf, const char *s, size_t len)
{
	if (!sj_buf_reserve(buf, len))
		return;
	if (len > 0)
		memcpy(buf->data + buf->len, s, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

static void
serialize_string(SjBuf *buf, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t		run = 0;

	sj_buf_append(buf, "\"", 1);
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];
		const char *esc = NULL;
		char		ubuf[6];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		/* flush the plain run before this character */
		sj_buf_append(buf, s + run, i - run);
		run = i + 1;
		switch (c)
		{
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			case '\b':
				esc = "\\b";
				break;
			case '\f':
				esc = "\\f";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			default:
				ubuf[0] = '\\';
				ubuf[1] = 'u';
				ubuf[2] = '0';
				ubuf[3] = '0';
				ubuf[4] = hex[c >> 4];
				ubuf[5] = hex[c & 0xF];
				sj_buf_append(buf, ubuf, 6);
				continue;
		}
		sj_buf_append(buf, esc, 2);
	}
	sj_buf_append(buf, s + run, len - run);
	sj_buf_append(buf, "\"", 1);
}

void
sj_serialize(SjBuf *buf, const SjValue *value)
{
	if (buf->failed)
		return;
	switch (value->type)
	{
		case SJ_NULL:
			sj_buf_append(buf, "null", 4);
			break;
		case SJ_BOOL:
			if (value->u.boolean)
				sj_buf_append(buf, "true", 4);
			else
				sj_buf_append(buf, "false", 5);
			break;
		case SJ_NUMBER:
			sj_buf_append(buf, value->u.num.text, value->u.num.len);
			break;
		case SJ_STRING:
			serialize_string(buf, value->u.str.ptr, value->u.str.len);
			break;
		case SJ_ARRAY:
			sj_buf_append(buf, "[", 1);
			for (size_t i = 0; i < value->u.arr.count; i++)
			{
				if (i > 0)
					sj_buf_append(buf, ",", 1);
				sj_serialize(buf, value->u.arr.items[i]);
			}
			sj_buf_append(buf, "]", 1);
			break;
		case SJ_OBJECT:
			sj_buf_append(buf, "{", 1);
			for (size_t i = 0; i < value->u.obj.count; i++)
			{
				const SjMember *m = &value->u.obj.members[i];

				if (i > 0)
					sj_buf_append(buf, ",", 1);
				serialize_string(buf, m->key, m->keylen);
				sj_buf_append(buf, ":", 1);
				sj_serialize(buf, m->value);
			}
			sj_buf_append(buf, "}", 1);
			break;
	}
}

char *
sj_to_string(ScimArena *arena, const SjValue *value, size_t *len)
{
	SjBuf		buf;

	sj_buf_init(&buf, arena);
	if (!sj_buf_reserve(&buf, 0))
		return NULL;
	sj_serialize(&buf, value);
	if (buf.failed)
		return NULL;
	if (len != NULL)
		*len = buf.len;
	return buf.data;
}

/* ---------------------------------------------------------------------
 * Constructors
 * ---------------------------------------------------------------------
 */

static SjValue *
new_value(ScimArena *arena, SjType type)
{
	SjValue    *v = scim_arena_alloc0(arena, sizeof(SjValue));

	if (v != NULL)
		v->type = type;
	return v;
}

SjValue *
sj_new_null(ScimArena *arena)
{
	return new_value(arena, SJ_NULL);
}

SjValue *
sj_new_bool(ScimArena *arena, bool b)
{
	SjValue    *v = new_value(arena, SJ_BOOL);

	if (v != NULL)
		v->u.boolean = b;
	return v;
}

SjValue *
sj_new_number(ScimArena *arena, const char *text, size_t len)
{
	SjValue    *v = new_value(arena, SJ_NUMBER);
	char	   *copy;

	if (v == NULL)
		return NULL;
	copy = scim_arena_strndup(arena, text, len);
	if (copy == NULL)
		return NULL;
	v->u.num.text = copy;
	v->u.num.len = len;
	return v;
}

SjValue *
sj_new_string(ScimArena *arena, const char *s, size_t len)
{
	SjValue    *v = new_value(arena, SJ_STRING);
	char	   *copy;

	if (v == NULL)
		return NULL;
	copy = scim_arena_strndup(arena, s, len);
	if (copy == NULL)
		return NULL;
	v->u.str.ptr = copy;
	v->u.str.len = len;
	return v;
}

SjValue *
sj_new_array(ScimArena *arena)
{
	return new_value(arena, SJ_ARRAY);
}

SjValue *
sj_new_object(ScimArena *arena)
{
	return new_value(arena, SJ_OBJECT);
}

SjValue *
sj_deep_copy(ScimArena *arena, const SjValue *value)
{
	SjValue    *v;

	switch (value->type)
	{
		case SJ_NULL:
			return sj_new_null(arena);
		case SJ_BOOL:
			return sj_new_bool(arena, value->u.boolean);
		case SJ_NUMBER:
			return sj_new_number(arena, value->u.num.text, value->u.num.len);
		case SJ_STRING:
			return sj_new_string(arena, value->u.str.ptr, value->u.str.len);
		case SJ_ARRAY:
			v = new_value(arena, SJ_ARRAY);
			if (v == NULL)
				return NULL;
			if (value->u.arr.count > 0)
			{
				v->u.arr.items = scim_arena_alloc(arena, value->u.arr.count * sizeof(SjValue *));
				if (v->u.arr.items == NULL)
					return NULL;
				v->u.arr.cap = value->u.arr.count;
			}
			for (size_t i = 0; i < value->u.arr.count; i++)
			{
				SjValue    *item = sj_deep_copy(arena, value->u.arr.items[i]);

				if (item == NULL)
					return NULL;
				v->u.arr.items[v->u.arr.count++] = item;
			}
			return v;
		case SJ_OBJECT:
			v = new_value(arena, SJ_OBJECT);
			if (v == NULL)
				return NULL;
			if (value->u.obj.count > 0)
			{
				v->u.obj.members = scim_arena_alloc(arena, value->u.obj.count * sizeof(SjMember));
				if (v->u.obj.members == NULL)
					return NULL;
				v->u.obj.cap = value->u.obj.count;
			}
			for (size_t i = 0; i < value->u.obj.count; i++)
			{
				const SjMember *src = &value->u.obj.members[i];
				SjMember   *dst = &v->u.obj.members[v->u.obj.count];

				dst->key = scim_arena_strndup(arena, src->key, src->keylen);
				if (dst->key == NULL)
					return NULL;
				dst->keylen = src->keylen;
				dst->value = sj_deep_copy(arena, src->value);
				if (dst->value == NULL)
					return NULL;
				v->u.obj.count++;
			}
			return v;
	}
	return NULL;
}

/* ---------------------------------------------------------------------
 * Arrays and objects
 * ---------------------------------------------------------------------
 */

bool
sj_array_append(ScimArena *arena, SjValue *array, SjValue *item)
{
	if (array == NULL || array->type != SJ_ARRAY || item == NULL)
		return false;
	if (array->u.arr.count == array->u.arr.cap)
	{
		size_t		ncap = array->u.arr.cap ? array->u.arr.cap * 2 : 4;
		SjValue   **ni;

		if (ncap > SIZE_MAX / sizeof(SjValue *))
			return false;
		ni = scim_arena_alloc(arena, ncap * sizeof(SjValue *));
		if (ni == NULL)
			return false;
		if (array->u.arr.count > 0)
			memcpy(ni, array->u.arr.items, array->u.arr.count * sizeof(SjValue *));
		array->u.arr.items = ni;
		array->u.arr.cap = ncap;
	}
	array->u.arr.items[array->u.arr.count++] = item;
	return true;
}

void
sj_array_remove(SjValue *array, size_t index)
{
	if (array == NULL || array->type != SJ_ARRAY || index >= array->u.arr.count)
		return;
	memmove(&array->u.arr.items[index], &array->u.arr.items[index + 1],
			(array->u.arr.count - index - 1) * sizeof(SjValue *));
	array->u.arr.count--;
}

bool
sj_strcaseeq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
	{
		unsigned char ca = (unsigned char) a[i];
		unsigned char cb = (unsigned char) b[i];

		if (ca >= 'A' && ca <= 'Z')
			ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z')
			cb += 'a' - 'A';
		if (ca != cb)
			return false;
	}
	return true;
}

/*
 * With ci, an exact match is preferred over a case-insensitive one, so an
 * object holding both "name" and "Name" still finds each by its own name.
 */
SjMember *
sj_object_member(const SjValue *object, const char *key, size_t keylen, bool ci)
{
	SjMember   *ci_match = NULL;

	if (object == NULL || object->type != SJ_OBJECT)
		return NULL;
	for (size_t i = 0; i < object->u.obj.count; i++)
	{
		SjMember   *m = &object->u.obj.members[i];

		if (m->keylen != keylen)
			continue;
		if (memcmp(m->key, key, keylen) == 0)
			return m;
		if (ci && ci_match == NULL && sj_strcaseeq(m->key, m->keylen, key, keylen))
			ci_match = m;
	}
	return ci_match;
}

SjValue *
sj_object_get(const SjValue *object, const char *key, size_t keylen, bool ci)
{
	SjMember   *m = sj_object_member(object, key, keylen, ci);

	return m ? m->value : NULL;
}

bool
sj_object_set(ScimArena *arena, SjValue *object, const char *key, size_t keylen,
			  SjValue *value, bool ci)
{
	SjMember   *m;

	if (object == NULL || object->type != SJ_OBJECT || value == NULL)
		return false;
	m = sj_object_member(object, key, keylen, ci);
	if (m != NULL)
	{
		m->value = value;
		return true;
	}
	return sj_object_append(arena, object, key, keylen, value);
}

bool
sj_object_append(ScimArena *arena, SjValue *object, const char *key, size_t keylen,
				 SjValue *value)
{
	SjMember   *m;
	char	   *kcopy;

	if (object == NULL || object->type != SJ_OBJECT || value == NULL)
		return false;
	if (object->u.obj.count == object->u.obj.cap)
	{
		size_t		ncap = object->u.obj.cap ? object->u.obj.cap * 2 : 4;
		SjMember   *nm;

		if (ncap > SIZE_MAX / sizeof(SjMember))
			return false;
		nm = scim_arena_alloc(arena, ncap * sizeof(SjMember));
		if (nm == NULL)
			return false;
		if (object->u.obj.count > 0)
			memcpy(nm, object->u.obj.members, object->u.obj.count * sizeof(SjMember));
		object->u.obj.members = nm;
		object->u.obj.cap = ncap;
	}
	kcopy = scim_arena_strndup(arena, key, keylen);
	if (kcopy == NULL)
		return false;
	m = &object->u.obj.members[object->u.obj.count++];
	m->key = kcopy;
	m->keylen = keylen;
	m->value = value;
	return true;
}

/* Removes every matching member (with ci, all case variants); keeps order. */
bool
sj_object_remove(SjValue *object, const char *key, size_t keylen, bool ci)
{
	size_t		out = 0;
	size_t		count;

	if (object == NULL || object->type != SJ_OBJECT)
		return false;
	count = object->u.obj.count;
	for (size_t i = 0; i < count; i++)
	{
		SjMember   *m = &object->u.obj.members[i];
		bool		match;

		match = m->keylen == keylen &&
			(ci ? sj_strcaseeq(m->key, m->keylen, key, keylen)
			 : memcmp(m->key, key, keylen) == 0);
		if (match)
			continue;
		if (out != i)
			object->u.obj.members[out] = *m;
		out++;
	}
	object->u.obj.count = out;
	return out != count;
}

/* ---------------------------------------------------------------------
 * Numbers
 * ---------------------------------------------------------------------
 */

/*
 * A JSON number in normalized decimal form: value = sign * 0.D * 10^exp,
 * where D is the digit sequence from first to last significant digit (the
 * decimal point skipped).  Zero has no digits.
 */
typedef struct SjDecimal
{
	bool		negative;
	const char *text;
	size_t		first;			/* index of the first significant digit */
	size_t		last;			/* index one past the last significant digit */
	size_t		ndigits;		/* significant digits (zero: 0) */
	long long	exp;
} SjDecimal;

#define SJ_EXP_CAP 1000000000000000LL	/* exponents saturate here */

bool
sj_number_text_valid(const char *text, size_t len)
{
	size_t		i = 0;

	if (text == NULL)
		return false;
	if (i < len && text[i] == '-')
		i++;
	if (i >= len || !(text[i] >= '0' && text[i] <= '9'))
		return false;
	if (text[i] == '0')
		i++;
	else
		while (i < len && text[i] >= '0' && text[i] <= '9')
			i++;
	if (i < len && text[i] == '.')
	{
		i++;
		if (i >= len || !(text[i] >= '0' && text[i] <= '9'))
			return false;
		while (i < len && text[i] >= '0' && text[i] <= '9')
			i++;
	}
	if (i < len && (text[i] == 'e' || text[i] == 'E'))
	{
		i++;
		if (i < len && (text[i] == '+' || text[i] == '-'))
			i++;
		if (i >= len || !(text[i] >= '0' && text[i] <= '9'))
			return false;
		while (i < len && text[i] >= '0' && text[i] <= '9')
			i++;
	}
	return i == len;
}

/* Requires valid number text (sj_number_text_valid). */
static void
decimal_from_text(const char *text, size_t len, SjDecimal *d)
{
	size_t		i = 0;
	size_t		mant_end;
	long long	intdigits = 0;	/* digits before the point */
	long long	pos = 0;		/* digit ordinal of the first significant digit */
	long long	e = 0;
	bool		eneg = false;
	bool		seen = false;

	d->negative = false;
	d->text = text;
	d->ndigits = 0;
	d->exp = 0;
	d->first = d->last = 0;

	if (text[0] == '-')
	{
		d->negative = true;
		i = 1;
	}
	mant_end = i;
	while (mant_end < len && text[mant_end] != 'e' && text[mant_end] != 'E')
		mant_end++;

	/* scan the mantissa for significant digits */
	{
		long long	ordinal = 0;
		bool		after_point = false;

		for (size_t k = i; k < mant_end; k++)
		{
			char		c = text[k];

			if (c == '.')
			{
				after_point = true;
				continue;
			}
			if (!after_point)
				intdigits++;
			if (c != '0')
			{
				if (!seen)
				{
					seen = true;
					d->first = k;
					pos = ordinal;
				}
				d->last = k + 1;
			}
			ordinal++;
		}
	}
	if (!seen)
	{
		d->negative = false;	/* -0 == 0 */
		return;
	}
	for (size_t k = d->first; k < d->last; k++)
		if (text[k] != '.')
			d->ndigits++;

	if (mant_end < len)
	{
		size_t		k = mant_end + 1;

		if (text[k] == '+' || text[k] == '-')
		{
			eneg = text[k] == '-';
			k++;
		}
		for (; k < len; k++)
		{
			if (e < SJ_EXP_CAP)
				e = e * 10 + (text[k] - '0');
		}
		if (eneg)
			e = -e;
	}
	d->exp = e + intdigits - pos;
}

/* Compare the significant digit sequences of two nonzero decimals. */
static int
decimal_digits_cmp(const SjDecimal *a, const SjDecimal *b)
{
	size_t		i = a->first,
				j = b->first;

	for (;;)
	{
		while (i < a->last && a->text[i] == '.')
			i++;
		while (j < b->last && b->text[j] == '.')
			j++;
		if (i >= a->last || j >= b->last)
			break;
		if (a->text[i] != b->text[j])
			return a->text[i] < b->text[j] ? -1 : 1;
		i++;
		j++;
	}
	if (i >= a->last && j >= b->last)
		return 0;
	return i >= a->last ? -1 : 1;
}

static int
decimal_cmp(const SjDecimal *a, const SjDecimal *b)
{
	int			sa = a->ndigits == 0 ? 0 : (a->negative ? -1 : 1);
	int			sb = b->ndigits == 0 ? 0 : (b->negative ? -1 : 1);
	int			mag;

	if (sa != sb)
		return sa < sb ? -1 : 1;
	if (sa == 0)
		return 0;
	if (a->exp != b->exp)
		mag = a->exp < b->exp ? -1 : 1;
	else
		mag = decimal_digits_cmp(a, b);
	return sa > 0 ? mag : -mag;
}

bool
sj_number_cmp(const SjValue *a, const SjValue *b, int *result)
{
	SjDecimal	da,
				db;

	if (a == NULL || b == NULL || a->type != SJ_NUMBER || b->type != SJ_NUMBER)
		return false;
	if (!sj_number_text_valid(a->u.num.text, a->u.num.len) ||
		!sj_number_text_valid(b->u.num.text, b->u.num.len))
		return false;
	decimal_from_text(a->u.num.text, a->u.num.len, &da);
	decimal_from_text(b->u.num.text, b->u.num.len, &db);
	*result = decimal_cmp(&da, &db);
	return true;
}

bool
sj_number_double(const SjValue *value, double *out)
{
	char	   *end;
	double		d;

	if (value == NULL || value->type != SJ_NUMBER ||
		!sj_number_text_valid(value->u.num.text, value->u.num.len))
		return false;
	d = strtod(value->u.num.text, &end);
	if (end != value->u.num.text + value->u.num.len)
		return false;
	*out = d;
	return true;
}

/* ---------------------------------------------------------------------
 * Equality and emptiness
 * ---------------------------------------------------------------------
 */

bool
sj_equal(const SjValue *a, const SjValue *b)
{
	if (a == b)
		return true;
	if (a == NULL || b == NULL || a->type != b->type)
		return false;
	switch (a->type)
	{
		case SJ_NULL:
			return true;
		case SJ_BOOL:
			return a->u.boolean == b->u.boolean;
		case SJ_NUMBER:
			{
				int			cmp;

				if (sj_number_cmp(a, b, &cmp))
					return cmp == 0;
				/* not valid number text: compare the text itself */
				return a->u.num.len == b->u.num.len &&
					memcmp(a->u.num.text, b->u.num.text, a->u.num.len) == 0;
			}
		case SJ_STRING:
			return a->u.str.len == b->u.str.len &&
				memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0;
		case SJ_ARRAY:
			if (a->u.arr.count != b->u.arr.count)
				return false;
			for (size_t i = 0; i < a->u.arr.count; i++)
				if (!sj_equal(a->u.arr.items[i], b->u.arr.items[i]))
					return false;
			return true;
		case SJ_OBJECT:
			if (a->u.obj.count != b->u.obj.count)
				return false;
			{
				bool		searched = false;

				for (size_t i = 0; i < a->u.obj.count; i++)
				{
					const SjMember *m = &a->u.obj.members[i];
					const SjMember *other;

					/* same position first: the common case costs no search */
					other = &b->u.obj.members[i];
					if (other->keylen != m->keylen ||
						memcmp(other->key, m->key, m->keylen) != 0)
					{
						other = sj_object_member(b, m->key, m->keylen, false);
						searched = true;
					}
					if (other == NULL || !sj_equal(m->value, other->value))
						return false;
				}

				/*
				 * Objects built by hand may repeat a key; then equal counts do
				 * not prove equal key sets, so check the other direction too.
				 */
				if (searched)
				{
					for (size_t i = 0; i < b->u.obj.count; i++)
					{
						const SjMember *m = &b->u.obj.members[i];

						if (sj_object_member(a, m->key, m->keylen, false) == NULL)
							return false;
					}
				}
				return true;
			}
	}
	return false;
}

bool
sj_is_empty(const SjValue *value)
{
	if (value == NULL)
		return true;
	switch (value->type)
	{
		case SJ_NULL:
			return true;
		case SJ_STRING:
			return value->u.str.len == 0;
		case SJ_ARRAY:
			return value->u.arr.count == 0;
		case SJ_OBJECT:
			return value->u.obj.count == 0;
		default:
			return false;
	}
}
