/* Per-thread allocation counters.  Each thread owns one record and updates
 * it with plain (relaxed) stores; readers sum all records.  Records are
 * never freed, only reused by later threads with their totals intact, so
 * the sum over records is the sum over every thread that ever ran. */
#ifndef GCSHIM_THREAD_H
#define GCSHIM_THREAD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define THREAD_COUNTERS(X) X(allocations) X(frees) X(reallocs) \
	X(bytes_allocated) X(bytes_freed)

/* Aligned so that two threads never write the same cache lines. */
struct thread_rec {
#define TC_FIELD(name) _Atomic int64_t name;
	THREAD_COUNTERS(TC_FIELD)
#undef TC_FIELD
	/* Owner-only deltas not yet published to the global counters. */
	int64_t pend_bytes, pend_live, pend_count;
	_Atomic int in_use;
	_Atomic pid_t tid;
	struct thread_rec *next;
} __attribute__((aligned(128)));

struct thread_totals {
#define TC_TOTAL(name) int64_t name;
	THREAD_COUNTERS(TC_TOTAL)
#undef TC_TOTAL
	int64_t threads;
};

extern __thread struct thread_rec *thread_self
	__attribute__((tls_model("initial-exec")));

struct thread_rec *thread_attach(void);
void thread_registry_init(void);
void thread_sum(struct thread_totals *t);
void thread_fork_child(void);
void thread_lock(void);
void thread_unlock(void);

static inline struct thread_rec *thread_get(void)
{
	struct thread_rec *t = thread_self;

	return __builtin_expect(t != NULL, 1) ? t : thread_attach();
}

/* The owner is the only writer, so no read-modify-write is needed. */
static inline void tc_add(_Atomic int64_t *c, int64_t d)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
			      memory_order_relaxed);
}

#endif
