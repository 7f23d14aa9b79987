/* Unit tests of lib/objmap.[ch].
 *
 * The shim linked into this program owns the global `om` and has set it up
 * for the live heap before main.  So the map is tested three ways:
 *  - on real blocks from malloc() (the shim's), against malloc_usable_size
 *    and jemalloc's own sallocx;
 *  - on synthetic blocks registered near the end of the reserved range,
 *    which the heap's bump pointer never reaches in a test (om_find reads
 *    only the side tables, never the heap, so nothing there is mapped);
 *  - om_init itself on a private range, with `om` saved and restored around
 *    a window in which nothing allocates. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bcache.h"
#include "objmap.h"

size_t gsje_sallocx(const void *, int);

#define PAGE ((uintptr_t)1 << OM_PAGE_LG)

static void expect_find(uintptr_t word, uintptr_t start, size_t size, const char *what)
{
	uintptr_t s = 0;
	size_t sz = 0;
	bool found = om_find(word, &s, &sz);

	cr_expect(found, "%s: om_find(start + %zu) found nothing", what, (size_t)(word - start));
	if (found)
		cr_expect(s == start && sz == size,
			  "%s: om_find(start + %zu) = (start %+ld, %zu), want (start, %zu)",
			  what, (size_t)(word - start), (long)(s - start), sz, size);
}

/* The start of the live block containing word, 0 if none: for checks that
 * must run before anything (an assertion included) may allocate. */
static uintptr_t start_of(uintptr_t word)
{
	uintptr_t s = 0;
	size_t sz;

	return om_find(word, &s, &sz) ? s : 0;
}

static void expect_not_in(uintptr_t word, uintptr_t start, const char *what)
{
	uintptr_t s = 0;
	size_t sz = 0;

	if (om_find(word, &s, &sz))
		cr_expect(s != start, "%s: om_find(start + %ld) still finds the block (size %zu)",
			  what, (long)(word - start), sz);
}

/* ---- real blocks --------------------------------------------------------- */

static const size_t sizes[] = { 8, 24, 100, 1000, 5000, 14336, 20000, 1 << 20, 10 << 20 };

Test(objmap_live, usable_and_interior_pointers)
{
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		size_t n = sizes[i], u;
		char *p = malloc(n);
		char what[32];
		unsigned misses = 0;

		snprintf(what, sizeof(what), "malloc(%zu)", n);
		cr_assert_not_null(p);
		cr_expect(om_in_heap(p), "%s: not in the heap range", what);
		u = om_usable(p);
		cr_expect_eq(u, malloc_usable_size(p), "%s: om_usable %zu, malloc_usable_size %zu",
			     what, u, malloc_usable_size(p));
		cr_expect_eq(u, sc_usable(sc_request(n)), "%s: om_usable %zu, sc_usable %zu", what, u,
			     sc_usable(sc_request(n)));
		cr_expect_eq(u, gsje_sallocx(p, 0), "%s: om_usable %zu, jemalloc says %zu", what,
			     u, gsje_sallocx(p, 0));
		memset(p, 0xab, u); /* the whole usable size is ours */
		for (size_t k = 0; k < u; k++) {
			uintptr_t s = 0;
			size_t sz = 0;

			if ((!om_find((uintptr_t)p + k, &s, &sz) || s != (uintptr_t)p || sz != u) &&
			    misses++ < 3)
				expect_find((uintptr_t)p + k, (uintptr_t)p, u, what);
		}
		cr_expect_eq(misses, 0, "%s: %u interior addresses not found", what, misses);
		/* interior and unaligned addresses are not starts */
		if (u > 8)
			cr_expect_eq(om_usable(p + 8), 0, "%s", what);
		cr_expect_eq(om_usable(p + 1), 0, "%s", what);
		expect_not_in((uintptr_t)p + u, (uintptr_t)p, what);
		/* freed: look before anything can reuse the block */
		free(p);
		/* a freed small block may wait in the thread's cache, still
		 * registered: the collector sees the map with caches hidden */
		bcache_hide();
		size_t after = om_usable(p);
		uintptr_t f0 = start_of((uintptr_t)p), f1 = start_of((uintptr_t)p + u / 2),
			  f2 = start_of((uintptr_t)p + u - 1);
		bcache_unhide();

		cr_expect_eq(after, 0, "%s: freed block still has a size", what);
		cr_expect(f0 != (uintptr_t)p && f1 != (uintptr_t)p && f2 != (uintptr_t)p,
			  "%s: freed block still found", what);
	}
}

/* Neighbours in one slab: each address maps to its own block, and a
 * freed neighbour's addresses map to none. */
Test(objmap_live, slab_neighbours)
{
	static const size_t nsz[] = { 8, 16, 48, 112, 160, 640, 3072, 14336 };

	for (size_t j = 0; j < sizeof(nsz) / sizeof(*nsz); j++) {
		enum { N = 64 };
		char *b[N];
		size_t u = sc_usable(sc_request(nsz[j]));
		char what[48];

		for (int i = 0; i < N; i++)
			cr_assert_not_null(b[i] = malloc(nsz[j]));
		size_t usable_after[N];
		uintptr_t first[N], last[N];

		for (int i = 0; i < N; i += 2)
			free(b[i]);
		/* look before an assertion may reuse a freed slot */
		bcache_hide();
		for (int i = 0; i < N; i++) {
			usable_after[i] = om_usable(b[i]);
			first[i] = start_of((uintptr_t)b[i]);
			last[i] = start_of((uintptr_t)b[i] + u - 1);
		}
		bcache_unhide();
		for (int i = 0; i < N; i++) {
			snprintf(what, sizeof(what), "size %zu block %d", nsz[j], i);
			if (i % 2) {
				cr_expect_eq(usable_after[i], u, "%s", what);
				cr_expect_eq(first[i], (uintptr_t)b[i], "%s", what);
				cr_expect_eq(last[i], (uintptr_t)b[i], "%s", what);
				expect_find((uintptr_t)b[i] + u / 2, (uintptr_t)b[i], u, what);
			} else {
				cr_expect_eq(usable_after[i], 0, "%s", what);
				cr_expect_neq(first[i], (uintptr_t)b[i], "%s: freed, still found", what);
				cr_expect_neq(last[i], (uintptr_t)b[i], "%s: freed, still found", what);
			}
		}
		for (int i = 1; i < N; i += 2)
			free(b[i]);
	}
}

Test(objmap_live, aligned_blocks)
{
	static const size_t aligns[] = { 32, 64, 256, 4096, 65536 };

	for (size_t i = 0; i < sizeof(aligns) / sizeof(*aligns); i++) {
		void *p = NULL;
		size_t u;

		cr_assert_eq(posix_memalign(&p, aligns[i], 100), 0);
		cr_expect_eq((uintptr_t)p % aligns[i], 0);
		u = om_usable(p);
		cr_expect(u >= 100, "align %zu: usable %zu", aligns[i], u);
		cr_expect_eq(u, malloc_usable_size(p));
		cr_expect_eq(u, gsje_sallocx(p, 0), "align %zu: om %zu, jemalloc %zu", aligns[i],
			     u, gsje_sallocx(p, 0));
		expect_find((uintptr_t)p + u - 1, (uintptr_t)p, u, "aligned");
		free(p);
		bcache_hide();
		u = om_usable(p);
		bcache_unhide();
		cr_expect_eq(u, 0);
	}
}

/* Large blocks that grow and shrink in place keep their map exact. */
Test(objmap_live, large_realloc)
{
	char *p = malloc(1 << 20), *q;
	size_t u;

	cr_assert_not_null(p);
	q = realloc(p, 3 << 20);
	cr_assert_not_null(q);
	u = om_usable(q);
	cr_expect_eq(u, sc_usable(3 << 20));
	cr_expect_eq(u, gsje_sallocx(q, 0));
	expect_find((uintptr_t)q + u - 1, (uintptr_t)q, u, "grown");
	expect_find((uintptr_t)q + (2 << 20), (uintptr_t)q, u, "grown");
	p = q;
	q = realloc(p, 600 << 10);
	cr_assert_not_null(q);
	u = om_usable(q);
	cr_expect_eq(u, sc_usable(600 << 10));
	cr_expect_eq(u, gsje_sallocx(q, 0));
	expect_find((uintptr_t)q + u - 1, (uintptr_t)q, u, "shrunk");
	expect_not_in((uintptr_t)q + u, (uintptr_t)q, "shrunk");
	expect_not_in((uintptr_t)q + (2 << 20), (uintptr_t)q, "shrunk");
	free(q);
	uintptr_t f = start_of((uintptr_t)q);

	cr_expect_neq(f, (uintptr_t)q, "freed block still found");
}

static int static_var;

Test(objmap_live, foreign_pointers)
{
	int local;
	void *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t s;
	size_t sz;

	cr_assert_neq(m, MAP_FAILED);
	cr_expect_not(om_in_heap(&local), "stack");
	cr_expect_not(om_in_heap(m), "mmap");
	cr_expect_not(om_in_heap(&static_var), "data");
	cr_expect_not(om_in_heap((void *)(uintptr_t)&start_of), "text");
	cr_expect_not(om_in_heap(NULL));
	cr_expect_not(om_find((uintptr_t)&local, &s, &sz));
	cr_expect_not(om_find((uintptr_t)m, &s, &sz));
	cr_expect_not(om_find(0, &s, &sz));
	cr_expect_not(om_in_heap((void *)(om.base - 1)));
	cr_expect(om_in_heap((void *)om.base));
	cr_expect(om_in_heap((void *)(om.base + om.size - 1)));
	cr_expect_not(om_in_heap((void *)(om.base + om.size)));
	cr_expect_not(om_find(om.base + om.size, &s, &sz));
	cr_expect_not(om_find(om.base - 8, &s, &sz));
	munmap(m, 8192);
}

/* ---- synthetic blocks at the far end of the reservation ------------------ */

/* A page-aligned spot 64 MiB below the end of the reserved range. */
static uintptr_t tail(void)
{
	cr_assert(om.size >= (256u << 20), "reservation of %zu bytes is too small", om.size);
	return (om.base + om.size - (64u << 20)) & ~(PAGE - 1);
}

Test(objmap_synthetic, small_blocks_in_a_page)
{
	uintptr_t t = tail();

	for (int i = 0; i < 4; i++)
		om_insert((void *)(t + 48 * (uintptr_t)i), 48);
	for (int i = 0; i < 4; i++) {
		uintptr_t b = t + 48 * (uintptr_t)i;

		cr_expect_eq(om_usable((void *)b), 48);
		for (uintptr_t k = 0; k < 48; k++)
			expect_find(b + k, b, 48, "class 48");
	}
	cr_expect_eq(om_remove((void *)(t + 48)), 48);
	cr_expect_eq(om_remove((void *)(t + 48)), 0, "double remove");
	cr_expect_eq(om_remove((void *)(t + 49)), 0, "unaligned remove");
	cr_expect_eq(om_remove((void *)(t + 56)), 0, "interior remove");
	cr_expect_eq(om_usable((void *)(t + 48)), 0);
	expect_not_in(t + 48, t + 48, "removed");
	expect_not_in(t + 95, t + 48, "removed");
	{
		uintptr_t s;
		size_t sz;

		cr_expect_not(om_find(t + 60, &s, &sz), "a removed block's interior found (%+ld)",
			      (long)(s - t));
	}
	expect_find(t + 47, t, 48, "neighbour below");
	expect_find(t + 96, t + 96, 48, "neighbour above");
	for (int i = 0; i < 4; i++)
		om_remove((void *)(t + 48 * (uintptr_t)i));
	cr_expect_eq(om_usable((void *)t), 0);
}

/* A 14336-byte block reaches 14335 bytes past its start: om_find looks
 * back exactly that far. */
Test(objmap_synthetic, largest_small_class_spans_pages)
{
	uintptr_t t = tail() + PAGE - 8; /* starts 8 bytes before a page boundary */
	uintptr_t s;
	size_t sz;

	om_insert((void *)t, SC_SMALL_MAX);
	for (uintptr_t k = 0; k < SC_SMALL_MAX; k += 8)
		expect_find(t + k, t, SC_SMALL_MAX, "14336");
	expect_find(t + SC_SMALL_MAX - 1, t, SC_SMALL_MAX, "14336");
	cr_expect_not(om_find(t + SC_SMALL_MAX, &s, &sz));
	cr_expect_not(om_find(t - 1, &s, &sz));
	cr_expect_eq(om_remove((void *)t), SC_SMALL_MAX);
	cr_expect_not(om_find(t + 100, &s, &sz));
}

Test(objmap_synthetic, large_block_pages)
{
	uintptr_t t = tail() + 16 * PAGE;
	size_t u = 10 * PAGE; /* 40960: a large class */
	uintptr_t s;
	size_t sz;

	cr_assert_eq(sc_usable(u), u);
	om_insert((void *)t, u);
	cr_expect_eq(om_usable((void *)t), u);
	for (uintptr_t k = 0; k < u; k += 8)
		if (k % PAGE < 16 || k % PAGE > PAGE - 16)
			expect_find(t + k, t, u, "large");
	expect_find(t + u - 1, t, u, "large");
	cr_expect_not(om_find(t + u, &s, &sz));
	cr_expect_not(om_find(t - 1, &s, &sz));
	/* the continuation pages point back to the first */
	for (uintptr_t q = 1; q < 10; q++)
		cr_expect_eq(atomic_load(&om.pages[((t - om.base) >> OM_PAGE_LG) + q]),
			     OM_CONT | (uint32_t)q);

	/* shrink in place to 20480, then grow to 65536 */
	om_resize((void *)t, u, 5 * PAGE);
	expect_find(t + 5 * PAGE - 1, t, 5 * PAGE, "shrunk");
	cr_expect_not(om_find(t + 5 * PAGE, &s, &sz));
	cr_expect_not(om_find(t + 9 * PAGE, &s, &sz));
	om_resize((void *)t, 5 * PAGE, 16 * PAGE);
	expect_find(t + 16 * PAGE - 1, t, 16 * PAGE, "grown");
	expect_find(t + 12 * PAGE + 100, t, 16 * PAGE, "grown");

	cr_expect_eq(om_remove((void *)t), 16 * PAGE);
	for (uintptr_t k = 0; k < 16 * PAGE; k += PAGE / 2)
		cr_expect_not(om_find(t + k, &s, &sz), "freed large block found at +%zu",
			      (size_t)k);
	for (uintptr_t q = 1; q < 16; q++)
		cr_expect_eq(atomic_load(&om.pages[((t - om.base) >> OM_PAGE_LG) + q]), 0,
			     "continuation page %zu not cleared", (size_t)q);
}

/* A page reused for another class: the stale entry must not show. */
Test(objmap_synthetic, page_reuse)
{
	uintptr_t t = tail() + 64 * PAGE;
	uintptr_t s;
	size_t sz;

	om_insert((void *)t, 8 * PAGE);       /* large block over 8 pages */
	cr_expect_eq(om_remove((void *)t), 8 * PAGE);
	om_insert((void *)(t + 3 * PAGE), 64); /* a small block in its 4th page */
	expect_find(t + 3 * PAGE + 63, t + 3 * PAGE, 64, "reused");
	cr_expect_not(om_find(t + 3 * PAGE + 64, &s, &sz));
	cr_expect_not(om_find(t + 2 * PAGE, &s, &sz));
	om_insert((void *)t, 32);              /* and a small one in its first */
	expect_find(t + 31, t, 32, "first page reused");
	cr_expect_not(om_find(t + 32, &s, &sz));
	cr_expect_not(om_find(t + PAGE, &s, &sz));
	om_remove((void *)t);
	om_remove((void *)(t + 3 * PAGE));
}

/* Two racing removals of one block: exactly one gets its size. */
Test(objmap_synthetic, remove_is_exactly_once)
{
	uintptr_t t = tail() + 128 * PAGE;
	size_t total = 0;

	for (int i = 0; i < 512; i++)
		om_insert((void *)(t + 16 * (uintptr_t)i), 16);
	for (int i = 0; i < 512; i++)
		for (int j = 0; j < 2; j++)
			total += om_remove((void *)(t + 16 * (uintptr_t)i));
	cr_expect_eq(total, 512 * 16);
}

/* ---- om_init on a private range ------------------------------------------ */

Test(objmap_init, private_range)
{
	struct objmap saved = om;
	size_t size = 64u << 20;
	void *range = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			   -1, 0);
	bool ok, in_lo, in_hi, out_hi, out_lo, found0, foundlast, foundafter, live_in;
	uintptr_t base = (uintptr_t)range, s0 = 0, sl = 0, sa;
	size_t z0 = 0, zl = 0, za, rem0;
	struct objmap mine;

	cr_assert_neq(range, MAP_FAILED);
	/* From here to the restore nothing may allocate: malloc() consults om. */
	ok = om_init(base, size);
	mine = om;
	in_lo = om_in_heap((void *)base);
	in_hi = om_in_heap((void *)(base + size - 1));
	out_hi = om_in_heap((void *)(base + size));
	out_lo = om_in_heap((void *)(base - 1));
	live_in = om_in_heap((void *)saved.base);
	om_insert((void *)base, 64);                   /* granule 0, word 0 */
	found0 = om_find(base + 63, &s0, &z0);
	foundafter = om_find(base + 64, &sa, &za);
	om_insert((void *)(base + size - PAGE), PAGE);   /* last page: class 4096 */
	foundlast = om_find(base + size - 1, &sl, &zl);
	rem0 = om_remove((void *)base);
	om = saved;
	/* assertions only now */
	cr_assert(ok);
	cr_expect_eq(mine.base, base);
	cr_expect_eq(mine.size, size);
	cr_expect_not_null(mine.starts);
	cr_expect_not_null(mine.pages);
	cr_expect(in_lo && in_hi);
	cr_expect(!out_hi && !out_lo);
	cr_expect_not(live_in, "the live heap is not in the private map");
	cr_expect(found0 && s0 == base && z0 == 64, "block at offset 0: %d %zu", found0, z0);
	cr_expect_not(foundafter);
	cr_expect(foundlast && sl == base + size - PAGE && zl == PAGE,
		  "last page block: %d %+ld %zu", foundlast, (long)(sl - base), zl);
	cr_expect_eq(rem0, 64);
	/* the shim's map is back */
	void *p = malloc(100);
	cr_expect(om_in_heap(p));
	cr_expect_eq(om_usable(p), 112);
	free(p);
	munmap(range, size);
}
