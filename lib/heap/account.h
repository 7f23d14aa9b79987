/* The gc module's state: settings (enable, thresholds, debug, limit), the
 * global view of allocation built from per-thread deltas, and the points
 * where an automatic collection is due. */
#ifndef GCSHIM_ACCOUNT_H
#define GCSHIM_ACCOUNT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thread.h"

struct gc_state {
	_Atomic int enabled;
	_Atomic int debug;
	_Atomic int64_t threshold;       /* bytes, -1 = off */
	_Atomic int64_t growth;          /* percent over the last live heap, -1 = off */
	_Atomic int64_t gen_threshold[3];
	_Atomic int64_t limit;           /* 0 = none */
	/* A thread publishes once it allocated or freed this much. */
	_Atomic int64_t batch_bytes, batch_count;
	/* written on every publish: kept off the lines above */
	_Atomic int64_t live __attribute__((aligned(64)));  /* published mem_alloc */
	_Atomic int64_t peak;
	_Atomic int64_t since;           /* bytes allocated since last trigger */
	_Atomic int64_t count;           /* published allocations - frees */
	_Atomic int64_t count_base;      /* count at the last gen-0 point */
	_Atomic int64_t gen_count[3];    /* [1], [2]: CPython's count1, count2 */
	/* mem_alloc at which the growth trigger fires; INT64_MAX while off */
	_Atomic int64_t growth_target;
	_Atomic int64_t live_after;      /* mem_alloc the last collection left */
	_Atomic int64_t roots_after;     /* root bytes the last collection scanned */
	_Atomic bool sweep_pending;      /* dead blocks wait to be given back */
};

/* Below this, a heap is not collected for growth: a small heap still
 * collects now and then, never constantly. */
#define GROWTH_FLOOR (4LL << 20)

/* What sends malloc and free off their fast path: read on every call,
 * written almost never, so on a cache line of its own. */
#define MODE_LIMITED 1u    /* a heap limit: allocations reserve first */
#define MODE_GARBAGE 2u    /* the garbage list is not empty */
#define MODE_FROZEN 4u     /* blocks are frozen: a free clears the bit */
/* allocation sites and pins (sites.c) */
#define MODE_SITES 8u      /* backtraces: allocations call sites_alloc */
#define MODE_PINNED 16u    /* blocks were pinned: frees clear their pin */
/* What free() does under each mode: nothing more for sites (the next
 * block at an address overwrites its site entry); for pins, a slower step
 * before the thread cache; for the rest, the slow path. */
#define MODE_FREE_FAST MODE_SITES
#define MODE_FREE_CACHED MODE_PINNED

extern struct gc_state gc;

/* Why a collection runs.  The accounting sees when one is due; the
 * collector, a layer up, registers how to run it. */
enum gc_reason { GC_MANUAL, GC_THRESHOLD, GC_COUNT, GC_LIMIT, GC_GROWTH };

void gc_register_collector(void (*collect_due)(enum gc_reason why), bool (*make_room)(void));
/* sweep_some: gives back a few dead blocks; run by threads as they
 * publish, while gc.sweep_pending. */
void gc_register_sweeper(void (*sweep_some)(void));
extern _Atomic unsigned gc_mode;

void gc_init(void);
void gc_thread_start(struct thread_rec *t);
void gc_publish(struct thread_rec *t);
bool gc_reserve(size_t usable);
bool gc_make_room(void);
void gc_set_limit(int64_t bytes);
void gc_set_mode(unsigned bit, bool on);

int gc_set_threshold_bytes(int64_t bytes);
int gc_set_growth(int64_t percent);
/* dead: the bytes it found unreachable; by_growth: the growth trigger
 * started it. */
void gc_collected(int64_t live_after, int64_t root_bytes, int64_t dead, bool by_growth);
/* Bytes the program may allocate before the next automatic collection,
 * by the growth target or the byte threshold, whichever is nearer; with
 * neither, the live heap's size. */
int64_t gc_next_allowance(void);
int gc_set_gen_thresholds(const int64_t t[3]);
int gc_set_debug(int64_t flags);
void gc_get_counts(int64_t out[3]);
int64_t gc_mem_alloc(void);
int64_t gc_note_peak(int64_t mem_alloc);

static inline unsigned gc_mode_now(void)
{
	return atomic_load_explicit(&gc_mode, memory_order_relaxed);
}

static inline bool gc_limited(void)
{
	return gc_mode_now() & MODE_LIMITED;
}

static inline void gc_unreserve(size_t usable)
{
	atomic_fetch_sub_explicit(&gc.live, (int64_t)usable, memory_order_relaxed);
}

/* The fast path's bookkeeping: two counters and one compare.  True when
 * the thread may be due to publish (gc_due), which the caller checks off
 * its fast path so that path stays a leaf.  Only bytes are compared: the
 * byte point is never further than the count point could be (gc_due), so
 * a count batch is not missed.  The thread is the counters' only writer:
 * plain stores, no read-modify-write. */
static inline bool gc_count(_Atomic int64_t *count, _Atomic int64_t *bytes, size_t u,
			    int64_t next_bytes)
{
	int64_t n = atomic_load_explicit(count, memory_order_relaxed) + 1;
	int64_t b = atomic_load_explicit(bytes, memory_order_relaxed) + (int64_t)u;

	atomic_store_explicit(count, n, memory_order_relaxed);
	atomic_store_explicit(bytes, b, memory_order_relaxed);
	return __builtin_expect(b >= next_bytes, 0);
}

/* The thread reached its byte point: publishes if a batch of bytes or
 * blocks is complete, else sets the next point. */
void gc_due(struct thread_rec *t);

static inline bool gc_count_alloc(struct thread_rec *t, size_t u)
{
	return gc_count(&t->allocations, &t->bytes_allocated, u, t->next_alloc_bytes);
}

static inline bool gc_count_free(struct thread_rec *t, size_t u)
{
	return gc_count(&t->frees, &t->bytes_freed, u, t->next_free_bytes);
}

static inline void gc_account_alloc(struct thread_rec *t, size_t u)
{
	if (gc_count_alloc(t, u))
		gc_due(t);
}

static inline void gc_account_free(struct thread_rec *t, size_t u)
{
	if (gc_count_free(t, u))
		gc_due(t);
}

#endif
