/* The malloc family: the entry points a preloaded program calls, and
 * nothing else.  Each one validates against the object map, calls the
 * heap, registers or unregisters the block, and accounts for it. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "bcache.h"
#include "boot.h"
#include "collect.h"
#include "account.h"
#include "heap.h"
#include "frozen.h"
#include "init.h"
#include "log.h"
#include "objmap.h"
#include "os.h"
#include "probes.h"
#include "release.h"
#include "shim.h"
#include "sites.h"
#include "sweep.h"
#include "events.h"

#define EXPORT __attribute__((visibility("default")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* NULL when the heap cannot serve this call (start-up recursion). */
static struct thread_rec *thread_or_init(void)
{
	struct thread_rec *t = thread_self;

	if (likely(t))
		return t;
	if (!shim_heap_ready())
		return NULL;
	return thread_attach();
}

static void *fail_enomem(void)
{
	stat_inc(EV_alloc_failures);
	errno = ENOMEM;
	return NULL;
}

static void *heap_make(size_t n, size_t align, bool zero, size_t *u)
{
	if (align)
		return heap_alloc_aligned(n, align, u);
	return zero ? heap_alloc_zeroed(n) : heap_alloc(n);
}

/* The slow path of every allocation: start-up, the heap limit (the bytes
 * are reserved before the block is made), a failure that a collection
 * may cure, and aligned requests. */
static void *alloc_slow(size_t n, size_t align, bool zero)
{
	struct thread_rec *t = thread_or_init();
	size_t u = 0, asked = n;
	bool reserved = false;
	void *p;

	if (!t) {
		p = boot_alloc(n, align);
		return p ? p : fail_enomem();
	}
	if (n > SC_MAX)
		return fail_enomem();
	if (!align) {
		n = sc_request(n);
		u = sc_usable(n);
	}
	if (gc_limited()) {
		size_t need = align ? heap_usable_for(n, align) : u;

		if (!gc_reserve(need) && !(gc_make_room() && gc_reserve(need))) {
			stat_inc(EV_limit_failures);
			PROBE(limit__refused, need);
			return fail_enomem();
		}
		u = need;
		reserved = true;
	}
	p = heap_make(n, align, zero, &u);
	if (unlikely(!p) && gc_make_room())
		p = heap_make(n, align, zero, &u);
	if (unlikely(!p)) {
		if (reserved)
			gc_unreserve(u);
		return fail_enomem();
	}
	om_insert(p, u);
	if (unlikely(gc_mode_now() & MODE_SITES))
		sites_alloc(t, p, asked);
	gc_account_alloc(t, u);
	return p;
}

/* The end of every small allocation that is not a plain cache hit: the
 * site, the accounting. */
static void *alloc_finish(struct thread_rec *t, void *p, size_t n, struct sc_entry e)
{
	if (unlikely(gc_mode_now() & MODE_SITES))
		sites_alloc(t, p, n);
	gc_account_alloc(t, e.size);
	return p;
}

/* The thread's cache has no block of this class: the depot's turn, then
 * the dead blocks the last collection left (sweep.h), then jemalloc's.
 * The thread and class are looked up again rather than kept across the
 * call, which would cost the fast path a stack frame. */
static __attribute__((noinline)) void *alloc_refill(size_t n, bool zero)
{
	struct thread_rec *t = thread_self;
	struct sc_entry e = sc_lookup(n);
	void *p;

	bcache_allocating(&t->cache, e.index);
	if (bcache_refill(&t->cache, e.index)) {
		p = alloc_finish(t, bcache_pop(&t->cache, e.index), n, e);
		return zero ? memset(p, 0, n) : p;
	}
	p = sweep_refill(&t->cache, e.index);
	if (!p)
		p = bcache_fill(&t->cache, e.index);
	if (unlikely(!p))
		return alloc_slow(n, 0, zero);
	return alloc_finish(t, zero ? memset(p, 0, n) : p, n, e);
}

/* A cache hit that records its site, or after which the thread is due to
 * publish. */
static __attribute__((noinline)) void *alloc_cached_slow(struct thread_rec *t, void *p,
							size_t n, bool zero, bool due)
{
	if (gc_mode_now() & MODE_SITES)
		sites_alloc(t, p, n);
	if (due)
		gc_due(t);
	return zero ? memset(p, 0, n) : p;
}

static void *alloc_sited(size_t n, bool zero);

/* The common case: a thread already set up, no heap limit, a small block
 * the thread freed before (still registered in the object map).  Every
 * call it makes is a tail call, so it runs without a stack frame.  With
 * allocation sites on, the program's call goes through alloc_sited first
 * (sited: already there). */
static inline __attribute__((always_inline)) void *alloc_fast(size_t n, bool zero, bool sited)
{
	struct thread_rec *t = thread_self;
	unsigned mode = gc_mode_now();
	unsigned divert = MODE_LIMITED | (sited ? 0 : MODE_SITES);
	struct sc_entry e;
	void *p;
	bool due;

	if (unlikely(!t || mode & divert || n > t->cache.max_request)) {
		if (!sited && mode & MODE_SITES)
			return alloc_sited(n, zero);
		return alloc_slow(n, 0, zero);
	}
	e = sc_lookup(n);
	p = bcache_pop(&t->cache, e.index);
	if (unlikely(!p))
		return alloc_refill(n, zero);
	due = gc_count_alloc(t, e.size);
	if (unlikely(due || (sited && mode & MODE_SITES)))
		return alloc_cached_slow(t, p, n, zero, due);
	return zero ? memset(p, 0, n) : p;
}

/* Reached from malloc and calloc by tail calls: the return address is
 * the program's, which the allocation site's memo is keyed by. */
static __attribute__((noinline)) void *alloc_sited(size_t n, bool zero)
{
	struct site_caller prev;
	void *p;

	sites_enter(&prev, __builtin_return_address(0), __builtin_frame_address(0));
	p = alloc_fast(n, zero, true);
	sites_leave(&prev);
	return p;
}

EXPORT void *malloc(size_t n)
{
	return alloc_fast(n, false, false);
}

EXPORT void *calloc(size_t n, size_t m)
{
	size_t total;

	if (unlikely(__builtin_mul_overflow(n, m, &total)))
		return fail_enomem();
	return alloc_fast(total, true, false);
}

/* Usable size of the live block at p, a heap address; 0 if no block
 * starts there or the one that does is free in a cache. */
static size_t live_usable(void *p)
{
	size_t u = om_usable(p);

	return u && bcache_holds(p) ? 0 : u;
}

/* Pointers the shim never handed out are left alone: counted, reported
 * once per kind, never passed to jemalloc.  Kept out of line: free()
 * reaches it by a tail call and so needs no stack frame of its own. */
static __attribute__((noinline)) void free_stranger(void *p)
{
	if (boot_owns(p))
		return;
	if (om_in_heap(p)) {
		stat_inc(EV_invalid_frees);
		log_once(w_invalid, "free(%p): no live block starts there "
			 "(double free or interior pointer); ignored", p);
	} else {
		stat_inc(EV_foreign_frees);
		log_once(w_foreign, "free(%p): not allocated by gcshim "
			 "(foreign pointer); ignored and left allocated", p);
	}
}

/* A thread not set up yet, the heap limit, the garbage list: what the
 * fast path only tests for; and a block of a class the thread does not
 * cache, which may be in another thread's cache (a double free). */
static __attribute__((noinline)) void free_slow(void *p)
{
	if (!live_usable(p)) {
		free_stranger(p);
		return;
	}
	if (gc_mode_now() & MODE_GARBAGE)
		garbage_check_free(p, om_usable(p));
	if (unlikely(!release_block(thread_or_init(), p)))
		free_stranger(p);
}

/* free(NULL), and pointers outside the heap. */
static __attribute__((noinline)) void free_outside(void *p)
{
	if (p)
		free_stranger(p);
}

/* A large block, unregistered and given back to jemalloc at once. */
static __attribute__((noinline)) void free_large(struct thread_rec *t, void *p)
{
	size_t u = om_remove(p);

	if (unlikely(!u)) {
		free_stranger(p);
		return;
	}
	heap_free_sized(p, u);
	gc_account_free(t, u);
}

/* A small block whose class is full or never allocated from by this
 * thread (bcache.h), that carries the cache's key (perhaps it is in a
 * cache already: a double free), or whose pin is to be dropped. */
static __attribute__((noinline)) void free_to_cache(struct thread_rec *t, void *p, unsigned idx)
{
	if (bcache_holds(p)) {
		free_stranger(p);
		return;
	}
	if (gc_mode_now() & MODE_FREE_CACHED)
		sites_unpin_freed(p);
	if (bcache_limit(&t->cache, idx) || !bcache_give_away(&t->cache, idx, p))
		bcache_push(&t->cache, idx, p);
	gc_account_free(t, sc_sizes[idx]);
}

/* The common case: a live small block of this process freed by a thread
 * that is set up, with no mode asking for more; it goes to the thread's
 * cache and stays registered.  As in malloc, every call is a tail call.
 * jemalloc's free path does not touch errno; nor does this one. */
EXPORT void free(void *p)
{
	struct thread_rec *t = thread_self;
	uintptr_t off = (uintptr_t)p - om.base;
	unsigned mode = gc_mode_now(), idx;

	if (unlikely(off >= om.size)) {
		free_outside(p);
		return;
	}
	mode &= ~MODE_FREE_FAST;
	if (unlikely((mode & ~MODE_FREE_CACHED) || !t)) {
		free_slow(p);
		return;
	}
	if (unlikely(!om_is_start(off))) {
		free_stranger(p);
		return;
	}
	idx = om_class_at(off) - 1;
	if (unlikely(idx >= t->cache.classes)) {
		/* a slab class the thread does not cache (a crowded thread's,
		 * above a page) may be in another's cache: free_slow asks */
		if (mode || idx < BC_CLASSES)
			free_slow(p);
		else
			free_large(t, p);
		return;
	}
	if (unlikely(bcache_marked(p) || bcache_full(&t->cache, idx) || mode)) {
		free_to_cache(t, p, idx);
		return;
	}
	bcache_put(&t->cache, idx, p);
	if (unlikely(gc_count_free(t, sc_sizes[idx])))
		gc_due(t);
}

/* realloc of a block that is not ours: the new block receives as many of
 * the first n bytes as are readable, and the old one is left alone. */
static void *realloc_stranger(void *p, size_t n)
{
	void *q;

	if (boot_owns(p)) {
		size_t old = boot_size(p);

		q = malloc(n);
		if (q)
			memcpy(q, p, old < n ? old : n);
		return q;
	}
	if (om_in_heap(p)) {
		stat_inc(EV_invalid_frees);
		log_once(w_rinvalid, "realloc(%p): no live block starts there "
			 "(freed or interior pointer); copied into a new block", p);
	} else {
		stat_inc(EV_foreign_reallocs);
		log_once(w_realloc, "realloc(%p): not allocated by gcshim "
			 "(foreign pointer); copied into a new block", p);
	}
	q = malloc(n);
	if (q)
		os_copy_from_self(q, p, n);   /* unreadable: the block stays as it is */
	return q;
}

/* A large block resized without moving; false if jemalloc cannot.  The
 * object map shrinks before the extent does (its tail pages may be reused
 * at once) and grows after; under a heap limit the difference is
 * reserved first, so shrinking never needs room for a copy. */
static bool resize_in_place(struct thread_rec *t, void *p, size_t old, size_t n,
			    size_t want)
{
	bool limited = gc_limited();

	if (want > old && limited && !gc_reserve(want - old))
		return false;
	if (want < old)
		om_resize(p, old, want);
	if (heap_resize_in_place(p, n) != want) {
		if (want < old)
			om_resize(p, want, old);
		else if (limited)
			gc_unreserve(want - old);
		return false;
	}
	if (want > old)
		om_resize(p, old, want);
	if (limited && want < old)
		gc_unreserve(old - want);
	tc_add(&t->bytes_allocated, (int64_t)want);
	tc_add(&t->bytes_freed, (int64_t)old);
	return true;
}

/* Only large blocks change size in place; small ones move to their new
 * class.  The new block is registered before the old one is released, so
 * a collection never sees the contents in neither. */
static void *realloc_live(void *p, size_t old, size_t n)
{
	struct thread_rec *t = thread_or_init();
	size_t want = sc_usable(sc_request(n));
	void *q;

	if (unlikely(!t))
		return NULL;
	if (want == old ||
	    (old > SC_SMALL_MAX && want > SC_SMALL_MAX && resize_in_place(t, p, old, n, want))) {
		if (gc_mode_now() & MODE_SITES)   /* the block's request is the new one */
			sites_alloc(t, p, n);
		tc_add(&t->reallocs, 1);
		return p;
	}
	q = malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	free(p);
	tc_add(&t->reallocs, 1);
	tc_add(&t->allocations, -1);
	tc_add(&t->frees, -1);
	return q;
}

EXPORT void *realloc(void *p, size_t n)
{
	size_t old;

	if (!p)
		return malloc(n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	old = om_in_heap(p) ? live_usable(p) : 0;
	if (unlikely(!old))
		return realloc_stranger(p, n);
	if (unlikely(gc_mode_now() & MODE_GARBAGE))
		garbage_check_free(p, old);
	if (unlikely(gc_mode_now() & MODE_FROZEN))
		frozen_forget(p);
	if (n > SC_MAX)
		return fail_enomem();
	return realloc_live(p, old, n);
}

EXPORT void *reallocarray(void *p, size_t n, size_t m)
{
	size_t total;

	if (__builtin_mul_overflow(n, m, &total))
		return fail_enomem();
	return realloc(p, total);
}

static bool power_of_two(size_t a)
{
	return a && !(a & (a - 1));
}

void *shim_memalign(size_t align, size_t n)
{
	if (align <= 8 || (align <= 16 && n > 8))
		return malloc(n);
	return alloc_slow(n, align, false);
}

/* glibc's rules: memalign rounds a bad alignment up to a power of two,
 * posix_memalign rejects it. */
EXPORT void *memalign(size_t align, size_t n)
{
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (!power_of_two(align))
		align = align < 2 ? 1 : (size_t)1 << (64 - __builtin_clzl(align));
	return shim_memalign(align, n);
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
	return memalign(align, n);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	void *p;
	int saved = errno;

	if (!power_of_two(align) || align % sizeof(void *))
		return EINVAL;
	p = shim_memalign(align, n);
	if (!p) {
		errno = saved;
		return ENOMEM;
	}
	*out = p;
	return 0;
}

EXPORT void *valloc(size_t n)
{
	return shim_memalign(OS_PAGE, n);
}

EXPORT void *pvalloc(size_t n)
{
	size_t rounded;

	if (__builtin_add_overflow(n, OS_PAGE - 1, &rounded))
		return fail_enomem();
	rounded &= ~(OS_PAGE - 1);
	return shim_memalign(OS_PAGE, rounded ? rounded : OS_PAGE);
}

EXPORT size_t malloc_usable_size(void *p)
{
	size_t u;

	if (!p)
		return 0;
	if (boot_owns(p))
		return boot_size(p);
	u = om_in_heap(p) ? live_usable(p) : 0;
	if (unlikely(!u)) {
		stat_inc(EV_foreign_sizes);
		log_once(w_usable, "malloc_usable_size(%p): not a live block of "
			 "gcshim; answered 0", p);
	}
	return u;
}

/* glibc's own names for the same functions, which a few programs call
 * to reach "the real malloc". */
EXPORT void *__libc_malloc(size_t n) __attribute__((alias("malloc"), copy(malloc)));
EXPORT void *__libc_calloc(size_t n, size_t m) __attribute__((alias("calloc"), copy(calloc)));
EXPORT void *__libc_realloc(void *p, size_t n) __attribute__((alias("realloc"), copy(realloc)));
EXPORT void __libc_free(void *p) __attribute__((alias("free"), copy(free)));
EXPORT void *__libc_memalign(size_t a, size_t n) __attribute__((alias("memalign"), copy(memalign)));
EXPORT void *__libc_valloc(size_t n) __attribute__((alias("valloc"), copy(valloc)));
EXPORT void *__libc_pvalloc(size_t n) __attribute__((alias("pvalloc"), copy(pvalloc)));

/* glibc's heap knobs act on jemalloc here. */
EXPORT int malloc_trim(size_t pad)
{
	(void)pad;
	release_free_memory();
	return 1;
}
