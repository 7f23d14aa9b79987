#include "bcache.h"

#include <string.h>

#include "heap.h"

#define BC_BUDGET (32 * 1024)
#define BC_MIN_SLOTS 8

uint8_t bc_limit[BC_CLASSES];

void bcache_init(void)
{
	for (unsigned i = 0; i < BC_CLASSES; i++) {
		size_t n = BC_BUDGET / sc_sizes[i];

		bc_limit[i] = (uint8_t)(n < BC_MIN_SLOTS ? BC_MIN_SLOTS :
					n > BC_SLOTS ? BC_SLOTS : n);
	}
}

/* A full class gives its older half back to jemalloc and keeps the blocks
 * freed last, whose lines are the likeliest still in the CPU cache. */
void bcache_overflow(struct bcache *c, unsigned idx)
{
	unsigned n = c->count[idx], half = n / 2;
	void **s = c->slot[idx];

	for (unsigned i = 0; i < half; i++)
		heap_free_sized(s[i], sc_sizes[idx]);
	memmove(s, s + half, (n - half) * sizeof(*s));
	c->count[idx] = (uint8_t)(n - half);
}

void bcache_drain(struct bcache *c)
{
	for (unsigned idx = 0; idx < BC_CLASSES; idx++) {
		for (unsigned i = 0; i < c->count[idx]; i++)
			heap_free_sized(c->slot[idx][i], sc_sizes[idx]);
		c->count[idx] = 0;
	}
}
