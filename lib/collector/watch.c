#define _GNU_SOURCE
#include "watch.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "collect.h"
#include "log.h"
#include "os.h"
#include "spin.h"

#define MAX_CALLBACKS 16

struct event {
	uint32_t phase;           /* enum gcshim_phase */
	int32_t generation;
	int64_t collected, collected_bytes, collected_requested, uncollectable;
	uint64_t pause_ns;
	uint32_t ok;
	int64_t wall_ns;          /* when it happened, CLOCK_REALTIME */
	int64_t mem_before, mem_after;
};

/* Single producer (the collector holds its lock), single consumer (the
 * control thread).  The consumer opens a ring by catching up with head. */
struct ring {
	_Atomic uint64_t head, tail;
	_Atomic bool active;
	_Atomic uint64_t dropped;
	uint64_t dropped_seen;    /* consumer: total dropped since open */
	struct event ev[WATCH_ENTRIES];
};

static struct ring *rings;
static void (*waker)(void);
static _Atomic int watchers;

static struct {
	atomic_flag lock;
	struct { gcshim_callback_fn fn; void *arg; } cb[MAX_CALLBACKS];
	_Atomic int n;
} cbs = { .lock = ATOMIC_FLAG_INIT };

static __thread bool in_callback __attribute__((tls_model("initial-exec")));

bool watch_init(void)
{
	rings = os_map(WATCH_RINGS * sizeof(*rings));
	return rings != NULL;
}

/* The parent's watchers are not the child's. */
void watch_fork_child(void)
{
	for (int i = 0; i < WATCH_RINGS && rings; i++)
		atomic_store(&rings[i].active, false);
	atomic_store(&watchers, 0);
}

static void publish(const struct event *e)
{
	bool any = false;

	if (!rings || !atomic_load_explicit(&watchers, memory_order_acquire))
		return;
	for (int i = 0; i < WATCH_RINGS; i++) {
		struct ring *r = &rings[i];
		uint64_t head, tail;

		if (!atomic_load_explicit(&r->active, memory_order_acquire))
			continue;
		any = true;
		head = atomic_load_explicit(&r->head, memory_order_relaxed);
		tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head - tail >= WATCH_ENTRIES) {
			atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
			continue;
		}
		r->ev[head % WATCH_ENTRIES] = *e;
		atomic_store_explicit(&r->head, head + 1, memory_order_release);
	}
	if (any && waker)
		waker();
}

/* Held across fork, so that the child never inherits it taken. */
void watch_lock(void)
{
	spin_lock(&cbs.lock);
}

void watch_unlock(void)
{
	spin_unlock(&cbs.lock);
}

/* A snapshot of the registrations, called without any lock held. */
static void run_callbacks(int phase, const struct gcshim_collection_info *info)
{
	struct { gcshim_callback_fn fn; void *arg; } cb[MAX_CALLBACKS];
	int n;

	if (!atomic_load_explicit(&cbs.n, memory_order_acquire))
		return;
	spin_lock_yield(&cbs.lock);
	n = atomic_load(&cbs.n);
	memcpy(cb, cbs.cb, (size_t)n * sizeof(*cb));
	spin_unlock(&cbs.lock);
	in_callback = true;
	for (int i = 0; i < n; i++)
		cb[i].fn(phase, info, cb[i].arg);
	in_callback = false;
}

bool watch_in_callback(void)
{
	return in_callback;
}

/* mem_alloc when the collection under way started: collections run one
 * at a time, under the collector's lock. */
static int64_t mem_at_start;

static int64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool watched(void)
{
	return rings && atomic_load_explicit(&watchers, memory_order_acquire);
}

void watch_collection_start(int generation)
{
	struct event e = { .phase = GCSHIM_PHASE_START, .generation = generation, .ok = 1 };

	/* read even unwatched: a watcher may arrive before the collection ends */
	mem_at_start = gc_mem_alloc();
	if (watched()) {
		e.wall_ns = wall_ns();
		e.mem_before = mem_at_start;
	}
	struct gcshim_collection_info info = { .generation = generation, .ok = 1 };

	publish(&e);
	run_callbacks(GCSHIM_PHASE_START, &info);
}

void watch_collection_stop(const struct collection *c, bool ok)
{
	struct event e = {
		.phase = GCSHIM_PHASE_STOP, .generation = c->generation,
		.collected = c->collected, .collected_bytes = c->collected_bytes,
		.collected_requested = c->collected_requested,
		.uncollectable = c->uncollectable, .pause_ns = c->pause_ns, .ok = ok,
	};
	struct gcshim_collection_info info = {
		.generation = c->generation, .collected = (long)c->collected,
		.uncollectable = (long)c->uncollectable, .pause_ns = c->pause_ns, .ok = ok,
	};

	if (watched()) {
		e.wall_ns = wall_ns();
		e.mem_before = mem_at_start;
		e.mem_after = gc_mem_alloc();
	}
	publish(&e);
	run_callbacks(GCSHIM_PHASE_STOP, &info);
}

void watch_set_waker(void (*wake)(void))
{
	waker = wake;
}

void watch_open(int i)
{
	struct ring *r = &rings[i];

	if (!rings || i < 0 || i >= WATCH_RINGS || atomic_load(&r->active))
		return;
	atomic_store(&r->tail, atomic_load(&r->head));
	atomic_store(&r->dropped, 0);
	r->dropped_seen = 0;
	atomic_store_explicit(&r->active, true, memory_order_release);
	atomic_fetch_add(&watchers, 1);
}

void watch_close(int i)
{
	if (!rings || i < 0 || i >= WATCH_RINGS || !atomic_load(&rings[i].active))
		return;
	atomic_store(&rings[i].active, false);
	atomic_fetch_sub(&watchers, 1);
}

bool watch_pending(int i)
{
	struct ring *r;

	if (!rings)
		return false;
	r = &rings[i];
	return atomic_load_explicit(&r->head, memory_order_acquire) !=
	       atomic_load_explicit(&r->tail, memory_order_relaxed);
}

/* As many events as fit, one JSON line each. */
size_t watch_drain(int i, char *buf, size_t cap)
{
	struct ring *r = &rings[i];
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	size_t len = 0;

	for (; tail != head; tail++) {
		const struct event *e = &r->ev[tail % WATCH_ENTRIES];
		char line[640];
		size_t n;

		r->dropped_seen += atomic_exchange_explicit(&r->dropped, 0, memory_order_relaxed);
		if (e->phase == GCSHIM_PHASE_START)
			n = fmt_s(line, sizeof(line), "{\"ok\":true,\"event\":\"start\","
				  "\"generation\":%d,\"time_ns\":%ld,\"mem_alloc\":%ld,"
				  "\"dropped\":%lu}\n", e->generation, (long)e->wall_ns,
				  (long)e->mem_before, (unsigned long)r->dropped_seen);
		else
			n = fmt_s(line, sizeof(line), "{\"ok\":true,\"event\":\"stop\","
				  "\"generation\":%d,\"collected\":%ld,\"collected_bytes\":%ld,"
				  "\"collected_requested\":%ld,"
				  "\"uncollectable\":%ld,\"pause_ns\":%lu,\"completed\":%s,"
				  "\"time_ns\":%ld,\"mem_alloc_before\":%ld,\"mem_alloc_after\":%ld,"
				  "\"dropped\":%lu}\n", e->generation, (long)e->collected,
				  (long)e->collected_bytes, (long)e->collected_requested,
				  (long)e->uncollectable,
				  (unsigned long)e->pause_ns, e->ok ? "true" : "false",
				  (long)e->wall_ns, (long)e->mem_before, (long)e->mem_after,
				  (unsigned long)r->dropped_seen);
		if (len + n > cap)
			break;
		memcpy(buf + len, line, n);
		len += n;
	}
	atomic_store_explicit(&r->tail, tail, memory_order_release);
	return len;
}

int watch_callback_add(gcshim_callback_fn fn, void *arg)
{
	int rc = 0;

	if (!fn) {
		errno = EINVAL;
		return -1;
	}
	spin_lock_yield(&cbs.lock);
	if (atomic_load(&cbs.n) == MAX_CALLBACKS) {
		errno = ENOSPC;
		rc = -1;
	} else {
		int n = atomic_load(&cbs.n);

		cbs.cb[n].fn = fn;
		cbs.cb[n].arg = arg;
		atomic_store_explicit(&cbs.n, n + 1, memory_order_release);
	}
	spin_unlock(&cbs.lock);
	return rc;
}

int watch_callback_remove(gcshim_callback_fn fn, void *arg)
{
	int rc = -1, n;

	spin_lock_yield(&cbs.lock);
	n = atomic_load(&cbs.n);
	for (int i = 0; i < n; i++) {
		if (cbs.cb[i].fn != fn || cbs.cb[i].arg != arg)
			continue;
		memmove(&cbs.cb[i], &cbs.cb[i + 1], (size_t)(n - i - 1) * sizeof(cbs.cb[0]));
		atomic_store(&cbs.n, n - 1);
		rc = 0;
		break;
	}
	spin_unlock(&cbs.lock);
	if (rc < 0)
		errno = ENOENT;
	return rc;
}
