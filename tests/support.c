#define _GNU_SOURCE
#include "support.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);

	return v && *v ? v : fallback;
}

char *build_path(const char *rel)
{
	static char buf[8][512];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, 512, "%s/%s", env_or("top_builddir", "."), rel);
	return p;
}

bool read_line_fd(int fd, char *buf, size_t *len, size_t cap, char *line, size_t lcap,
		  int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	char *nl;

	while (!(nl = memchr(buf, '\n', *len))) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (*len == cap || now_ms() >= deadline ||
		    poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
			return false;
		n = read(fd, buf + *len, cap - *len);
		if (n <= 0)
			return false;
		*len += (size_t)n;
	}
	*nl = '\0';
	snprintf(line, lcap, "%s", buf);
	*len -= (size_t)(nl + 1 - buf);
	memmove(buf, nl + 1, *len);
	return true;
}

/* ---- files and text ---------------------------------------------------------- */

char *read_file(const char *path)
{
	static char buf[4][TEXT_MAX];
	static int next;
	char *b = buf[next++ % 4];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(b, 1, TEXT_MAX - 1, f) : 0;

	if (f)
		fclose(f);
	b[n] = '\0';
	return b;
}

void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* ---- programs under the shim -------------------------------------------------- */

void scratch_make(struct scratch *s, const char *name)
{
	snprintf(s->dir, sizeof(s->dir), "/tmp/gcshim-%s-XXXXXX", name);
	cr_assert_not_null(mkdtemp(s->dir));
	snprintf(s->log, sizeof(s->log), "%s/shim.log", s->dir);
	snprintf(s->err, sizeof(s->err), "%s/stderr", s->dir);
	snprintf(s->sock, sizeof(s->sock), "%s/sock", s->dir);
}

void scratch_remove(const struct scratch *s)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
	system(cmd);
}

pid_t shim_start(const struct scratch *s, char *const argv[], const char *const env[],
		 int *outfd, int *infd)
{
	int o[2], i[2];
	pid_t pid;

	cr_assert_eq(pipe(o), 0);
	cr_assert_eq(pipe(i), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int err = open(s->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(infd ? i[0] : open("/dev/null", O_RDONLY), 0);
		dup2(o[1], 1);
		dup2(err, 2);
		close(o[0]);
		close(i[1]);
		setenv("LD_PRELOAD", env_or("GCSHIM_LIB", ".libs/libgcshim.so"), 1);
		setenv("GCSHIM_SOCKET", "0", 1);
		setenv("GCSHIM_LOG", s->log, 1);
		for (int k = 0; env && env[k]; k++)
			putenv((char *)env[k]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(o[1]);
	close(i[0]);
	*outfd = o[0];
	if (infd)
		*infd = i[1];
	else
		close(i[1]);
	return pid;
}

int shim_finish(pid_t pid, int outfd, char *out, size_t cap)
{
	size_t len = 0;
	ssize_t n;
	int status;

	while ((n = read(outfd, out + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(outfd);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int shim_run(const struct scratch *s, char *const argv[], const char *const env[], char *out,
	     size_t cap)
{
	int fd;
	pid_t pid = shim_start(s, argv, env, &fd, NULL);

	return shim_finish(pid, fd, out, cap);
}

int read_ready(int outfd)
{
	char buf[1024], line[256];
	size_t len = 0;
	int pid;

	while (read_line_fd(outfd, buf, &len, sizeof(buf), line, sizeof(line), 30000))
		if (sscanf(line, "ready %d", &pid) == 1)
			return pid;
	cr_assert_fail("the fixture did not start");
	return -1;
}

int gcctl_run(const struct scratch *s, int pid, const char *args, char *out, size_t cap)
{
	char cmd[1024];
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof(cmd), "GCSHIM_SOCKET_DIR=%s %s -p %d %s", s->sock, build_path("gcctl"),
		 pid, args);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
