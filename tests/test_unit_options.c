/* Unit tests of lib/platform/options.c: the value parsers shared with the control
 * protocol, and options_load() over a synthetic environment. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcshim.h"
#include "options.h"

int unit_spawn(const char *mode, const char *const *extra, char *out, size_t cap);

/* ---- parse_size ---------------------------------------------------------- */

struct size_case {
	const char *in;
	int64_t want;
};

static const struct size_case good_sizes[] = {
	{ "0", 0 },
	{ "512", 512 },
	{ "64k", 64 << 10 },
	{ "64K", 64 << 10 },
	{ "1M", 1 << 20 },
	{ "2G", 2LL << 30 },
	{ "1T", 1LL << 40 },
	{ "3MiB", 3 << 20 },
	{ "10MB", 10 << 20 },
	{ " 5M", 5 << 20 },
	{ "0x10", 16 },
	{ "0X1f", 31 },
	{ "7b", 7 },
	{ "4kib", 4096 },
	{ "9223372036854775807", INT64_MAX },
	{ "8388607T", 8388607LL << 40 },
};

Test(parse_size, accepts)
{
	for (size_t i = 0; i < sizeof(good_sizes) / sizeof(*good_sizes); i++) {
		int64_t v = -12345;

		cr_expect(parse_size(good_sizes[i].in, &v), "parse_size(\"%s\") failed",
			  good_sizes[i].in);
		cr_expect_eq(v, good_sizes[i].want, "parse_size(\"%s\") = %lld, want %lld",
			     good_sizes[i].in, (long long)v, (long long)good_sizes[i].want);
	}
}

static const char *bad_sizes[] = {
	"", "   ", "12X", "-1", "+1", "1.5M", "M", "k", "0x", "1 M", "1MM", "1iB",
	"99999999999999999999", "9999999999T", "8388608T", "9223372036854775808",
	"18446744073709551616", "1M,", "5Mx",
};

Test(parse_size, rejects)
{
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(*bad_sizes); i++) {
		int64_t v = -12345;

		cr_expect_not(parse_size(bad_sizes[i], &v), "parse_size(\"%s\") accepted: %lld",
			      bad_sizes[i], (long long)v);
		cr_expect_eq(v, -12345, "parse_size(\"%s\") wrote %lld on failure",
			     bad_sizes[i], (long long)v);
	}
}

Test(parse_size, trailing_space_allowed)
{
	int64_t v = 0;

	cr_expect(parse_size("64M ", &v));
	cr_expect_eq(v, 64 << 20);
	cr_expect(parse_size("\t2k\t", &v));
	cr_expect_eq(v, 2048);
}

/* ---- parse_size_or_off --------------------------------------------------- */

Test(parse_size_or_off, values)
{
	int64_t v = 0;

	cr_expect(parse_size_or_off("-1", &v));
	cr_expect_eq(v, -1);
	v = 0;
	cr_expect(parse_size_or_off("off", &v));
	cr_expect_eq(v, -1);
	v = 0;
	cr_expect(parse_size_or_off("OFF", &v));
	cr_expect_eq(v, -1);
	v = 0;
	cr_expect(parse_size_or_off(" -1", &v));
	cr_expect_eq(v, -1);
	cr_expect(parse_size_or_off("64M", &v));
	cr_expect_eq(v, 64LL << 20);
	/* 0 is off, as for the heap limit and the generation thresholds:
	 * never "collect at every allocation". */
	cr_expect(parse_size_or_off("0", &v));
	cr_expect_eq(v, -1);
	cr_expect(parse_size_or_off("0K", &v));
	cr_expect_eq(v, -1);
	v = 77;
	cr_expect_not(parse_size_or_off("-2", &v));
	cr_expect_not(parse_size_or_off("offf", &v));
	cr_expect_not(parse_size_or_off("", &v));
	cr_expect_not(parse_size_or_off("-1M", &v));
	cr_expect_eq(v, 77);
}

Test(parse_percent_or_on, values)
{
	static const struct { const char *in; int64_t out; } ok[] = {
		{ "on", GROWTH_DEFAULT }, { "YES", GROWTH_DEFAULT }, { "true", GROWTH_DEFAULT },
		{ "off", -1 }, { "0", -1 }, { "-1", -1 }, { "no", -1 },
		{ "1", 1 }, { "100", 100 }, { " 50% ", 50 }, { "100000", 100000 },
	};
	static const char *bad[] = { "", "-2", "100001", "5x", "%", "on1", "1.5", "50%%",
				     "18446744073709551615", "18446744073709551516" };
	int64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		v = 12345;
		cr_expect(parse_percent_or_on(ok[i].in, &v), "'%s' refused", ok[i].in);
		cr_expect_eq(v, ok[i].out, "'%s' gave %lld", ok[i].in, (long long)v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		v = 77;
		cr_expect_not(parse_percent_or_on(bad[i], &v), "'%s' accepted", bad[i]);
		cr_expect_eq(v, 77, "'%s' changed the value", bad[i]);
	}
}

/* ---- parse_bool ---------------------------------------------------------- */

Test(parse_bool, values)
{
	static const struct { const char *in; int64_t want; } cases[] = {
		{ "1", 1 }, { "0", 0 }, { "true", 1 }, { "false", 0 },
		{ "TRUE", 1 }, { "False", 0 }, { "yes", 1 }, { "no", 0 },
		{ "YeS", 1 }, { "NO", 0 }, { "on", 1 }, { "off", 0 },
		{ "On", 1 }, { "oFF", 0 }, { " yes", 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		int64_t v = 42;

		cr_expect(parse_bool(cases[i].in, &v), "parse_bool(\"%s\") failed", cases[i].in);
		cr_expect_eq(v, cases[i].want, "parse_bool(\"%s\") = %lld", cases[i].in,
			     (long long)v);
	}
}

Test(parse_bool, rejects)
{
	static const char *bad[] = { "2", "maybe", "", "-1", "y", "n", "01", "truee", "10" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int64_t v = 42;

		cr_expect_not(parse_bool(bad[i], &v), "parse_bool(\"%s\") accepted", bad[i]);
		cr_expect_eq(v, 42);
	}
}

/* ---- parse_flags --------------------------------------------------------- */

Test(parse_flags, names_and_numbers)
{
	static const struct { const char *in; int64_t want; } cases[] = {
		{ "stats|saveall", 33 },
		{ "leak", 38 },
		{ "DEBUG_STATS,collectable", 3 },
		{ "38", 38 },
		{ "0", 0 },
		{ "none", 0 },
		{ "uncollectable", 4 },
		{ "STATS", 1 },
		{ "debug_leak|debug_stats", 39 },
		{ "0x21", 33 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		int64_t v = -99;

		cr_expect(parse_flags(cases[i].in, &v), "parse_flags(\"%s\") failed", cases[i].in);
		cr_expect_eq(v, cases[i].want, "parse_flags(\"%s\") = %lld, want %lld",
			     cases[i].in, (long long)v, (long long)cases[i].want);
	}
}

Test(parse_flags, rejects)
{
	static const char *bad[] = { "bogus", "stats|bogus", "debug_", "stat", "|stats",
				     "stats||leak", "1x", "-1", "", " ", "99", "stats," };

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int64_t v = -99;

		cr_expect_not(parse_flags(bad[i], &v), "parse_flags(\"%s\") accepted: %lld",
			      bad[i], (long long)v);
		cr_expect_eq(v, -99, "parse_flags(\"%s\") changed its output", bad[i]);
	}
}

/* ---- parse_triple -------------------------------------------------------- */

Test(parse_triple, full_and_partial)
{
	int64_t t[3] = { 0, 10, 10 };

	cr_expect(parse_triple("700,10,10", t));
	cr_expect(t[0] == 700 && t[1] == 10 && t[2] == 10, "got %lld,%lld,%lld",
		  (long long)t[0], (long long)t[1], (long long)t[2]);

	int64_t u[3] = { 5, 6, 7 };

	cr_expect(parse_triple("700", u));
	cr_expect(u[0] == 700 && u[1] == 6 && u[2] == 7, "got %lld,%lld,%lld",
		  (long long)u[0], (long long)u[1], (long long)u[2]);

	int64_t w[3] = { 5, 6, 7 };

	cr_expect(parse_triple("1,2", w));
	cr_expect(w[0] == 1 && w[1] == 2 && w[2] == 7, "got %lld,%lld,%lld",
		  (long long)w[0], (long long)w[1], (long long)w[2]);

	int64_t x[3] = { 5, 6, 7 };

	cr_expect(parse_triple("3 4 5", x));
	cr_expect(x[0] == 3 && x[1] == 4 && x[2] == 5);

	int64_t y[3] = { 5, 6, 7 };

	cr_expect(parse_triple("2147483647,0,0", y));
	cr_expect(y[0] == INT32_MAX && y[1] == 0 && y[2] == 0);
}

Test(parse_triple, rejects_and_keeps)
{
	static const char *bad[] = { "a,b", "1,2,3,4", "-1", "1,-1", "2147483648",
				     "1,,x", "1,,2", "1,2,3x", "99999999999999999999999999999999",
				     "", "  ", "1,", "1,2,", "1,2,3," };

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int64_t t[3] = { 5, 6, 7 };

		cr_expect_not(parse_triple(bad[i], t), "parse_triple(\"%s\") accepted", bad[i]);
		cr_expect(t[0] == 5 && t[1] == 6 && t[2] == 7,
			  "parse_triple(\"%s\") changed its output on failure: %lld,%lld,%lld",
			  bad[i], (long long)t[0], (long long)t[1], (long long)t[2]);
	}
}

/* ---- parse_signal -------------------------------------------------------- */

Test(parse_signal, names_numbers_and_offsets)
{
	const struct { const char *in; int64_t want; } ok[] = {   /* SIGRTMIN is no constant */
		{ "SIGUSR2", SIGUSR2 }, { "usr1", SIGUSR1 }, { "10", 10 },
		{ "SIGRTMAX-3", SIGRTMAX - 3 }, { "rtmin+2", SIGRTMIN + 2 }, { "SIGRTMAX", SIGRTMAX },
	};
	static const char *bad[] = { "SIGKILL", "9", "19", "32", "0", "SIGRTMAX+1", "SIGRTMIN-1",
				     "SIGRTMIN+9223372036854775807", "SIGRTMAX-9223372036854775808",
				     "SIGRTMIN+65", "", "SIG", "USR3" };
	int64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		v = 0;
		cr_expect(parse_signal(ok[i].in, &v), "'%s' refused", ok[i].in);
		cr_expect_eq(v, ok[i].want, "'%s' gave %lld", ok[i].in, (long long)v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		v = 77;
		cr_expect_not(parse_signal(bad[i], &v), "'%s' accepted", bad[i]);
		cr_expect_eq(v, 77, "'%s' changed the value", bad[i]);
	}
}

/* ---- parse_int ----------------------------------------------------------- */

Test(parse_int, values)
{
	int64_t v;

	cr_expect(parse_int("-5", &v));
	cr_expect_eq(v, -5);
	cr_expect(parse_int(" +7 ", &v));
	cr_expect_eq(v, 7);
	cr_expect(parse_int("9223372036854775807", &v));
	cr_expect_eq(v, INT64_MAX);
	cr_expect_not(parse_int("9223372036854775808", &v));
	cr_expect(parse_int("-9223372036854775808", &v));
	cr_expect_eq(v, INT64_MIN);
	cr_expect_not(parse_int("-9223372036854775809", &v));
	cr_expect_not(parse_int("", &v));
	cr_expect_not(parse_int("-", &v));
	cr_expect_not(parse_int("5k", &v));
}

/* ---- options_load -------------------------------------------------------- */

static char logpath[64];

static void make_log(void)
{
	int fd;

	strcpy(logpath, "/tmp/gcshim-unit-opts-XXXXXX");
	fd = mkstemp(logpath);
	cr_assert(fd >= 0, "mkstemp failed");
	close(fd);
}

static void remove_log(void)
{
	if (logpath[0])
		unlink(logpath);
}

/* The whole log file, as a NUL-terminated string. */
static char *read_log(void)
{
	static char buf[8192];
	FILE *f = fopen(logpath, "r");
	size_t n;

	cr_assert(f != NULL, "cannot open %s", logpath);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static char *env_entry(const char *name, const char *value)
{
	char *e;

	cr_assert(asprintf(&e, "%s=%s", name, value) > 0);
	return e;
}

Test(options_load, defaults_without_environment)
{
	char *envp[] = { "PATH=/bin", "GCSHIM_=x", "XGCSHIM_THRESHOLD=5", NULL };

	options_load(envp);
	for (int id = 0; id < OPT_COUNT; id++) {
		if (opt_defs[id].kind == OPT_PATH || opt_defs[id].kind == OPT_TRIPLE)
			continue;
		cr_expect_eq(opt_int(id), opt_defs[id].def, "%s = %lld, default %lld",
			     opt_defs[id].env, (long long)opt_int(id),
			     (long long)opt_defs[id].def);
	}
	cr_expect_null(opt_str(OPT_LOG));
	cr_expect_null(opt_str(OPT_SOCKET_DIR));
	const int64_t *t = opt_triple(OPT_GEN_THRESHOLD);
	cr_expect(t[0] == 0 && t[1] == 10 && t[2] == 10);
}

Test(options_load, valid_values_land, .init = make_log, .fini = remove_log)
{
	char *envp[] = {
		env_entry("GCSHIM_LOG", logpath),
		"GCSHIM_ENABLE=off",
		"GCSHIM_HEAP_LIMIT=512M",
		"GCSHIM_THRESHOLD=64k",
		"GCSHIM_GEN_THRESHOLD=700,11",
		"GCSHIM_DEBUG=stats|saveall",
		"GCSHIM_SOCKET=no",
		"GCSHIM_SOCKET_DIR=/tmp/somewhere",
		"GCSHIM_HEAP_RESERVE=1G",
		"GCSHIM_ARENAS=3",
		NULL,
	};

	options_load(envp);
	cr_expect_eq(opt_int(OPT_ENABLE), 0);
	cr_expect_eq(opt_int(OPT_HEAP_LIMIT), 512LL << 20);
	cr_expect_eq(opt_int(OPT_THRESHOLD), 64 << 10);
	cr_expect_eq(opt_int(OPT_DEBUG), 33);
	cr_expect_eq(opt_int(OPT_SOCKET), 0);
	cr_expect_eq(opt_int(OPT_HEAP_RESERVE), 1LL << 30);
	cr_expect_eq(opt_int(OPT_ARENAS), 3);
	cr_expect_str_eq(opt_str(OPT_SOCKET_DIR), "/tmp/somewhere");
	cr_expect_str_eq(opt_str(OPT_LOG), logpath);
	const int64_t *t = opt_triple(OPT_GEN_THRESHOLD);
	cr_expect(t[0] == 700 && t[1] == 11 && t[2] == 10, "triple %lld,%lld,%lld",
		  (long long)t[0], (long long)t[1], (long long)t[2]);
	cr_expect_str_eq(read_log(), "", "valid options logged something");
}

/* One bad variable: its default stays, and exactly one line names the
 * variable, the value and the default. */
static void check_bad(const char *name, const char *value, const char *def_text,
		      enum opt_id id, int64_t def)
{
	char *envp[] = { env_entry("GCSHIM_LOG", logpath), env_entry(name, value), NULL };
	char *log;

	options_load(envp);
	if (id != OPT_GEN_THRESHOLD)
		cr_expect_eq(opt_int(id), def, "%s='%s': value %lld, want the default %lld",
			     name, value, (long long)opt_int(id), (long long)def);
	log = read_log();
	cr_expect_eq(count_lines(log), 1, "%s='%s': %d log lines: %s", name, value,
		     count_lines(log), log);
	cr_expect(strstr(log, name) != NULL, "log does not name %s: %s", name, log);
	cr_expect(strstr(log, value) != NULL, "log does not show '%s': %s", value, log);
	cr_expect(strstr(log, def_text) != NULL, "log does not show the default %s: %s",
		  def_text, log);
	cr_assert_eq(truncate(logpath, 0), 0);
}

Test(options_load, bad_values_keep_default_and_log_once, .init = make_log, .fini = remove_log)
{
	check_bad("GCSHIM_THRESHOLD", "abc", "-1 (off)", OPT_THRESHOLD, -1);
	check_bad("GCSHIM_ENABLE", "maybe", "1", OPT_ENABLE, 1);
	check_bad("GCSHIM_HEAP_LIMIT", "12X", "0 (no limit)", OPT_HEAP_LIMIT, 0);
	check_bad("GCSHIM_DEBUG", "bogus", "0", OPT_DEBUG, 0);
	check_bad("GCSHIM_ARENAS", "257", "0 (1 per 4 CPUs)", OPT_ARENAS, 0);
	check_bad("GCSHIM_HEAP_RESERVE", "1M", "256G", OPT_HEAP_RESERVE, 256LL << 30);
	check_bad("GCSHIM_SOCKET", "2", "1", OPT_SOCKET, 1);
	check_bad("GCSHIM_GEN_THRESHOLD", "1,2,3,4", "0,10,10", OPT_GEN_THRESHOLD, 0);
	const int64_t *t = opt_triple(OPT_GEN_THRESHOLD);
	cr_expect(t[0] == 0 && t[1] == 10 && t[2] == 10);
}

/* 8 is within [0, 0x27] but no combination of the debug flags: the API
 * (gcshim_set_debug) and the protocol (set-debug) reject it, the
 * environment must too. */
Test(options_load, debug_flags_outside_the_mask, .init = make_log, .fini = remove_log)
{
	check_bad("GCSHIM_DEBUG", "8", "0", OPT_DEBUG, 0);
	check_bad("GCSHIM_DEBUG", "stats|8", "0", OPT_DEBUG, 0);
	check_bad("GCSHIM_DEBUG", "16", "0", OPT_DEBUG, 0);
}

/* What reaches the gc module: a child started with GCSHIM_DEBUG=8 reports
 * its debug flags through the API. */
int unit_mode(const char *mode)
{
	if (!strcmp(mode, "debug")) {
		printf("debug=%d\n", gcshim_get_debug());
		return 0;
	}
	return 98;
}

Test(options_load, debug_flags_outside_the_mask_reach_the_gc)
{
	static const char *const env[] = { "GCSHIM_DEBUG=8", "GCSHIM_SOCKET=0",
					   "GCSHIM_LOG=/dev/null", NULL };
	char out[256];
	int rc = unit_spawn("debug", env, out, sizeof(out));

	cr_assert_eq(rc, 0, "child: %d %s", rc, out);
	cr_expect_str_eq(out, "debug=0\n", "GCSHIM_DEBUG=8 gave gcshim_get_debug() = %s", out);
}

/* gcshim(7): "Values have these forms; leading and trailing blanks are
 * ignored."  Every kind of value, with blanks on both sides. */
Test(options_load, blanks_around_values_are_ignored, .init = make_log, .fini = remove_log)
{
	char *envp[] = {
		env_entry("GCSHIM_LOG", logpath),
		"GCSHIM_ENABLE= no ",
		"GCSHIM_HEAP_LIMIT= 512M ",
		"GCSHIM_THRESHOLD= off ",
		"GCSHIM_GEN_THRESHOLD= 700,11 ",
		"GCSHIM_DEBUG= stats,saveall ",
		"GCSHIM_SOCKET=\t0\t",
		"GCSHIM_ARENAS= 3 ",
		NULL,
	};
	char *log;

	options_load(envp);
	log = read_log();
	cr_expect_eq(opt_int(OPT_ENABLE), 0, "' no '");
	cr_expect_eq(opt_int(OPT_HEAP_LIMIT), 512LL << 20, "' 512M '");
	cr_expect_eq(opt_int(OPT_THRESHOLD), -1, "' off '");
	cr_expect_eq(opt_int(OPT_DEBUG), 33, "' stats,saveall '");
	cr_expect_eq(opt_int(OPT_SOCKET), 0, "'\\t0\\t'");
	cr_expect_eq(opt_int(OPT_ARENAS), 3, "' 3 '");
	const int64_t *t = opt_triple(OPT_GEN_THRESHOLD);
	cr_expect(t[0] == 700 && t[1] == 11 && t[2] == 10, "' 700,11 ' gave %lld,%lld,%lld",
		  (long long)t[0], (long long)t[1], (long long)t[2]);
	cr_expect_str_eq(log, "", "blanks were reported as bad values:\n%s", log);
}

/* The same through the parsers, one by one. */
Test(parsers, blanks_around_values)
{
	int64_t v = 0, t[3] = { 0, 10, 10 };

	cr_expect(parse_bool("yes ", &v), "parse_bool(\"yes \")");
	cr_expect(parse_bool("off\t", &v), "parse_bool(\"off\\t\")");
	cr_expect(parse_size_or_off("off ", &v), "parse_size_or_off(\"off \")");
	cr_expect(parse_size_or_off("-1 ", &v), "parse_size_or_off(\"-1 \")");
	cr_expect(parse_flags("stats ", &v), "parse_flags(\"stats \")");
	cr_expect(parse_flags("38 ", &v), "parse_flags(\"38 \")");
	cr_expect(parse_triple(" 700", t), "parse_triple(\" 700\")");
	cr_expect(parse_triple("700 ", t), "parse_triple(\"700 \")");
	cr_expect(parse_size("64M ", &v), "parse_size(\"64M \")");
}

Test(options_load, empty_value_is_reported, .init = make_log, .fini = remove_log)
{
	char *envp[] = { env_entry("GCSHIM_LOG", logpath), "GCSHIM_HEAP_LIMIT=", NULL };
	char *log;

	options_load(envp);
	cr_expect_eq(opt_int(OPT_HEAP_LIMIT), 0);
	log = read_log();
	cr_expect_eq(count_lines(log), 1, "log: %s", log);
	cr_expect(strstr(log, "GCSHIM_HEAP_LIMIT=''") != NULL, "log: %s", log);
}

/* A second load starts from the defaults again, whatever the first set. */
Test(options_load, reload_resets)
{
	char *first[] = { "GCSHIM_THRESHOLD=1M", "GCSHIM_GEN_THRESHOLD=5,5,5", NULL };
	char *second[] = { NULL };

	options_load(first);
	cr_expect_eq(opt_int(OPT_THRESHOLD), 1 << 20);
	options_load(second);
	cr_expect_eq(opt_int(OPT_THRESHOLD), -1);
	const int64_t *t = opt_triple(OPT_GEN_THRESHOLD);
	cr_expect(t[0] == 0 && t[1] == 10 && t[2] == 10, "triple %lld,%lld,%lld",
		  (long long)t[0], (long long)t[1], (long long)t[2]);
}

Test(options_load, first_occurrence_wins)
{
	char *envp[] = { "GCSHIM_THRESHOLD=1M", "GCSHIM_THRESHOLD=2M", NULL };

	options_load(envp);
	cr_expect_eq(opt_int(OPT_THRESHOLD), 1 << 20);
}

Test(options, table_is_consistent)
{
	for (int id = 0; id < OPT_COUNT; id++) {
		const struct opt_def *d = &opt_defs[id];

		cr_expect(!strncmp(d->env, "GCSHIM_", 7), "%s", d->env);
		cr_expect(d->def_text && *d->def_text && d->help && *d->help, "%s", d->env);
		if (d->kind != OPT_PATH && d->kind != OPT_TRIPLE)
			cr_expect(d->min <= d->def && d->def <= d->max, "%s default out of range",
				  d->env);
	}
	cr_expect_str_eq(opt_defs[OPT_HEAP_LIMIT].env, "GCSHIM_HEAP_LIMIT");
	cr_expect_str_eq(opt_defs[OPT_GEN_THRESHOLD].env, "GCSHIM_GEN_THRESHOLD");
}
