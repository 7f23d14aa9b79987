/* Allocation workloads for comparing malloc implementations.
 *
 *   workload churn              single-thread small-object churn
 *   workload xthread            producer allocates, consumer frees
 *   workload realloc            buffers grown step by step, then freed
 *   workload larson [THREADS]   server-style slots with hand-overs
 *   workload deep               churn from 8 to 31 calls down a recursion
 *
 * Every run is deterministic in the work it does (each thread has its own
 * seeded PRNG) and prints only a checksum of the bytes it read back, so
 * that the compiler cannot drop the allocations. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

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

/* --- main ----------------------------------------------------------------- */

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

static int usage(void)
{
	fprintf(stderr, "usage: workload churn|xthread|realloc|larson [THREADS]|deep\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "";
	uint64_t sum;

	if (!strcmp(name, "churn"))
		sum = run_churn();
	else if (!strcmp(name, "xthread"))
		sum = run_xthread();
	else if (!strcmp(name, "realloc"))
		sum = run_realloc();
	else if (!strcmp(name, "deep"))
		sum = run_deep();
	else if (!strcmp(name, "larson")) {
		int threads = argc > 2 ? atoi(argv[2]) : 2;

		if (threads < 1 || threads > LA_MAX_THREADS)
			return usage();
		sum = run_larson(threads);
	} else
		return usage();
	printf("%llu\n", (unsigned long long)sum);
	return 0;
}
