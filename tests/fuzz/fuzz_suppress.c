/* libFuzzer harness for leak suppressions in LeakSanitizer's format
 * (lib/inspect/suppress.c): the files the shim reads at start-up
 * (GCSHIM_SUPPRESSIONS) and gcctl for `leaks --suppressions`.  The input
 * is a file, handed over in a buffer of exactly its size.  It is parsed,
 * and its rules are matched against its own lines and against names made
 * from their patterns.  Besides running clean under the sanitizers:
 *   - a rule is the text after "leak:" on its line, blanks at the line's
 *     ends left out, never empty, without NUL or newline, with its line's
 *     number; rules come in file order, never more than there are lines
 *     that hold "leak:";
 *   - supp_parse returns how many errors it reported, one per line at
 *     most, in line order, each a single line of text, and never on a
 *     line that gave a rule;
 *   - with room for k rules, the first k are the same, and each rule left
 *     out is one more error;
 *   - supp_match agrees with a textbook glob matcher given the same
 *     meaning ("*" any run, "^" the start, "$" the end, otherwise
 *     anywhere); a pattern without those characters matches any name that
 *     contains it, "*" any name but the empty one, and nothing matches an
 *     empty name or NULL;
 *   - supp_find gives the first rule that matches the module, else the
 *     function, else the source file. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suppress.h"

#define MAX_CHECKED_RULES 16   /* rules matched against names, per input */
#define MAX_NAMES 24
#define NAME_MAX_LEN 256       /* the reference matcher is quadratic */
#define PATTERN_MAX_LEN (4 * NAME_MAX_LEN)

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* ---- parsing ------------------------------------------------------------ */

struct errors {
	int *line;
	size_t n, cap;
};

static void note_error(int line, const char *why, void *arg)
{
	struct errors *e = arg;

	if (!why || !*why || strchr(why, '\n'))
		fail("line %d: an error message that is not one line of text", line);
	if (e->n && line <= e->line[e->n - 1])
		fail("line %d reported after line %d", line, e->line[e->n - 1]);
	if (e->n == e->cap)
		fail("more errors than lines");
	e->line[e->n++] = line;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static size_t count_lines(const char *buf, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += buf[i] == '\n';
	return n + (len && buf[len - 1] != '\n');
}

/* Lines that hold "leak:" anywhere: no more rules than that. */
static size_t count_leak_lines(const char *buf, size_t len)
{
	size_t n = 0;

	for (const char *s = buf, *end = buf + len, *hit;
	     s < end && (hit = memmem(s, (size_t)(end - s), "leak:", 5)); n++) {
		const char *nl = memchr(hit, '\n', (size_t)(end - hit));

		s = nl ? nl + 1 : end;
	}
	return n;
}

static bool only_blanks(const char *s, const char *end)
{
	for (; s < end; s++)
		if (!blank(*s))
			return false;
	return true;
}

/* The rule is the trimmed text after "leak:" of the line it names; the
 * rule before it ended at *at, on line *line. */
static void check_rule(const char *buf, size_t len, const struct supp_rule *r, int prev_line,
		       const char **at, int *line)
{
	const char *p = r->pattern, *bol = p, *eol = p + r->len;

	if (p < buf + 5 || p + r->len > buf + len || r->len == 0)
		fail("a rule of %zu bytes outside the file, or empty", r->len);
	if (memchr(p, '\n', r->len) || memchr(p, '\0', r->len))
		fail("line %d: a rule holds a newline or a NUL", r->line);
	if (blank(p[r->len - 1]))   /* blanks after "leak:" are the pattern's, as in LSan */
		fail("line %d: a rule with blanks after it", r->line);
	if (memcmp(p - 5, "leak:", 5))
		fail("line %d: a rule not after \"leak:\"", r->line);
	if (p < *at)
		fail("line %d: a rule before the end of the one before", r->line);
	for (; *at < p; (*at)++)
		*line += **at == '\n';
	while (bol > buf && bol[-1] != '\n')
		bol--;
	while (eol < buf + len && *eol != '\n')
		eol++;
	if (*line != r->line || r->line <= prev_line)
		fail("a rule on line %d says line %d (the one before, %d)", *line, r->line,
		     prev_line);
	if (!only_blanks(bol, p - 5) || !only_blanks(p + r->len, eol))
		fail("line %d: the rule is not the whole line's leak: entry", r->line);
	if (r->count || r->bytes)
		fail("line %d: a new rule has counts", r->line);
}

struct parsed {
	struct supp_rule *rules;
	struct supp_list list;
	struct errors err;
	int bad;
};

/* rules and errors in arrays of exactly their room: an overflow is caught */
static void parse(struct parsed *ps, const char *buf, size_t len, size_t cap, size_t lines)
{
	ps->rules = malloc((cap ? cap : 1) * sizeof(*ps->rules));
	ps->list = (struct supp_list){ ps->rules, 0, cap };
	ps->err = (struct errors){ malloc((lines ? lines : 1) * sizeof(int)), 0, lines };
	ps->bad = supp_parse(&ps->list, buf, len, note_error, &ps->err);
	if (ps->list.n > cap || ps->list.rules != ps->rules)
		fail("%zu rules in room for %zu", ps->list.n, cap);
	if (ps->bad < 0 || (size_t)ps->bad != ps->err.n)
		fail("supp_parse returned %d after reporting %zu errors", ps->bad, ps->err.n);
	if (ps->list.n + ps->err.n > lines)
		fail("%zu rules and %zu errors from %zu lines", ps->list.n, ps->err.n, lines);
}

static void release(struct parsed *ps)
{
	free(ps->rules);
	free(ps->err.line);
}

static void check_parse(const char *buf, size_t len, const struct parsed *ps)
{
	const char *at = buf;
	int line = 1;
	size_t e = 0;

	for (size_t i = 0; i < ps->list.n; i++) {
		const struct supp_rule *r = &ps->rules[i];

		check_rule(buf, len, r, i ? ps->rules[i - 1].line : 0, &at, &line);
		while (e < ps->err.n && ps->err.line[e] < r->line)
			e++;
		if (e < ps->err.n && ps->err.line[e] == r->line)
			fail("line %d gave a rule and an error", r->line);
	}
}

/* Room for only k of the n rules: the first k, and n - k more errors. */
static void check_room(const char *buf, size_t len, const struct parsed *all, size_t k,
		       size_t lines)
{
	struct parsed few;

	parse(&few, buf, len, k, lines);
	if (few.list.n != k)
		fail("with room for %zu of %zu rules, %zu rules", k, all->list.n, few.list.n);
	for (size_t i = 0; i < k; i++)
		if (few.rules[i].pattern != all->rules[i].pattern ||
		    few.rules[i].len != all->rules[i].len || few.rules[i].line != all->rules[i].line)
			fail("with room for %zu of %zu rules, rule %zu differs", k, all->list.n, i);
	if (few.err.n != all->err.n + (all->list.n - k))
		fail("with room for %zu of %zu rules, %zu errors instead of %zu", k,
		     all->list.n, few.err.n, all->err.n + (all->list.n - k));
	release(&few);
}

/* ---- matching ----------------------------------------------------------- */

/* Glob with "*" alone, by the usual backtracking to the last star. */
static bool glob(const char *p, size_t pn, const char *s, size_t sn)
{
	size_t i = 0, j = 0, star = SIZE_MAX, mark = 0;

	while (j < sn) {
		if (i < pn && p[i] == '*') {
			star = i++;
			mark = j;
		} else if (i < pn && p[i] == s[j]) {
			i++;
			j++;
		} else if (star != SIZE_MAX) {
			i = star + 1;
			j = ++mark;
		} else {
			return false;
		}
	}
	while (i < pn && p[i] == '*')
		i++;
	return i == pn;
}

/* The pattern as a glob: a star at each end it is not anchored to, and
 * nothing from the first "$" on. */
static bool reference_match(const char *p, size_t pn, const char *s)
{
	static char g[PATTERN_MAX_LEN + 2];
	const char *dollar = memchr(p, '$', pn);
	bool at_start = pn && p[0] == '^';
	size_t sn = s ? strlen(s) : 0, gn = 0;

	if (pn > PATTERN_MAX_LEN)
		abort();
	if (dollar)
		pn = (size_t)(dollar - p);
	if (at_start)
		p++, pn--;
	if (!at_start)
		g[gn++] = '*';
	memcpy(g + gn, p, pn);
	gn += pn;
	if (!dollar)
		g[gn++] = '*';
	return sn > 0 && glob(g, gn, s, sn);
}

struct names {
	char *name[MAX_NAMES];
	size_t n;
};

static void add_name(struct names *ns, const char *s, size_t n)
{
	char *copy;

	if (ns->n == MAX_NAMES)
		return;
	n = strnlen(s, n < NAME_MAX_LEN ? n : NAME_MAX_LEN);
	copy = malloc(n + 1);
	memcpy(copy, s, n);
	copy[n] = '\0';
	ns->name[ns->n++] = copy;
}

/* The file's own lines, as function, file and module names. */
static void names_from_lines(struct names *ns, const char *buf, size_t len)
{
	for (size_t at = 0; at < len && ns->n < MAX_NAMES / 2;) {
		const char *nl = memchr(buf + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - buf - at) : len - at;

		add_name(ns, buf + at, n);
		at += n + 1;
	}
}

static void free_names(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->name[i]);
	ns->n = 0;
}

static bool expect_match(const char *p, size_t pn, const char *s, bool want, const char *why)
{
	bool got = supp_match(p, pn, s);

	if (got != want)
		fail("pattern \"%.*s\" against \"%s\": %s, but %s", (int)pn, p, s ? s : "(null)",
		     got ? "matches" : "does not match", why);
	return got;
}

/* Names made from the pattern: its text without "*", "^" and "$", with
 * text around it where the anchors allow. */
static void check_made_names(const char *p, size_t pn)
{
	static const char *const around[][2] = { { "", "" }, { "lib", ".so.1" }, { "x", "" },
						 { "", "()" } };
	static char s[PATTERN_MAX_LEN + 16];
	bool plain = !memchr(p, '*', pn) && !memchr(p, '^', pn) && !memchr(p, '$', pn);

	for (size_t i = 0; plain && pn <= PATTERN_MAX_LEN && i < sizeof(around) / sizeof(*around);
	     i++) {
		snprintf(s, sizeof(s), "%s%.*s%s", around[i][0], (int)pn, p, around[i][1]);
		expect_match(p, pn, s, true, "a pattern without metacharacters matches a name "
			     "that contains it");
	}
}

static void check_matching(const struct supp_list *l, const char *buf, size_t len)
{
	struct names ns = { .n = 0 };

	names_from_lines(&ns, buf, len);
	for (size_t i = 0; i < l->n && i < MAX_CHECKED_RULES; i++) {
		const struct supp_rule *r = &l->rules[i];

		check_made_names(r->pattern, r->len);
		add_name(&ns, r->pattern, r->len);
	}
	for (size_t i = 0; i < l->n && i < MAX_CHECKED_RULES; i++) {
		const struct supp_rule *r = &l->rules[i];

		expect_match(r->pattern, r->len, NULL, false, "nothing matches NULL");
		expect_match(r->pattern, r->len, "", false, "nothing matches an empty name");
		for (size_t k = 0; k < ns.n && r->len <= PATTERN_MAX_LEN; k++)
			expect_match(r->pattern, r->len, ns.name[k],
				     reference_match(r->pattern, r->len, ns.name[k]),
				     "the reference glob says otherwise");
	}
	for (size_t k = 0; k < ns.n; k++) {
		expect_match("*", 1, ns.name[k], ns.name[k][0] != '\0',
			     "\"*\" matches any name but the empty one");
		expect_match("^*$", 3, ns.name[k], ns.name[k][0] != '\0',
			     "\"^*$\" matches any name but the empty one");
	}
	free_names(&ns);
}

/* supp_find: module first, then function, then file; the first rule in
 * file order that matches. */
static const struct supp_rule *first_match(const struct supp_list *l, const char *name)
{
	for (size_t i = 0; name && i < l->n; i++)
		if (supp_match(l->rules[i].pattern, l->rules[i].len, name))
			return &l->rules[i];
	return NULL;
}

static void check_find(const struct supp_list *l, const char *buf, size_t len)
{
	struct names ns = { .n = 0 };
	const char *fn, *file, *mod;
	const struct supp_rule *want;

	if (l->n > MAX_CHECKED_RULES)
		return;
	names_from_lines(&ns, buf, len);
	for (size_t i = 0; i < ns.n; i++) {
		fn = ns.name[i];
		file = i + 1 < ns.n ? ns.name[i + 1] : NULL;
		mod = i + 2 < ns.n ? ns.name[i + 2] : NULL;
		want = first_match(l, mod);
		if (!want)
			want = first_match(l, fn);
		if (!want)
			want = first_match(l, file);
		if (supp_find(l, fn, file, mod) != want)
			fail("supp_find(\"%s\", \"%s\", \"%s\") is not the first rule matching the "
			     "module, then the function, then the file", fn, file ? file : "(null)",
			     mod ? mod : "(null)");
	}
	free_names(&ns);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);   /* no NUL after it: the length is the end */
	size_t lines = count_lines((const char *)data, size);
	struct parsed all;

	memcpy(buf, data, size);
	/* room for exactly as many rules as lines hold "leak:": a rule more
	 * is an overflow */
	parse(&all, buf, size, count_leak_lines(buf, size), lines);
	check_parse(buf, size, &all);
	if (all.list.n)
		check_room(buf, size, &all, (size_t)data[0] % all.list.n, lines);
	check_matching(&all.list, buf, size);
	check_find(&all.list, buf, size);
	release(&all);
	free(buf);
	return 0;
}
