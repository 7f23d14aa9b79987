#define _GNU_SOURCE
#include "garbage.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mark.h"
#include "objmap.h"
#include "os.h"
#include "release.h"
#include "spin.h"

/* Fewer under an address-space limit: a block past the end is not listed,
 * and the next collection finds it again. */
#define MAX_ENTRIES (1UL << 26)
#define MIN_ENTRIES (1UL << 16)

struct entry {
	uintptr_t block;     /* 0 once freed */
	uint32_t collection;
};

/* Appended by the collector, searched by free() in verify mode: a
 * spinlock, taken only outside stopped-world phases. */
static struct entry *list;
static size_t len, live, cap;
static uint64_t *bits;   /* one per granule: "in garbage" */
static atomic_flag lock = ATOMIC_FLAG_INIT;

bool garbage_init(void)
{
	size_t bytes = MAX_ENTRIES * sizeof(*list);

	list = os_map_some(&bytes, MIN_ENTRIES * sizeof(*list));
	cap = bytes / sizeof(*list);
	bits = os_map(om.size >> (OM_GRANULE_LG + 3));
	return list && bits;
}

static void take_lock(void)
{
	spin_lock(&lock);
}

static void drop_lock(void)
{
	spin_unlock(&lock);
}

/* Held across fork, so that the child never inherits it taken. */
void garbage_lock(void)
{
	take_lock();
}

void garbage_unlock(void)
{
	drop_lock();
}

static uintptr_t granule(uintptr_t p)
{
	return (p - om.base) >> OM_GRANULE_LG;
}

void garbage_add(uintptr_t block, uint32_t collection)
{
	uintptr_t g = granule(block);

	take_lock();
	if (len < cap && !((bits[g >> 6] >> (g & 63)) & 1)) {
		list[len++] = (struct entry){ block, collection };
		live++;
		bits[g >> 6] |= 1ULL << (g & 63);
	}
	drop_lock();
}

/* Called while the world is stopped: no lock, the list only grows under
 * the collector, which is this thread. */
void garbage_scan_root(void)
{
	for (size_t i = 0; i < len; i++)
		if (list[i].block)
			mark_range((uintptr_t)&list[i].block, (uintptr_t)(&list[i].block + 1),
				   false, false);
}

size_t garbage_count(void)
{
	return live;
}

size_t garbage_list(uintptr_t *out, size_t cap)
{
	size_t n = 0;

	take_lock();
	for (size_t i = 0; i < len && n < cap; i++)
		if (list[i].block)
			out[n++] = list[i].block;
	drop_lock();
	return n;
}

/* Removes p from the list if it is there; the caller frees it. */
bool garbage_take(void *p, uint32_t *collection)
{
	uintptr_t g = granule((uintptr_t)p);
	bool found = false;

	if (!((atomic_load_explicit((_Atomic uint64_t *)&bits[g >> 6],
				    memory_order_relaxed) >> (g & 63)) & 1))
		return false;
	take_lock();
	for (size_t i = 0; i < len && !found; i++) {
		if (list[i].block != (uintptr_t)p)
			continue;
		*collection = list[i].collection;
		list[i].block = 0;
		live--;
		found = true;
	}
	bits[g >> 6] &= ~(1ULL << (g & 63));
	drop_lock();
	return found;
}

/* gc.garbage.clear() and free: every listed block is released. */
size_t garbage_release(void)
{
	size_t n = 0;

	for (;;) {
		uintptr_t p = 0;

		take_lock();
		while (len && !p) {
			struct entry e = list[--len];

			if (e.block) {
				uintptr_t g = granule(e.block);

				bits[g >> 6] &= ~(1ULL << (g & 63));
				live--;
				p = e.block;
			}
		}
		drop_lock();
		if (!p)
			return n;
		release_block(thread_self, (void *)p);
		n++;
	}
}

/* ---- inspection -------------------------------------------------------- */

/* The list's slots as root ranges, world stopped (no lock, as above). */
void garbage_each_root(root_range_fn fn, void *arg)
{
	for (size_t i = 0; i < len; i++)
		if (list[i].block)
			fn((uintptr_t)&list[i].block, (uintptr_t)(&list[i].block + 1), arg);
}

/* Up to cap listed blocks and the first `nbytes` bytes of each (fewer for
 * smaller blocks: *sizes says how many).  Copied under the lock: a free()
 * of a listed block takes it off the list first, so nothing copied here
 * has been freed. */
size_t garbage_peek(uintptr_t *blocks, size_t *sizes, unsigned char *bytes, size_t nbytes,
		    size_t cap)
{
	size_t n = 0;

	take_lock();
	for (size_t i = 0; i < len && n < cap; i++) {
		size_t usable, k;

		if (!list[i].block)
			continue;
		usable = om_usable((void *)list[i].block);
		k = nbytes < usable ? nbytes : usable;
		blocks[n] = list[i].block;
		sizes[n] = k;
		memcpy(bytes + n * nbytes, (const void *)list[i].block, k);
		n++;
	}
	drop_lock();
	return n;
}
