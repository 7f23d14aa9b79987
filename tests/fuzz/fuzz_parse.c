/* libFuzzer harness for the value parsers (lib/platform/parse.c), which
 * read every GCSHIM_* variable at start-up, the arguments of control
 * requests and gcctl's options.  The input, up to its first NUL, goes to
 * every parser; its bytes also choose numbers, which are printed in the
 * forms users write and parsed back.  Besides running clean under the
 * sanitizers, every parser must:
 *   - leave its output alone when it refuses the text;
 *   - give only values within what it documents;
 *   - ignore blanks around the value and the case of its letters, and
 *     refuse a value that is only blanks;
 *   - give back the value that was printed, and refuse, not wrap, a value
 *     too large for it;
 * and parse_distance must agree with the textbook edit distance. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcshim.h"
#include "parse.h"

#define UNSET ((int64_t)0x5a5a5a5a5a5a5a5aLL)
#define TEXT_MAX 160   /* printed values */
#define TOP (UINT64_C(1) << 63)

typedef bool (*parser_fn)(const char *s, int64_t *out);

struct result {
	bool ok;
	int64_t v;
};

static bool any(int64_t v) { return (void)v, true; }
static bool size_ok(int64_t v) { return v >= 0; }
static bool size_or_off_ok(int64_t v) { return v == -1 || v > 0; }
static bool bool_ok(int64_t v) { return v == 0 || v == 1; }
static bool flags_ok(int64_t v) { return v >= 0 && !(v & ~(int64_t)GCSHIM_DEBUG_LEAK &
						     ~(int64_t)GCSHIM_DEBUG_STATS); }
static bool roots_ok(int64_t v) { return v == 0 || v == 1; }
static bool percent_ok(int64_t v) { return v == -1 || (v >= 1 && v <= 100000); }

static bool signal_ok(int64_t v)
{
	return v >= 1 && v <= SIGRTMAX && v != SIGKILL && v != SIGSTOP &&
	       (v < 32 || v >= SIGRTMIN);
}

static const struct parser {
	const char *name;
	parser_fn fn;
	bool (*valid)(int64_t v);
	enum opt_kind kind;
} parsers[] = {
	{ "parse_int", parse_int, any, OPT_INT },
	{ "parse_size", parse_size, size_ok, OPT_SIZE },
	{ "parse_size_or_off", parse_size_or_off, size_or_off_ok, OPT_SIZE_OR_OFF },
	{ "parse_bool", parse_bool, bool_ok, OPT_BOOL },
	{ "parse_flags", parse_flags, flags_ok, OPT_FLAGS },
	{ "parse_signal", parse_signal, signal_ok, OPT_SIGNO },
	{ "parse_roots", parse_roots, roots_ok, OPT_ROOTSET },
	{ "parse_percent_or_on", parse_percent_or_on, percent_ok, OPT_PERCENT_OR_ON },
};
#define NPARSERS (sizeof(parsers) / sizeof(*parsers))

static void fail(const char *what, const char *text, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

static void fail(const char *what, const char *text, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s(\"", what);
	for (const char *p = text; *p; p++)
		fprintf(stderr, *p >= 0x20 && *p < 0x7f && *p != '"' ? "%c" : "\\x%02x",
			(unsigned char)*p);
	fprintf(stderr, "\"): ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* ---- the numbers an input chooses ------------------------------------- */

struct bytes {
	const uint8_t *p;
	size_t n, at;
};

/* Bytes from the input's end backwards, round and round: the text at its
 * start stays readable in the corpus. */
static uint64_t take(struct bytes *b, int nbytes)
{
	uint64_t v = 0;

	for (int i = 0; i < nbytes && b->n; i++, b->at++)
		v = v << 8 | b->p[b->n - 1 - b->at % b->n];
	return v;
}

/* A number of any magnitude: small ones as often as large ones. */
static uint64_t take_magnitude(struct bytes *b)
{
	uint64_t v = take(b, 8);

	return v >> (take(b, 1) % 64);
}

/* ---- the text's own properties ----------------------------------------- */

static struct result run(const struct parser *p, const char *s)
{
	struct result r = { false, UNSET };

	r.ok = p->fn(s, &r.v);
	if (!r.ok && r.v != UNSET)
		fail(p->name, s, "refused the text but changed its output to %" PRId64, r.v);
	if (r.ok && !p->valid(r.v))
		fail(p->name, s, "gave %" PRId64 ", outside what it documents", r.v);
	return r;
}

static void same(const struct parser *p, const char *s, struct result want, const char *t,
		 const char *how)
{
	struct result r = run(p, t);

	if (r.ok != want.ok || (r.ok && r.v != want.v))
		fail(p->name, s, "%s %" PRId64 " (%s) but %s it %" PRId64 " (%s)",
		     "gives", want.v, want.ok ? "accepted" : "refused", how, r.v,
		     r.ok ? "accepted" : "refused");
}

static char *dup_mapped(const char *s, int (*map)(int))
{
	size_t n = strlen(s);
	char *t = malloc(n + 1);

	for (size_t i = 0; i <= n; i++)
		t[i] = (char)map((unsigned char)s[i]);
	return t;
}

static int ascii_upper(int c) { return c >= 'a' && c <= 'z' ? c - 32 : c; }
static int ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static bool blank(const char *s)
{
	return !s[strspn(s, " \t")];
}

static void check_text(const char *s)
{
	size_t n = strlen(s);
	char *padded = malloc(n + 5), *upper = dup_mapped(s, ascii_upper),
	     *lower = dup_mapped(s, ascii_lower);

	memcpy(padded, " \t", 2);
	memcpy(padded + 2, s, n);
	memcpy(padded + 2 + n, "\t ", 3);
	for (size_t i = 0; i < NPARSERS; i++) {
		const struct parser *p = &parsers[i];
		struct result r = run(p, s);

		if (r.ok && blank(s))
			fail(p->name, s, "accepted a blank value as %" PRId64, r.v);
		same(p, s, r, padded, "with blanks around");
		same(p, s, r, upper, "in capitals");
		same(p, s, r, lower, "in small letters");
	}
	free(padded);
	free(upper);
	free(lower);
}

/* parse_kind: the kind's parser, then the range [min, max]. */
static void check_kind(const char *s, struct bytes *b)
{
	int64_t lo = (int64_t)take(b, 8) >> (take(b, 1) % 64);
	int64_t hi = (int64_t)take(b, 8) >> (take(b, 1) % 64);

	for (size_t i = 0; i < NPARSERS; i++) {
		const struct parser *p = &parsers[i];
		struct result r = run(p, s);
		int64_t v = UNSET;
		bool ok = parse_kind(p->kind, s, lo, hi, &v);

		if (ok != (r.ok && r.v >= lo && r.v <= hi) || (ok ? v != r.v : v != UNSET))
			fail("parse_kind", s, "disagrees with %s in [%" PRId64 ", %" PRId64 "]",
			     p->name, lo, hi);
	}
}

/* Triples: values within [0, INT32_MAX], the output untouched when
 * refused, blanks around ignored. */
static void check_triple_text(const char *s)
{
	int64_t t[3] = { UNSET, UNSET, UNSET }, u[3] = { UNSET, UNSET, UNSET };
	size_t n = strlen(s);
	char *padded = malloc(n + 3);
	bool ok = parse_triple(s, t);

	if (ok && blank(s))
		fail("parse_triple", s, "accepted a blank value");
	for (int i = 0; i < 3; i++)
		if (ok ? t[i] != UNSET && (t[i] < 0 || t[i] > INT32_MAX) : t[i] != UNSET)
			fail("parse_triple", s, "%s, value %d is %" PRId64,
			     ok ? "accepted" : "refused", i, t[i]);
	padded[0] = ' ';
	memcpy(padded + 1, s, n);
	memcpy(padded + 1 + n, " ", 2);
	if (parse_triple(padded, u) != ok || memcmp(t, u, sizeof(t)))
		fail("parse_triple", s, "blanks around the value change what it gives");
	free(padded);
}

/* ---- printed, then parsed --------------------------------------------- */

static void expect_value(const struct parser *p, const char *text, bool ok, int64_t want)
{
	struct result r = run(p, text);

	if (r.ok != ok || (ok && r.v != want))
		fail(p->name, text, "%s %" PRId64 ", expected %s %" PRId64,
		     r.ok ? "gave" : "refused it:", r.v, ok ? "" : "a refusal, not", want);
}

static const struct parser *parser(const char *name)
{
	for (size_t i = 0; i < NPARSERS; i++)
		if (!strcmp(parsers[i].name, name))
			return &parsers[i];
	abort();
}

static void check_printed_ints(struct bytes *b)
{
	const struct parser *p = parser("parse_int");
	int64_t v = (int64_t)take(b, 8) >> (take(b, 1) % 64);
	uint64_t u = (uint64_t)v;
	char t[TEXT_MAX];

	snprintf(t, sizeof(t), "%" PRId64, v);
	expect_value(p, t, true, v);
	if (v >= 0)
		snprintf(t, sizeof(t), "+0x%" PRIx64, u);
	else
		snprintf(t, sizeof(t), "-0X%" PRIX64, 0 - u);
	expect_value(p, t, true, v);
	/* one more than the largest, and far beyond */
	snprintf(t, sizeof(t), "%" PRIu64, u | TOP);
	expect_value(p, t, false, 0);
	snprintf(t, sizeof(t), "-%" PRIu64, (u | TOP) == TOP ? TOP + 1 : u | TOP);
	expect_value(p, t, false, 0);
	snprintf(t, sizeof(t), "%" PRIu64 "%u", u | (TOP >> 3), (unsigned)(u % 10));
	expect_value(p, t, false, 0);
}

static void check_printed_sizes(struct bytes *b)
{
	static const struct { const char *suffix; int shift; } units[] = {
		{ "", 0 }, { "B", 0 }, { "k", 10 }, { "K", 10 }, { "KiB", 10 }, { "kb", 10 },
		{ "M", 20 }, { "MiB", 20 }, { "mB", 20 }, { "G", 30 }, { "gib", 30 },
		{ "T", 40 }, { "TB", 40 },
	};
	uint64_t m = take_magnitude(b);
	unsigned k = (unsigned)(take(b, 1) % (sizeof(units) / sizeof(*units)));
	int shift = units[k].shift;
	bool fits = m <= (uint64_t)INT64_MAX >> shift;
	int64_t v = fits ? (int64_t)(m << shift) : 0;
	char t[TEXT_MAX];

	snprintf(t, sizeof(t), "%" PRIu64 "%s", m, units[k].suffix);
	expect_value(parser("parse_size"), t, fits, v);
	expect_value(parser("parse_size_or_off"), t, fits, v ? v : -1);
	if (units[k].suffix[0] != 'B') {   /* 0x1B is hexadecimal 1b */
		snprintf(t, sizeof(t), "0x%" PRIx64 "%s", m, units[k].suffix);
		expect_value(parser("parse_size"), t, fits, v);
	}
}

static void check_printed_percent(struct bytes *b)
{
	const struct parser *p = parser("parse_percent_or_on");
	uint64_t u = take_magnitude(b);
	bool ok = u <= 100000;
	int64_t v = u ? (int64_t)u : -1;
	char t[TEXT_MAX];

	snprintf(t, sizeof(t), "%" PRIu64, u);
	expect_value(p, t, ok, v);
	snprintf(t, sizeof(t), "%" PRIu64 "%%", u);
	expect_value(p, t, ok, v);
}

static void check_printed_signals(struct bytes *b)
{
	const struct parser *p = parser("parse_signal");
	int k = (int)(take(b, 1) % 80);
	uint64_t far = take_magnitude(b);
	char t[TEXT_MAX];

	snprintf(t, sizeof(t), "%d", k);
	expect_value(p, t, signal_ok(k), k);
	snprintf(t, sizeof(t), "SIGRTMIN+%d", k);
	expect_value(p, t, signal_ok(SIGRTMIN + k), SIGRTMIN + k);
	snprintf(t, sizeof(t), "rtmax-%d", k);
	expect_value(p, t, signal_ok(SIGRTMAX - k), SIGRTMAX - k);
	snprintf(t, sizeof(t), "SIGRTMIN+%" PRIu64, far);
	expect_value(p, t, far <= 64 && signal_ok(SIGRTMIN + (int)far), SIGRTMIN + (int)(far % 65));
	snprintf(t, sizeof(t), "SIGRTMAX-%" PRIu64, far);
	expect_value(p, t, far <= 64 && signal_ok(SIGRTMAX - (int)far), SIGRTMAX - (int)(far % 65));
	snprintf(t, sizeof(t), "SIGRTMAX+%" PRIu64, far);
	expect_value(p, t, far == 0, SIGRTMAX);
}

static void check_printed_flags(struct bytes *b)
{
	static const struct { const char *name; int64_t bit; } names[] = {
		{ "stats", GCSHIM_DEBUG_STATS }, { "collectable", GCSHIM_DEBUG_COLLECTABLE },
		{ "UNCOLLECTABLE", GCSHIM_DEBUG_UNCOLLECTABLE }, { "debug_saveall", GCSHIM_DEBUG_SAVEALL },
		{ "Leak", GCSHIM_DEBUG_LEAK }, { "none", 0 },
	};
	const struct parser *p = parser("parse_flags");
	unsigned pick = (unsigned)take(b, 1), seps = (unsigned)take(b, 1);
	int64_t want = 0;
	char t[TEXT_MAX];
	size_t n = 0;

	for (unsigned i = 0; i < 6; i++) {
		if (!(pick >> i & 1))
			continue;
		if (n)
			t[n++] = seps >> i & 1 ? '|' : ',';
		n += (size_t)snprintf(t + n, sizeof(t) - n, "%s", names[i].name);
		want |= names[i].bit;
	}
	t[n] = '\0';
	expect_value(p, t, n > 0, want);
	t[n] = seps & 1 ? ',' : '|';   /* a separator with nothing after it */
	t[n + 1] = '\0';
	expect_value(p, t, false, 0);
	snprintf(t, sizeof(t), "%" PRId64, want);
	expect_value(p, t, true, want);
	snprintf(t, sizeof(t), "%u", pick);
	expect_value(p, t, flags_ok(pick), pick);
}

static void check_printed_triples(struct bytes *b)
{
	int64_t want[3], got[3] = { 7, 8, 9 };
	bool ok = true;
	char t[TEXT_MAX];
	unsigned form = (unsigned)take(b, 1);

	for (int i = 0; i < 3; i++) {
		want[i] = (int64_t)(take(b, 4) >> (take(b, 1) % 33));
		ok = ok && want[i] <= INT32_MAX;
	}
	snprintf(t, sizeof(t), form & 1 ? "%" PRId64 ",%" PRId64 ",%" PRId64 :
			       "%" PRId64 " , %" PRId64 " %" PRId64, want[0], want[1], want[2]);
	if (parse_triple(t, got) != ok || (ok ? memcmp(got, want, sizeof(got)) :
				       got[0] != 7 || got[1] != 8 || got[2] != 9))
		fail("parse_triple", t, "gave %" PRId64 ",%" PRId64 ",%" PRId64, got[0], got[1],
		     got[2]);
	/* one value: the others keep what they held */
	snprintf(t, sizeof(t), "%" PRId64, want[0] & INT32_MAX);
	got[1] = 8;
	got[2] = 9;
	if (!parse_triple(t, got) || got[0] != (want[0] & INT32_MAX) || got[1] != 8 || got[2] != 9)
		fail("parse_triple", t, "did not set only the first value");
	snprintf(t, sizeof(t), "%" PRId64 ",", want[0] & INT32_MAX);
	if (parse_triple(t, got))
		fail("parse_triple", t, "accepted a separator with nothing after it");
}

/* ---- parse_distance ---------------------------------------------------- */

static size_t textbook_distance(const char *a, size_t na, const char *b, size_t nb)
{
	size_t *d = malloc((na + 1) * (nb + 1) * sizeof(*d)), r;

#define D(i, j) d[(i) * (nb + 1) + (j)]
	for (size_t i = 0; i <= na; i++)
		D(i, 0) = i;
	for (size_t j = 0; j <= nb; j++)
		D(0, j) = j;
	for (size_t i = 1; i <= na; i++)
		for (size_t j = 1; j <= nb; j++) {
			size_t best = D(i - 1, j - 1) + (a[i - 1] != b[j - 1]);

			if (D(i - 1, j) + 1 < best)
				best = D(i - 1, j) + 1;
			if (D(i, j - 1) + 1 < best)
				best = D(i, j - 1) + 1;
			D(i, j) = best;
		}
	r = D(na, nb);
#undef D
	free(d);
	return r;
}

static void check_distance(const uint8_t *data, size_t size, struct bytes *b)
{
	size_t cut = size ? (size_t)(take(b, 2) % (size + 1)) : 0;
	const char *a = (const char *)data, *c = a + cut;
	size_t na = cut, nc = size - cut, got;

	if (na > 1024)   /* the cost is na * nc */
		na = 1024;
	got = parse_distance(a, na, c, nc);
	if (nc > PARSE_DISTANCE_MAX ? got != SIZE_MAX :
	    got != textbook_distance(a, na, c, nc)) {
		fprintf(stderr, "parse_distance(%zu bytes, %zu bytes) = %zu, expected %zu\n", na,
			nc, got, nc > PARSE_DISTANCE_MAX ? SIZE_MAX : textbook_distance(a, na, c, nc));
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = strnlen((const char *)data, size);
	char *s = malloc(len + 1);   /* exactly: a read past the NUL is caught */
	struct bytes b = { data, size, 0 };

	memcpy(s, data, len);
	s[len] = '\0';
	check_text(s);
	check_kind(s, &b);
	check_triple_text(s);
	check_printed_ints(&b);
	check_printed_sizes(&b);
	check_printed_percent(&b);
	check_printed_signals(&b);
	check_printed_flags(&b);
	check_printed_triples(&b);
	check_distance(data, size, &b);
	free(s);
	return 0;
}
