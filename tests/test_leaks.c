/* Leak reports as exact as valgrind's and as usable as LeakSanitizer's,
 * on real processes: requested sizes in every report, recording switched
 * on in a running process, suppressions by function, file and module
 * with what suppressed leaks hold left out, gcctl leaks's exit status
 * and JSON, the stacks of ended threads and of
 * a fork child's missing threads, and nothing of the shim's own. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

static struct scratch sc;
static char suppfile[128];
static char out[TEXT_MAX];

static void make_dir(void)
{
	scratch_make(&sc, "leaks");
	snprintf(suppfile, sizeof(suppfile), "%s/lsan.supp", sc.dir);
	setenv("LEAKMOD", build_path("tests/fixtures/.libs/libleakmod.so"), 1);
}

static void remove_dir(void)
{
	scratch_remove(&sc);
}

TestSuite(leaks, .init = make_dir, .fini = remove_dir, .timeout = 120);

static int run_prog(const char *prog, const char *mode, const char *const env[])
{
	char *argv[] = { build_path(prog), (char *)mode, NULL };

	return shim_run(&sc, argv, env, out, sizeof(out));
}

static int run_cases(const char *mode, const char *const env[])
{
	return run_prog("tests/fixtures/leak_cases", mode, env);
}

/* Every "want N" of the fixture is one direct leak of N bytes in the
 * report, and the summary adds them up. */
static void expect_wanted(const char *report)
{
	long total = 0;
	int wants = 0;

	for (const char *p = out; (p = strstr(p, "want ")); p++) {
		char line[96];
		long n;

		if ((p != out && p[-1] != '\n') || sscanf(p, "want %ld", &n) != 1)
			continue;
		snprintf(line, sizeof(line), "Direct leak of %ld byte(s) in 1 object(s) allocated from:\n"
			 "    #0 0x", n);
		cr_expect(strstr(report, line), "no leak of %ld bytes with a stack:\n%s", n, report);
		total += n;
		wants++;
	}
	cr_expect_gt(wants, 0, "%s", out);
	cr_expect_eq(count(report, "Direct leak of "), wants, "%s", report);
	cr_expect(strstr(report, "SUMMARY: gcshim: "), "%s", report);
	cr_expect_eq(strtol(strstr(report, "SUMMARY: gcshim: ") + 17, NULL, 10), total, "%s", report);
}

/* ---- 1. requested sizes ------------------------------------------------------ */

Test(leaks, exit_report_gives_requested_sizes)
{
	const char *env[] = { "GCSHIM_REPORT=exit", NULL };
	int rc = run_cases("sizes", env);
	char *err = read_file(sc.err);

	cr_expect_eq(rc, 23, "status %d:\n%s", rc, err);
	expect_wanted(err);
	cr_expect_eq(count(err, "(size class)"), 0, "%s", err);
	cr_expect(strstr(err, " in leak_realloc_chain "), "%s", err);
}

Test(leaks, new_arrays_give_what_the_compiler_asked_for)
{
	const char *env[] = { "GCSHIM_REPORT=exit", NULL };
	int rc = run_prog("tests/fixtures/leak_cxx", NULL, env);
	char *err = read_file(sc.err);

	cr_expect_eq(rc, 23, "status %d:\n%s", rc, err);
	expect_wanted(err);
}

/* Without recorded requests, a size class is never passed off as one. */
Test(leaks, size_classes_are_said_to_be_so)
{
	const char *env[] = { "GCSHIM_REPORT=exit", "GCSHIM_BACKTRACE=0", NULL };
	char *err;

	cr_expect_eq(run_cases("sizes", env), 23);
	err = read_file(sc.err);
	cr_expect(strstr(err, " byte(s) (size class) in 10 object(s) allocated from:\n"
			 "    <no stack: allocation sites not recorded"), "%s", err);
	cr_expect_eq(count(err, "    #0 "), 0, "%s", err);
}

/* gcctl's output for ARGS on process pid into buf; its exit status. */
static int gcctl(int pid, const char *args, char *buf)
{
	return gcctl_run(&sc, pid, args, buf, TEXT_MAX);
}

struct live {
	int pid, out, in;
};

/* leak_cases in a live mode, with the control socket, started and ready. */
static struct live start_live(const char *mode, const char *const extra[])
{
	static char var[160];
	const char *env[8] = { var, "GCSHIM_SOCKET=1" };
	char *argv[] = { build_path("tests/fixtures/leak_cases"), (char *)mode, NULL };
	struct live l;
	size_t k = 2;

	snprintf(var, sizeof(var), "GCSHIM_SOCKET_DIR=%s", sc.sock);
	for (; extra && *extra && k < 7; extra++)
		env[k++] = *extra;
	shim_start(&sc, argv, env, &l.out, &l.in);
	l.pid = read_ready(l.out);
	return l;
}

/* Lets the fixture make its leaks and waits until it has. */
static void live_step(struct live *l)
{
	char line[64], buf[256];
	size_t len = 0;

	cr_assert_eq(write(l->in, "go\n", 3), 3);
	do
		cr_assert(read_line_fd(l->out, buf, &len, sizeof(buf), line, sizeof(line), 10000),
			  "the fixture did not leak");
	while (strcmp(line, "leaked"));
}

static int end_live(struct live *l)
{
	cr_expect_eq(write(l->in, "bye\n", 4), 4);
	close(l->in);
	return shim_finish(l->pid, l->out, out, sizeof(out));
}

/* get-objects, its summary, garbage and DEBUG_COLLECTABLE lines give
 * the request where it was recorded, and say when it was not. */
Test(leaks, inspection_and_debug_lines_give_requested_sizes)
{
	static char r[TEXT_MAX];
	const char *env[] = { "GCSHIM_DEBUG=collectable", NULL };
	struct live l = start_live("live", env);
	char *log;

	cr_expect_eq(gcctl(l.pid, "backtrace 8", r), 0, "%s", r);
	live_step(&l);
	gcctl(l.pid, "--json get-objects --min-size 2000", r);
	cr_expect(strstr(r, "\"size\":2560,\"generation\":0,\"requested\":2056"), "%s", r);
	cr_expect(strstr(r, "\"size\":3072,\"generation\":0}"), "%s", r);
	gcctl(l.pid, "get-objects --summary", r);
	cr_expect(strstr(r, "1 blocks, 2056 byte(s) requested, allocated from:\n    #0 0x"), "%s", r);
	cr_expect(strstr(r, "block(s) counted by size class)"), "%s", r);
	cr_expect_eq(gcctl(l.pid, "set-debug collectable,saveall", r), 0, "%s", r);
	cr_expect_eq(gcctl(l.pid, "--json collect", r), 0, "%s", r);
	{
		long n = 0, usable = 0, asked = 0;
		const char *c = strstr(r, "\"collected\":");

		cr_assert(c && sscanf(c, "\"collected\":%ld,\"collected_bytes\":%ld,"
				      "\"collected_requested\":%ld", &n, &usable, &asked) == 3, "%s", r);
		/* the 2056-byte block counts 2056, the 3000-byte one its 3072 */
		cr_expect(n >= 2 && asked <= usable - (2560 - 2056), "%s", r);
	}
	gcctl(l.pid, "--json garbage", r);
	cr_expect(strstr(r, "\"size\":2560,\"requested\":2056}"), "%s", r);
	cr_expect(strstr(r, "\"size\":3072}"), "%s", r);
	cr_expect_eq(end_live(&l), 0);
	log = read_file(sc.log);
	cr_expect(strstr(log, " size 2056 gen 0 site 0x"), "%s", log);
	cr_expect(strstr(log, " size 3072 (size class) gen 0 site unknown"), "%s", log);
}

/* ---- 2. recording switched on in a running process ------------------------- */

Test(leaks, backtrace_switched_on_live_gives_stacks)
{
	static char r[TEXT_MAX];
	struct live l = start_live("live", NULL);

	cr_expect_eq(gcctl(l.pid, "leaks", r), 23, "%s", r);
	cr_expect(strstr(r, "Direct leak of 3072 byte(s) (size class) in 1 object(s) allocated from:\n"
			 "    <no stack: allocation sites not recorded (gcctl backtrace 16"), "%s", r);
	cr_expect_eq(gcctl(l.pid, "leaks 2>&1 >/dev/null", r), 23);
	cr_expect_eq(count(r, "\n"), 1, "one line of advice:\n%s", r);
	cr_expect(strstr(r, "backtrace 16"), "%s", r);
	cr_expect_eq(gcctl(l.pid, "--json backtrace 16", r), 0, "%s", r);
	cr_expect(strstr(r, "\"backtrace\":16,\"sizes\":true,\"previous_backtrace\":0"), "%s", r);
	live_step(&l);
	cr_expect_eq(gcctl(l.pid, "leaks", r), 23, "%s", r);
	cr_expect(strstr(r, "Direct leak of 3072 byte(s) (size class) in 1 object(s) allocated from:\n"
			 "    <allocated before allocation sites were recorded>"), "%s", r);
	cr_expect(strstr(r, "Direct leak of 2056 byte(s) in 1 object(s) allocated from:\n"
			 "    #0 0x"), "%s", r);
	cr_expect(strstr(r, " in leak_after_switch "), "%s", r);
	cr_expect(strstr(r, "leak_cases.c:"), "%s", r);
	cr_expect(strstr(r, "SUMMARY: gcshim: 5128 byte(s) leaked in 2 allocation(s)."), "%s", r);
	cr_expect_eq(gcctl(l.pid, "--json backtrace off", r), 0, "%s", r);
	cr_expect(strstr(r, "\"backtrace\":0,"), "%s", r);
	/* a bad argument is bad usage, found by gcctl or the process: 2 */
	cr_expect_eq(gcctl(l.pid, "backtrace 65", r), 2, "%s", r);
	cr_expect_eq(gcctl(l.pid, "backtrace lots 2>&1", r), 2, "%s", r);
	cr_expect(strstr(r, "bad depth 'lots'"), "%s", r);
	cr_expect_eq(end_live(&l), 0);
}

/* ---- 3. suppressions ------------------------------------------------------- */

static const char supp_text[] =
	"# LeakSanitizer suppressions, as CI keeps them\n"
	"leak:leak_by_function\n"
	"   leak:*leak_file.c$   \n"
	"\n"
	"leak:libleakmod.so\n"
	"this line is not a suppression\n"
	"leak:^never_called$\n";

static void expect_suppressions_table(const char *r)
{
	cr_expect(strstr(r, "-----------------------------------------------------\n"
			 "Suppressions used:\n"
			 "  count      bytes template\n"
			 "      1        321 leak_by_function\n"
			 "      1        555 *leak_file.c$\n"
			 "      1       4242 libleakmod.so\n"
			 "-----------------------------------------------------\n"), "%s", r);
	cr_expect_eq(count(r, "never_called"), 0, "%s", r);
}

Test(leaks, exit_report_applies_suppressions)
{
	char var[160];
	const char *env[] = { "GCSHIM_REPORT=exit", var, NULL };
	char *err, *log;
	int rc;

	write_file(suppfile, supp_text);
	snprintf(var, sizeof(var), "GCSHIM_SUPPRESSIONS=%s", suppfile);
	rc = run_cases("suppress", env);
	err = read_file(sc.err);
	cr_expect_eq(rc, 23, "status %d:\n%s", rc, err);
	expect_wanted(err);
	cr_expect(strstr(err, " in leak_kept "), "%s", err);
	cr_expect_eq(count(err, "make_child"), 0, "held by a suppressed leak:\n%s", err);
	expect_suppressions_table(err);
	log = read_file(sc.log);
	cr_expect(strstr(log, "lsan.supp: line 6: expected TYPE:PATTERN"), "%s", log);
	cr_expect_eq(count(log, "line ignored"), 1, "%s", log);
	/* only suppressed leaks: the table, and the program's own status */
	rc = run_cases("suppressed", env);
	err = read_file(sc.err);
	cr_expect_eq(rc, 0, "status %d:\n%s", rc, err);
	expect_suppressions_table(err);
	cr_expect_eq(count(err, "leak of"), 0, "%s", err);
	cr_expect_eq(count(err, "SUMMARY"), 0, "%s", err);
}

Test(leaks, missing_suppression_file_is_reported_and_the_report_runs)
{
	const char *env[] = { "GCSHIM_REPORT=exit", "GCSHIM_SUPPRESSIONS=/nonexistent/lsan.supp", NULL };
	int rc = run_cases("suppress", env);

	cr_expect_eq(rc, 23);
	cr_expect(strstr(read_file(sc.log), "GCSHIM_SUPPRESSIONS=/nonexistent/lsan.supp: No such file"),
		  "%s", read_file(sc.log));
	cr_expect(strstr(read_file(sc.err), "SUMMARY: gcshim: 6339 byte(s) leaked in 5 allocation(s)."),
		  "%s", read_file(sc.err));
}

/* ---- 4. gcctl leaks for scripts: suppressions, status, JSON ------------------- */

Test(leaks, gcctl_leaks_suppressions_status_and_json)
{
	static char r[TEXT_MAX];
	char args[256];
	const char *env[] = { "GCSHIM_BACKTRACE=16", NULL };
	struct live l = start_live("live", env);

	/* anchored: a bare "main" would match the module's path wherever the
	 * build tree's path holds that word, and module names are tried first */
	write_file(suppfile, "leak:leak_after_switch\nleak:^main$\n");
	live_step(&l);
	cr_expect_eq(gcctl(l.pid, "leaks --exitcode 7", r), 7, "%s", r);
	snprintf(args, sizeof(args), "leaks --suppressions %s", suppfile);
	cr_expect_eq(gcctl(l.pid, args, r), 0, "all suppressed:\n%s", r);
	cr_expect(strstr(r, "      1       2056 leak_after_switch\n"
			 "      1       3000 ^main$\n"), "%s", r);
	cr_expect(strstr(r, "SUMMARY: gcshim: 0 byte(s) leaked in 0 allocation(s)."), "%s", r);
	write_file(suppfile, "leak:leak_after_switch\nbroken\n");
	snprintf(args, sizeof(args), "leaks --suppressions %s --json 2>&1", suppfile);
	cr_expect_eq(gcctl(l.pid, args, r), 23, "%s", r);
	cr_expect(strstr(r, "lsan.supp: line 2: expected TYPE:PATTERN"), "%s", r);
	cr_expect(strstr(r, "{\"pid\":"), "%s", r);
	cr_expect(strstr(r, "\"leaked_bytes\":3000,\"leaked_blocks\":1,"), "%s", r);
	cr_expect(strstr(r, "{\"kind\":\"direct\",\"bytes\":2056,\"count\":1,\"size_class\":false,"
			 "\"stack\":\"recorded\",\"suppressed\":\"leak_after_switch\",\"frames\":"
			 "[{\"pc\":\"0x"), "%s", r);
	cr_expect(strstr(r, "\"function\":\"leak_after_switch\",\"file\":\""), "%s", r);
	cr_expect(strstr(r, "leak_cases.c\",\"line\":"), "%s", r);
	cr_expect(strstr(r, "\"module\":\"/"), "%s", r);
	cr_expect(strstr(r, "\"suppressions\":[{\"template\":\"leak_after_switch\",\"line\":1,"
			 "\"count\":1,\"bytes\":2056}]"), "%s", r);
	cr_expect_eq(gcctl(l.pid, "leaks --suppressions /nonexistent 2>&1", r), 2, "%s", r);
	cr_expect(strstr(r, "cannot read suppressions /nonexistent"), "%s", r);
	cr_expect_eq(gcctl(l.pid, "leaks --exitcode 300 2>&1", r), 2, "%s", r);
	cr_expect_eq(end_live(&l), 0);
}

/* As in LeakSanitizer, what a suppressed leak points to is not reported
 * either: gcctl asks the process again with the suppressed sites kept
 * reachable.  leak_by_function's block holds make_child's. */
Test(leaks, gcctl_leaks_leaves_out_what_suppressed_leaks_hold)
{
	static char r[TEXT_MAX];
	char text[160], json[160];
	const char *env[] = { "GCSHIM_BACKTRACE=16", NULL };
	struct live l = start_live("livesuppress", env);

	write_file(suppfile, supp_text);
	snprintf(text, sizeof(text), "leaks --suppressions %s", suppfile);
	snprintf(json, sizeof(json), "--json leaks --suppressions %s", suppfile);
	live_step(&l);
	cr_expect_eq(gcctl(l.pid, "leaks", r), 23, "%s", r);
	cr_expect(strstr(r, "Indirect leak of 222 byte(s) in 1 object(s) allocated from:\n"
			 "    #0 0x"), "%s", r);
	cr_expect(strstr(r, " in make_child "), "%s", r);
	cr_expect_eq(gcctl(l.pid, text, r), 23, "%s", r);
	cr_expect_eq(count(r, "make_child"), 0, "held by a suppressed leak:\n%s", r);
	cr_expect(strstr(r, " in leak_kept "), "%s", r);
	cr_expect(strstr(r, " in leak_early "), "%s", r);
	expect_suppressions_table(r);
	cr_expect(strstr(r, "SUMMARY: gcshim: 3999 byte(s) leaked in 2 allocation(s)."), "%s", r);
	cr_expect_eq(gcctl(l.pid, json, r), 23, "%s", r);
	cr_expect(strstr(r, "\"leaked_bytes\":3999,\"leaked_blocks\":2,"), "%s", r);
	cr_expect(strstr(r, "\"bytes\":321,\"count\":1,\"size_class\":false,\"stack\":\"recorded\","
			 "\"suppressed\":\"leak_by_function\""), "%s", r);
	cr_expect_eq(count(r, "make_child"), 0, "%s", r);
	cr_expect(strstr(r, "{\"template\":\"leak_by_function\",\"line\":2,\"count\":1,\"bytes\":321}"),
		  "%s", r);
	/* the rest suppressed too (no pattern names a frame of make_child's
	 * stack): nothing is left, and the status says so */
	write_file(suppfile, "leak:^leak_by_function$\nleak:*leak_file.c$\nleak:libleakmod.so\n"
		   "leak:^leak_kept$\nleak:^leak_early$\n");
	cr_expect_eq(gcctl(l.pid, text, r), 0, "%s", r);
	cr_expect_eq(count(r, "make_child"), 0, "%s", r);
	cr_expect(strstr(r, "SUMMARY: gcshim: 0 byte(s) leaked in 0 allocation(s)."), "%s", r);
	cr_expect(strstr(r, "      1        321 ^leak_by_function$\n"), "%s", r);
	cr_expect(strstr(r, "      1       3000 ^leak_early$\n"), "%s", r);
	cr_expect_eq(end_live(&l), 0);
}

/* More suppressed sites than one request holds: those that fit are kept,
 * gcctl says how many did not, what only those point to is reported,
 * and each suppressed block is counted once. */
Test(leaks, gcctl_leaks_says_which_suppressed_sites_it_could_not_keep)
{
	static char r[TEXT_MAX];
	char args[200], want[96];
	const char *env[] = { "GCSHIM_BACKTRACE=1", NULL };
	struct live l = start_live("livemany", env);
	const char *note;
	int left = -1;

	write_file(suppfile, "leak:^leak_many_sites$\n");
	snprintf(args, sizeof(args), "leaks --suppressions %s 2>&1", suppfile);
	live_step(&l);
	cr_expect_eq(gcctl(l.pid, args, r), 23, "%s", r);
	note = strstr(r, "gcctl: ");
	cr_assert(note && sscanf(note, "gcctl: %d suppressed allocation site(s) do not fit", &left) == 1,
		  "%s", r);
	cr_expect(left > 0 && left < 400, "%d left out\n%s", left, r);
	cr_expect_eq(count(r, "request longer"), 0, "%s", r);
	cr_expect(strstr(r, "    400      16000 ^leak_many_sites$\n"), "each once:\n%s", r);
	snprintf(want, sizeof(want), "Indirect leak of %d byte(s) in %d object(s) allocated from:\n"
		 "    #0 0x", 222 * left, left);
	cr_expect(strstr(r, want), "%s", r);
	snprintf(want, sizeof(want), "SUMMARY: gcshim: %d byte(s) leaked in %d allocation(s).",
		 3000 + 222 * left, 1 + left);
	cr_expect(strstr(r, want), "%s", r);
	cr_expect_eq(end_live(&l), 0);
}

/* ---- 5. roots that are not roots ---------------------------------------------- */

/* Joined threads' stacks stay mapped in glibc's cache, with the dead
 * threads' pointers in them. */
Test(leaks, leaks_held_only_by_ended_threads_stacks_are_found)
{
	const char *env[] = { "GCSHIM_REPORT=exit", NULL };
	int rc = run_cases("deadthread", env);
	char *err = read_file(sc.err);

	cr_expect_eq(rc, 23, "status %d:\n%s", rc, err);
	cr_expect(strstr(err, "Direct leak of 17284 byte(s) in 4 object(s) allocated from:\n"
			 "    #0 0x"), "%s", err);
	cr_expect(strstr(err, " in leak_on_own_stack "), "%s", err);
	cr_expect_eq(count(err, "trampoline"), 0, "the shim's own frames:\n%s", err);
	cr_expect(strstr(err, "SUMMARY: gcshim: 17284 byte(s) leaked in 4 allocation(s)."), "%s", err);
}

Test(leaks, fork_child_reports_exactly_its_own_leaks)
{
	const char *env[] = { "GCSHIM_REPORT=exit", "GCSHIM_SOCKET=1", NULL };
	char var[160];
	const char *env2[] = { "GCSHIM_REPORT=exit", "GCSHIM_SOCKET=1", var, NULL };
	int rc;
	char *err;

	snprintf(var, sizeof(var), "GCSHIM_SOCKET_DIR=%s", sc.sock);
	for (int round = 0; round < 2; round++) {
		rc = run_cases("fork", round ? env2 : env);
		err = read_file(sc.err);
		cr_expect_eq(rc, 0, "the parent leaks nothing: %d\n%s", rc, err);
		cr_expect(strstr(out, "child status 23"), "%s", out);
		cr_expect_eq(count(err, "leak of"), 1, "%s", err);
		cr_expect(strstr(err, "Direct leak of 777 byte(s) in 1 object(s) allocated from:\n"
				 "    #0 0x"), "%s", err);
		cr_expect(strstr(err, " in child_leaks "), "%s", err);
		cr_expect(strstr(err, "SUMMARY: gcshim: 777 byte(s) leaked in 1 allocation(s)."), "%s", err);
	}
}

/* In the child only the forking thread exists: what the parent's other
 * threads held on their stacks alone is unreachable there. */
Test(leaks, fork_child_does_not_scan_the_parents_other_threads)
{
	const char *env[] = { "GCSHIM_REPORT=exit", NULL };
	int rc = run_cases("forkstack", env);
	char *err = read_file(sc.err);

	cr_expect_eq(rc, 0, "the parent leaks nothing: %d\n%s", rc, err);
	cr_expect(strstr(err, "Direct leak of 777 byte(s) in 1 object(s)"), "%s", err);
	cr_expect(strstr(err, "Direct leak of 4444 byte(s) in 4 object(s) allocated from:\n"
			 "    #0 0x"), "%s", err);
	cr_expect(strstr(err, " in hold "), "%s", err);
}

/* Threads started and joined and the control socket serving leave
 * nothing of the shim's among the program's blocks. */
Test(leaks, nothing_of_the_shims_own_is_reported)
{
	const char *env[] = { "GCSHIM_REPORT=exit", "GCSHIM_SOCKET=1", NULL };
	char var[160];
	const char *env2[] = { "GCSHIM_REPORT=exit", "GCSHIM_SOCKET=1", var, NULL };
	int rc;

	snprintf(var, sizeof(var), "GCSHIM_SOCKET_DIR=%s", sc.sock);
	rc = run_cases("self", env2);
	cr_expect_eq(rc, 0, "status %d:\n%s", rc, read_file(sc.err));
	cr_expect_eq(count(read_file(sc.err), "leak"), 0, "%s", read_file(sc.err));
	(void)env;
}
