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

#include "bcache.h"

#define THREAD_COUNTERS(X) X(allocations) X(frees) X(reallocs) \
	X(bytes_allocated) X(bytes_freed)

/* The fast path reads and writes only the first cache line: the counters
 * it bumps and the points at which it next publishes to gc.c. */
struct thread_rec {
	_Atomic int64_t allocations, bytes_allocated;
	int64_t next_alloc_bytes;
	_Atomic int64_t frees, bytes_freed;
	int64_t next_free_bytes;
	_Atomic int64_t reallocs;
	/* what was last published, owner-only */
	int64_t pub_allocations, pub_frees, pub_bytes_allocated, pub_bytes_freed;
	_Atomic int in_use;
	_Atomic pid_t tid;
	struct thread_rec *next;
	struct bcache cache;     /* owner-only */
	void *site_memo;         /* owner-only: stackmemo.c's, kept for the next thread */
	unsigned site_memo_next;
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
/* started: the record is the thread's (thread_self) and nothing of the
 * thread was counted in it yet; ended: the thread is going away. */
void thread_registry_init(void (*started)(struct thread_rec *t),
			  void (*ended)(struct thread_rec *t));
void thread_sum(struct thread_totals *t);
struct thread_rec *thread_first(void);
/* Threads holding a record now: started, not yet ended. */
unsigned thread_live(void);
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
