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
 * All memory comes from the caller's ScimArena.
 *
 * src/filter_parse.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"

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
	KW_PR,
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
	const char *start;
	size_t		len;
	SjValue    *value;			/* TK_STRING: the decoded string */
	bool		simple;			/* TK_WORD: a plain ATTRNAME (no URN, no sub) */
} Token;

typedef struct Parser
{
	ScimArena  *arena;
	const char *text;
	size_t		len;
	size_t		pos;			/* next byte for the lexer */
	Token		tok;			/* current token */
	int			max_depth;
	bool		failed;
	ScimFilterError *err;
} Parser;

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
#else
#define SCIM_PRINTF(f, a)
#define SCIM_NOINLINE
#endif

static void set_error(Parser *p, int position, const char *fmt,...) SCIM_PRINTF(3, 4);

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

/* " at position N" or " at end of filter (position N)" for a token. */
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
static inline bool
is_digit(unsigned char c)
{
	return CC(c, CC_DIGIT);
}

static inline bool
is_word_start(unsigned char c)
{
	return CC(c, CC_START);
}

static inline bool
is_word_char(unsigned char c)
{
	return CC(c, CC_WORD);
}

/* Which keyword a word is (ASCII case-insensitive), KW_NONE if none. */
static Keyword
classify_word(const char *w, size_t len)
{
	/* |0x20 lower-cases letters; no other word character maps onto one */
	unsigned char a = (unsigned char) w[0] | 0x20;
	unsigned char b = len > 1 ? ((unsigned char) w[1] | 0x20) : 0;

	switch (len)
	{
		case 2:
			switch (a)
			{
				case 'e':
					return b == 'q' ? KW_EQ : b == 'w' ? KW_EW : KW_NONE;
				case 'n':
					return b == 'e' ? KW_NE : KW_NONE;
				case 'c':
					return b == 'o' ? KW_CO : KW_NONE;
				case 's':
					return b == 'w' ? KW_SW : KW_NONE;
				case 'g':
					return b == 't' ? KW_GT : b == 'e' ? KW_GE : KW_NONE;
				case 'l':
					return b == 't' ? KW_LT : b == 'e' ? KW_LE : KW_NONE;
				case 'p':
					return b == 'r' ? KW_PR : KW_NONE;
				case 'o':
					return b == 'r' ? KW_OR : KW_NONE;
			}
			return KW_NONE;
		case 3:
			if (a == 'a' && b == 'n' && ((unsigned char) w[2] | 0x20) == 'd')
				return KW_AND;
			if (a == 'n' && b == 'o' && ((unsigned char) w[2] | 0x20) == 't')
				return KW_NOT;
			return KW_NONE;
		case 4:
			if (sj_strcaseeq(w, 4, "true", 4))
				return KW_TRUE;
			if (sj_strcaseeq(w, 4, "null", 4))
				return KW_NULL;
			return KW_NONE;
		case 5:
			return sj_strcaseeq(w, 5, "false", 5) ? KW_FALSE : KW_NONE;
	}
	return KW_NONE;
}

static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
read_hex4(const char *s, unsigned int *out)
{
	unsigned int v = 0;

	for (int i = 0; i < 4; i++)
	{
		int			h = hex_value((unsigned char) s[i]);

		if (h < 0)
			return false;
		v = (v << 4) | (unsigned int) h;
	}
	*out = v;
	return true;
}

static size_t
encode_utf8(unsigned int cp, char *out)
{
	if (cp < 0x80)
	{
		out[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		out[0] = (char) (0xC0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000)
	{
		out[0] = (char) (0xE0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char) (0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char) (0xF0 | (cp >> 18));
	out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char) (0x80 | (cp & 0x3F));
	return 4;
}

/* Length of the well-formed UTF-8 sequence at s (0 if malformed). */
static size_t
utf8_sequence(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t		n;
	unsigned int cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
	{
		n = 2;
		cp = c & 0x1F;
	}
	else if (c >= 0xE0 && c <= 0xEF)
	{
		n = 3;
		cp = c & 0x0F;
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		n = 4;
		cp = c & 0x07;
	}
	else
		return 0;
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
		(n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return n;
}

/*
 * Strings and numbers are lexed out of line, so that next() stays small
 * and cheap for the common tokens (names, keywords, punctuation).
 */
static void lex_string(Parser *p) SCIM_NOINLINE;
static void lex_number(Parser *p) SCIM_NOINLINE;
static void lex_unexpected(Parser *p) SCIM_NOINLINE;

/* Lex a JSON string starting at the opening quote at p->pos. */
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
	bool		plain;

	/*
	 * Find the closing quote first, so the buffer is sized exactly; the run
	 * of printable ASCII without escapes, the usual whole string, is
	 * skipped a byte per table lookup.
	 */
	for (end = i; end < len && CC(s[end], CC_PLAIN); end++)
		;
	plain = (end < len && s[end] == '"');
	for (; end < len && s[end] != '"'; end++)
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

	if (plain)
	{
		n = end - i;
		memcpy(buf, s + i, n);
		i = end;
	}
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
					n += encode_utf8(cp, buf + n);
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
			size_t		seq = utf8_sequence((const unsigned char *) s + i, end - i);

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
	p->tok.start = s + start;
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

	while (i < p->len && (is_digit((unsigned char) s[i]) || s[i] == '-' || s[i] == '+' ||
						  s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
		i++;
	/* "12abc": a number glued to a name */
	while (i < p->len && is_word_char((unsigned char) s[i]))
		i++;
	if (!sj_number_text_valid(s + start, i - start))
	{
		set_error(p, (int) start, "invalid number \"%s\" at position %d",
				  quote_input(q, sizeof(q), s + start, i - start), (int) start);
		return;
	}
	p->tok.kind = TK_NUMBER;
	p->tok.start = s + start;
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

/* Advance to the next token. */
static void
next(Parser *p)
{
	const char *s = p->text;
	unsigned char c;

	if (p->failed)
	{
		p->tok.kind = TK_EOF;
		return;
	}
	{
		/* a local copy keeps the position in a register */
		size_t		pos = p->pos;
		size_t		len = p->len;

		while (pos < len && CC(s[pos], CC_SPACE))
			pos++;
		p->pos = pos;
	}

	p->tok.kw = KW_NONE;
	p->tok.simple = false;
	p->tok.value = NULL;
	p->tok.pos = (int) p->pos;
	p->tok.start = s + p->pos;
	if (p->pos >= p->len)
	{
		p->tok.kind = TK_EOF;
		return;
	}

	c = (unsigned char) s[p->pos];
	p->tok.len = 1;
	switch (c)
	{
		case '(':
			p->tok.kind = TK_LPAREN;
			p->pos++;
			return;
		case ')':
			p->tok.kind = TK_RPAREN;
			p->pos++;
			return;
		case '[':
			p->tok.kind = TK_LBRACKET;
			p->pos++;
			return;
		case ']':
			p->tok.kind = TK_RBRACKET;
			p->pos++;
			return;
		case '.':
			p->tok.kind = TK_DOT;
			p->pos++;
			return;
		case '"':
			lex_string(p);
			break;
		default:
			if (c == '-' || is_digit(c))
				lex_number(p);
			else if (is_word_start(c))
			{
				size_t		i = p->pos + 1;
				size_t		len = p->len;
				unsigned char all = CC_NAME;

				/* "all" keeps CC_NAME while every later byte is a name byte */
				for (; i < len; i++)
				{
					unsigned char k = cclass[(unsigned char) s[i]];

					if (!(k & CC_WORD))
						break;
					all &= k;
				}
				p->tok.kind = TK_WORD;
				p->tok.len = i - p->pos;
				p->tok.kw = classify_word(s + p->pos, p->tok.len);
				p->tok.simple = (all & CC_NAME) != 0;
				p->pos = i;
			}
			else
				lex_unexpected(p);
			break;
	}
	if (p->failed)
		p->tok.kind = TK_EOF;
}

static inline bool
tok_is(const Token *t, Keyword kw)
{
	return t->kind == TK_WORD && t->kw == kw;
}

static inline bool
tok_compare_op(const Token *t, ScimFilterOp *op)
{
	if (t->kind != TK_WORD || t->kw < KW_EQ || t->kw > KW_LE)
		return false;
	*op = compare_ops[t->kw - KW_EQ];
	return true;
}

/* ---------------------------------------------------------------------
 * Attribute paths
 * ---------------------------------------------------------------------
 */

/* ATTRNAME = (ALPHA / "$") *(ALPHA / DIGIT / "_" / "-") */
static bool
name_valid(const char *s, size_t n)
{
	if (n == 0 || !is_word_start((unsigned char) s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!CC(s[i], CC_NAME))
			return false;
	return true;
}

/*
 * Split a TK_WORD into [schema ":"] attr ["." sub].  vp is the enclosing
 * value filter's attribute, or NULL outside one.
 */
static bool
word_to_path(Parser *p, const Token *t, const ScimAttrPath *vp, ScimAttrPath *out)
{
	const char *w = t->start;
	size_t		len = t->len;
	size_t		colon = len;
	size_t		rest;
	size_t		dot = 0;
	int			ndots = 0;
	char		q[QUOTE_MAX + 8];

	memset(out, 0, sizeof(*out));
	if (t->simple)
	{
		/* the common case: a plain attribute name, already validated */
		out->attr = scim_arena_strndup(p->arena, w, len);
		if (out->attr == NULL)
			goto oom;
		return true;
	}
	for (size_t i = 0; i < len; i++)
		if (w[i] == ':')
			colon = i;
	rest = (colon == len) ? 0 : colon + 1;
	for (size_t i = rest; i < len; i++)
		if (w[i] == '.')
		{
			if (ndots++ == 0)
				dot = i;
		}

	if (colon != len && rest == len)
	{
		set_error(p, t->pos, "expected an attribute name after the schema URN in \"%s\" at position %d",
				  quote_input(q, sizeof(q), w, len), t->pos);
		return false;
	}
	if (ndots > 1)
	{
		set_error(p, t->pos, "attribute path \"%s\" has more than one sub-attribute at position %d",
				  quote_input(q, sizeof(q), w, len), t->pos);
		return false;
	}
	if (ndots == 1 ? (!name_valid(w + rest, dot - rest) || !name_valid(w + dot + 1, len - dot - 1))
		: !name_valid(w + rest, len - rest))
	{
		set_error(p, t->pos, "invalid attribute path \"%s\" at position %d",
				  quote_input(q, sizeof(q), w, len), t->pos);
		return false;
	}
	if (vp != NULL && (colon != len || ndots > 0))
	{
		char		q2[QUOTE_MAX + 8];

		set_error(p, t->pos, "inside the value filter of \"%s\", \"%s\" must be a plain "
				  "sub-attribute name (position %d)",
				  quote_input(q2, sizeof(q2), vp->attr, strlen(vp->attr)),
				  quote_input(q, sizeof(q), w, len), t->pos);
		return false;
	}

	if (colon != len)
	{
		out->schema = scim_arena_strndup(p->arena, w, colon);
		if (out->schema == NULL)
			goto oom;
	}
	if (ndots == 1)
	{
		out->attr = scim_arena_strndup(p->arena, w + rest, dot - rest);
		out->sub = scim_arena_strndup(p->arena, w + dot + 1, len - dot - 1);
		if (out->attr == NULL || out->sub == NULL)
			goto oom;
	}
	else
	{
		out->attr = scim_arena_strndup(p->arena, w + rest, len - rest);
		if (out->attr == NULL)
			goto oom;
	}
	return true;

oom:
	set_oom(p);
	return false;
}

/* ---------------------------------------------------------------------
 * Parser
 * ---------------------------------------------------------------------
 */
static ScimFilterNode *
new_node(Parser *p, ScimFilterKind kind, int position)
{
	ScimFilterNode *n = scim_arena_alloc0(p->arena, sizeof(ScimFilterNode));

	if (n == NULL)
	{
		set_oom(p);
		return NULL;
	}
	n->kind = kind;
	n->position = position;
	return n;
}

static bool
check_depth(Parser *p, int depth, int position)
{
	if (depth > p->max_depth)
	{
		set_error(p, position, "filter is nested more than %d levels deep at position %d",
				  p->max_depth, position);
		return false;
	}
	return true;
}

/* Build a balanced tree of "kind" nodes over items[lo, hi). */
static ScimFilterNode *
balance(Parser *p, ScimFilterKind kind, ScimFilterNode **items, size_t lo, size_t hi)
{
	ScimFilterNode *n;
	size_t		mid;

	if (hi - lo == 1)
		return items[lo];
	mid = lo + (hi - lo) / 2;
	n = new_node(p, kind, items[lo]->position);
	if (n == NULL)
		return NULL;
	n->u.bin.left = balance(p, kind, items, lo, mid);
	n->u.bin.right = balance(p, kind, items, mid, hi);
	if (n->u.bin.left == NULL || n->u.bin.right == NULL)
		return NULL;
	return n;
}

/* Operand list that grows through the arena. */
typedef struct NodeList
{
	ScimFilterNode *local[8];
	ScimFilterNode **items;
	size_t		count;
	size_t		cap;
} NodeList;

static bool
list_push(Parser *p, NodeList *l, ScimFilterNode *n)
{
	if (l->items == NULL)
	{
		l->items = l->local;
		l->cap = sizeof(l->local) / sizeof(l->local[0]);
	}
	if (l->count == l->cap)
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
	}
	l->items[l->count++] = n;
	return true;
}

static SjValue *
parse_value(Parser *p, const Token *op_tok)
{
	Token	   *t = &p->tok;
	SjValue    *v = NULL;
	char		w[64];
	char		q[QUOTE_MAX + 8];
	char		q2[QUOTE_MAX + 8];

	switch (t->kind)
	{
		case TK_STRING:
			v = t->value;
			break;
		case TK_NUMBER:
			v = sj_new_number(p->arena, t->start, t->len);
			if (v == NULL)
				set_oom(p);
			break;
		case TK_WORD:
			if (tok_is(t, KW_TRUE) || tok_is(t, KW_FALSE))
				v = sj_new_bool(p->arena, tok_is(t, KW_TRUE));
			else if (tok_is(t, KW_NULL))
				v = sj_new_null(p->arena);
			else
			{
				set_error(p, t->pos, "expected a value (a string, number, true, false or null) "
						  "after \"%s\" %s; found \"%s\"",
						  quote_input(q, sizeof(q), op_tok->start, op_tok->len),
						  where(p, t, w, sizeof(w)),
						  quote_input(q2, sizeof(q2), t->start, t->len));
				return NULL;
			}
			if (v == NULL)
				set_oom(p);
			break;
		default:
			set_error(p, t->pos, "expected a value (a string, number, true, false or null) "
					  "after \"%s\" %s",
					  quote_input(q, sizeof(q), op_tok->start, op_tok->len),
					  where(p, t, w, sizeof(w)));
			return NULL;
	}
	if (v != NULL)
		next(p);
	return v;
}

/* attrPath "pr" / attrPath compareOp compValue / attrPath "[" valFilter "]" */
static ScimFilterNode *
parse_attr_exp(Parser *p, int depth, const ScimAttrPath *vp)
{
	Token		path_tok = p->tok;
	ScimAttrPath path;
	ScimFilterNode *n;
	ScimFilterOp op;
	char		w[64];
	char		q[QUOTE_MAX + 8];

	/*
	 * The node is allocated before its kind is known (comparison or value
	 * filter); a plain attribute name is stored right behind it, in the same
	 * allocation.
	 */
	if (path_tok.simple)
	{
		n = scim_arena_alloc(p->arena, sizeof(ScimFilterNode) + path_tok.len + 1);
		if (n == NULL)
		{
			set_oom(p);
			return NULL;
		}
		memset(n, 0, sizeof(ScimFilterNode));
		memcpy(n + 1, path_tok.start, path_tok.len);
		((char *) (n + 1))[path_tok.len] = '\0';
		path.schema = NULL;
		path.attr = (const char *) (n + 1);
		path.sub = NULL;
	}
	else
	{
		if (!word_to_path(p, &path_tok, vp, &path))
			return NULL;
		n = new_node(p, SF_COMPARE, path_tok.pos);
		if (n == NULL)
			return NULL;
	}
	n->position = path_tok.pos;
	next(p);

	if (p->tok.kind == TK_LBRACKET)
	{
		int			open = p->tok.pos;

		if (vp != NULL)
		{
			set_error(p, open, "value filters cannot be nested (\"[\" at position %d)", open);
			return NULL;
		}
		if (path.sub != NULL)
		{
			set_error(p, open, "a value filter must follow an attribute name, not the "
					  "sub-attribute \"%s\" (\"[\" at position %d)",
					  quote_input(q, sizeof(q), path_tok.start, path_tok.len), open);
			return NULL;
		}
		if (!check_depth(p, depth + 1, open))
			return NULL;
		n->kind = SF_VALUEPATH;
		n->u.vp.path = path;
		next(p);
		n->u.vp.filter = parse_or(p, depth + 1, &n->u.vp.path);
		if (n->u.vp.filter == NULL)
			return NULL;
		if (p->tok.kind != TK_RBRACKET)
		{
			set_error(p, p->tok.pos, "expected \"]\" %s (to close the \"[\" at position %d)",
					  where(p, &p->tok, w, sizeof(w)), open);
			return NULL;
		}
		next(p);
		if (p->tok.kind == TK_DOT)
		{
			set_error(p, p->tok.pos, "unexpected \".\" after a value filter at position %d; a "
					  "sub-attribute may follow \"]\" only in a PATCH path", p->tok.pos);
			return NULL;
		}
		return n;
	}

	n->kind = SF_COMPARE;
	n->u.cmp.path = path;
	if (tok_is(&p->tok, KW_PR))
	{
		n->u.cmp.op = SF_PR;
		n->u.cmp.value = NULL;
		next(p);
		return n;
	}

	if (tok_compare_op(&p->tok, &op))
	{
		Token		op_tok = p->tok;

		n->u.cmp.op = op;
		next(p);
		n->u.cmp.value = parse_value(p, &op_tok);
		if (n->u.cmp.value == NULL)
			return NULL;
		return n;
	}

	set_error(p, p->tok.pos, "expected a comparison operator after \"%s\" %s",
			  quote_input(q, sizeof(q), path_tok.start, path_tok.len),
			  where(p, &p->tok, w, sizeof(w)));
	return NULL;
}

/* Whether the next token after the current one is a compare operator or "pr". */
static bool
next_is_operator(Parser *p)
{
	size_t		save_pos = p->pos;
	Token		save_tok = p->tok;
	ScimFilterOp op;
	bool		result;
	ScimFilterError save_err;

	if (p->err != NULL)
		save_err = *p->err;
	next(p);
	result = !p->failed && (tok_compare_op(&p->tok, &op) || tok_is(&p->tok, KW_PR) ||
							p->tok.kind == TK_LBRACKET);
	/* the lexer is deterministic: rewinding and lexing again is exact */
	p->failed = false;
	p->pos = save_pos;
	p->tok = save_tok;
	if (p->err != NULL)
		*p->err = save_err;
	return result;
}

/* unary = "not" "(" orExp ")" / "(" orExp ")" / attrExp */
static ScimFilterNode *
parse_unary(Parser *p, int depth, const ScimAttrPath *vp, const Token *after)
{
	char		w[64];
	char		q[QUOTE_MAX + 8];

	if (p->tok.kind == TK_LPAREN)
	{
		int			open = p->tok.pos;
		ScimFilterNode *inner;

		if (!check_depth(p, depth + 1, open))
			return NULL;
		next(p);
		inner = parse_or(p, depth + 1, vp);
		if (inner == NULL)
			return NULL;
		if (p->tok.kind != TK_RPAREN)
		{
			set_error(p, p->tok.pos, "expected \")\" %s (to close the \"(\" at position %d)",
					  where(p, &p->tok, w, sizeof(w)), open);
			return NULL;
		}
		next(p);
		return inner;
	}

	if (tok_is(&p->tok, KW_NOT) && !next_is_operator(p))
	{
		Token		not_tok = p->tok;
		ScimFilterNode *n;
		int			open;

		next(p);
		if (p->tok.kind != TK_LPAREN)
		{
			set_error(p, p->tok.pos, "expected \"(\" after \"not\" %s",
					  where(p, &p->tok, w, sizeof(w)));
			return NULL;
		}
		open = p->tok.pos;
		if (!check_depth(p, depth + 1, open))
			return NULL;
		n = new_node(p, SF_NOT, not_tok.pos);
		if (n == NULL)
			return NULL;
		next(p);
		n->u.not.arg = parse_or(p, depth + 1, vp);
		if (n->u.not.arg == NULL)
			return NULL;
		if (p->tok.kind != TK_RPAREN)
		{
			set_error(p, p->tok.pos, "expected \")\" %s (to close the \"(\" at position %d)",
					  where(p, &p->tok, w, sizeof(w)), open);
			return NULL;
		}
		next(p);
		return n;
	}

	if (p->tok.kind == TK_WORD)
		return parse_attr_exp(p, depth, vp);

	if (after != NULL)
		set_error(p, p->tok.pos, "expected an attribute name, \"(\" or \"not\" after \"%s\" %s",
				  quote_input(q, sizeof(q), after->start, after->len),
				  where(p, &p->tok, w, sizeof(w)));
	else if (p->tok.kind == TK_EOF && p->tok.pos == 0)
		set_error(p, 0, "the filter is empty");
	else
		set_error(p, p->tok.pos, "expected an attribute name, \"(\" or \"not\" %s",
				  where(p, &p->tok, w, sizeof(w)));
	return NULL;
}

/* andExp = unary *("and" unary) */
static ScimFilterNode *
parse_and(Parser *p, int depth, const ScimAttrPath *vp, const Token *after)
{
	NodeList	list;
	ScimFilterNode *n = parse_unary(p, depth, vp, after);

	list.items = NULL;
	list.count = list.cap = 0;
	if (n == NULL)
		return NULL;
	if (!tok_is(&p->tok, KW_AND))
		return n;
	if (!list_push(p, &list, n))
		return NULL;
	while (tok_is(&p->tok, KW_AND))
	{
		Token		kw = p->tok;

		next(p);
		n = parse_unary(p, depth, vp, &kw);
		if (n == NULL || !list_push(p, &list, n))
			return NULL;
	}
	return balance(p, SF_AND, list.items, 0, list.count);
}

/* orExp = andExp *("or" andExp) */
static ScimFilterNode *
parse_or(Parser *p, int depth, const ScimAttrPath *vp)
{
	NodeList	list;
	ScimFilterNode *n = parse_and(p, depth, vp, NULL);

	list.items = NULL;
	list.count = list.cap = 0;
	if (n == NULL)
		return NULL;
	if (!tok_is(&p->tok, KW_OR))
		return n;
	if (!list_push(p, &list, n))
		return NULL;
	while (tok_is(&p->tok, KW_OR))
	{
		Token		kw = p->tok;

		next(p);
		n = parse_and(p, depth, vp, &kw);
		if (n == NULL || !list_push(p, &list, n))
			return NULL;
	}
	return balance(p, SF_OR, list.items, 0, list.count);
}

static bool
parser_init(Parser *p, ScimArena *arena, const char *text, size_t len,
			const ScimFilterLimits *limits, ScimFilterError *err, const char *what)
{
	memset(p, 0, sizeof(*p));
	p->arena = arena;
	p->text = text;
	p->len = len;
	p->err = err;
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
	next(p);
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
	if (p.tok.kind == TK_RPAREN)
	{
		set_error(&p, p.tok.pos, "unmatched \")\" at position %d", p.tok.pos);
		return NULL;
	}
	if (p.tok.kind == TK_RBRACKET)
	{
		set_error(&p, p.tok.pos, "unmatched \"]\" at position %d", p.tok.pos);
		return NULL;
	}
	if (p.tok.kind != TK_EOF)
	{
		set_error(&p, p.tok.pos, "expected \"and\", \"or\" or the end of the filter %s",
				  where(&p, &p.tok, w, sizeof(w)));
		return NULL;
	}
	return root;
}

bool
scim_patch_path_parse(ScimArena *arena, const char *text, size_t len,
					  const ScimFilterLimits *limits, ScimPatchPath *out,
					  ScimFilterError *err)
{
	Parser		p;
	Token		path_tok;
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
	if (!word_to_path(&p, &path_tok, NULL, &out->path))
		return false;
	next(&p);

	if (p.tok.kind == TK_LBRACKET)
	{
		int			open = p.tok.pos;

		if (out->path.sub != NULL)
		{
			set_error(&p, open, "a value filter must follow an attribute name, not the "
					  "sub-attribute \"%s\" (\"[\" at position %d)",
					  quote_input(q, sizeof(q), path_tok.start, path_tok.len), open);
			return false;
		}
		if (!check_depth(&p, 1, open))
			return false;
		next(&p);
		out->filter = parse_or(&p, 1, &out->path);
		if (out->filter == NULL)
			return false;
		if (p.tok.kind != TK_RBRACKET)
		{
			set_error(&p, p.tok.pos, "expected \"]\" %s (to close the \"[\" at position %d)",
					  where(&p, &p.tok, w, sizeof(w)), open);
			return false;
		}
		next(&p);
		if (p.tok.kind == TK_DOT)
		{
			int			dot = p.tok.pos;

			next(&p);
			if (p.tok.kind != TK_WORD || !name_valid(p.tok.start, p.tok.len))
			{
				set_error(&p, p.tok.pos, "expected a sub-attribute name after \".\" at position %d",
						  dot);
				return false;
			}
			out->sub = scim_arena_strndup(arena, p.tok.start, p.tok.len);
			if (out->sub == NULL)
			{
				set_oom(&p);
				return false;
			}
			next(&p);
		}
	}
	if (p.failed)
		return false;
	if (p.tok.kind != TK_EOF)
	{
		set_error(&p, p.tok.pos, "expected the end of the path %s",
				  where(&p, &p.tok, w, sizeof(w)));
		return false;
	}
	return true;
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
