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

/* The slab classes, up to SC_TABLE_MAX (14 KiB): 8, 16..128, then four a
 * doubling up to 14336.  A bigger block is an extent of its own, which
 * goes back to jemalloc and out of the object map as it is freed. */
#define BC_CLASSES 36
/* A crowded thread (bcache.c) caches the classes up to a page only, as
 * jemalloc's arena keeps the rest for every thread: a thousand threads
 * holding two blocks of 5 to 8 KiB each would hold 26 MiB. */
#define BC_CROWD_CLASSES 29
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
	/* Per class, the slot index past its last cached block: slots[top - 1]
	 * is the next one out.  An index into slots rather than a count, so
	 * that push and pop need not look up where the class's slots start;
	 * the slot below each class's first always holds NULL (bc_base), which
	 * is how pop sees the class empty.  bcache_count() is the count. */
	uint16_t top[BC_CLASSES];
	/* Per class, the slot index past the last one the thread may fill:
	 * bc_base[idx] (no room) until the thread has allocated from the
	 * class, bc_base + bc_limit (or bc_crowd_limit) from then on.  Its
	 * frees of blocks that other threads allocated then take the slow
	 * path to the depot (bcache_give_away).  bcache_limit() is the size. */
	uint16_t end[BC_CLASSES];
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
	/* Set with crowded (set_crowded): the classes the thread caches,
	 * BC_CLASSES or BC_CROWD_CLASSES, and the largest request they
	 * serve; blocks above go to jemalloc and the object map as they are
	 * made and freed. */
	uint8_t classes;
	uint16_t max_request;
	/* Slots whose start bits bcache_hide() cleared (collector only). */
	bool hid_freeing;
	uint64_t hid[BC_CLASSES][BC_SLOTS / 64];
	/* Class idx's slots start at bc_base[idx], one NULL slot apart:
	 * packed, so that a thread that uses a few blocks of many classes
	 * writes a few pages of them, not a page or two a class. */
	void *slots[BC_ALL_SLOTS];
};

/* Slots in use per class, always even: fewer for bigger blocks, so that
 * the memory a thread keeps cached stays around 32 KiB a class at most.
 * Class idx's slots start at bc_base[idx], after the NULL slot below. */
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
void bcache_new(struct bcache *c);
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

/* Blocks cached of class idx.  A record has its indexes from the moment
 * it is made (bcache_new), and top never goes below its class's base. */
static inline unsigned bcache_count(const struct bcache *c, unsigned idx)
{
	return (unsigned)(c->top[idx] - bc_base[idx]);
}

static inline void bcache_set_count(struct bcache *c, unsigned idx, unsigned n)
{
	c->top[idx] = (uint16_t)(bc_base[idx] + n);
}

/* Blocks class idx may hold: 0 until the thread allocated from it. */
static inline unsigned bcache_limit(const struct bcache *c, unsigned idx)
{
	return (unsigned)(c->end[idx] - bc_base[idx]);
}

static inline bool bcache_marked(const void *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return w == bc_key;
}

static inline void *bcache_pop(struct bcache *c, unsigned idx)
{
	unsigned top = c->top[idx];
	void *p = c->slots[top - 1];

	if (__builtin_expect(!p, 0))
		return NULL;   /* the NULL below the class's first slot */
	c->top[idx] = (uint16_t)(top - 1);
	memset(p, 0, sizeof(uint64_t));   /* bc_key: no longer cached */
	return p;
}

/* The thread allocates from class idx: from now on its frees of the
 * class stay with it. */
static inline void bcache_allocating(struct bcache *c, unsigned idx)
{
	c->end[idx] = (uint16_t)(bc_base[idx] + (c->crowded ? bc_crowd_limit[idx] : bc_limit[idx]));
}

static inline bool bcache_full(const struct bcache *c, unsigned idx)
{
	return c->top[idx] >= c->end[idx];
}

/* Only when !bcache_full().  The stores are ordered for a collector that
 * may stop the thread between any two of them. */
static inline void bcache_put(struct bcache *c, unsigned idx, void *p)
{
	unsigned top = c->top[idx];
	uint64_t key = bc_key;   /* read before the fence: free() has it already */

	atomic_store_explicit(&c->freeing, p, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	memcpy(p, &key, sizeof(key));
	c->slots[top] = p;
	c->top[idx] = (uint16_t)(top + 1);
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
