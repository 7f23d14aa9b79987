#define _GNU_SOURCE
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "exitwatch.h"
#include "log.h"
#include "options.h"
#include "os.h"
#include "proto.h"
#include "events.h"
#include "stop.h"
#include "tstacks.h"
#include "watch.h"

#define EXPORT __attribute__((visibility("default")))

#define MAX_CLIENTS 8
#define CLIENT_TIMEOUT_MS 10000
#define REPLY_MAX (64 * 1024)
#define OUT_MAX (2 * REPLY_MAX)
#define ALONE_POLL_MS 20
#define ALONE_BURST_MS 1000
#define ALONE_IDLE_MS 1000
#define FIXED_FDS 1        /* the listening socket */
#define WATCH_SNDBUF 4096  /* a watcher that does not read fills this quickly */

struct client {
	int fd;
	uint64_t deadline;
	struct proto_session session;
	char in[PROTO_MAX_REQUEST + 1];
	size_t inlen;
	char *out;      /* OUT_MAX bytes of ctl.outbuf */
	size_t outlen, outpos;
	bool closing;
	bool watching;  /* its ring is open: events are sent as they come */
};

static struct {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pid_t owner;
	int listen_fd;
	pthread_t thread;
	bool running;
	_Atomic pid_t tid;          /* of the control thread */
	_Atomic bool kicked;        /* events or thread ends to look at */
	_Atomic int ready;          /* 0 starting, 1 serving, -1 failed */
	uint64_t endings_seen;
	struct client clients[MAX_CLIENTS];
	char *outbuf;   /* replies in our own pages: a query never moves the counts */
	uint64_t burst_until;
} ctl = { .listen_fd = -1 };

/* $GCSHIM_SOCKET_DIR, else $XDG_RUNTIME_DIR/gcshim, else /tmp/gcshim-UID. */
int ctl_socket_dir(char *buf, size_t cap)
{
	const char *dir = opt_str(OPT_SOCKET_DIR), *xdg = getenv("XDG_RUNTIME_DIR");
	size_t n;

	if (dir && *dir)
		n = fmt_s(buf, cap, "%s", dir);
	else if (xdg && *xdg == '/')
		n = fmt_s(buf, cap, "%s/gcshim", xdg);
	else
		n = fmt_s(buf, cap, "/tmp/gcshim-%u", (unsigned)geteuid());
	return n < cap ? 0 : -1;
}

/* The directory is the real protection: ours, a directory, nobody else
 * may enter it.  Anything else and the socket stays off. */
static bool private_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_msg("cannot create socket directory %s: %s; control socket off",
			dir, strerror(errno));
		return false;
	}
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		log_msg("socket directory %s is not a private directory of uid %u; "
			"control socket off", dir, (unsigned)geteuid());
		return false;
	}
	return true;
}

static bool remove_if_stale(const char *name, void *dir)
{
	char path[sizeof(ctl.path) + 32], *end;
	long pid = strtol(name, &end, 10);

	if (pid > 0 && !strcmp(end, ".sock") && kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
		fmt_s(path, sizeof(path), "%s/%s", (const char *)dir, name);
		unlink(path);
	}
	return true;
}

/* Sockets whose process is gone are removed by whoever notices first. */
static void remove_stale(const char *dir)
{
	os_each_name(dir, remove_if_stale, (void *)dir);
}

/* Bound under a temporary name and renamed once it listens: a client
 * never finds the socket present but refusing, which it would take for a
 * stale one.  Done before the control thread starts, so that a process
 * that exits at once still removes its socket. */
static int open_socket(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char dir[sizeof(ctl.path)];
	int fd;

	if (ctl_socket_dir(dir, sizeof(dir)) < 0 || !private_dir(dir))
		return -1;
	if (fmt_s(addr.sun_path, sizeof(addr.sun_path), "%s/%d.new", dir, (int)getpid()) >=
	    sizeof(addr.sun_path) ||
	    fmt_s(ctl.path, sizeof(ctl.path), "%s/%d.sock", dir, (int)getpid()) >=
	    sizeof(ctl.path)) {
		log_msg("socket path under %s is too long; control socket off", dir);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	fd = os_high_fd(fd);
	unlink(addr.sun_path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    chmod(addr.sun_path, 0600) < 0 || listen(fd, MAX_CLIENTS) < 0 ||
	    rename(addr.sun_path, ctl.path) < 0) {
		log_msg("cannot serve %s: %s; control socket off", ctl.path, strerror(errno));
		unlink(addr.sun_path);
		close(fd);
		ctl.path[0] = '\0';
		return -1;
	}
	ctl.owner = getpid();
	return fd;
}

static int slot_of(const struct client *c)
{
	return (int)(c - ctl.clients);
}

static void drop(struct client *c)
{
	char *out = c->out;

	if (c->watching)
		watch_close(slot_of(c));
	close(c->fd);
	memset(c, 0, sizeof(*c));
	c->out = out;
	c->fd = -1;
}

static void send_now(int fd, const char *msg)
{
	while (send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EINTR)
		;
}

/* Only the process's own user and root may talk to it. */
static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.uid == geteuid() || cred.uid == 0;
}

static void accept_client(void)
{
	int fd = accept4(ctl.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct client *slot = NULL;

	if (fd < 0)
		return;
	if (!peer_allowed(fd)) {
		stat_inc(EV_ctl_refused);
		log_once(w_refused, "refused a control connection from another user");
		send_now(fd, "{\"ok\":false,\"error\":\"permission denied\"}\n");
		close(fd);
		return;
	}
	for (int i = 0; i < MAX_CLIENTS && !slot; i++)
		if (ctl.clients[i].fd < 0)
			slot = &ctl.clients[i];
	if (!slot) {
		send_now(fd, "{\"ok\":false,\"error\":\"too many clients\"}\n");
		close(fd);
		return;
	}
	stat_inc(EV_ctl_connections);
	slot->fd = fd;
	slot->deadline = os_now_ns() / 1000000 + CLIENT_TIMEOUT_MS;
}

/* A client that pipelines more than it reads is cut off. */
static void queue_reply(struct client *c, const char *reply, size_t n)
{
	if (c->outpos) {
		memmove(c->out, c->out + c->outpos, c->outlen - c->outpos);
		c->outlen -= c->outpos;
		c->outpos = 0;
	}
	if (c->outlen + n > OUT_MAX) {
		c->closing = true;
		return;
	}
	memcpy(c->out + c->outlen, reply, n);
	c->outlen += n;
}

static char reply[REPLY_MAX];

/* A watching connection carries events only: what it sends is ignored.
 * Its socket buffer is kept small, so that a watcher that stops reading
 * soon stops taking events, which are then dropped and counted. */
static void start_watching(struct client *c)
{
	int size = WATCH_SNDBUF;

	setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	watch_open(slot_of(c));
	c->watching = true;
}

static void handle_lines(struct client *c)
{
	char *nl;

	if (c->watching)
		c->inlen = 0;
	while (!c->closing && !c->watching && !c->session.stream.active &&
	       (nl = memchr(c->in, '\n', c->inlen))) {
		size_t used = (size_t)(nl - c->in) + 1;

		*nl = '\0';
		queue_reply(c, reply, proto_handle(&c->session, c->in, reply, sizeof(reply)));
		memmove(c->in, c->in + used, c->inlen - used);
		c->inlen -= used;
		if (c->session.watch && !c->watching)
			start_watching(c);
	}
	if (c->inlen == PROTO_MAX_REQUEST) {
		const char *msg = "{\"ok\":false,\"error\":\"request longer than 1024 bytes\"}\n";

		stat_inc(EV_ctl_bad_requests);
		queue_reply(c, msg, strlen(msg));
		c->closing = true;
	}
}

static void read_client(struct client *c)
{
	ssize_t n = read(c->fd, c->in + c->inlen, PROTO_MAX_REQUEST - c->inlen);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		c->closing = true;
		if (c->inlen) {
			c->in[c->inlen++] = '\n';
			handle_lines(c);
		}
		return;
	}
	c->inlen += (size_t)n;
	c->deadline = os_now_ns() / 1000000 + CLIENT_TIMEOUT_MS;
	handle_lines(c);
}

static void write_client(struct client *c)
{
	ssize_t n = send(c->fd, c->out + c->outpos, c->outlen - c->outpos,
			 MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n < 0) {
		drop(c);
		return;
	}
	c->outpos += (size_t)n;
	c->deadline = os_now_ns() / 1000000 + CLIENT_TIMEOUT_MS;
	if (c->outpos == c->outlen) {
		c->outpos = c->outlen = 0;
		if (c->closing)
			drop(c);
	}
}

/* How long poll may sleep: until the nearest client deadline, or a short
 * step while checking whether we are the last thread. */
static int poll_timeout(uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (int i = 0; i < MAX_CLIENTS; i++)
		if (ctl.clients[i].fd >= 0 && !ctl.clients[i].watching &&
		    ctl.clients[i].deadline < next)
			next = ctl.clients[i].deadline;
	if (exitwatch_leader_done()) {
		uint64_t step = now < ctl.burst_until ? ALONE_POLL_MS : ALONE_IDLE_MS;

		if (now + step < next)
			next = now + step;
	}
	if (next == UINT64_MAX)
		return -1;
	return next > now ? (int)(next - now) : 0;
}

/* After the leader's user code ended, leaving as the last thread makes
 * glibc end the process exactly as it would have without us. */
static void leave_if_alone(void)
{
	if (exitwatch_leader_done() && exitwatch_alone()) {
		ctl.running = false;
		atomic_store(&ctl.tid, 0);   /* no wake-up for a thread that took our id */
		pthread_exit(NULL);
	}
}

static int build_pollset(struct pollfd *pfd, struct client **who)
{
	int n = 0;

	pfd[n++] = (struct pollfd){ .fd = ctl.listen_fd, .events = POLLIN };
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &ctl.clients[i];

		if (c->fd < 0)
			continue;
		who[n] = c;
		pfd[n++] = (struct pollfd){ .fd = c->fd,
			.events = (short)((c->closing ? 0 : POLLIN) | (c->outlen ? POLLOUT : 0)) };
	}
	return n;
}

/* Streamed replies and events go out as the clients take them: the next
 * part of a stream when the previous one has mostly left, events only
 * when everything before them has. */
static void feed_streams(void)
{
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &ctl.clients[i];
		size_t n;

		if (c->fd < 0 || c->closing)
			continue;
		if (c->session.stream.active && c->outlen - c->outpos <= OUT_MAX - REPLY_MAX) {
			queue_reply(c, reply, proto_stream_next(&c->session, reply, sizeof(reply)));
			if (!c->session.stream.active)
				handle_lines(c);
		}
		if (c->watching && !c->outlen && watch_pending(i) &&
		    (n = watch_drain(i, reply, sizeof(reply))))
			queue_reply(c, reply, n);
	}
}

/* Wakes the control thread out of its poll: the stop signal, whose
 * handler does nothing on a thread that is not being stopped.  Its own
 * descriptor table is out of the other threads' reach, so no eventfd
 * could serve. */
static void ctl_wake(void)
{
	pid_t tid = atomic_load(&ctl.tid);
	int sig = stop_signal();

	atomic_store(&ctl.kicked, true);
	if (tid > 0 && sig > 0)
		syscall(SYS_tgkill, getpid(), tid, sig);
}

/* poll, with the wake-up signal let in only while it sleeps: one sent
 * just before is not lost.  Outside this window the signal is never
 * blocked, so that a stop of the world by signal reaches us. */
struct poll_args {
	struct pollfd *pfd;
	int n;
	const struct timespec *tmo;
	const sigset_t *during;
};

/* The wait itself, parked (stop.h): a collection need not stop us. */
static int parked_poll(void *arg)
{
	const struct poll_args *a = arg;

	return ppoll(a->pfd, (nfds_t)a->n, a->tmo, a->during);
}

static int wait_events(struct pollfd *pfd, int n, int timeout_ms)
{
	int sig = stop_signal(), r;
	sigset_t one, old, during;
	struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000 },
			zero = { 0, 0 }, *tmo = timeout_ms < 0 ? NULL : &ts;
	struct poll_args a = { pfd, n, tmo, NULL };

	if (sig <= 0)
		return stop_parked(parked_poll, &a);
	sigemptyset(&one);
	sigaddset(&one, sig);
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, &one, &old, _NSIG / 8);
	during = old;
	sigdelset(&during, sig);
	if (atomic_exchange(&ctl.kicked, false))
		a.tmo = &zero;
	a.during = &during;
	r = stop_parked(parked_poll, &a);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, _NSIG / 8);
	return r;
}

static void serve_once(void)
{
	struct pollfd pfd[MAX_CLIENTS + FIXED_FDS];
	struct client *who[MAX_CLIENTS + FIXED_FDS];
	uint64_t now = os_now_ns() / 1000000, ended;
	int n = build_pollset(pfd, who);

	if (wait_events(pfd, n, poll_timeout(now)) < 0 && errno != EINTR)
		return;
	now = os_now_ns() / 1000000;
	if ((ended = exitwatch_endings()) != ctl.endings_seen) {
		ctl.endings_seen = ended;
		ctl.burst_until = now + ALONE_BURST_MS;
	}
	leave_if_alone();
	if (pfd[0].revents & POLLIN)
		accept_client();
	for (int i = FIXED_FDS; i < n; i++) {
		struct client *c = who[i];

		if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL) && !c->outlen)
			drop(c);
		else if (pfd[i].revents & POLLOUT)
			write_client(c);
		else if (pfd[i].revents & POLLIN)
			read_client(c);
		if (c->fd >= 0 && now > c->deadline && !c->watching)
			drop(c);
		else if (c->fd >= 0 && c->closing && !c->outlen)
			drop(c);
	}
	feed_streams();
}

static void announce(int state)
{
	atomic_store(&ctl.ready, state);
	syscall(SYS_futex, &ctl.ready, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* The socket and the clients' connections live in the control thread's
 * own descriptor table: a program that closes every descriptor it does
 * not know, or dup2()s over one, can neither see nor touch them. */
static void *serve(void *arg)
{
	char dir[sizeof(ctl.path)];

	(void)arg;
	tstacks_shim_started((uintptr_t)__builtin_frame_address(0));
	atomic_store(&ctl.tid, os_gettid());
	os_private_fds();
	ctl.listen_fd = open_socket();
	announce(ctl.listen_fd < 0 ? -1 : 1);
	if (ctl.listen_fd < 0)
		return NULL;
	if (ctl_socket_dir(dir, sizeof(dir)) == 0)
		remove_stale(dir);
	for (;;)
		serve_once();
	return NULL;
}

/* The socket is in place before the program's code runs, so that a
 * process that exits at once still removes it. */
void ctl_start(void)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		ctl.clients[i].fd = -1;
	if (!opt_int(OPT_SOCKET))
		return;
	if (!ctl.outbuf)
		ctl.outbuf = os_map(MAX_CLIENTS * OUT_MAX);
	if (!ctl.outbuf)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		ctl.clients[i].out = ctl.outbuf + (size_t)i * OUT_MAX;
	exitwatch_init(ctl_wake);
	watch_set_waker(ctl_wake);
	atomic_store(&ctl.ready, 0);
	if (exitwatch_spawn(&ctl.thread, serve, NULL) != 0) {
		log_msg("cannot start the control thread; control socket off");
		return;
	}
	while (atomic_load(&ctl.ready) == 0)
		syscall(SYS_futex, &ctl.ready, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	ctl.running = atomic_load(&ctl.ready) > 0;
}

/* At exit: only the process that made the socket removes it. */
void ctl_stop(void)
{
	if (ctl.owner == getpid() && ctl.path[0]) {
		unlink(ctl.path);
		ctl.path[0] = '\0';
	}
}

/* _exit skips destructors, and shells end every child with it: the socket
 * goes first.  _Exit is the same call under its C99 name. */
EXPORT void _exit(int status)
{
	ctl_stop();
	for (;;)
		syscall(SYS_exit_group, status);
}

EXPORT void _Exit(int status) __attribute__((alias("_exit")));

/* The child has no control thread: it gets its own, under its own PID.
 * The parent's descriptors were in that thread's table, not in the
 * child's; reply buffers the parent's thread may have been changing are
 * left, not freed. */
void ctl_fork_child(void)
{
	bool was_running = ctl.running;
	char *outbuf = ctl.outbuf;

	memset(&ctl, 0, sizeof(ctl));
	ctl.outbuf = outbuf;
	ctl.listen_fd = -1;
	exitwatch_fork_child();
	watch_fork_child();
	if (was_running)
		ctl_start();
}
