/* Allocation sites and leak reports: the exit report against the
 * corpus's ground truth, function and file:line of -g fixtures, the
 * report options, gcctl leaks on a live process, pins. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

static struct scratch sc;
static char out[TEXT_MAX];

static void make_dir(void)
{
	scratch_make(&sc, "sites");
}

static void remove_dir(void)
{
	scratch_remove(&sc);
}

TestSuite(sites, .init = make_dir, .fini = remove_dir, .timeout = 120);

static int run(char *const argv[], const char *const env[])
{
	return shim_run(&sc, argv, env, out, sizeof(out));
}

static int run_leaky(const char *mode, const char *const env[])
{
	char *argv[] = { build_path("tests/fixtures/site_leaky"), (char *)mode, NULL };

	return run(argv, env);
}

/* Every "site FUNC FILE:LINE" line of the fixture's output has a frame
 * "in FUNC .../FILE:LINE" in the report. */
static void expect_sites_named(const char *report)
{
	int sites = 0;

	for (const char *p = out; (p = strstr(p, "site ")); p++) {
		char func[64], where[256], frame[400];
		const char *base;

		if (p != out && p[-1] != '\n')
			continue;
		cr_assert_eq(sscanf(p, "site %63s %255s", func, where), 2);
		base = strrchr(where, '/') ? strrchr(where, '/') + 1 : where;
		snprintf(frame, sizeof(frame), " in %s ", func);
		cr_expect(strstr(report, frame), "no frame in %s:\n%s", func, report);
		snprintf(frame, sizeof(frame), "/%s\n", base);
		cr_expect(strstr(report, frame), "no frame at %s:\n%s", base, report);
		sites++;
	}
	cr_expect_gt(sites, 0, "the fixture printed no sites:\n%s", out);
}

/* Sums "KIND leak of N byte(s) in M object(s)" over the report. */
static void sum_kind(const char *report, const char *kind, long *bytes, long *blocks)
{
	char pat[64];
	size_t n;

	snprintf(pat, sizeof(pat), "%s leak of ", kind);
	n = strlen(pat);
	*bytes = *blocks = 0;
	for (const char *p = report; (p = strstr(p, pat)); p += n) {
		long b, m;

		if (p != report && p[-1] != '\n')
			continue;
		cr_assert_eq(sscanf(p + n, "%ld byte(s) in %ld object(s)", &b, &m), 2, "%.200s", p);
		*bytes += b;
		*blocks += m;
	}
}

Test(sites, exit_report_names_functions_and_lines)
{
	const char *env[] = { "GCSHIM_REPORT=exit", NULL };
	int rc = run_leaky("exit", env);
	char *err = read_file(sc.err);

	cr_expect_eq(rc, 23, "status %d:\n%s", rc, err);
	cr_expect(strstr(err, "gcshim: detected memory leaks"), "%s", err);
	expect_sites_named(err);
	/* leak_alpha: 3 x 200 (usable 224); leak_beta: a head and 7 below it */
	cr_expect(strstr(err, "Direct leak of 600 byte(s) in 3 object(s) allocated from:\n"
			 "    #0 "), "%s", err);
	cr_expect(strstr(err, "Indirect leak of 336 byte(s) in 7 object(s)"), "%s", err);
	cr_expect(strstr(err, "Direct leak of 48 byte(s) in 1 object(s)"), "%s", err);
	cr_expect(strstr(err, "SUMMARY: gcshim: 984 byte(s) leaked in 11 allocation(s).\n"),
		  "%s", err);
}

Test(sites, corpus_report_matches_the_ground_truth)
{
	char plugin[512];
	const char *env[] = { plugin, "GCSHIM_REPORT=exit", NULL };
	char *argv[] = { build_path("tests/fixtures/gc_corpus"), "report", NULL };
	long want[4], got[4];
	const char *e;
	char *err;
	int rc;

	snprintf(plugin, sizeof(plugin), "GC_PLUGIN=%s",
		 build_path("tests/fixtures/.libs/libgcplugin.so"));
	rc = run(argv, env);
	err = read_file(sc.err);
	cr_expect_eq(rc, 23, "status %d:\n%s\n%s", rc, out, err);
	e = strstr(out, "expect ");
	cr_assert_not_null(e, "%s", out);
	cr_assert_eq(sscanf(e, "expect direct %ld %ld indirect %ld %ld", &want[0], &want[1],
			    &want[2], &want[3]), 4);
	sum_kind(err, "Direct", &got[1], &got[0]);
	sum_kind(err, "Indirect", &got[3], &got[2]);
	cr_expect_eq(got[0], want[0], "direct blocks %ld, want %ld\n%s", got[0], want[0], err);
	cr_expect_eq(got[1], want[1], "direct bytes %ld, want %ld", got[1], want[1]);
	cr_expect_eq(got[2], want[2], "indirect blocks %ld, want %ld\n%s", got[2], want[2], err);
	cr_expect_eq(got[3], want[3], "indirect bytes %ld, want %ld", got[3], want[3]);
	cr_expect_gt(want[0], 0);
	cr_expect_gt(want[2], 0);
}

Test(sites, exit_code_option)
{
	const char *keep[] = { "GCSHIM_REPORT=exit", "GCSHIM_REPORT_EXITCODE=0", NULL };
	const char *mine[] = { "GCSHIM_REPORT=exit", "GCSHIM_REPORT_EXITCODE=42", NULL };
	const char *none[] = { "GCSHIM_REPORT_EXITCODE=42", NULL };
	int rc;

	rc = run_leaky("exit", keep);
	cr_expect_eq(rc, 0, "EXITCODE=0: status %d", rc);
	cr_expect(strstr(read_file(sc.err), "SUMMARY: gcshim:"), "%s", read_file(sc.err));
	cr_expect_eq(run_leaky("exit", mine), 42);
	cr_expect_eq(run_leaky("clean", mine), 0, "no leaks: the program's status");
	cr_expect_eq(count(read_file(sc.err), "leak"), 0, "%s", read_file(sc.err));
	cr_expect_eq(run_leaky("exit", none), 0, "no report asked for");
	cr_expect_eq(count(read_file(sc.err), "leak"), 0, "%s", read_file(sc.err));
}

Test(sites, report_file)
{
	char file[160], var[200];
	const char *env[] = { "GCSHIM_REPORT=exit", var, NULL };
	char *report;

	snprintf(file, sizeof(file), "%s/report.txt", sc.dir);
	snprintf(var, sizeof(var), "GCSHIM_REPORT_FILE=%s", file);
	cr_expect_eq(run_leaky("exit", env), 23);
	report = read_file(file);
	cr_expect(strstr(report, "SUMMARY: gcshim: 984 byte(s) leaked in 11 allocation(s)."),
		  "%s", report);
	expect_sites_named(report);
	cr_expect_eq(count(read_file(sc.err), "leak"), 0, "%s", read_file(sc.err));
}

/* The objects of the one group of the report whose stack runs through
 * func; -1 if no group or several do. */
static long objects_through(const char *report, const char *func)
{
	char frame[80];
	const char *at, *head = NULL;
	long bytes, objects;

	snprintf(frame, sizeof(frame), " in %s ", func);
	at = strstr(report, frame);
	if (!at || count(report, frame) != 1)
		return -1;
	for (const char *p = report; (p = strstr(p, " leak of ")) && p < at; p++)
		head = p;
	if (!head || sscanf(head, " leak of %ld byte(s) in %ld object(s)", &bytes, &objects) != 2)
		return -1;
	return objects;
}

/* Stacks found again in the memo are the stacks the blocks came from:
 * two paths that reach malloc with the same return address and stack
 * pointer are told apart, and a frame of varying size is unwound each
 * time. */
Test(sites, memoized_stacks_tell_paths_apart)
{
	const char *env[] = { "GCSHIM_REPORT=exit", NULL };
	char *argv[] = { build_path("tests/fixtures/site_twins"), NULL };
	long ab = -1, vla = -1;
	const char *e;
	char *err;
	int rc;

	rc = run(argv, env);
	err = read_file(sc.err);
	cr_assert_eq(rc, 23, "status %d:\n%s\n%s", rc, out, err);
	/* conservative: the last block of a path may still be named by a
	 * dead stack slot; a mixed-up stack would move hundreds */
	for (int k = 0; k < 3; k++) {
		const char *path = (const char *[]){ "path_a", "path_b", "path_vla" }[k];
		long n = objects_through(err, path);

		cr_expect(n >= 1998 && n <= 2000, "%s: %ld objects\n%s", path, n, err);
	}
	e = strstr(out, "unwinds ab ");
	cr_assert(e && sscanf(e, "unwinds ab %ld\nunwinds vla %ld", &ab, &vla) == 2, "%s", out);
	/* 4000 allocations from two stacks: a few unwinds, the rest memoized */
	cr_expect(ab >= 2 && ab < 40, "%ld unwinds for the paths a and b", ab);
	cr_expect_eq(vla, 2000, "%ld unwinds through the variable frame", vla);
}

Test(sites, sampling_records_one_allocation_in_n)
{
	const char *env[] = { "GCSHIM_REPORT=exit", "GCSHIM_BACKTRACE=8",
			      "GCSHIM_BACKTRACE_SAMPLE=4", NULL };
	char *err;

	cr_expect_eq(run_leaky("sample", env), 23);
	err = read_file(sc.err);
	/* 100 in a row from one line: 25 recorded, 75 without a site, all
	 * with their requested size */
	cr_expect(strstr(err, "Direct leak of 1800 byte(s) in 25 object(s) allocated from:\n"
			 "    #0 "), "%s", err);
	cr_expect(strstr(err, " in leak_sampled "), "%s", err);
	cr_expect(strstr(err, "Direct leak of 5400 byte(s) in 75 object(s) allocated from:\n"
			 "    <no stack: not sampled"), "%s", err);
}

Test(sites, backtraces_off_reports_unknown_sites)
{
	const char *env[] = { "GCSHIM_REPORT=exit", "GCSHIM_BACKTRACE=0", NULL };
	char *err;

	cr_expect_eq(run_leaky("exit", env), 23);
	err = read_file(sc.err);
	/* no request recorded: the size classes, said to be so */
	cr_expect(strstr(err, "Direct leak of 720 byte(s) (size class) in 4 object(s)"), "%s", err);
	cr_expect(strstr(err, "SUMMARY: gcshim: 1056 byte(s) leaked in 11 allocation(s)."), "%s", err);
	cr_expect(strstr(err, "    <no stack: allocation sites not recorded"), "%s", err);
	cr_expect_eq(count(err, "    #0 "), 0, "%s", err);
}

/* gcctl's output for VERB on process pid into buf; its exit status. */
static int gcctl(int pid, const char *verb, char *buf)
{
	return gcctl_run(&sc, pid, verb, buf, TEXT_MAX);
}

Test(sites, gcctl_leaks_on_a_live_process)
{
	static char report[TEXT_MAX];
	char var[160];
	const char *env[] = { "GCSHIM_SOCKET=1", var, "GCSHIM_BACKTRACE=16", NULL };
	char *argv[] = { build_path("tests/fixtures/site_leaky"), "live", NULL };
	int fd, in, pid;

	snprintf(var, sizeof(var), "GCSHIM_SOCKET_DIR=%s", sc.sock);
	shim_start(&sc, argv, env, &fd, &in);
	pid = read_ready(fd);
	cr_expect_eq(gcctl(pid, "leaks", report), 23, "%s", report);
	cr_expect(strstr(report, "Direct leak of 600 byte(s) in 3 object(s)"), "%s", report);
	cr_expect(strstr(report, "Indirect leak of 336 byte(s) in 7 object(s)"), "%s", report);
	cr_expect(strstr(report, " in leak_alpha "), "%s", report);
	cr_expect(strstr(report, "site_leaky.c:"), "%s", report);
	cr_expect(strstr(report, "SUMMARY: gcshim: 984 byte(s) leaked in 11 allocation(s)."),
		  "%s", report);
	gcctl(pid, "--json leaks", report);
	cr_expect(strstr(report, "\"leaked_bytes\":984,\"leaked_blocks\":11,"), "%s", report);
	cr_expect(strstr(report, "\"frames\":[{\"pc\":\"0x"), "%s", report);
	cr_expect(strstr(report, "\"function\":\"leak_alpha\",\"file\":\"tests/fixtures/site_leaky.c\""),
		  "%s", report);
	/* nothing was freed: the same answer twice, and the blocks still live */
	gcctl(pid, "--json stats", report);
	cr_expect(strstr(report, "\"collected_blocks\":0,"), "%s", report);
	cr_expect_eq(write(in, "go\n", 3), 3);
	close(in);
	cr_expect_eq(shim_finish(pid, fd, out, sizeof(out)), 0);
}

Test(sites, pinned_blocks_are_uncollectable)
{
	const char *env[] = { "GCSHIM_DEBUG=uncollectable,collectable", "GCSHIM_BACKTRACE=8", NULL };
	char *log;
	int rc = run_leaky("pin", env);

	log = read_file(sc.log);
	cr_expect_eq(rc, 0, "status %d:\n%s\n%s", rc, out, log);
	cr_expect_eq(count(out, "FAILED"), 0, "%s", out);
	cr_expect_eq(count(log, "gc: uncollectable "), 1, "%s", log);
	cr_expect(strstr(log, "size 300 gen 0 site 0x"), "%s", log);
	cr_expect_geq(count(log, "gc: collectable "), 1, "%s", log);
}

Test(sites, debug_log_shows_generation_and_site)
{
	const char *env[] = { "GCSHIM_DEBUG=collectable", "GCSHIM_BACKTRACE=4", NULL };
	char *log;

	cr_expect_eq(run_leaky("pin", env), 0, "%s", out);
	log = read_file(sc.log);
	cr_expect(strstr(log, "gc: collectable 0x"), "%s", log);
	cr_expect(strstr(log, " gen 0 site 0x"), "%s", log);
	cr_expect_eq(count(log, "gc: uncollectable"), 0, "flag not set:\n%s", log);
}
