#include "suppress.h"

#include <string.h>

/* Other sanitizers' types, which a shared file may hold: not ours, not
 * errors either. */
static const char *const other_types[] = {
	"interceptor_name", "interceptor_via_fun", "interceptor_via_lib", "odr_violation",
	"race", "race_top", "mutex", "thread", "signal", "deadlock", "called_from_lib",
	"vptr_check", "function", "alloc_dealloc_mismatch",
};

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_other_type(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(other_types) / sizeof(*other_types); i++)
		if (strlen(other_types[i]) == n && !memcmp(other_types[i], s, n))
			return true;
	return false;
}

/* The rule of one line with its blanks trimmed; the reason when it is
 * malformed, NULL when it is fine (a rule added, or nothing to add). */
static const char *parse_line(struct supp_list *l, const char *s, size_t n, int line)
{
	const char *colon = memchr(s, ':', n);

	if (n == 0 || s[0] == '#')
		return NULL;
	if (memchr(s, '\0', n))
		return "a NUL byte in the line";
	if (!colon)
		return "expected TYPE:PATTERN, like leak:libfoo.so";
	if (colon - s != 4 || memcmp(s, "leak", 4))
		return is_other_type(s, (size_t)(colon - s)) ? NULL :
		       "unknown suppression type (this file is read for leak: lines)";
	if (colon + 1 == s + n)
		return "empty pattern after leak:";
	if (l->n == l->cap)
		return "too many suppressions; left out";
	l->rules[l->n++] = (struct supp_rule){ colon + 1, (size_t)(s + n - colon - 1), line, 0, 0 };
	return NULL;
}

int supp_parse(struct supp_list *l, const char *buf, size_t len, supp_error_fn err, void *arg)
{
	int bad = 0, line = 0;

	for (size_t at = 0; at < len; line++) {
		const char *s = buf + at, *nl = memchr(s, '\n', len - at);
		size_t n = nl ? (size_t)(nl - s) : len - at;
		const char *why;

		at += n + 1;
		while (n && blank(*s))
			s++, n--;
		while (n && blank(s[n - 1]))
			n--;
		if ((why = parse_line(l, s, n, line + 1))) {
			bad++;
			if (err)
				err(line + 1, why, arg);
		}
	}
	return bad;
}

/* Where the first occurrence of c[0..cn) in s[from..sn) starts, or -1. */
static long find(const char *s, size_t from, size_t sn, const char *c, size_t cn)
{
	for (size_t i = from; i + cn <= sn; i++)
		if (!memcmp(s + i, c, cn))
			return (long)i;
	return -1;
}

/* The pattern's pieces between stars are found one after the other,
 * each as early as it can be: the first at the start when the pattern is
 * anchored there, the last at the end when it is anchored there.  As in
 * LeakSanitizer, a "$" ends the pattern wherever it stands. */
bool supp_match(const char *p, size_t pn, const char *s)
{
	const char *dollar = memchr(p, '$', pn);
	bool at_start = pn && p[0] == '^', at_end = dollar != NULL;
	size_t sn = s ? strlen(s) : 0, at = 0;

	if (!sn)
		return false;
	if (at_end)
		pn = (size_t)(dollar - p);
	if (at_start)
		p++, pn--;
	for (;;) {
		const char *star = memchr(p, '*', pn);
		size_t cn = star ? (size_t)(star - p) : pn;
		long hit;

		if (!star && at_end)
			return cn <= sn - at && (!at_start || cn == sn) &&
			       !memcmp(s + sn - cn, p, cn);
		hit = find(s, at, sn, p, cn);
		if (hit < 0 || (at_start && hit != 0))
			return false;
		if (!star)
			return true;
		at = (size_t)hit + cn;
		p += cn + 1;
		pn -= cn + 1;
		at_start = false;
	}
}

static struct supp_rule *match_one(const struct supp_list *l, const char *name)
{
	for (size_t i = 0; name && i < l->n; i++)
		if (supp_match(l->rules[i].pattern, l->rules[i].len, name))
			return &l->rules[i];
	return NULL;
}

/* Module first, then function, then file, as LeakSanitizer looks. */
struct supp_rule *supp_find(const struct supp_list *l, const char *function, const char *file,
			    const char *module)
{
	struct supp_rule *r = match_one(l, module);

	if (!r)
		r = match_one(l, function);
	if (!r)
		r = match_one(l, file);
	return r;
}
