#define _GNU_SOURCE
#include "client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_DIRS 8
/* Between bind() and listen() a library does nothing else. */
#define STARTUP_GRACE_MS 100
/* Far above the largest reply the library can build (64 KiB). */
#define MAX_REPLY (1 << 20)
/* A refusal is written before the close that failed the send: it is
 * there already, or never. */
#define REFUSAL_WAIT_MS 100

/* Candidate socket directories, each existing directory listed once. */
struct dirs {
	size_t n;
	char path[MAX_DIRS][PATH_MAX];
	dev_t dev[MAX_DIRS];
	ino_t ino[MAX_DIRS];
};

static enum client_status failure(struct client *c, enum client_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum client_status failure(struct client *c, enum client_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	return st;
}

int client_timeout_ms = CLIENT_TIMEOUT_MS;

/* "5 s", "250 ms" */
static const char *timeout_text(void)
{
	static char text[32];

	if (client_timeout_ms % 1000)
		snprintf(text, sizeof(text), "%d ms", client_timeout_ms);
	else
		snprintf(text, sizeof(text), "%d s", client_timeout_ms / 1000);
	return text;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Only directories owned by the process's user are trusted: a socket in
 * anybody else's directory could answer in the process's name. */
static void add_dir(struct dirs *d, uid_t owner, const char *prefix, const char *suffix)
{
	struct stat st;
	char path[PATH_MAX];

	if (d->n == MAX_DIRS || !prefix || !*prefix)
		return;
	if ((size_t)snprintf(path, sizeof(path), "%s%s", prefix, suffix) >= sizeof(path))
		return;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != owner)
		return;
	for (size_t i = 0; i < d->n; i++)
		if (d->dev[i] == st.st_dev && d->ino[i] == st.st_ino)
			return;
	memcpy(d->path[d->n], path, sizeof(path));
	d->dev[d->n] = st.st_dev;
	d->ino[d->n] = st.st_ino;
	d->n++;
}

/* The library's own rule for XDG_RUNTIME_DIR: only an absolute path counts. */
static const char *absolute(const char *path)
{
	return path && *path == '/' ? path : NULL;
}

/* Reads /proc/PID/environ whole; NULL if it cannot be read. */
static char *read_environ(pid_t pid, size_t *len)
{
	char path[64], *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	*len = 0;
	do {
		if (*len + 4096 > cap) {
			char *more = realloc(buf, cap + 65536);

			if (!more) {
				free(buf);
				close(fd);
				return NULL;
			}
			buf = more;
			cap += 65536;
		}
		n = read(fd, buf + *len, cap - *len - 1);
		if (n > 0)
			*len += (size_t)n;
	} while (n > 0 || (n < 0 && errno == EINTR));
	close(fd);
	buf[*len] = '\0';
	return buf;
}

static const char *environ_lookup(const char *env, size_t len, const char *name)
{
	size_t nlen = strlen(name);

	for (const char *e = env; e < env + len; e += strlen(e) + 1)
		if (!strncmp(e, name, nlen) && e[nlen] == '=')
			return e + nlen + 1;
	return NULL;
}

/* Where a process started with a different environment would have put
 * its socket: the process's own environment comes first, when readable. */
static void target_dirs(struct dirs *d, pid_t pid, uid_t owner)
{
	size_t len;
	char *env = read_environ(pid, &len);

	if (!env)
		return;
	add_dir(d, owner, environ_lookup(env, len, "GCSHIM_SOCKET_DIR"), "");
	add_dir(d, owner, absolute(environ_lookup(env, len, "XDG_RUNTIME_DIR")), "/gcshim");
	free(env);
}

/* Every place the library may choose (see ctl_socket_dir in lib/ctl.c),
 * plus /run/user/UID, where XDG_RUNTIME_DIR points in a login session, for
 * processes started from one when gcctl runs outside it (cron, su). */
static void socket_dirs(struct dirs *d, pid_t pid, uid_t owner)
{
	char buf[64];

	d->n = 0;
	if (pid > 0)
		target_dirs(d, pid, owner);
	add_dir(d, owner, getenv("GCSHIM_SOCKET_DIR"), "");
	add_dir(d, owner, absolute(getenv("XDG_RUNTIME_DIR")), "/gcshim");
	snprintf(buf, sizeof(buf), "/run/user/%u", (unsigned)owner);
	add_dir(d, owner, buf, "/gcshim");
	snprintf(buf, sizeof(buf), "/tmp/gcshim-%u", (unsigned)owner);
	add_dir(d, owner, buf, "");
}

/* Returns 0 or an errno value.  SO_SNDTIMEO bounds connect() itself: on a
 * Unix socket it waits while the listener's backlog is full, and poll()
 * cannot wait for that. */
static int connect_path(const char *path, int *fdp)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval tv = { client_timeout_ms / 1000, client_timeout_ms % 1000 * 1000 };
	int fd, err;

	if (strlen(path) >= sizeof(addr.sun_path))
		return ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		if (errno == EINTR)
			continue;
		err = errno;
		close(fd);
		return err;
	}
	*fdp = fd;
	return 0;
}

/* Removes a socket nobody listens on.  The inode must still be the one
 * that refused us: an exec'd image of the same PID replaces the file with
 * a fresh socket, which must survive. */
static void remove_stale(const char *path, const struct stat *refused)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == refused->st_ino &&
	    st.st_dev == refused->st_dev)
		unlink(path);
}

static bool pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno != ESRCH;
}

/* Connects to path, removing it if it turns out stale.  Returns 0 or an
 * errno value (ECONNREFUSED for a stale socket).  A live process refusing
 * is asked twice: a library starting up binds its socket a moment before
 * it listens, and that socket must not be taken for a stale one. */
static int connect_or_clean(pid_t pid, const char *path, int *fdp)
{
	struct stat st;
	int err;

	if (lstat(path, &st) < 0)
		return errno;
	if (!S_ISSOCK(st.st_mode))
		return ENOTSOCK;
	if (!pid_alive(pid)) {
		remove_stale(path, &st);
		return ECONNREFUSED;
	}
	err = connect_path(path, fdp);
	if (err == ECONNREFUSED) {
		poll(NULL, 0, STARTUP_GRACE_MS);
		err = connect_path(path, fdp);
	}
	if (err == ECONNREFUSED)
		remove_stale(path, &st);
	return err;
}

static bool send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* Takes one complete line out of c->in into c->line, if there is one. */
static bool take_line(struct client *c)
{
	char *nl = c->inlen ? memchr(c->in, '\n', c->inlen) : NULL;
	size_t used;

	if (!nl)
		return false;
	used = (size_t)(nl - c->in) + 1;
	free(c->line);
	c->line = strndup(c->in, used - 1);
	memmove(c->in, c->in + used, c->inlen - used);
	c->inlen -= used;
	return c->line != NULL;
}

static bool make_room(struct client *c)
{
	char *in;

	if (c->incap - c->inlen >= 4096)
		return true;
	if (c->incap >= MAX_REPLY)
		return false;
	in = realloc(c->in, c->incap + 65536);
	if (!in)
		return false;
	c->in = in;
	c->incap += 65536;
	return true;
}

/* Waits at most timeout_ms in all for one reply line (-1: forever). */
static enum client_status read_line_within(struct client *c, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

	while (!take_line(c)) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		long long left = deadline < 0 ? -1 : deadline - now_ms();
		int ready = left > 0 || left == -1 ? poll(&pfd, 1, (int)left) : 0;
		ssize_t n;

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0)
			return failure(c, CLIENT_TIMED_OUT, "process %d did not answer within %s (see --timeout)",
				       (int)c->pid, timeout_text());
		if (!make_room(c))
			return failure(c, CLIENT_FAILED, "process %d sent a reply too long to read",
				       (int)c->pid);
		/* poll said readable: this recv does not block. */
		n = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return failure(c, CLIENT_FAILED,
				       "process %d closed the connection without answering",
				       (int)c->pid);
		c->inlen += (size_t)n;
	}
	return CLIENT_OK;
}

static enum client_status read_line(struct client *c)
{
	return read_line_within(c, client_timeout_ms);
}

/* One JSON object per line; a member named twice is an error. */
static json_t *parse_line(const char *line, json_error_t *err)
{
	json_t *v = json_loads(line, JSON_REJECT_DUPLICATES, err);

	if (v && !json_is_object(v)) {
		json_decref(v);
		snprintf(err->text, sizeof(err->text), "not an object");
		return NULL;
	}
	return v;
}

static bool is_reply(const json_t *r)
{
	const json_t *ok = json_object_get(r, "ok");

	return ok && (json_is_true(ok) || json_is_false(ok));
}

enum client_status client_request(struct client *c, const char *request, json_t **reply)
{
	enum client_status st;
	json_error_t err;
	size_t len = strlen(request);
	char *line = malloc(len + 2);

	*reply = NULL;
	if (!line)
		return failure(c, CLIENT_FAILED, "out of memory");
	memcpy(line, request, len);
	memcpy(line + len, "\n", 2);
	if (!send_all(c->fd, line, len + 1)) {
		int err = errno;

		free(line);
		/* a process that refuses a client ("too many clients") says so
		 * and closes: its line waits to be read after the failed send */
		if (read_line_within(c, REFUSAL_WAIT_MS) != CLIENT_OK)
			return failure(c, CLIENT_FAILED, "cannot send to process %d: %s",
				       (int)c->pid, strerror(err));
	} else {
		free(line);
		st = read_line(c);
		if (st != CLIENT_OK)
			return st;
	}
	*reply = parse_line(c->line, &err);
	if (!*reply)
		return failure(c, CLIENT_FAILED, "process %d sent a reply that is not JSON (%s)",
			       (int)c->pid, err.text);
	if (!is_reply(*reply)) {
		json_decref(*reply);
		*reply = NULL;
		return failure(c, CLIENT_FAILED, "process %d sent a reply without \"ok\"",
			       (int)c->pid);
	}
	return CLIENT_OK;
}

/* The next line of a streamed reply or of a watch. */
enum client_status client_next(struct client *c, int timeout_ms, json_t **reply)
{
	enum client_status st;
	json_error_t err;

	*reply = NULL;
	st = read_line_within(c, timeout_ms);
	if (st != CLIENT_OK)
		return st;
	*reply = parse_line(c->line, &err);
	if (!*reply)
		return failure(c, CLIENT_FAILED, "process %d sent a line that is not JSON (%s)",
			       (int)c->pid, err.text);
	return CLIENT_OK;
}

static const char *reply_error(const json_t *r)
{
	const json_t *e = json_object_get(r, "error");

	return e && json_is_string(e) ? json_string_value(e) : "no reason given";
}

static enum client_status hello(struct client *c)
{
	char request[32];
	json_t *r;
	enum client_status st;

	snprintf(request, sizeof(request), "hello %d", PROTO_VERSION);
	st = client_request(c, request, &r);
	if (st != CLIENT_OK)
		return st;
	if (json_is_true(json_object_get(r, "ok")))
		st = CLIENT_OK;
	else if (!strcmp(reply_error(r), "permission denied"))
		st = failure(c, CLIENT_DENIED, "permission denied: process %d belongs to another user",
			     (int)c->pid);
	else
		st = failure(c, CLIENT_FAILED, "process %d refused the handshake: %s", (int)c->pid,
			     reply_error(r));
	json_decref(r);
	return st;
}

static bool process_owner(pid_t pid, uid_t *uid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) < 0)
		return false;
	*uid = st.st_uid;
	return true;
}

/* Tries the candidate sockets in turn; the first that accepts is the one.
 * root may look at anyone's processes, in their owners' directories;
 * other users look in their own. */
static enum client_status connect_pid(struct client *c, uid_t owner)
{
	struct dirs d;
	char path[PATH_MAX + 32];

	socket_dirs(&d, c->pid, geteuid() == 0 ? owner : geteuid());
	for (size_t i = 0; i < d.n; i++) {
		int err;

		snprintf(path, sizeof(path), "%s/%d.sock", d.path[i], (int)c->pid);
		err = connect_or_clean(c->pid, path, &c->fd);
		if (!err)
			return CLIENT_OK;
		if (err == EACCES)
			return failure(c, CLIENT_DENIED,
				       "permission denied: process %d belongs to another user",
				       (int)c->pid);
		if (err == EAGAIN)
			return failure(c, CLIENT_FAILED,
				       "process %d did not accept a connection within %s",
				       (int)c->pid, timeout_text());
	}
	if (owner != geteuid() && geteuid() != 0)
		return failure(c, CLIENT_DENIED, "permission denied: process %d belongs to another user",
			       (int)c->pid);
	return failure(c, CLIENT_NO_SOCKET, "process %d is not running under gcshim (no control socket)",
		       (int)c->pid);
}

enum client_status client_open(struct client *c, pid_t pid)
{
	enum client_status st;
	uid_t owner;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->pid = pid;
	if (!pid_alive(pid) || !process_owner(pid, &owner))
		return failure(c, CLIENT_NO_PROCESS, "no such process %d", (int)pid);
	st = connect_pid(c, owner);
	if (st == CLIENT_OK)
		st = hello(c);
	if (st != CLIENT_OK)
		client_close(c);
	return st;
}

void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->in);
	free(c->line);
	c->in = c->line = NULL;
	c->inlen = c->incap = 0;
}

/* "1234.sock" -> 1234; 0 for any other name. */
static pid_t socket_name_pid(const char *name)
{
	char *end;
	long pid;

	if (*name < '1' || *name > '9')
		return 0;
	errno = 0;
	pid = strtol(name, &end, 10);
	if (errno || strcmp(end, ".sock") || pid > INT_MAX)
		return 0;
	return (pid_t)pid;
}

static bool listed(const pid_t *pids, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

static bool append(pid_t **pids, size_t *n, pid_t pid)
{
	pid_t *more = realloc(*pids, (*n + 1) * sizeof(**pids));

	if (!more)
		return false;
	*pids = more;
	more[(*n)++] = pid;
	return true;
}

/* A socket counts when it accepts a connection; one whose listener is
 * gone refuses and is removed.  A full backlog still means a live process. */
static int scan_dir(const char *dir, pid_t **pids, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX + 300];

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		pid_t pid = socket_name_pid(e->d_name);
		int fd, err;

		if (!pid || listed(*pids, *n, pid))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		err = connect_or_clean(pid, path, &fd);
		if (!err)
			close(fd);
		if ((!err || err == EAGAIN) && !append(pids, n, pid)) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

static int by_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

int client_find_all(pid_t **pids, size_t *n)
{
	struct dirs d;

	*pids = NULL;
	*n = 0;
	socket_dirs(&d, 0, geteuid());
	for (size_t i = 0; i < d.n; i++)
		if (scan_dir(d.path[i], pids, n) < 0) {
			free(*pids);
			return -1;
		}
	if (*n)
		qsort(*pids, *n, sizeof(**pids), by_pid);
	return 0;
}
