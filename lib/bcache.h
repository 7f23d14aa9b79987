/* The block cache: each thread keeps a few free blocks of every small
 * class in front of jemalloc.  A block freed by the thread and asked for
 * again soon after costs a push and a pop instead of a round trip through
 * jemalloc's own thread cache, which is where most of the shim's work
 * used to add to jemalloc's.
 *
 * A cached block is free as far as the program and the collector know
 * (its start bit is clear) and allocated as far as jemalloc knows.  Only
 * the owning thread touches its cache; a thread that ends, or trims, hands
 * its cached blocks back to jemalloc. */
#ifndef GCSHIM_BCACHE_H
#define GCSHIM_BCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sizeclass.h"

/* Classes up to SC_TABLE_MAX (4096 bytes): 8, 16..128, then four a
 * doubling up to 4096. */
#define BC_CLASSES 29
#define BC_SLOTS 64

struct bcache {
	uint8_t count[BC_CLASSES];
	void *slot[BC_CLASSES][BC_SLOTS];
};

/* Slots in use per class: fewer for bigger blocks, so that the memory a
 * thread keeps cached stays around 32 KiB a class at most. */
extern uint8_t bc_limit[BC_CLASSES];

void bcache_init(void);
void bcache_overflow(struct bcache *c, unsigned idx);
void bcache_drain(struct bcache *c);

static inline void *bcache_pop(struct bcache *c, unsigned idx)
{
	unsigned n = c->count[idx];
	void *p;

	if (__builtin_expect(n == 0, 0))
		return NULL;
	c->count[idx] = (uint8_t)--n;
	p = c->slot[idx][n];
	if (!p)
		__builtin_unreachable();   /* only blocks are pushed */
	return p;
}

static inline bool bcache_full(const struct bcache *c, unsigned idx)
{
	return c->count[idx] >= bc_limit[idx];
}

/* Only when !bcache_full(). */
static inline void bcache_put(struct bcache *c, unsigned idx, void *p)
{
	unsigned n = c->count[idx];

	c->slot[idx][n] = p;
	c->count[idx] = (uint8_t)(n + 1);
}

static inline void bcache_push(struct bcache *c, unsigned idx, void *p)
{
	if (__builtin_expect(bcache_full(c, idx), 0))
		bcache_overflow(c, idx);
	bcache_put(c, idx, p);
}

#endif
