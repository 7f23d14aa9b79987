#define _GNU_SOURCE
#include "kroots.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"
#include "mark.h"
#include "os.h"
#include "spin.h"

#define EXPORT __attribute__((visibility("default")))
#define SLOTS (1u << 16)
#define MAX_FD (1u << 20)

struct slot {
	int epfd, fd;       /* epfd 0: empty; -1: deleted */
	uint64_t data;
};

typedef int (*epoll_ctl_fn)(int, int, int, struct epoll_event *);
typedef int (*close_fn)(int);

/* The table's pages that ever held a registration.  A collection reads
 * only those: the whole table is a megabyte, and reading pages never
 * written faults in the zero page at each, about 4 ms of the first
 * collection's pause in a program that uses no epoll at all. */
#define SLOTS_PER_PAGE (OS_PAGE / sizeof(struct slot))
#define TABLE_PAGES (SLOTS / SLOTS_PER_PAGE)

static struct slot *table;
static _Atomic bool page_written[TABLE_PAGES];
static uint8_t *is_epoll;   /* fds that are epoll instances we saw */
static atomic_flag lock = ATOMIC_FLAG_INIT;
static _Atomic bool overflowed;
static epoll_ctl_fn real_epoll_ctl;
static close_fn real_close;

void kroots_init(void)
{
	table = os_map(SLOTS * sizeof(*table));
	is_epoll = os_map(MAX_FD);
	real_epoll_ctl = (epoll_ctl_fn)dlsym(RTLD_NEXT, "epoll_ctl");
	real_close = (close_fn)dlsym(RTLD_NEXT, "close");
}

static void take(void)
{
	spin_lock(&lock);
}

static void give(void)
{
	spin_unlock(&lock);
}

/* Held across fork, so that the child never inherits it taken. */
void kroots_lock(void)
{
	take();
}

void kroots_unlock(void)
{
	give();
}

static uint32_t hash(int epfd, int fd)
{
	return ((uint32_t)epfd * 2654435761u ^ (uint32_t)fd * 40503u) & (SLOTS - 1);
}

/* Open addressing; deleted slots are reused by inserts. */
static struct slot *find(int epfd, int fd, bool insert)
{
	struct slot *reuse = NULL;

	for (uint32_t i = hash(epfd, fd), n = 0; n < SLOTS; i = (i + 1) & (SLOTS - 1), n++) {
		struct slot *s = &table[i];

		if (s->epfd == epfd && s->fd == fd)
			return s;
		if (s->epfd == -1 && !reuse)
			reuse = s;
		if (s->epfd == 0)
			return insert ? (reuse ? reuse : s) : NULL;
	}
	return insert ? reuse : NULL;
}

static void remember(int epfd, int fd, uint64_t data)
{
	struct slot *s;

	take();
	s = find(epfd, fd, true);
	if (s) {
		*s = (struct slot){ epfd, fd, data };
		atomic_store_explicit(&page_written[(size_t)(s - table) / SLOTS_PER_PAGE], true,
				      memory_order_release);
	} else if (!atomic_exchange(&overflowed, true))
		log_msg("more than %u epoll registrations: their data cannot all be "
			"roots, so collections will free nothing from now on", SLOTS);
	if ((unsigned)epfd < MAX_FD)
		is_epoll[epfd] = 1;
	give();
}

static void forget(int epfd, int fd)
{
	struct slot *s;

	take();
	s = find(epfd, fd, false);
	if (s)
		s->epfd = -1;
	give();
}

static void forget_all(int epfd)
{
	take();
	for (uint32_t i = 0; i < SLOTS; i++)
		if (table[i].epfd == epfd)
			table[i].epfd = -1;
	is_epoll[epfd] = 0;
	give();
}

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	int rc;

	if (!real_epoll_ctl)
		kroots_init();
	rc = real_epoll_ctl(epfd, op, fd, ev);
	if (rc == 0 && table && epfd > 0) {
		if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && ev)
			remember(epfd, fd, ev->data.u64);
		else if (op == EPOLL_CTL_DEL)
			forget(epfd, fd);
	}
	return rc;
}

EXPORT int close(int fd)
{
	int saved;

	if (!real_close)
		kroots_init();
	if (table && (unsigned)fd < MAX_FD && is_epoll[fd]) {
		saved = errno;
		forget_all(fd);
		errno = saved;
	}
	return real_close(fd);
}

/* A registration that could not be recorded may be the only pointer to a
 * block: no collection may free anything after that. */
bool kroots_complete(void)
{
	return !atomic_load(&overflowed);
}

/* Calls fn on the data word of every registration, in the pages that
 * ever held one.  A slot is written before its page is flagged, and both
 * under the lock: a stopped thread that holds it was writing a slot whose
 * data, half-written or not, only adds a root. */
static void each_registration(void (*fn)(struct slot *s, void *arg), void *arg)
{
	if (!table)
		return;
	for (size_t pg = 0; pg < TABLE_PAGES; pg++) {
		if (!atomic_load_explicit(&page_written[pg], memory_order_acquire))
			continue;
		for (size_t i = pg * SLOTS_PER_PAGE; i < (pg + 1) * SLOTS_PER_PAGE; i++)
			if (table[i].epfd > 0)
				fn(&table[i], arg);
	}
}

static void mark_data(struct slot *s, void *arg)
{
	(void)arg;
	mark_range((uintptr_t)&s->data, (uintptr_t)(&s->data + 1), false, false);
}

/* While the world is stopped: the table is read without its lock (a
 * stopped thread may hold it). */
void kroots_scan(void)
{
	each_registration(mark_data, NULL);
}

/* ---- inspection: the registered data words, world stopped ---------------- */
struct each_root {
	root_range_fn fn;
	void *arg;
};

static void give_data(struct slot *s, void *arg)
{
	struct each_root *e = arg;

	e->fn((uintptr_t)&s->data, (uintptr_t)(&s->data + 1), e->arg);
}

void kroots_each_root(root_range_fn fn, void *arg)
{
	struct each_root e = { fn, arg };

	each_registration(give_data, &e);
}
