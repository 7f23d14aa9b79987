/* The block cache: each thread keeps a few free blocks of every small
 * class in front of jemalloc.  A block freed by the thread and asked for
 * again soon after costs a push and a pop, with no atomic instruction and
 * no visit to jemalloc.
 *
 * A cached block stays registered in the object map (its start bit is
 * set) and allocated as far as jemalloc knows; it is free as far as the
 * program knows.  So whatever reads the object map with the world stopped
 * first hides the cached blocks (bcache_hide), and the few readers that
 * run alongside the program ask bcache_holds().  A cached block carries
 * bc_key in its first word, which is how a second free of it is noticed.
 *
 * Only the owning thread touches its cache; a thread that ends, or trims,
 * hands its cached blocks back to jemalloc.  Between the caches, one depot
 * per class carries blocks from threads that free to threads that
 * allocate. */
#ifndef GCSHIM_BCACHE_H
#define GCSHIM_BCACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sizeclass.h"

/* Classes up to SC_TABLE_MAX (4096 bytes): 8, 16..128, then four a
 * doubling up to 4096. */
#define BC_CLASSES 29
/* Blocks a class holds at most.  Threads that hand blocks to each other
 * in batches (a producer fills a queue of a few hundred, a consumer frees
 * them) swing a class by that much between refills: with 64 slots half of
 * every swing went through jemalloc and the object map's atomics, which
 * cost xmalloc-test a third of its time over jemalloc alone. */
#define BC_SLOTS 256
/* The slots of all classes, each class holding bc_limit of them: about
 * 3,600 with the classes and budget of bcache_init. */
#define BC_ALL_SLOTS 4096

struct bcache {
	/* The block being pushed: a thread stopped halfway through free()
	 * has it in neither the program's hands nor, yet, in the slots. */
	_Atomic(void *) freeing;
	uint16_t count[BC_CLASSES];
	/* Per class, bc_limit once the thread has allocated from the class,
	 * 0 until then: its frees of blocks that other threads allocated
	 * then take the slow path to the depot (bcache_give_away). */
	uint16_t limit[BC_CLASSES];
	/* Per class, whether the thread has lately been freeing more than
	 * it allocates: an average of +64 for each time the class overflowed
	 * and -64 for each time it ran empty.  Only a thread far on the
	 * freeing side gives blocks to the depot (bcache.c). */
	int8_t trend[BC_CLASSES];
	/* Per class, log2 of the blocks the next fill from jemalloc takes
	 * (bcache_fill). */
	uint8_t fill_lg[BC_CLASSES];
	/* Started among more threads than the CPUs can run (bcache_crowded):
	 * limits of bc_crowd_limit until the thread has gone to jemalloc
	 * often enough to show it is a busy one (misses counts the trips). */
	bool crowded;
	uint16_t misses;
	/* Slots whose start bits bcache_hide() cleared (collector only). */
	bool hid_freeing;
	uint64_t hid[BC_CLASSES][BC_SLOTS / 64];
	/* Class idx's slots start at bc_base[idx]: packed, so that a thread
	 * that uses a few blocks of many classes writes a few pages of them,
	 * not a page or two a class. */
	void *slots[BC_ALL_SLOTS];
};

/* Slots in use per class, always even: fewer for bigger blocks, so that
 * the memory a thread keeps cached stays around 32 KiB a class at most. */
extern uint16_t bc_limit[BC_CLASSES];
extern uint16_t bc_crowd_limit[BC_CLASSES];
extern uint16_t bc_base[BC_CLASSES];
extern uint64_t bc_key;

bool bcache_init(void);
void bcache_overflow(struct bcache *c, unsigned idx);
bool bcache_refill(struct bcache *c, unsigned idx);
void *bcache_fill(struct bcache *c, unsigned idx);
void *bcache_fill_from(struct bcache *c, unsigned idx, const uintptr_t *blocks, unsigned n);
void bcache_drain(struct bcache *c);
/* Whether a thread that starts while live threads hold records is to
 * have a crowded cache. */
bool bcache_crowded(unsigned live);
void bcache_start(struct bcache *c, bool crowded);
bool bcache_give_away(struct bcache *c, unsigned idx, void *p);
void bcache_drain_depots(void);
void bcache_fork_child(void);
bool bcache_holds(const void *p);
void bcache_each(void (*fn)(void *p));
size_t bcache_bytes(void);
void bcache_hide(void);
void bcache_unhide(void);

static inline void **bcache_slots(struct bcache *c, unsigned idx)
{
	return c->slots + bc_base[idx];
}

static inline bool bcache_marked(const void *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return w == bc_key;
}

static inline void *bcache_pop(struct bcache *c, unsigned idx)
{
	unsigned n = c->count[idx];
	void *p;

	if (__builtin_expect(n == 0, 0))
		return NULL;
	p = bcache_slots(c, idx)[n - 1];
	if (!p)
		__builtin_unreachable();   /* only blocks are pushed */
	c->count[idx] = (uint16_t)(n - 1);
	memset(p, 0, sizeof(uint64_t));   /* bc_key: no longer cached */
	return p;
}

/* The thread allocates from class idx: from now on its frees of the
 * class stay with it. */
static inline void bcache_allocating(struct bcache *c, unsigned idx)
{
	c->limit[idx] = c->crowded ? bc_crowd_limit[idx] : bc_limit[idx];
}

static inline bool bcache_full(const struct bcache *c, unsigned idx)
{
	return c->count[idx] >= c->limit[idx];
}

/* Only when !bcache_full().  The stores are ordered for a collector that
 * may stop the thread between any two of them. */
static inline void bcache_put(struct bcache *c, unsigned idx, void *p)
{
	unsigned n = c->count[idx];
	uint64_t key = bc_key;   /* read before the fence: free() has it already */

	atomic_store_explicit(&c->freeing, p, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	memcpy(p, &key, sizeof(key));
	bcache_slots(c, idx)[n] = p;
	c->count[idx] = (uint16_t)(n + 1);
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&c->freeing, NULL, memory_order_relaxed);
}

static inline void bcache_push(struct bcache *c, unsigned idx, void *p)
{
	if (__builtin_expect(bcache_full(c, idx), 0))
		bcache_overflow(c, idx);
	bcache_put(c, idx, p);
}

#endif
