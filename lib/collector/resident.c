#include "resident.h"

#include <stdatomic.h>

#include "objmap.h"
#include "os.h"

#define CHUNK_LG 21
#define CHUNK_PAGES (1u << (CHUNK_LG - OM_PAGE_LG))   /* 512: one read of the page map */
#define CHUNK_WORDS (CHUNK_PAGES / 64)

/* Per chunk, the collection it was read in, times 2, plus 1 once its bits
 * are in: markers that need a chunk another is reading do not wait for
 * it, they read the page map for their block themselves. */
static struct {
	uint64_t *bits;            /* a bit per heap page */
	_Atomic uint32_t *state;   /* a word per chunk */
	uint32_t epoch;
	int pagemap;
} rs;

bool resident_init(void)
{
	rs.bits = os_map(om.size >> (OM_PAGE_LG + 3));
	rs.state = os_map((om.size >> CHUNK_LG) * sizeof(*rs.state));
	rs.pagemap = -1;
	return rs.bits && rs.state;
}

/* An epoch that wraps (after 2^31 collections) would find chunks read
 * 2^31 collections ago current: they are cleared first. */
void resident_begin(int pagemap_fd)
{
	rs.pagemap = pagemap_fd;
	if (++rs.epoch >= 1u << 31) {
		for (size_t c = 0; c < om.size >> CHUNK_LG; c++)
			atomic_store_explicit(&rs.state[c], 0, memory_order_relaxed);
		rs.epoch = 1;
	}
}

/* Whether chunk c's bits are current, reading them if nobody is. */
static bool chunk_ready(size_t c)
{
	uint32_t ready = rs.epoch * 2 + 1, reading = rs.epoch * 2;
	uint32_t s = atomic_load_explicit(&rs.state[c], memory_order_acquire);

	if (s == ready)
		return true;
	if (s == reading ||
	    !atomic_compare_exchange_strong_explicit(&rs.state[c], &s, reading,
						     memory_order_relaxed, memory_order_relaxed))
		return false;
	if (!os_written_bits(rs.pagemap, om.base + ((uintptr_t)c << CHUNK_LG), CHUNK_PAGES,
			     rs.bits + c * CHUNK_WORDS))
		return false;   /* left "reading": this collection reads per block */
	atomic_store_explicit(&rs.state[c], ready, memory_order_release);
	return true;
}

static bool page_written(uintptr_t pg)
{
	return rs.bits[pg / 64] >> (pg % 64) & 1;
}

/* The part of [lo, hi) in one chunk, whose bits are in. */
static void runs_in_chunk(uintptr_t lo, uintptr_t hi,
			  void (*fn)(uintptr_t a, uintptr_t b, void *arg), void *arg)
{
	uintptr_t run = 0;
	bool in_run = false;

	for (uintptr_t a = lo; a < hi;) {
		uintptr_t next = ((a >> OM_PAGE_LG) + 1) << OM_PAGE_LG;
		bool w = page_written((a - om.base) >> OM_PAGE_LG);

		if (next > hi)
			next = hi;
		if (w && !in_run)
			run = a;
		if (!w && in_run)
			fn(run, a, arg);
		in_run = w;
		a = next;
	}
	if (in_run)
		fn(run, hi, arg);
}

void resident_runs(uintptr_t lo, uintptr_t hi, void (*fn)(uintptr_t a, uintptr_t b, void *arg),
		   void *arg)
{
	while (lo < hi) {
		size_t c = (lo - om.base) >> CHUNK_LG;
		uintptr_t end = om.base + ((uintptr_t)(c + 1) << CHUNK_LG);

		if (end > hi)
			end = hi;
		if (chunk_ready(c))
			runs_in_chunk(lo, end, fn, arg);
		else
			os_written_runs(rs.pagemap, lo, end, false, fn, arg);
		lo = end;
	}
}
