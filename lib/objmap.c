#include "objmap.h"

#include "os.h"

struct objmap om;
struct sc_entry sc_table[SC_TABLE_MAX / 8 + 1];
size_t sc_sizes[256];

void sc_init(void)
{
	for (unsigned i = 0; i < 256; i++)
		sc_sizes[i] = i <= sc_index(SC_MAX) ? sc_size(i) : 0;
	for (size_t i = 0; i <= SC_TABLE_MAX / 8; i++) {
		size_t u = sc_usable(i ? i * 8 : 1);

		sc_table[i] = (struct sc_entry){ (uint16_t)u, (uint8_t)sc_index(u) };
	}
}

bool om_init(uintptr_t base, size_t size)
{
	size_t nstarts = size >> (OM_GRANULE_LG + 3);
	size_t npages = (size >> OM_PAGE_LG) * sizeof(uint32_t);

	om.starts = os_map(nstarts);
	om.pages = os_map(npages);
	if (!om.starts || !om.pages)
		return false;
	om.base = base;
	om.size = size;
	sc_init();
	return true;
}

/* Nearest start bit at or below granule g, looking back at most `span`
 * granules; returns false when there is none in that window. */
static bool find_start_below(uintptr_t g, uintptr_t span, uintptr_t *found)
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

static bool block_covers(uintptr_t soff, uintptr_t woff, uintptr_t *start,
			 size_t *size)
{
	size_t sz = om_size_at(soff);

	if (!sz || woff >= soff + sz)
		return false;
	*start = om.base + soff;
	*size = sz;
	return true;
}

/* The live block that contains `word`: its start, an interior address.
 * Reads only the side tables, never the heap. */
bool om_find(uintptr_t word, uintptr_t *start, size_t *size)
{
	uintptr_t woff = word - om.base, soff;
	uint32_t pv;

	if (woff >= om.size)
		return false;
	pv = atomic_load_explicit(&om.pages[woff >> OM_PAGE_LG], memory_order_relaxed);
	if (pv & OM_CONT) {
		uintptr_t first = ((woff >> OM_PAGE_LG) - (pv & ~OM_CONT)) << OM_PAGE_LG;
		uintptr_t g = (first + (1UL << OM_PAGE_LG) - 1) >> OM_GRANULE_LG;

		if (find_start_below(g, (1UL << OM_PAGE_LG) >> OM_GRANULE_LG, &soff) &&
		    block_covers(soff << OM_GRANULE_LG, woff, start, size))
			return true;
	}
	if (!find_start_below(woff >> OM_GRANULE_LG, SC_SMALL_MAX >> OM_GRANULE_LG,
			      &soff))
		return false;
	return block_covers(soff << OM_GRANULE_LG, woff, start, size);
}
