#include "frozen.h"

#include "objmap.h"
#include "os.h"

_Atomic uint64_t *frozen_bits;
_Atomic bool frozen_any;

bool frozen_init(void)
{
	frozen_bits = os_map(om.size >> (OM_GRANULE_LG + 3));
	return frozen_bits != NULL;
}

bool frozen_at(uintptr_t start)
{
	uintptr_t g = (start - om.base) >> OM_GRANULE_LG;

	return frozen_word(g >> 6) >> (g & 63) & 1;
}

void frozen_forget(void *p)
{
	uintptr_t g;

	if (!om_in_heap(p) || !frozen_bits)
		return;
	g = ((uintptr_t)p - om.base) >> OM_GRANULE_LG;
	atomic_fetch_and_explicit(&frozen_bits[g >> 6], ~(1ULL << (g & 63)),
				  memory_order_relaxed);
}
