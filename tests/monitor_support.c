#define _GNU_SOURCE
#include "monitor_support.h"

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

#define MAX_CHILDREN 16
#define RUN_TIMEOUT_MS 60000

static char dir[] = "/tmp/gcshim-mon-XXXXXX";
static pid_t children[MAX_CHILDREN];
static int n_children;

const char *mon_dir(void)
{
	return dir;
}

const char *mon_lib(void)
{
	return env_or("GCSHIM_LIB", build_path(".libs/libgcshim.so"));
}

const char *mon_pid(pid_t pid)
{
	static char buf[8][16];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, 16, "%d", (int)pid);
	return p;
}

void mon_setup(void)
{
	cr_assert(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	setenv("GCSHIM_SOCKET_DIR", dir, 1);
	unsetenv("LD_PRELOAD");
}

static void remove_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char p[PATH_MAX];

	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(path);
}

void mon_kill(pid_t pid)
{
	kill(pid, SIGCONT);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

void mon_teardown(void)
{
	for (int i = 0; i < n_children; i++)
		mon_kill(children[i]);
	remove_dir(dir);
}

static void keep_child(pid_t pid)
{
	cr_assert_lt(n_children, MAX_CHILDREN);
	children[n_children++] = pid;
}

static void put_env(char *const env[])
{
	for (int i = 0; env && env[i]; i++)
		putenv(env[i]);
}

pid_t mon_start(char *const argv[], char *const env[])
{
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		setenv("LD_PRELOAD", mon_lib(), 1);
		put_env(env);
		execvp(argv[0], argv);
		_exit(127);
	}
	keep_child(pid);
	return pid;
}

pid_t mon_start_gcctl(char *const args[])
{
	char *argv[16] = { build_path("gcctl") };
	int n = 1;
	pid_t pid;

	for (; args[n - 1] && n < 15; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	keep_child(pid);
	return pid;
}

void mon_kill_after(pid_t pid, int ms)
{
	pid_t k = fork();

	cr_assert(k >= 0);
	if (k == 0) {
		poll(NULL, 0, ms);
		kill(pid, SIGKILL);
		_exit(0);
	}
	keep_child(k);
}

void mon_kill_when(pid_t pid, bool (*done)(void *arg), void *arg, int deadline_ms)
{
	pid_t k = fork();

	cr_assert(k >= 0);
	if (k == 0) {
		for (int waited = 0; waited < deadline_ms && !done(arg); waited += 50)
			poll(NULL, 0, 50);
		kill(pid, SIGKILL);
		_exit(0);
	}
	keep_child(k);
}

struct sink {
	char *buf;
	size_t len, cap;
};

static void sink_read(struct sink *s, int fd, bool *open)
{
	char chunk[4096];
	ssize_t n = read(fd, chunk, sizeof(chunk));

	if (n <= 0) {
		*open = false;
		return;
	}
	if (s->len + (size_t)n + 1 > s->cap) {
		s->cap = (s->len + (size_t)n + 1) * 2;
		s->buf = realloc(s->buf, s->cap);
		cr_assert(s->buf);
	}
	memcpy(s->buf + s->len, chunk, (size_t)n);
	s->len += (size_t)n;
	s->buf[s->len] = '\0';
}

static void child_exec(char *const argv[], char *const env[], int in, int out, int err)
{
	dup2(in, 0);
	dup2(out, 1);
	dup2(err, 2);
	put_env(env);
	execvp(argv[0], argv);
	dprintf(2, "cannot run %s: %s", argv[0], strerror(errno));
	_exit(127);
}

struct mon_result *mon_run(char *const argv[], char *const env[], const char *stdin_text)
{
	struct mon_result *r = calloc(1, sizeof(*r));
	struct sink out = { calloc(1, 1), 0, 1 }, err = { calloc(1, 1), 0, 1 };
	int pin[2], pout[2], perr[2], status;
	bool oo = true, eo = true;
	long long deadline = now_ms() + RUN_TIMEOUT_MS;
	pid_t pid;

	cr_assert(r && pipe2(pin, O_CLOEXEC) == 0 && pipe2(pout, O_CLOEXEC) == 0 &&
		  pipe2(perr, O_CLOEXEC) == 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		child_exec(argv, env, pin[0], pout[1], perr[1]);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	if (stdin_text && write(pin[1], stdin_text, strlen(stdin_text)) < 0)
		cr_log_warn("writing to %s: %s", argv[0], strerror(errno));
	close(pin[1]);
	while ((oo || eo) && now_ms() < deadline) {
		struct pollfd p[2] = { { oo ? pout[0] : -1, POLLIN, 0 }, { eo ? perr[0] : -1, POLLIN, 0 } };

		if (poll(p, 2, 1000) <= 0)
			continue;
		if (p[0].revents)
			sink_read(&out, pout[0], &oo);
		if (p[1].revents)
			sink_read(&err, perr[0], &eo);
	}
	if (oo || eo)
		kill(pid, SIGKILL);
	close(pout[0]);
	close(perr[0]);
	waitpid(pid, &status, 0);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) :
		    WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
	r->out = out.buf;
	r->err = err.buf;
	return r;
}

struct mon_result *mon_gcctl(const char *arg, ...)
{
	char *argv[32] = { build_path("gcctl") };
	int n = 1;
	va_list ap;

	va_start(ap, arg);
	for (const char *a = arg; a && n < 31; a = va_arg(ap, const char *))
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	return mon_run(argv, NULL, NULL);
}

void mon_wait_answering(pid_t pid)
{
	long long deadline = now_ms() + 20000;

	while (mon_gcctl("-p", mon_pid(pid), "mem-alloc", NULL)->status != 0) {
		cr_assert_lt(now_ms(), deadline, "process %d never answered", (int)pid);
		poll(NULL, 0, 50);
	}
}

void mon_wait_collections(pid_t pid, long n)
{
	long long deadline = now_ms() + 20000;

	mon_wait_answering(pid);
	for (;;) {
		struct mon_result *r = mon_gcctl("-p", mon_pid(pid), "--json", "stats", NULL);
		const char *c = strstr(r->out, "\"collections\":");

		if (c && atol(c + 14) >= n)
			return;
		cr_assert_lt(now_ms(), deadline, "process %d ran fewer than %ld collections: %s",
			     (int)pid, n, r->out);
		poll(NULL, 0, 50);
	}
}

void mon_wait_port(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	long long deadline = now_ms() + 10000;

	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return;
		cr_assert_lt(now_ms(), deadline, "nothing listens on port %d", port);
		poll(NULL, 0, 50);
	}
}

int mon_count(const char *text, const char *needle)
{
	int n = 0;

	for (const char *s = text; (s = strstr(s, needle)); s += strlen(needle))
		n++;
	return n;
}
