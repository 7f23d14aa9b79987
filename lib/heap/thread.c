#define _GNU_SOURCE
#include "thread.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "os.h"
#include "spin.h"

__thread struct thread_rec *thread_self __attribute__((tls_model("initial-exec")));

static struct thread_rec *_Atomic registry;
static _Atomic unsigned live;   /* records in use by a running thread */
static pthread_key_t exit_key;
static bool have_key;

/* What the rest of the heap layer does as a thread comes and goes, set
 * at start-up by the layer above, which knows every part. */
static struct {
	void (*started)(struct thread_rec *t);
	void (*ended)(struct thread_rec *t);
} hooks;
static atomic_flag pool_lock = ATOMIC_FLAG_INIT;

/* Records are mapped 16 at a time: each mapping is one of the regions
 * the collector does not scan (regions.h), whose table is bounded. */
#define POOL_RECORDS 16

/* Yields while it waits: the holder may be mapping a pool, and a program
 * that starts threads by the hundred has more of them waiting here than
 * there are cores (with spinning, most of their start-up time). */
void thread_lock(void)
{
	spin_lock_yield(&pool_lock);
}

void thread_unlock(void)
{
	spin_unlock(&pool_lock);
}

/* Records come from our own pages: a record is needed before the thread
 * may allocate, and the thread cannot allocate before it has one. */
static struct thread_rec *new_record(void)
{
	static struct thread_rec *pool;
	static size_t pool_left;
	struct thread_rec *r = NULL, *head;

	thread_lock();
	if (pool_left == 0) {
		pool = os_map(POOL_RECORDS * sizeof(*r));
		pool_left = pool ? POOL_RECORDS : 0;
	}
	if (pool_left) {
		r = pool++;
		pool_left--;
	}
	thread_unlock();
	if (!r)
		return NULL;
	bcache_new(&r->cache);
	atomic_store(&r->in_use, 1);
	head = atomic_load(&registry);
	do
		r->next = head;
	while (!atomic_compare_exchange_weak(&registry, &head, r));
	return r;
}

static struct thread_rec *reuse_record(void)
{
	for (struct thread_rec *r = atomic_load(&registry); r; r = r->next) {
		int free_ = 0;

		if (atomic_load_explicit(&r->in_use, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_strong(&r->in_use, &free_, 1))
			return r;
	}
	return NULL;
}

/* Publishes the dying thread's pending deltas and frees its record for the
 * next thread.  Allocations made after this (by later destructors) attach
 * a record again; glibc then calls this destructor once more. */
static void thread_detach(void *arg)
{
	struct thread_rec *r = arg;

	if (thread_self != r)
		return;
	if (hooks.ended)
		hooks.ended(r);
	thread_self = NULL;
	atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
	atomic_store(&r->tid, 0);
	atomic_store_explicit(&r->in_use, 0, memory_order_release);
}

void thread_registry_init(void (*started)(struct thread_rec *t),
			  void (*ended)(struct thread_rec *t))
{
	hooks.started = started;
	hooks.ended = ended;
	have_key = pthread_key_create(&exit_key, thread_detach) == 0;
}

struct thread_rec *thread_attach(void)
{
	struct thread_rec *r = reuse_record();

	if (!r)
		r = new_record();
	if (!r)
		return NULL;
	atomic_store(&r->tid, os_gettid());
	thread_self = r;
	atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
	if (hooks.started)
		hooks.started(r);
	if (have_key)
		pthread_setspecific(exit_key, r);
	return r;
}

unsigned thread_live(void)
{
	return atomic_load_explicit(&live, memory_order_relaxed);
}

/* Every record ever made, in use or not, through ->next. */
struct thread_rec *thread_first(void)
{
	return atomic_load(&registry);
}

void thread_sum(struct thread_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (struct thread_rec *r = atomic_load(&registry); r; r = r->next) {
#define TC_SUM(name) t->name += atomic_load_explicit(&r->name, memory_order_relaxed);
		THREAD_COUNTERS(TC_SUM)
#undef TC_SUM
		t->threads += atomic_load_explicit(&r->in_use, memory_order_relaxed);
	}
}

/* Only the forking thread lives on in the child: the other records keep
 * their totals (their blocks are still in the heap) but become reusable. */
void thread_fork_child(void)
{
	for (struct thread_rec *r = atomic_load(&registry); r; r = r->next) {
		if (r != thread_self) {
			atomic_store(&r->in_use, 0);
			atomic_store(&r->tid, 0);
		}
	}
	if (thread_self)
		atomic_store(&thread_self->tid, os_gettid());
	atomic_store(&live, thread_self ? 1 : 0);
}
