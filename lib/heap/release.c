#include "release.h"

#include "account.h"
#include "bcache.h"
#include "frozen.h"
#include "heap.h"
#include "objmap.h"
#include "sites.h"

size_t release_block(struct thread_rec *t, void *p)
{
	unsigned mode = gc_mode_now();
	size_t u;

	if (mode & MODE_PINNED)
		sites_unpin_freed(p);
	u = om_remove(p);
	if (!u)
		return 0;
	if (mode & MODE_FROZEN)
		frozen_forget(p);
	heap_free_sized(p, u);
	if (mode & MODE_LIMITED)
		gc_unreserve(u);
	if (t)
		gc_account_free(t, u);
	return u;
}

/* Counted without publishing: the collector publishes once, after its
 * last block. */
void release_count(struct thread_rec *t, size_t blocks, int64_t bytes)
{
	if (!blocks)
		return;
	if (gc_limited())
		gc_unreserve((size_t)bytes);
	if (t) {
		tc_add(&t->frees, (int64_t)blocks);
		tc_add(&t->bytes_freed, bytes);
	}
}

void release_memory(uintptr_t p, size_t usable)
{
	if (usable > SC_SMALL_MAX)
		om_clear_cont(p - om.base, 0, usable);
	heap_free_sized((void *)p, usable);
}

void release_unregistered(struct thread_rec *t, uintptr_t p, size_t usable)
{
	release_memory(p, usable);
	release_count(t, 1, (int64_t)usable);
}

void release_free_memory(void)
{
	struct thread_rec *t = thread_self;

	if (t)
		bcache_drain(&t->cache);
	bcache_drain_depots();
	heap_release_memory();
}
