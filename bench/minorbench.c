/* minorbench [-t THREADS] [-s SECONDS | -n ITERATIONS] [-i INTERVAL_MS]
 *            [-f FULLS] [-p PAGES] [-w WRITE_EVERY] LIVE_NODES
 *
 * Generation-0 collections of a program with a large old heap, run with
 * LD_PRELOAD=libgcshim.so.  LIVE_NODES nodes of 32 bytes (a number, or
 * with a K or M suffix: 1M, 16M) make a binary tree that hangs from a
 * global; two full collections make them old.  THREADS churner threads
 * (default 2) then allocate blocks of 16 to 256 bytes, each replacing a
 * random one of 256 the thread holds, so that the one replaced becomes
 * garbage; one allocation in WRITE_EVERY (default 64) is followed by one
 * more, whose pointer goes into a random old node, so that old pages are
 * written between collections as a program's would be.  Meanwhile the
 * main thread collects generation 0 every INTERVAL_MS (default 20; the
 * interval is the sleep between the end of one collection and the start
 * of the next).
 *
 * The churn lasts SECONDS (default 4) or, with -n, until every thread has
 * made ITERATIONS allocations: a fixed amount of work, whose processor
 * time (each churner reads its own CLOCK_THREAD_CPUTIME_ID) can be
 * compared between GCSHIM_MINOR=1 and GCSHIM_MINOR=0.  Then FULLS
 * (default 3) full collections are timed on the same heap, while the
 * churners still run when the churn was timed by SECONDS.  Last, with
 * the churners stopped, PAGES (default 10000, 0 for none) distinct old
 * pages are written once each right after a collection, three times: the
 * cost of the first write to a page since a collection, which with
 * write tracking is a fault.
 *
 * Automatic collections are off for the whole run: only the schedule
 * above collects.  The pauses are pause_last_ns, the time the world was
 * stopped (the freeing that gcshim_collect() does before it returns is
 * not in it: an automatic collection leaves that to the sweep).
 *
 * Output: a summary for people; one "MINOR pause_ns=... pages=..." line a
 * generation-0 collection, one "FULL pause_ns=..." line a full one, one
 * "WRITE ns=... reported=..." line a pass of first writes; and last, one
 * "RESULT key=value ..." line for scripts. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "count.h"
#include "gcshim.h"

/* Weak, so that the program starts (and says what is wrong) without the
 * shim preloaded. */
#pragma weak gcshim_collect
#pragma weak gcshim_get_stats
#pragma weak gcshim_disable

#define MAX_THREADS 64
#define RING 256            /* young blocks a churner holds */
#define INDEX_STRIDE 8      /* one old node in 8 is in the index */
#define WRITE_PASSES 3
#define PAGE_SHIFT 12       /* the pages gcshim tracks (OM_PAGE_LG) */
/* Pointers in the index are stored with their top 16 bits flipped: no
 * longer canonical addresses, so never taken for pointers into the heap. */
#define HIDE (~0ULL << 48)

struct node {
	struct node *left, *right;
	void *young;        /* a churner's block, replaced now and then */
	uint64_t value;
};

struct churner {
	pthread_t tid;
	uint64_t rng;
	void **ring;
	long done;          /* steps made, the unit of work: an allocation,
			       and the old node's one after one in WRITE_EVERY */
	long long cpu_ns;
};

struct sample {
	long long pause_ns, pages, minor, mark_ns, roots_ns, stop_ns, track_ns;
	long long root_bytes, heap_bytes;   /* scanned */
};

struct samples {
	struct sample *v;
	size_t n, cap;
};

/* Options. */
static unsigned nthreads = 2;
static double seconds = 4;
static long iterations;     /* 0: the churn is timed by seconds */
static long interval_ms = 20;
static int fulls = 3;
static long npages = 10000;
static uint64_t write_every = 64;

/* The old heap: the root keeps every node alive; the index picks nodes
 * at random.  An index of plain pointers to every node would be a second
 * heap of pointers for the full collection to trace, and make the pause
 * the minor ones are compared with longer: it holds one node in 8 (16
 * on each page still), hidden, which the collector reads as data. */
static struct node *volatile root;
static uintptr_t *volatile old_index;
static size_t nindex, nbuilt;

static struct churner churners[MAX_THREADS];
static pthread_barrier_t start_line;
static atomic_bool stop_churn;
static atomic_uint churners_done;

static void die(const char *msg)
{
	fprintf(stderr, "minorbench: %s\n", msg);
	exit(1);
}

static long long clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static uint64_t next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		die("out of memory");
	return p;
}

static struct gcshim_stats stats(void)
{
	struct gcshim_stats st = { .size = sizeof(st) };

	if (gcshim_get_stats(&st))
		die("gcshim_get_stats failed");
	return st;
}

/* --- the old heap ----------------------------------------------------------- */

static struct node *new_node(void)
{
	struct node *x = xmalloc(sizeof(*x));

	x->young = NULL;
	x->value = nbuilt;
	if (nbuilt++ % INDEX_STRIDE == 0)
		old_index[nindex++] = (uintptr_t)x ^ HIDE;
	return x;
}

/* Preorder, parent before children: the allocation order, which is
 * nearly the address order, is the tree's. */
static struct node *tree(size_t n)
{
	struct node *x;

	if (!n)
		return NULL;
	x = new_node();
	x->left = tree((n - 1) / 2);
	x->right = tree(n - 1 - (n - 1) / 2);
	return x;
}

static struct node *old_node(size_t i)
{
	return (struct node *)(old_index[i] ^ HIDE);
}

static void build(size_t nodes)
{
	old_index = xmalloc((nodes / INDEX_STRIDE + 1) * sizeof(*old_index));
	root = tree(nodes);
	/* With tracking, the first collection only starts it (every page
	 * counts as written until the kernel has protected it once); after
	 * the second the tree is old and its pages clean. */
	gcshim_collect(2);
	gcshim_collect(2);
}

/* --- the churn ---------------------------------------------------------------- */

/* A young block into a random old node: the first such write to a page
 * since the last collection is what the write tracking pays for.  Two
 * threads may store into the same node: relaxed atomics, so that the
 * race is defined (a plain store on every target). */
static void link_old(struct churner *c)
{
	struct node *o = old_node(next(&c->rng) % nindex);
	uint64_t *y = xmalloc(32);

	y[0] = (uint64_t)c->done;
	__atomic_store_n(&o->young, y, __ATOMIC_RELAXED);
}

static void churn_step(struct churner *c)
{
	size_t size = 16 + (size_t)(next(&c->rng) % 16) * 16;
	uint64_t *y = xmalloc(size);

	/* small numbers only: the churn's data holds no pointers */
	y[0] = (uint64_t)c->done;
	y[1] = size;
	/* the block replaced is garbage from here on */
	c->ring[next(&c->rng) % RING] = y;
	if (next(&c->rng) % write_every == 0)
		link_old(c);
}

static void *churn(void *arg)
{
	struct churner *c = arg;
	long limit = iterations ? iterations : -1;
	long long t0;

	pthread_barrier_wait(&start_line);
	t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	for (c->done = 0; c->done != limit; c->done++) {
		if (atomic_load_explicit(&stop_churn, memory_order_relaxed))
			break;
		churn_step(c);
	}
	c->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
	atomic_fetch_add(&churners_done, 1);
	return NULL;
}

static void start_churners(void)
{
	if (pthread_barrier_init(&start_line, NULL, nthreads + 1))
		die("pthread_barrier_init failed");
	for (unsigned t = 0; t < nthreads; t++) {
		churners[t].rng = 0x9e3779b97f4a7c15ULL * (t + 1);
		churners[t].ring = calloc(RING, sizeof(void *));
		if (!churners[t].ring ||
		    pthread_create(&churners[t].tid, NULL, churn, &churners[t]))
			die("cannot start a churner");
	}
	pthread_barrier_wait(&start_line);
}

static void stop_churners(void)
{
	atomic_store(&stop_churn, true);
	for (unsigned t = 0; t < nthreads; t++)
		pthread_join(churners[t].tid, NULL);
}

/* --- the collections ------------------------------------------------------------ */

static void push(struct samples *s, struct sample x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			die("out of memory");
	}
	s->v[s->n++] = x;
}

/* One collection; false when a thread would not stop (nothing done). */
static bool collect(int gen, struct sample *s)
{
	long long minor0 = stats().collections_minor;
	struct gcshim_stats st;

	if (gcshim_collect(gen) < 0) {
		if (errno == EAGAIN)
			return false;
		fprintf(stderr, "minorbench: gcshim_collect: %s\n", strerror(errno));
		exit(1);
	}
	st = stats();
	s->pause_ns = st.pause_last_ns;
	s->pages = st.last_written_pages;
	s->minor = st.collections_minor - minor0;
	s->mark_ns = st.last_mark_ns;
	s->roots_ns = st.last_roots_ns;
	s->stop_ns = st.last_stop_ns;
	s->track_ns = st.last_track_ns;
	s->root_bytes = st.last_root_bytes;
	s->heap_bytes = st.last_heap_bytes;
	return true;
}

static bool churn_over(long long t0)
{
	if (iterations)
		return atomic_load(&churners_done) == nthreads;
	return now_ns() - t0 >= (long long)(seconds * 1e9);
}

/* Generation 0 on the schedule, for as long as the churn lasts;
 * returns the collections abandoned. */
static long minor_loop(struct samples *out)
{
	long long t0 = now_ns();
	struct sample s;
	long abandoned = 0;

	for (;;) {
		sleep_ms(interval_ms);
		if (churn_over(t0))
			return abandoned;
		if (collect(0, &s))
			push(out, s);
		else
			abandoned++;
	}
}

static long full_loop(struct samples *out)
{
	struct sample s;
	long abandoned = 0;

	for (int i = 0; i < fulls; i++) {
		sleep_ms(interval_ms);
		if (collect(2, &s))
			push(out, s);
		else
			abandoned++;
	}
	return abandoned;
}

/* --- first writes to old pages ---------------------------------------------------- */

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return (x > y) - (x < y);
}

/* Up to want old nodes, each on a page of its own, in a random order:
 * the order of a program's writes, and no help from the prefetcher. */
static size_t pick_pages(struct node ***out, size_t want)
{
	struct node **p = xmalloc(nindex * sizeof(*p));
	size_t n = 0;
	uint64_t rng = 7;

	for (size_t i = 0; i < nindex; i++)
		p[i] = old_node(i);
	qsort(p, nindex, sizeof(*p), cmp_ptr);
	for (size_t i = 0; i < nindex; i++)
		if (!n || (uintptr_t)p[i] >> PAGE_SHIFT != (uintptr_t)p[n - 1] >> PAGE_SHIFT)
			p[n++] = p[i];
	for (size_t i = n; i > 1; i--) {
		size_t j = next(&rng) % i;
		struct node *t = p[i - 1];

		p[i - 1] = p[j];
		p[j] = t;
	}
	*out = p;
	return n < want ? n : want;
}

/* One write to each page, right after a collection (which protects them
 * all again); then the next collection says how many pages it found
 * written. */
static double write_pass(struct node **p, size_t n, long long *reported)
{
	struct sample s;
	long long t;

	if (!collect(0, &s))
		return -1;
	t = now_ns();
	for (size_t i = 0; i < n; i++)
		*(volatile uint64_t *)&p[i]->value = i;
	t = now_ns() - t;
	*reported = collect(0, &s) ? s.pages : -1;
	return (double)t / (double)n;
}

/* --- figures ---------------------------------------------------------------------- */

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of one field of the samples. */
static long long median_field(const struct samples *s, size_t offset)
{
	long long *v, m;

	if (!s->n)
		return 0;
	v = xmalloc(s->n * sizeof(*v));
	for (size_t i = 0; i < s->n; i++)
		v[i] = *(const long long *)((const char *)&s->v[i] + offset);
	qsort(v, s->n, sizeof(*v), cmp_ll);
	m = v[s->n / 2];
	free(v);
	return m;
}

#define MEDIAN(s, field) median_field((s), offsetof(struct sample, field))

/* The target's allowance for a pause: 0.5 ms, and 3 us a written page. */
static long long allowance_ns(long long pages)
{
	return 500000 + 3000 * pages;
}

struct summary {
	long long pause_med, pause_max, max_pages, pages_med, over, minor;
	long long full_med;
	double cpu_per_iter, write_ns;
	long long reported;
	long done;
};

static void summarize_minor(const struct samples *m, struct summary *r)
{
	r->pause_med = MEDIAN(m, pause_ns);
	r->pages_med = MEDIAN(m, pages);
	for (size_t i = 0; i < m->n; i++) {
		const struct sample *s = &m->v[i];

		if (s->pause_ns > r->pause_max) {
			r->pause_max = s->pause_ns;
			r->max_pages = s->pages;
		}
		r->over += s->pause_ns > allowance_ns(s->pages);
		r->minor += s->minor;
	}
}

static void summarize_churn(struct summary *r)
{
	long long cpu = 0;

	for (unsigned t = 0; t < nthreads; t++) {
		cpu += churners[t].cpu_ns;
		r->done += churners[t].done;
	}
	r->cpu_per_iter = r->done ? (double)cpu / (double)r->done : 0;
}

static void write_passes(struct summary *r)
{
	struct node **p;
	double ns[WRITE_PASSES];
	size_t n = pick_pages(&p, (size_t)npages);

	r->write_ns = -1;
	r->reported = -1;
	if (!n)
		return;
	for (int i = 0; i < WRITE_PASSES; i++) {
		ns[i] = write_pass(p, n, &r->reported);
		printf("WRITE pages=%zu ns=%.1f reported=%lld\n", n, ns[i], r->reported);
	}
	qsort(ns, WRITE_PASSES, sizeof(*ns), cmp_double);
	r->write_ns = ns[WRITE_PASSES / 2];
	npages = (long)n;
	free(p);
}

static void print_samples(const struct samples *m, const struct samples *f)
{
	for (size_t i = 0; i < m->n; i++)
		printf("MINOR pause_ns=%lld pages=%lld minor=%lld stop_ns=%lld track_ns=%lld "
		       "roots_ns=%lld mark_ns=%lld root_bytes=%lld heap_bytes=%lld\n",
		       m->v[i].pause_ns, m->v[i].pages, m->v[i].minor, m->v[i].stop_ns,
		       m->v[i].track_ns, m->v[i].roots_ns, m->v[i].mark_ns, m->v[i].root_bytes,
		       m->v[i].heap_bytes);
	for (size_t i = 0; i < f->n; i++)
		printf("FULL pause_ns=%lld mark_ns=%lld\n", f->v[i].pause_ns, f->v[i].mark_ns);
}

static void print_summary(const struct samples *m, const struct summary *r, int tracking)
{
	printf("minorbench: %zu old nodes of %zu bytes, %u churners, write tracking %d\n",
	       nbuilt, sizeof(struct node), nthreads, tracking);
	printf("generation 0: %zu collections (%lld minor), pause median %.3f ms, max %.3f ms "
	       "(%lld pages written); written pages median %lld; allowance at the median "
	       "%.3f ms; over their own allowance: %lld\n",
	       m->n, r->minor, r->pause_med / 1e6, r->pause_max / 1e6, r->max_pages,
	       r->pages_med, allowance_ns(r->pages_med) / 1e6, r->over);
	if (fulls)
		printf("full: pause median %.3f ms\n", r->full_med / 1e6);
	printf("churn: %ld allocations, %.1f ns of churner CPU each\n", r->done,
	       r->cpu_per_iter);
	if (r->write_ns >= 0)
		printf("first writes: %.1f ns a page over %ld pages, %lld reported written\n",
		       r->write_ns, npages, r->reported);
}

static void print_result(const struct samples *m, const struct summary *r, int tracking,
			 long abandoned, long long autos)
{
	printf("RESULT nodes=%zu threads=%u write_tracking=%d collections=%zu minor=%lld "
	       "pause_med_ns=%lld pause_max_ns=%lld pages_med=%lld over=%lld full_med_ns=%lld "
	       "fulls=%d iterations=%ld cpu_ns_per_iter=%.2f write_ns=%.1f write_pages=%ld "
	       "write_reported=%lld abandoned=%ld automatic=%lld\n",
	       nbuilt, nthreads, tracking, m->n, r->minor, r->pause_med, r->pause_max,
	       r->pages_med, r->over, r->full_med, fulls, r->done, r->cpu_per_iter,
	       r->write_ns, npages, r->reported, abandoned, autos);
}

/* --- main ------------------------------------------------------------------------- */

static int usage(void)
{
	fprintf(stderr, "usage: minorbench [-t THREADS] [-s SECONDS | -n ITERATIONS] "
		"[-i INTERVAL_MS] [-f FULLS] [-p PAGES] [-w WRITE_EVERY] LIVE_NODES\n");
	return 2;
}

static bool parse_options(int argc, char **argv, long *nodes)
{
	int opt;

	while ((opt = getopt(argc, argv, "t:s:n:i:f:p:w:")) != -1) {
		switch (opt) {
		case 't': nthreads = (unsigned)atoi(optarg); break;
		case 's': seconds = atof(optarg); break;
		case 'n': iterations = parse_count(optarg); break;
		case 'i': interval_ms = atol(optarg); break;
		case 'f': fulls = atoi(optarg); break;
		case 'p': npages = atol(optarg); break;
		case 'w': write_every = (uint64_t)atol(optarg); break;
		default: return false;
		}
	}
	if (optind + 1 != argc || (*nodes = parse_count(argv[optind])) < 2)
		return false;
	return nthreads >= 1 && nthreads <= MAX_THREADS && seconds > 0 && iterations >= 0 &&
	       interval_ms >= 0 && fulls >= 0 && npages >= 0 && write_every >= 1;
}

int main(int argc, char **argv)
{
	struct samples minors = { 0 }, fullv = { 0 };
	struct summary r = { 0 };
	long nodes, abandoned;
	long long collections0, autos;
	int tracking;

	if (!parse_options(argc, argv, &nodes))
		return usage();
	if (!gcshim_collect || !gcshim_get_stats || !gcshim_disable)
		die("the gcshim API is missing: run with LD_PRELOAD=libgcshim.so");
	gcshim_disable();
	build((size_t)nodes);
	collections0 = stats().collections;
	start_churners();
	abandoned = minor_loop(&minors);
	/* read after the minor collections, which protect the heap: the
	 * full one that built it need not have */
	tracking = (int)stats().write_tracking;
	abandoned += full_loop(&fullv);
	stop_churners();
	autos = stats().collections - collections0 - (long long)(minors.n + fullv.n);
	summarize_minor(&minors, &r);
	r.full_med = MEDIAN(&fullv, pause_ns);
	summarize_churn(&r);
	write_passes(&r);
	print_samples(&minors, &fullv);
	print_summary(&minors, &r, tracking);
	print_result(&minors, &r, tracking, abandoned, autos);
	return 0;
}
