#include "sweep.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>

#include "account.h"
#include "bcache.h"
#include "events.h"
#include "objmap.h"
#include "os.h"
#include "release.h"
#include "spin.h"

#define CHUNK 128   /* blocks a publishing thread frees at a time */

/* The list is sorted into one bucket per class of the thread caches and
 * one for every other block (large ones, and small ones above the caches'
 * classes).  A thread whose cache runs empty of a class takes that class's
 * blocks from the front of its bucket (sweep_refill): a dead block goes
 * straight back into use, without a visit to jemalloc to free it and
 * another to allocate it again, which cost a program that drops what it
 * allocates more than the collection itself.  Publishing threads free the
 * other bucket first, then the class buckets from their backs, skipping
 * a class that a thread took blocks of since the last chunk: what no
 * thread takes again still goes back to jemalloc at the pace it did
 * before, and what threads are taking is left to them. */
#define BUCKETS SWEEP_BUCKETS
#define OTHER BC_CLASSES
#define ENTRY_FLAGS ((uintptr_t)7)

/* Claims and hand-overs take the lock: a claim is a few instructions
 * every CHUNK blocks, and a thread late from the last sweep can never
 * claim a chunk of the next. */
static struct {
	atomic_flag lock;
	uintptr_t *list;
	void (*done_fn)(void);
	size_t n;
	size_t head[BUCKETS], tail[BUCKETS];   /* unclaimed: [head, tail) */
	bool taken[BC_CLASSES];    /* a refill took blocks since the last chunk */
	bool reuse;                /* refills may take from the class buckets */
	int64_t bytes;             /* of the whole list */
	_Atomic size_t done;       /* blocks freed or taken again */
	_Atomic int64_t pending_bytes;
} sw = { .lock = ATOMIC_FLAG_INIT };

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

static unsigned bucket_of(uintptr_t p)
{
	unsigned idx = om_class_at(p - om.base) - 1;

	return idx < BC_CLASSES ? idx : OTHER;
}

void sweep_count(struct sweep_counts *c, uintptr_t page, size_t n)
{
	unsigned b = bucket_of(page);

	c->n[b] += n;
	c->bytes[b] += (int64_t)(n * om_size_at(page - om.base));
}

void sweep_counts_add(struct sweep_counts *to, const struct sweep_counts *from)
{
	for (unsigned b = 0; b < BUCKETS; b++)
		if (from->n[b]) {
			__atomic_fetch_add(&to->n[b], from->n[b], __ATOMIC_RELAXED);
			__atomic_fetch_add(&to->bytes[b], from->bytes[b], __ATOMIC_RELAXED);
		}
}

int64_t sweep_counts_bytes(const struct sweep_counts *c)
{
	int64_t bytes = 0;

	for (unsigned b = 0; b < BUCKETS; b++)
		bytes += c->bytes[b];
	return bytes;
}

static void count_into_buckets(const uintptr_t *list, size_t n, size_t count[BUCKETS])
{
	for (size_t i = 0; i < n; i++)
		count[bucket_of(list[i])]++;
}

/* In place, one pass to move each block into its bucket (the order within
 * a bucket is not kept), its flags cleared; with a single bucket, only
 * the flags.  The dead blocks' page entries still hold their classes. */
static void sort_into_buckets(uintptr_t *list, size_t n, const size_t count[BUCKETS])
{
	size_t next[BUCKETS] = { 0 }, at = 0;
	unsigned used = 0;

	for (unsigned b = 0; b < BUCKETS; b++) {
		sw.head[b] = next[b] = at;
		at += count[b];
		sw.tail[b] = at;
		used += count[b] != 0;
	}
	if (used <= 1) {
		for (size_t i = 0; i < n; i++)
			list[i] &= ~ENTRY_FLAGS;
		return;
	}
	for (unsigned b = 0; b < BUCKETS; b++)
		while (next[b] < sw.tail[b]) {
			uintptr_t p = list[next[b]] & ~ENTRY_FLAGS;
			unsigned to = bucket_of(p);

			if (to != b) {
				list[next[b]] = list[next[to]];
				list[next[to]++] = p;
			} else {
				list[next[b]++] = p;
			}
		}
}

/* For a publishing thread: the other bucket from its front, then a class
 * bucket no refill took from lately (any, for all), from its back. */
static bool claim_chunk(size_t *from, size_t *to, bool all)
{
	bool got = false;

	spin_lock(&sw.lock);
	if (sw.head[OTHER] < sw.tail[OTHER]) {
		*from = sw.head[OTHER];
		*to = sw.head[OTHER] = *from + CHUNK < sw.tail[OTHER] ? *from + CHUNK : sw.tail[OTHER];
		got = true;
	}
	for (unsigned b = 0; !got && b < BC_CLASSES; b++)
		if (sw.taken[b] && !all) {
			sw.taken[b] = false;
		} else if (sw.head[b] < sw.tail[b]) {
			*to = sw.tail[b];
			*from = sw.tail[b] = *to - sw.head[b] > CHUNK ? *to - CHUNK : sw.head[b];
			got = true;
		}
	spin_unlock(&sw.lock);
	return got;
}

/* Counts k blocks of the list as handled; the thread that handles the
 * last one ends the sweep, and gives the memory back if it may. */
static void handled(size_t k, int64_t bytes, bool may_give_back)
{
	atomic_fetch_sub(&sw.pending_bytes, bytes);
	if (atomic_fetch_add(&sw.done, k) + k == sw.n) {
		sw.done_fn();
		atomic_store(&gc.sweep_pending, false);
		if (may_give_back && sweep_gives_back(sw.bytes))
			release_free_memory();
	}
}

/* One chunk; false when nothing was left to claim. */
static bool sweep_chunk(bool all)
{
	size_t i, end;
	int64_t bytes = 0;

	if (!claim_chunk(&i, &end, all))
		return false;
	for (size_t k = i; k < end; k++) {
		uintptr_t p = sw.list[k];
		size_t size = om_size_at(p - om.base);

		release_memory(p, size);
		bytes += (int64_t)size;
	}
	handled(end - i, bytes, true);
	return true;
}

/* Only tried: a thread interrupted by a signal while it held the lock
 * must not find its handler's malloc waiting for it. */
void *sweep_refill(struct bcache *c, unsigned idx)
{
	size_t from, to, want = bcache_limit(c, idx) / 2u + 1;
	void *first;

	if (!atomic_load_explicit(&gc.sweep_pending, memory_order_relaxed) ||
	    !spin_trylock(&sw.lock))
		return NULL;
	from = to = sw.head[idx];
	if (sw.reuse)
		to = sw.tail[idx] - from > want ? from + want : sw.tail[idx];
	sw.head[idx] = to;
	sw.taken[idx] = true;
	spin_unlock(&sw.lock);
	if (from == to)
		return NULL;
	first = bcache_fill_from(c, idx, sw.list + from, (unsigned)(to - from));
	stat_add(EV_reused_blocks, (int64_t)(to - from));
	handled(to - from, (int64_t)((to - from) * sc_sizes[idx]), false);
	return first;
}

/* From a publishing thread, inside malloc or free: errno is the
 * program's. */
static void sweep_some(void)
{
	int saved = errno;

	sweep_chunk(false);
	errno = saved;
}

void sweep_init(void)
{
	gc_register_sweeper(sweep_some);
}

static void hand_over(uintptr_t *list, size_t n, int64_t bytes, const size_t count[BUCKETS],
		      void (*done)(void))
{
	spin_lock(&sw.lock);
	sw.list = list;
	sw.done_fn = done;
	sw.n = n;
	sw.bytes = bytes;
	for (unsigned b = 0; b < BC_CLASSES; b++)
		sw.taken[b] = false;
	sort_into_buckets(list, n, count);
	/* a heap that shrank that much goes back to the system instead */
	sw.reuse = !sweep_gives_back(bytes);
	atomic_store(&sw.done, 0);
	atomic_store(&sw.pending_bytes, bytes);
	atomic_store(&gc.sweep_pending, true);
	spin_unlock(&sw.lock);
}

void sweep_hand_over(uintptr_t *list, size_t n, int64_t bytes, void (*done)(void))
{
	size_t count[BUCKETS] = { 0 };

	if (!n)
		return;
	count_into_buckets(list, n, count);
	hand_over(list, n, bytes, count, done);
}

void sweep_hand_over_counted(uintptr_t *list, size_t n, const struct sweep_counts *c,
			     void (*done)(void))
{
	if (n)
		hand_over(list, n, sweep_counts_bytes(c), c->n, done);
}

/* Claimed chunks are freed by threads that are running (never stopped:
 * this runs before a stop), so the wait is short. */
void sweep_finish(void)
{
	if (!atomic_load(&gc.sweep_pending))
		return;
	while (sweep_chunk(true))
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
