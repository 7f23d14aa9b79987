/* Unit tests of lib/proto.c: request parsing and dispatch, and the JSON
 * replies.  Every reply is checked to be one line of valid JSON (strict
 * RFC 8259 grammar, UTF-8 included) starting with {"ok":true or
 * {"ok":false,"error":. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "account.h"
#include "gcshim.h"
#include "proto.h"
#include "stats.h"

/* ---- a small strict JSON validator -------------------------------------- */

struct jp {
	const char *s, *end;
	int depth;
};

static void ws(struct jp *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
		p->s++;
}

static bool value(struct jp *p);

static bool hex4(struct jp *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c;

		if (p->s >= p->end)
			return false;
		c = *p->s++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return false;
	}
	*out = v;
	return true;
}

/* One UTF-8 sequence, shortest form, no surrogates, at most U+10FFFF. */
static bool utf8(struct jp *p)
{
	const unsigned char *u = (const unsigned char *)p->s;
	size_t left = (size_t)(p->end - p->s);
	unsigned cp, n;

	if (u[0] < 0x80)
		n = 1, cp = u[0];
	else if ((u[0] & 0xe0) == 0xc0)
		n = 2, cp = u[0] & 0x1f;
	else if ((u[0] & 0xf0) == 0xe0)
		n = 3, cp = u[0] & 0x0f;
	else if ((u[0] & 0xf8) == 0xf0)
		n = 4, cp = u[0] & 0x07;
	else
		return false;
	if (n > left)
		return false;
	for (unsigned i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return false;
		cp = cp << 6 | (u[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return false;
	p->s += n;
	return true;
}

static bool string(struct jp *p)
{
	if (p->s >= p->end || *p->s != '"')
		return false;
	p->s++;
	while (p->s < p->end) {
		unsigned char c = (unsigned char)*p->s;

		if (c == '"') {
			p->s++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			unsigned cp;

			p->s++;
			if (p->s >= p->end)
				return false;
			switch (*p->s++) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
				break;
			case 'u':
				if (!hex4(p, &cp))
					return false;
				break;
			default:
				return false;
			}
			continue;
		}
		if (!utf8(p))
			return false;
	}
	return false;
}

static bool number(struct jp *p)
{
	const char *s = p->s;

	if (s < p->end && *s == '-')
		s++;
	if (s >= p->end)
		return false;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (s < p->end && *s >= '0' && *s <= '9')
			s++;
	else
		return false;
	if (s < p->end && *s == '.') {
		s++;
		if (s >= p->end || *s < '0' || *s > '9')
			return false;
		while (s < p->end && *s >= '0' && *s <= '9')
			s++;
	}
	if (s < p->end && (*s == 'e' || *s == 'E')) {
		s++;
		if (s < p->end && (*s == '+' || *s == '-'))
			s++;
		if (s >= p->end || *s < '0' || *s > '9')
			return false;
		while (s < p->end && *s >= '0' && *s <= '9')
			s++;
	}
	p->s = s;
	return true;
}

static bool literal(struct jp *p, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(p->end - p->s) < n || memcmp(p->s, w, n))
		return false;
	p->s += n;
	return true;
}

static bool container(struct jp *p, char open, char close, bool keys)
{
	if (++p->depth > 64)
		return false;
	p->s++; /* open */
	(void)open;
	ws(p);
	if (p->s < p->end && *p->s == close) {
		p->s++;
		p->depth--;
		return true;
	}
	for (;;) {
		if (keys) {
			ws(p);
			if (!string(p))
				return false;
			ws(p);
			if (p->s >= p->end || *p->s++ != ':')
				return false;
		}
		if (!value(p))
			return false;
		ws(p);
		if (p->s >= p->end)
			return false;
		if (*p->s == ',') {
			p->s++;
			continue;
		}
		if (*p->s == close) {
			p->s++;
			p->depth--;
			return true;
		}
		return false;
	}
}

static bool value(struct jp *p)
{
	ws(p);
	if (p->s >= p->end)
		return false;
	switch (*p->s) {
	case '{': return container(p, '{', '}', true);
	case '[': return container(p, '[', ']', false);
	case '"': return string(p);
	case 't': return literal(p, "true");
	case 'f': return literal(p, "false");
	case 'n': return literal(p, "null");
	default: return number(p);
	}
}

static bool json_valid(const char *s, size_t n)
{
	struct jp p = { s, s + n, 0 };

	if (!value(&p))
		return false;
	ws(&p);
	return p.s == p.end;
}

/* The validator itself must be able to say no. */
Test(json_validator, self_check)
{
	static const char *good[] = { "{}", "[]", "{\"a\":[1,-2,3.5e+2,true,false,null]}",
				      "\"\\u00e9\\n\"", "{\"a\":{\"b\":\"\xc3\xa9\"}}", "0" };
	static const char *bad[] = { "{", "{\"a\":}", "{\"a\":1,}", "[1,]", "01", "{a:1}",
				     "\"\x01\"", "\"\\x\"", "\"\xff\"", "\"\xc3\"", "{} {}",
				     "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "tru", "-", "1." };

	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		cr_expect(json_valid(good[i], strlen(good[i])), "rejected %s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_expect_not(json_valid(bad[i], strlen(bad[i])), "accepted %s", bad[i]);
}

/* ---- helpers ------------------------------------------------------------- */

static char reply[64 * 1024];

/* Sends one request (copied: the parser writes into its line) and checks
 * the shape every reply must have. */
static const char *ask_cap(struct proto_session *s, const char *req, size_t cap)
{
	char line[PROTO_MAX_REQUEST + 1];
	size_t n;

	cr_assert(strlen(req) <= PROTO_MAX_REQUEST);
	strcpy(line, req);
	memset(reply, 0x5a, sizeof(reply));
	n = proto_handle(s, line, reply, cap);
	cr_assert(n > 0 && n < cap, "request '%s': reply length %zu, buffer %zu", req, n, cap);
	cr_assert_eq(strlen(reply), n, "request '%s': returned %zu, string is %zu",
		     req, n, strlen(reply));
	cr_assert_eq(reply[n - 1], '\n', "request '%s': reply does not end in a newline: %s",
		     req, reply);
	cr_assert_eq(memchr(reply, '\n', n - 1), NULL, "request '%s': reply spans lines: %s",
		     req, reply);
	cr_assert(!strncmp(reply, "{\"ok\":true", 10) ||
		  !strncmp(reply, "{\"ok\":false,\"error\":\"", 21),
		  "request '%s': bad reply prefix: %s", req, reply);
	cr_assert(json_valid(reply, n - 1), "request '%s': reply is not valid JSON: %s",
		  req, reply);
	return reply;
}

static const char *ask(struct proto_session *s, const char *req)
{
	return ask_cap(s, req, sizeof(reply));
}

static bool is_ok(const char *r)
{
	return !strncmp(r, "{\"ok\":true", 10);
}

/* The integer after "key": (the first occurrence). */
static int64_t get_int(const char *r, const char *key)
{
	char pat[80];
	const char *p;
	char *end;
	long long v;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(r, pat);
	cr_assert(p != NULL, "no \"%s\" in %s", key, r);
	errno = 0;
	v = strtoll(p + strlen(pat), &end, 10);
	cr_assert(end != p + strlen(pat) && errno == 0, "\"%s\" is not an integer in %s", key, r);
	return v;
}

static bool has_key(const char *r, const char *key)
{
	char pat[80];

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	return strstr(r, pat) != NULL;
}

static void expect_error(struct proto_session *s, const char *req, const char *needle)
{
	const char *r = ask(s, req);

	cr_expect(!is_ok(r), "request '%s' succeeded: %s", req, r);
	if (needle)
		cr_expect(strstr(r, needle) != NULL, "request '%s': error lacks '%s': %s", req,
			  needle, r);
}

static void greet(struct proto_session *s)
{
	cr_assert(is_ok(ask(s, "hello 1")), "hello failed: %s", reply);
}

static int64_t bad_requests(void)
{
	return atomic_load(&stat_events[EV_ctl_bad_requests]);
}

/* ---- session ------------------------------------------------------------- */

Test(proto, request_before_hello)
{
	struct proto_session s = { 0 };

	expect_error(&s, "get-count", "hello 1");
	expect_error(&s, "stats", "hello 1");
	expect_error(&s, "mem-alloc", "hello 1");
	cr_expect_not(s.greeted);
}

Test(proto, hello)
{
	struct proto_session s = { 0 };
	char want[64];
	const char *r = ask(&s, "hello 1");

	cr_assert(is_ok(r), "%s", r);
	cr_expect(s.greeted);
	cr_expect_eq(get_int(r, "protocol"), 1);
	cr_expect_eq(get_int(r, "pid"), getpid(), "%s", r);
	snprintf(want, sizeof(want), "\"version\":\"%s\"", GCSHIM_VERSION);
	cr_expect(strstr(r, want) != NULL, "%s", r);
	/* Criterion's worker renames itself: compare with the running name */
	snprintf(want, sizeof(want), "\"command\":\"%s\"}", program_invocation_short_name);
	cr_expect(strstr(r, want) != NULL, "%s (want %s)", r, want);
	/* now the other verbs answer */
	cr_expect(is_ok(ask(&s, "get-count")), "%s", reply);
}

Test(proto, hello_wrong_version)
{
	struct proto_session s = { 0 };

	expect_error(&s, "hello 2", "unsupported protocol '2'");
	cr_expect_not(s.greeted);
	expect_error(&s, "hello x", "unsupported protocol");
	expect_error(&s, "hello 01x", NULL);
	expect_error(&s, "hello", "usage: hello PROTOCOL");
	expect_error(&s, "hello 1 1", "usage");
	cr_expect_not(s.greeted);
	expect_error(&s, "get-count", "hello 1");
	/* "+1" and " 1" are the number 1 */
	cr_expect(is_ok(ask(&s, "hello +1")), "%s", reply);
}

Test(proto, unknown_verb)
{
	struct proto_session s = { 0 };

	greet(&s);
	expect_error(&s, "frobnicate", "unknown request 'frobnicate'");
	expect_error(&s, "mem", "unknown request");
	expect_error(&s, "mem-alloc-x", "unknown request");
	expect_error(&s, "memalloc", "unknown request");
}

Test(proto, empty_line)
{
	struct proto_session s = { 0 };

	expect_error(&s, "", "empty request");
	greet(&s);
	expect_error(&s, "", "empty request");
	expect_error(&s, "   \t \r", "empty request");
}

Test(proto, too_many_arguments)
{
	struct proto_session s = { 0 };

	greet(&s);
	/* 8 words are parsed, and rejected by the verb's usage */
	expect_error(&s, "threshold 1 2 3 4 5 6 7", "usage: threshold");
	/* 9 are too many */
	expect_error(&s, "threshold 1 2 3 4 5 6 7 8", "too many arguments");
	expect_error(&s, "a b c d e f g h i j k l", "too many arguments");
}

Test(proto, control_characters)
{
	struct proto_session s = { 0 };

	greet(&s);
	expect_error(&s, "get-count\x01", "control characters");
	expect_error(&s, "get\x1b[0m-count", "control characters");
	expect_error(&s, "threshold\x0b" "5", "control characters");
	/* tab and carriage return separate words */
	cr_expect(is_ok(ask(&s, "threshold\t64M\r")), "%s", reply);
	cr_expect_eq(get_int(reply, "threshold"), 64LL << 20);
}

/* gcshim(7): "a carriage return before the newline is ignored" and
 * "control characters other than tab are refused": a carriage return
 * inside the request is one of those. */
Test(proto, carriage_return_only_at_the_end)
{
	struct proto_session s = { 0 };

	greet(&s);
	cr_expect(is_ok(ask(&s, "get-count\r")), "%s", reply);
	expect_error(&s, "threshold\r64M", "control characters");
	expect_error(&s, "get\rcount", "control characters");
}

/* Whatever a request holds, the error reply is valid JSON: quotes and
 * backslashes are escaped, bytes >= 0x80 are only passed on as UTF-8. */
Test(proto, echoed_text_is_escaped)
{
	struct proto_session s = { 0 };

	greet(&s);
	expect_error(&s, "\"quoted\\verb\"", "unknown request");
	expect_error(&s, "hello \"2\\", "unsupported protocol");
	expect_error(&s, "caf\xc3\xa9", "unknown request 'caf\xc3\xa9'");
	expect_error(&s, "\x7f", "control characters");
}

Test(proto, invalid_utf8_is_not_echoed_raw)
{
	struct proto_session s = { 0 };

	greet(&s);
	expect_error(&s, "\xff\xfe", "unknown request");
	expect_error(&s, "threshold \xc3", "bad threshold");
	/* a lead byte no UTF-8 has, before what would follow a real one */
	expect_error(&s, "o\xf5\x83\x8eq", "unknown request");
	/* overlong forms, a surrogate, a code point past U+10FFFF */
	expect_error(&s, "\xe0\x80\xaf", "unknown request");
	expect_error(&s, "\xf0\x80\x80\xaf", "unknown request");
	expect_error(&s, "\xed\xa0\x80", "unknown request");
	expect_error(&s, "\xf4\x90\x80\x80", "unknown request");
}

/* The error message is cut at 255 bytes; the cut must not split a UTF-8
 * sequence. */
Test(proto, long_request_error_stays_valid)
{
	struct proto_session s = { 0 };
	char req[PROTO_MAX_REQUEST + 1];
	size_t n = 0;

	greet(&s);
	req[n++] = 'a';
	while (n + 2 <= 600) {
		req[n++] = '\xc3';
		req[n++] = '\xa9';
	}
	req[n] = '\0';
	expect_error(&s, req, "unknown request");
	/* a plain ASCII one, cut the same way */
	memset(req, 'x', 1000);
	req[1000] = '\0';
	expect_error(&s, req, "unknown request 'xxx");
}

Test(proto, verbs_any_case_and_underscores)
{
	struct proto_session s = { 0 };

	cr_expect(is_ok(ask(&s, "HeLLo 1")), "%s", reply);
	cr_expect(is_ok(ask(&s, "GET_COUNT")), "%s", reply);
	cr_expect(has_key(reply, "count"));
	cr_expect(is_ok(ask(&s, "Mem_Alloc")), "%s", reply);
	cr_expect(has_key(reply, "mem_alloc"));
	cr_expect(is_ok(ask(&s, "SET_THRESHOLD 7")), "%s", reply);
	cr_expect(is_ok(ask(&s, "get_threshold")), "%s", reply);
	cr_expect(strstr(reply, "\"threshold\":[7,") != NULL, "%s", reply);
	cr_expect(is_ok(ask(&s, "  isenabled  ")), "%s", reply);
}

/* ---- settings ------------------------------------------------------------ */

Test(proto, threshold)
{
	struct proto_session s = { 0 };
	const char *r;

	greet(&s);
	gc_set_threshold_bytes(-1);
	r = ask(&s, "threshold");
	cr_expect(is_ok(r), "%s", r);
	cr_expect_eq(get_int(r, "threshold"), -1);
	cr_expect_not(has_key(r, "previous"), "%s", r);

	r = ask(&s, "threshold 64M");
	cr_expect_str_eq(r, "{\"ok\":true,\"threshold\":67108864,\"previous\":-1}\n");
	cr_expect_eq(atomic_load(&gc.threshold), 67108864);
	cr_expect_eq(gcshim_threshold(GCSHIM_THRESHOLD_QUERY), 67108864);

	r = ask(&s, "threshold 1k");
	cr_expect_str_eq(r, "{\"ok\":true,\"threshold\":1024,\"previous\":67108864}\n");
	r = ask(&s, "threshold off");
	cr_expect_str_eq(r, "{\"ok\":true,\"threshold\":-1,\"previous\":1024}\n");
	r = ask(&s, "threshold 0x100");
	cr_expect_str_eq(r, "{\"ok\":true,\"threshold\":256,\"previous\":-1}\n");
	r = ask(&s, "threshold -1");
	cr_expect_str_eq(r, "{\"ok\":true,\"threshold\":-1,\"previous\":256}\n");
}

Test(proto, threshold_bad)
{
	struct proto_session s = { 0 };
	int64_t before;

	greet(&s);
	gc_set_threshold_bytes(4096);
	before = bad_requests();
	expect_error(&s, "threshold abc", "bad threshold 'abc'");
	expect_error(&s, "threshold -2", "bad threshold");
	expect_error(&s, "threshold 1.5M", "bad threshold");
	expect_error(&s, "threshold 1 2", "usage: threshold");
	cr_expect_eq(atomic_load(&gc.threshold), 4096, "a bad request changed the threshold");
	cr_expect_eq(bad_requests() - before, 4, "ctl_bad_requests rose by %lld",
		     (long long)(bad_requests() - before));
}

Test(proto, gen_thresholds)
{
	struct proto_session s = { 0 };
	const char *r;

	greet(&s);
	r = ask(&s, "set-threshold 700 10 10");
	cr_expect_str_eq(r, "{\"ok\":true,\"threshold\":[700,10,10]}\n");
	r = ask(&s, "get-threshold");
	cr_expect_str_eq(r, "{\"ok\":true,\"threshold\":[700,10,10]}\n");
	r = ask(&s, "set-threshold 5");
	cr_expect_str_eq(r, "{\"ok\":true,\"threshold\":[5,10,10]}\n");
	r = ask(&s, "set-threshold 1 2");
	cr_expect_str_eq(r, "{\"ok\":true,\"threshold\":[1,2,10]}\n");
	r = ask(&s, "set-threshold 0 2147483647 3");
	cr_expect_str_eq(r, "{\"ok\":true,\"threshold\":[0,2147483647,3]}\n");

	long t[3];
	gcshim_get_threshold(t);
	cr_expect(t[0] == 0 && t[1] == INT32_MAX && t[2] == 3);

	expect_error(&s, "set-threshold", "usage: set-threshold");
	expect_error(&s, "set-threshold 1 2 3 4", "usage: set-threshold");
	expect_error(&s, "set-threshold -1", "bad threshold '-1'");
	expect_error(&s, "set-threshold 9 2147483648", "bad threshold '2147483648'");
	expect_error(&s, "set-threshold 1 x", "bad threshold 'x'");
	expect_error(&s, "get-threshold 1", "usage: get-threshold");
	/* nothing of a rejected request was applied */
	r = ask(&s, "get-threshold");
	cr_expect_str_eq(r, "{\"ok\":true,\"threshold\":[0,2147483647,3]}\n");
}

Test(proto, debug)
{
	struct proto_session s = { 0 };
	const char *r;

	greet(&s);
	r = ask(&s, "set-debug stats|saveall");
	cr_expect_str_eq(r, "{\"ok\":true,\"debug\":33}\n");
	cr_expect_eq(gcshim_get_debug(), 33);
	r = ask(&s, "get-debug");
	cr_expect_str_eq(r, "{\"ok\":true,\"debug\":33}\n");
	expect_error(&s, "set-debug 8", "bad debug flags '8'");
	expect_error(&s, "set-debug bogus", "bad debug flags");
	expect_error(&s, "set-debug -1", "bad debug flags");
	expect_error(&s, "set-debug", "usage: set-debug");
	r = ask(&s, "get-debug");
	cr_expect_str_eq(r, "{\"ok\":true,\"debug\":33}\n");
	r = ask(&s, "set-debug LEAK");
	cr_expect_str_eq(r, "{\"ok\":true,\"debug\":38}\n");
	r = ask(&s, "set-debug 0");
	cr_expect_str_eq(r, "{\"ok\":true,\"debug\":0}\n");
	r = ask(&s, "set-debug 39");
	cr_expect_str_eq(r, "{\"ok\":true,\"debug\":39}\n");
}

Test(proto, enable_disable)
{
	struct proto_session s = { 0 };

	greet(&s);
	cr_expect_str_eq(ask(&s, "disable"), "{\"ok\":true,\"enabled\":false}\n");
	cr_expect_eq(gcshim_isenabled(), 0);
	cr_expect_str_eq(ask(&s, "isenabled"), "{\"ok\":true,\"enabled\":false}\n");
	cr_expect_str_eq(ask(&s, "enable"), "{\"ok\":true,\"enabled\":true}\n");
	cr_expect_eq(gcshim_isenabled(), 1);
	cr_expect_str_eq(ask(&s, "isenabled"), "{\"ok\":true,\"enabled\":true}\n");
	expect_error(&s, "enable now", "usage: enable");
}

/* ---- reading ------------------------------------------------------------- */

Test(proto, get_count)
{
	struct proto_session s = { 0 };
	const char *r;
	long a, b, c;
	int64_t want[3];

	greet(&s);
	r = ask(&s, "get-count");
	cr_assert(is_ok(r), "%s", r);
	cr_assert_eq(sscanf(r, "{\"ok\":true,\"count\":[%ld,%ld,%ld]}\n", &a, &b, &c), 3,
		     "%s", r);
	gc_get_counts(want);
	cr_expect(a >= 0 && b >= 0 && c >= 0, "%s", r);
	cr_expect(b == want[1] && c == want[2], "%s", r);
}

Test(proto, mem_alloc_and_free)
{
	struct proto_session s = { 0 };
	const char *r;

	greet(&s);
	r = ask(&s, "mem-alloc");
	cr_expect(is_ok(r));
	cr_expect(get_int(r, "mem_alloc") > 0, "%s", r);
	r = ask(&s, "mem-free");
	cr_expect_str_eq(r, "{\"ok\":true,\"mem_free\":-1}\n", "no heap limit is set");
}

Test(proto, stats_has_every_field)
{
	static const char *names[] = {
#define NAME(name, desc) #name,
		GCSHIM_STAT_FIELDS(NAME)
#undef NAME
	};
	struct proto_session s = { 0 };
	const char *r, *obj, *prev = NULL;

	greet(&s);
	gcshim_set_debug(33);
	r = ask(&s, "stats");
	cr_assert(!strncmp(r, "{\"ok\":true,\"stats\":{", 20), "%s", r);
	obj = r + 19;
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		char pat[80];
		const char *at;

		snprintf(pat, sizeof(pat), "\"%s\":", names[i]);
		at = strstr(obj, pat);
		cr_expect(at != NULL, "stats lacks %s: %s", names[i], r);
		if (!at)
			continue;
		/* declaration order, integer values */
		cr_expect(!prev || at > prev, "%s out of order", names[i]);
		prev = at;
		cr_expect(at[strlen(pat)] == '-' || (at[strlen(pat)] >= '0' && at[strlen(pat)] <= '9'),
			  "%s is not a number: %s", names[i], r);
	}
	cr_expect_eq(get_int(obj, "debug"), 33);
	cr_expect_eq(get_int(obj, "mem_free"), -1);
	cr_expect(get_int(obj, "allocations") > 0);
	cr_expect_str_eq(r + strlen(r) - 3, "}}\n", "%s", r);
	/* the X list and the reply agree on the number of keys */
	size_t keys = 0;
	for (const char *p = obj; (p = strstr(p, "\":")); p += 2)
		keys++;
	cr_expect_eq(keys, sizeof(names) / sizeof(*names), "stats has %zu keys", keys);
	expect_error(&s, "stats now", "usage: stats");
}

Test(proto, bad_requests_are_counted)
{
	struct proto_session s = { 0 };
	int64_t before = bad_requests();

	expect_error(&s, "get-count", NULL);   /* 1: not greeted */
	greet(&s);
	expect_error(&s, "nope", NULL);        /* 2 */
	expect_error(&s, "", NULL);            /* 3 */
	cr_expect(is_ok(ask(&s, "get-count")));
	cr_expect_eq(bad_requests() - before, 3);
}

/* ---- the reply buffer ---------------------------------------------------- */

/* A reply that does not fit becomes a short error that does. */
Test(proto, reply_too_large)
{
	struct proto_session s = { 0 };
	const char *r;

	greet(&s);
	r = ask_cap(&s, "stats", 200);
	cr_expect_str_eq(r, "{\"ok\":false,\"error\":\"reply too large\"}\n");
	r = ask_cap(&s, "get-count", 200);
	cr_expect(is_ok(r), "%s", r);
}

/* Not even the error fits: nothing may be written past the buffer. */
Test(proto, tiny_buffer_is_not_overrun)
{
	struct proto_session s = { 0 };
	char line[32], out[128];
	size_t n;

	greet(&s);
	for (size_t cap = 1; cap <= 40; cap++) {
		strcpy(line, "stats");
		memset(out, 0x5a, sizeof(out));
		n = proto_handle(&s, line, out, cap);
		for (size_t i = cap; i < sizeof(out); i++)
			cr_assert_eq(out[i], 0x5a, "cap %zu: byte %zu written (reply length %zu)",
				     cap, i, n);
		cr_assert(n < cap, "cap %zu: reply length %zu does not fit", cap, n);
	}
}

/* is-tracked takes one address: a list of several, which the parser reads
 * for the verbs that take lists, is refused without being stored. */
Test(proto, is_tracked_refuses_an_address_list)
{
	struct proto_session s = { 0 };

	greet(&s);
	expect_error(&s, "is-tracked 0x10,0x20,0x30,0x40,0x50,0x60,0x70,0x80",
		     "usage: is-tracked ADDR");
	expect_error(&s, "is-tracked 0x10,0x20", "usage: is-tracked ADDR");
	cr_expect(is_ok(ask(&s, "is-tracked 0x10")));
}
