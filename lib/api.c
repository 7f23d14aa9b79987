/* The public C API of gcshim.h, in-process. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "collect.h"
#include "account.h"
#include "gcshim.h"
#include "options.h"
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
	if (gc_set_threshold_bytes(bytes ? bytes : -1) < 0)   /* 0 is off, as for the limit */
		return -2;
	return old;
}

API long gcshim_growth(long percent)
{
	long old = (long)atomic_load(&gc.growth);

	if (percent == GCSHIM_GROWTH_QUERY)
		return old;
	if (percent == GCSHIM_GROWTH_ON)
		percent = GROWTH_DEFAULT;
	if (gc_set_growth(percent) < 0)
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

/* ---- inspection ------------------------------------------------------------ */

#include "garbage.h"
#include "inspect.h"
#include "objmap.h"
#include "watch.h"

API int gcshim_is_tracked(const void *p, struct gcshim_block *out)
{
	return insp_is_tracked((uintptr_t)p, out);
}

struct fill {
	void *out;
	size_t cap, n;
};

static void fill_block(const struct gcshim_block *b, void *arg)
{
	struct fill *f = arg;

	if (f->n < f->cap)
		((struct gcshim_block *)f->out)[f->n++] = *b;
}

static void fill_referrer(const struct gcshim_referrer *r, void *arg)
{
	struct fill *f = arg;

	if (f->n < f->cap)
		((struct gcshim_referrer *)f->out)[f->n++] = *r;
}

static bool copy_ptrs(void *const *ptrs, size_t n, uintptr_t *to)
{
	if ((!ptrs && n) || n > INSP_MAX_TARGETS) {
		errno = EINVAL;
		return false;
	}
	for (size_t i = 0; i < n; i++)
		to[i] = (uintptr_t)ptrs[i];
	return true;
}

/* The caller's frames are scanned from here up: this function's own
 * frame and what it calls are not the program's data.  The copy of the
 * addresses lives in a frame below, and the results in the shim's pages. */
API long gcshim_get_referents(void *const *ptrs, size_t n, struct gcshim_block *out, size_t cap)
{
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0), t[INSP_MAX_TARGETS];
	struct fill f = { out, out ? cap : 0, 0 };

	if (!copy_ptrs(ptrs, n, t))
		return -1;
	return insp_referents(t, n, false, sp, fill_block, &f);
}

API long gcshim_get_referrers(void *const *ptrs, size_t n, struct gcshim_referrer *out,
			      size_t cap)
{
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0), t[INSP_MAX_TARGETS];
	struct fill f = { out, out ? cap : 0, 0 };
	long found;

	if (!copy_ptrs(ptrs, n, t))
		return -1;
	found = insp_referrers(t, n, false, sp, fill_referrer, &f);
	memset(t, 0, sizeof(t));
	return found;
}

API long gcshim_get_objects(int generation, size_t min_size, gcshim_block_fn fn, void *arg)
{
	struct gcshim_block b[64];
	uintptr_t cursor = 0;
	long calls = 0;
	size_t n;

	if (!fn || generation < -1 || generation > 2) {
		errno = EINVAL;
		return -1;
	}
	while ((n = insp_objects(&cursor, generation, min_size, b, 64)))
		for (size_t i = 0; i < n; i++) {
			calls++;
			if (fn(&b[i], arg))
				return calls;
		}
	return calls;
}

API long gcshim_freeze(void)
{
	return insp_freeze();
}

API long gcshim_unfreeze(void)
{
	return insp_unfreeze();
}

API long gcshim_get_freeze_count(void)
{
	return insp_freeze_count();
}

/* void * and uintptr_t share their representation on every target. */
API long gcshim_garbage(void **out, size_t cap)
{
	if (!out && cap) {
		errno = EINVAL;
		return -1;
	}
	garbage_list((uintptr_t *)out, cap);
	return (long)garbage_count();
}

API int gcshim_callback_add(gcshim_callback_fn fn, void *arg)
{
	return watch_callback_add(fn, arg);
}

API int gcshim_callback_remove(gcshim_callback_fn fn, void *arg)
{
	return watch_callback_remove(fn, arg);
}

/* Allocation sites and leak reports. */
API size_t gcshim_site_frames(uint32_t site, void **frames, size_t cap)
{
	const uintptr_t *f;
	size_t n = site ? sites_frames(site, &f) : 0;

	for (size_t i = 0; i < n && i < cap; i++)
		frames[i] = (void *)f[i];
	return n;
}

API int gcshim_set_backtrace(int depth)
{
	int old;

	if (depth < 0)
		return sites_depth();
	if (depth > SITES_MAX_DEPTH) {
		errno = EINVAL;
		return -1;
	}
	old = sites_set_depth(depth);
	if (old < 0)
		errno = ENOSYS;
	return old;
}

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
