/* Frozen blocks (the gc module's freeze): one bit per granule, set for
 * every block live when freeze ran.  A side table like the object map:
 * the collector's sweep reads it, inspection sets and clears it, free()
 * forgets a block's bit. */
#ifndef GCSHIM_FROZEN_H
#define GCSHIM_FROZEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern _Atomic uint64_t *frozen_bits;
extern _Atomic bool frozen_any;

bool frozen_init(void);

/* The frozen bits of one bitmap word, for the sweep. */
static inline uint64_t frozen_word(size_t w)
{
	return atomic_load_explicit(&frozen_any, memory_order_relaxed) ?
	       atomic_load_explicit(&frozen_bits[w], memory_order_relaxed) : 0;
}

bool frozen_at(uintptr_t start);
/* free() of a block while frozen bits exist (MODE_FROZEN). */
void frozen_forget(void *p);

#endif
