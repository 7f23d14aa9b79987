/* What a program can observe of the shim, on live processes: blocking
 * calls interrupted by collections, the shim's descriptors, and pointers
 * kept where only a shared file mapping holds them.  Each check is also
 * run where it must fail (the stop signal, a debugger attached), so that
 * the probe is seen to catch what it looks for. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

#define LINE_MS 60000

static struct scratch sc;   /* its directory is the socket directory too */

struct proc {
	pid_t pid;
	int in, out;
	char buf[8192];
	size_t len;
};

static void setup(void)
{
	scratch_make(&sc, "behaviour");
}

static void teardown(void)
{
	scratch_remove(&sc);
}

TestSuite(behaviour, .init = setup, .fini = teardown, .timeout = 120);

/* argv under the shim (socket in our directory, log in our file) and the
 * extra environment entries, NULL-terminated, after it. */
static void start(struct proc *p, char *const argv[], ...)
{
	int in[2], out[2];
	va_list ap;
	char *envs[8];
	int ne = 0;

	va_start(ap, argv);
	for (char *e; ne < 7 && (e = va_arg(ap, char *));)
		envs[ne++] = e;
	va_end(ap);
	cr_assert_eq(pipe(in), 0);
	cr_assert_eq(pipe(out), 0);
	p->pid = fork();
	cr_assert_geq(p->pid, 0);
	if (p->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		closefrom(3);
		setenv("LD_PRELOAD", env_or("GCSHIM_LIB", ".libs/libgcshim.so"), 1);
		setenv("GCSHIM_SOCKET_DIR", sc.dir, 1);
		setenv("GCSHIM_LOG", sc.log, 1);
		for (int i = 0; i < ne; i++)
			putenv(envs[i]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	p->in = in[1];
	p->out = out[0];
	p->len = 0;
}

static bool line(struct proc *p, char *buf, size_t cap)
{
	return read_line_fd(p->out, p->buf, &p->len, sizeof(p->buf), buf, cap, LINE_MS);
}

/* Reads up to a line starting with prefix; false at the end. */
static bool line_with(struct proc *p, const char *prefix, char *buf, size_t cap)
{
	while (line(p, buf, cap))
		if (!strncmp(buf, prefix, strlen(prefix)))
			return true;
	return false;
}

static void tell(struct proc *p, const char *what)
{
	cr_assert_eq(write(p->in, what, strlen(what)), (ssize_t)strlen(what));
}

/* The rest of the output, checked for FAILED lines; the exit status. */
static int finish(struct proc *p)
{
	char l[512];
	int status;

	while (line(p, l, sizeof(l)))
		cr_expect(strncmp(l, "FAILED", 6), "%s", l);
	close(p->in);
	close(p->out);
	waitpid(p->pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int gcctl(pid_t pid, const char *verb, char *out, size_t cap)
{
	char cmd[1024];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "GCSHIM_SOCKET_DIR='%s' '%s' -p %d %s 2>&1", sc.dir,
		 build_path("gcctl"), (int)pid, verb);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	return pclose(f);
}

/* ---- blocking calls ------------------------------------------------------ */

struct waits {
	int eintr[4], early[4];
	long traced, signalled, restarted;
};

static void eintr_run(struct waits *w, const char *prefix, ...)
{
	char *argv[] = { build_path("tests/fixtures/beh_probe"), "eintr", "150", NULL };
	char l[512], *envs[4] = { NULL };
	struct proc p;
	va_list ap;

	va_start(ap, prefix);
	for (int i = 0; i < 3 && (envs[i] = va_arg(ap, char *)); i++)
		;
	va_end(ap);
	if (prefix) {
		char *wrapped[] = { (char *)prefix, "-f", "-qq", "-o", "/dev/null",
				    argv[0], argv[1], argv[2], NULL };

		start(&p, wrapped, envs[0], envs[1], envs[2], NULL);
	} else {
		start(&p, argv, envs[0], envs[1], envs[2], NULL);
	}
	memset(w, 0, sizeof(*w));
	for (int k = 0; k < 4; k++) {
		int calls = 0;

		cr_assert(line_with(&p, k == 0 ? "nanosleep" : k == 1 ? "epoll_wait" :
				    k == 2 ? "poll" : "select", l, sizeof(l)));
		cr_assert_eq(sscanf(strchr(l, ' '), " calls=%d eintr=%d early=%d", &calls,
				    &w->eintr[k], &w->early[k]), 3, "%s", l);
		cr_log_info("%s", l);
	}
	cr_assert(line_with(&p, "stops", l, sizeof(l)));
	cr_assert_eq(sscanf(l, "stops traced=%ld signalled=%ld restarted=%ld", &w->traced,
			    &w->signalled, &w->restarted), 3, "%s", l);
	cr_log_info("%s", l);
	cr_assert_eq(finish(&p), 0);
}

Test(behaviour, collections_interrupt_no_blocking_call)
{
	struct waits w;

	eintr_run(&w, NULL, NULL);
	cr_expect_eq(w.traced, 150, "%ld of 150 stops traced", w.traced);
	cr_expect_eq(w.signalled, 0);
	for (int k = 0; k < 4; k++) {
		cr_expect_eq(w.eintr[k], 0, "wait %d: %d EINTR", k, w.eintr[k]);
		cr_expect_eq(w.early[k], 0, "wait %d: %d ended early", k, w.early[k]);
	}
	/* epoll_wait is the one the kernel ends: made again, and counted. */
	cr_expect_gt(w.restarted, 0);
	cr_expect_eq(strstr(read_file(sc.log), "signal"), NULL, "%s", read_file(sc.log));
}

Test(behaviour, stop_signal_fallback_is_counted_and_interrupts)
{
	struct waits w;

	eintr_run(&w, NULL, "GCSHIM_TRACE=0", NULL);
	cr_expect_eq(w.traced, 0);
	cr_expect_eq(w.signalled, 150);
	cr_expect_gt(w.eintr[0] + w.eintr[2] + w.eintr[3], 0,
		     "the probe must see what signals do");
}

Test(behaviour, a_traced_program_falls_back_once_in_the_log)
{
	struct waits w;
	const char *log;

	if (access("/usr/bin/strace", X_OK) != 0)
		cr_skip_test("strace is not installed");
	eintr_run(&w, "/usr/bin/strace", NULL);
	log = read_file(sc.log);
	cr_expect_eq(w.traced, 0);
	cr_expect_eq(w.signalled, 150);
	cr_expect_not_null(strstr(log, "traced by another program"), "%s", log);
	cr_expect_eq(strstr(strstr(log, "traced by another") + 1, "traced by another"), NULL,
		     "said more than once:\n%s", log);
}

/* Runs a probe mode whose checks print "ok WHAT" or "FAILED WHAT": no
 * check may fail, the probe must exit 0, and the lines starting with
 * `ok` (a prefix) are counted. */
static int probe_checks_or_skips(char *argv[], const char *ok, int *skips)
{
	char l[512];
	struct proc p;
	int n = 0;

	start(&p, argv, "GCSHIM_SOCKET=0", NULL);
	while (line(&p, l, sizeof(l))) {
		cr_log_info("%s", l);
		cr_expect(strncmp(l, "FAILED", 6), "%s", l);
		n += !strncmp(l, ok, strlen(ok));
		*skips += !strncmp(l, "skip", 4);
	}
	cr_expect_eq(finish(&p), 0);
	return n;
}

static int probe_checks(char *argv[], const char *ok)
{
	int skips = 0;

	return probe_checks_or_skips(argv, ok, &skips);
}

/* Hoard's passive false sharing (cache-scratch): a block freed by a
 * thread that never allocated its size is not what that thread gets
 * next, so it does not write a cache line the allocating thread's other
 * blocks share. */
Test(behaviour, a_thread_does_not_reuse_a_block_another_thread_allocated)
{
	char *argv[] = { build_path("tests/fixtures/beh_probe"), "scratch", NULL };

	cr_expect_eq(probe_checks(argv, "ok no thread allocates"), 3);
}

/* jemalloc purges an arena whenever its last thread leaves it: a program
 * that runs short threads a few at a time would give pages back and fault
 * them in again at every thread's start and end. */
Test(behaviour, short_threads_started_in_rounds_purge_nothing)
{
	char *argv[] = { build_path("tests/fixtures/beh_probe"), "threads", "400", NULL };

	cr_expect_eq(probe_checks(argv, "ok "), 2);
}

/* The pages of a growing heap are faulted in many at a time, not one
 * fault each as the program first writes them (heap_populate_fresh). */
Test(behaviour, a_growing_heap_faults_its_pages_in_bulk)
{
	char *argv[] = { build_path("tests/fixtures/beh_probe"), "grow", "64", NULL };
	int skips = 0, ok = probe_checks_or_skips(argv, "ok ", &skips);

	if (skips)
		cr_skip_test("%s", "no page-fault counter here");
	cr_expect_eq(ok, 1);
}

/* A wait made again must not hide the program's own signal. */
Test(behaviour, a_program_signal_still_ends_an_epoll_wait)
{
	char *argv[] = { build_path("tests/fixtures/beh_probe"), "epoll_signal", NULL };
	struct proc p;

	start(&p, argv, "GCSHIM_SOCKET=0", NULL);
	cr_expect_eq(finish(&p), 0);
}

/* A signal that comes as a thread is stopped is handed back when it is
 * let go, and one that comes while it is held waits: none is lost. */
Test(behaviour, queued_signals_survive_the_stops)
{
	char *argv[] = { build_path("tests/fixtures/beh_probe"), "queued_signals", "3000", NULL };
	struct proc p;

	start(&p, argv, "GCSHIM_SOCKET=0", NULL);
	cr_expect_eq(finish(&p), 0);
}

/* A collection asked for through the socket stops the sleeping thread.
 * Cut short, the sleeper ends at once: gcctl may then find it gone. */
static void sleeper_run(const char *env, bool must_answer, int *rc, int *err, long *ms)
{
	char *argv[] = { build_path("tests/fixtures/beh_probe"), "sleeper", NULL };
	char l[512], out[4096];
	struct proc p;
	int pid;

	start(&p, argv, (char *)env, NULL);
	cr_assert(line_with(&p, "ready", l, sizeof(l)));
	pid = atoi(l + 6);
	tell(&p, "go\n");
	usleep(200 * 1000);
	for (int i = 0; i < 3; i++) {
		int st = gcctl(pid, "collect", out, sizeof(out));

		cr_expect(!must_answer || st == 0, "%s", out);
		usleep(100 * 1000);
	}
	cr_assert(line_with(&p, "slept", l, sizeof(l)));
	cr_assert_eq(sscanf(l, "slept rc=%d errno=%d ms=%ld", rc, err, ms), 3, "%s", l);
	cr_assert_eq(finish(&p), 0);
}

Test(behaviour, gcctl_collect_does_not_wake_a_sleeper)
{
	int rc, err;
	long ms;

	sleeper_run("GCSHIM_TRACE=1", true, &rc, &err, &ms);
	cr_expect_eq(rc, 0, "nanosleep failed with errno %d", err);
	cr_expect_geq(ms, 1500);
	sleeper_run("GCSHIM_TRACE=0", false, &rc, &err, &ms);
	cr_expect_eq(rc, -1, "with the stop signal the sleep is cut short");
}

/* The control thread, waiting for requests, is left running through the
 * stops (it parks in its wait): a single-threaded program's collections
 * stop nothing, but for one or two that find the control thread still
 * starting, and the socket answers after them as before.  Without parking
 * every one of them stops it. */
Test(behaviour, a_single_threaded_program_stops_nothing)
{
	char *argv[] = { build_path("tests/fixtures/beh_probe"), "alone", "100", NULL };
	char l[512], out[8192];
	long traced = -1, signalled = -1, collections = 0;
	struct proc p;

	start(&p, argv, NULL);
	cr_assert(line_with(&p, "stops", l, sizeof(l)));
	cr_assert_eq(sscanf(l, "stops traced=%ld signalled=%ld collections=%ld", &traced,
			    &signalled, &collections), 3, "%s", l);
	cr_expect_geq(collections, 100, "%s", l);
	cr_expect_leq(traced + signalled, 2, "%s", l);
	cr_expect_eq(gcctl(p.pid, "collect", out, sizeof(out)), 0, "%s", out);
	cr_expect_eq(gcctl(p.pid, "stats", out, sizeof(out)), 0, "%s", out);
	cr_expect(strstr(out, "stops_traced"), "%s", out);
	tell(&p, "end\n");
	cr_assert_eq(finish(&p), 0);
}

/* Two markers, which need their mark bytes: the first collection maps
 * them, and had it done so after taking the list of the shim's memory,
 * it would have read their whole page map as a root's (8,192 reads for
 * the default reserve). */
Test(behaviour, the_shims_own_memory_costs_the_roots_no_reads)
{
	char *argv[] = { build_path("tests/fixtures/beh_probe"), "reads", "3", NULL };
	char l[512];
	struct proc p;

	start(&p, argv, "GCSHIM_MARKERS=2", NULL);
	for (int i = 0; i < 3; i++) {
		long reads = -1;
		int at = -1;

		cr_assert(line_with(&p, "collection", l, sizeof(l)));
		cr_assert_eq(sscanf(l, "collection %d reads=%ld", &at, &reads), 2, "%s", l);
		if (reads < 0)
			cr_skip_test("/proc/self/io is not available");
		cr_expect_lt(reads, 200, "collection %d: %ld read calls", at, reads);
	}
	tell(&p, "end\n");
	cr_assert_eq(finish(&p), 0);
}

/* ---- descriptors ------------------------------------------------------- */

static void fds_run(const char *way, bool with_file)
{
	char file[128], arg[160], l[512], out[8192];
	char *argv[] = { build_path("tests/fixtures/beh_probe"), "fds", (char *)way,
			 with_file ? file : NULL, NULL };
	struct proc p;
	int pid;

	snprintf(file, sizeof(file), "%s/program-file", sc.dir);
	start(&p, argv, "GCSHIM_DEBUG=stats", NULL);
	cr_assert(line_with(&p, "ready", l, sizeof(l)), "%s", read_file(sc.log));
	pid = atoi(l + 6);
	cr_expect_eq(gcctl(pid, "mem-alloc", out, sizeof(out)), 0, "%s: %s", way, out);
	cr_expect_eq(gcctl(pid, "collect", out, sizeof(out)), 0, "%s: %s", way, out);
	cr_expect_not_null(strstr(out, "collected"), "%s", out);
	snprintf(arg, sizeof(arg), "--json stats");
	cr_expect_eq(gcctl(pid, arg, out, sizeof(out)), 0, "%s: %s", way, out);
	tell(&p, "go\n");
	cr_expect_eq(finish(&p), 0, "%s", way);
	/* The summaries of both collections went to the shim's log. */
	cr_expect_geq(strstr(read_file(sc.log), "gc: done") != NULL, 1, "%s", read_file(sc.log));
}

Test(behaviour, close_range_leaves_the_control_socket)
{
	fds_run("close_range", false);
}

Test(behaviour, closefrom_leaves_the_control_socket)
{
	fds_run("closefrom", false);
}

Test(behaviour, closing_what_proc_self_fd_lists_leaves_the_control_socket)
{
	fds_run("procfd", false);
}

Test(behaviour, dup2_over_every_number_takes_nothing_of_ours)
{
	fds_run("dup2", true);
}

/* ---- shared file mappings ----------------------------------------------- */

Test(behaviour, pointers_in_a_shared_file_mapping_are_roots)
{
	char *argv[] = { build_path("tests/fixtures/beh_probe"), "shared", sc.dir, NULL };
	struct proc p;

	start(&p, argv, "GCSHIM_SOCKET=0", NULL);
	cr_expect_eq(finish(&p), 0, "%s", read_file(sc.log));
}

/* ---- a real program ------------------------------------------------------- */

/* CPython's subprocess tests list, pass, close and redirect descriptors,
 * and sleep and wait in every way; under collections every megabyte,
 * with the control socket on. */
Test(behaviour, python_test_subprocess_passes_under_collections, .timeout = 900)
{
	static char out[TEXT_MAX];
	char *argv[] = { "/usr/bin/python3", "-m", "test", "test_subprocess", NULL };
	struct proc p;
	size_t n = 0;
	ssize_t got;
	int status;

	if (system("/usr/bin/python3 -c 'import test.test_subprocess' 2>/dev/null") != 0)
		cr_skip_test("Python's test suite is not installed");
	start(&p, argv, "GCSHIM_THRESHOLD=1M", NULL);
	close(p.in);
	while ((got = read(p.out, out + n, sizeof(out) - 1 - n)) > 0)
		n += (size_t)got;
	out[n] = '\0';
	close(p.out);
	waitpid(p.pid, &status, 0);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%.4000s",
		  n > 4000 ? out + n - 4000 : out);
	cr_expect_not_null(strstr(out, "Tests result: SUCCESS"), "%.4000s",
			   n > 4000 ? out + n - 4000 : out);
}
