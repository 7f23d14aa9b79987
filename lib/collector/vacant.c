#include "vacant.h"

#include <stdatomic.h>

#include "frozen.h"
#include "heap.h"
#include "objmap.h"
#include "os.h"
#include "wtrack.h"

/* Runs shorter than this stay tracked, and only so many runs are kept:
 * each costs every scan of the heap one more call. */
#define MIN_RUN 8
#define MAX_RUNS 64

static struct {
	uint64_t *set;    /* the current vacant pages */
	uint64_t *next;   /* being computed: emptied by the sweep, then the new set */
	bool active;      /* this collection computes a set */
	uint64_t count;   /* pages in the set */
} vs;

bool vacant_init(void)
{
	size_t bytes = om.size >> (OM_PAGE_LG + 3);

	vs.set = os_map(bytes);
	vs.next = os_map(bytes);
	return vs.set && vs.next;
}

static uintptr_t heap_pages(void)
{
	return (heap_top() - om.base) >> OM_PAGE_LG;
}

static size_t heap_words(void)
{
	return (heap_pages() + 63) / 64;
}

/* Markers sweep pages a word of this bitmap apart at most: atomic. */
void vacant_page_emptied(uintptr_t pg)
{
	__atomic_fetch_or(&vs.next[pg >> 6], 1ULL << (pg & 63), __ATOMIC_RELAXED);
}

/* No block starts on the page, none reaches into it from below (a large
 * one's continuation, or a small one straddling the boundary), and no
 * frozen bit is left there. */
static bool page_vacant(uintptr_t pg)
{
	uintptr_t lo = om.base + (pg << OM_PAGE_LG), start;
	size_t size;

	if ((atomic_load_explicit(&om.pages[pg], memory_order_relaxed) & OM_CONT) ||
	    !om_page_unstarted(pg))
		return false;
	for (size_t w = pg * OM_WORDS_PER_PAGE; w < (pg + 1) * OM_WORDS_PER_PAGE; w++)
		if (frozen_word(w))
			return false;
	return !om_find(lo, &start, &size);
}

void vacant_begin(bool tracking)
{
	vs.active = tracking;
	if (!tracking)
		return;   /* nothing was noted; vacant_end forgets the set */
	for (size_t w = 0, words = heap_words(); w < words; w++) {
		uint64_t cand = vs.next[w] | vs.set[w], keep = 0;

		for (; cand; cand &= cand - 1) {
			uintptr_t pg = (w << 6) + (uintptr_t)__builtin_ctzll(cand);

			if (page_vacant(pg))
				keep |= 1ULL << (pg & 63);
		}
		os_store_if_changed(&vs.next[w], keep);
	}
}

static void keep_page(uintptr_t pg)
{
	vs.next[pg >> 6] &= ~(1ULL << (pg & 63));
}

void vacant_keep(const void *p)
{
	uintptr_t off = (uintptr_t)p - om.base;
	size_t size;

	if (!vs.active || off >= om.size)
		return;
	size = om_size_at(off);
	keep_page(off >> OM_PAGE_LG);
	keep_page((off + (size ? size : 1) - 1) >> OM_PAGE_LG);
}

/* The first page at or after pg, below end, whose bit is `want`. */
static uintptr_t find_bit(const uint64_t *bits, uintptr_t pg, uintptr_t end, bool want)
{
	while (pg < end) {
		uint64_t w = bits[pg >> 6];

		w = (want ? w : ~w) & (~0ULL << (pg & 63));
		if (w) {
			uintptr_t at = (pg & ~(uintptr_t)63) + (uintptr_t)__builtin_ctzll(w);

			return at < end ? at : end;
		}
		pg = (pg & ~(uintptr_t)63) + 64;
	}
	return end;
}

static void clear_bits(uint64_t *bits, uintptr_t lo, uintptr_t hi)
{
	for (uintptr_t pg = lo; pg < hi; pg++)
		bits[pg >> 6] &= ~(1ULL << (pg & 63));
}

/* Short runs, and runs past the last one kept, leave the new set. */
static void keep_long_runs(uintptr_t pages)
{
	uintptr_t pg = 0, runs = 0;

	while ((pg = find_bit(vs.next, pg, pages, true)) < pages) {
		uintptr_t end = find_bit(vs.next, pg, pages, false);

		if (end - pg < MIN_RUN || runs == MAX_RUNS)
			clear_bits(vs.next, pg, end);
		else
			runs++;
		pg = end;
	}
}

/* A page entering the set has no block, but its age bits may still hold
 * those of blocks freed by the program: a block registered there later
 * must read as young. */
static void clear_ages(uintptr_t pg, uint64_t *age1, uint64_t *age2)
{
	for (size_t w = pg * OM_WORDS_PER_PAGE; w < (pg + 1) * OM_WORDS_PER_PAGE; w++) {
		os_store_if_changed(&age1[w], 0);
		os_store_if_changed(&age2[w], 0);
	}
}

void vacant_end(uint64_t *age1, uint64_t *age2)
{
	size_t words = heap_words();

	if (!vs.active) {
		vacant_forget();
		return;
	}
	keep_long_runs(heap_pages());
	vs.count = 0;
	for (size_t w = 0; w < words; w++) {
		uint64_t now = vs.next[w];

		for (uint64_t in = now & ~vs.set[w]; in; in &= in - 1)
			clear_ages((w << 6) + (uintptr_t)__builtin_ctzll(in), age1, age2);
		os_store_if_changed(&vs.set[w], now);
		os_store_if_changed(&vs.next[w], 0);
		vs.count += (uint64_t)__builtin_popcountll(now);
	}
}

bool vacant_scan_heap(int pagemap, bool protect, void (*fn)(uintptr_t a, uintptr_t b, void *arg))
{
	uintptr_t pages = heap_pages(), pg = 0;

	while (pg < pages) {
		uintptr_t end = find_bit(vs.set, pg, pages, true);

		if (end > pg && !wtrack_scan(pagemap, om.base + (pg << OM_PAGE_LG),
					     om.base + (end << OM_PAGE_LG), protect, fn, NULL))
			return false;
		pg = find_bit(vs.set, end, pages, false);
	}
	return true;
}

void vacant_forget(void)
{
	size_t words = heap_words();

	if (!vs.set || !vs.next)   /* the collector could not start */
		return;
	for (size_t w = 0; w < words; w++) {
		os_store_if_changed(&vs.set[w], 0);
		os_store_if_changed(&vs.next[w], 0);
	}
	vs.count = 0;
}

uint64_t vacant_count(void)
{
	return vs.count;
}
