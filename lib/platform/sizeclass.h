/* jemalloc's size classes (LG_QUANTUM 4, four classes per doubling),
 * computed without asking jemalloc so the malloc fast path stays short.
 * tests/test_sizeclass.c checks them against nallocx(). */
#ifndef GCSHIM_SIZECLASS_H
#define GCSHIM_SIZECLASS_H

#include <stddef.h>
#include <stdint.h>

#define SC_SMALL_MAX 14336UL   /* largest class served from slabs */
#define SC_MAX ((size_t)1 << 62)

static inline unsigned sc_lg_floor(size_t x)
{
	return 63u - (unsigned)__builtin_clzl(x);
}

/* Every class jemalloc serves from slabs: the thread caches keep them
 * all (bcache.h). */
#define SC_TABLE_MAX SC_SMALL_MAX

/* Classes of requests up to SC_TABLE_MAX by (n + 7) / 8: one load on the
 * fast path instead of the arithmetic below, sc_request() included.
 * Filled by sc_init(). */
struct sc_entry {
	uint16_t size;
	uint8_t index;
};

extern struct sc_entry sc_table[SC_TABLE_MAX / 8 + 1];
extern size_t sc_sizes[256];   /* sc_size() by index */
void sc_init(void);

/* Usable size of a block serving a request of n bytes (n <= SC_MAX). */
static inline size_t sc_usable(size_t n)
{
	size_t delta;

	if (n <= 8)
		return 8;
	if (n <= 128)
		return (n + 15) & ~(size_t)15;
	delta = (size_t)1 << (sc_lg_floor(n - 1) - 2);
	return (n + delta - 1) & ~(delta - 1);
}

/* The shim asks jemalloc for at least 9 bytes, so its smallest block is
 * 16 bytes, not 8.  A C++ array of a type with a destructor starts with an
 * 8-byte count: new T[0] is a block of 8 bytes whose only pointer, the
 * array, points just past its end, where in a slab the next block starts.
 * In a 16-byte block that pointer is inside, and keeps it alive. */
#define SC_MIN_REQUEST 9

static inline size_t sc_request(size_t n)
{
	return n < SC_MIN_REQUEST ? SC_MIN_REQUEST : n;
}

/* Class index of a usable size: 0 for 8, 1..8 up to 128, then 4 a group. */
static inline unsigned sc_index(size_t u)
{
	unsigned lg;

	if (u <= 128)
		return (unsigned)(u >> 4);
	lg = sc_lg_floor(u - 1);
	return 9 + (lg - 7) * 4 + (unsigned)((u - 1 - ((size_t)1 << lg)) >> (lg - 2));
}

static inline size_t sc_size(unsigned idx)
{
	unsigned lg;

	if (idx == 0)
		return 8;
	if (idx <= 8)
		return (size_t)idx << 4;
	lg = 7 + (idx - 9) / 4;
	return ((size_t)1 << lg) + ((size_t)((idx - 9) % 4 + 1) << (lg - 2));
}

static inline struct sc_entry sc_lookup(size_t n)
{
	return sc_table[(n + 7) >> 3];
}

#endif
