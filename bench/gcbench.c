/* gcbench [-m MARKERS] [-c COLLECTIONS] LIVE_NODES
 *
 * The cost of a full collection on a GCBench-shaped heap: complete binary
 * trees of two-pointer nodes, LIVE_NODES of them in all (a number, or with
 * a K or M suffix: 1M, 4M, 16M), reachable from a global, beside a few
 * large arrays of non-pointer data.  Before each timed collection some
 * temporary trees are built and dropped, so that every collection has
 * garbage to find.  COLLECTIONS (default 5) full collections are timed
 * and their medians printed.
 *
 * One source, two collectors, chosen when compiling:
 *   -DUSE_BOEHM  GC_MALLOC, GC_gcollect, GC_INIT (the Boehm collector);
 *                -m sets its number of marker threads, the initiating one
 *                included (0: the library's choice, which is one per CPU).
 *   otherwise    malloc and gcshim_collect(2), run with
 *                LD_PRELOAD=libgcshim.so; gcshim marks with one thread.
 *
 * Automatic collections are held off while the heap is built and while
 * garbage is made (GC_disable, gcshim_disable), so only the explicit
 * collections run.  The time of a collection is the wall time of the
 * call, which is what the program waits for.  The two collectors do not
 * split that time alike: gcshim frees every unreachable block before
 * returning, while Boehm sweeps most blocks lazily, during later
 * allocations.  Their own split is printed too: for gcshim the stopped
 * world, marking and freeing times from gcshim_get_stats, for Boehm the
 * marking time from its collection events.
 *
 * The last line of output is one "RESULT key=value..." line for scripts.
 * Times are in milliseconds. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "count.h"

#ifdef USE_BOEHM
#define GC_THREADS   /* declares the marker-thread calls */
#include <gc/gc.h>
#else
#include "gcshim.h"

/* Weak, so that the program starts (and says what is wrong) without the
 * shim preloaded. */
extern long gcshim_collect(int generation) __attribute__((weak));
extern int gcshim_get_stats(struct gcshim_stats *st) __attribute__((weak));
extern void gcshim_disable(void) __attribute__((weak));
extern void gcshim_enable(void) __attribute__((weak));
#endif

struct node {
	struct node *left, *right;
};

#define TREE_DEPTH 15                       /* 2^16 - 1 nodes a tree */
#define TREE_NODES ((1L << (TREE_DEPTH + 1)) - 1)
#define GARBAGE_DEPTH 12                    /* 8191 nodes a tree */
#define GARBAGE_NODES ((1L << (GARBAGE_DEPTH + 1)) - 1)
#define GARBAGE_SHARE 8                     /* garbage: 1/8 of the live nodes */
#define ARRAYS 4
#define ARRAY_BYTES (16UL << 20)
#define MAX_COLLECTIONS 101

/* The roots: everything live hangs from these globals.  Volatile, so
 * that the compiler keeps every store to them even where it can see no
 * later load: a collector finds only what is in memory. */
static struct node **volatile forest;
static uint64_t *volatile arrays[ARRAYS];

static long ntrees;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *msg)
{
	fprintf(stderr, "gcbench: %s\n", msg);
	exit(1);
}

/* --- the collector -------------------------------------------------------- */

/* Pointer-free data goes through the same allocation call as the nodes,
 * with Boehm too (GC_MALLOC, not GC_MALLOC_ATOMIC): gcshim sees only
 * malloc and cannot know that a block holds no pointers, so both
 * collectors scan the arrays word by word. */
#ifdef USE_BOEHM
#define COLLECTOR "boehm"
#define ALLOC(n) GC_MALLOC(n)
#define ARRAY_ALLOC "GC_MALLOC, scanned like the malloc blocks gcshim sees"

static double mark_start_ms, mark_ms;

static void on_event(GC_EventType e)
{
	if (e == GC_EVENT_MARK_START)
		mark_start_ms = now_ms();
	else if (e == GC_EVENT_MARK_END)
		mark_ms = now_ms() - mark_start_ms;
}

static unsigned collector_init(unsigned markers)
{
	if (markers)
		GC_set_markers_count(markers);
	GC_INIT();
	/* Marker threads start with the first collection (or thread). */
	GC_start_mark_threads();
	GC_set_on_collection_event(on_event);
	return (unsigned)GC_get_parallel() + 1;
}

static void auto_off(void)
{
	GC_disable();
}

static void auto_on(void)
{
	GC_enable();
}

struct sample {
	double pause_ms, mark_ms, reclaimed;
};

/* Boehm does not count the objects it finds unreachable, only the bytes
 * it reports reclaimed, though it sweeps most blocks lazily, later.  The
 * count printed is those bytes over the size of a node's object: an
 * estimate. */
static void collect(struct sample *s)
{
	struct GC_prof_stats_s ps;
	size_t objsize = GC_size(forest[0]);
	double t;

	mark_ms = 0;
	t = now_ms();
	GC_gcollect();
	s->pause_ms = now_ms() - t;
	s->mark_ms = mark_ms;
	GC_get_prof_stats(&ps, sizeof(ps));
	s->reclaimed = (double)(ps.bytes_reclaimed_since_gc / objsize);
}

static void print_split(const struct sample *med)
{
	printf("boehm: marking %.3f ms of the %.3f ms; node objects of %zu bytes "
	       "(a 16-byte request plus the extra byte of interior-pointer mode)\n",
	       med->mark_ms, med->pause_ms, GC_size(forest[0]));
}

static void print_result_extra(const struct sample *med)
{
	printf(" mark_ms=%.3f object_bytes=%zu", med->mark_ms, GC_size(forest[0]));
}
#else
#define COLLECTOR "gcshim"
#define ALLOC(n) malloc(n)
#define ARRAY_ALLOC "malloc"

static unsigned collector_init(unsigned markers)
{
	if (!gcshim_collect || !gcshim_get_stats || !gcshim_disable || !gcshim_enable)
		die("the gcshim API is missing: run with LD_PRELOAD=libgcshim.so");
	return 1;
}

static void auto_off(void)
{
	gcshim_disable();
}

static void auto_on(void)
{
	gcshim_enable();
}

struct sample {
	double pause_ms, mark_ms, stw_ms, stop_ms, free_ms;
	double heap_bytes, root_bytes, reclaimed, markers, roots_ms;
};

static void collect(struct sample *s)
{
	struct gcshim_stats st = { .size = sizeof(st) };
	double t;
	long r;

	t = now_ms();
	r = gcshim_collect(2);
	s->pause_ms = now_ms() - t;
	if (r < 0) {
		fprintf(stderr, "gcbench: gcshim_collect: %s\n", strerror(errno));
		exit(1);
	}
	if (gcshim_get_stats(&st))
		die("gcshim_get_stats failed");
	s->reclaimed = (double)r;
	s->stw_ms = (double)st.pause_last_ns / 1e6;
	s->mark_ms = (double)st.last_mark_ns / 1e6;
	s->stop_ms = (double)st.last_stop_ns / 1e6;
	s->free_ms = (double)st.last_sweep_ns / 1e6;
	/* Asked for, the collection also frees before it returns; an
	 * automatic one leaves that to the sweep, as Boehm's lazy sweep
	 * leaves it to later allocations: the pause compared is without it. */
	s->pause_ms -= s->free_ms;
	s->markers = (double)st.markers;
	s->roots_ms = (double)st.last_roots_ns / 1e6;
	s->heap_bytes = (double)st.last_heap_bytes;
	s->root_bytes = (double)st.last_root_bytes;
}

static void print_split(const struct sample *med)
{
	printf("gcshim: world stopped %.3f ms (stopping threads %.3f, roots %.3f, marking %.3f "
	       "with %.0f markers, finding the unmarked %.3f), freeing %.3f ms after; scanned "
	       "%.1f MiB of blocks and %.1f MiB of roots\n",
	       med->stw_ms, med->stop_ms, med->roots_ms, med->mark_ms, med->markers,
	       med->stw_ms - med->stop_ms - med->roots_ms - med->mark_ms, med->free_ms,
	       med->heap_bytes / (1 << 20), med->root_bytes / (1 << 20));
}

static void print_result_extra(const struct sample *med)
{
	printf(" mark_ms=%.3f roots_ms=%.3f stw_ms=%.3f free_ms=%.3f scanned_bytes=%.0f "
	       "root_bytes=%.0f markers_used=%.0f",
	       med->mark_ms, med->roots_ms, med->stw_ms, med->free_ms, med->heap_bytes,
	       med->root_bytes, med->markers);
}
#endif

static void *xalloc(size_t n)
{
	void *p = ALLOC(n);

	if (!p)
		die("out of memory");
	return p;
}

/* --- the heap ------------------------------------------------------------- */

static struct node *new_node(struct node *l, struct node *r)
{
	struct node *n = xalloc(sizeof(*n));

	n->left = l;
	n->right = r;
	return n;
}

/* GCBench builds half its trees top down, parent before children ... */
static void populate(int depth, struct node *n)
{
	if (depth <= 0) {
		n->left = n->right = NULL;
		return;
	}
	n->left = new_node(NULL, NULL);
	n->right = new_node(NULL, NULL);
	populate(depth - 1, n->left);
	populate(depth - 1, n->right);
}

/* ... and half bottom up, children before parent. */
static struct node *make_tree(int depth)
{
	struct node *l, *r;

	if (depth <= 0)
		return new_node(NULL, NULL);
	l = make_tree(depth - 1);
	r = make_tree(depth - 1);
	return new_node(l, r);
}

static long count_nodes(const struct node *n)
{
	return n ? 1 + count_nodes(n->left) + count_nodes(n->right) : 0;
}

/* Builds trees and lets them go; returns their node count.  The roots
 * live only in this frame, which clear_stack() then overwrites. */
static __attribute__((noinline)) long make_garbage(long nodes)
{
	long made = 0;

	while (made < nodes) {
		struct node *t = make_tree(GARBAGE_DEPTH);

		if (!t->left)
			die("a garbage tree is incomplete");
		made += GARBAGE_NODES;
	}
	return made;
}

/* Conservative collectors read the whole stack: stale pointers to the
 * garbage below the stack pointer would keep some of it. */
static __attribute__((noinline)) void clear_stack(void)
{
	volatile uintptr_t buf[8192];

	for (size_t i = 0; i < sizeof(buf) / sizeof(buf[0]); i++)
		buf[i] = 0;
}

/* Distinct small integers: data that no collector takes for a pointer. */
static void fill_array(uint64_t *a, size_t words, uint64_t seed)
{
	for (size_t i = 0; i < words; i++)
		a[i] = ((i + seed) * 0x9e3779b97f4a7c15ULL) >> 33;
}

static bool array_intact(const uint64_t *a, size_t words, uint64_t seed)
{
	for (size_t i = 0; i < words; i++)
		if (a[i] != ((i + seed) * 0x9e3779b97f4a7c15ULL) >> 33)
			return false;
	return true;
}

/* After the collections: a collector that freed live data has let the
 * garbage made since reuse it. */
static void verify(long nodes)
{
	long total = 0;

	for (long i = 0; i < ntrees; i++)
		total += count_nodes(forest[i]);
	if (total != nodes)
		die("live trees damaged: the collector freed reachable nodes");
	for (int i = 0; i < ARRAYS; i++)
		if (!array_intact(arrays[i], ARRAY_BYTES / sizeof(uint64_t), (uint64_t)i << 32))
			die("an array was damaged: the collector freed it while reachable");
}

/* Live trees alternate between the two ways of building, with a
 * short-lived tree made and dropped between them, as GCBench does: the
 * live nodes are not all packed together. */
static long build(long live_nodes)
{
	long total = 0;

	ntrees = (live_nodes + TREE_NODES / 2) / TREE_NODES;
	if (ntrees < 1)
		ntrees = 1;
	forest = xalloc((size_t)ntrees * sizeof(*forest));
	for (long i = 0; i < ntrees; i++) {
		if (i & 1) {
			forest[i] = make_tree(TREE_DEPTH);
		} else {
			forest[i] = new_node(NULL, NULL);
			populate(TREE_DEPTH, forest[i]);
		}
		make_garbage(GARBAGE_NODES);
	}
	for (int i = 0; i < ARRAYS; i++) {
		arrays[i] = xalloc(ARRAY_BYTES);
		fill_array(arrays[i], ARRAY_BYTES / sizeof(uint64_t), (uint64_t)i << 32);
	}
	for (long i = 0; i < ntrees; i++)
		total += count_nodes(forest[i]);
	return total;
}

/* --- main ----------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median_of(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Medians field by field: every field of struct sample is a double. */
static struct sample median_sample(const struct sample *s, int n)
{
	enum { FIELDS = sizeof(struct sample) / sizeof(double) };
	struct sample med;
	double v[MAX_COLLECTIONS];

	for (int f = 0; f < FIELDS; f++) {
		for (int i = 0; i < n; i++)
			v[i] = ((const double *)&s[i])[f];
		((double *)&med)[f] = median_of(v, n);
	}
	return med;
}

static int usage(void)
{
	fprintf(stderr, "usage: gcbench [-m MARKERS] [-c COLLECTIONS] LIVE_NODES\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct sample s[MAX_COLLECTIONS], med;
	int ncoll = 5, opt;
	unsigned markers = 1, used;
	long live, nodes, garbage = 0, blocks;
	double heap_bytes, t;

	while ((opt = getopt(argc, argv, "m:c:")) != -1) {
		switch (opt) {
		case 'm':
			markers = (unsigned)atoi(optarg);
			break;
		case 'c':
			ncoll = atoi(optarg);
			if (ncoll < 1 || ncoll > MAX_COLLECTIONS)
				return usage();
			break;
		default:
			return usage();
		}
	}
	if (optind + 1 != argc || (live = parse_count(argv[optind])) < 0)
		return usage();

	used = collector_init(markers);
	auto_off();
	t = now_ms();
	nodes = build(live);
	auto_on();
	blocks = nodes + ARRAYS + 1;
	heap_bytes = (double)nodes * sizeof(struct node) + (double)ARRAYS * ARRAY_BYTES;
	printf("%s: %ld live nodes of %zu bytes in %ld trees, %d arrays of %lu MiB "
	       "(%s), built in %.0f ms; marker threads: %u\n",
	       COLLECTOR, nodes, sizeof(struct node), ntrees, ARRAYS, ARRAY_BYTES >> 20,
	       ARRAY_ALLOC, now_ms() - t, used);

	for (int i = 0; i < ncoll; i++) {
		auto_off();
		garbage = make_garbage(nodes / GARBAGE_SHARE);
		clear_stack();
		auto_on();
		collect(&s[i]);
		printf("collection %d: %.3f ms, %.0f reclaimed (%ld garbage nodes made)\n",
		       i + 1, s[i].pause_ms, s[i].reclaimed, garbage);
	}
	verify(nodes);
	med = median_sample(s, ncoll);
	print_split(&med);
	printf("median of %d: pause %.3f ms, %.2f ns per live block, %.0f MB/s of "
	       "%.1f MB heap (live nodes x %zu bytes + arrays), %.0f reclaimed\n",
	       ncoll, med.pause_ms, med.pause_ms * 1e6 / (double)blocks,
	       heap_bytes / 1e6 / (med.pause_ms / 1e3), heap_bytes / 1e6,
	       sizeof(struct node), med.reclaimed);
	printf("RESULT collector=%s markers=%u live_nodes=%ld live_blocks=%ld "
	       "heap_bytes=%.0f garbage_nodes=%ld collections=%d pause_ms=%.3f "
	       "ns_per_block=%.3f mb_s=%.1f reclaimed=%.0f",
	       COLLECTOR, used, nodes, blocks, heap_bytes, garbage, ncoll, med.pause_ms,
	       med.pause_ms * 1e6 / (double)blocks,
	       heap_bytes / 1e6 / (med.pause_ms / 1e3), med.reclaimed);
	print_result_extra(&med);
	printf("\n");
	return 0;
}
