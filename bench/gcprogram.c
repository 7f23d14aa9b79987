/* gcprogram [-r REPEATS]
 *
 * The GCBench program whole, with the collector's automatic collections:
 * what a program that allocates trees and drops them pays in all, where
 * bench/gcbench times single full collections.  In the shape of Ellis,
 * Kovac and Boehm's GCBench: a stretch tree of depth 18 built and
 * dropped; a long-lived tree of depth 16 and an array of 500,000 doubles
 * kept to the end; then, for depths 4, 6, ... 16, as many temporary trees
 * of that depth as make twice the stretch tree's nodes, built top down
 * (parent first) and again bottom up (children first), each dropped at
 * once.  REPEATS (default 1) runs the temporary trees that many times.
 * Nodes hold two pointers and two ints, 24 bytes.  At the end the
 * long-lived tree and array are checked.
 *
 * One source, two collectors, chosen when compiling:
 *   -DUSE_BOEHM  GC_MALLOC for the nodes and GC_MALLOC_ATOMIC for the
 *                array, as the Boehm collector's users write it; its
 *                settings come from its environment (GC_MARKERS ...).
 *   otherwise    malloc, run with LD_PRELOAD=libgcshim.so and its
 *                settings (GCSHIM_GROWTH=on ...); with no shim it is a
 *                program that never frees.
 *
 * The last line is one "RESULT key=value ..." line for scripts: wall and
 * processor time in ms, maximum resident set in KiB, collections. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifdef USE_BOEHM
#include <gc/gc.h>
#define COLLECTOR "boehm"
#define ALLOC(n) GC_MALLOC(n)
#define ALLOC_DATA(n) GC_MALLOC_ATOMIC(n)
#else
#include "gcshim.h"
#pragma weak gcshim_get_stats
#define COLLECTOR "gcshim"
#define ALLOC(n) malloc(n)
#define ALLOC_DATA(n) malloc(n)
#endif

#define STRETCH_DEPTH 18
#define LONG_LIVED_DEPTH 16
#define ARRAY_SIZE 500000
#define MIN_DEPTH 4
#define MAX_DEPTH 16

struct node {
	struct node *left, *right;
	int i, j;
};

/* What must survive every collection, reachable from globals. */
static struct node *volatile long_lived;
static double *volatile array;

static double now_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *msg)
{
	fprintf(stderr, "gcprogram: %s\n", msg);
	exit(1);
}

static struct node *new_node(struct node *l, struct node *r)
{
	struct node *n = ALLOC(sizeof(*n));

	if (!n)
		die("out of memory");
	n->left = l;
	n->right = r;
	n->i = n->j = 0;
	return n;
}

static long tree_size(int depth)
{
	return (1L << (depth + 1)) - 1;
}

/* Top down: the parent exists before its children. */
static void populate(int depth, struct node *n)
{
	if (depth <= 0)
		return;
	n->left = new_node(NULL, NULL);
	n->right = new_node(NULL, NULL);
	populate(depth - 1, n->left);
	populate(depth - 1, n->right);
}

/* Bottom up: the children exist before their parent. */
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

/* Temporary trees of one depth, each dropped as soon as built. */
static void time_construction(int depth)
{
	long iters = 2 * tree_size(STRETCH_DEPTH) / tree_size(depth);

	for (long i = 0; i < iters; i++) {
		struct node *t = new_node(NULL, NULL);

		populate(depth, t);
	}
	for (long i = 0; i < iters; i++)
		if (!make_tree(depth))
			die("a tree is missing");
}

static long collections(void)
{
#ifdef USE_BOEHM
	return (long)GC_get_gc_no();
#else
	struct gcshim_stats st = { .size = sizeof(st) };

	return gcshim_get_stats && gcshim_get_stats(&st) == 0 ? (long)st.collections : -1;
#endif
}

static void check_survivors(void)
{
	if (count_nodes(long_lived) != tree_size(LONG_LIVED_DEPTH))
		die("the long-lived tree was damaged: reachable nodes were freed");
	for (int i = 1; i < ARRAY_SIZE; i++)
		if (array[i] != 1.0 / i)
			die("the long-lived array was damaged: it was freed while reachable");
}

int main(int argc, char **argv)
{
	double wall = now_ms(CLOCK_MONOTONIC), cpu = now_ms(CLOCK_PROCESS_CPUTIME_ID);
	struct rusage ru;
	long repeats = 1;
	int opt;

	while ((opt = getopt(argc, argv, "r:")) != -1) {
		if (opt != 'r' || (repeats = atol(optarg)) < 1) {
			fprintf(stderr, "usage: gcprogram [-r REPEATS]\n");
			return 2;
		}
	}
#ifdef USE_BOEHM
	GC_INIT();
#endif
	{
		struct node *stretch = new_node(NULL, NULL);

		populate(STRETCH_DEPTH, stretch);
	}
	long_lived = new_node(NULL, NULL);
	populate(LONG_LIVED_DEPTH, long_lived);
	if (!(array = ALLOC_DATA(sizeof(double) * ARRAY_SIZE)))
		die("out of memory");
	for (int i = 0; i < ARRAY_SIZE; i++)
		array[i] = 1.0 / i;
	for (long r = 0; r < repeats; r++)
		for (int d = MIN_DEPTH; d <= MAX_DEPTH; d += 2)
			time_construction(d);
	check_survivors();
	wall = now_ms(CLOCK_MONOTONIC) - wall;
	cpu = now_ms(CLOCK_PROCESS_CPUTIME_ID) - cpu;
	getrusage(RUSAGE_SELF, &ru);
	printf("%s: GCBench x %ld in %.0f ms (%.0f ms of processor time), max RSS %ld KiB, "
	       "%ld collections\n", COLLECTOR, repeats, wall, cpu, ru.ru_maxrss, collections());
	printf("RESULT collector=%s repeats=%ld total_ms=%.1f cpu_ms=%.1f maxrss_kb=%ld "
	       "collections=%ld\n", COLLECTOR, repeats, wall, cpu, ru.ru_maxrss, collections());
	return 0;
}
