/* Freeing off the pause: the dead blocks of an automatic collection are
 * accounted as freed at once (mem_alloc is exact whenever it is read),
 * then given back to jemalloc a chunk at a time by the program's threads
 * as they publish their allocation counts, instead of all by the thread
 * that collected while its caller waits.  The thread that frees the last
 * chunk hands the free memory back to the system when sweep_gives_back()
 * says the heap shrank for good. */
#ifndef GCSHIM_SWEEP_H
#define GCSHIM_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bcache.h"

/* The sweep sorts blocks into one bucket per class of the thread caches
 * and one for the rest; counts kept per bucket while the dead blocks are
 * found spare it a pass over them. */
#define SWEEP_BUCKETS (BC_CLASSES + 1)

struct sweep_counts {
	size_t n[SWEEP_BUCKETS];
	int64_t bytes[SWEEP_BUCKETS];
};

/* n dead blocks of the page at address page, all of its class. */
void sweep_count(struct sweep_counts *c, uintptr_t page, size_t n);
/* Adds from into to, which other threads add to as well. */
void sweep_counts_add(struct sweep_counts *to, const struct sweep_counts *from);
int64_t sweep_counts_bytes(const struct sweep_counts *c);

void sweep_init(void);
/* Hands over n blocks, taken out of the object map's start bits but
 * with their page entries (so their sizes) intact; bytes is their total.
 * The list is the sweep's until it is over: the thread that ends it then
 * calls done(). */
void sweep_hand_over(uintptr_t *blocks, size_t n, int64_t bytes, void (*done)(void));
/* The same with the blocks counted (c holds exactly them), whose entries
 * may carry flags in their three low bits, which the sweep clears. */
void sweep_hand_over_counted(uintptr_t *blocks, size_t n, const struct sweep_counts *c,
			     void (*done)(void));
/* Frees whatever is left, on the calling thread; returns when no block
 * of the last hand-over remains.  Before a collection, a fork, or when
 * the caller wants the memory back now. */
void sweep_finish(void);
/* Refills the empty class idx of c from the dead blocks of that class not
 * yet given back, and returns one more for the caller (as bcache_fill);
 * NULL if there are none, or the sweep is busy. */
void *sweep_refill(struct bcache *c, unsigned idx);
int64_t sweep_pending_bytes(void);
/* Whether an automatic collection that freed this much gives the free
 * memory back to the system at once, or leaves it to be reused. */
bool sweep_gives_back(int64_t freed);
void sweep_fork_child(void);

#endif
