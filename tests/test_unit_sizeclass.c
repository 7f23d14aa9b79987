/* Unit tests of lib/platform/sizeclass.h against the jemalloc linked into the shim:
 * sc_usable(n) must be exactly what jemalloc hands out for n bytes, or the
 * object map and mem_alloc would disagree with the heap. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sizeclass.h"

/* jemalloc's nallocx under the name the build gave it (lib/jemalloc.syms). */
size_t gsje_nallocx(size_t, int);
int gsje_mallctl(const char *, void *, size_t *, void *, size_t);

Test(sizeclass, usable_matches_nallocx_small)
{
	unsigned bad = 0;

	for (size_t n = 1; n <= 65536; n++) {
		size_t want = gsje_nallocx(n, 0), got = sc_usable(n);

		if (got != want && bad++ < 10)
			cr_expect_eq(got, want, "sc_usable(%zu) = %zu, nallocx = %zu", n, got, want);
	}
	cr_expect_eq(bad, 0, "%u sizes in 1..65536 disagree", bad);
}

/* Around every power of two and every class boundary up to 1 GiB, plus a
 * deterministic pseudo-random sample. */
Test(sizeclass, usable_matches_nallocx_large)
{
	unsigned bad = 0, checked = 0;
	uint64_t x = 0x9e3779b97f4a7c15ULL;

#define CHECK(nn)                                                                    \
	do {                                                                         \
		size_t n_ = (nn), w_ = gsje_nallocx(n_, 0), g_ = sc_usable(n_);      \
		checked++;                                                           \
		if (g_ != w_ && bad++ < 10)                                          \
			cr_expect_eq(g_, w_, "sc_usable(%zu) = %zu, nallocx = %zu", n_, \
				     g_, w_);                                        \
	} while (0)

	for (unsigned lg = 16; lg <= 30; lg++) {
		size_t base = (size_t)1 << lg, step = base >> 2;

		for (size_t c = base; c < 2 * base; c += step) {
			for (long d = -3; d <= 3; d++)
				CHECK(c + (size_t)d);
			CHECK(c + step / 2);
		}
	}
	CHECK((size_t)1 << 30);
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		CHECK(65537 + x % ((1UL << 30) - 65536));
	}
#undef CHECK
	cr_expect_eq(bad, 0, "%u of %u sampled sizes disagree", bad, checked);
}

/* Beyond 1 GiB nallocx still answers without allocating. */
Test(sizeclass, usable_matches_nallocx_huge)
{
	for (unsigned lg = 31; lg <= 48; lg++) {
		size_t base = (size_t)1 << lg, step = base >> 2;

		for (size_t c = base; c < 2 * base; c += step)
			for (long d = -1; d <= 1; d++) {
				size_t n = c + (size_t)d;

				cr_expect_eq(sc_usable(n), gsje_nallocx(n, 0),
					     "sc_usable(%zu) = %zu, nallocx = %zu", n,
					     sc_usable(n), gsje_nallocx(n, 0));
			}
	}
}

/* Every class: size(index(u)) == u, index(size(i)) == i, indices dense and
 * increasing, and sc_usable(u) == u (a class is its own usable size). */
Test(sizeclass, index_and_size_round_trip)
{
	unsigned prev = 0, classes = 0;
	size_t u = 8;

	cr_expect_eq(sc_index(8), 0);
	cr_expect_eq(sc_size(0), 8);
	while (u <= ((size_t)1 << 50)) {
		unsigned i = sc_index(u);

		cr_assert_eq(sc_size(i), u, "sc_size(sc_index(%zu)) = %zu (index %u)", u,
			     sc_size(i), i);
		cr_assert_eq(sc_usable(u), u, "sc_usable(%zu) = %zu", u, sc_usable(u));
		if (classes)
			cr_assert_eq(i, prev + 1, "index of %zu is %u after %u", u, i, prev);
		prev = i;
		classes++;
		u = sc_usable(u + 1);
	}
	/* 1 + 8 classes up to 128, then 4 per doubling */
	cr_expect_eq(sc_index(128), 8);
	cr_expect_eq(sc_index(160), 9);
	cr_expect_eq(sc_index(256), 12);
	cr_expect_eq(sc_index(SC_SMALL_MAX), 9 + 6 * 4 + 2, "14336 = 8K + 3 * 2K");
	cr_expect_eq(sc_size(9 + 6 * 4 + 2), SC_SMALL_MAX);
	/* the page table stores index + 1 in 31 bits */
	cr_expect(sc_index(SC_MAX) + 1 < 0x80000000u);
}

Test(sizeclass, index_is_monotonic)
{
	unsigned prev = 0;

	for (size_t n = 1; n <= 1 << 20; n++) {
		unsigned i = sc_index(sc_usable(n));

		cr_assert(i >= prev, "sc_index(sc_usable(%zu)) = %u < %u", n, i, prev);
		cr_assert(i <= prev + 1, "sc_index(sc_usable(%zu)) = %u skips after %u", n, i, prev);
		cr_assert(sc_size(i) >= n, "class %u (%zu) too small for %zu", i, sc_size(i), n);
		prev = i;
	}
	/* and sc_usable is the smallest class that fits */
	for (size_t n = 9; n <= 1 << 20; n++) {
		unsigned i = sc_index(sc_usable(n));

		cr_assert(sc_size(i - 1) < n, "class %u (%zu) would fit %zu", i - 1,
			  sc_size(i - 1), n);
	}
}

/* SC_SMALL_MAX is jemalloc's largest slab (bin) class. */
Test(sizeclass, small_max_is_jemalloc_small_max)
{
	unsigned nbins = 0;
	size_t sz = sizeof(nbins), binsize = 0;
	char name[64];

	cr_assert_eq(gsje_mallctl("arenas.nbins", &nbins, &sz, NULL, 0), 0);
	cr_assert(nbins > 0);
	snprintf(name, sizeof(name), "arenas.bin.%u.size", nbins - 1);
	sz = sizeof(binsize);
	cr_assert_eq(gsje_mallctl(name, &binsize, &sz, NULL, 0), 0);
	cr_expect_eq(binsize, SC_SMALL_MAX, "jemalloc's largest bin is %zu", binsize);
	/* every bin's size is a class of ours, in order */
	for (unsigned b = 0; b < nbins; b++) {
		snprintf(name, sizeof(name), "arenas.bin.%u.size", b);
		sz = sizeof(binsize);
		cr_assert_eq(gsje_mallctl(name, &binsize, &sz, NULL, 0), 0);
		cr_expect_eq(sc_size(b), binsize, "bin %u: jemalloc %zu, sc_size %zu", b,
			     binsize, sc_size(b));
	}
	cr_expect_eq(sc_usable(SC_SMALL_MAX + 1), 16384);
}
