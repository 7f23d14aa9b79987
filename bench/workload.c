/* Allocation workloads for comparing malloc implementations.
 *
 *   workload churn              single-thread small-object churn
 *   workload xthread            producer allocates, consumer frees
 *   workload realloc            buffers grown step by step, then freed
 *   workload larson [THREADS]   server-style slots with hand-overs
 *   workload deep               churn from 8 to 31 calls down a recursion
 *   workload mthread [THREADS]  glibc's bench-malloc-thread
 *   workload cfrac              small numbers of a bignum library, short-lived
 *   workload espresso           bit-vector cubes, families grown by realloc
 *   workload xmalloc            four threads, each freeing the previous one's
 *   workload mstress            mimalloc's stress test, four threads
 *   workload cache-scratch      Hoard's passive false-sharing test
 *   workload alloc-test [THREADS]  OLTP-like sizes up to 16 KiB
 *   workload malloc-large       buffers of 5 to 25 MiB
 *   workload mleak              10 short threads at a time, 3,000 in all
 *   workload pool               1,000 threads alive at once, each serving a
 *                               few requests with blocks of many sizes
 *   workload leaky              2 GiB allocated, the last 40,000 blocks kept,
 *                               the rest dropped without free()
 *
 * The ones named after a benchmark are equivalents written here of the
 * programs of the same name in the mimalloc benchmark suite (and glibc's
 * benchtests); they keep each one's allocation pattern, not its code.
 *
 * Every run is deterministic in the work it does (each thread has its own
 * seeded PRNG) and prints only a checksum of the bytes it read back, so
 * that the compiler cannot drop the allocations. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each thread's record (its PRNG state, its counters, written at every
 * step) on a cache line of its own: records side by side in an array
 * would have the threads' cores pass the line back and forth at every
 * allocation, and the time would measure that, not the allocator. */
#define THREAD_RECORD __attribute__((aligned(64)))

/* splitmix64: tiny, fast and good enough to pick sizes and slots. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t rnd_range(uint64_t *s, size_t lo, size_t hi)
{
	return lo + (size_t)(rnd(s) % (hi - lo + 1));
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "workload: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

/* A light touch: first and last byte, as a program that initializes a
 * header and writes a terminator would.  The size goes in the first byte
 * so that reading it back later depends on the allocation being real. */
static void touch(unsigned char *p, size_t n)
{
	p[0] = (unsigned char)n;
	p[n - 1] = (unsigned char)(n >> 3);
}

static uint64_t sample(const unsigned char *p)
{
	return p[0];
}

/* --- churn ---------------------------------------------------------------- */

#define CHURN_SLOTS 8192
#define CHURN_OPS 30000000UL

/* Each step frees a random live object and replaces it, so the live set
 * stays a window of CHURN_SLOTS objects of mixed sizes. */
static uint64_t run_churn(void)
{
	static unsigned char *slot[CHURN_SLOTS];
	uint64_t seed = 1, sum = 0;

	for (unsigned long i = 0; i < CHURN_OPS; i++) {
		size_t k = rnd(&seed) % CHURN_SLOTS;
		size_t n = rnd_range(&seed, 8, 512);

		if (slot[k]) {
			sum += sample(slot[k]);
			free(slot[k]);
		}
		slot[k] = xmalloc(n);
		touch(slot[k], n);
	}
	for (size_t k = 0; k < CHURN_SLOTS; k++)
		free(slot[k]);
	return sum;
}

/* --- xthread -------------------------------------------------------------- */

#define XT_BATCH 256
#define XT_RING 16
#define XT_BATCHES 40000UL

/* Single-producer single-consumer ring of whole batches: one atomic
 * hand-over per XT_BATCH objects keeps synchronization cheap next to the
 * allocator work being measured. */
struct xt_ring {
	void *batch[XT_RING][XT_BATCH];
	_Atomic unsigned long head; /* batches published by the producer */
	_Atomic unsigned long tail; /* batches consumed */
};

static struct xt_ring ring;

static void *xt_producer(void *arg)
{
	uint64_t seed = 2;

	for (unsigned long b = 0; b < XT_BATCHES; b++) {
		void **slot = ring.batch[b % XT_RING];

		while (b - atomic_load_explicit(&ring.tail, memory_order_acquire) >= XT_RING)
			sched_yield();
		for (int i = 0; i < XT_BATCH; i++) {
			size_t n = rnd_range(&seed, 8, 512);

			slot[i] = xmalloc(n);
			touch(slot[i], n);
		}
		atomic_store_explicit(&ring.head, b + 1, memory_order_release);
	}
	return arg;
}

static uint64_t xt_consume(void)
{
	uint64_t sum = 0;

	for (unsigned long b = 0; b < XT_BATCHES; b++) {
		void **slot = ring.batch[b % XT_RING];

		while (atomic_load_explicit(&ring.head, memory_order_acquire) <= b)
			sched_yield();
		for (int i = 0; i < XT_BATCH; i++) {
			sum += sample(slot[i]);
			free(slot[i]);
		}
		atomic_store_explicit(&ring.tail, b + 1, memory_order_release);
	}
	return sum;
}

static uint64_t run_xthread(void)
{
	pthread_t producer;
	uint64_t sum;

	if (pthread_create(&producer, NULL, xt_producer, NULL)) {
		fprintf(stderr, "workload: cannot start a thread\n");
		exit(1);
	}
	sum = xt_consume();
	pthread_join(producer, NULL);
	return sum;
}

/* --- realloc -------------------------------------------------------------- */

#define RA_LIVE 8
#define RA_ROUNDS 800

/* One growth step of a vector-like buffer: mostly by half again, as
 * growable arrays do, sometimes by a small append, as strings do. */
static size_t ra_next(uint64_t *seed, size_t n)
{
	return rnd(seed) % 4 ? n + n / 2 : n + rnd_range(seed, 1, 64);
}

/* RA_LIVE buffers grow in turn, so each one's neighbour is not always
 * free to grow into, then all are freed and the next round starts. */
static uint64_t run_realloc(void)
{
	uint64_t seed = 3, sum = 0;

	for (int r = 0; r < RA_ROUNDS; r++) {
		unsigned char *buf[RA_LIVE];
		size_t len[RA_LIVE], cap[RA_LIVE];
		int growing = RA_LIVE;

		for (int i = 0; i < RA_LIVE; i++) {
			len[i] = 16;
			cap[i] = rnd_range(&seed, 64 << 10, 512 << 10);
			buf[i] = xmalloc(len[i]);
			touch(buf[i], len[i]);
		}
		while (growing) {
			growing = 0;
			for (int i = 0; i < RA_LIVE; i++) {
				if (len[i] >= cap[i])
					continue;
				len[i] = ra_next(&seed, len[i]);
				buf[i] = realloc(buf[i], len[i]);
				if (!buf[i]) {
					fprintf(stderr, "workload: realloc failed\n");
					exit(1);
				}
				buf[i][len[i] - 1] = (unsigned char)i;
				growing++;
			}
		}
		for (int i = 0; i < RA_LIVE; i++) {
			sum += sample(buf[i]) + buf[i][len[i] - 1];
			free(buf[i]);
		}
	}
	return sum;
}

/* --- larson --------------------------------------------------------------- */

#define LA_MAX_THREADS 16
#define LA_SLOTS 4096
#define LA_OPS 12000000UL
#define LA_HANDOFF 64    /* one step in this many hands a block over */
#define LA_INBOX 1024

/* Blocks handed to a thread wait in its inbox until it next looks; the
 * receiver then owns them and frees them later, so they are freed by a
 * thread other than the one that allocated them. */
struct la_inbox {
	pthread_mutex_t lock;
	size_t count;
	unsigned char *block[LA_INBOX];
};

struct la_thread {
	pthread_t id;
	int index;
	uint64_t seed, sum;
	unsigned long ops;
	unsigned char *slot[LA_SLOTS];
	struct la_inbox inbox;
} THREAD_RECORD;

static struct la_thread la[LA_MAX_THREADS];
static int la_count;

/* False when the inbox is full: the sender then keeps the block. */
static int la_send(struct la_thread *to, unsigned char *p)
{
	int ok;

	pthread_mutex_lock(&to->inbox.lock);
	ok = to->inbox.count < LA_INBOX;
	if (ok)
		to->inbox.block[to->inbox.count++] = p;
	pthread_mutex_unlock(&to->inbox.lock);
	return ok;
}

static void la_replace(struct la_thread *t, size_t k, unsigned char *p)
{
	if (t->slot[k]) {
		t->sum += sample(t->slot[k]);
		free(t->slot[k]);
	}
	t->slot[k] = p;
}

/* Received blocks take random slots. */
static void la_receive(struct la_thread *t)
{
	unsigned char *got[LA_INBOX];
	size_t n;

	pthread_mutex_lock(&t->inbox.lock);
	n = t->inbox.count;
	memcpy(got, t->inbox.block, n * sizeof(got[0]));
	t->inbox.count = 0;
	pthread_mutex_unlock(&t->inbox.lock);
	for (size_t i = 0; i < n; i++)
		la_replace(t, rnd(&t->seed) % LA_SLOTS, got[i]);
}

static void la_handoff(struct la_thread *t, size_t k)
{
	struct la_thread *to = &la[(t->index + 1 + rnd(&t->seed) % (la_count - 1)) % la_count];

	if (t->slot[k] && la_send(to, t->slot[k]))
		t->slot[k] = NULL;
	la_receive(t);
}

static void *la_worker(void *arg)
{
	struct la_thread *t = arg;

	for (unsigned long i = 0; i < t->ops; i++) {
		size_t k = rnd(&t->seed) % LA_SLOTS;
		size_t n = rnd_range(&t->seed, 16, 4096);
		unsigned char *p;

		if (la_count > 1 && rnd(&t->seed) % LA_HANDOFF == 0) {
			la_handoff(t, k);
			continue;
		}
		p = xmalloc(n);
		touch(p, n);
		la_replace(t, k, p);
	}
	return NULL;
}

static void la_finish(struct la_thread *t)
{
	la_receive(t);
	for (size_t k = 0; k < LA_SLOTS; k++)
		la_replace(t, k, NULL);
	pthread_mutex_destroy(&t->inbox.lock);
}

/* The total work is fixed, split among the threads, so runs with
 * different thread counts take comparable time on a small machine. */
static uint64_t run_larson(int threads)
{
	uint64_t sum = 0;

	la_count = threads;
	for (int i = 0; i < threads; i++) {
		la[i].index = i;
		la[i].seed = 100 + (uint64_t)i;
		la[i].ops = LA_OPS / (unsigned long)threads;
		pthread_mutex_init(&la[i].inbox.lock, NULL);
	}
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&la[i].id, NULL, la_worker, &la[i])) {
			fprintf(stderr, "workload: cannot start a thread\n");
			exit(1);
		}
	}
	for (int i = 0; i < threads; i++)
		pthread_join(la[i].id, NULL);
	for (int i = 0; i < threads; i++) {
		la_finish(&la[i]);
		sum += la[i].sum;
	}
	return sum;
}

/* --- deep ----------------------------------------------------------------- */

#define DEEP_SLOTS 4096
#define DEEP_OPS 10000000UL

/* The churn of a program whose allocations happen far down its stack, as
 * in a parser or an interpreter: each step descends a random depth, then
 * replaces one object.  What a backtrace costs grows with the depth. */
static __attribute__((noinline)) uint64_t deep_step(unsigned char **slot, uint64_t *seed,
						    int level)
{
	size_t k, n;
	uint64_t sum = 0;

	if (level > 0) {
		sum = deep_step(slot, seed, level - 1);
		/* opaque to the compiler, which would turn the recursion into
		 * a loop */
		__asm__ volatile("" : "+r"(sum));
		return sum + 1;
	}
	k = rnd(seed) % DEEP_SLOTS;
	n = rnd_range(seed, 8, 256);
	if (slot[k]) {
		sum = sample(slot[k]);
		free(slot[k]);
	}
	slot[k] = xmalloc(n);
	touch(slot[k], n);
	return sum;
}

static uint64_t run_deep(void)
{
	static unsigned char *slot[DEEP_SLOTS];
	uint64_t seed = 3, sum = 0;

	for (unsigned long i = 0; i < DEEP_OPS; i++)
		sum += deep_step(slot, &seed, 8 + (int)(rnd(&seed) % 24));
	for (size_t k = 0; k < DEEP_SLOTS; k++)
		free(slot[k]);
	return sum;
}

/* --- mthread -------------------------------------------------------------- */

/* glibc's benchtests/bench-malloc-thread.c: every thread keeps a working
 * set of MT_SET blocks and at each step frees a random one and allocates
 * a block of random size in its place, which it fills (as the version in
 * the mimalloc benchmarks does: a block never written costs an allocator
 * nothing, which is not what programs see).  Sizes
 * follow its inverse-square law between 4 bytes and 32 KiB, so three
 * requests in four are 16 bytes or less and one in a thousand is above
 * 4 KiB.  Sizes and slots come from tables filled before the clock
 * matters, as there. */
#define MT_SET 1024
#define MT_MIN 4.0
#define MT_MAX 32768.0
#define MT_SIZES 8192
#define MT_OPS 20000000UL

struct mt_thread {
	pthread_t id;
	unsigned long ops;
	uint64_t seed, sum;
} THREAD_RECORD;

static unsigned mt_size[MT_SIZES];

/* The inverse of the law's distribution function at u in [0, 1). */
static unsigned mt_inverse_square(double u)
{
	double lo = 1 / MT_MIN, hi = 1 / MT_MAX;

	return (unsigned)(1 / (lo - u * (lo - hi)));
}

static void mt_fill_sizes(void)
{
	uint64_t seed = 7;

	for (size_t i = 0; i < MT_SIZES; i++)
		mt_size[i] = mt_inverse_square((double)(rnd(&seed) >> 11) / 9007199254740992.0);
}

static void *mt_worker(void *arg)
{
	struct mt_thread *t = arg;
	void *set[MT_SET] = { 0 };

	for (unsigned long i = 0; i < t->ops; i++) {
		uint64_t r = rnd(&t->seed);
		unsigned n = mt_size[r % MT_SIZES];

		free(set[(r >> 32) % MT_SET]);
		set[(r >> 32) % MT_SET] = memset(xmalloc(n), (int)i, n);
		t->sum += n;
	}
	for (size_t k = 0; k < MT_SET; k++)
		free(set[k]);
	return NULL;
}

/* The total work is fixed and split, as for larson. */
static uint64_t run_mthread(int threads)
{
	struct mt_thread t[LA_MAX_THREADS];
	uint64_t sum = 0;

	mt_fill_sizes();
	for (int i = 0; i < threads; i++) {
		t[i] = (struct mt_thread){ .ops = MT_OPS / (unsigned long)threads,
					   .seed = 200 + (uint64_t)i };
		if (pthread_create(&t[i].id, NULL, mt_worker, &t[i])) {
			fprintf(stderr, "workload: cannot start a thread\n");
			exit(1);
		}
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i].id, NULL);
		sum += t[i].sum;
	}
	return sum;
}

/* Runs fn on each of the n records of size `size` at recs, one thread
 * each, and waits for them all. */
static void run_threads(int n, void *(*fn)(void *), void *recs, size_t size)
{
	pthread_t id[LA_MAX_THREADS];

	for (int i = 0; i < n; i++) {
		if (pthread_create(&id[i], NULL, fn, (char *)recs + (size_t)i * size)) {
			fprintf(stderr, "workload: cannot start a thread\n");
			exit(1);
		}
	}
	for (int i = 0; i < n; i++)
		pthread_join(id[i], NULL);
}

/* --- cfrac ---------------------------------------------------------------- */

/* cfrac factors integers with a multiple-precision library of its own in
 * which every intermediate result is a fresh block of a few words, freed
 * as soon as it has been used.  The same shape here: Pollard's rho method
 * on numbers of three 32-bit limbs, with products of six, reduced modulo
 * n one bit at a time, as a library without long division does. */
struct bn {
	uint32_t n;      /* limbs in use, the highest non-zero */
	uint32_t d[];    /* least significant first */
};

#define CF_STEPS 20000
#define CF_GCD_EVERY 32

static struct bn *bn_new(uint32_t n)
{
	struct bn *b = xmalloc(sizeof(*b) + n * sizeof(b->d[0]));

	b->n = n;
	return b;
}

static struct bn *bn_trim(struct bn *b)
{
	while (b->n && !b->d[b->n - 1])
		b->n--;
	return b;
}

static struct bn *bn_from(uint64_t v)
{
	struct bn *b = bn_new(2);

	b->d[0] = (uint32_t)v;
	b->d[1] = (uint32_t)(v >> 32);
	return bn_trim(b);
}

static int bn_cmp(const struct bn *a, const struct bn *b)
{
	if (a->n != b->n)
		return a->n < b->n ? -1 : 1;
	for (uint32_t i = a->n; i--;)
		if (a->d[i] != b->d[i])
			return a->d[i] < b->d[i] ? -1 : 1;
	return 0;
}

/* a - b, for a >= b */
static struct bn *bn_sub(const struct bn *a, const struct bn *b)
{
	struct bn *r = bn_new(a->n);
	int64_t borrow = 0;

	for (uint32_t i = 0; i < a->n; i++) {
		int64_t v = (int64_t)a->d[i] - (i < b->n ? b->d[i] : 0) - borrow;

		borrow = v < 0;
		r->d[i] = (uint32_t)v;
	}
	return bn_trim(r);
}

static struct bn *bn_add(const struct bn *a, const struct bn *b)
{
	const struct bn *big = a->n >= b->n ? a : b, *small = a->n >= b->n ? b : a;
	struct bn *r = bn_new(big->n + 1);
	uint64_t carry = 0;

	for (uint32_t i = 0; i < big->n; i++) {
		uint64_t t = (uint64_t)big->d[i] + (i < small->n ? small->d[i] : 0) + carry;

		r->d[i] = (uint32_t)t;
		carry = t >> 32;
	}
	r->d[big->n] = (uint32_t)carry;
	return bn_trim(r);
}

static struct bn *bn_absdiff(const struct bn *a, const struct bn *b)
{
	return bn_cmp(a, b) >= 0 ? bn_sub(a, b) : bn_sub(b, a);
}

static struct bn *bn_mul(const struct bn *a, const struct bn *b)
{
	struct bn *r = bn_new(a->n + b->n);

	memset(r->d, 0, r->n * sizeof(r->d[0]));
	for (uint32_t i = 0; i < a->n; i++) {
		uint64_t carry = 0;

		for (uint32_t j = 0; j < b->n; j++) {
			uint64_t t = (uint64_t)a->d[i] * b->d[j] + r->d[i + j] + carry;

			r->d[i + j] = (uint32_t)t;
			carry = t >> 32;
		}
		r->d[i + b->n] = (uint32_t)carry;
	}
	return bn_trim(r);
}

/* 2a + bit */
static struct bn *bn_shift_in(const struct bn *a, unsigned bit)
{
	struct bn *r = bn_new(a->n + 1);
	uint64_t carry = bit;

	for (uint32_t i = 0; i < a->n; i++) {
		uint64_t t = ((uint64_t)a->d[i] << 1) | carry;

		r->d[i] = (uint32_t)t;
		carry = t >> 32;
	}
	r->d[a->n] = (uint32_t)carry;
	return bn_trim(r);
}

static struct bn *bn_mod(const struct bn *a, const struct bn *m)
{
	struct bn *r = bn_new(0);

	for (uint32_t i = a->n * 32; i--;) {
		struct bn *t = bn_shift_in(r, (a->d[i / 32] >> (i % 32)) & 1);

		free(r);
		if (bn_cmp(t, m) >= 0) {
			r = bn_sub(t, m);
			free(t);
		} else {
			r = t;
		}
	}
	return r;
}

/* Consumes a and b. */
static struct bn *bn_gcd(struct bn *a, struct bn *b)
{
	while (b->n) {
		struct bn *t = bn_mod(a, b);

		free(a);
		a = b;
		b = t;
	}
	free(b);
	return a;
}

/* x^2 + c mod n; consumes x. */
static struct bn *cf_next(struct bn *x, const struct bn *c, const struct bn *n)
{
	struct bn *sq = bn_mul(x, x), *sum = bn_add(sq, c), *r = bn_mod(sum, n);

	free(x);
	free(sq);
	free(sum);
	return r;
}

/* acc * |x - y| mod n; consumes acc. */
static struct bn *cf_accumulate(struct bn *acc, const struct bn *x, const struct bn *y,
				const struct bn *n)
{
	struct bn *d = bn_absdiff(x, y), *p = bn_mul(acc, d), *r = bn_mod(p, n);

	free(acc);
	free(d);
	free(p);
	return r;
}

static struct bn *bn_copy(const struct bn *a)
{
	struct bn *r = bn_new(a->n);

	memcpy(r->d, a->d, a->n * sizeof(a->d[0]));
	return r;
}

/* A fixed number of rho steps on n = 1000003 * (2^61 - 1), taking a gcd
 * every CF_GCD_EVERY steps; each time the factor turns up, the walk
 * starts again with the next constant. */
static uint64_t run_cfrac(void)
{
	struct bn *p = bn_from(1000003), *q = bn_from((1ULL << 61) - 1), *n = bn_mul(p, q);
	struct bn *x = bn_from(2), *y = bn_from(2), *acc = bn_from(1), *c;
	uint64_t sum = 0, k = 1;

	c = bn_from(k);
	for (int step = 1; step <= CF_STEPS; step++) {
		x = cf_next(x, c, n);
		y = cf_next(cf_next(y, c, n), c, n);
		acc = cf_accumulate(acc, x, y, n);
		if (step % CF_GCD_EVERY == 0) {
			struct bn *g = bn_gcd(acc, bn_copy(n));

			sum += g->d[0];
			if (g->n != 1 || g->d[0] != 1) {
				free(c);
				free(x);
				free(y);
				c = bn_from(++k);
				x = bn_from(2);
				y = bn_from(2);
			}
			free(g);
			acc = bn_from(1);
		}
	}
	free(p), free(q), free(n), free(x), free(y), free(acc), free(c);
	return sum;
}

/* --- espresso ------------------------------------------------------------- */

/* espresso minimizes logic functions held as families of cubes: bit
 * vectors of a few words, one block each, combined pairwise into new
 * cubes, gathered in arrays that grow by realloc, and pruned of the cubes
 * that another one contains. */
#define ES_ROUNDS 6000
#define ES_CUBES 160
#define ES_PAIRS 6

struct es_family {
	size_t n, cap;
	uint64_t **cube;
};

static void es_add(struct es_family *f, uint64_t *c)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 8;
		f->cube = realloc(f->cube, f->cap * sizeof(*f->cube));
		if (!f->cube) {
			fprintf(stderr, "workload: realloc failed\n");
			exit(1);
		}
	}
	f->cube[f->n++] = c;
}

static bool es_contains(const uint64_t *big, const uint64_t *c, unsigned words)
{
	for (unsigned w = 0; w < words; w++)
		if ((big[w] & c[w]) != c[w])
			return false;
	return true;
}

static void es_free(struct es_family *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->cube[i]);
	free(f->cube);
}

/* The intersections of neighbouring cubes that keep enough literals,
 * less those another kept cube contains (looking a few back). */
static uint64_t es_round(uint64_t *seed, unsigned words)
{
	struct es_family f = { 0 }, g = { 0 }, kept = { 0 };
	uint64_t sum = 0;

	for (int i = 0; i < ES_CUBES; i++) {
		uint64_t *c = xmalloc(words * sizeof(*c));

		for (unsigned w = 0; w < words; w++)
			c[w] = rnd(seed) | rnd(seed);
		es_add(&f, c);
	}
	for (size_t i = 0; i < f.n; i++)
		for (size_t j = i + 1; j < f.n && j <= i + ES_PAIRS; j++) {
			uint64_t *c = xmalloc(words * sizeof(*c));
			unsigned bits = 0;

			for (unsigned w = 0; w < words; w++)
				bits += (unsigned)__builtin_popcountll(c[w] = f.cube[i][w] & f.cube[j][w]);
			if (bits * 2 > words * 64 / 2 - words * 4)
				es_add(&g, c);
			else
				free(c);
		}
	for (size_t i = 0; i < g.n; i++) {
		bool covered = false;

		for (size_t k = kept.n; k-- > 0 && k + 8 >= kept.n && !covered;)
			covered = es_contains(kept.cube[k], g.cube[i], words);
		if (covered) {
			free(g.cube[i]);
		} else {
			es_add(&kept, g.cube[i]);
			sum += g.cube[i][0] & 0xff;
		}
	}
	free(g.cube);
	es_free(&kept);
	es_free(&f);
	return sum;
}

static uint64_t run_espresso(void)
{
	uint64_t seed = 11, sum = 0;

	for (int r = 0; r < ES_ROUNDS; r++)
		sum += es_round(&seed, 2 + (unsigned)r % 10);
	return sum;
}

/* --- xmalloc -------------------------------------------------------------- */

/* xmalloc-test: threads in a ring, each allocating batches of small
 * blocks for the next one and freeing the batches the previous one made,
 * so that every block is freed by a thread other than its allocator's. */
#define XM_THREADS 4
#define XM_BATCHES 12000UL

struct xm_thread {
	struct xt_ring ring;   /* from this thread to the next */
	int index;
	uint64_t seed, sum;
} THREAD_RECORD;

static struct xm_thread xm[XM_THREADS];

static bool xm_produce(struct xm_thread *t, unsigned long b)
{
	void **slot = t->ring.batch[b % XT_RING];

	if (b - atomic_load_explicit(&t->ring.tail, memory_order_acquire) >= XT_RING)
		return false;
	for (int i = 0; i < XT_BATCH; i++) {
		size_t n = rnd_range(&t->seed, 8, 128);

		slot[i] = xmalloc(n);
		touch(slot[i], n);
	}
	atomic_store_explicit(&t->ring.head, b + 1, memory_order_release);
	return true;
}

static bool xm_consume(struct xm_thread *t, struct xt_ring *from, unsigned long b)
{
	void **slot = from->batch[b % XT_RING];

	if (atomic_load_explicit(&from->head, memory_order_acquire) <= b)
		return false;
	for (int i = 0; i < XT_BATCH; i++) {
		t->sum += sample(slot[i]);
		free(slot[i]);
	}
	atomic_store_explicit(&from->tail, b + 1, memory_order_release);
	return true;
}

static void *xm_worker(void *arg)
{
	struct xm_thread *t = arg;
	struct xt_ring *from = &xm[(t->index + XM_THREADS - 1) % XM_THREADS].ring;
	unsigned long made = 0, freed = 0;

	while (made < XM_BATCHES || freed < XM_BATCHES) {
		bool moved = false;

		if (made < XM_BATCHES && xm_produce(t, made)) {
			made++;
			moved = true;
		}
		if (freed < XM_BATCHES && xm_consume(t, from, freed)) {
			freed++;
			moved = true;
		}
		if (!moved)
			sched_yield();
	}
	return NULL;
}

static uint64_t run_xmalloc(void)
{
	uint64_t sum = 0;

	for (int i = 0; i < XM_THREADS; i++) {
		xm[i].index = i;
		xm[i].seed = 300 + (uint64_t)i;
	}
	run_threads(XM_THREADS, xm_worker, xm, sizeof(xm[0]));
	for (int i = 0; i < XM_THREADS; i++)
		sum += xm[i].sum;
	return sum;
}

/* --- mstress -------------------------------------------------------------- */

/* mimalloc's stress test: threads that allocate blocks of up to 128 words
 * (one in a hundred a hundred times bigger), free a random earlier one
 * two times in three, keep a share for their whole run, and swap blocks
 * with the other threads through a shared array; every block is filled
 * and checked when freed. */
#define MS_THREADS 4
#define MS_SCALE 4
#define MS_TRANSFERS 1000
#define MS_COOKIE 0xbf58476d1ce4e5b9ULL

static _Atomic(uintptr_t *) ms_transfer[MS_TRANSFERS];

struct ms_thread {
	int index;
	uint64_t seed;
} THREAD_RECORD;

static bool ms_chance(uint64_t *seed, unsigned percent)
{
	return rnd(seed) % 100 < percent;
}

static uintptr_t *ms_alloc(uint64_t *seed, size_t words)
{
	uintptr_t *p;

	if (ms_chance(seed, 1))
		words *= 100;
	p = xmalloc(words * sizeof(*p));
	for (size_t i = 0; i < words; i++)
		p[i] = (words - i) ^ MS_COOKIE;
	return p;
}

static void ms_free(uintptr_t *p)
{
	if (p) {
		size_t words = p[0] ^ MS_COOKIE;

		for (size_t i = 0; i < words; i++) {
			if ((p[i] ^ MS_COOKIE) != words - i) {
				fprintf(stderr, "workload: block %p overwritten\n", (void *)p);
				abort();
			}
		}
	}
	free(p);
}

static void *ms_worker(void *arg)
{
	struct ms_thread *t = arg;
	size_t allocs = 80 * MS_SCALE * (size_t)(t->index % 8 + 1), retain = allocs / 2;
	size_t top = 0, kept = 0;
	uintptr_t **data = xmalloc(allocs * sizeof(*data)), **retained = xmalloc(retain * sizeof(*retained));

	while (allocs || retain) {
		if (!retain || (allocs && ms_chance(&t->seed, 50))) {
			allocs--;
			data[top++] = ms_alloc(&t->seed, rnd(&t->seed) % 128 + 1);
		} else {
			retain--;
			retained[kept++] = ms_alloc(&t->seed, 10 * (rnd(&t->seed) % 1280 + 1));
		}
		if (top && ms_chance(&t->seed, 66)) {
			size_t k = rnd(&t->seed) % top;

			ms_free(data[k]);
			data[k] = NULL;
		}
		if (top && ms_chance(&t->seed, 25)) {
			size_t k = rnd(&t->seed) % top;

			data[k] = atomic_exchange(&ms_transfer[rnd(&t->seed) % MS_TRANSFERS], data[k]);
		}
	}
	for (size_t i = 0; i < kept; i++)
		ms_free(retained[i]);
	for (size_t i = 0; i < top; i++)
		ms_free(data[i]);
	free(retained);
	free(data);
	return NULL;
}

static uint64_t run_mstress(void)
{
	struct ms_thread t[MS_THREADS];
	uint64_t sum = 0;

	for (int i = 0; i < MS_THREADS; i++)
		t[i] = (struct ms_thread){ .index = i, .seed = (uint64_t)(i ^ 42) };
	run_threads(MS_THREADS, ms_worker, t, sizeof(t[0]));
	for (int i = 0; i < MS_TRANSFERS; i++) {
		uintptr_t *p = atomic_exchange(&ms_transfer[i], NULL);

		sum += p ? p[0] & 0xff : 0;
		ms_free(p);
	}
	return sum;
}

/* --- cache-scratch -------------------------------------------------------- */

/* Hoard's cache-scratch: the main thread allocates one small block for
 * each thread, which frees it and from then on allocates, writes over
 * and frees small blocks of its own.  An allocator that hands the freed
 * block back to its thread keeps two threads writing one cache line. */
#define CS_THREADS 2
#define CS_SIZE 8
#define CS_ITERATIONS 2000
#define CS_WRITES 100000

struct cs_thread {
	unsigned char *first;
	uint64_t sum;
} THREAD_RECORD;

static void *cs_worker(void *arg)
{
	struct cs_thread *t = arg;

	free(t->first);
	for (int i = 0; i < CS_ITERATIONS; i++) {
		volatile unsigned char *p = xmalloc(CS_SIZE);

		for (int k = 0; k < CS_WRITES; k++)
			p[k % CS_SIZE] = (unsigned char)(p[k % CS_SIZE] + k);
		t->sum += p[0];
		free((void *)p);
	}
	return NULL;
}

static uint64_t run_cache_scratch(void)
{
	struct cs_thread t[CS_THREADS];
	uint64_t sum = 0;

	for (int i = 0; i < CS_THREADS; i++)
		t[i] = (struct cs_thread){ .first = memset(xmalloc(CS_SIZE), 0, CS_SIZE) };
	run_threads(CS_THREADS, cs_worker, t, sizeof(t[0]));
	for (int i = 0; i < CS_THREADS; i++)
		sum += t[i].sum;
	return sum;
}

/* --- alloc-test ----------------------------------------------------------- */

/* The OLTP-like test of the alloc-test suite: each thread keeps a large
 * set of blocks whose sizes are spread evenly over the powers of two from
 * 8 bytes to 16 KiB, replaces random ones, and writes the head of each. */
#define AT_SLOTS 16384
#define AT_OPS 1500000UL

struct at_thread {
	unsigned long ops;
	uint64_t seed, sum;
} THREAD_RECORD;

static void *at_worker(void *arg)
{
	struct at_thread *t = arg;
	unsigned char **slot = calloc(AT_SLOTS, sizeof(*slot));

	if (!slot) {
		fprintf(stderr, "workload: out of memory\n");
		exit(1);
	}
	for (unsigned long i = 0; i < t->ops; i++) {
		uint64_t r = rnd(&t->seed);
		size_t k = r % AT_SLOTS, lg = 3 + (r >> 20) % 12;
		size_t n = ((size_t)1 << lg) + (r >> 32) % ((size_t)1 << lg);

		if (slot[k])
			t->sum += sample(slot[k]);
		free(slot[k]);
		slot[k] = memset(xmalloc(n), (int)n, n < 64 ? n : 64);
	}
	for (size_t k = 0; k < AT_SLOTS; k++)
		free(slot[k]);
	free(slot);
	return NULL;
}

static uint64_t run_alloc_test(int threads)
{
	struct at_thread t[LA_MAX_THREADS];
	uint64_t sum = 0;

	for (int i = 0; i < threads; i++)
		t[i] = (struct at_thread){ .ops = AT_OPS / (unsigned long)threads,
					   .seed = 400 + (uint64_t)i };
	run_threads(threads, at_worker, t, sizeof(t[0]));
	for (int i = 0; i < threads; i++)
		sum += t[i].sum;
	return sum;
}

/* --- malloc-large --------------------------------------------------------- */

/* mimalloc's malloc-large: twenty buffers of 5 to 25 MiB, one of them
 * replaced at each step; a buffer is written at its two ends only. */
#define ML_BUFFERS 20
#define ML_STEPS 3000

static uint64_t run_malloc_large(void)
{
	unsigned char *buf[ML_BUFFERS] = { 0 };
	uint64_t seed = 5, sum = 0;

	for (int i = 0; i < ML_STEPS; i++) {
		size_t k = rnd(&seed) % ML_BUFFERS, n = rnd_range(&seed, 5 << 20, 25 << 20);

		if (buf[k])
			sum += sample(buf[k]);
		free(buf[k]);
		buf[k] = xmalloc(n);
		touch(buf[k], n);
	}
	for (int k = 0; k < ML_BUFFERS; k++)
		free(buf[k]);
	return sum;
}

/* --- mleak ---------------------------------------------------------------- */

/* mimalloc's mleak: many short threads, each of which allocates one
 * small zeroed block and swaps it into a shared array, freeing what it
 * takes out: an allocator that keeps memory per thread and does not give
 * it back when threads end grows here. */
#define MK_THREADS 10
#define MK_ROUNDS 300
#define MK_TRANSFERS (MK_THREADS * 100)

static _Atomic(unsigned char *) mk_transfer[MK_TRANSFERS];

struct mk_thread {
	uint64_t seed;
} THREAD_RECORD;

static void *mk_worker(void *arg)
{
	struct mk_thread *t = arg;
	unsigned char *p = calloc(16, sizeof(void *));

	if (!p) {
		fprintf(stderr, "workload: out of memory\n");
		exit(1);
	}
	p[0] = 1;
	free(atomic_exchange(&mk_transfer[rnd(&t->seed) % MK_TRANSFERS], p));
	return NULL;
}

static uint64_t run_mleak(void)
{
	struct mk_thread t[MK_THREADS];
	uint64_t sum = 0;

	for (int r = 0; r < MK_ROUNDS; r++) {
		for (int i = 0; i < MK_THREADS; i++)
			t[i].seed = (uint64_t)(r * MK_THREADS + i);
		run_threads(MK_THREADS, mk_worker, t, sizeof(t[0]));
	}
	for (int i = 0; i < MK_TRANSFERS; i++) {
		unsigned char *p = atomic_exchange(&mk_transfer[i], NULL);

		sum += p ? p[0] : 0;
		free(p);
	}
	return sum;
}

/* --- leaky ---------------------------------------------------------------- */

/* The legacy program a collector is for: 2 GiB allocated in blocks of 64
 * to 512 bytes, of which only the last LK_KEEP are still referenced (about
 * 11 MiB); the rest are dropped without being freed.  Without a collector
 * it ends holding the whole 2 GiB. */
#define LK_TOTAL (2048UL << 20)
#define LK_KEEP 40000

static unsigned char *lk_recent[LK_KEEP];

static uint64_t run_leaky(void)
{
	uint64_t seed = 9, sum = 0;
	size_t total = 0, next = 0;

	while (total < LK_TOTAL) {
		size_t n = rnd_range(&seed, 64, 512);

		if (lk_recent[next])
			sum += sample(lk_recent[next]);
		lk_recent[next] = xmalloc(n);
		touch(lk_recent[next], n);
		next = (next + 1) % LK_KEEP;
		total += n;
	}
	return sum;
}

/* --- pool ---------------------------------------------------------------- */

/* A thread-per-connection server: a thousand threads alive at once, each
 * serving a few requests, each request a few dozen blocks of sizes from
 * 16 bytes to 4 KiB, written and freed when it is answered.  An allocator
 * that keeps per thread what a busy thread would need holds it a
 * thousand times over here. */
#define PL_THREADS 1000
#define PL_REQUESTS 20
#define PL_BLOCKS 48

struct pl_thread {
	uint64_t seed, sum;
} THREAD_RECORD;

static pthread_barrier_t pl_all_up;

static void *pl_worker(void *arg)
{
	struct pl_thread *t = arg;
	unsigned char *b[PL_BLOCKS];

	for (int r = 0; r < PL_REQUESTS; r++) {
		for (int i = 0; i < PL_BLOCKS; i++) {
			size_t n = (size_t)16 << rnd(&t->seed) % 9;

			n += rnd(&t->seed) % n;
			b[i] = xmalloc(n);
			touch(b[i], n);
		}
		for (int i = 0; i < PL_BLOCKS; i++) {
			t->sum += sample(b[i]);
			free(b[i]);
		}
		if (r == PL_REQUESTS / 2)   /* every thread alive at once, caches filled */
			pthread_barrier_wait(&pl_all_up);
	}
	return NULL;
}

static uint64_t run_pool(void)
{
	static struct pl_thread t[PL_THREADS];
	static pthread_t id[PL_THREADS];
	pthread_attr_t attr;
	uint64_t sum = 0;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128 * 1024);
	pthread_barrier_init(&pl_all_up, NULL, PL_THREADS);
	for (int i = 0; i < PL_THREADS; i++) {
		t[i] = (struct pl_thread){ .seed = 700 + (uint64_t)i };
		if (pthread_create(&id[i], &attr, pl_worker, &t[i])) {
			fprintf(stderr, "workload: cannot start a thread\n");
			exit(1);
		}
	}
	for (int i = 0; i < PL_THREADS; i++) {
		pthread_join(id[i], NULL);
		sum += t[i].sum;
	}
	pthread_barrier_destroy(&pl_all_up);
	pthread_attr_destroy(&attr);
	return sum;
}

/* --- main ----------------------------------------------------------------- */

struct workload {
	const char *name;
	uint64_t (*run)(void);           /* a fixed shape */
	uint64_t (*run_n)(int threads);  /* or on THREADS threads (default_threads) */
	int default_threads;
};

static const struct workload workloads[] = {
	{ "churn", run_churn, NULL, 0 },
	{ "xthread", run_xthread, NULL, 0 },
	{ "realloc", run_realloc, NULL, 0 },
	{ "larson", NULL, run_larson, 2 },
	{ "deep", run_deep, NULL, 0 },
	{ "mthread", NULL, run_mthread, 1 },
	{ "cfrac", run_cfrac, NULL, 0 },
	{ "espresso", run_espresso, NULL, 0 },
	{ "xmalloc", run_xmalloc, NULL, 0 },
	{ "mstress", run_mstress, NULL, 0 },
	{ "cache-scratch", run_cache_scratch, NULL, 0 },
	{ "alloc-test", NULL, run_alloc_test, 1 },
	{ "malloc-large", run_malloc_large, NULL, 0 },
	{ "mleak", run_mleak, NULL, 0 },
	{ "pool", run_pool, NULL, 0 },
	{ "leaky", run_leaky, NULL, 0 },
};

static int usage(void)
{
	fprintf(stderr, "usage: workload NAME [THREADS]; NAME is one of");
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
		fprintf(stderr, " %s%s", workloads[i].name, workloads[i].run_n ? " [THREADS]" : "");
	fprintf(stderr, "\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "";

	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
		const struct workload *w = &workloads[i];
		int threads = argc > 2 ? atoi(argv[2]) : w->default_threads;

		if (strcmp(name, w->name))
			continue;
		if (argc > (w->run_n ? 3 : 2) || (w->run_n && (threads < 1 || threads > LA_MAX_THREADS)))
			break;
		printf("%llu\n", (unsigned long long)(w->run_n ? w->run_n(threads) : w->run()));
		return 0;
	}
	return usage();
}
