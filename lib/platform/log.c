#define _GNU_SOURCE
#include "log.h"

#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* No descriptor is kept: the log file is opened for each message and
 * closed after it, so a program that closes or replaces descriptors it
 * does not know never takes ours, nor makes us write into its own file.
 * Its path is made absolute at start-up, against a later chdir.  If it
 * cannot be opened, standard error says so once and receives the
 * messages: a silent shim would hide bad options. */
enum { LOG_STDERR, LOG_FILE };

static char log_path[4096];
static _Atomic int log_to = LOG_STDERR;

static bool absolute(const char *path, char *out, size_t cap)
{
	size_t n = 0;

	if (*path != '/') {
		if (!getcwd(out, cap))
			return false;
		n = strlen(out);
	}
	return fmt_s(out + n, cap - n, "%s%s", *path == '/' || (n && out[n - 1] == '/') ? "" : "/",
		     path) < cap - n;
}

/* strerror() may translate, and translating allocates. */
static const char *open_error(int err)
{
	switch (err) {
	case ENOENT: return "no such file or directory";
	case ENOTDIR: return "a component of the path is not a directory";
	case EISDIR: return "it is a directory";
	case EACCES: return "permission denied";
	case EROFS: return "read-only file system";
	case ENOSPC: return "no space left on device";
	case ENAMETOOLONG: return "the path is too long";
	default: return "cannot be opened";
	}
}

static void fall_back_to_stderr(const char *path, int err)
{
	atomic_store(&log_to, LOG_STDERR);
	log_msg("cannot open GCSHIM_LOG '%s': %s (errno %d); logging to standard error",
		path, open_error(err), err);
}

/* The file is created now, so that its presence tells that the shim
 * started. */
void log_open(const char *path)
{
	int fd;

	if (!path || !*path)
		return;
	if (!absolute(path, log_path, sizeof(log_path))) {
		fall_back_to_stderr(path, ENAMETOOLONG);
		return;
	}
	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		fall_back_to_stderr(log_path, errno);
		return;
	}
	os_close(fd);
	atomic_store(&log_to, LOG_FILE);
}

/* A file that opened at start-up and no longer does (removed directory,
 * full disk): this message and the later ones go to standard error. */
static int open_target(bool *owned)
{
	int fd;

	if (atomic_load(&log_to) == LOG_FILE) {
		fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		atomic_store(&log_to, LOG_STDERR);
	}
	return os_program_fd(2, owned);
}

static void write_line(const char *line, size_t len)
{
	bool owned = true;
	int fd = open_target(&owned);

	while (fd >= 0 && write(fd, line, len) < 0 && errno == EINTR)
		;
	if (fd >= 0 && owned)
		os_close(fd);
}

struct out {
	char *buf;
	size_t cap, len;
};

static void put_c(struct out *o, char c)
{
	if (o->len + 1 < o->cap)
		o->buf[o->len] = c;
	o->len++;
}

static void put_s(struct out *o, const char *s)
{
	if (!s)
		s = "(null)";
	while (*s)
		put_c(o, *s++);
}

static void put_u(struct out *o, uint64_t v, unsigned base)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		put_c(o, tmp[--n]);
}

static void put_i(struct out *o, int64_t v)
{
	if (v < 0) {
		put_c(o, '-');
		put_u(o, -(uint64_t)v, 10);
	} else {
		put_u(o, (uint64_t)v, 10);
	}
}

/* A printf subset: %s %c %d %i %u %x %p with l, ll, z modifiers.  No
 * floating point, no widths: nothing here may allocate or take a lock. */
size_t fmt_v(char *buf, size_t cap, const char *fmt, va_list ap)
{
	struct out o = { buf, cap, 0 };

	for (; *fmt; fmt++) {
		int lng = 0;

		if (*fmt != '%') {
			put_c(&o, *fmt);
			continue;
		}
		while (fmt[1] == 'l' || fmt[1] == 'z') {
			lng++;
			fmt++;
		}
		switch (*++fmt) {
		case 's': put_s(&o, va_arg(ap, const char *)); break;
		case 'c': put_c(&o, (char)va_arg(ap, int)); break;
		case 'd':
		case 'i':
			put_i(&o, lng ? va_arg(ap, long) : va_arg(ap, int));
			break;
		case 'u':
			put_u(&o, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10);
			break;
		case 'x':
			put_u(&o, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16);
			break;
		case 'p':
			put_s(&o, "0x");
			put_u(&o, (uintptr_t)va_arg(ap, void *), 16);
			break;
		case '%': put_c(&o, '%'); break;
		case '\0': fmt--; break;
		default: put_c(&o, '%'); put_c(&o, *fmt); break;
		}
	}
	if (cap)
		buf[o.len < cap ? o.len : cap - 1] = '\0';
	return o.len;
}

size_t fmt_s(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = fmt_v(buf, cap, fmt, ap);
	va_end(ap);
	return n;
}

void log_vmsg(const char *fmt, va_list ap)
{
	char line[512];
	size_t n, len;
	int saved = errno;

	n = fmt_s(line, sizeof(line), "gcshim[%d]: ", (int)getpid());
	len = fmt_v(line + n, sizeof(line) - n - 1, fmt, ap) + n;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	/* one message, one line: a value quoted in it may hold any byte */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[len++] = '\n';
	write_line(line, len);
	errno = saved;
}

void log_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(fmt, ap);
	va_end(ap);
}
