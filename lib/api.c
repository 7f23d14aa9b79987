/* The public C API of gcshim.h, in-process. */
#include <errno.h>
#include <string.h>

#include "collect.h"
#include "gc.h"
#include "gcshim.h"
#include "sites.h"
#include "stats.h"

#define API __attribute__((visibility("default")))

API void gcshim_enable(void)
{
	atomic_store(&gc.enabled, 1);
}

API void gcshim_disable(void)
{
	atomic_store(&gc.enabled, 0);
}

API int gcshim_isenabled(void)
{
	return atomic_load(&gc.enabled);
}

API long gcshim_collect(int generation)
{
	return gc_collect(generation, GC_MANUAL, false, NULL);
}

API int64_t gcshim_mem_alloc(void)
{
	return gc_mem_alloc();
}

API int64_t gcshim_mem_free(void)
{
	int64_t limit = atomic_load(&gc.limit), left;

	if (!limit)
		return -1;
	left = limit - gc_mem_alloc();
	return left > 0 ? left : 0;
}

API long gcshim_threshold(long bytes)
{
	long old = (long)atomic_load(&gc.threshold);

	if (bytes == GCSHIM_THRESHOLD_QUERY)
		return old;
	if (gc_set_threshold_bytes(bytes) < 0)
		return -2;
	return old;
}

API int gcshim_set_threshold(long t0, long t1, long t2)
{
	int64_t t[3] = { t0, t1, t2 };

	for (int i = 0; i < 3; i++)
		if (t[i] < 0)
			t[i] = atomic_load(&gc.gen_threshold[i]);
	return gc_set_gen_thresholds(t);
}

API void gcshim_get_threshold(long out[3])
{
	for (int i = 0; i < 3; i++)
		out[i] = (long)atomic_load(&gc.gen_threshold[i]);
}

API void gcshim_get_count(long out[3])
{
	int64_t c[3];

	gc_get_counts(c);
	for (int i = 0; i < 3; i++)
		out[i] = (long)c[i];
}

API int gcshim_set_debug(int flags)
{
	return gc_set_debug(flags);
}

API int gcshim_get_debug(void)
{
	return atomic_load(&gc.debug);
}

/* Callers built against an older, smaller struct get its prefix. */
API int gcshim_get_stats(struct gcshim_stats *st)
{
	struct gcshim_stats full;
	uint32_t size;

	if (!st || st->size < 2 * sizeof(uint32_t)) {
		errno = EINVAL;
		return -1;
	}
	size = st->size < sizeof(full) ? st->size : (uint32_t)sizeof(full);
	memset(&full, 0, sizeof(full));
	stats_read(&full);
	full.size = size;
	memcpy(st, &full, size);
	return 0;
}

/* Allocation sites and leak reports. */
API int gcshim_pin(void *ptr)
{
	if (!sites_pin(ptr, true)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

API int gcshim_unpin(void *ptr)
{
	if (!sites_pin(ptr, false)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}
