/* Unit tests of the accounting (lib/heap/account.c, lib/heap/thread.c, lib/inspect/stats.c) and
 * the public API (lib/api.c), on the real allocator: the shim is linked
 * into this program, so malloc() here is the shim's malloc.
 *
 * Measurements are taken with nothing in between that may allocate (an
 * assertion may): values first, assertions after.  Settings that only
 * start-up can make (GCSHIM_HEAP_LIMIT) are tested in a child process,
 * this program again in a --unit-mode (see test_unit_main.c). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "account.h"
#include "gcshim.h"
#include "options.h"

/* The misuse is deliberate. */
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#pragma GCC diagnostic ignored "-Wuse-after-free"
#include "sizeclass.h"

int unit_spawn(const char *mode, const char *const *extra, char *out, size_t cap);

static struct gcshim_stats snap(void)
{
	struct gcshim_stats st;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	if (gcshim_get_stats(&st) < 0)
		abort();
	return st;
}

#define D(field) ((long long)(b.field - a.field))

/* ---- malloc family ------------------------------------------------------- */

static const size_t sizes[] = { 0, 1, 8, 24, 100, 1000, 5000, 14336, 20000, 1 << 20, 10 << 20 };

Test(accounting, malloc_free_exact)
{
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		size_t n = sizes[i], u;
		int64_t m0, m1, m2;
		struct gcshim_stats a, b, c;
		void *p;

		a = snap();
		m0 = gcshim_mem_alloc();
		p = malloc(n);
		m1 = gcshim_mem_alloc();
		u = malloc_usable_size(p);
		b = snap();
		free(p);
		m2 = gcshim_mem_alloc();
		c = snap();

		cr_assert_not_null(p);
		cr_expect_eq(u, sc_usable(sc_request(n)), "malloc(%zu): usable %zu", n, u);
		cr_expect_eq(m1 - m0, (int64_t)u, "malloc(%zu): mem_alloc rose by %lld, usable %zu",
			     n, (long long)(m1 - m0), u);
		cr_expect_eq(m2, m0, "free after malloc(%zu): mem_alloc %+lld", n,
			     (long long)(m2 - m0));
		cr_expect_eq(D(allocations), 1, "malloc(%zu): allocations %+lld", n, D(allocations));
		cr_expect_eq(D(frees), 0);
		cr_expect_eq(D(live_blocks), 1);
		cr_expect_eq(D(bytes_allocated), (long long)u);
		cr_expect_eq(D(mem_alloc), (long long)u);
		cr_expect_eq(c.frees - b.frees, 1);
		cr_expect_eq(c.live_blocks, a.live_blocks);
		cr_expect_eq(c.bytes_freed - b.bytes_freed, (int64_t)u);
		cr_expect_eq(c.mem_alloc, a.mem_alloc);
		cr_expect(b.peak_mem_alloc >= b.mem_alloc);
	}
}

Test(accounting, free_null_changes_nothing)
{
	struct gcshim_stats a, b;

	a = snap();
	free(NULL);
	b = snap();
	cr_expect_eq(D(frees), 0);
	cr_expect_eq(D(invalid_frees) + D(foreign_frees), 0);
	cr_expect_eq(D(mem_alloc), 0);
}

Test(accounting, calloc)
{
	struct gcshim_stats a, b;
	int64_t m0, m1, m2;
	size_t u;
	unsigned char *p;
	int err;
	void *q;

	m0 = gcshim_mem_alloc();
	p = calloc(100, 50);
	m1 = gcshim_mem_alloc();
	u = malloc_usable_size(p);
	cr_assert_not_null(p);
	for (size_t i = 0; i < u; i++)
		cr_assert_eq(p[i], 0, "calloc byte %zu is %d", i, p[i]);
	free(p);
	m2 = gcshim_mem_alloc();
	cr_expect_eq(u, sc_usable(5000));
	cr_expect_eq(m1 - m0, (int64_t)u);
	cr_expect_eq(m2, m0);

	/* n * m overflows: ENOMEM, counted, nothing held */
	a = snap();
	errno = 0;
	q = calloc(SIZE_MAX / 2, 3);
	err = errno;
	b = snap();
	cr_expect_null(q);
	cr_expect_eq(err, ENOMEM);
	cr_expect_eq(D(alloc_failures), 1);
	cr_expect_eq(D(allocations), 0);
	cr_expect_eq(D(mem_alloc), 0);
}

Test(accounting, malloc_failure)
{
	struct gcshim_stats a, b;
	void *p;
	int err;

	a = snap();
	errno = 0;
	p = malloc(SIZE_MAX - 4096);
	err = errno;
	b = snap();
	cr_expect_null(p);
	cr_expect_eq(err, ENOMEM);
	cr_expect_eq(D(alloc_failures), 1);
	cr_expect_eq(D(allocations), 0);
	cr_expect_eq(D(mem_alloc), 0);
}

struct realloc_case {
	size_t from, to;
};

/* Small blocks move, large ones may resize in place: either way mem_alloc
 * moves by the difference of the usable sizes, one realloc is counted, and
 * the allocation and free counts stay. */
Test(accounting, realloc_grow_and_shrink)
{
	static const struct realloc_case cases[] = {
		{ 100, 1000 }, { 1000, 100 }, { 100, 110 }, { 24, 24 }, { 8, 20000 },
		{ 20000, 8 }, { 20000, 40000 }, { 40000, 20000 }, { 1 << 20, 3 << 20 },
		{ 3 << 20, 1 << 20 }, { 14336, 16384 }, { 16384, 14336 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		size_t from = cases[i].from, to = cases[i].to, u0, u1;
		struct gcshim_stats a, b;
		unsigned char *p, *q;
		int64_t m0, m1;
		bool intact = true;

		p = malloc(from);
		cr_assert_not_null(p);
		memset(p, 0x5c, from);
		u0 = malloc_usable_size(p);
		a = snap();
		m0 = gcshim_mem_alloc();
		q = realloc(p, to);
		m1 = gcshim_mem_alloc();
		b = snap();
		cr_assert_not_null(q);
		u1 = malloc_usable_size(q);
		for (size_t k = 0; k < (from < to ? from : to); k++)
			intact &= q[k] == 0x5c;
		cr_expect(intact, "realloc %zu -> %zu lost contents", from, to);
		cr_expect_eq(u1, sc_usable(sc_request(to)));
		cr_expect_eq(m1 - m0, (int64_t)u1 - (int64_t)u0,
			     "realloc %zu -> %zu: mem_alloc %+lld, usable %zu -> %zu", from, to,
			     (long long)(m1 - m0), u0, u1);
		cr_expect_eq(D(mem_alloc), (long long)u1 - (long long)u0);
		cr_expect_eq(D(reallocs), 1, "realloc %zu -> %zu: reallocs %+lld", from, to,
			     D(reallocs));
		cr_expect_eq(D(allocations), 0, "realloc %zu -> %zu: allocations %+lld", from, to,
			     D(allocations));
		cr_expect_eq(D(frees), 0, "realloc %zu -> %zu: frees %+lld", from, to, D(frees));
		cr_expect_eq(D(live_blocks), 0);
		cr_expect_eq(D(bytes_allocated) - D(bytes_freed), (long long)u1 - (long long)u0);
		free(q);
	}
}

Test(accounting, realloc_null_and_zero)
{
	struct gcshim_stats a, b, c;
	void *p, *q;

	a = snap();
	p = realloc(NULL, 300);
	b = snap();
	q = realloc(p, 0);
	c = snap();
	cr_assert_not_null(p);
	cr_expect_null(q);
	cr_expect_eq(D(allocations), 1);
	cr_expect_eq(D(reallocs), 0);
	cr_expect_eq(D(mem_alloc), (long long)sc_usable(300));
	cr_expect_eq(c.frees - b.frees, 1);
	cr_expect_eq(c.mem_alloc, a.mem_alloc);
}

Test(accounting, aligned_allocations)
{
	void *p[6] = { 0 };
	size_t u[6];
	int64_t m[7];
	int rc;

	m[0] = gcshim_mem_alloc();
	rc = posix_memalign(&p[0], 4096, 100);
	m[1] = gcshim_mem_alloc();
	p[1] = memalign(64, 1000);
	m[2] = gcshim_mem_alloc();
	p[2] = aligned_alloc(256, 512);
	m[3] = gcshim_mem_alloc();
	p[3] = valloc(10);
	m[4] = gcshim_mem_alloc();
	p[4] = pvalloc(5000);
	m[5] = gcshim_mem_alloc();
	p[5] = memalign(65536, 20000);
	m[6] = gcshim_mem_alloc();
	for (int i = 0; i < 6; i++)
		u[i] = malloc_usable_size(p[i]);
	cr_assert_eq(rc, 0);
	for (int i = 0; i < 6; i++) {
		cr_assert_not_null(p[i], "allocation %d failed", i);
		cr_expect(u[i] > 0);
		cr_expect_eq(m[i + 1] - m[i], (int64_t)u[i], "aligned allocation %d: %+lld, usable %zu",
			     i, (long long)(m[i + 1] - m[i]), u[i]);
	}
	cr_expect_eq((uintptr_t)p[0] % 4096, 0);
	cr_expect_eq((uintptr_t)p[1] % 64, 0);
	cr_expect_eq((uintptr_t)p[2] % 256, 0);
	cr_expect_eq((uintptr_t)p[3] % 4096, 0);
	cr_expect_eq((uintptr_t)p[4] % 4096, 0);
	cr_expect(u[4] >= 8192, "pvalloc(5000) rounds to pages: %zu", u[4]);
	cr_expect_eq((uintptr_t)p[5] % 65536, 0);
	for (int i = 0; i < 6; i++)
		free(p[i]);
	cr_expect_eq(gcshim_mem_alloc(), m[0]);
}

/* ---- frees the shim did not expect --------------------------------------- */

Test(accounting, foreign_free_is_counted_and_ignored)
{
	struct gcshim_stats a, b;
	long local[4] = { 1, 2, 3, 4 };
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(m, MAP_FAILED);
	a = snap();
	free(local);
	free(m);
	free(&local[1]);
	b = snap();
	cr_expect_eq(D(foreign_frees), 3, "foreign_frees %+lld", D(foreign_frees));
	cr_expect_eq(D(invalid_frees), 0);
	cr_expect_eq(D(frees), 0);
	cr_expect_eq(D(mem_alloc), 0);
	/* still alive, memory untouched */
	cr_expect(local[0] == 1 && local[3] == 4);
	((char *)m)[0] = 1;
	munmap(m, 4096);
}

Test(accounting, foreign_realloc_and_size)
{
	struct gcshim_stats a, b;
	char local[64] = "stack contents";
	char *q;
	size_t u;

	a = snap();
	q = realloc(local, 200);
	u = malloc_usable_size(local);
	b = snap();
	cr_assert_not_null(q);
	cr_expect_str_eq(q, "stack contents");
	cr_expect_eq(u, 0);
	cr_expect_eq(D(foreign_reallocs), 1);
	cr_expect_eq(D(foreign_sizes), 1);
	cr_expect_eq(D(allocations), 1, "the copy is a new block");
	free(q);
}

Test(accounting, double_free_is_counted)
{
	struct gcshim_stats a, b, c;
	void *p = malloc(100), *big = malloc(1 << 20);

	cr_assert(p && big);
	a = snap();
	free(p);
	b = snap();
	free(p);
	free(big);
	free(big);
	c = snap();
	cr_expect_eq(D(frees), 1);
	cr_expect_eq(c.frees - b.frees, 1);
	cr_expect_eq(c.invalid_frees - a.invalid_frees, 2, "invalid_frees %+lld",
		     (long long)(c.invalid_frees - a.invalid_frees));
	cr_expect_eq(c.foreign_frees - a.foreign_frees, 0);
	cr_expect_eq(c.mem_alloc - a.mem_alloc, -(int64_t)(112 + (1 << 20)));
}

Test(accounting, interior_free_is_invalid_and_ignored)
{
	struct gcshim_stats a, b;
	char *p = malloc(1000);
	size_t u0, u1;

	cr_assert_not_null(p);
	u0 = malloc_usable_size(p);
	a = snap();
	free(p + 16);
	free(p + 3);
	b = snap();
	u1 = malloc_usable_size(p);
	cr_expect_eq(D(invalid_frees), 2);
	cr_expect_eq(D(frees), 0);
	cr_expect_eq(D(mem_alloc), 0);
	cr_expect_eq(u1, u0, "the block is still live");
	free(p);
}

/* ---- settings through the API -------------------------------------------- */

Test(api, threshold)
{
	long prev;
	int err;

	cr_expect_eq(gcshim_threshold(GCSHIM_THRESHOLD_QUERY), -1, "default off");
	cr_expect_eq(gcshim_threshold(1 << 20), -1);
	cr_expect_eq(gcshim_threshold(GCSHIM_THRESHOLD_QUERY), 1 << 20);
	cr_expect_eq(gcshim_threshold(0), 1 << 20);   /* 0 is off, as for the heap limit */
	cr_expect_eq(gcshim_threshold(-1), -1);
	cr_expect_eq(gcshim_threshold(GCSHIM_THRESHOLD_QUERY), -1);
	gcshim_threshold(4096);
	errno = 0;
	prev = gcshim_threshold(-5);
	err = errno;
	cr_expect_eq(prev, -2);
	cr_expect_eq(err, EINVAL);
	cr_expect_eq(gcshim_threshold(GCSHIM_THRESHOLD_QUERY), 4096, "-5 changed the threshold");
	struct gcshim_stats b = snap();
	cr_expect_eq(b.threshold, 4096);
}

Test(api, generation_thresholds)
{
	long t[3];
	int rc, err;

	gcshim_get_threshold(t);
	cr_expect(t[0] == 0 && t[1] == 10 && t[2] == 10, "defaults %ld,%ld,%ld", t[0], t[1], t[2]);
	cr_expect_eq(gcshim_set_threshold(700, 10, 10), 0);
	gcshim_get_threshold(t);
	cr_expect(t[0] == 700 && t[1] == 10 && t[2] == 10);
	cr_expect_eq(gcshim_set_threshold(-1, 20, -7), 0, "negative keeps");
	gcshim_get_threshold(t);
	cr_expect(t[0] == 700 && t[1] == 20 && t[2] == 10, "got %ld,%ld,%ld", t[0], t[1], t[2]);
	errno = 0;
	rc = gcshim_set_threshold(5, 2147483648L, 5);
	err = errno;
	cr_expect_eq(rc, -1);
	cr_expect_eq(err, EINVAL);
	gcshim_get_threshold(t);
	cr_expect(t[0] == 700 && t[1] == 20 && t[2] == 10, "a rejected call changed %ld,%ld,%ld",
		  t[0], t[1], t[2]);
	struct gcshim_stats b = snap();
	cr_expect(b.gen_threshold0 == 700 && b.gen_threshold1 == 20 && b.gen_threshold2 == 10);
}

Test(api, debug_flags)
{
	static const int good[] = { 0, 1, 2, 4, 32, 33, 38, 39 };
	static const int bad[] = { 8, 16, 64, -1, 40, 0x100 };

	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		cr_expect_eq(gcshim_set_debug(good[i]), 0, "set_debug(%d)", good[i]);
		cr_expect_eq(gcshim_get_debug(), good[i]);
	}
	gcshim_set_debug(33);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		errno = 0;
		cr_expect_eq(gcshim_set_debug(bad[i]), -1, "set_debug(%d) accepted", bad[i]);
		cr_expect_eq(errno, EINVAL);
		cr_expect_eq(gcshim_get_debug(), 33);
	}
}

Test(api, enable_disable)
{
	cr_expect_eq(gcshim_isenabled(), 1);
	gcshim_disable();
	cr_expect_eq(gcshim_isenabled(), 0);
	cr_expect_eq(snap().enabled, 0);
	gcshim_enable();
	cr_expect_eq(gcshim_isenabled(), 1);
}

Test(api, get_stats_sizes)
{
	struct gcshim_stats full = snap();
	struct { uint32_t size, version; int64_t mem_alloc, mem_free; int64_t guard; } small;
	int rc, err;

	cr_expect_eq(full.size, sizeof(full));
	cr_expect_eq(full.version, 5);
	cr_expect_eq(full.mem_free, -1);
	cr_expect_eq(full.heap_limit, 0);
	cr_expect(full.threads >= 1);
	cr_expect(full.arenas >= 1);
	cr_expect(full.heap_reserved > 0);
	cr_expect(full.rss > 0);
	cr_expect(full.jemalloc_allocated > 0);

	/* an older caller's smaller struct: only its prefix is written */
	memset(&small, 0x77, sizeof(small));
	small.size = offsetof(__typeof__(small), guard);
	cr_expect_eq(gcshim_get_stats((struct gcshim_stats *)&small), 0);
	cr_expect_eq(small.size, offsetof(__typeof__(small), guard));
	cr_expect(small.mem_alloc > 0);
	cr_expect_eq(small.mem_free, -1);
	cr_expect_eq(small.guard, 0x7777777777777777LL, "wrote past the caller's size");

	errno = 0;
	rc = gcshim_get_stats(NULL);
	err = errno;
	cr_expect_eq(rc, -1);
	cr_expect_eq(err, EINVAL);
	small.size = 4;
	errno = 0;
	rc = gcshim_get_stats((struct gcshim_stats *)&small);
	err = errno;
	cr_expect_eq(rc, -1);
	cr_expect_eq(err, EINVAL);
}

/* count0 is allocations minus frees (no gen-0 threshold: never reset). */
Test(api, count_tracks_allocations_minus_frees)
{
	enum { N = 300 };
	void *p[N];
	long c0[3], c1[3], c2[3];
	struct gcshim_stats a, b;

	a = snap();
	gcshim_get_count(c0);
	for (int i = 0; i < N; i++)
		p[i] = malloc(32 + (size_t)i);
	gcshim_get_count(c1);
	for (int i = 0; i < N / 3; i++)
		free(p[i]);
	gcshim_get_count(c2);
	b = snap();
	cr_expect_eq(c1[0] - c0[0], N, "count0 %+ld after %d mallocs", c1[0] - c0[0], N);
	cr_expect_eq(c2[0] - c0[0], N - N / 3, "count0 %+ld", c2[0] - c0[0]);
	cr_expect_eq(c0[0], a.live_blocks, "count0 %ld, live_blocks %lld", c0[0],
		     (long long)a.live_blocks);
	cr_expect_eq(b.count0, c2[0]);
	cr_expect(c1[1] == c0[1] && c1[2] == c0[2]);
	for (int i = N / 3; i < N; i++)
		free(p[i]);
}

/* ---- automatic-collection triggers --------------------------------------- */

/* 10 MiB allocated (and freed) in 4 KiB blocks under a 1 MiB threshold:
 * about ten crossings. */
Test(triggers, byte_threshold)
{
	struct gcshim_stats a, b, c;

	gcshim_threshold(1 << 20);
	a = snap();
	for (int i = 0; i < 2560; i++)
		free(malloc(4096));
	b = snap();
	/* disabled: no crossing is counted */
	gcshim_disable();
	for (int i = 0; i < 2560; i++)
		free(malloc(4096));
	c = snap();
	gcshim_enable();
	cr_expect(D(threshold_triggers) >= 8 && D(threshold_triggers) <= 11,
		  "threshold_triggers %+lld for 10 MiB under 1 MiB", D(threshold_triggers));
	cr_expect_eq(c.threshold_triggers - b.threshold_triggers, 0,
		     "%lld triggers while disabled",
		     (long long)(c.threshold_triggers - b.threshold_triggers));
	cr_expect_eq(D(mem_alloc), 0);
	cr_expect_eq(D(allocations), 2560);
	cr_expect_eq(D(frees), 2560);
}

Test(api, growth)
{
	cr_expect_eq(gcshim_growth(GCSHIM_GROWTH_QUERY), -1, "default off");
	cr_expect_eq(gcshim_growth(50), -1);
	cr_expect_eq(gcshim_growth(GCSHIM_GROWTH_ON), 50);
	cr_expect_eq(gcshim_growth(0), GROWTH_DEFAULT);
	cr_expect_eq(gcshim_growth(GCSHIM_GROWTH_QUERY), -1, "0 is off");
	errno = 0;
	cr_expect_eq(gcshim_growth(-7), -2);
	cr_expect_eq(errno, EINVAL);
	cr_expect_eq(gcshim_growth(100001), -2);
	cr_expect_eq(gcshim_growth(GCSHIM_GROWTH_QUERY), -1, "a bad value changed it");
	gcshim_growth(30);
	cr_expect_eq(snap().growth, 30);
	gcshim_growth(-1);
	cr_expect_eq(snap().growth_target, -1);
}

/* Allocates blocks of size into keep[*i...] until the growth trigger has
 * collected once more than in s, which must not happen before the heap
 * reaches s's target (less a block); returns the statistics after it. */
static struct gcshim_stats grow_to_target(void **keep, int n, int *i, size_t size,
					  struct gcshim_stats s)
{
	for (; *i < n && snap().mem_alloc + (int64_t)size < s.growth_target; (*i)++) {
		keep[*i] = malloc(size);
		cr_assert_eq(snap().growth_triggers, s.growth_triggers, "collected early");
	}
	for (int k = 0; k < 4 && *i < n && snap().growth_triggers == s.growth_triggers; k++)
		keep[(*i)++] = malloc(size);
	cr_assert_eq(snap().growth_triggers, s.growth_triggers + 1,
		     "not collected at the target %lld: mem_alloc %lld", (long long)s.growth_target,
		     (long long)snap().mem_alloc);
	return snap();
}

/* The target after a collection: what it left live plus a multiple of
 * what it scanned (that heap and the roots). */
static int64_t target_for(const struct gcshim_stats *s, int64_t multiple)
{
	return s->mem_alloc + multiple * (s->mem_alloc + s->last_root_bytes);
}

/* A 100% growth trigger: the first collection as the heap passes the
 * 4 MiB floor; no collection runs before the heap reaches the next
 * target.  Collections in a row that find nothing dead (the program keeps
 * or frees all it allocates) double the next allowance from the second
 * on, up to 8 times the percent; one that finds dead blocks brings it
 * back to the percent. */
Test(triggers, growth)
{
	enum { N = 8192, SMALL = 64 << 10, BIG = 1 << 20 };
	static void *keep[N];
	struct gcshim_stats s = { .size = sizeof(s) }, before;
	int i = 0;

	gcshim_growth(100);
	before = snap();
	for (; i < N && snap().growth_triggers == before.growth_triggers; i++)
		keep[i] = malloc(SMALL);
	s = snap();
	cr_assert_eq(s.growth_triggers, before.growth_triggers + 1);
	cr_expect_geq(s.mem_alloc, 4 << 20, "collected at %lld bytes", (long long)s.mem_alloc);
	cr_expect_lt(s.mem_alloc, (4 << 20) + 2 * SMALL, "collected at %lld bytes",
		     (long long)s.mem_alloc);
	cr_expect_eq(s.growth_target, target_for(&s, 1), "target %lld, live %lld, roots %lld",
		     (long long)s.growth_target, (long long)s.mem_alloc,
		     (long long)s.last_root_bytes);
	s = grow_to_target(keep, N, &i, BIG, s);
	cr_expect_eq(s.growth_target, target_for(&s, 2), "after a second collection of nothing");
	s = grow_to_target(keep, N, &i, BIG, s);
	cr_expect_eq(s.growth_target, target_for(&s, 4), "after a third collection of nothing");
	/* dropped without free(): the next collection finds them */
	for (int k = 0; k < i; k++)
		keep[k] = NULL;
	i = 0;
	s = grow_to_target(keep, N, &i, SMALL, s);
	cr_expect_gt(s.last_collected_bytes, 0);
	cr_expect_eq(s.growth_target, target_for(&s, 1), "after a collection of dead blocks");
	gcshim_growth(-1);
	while (i > 0)
		free(keep[--i]);
}

Test(triggers, byte_threshold_off)
{
	struct gcshim_stats a, b;

	gcshim_threshold(-1);
	a = snap();
	for (int i = 0; i < 2560; i++)
		free(malloc(4096));
	b = snap();
	cr_expect_eq(D(threshold_triggers), 0);
}

/* Large blocks count their usable size: 10 blocks of 1 MiB + 1 byte
 * (1.25 MiB each) cross a 1 MiB threshold every time. */
Test(triggers, byte_threshold_large_blocks)
{
	struct gcshim_stats a, b;

	gcshim_threshold(1 << 20);
	a = snap();
	for (int i = 0; i < 10; i++)
		free(malloc((1 << 20) + 1));
	b = snap();
	cr_expect(D(threshold_triggers) >= 9 && D(threshold_triggers) <= 10,
		  "threshold_triggers %+lld", D(threshold_triggers));
}

/* t0 = 100: a crossing each time allocations minus frees exceed 100 more
 * than at the last one, whatever the blocks' size (the fast path compares
 * only bytes: the count batch must still be seen in time). */
static void count_threshold_of(size_t size)
{
	enum { N = 1000 };
	static void *p[N];
	struct gcshim_stats a, b, c, d;
	long cnt[3];

	cr_assert_eq(gcshim_set_threshold(100, 10, 10), 0);
	a = snap();
	for (int i = 0; i < N; i++)
		p[i] = malloc(size);
	b = snap();
	gcshim_get_count(cnt);
	for (int i = 0; i < N; i++)
		free(p[i]);
	c = snap();
	cr_expect(D(count_triggers) >= 7 && D(count_triggers) <= 11,
		  "count_triggers %+lld for %d live blocks of %zu bytes under t0 = 100",
		  D(count_triggers), N, size);
	cr_expect(cnt[0] >= 0 && cnt[0] <= 100 + 25 + 1,
		  "count0 %ld right after crossings (%zu-byte blocks)", cnt[0], size);
	cr_expect_eq(c.count_triggers - b.count_triggers, 0, "frees triggered %lld",
		     (long long)(c.count_triggers - b.count_triggers));
	/* alloc/free pairs never grow the count */
	for (int i = 0; i < 5000; i++)
		free(malloc(size));
	d = snap();
	cr_expect_eq(d.count_triggers - c.count_triggers, 0);
}

Test(triggers, count_threshold)
{
	count_threshold_of(16);
}

Test(triggers, count_threshold_mid_sized_blocks)
{
	count_threshold_of(512);
}

Test(triggers, count_threshold_off)
{
	enum { N = 1000 };
	static void *p[N];
	struct gcshim_stats a, b;

	cr_assert_eq(gcshim_set_threshold(0, 10, 10), 0);
	a = snap();
	for (int i = 0; i < N; i++)
		p[i] = malloc(16);
	b = snap();
	for (int i = 0; i < N; i++)
		free(p[i]);
	cr_expect_eq(D(count_triggers), 0);
}

/* ---- threads ------------------------------------------------------------- */

enum { NTHREADS = 4, PER_THREAD = 20000 };

static void *blocks[NTHREADS][PER_THREAD];
static pthread_barrier_t ready, go, allocated, handover, finish_line, release;

/* Each phase ends at a barrier the main thread also waits at, and takes
 * its snapshots between two of them, while no worker runs.  (A worker's
 * first moments belong to the pthread_create wrapper, which frees its
 * start record: that is before `ready`.) */
static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg, other = (id + 1) % NTHREADS;

	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&go);
	for (int i = 0; i < PER_THREAD; i++)
		blocks[id][i] = malloc((size_t)(i % 700) * 8 + (i % 97 == 0 ? 40000 : 1));
	pthread_barrier_wait(&allocated);
	pthread_barrier_wait(&handover);
	for (int i = 0; i < PER_THREAD; i++)
		free(blocks[other][i]);
	pthread_barrier_wait(&finish_line);
	pthread_barrier_wait(&release);
	return NULL;
}

/* Blocks allocated in one thread and freed in another: the totals still
 * balance exactly.  The snapshots are taken while the workers are alive
 * and waiting, so thread start and exit are not in the window. */
Test(threads, cross_thread_frees_balance)
{
	pthread_t t[NTHREADS];
	struct gcshim_stats a, mid, b, after;
	int64_t m0, m1;

	pthread_barrier_t *all[] = { &ready, &go, &allocated, &handover, &finish_line, &release };

	for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++)
		pthread_barrier_init(all[i], NULL, NTHREADS + 1);
	for (int i = 0; i < NTHREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i), 0);
	pthread_barrier_wait(&ready);
	a = snap();
	m0 = gcshim_mem_alloc();
	pthread_barrier_wait(&go);
	pthread_barrier_wait(&allocated);
	mid = snap();
	pthread_barrier_wait(&handover);
	pthread_barrier_wait(&finish_line);
	b = snap();
	m1 = gcshim_mem_alloc();
	pthread_barrier_wait(&release);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	after = snap();

	int64_t bytes = 0;
	for (int id = 0; id < NTHREADS; id++)
		for (int i = 0; i < PER_THREAD; i++)
			bytes += (int64_t)sc_usable(sc_request((size_t)(i % 700) * 8 + (i % 97 == 0 ? 40000 : 1)));

	cr_expect_eq(mid.allocations - a.allocations, NTHREADS * PER_THREAD);
	cr_expect_eq(mid.live_blocks - a.live_blocks, NTHREADS * PER_THREAD);
	cr_expect_eq(mid.mem_alloc - a.mem_alloc, bytes, "mem_alloc %+lld, usable sizes %lld",
		     (long long)(mid.mem_alloc - a.mem_alloc), (long long)bytes);
	cr_expect_eq(D(allocations), NTHREADS * PER_THREAD, "allocations %+lld", D(allocations));
	cr_expect_eq(D(frees), NTHREADS * PER_THREAD, "frees %+lld", D(frees));
	cr_expect_eq(D(live_blocks), 0);
	cr_expect_eq(D(bytes_allocated), bytes);
	cr_expect_eq(D(bytes_freed), bytes);
	cr_expect_eq(m1, m0, "mem_alloc %+lld after every block was freed", (long long)(m1 - m0));
	cr_expect_eq(D(invalid_frees) + D(foreign_frees), 0);
	cr_expect_eq(b.threads - a.threads, 0, "the workers were counted before and after");
	cr_expect(a.threads >= NTHREADS + 1, "threads %lld", (long long)a.threads);
	/* the peak is built from published deltas: each thread may hold back
	 * up to 64 KiB */
	cr_expect(b.peak_mem_alloc >= mid.mem_alloc - (NTHREADS + 2) * 65536,
		  "peak %lld, mem_alloc was %lld", (long long)b.peak_mem_alloc,
		  (long long)mid.mem_alloc);
	/* the workers are gone: their records are free, their totals stay */
	cr_expect_eq(after.threads, a.threads - NTHREADS, "threads %lld after join (%lld before)",
		     (long long)after.threads, (long long)a.threads);
	cr_expect(after.allocations - a.allocations >= NTHREADS * PER_THREAD);
}

/* Many threads racing malloc/free of the same classes; every thread's
 * work balances. */
static void *churn(void *arg)
{
	void *keep[64] = { 0 };

	(void)arg;
	for (int i = 0; i < 200000; i++) {
		int k = i % 64;

		free(keep[k]);
		keep[k] = malloc((size_t)(i % 300) + 1);
	}
	for (int k = 0; k < 64; k++)
		free(keep[k]);
	return NULL;
}

Test(threads, churn_balances)
{
	pthread_t t[8];
	struct gcshim_stats a, b;

	a = snap();
	for (int i = 0; i < 8; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, churn, NULL), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	b = snap();
	/* thread start-up allocates a little (glibc, the create wrapper):
	 * compare what the workers did with what is left */
	cr_expect(D(allocations) >= 8 * 200000, "allocations %+lld", D(allocations));
	cr_expect(D(live_blocks) >= 0 && D(live_blocks) <= 8 * 4, "live_blocks %+lld",
		  D(live_blocks));
	cr_expect(D(mem_alloc) >= 0 && D(mem_alloc) <= 8 * 4096, "mem_alloc %+lld", D(mem_alloc));
	cr_expect_eq(D(invalid_frees) + D(foreign_frees), 0);
}

/* ---- heap limit (start-up only: a child process) ------------------------- */

static int failures;

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	failures++;
	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static struct gcshim_stats st(void)
{
	return snap();
}

static void *limit_racer(void *arg)
{
	void **mine = arg;
	int n = 0;

	while (n < 4096 && (mine[n] = malloc(100000)))
		n++;
	return (void *)(intptr_t)n;
}

#define LIMIT (64LL << 20)

static int heap_limit_mode(void)
{
	struct gcshim_stats a, b;
	static void *blocks_[1024];
	int64_t m0, u, held;
	void *p, *q;
	int n = 0, err, rc;

	a = st();
	check(a.heap_limit == LIMIT, "heap_limit %lld", (long long)a.heap_limit);
	check(a.mem_free == LIMIT - a.mem_alloc, "mem_free %lld, limit - mem_alloc %lld",
	      (long long)a.mem_free, (long long)(LIMIT - a.mem_alloc));
	check(gcshim_mem_free() == LIMIT - gcshim_mem_alloc(), "gcshim_mem_free %lld",
	      (long long)gcshim_mem_free());
	check(atomic_load(&gc.live) == gcshim_mem_alloc(), "reserved %lld, mem_alloc %lld",
	      (long long)atomic_load(&gc.live), (long long)gcshim_mem_alloc());

	/* one block larger than the limit */
	m0 = gcshim_mem_alloc();
	errno = 0;
	p = malloc(LIMIT + 1);
	err = errno;
	b = st();
	check(p == NULL, "malloc(limit + 1) succeeded");
	check(err == ENOMEM, "errno %d", err);
	check(b.limit_failures - a.limit_failures == 1, "limit_failures %+lld",
	      (long long)(b.limit_failures - a.limit_failures));
	check(b.limit_triggers - a.limit_triggers == 1, "limit_triggers %+lld",
	      (long long)(b.limit_triggers - a.limit_triggers));
	check(b.alloc_failures - a.alloc_failures == 1, "alloc_failures %+lld",
	      (long long)(b.alloc_failures - a.alloc_failures));
	check(gcshim_mem_alloc() == m0, "a refused allocation changed mem_alloc");

	/* fill up in 1 MiB blocks */
	while (n < 1024 && (blocks_[n] = malloc(1 << 20)))
		n++;
	err = errno;
	u = (int64_t)sc_usable(1 << 20);
	held = gcshim_mem_alloc();
	check(n < 1024, "no limit reached");
	check(err == ENOMEM, "errno %d at the limit", err);
	check(held <= LIMIT, "mem_alloc %lld beyond the limit", (long long)held);
	check(held + u > LIMIT, "stopped early: mem_alloc %lld, one more is %lld", (long long)held,
	      (long long)u);
	check(gcshim_mem_free() == LIMIT - held, "mem_free %lld at the limit, want %lld",
	      (long long)gcshim_mem_free(), (long long)(LIMIT - held));
	check(st().mem_free == LIMIT - held, "stats mem_free");
	check(atomic_load(&gc.live) == held, "reserved %lld, mem_alloc %lld",
	      (long long)atomic_load(&gc.live), (long long)held);
	/* small blocks still fit in what is left, up to it */
	q = malloc((size_t)(LIMIT - held) > 64 ? 64 : 1);
	check(q != NULL || LIMIT - held < 64, "a small block did not fit in %lld",
	      (long long)(LIMIT - held));
	free(q);

	/* failing realloc keeps the block */
	memset(blocks_[0], 0x3c, 1 << 20);
	errno = 0;
	q = realloc(blocks_[0], 32 << 20);
	err = errno;
	check(q == NULL && err == ENOMEM, "realloc beyond the limit: %p errno %d", q, err);
	check(((unsigned char *)blocks_[0])[(1 << 20) - 1] == 0x3c, "realloc lost the block");
	check(malloc_usable_size(blocks_[0]) == (size_t)u, "block no longer live");
	rc = posix_memalign(&q, 4096, 32 << 20);
	check(rc == ENOMEM, "posix_memalign beyond the limit: %d", rc);
	q = calloc(32, 1 << 20);
	check(q == NULL, "calloc beyond the limit");

	/* disabled: refused all the same, but no trigger */
	a = st();
	gcshim_disable();
	p = malloc(8 << 20);
	gcshim_enable();
	b = st();
	check(p == NULL, "disabled: malloc succeeded");
	check(b.limit_failures - a.limit_failures == 1, "disabled: limit_failures %+lld",
	      (long long)(b.limit_failures - a.limit_failures));
	check(b.limit_triggers - a.limit_triggers == 0, "disabled: limit_triggers %+lld",
	      (long long)(b.limit_triggers - a.limit_triggers));

	/* freeing gives the room back */
	for (int i = 0; i < n; i++)
		free(blocks_[i]);
	check(gcshim_mem_alloc() == m0, "mem_alloc %lld after freeing, was %lld",
	      (long long)gcshim_mem_alloc(), (long long)m0);
	check(gcshim_mem_free() == LIMIT - m0, "mem_free %lld after freeing",
	      (long long)gcshim_mem_free());
	check(atomic_load(&gc.live) == m0, "reserved %lld after freeing, mem_alloc %lld",
	      (long long)atomic_load(&gc.live), (long long)m0);
	/* a realloc that moves needs room for both blocks: 16 + 24 MiB fit */
	p = malloc(16 << 20);
	check(p != NULL, "16 MiB do not fit after freeing");
	q = realloc(p, 24 << 20);
	check(q != NULL, "realloc within the limit failed");
	check(gcshim_mem_alloc() == m0 + (int64_t)sc_usable(24 << 20), "mem_alloc after realloc");
	free(q);
	check(atomic_load(&gc.live) == m0, "reserved %lld after realloc and free, want %lld",
	      (long long)atomic_load(&gc.live), (long long)m0);

	/* threads racing for the last bytes never exceed the limit together */
	{
		static void *mine[4][4096];
		pthread_t t[4];
		int64_t total = 0, peak;
		void *ret;

		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, limit_racer, mine[i]);
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], &ret);
			total += (intptr_t)ret;
		}
		held = gcshim_mem_alloc();
		peak = st().peak_mem_alloc;
		check(held <= LIMIT, "racing threads hold %lld", (long long)held);
		check(peak <= LIMIT, "peak %lld beyond the limit", (long long)peak);
		check(held + (int64_t)sc_usable(100000) > LIMIT - 8192,
		      "racers stopped early at %lld", (long long)held);
		check(total > 0, "no racer allocated");
		for (int i = 0; i < 4; i++)
			for (int k = 0; k < 4096 && mine[i][k]; k++)
				free(mine[i][k]);
		check(atomic_load(&gc.live) == gcshim_mem_alloc(), "reserved %lld, mem_alloc %lld",
		      (long long)atomic_load(&gc.live), (long long)gcshim_mem_alloc());
	}
	printf("done %d failures\n", failures);
	return failures ? 1 : 0;
}

/* Shrinking a large block never has to move it (jemalloc shrinks large
 * extents in place), so under a limit it must not need room for a second
 * copy: gcshim(7) says only "a realloc that has to move its block needs
 * room for the old and the new block at the same time". */
static int limit_shrink_mode(void)
{
	void *a = malloc(40 << 20), *b = malloc(10 << 20), *q;
	int64_t before = gcshim_mem_alloc();
	int err;

	check(a && b, "setup: 50 MiB under a 64 MiB limit");
	if (!a || !b)
		return 1;
	memset(a, 0x11, 20 << 20);
	errno = 0;
	q = realloc(a, 20 << 20); /* 40 -> 20 MiB: frees room, needs none */
	err = errno;
	check(q != NULL, "shrinking realloc 40 MiB -> 20 MiB failed (errno %d) with "
	      "mem_alloc %lld under a limit of %lld", err, (long long)before, LIMIT);
	if (q) {
		check(((unsigned char *)q)[(20 << 20) - 1] == 0x11, "contents lost");
		check(gcshim_mem_alloc() == before - (20 << 20), "mem_alloc %lld after shrink",
		      (long long)gcshim_mem_alloc());
		check(atomic_load(&gc.live) == gcshim_mem_alloc(), "reserved %lld, mem_alloc %lld",
		      (long long)atomic_load(&gc.live), (long long)gcshim_mem_alloc());
	}
	free(q ? q : a);
	free(b);
	printf("done %d failures\n", failures);
	return failures ? 1 : 0;
}

int unit_mode(const char *mode)
{
	if (!strcmp(mode, "heap-limit"))
		return heap_limit_mode();
	if (!strcmp(mode, "limit-shrink"))
		return limit_shrink_mode();
	printf("unknown mode %s\n", mode);
	return 98;
}

Test(heap_limit, enforced_from_the_environment)
{
	static const char *const env[] = { "GCSHIM_HEAP_LIMIT=64M", "GCSHIM_SOCKET=0", NULL };
	static char out[16384];
	int rc = unit_spawn("heap-limit", env, out, sizeof(out));

	cr_expect_eq(rc, 0, "child exited with %d:\n%s", rc, out);
	cr_expect(strstr(out, "done 0 failures") != NULL, "%s", out);
}

Test(heap_limit, shrinking_realloc_needs_no_room)
{
	static const char *const env[] = { "GCSHIM_HEAP_LIMIT=64M", "GCSHIM_SOCKET=0", NULL };
	static char out[4096];
	int rc = unit_spawn("limit-shrink", env, out, sizeof(out));

	cr_expect_eq(rc, 0, "child exited with %d:\n%s", rc, out);
}

/* Without the variable there is no limit. */
Test(heap_limit, none_by_default)
{
	struct gcshim_stats a = snap();
	void *p = malloc(200 << 20);

	cr_expect_eq(a.heap_limit, 0);
	cr_expect_eq(a.mem_free, -1);
	cr_expect_eq(gcshim_mem_free(), -1);
	cr_expect_not_null(p);
	free(p);
}
