/* Giving a block back to jemalloc: the one way every part of the shim
 * does it (free(), the collector's reclaim, the garbage list), so that the
 * object map, the side tables and the accounts always agree. */
#ifndef GCSHIM_RELEASE_H
#define GCSHIM_RELEASE_H

#include <stddef.h>
#include <stdint.h>

#include "thread.h"

/* A registered block: its usable size, or 0 (nothing done) if p starts no
 * live block.  t may be NULL (a thread not set up): nothing is counted. */
size_t release_block(struct thread_rec *t, void *p);

/* A block the collector already took out of the object map's start bits
 * while the world was stopped: counted as t's free, then given back.  The
 * two halves apart, for a block counted now and given back later. */
void release_unregistered(struct thread_rec *t, uintptr_t p, size_t usable);
void release_count(struct thread_rec *t, size_t blocks, int64_t bytes);
void release_memory(uintptr_t p, size_t usable);

/* Every free block the shim holds (the calling thread's cache, the
 * depots, jemalloc's caches and dirty pages) back to the system now. */
void release_free_memory(void);

#endif
