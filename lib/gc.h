/* The gc module's state: settings (enable, thresholds, debug, limit), the
 * global view of allocation built from per-thread deltas, and the points
 * where an automatic collection is due. */
#ifndef GCSHIM_GC_H
#define GCSHIM_GC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thread.h"

struct gc_state {
	_Atomic int enabled;
	_Atomic int debug;
	_Atomic int64_t threshold;       /* bytes, -1 = off */
	_Atomic int64_t gen_threshold[3];
	_Atomic int64_t limit;           /* 0 = none */
	_Atomic int64_t live;            /* published mem_alloc */
	_Atomic int64_t peak;
	_Atomic int64_t since;           /* bytes allocated since last trigger */
	_Atomic int64_t count;           /* published allocations - frees */
	_Atomic int64_t count_base;      /* count at the last gen-0 point */
	_Atomic int64_t gen_count[3];    /* [1], [2]: CPython's count1, count2 */
	/* A thread publishes its deltas once they reach these. */
	_Atomic int64_t batch_bytes, batch_count;
};

extern struct gc_state gc;

void gc_init(void);
void gc_publish(struct thread_rec *t);
bool gc_reserve(size_t usable);
bool gc_make_room(void);
void gc_set_limit(int64_t bytes);

int gc_set_threshold_bytes(int64_t bytes);
int gc_set_gen_thresholds(const int64_t t[3]);
int gc_set_debug(int64_t flags);
void gc_get_counts(int64_t out[3]);
int64_t gc_mem_alloc(void);

static inline bool gc_limited(void)
{
	return atomic_load_explicit(&gc.limit, memory_order_relaxed) != 0;
}

static inline void gc_unreserve(size_t usable)
{
	atomic_fetch_sub_explicit(&gc.live, (int64_t)usable, memory_order_relaxed);
}

/* The malloc fast path's bookkeeping: counters, then a rare publish. */
static inline void gc_account_alloc(struct thread_rec *t, size_t u, bool reserved)
{
	tc_add(&t->allocations, 1);
	tc_add(&t->bytes_allocated, (int64_t)u);
	t->pend_bytes += (int64_t)u;
	t->pend_count++;
	if (!reserved)
		t->pend_live += (int64_t)u;
	if (__builtin_expect(t->pend_bytes >= atomic_load_explicit(&gc.batch_bytes, memory_order_relaxed) ||
			     t->pend_count >= atomic_load_explicit(&gc.batch_count, memory_order_relaxed), 0))
		gc_publish(t);
}

static inline void gc_account_free(struct thread_rec *t, size_t u)
{
	tc_add(&t->frees, 1);
	tc_add(&t->bytes_freed, (int64_t)u);
	t->pend_count--;
	if (__builtin_expect(gc_limited(), 0))
		gc_unreserve(u);
	else
		t->pend_live -= (int64_t)u;
	if (__builtin_expect(-t->pend_live >= atomic_load_explicit(&gc.batch_bytes, memory_order_relaxed) ||
			     -t->pend_count >= atomic_load_explicit(&gc.batch_count, memory_order_relaxed), 0))
		gc_publish(t);
}

#endif
