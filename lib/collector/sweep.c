#include "sweep.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>

#include "account.h"
#include "objmap.h"
#include "os.h"
#include "release.h"
#include "spin.h"

#define CHUNK 128   /* blocks a publishing thread frees at a time */

/* Claims and hand-overs take the lock: a claim is a few instructions
 * every CHUNK blocks, and a thread late from the last sweep can never
 * claim a chunk of the next. */
static struct {
	atomic_flag lock;
	uintptr_t *list;
	void (*done_fn)(void);
	size_t n, next;           /* next: first block not yet claimed */
	int64_t bytes;            /* of the whole list */
	_Atomic size_t done;      /* blocks freed */
	_Atomic int64_t pending_bytes;
} sw = { .lock = ATOMIC_FLAG_INIT };

static bool claim(size_t *from, size_t *to)
{
	bool got;

	spin_lock(&sw.lock);
	got = sw.next < sw.n;
	if (got) {
		*from = sw.next;
		*to = sw.next + CHUNK < sw.n ? sw.next + CHUNK : sw.n;
		sw.next = *to;
	}
	spin_unlock(&sw.lock);
	return got;
}

/* After an automatic collection the program goes on allocating, and what
 * was freed is what it allocates from until the next one: handing it all
 * back to the system, to fault it in again a moment later, costs more
 * than the collection (a system call per slab and a fault per page).  So
 * only a heap that shrank by more than twice what stays in use (the live
 * heap and the next cycle's allocations) gives back at once; the rest is
 * returned by jemalloc's decay as it stays unused. */
bool sweep_gives_back(int64_t freed)
{
	int64_t used = atomic_load(&gc.live_after) + gc_next_allowance();

	return freed > 2 * used;
}

/* One chunk; false when nothing was left to claim. */
static bool sweep_chunk(void)
{
	size_t i, end;
	int64_t bytes = 0;

	if (!claim(&i, &end))
		return false;
	for (size_t k = i; k < end; k++) {
		uintptr_t p = sw.list[k];
		size_t size = om_size_at(p - om.base);

		release_memory(p, size);
		bytes += (int64_t)size;
	}
	atomic_fetch_sub(&sw.pending_bytes, bytes);
	/* the thread completing the list gives the memory back */
	if (atomic_fetch_add(&sw.done, end - i) + (end - i) == sw.n) {
		sw.done_fn();
		atomic_store(&gc.sweep_pending, false);
		if (sweep_gives_back(sw.bytes))
			release_free_memory();
	}
	return true;
}

/* From a publishing thread, inside malloc or free: errno is the
 * program's. */
static void sweep_some(void)
{
	int saved = errno;

	sweep_chunk();
	errno = saved;
}

void sweep_init(void)
{
	gc_register_sweeper(sweep_some);
}

void sweep_hand_over(uintptr_t *list, size_t n, int64_t bytes, void (*done)(void))
{
	if (!n)
		return;
	spin_lock(&sw.lock);
	sw.list = list;
	sw.done_fn = done;
	sw.n = n;
	sw.bytes = bytes;
	sw.next = 0;
	atomic_store(&sw.done, 0);
	atomic_store(&sw.pending_bytes, bytes);
	atomic_store(&gc.sweep_pending, true);
	spin_unlock(&sw.lock);
}

/* Claimed chunks are freed by threads that are running (never stopped:
 * this runs before a stop), so the wait is short. */
void sweep_finish(void)
{
	if (!atomic_load(&gc.sweep_pending))
		return;
	while (sweep_chunk())
		;
	while (atomic_load(&gc.sweep_pending))
		sched_yield();
}

int64_t sweep_pending_bytes(void)
{
	return atomic_load(&gc.sweep_pending) ? atomic_load(&sw.pending_bytes) : 0;
}

/* A thread that was claiming a chunk at fork does not exist here. */
void sweep_fork_child(void)
{
	spin_unlock(&sw.lock);
}
