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
		size_t u = sc_usable(sc_request(i * 8));

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

