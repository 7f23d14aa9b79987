/* The object map: which addresses of the heap start a live block, and how
 * big each block is, kept outside the blocks themselves.
 *
 *  starts: one bit per 8-byte granule of the heap range, set while a block
 *          starting there is live.  Also what free() validates against.
 *  pages:  one word per 4 KiB page.  A page where blocks start holds their
 *          size class + 1 (a page belongs to one jemalloc slab or one large
 *          extent, so one class per page), and the young flags: set when a
 *          block is registered there, cleared by the collections that
 *          promote its blocks (young.h).  The further pages of a large
 *          block hold OM_CONT | distance to its first page.
 *
 * Updates use relaxed atomics and happen in an order that keeps every
 * block findable by a thread that was stopped anywhere in between. */
#ifndef GCSHIM_OBJMAP_H
#define GCSHIM_OBJMAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sizeclass.h"

#define OM_GRANULE_LG 3
#define OM_PAGE_LG 12
#define OM_CONT 0x80000000u
#define OM_CLASS 0xffffu
#define OM_YOUNG0 0x10000u   /* blocks registered since the last collection */
#define OM_YOUNG1 0x20000u   /* ... since the last one of generation 1 or 2 */
#define OM_YOUNG (OM_YOUNG0 | OM_YOUNG1)

struct objmap {
	uintptr_t base;
	size_t size;
	_Atomic uint64_t *starts;
	_Atomic uint32_t *pages;
};

extern struct objmap om;

bool om_init(uintptr_t base, size_t size);

static inline bool om_in_heap(const void *p)
{
	return (uintptr_t)p - om.base < om.size;
}

static inline void om_set_pages_idx(uintptr_t off, size_t usable, unsigned idx)
{
	uintptr_t pg = off >> OM_PAGE_LG;
	uint32_t v = (idx + 1) | OM_YOUNG;

	if (atomic_load_explicit(&om.pages[pg], memory_order_relaxed) != v)
		atomic_store_explicit(&om.pages[pg], v, memory_order_relaxed);
	if (usable > SC_SMALL_MAX) {
		uintptr_t last = (off + usable - 1) >> OM_PAGE_LG;

		for (uintptr_t q = pg + 1; q <= last; q++)
			atomic_store_explicit(&om.pages[q], OM_CONT | (uint32_t)(q - pg),
					      memory_order_relaxed);
	}
}

static inline void om_set_pages(uintptr_t off, size_t usable)
{
	om_set_pages_idx(off, usable, sc_index(usable));
}

static inline void om_clear_cont(uintptr_t off, size_t from, size_t usable)
{
	uintptr_t first = (off + from + (1UL << OM_PAGE_LG) - 1) >> OM_PAGE_LG;
	uintptr_t last = (off + usable - 1) >> OM_PAGE_LG;

	if (first <= off >> OM_PAGE_LG)
		first = (off >> OM_PAGE_LG) + 1;
	for (uintptr_t q = first; q <= last; q++)
		atomic_store_explicit(&om.pages[q], 0, memory_order_relaxed);
}

/* Sets the start bit of the block at heap offset off. */
static inline void om_set_start(uintptr_t off)
{
	uintptr_t g = off >> OM_GRANULE_LG;

	atomic_fetch_or_explicit(&om.starts[g >> 6], 1ULL << (g & 63),
				 memory_order_release);
}

/* After the start bit: a collection that stopped the thread between the
 * page's store and the start bit cleared the young flags and promoted
 * nothing, since the block was not there yet.  It is young: flag it again. */
static inline void om_keep_young(uintptr_t pg, uint32_t v)
{
	if ((atomic_load_explicit(&om.pages[pg], memory_order_relaxed) & OM_YOUNG) != OM_YOUNG)
		atomic_store_explicit(&om.pages[pg], v, memory_order_relaxed);
}

/* The start bit of a block that no other can start near: one of a large
 * extent (its first page is its own, wherever jemalloc put the block on
 * it), or one that covers the whole span of its bitmap word (512 bytes
 * from a start aligned to 512, as do all slab blocks of 4 KiB and more).
 * Its word is stored rather than ORed: the word of a big block is seldom
 * in the CPU's cache, and a locked instruction waits for the line where a
 * store does not. */
#define OM_WORD_SPAN ((uintptr_t)64 << OM_GRANULE_LG)

static inline void om_set_start_of(uintptr_t off, size_t usable)
{
	uintptr_t g = off >> OM_GRANULE_LG;

	if (usable > SC_SMALL_MAX || (usable >= OM_WORD_SPAN && !(off & (OM_WORD_SPAN - 1))))
		atomic_store_explicit(&om.starts[g >> 6], 1ULL << (g & 63), memory_order_release);
	else
		om_set_start(off);
}

/* Pages first, then the start bit: a block is never visible with the size
 * of whatever used its page before. */
static inline void om_insert_idx(void *p, size_t usable, unsigned idx)
{
	uintptr_t off = (uintptr_t)p - om.base;

	om_set_pages_idx(off, usable, idx);
	om_set_start_of(off, usable);
	om_keep_young(off >> OM_PAGE_LG, (idx + 1) | OM_YOUNG);
}

static inline size_t om_size_at(uintptr_t off)
{
	uint32_t v = atomic_load_explicit(&om.pages[off >> OM_PAGE_LG],
					  memory_order_relaxed);

	return (v == 0 || (v & OM_CONT)) ? 0 : sc_sizes[((v & OM_CLASS) - 1) & 255];
}

static inline bool om_is_start(uintptr_t off)
{
	uintptr_t g = off >> OM_GRANULE_LG;

	return (off & ((1UL << OM_GRANULE_LG) - 1)) == 0 &&
	       (atomic_load_explicit(&om.starts[g >> 6], memory_order_acquire) >>
		(g & 63)) & 1;
}

/* Registers n blocks of slab class idx with one atomic OR per bitmap word
 * that consecutive ones share: blocks that jemalloc hands out one after
 * the other mostly come from one slab in address order, and a locked
 * instruction per block is what registration costs most.  A page is done
 * when the blocks move to another page (a bitmap word never spans two):
 * its word is ORed in, then its young flags are made sure of, as in
 * om_insert_idx. */
static inline void om_insert_small_batch(void *const *p, unsigned n, unsigned idx)
{
	uintptr_t word = 0, pg = UINTPTR_MAX;
	uint64_t mask = 0;
	uint32_t v = (idx + 1) | OM_YOUNG;

	for (unsigned i = 0; i < n; i++) {
		uintptr_t off = (uintptr_t)p[i] - om.base, g = off >> OM_GRANULE_LG;

		if (mask && g >> 6 != word) {
			atomic_fetch_or_explicit(&om.starts[word], mask, memory_order_release);
			mask = 0;
		}
		if (off >> OM_PAGE_LG != pg) {   /* neighbours mostly share a page */
			if (pg != UINTPTR_MAX)
				om_keep_young(pg, v);
			pg = off >> OM_PAGE_LG;
			if (atomic_load_explicit(&om.pages[pg], memory_order_relaxed) != v)
				atomic_store_explicit(&om.pages[pg], v, memory_order_relaxed);
		}
		word = g >> 6;
		mask |= 1ULL << (g & 63);
	}
	if (mask)
		atomic_fetch_or_explicit(&om.starts[word], mask, memory_order_release);
	if (pg != UINTPTR_MAX)
		om_keep_young(pg, v);
}

/* Unregisters n blocks of slab classes (no continuation pages), one
 * atomic AND per bitmap word that consecutive ones share, and copies to
 * out those that were registered (as om_remove() says of each); returns
 * how many. */
static inline unsigned om_remove_small_batch(void *const *p, unsigned n, void **out)
{
	unsigned nout = 0;

	for (unsigned i = 0; i < n;) {
		uintptr_t word = ((uintptr_t)p[i] - om.base) >> (OM_GRANULE_LG + 6);
		uint64_t mask = 0, was;
		unsigned end = i;

		for (; end < n; end++) {
			uintptr_t off = (uintptr_t)p[end] - om.base;

			if (off >> (OM_GRANULE_LG + 6) != word || (off & ((1UL << OM_GRANULE_LG) - 1)))
				break;
			mask |= 1ULL << ((off >> OM_GRANULE_LG) & 63);
		}
		if (end == i) {   /* not a granule start: never registered */
			i++;
			continue;
		}
		was = atomic_fetch_and_explicit(&om.starts[word], ~mask, memory_order_acq_rel);
		for (; i < end; i++) {
			uint64_t bit = 1ULL << ((((uintptr_t)p[i] - om.base) >> OM_GRANULE_LG) & 63);

			if (was & bit)
				out[nout++] = p[i];
			was &= ~bit;   /* a block named twice is given back once */
		}
	}
	return nout;
}

static inline void om_insert(void *p, size_t usable)
{
	om_insert_idx(p, usable, sc_index(usable));
}

/* Usable size of the live block starting at p, 0 if none does. */
static inline size_t om_usable(const void *p)
{
	uintptr_t off = (uintptr_t)p - om.base;

	return om_is_start(off) ? om_size_at(off) : 0;
}

/* Clears the start bit of the block at heap offset off; false when no
 * live block started there (a double or invalid free).  The bit is cleared
 * atomically, so of two racing frees exactly one wins. */
static inline bool om_clear_start(uintptr_t off)
{
	uintptr_t g = off >> OM_GRANULE_LG;
	uint64_t bit = 1ULL << (g & 63);

	if (off & ((1UL << OM_GRANULE_LG) - 1))
		return false;
	return atomic_fetch_and_explicit(&om.starts[g >> 6], ~bit,
					 memory_order_acq_rel) & bit;
}

/* Class index + 1 of the blocks starting in the page of off. */
static inline unsigned om_class_at(uintptr_t off)
{
	return atomic_load_explicit(&om.pages[off >> OM_PAGE_LG], memory_order_relaxed) & OM_CLASS;
}

/* Whether blocks may start on heap page pg: not a page no block ever
 * started on, nor a further page of a large block.  Lets a walk over the
 * start bits skip what it would otherwise have to read, and so bring in
 * (where the kernel backs reads of untouched memory with fresh pages). */
static inline bool om_page_has_starts(uintptr_t pg)
{
	uint32_t v = atomic_load_explicit(&om.pages[pg], memory_order_relaxed);

	return v != 0 && !(v & OM_CONT);
}

static inline uint32_t om_page_flags(uintptr_t pg)
{
	return atomic_load_explicit(&om.pages[pg], memory_order_relaxed) & OM_YOUNG;
}

/* With the world stopped: a thread stopped halfway through registering
 * a block puts the flag back after (om_keep_young). */
static inline void om_page_clear_flags(uintptr_t pg, uint32_t flags)
{
	uint32_t v = atomic_load_explicit(&om.pages[pg], memory_order_relaxed);

	if (v & flags)
		atomic_store_explicit(&om.pages[pg], v & ~flags, memory_order_relaxed);
}

static inline void om_page_set_flags(uintptr_t pg, uint32_t flags)
{
	uint32_t v = atomic_load_explicit(&om.pages[pg], memory_order_relaxed);

	if ((v & flags) != flags)
		atomic_store_explicit(&om.pages[pg], v | flags, memory_order_relaxed);
}

#define OM_WORDS_PER_PAGE (1u << (OM_PAGE_LG - OM_GRANULE_LG - 6))

/* No start bit is set on heap page pg. */
static inline bool om_page_unstarted(uintptr_t pg)
{
	for (size_t w = pg * OM_WORDS_PER_PAGE; w < (pg + 1) * OM_WORDS_PER_PAGE; w++)
		if (atomic_load_explicit(&om.starts[w], memory_order_relaxed))
			return false;
	return true;
}

/* Every start-bit word w of pages [pg, end) that blocks may start on. */
#define OM_EACH_WORD(w, pg, end)                                                \
	for (size_t pg_ = (pg); pg_ < (end); pg_++)                               \
		if (om_page_has_starts(pg_))                                      \
			for (size_t w = pg_ * OM_WORDS_PER_PAGE;                  \
			     w < (pg_ + 1) * OM_WORDS_PER_PAGE; w++)

/* Threads that share a walk over the heap's pages take them `batch` at a
 * time from *next: false when none are left, else [*pg, *end) is the
 * caller's alone. */
static inline bool om_claim_pages(_Atomic size_t *next, size_t pages, size_t batch,
				  size_t *pg, size_t *end)
{
	*pg = atomic_fetch_add_explicit(next, batch, memory_order_relaxed);
	*end = *pg + batch < pages ? *pg + batch : pages;
	return *pg < pages;
}

/* Unregisters the live block at p and returns its usable size; 0 when no
 * live block starts at p.  A large block's further pages are cleared. */
static inline size_t om_remove(void *p)
{
	uintptr_t off = (uintptr_t)p - om.base;
	size_t usable;

	if (!om_clear_start(off))
		return 0;
	usable = sc_sizes[om_class_at(off) - 1];
	if (usable > SC_SMALL_MAX)
		om_clear_cont(off, 0, usable);
	return usable;
}

/* A live block changed size in place (large realloc). */
static inline void om_resize(void *p, size_t old_usable, size_t new_usable)
{
	uintptr_t off = (uintptr_t)p - om.base;

	if (new_usable < old_usable)
		om_clear_cont(off, new_usable, old_usable);
	om_set_pages(off, new_usable);
}

/* Nearest start bit at or below granule g, looking back at most `span`
 * granules; false when there is none in that window. */
static inline bool om_start_below(uintptr_t g, uintptr_t span, uintptr_t *found)
{
	uintptr_t low = g > span ? g - span : 0;
	uintptr_t w = g >> 6;
	uint64_t bits = atomic_load_explicit(&om.starts[w], memory_order_acquire) &
			(~0ULL >> (63 - (g & 63)));

	for (;;) {
		if (bits) {
			uintptr_t s = (w << 6) + 63 - (uintptr_t)__builtin_clzll(bits);

			if (s < low)
				return false;
			*found = s;
			return true;
		}
		if (w == 0 || (w << 6) <= low)
			return false;
		w--;
		bits = atomic_load_explicit(&om.starts[w], memory_order_acquire);
	}
}

/* The live block starting nearest at or below heap offset woff, when it
 * could reach woff: its offset and size.  Reads only the side tables. */
static inline bool om_nearest(uintptr_t woff, uintptr_t *soff, size_t *size)
{
	uint32_t pv = atomic_load_explicit(&om.pages[woff >> OM_PAGE_LG], memory_order_relaxed);
	uintptr_t g;

	if (pv & OM_CONT) {
		uintptr_t first = ((woff >> OM_PAGE_LG) - (pv & ~OM_CONT)) << OM_PAGE_LG;

		if (om_start_below((first + (1UL << OM_PAGE_LG) - 1) >> OM_GRANULE_LG,
				   (1UL << OM_PAGE_LG) >> OM_GRANULE_LG, &g)) {
			*soff = g << OM_GRANULE_LG;
			*size = om_size_at(*soff);
			if (*size && woff <= *soff + *size)
				return true;
		}
	}
	if (!om_start_below(woff >> OM_GRANULE_LG, SC_SMALL_MAX >> OM_GRANULE_LG, &g))
		return false;
	*soff = g << OM_GRANULE_LG;
	*size = om_size_at(*soff);
	return *size != 0;
}

/* The live block that contains `word`: its start, an interior address. */
static inline bool om_find(uintptr_t word, uintptr_t *start, size_t *size)
{
	uintptr_t woff = word - om.base, soff;

	if (woff >= om.size || !om_nearest(woff, &soff, size) || woff >= soff + *size)
		return false;
	*start = om.base + soff;
	return true;
}

#endif
