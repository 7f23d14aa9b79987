#define _GNU_SOURCE
#include "support.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
