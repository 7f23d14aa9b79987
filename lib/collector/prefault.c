#include "prefault.h"

#include <stddef.h>

#include "heap.h"
#include "objmap.h"
#include "os.h"

/* The heap is looked at 256 KiB at a time: what a page of a granule
 * bitmap covers, the densest table. */
#define CHUNK_LG 18
#define CHUNK_PAGES ((size_t)1 << (CHUNK_LG - OM_PAGE_LG))
#define MAX_TABLES 4

static struct {
	struct table {
		char *at;
		unsigned lg;
		uint64_t *done;   /* per chunk: the table's pages for it are resident */
	} t[MAX_TABLES];
	unsigned n;
	uint64_t pages;
} pf;

void prefault_add(void *table, unsigned lg)
{
	struct table *t = &pf.t[pf.n];

	if (pf.n == MAX_TABLES || !table)
		return;
	t->done = os_map(((om.size >> CHUNK_LG) / 64 + 1) * sizeof(uint64_t));
	if (!t->done)
		return;
	t->at = table;
	t->lg = lg;
	pf.n++;
}

uint64_t prefault_pages(void)
{
	return pf.pages;
}

bool prefault_possible(void)
{
	return os_can_populate();
}

/* Blocks start on some page of chunk c: a collection writes the tables'
 * entries for it. */
static bool chunk_has_starts(size_t c)
{
	for (size_t pg = c << (CHUNK_LG - OM_PAGE_LG); pg < (c + 1) * CHUNK_PAGES; pg++)
		if (om_page_has_starts(pg))
			return true;
	return false;
}

static bool chunk_done(const struct table *t, size_t c)
{
	return t->done[c / 64] >> (c % 64) & 1;
}

/* Chunks [from, to) of table t; the done bits are set only when the
 * kernel did it (not at all where it cannot, or out of memory). */
static void populate(struct table *t, size_t from, size_t to)
{
	size_t lo = (from << CHUNK_LG) >> t->lg, hi = (to << CHUNK_LG) >> t->lg;
	size_t size = om.size >> t->lg;

	lo &= ~(OS_PAGE - 1);
	hi = (hi + OS_PAGE - 1) & ~(OS_PAGE - 1);
	if (hi > size)
		hi = size;
	if (!os_populate(t->at + lo, hi - lo))
		return;
	pf.pages += (hi - lo) / OS_PAGE;
	for (size_t c = from; c < to; c++)
		t->done[c / 64] |= 1ULL << (c % 64);
}

/* Each table's chunks that blocks start on and that it has not made
 * resident yet, a run of consecutive ones in one call; whether blocks
 * start on a chunk is looked up once for all the tables. */
void prefault_tables(void)
{
	size_t chunks = ((heap_top() - om.base) >> CHUNK_LG) + 1;
	size_t run[MAX_TABLES] = { 0 };   /* first chunk of the table's run + 1 */

	for (size_t c = 0; c <= chunks; c++) {
		int starts = -1;   /* not looked up yet */

		for (unsigned i = 0; i < pf.n; i++) {
			bool want = c < chunks && !chunk_done(&pf.t[i], c);

			if (want && starts < 0)
				starts = chunk_has_starts(c);
			want = want && starts;
			if (want && !run[i])
				run[i] = c + 1;
			else if (!want && run[i]) {
				populate(&pf.t[i], run[i] - 1, c);
				run[i] = 0;
			}
		}
	}
}
