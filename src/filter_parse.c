/*-------------------------------------------------------------------------
 *
 * filter_parse.c
 *		Lexer and parser for SCIM filters (RFC 7644 section 3.4.2.2) and
 *		PATCH paths (section 3.5.2), a pure core with no backend state.
 *
 * Grammar (RFC 7644 Figure 1, operators and keywords case-insensitive):
 *
 *	 FILTER	   = orExp
 *	 orExp	   = andExp *("or" andExp)			; "and" binds tighter
 *	 andExp	   = unary *("and" unary)
 *	 unary	   = "not" "(" orExp ")" / "(" orExp ")" / attrExp / valuePath
 *	 attrExp   = attrPath "pr" / attrPath compareOp compValue
 *	 valuePath = attrPath "[" valFilter "]"		; valFilter: an orExp over
 *												; sub-attribute names, no
 *												; nested valuePath
 *	 attrPath  = [URI ":"] ATTRNAME ["." ATTRNAME]
 *	 compValue = false / null / true / number / string	 ; JSON (RFC 8259)
 *
 * A URN prefix is everything up to the last ':' of the attribute path
 * ("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName"), so the
 * dots of "2.0" never split a sub-attribute.  "$ref" is accepted as a name
 * (RFC 7643 section 2.1).  JSON strings may hold every RFC 8259 escape,
 * surrogate pairs included; "\u0000", lone surrogates, raw control
 * characters and invalid UTF-8 are refused, so a parsed string is always
 * valid text for PostgreSQL.
 *
 * Chains of "and" or "or" are built as balanced trees (both operators are
 * associative), so a long flat chain never makes the consumers recurse
 * deeply; nesting by parentheses, "not" and value filters is limited by
 * ScimFilterLimits.max_depth, and the parser's own recursion is bounded by
 * that same limit, so no input can overflow the stack.
 *
 * Every error names the 0-based byte position and what was expected, e.g.
 *	 expected a comparison operator after "userName" at position 9
 *
 * How it stays fast: the input is copied once into the arena, followed by
 * NUL padding.  The padding is a sentinel that stops every scanning loop
 * (NUL belongs to no character class), so the loops over names and white
 * space test one table entry per byte and no bounds, and it makes reading
 * a few bytes past a token safe: keywords are recognised by their length
 * and their first four bytes read at once, plain strings are scanned eight
 * bytes at a time.  The lexer runs one token ahead of the parser and never
 * backs up (the only lookahead, after "not", peeks without lexing); the
 * usual tokens (a word after one space, a plain string after an operator)
 * are lexed inline in the parser's hot path.  Names and plain strings
 * (printable ASCII without escapes) are not copied: they stay in the copy
 * of the input and are NUL-terminated in place, by overwriting the byte
 * after them once the lexer has passed it and it can no longer be read:
 * the closing quote of a string as soon as it is lexed, the white space,
 * "[" or end after an attribute path once the parser has accepted the
 * path (until then error messages may still quote the whole path).
 * Strings with escapes or non-ASCII text are decoded into a buffer of
 * their own.  "and" and "or" chains are collected in one loop, and AST
 * nodes come from the arena's inline bump allocator.
 *
 * All memory comes from the caller's ScimArena.
 *
 * src/filter_parse.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"
#include "utf8.h"

typedef enum TokKind
{
	TK_EOF,
	TK_WORD,					/* attribute path, operator or keyword */
	TK_STRING,
	TK_NUMBER,
	TK_LPAREN,
	TK_RPAREN,
	TK_LBRACKET,
	TK_RBRACKET,
	TK_DOT						/* only after "]" in a PATCH path */
} TokKind;

/* Keywords and operators, recognised once by the lexer (case-insensitive). */
typedef enum Keyword
{
	KW_NONE,
	KW_EQ,						/* KW_EQ .. KW_LE follow compare_ops[] */
	KW_NE,
	KW_CO,
	KW_SW,
	KW_EW,
	KW_GT,
	KW_GE,
	KW_LT,
	KW_LE,
	KW_PR,						/* right after KW_LE: see peek_operator() */
	KW_AND,
	KW_OR,
	KW_NOT,
	KW_TRUE,
	KW_FALSE,
	KW_NULL
} Keyword;

typedef struct Token
{
	TokKind		kind;
	Keyword		kw;				/* TK_WORD: which keyword, if any */
	int			pos;			/* byte offset of the first character */
	size_t		len;
	SjValue    *value;			/* TK_STRING: the decoded string */
	bool		simple;			/* TK_WORD: a plain ATTRNAME (no URN, no sub) */
	/* TK_WORD, when not simple: how it splits (offsets in the word) */
	bool		dollar;			/* has a '$' after its first byte */
	int			colon;			/* the last ':', or -1 */
	int			dot;			/* the first '.' after it, or -1 */
	int			ndots;			/* how many '.' after it */
} Token;

typedef struct Parser
{
	ScimArena  *arena;
	char	   *text;			/* copy of the input, LEX_PADDING NULs after it */
	size_t		len;
	size_t		pos;			/* next byte for the lexer */
	Token		tok;			/* current token */
	int			max_depth;
	bool		failed;
	ScimFilterError *err;
} Parser;

/*
 * NUL bytes after the copy of the input: the sentinel, and room for the
 * eight-byte reads of scan_plain() (and the four-byte ones of
 * classify_word()) at any position up to it.
 */
#define LEX_PADDING 8

/* Longest piece of input quoted in a message. */
#define QUOTE_MAX 40

/* indexed by Keyword - KW_EQ */
static const ScimFilterOp compare_ops[] = {
	SF_EQ, SF_NE, SF_CO, SF_SW, SF_EW, SF_GT, SF_GE, SF_LT, SF_LE
};

/*
 * Character classes, one table lookup per byte:
 *	CC_WORD		continues a word: ALPHA DIGIT _ - $ . :
 *	CC_START	starts a word: ALPHA $
 *	CC_SPACE	white space between tokens: SP HT CR LF
 *	CC_DIGIT	0-9
 *	CC_NAME		continues an ATTRNAME: ALPHA DIGIT _ -
 *	CC_PLAIN	a string byte needing no attention: printable ASCII but " and \
 * NUL is in no class: the padding after the input ends every scan.
 */
#define CC_WORD		1
#define CC_START	2
#define CC_SPACE	4
#define CC_DIGIT	8
#define CC_NAME		16
#define CC_PLAIN	32

static const unsigned char cclass[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 0, 0, 4, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	36, 32, 0, 32, 35, 32, 32, 32, 32, 32, 32, 32, 32, 49, 33, 32,
	57, 57, 57, 57, 57, 57, 57, 57, 57, 57, 33, 32, 32, 32, 32, 32,
	32, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51,
	51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 32, 0, 32, 32, 49,
	32, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51,
	51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 32, 32, 32, 32, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

#define CC(c, cls)	((cclass[(unsigned char) (c)] & (cls)) != 0)

static ScimFilterNode *parse_or(Parser *p, int depth, const ScimAttrPath *vp);

/* ---------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------
 */
#if defined(__GNUC__)
#define SCIM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define SCIM_NOINLINE __attribute__((noinline))
#define SCIM_COLD __attribute__((noinline, cold))
#define SCIM_ALWAYS_INLINE inline __attribute__((always_inline))
#define SCIM_LIKELY(x) __builtin_expect((x) != 0, 1)
#define SCIM_UNLIKELY(x) __builtin_expect((x) != 0, 0)
#else
#define SCIM_PRINTF(f, a)
#define SCIM_NOINLINE
#define SCIM_COLD
#define SCIM_ALWAYS_INLINE inline
#define SCIM_LIKELY(x) (x)
#define SCIM_UNLIKELY(x) (x)
#endif

static void set_error(Parser *p, int position, const char *fmt,...) SCIM_PRINTF(3, 4) SCIM_COLD;

static void
set_error(Parser *p, int position, const char *fmt,...)
{
	va_list		ap;

	if (p->failed)
		return;					/* keep the first error */
	p->failed = true;
	if (p->err == NULL)
		return;
	p->err->position = position;
	va_start(ap, fmt);
	vsnprintf(p->err->message, sizeof(p->err->message), fmt, ap);
	va_end(ap);
}

static void set_oom(Parser *p) SCIM_COLD;

static void
set_oom(Parser *p)
{
	set_error(p, (int) p->pos, "out of memory while parsing the filter");
}

/*
 * Quote a piece of input for a message: printable ASCII only (anything
 * else becomes '?'), at most QUOTE_MAX bytes, then "...".
 */
static const char *
quote_input(char *buf, size_t bufsize, const char *s, size_t len)
{
	size_t		n = 0;

	for (size_t i = 0; i < len && n + 4 < bufsize; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (i == QUOTE_MAX)
		{
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		buf[n++] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
	}
	buf[n] = '\0';
	return buf;
}

/* "at position N" or "at end of filter, position N" for a token. */
static const char *
where(const Parser *p, const Token *t, char *buf, size_t bufsize)
{
	(void) p;
	if (t->kind == TK_EOF)
		snprintf(buf, bufsize, "at end of filter, position %d", t->pos);
	else
		snprintf(buf, bufsize, "at position %d", t->pos);
	return buf;
}

/* Describe one (possibly multi-byte) character for a message. */
static void
describe_char(const unsigned char *s, size_t avail, char *buf, size_t bufsize)
{
	unsigned char c = s[0];

	if (c >= 0x20 && c < 0x7f)
	{
		if (c == '"')
			snprintf(buf, bufsize, "'\"'");
		else
			snprintf(buf, bufsize, "\"%c\"", c);
	}
	else if (c < 0x80)
		snprintf(buf, bufsize, "U+%04X", c);
	else
	{
		/* a well-formed sequence names its code point, else the byte */
		int			n = (c >= 0xF0) ? 4 : (c >= 0xE0) ? 3 : (c >= 0xC2) ? 2 : 0;
		unsigned int cp = (n == 4) ? (c & 0x07) : (n == 3) ? (c & 0x0F) : (c & 0x1F);
		bool		ok = n > 0 && (size_t) n <= avail && c <= 0xF4;

		for (int i = 1; ok && i < n; i++)
		{
			if ((s[i] & 0xC0) != 0x80)
				ok = false;
			cp = (cp << 6) | (s[i] & 0x3F);
		}
		if (ok && ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
				   (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
			ok = false;
		if (ok)
			snprintf(buf, bufsize, "U+%04X", cp);
		else
			snprintf(buf, bufsize, "byte 0x%02X", c);
	}
}

/* ---------------------------------------------------------------------
 * Lexer
 * ---------------------------------------------------------------------
 */

/*
 * Which keyword a word is (ASCII case-insensitive), KW_NONE if none.  The
 * first four bytes are read at once: the padding after the copy of the
 * input makes that safe for a shorter word at its end.  OR-ing 0x20
 * lower-cases letters; no other word character maps onto a letter.
 */
#define KW2(a, b)		((uint32_t) (a) | (uint32_t) (b) << 8)
#define KW3(a, b, c)	(KW2(a, b) | (uint32_t) (c) << 16)
#define KW4(a, b, c, d) (KW3(a, b, c) | (uint32_t) (d) << 24)

static inline Keyword
classify_word(const char *w, size_t len)
{
	const unsigned char *u = (const unsigned char *) w;
	uint32_t	v = ((uint32_t) u[0] | (uint32_t) u[1] << 8 |
					 (uint32_t) u[2] << 16 | (uint32_t) u[3] << 24) | 0x20202020;

	switch (len)
	{
		case 2:
			switch (v & 0xFFFF)
			{
				case KW2('e', 'q'):
					return KW_EQ;
				case KW2('n', 'e'):
					return KW_NE;
				case KW2('c', 'o'):
					return KW_CO;
				case KW2('s', 'w'):
					return KW_SW;
				case KW2('e', 'w'):
					return KW_EW;
				case KW2('g', 't'):
					return KW_GT;
				case KW2('g', 'e'):
					return KW_GE;
				case KW2('l', 't'):
					return KW_LT;
				case KW2('l', 'e'):
					return KW_LE;
				case KW2('p', 'r'):
					return KW_PR;
				case KW2('o', 'r'):
					return KW_OR;
			}
			return KW_NONE;
		case 3:
			v &= 0xFFFFFF;
			return v == KW3('a', 'n', 'd') ? KW_AND : v == KW3('n', 'o', 't') ? KW_NOT : KW_NONE;
		case 4:
			return v == KW4('t', 'r', 'u', 'e') ? KW_TRUE : v == KW4('n', 'u', 'l', 'l') ? KW_NULL : KW_NONE;
		case 5:
			return (v == KW4('f', 'a', 'l', 's') && (u[4] | 0x20) == 'e') ? KW_FALSE : KW_NONE;
	}
	return KW_NONE;
}

static bool
read_hex4(const char *s, unsigned int *out)
{
	unsigned int v = 0;

	for (int i = 0; i < 4; i++)
	{
		int			h = scim_hex_value((unsigned char) s[i]);

		if (h < 0)
			return false;
		v = (v << 4) | (unsigned int) h;
	}
	*out = v;
	return true;
}


/*
 * Strings with escapes or non-ASCII text, numbers, the end and errors are
 * lexed out of line, so that the inline lexing of the common tokens
 * (names, keywords, plain strings) stays small.
 */
static void lex_string(Parser *p) SCIM_NOINLINE;
static void lex_number(Parser *p) SCIM_NOINLINE;
static void lex_unexpected(Parser *p) SCIM_COLD;
static void lex_from(Parser *p, size_t pos) SCIM_NOINLINE;
static const unsigned char *lex_path_word(Parser *p, const unsigned char *w,
										  const unsigned char *q) SCIM_NOINLINE;

/*
 * Lex a JSON string starting at the opening quote at p->pos, decoding it
 * into a buffer of its own (lex_plain_string() keeps plain ones in place).
 */
static void
lex_string(Parser *p)
{
	const char *s = p->text;
	size_t		start = p->pos;
	size_t		i = start + 1;
	size_t		end;
	char	   *buf;
	size_t		n = 0;
	SjValue    *v;
	size_t		len = p->len;

	/*
	 * Find the closing quote first, so the buffer is sized exactly and an
	 * unterminated string is reported before anything inside it.
	 */
	for (end = i; end < len && s[end] != '"'; end++)
		if (s[end] == '\\' && end + 1 < len)
			end++;
	if (end >= len)
	{
		set_error(p, (int) start, "unterminated string starting at position %d", (int) start);
		return;
	}
	/* the SjValue and its text in one allocation */
	v = scim_arena_alloc(p->arena, sizeof(SjValue) + end - i + 1);
	if (v == NULL)
	{
		set_oom(p);
		return;
	}
	buf = (char *) (v + 1);

	while (i < end)
	{
		unsigned char c = (unsigned char) s[i];

		if (CC(c, CC_PLAIN))
		{
			buf[n++] = (char) c;
			i++;
			continue;
		}
		if (c == '\\')
		{
			unsigned char e = (unsigned char) s[i + 1];
			unsigned int cp;

			switch (e)
			{
				case '"':
				case '\\':
				case '/':
					buf[n++] = (char) e;
					break;
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
					if (i + 6 > end || !read_hex4(s + i + 2, &cp))
					{
						set_error(p, (int) i, "invalid \\u escape in string at position %d "
								  "(four hexadecimal digits expected)", (int) i);
						return;
					}
					if (cp >= 0xDC00 && cp <= 0xDFFF)
					{
						set_error(p, (int) i, "unpaired low surrogate \\u%04X in string at position %d",
								  cp, (int) i);
						return;
					}
					if (cp >= 0xD800 && cp <= 0xDBFF)
					{
						unsigned int lo;

						if (i + 12 > end || s[i + 6] != '\\' || s[i + 7] != 'u' ||
							!read_hex4(s + i + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
						{
							set_error(p, (int) i, "high surrogate \\u%04X in string at position %d "
									  "is not followed by a low surrogate escape", cp, (int) i);
							return;
						}
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
						i += 6;
					}
					if (cp == 0)
					{
						set_error(p, (int) i, "\\u0000 is not allowed in a filter string (position %d)",
								  (int) i);
						return;
					}
					n += scim_utf8_encode(cp, buf + n);
					i += 4;
					break;
				default:
					{
						char		d[24];

						describe_char((const unsigned char *) s + i + 1, end - i - 1, d, sizeof(d));
						set_error(p, (int) i, "invalid escape sequence (backslash followed by %s) "
								  "in string at position %d", d, (int) i);
						return;
					}
			}
			i += 2;
		}
		else if (c < 0x20)
		{
			set_error(p, (int) i, "unescaped control character U+%04X in string at position %d",
					  c, (int) i);
			return;
		}
		else
		{
			size_t		seq = scim_utf8_sequence_length((const unsigned char *) s + i, end - i);

			if (seq == 0)
			{
				set_error(p, (int) i, "invalid UTF-8 (byte 0x%02X) in string at position %d",
						  c, (int) i);
				return;
			}
			memcpy(buf + n, s + i, seq);
			n += seq;
			i += seq;
		}
	}
	buf[n] = '\0';

	memset(v, 0, sizeof(SjValue));
	v->type = SJ_STRING;
	v->u.str.ptr = buf;
	v->u.str.len = n;

	p->tok.kind = TK_STRING;
	p->tok.value = v;
	p->tok.len = end + 1 - start;
	p->pos = end + 1;
}

static void
lex_number(Parser *p)
{
	const char *s = p->text;
	size_t		start = p->pos;
	size_t		i = start;
	char		q[QUOTE_MAX + 8];

	while (i < p->len && (CC(s[i], CC_DIGIT) || s[i] == '-' || s[i] == '+' ||
						  s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
		i++;
	/* "12abc": a number glued to a name */
	while (i < p->len && CC(s[i], CC_WORD))
		i++;
	if (!sj_number_text_valid(s + start, i - start))
	{
		set_error(p, (int) start, "invalid number \"%s\" at position %d",
				  quote_input(q, sizeof(q), s + start, i - start), (int) start);
		return;
	}
	p->tok.kind = TK_NUMBER;
	p->tok.len = i - start;
	p->pos = i;
}

static void
lex_unexpected(Parser *p)
{
	char		d[24];

	describe_char((const unsigned char *) p->text + p->pos, p->len - p->pos, d, sizeof(d));
	set_error(p, (int) p->pos, "unexpected character %s at position %d", d, (int) p->pos);
}

/*
 * The first byte at or after q that a plain string cannot hold (not
 * CC_PLAIN): '"', '\\', a control character, DEL or a non-ASCII byte.  The
 * NUL padding after the input stops the scan, which on little-endian
 * machines looks at eight bytes at a time (the padding makes the reads
 * past the end safe).
 */
static SCIM_ALWAYS_INLINE const unsigned char *
scan_plain(const unsigned char *q)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = UINT64_C(0x0101010101010101);
	const uint64_t high = UINT64_C(0x8080808080808080);

	for (;;)
	{
		uint64_t	x;
		uint64_t	quote;
		uint64_t	backslash;
		uint64_t	special;

		memcpy(&x, q, sizeof(x));
		quote = x ^ (ones * '"');
		backslash = x ^ (ones * '\\');

		/*
		 * High bit of each byte: below 0x20 (x - 0x20 borrows), 0x7F or
		 * above (x + 1 or x itself reaches 0x80), equal to '"' or '\\' (a
		 * zero byte after the XOR).  A borrow or carry crosses into the next
		 * byte only from a byte flagged itself, so the lowest flag is exact.
		 */
		special = ((x - ones * 0x20) | (x + ones) | x |
				   ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash)) & high;
		if (special != 0)
			return q + (__builtin_ctzll(special) >> 3);
		q += sizeof(x);
	}
#else
	while (CC(*q, CC_PLAIN))
		q++;
	return q;
#endif
}

/*
 * Lex a string at p->pos.  A plain one (printable ASCII, no escapes, the
 * usual case) stays where it is in the copy of the input, its closing
 * quote overwritten by the terminating NUL; any other goes to lex_string.
 */
static SCIM_ALWAYS_INLINE void
lex_plain_string(Parser *p)
{
	size_t		start = p->pos;
	const unsigned char *s = (const unsigned char *) p->text;
	const unsigned char *q = scan_plain(s + start + 1);
	size_t		end = (size_t) (q - s);
	SjValue    *v;

	p->tok.pos = (int) start;
	if (SCIM_UNLIKELY(*q != '"'))
	{
		lex_string(p);
		if (p->failed)
			p->tok.kind = TK_EOF;
		return;
	}
	v = scim_arena_alloc_inline(p->arena, sizeof(SjValue));
	if (SCIM_UNLIKELY(v == NULL))
	{
		set_oom(p);
		p->tok.kind = TK_EOF;
		return;
	}
	memset(v, 0, sizeof(SjValue));
	v->type = SJ_STRING;
	v->u.str.ptr = (const char *) s + start + 1;
	v->u.str.len = end - start - 1;
	/* the closing quote, already lexed, becomes the terminator */
	p->text[end] = '\0';
	p->tok.kind = TK_STRING;
	p->tok.value = v;
	p->tok.len = end + 1 - start;
	p->pos = end + 1;
}

/*
 * The rest of a word that is not a plain name (a URN prefix, a
 * sub-attribute, or an invalid name), from q, its first byte that is not
 * a name byte: runs of name bytes between ':', '.' and '$'.  Notes in the
 * token where the path splits; returns the end of the word.
 */
static const unsigned char *
lex_path_word(Parser *p, const unsigned char *w, const unsigned char *q)
{
	int			colon = -1;
	int			dot = -1;
	int			ndots = 0;
	bool		dollar = false;

	for (;;)
	{
		unsigned char c = *q;

		if (c == ':')
		{
			colon = (int) (q - w);
			dot = -1;
			ndots = 0;
		}
		else if (c == '.')
		{
			if (ndots++ == 0)
				dot = (int) (q - w);
		}
		else if (c == '$')
			dollar = true;
		else
			break;
		q++;
		while (CC(*q, CC_NAME))
			q++;
	}
	p->tok.simple = false;
	p->tok.dollar = dollar;
	p->tok.colon = colon;
	p->tok.dot = dot;
	p->tok.ndots = ndots;
	return q;
}

/* Lex the word starting at pos (a CC_START byte). */
static SCIM_ALWAYS_INLINE void
lex_word(Parser *p, size_t pos)
{
	const unsigned char *s = (const unsigned char *) p->text;
	const unsigned char *q = s + pos + 1;
	size_t		len;

	p->tok.kind = TK_WORD;
	p->tok.simple = true;
	p->tok.pos = (int) pos;
	if (CC(q[0], CC_NAME) && !CC(q[1], CC_WORD))
	{
		/* two bytes: every comparison operator, "pr" and "or" */
		p->tok.len = 2;
		p->tok.kw = classify_word((const char *) s + pos, 2);
		p->pos = pos + 2;
		return;
	}
	while (CC(*q, CC_NAME))
		q++;
	if (SCIM_UNLIKELY(CC(*q, CC_WORD)))
		q = lex_path_word(p, s + pos, q);
	len = (size_t) (q - s) - pos;
	p->tok.len = len;
	p->tok.kw = len <= 5 ? classify_word((const char *) s + pos, len) : KW_NONE;
	p->pos = pos + len;
}

/* Punctuation tokens, indexed by byte (TK_EOF: not punctuation). */
static const unsigned char punct_kind[128] = {
	['('] = TK_LPAREN,
	[')'] = TK_RPAREN,
	['['] = TK_LBRACKET,
	[']'] = TK_RBRACKET,
	['.'] = TK_DOT
};

/*
 * Lex the token at or after pos (white space first).  The copy of the
 * input ends in NUL padding, which no scanning loop accepts, so the loops
 * need no bounds check; a NUL before the end is an ordinary unexpected
 * character.
 *
 * After an error the token is TK_EOF, which the parser never consumes, so
 * the lexer is not called again once it has failed (and a parser error
 * ends the parse at once).
 */
static void
lex_from(Parser *p, size_t pos)
{
	const unsigned char *s = (const unsigned char *) p->text;
	unsigned char c;

	while (CC(s[pos], CC_SPACE))
		pos++;
	c = s[pos];
	if (c == '\0' && pos >= p->len)
	{
		p->tok.kind = TK_EOF;
		p->tok.pos = (int) pos;
		p->pos = pos;
		return;
	}
	if (CC(c, CC_START))
	{
		lex_word(p, pos);
		return;
	}
	if (c < 128 && punct_kind[c] != TK_EOF)
	{
		p->tok.kind = (TokKind) punct_kind[c];
		p->tok.pos = (int) pos;
		p->tok.len = 1;
		p->pos = pos + 1;
		return;
	}
	p->pos = pos;
	p->tok.pos = (int) pos;
	p->tok.len = 1;
	switch (c)
	{
		case '"':
			lex_plain_string(p);
			return;
		case '-':
		case '0':
		case '1':
		case '2':
		case '3':
		case '4':
		case '5':
		case '6':
		case '7':
		case '8':
		case '9':
			lex_number(p);
			break;
		default:
			/* a NUL before the end too */
			lex_unexpected(p);
			break;
	}
	if (p->failed)
		p->tok.kind = TK_EOF;
}

/*
 * Advance to the next token.  The common case, a word after at most one
 * space, is inline; everything else goes to lex_from().
 */
static SCIM_ALWAYS_INLINE void
next_inline(Parser *p)
{
	const unsigned char *s = (const unsigned char *) p->text;
	size_t		pos = p->pos;

	if (s[pos] == ' ')
		pos++;
	if (SCIM_LIKELY(CC(s[pos], CC_START)))
		lex_word(p, pos);
	else
		lex_from(p, pos);
}

/* next_inline() out of line, for the less frequent places. */
static void
next(Parser *p)
{
	lex_from(p, p->pos);
}

/*
 * Lex a comparison value: next_inline() with the plain string, the usual
 * value, inline as well.
 */
static SCIM_ALWAYS_INLINE void
next_value(Parser *p)
{
	const unsigned char *s = (const unsigned char *) p->text;
	size_t		pos = p->pos;

	if (s[pos] == ' ')
		pos++;
	if (SCIM_LIKELY(s[pos] == '"'))
	{
		p->pos = pos;
		lex_plain_string(p);
	}
	else
		lex_from(p, pos);
}

static inline bool
tok_is(const Token *t, Keyword kw)
{
	return t->kind == TK_WORD && t->kw == kw;
}

/*
 * Whether the token after the current one is a comparison operator, "pr"
 * or "[" (so that a current "not" is an attribute name).  Looks ahead
 * without lexing: a word is only scanned and classified, anything else is
 * none of these, so no error can arise and nothing needs undoing.
 */
static bool
peek_operator(const Parser *p)
{
	const unsigned char *s = (const unsigned char *) p->text;
	size_t		pos = p->pos;
	size_t		start;
	Keyword		kw;

	while (CC(s[pos], CC_SPACE))
		pos++;
	if (s[pos] == '[')
		return true;
	if (!CC(s[pos], CC_START))
		return false;
	start = pos;
	do
		pos++;
	while (CC(s[pos], CC_WORD));
	kw = classify_word((const char *) s + start, pos - start);
	return kw >= KW_EQ && kw <= KW_PR;
}

/* ---------------------------------------------------------------------
 * Attribute paths
 * ---------------------------------------------------------------------
 */

/* ATTRNAME = (ALPHA / "$") *(ALPHA / DIGIT / "_" / "-") */
static bool
name_valid(const char *s, size_t n)
{
	if (n == 0 || !CC(s[0], CC_START))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!CC(s[i], CC_NAME))
			return false;
	return true;
}

/*
 * Where the names of an attribute path end in the copy of the input: the
 * bytes that path_terminate() overwrites with NUL (-1: none).
 */
typedef struct PathCut
{
	int			colon;			/* after the schema URN */
	int			dot;			/* after the attribute, before the sub-attribute */
	int			end;			/* after the whole path */
} PathCut;

static bool split_path(Parser *p, const Token *t, const ScimAttrPath *vp,
					   ScimAttrPath *out, PathCut *cut) SCIM_NOINLINE;

/*
 * Split the word t into [schema ":"] attr ["." sub], pointing into the
 * copy of the input; the names are NUL-terminated only by
 * path_terminate(), which the caller runs once the path is accepted and
 * the lexer has moved past the byte after it.  vp is the enclosing value
 * filter's attribute, or NULL outside one.
 */
static SCIM_ALWAYS_INLINE bool
word_to_path(Parser *p, const Token *t, const ScimAttrPath *vp, ScimAttrPath *out, PathCut *cut)
{
	out->schema = NULL;
	out->attr = p->text + t->pos;
	out->sub = NULL;
	cut->colon = -1;
	cut->dot = -1;
	cut->end = t->pos + (int) t->len;
	if (SCIM_LIKELY(t->simple))
		return true;			/* a plain attribute name, already validated */
	return split_path(p, t, vp, out, cut);
}

/*
 * Whether the piece [from, to) of a word that is not a plain name (see
 * lex_path_word) is an ATTRNAME: without a '$' in the word, its bytes are
 * name bytes, and only its first needs a look.
 */
static inline bool
piece_valid(const Token *t, const char *w, int from, int to)
{
	if (t->dollar)
		return name_valid(w + from, (size_t) (to - from));
	return to > from && CC(w[from], CC_START);
}

/* word_to_path for a word that is not a plain name. */
static bool
split_path(Parser *p, const Token *t, const ScimAttrPath *vp, ScimAttrPath *out,
		   PathCut *cut)
{
	const char *w = p->text + t->pos;
	int			pos = t->pos;
	int			len = (int) t->len;
	int			rest = t->colon + 1;	/* 0 without a URN prefix */
	char		q[QUOTE_MAX + 8];

	if (rest > 0 && rest == len)
	{
		set_error(p, pos, "expected an attribute name after the schema URN in \"%s\" at position %d",
				  quote_input(q, sizeof(q), w, len), pos);
		return false;
	}
	if (t->ndots > 1)
	{
		set_error(p, pos, "attribute path \"%s\" has more than one sub-attribute at position %d",
				  quote_input(q, sizeof(q), w, len), pos);
		return false;
	}
	if (t->ndots == 1 ? (!piece_valid(t, w, rest, t->dot) || !piece_valid(t, w, t->dot + 1, len))
		: !piece_valid(t, w, rest, len))
	{
		set_error(p, pos, "invalid attribute path \"%s\" at position %d",
				  quote_input(q, sizeof(q), w, len), pos);
		return false;
	}
	if (vp != NULL && (rest > 0 || t->ndots > 0))
	{
		char		q2[QUOTE_MAX + 8];

		set_error(p, pos, "inside the value filter of \"%s\", \"%s\" must be a plain "
				  "sub-attribute name (position %d)",
				  quote_input(q2, sizeof(q2), vp->attr, strlen(vp->attr)),
				  quote_input(q, sizeof(q), w, len), pos);
		return false;
	}

	if (rest > 0)
	{
		out->schema = w;
		cut->colon = pos + rest - 1;
	}
	out->attr = w + rest;
	if (t->ndots == 1)
	{
		out->sub = w + t->dot + 1;
		cut->dot = pos + t->dot;
	}
	return true;
}

/* NUL-terminate the names of an accepted attribute path in place. */
static inline void
path_terminate(Parser *p, const PathCut *cut)
{
	p->text[cut->end] = '\0';
	if (SCIM_UNLIKELY(cut->colon >= 0))
		p->text[cut->colon] = '\0';
	if (cut->dot >= 0)
		p->text[cut->dot] = '\0';
}

/* ---------------------------------------------------------------------
 * Parser
 * ---------------------------------------------------------------------
 */
static inline ScimFilterNode *
new_node(Parser *p, ScimFilterKind kind, int position)
{
	ScimFilterNode *n = scim_arena_alloc_inline(p->arena, sizeof(ScimFilterNode));

	if (n == NULL)
	{
		set_oom(p);
		return NULL;
	}
	memset(n, 0, sizeof(ScimFilterNode));
	n->kind = kind;
	n->position = position;
	return n;
}

static bool
check_depth(Parser *p, int depth, int position)
{
	if (SCIM_UNLIKELY(depth > p->max_depth))
	{
		set_error(p, position, "filter is nested more than %d levels deep at position %d",
				  p->max_depth, position);
		return false;
	}
	return true;
}

/* Build a balanced tree of "kind" nodes over items[lo, hi), hi - lo >= 2. */
static ScimFilterNode *
balance(Parser *p, ScimFilterKind kind, ScimFilterNode **items, size_t lo, size_t hi)
{
	ScimFilterNode *n;
	size_t		mid = lo + (hi - lo) / 2;

	n = new_node(p, kind, items[lo]->position);
	if (n == NULL)
		return NULL;
	n->u.bin.left = (mid - lo == 1) ? items[lo] : balance(p, kind, items, lo, mid);
	n->u.bin.right = (hi - mid == 1) ? items[mid] : balance(p, kind, items, mid, hi);
	if (n->u.bin.left == NULL || n->u.bin.right == NULL)
		return NULL;
	return n;
}

/* Operand list of an "and" or "or" chain; grows through the arena. */
typedef struct NodeList
{
	ScimFilterNode **items;
	size_t		count;
	size_t		cap;
	ScimFilterNode *local[8];
} NodeList;

static bool list_grow(Parser *p, NodeList *l) SCIM_NOINLINE;

static bool
list_grow(Parser *p, NodeList *l)
{
	ScimFilterNode **grown = scim_arena_alloc(p->arena, 2 * l->cap * sizeof(ScimFilterNode *));

	if (grown == NULL)
	{
		set_oom(p);
		return false;
	}
	memcpy(grown, l->items, l->count * sizeof(ScimFilterNode *));
	l->items = grown;
	l->cap *= 2;
	return true;
}

/* The balanced tree of an "and" or "or" chain (two operands or more). */
static SCIM_ALWAYS_INLINE ScimFilterNode *
chain(Parser *p, ScimFilterKind kind, NodeList *l)
{
	ScimFilterNode *n;

	if (l->count > 2)
		return balance(p, kind, l->items, 0, l->count);
	n = new_node(p, kind, l->items[0]->position);
	if (n != NULL)
	{
		n->u.bin.left = l->items[0];
		n->u.bin.right = l->items[1];
	}
	return n;
}

static inline void
list_start(NodeList *l, ScimFilterNode *first)
{
	l->items = l->local;
	l->cap = sizeof(l->local) / sizeof(l->local[0]);
	l->local[0] = first;
	l->count = 1;
}

static inline bool
list_push(Parser *p, NodeList *l, ScimFilterNode *n)
{
	if (SCIM_UNLIKELY(l->count == l->cap) && !list_grow(p, l))
		return false;
	l->items[l->count++] = n;
	return true;
}

/*
 * Error reports of the parser, out of line so that the parsing functions
 * keep small frames.  A token the parser has moved past is passed as its
 * position and length in the copy of the input (untouched where quoted).
 */
static void error_expected_value(Parser *p, int op_pos, size_t op_len) SCIM_COLD;
static void error_expected_operator(Parser *p, int path_pos, size_t path_len) SCIM_COLD;
static void error_expected_close(Parser *p, char close, char open, int open_pos) SCIM_COLD;
static void error_value_filter(Parser *p, int path_pos, size_t path_len, bool nested,
							   int open) SCIM_COLD;
static void error_expected_unary(Parser *p, int after_pos, size_t after_len) SCIM_COLD;
static void error_not_paren(Parser *p) SCIM_COLD;

static void
error_expected_value(Parser *p, int op_pos, size_t op_len)
{
	const Token *t = &p->tok;
	char		w[64];
	char		q[QUOTE_MAX + 8];
	char		q2[QUOTE_MAX + 8];

	if (t->kind == TK_WORD)
		set_error(p, t->pos, "expected a value (a string, number, true, false or null) "
				  "after \"%s\" %s; found \"%s\"",
				  quote_input(q, sizeof(q), p->text + op_pos, op_len),
				  where(p, t, w, sizeof(w)),
				  quote_input(q2, sizeof(q2), p->text + t->pos, t->len));
	else
		set_error(p, t->pos, "expected a value (a string, number, true, false or null) "
				  "after \"%s\" %s",
				  quote_input(q, sizeof(q), p->text + op_pos, op_len),
				  where(p, t, w, sizeof(w)));
}

static void
error_expected_operator(Parser *p, int path_pos, size_t path_len)
{
	char		w[64];
	char		q[QUOTE_MAX + 8];

	set_error(p, p->tok.pos, "expected a comparison operator after \"%s\" %s",
			  quote_input(q, sizeof(q), p->text + path_pos, path_len),
			  where(p, &p->tok, w, sizeof(w)));
}

static void
error_expected_close(Parser *p, char close, char open, int open_pos)
{
	char		w[64];

	set_error(p, p->tok.pos, "expected \"%c\" %s (to close the \"%c\" at position %d)",
			  close, where(p, &p->tok, w, sizeof(w)), open, open_pos);
}

static void
error_value_filter(Parser *p, int path_pos, size_t path_len, bool nested, int open)
{
	char		q[QUOTE_MAX + 8];

	if (nested)
		set_error(p, open, "value filters cannot be nested (\"[\" at position %d)", open);
	else
		set_error(p, open, "a value filter must follow an attribute name, not the "
				  "sub-attribute \"%s\" (\"[\" at position %d)",
				  quote_input(q, sizeof(q), p->text + path_pos, path_len), open);
}

/* after_pos: the "and" or "or" before the operand, or -1 */
static void
error_expected_unary(Parser *p, int after_pos, size_t after_len)
{
	char		w[64];
	char		q[QUOTE_MAX + 8];

	if (after_pos >= 0)
		set_error(p, p->tok.pos, "expected an attribute name, \"(\" or \"not\" after \"%s\" %s",
				  quote_input(q, sizeof(q), p->text + after_pos, after_len),
				  where(p, &p->tok, w, sizeof(w)));
	else if (p->tok.kind == TK_EOF && p->tok.pos == 0)
		set_error(p, 0, "the filter is empty");
	else
		set_error(p, p->tok.pos, "expected an attribute name, \"(\" or \"not\" %s",
				  where(p, &p->tok, w, sizeof(w)));
}

static void
error_not_paren(Parser *p)
{
	char		w[64];

	set_error(p, p->tok.pos, "expected \"(\" after \"not\" %s",
			  where(p, &p->tok, w, sizeof(w)));
}

/* compValue after the operator at op_pos (op_len bytes) */
static SCIM_ALWAYS_INLINE SjValue *
parse_value(Parser *p, int op_pos, size_t op_len)
{
	Token	   *t = &p->tok;
	SjValue    *v;

	if (SCIM_LIKELY(t->kind == TK_STRING))
		v = t->value;
	else if (t->kind == TK_NUMBER)
	{
		/* the value and its NUL-terminated text in one allocation */
		v = scim_arena_alloc_inline(p->arena, sizeof(SjValue) + t->len + 1);
		if (v == NULL)
		{
			set_oom(p);
			return NULL;
		}
		memset(v, 0, sizeof(SjValue));
		v->type = SJ_NUMBER;
		memcpy(v + 1, p->text + t->pos, t->len);
		((char *) (v + 1))[t->len] = '\0';
		v->u.num.text = (const char *) (v + 1);
		v->u.num.len = t->len;
	}
	else if (t->kind == TK_WORD &&
			 (t->kw == KW_TRUE || t->kw == KW_FALSE || t->kw == KW_NULL))
	{
		v = scim_arena_alloc_inline(p->arena, sizeof(SjValue));
		if (v == NULL)
		{
			set_oom(p);
			return NULL;
		}
		memset(v, 0, sizeof(SjValue));
		if (t->kw == KW_NULL)
			v->type = SJ_NULL;
		else
		{
			v->type = SJ_BOOL;
			v->u.boolean = (t->kw == KW_TRUE);
		}
	}
	else
	{
		error_expected_value(p, op_pos, op_len);
		return NULL;
	}
	next_inline(p);
	return v;
}

static ScimFilterNode *parse_attr_exp(Parser *p, int depth, const ScimAttrPath *vp);

/*
 * The value filter of attrPath "[" valFilter "]" (and of Entra ID's
 * attrPath "[" valFilter "]" "." subAttr compareOp compValue); the current
 * token is "[".
 */
static ScimFilterNode *
parse_value_path(Parser *p, int depth, const ScimAttrPath *vp, ScimFilterNode *n,
				 const ScimAttrPath *path, const PathCut *cut, int path_pos, size_t path_len)
{
	int			open = p->tok.pos;

	if (vp != NULL || path->sub != NULL)
	{
		error_value_filter(p, path_pos, path_len, vp != NULL, open);
		return NULL;
	}
	if (!check_depth(p, depth + 1, open))
		return NULL;
	n->kind = SF_VALUEPATH;
	next(p);
	/* the lexer is past the "[": the path's names can end in place */
	path_terminate(p, cut);
	n->u.vp.path = *path;
	n->u.vp.filter = parse_or(p, depth + 1, &n->u.vp.path);
	if (n->u.vp.filter == NULL)
		return NULL;
	if (p->tok.kind != TK_RBRACKET)
	{
		error_expected_close(p, ']', '[', open);
		return NULL;
	}
	next(p);
	if (p->tok.kind == TK_DOT)
	{
		/*
		 * Microsoft Entra ID's emails[type eq "work"].value eq "x", outside
		 * RFC 7644's grammar: the element that passes the value filter
		 * must also pass the comparison of its sub-attribute, i.e.
		 * emails[type eq "work" and value eq "x"].
		 */
		int			dot = p->tok.pos;
		ScimFilterNode *cmp;
		ScimFilterNode *both;

		next(p);
		if (p->tok.kind != TK_WORD)
		{
			set_error(p, p->tok.pos, "expected a sub-attribute name after \".\" at position %d", dot);
			return NULL;
		}
		cmp = parse_attr_exp(p, depth + 1, &n->u.vp.path);
		if (cmp == NULL)
			return NULL;
		both = new_node(p, SF_AND, dot);
		if (both == NULL)
			return NULL;
		both->u.bin.left = n->u.vp.filter;
		both->u.bin.right = cmp;
		n->u.vp.filter = both;
	}
	return n;
}

/*
 * attrPath "pr" / attrPath compareOp compValue / attrPath "[" valFilter "]";
 * the current token is the attribute path.
 */
static SCIM_ALWAYS_INLINE ScimFilterNode *
parse_attr_exp(Parser *p, int depth, const ScimAttrPath *vp)
{
	int			path_pos = p->tok.pos;
	size_t		path_len = p->tok.len;
	ScimAttrPath path;
	PathCut		cut;
	ScimFilterNode *n;

	if (!word_to_path(p, &p->tok, vp, &path, &cut))
		return NULL;
	n = new_node(p, SF_COMPARE, path_pos);
	if (n == NULL)
		return NULL;
	next_inline(p);

	if (SCIM_LIKELY(p->tok.kind == TK_WORD && p->tok.kw >= KW_EQ && p->tok.kw <= KW_PR))
	{
		/* the byte after the path was white space, now behind the lexer */
		path_terminate(p, &cut);
		n->u.cmp.path = path;
		if (p->tok.kw == KW_PR)
		{
			n->u.cmp.op = SF_PR;
			n->u.cmp.value = NULL;
			next_inline(p);
		}
		else
		{
			int			op_pos = p->tok.pos;
			size_t		op_len = p->tok.len;

			n->u.cmp.op = compare_ops[p->tok.kw - KW_EQ];
			next_value(p);
			n->u.cmp.value = parse_value(p, op_pos, op_len);
			if (n->u.cmp.value == NULL)
				return NULL;
		}
		return n;
	}

	if (p->tok.kind == TK_LBRACKET)
		return parse_value_path(p, depth, vp, n, &path, &cut, path_pos, path_len);

	error_expected_operator(p, path_pos, path_len);
	return NULL;
}

/*
 * unary = "not" "(" orExp ")" / "(" orExp ")", or an error, for a current
 * token that does not start an attrExp.  after_pos: the "and" or "or"
 * before the operand, or -1.
 */
static ScimFilterNode *
parse_unary_other(Parser *p, int depth, const ScimAttrPath *vp, int after_pos, size_t after_len)
{
	ScimFilterNode *n;
	int			open;

	if (tok_is(&p->tok, KW_NOT))
	{
		int			not_pos = p->tok.pos;

		next(p);
		if (p->tok.kind != TK_LPAREN)
		{
			error_not_paren(p);
			return NULL;
		}
		open = p->tok.pos;
		if (!check_depth(p, depth + 1, open))
			return NULL;
		n = new_node(p, SF_NOT, not_pos);
		if (n == NULL)
			return NULL;
		next(p);
		n->u.not.arg = parse_or(p, depth + 1, vp);
		if (n->u.not.arg == NULL)
			return NULL;
		if (p->tok.kind != TK_RPAREN)
		{
			error_expected_close(p, ')', '(', open);
			return NULL;
		}
		next(p);
		return n;
	}

	if (p->tok.kind == TK_LPAREN)
	{
		open = p->tok.pos;
		if (!check_depth(p, depth + 1, open))
			return NULL;
		next(p);
		n = parse_or(p, depth + 1, vp);
		if (n == NULL)
			return NULL;
		if (p->tok.kind != TK_RPAREN)
		{
			error_expected_close(p, ')', '(', open);
			return NULL;
		}
		next(p);
		return n;
	}

	error_expected_unary(p, after_pos, after_len);
	return NULL;
}

/*
 * orExp = andExp *("or" andExp), andExp = unary *("and" unary), in one
 * loop: operands of an "and" chain collect in ands, finished "and" chains
 * (or single operands) in ors.
 */
static ScimFilterNode *
parse_or(Parser *p, int depth, const ScimAttrPath *vp)
{
	NodeList	ands;
	NodeList	ors;
	int			after_pos = -1;
	size_t		after_len = 0;
	ScimFilterNode *n;

	ands.count = 0;
	ors.count = 0;
	for (;;)
	{
		/* unary = "not" "(" orExp ")" / "(" orExp ")" / attrExp */
		if (SCIM_LIKELY(p->tok.kind == TK_WORD) &&
			(p->tok.kw != KW_NOT || peek_operator(p)))
			n = parse_attr_exp(p, depth, vp);
		else
			n = parse_unary_other(p, depth, vp, after_pos, after_len);
		if (n == NULL)
			return NULL;

		if (tok_is(&p->tok, KW_AND))
		{
			if (ands.count == 0)
				list_start(&ands, n);
			else if (!list_push(p, &ands, n))
				return NULL;
			after_pos = p->tok.pos;
			after_len = 3;
			next_inline(p);
			continue;
		}
		if (ands.count > 0)
		{
			if (!list_push(p, &ands, n))
				return NULL;
			n = chain(p, SF_AND, &ands);
			if (n == NULL)
				return NULL;
			ands.count = 0;
		}
		if (tok_is(&p->tok, KW_OR))
		{
			if (ors.count == 0)
				list_start(&ors, n);
			else if (!list_push(p, &ors, n))
				return NULL;
			after_pos = p->tok.pos;
			after_len = 2;
			next_inline(p);
			continue;
		}
		break;
	}
	if (ors.count > 0)
	{
		if (!list_push(p, &ors, n))
			return NULL;
		n = chain(p, SF_OR, &ors);
	}
	return n;
}

/*
 * Set up a parser over a copy of text (see the header comment) and lex the
 * first token.  false on error (err filled in).
 */
static bool
parser_init(Parser *p, ScimArena *arena, const char *text, size_t len,
			const ScimFilterLimits *limits, ScimFilterError *err, const char *what)
{
	p->arena = arena;
	p->text = NULL;
	p->len = len;
	p->pos = 0;
	p->failed = false;
	p->err = err;
	p->tok.kind = TK_EOF;
	p->tok.kw = KW_NONE;
	p->tok.pos = 0;
	p->tok.len = 0;
	p->tok.value = NULL;
	p->tok.simple = false;
	p->max_depth = (limits != NULL && limits->max_depth > 0) ?
		limits->max_depth : SCIM_FILTER_DEFAULT_MAX_DEPTH;
	if (err != NULL)
	{
		err->position = 0;
		err->message[0] = '\0';
	}
	if (limits != NULL && limits->max_length > 0 && len > limits->max_length)
	{
		set_error(p, (int) limits->max_length, "%s is %zu bytes long; the limit is %zu bytes",
				  what, len, limits->max_length);
		return false;
	}
	if (len > (size_t) 0x7fffffff)
	{
		set_error(p, 0, "%s is too long", what);
		return false;
	}
	p->text = scim_arena_alloc_inline(arena, len + LEX_PADDING);
	if (p->text == NULL)
	{
		set_oom(p);
		return false;
	}
	if (len > 0)
		memcpy(p->text, text, len);
	memset(p->text + len, 0, LEX_PADDING);
	next_inline(p);
	return !p->failed;
}

ScimFilterNode *
scim_filter_parse(ScimArena *arena, const char *text, size_t len,
				  const ScimFilterLimits *limits, ScimFilterError *err)
{
	Parser		p;
	ScimFilterNode *root;
	char		w[64];

	if (!parser_init(&p, arena, text, len, limits, err, "the filter"))
		return NULL;
	root = parse_or(&p, 0, NULL);
	if (root == NULL || p.failed)
		return NULL;
	if (p.tok.kind == TK_EOF)
		return root;
	if (p.tok.kind == TK_RPAREN)
		set_error(&p, p.tok.pos, "unmatched \")\" at position %d", p.tok.pos);
	else if (p.tok.kind == TK_RBRACKET)
		set_error(&p, p.tok.pos, "unmatched \"]\" at position %d", p.tok.pos);
	else
		set_error(&p, p.tok.pos, "expected \"and\", \"or\" or the end of the filter %s",
				  where(&p, &p.tok, w, sizeof(w)));
	return NULL;
}

bool
scim_patch_path_parse(ScimArena *arena, const char *text, size_t len,
					  const ScimFilterLimits *limits, ScimPatchPath *out,
					  ScimFilterError *err)
{
	Parser		p;
	Token		path_tok;
	PathCut		cut;
	int			sub_end = -1;
	bool		ok = false;
	char		w[64];
	char		q[QUOTE_MAX + 8];

	memset(out, 0, sizeof(*out));
	if (!parser_init(&p, arena, text, len, limits, err, "the path"))
		return false;
	if (p.tok.kind != TK_WORD)
	{
		if (p.tok.kind == TK_EOF && p.tok.pos == 0)
			set_error(&p, 0, "the path is empty");
		else
			set_error(&p, p.tok.pos, "expected an attribute name %s", where(&p, &p.tok, w, sizeof(w)));
		return false;
	}
	path_tok = p.tok;
	if (!word_to_path(&p, &path_tok, NULL, &out->path, &cut))
		return false;
	next(&p);

	if (p.tok.kind == TK_LBRACKET)
	{
		int			open = p.tok.pos;

		if (out->path.sub != NULL)
		{
			set_error(&p, open, "a value filter must follow an attribute name, not the "
					  "sub-attribute \"%s\" (\"[\" at position %d)",
					  quote_input(q, sizeof(q), p.text + path_tok.pos, path_tok.len), open);
			goto done;
		}
		if (!check_depth(&p, 1, open))
			goto done;
		next(&p);
		/* the lexer is past the "[": the path's names can end in place */
		path_terminate(&p, &cut);
		out->filter = parse_or(&p, 1, &out->path);
		if (out->filter == NULL)
			goto done;
		if (p.tok.kind != TK_RBRACKET)
		{
			set_error(&p, p.tok.pos, "expected \"]\" %s (to close the \"[\" at position %d)",
					  where(&p, &p.tok, w, sizeof(w)), open);
			goto done;
		}
		next(&p);
		if (p.tok.kind == TK_DOT)
		{
			int			dot = p.tok.pos;

			next(&p);
			if (p.tok.kind != TK_WORD || !name_valid(p.text + p.tok.pos, p.tok.len))
			{
				set_error(&p, p.tok.pos, "expected a sub-attribute name after \".\" at position %d",
						  dot);
				goto done;
			}
			out->sub = p.text + p.tok.pos;
			sub_end = p.tok.pos + (int) p.tok.len;
			next(&p);
		}
	}
	if (p.failed)
		goto done;
	if (p.tok.kind != TK_EOF)
	{
		set_error(&p, p.tok.pos, "expected the end of the path %s",
				  where(&p, &p.tok, w, sizeof(w)));
		goto done;
	}
	ok = true;

done:

	/*
	 * Whatever the outcome, the names in *out end in place now: nothing
	 * reads the copy of the input any more.
	 */
	path_terminate(&p, &cut);
	if (sub_end >= 0)
		p.text[sub_end] = '\0';
	return ok;
}

/* ---------------------------------------------------------------------
 * Canonical AST as JSON
 * ---------------------------------------------------------------------
 */
const char *
scim_filter_op_name(ScimFilterOp op)
{
	switch (op)
	{
		case SF_EQ:
			return "eq";
		case SF_NE:
			return "ne";
		case SF_CO:
			return "co";
		case SF_SW:
			return "sw";
		case SF_EW:
			return "ew";
		case SF_GT:
			return "gt";
		case SF_GE:
			return "ge";
		case SF_LT:
			return "lt";
		case SF_LE:
			return "le";
		case SF_PR:
			return "pr";
	}
	return "eq";
}

typedef struct JsonOut
{
	ScimArena  *arena;
	bool		failed;
} JsonOut;

static void
jo_set(JsonOut *jo, SjValue *obj, const char *key, SjValue *value)
{
	if (obj == NULL || value == NULL ||
		!sj_object_append(jo->arena, obj, key, strlen(key), value))
		jo->failed = true;
}

static SjValue *
jo_string(JsonOut *jo, const char *s, size_t len)
{
	SjValue    *v = sj_new_string(jo->arena, s, len);

	if (v == NULL)
		jo->failed = true;
	return v;
}

static void
path_json(JsonOut *jo, SjValue *obj, const ScimAttrPath *path)
{
	size_t		alen = strlen(path->attr);

	if (path->schema != NULL)
		jo_set(jo, obj, "schema", jo_string(jo, path->schema, strlen(path->schema)));
	if (path->sub == NULL)
		jo_set(jo, obj, "attr", jo_string(jo, path->attr, alen));
	else
	{
		size_t		slen = strlen(path->sub);
		char	   *full = scim_arena_alloc(jo->arena, alen + slen + 2);

		if (full == NULL)
		{
			jo->failed = true;
			return;
		}
		memcpy(full, path->attr, alen);
		full[alen] = '.';
		memcpy(full + alen + 1, path->sub, slen + 1);
		jo_set(jo, obj, "attr", jo_string(jo, full, alen + slen + 1));
	}
}

static SjValue *node_json(JsonOut *jo, const ScimFilterNode *node);

/* Flatten a chain of same-kind binary nodes into one "args" array. */
static void
chain_json(JsonOut *jo, SjValue *args, ScimFilterKind kind, const ScimFilterNode *node)
{
	if (jo->failed)
		return;
	if (node->kind == kind)
	{
		chain_json(jo, args, kind, node->u.bin.left);
		chain_json(jo, args, kind, node->u.bin.right);
	}
	else
	{
		SjValue    *v = node_json(jo, node);

		if (v == NULL || !sj_array_append(jo->arena, args, v))
			jo->failed = true;
	}
}

static SjValue *
node_json(JsonOut *jo, const ScimFilterNode *node)
{
	SjValue    *o = sj_new_object(jo->arena);

	if (o == NULL)
	{
		jo->failed = true;
		return NULL;
	}
	switch (node->kind)
	{
		case SF_COMPARE:
			jo_set(jo, o, "op", jo_string(jo, scim_filter_op_name(node->u.cmp.op), 2));
			path_json(jo, o, &node->u.cmp.path);
			if (node->u.cmp.op != SF_PR)
			{
				SjValue    *v = sj_deep_copy(jo->arena, node->u.cmp.value);

				jo_set(jo, o, "value", v);
			}
			break;
		case SF_AND:
		case SF_OR:
			{
				SjValue    *args = sj_new_array(jo->arena);

				jo_set(jo, o, "op", jo_string(jo, node->kind == SF_AND ? "and" : "or",
											  node->kind == SF_AND ? 3 : 2));
				if (args == NULL)
				{
					jo->failed = true;
					break;
				}
				chain_json(jo, args, node->kind, node);
				jo_set(jo, o, "args", args);
			}
			break;
		case SF_NOT:
			jo_set(jo, o, "op", jo_string(jo, "not", 3));
			jo_set(jo, o, "arg", node_json(jo, node->u.not.arg));
			break;
		case SF_VALUEPATH:
			jo_set(jo, o, "op", jo_string(jo, "valuePath", 9));
			path_json(jo, o, &node->u.vp.path);
			jo_set(jo, o, "filter", node_json(jo, node->u.vp.filter));
			break;
	}
	return jo->failed ? NULL : o;
}

SjValue *
scim_filter_to_json(ScimArena *arena, const ScimFilterNode *node)
{
	JsonOut		jo = {arena, false};

	if (node == NULL)
		return NULL;
	return node_json(&jo, node);
}
