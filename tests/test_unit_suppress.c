/* Unit tests of lib/suppress.c: LeakSanitizer's suppression format, its
 * patterns, and a parser that takes any bytes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "suppress.h"

static bool match(const char *pattern, const char *s)
{
	return supp_match(pattern, strlen(pattern), s);
}

struct match_case {
	const char *pattern, *s;
	bool want;
};

static const struct match_case cases[] = {
	{ "foo", "xfoox", true },          /* anywhere, without anchors */
	{ "^foo", "foox", true },
	{ "^foo", "xfoo", false },
	{ "foo$", "xfoo", true },
	{ "foo$", "foox", false },
	{ "foo$", "foofoo", true },        /* the last occurrence ends it */
	{ "^foo$", "foo", true },
	{ "^foo$", "fooo", false },
	{ "f*o", "fxxo", true },
	{ "f*o$", "fxxoa", false },
	{ "a*b*c", "xaybzc", true },
	{ "a*b*c", "acb", false },
	{ "^a*c$", "abc", true },
	{ "^a*c$", "abcd", false },
	{ "a**b", "ab", true },
	{ "^*b", "ab", true },
	{ "*", "a", true },
	{ "^", "a", true },
	{ "$", "a", true },
	{ "x", "", false },                /* nothing matches an empty name */
	{ "libfoo.so", "/usr/lib/x86_64-linux-gnu/libfoo.so.1", true },
	{ "std::vector<*>::push_back", "std::vector<int>::push_back", true },
	{ "third_party/*/parse.c", "/src/third_party/json/parse.c", true },
};

Test(suppress, patterns_match_as_in_leaksanitizer)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		cr_expect_eq(match(cases[i].pattern, cases[i].s), cases[i].want, "%s against %s",
			     cases[i].pattern, cases[i].s);
	cr_expect(!supp_match("foo", 3, NULL));
}

static char errors[4096];

static void collect_error(int line, const char *why, void *arg)
{
	size_t n = strlen(errors);

	(void)arg;
	snprintf(errors + n, sizeof(errors) - n, "%d: %s\n", line, why);
}

Test(suppress, file_format)
{
	static const char text[] =
		"# a comment\n"
		"  leak:foo  \n"
		"\n"
		"\tleak:^bar$\r\n"
		"leak:\n"
		"not a suppression\n"
		"interceptor_via_fun:skipped\n"
		"what:ever\n"
		"leak:last";
	struct supp_rule r[8];
	struct supp_list l = { r, 0, 8 };

	errors[0] = '\0';
	cr_expect_eq(supp_parse(&l, text, sizeof(text) - 1, collect_error, NULL), 3);
	cr_assert_eq(l.n, 3);
	cr_expect(r[0].len == 3 && !memcmp(r[0].pattern, "foo", 3) && r[0].line == 2);
	cr_expect(r[1].len == 5 && !memcmp(r[1].pattern, "^bar$", 5) && r[1].line == 4);
	cr_expect(r[2].len == 4 && !memcmp(r[2].pattern, "last", 4) && r[2].line == 9);
	cr_expect_str_eq(errors, "5: empty pattern after leak:\n"
			 "6: expected TYPE:PATTERN, like leak:libfoo.so\n"
			 "8: unknown suppression type (this file is read for leak: lines)\n");
}

Test(suppress, a_frame_is_matched_by_module_then_function_then_file)
{
	static const char text[] = "leak:parse.c\nleak:parse_config\nleak:libcfg\n";
	struct supp_rule r[4];
	struct supp_list l = { r, 0, 4 };

	supp_parse(&l, text, sizeof(text) - 1, NULL, NULL);
	cr_expect_eq(supp_find(&l, "parse_config", "src/parse.c", "/lib/libcfg.so"), &r[2]);
	cr_expect_eq(supp_find(&l, "parse_config", "src/parse.c", "/bin/app"), &r[1]);
	cr_expect_eq(supp_find(&l, "main", "src/parse.c", NULL), &r[0]);
	cr_expect_null(supp_find(&l, "main", "main.c", "/bin/app"));
	cr_expect_null(supp_find(&l, NULL, NULL, NULL));
}

Test(suppress, too_many_rules_are_left_out_with_a_message)
{
	static const char text[] = "leak:a\nleak:b\nleak:c\n";
	struct supp_rule r[2];
	struct supp_list l = { r, 0, 2 };

	errors[0] = '\0';
	cr_expect_eq(supp_parse(&l, text, sizeof(text) - 1, collect_error, NULL), 1);
	cr_expect_eq(l.n, 2);
	cr_expect_str_eq(errors, "3: too many suppressions; left out\n");
}

/* Random bytes, NULs and newlines among them: every rule lies inside the
 * buffer, holds neither, and matching with it terminates. */
Test(suppress, hostile_bytes)
{
	static char buf[1 << 16];
	static struct supp_rule r[4096];
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	for (int round = 0; round < 200; round++) {
		struct supp_list l = { r, 0, 4096 };
		size_t len = (size_t)(x % sizeof(buf));

		for (size_t i = 0; i < len; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[i] = (char)"leak:*^$\n\0 #ab\r"[x % 15];
			if (x % 7 == 0)
				buf[i] = (char)(x >> 24);
		}
		supp_parse(&l, buf, len, NULL, NULL);
		for (size_t i = 0; i < l.n; i++) {
			cr_assert(r[i].pattern >= buf && r[i].pattern + r[i].len <= buf + len);
			cr_assert(r[i].len > 0);
			cr_assert_null(memchr(r[i].pattern, '\n', r[i].len));
			cr_assert_null(memchr(r[i].pattern, '\0', r[i].len));
			supp_match(r[i].pattern, r[i].len, "leak_*function^name$");
		}
	}
}
