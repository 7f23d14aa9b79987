/* Integration tests: libgcshim.so preloaded onto real programs and onto
 * the fixtures in tests/fixtures/pre_*, compared with the same runs
 * without it.
 *
 * Every program runs as a child with its own environment: LD_PRELOAD is
 * set for that child only (never for this runner), GCSHIM_SOCKET_DIR is a
 * private directory of the test and GCSHIM_LOG a file beside it, so that
 * the test can see every message the shim wrote and every socket it left.
 * Set GCSHIM_TEST_KEEP=1 to keep each test's directory for inspection. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---------------------------------------------------------------------
 * The test's private directory and the paths of what runs in it
 * --------------------------------------------------------------------- */

static struct {
	char dir[PATH_MAX - 256]; /* mkdtemp, removed by teardown */
	char sock[PATH_MAX]; /* GCSHIM_SOCKET_DIR: dir/sock, 0700 */
	char log[PATH_MAX];  /* GCSHIM_LOG: dir/shim.log */
	char lib[PATH_MAX];
	int runs;
} T;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *builddir(void)
{
	const char *b = getenv("top_builddir");

	return b && *b ? b : ".";
}

static const char *srcdir(void)
{
	const char *s = getenv("top_srcdir");

	return s && *s ? s : ".";
}

/* A formatted string that lives as long as the test (each test is a
 * process of its own: nothing needs freeing). */
static const char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *pathf(const char *fmt, ...)
{
	char *buf;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&buf, fmt, ap);
	va_end(ap);
	cr_assert(n >= 0, "out of memory");
	return buf;
}

static const char *fixture(const char *name)
{
	return pathf("%s/tests/fixtures/%s", builddir(), name);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR"), *lib = getenv("GCSHIM_LIB");

	memset(&T, 0, sizeof(T));
	snprintf(T.dir, sizeof(T.dir), "%s/gcshim-preload-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert(mkdtemp(T.dir), "mkdtemp: %s", strerror(errno));
	snprintf(T.sock, sizeof(T.sock), "%s/sock", T.dir);
	cr_assert(mkdir(T.sock, 0700) == 0, "mkdir %s: %s", T.sock, strerror(errno));
	snprintf(T.log, sizeof(T.log), "%s/shim.log", T.dir);
	if (lib && *lib)
		snprintf(T.lib, sizeof(T.lib), "%s", lib);
	else
		snprintf(T.lib, sizeof(T.lib), "%s/.libs/libgcshim.so", builddir());
	cr_assert(access(T.lib, R_OK) == 0, "%s: %s (build it first, or set GCSHIM_LIB)", T.lib,
		  strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void teardown(void)
{
	const char *keep = getenv("GCSHIM_TEST_KEEP");

	if (!T.dir[0])
		return;
	if (keep && *keep && *keep != '0')
		fprintf(stderr, "# kept %s\n", T.dir);
	else
		nftw(T.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------------
 * Files
 * --------------------------------------------------------------------- */

struct text {
	char *s;
	size_t n;
};

static struct text slurp(const char *path)
{
	struct text t = { NULL, 0 };
	FILE *f = fopen(path, "rb");
	size_t cap = 0;

	if (!f) {
		t.s = calloc(1, 1);
		return t;
	}
	for (;;) {
		if (cap - t.n < 65536) {
			cap = cap ? cap * 2 : 1 << 20;
			t.s = realloc(t.s, cap + 1);
			cr_assert(t.s, "out of memory reading %s", path);
		}
		size_t got = fread(t.s + t.n, 1, cap - t.n, f);

		if (!got)
			break;
		t.n += got;
	}
	fclose(f);
	t.s[t.n] = '\0';
	return t;
}

static void write_file(const char *path, const char *s, size_t n)
{
	FILE *f = fopen(path, "wb");

	cr_assert(f, "%s: %s", path, strerror(errno));
	cr_assert(fwrite(s, 1, n, f) == n && fclose(f) == 0, "writing %s failed", path);
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Lines of s that contain every one of the NULL-terminated needles. */
static int lines_with(const char *s, const char *const *needles)
{
	int count = 0;

	while (*s) {
		const char *end = strchr(s, '\n');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		char *line = strndup(s, len);
		bool all = true;

		for (int i = 0; needles[i]; i++)
			all &= strstr(line, needles[i]) != NULL;
		count += all;
		free(line);
		s += len + (end != NULL);
	}
	return count;
}

#define LINES_WITH(s, ...) lines_with((s), (const char *const[]){ __VA_ARGS__, NULL })

/* The shim's log of this test so far ("" when there is none). */
static char *shim_log(void)
{
	return slurp(T.log).s;
}

/* Socket files left in the test's socket directory, as "a.sock b.sock". */
static char *sockets_left(void)
{
	DIR *d = opendir(T.sock);
	struct dirent *e;
	char *list = calloc(1, 1);
	size_t len = 0;

	cr_assert(d, "opendir %s: %s", T.sock, strerror(errno));
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (n < 5 || strcmp(e->d_name + n - 5, ".sock"))
			continue;
		list = realloc(list, len + n + 2);
		len += (size_t)sprintf(list + len, "%s%s", len ? " " : "", e->d_name);
	}
	closedir(d);
	return list;
}

/* ---------------------------------------------------------------------
 * Running a program
 * --------------------------------------------------------------------- */

struct opts {
	bool preload;
	const char *const *env; /* extra "NAME=value", NULL-terminated */
	bool no_log;            /* leave GCSHIM_LOG unset: messages go to stderr */
	const char *in;         /* stdin, /dev/null when NULL */
	double timeout;         /* seconds, 120 when 0 */
	/* Called every few milliseconds while the child runs. */
	void (*watch)(pid_t pid, void *arg);
	void *watch_arg;
};

struct result {
	int status;
	bool timed_out;
	double secs;
	char *out, *err;
	size_t out_len, err_len;
	char out_path[PATH_MAX], err_path[PATH_MAX];
	char what[256];
	pid_t pid;
};

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* The runner's environment without anything of ours or of a preload,
 * then the test's settings. */
static char **child_env(const struct opts *o)
{
	size_t n = 0, extra = 0;
	char **env;

	while (environ[n])
		n++;
	while (o->env && o->env[extra])
		extra++;
	env = calloc(n + extra + 8, sizeof(*env));
	cr_assert(env);
	n = 0;
	for (char **e = environ; *e; e++)
		if (!starts_with(*e, "LD_PRELOAD=") && !starts_with(*e, "GCSHIM_") &&
		    !starts_with(*e, "MALLOC_"))
			env[n++] = *e;
	env[n++] = strdup(pathf("GCSHIM_SOCKET_DIR=%s", T.sock));
	if (!o->no_log)
		env[n++] = strdup(pathf("GCSHIM_LOG=%s", T.log));
	if (o->preload)
		env[n++] = strdup(pathf("LD_PRELOAD=%s", T.lib));
	for (size_t i = 0; i < extra; i++)
		env[n++] = (char *)o->env[i];
	return env;
}

static const char *describe_status(const struct result *r)
{
	static char buf[64];

	if (r->timed_out)
		return "timed out (killed)";
	if (WIFEXITED(r->status))
		snprintf(buf, sizeof(buf), "exit %d", WEXITSTATUS(r->status));
	else if (WIFSIGNALED(r->status))
		snprintf(buf, sizeof(buf), "killed by signal %d (%s)", WTERMSIG(r->status),
			 strsignal(WTERMSIG(r->status)));
	else
		snprintf(buf, sizeof(buf), "status %#x", r->status);
	return buf;
}

static struct result run(const char *const argv[], struct opts o)
{
	struct result r;
	char **env = child_env(&o);
	double start, limit = o.timeout > 0 ? o.timeout : 120;
	pid_t pid;
	int n = ++T.runs;

	memset(&r, 0, sizeof(r));
	snprintf(r.out_path, sizeof(r.out_path), "%s/run%d.out", T.dir, n);
	snprintf(r.err_path, sizeof(r.err_path), "%s/run%d.err", T.dir, n);
	snprintf(r.what, sizeof(r.what), "%s%s%s%s", o.preload ? "[shim] " : "[no shim] ",
		 argv[0], argv[1] ? " " : "", argv[1] ? argv[1] : "");
	fflush(NULL);
	start = now();
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		sigset_t none;
		int in = open(o.in ? o.in : "/dev/null", O_RDONLY);
		int out = open(r.out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int err = open(r.err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		/* Its own process group, so that a timeout kills all of it;
		 * and the signal state of a fresh process. */
		setpgid(0, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
		    dup2(err, 2) < 0)
			_exit(126);
		closefrom(3);
		execve(argv[0], (char *const *)argv, env);
		dprintf(2, "execve %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	r.pid = pid;
	/* Waits without reaping, so that the process group still is the
	 * child's when whatever it left running is killed. */
	for (;;) {
		siginfo_t si = { 0 };
		int rc = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);

		if (rc == 0 && si.si_pid == pid)
			break;
		cr_assert(rc == 0 || errno == EINTR, "waitid: %s", strerror(errno));
		if (now() - start > limit) {
			r.timed_out = true;
			break;
		}
		if (o.watch)
			o.watch(pid, o.watch_arg);
		usleep(o.watch ? 1000 : 2000);
	}
	r.secs = now() - start;
	kill(-pid, SIGKILL);
	cr_assert(waitpid(pid, &r.status, 0) == pid, "waitpid: %s", strerror(errno));
	{
		struct text t = slurp(r.out_path), e = slurp(r.err_path);

		r.out = t.s, r.out_len = t.n;
		r.err = e.s, r.err_len = e.n;
	}
	return r;
}

static void assert_exit0(const struct result *r)
{
	cr_assert(!r->timed_out && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
		  "%s: %s after %.2f s\nstderr: %.2000s\nstdout (start): %.500s", r->what,
		  describe_status(r), r->secs, r->err, r->out);
}

/* The first line where a and b differ, for the failure message. */
static char *first_difference(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i = 0, line = 1, bol = 0;
	char *msg;

	while (i < an && i < bn && a[i] == b[i]) {
		if (a[i] == '\n') {
			line++;
			bol = i + 1;
		}
		i++;
	}
	{
		const char *ea = memchr(a + bol, '\n', an - bol), *eb = memchr(b + bol, '\n', bn - bol);
		int la = (int)((ea ? ea - a : (ptrdiff_t)an) - (ptrdiff_t)bol);
		int lb = (int)((eb ? eb - b : (ptrdiff_t)bn) - (ptrdiff_t)bol);

		if (la > 300)
			la = 300;
		if (lb > 300)
			lb = 300;
		if (asprintf(&msg, "line %zu:\n  without the shim: %.*s%s\n  with the shim:    %.*s%s",
			     line, bol < an ? la : 0, bol < an ? a + bol : "", bol < an ? "" : "(end)",
			     bol < bn ? lb : 0, bol < bn ? b + bol : "", bol < bn ? "" : "(end)") < 0)
			msg = NULL;
	}
	return msg;
}

static void assert_same_output(const struct result *base, const struct result *shim)
{
	if (base->out_len != shim->out_len || memcmp(base->out, shim->out, base->out_len)) {
		char *diff = first_difference(base->out, base->out_len, shim->out, shim->out_len);

		cr_assert_fail("stdout differs with the shim (%zu vs %zu bytes; %s vs %s) at %s\n"
			       "stderr with the shim: %.2000s",
			       base->out_len, shim->out_len, base->out_path, shim->out_path,
			       diff ? diff : "?", shim->err);
	}
}

/* The shim was really there: it opens its log before anything else. */
static void assert_shim_loaded(void)
{
	cr_assert(access(T.log, F_OK) == 0,
		  "%s was not created: was %s preloaded at all?", T.log, T.lib);
}

static void assert_log_empty(void)
{
	char *log = shim_log();

	assert_shim_loaded();
	cr_assert(!*log, "the shim logged:\n%.3000s", log);
	free(log);
}

static void assert_no_sockets(void)
{
	char *left = sockets_left();

	cr_assert(!*left, "socket files left in %s after every process ended: %s", T.sock, left);
	free(left);
}

static void assert_same_stderr(const struct result *base, const struct result *shim)
{
	if (base->err_len != shim->err_len || memcmp(base->err, shim->err, base->err_len)) {
		char *diff = first_difference(base->err, base->err_len, shim->err, shim->err_len);

		cr_assert_fail("stderr differs with the shim at %s", diff ? diff : "?");
	}
}

enum { SAME_STDERR = 1, OWN_STDERR = 0 };

/* Runs argv without and with the shim; both must succeed with the same
 * output (stdout, and stderr unless the program reports on it what only
 * one of the runs can see) and the shim must stay silent. */
static void compare_runs(const char *const argv[], const char *const *env, double timeout,
			 int same_stderr, struct result *base_out, struct result *shim_out)
{
	struct result base = run(argv, (struct opts){ .env = env, .timeout = timeout });
	struct result shim;

	assert_exit0(&base);
	shim = run(argv, (struct opts){ .preload = true, .env = env, .timeout = timeout });
	assert_exit0(&shim);
	assert_same_output(&base, &shim);
	if (same_stderr)
		assert_same_stderr(&base, &shim);
	assert_log_empty();
	if (base_out)
		*base_out = base;
	if (shim_out)
		*shim_out = shim;
}

static const char *find_program(const char *const *candidates)
{
	for (int i = 0; candidates[i]; i++) {
		if (candidates[i][0] == '/') {
			if (access(candidates[i], X_OK) == 0)
				return candidates[i];
			continue;
		}
		const char *path = getenv("PATH");
		char *copy = strdup(path ? path : "/usr/bin:/bin"), *save = NULL;

		for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
			const char *full = pathf("%s/%s", dir, candidates[i]);

			if (access(full, X_OK) == 0) {
				static char found[PATH_MAX];

				snprintf(found, sizeof(found), "%s", full);
				free(copy);
				return found;
			}
		}
		free(copy);
	}
	return NULL;
}

#define PRELOAD_TEST(suite, name, secs) \
	Test(suite, name, .init = setup, .fini = teardown, .timeout = (secs))

/* ---------------------------------------------------------------------
 * 1-3. Real programs
 * --------------------------------------------------------------------- */

static const char *const C_LOCALE[] = { "LC_ALL=C", "TZ=UTC", NULL };

PRELOAD_TEST(programs, ls_recursive, 300)
{
	const char *ls = find_program((const char *const[]){ "/bin/ls", "/usr/bin/ls", "ls", NULL });
	struct result base, shim;

	cr_assert(ls, "no ls");
	compare_runs((const char *const[]){ ls, "-lR", "/usr/include", NULL },
		     C_LOCALE, 240, SAME_STDERR, &base, &shim);
	cr_assert(base.out_len > 100000, "ls -lR /usr/include printed only %zu bytes", base.out_len);
	cr_log_info("ls -lR /usr/include: %zu bytes, %.2f s without, %.2f s with the shim",
		    base.out_len, base.secs, shim.secs);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* About 8 MB of lines: random text of random lengths, a share of them
 * drawn from a small pool so that sort -u has duplicates to remove. */
static const char *make_sort_input(void)
{
	const char *path = pathf("%s/lines.txt", T.dir);
	size_t cap = 9 << 20, n = 0;
	char *buf = malloc(cap), pool[64][24];
	uint64_t s = 0x2545f4914f6cdd1dULL;

	cr_assert(buf);
	for (int i = 0; i < 64; i++) {
		for (int k = 0; k < 23; k++)
			pool[i][k] = (char)('a' + xorshift(&s) % 26);
		pool[i][23] = '\0';
	}
	while (n < (8 << 20)) {
		uint64_t r = xorshift(&s);

		if (r % 5 == 0) {
			n += (size_t)sprintf(buf + n, "%s\n", pool[r / 5 % 64]);
			continue;
		}
		size_t len = 1 + r / 5 % 120;
		for (size_t k = 0; k < len; k++) {
			uint64_t c = xorshift(&s) % 70;

			buf[n++] = c < 62 ? "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[c]
					  : " \t,.;:-_"[c - 62];
		}
		buf[n++] = '\n';
	}
	write_file(path, buf, n);
	free(buf);
	return path;
}

static void sort_case(const char *const extra[])
{
	const char *sort =
		find_program((const char *const[]){ "/usr/bin/sort", "/bin/sort", "sort", NULL });
	const char *input, *argv[16];
	struct result base, shim;
	int n = 0;

	cr_assert(sort, "no sort");
	input = make_sort_input();
	argv[n++] = sort;
	argv[n++] = "--parallel=2";
	argv[n++] = pathf("--temporary-directory=%s", T.dir);
	for (int i = 0; extra[i]; i++)
		argv[n++] = extra[i];
	argv[n++] = input;
	argv[n] = NULL;
	compare_runs(argv, C_LOCALE, 240, SAME_STDERR, &base, &shim);
	cr_assert(base.out_len > (1 << 20), "sort printed only %zu bytes", base.out_len);
	cr_log_info("sort %s: %zu bytes out, %.2f s without, %.2f s with the shim", extra[0],
		    base.out_len, base.secs, shim.secs);
}

PRELOAD_TEST(programs, sort_parallel, 300)
{
	/* A small buffer makes sort spill to temporary files and merge. */
	sort_case((const char *const[]){ "--buffer-size=1M", NULL });
}

PRELOAD_TEST(programs, sort_parallel_big_buffer, 300)
{
	sort_case((const char *const[]){ "--buffer-size=64M", "-k2", NULL });
}

PRELOAD_TEST(programs, sort_unique, 300)
{
	sort_case((const char *const[]){ "-u", NULL });
}

static const char *python(void)
{
	return find_program((const char *const[]){ "/usr/bin/python3", "python3", NULL });
}

static void python_case(const char *pymalloc)
{
	const char *py = python();
	const char *env[] = { "PYTHONHASHSEED=0", "PYTHONDONTWRITEBYTECODE=1", pymalloc, NULL };
	struct result base, shim;

	if (!py)
		cr_skip_test("no python3");
	compare_runs((const char *const[]){ py, pathf("%s/tests/fixtures/pre_alloc.py", srcdir()),
					    NULL },
		     env, 240, SAME_STDERR, &base, &shim);
	cr_assert(strstr(base.out, "python: done"), "the script did not finish:\n%s", base.out);
	cr_log_info("python (%s): %.2f s without, %.2f s with the shim", pymalloc ? pymalloc : "pymalloc",
		    base.secs, shim.secs);
}

PRELOAD_TEST(programs, python_script, 300)
{
	python_case(NULL);
}

/* Every object through malloc and free, not CPython's own small-object
 * allocator. */
PRELOAD_TEST(programs, python_script_pythonmalloc_malloc, 300)
{
	python_case("PYTHONMALLOC=malloc");
}

/* ---------------------------------------------------------------------
 * 4-6. C++, threads, the semantics of every function
 * --------------------------------------------------------------------- */

PRELOAD_TEST(fixtures, cxx_program, 300)
{
	struct result base;

	compare_runs((const char *const[]){ fixture("pre_cxx"), NULL },
		     NULL, 240, SAME_STDERR, &base, NULL);
	cr_assert(strstr(base.out, "new char[2^60]: bad_alloc") && strstr(base.out, "cxx: done"),
		  "unexpected reference output:\n%s", base.out);
}

PRELOAD_TEST(fixtures, four_threads, 300)
{
	struct result base, shim;

	compare_runs((const char *const[]){ fixture("pre_mt4"), NULL },
		     NULL, 240, OWN_STDERR, &base, &shim);
	cr_assert(strstr(base.out, "verification failures: 0"), "%s", base.out);
	cr_assert(strstr(base.err, "api: absent"), "without the shim: %s", base.err);
	cr_assert(strstr(shim.err, "api: ok"), "the shim's counters disagree:\n%s", shim.err);
	cr_log_info("pre_mt4: %.2f s without, %.2f s with the shim", base.secs, shim.secs);
}

/* Eight threads a CPU and more alive at once: those started among so many
 * get small caches, and the program runs as without the shim, collections
 * included. */
PRELOAD_TEST(fixtures, crowded_threads, 300)
{
	static const char *const growth[] = { "GCSHIM_GROWTH=on", NULL };
	struct result base, shim;
	const char *line;
	long crowded = -1;
	int threads = 0;

	compare_runs((const char *const[]){ fixture("pre_crowd"), NULL },
		     growth, 240, OWN_STDERR, &base, &shim);
	cr_assert(strstr(base.out, "verification failures: 0"), "%s", base.out);
	cr_assert(strstr(base.err, "api: absent"), "without the shim: %s", base.err);
	line = strstr(shim.err, "api: crowded ");
	cr_assert(line && sscanf(line, "api: crowded %ld of %d", &crowded, &threads) == 2,
		  "%s", shim.err);
	cr_expect_gt(crowded, 0, "no thread of %d started crowded", threads);
	cr_expect_lt(crowded, threads, "every thread started crowded");
	cr_log_info("pre_crowd: %.2f s without, %.2f s with the shim, %ld of %d crowded",
		    base.secs, shim.secs, crowded, threads);
}

PRELOAD_TEST(fixtures, malloc_semantics_match_glibc, 300)
{
	struct result base;

	compare_runs((const char *const[]){ fixture("pre_semantics"), NULL },
		     NULL, 240, SAME_STDERR, &base, NULL);
	cr_assert(strstr(base.out, "semantics: done"), "%s", base.out);
}

/* ---------------------------------------------------------------------
 * 7. Foreign pointers
 * --------------------------------------------------------------------- */

/* The value after "LABEL " in the fixture's output. */
static char *reported(const char *out, const char *label)
{
	const char *p = strstr(out, pathf("%s 0x", label));
	char *v;

	cr_assert(p, "the fixture did not report its %s pointer:\n%s", label, out);
	p += strlen(label) + 1;
	v = strndup(p, strcspn(p, " \n"));
	return v;
}

PRELOAD_TEST(foreign, pointers_never_crash, 120)
{
	struct result r = run((const char *const[]){ fixture("pre_foreign"), NULL },
			      (struct opts){ .preload = true });
	char *log, *foreign, *interior, *realloced, *usable;

	assert_exit0(&r);
	cr_assert(strstr(r.out, "foreign: done, 0 failures"), "%s", r.out);
	assert_shim_loaded();
	log = shim_log();
	foreign = reported(r.out, "foreign");
	interior = reported(r.out, "interior");
	realloced = reported(r.out, "realloc");
	usable = reported(r.out, "usable");
	/* One line per kind of event, naming the first pointer of that kind. */
	cr_assert_eq(count_lines(log), 4, "expected 4 log lines, one per kind:\n%s", log);
	cr_assert_eq(LINES_WITH(log, "free("), 2, "%s", log);
	cr_assert_eq(LINES_WITH(log, pathf("free(%s)", foreign), "foreign"), 1,
		     "no line for the foreign free(%s):\n%s", foreign, log);
	cr_assert_eq(LINES_WITH(log, pathf("free(%s)", interior)), 1,
		     "no line for the interior free(%s):\n%s", interior, log);
	cr_assert_eq(LINES_WITH(log, pathf("realloc(%s)", realloced)), 1,
		     "no line for realloc(%s):\n%s", realloced, log);
	cr_assert_eq(LINES_WITH(log, pathf("malloc_usable_size(%s)", usable)), 1,
		     "no line for malloc_usable_size(%s):\n%s", usable, log);
	cr_assert_eq(LINES_WITH(log, pathf("gcshim[%d]: ", (int)r.pid)), 4,
		     "every line names the shim and the process:\n%s", log);
	cr_assert(!r.err_len, "stderr: %s", r.err);
}

/* realloc() of a pointer whose memory cannot be read at all: the shim
 * promises to copy "as many of the first n bytes as are readable". */
PRELOAD_TEST(foreign, realloc_of_unreadable_pointer, 120)
{
	struct result r = run((const char *const[]){ fixture("pre_foreign"), "unreadable", NULL },
			      (struct opts){ .preload = true });
	char *log = shim_log();

	assert_shim_loaded();
	cr_assert(!r.timed_out && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
		  "realloc of an unmapped / PROT_NONE foreign pointer: %s\nstdout: %s\nlog: %s",
		  describe_status(&r), r.out, log);
	cr_assert(strstr(r.out, "unreadable: done, 0 failures"), "%s", r.out);
	cr_assert_eq(LINES_WITH(log, "realloc("), 1, "%s", log);
}

/* ---------------------------------------------------------------------
 * 8-10. Process life: pthread_exit from main, fork from a thread, exec
 * --------------------------------------------------------------------- */

/* The number after "LABEL " in s. */
static long long number_after(const char *s, const char *label)
{
	const char *p = strstr(s, label);

	cr_assert(p, "no \"%s\" in:\n%s", label, s);
	return strtoll(p + strlen(label), NULL, 10);
}

struct sock_watch {
	bool seen;
	char name[64];
};

static void watch_socket(pid_t pid, void *arg)
{
	struct sock_watch *w = arg;
	char path[PATH_MAX + 64];

	snprintf(w->name, sizeof(w->name), "%d.sock", (int)pid);
	snprintf(path, sizeof(path), "%s/%s", T.sock, w->name);
	if (!w->seen && access(path, F_OK) == 0)
		w->seen = true;
}

PRELOAD_TEST(process, pthread_exit_from_main, 120)
{
	/* The worker sleeps a second: time enough to see the socket.  Kept
	 * alive by the shim, the process would end only at the timeout. */
	const char *const argv[] = { fixture("pre_pexit"), "1000", NULL };
	struct sock_watch w = { 0 };
	struct result base = run(argv, (struct opts){ .timeout = 30 });
	struct result shim = run(argv, (struct opts){ .preload = true, .timeout = 30,
						       .watch = watch_socket, .watch_arg = &w });

	assert_exit0(&base);
	cr_assert(strstr(base.out, "worker done"), "%s", base.out);
	assert_exit0(&shim);
	assert_same_output(&base, &shim);
	assert_log_empty();
	cr_assert(w.seen, "the control socket %s never appeared while the process ran", w.name);
	cr_assert(access(pathf("%s/%s", T.sock, w.name), F_OK) != 0, "%s is still there", w.name);
	assert_no_sockets();
	cr_log_info("pthread_exit from main: ends %.3f s after start (worker sleeps 1 s), %.3f s "
		    "without the shim", shim.secs, base.secs);
}

PRELOAD_TEST(process, fork_from_thread_child_returns, 120)
{
	const char *const argv[] = { fixture("pre_forkthr"), "10", NULL };
	struct result base = run(argv, (struct opts){ .timeout = 30 });
	struct result shim = run(argv, (struct opts){ .preload = true, .timeout = 30 });

	assert_exit0(&base);
	cr_assert(strstr(base.out, "child: exit 0"), "without the shim: %s", base.out);
	assert_exit0(&shim);
	cr_assert(strstr(shim.out, "child: exit 0"),
		  "the child whose only thread returned did not exit 0 under the shim:\n%s",
		  shim.out);
	assert_log_empty();
	/* The child ended through exit(): its socket went with it. */
	{
		long child = (long)number_after(shim.out, "child pid ");

		cr_assert(access(pathf("%s/%ld.sock", T.sock, child), F_OK) != 0,
			  "the child's socket %ld.sock is still there", child);
	}
	cr_log_info("fork from a thread: %.3f s with, %.3f s without the shim", shim.secs,
		    base.secs);
}

PRELOAD_TEST(process, spawn_loop, 300)
{
	const char *const argv[] = { fixture("pre_spawn"), "loop", "200", NULL };
	struct result base, shim;

	compare_runs(argv, NULL, 240, OWN_STDERR, &base, &shim);
	cr_assert(strstr(base.out, "fork+exec: 200/200") && strstr(base.out, "system: 200/200"),
		  "%s", base.out);
	cr_log_info("200 x (fork+exec, posix_spawn, system): %.2f s without the shim, %.2f s "
		    "with it (x%.1f)", base.secs, shim.secs, shim.secs / base.secs);
	cr_log_info("without the shim, %.*s", (int)strcspn(base.err, "\n"), base.err);
	cr_log_info("with the shim,    %.*s", (int)strcspn(shim.err, "\n"), shim.err);
}

PRELOAD_TEST(process, exec_self, 120)
{
	struct result base, shim;

	compare_runs((const char *const[]){ fixture("pre_spawn"), "self", NULL },
		     NULL, 60, SAME_STDERR, &base, &shim);
	cr_assert(strstr(base.out, "first image\nsecond image\n"), "%s", base.out);
}

/* A process removes its socket as it exits, even when it exits just as
 * its control thread is creating the socket.  Short lives of every length
 * from 0 to 300 microseconds, so that some end inside that window. */
PRELOAD_TEST(process, no_socket_left_by_short_process, 300)
{
	int left = 0;
	char *names = calloc(1, 1);

	for (int i = 0; i < 300; i++) {
		struct result r = run((const char *const[]){ fixture("pre_short"),
							     pathf("%d", i % 150 * 2), NULL },
				      (struct opts){ .preload = true, .timeout = 30 });
		char *now_left = sockets_left();

		assert_exit0(&r);
		if (*now_left) {
			left++;
			names = realloc(names, strlen(names) + strlen(now_left) + 2);
			strcat(strcat(names, " "), now_left);
			unlink(pathf("%s/%s", T.sock, now_left));
		}
		free(now_left);
	}
	assert_log_empty();
	cr_assert(!left, "%d of 300 short-lived processes left their socket behind:%s", left, names);
}

/* Programs that end with _exit(), which runs no destructor: the shell
 * (dash ends that way), and a fixture. */
PRELOAD_TEST(process, no_socket_left_after__exit, 120)
{
	const char *sh = find_program((const char *const[]){ "/bin/sh", "sh", NULL });
	const char *const *progs[] = {
		(const char *const[]){ sh, "-c", "sleep 0.3; echo shell done", NULL },
		(const char *const[]){ fixture("pre_short"), "300000", "_exit", NULL },
	};

	for (int i = 0; i < 2; i++) {
		struct sock_watch w = { 0 };
		struct result r = run(progs[i], (struct opts){ .preload = true, .timeout = 30,
							       .watch = watch_socket, .watch_arg = &w });

		assert_exit0(&r);
		cr_assert(w.seen, "%s: the socket never appeared", r.what);
		cr_assert(access(pathf("%s/%s", T.sock, w.name), F_OK) != 0,
			  "%s ended through _exit() and left its socket %s", r.what, w.name);
	}
	assert_log_empty();
}

/* A socket belongs to a PID; when that PID's image execs a program that
 * ends quickly, nobody is left to remove it.  Both ways: an image that
 * execs itself, and fork children (which get a control thread of their
 * own at fork) that exec /bin/true. */
PRELOAD_TEST(process, no_socket_left_after_exec, 120)
{
	for (int i = 0; i < 5; i++) {
		struct result r = run((const char *const[]){ fixture("pre_spawn"), "self", "wait", NULL },
				      (struct opts){ .preload = true, .timeout = 30 });

		assert_exit0(&r);
		cr_assert(strstr(r.out, "socket before exec: present"), "%s", r.out);
		assert_no_sockets();
	}
	{
		struct result r = run((const char *const[]){ fixture("pre_spawn"), "forkexec", "20",
							     NULL },
				      (struct opts){ .preload = true, .timeout = 60 });

		assert_exit0(&r);
		cr_assert(strstr(r.out, "fork+exec: 20/20"), "%s", r.out);
		assert_no_sockets();
	}
}

/* ---------------------------------------------------------------------
 * 11. Hosts with an allocator or a C++ runtime of their own
 * --------------------------------------------------------------------- */

PRELOAD_TEST(hosts, linked_with_jemalloc, 120)
{
	struct result base;

	compare_runs((const char *const[]){ fixture("pre_jemalloc"), NULL },
		     NULL, 60, SAME_STDERR, &base, NULL);
	cr_assert(strstr(base.out, "jemalloc fixture: done"), "%s", base.out);
}

PRELOAD_TEST(hosts, dlopen_libstdcxx, 120)
{
	struct result base;

	compare_runs((const char *const[]){ fixture("pre_dlcxx"), "local", NULL },
		     NULL, 60, SAME_STDERR, &base, NULL);
	cr_assert(strstr(base.out, "dlcxx: done"), "%s", base.out);
}

PRELOAD_TEST(hosts, dlopen_libstdcxx_global_new_fails, 120)
{
	struct result base;

	compare_runs((const char *const[]){ fixture("pre_dlcxx"), "global", "oom", NULL },
		     NULL, 60, SAME_STDERR, &base, NULL);
	cr_assert(strstr(base.out, "nothrow new(2^60): NULL"), "%s", base.out);
}

/* As a Python extension written in C++ would have it: libstdc++ loaded
 * RTLD_LOCAL, its nothrow operator new calling the shim's operator new,
 * which fails.  The failure must come back as NULL. */
PRELOAD_TEST(hosts, dlopen_libstdcxx_local_new_fails, 120)
{
	struct result base;

	compare_runs((const char *const[]){ fixture("pre_dlcxx"), "local", "oom", NULL },
		     NULL, 60, SAME_STDERR, &base, NULL);
	cr_assert(strstr(base.out, "nothrow new(2^60): NULL"), "%s", base.out);
}

/* ---------------------------------------------------------------------
 * 12. Start-up: options
 * --------------------------------------------------------------------- */

static const char *const BAD_OPTIONS[] = {
	"GCSHIM_HEAP_LIMIT=12X", "GCSHIM_THRESHOLD=abc", "GCSHIM_DEBUG=bogus",
	"GCSHIM_ARENAS=-5", NULL,
};

/* Each bad variable: one line, with its name, its value and the default
 * (the documented one: 0, -1, 0 and 0). */
static void assert_bad_option_lines(const char *text, int runs)
{
	static const char *const want[][3] = {
		{ "GCSHIM_HEAP_LIMIT", "12X", "default 0" },
		{ "GCSHIM_THRESHOLD", "abc", "default -1" },
		{ "GCSHIM_DEBUG", "bogus", "default 0" },
		{ "GCSHIM_ARENAS", "-5", "default 0" },
	};

	cr_assert_eq(count_lines(text), 4 * runs, "expected %d lines, one per bad variable:\n%s",
		     4 * runs, text);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(LINES_WITH(text, want[i][0], want[i][1], want[i][2]), runs,
			     "no line naming %s, '%s' and the %s:\n%s", want[i][0], want[i][1],
			     want[i][2], text);
}

static void bad_options_case(bool to_log)
{
	const char *echo = find_program((const char *const[]){ "/bin/echo", "/usr/bin/echo", NULL });
	const char *tru = find_program((const char *const[]){ "/bin/true", "/usr/bin/true", NULL });
	const char *const *progs[] = { (const char *const[]){ tru, NULL },
				       (const char *const[]){ echo, "hi", NULL } };
	char *all_err = calloc(1, 1);

	cr_assert(echo && tru);
	for (int i = 0; i < 2; i++) {
		struct result base = run(progs[i], (struct opts){ .env = BAD_OPTIONS, .no_log = !to_log });
		struct result shim = run(progs[i], (struct opts){ .preload = true, .env = BAD_OPTIONS,
								  .no_log = !to_log });

		assert_exit0(&base);
		assert_exit0(&shim);
		assert_same_output(&base, &shim);
		if (to_log) {
			cr_assert(!shim.err_len, "stderr of %s: %s", progs[i][0], shim.err);
		} else {
			all_err = realloc(all_err, strlen(all_err) + shim.err_len + 1);
			strcat(all_err, shim.err);
		}
	}
	if (to_log) {
		char *log = shim_log();

		assert_bad_option_lines(log, 2);
		cr_assert_eq(LINES_WITH(log, "gcshim["), 8, "%s", log);
		free(log);
	} else {
		assert_bad_option_lines(all_err, 2);
	}
	free(all_err);
}

PRELOAD_TEST(startup, bad_options_logged_once_each, 60)
{
	bad_options_case(true);
}

PRELOAD_TEST(startup, bad_options_on_stderr, 60)
{
	bad_options_case(false);
}

PRELOAD_TEST(startup, good_options_silent, 60)
{
	static const char *const good[] = {
		"GCSHIM_HEAP_LIMIT=512M", "GCSHIM_THRESHOLD=off", "GCSHIM_DEBUG=stats,saveall",
		"GCSHIM_ARENAS=3", "GCSHIM_ENABLE=no", "GCSHIM_GEN_THRESHOLD=700,10,10",
		"GCSHIM_HEAP_RESERVE=1G", NULL,
	};
	const char *echo = find_program((const char *const[]){ "/bin/echo", "/usr/bin/echo", NULL });
	struct result base = run((const char *const[]){ echo, "hi", NULL }, (struct opts){ .env = good });
	struct result shim = run((const char *const[]){ echo, "hi", NULL },
				 (struct opts){ .preload = true, .env = good });

	assert_exit0(&base);
	assert_exit0(&shim);
	assert_same_output(&base, &shim);
	assert_log_empty();
}

PRELOAD_TEST(startup, socket_off, 60)
{
	static const char *const off[] = { "GCSHIM_SOCKET=0", NULL };
	const char *const argv[] = { fixture("pre_pexit"), "800", NULL };
	struct sock_watch on_w = { 0 }, off_w = { 0 };
	struct result on = run(argv, (struct opts){ .preload = true, .watch = watch_socket,
						     .watch_arg = &on_w });
	struct result r;

	/* With the default, the socket appears while the program runs... */
	assert_exit0(&on);
	cr_assert(on_w.seen, "with GCSHIM_SOCKET unset, %s never appeared", on_w.name);
	/* ...and with GCSHIM_SOCKET=0 it never does. */
	r = run(argv, (struct opts){ .preload = true, .env = off, .watch = watch_socket,
				     .watch_arg = &off_w });
	assert_exit0(&r);
	assert_same_output(&on, &r);
	cr_assert(!off_w.seen, "GCSHIM_SOCKET=0, yet %s appeared", off_w.name);
	assert_log_empty();
	assert_no_sockets();
}

PRELOAD_TEST(startup, heap_limit, 120)
{
	const long long limit = 8 << 20, block = 256 << 10, cap = 2 * limit;
	static const char *const lim[] = { "GCSHIM_HEAP_LIMIT=8M", NULL };
	const char *const argv[] = { fixture("pre_limit"), pathf("%lld", cap), NULL };
	struct result base = run(argv, (struct opts){ .env = lim });
	struct result nolimit = run(argv, (struct opts){ .preload = true });
	struct result r = run(argv, (struct opts){ .preload = true, .env = lim });
	long long filled, refilled;

	/* Without a limit everything fits, with or without the shim. */
	assert_exit0(&base);
	cr_assert(strstr(base.out, pathf("filled %lld: cap reached", cap)), "%s", base.out);
	assert_exit0(&nolimit);
	assert_same_output(&base, &nolimit);

	assert_exit0(&r);
	filled = number_after(r.out, "filled ");
	refilled = number_after(r.out, "refilled ");
	cr_assert(strstr(r.out, pathf("filled %lld: ENOMEM", filled)),
		  "allocation beyond GCSHIM_HEAP_LIMIT=8M did not fail with ENOMEM:\n%s", r.out);
	cr_assert(filled <= limit && filled > limit - 2 * block,
		  "malloc failed after %lld bytes, the limit is %lld:\n%s", filled, limit, r.out);
	cr_assert(strstr(r.out, pathf("refilled %lld: ENOMEM", refilled)) &&
		  refilled <= limit && refilled > limit - 2 * block,
		  "after freeing half, allocation did not reach the limit again:\n%s", r.out);
	cr_assert_eq(LINES_WITH(r.out, "contents kept: 1"), 2, "%s", r.out);
	cr_assert(strstr(r.out, "malloc(cap): NULL ENOMEM"), "%s", r.out);
	cr_assert(strstr(r.out, "calloc(cap): NULL ENOMEM"), "%s", r.out);
	cr_assert(strstr(r.out, "realloc(small, cap): NULL ENOMEM old kept:1"), "%s", r.out);
	cr_assert(strstr(r.out, "posix_memalign(cap): ENOMEM"), "%s", r.out);
	cr_assert(strstr(r.out, "aligned_alloc(cap): NULL ENOMEM"), "%s", r.out);
	cr_assert(strstr(r.out, "after freeing one block: memory"), "%s", r.out);
	cr_assert(strstr(r.out, "malloc(held/2) after freeing all: memory"), "%s", r.out);
	cr_assert(strstr(r.out, "limit: done"), "%s", r.out);
	assert_log_empty();
}

/* A limit that cannot be read is reported and not applied. */
PRELOAD_TEST(startup, heap_limit_bad_value_means_no_limit, 120)
{
	static const char *const bad[] = { "GCSHIM_HEAP_LIMIT=8Q", NULL };
	const char *const argv[] = { fixture("pre_limit"), pathf("%d", 16 << 20), NULL };
	struct result base = run(argv, (struct opts){ .env = bad });
	struct result r = run(argv, (struct opts){ .preload = true, .env = bad });
	char *log = shim_log();

	assert_exit0(&base);
	assert_exit0(&r);
	assert_same_output(&base, &r);
	cr_assert(count_lines(log) == 1 && LINES_WITH(log, "GCSHIM_HEAP_LIMIT", "8Q", "default") == 1,
		  "%s", log);
}
