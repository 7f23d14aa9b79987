#define _GNU_SOURCE
#include "young.h"

#include "heap.h"
#include "mark.h"
#include "options.h"
#include "os.h"
#include "wtrack.h"

struct young yg;

/* Heap pages written since the last collection (since0), and since the
 * last collection of generation 1 or 2 (since1): one bit a page.  Every
 * scan adds to both. */
static struct {
	uint64_t *since0, *since1;
	bool scanned;          /* a scan has protected the heap once */
	uint64_t last_pages;   /* written pages the last scan reported */
	uintptr_t top;         /* end of the heap registered so far */
} wr;

bool young_init(void)
{
	size_t bytes = om.size >> (OM_PAGE_LG + 3);

	if (!opt_int(OPT_MINOR))
		wtrack_disable();
	wr.since0 = os_map(bytes);
	wr.since1 = os_map(bytes);
	return wr.since0 && wr.since1;
}

bool young_tracking(void)
{
	return wtrack_state() == WTRACK_ON && wr.scanned;
}

uint64_t young_last_pages(void)
{
	return wr.last_pages;
}

/* jemalloc maps the heap's extents anew (MAP_FIXED) when it commits them,
 * which drops their registration: the whole heap is registered again
 * before each stop, a walk over its few mappings.  A page registered
 * anew counts as written, as it must: it was not tracked. */
void young_prepare(void)
{
	if (wtrack_state() == WTRACK_UNTRIED || wtrack_state() == WTRACK_ON)
		wtrack_register(om.base, heap_top());
}

static void set_bits(uint64_t *bits, uintptr_t first, uintptr_t end)
{
	for (uintptr_t pg = first; pg < end; pg++)
		bits[pg >> 6] |= 1ULL << (pg & 63);
}

static void note_written(uintptr_t a, uintptr_t b, void *arg)
{
	uintptr_t first = (a - om.base) >> OM_PAGE_LG, end = (b - om.base) >> OM_PAGE_LG;

	(void)arg;
	wr.last_pages += end - first;
	set_bits(wr.since0, first, end);
	set_bits(wr.since1, first, end);
}

bool young_scan(int pagemap, int gen)
{
	bool ok, ready = wr.scanned;

	wr.last_pages = 0;
	if (wtrack_state() != WTRACK_ON)
		return false;
	ok = wtrack_scan(pagemap, om.base, heap_top(), note_written, NULL);
	wr.scanned = wr.scanned || ok;
	return ok && ready && gen < 2;
}

static size_t bitmap_words(void)
{
	return (((heap_top() - om.base) >> OM_PAGE_LG) + 63) / 64;
}

void young_begin(int gen, const uint64_t *aged)
{
	yg.flags = gen == 0 ? OM_YOUNG0 : OM_YOUNG;
	yg.aged = aged;
	yg.on = true;
}

/* The part within [lo, hi) of the block at start, if it is old. */
static void scan_if_old(uintptr_t start, size_t size, uintptr_t lo, uintptr_t hi)
{
	uintptr_t end = start + size;

	if (young_block(start - om.base))
		return;
	mark_written(start > lo ? start : lo, end < hi ? end : hi);
}

/* One written page: the old block reaching into it from below, then those
 * starting on it. */
static void scan_written_page(uintptr_t pg)
{
	uintptr_t lo = om.base + (pg << OM_PAGE_LG), hi = lo + (1UL << OM_PAGE_LG), start;
	size_t size;

	if (om_find(lo, &start, &size) && start < lo)
		scan_if_old(start, size, lo, hi);
	if (!om_page_has_starts(pg))
		return;
	for (size_t w = pg * OM_WORDS_PER_PAGE; w < (pg + 1) * OM_WORDS_PER_PAGE; w++) {
		uint64_t bits = atomic_load_explicit(&om.starts[w], memory_order_relaxed);

		for (; bits; bits &= bits - 1) {
			uintptr_t off = ((w << 6) + (uintptr_t)__builtin_ctzll(bits)) << OM_GRANULE_LG;

			if ((size = om_size_at(off)))
				scan_if_old(om.base + off, size, lo, hi);
		}
	}
}

void young_mark_written(int gen)
{
	const uint64_t *bits = gen == 0 ? wr.since0 : wr.since1;
	size_t words = bitmap_words();

	for (size_t w = 0; w < words; w++)
		for (uint64_t b = bits[w]; b; b &= b - 1)
			scan_written_page((w << 6) + (uintptr_t)__builtin_ctzll(b));
}

/* After a collection of generation 1 or 2, the blocks that were in
 * generation 0 are young for generation 1 still, and pointers to them
 * were written since the collection before: the pages of that interval,
 * since0 now, are where the next one of generation 1 starts from. */
void young_end(int gen)
{
	size_t words = bitmap_words();

	yg.on = false;
	for (size_t w = 0; w < words; w++) {
		if (gen > 0 && wr.since1[w] != wr.since0[w])
			wr.since1[w] = wr.since0[w];
		if (wr.since0[w])
			wr.since0[w] = 0;
	}
}
