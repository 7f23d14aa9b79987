/* The collector on live processes: ground-truth fixtures, and real
 * programs collecting every megabyte, in reclaim and in verify mode. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gcshim.h"
#include "support.h"

#define OUT_MAX (1 << 20)

static char dir[64];
static char logpath[128];

static void make_dir(void)
{
	strcpy(dir, "/tmp/gcshim-collect-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(logpath, sizeof(logpath), "%s/shim.log", dir);
}

static void remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	system(cmd);
}

/* Runs argv with the shim preloaded (unless preload is false) and extra
 * environment entries; stdout goes to out, stdin from in_path or
 * /dev/null.  Returns the exit status, or -1 if it was killed. */
static int run(char *const argv[], const char *const env[], bool preload,
	       const char *in_path, char *out, size_t cap)
{
	int pipefd[2];
	pid_t pid;
	size_t len = 0;
	ssize_t n;
	int status;

	cr_assert_eq(pipe(pipefd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int in = open(in_path ? in_path : "/dev/null", O_RDONLY);

		dup2(in, 0);
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		if (preload)
			setenv("LD_PRELOAD", env_or("GCSHIM_LIB", ".libs/libgcshim.so"), 1);
		setenv("GCSHIM_SOCKET", "0", 1);
		setenv("GCSHIM_LOG", logpath, 1);
		for (int i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	while ((n = read(pipefd[0], out + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *read_log(void)
{
	static char buf[OUT_MAX];
	FILE *f = fopen(logpath, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

TestSuite(collect, .init = make_dir, .fini = remove_dir, .timeout = 240);

static void corpus(const char *mode, const char *extra)
{
	static char out[OUT_MAX];
	char plugin[512];
	const char *env[] = { plugin, extra, NULL };
	char *argv[] = { build_path("tests/fixtures/gc_corpus"), (char *)mode, NULL };
	int rc;

	snprintf(plugin, sizeof(plugin), "GC_PLUGIN=%s",
		 build_path("tests/fixtures/.libs/libgcplugin.so"));
	rc = run(argv, env, true, NULL, out, sizeof(out));
	cr_expect_eq(rc, 0, "gc_corpus %s:\n%s", mode, out);
	cr_expect(strstr(out, "wrong 0"), "%s", out);
}

Test(collect, corpus_reclaims_exactly_the_unreachable_blocks)
{
	corpus("reclaim", NULL);
}

Test(collect, corpus_saveall_finds_them_and_frees_nothing)
{
	corpus("saveall", NULL);
}

Test(collect, corpus_with_minimal_roots)
{
	corpus("minimal", "GCSHIM_ROOTS=minimal");
}

static void modes(const char *mode, const char *const env[], int want_rc)
{
	static char out[OUT_MAX];
	char *argv[] = { build_path("tests/fixtures/gc_modes"), (char *)mode, NULL };
	int rc = run(argv, env, true, NULL, out, sizeof(out));

	cr_expect_eq(rc, want_rc, "gc_modes %s exited %d:\n%s", mode, rc, out);
	if (want_rc == 0)
		cr_expect_eq(count(out, "FAILED"), 0, "%s", out);
}

/* new T[0]: a block held only by a pointer just past its end, where the
 * next block starts, in verify mode and freeing. */
static void cookie(const char *verify)
{
	static char out[OUT_MAX];
	const char *env[] = { verify, NULL };
	char *argv[] = { build_path("tests/fixtures/gc_cookie"), NULL };
	int rc = run(argv, env, true, NULL, out, sizeof(out));

	cr_expect_eq(rc, 0, "gc_cookie exited %d:\n%s", rc, out);
	cr_expect(strstr(out, "next block right behind the count: yes"),
		  "the layout the test needs did not happen:\n%s", out);
}

Test(collect, empty_cxx_array_kept_in_verify_mode)
{
	cookie("GCSHIM_VERIFY=1");
}

Test(collect, empty_cxx_array_kept_when_freeing)
{
	cookie("GCSHIM_VERIFY=0");
}

/* Verify mode caught in the act: a block held only by a hidden (XORed)
 * pointer is found unreachable, kept, and its free by the program is
 * reported as false garbage, exactly once, at its address and size. */
Test(collect, verify_mode_reports_a_hidden_pointer_as_false_garbage)
{
	static char out[OUT_MAX];
	const char *env[] = { "GCSHIM_VERIFY=1", NULL };
	char *argv[] = { build_path("tests/fixtures/gc_modes"), "hidden", NULL };
	char want[128];
	unsigned long addr = 0, size = 0;
	int rc = run(argv, env, true, NULL, out, sizeof(out));
	char *log = read_log();

	cr_expect_eq(rc, 0, "gc_modes hidden exited %d:\n%s", rc, out);
	cr_assert(sscanf(out, "hidden block %lx (%lu bytes)", &addr, &size) == 2, "%s", out);
	snprintf(want, sizeof(want), "false garbage: %p (%lu bytes)", (void *)addr, size);
	cr_expect_eq(count(log, "false garbage:"), 1, "%s", log);
	cr_expect(strstr(log, want), "the log lacks '%s':\n%s", want, log);
}

/* Without verify mode the same block is freed by the collection: what
 * verify mode exists to announce. */
Test(collect, reclaim_mode_frees_a_block_behind_a_hidden_pointer)
{
	modes("hidden", NULL, 0);
	cr_expect_eq(count(read_log(), "false garbage"), 0, "%s", read_log());
}

/* A full callback table, gcshim_garbage() and gcshim_site_frames(). */
Test(collect, c_api_callbacks_garbage_and_site_frames)
{
	static char out[OUT_MAX];
	const char *env[] = { "GCSHIM_BACKTRACE=16", NULL };
	char *argv[] = { build_path("tests/fixtures/gc_capi"), NULL };
	int rc = run(argv, env, true, NULL, out, sizeof(out));

	cr_expect_eq(rc, 0, "gc_capi exited %d:\n%s", rc, out);
	cr_expect_eq(count(out, "FAILED"), 0, "%s", out);
	cr_expect_eq(count(out, "ok "), 12, "%s", out);
}

Test(collect, rss_falls_after_a_collection)
{
	modes("rss", NULL, 0);
}

Test(collect, collection_touches_no_unwritten_memory)
{
	modes("footprint", NULL, 0);
}

/* The pages of the collector's tables for a heap grown since the last
 * collection are made resident before the next stop, with one marker and
 * with several (mark bytes too). */
Test(collect, tables_for_new_heap_resident_before_the_stop)
{
	const char *two[] = { "GCSHIM_MARKERS=2", NULL }, *one[] = { "GCSHIM_MARKERS=1", NULL };

	modes("prefault", one, 0);
	modes("prefault", two, 0);
}

Test(collect, young_collections_spare_older_generations)
{
	modes("generations", NULL, 0);
}

/* Big root mappings are shared among markers: none of their pieces may
 * be left unread, whoever takes it; and of their pages that map the zero
 * page none is read. */
Test(collect, blocks_held_from_big_mappings_survive_shared_marking)
{
	const char *two[] = { "GCSHIM_MARKERS=2", NULL }, *one[] = { "GCSHIM_MARKERS=1", NULL };

	modes("bigroots", two, 0);
	modes("bigroots", one, 0);
}

Test(collect, program_signals_and_blocking_calls_unaffected)
{
	modes("signals", NULL, 0);
}

/* With the stop signal: a thread that blocks it cannot be stopped (a
 * traced stop holds it anyway, see the behaviour suite). */
Test(collect, unstoppable_thread_abandons_the_collection)
{
	const char *env[] = { "GCSHIM_STOP_TIMEOUT=300", "GCSHIM_TRACE=0", NULL };

	modes("rawblock", env, 0);
	cr_expect(strstr(read_log(), "collection abandoned, nothing freed"), "%s", read_log());
}

Test(collect, heap_limit_collects_before_failing)
{
	const char *env[] = { "GCSHIM_HEAP_LIMIT=32M", NULL };

	modes("limit", env, 0);
}

Test(collect, disabled_collector_fails_at_the_limit)
{
	const char *env[] = { "GCSHIM_HEAP_LIMIT=32M", "GCSHIM_ENABLE=0", NULL };

	modes("limit", env, 1);
}

/* A gc_modes mode under a collection every megabyte: many collections,
 * none of them wrong. */
static void under_collections(const char *mode, const char *extra)
{
	const char *env[] = { "GCSHIM_THRESHOLD=1M", "GCSHIM_DEBUG=stats", extra, NULL };
	char *log;

	modes(mode, env, 0);
	log = read_log();
	cr_expect_gt(count(log, "gc: collecting generation"), 10, "%.2000s", log);
	cr_expect_eq(count(log, "false garbage"), 0, "%.2000s", log);
}

Test(collect, threads_and_forks_under_collections_every_megabyte)
{
	under_collections("forkstress", "GCSHIM_VERIFY=0");
}

Test(collect, threads_and_forks_in_verify_mode)
{
	under_collections("forkstress", "GCSHIM_VERIFY=1");
}

Test(collect, blocks_handed_between_threads_under_collections)
{
	under_collections("handoff", "GCSHIM_VERIFY=0");
}

Test(collect, blocks_handed_between_threads_in_verify_mode)
{
	under_collections("handoff", "GCSHIM_VERIFY=1");
}

/* Stacks recorded (and memoized) in every thread while collections stop
 * them and forks copy them. */
Test(collect, threads_and_forks_with_backtraces)
{
	under_collections("forkstress", "GCSHIM_BACKTRACE=16");
}

Test(collect, blocks_handed_between_threads_with_backtraces)
{
	under_collections("handoff", "GCSHIM_BACKTRACE=16");
}

/* A real program, once plain and once under the shim with env: same
 * output, collections did run, and (in verify mode) none was wrong. */
static void same_as_plain_under(char *const argv[], const char *in_path, const char *const env[])
{
	static char plain[OUT_MAX], shim[OUT_MAX];
	int rc_plain = run(argv, NULL, false, in_path, plain, sizeof(plain));
	int rc_shim = run(argv, env, true, in_path, shim, sizeof(shim));
	char *log = read_log();

	cr_expect_eq(rc_shim, rc_plain, "%s: exit %d under the shim, %d without", argv[0],
		     rc_shim, rc_plain);
	cr_expect(!strcmp(plain, shim), "%s: output differs under the shim", argv[0]);
	cr_expect_gt(count(log, "gc: collecting generation"), 0, "no collection ran");
	cr_expect_eq(count(log, "false garbage"), 0, "%.3000s", log);
}

/* Collecting every megabyte, with one more setting (extra: the mode,
 * backtraces). */
static void same_as_plain(char *const argv[], const char *in_path, const char *extra)
{
	const char *env[] = { "GCSHIM_THRESHOLD=1M", "GCSHIM_DEBUG=stats", extra, NULL };

	same_as_plain_under(argv, in_path, env);
}

static void write_sort_input(char *path, size_t cap)
{
	FILE *f;
	unsigned long x = 12345;

	snprintf(path, cap, "%s/input.txt", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < 300000; i++) {
		x = x * 6364136223846793005UL + 1442695040888963407UL;
		fprintf(f, "%016lx %d line of text number %lu\n", x, i % 977, x >> 40);
	}
	fclose(f);
}

static void sort_run(const char *extra)
{
	char in[256];
	char *argv[] = { "sort", "--parallel=2", "-S", "64M", NULL, NULL };

	write_sort_input(in, sizeof(in));
	argv[4] = in;
	same_as_plain(argv, NULL, extra);
}

Test(collect, sort_parallel_reclaim)
{
	sort_run("GCSHIM_VERIFY=0");
}

Test(collect, sort_parallel_verify)
{
	sort_run("GCSHIM_VERIFY=1");
}

/* Under an address-space limit (ulimit -v) the collector's reservations
 * shrink to fit: it starts, collects, and a shell that forks and a sort
 * give what they give without the shim. */
Test(collect, an_address_space_limit_still_collects)
{
	char in[256];
	char *argv[] = { "sh", "-c",
			 "ulimit -v 600000 || exit 99; exec sh -c "
			 "'x=$(sort -S 16M \"$1\" | md5sum); echo \"$x\"' sh \"$0\"",
			 NULL, NULL };

	write_sort_input(in, sizeof(in));
	argv[3] = in;
	same_as_plain(argv, NULL, "GCSHIM_VERIFY=0");
	cr_expect_null(strstr(read_log(), "could not start"), "%s", read_log());
}

Test(collect, sort_parallel_with_backtraces)
{
	sort_run("GCSHIM_BACKTRACE=16");
}

static void xz_run(const char *verify)
{
	char in[256];
	char *argv[] = { "xz", "-T2", "-c", NULL, NULL };

	write_sort_input(in, sizeof(in));
	argv[3] = in;
	same_as_plain(argv, NULL, verify);
}

Test(collect, xz_two_threads_reclaim)
{
	xz_run("GCSHIM_VERIFY=0");
}

Test(collect, xz_two_threads_verify)
{
	xz_run("GCSHIM_VERIFY=1");
}

static const char *python_script =
	"import json, threading, subprocess, socket\n"
	"def work(k):\n"
	"    d = [{'a': i, 'b': str(i) * 10, 'c': [i] * 5} for i in range(40000)]\n"
	"    s = json.dumps(d)\n"
	"    assert json.loads(s) == d\n"
	"    return len(s)\n"
	"res = []\n"
	"ts = [threading.Thread(target=lambda k=k: res.append(work(k))) for k in range(3)]\n"
	"[t.start() for t in ts]\n"
	"a, b = socket.socketpair()\n"
	"a.sendall(b'x' * 100000); a.close()\n"
	"got = b''\n"
	"while len(got) < 100000: got += b.recv(65536)\n"
	"out = subprocess.run(['echo', 'child'], capture_output=True).stdout\n"
	"[t.join() for t in ts]\n"
	"print(sorted(res), len(got), out)\n";

static void python_run(const char *extra)
{
	char *argv[] = { "python3", "-c", (char *)python_script, NULL };

	same_as_plain(argv, NULL, extra);
}

Test(collect, python_threads_json_sockets_reclaim)
{
	python_run("GCSHIM_VERIFY=0");
}

Test(collect, python_threads_json_sockets_verify)
{
	python_run("GCSHIM_VERIFY=1");
}

Test(collect, python_threads_json_sockets_with_backtraces)
{
	python_run("GCSHIM_BACKTRACE=16");
}

/* Python's own test suite, where it is installed (Debian's
 * libpython3-testsuite): threads, sockets, subprocess and json.  Its
 * timings differ from run to run, so only its verdicts are compared. */
static const char *python_with_tests(void)
{
	static char out[4096];
	static const char *candidates[] = { "/usr/bin/python3", "python3" };

	for (unsigned i = 0; i < 2; i++) {
		char *probe[] = { (char *)candidates[i], "-c",
				  "import test.test_threading, test.test_json, test.test_selectors", NULL };

		if (run(probe, NULL, false, NULL, out, sizeof(out)) == 0)
			return candidates[i];
	}
	return NULL;
}

static void verdicts(const char *out, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (const char *line = out; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
		size_t len = strcspn(line, "\n");

		if ((!strncmp(line, "Tests result:", 13) || !strncmp(line, "Result:", 7) ||
		     !strncmp(line, "Total tests:", 12)) && n + len + 2 < cap) {
			memcpy(buf + n, line, len);
			n += len;
			buf[n++] = '\n';
			buf[n] = '\0';
		}
	}
}

/* `python3 -m test ...`, then the number of collections the shim ran,
 * read with ctypes from gcshim_get_stats() (SIZE and OFFSET of the
 * struct and its member come from this test's own gcshim.h). */
static const char python_then_collections[] =
	"import ctypes, runpy, sys\n"
	"size, offset = int(sys.argv[1]), int(sys.argv[2])\n"
	"sys.argv = ['test'] + sys.argv[3:]\n"
	"try:\n"
	"    runpy.run_module('test', run_name='__main__', alter_sys=True)\n"
	"finally:\n"
	"    get_stats = getattr(ctypes.CDLL(None), 'gcshim_get_stats', None)\n"
	"    if get_stats:\n"
	"        st = ctypes.create_string_buffer(size)\n"
	"        ctypes.c_uint32.from_buffer(st).value = size\n"
	"        get_stats(st)\n"
	"        print('gcshim collections', ctypes.c_int64.from_buffer(st, offset).value)\n";

static void python_suite(const char *verify)
{
	static char plain[OUT_MAX], shim[OUT_MAX], vp[4096], vs[4096];
	const char *python = python_with_tests();
	/* No DEBUG_STATS here: the suite lists its descriptors, and a log
	 * file opened for the summaries would be one more. */
	const char *env[] = { "GCSHIM_THRESHOLD=1M", verify, NULL };
	char size[32], offset[32];
	char *argv[] = { NULL, "-c", (char *)python_then_collections, size, offset,
			 "test_threading", "test_json", "test_subprocess", "test_selectors", NULL };
	const char *ran;
	char *log;
	int rc_plain, rc_shim;

	if (!python)
		cr_skip_test("Python's test suite is not installed");
	argv[0] = (char *)python;
	snprintf(size, sizeof(size), "%zu", sizeof(struct gcshim_stats));
	snprintf(offset, sizeof(offset), "%zu", offsetof(struct gcshim_stats, collections));
	rc_plain = run(argv, NULL, false, NULL, plain, sizeof(plain));
	rc_shim = run(argv, env, true, NULL, shim, sizeof(shim));
	log = read_log();
	verdicts(plain, vp, sizeof(vp));
	verdicts(shim, vs, sizeof(vs));
	cr_expect_eq(rc_shim, rc_plain, "exit %d under the shim, %d without\n%s", rc_shim,
		     rc_plain, vs);
	cr_expect(vp[0] && !strcmp(vp, vs), "verdicts differ:\n%s---\n%s", vp, vs);
	cr_expect_eq(count(log, "false garbage"), 0, "%.3000s", log);
	ran = strstr(shim, "gcshim collections ");
	cr_expect(ran && atol(ran + 19) > 0, "no collection ran in the suite's process: %s",
		  ran ? ran : "no count printed");
}

Test(collect, python_test_suite_reclaim, .timeout = 900)
{
	python_suite("GCSHIM_VERIFY=0");
}

Test(collect, python_test_suite_verify, .timeout = 900)
{
	python_suite("GCSHIM_VERIFY=1");
}

/* ---- automatic collection: the growth trigger, marker threads, the sweep */

static int64_t figure(const char *out, const char *key)
{
	const char *p = strstr(out, key);

	return p ? atoll(p + strlen(key)) : -1;
}

static void gc_auto(char *const argv[], const char *const env[], char *out, size_t cap)
{
	int rc = run(argv, env, true, NULL, out, cap);

	cr_expect_eq(rc, 0, "%s %s exited %d:\n%s", argv[1], argv[2], rc, out);
	cr_expect_eq(count(out, "FAILED"), 0, "%s", out);
}

/* The use the shim exists for: 256 MiB leaked in small blocks, 11 MiB
 * live.  Growth collections keep the heap near twice the live data; the
 * same program without the trigger holds every byte it leaked. */
Test(collect, growth_trigger_keeps_a_leaky_program_small)
{
	static char out[OUT_MAX];
	char *argv[] = { build_path("tests/fixtures/gc_auto"), "leaky", "256", NULL };
	const char *on[] = { "GCSHIM_GROWTH=on", NULL }, *off[] = { "GCSHIM_GROWTH=off", NULL };

	gc_auto(argv, on, out, sizeof(out));
	cr_expect_geq(figure(out, "growth_triggers "), 5, "%s", out);
	cr_expect_lt(figure(out, "max_rss_kib "), 80 * 1024, "%s", out);
	/* of its 930,000 blocks, a third at least are ones that a collection
	 * found dead, taken again without going through jemalloc */
	cr_expect_gt(figure(out, "reused_blocks "), 310000, "%s", out);
	gc_auto(argv, off, out, sizeof(out));
	cr_expect_eq(figure(out, "collections "), 0, "%s", out);
	cr_expect_gt(figure(out, "max_rss_kib "), 256 * 1024, "%s", out);
}

/* Percent values: 10% collects far more often than 400%. */
Test(collect, growth_percent_sets_how_often)
{
	static char out[OUT_MAX];
	char *argv[] = { build_path("tests/fixtures/gc_auto"), "leaky", "128", NULL };
	const char *often[] = { "GCSHIM_GROWTH=10", NULL }, *rare[] = { "GCSHIM_GROWTH=400%", NULL };
	int64_t n10, n400;

	gc_auto(argv, often, out, sizeof(out));
	n10 = figure(out, "growth_triggers ");
	gc_auto(argv, rare, out, sizeof(out));
	n400 = figure(out, "growth_triggers ");
	cr_expect_gt(n400, 0, "%s", out);
	cr_expect_gt(n10, 4 * n400, "10%%: %lld collections, 400%%: %lld", (long long)n10,
		     (long long)n400);
}

/* Threads churn and leak while growth collections run with several
 * markers and the sweep gives dead blocks back behind them: no kept block
 * is touched, and in the end mem_alloc is exactly what the program holds. */
static void churn_under(const char *markers, const char *verify)
{
	static char out[OUT_MAX];
	char *argv[] = { build_path("tests/fixtures/gc_auto"), "churn", "4",
			 strstr(verify, "=0") ? "exact" : NULL, NULL };
	const char *env[] = { "GCSHIM_GROWTH=20", markers, verify, "GCSHIM_DEBUG=stats", NULL };
	char *log;

	gc_auto(argv, env, out, sizeof(out));
	cr_expect_gt(figure(out, "growth_triggers "), 2, "%s", out);
	/* verify mode keeps what it finds: nothing to take again */
	if (strstr(verify, "=0"))
		cr_expect_gt(figure(out, "reused_blocks "), 0, "%s", out);
	else
		cr_expect_eq(figure(out, "reused_blocks "), 0, "%s", out);
	log = read_log();
	cr_expect_eq(count(log, "false garbage"), 0, "%.3000s", log);
}

Test(collect, churn_with_four_markers)
{
	churn_under("GCSHIM_MARKERS=4", "GCSHIM_VERIFY=0");
}

Test(collect, churn_with_one_marker)
{
	churn_under("GCSHIM_MARKERS=1", "GCSHIM_VERIFY=0");
}

Test(collect, churn_with_four_markers_in_verify_mode)
{
	churn_under("GCSHIM_MARKERS=4", "GCSHIM_VERIFY=1");
}

/* Ground truth with the marking shared among threads. */
Test(collect, corpus_with_four_markers)
{
	corpus("reclaim", "GCSHIM_MARKERS=4");
}

/* Threads, forks and handed-over blocks under growth collections with
 * several markers, freeing and in verify mode.  The fixtures' heaps stay
 * near the growth trigger's 4 MiB floor, so how many collections beyond
 * the first depends on how the threads and children interleave. */
static void under_growth(const char *mode, const char *verify)
{
	const char *env[] = { "GCSHIM_GROWTH=5", "GCSHIM_MARKERS=3", "GCSHIM_DEBUG=stats",
			      verify, NULL };
	char *log;

	modes(mode, env, 0);
	log = read_log();
	cr_expect_geq(count(log, "gc: collecting generation"), 1, "%.2000s", log);
	cr_expect_eq(count(log, "false garbage"), 0, "%.2000s", log);
}

Test(collect, forkstress_under_growth_collections)
{
	under_growth("forkstress", "GCSHIM_VERIFY=0");
}

Test(collect, handoff_under_growth_collections_in_verify_mode)
{
	under_growth("handoff", "GCSHIM_VERIFY=1");
}

/* Real programs with the one setting a user turns collection on with. */
static void growth_same_as_plain(char *const argv[], const char *verify)
{
	const char *env[] = { "GCSHIM_GROWTH=on", "GCSHIM_DEBUG=stats", verify, NULL };

	same_as_plain_under(argv, NULL, env);
}

Test(collect, sort_under_growth_in_verify_mode)
{
	char in[256];
	char *argv[] = { "sort", "--parallel=2", "-S", "64M", NULL, NULL };

	write_sort_input(in, sizeof(in));
	argv[4] = in;
	growth_same_as_plain(argv, "GCSHIM_VERIFY=1");
}

Test(collect, python_under_growth_in_verify_mode)
{
	char *argv[] = { "python3", "-c",
			 "import json\n"
			 "t = [{'k%d' % i: [i] * 20} for i in range(200000)]\n"
			 "s = json.dumps(t)\n"
			 "print(len(json.loads(s)), len(s))", NULL };

	growth_same_as_plain(argv, "GCSHIM_VERIFY=1");
}

/* ---- minor collections ------------------------------------------------------------ */

/* Old blocks gain the only pointers to young ones from four threads, by
 * plain stores, read(), memcpy and a moving realloc, while generations 0
 * and 1 are collected alongside; every young block must come through.
 * Where the kernel reports written pages, explicit collections of
 * generations 0 and 1 must be minor; automatic ones are minor only when
 * it pays, so with those only the blocks are checked. */
static void minor_links(const char *const env[], bool all_minor)
{
	static char out[OUT_MAX];
	char *argv[] = { build_path("tests/fixtures/gc_minor"), "links", "4", "20000", NULL };

	gc_auto(argv, env, out, sizeof(out));
	cr_expect_gt(figure(out, "young_blocks "), 10000, "%s", out);
	cr_expect_eq(figure(out, "broken "), 0, "%s", out);
	cr_expect_eq(figure(out, "false_garbage "), 0, "%s", out);
	if (all_minor && figure(out, "write_tracking ") == 1) {
		cr_expect_gt(figure(out, "minor "), figure(out, "collections ") / 2, "%s", out);
		cr_expect_gt(figure(out, "written_pages "), 0, "%s", out);
	}
}

Test(collect, minor_collections_keep_what_old_blocks_point_to)
{
	const char *env[] = { NULL };

	minor_links(env, true);
}

Test(collect, minor_collections_in_verify_mode_find_no_false_garbage)
{
	const char *env[] = { "GCSHIM_VERIFY=1", NULL };

	minor_links(env, true);
}

Test(collect, automatic_collections_beside_minor_ones_lose_nothing)
{
	const char *env[] = { "GCSHIM_VERIFY=1", "GCSHIM_THRESHOLD=256K", NULL };

	minor_links(env, false);
}

/* The same with the holders in a large anonymous mapping and in the bss:
 * minor collections read of them only the pages written since (rtrack.h),
 * and still lose no young block. */
static void minor_roots(const char *const env[])
{
	static char out[OUT_MAX];
	char *argv[] = { build_path("tests/fixtures/gc_minor"), "roots", "4", "20000", NULL };

	gc_auto(argv, env, out, sizeof(out));
	cr_expect_gt(figure(out, "young_blocks "), 10000, "%s", out);
	cr_expect_eq(figure(out, "broken "), 0, "%s", out);
	cr_expect_eq(figure(out, "false_garbage "), 0, "%s", out);
	if (figure(out, "write_tracking ") == 1) {
		cr_expect_gt(figure(out, "minor "), figure(out, "collections ") / 2, "%s", out);
		cr_expect_gt(figure(out, "fewest_minor_root_bytes "), 0, "%s", out);
		cr_expect_lt(figure(out, "fewest_minor_root_bytes "),
			     figure(out, "holder_bytes ") / 2, "%s", out);
	}
}

Test(collect, minor_collections_read_only_the_written_root_pages)
{
	const char *env[] = { NULL };

	minor_roots(env);
}

Test(collect, minor_collections_with_tracked_roots_find_no_false_garbage)
{
	const char *env[] = { "GCSHIM_VERIFY=1", NULL };

	minor_roots(env);
}

/* Pages a collection emptied are left unprotected (vacant.h): blocks
 * allocated there, made old, then given the only pointers to young blocks
 * must still count as written, and so must cached blocks taken again on
 * pages where the sweep saw no block.  Where the kernel tracks writes,
 * some pages must have been vacant for the test to mean anything. */
Test(collect, vacant_pages_lose_no_young_block)
{
	static char out[OUT_MAX];
	char *argv[] = { build_path("tests/fixtures/gc_minor"), "vacant", "6", NULL };
	const char *env[] = { NULL };

	gc_auto(argv, env, out, sizeof(out));
	cr_expect_eq(figure(out, "broken "), 0, "%s", out);
	cr_expect_eq(figure(out, "false_garbage "), 0, "%s", out);
	if (figure(out, "write_tracking ") == 1) {
		cr_expect_gt(figure(out, "minor "), 0, "%s", out);
		cr_expect_gt(figure(out, "most_vacant_pages "), 1000, "%s", out);
	}
}

/* The first collection says in the log which way writes are tracked. */
Test(collect, the_log_names_the_write_tracking)
{
	const char *on[] = { "GCSHIM_DEBUG=stats", NULL };
	const char *off[] = { "GCSHIM_DEBUG=stats", "GCSHIM_MINOR=0", NULL };
	char *log;

	modes("generations", on, 0);
	log = read_log();
	cr_expect_eq(count(log, "gc: write tracking: "), 1, "%.2000s", log);
	modes("generations", off, 0);
	log = read_log();
	cr_expect_eq(count(log, "gc: write tracking: none (GCSHIM_MINOR=0)"), 1, "%.2000s", log);
}
