/* Unit tests of lib/bcache.[ch]: the per-thread cache of free small blocks
 * and the depots between threads, on the live heap of this program (the
 * shim linked in is its allocator). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bcache.h"
#include "gcshim.h"
#include "objmap.h"
#include "sites.h"
#include "thread.h"

/* A freed block waits in the cache: registered, yet free to everyone who
 * asks, and the next allocation of its class takes it back, cleared of the
 * cache's key. */
Test(bcache, freed_block_is_cached_then_reused)
{
	char *p = malloc(48), *q;

	cr_assert_not_null(p);
	memset(p, 0x5a, 48);
	free(p);
	cr_expect(bcache_holds(p), "a freed block is in the thread's cache");
	cr_expect_neq(om_usable(p), 0, "and still registered in the object map");
	cr_expect_eq(malloc_usable_size(p), 0, "but not a live block");
	q = malloc(40);
	cr_expect_eq(q, p, "the same class reuses the last block freed");
	cr_expect(!bcache_holds(q), "a reused block is live");
	cr_expect(!bcache_marked(q), "and carries no key");
	free(q);
}

/* Every class jemalloc serves from slabs is cached, up to 14 KiB; a bigger
 * block is an extent of its own, which leaves the object map as it is
 * freed. */
Test(bcache, every_slab_class_is_cached_and_no_extent)
{
	char *p = malloc(14000), *q = malloc(16000), *r;

	cr_assert(p && q);
	memset(p, 1, 14000);
	memset(q, 1, 16000);
	free(p);
	cr_expect(bcache_holds(p), "a freed 14 KiB block is in the thread's cache");
	cr_expect_neq(om_usable(p), 0, "and still registered");
	r = malloc(13000);
	cr_expect_eq(r, p, "the next allocation of its class takes it back");
	free(q);
	cr_expect(!bcache_holds(q), "a 16 KiB block is not cached");
	cr_expect_eq(om_usable(q), 0, "and is unregistered as it is freed");
	free(r);
}

/* A second free of a cached block is refused: were it pushed again, two
 * later allocations would share one block. */
Test(bcache, double_free_is_caught)
{
	char *p = malloc(100), *a, *b;

	cr_assert_not_null(p);
	free(p);
	free(p);
	a = malloc(100);
	b = malloc(100);
	cr_expect_neq(a, b, "a double free handed one block out twice");
	cr_expect(a == p || b == p);
	free(a);
	free(b);
}

/* Data that happens to equal the key is no double free. */
Test(bcache, key_in_live_data_is_not_a_double_free)
{
	uint64_t *p = malloc(64);

	cr_assert_not_null(p);
	p[0] = bc_key;
	free(p);
	cr_expect(bcache_holds(p), "the block was freed all the same");
	cr_expect_eq(malloc(64), (void *)p);
	free(p);
}

/* Past its limit a class gives half away; every block freed is then free
 * (hidden from a stopped world) and each comes back exactly once. */
Test(bcache, overflow_keeps_every_block_once)
{
	enum { N = 300 };
	void *b[N], *again[N];

	for (int i = 0; i < N; i++)
		cr_assert_not_null(b[i] = malloc(32));
	for (int i = 0; i < N; i++)
		free(b[i]);
	bcache_hide();
	size_t still = 0;

	for (int i = 0; i < N; i++)
		still += om_usable(b[i]) != 0;
	bcache_unhide();
	cr_expect_eq(still, 0, "%zu freed blocks look live with the caches hidden", still);
	for (int i = 0; i < N; i++)
		cr_assert_not_null(again[i] = malloc(32));
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			cr_assert_neq(again[i], again[j], "block %d handed out twice", i);
	for (int i = 0; i < N; i++)
		free(again[i]);
}

/* A queue of a couple of hundred small blocks emptied at once (a consumer
 * freeing a producer's batch) stays in the thread's own cache for the next
 * batch.  Not in the depot, which a thread finds busy or holding another
 * thread's blocks as soon as several do this, and not back through
 * jemalloc and the object map's atomics. */
Test(bcache, a_batch_of_two_hundred_stays_in_the_cache)
{
	enum { N = 200 };
	void *b[N], *rest[BC_SLOTS];
	unsigned idx, nrest = 0;

	for (int i = 0; i < N; i++)
		cr_assert_not_null(b[i] = malloc(16));
	idx = om_class_at((uintptr_t)b[0] - om.base) - 1;
	while (bcache_count(&thread_self->cache, idx) && nrest < BC_SLOTS)
		rest[nrest++] = malloc(16);   /* what the last refill left cached */
	cr_assert_eq(bcache_count(&thread_self->cache, idx), 0);
	for (int i = 0; i < N; i++)
		free(b[i]);
	cr_expect_eq(bcache_count(&thread_self->cache, idx), N, "the thread's cache holds %u of %d",
		     (unsigned)bcache_count(&thread_self->cache, idx), N);
	for (unsigned i = 0; i < nrest; i++)
		free(rest[i]);
}

/* A thread's first allocation of a class takes one block from jemalloc
 * besides its own, the next fill two, then four: a thread that uses a
 * class once does not make half a cache of it resident (bcache_fill). */
static void *fills(void *arg)
{
	unsigned *seen = arg, idx;
	void *a = malloc(1000), *b, *c;

	idx = om_class_at((uintptr_t)a - om.base) - 1;
	seen[0] = bcache_count(&thread_self->cache, idx);
	b = malloc(1000);   /* the one cached */
	c = malloc(1000);   /* empty again: the second fill */
	seen[1] = bcache_count(&thread_self->cache, idx);
	free(a);
	free(b);
	free(c);
	return NULL;
}

Test(bcache, fills_start_small_and_double)
{
	pthread_t t;
	unsigned seen[2];

	cr_assert_eq(pthread_create(&t, NULL, fills, seen), 0);
	pthread_join(t, NULL);
	cr_expect_eq(seen[0], 1, "the first fill left %u blocks cached", seen[0]);
	cr_expect_eq(seen[1], 2, "the second fill left %u blocks cached", seen[1]);
}

/* A thread that starts while more threads are alive than bcache_crowded
 * allows caches an eighth of a class's share and goes to jemalloc
 * without jemalloc's thread cache; once it has gone there often (it is a
 * busy thread), it gets both in full. */
int gsje_mallctl(const char *name, void *old, size_t *oldlen, void *new, size_t newlen);

struct crowd_seen {
	bool crowded, promoted, tcache_before, tcache_after, big_cached, big_cached_after;
	unsigned held, idx;
	uint16_t limit_after;
};

static pthread_barrier_t crowd_up;

static bool jemalloc_tcache_on(void)
{
	bool on = false;
	size_t len = sizeof(on);

	return gsje_mallctl("thread.tcache.enabled", &on, &len, NULL, 0) == 0 && on;
}

static void *crowd_member(void *arg)
{
	struct crowd_seen *seen = arg;
	void *b[200];

	free(malloc(16));   /* attached while the others are alive */
	pthread_barrier_wait(&crowd_up);
	if (!seen)
		return NULL;
	seen->crowded = thread_self->cache.crowded;
	seen->tcache_before = jemalloc_tcache_on();
	for (int i = 0; i < 200; i++)
		b[i] = malloc(16);
	seen->idx = om_class_at((uintptr_t)b[0] - om.base) - 1;
	for (int i = 0; i < 200; i++)
		free(b[i]);
	seen->held = bcache_count(&thread_self->cache, seen->idx);
	b[0] = malloc(8000);
	free(b[0]);
	seen->big_cached = bcache_holds(b[0]) || om_usable(b[0]);
	/* a busy thread: batches bigger than any cache, over and over */
	for (int round = 0; round < 20000 && thread_self->cache.crowded; round++) {
		for (int i = 0; i < 200; i++)
			b[i] = malloc(3000);
		for (int i = 0; i < 200; i++)
			free(b[i]);
	}
	seen->promoted = !thread_self->cache.crowded;
	seen->limit_after = bcache_limit(&thread_self->cache, seen->idx);
	seen->tcache_after = jemalloc_tcache_on();
	b[0] = malloc(8000);
	free(b[0]);
	seen->big_cached_after = bcache_holds(b[0]);
	return NULL;
}

Test(bcache, a_crowded_thread_caches_little_until_it_is_busy)
{
	unsigned n = 1;
	pthread_t *t;
	struct crowd_seen seen = { 0 };

	while (!bcache_crowded(n))
		n++;
	/* n live threads make the next one crowded: this one, n - 1 others,
	 * then the one observed */
	cr_assert_not_null(t = calloc(n, sizeof(*t)));
	cr_assert_eq(pthread_barrier_init(&crowd_up, NULL, n + 1), 0);
	for (unsigned i = 0; i + 1 < n; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, crowd_member, NULL), 0);
	while (thread_live() < n)
		sched_yield();
	cr_assert_eq(pthread_create(&t[n - 1], NULL, crowd_member, &seen), 0);
	pthread_barrier_wait(&crowd_up);
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	free(t);
	cr_expect(seen.crowded, "a thread started with %u others alive is not crowded", n);
	cr_expect_not(seen.tcache_before, "jemalloc's thread cache is on in a crowded thread");
	cr_expect_leq(seen.held, bc_crowd_limit[seen.idx], "a crowded cache holds %u blocks of 16 bytes",
		      seen.held);
	cr_expect_lt(bc_crowd_limit[seen.idx], bc_limit[seen.idx]);
	cr_expect_not(seen.big_cached, "a crowded thread caches an 8 KiB block, or left it registered");
	cr_expect(seen.big_cached_after, "once busy, it caches 8 KiB blocks");
	cr_expect(seen.promoted, "a busy crowded thread is never given its full cache");
	cr_expect_eq(seen.limit_after, bc_limit[seen.idx]);
	cr_expect(seen.tcache_after, "nor jemalloc's thread cache");
}

/* A consumer's surplus reaches a producer through the depot, once the
 * consumer has overflowed often enough to count as one (about ten times
 * half a cache). */
#define HANDOVER 1024
static void *given[HANDOVER];

static void *consumer(void *arg)
{
	(void)arg;
	for (int i = 0; i < HANDOVER; i++)
		free(given[i]);
	return NULL;
}

Test(bcache, depot_carries_blocks_between_threads)
{
	pthread_t t;
	int reused = 0;
	size_t before, each;
	long held;

	for (int i = 0; i < HANDOVER; i++)
		cr_assert_not_null(given[i] = malloc(200));
	/* the consumer frees all and exits: what overflowed its cache waits in
	 * the depot, the rest went back to jemalloc with the thread; this
	 * thread's own cache is the same before and after */
	each = malloc_usable_size(given[0]);
	before = bcache_bytes();
	cr_assert_eq(pthread_create(&t, NULL, consumer, NULL), 0);
	pthread_join(t, NULL);
	held = (long)bcache_bytes() - (long)before;
	cr_expect_geq(held, (long)(HANDOVER / 4 * each),
		      "the depot holds %ld bytes of the consumer's %d blocks", held, HANDOVER);
	for (int i = 0; i < HANDOVER; i++) {
		void *p = malloc(200);

		for (int j = 0; j < HANDOVER; j++)
			reused += p == given[j];
	}
	cr_expect_gt(reused, 0, "no block of the consumer's reached this thread");
}

/* A thread that first kept its overflow for itself and then turned to
 * freeing what another thread allocates hands the depot over: the blocks
 * it kept there go to the allocating thread too, or the depot, full of
 * them, would carry nothing between the two from then on. */
#define TURNED 400
#define TURNED_SIZE 2048
static void *turned[TURNED];
static pthread_barrier_t turned_freed, turned_done;

static void *turns_consumer(void *arg)
{
	void *own = malloc(TURNED_SIZE);

	(void)arg;
	free(own);   /* the thread allocates the class as well */
	for (int i = 0; i < TURNED; i++)
		free(turned[i]);
	pthread_barrier_wait(&turned_freed);
	pthread_barrier_wait(&turned_done);
	return NULL;
}

Test(bcache, depot_kept_by_a_thread_that_turns_giver_is_handed_over)
{
	pthread_t t;
	void *again[TURNED];
	size_t before;
	long held;

	pthread_barrier_init(&turned_freed, NULL, 2);
	pthread_barrier_init(&turned_done, NULL, 2);
	for (int i = 0; i < TURNED; i++)
		cr_assert_not_null(turned[i] = malloc(TURNED_SIZE));
	before = bcache_bytes();
	cr_assert_eq(pthread_create(&t, NULL, turns_consumer, NULL), 0);
	pthread_barrier_wait(&turned_freed);
	for (int i = 0; i < TURNED; i++)
		cr_assert_not_null(again[i] = malloc(TURNED_SIZE));
	/* what the depot held went to this thread: left are at most the two
	 * threads' caches of the class */
	held = (long)bcache_bytes() - (long)before;
	pthread_barrier_wait(&turned_done);
	pthread_join(t, NULL);
	for (int i = 0; i < TURNED; i++)
		free(again[i]);
	cr_expect_lt(held, 40L * TURNED_SIZE, "the depot still holds %ld bytes the giver kept",
		     held);
}

/* A thread that allocates and frees a class alike keeps its blocks: what
 * overflows its cache goes back to jemalloc or waits in the depot for it
 * alone, and is given back when it ends; no other thread takes them and
 * writes into cache lines this one still uses. */
#define ROUNDS 200
#define BATCH 100

static void *balanced(void *arg)
{
	void *b[BATCH];

	(void)arg;
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < BATCH; i++)
			b[i] = malloc(300);
		for (int i = 0; i < BATCH; i++)
			free(b[i]);
	}
	return NULL;
}

Test(bcache, a_balanced_thread_gives_nothing_to_the_depot)
{
	pthread_t t;
	size_t before = bcache_bytes();
	long held;

	cr_assert_eq(pthread_create(&t, NULL, balanced, NULL), 0);
	pthread_join(t, NULL);
	held = (long)bcache_bytes() - (long)before;
	cr_expect_lt(held, (long)(BATCH * 300 / 4),
		     "the depot took %ld bytes from a thread that freed what it allocated", held);
}

/* What the program freed is gone from every view of the heap, though the
 * block waits in the cache. */
static int find_block(const struct gcshim_block *b, void *arg)
{
	void **want = arg;

	if (b->start == *want)
		*want = NULL;
	return 0;
}

Test(bcache, freed_block_is_not_an_object)
{
	void *p = malloc(72), *seek;
	struct gcshim_block b;

	cr_assert_not_null(p);
	cr_expect_eq(gcshim_is_tracked(p, &b), 1);
	seek = p;
	cr_assert_geq(gcshim_get_objects(-1, 0, find_block, &seek), 0);
	cr_expect_null(seek, "a live block is listed");
	free(p);
	cr_assert(bcache_holds(p));
	cr_expect_eq(gcshim_is_tracked(p, NULL), 0, "a freed block is still tracked");
	seek = p;
	cr_assert_geq(gcshim_get_objects(-1, 0, find_block, &seek), 0);
	cr_expect_eq(seek, p, "a freed block is listed among the objects");
}

/* Freezing takes the live blocks only: a cached block handed out after
 * the freeze is a new object, not a frozen one. */
Test(bcache, freeze_skips_cached_blocks)
{
	void *live = malloc(24), *gone = malloc(24), *again;
	struct gcshim_block b;

	cr_assert(live && gone);
	free(gone);
	cr_assert(bcache_holds(gone));
	cr_assert_geq(gcshim_freeze(), 1);
	cr_expect_eq(gcshim_is_tracked(live, &b), 1);
	cr_expect_eq(b.frozen, 1);
	again = malloc(24);
	cr_expect_eq(again, gone, "the cached block is reused");
	cr_expect_eq(gcshim_is_tracked(again, &b), 1);
	cr_expect_eq(b.frozen, 0, "a block allocated after the freeze is frozen");
	gcshim_unfreeze();
	free(live);
	free(again);
}

static int64_t cached_bytes(void)
{
	struct gcshim_stats st = { .size = sizeof(st) };

	cr_assert_eq(gcshim_get_stats(&st), 0);
	return st.cached_bytes;
}

/* The statistics say how much freed memory the caches keep. */
Test(bcache, cached_bytes_follow_the_cache)
{
	void *p = malloc(1000);
	int64_t before, after_free, after_reuse;

	cr_assert_not_null(p);
	before = cached_bytes();
	free(p);
	after_free = cached_bytes();
	cr_assert_eq(malloc(1000), p);
	after_reuse = cached_bytes();
	cr_expect_eq(after_free - before, 1024, "freeing a 1024-byte block cached %ld bytes",
		     (long)(after_free - before));
	cr_expect_eq(after_reuse, before);
	free(p);
}

/* Once a block was pinned, frees take a slower step that forgets pins,
 * and still go to the cache: a block reused is not pinned. */
Test(bcache, pin_is_forgotten_by_a_cached_free)
{
	void *p = malloc(40), *q = malloc(40);

	cr_assert(p && q);
	cr_assert_eq(gcshim_pin(p), 0);
	cr_assert(sites_pinned((uintptr_t)p));
	free(p);
	cr_expect(bcache_holds(p), "the freed block went to the cache");
	cr_expect(!sites_pinned((uintptr_t)p), "its pin outlived it");
	free(q);
	free(q);   /* caught as a double free in this mode too */
	cr_expect_neq(malloc(40), malloc(40));
}
