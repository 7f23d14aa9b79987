#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Replies are flat; the limit only keeps hostile input off the stack. */
#define MAX_DEPTH 32

struct parser {
	const char *s, *end;
	int depth;
	char *err;
	size_t errcap;
	bool failed;
};

/* Growable byte buffer for decoding strings. */
struct text {
	char *buf;
	size_t len, cap;
};

static bool fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return false;
	p->failed = true;
	va_start(ap, fmt);
	if (p->errcap)
		vsnprintf(p->err, p->errcap, fmt, ap);
	va_end(ap);
	return false;
}

static void skip_space(struct parser *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
		p->s++;
}

static bool at_end(const struct parser *p)
{
	return p->s >= p->end;
}

static bool text_add(struct text *t, const char *bytes, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t cap = (t->len + n + 1) * 2;
		char *buf = realloc(t->buf, cap);

		if (!buf)
			return false;
		t->buf = buf;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, bytes, n);
	t->len += n;
	t->buf[t->len] = '\0';
	return true;
}

static bool text_add_utf8(struct text *t, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return text_add(t, b, n);
}

static bool hex4(struct parser *p, uint32_t *out)
{
	uint32_t v = 0;

	if (p->end - p->s < 4)
		return fail(p, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = *p->s++;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return fail(p, "bad hex digit '%c' in \\u escape", c);
	}
	*out = v;
	return true;
}

/* \uXXXX, with UTF-16 surrogate pairs joined into one code point. */
static bool unicode_escape(struct parser *p, struct text *t)
{
	uint32_t cp, low;

	if (!hex4(p, &cp))
		return false;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail(p, "lone low surrogate \\u%04x", cp);
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (p->end - p->s < 2 || p->s[0] != '\\' || p->s[1] != 'u')
			return fail(p, "high surrogate \\u%04x without its pair", cp);
		p->s += 2;
		if (!hex4(p, &low))
			return false;
		if (low < 0xdc00 || low > 0xdfff)
			return fail(p, "high surrogate \\u%04x without its pair", cp);
		cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
	}
	/* Strings are handed out NUL-terminated: an embedded NUL would cut them. */
	if (cp == 0)
		return fail(p, "\\u0000 in a string");
	return text_add_utf8(t, cp) || fail(p, "out of memory");
}

static bool escape(struct parser *p, struct text *t)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *hit;

	if (at_end(p))
		return fail(p, "unterminated string");
	if (*p->s == 'u') {
		p->s++;
		return unicode_escape(p, t);
	}
	hit = strchr(from, *p->s);
	if (!hit || !*p->s)
		return fail(p, "bad escape '\\%c'", *p->s);
	p->s++;
	return text_add(t, &to[hit - from], 1) || fail(p, "out of memory");
}

/* The opening quote is already consumed. */
static char *parse_string_body(struct parser *p)
{
	struct text t = { 0 };

	if (!text_add(&t, "", 0))
		return fail(p, "out of memory"), NULL;
	for (;;) {
		const char *run = p->s;

		while (p->s < p->end && *p->s != '"' && *p->s != '\\' &&
		       (unsigned char)*p->s >= 0x20)
			p->s++;
		if (!text_add(&t, run, (size_t)(p->s - run))) {
			fail(p, "out of memory");
			break;
		}
		if (at_end(p)) {
			fail(p, "unterminated string");
			break;
		}
		if (*p->s == '"') {
			p->s++;
			return t.buf;
		}
		if ((unsigned char)*p->s < 0x20) {
			fail(p, "control character 0x%02x in a string", (unsigned char)*p->s);
			break;
		}
		p->s++;
		if (!escape(p, &t))
			break;
	}
	free(t.buf);
	return NULL;
}

static bool parse_value(struct parser *p, struct json *v);

static bool parse_int(struct parser *p, struct json *v)
{
	bool neg = *p->s == '-';
	uint64_t limit, n = 0;
	const char *digits;

	if (neg)
		p->s++;
	digits = p->s;
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
		unsigned d = (unsigned)(*p->s++ - '0');

		if (n > (limit - d) / 10)
			return fail(p, "integer out of range");
		n = n * 10 + d;
	}
	if (p->s == digits)
		return fail(p, "expected a digit");
	if (*digits == '0' && p->s - digits > 1)
		return fail(p, "leading zero in a number");
	if (p->s < p->end && (*p->s == '.' || *p->s == 'e' || *p->s == 'E'))
		return fail(p, "only integers are supported");
	v->type = JSON_INT;
	v->num = neg ? (int64_t)(0 - n) : (int64_t)n;
	return true;
}

static bool grow(struct json *v, size_t *cap, bool with_keys)
{
	size_t ncap = *cap ? *cap * 2 : 8;
	struct json *items;

	if (v->count < *cap)
		return true;
	items = realloc(v->items, ncap * sizeof(*items));
	if (!items)
		return false;
	v->items = items;
	if (with_keys) {
		char **keys = realloc(v->keys, ncap * sizeof(*keys));

		if (!keys)
			return false;
		v->keys = keys;
	}
	*cap = ncap;
	return true;
}

/* Shared by arrays and objects: members separated by commas up to close. */
static bool parse_members(struct parser *p, struct json *v, char close)
{
	bool object = v->type == JSON_OBJECT;
	size_t cap = 0;

	skip_space(p);
	if (!at_end(p) && *p->s == close) {
		p->s++;
		return true;
	}
	for (;;) {
		struct json *item;

		if (!grow(v, &cap, object))
			return fail(p, "out of memory");
		item = &v->items[v->count];
		memset(item, 0, sizeof(*item));
		if (object) {
			v->keys[v->count] = NULL;
			skip_space(p);
			if (at_end(p) || *p->s != '"')
				return fail(p, "expected a member name");
			p->s++;
			/* Counted first so that json_free releases the name on failure. */
			v->count++;
			v->keys[v->count - 1] = parse_string_body(p);
			if (!v->keys[v->count - 1])
				return false;
			skip_space(p);
			if (at_end(p) || *p->s++ != ':')
				return fail(p, "expected ':' after a member name");
		} else {
			v->count++;
		}
		if (!parse_value(p, item))
			return false;
		skip_space(p);
		if (at_end(p))
			return fail(p, "unterminated %s", object ? "object" : "array");
		if (*p->s == close) {
			p->s++;
			return true;
		}
		if (*p->s++ != ',')
			return fail(p, "expected ',' or '%c'", close);
	}
}

static bool parse_word(struct parser *p, struct json *v, const char *word, enum json_type type)
{
	size_t n = strlen(word);

	if ((size_t)(p->end - p->s) < n || memcmp(p->s, word, n))
		return fail(p, "unexpected character '%c'", *p->s);
	p->s += n;
	v->type = type;
	return true;
}

static bool parse_nested(struct parser *p, struct json *v, enum json_type type, char close)
{
	bool ok;

	if (++p->depth > MAX_DEPTH)
		return fail(p, "nested deeper than %d levels", MAX_DEPTH);
	p->s++;
	v->type = type;
	ok = parse_members(p, v, close);
	p->depth--;
	return ok;
}

static bool parse_value(struct parser *p, struct json *v)
{
	skip_space(p);
	if (at_end(p))
		return fail(p, "unexpected end of input");
	switch (*p->s) {
	case '{':
		return parse_nested(p, v, JSON_OBJECT, '}');
	case '[':
		return parse_nested(p, v, JSON_ARRAY, ']');
	case '"':
		p->s++;
		v->type = JSON_STRING;
		v->str = parse_string_body(p);
		return v->str != NULL;
	case 't':
		return parse_word(p, v, "true", JSON_TRUE);
	case 'f':
		return parse_word(p, v, "false", JSON_FALSE);
	case 'n':
		return parse_word(p, v, "null", JSON_NULL);
	default:
		if (*p->s == '-' || (*p->s >= '0' && *p->s <= '9'))
			return parse_int(p, v);
		return fail(p, "unexpected character '%c'", *p->s);
	}
}

static void free_contents(struct json *v)
{
	for (size_t i = 0; i < v->count; i++) {
		free_contents(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
}

struct json *json_parse(const char *text, size_t len, char *err, size_t errcap)
{
	struct parser p = { text, text + len, 0, err, errcap, false };
	struct json *v = calloc(1, sizeof(*v));

	if (!v) {
		fail(&p, "out of memory");
		return NULL;
	}
	if (parse_value(&p, v)) {
		skip_space(&p);
		if (at_end(&p))
			return v;
		fail(&p, "unexpected '%c' after the value", *p.s);
	}
	json_free(v);
	return NULL;
}

void json_free(struct json *v)
{
	if (!v)
		return;
	free_contents(v);
	free(v);
}

const struct json *json_get(const struct json *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->count; i++)
		if (!strcmp(obj->keys[i], key))
			return &obj->items[i];
	return NULL;
}

bool json_int(const struct json *v, int64_t *out)
{
	if (!v || v->type != JSON_INT)
		return false;
	*out = v->num;
	return true;
}

void json_put_string(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	putc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			putc(c, f);
	}
	putc('"', f);
}
