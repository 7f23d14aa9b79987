/* Parsers of option values and protocol arguments, shared by the library
 * and gcctl so that both accept exactly the same text.  No allocation, no
 * locale, no stdio: the library runs them at start-up and on the control
 * thread. */
#include "parse.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <string.h>
#include <strings.h>

#include "gcshim.h"

static const char *skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* The value without blanks around it, in buf; NULL if it does not fit. */
static const char *trim(const char *s, char *buf, size_t cap)
{
	size_t n;

	s = skip_space(s);
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n >= cap)
		return NULL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return buf;
}

/* Digits only, base 10 or 0x hex, no sign, no overflow. */
static bool parse_u64(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	unsigned base = 10;
	uint64_t v = 0;
	int digits = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++, digits++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	*sp = s;
	*out = v;
	return digits > 0;
}

/* Down to INT64_MIN, which has no positive counterpart. */
bool parse_int(const char *s, int64_t *out)
{
	bool neg;
	uint64_t v;

	s = skip_space(s);
	neg = *s == '-';
	if (neg || *s == '+')
		s++;
	if (!parse_u64(&s, &v) || *skip_space(s) || v > (uint64_t)INT64_MAX + neg)
		return false;
	*out = neg && v ? -(int64_t)(v - 1) - 1 : (int64_t)v;
	return true;
}

/* Sizes are integers (decimal or 0x hex) with an optional binary suffix
 * K, M, G or T, optionally followed by B or iB: "512", "64k", "2GiB". */
bool parse_size(const char *s, int64_t *out)
{
	uint64_t v, mul = 1;

	s = skip_space(s);
	if (!parse_u64(&s, &v))
		return false;
	switch (*s) {
	case 'k': case 'K': mul = 1ULL << 10; s++; break;
	case 'm': case 'M': mul = 1ULL << 20; s++; break;
	case 'g': case 'G': mul = 1ULL << 30; s++; break;
	case 't': case 'T': mul = 1ULL << 40; s++; break;
	}
	if (mul > 1 && (*s == 'i' || *s == 'I'))
		s++;
	if (*s == 'b' || *s == 'B')
		s++;
	if (*skip_space(s) || v > (uint64_t)INT64_MAX / mul)
		return false;
	*out = (int64_t)(v * mul);
	return true;
}

/* A period in bytes, or off: "-1", "off" and "0" all turn it off, as 0
 * does for the heap limit and the generation thresholds. */
bool parse_size_or_off(const char *s, int64_t *out)
{
	char buf[64];
	const char *t = trim(s, buf, sizeof(buf));
	int64_t v;

	if (!t)
		return false;
	if (!strcmp(t, "-1") || !strcasecmp(t, "off")) {
		*out = -1;
		return true;
	}
	if (!parse_size(s, &v))
		return false;
	*out = v ? v : -1;
	return true;
}

bool parse_bool(const char *s, int64_t *out)
{
	static const char *yes[] = { "1", "true", "yes", "on", "enable", "enabled" };
	static const char *no[] = { "0", "false", "no", "off", "disable", "disabled" };
	char buf[64];

	if (!(s = trim(s, buf, sizeof(buf))))
		return false;
	for (unsigned i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
		if (!strcasecmp(s, yes[i]))
			return *out = 1, true;
		if (!strcasecmp(s, no[i]))
			return *out = 0, true;
	}
	return false;
}

/* A number, or names joined by ',' or '|': "stats|saveall". */
bool parse_flags(const char *s, int64_t *out)
{
	static const struct { const char *name; int64_t bit; } names[] = {
		{ "stats", GCSHIM_DEBUG_STATS },
		{ "collectable", GCSHIM_DEBUG_COLLECTABLE },
		{ "uncollectable", GCSHIM_DEBUG_UNCOLLECTABLE },
		{ "saveall", GCSHIM_DEBUG_SAVEALL },
		{ "leak", GCSHIM_DEBUG_LEAK },
		{ "none", 0 },
	};
	int64_t v = 0;
	char buf[64];

	if (!(s = trim(s, buf, sizeof(buf))) || !*s)
		return false;
	if (*s >= '0' && *s <= '9') {
		if (!parse_int(s, &v) || v < 0 ||
		    v & ~(int64_t)GCSHIM_DEBUG_LEAK & ~(int64_t)GCSHIM_DEBUG_STATS)
			return false;
		*out = v;
		return true;
	}
	while (*s) {
		size_t len = strcspn(s, ",|"), n = len;
		const char *p = s;
		bool found = false;

		if (n > 6 && !strncasecmp(p, "debug_", 6))
			p += 6, n -= 6;
		for (unsigned i = 0; i < sizeof(names) / sizeof(*names); i++) {
			if (strlen(names[i].name) == n &&
			    !strncasecmp(p, names[i].name, n)) {
				v |= names[i].bit;
				found = true;
			}
		}
		if (!found)
			return false;
		s += len;
		if (*s && !*++s)
			return false;   /* a separator with nothing after it */
	}
	*out = v;
	return true;
}

/* "t0[,t1[,t2]]": missing values keep what *out already holds. */
bool parse_triple(const char *s, int64_t out[3])
{
	int64_t v[3] = { out[0], out[1], out[2] };
	bool comma = false;
	char part[32];
	char buf[64];

	if (!(s = trim(s, buf, sizeof(buf))) || !*s)
		return false;
	for (int i = 0; i < 3 && *s; i++) {
		size_t len = strcspn(s, ", ");

		if (len == 0 || len >= sizeof(part))
			return false;
		memcpy(part, s, len);
		part[len] = '\0';
		if (!parse_int(part, &v[i]) || v[i] < 0 || v[i] > INT32_MAX)
			return false;
		s += len;
		while (*s == ' ')
			s++;
		comma = *s == ',';   /* one comma between two values, blanks around it */
		if (comma)
			s++;
		while (*s == ' ')
			s++;
	}
	if (*s || comma)   /* more than three, or a comma with nothing after it */
		return false;
	memcpy(out, v, sizeof(v));
	return true;
}

/* A number, a name (SIGUSR2, USR2) or SIGRTMIN+n / SIGRTMAX-n.  Signals
 * that cannot be caught and glibc's own (32, 33) are refused. */
bool parse_signal(const char *s, int64_t *out)
{
	static const struct { const char *name; int sig; } names[] = {
		{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "PWR", SIGPWR },
		{ "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM },
		{ "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "URG", SIGURG },
	};
	int64_t v = -1, off = 0;
	char buf[64];

	if (!(s = trim(s, buf, sizeof(buf))))
		return false;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	if (!strncasecmp(s, "RTMIN", 5) || !strncasecmp(s, "RTMAX", 5)) {
		bool max = s[3] == 'A' || s[3] == 'a';

		s += 5;
		/* an offset beyond every signal is refused before the sum
		 * could overflow */
		if (*s && (!parse_int(s, &off) || (max ? off > 0 : off < 0) ||
			   off < -SIGRTMAX || off > SIGRTMAX))
			return false;
		v = (max ? SIGRTMAX : SIGRTMIN) + off;
	} else if (*s >= '0' && *s <= '9') {
		if (!parse_int(s, &v))
			return false;
	} else {
		for (unsigned i = 0; i < sizeof(names) / sizeof(*names); i++)
			if (!strcasecmp(s, names[i].name))
				v = names[i].sig;
	}
	if (v < 1 || v > SIGRTMAX || v == SIGKILL || v == SIGSTOP ||
	    (v >= 32 && v < SIGRTMIN))
		return false;
	*out = v;
	return true;
}

bool parse_roots(const char *s, int64_t *out)
{
	char buf[64];

	if (!(s = trim(s, buf, sizeof(buf))))
		return false;
	if (!strcasecmp(s, "all"))
		return *out = 0, true;
	if (!strcasecmp(s, "minimal"))
		return *out = 1, true;
	return false;
}

/* A percent ("100", "100%"), "on" for the default, or off ("off", "0",
 * "-1"). */
bool parse_percent_or_on(const char *s, int64_t *out)
{
	char buf[64];
	const char *t = trim(s, buf, sizeof(buf));
	uint64_t u;
	int64_t v;

	if (!t)
		return false;
	if (parse_bool(t, &v) && strcmp(t, "1")) {
		*out = v ? GROWTH_DEFAULT : -1;
		return true;
	}
	if (!strcmp(t, "-1")) {
		*out = -1;
		return true;
	}
	if (!parse_u64(&t, &u) || u > 100000)
		return false;
	if (*t == '%')
		t++;
	if (*skip_space(t))
		return false;
	*out = u ? (int64_t)u : -1;
	return true;
}

const char *parse_kind_expects(enum opt_kind kind)
{
	switch (kind) {
	case OPT_BOOL: return "a boolean (1/0, yes/no, on/off)";
	case OPT_SIZE: return "a size (like 512M or 2G)";
	case OPT_SIZE_OR_OFF: return "a size (like 64M) or -1";
	case OPT_INT: return "an integer";
	case OPT_FLAGS: return "debug flags (a number or names like stats,saveall)";
	case OPT_TRIPLE: return "thresholds t0[,t1[,t2]]";
	case OPT_PATH: return "a path";
	case OPT_SIGNO: return "a signal (like SIGRTMAX-3 or 61)";
	case OPT_ROOTSET: return "all or minimal";
	case OPT_PERCENT_OR_ON: return "a percent (like 100), on or off";
	}
	return "valid";
}

/* A value of any kind but OPT_PATH and OPT_TRIPLE, within [min, max]. */
bool parse_kind(enum opt_kind kind, const char *s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;
	bool ok = false;

	switch (kind) {
	case OPT_BOOL: ok = parse_bool(s, &v); break;
	case OPT_SIZE: ok = parse_size(s, &v); break;
	case OPT_SIZE_OR_OFF: ok = parse_size_or_off(s, &v); break;
	case OPT_INT: ok = parse_int(s, &v); break;
	case OPT_FLAGS: ok = parse_flags(s, &v); break;
	case OPT_SIGNO: ok = parse_signal(s, &v); break;
	case OPT_ROOTSET: ok = parse_roots(s, &v); break;
	case OPT_PERCENT_OR_ON: ok = parse_percent_or_on(s, &v); break;
	case OPT_PATH:
	case OPT_TRIPLE:
		break;
	}
	if (!ok || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Levenshtein distance of two short strings, on the stack: options are
 * read before anything may allocate.  SIZE_MAX when b is too long. */
size_t parse_distance(const char *a, size_t na, const char *b, size_t nb)
{
	size_t row[PARSE_DISTANCE_MAX + 1];

	if (nb > PARSE_DISTANCE_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= nb; j++)
		row[j] = j;
	for (size_t i = 1; i <= na; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= nb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[nb];
}
