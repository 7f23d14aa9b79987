/* Layer 2 of 5, heap and side tables (lib/heap/): jemalloc and its
 * arenas, the object map, threads, thread caches, accounting and its
 * triggers, event counters, allocation sites, frozen and pinned blocks,
 * giving blocks back.  Calls only its own layer and the platform; what
 * must happen above (a collection, a sweep, a thread's start) is a hook
 * the layer above registers. */
/* The backing allocator: jemalloc, linked in privately with its public
 * names renamed (gsje_*), serving every block from arenas whose extents
 * come from one reserved address range, so the object map can cover it. */
#ifndef GCSHIM_HEAP_H
#define GCSHIM_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct heap_stats {
	int64_t allocated, active, resident, mapped, metadata, purges;
};

/* jemalloc's entry points, renamed at build time (lib/jemalloc.syms). */
void *gsje_malloc(size_t);
void *gsje_calloc(size_t, size_t);
void gsje_sdallocx(void *, size_t, int);

bool heap_init(size_t reserve, unsigned narenas);
bool heap_thread_init(bool crowded);
void heap_thread_cache(bool on);
/* The calling thread's program code has ended: unless it freed much,
 * what jemalloc does as it unbinds the thread is left to decay (heap.c). */
void heap_thread_leaving(void);
void *heap_alloc(size_t n);
void *heap_alloc_zeroed(size_t n);
void *heap_alloc_aligned(size_t n, size_t align, size_t *usable);
size_t heap_usable_for(size_t n, size_t align);
void heap_free(void *p);

/* Blocks this big give their pages back to the system as they are freed,
 * as plain jemalloc's oversize arena does (all our blocks come from one
 * arena, whose pages otherwise wait for decay): a buffer this size is
 * seldom reused whole soon, and its pages are what the program's RSS is
 * made of. */
#define HEAP_PURGE_AT (8UL << 20)

void heap_purge_block(void *p, size_t usable);

/* The size is the one the object map holds: jemalloc skips its lookup. */
static inline void heap_free_sized(void *p, size_t usable)
{
	if (__builtin_expect(usable >= HEAP_PURGE_AT, 0))
		heap_purge_block(p, usable);
	gsje_sdallocx(p, usable, 0);
}
size_t heap_resize_in_place(void *p, size_t n);
void heap_read_stats(struct heap_stats *st);
unsigned heap_arenas(void);
size_t heap_reserved(void);
uintptr_t heap_top(void);
/* Blocks [lo, hi) were just taken from jemalloc by this thread: the part
 * of the range its arena never handed out before, and some that follows,
 * is faulted in at once. */
void heap_populate_fresh(uintptr_t lo, uintptr_t hi);
void heap_release_memory(void);
void heap_lock(void);
void heap_unlock(void);

#endif
