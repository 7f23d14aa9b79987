/* The torture fixture: run under libgcshim.so for a number of seconds,
 *   torture SECONDS
 * it allocates and frees from 8 threads with random sizes and lifetimes,
 * creates and joins a pool of threads in a loop, and forks every few
 * milliseconds a child that allocates, collects and exits, while the
 * shim collects by threshold and clients query it from outside.
 *
 * Every block holds a pattern derived from its address and size, checked
 * before it is freed and at the end: a block freed or reused while the
 * program still held it shows as a wrong pattern.  The program keeps its
 * own count of the usable bytes it holds; at the end, with every thread
 * joined, mem_alloc must drop by exactly that count when it frees them.
 * It prints its figures and exits 0 only when every check held. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gcshim.h"

#pragma weak gcshim_collect
#pragma weak gcshim_mem_alloc
#pragma weak gcshim_get_stats

#define WORKERS 8
#define SLOTS 2048            /* blocks a worker holds at most */
#define POOL 4                /* threads of the pool, created and joined each round */
#define FORK_EVERY_US 4000
#define CHILDREN 4            /* alive at once */
#define CHILD_DEADLINE_S 30   /* a child still running then is stuck */

struct worker {
	pthread_t thread;
	unsigned seed;
	unsigned char **slot;     /* the blocks held, in a block of the heap */
	size_t *size;
	long allocs, frees, live_bytes;
};

static struct worker workers[WORKERS];
static atomic_bool stop;
static atomic_long failures, forks, pool_rounds, child_failures;

static void failure(const char *fmt, const char *what, long n)
{
	fprintf(stderr, fmt, what, n);
	atomic_fetch_add(&failures, 1);
}

static unsigned char pattern(const unsigned char *p, size_t i)
{
	return (unsigned char)(((uintptr_t)p >> 4) + i * 131);
}

static void fill(unsigned char *p, size_t n)
{
	size_t upto = n < 64 ? n : 64;

	for (size_t i = 0; i < upto; i++)
		p[i] = pattern(p, i);
	p[n - 1] = pattern(p, n - 1);
}

static bool intact(const unsigned char *p, size_t n)
{
	size_t upto = n < 64 ? n : 64;

	for (size_t i = 0; i < upto; i++)
		if (p[i] != pattern(p, i))
			return false;
	return p[n - 1] == pattern(p, n - 1);
}

/* Mostly small, some pages, a few large: sizes of a real program. */
static size_t random_size(unsigned *seed)
{
	unsigned r = (unsigned)rand_r(seed);

	if (r % 1000 < 800)
		return 1 + r % 256;
	if (r % 1000 < 995)
		return 256 + r % 16384;
	return 65536 + r % (1 << 18);
}

static void release(struct worker *w, size_t i)
{
	unsigned char *p = w->slot[i];

	if (!p)
		return;
	if (!intact(p, w->size[i]))
		failure("block %s%ld changed while the program held it\n", "in slot ", (long)i);
	w->live_bytes -= (long)malloc_usable_size(p);
	free(p);
	w->slot[i] = NULL;
	w->frees++;
}

static void place(struct worker *w, size_t i, size_t n)
{
	unsigned char *p = malloc(n);

	if (!p) {
		failure("malloc(%s%ld) failed\n", "", (long)n);
		return;
	}
	fill(p, n);
	w->slot[i] = p;
	w->size[i] = n;
	w->live_bytes += (long)malloc_usable_size(p);
	w->allocs++;
}

/* Lifetimes: a slot is replaced at random, so some blocks live for one
 * step and others for the whole run; now and then a burst frees many. */
static void *work(void *arg)
{
	struct worker *w = arg;

	while (!atomic_load(&stop)) {
		size_t i = (size_t)rand_r(&w->seed) % SLOTS;

		release(w, i);
		if (rand_r(&w->seed) % 4)
			place(w, i, random_size(&w->seed));
		if (rand_r(&w->seed) % 5000 == 0)
			for (size_t j = 0; j < SLOTS; j += 2)
				release(w, j);
	}
	return NULL;
}

static void *pool_task(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	void *keep[64];

	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 64; i++)
			keep[i] = malloc(random_size(&seed));
		for (int i = 0; i < 64; i++)
			free(keep[i]);
	}
	return NULL;
}

static void *run_pool(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		pthread_t t[POOL];

		for (uintptr_t i = 0; i < POOL; i++)
			if (pthread_create(&t[i], NULL, pool_task, (void *)(i + 1)))
				failure("pthread_create %s%ld failed\n", "", (long)i);
		for (int i = 0; i < POOL; i++)
			pthread_join(t[i], NULL);
		atomic_fetch_add(&pool_rounds, 1);
	}
	return NULL;
}

/* The child: its parent's other threads are gone, the collector and the
 * allocator must work all the same. */
static void child(void)
{
	unsigned char *kept[100];
	unsigned seed = (unsigned)getpid();

	for (int i = 0; i < 100; i++) {
		kept[i] = malloc(random_size(&seed) % 4096 + 1);
		fill(kept[i], malloc_usable_size(kept[i]));
		free(malloc(100));
	}
	if (gcshim_collect && gcshim_collect(2) < 0)
		_exit(3);
	for (int i = 0; i < 100; i++) {
		if (!intact(kept[i], malloc_usable_size(kept[i])))
			_exit(4);
		free(kept[i]);
	}
	exit(0);
}

struct child {
	pid_t pid;
	struct timespec born;
};

static void judge(pid_t pid, int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	atomic_fetch_add(&child_failures, 1);
	if (WIFSIGNALED(status))
		failure("child %s%ld killed by a signal\n", "", (long)pid);
	else
		failure("child %s%ld failed\n", "", (long)pid);
}

/* A child still running CHILD_DEADLINE_S after its fork is stuck. */
static bool reap(struct child *c, bool wait)
{
	struct timespec now;
	int status;
	pid_t got = waitpid(c->pid, &status, wait ? 0 : WNOHANG);

	if (got == c->pid) {
		judge(c->pid, status);
		c->pid = 0;
		return true;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - c->born.tv_sec > CHILD_DEADLINE_S) {
		failure("child %s%ld still running: stuck\n", "", (long)c->pid);
		kill(c->pid, SIGKILL);
		waitpid(c->pid, &status, 0);
		c->pid = 0;
		return true;
	}
	return false;
}

/* A fork every FORK_EVERY_US, CHILDREN at most alive at once. */
static void *run_forks(void *arg)
{
	struct child kids[CHILDREN] = { { 0 } };

	(void)arg;
	while (!atomic_load(&stop)) {
		for (int i = 0; i < CHILDREN; i++) {
			if (kids[i].pid && !reap(&kids[i], false))
				continue;
			kids[i].pid = fork();
			if (kids[i].pid == 0)
				child();
			if (kids[i].pid < 0) {
				failure("fork: %s%ld\n", strerror(errno), 0);
				kids[i].pid = 0;
				break;
			}
			clock_gettime(CLOCK_MONOTONIC, &kids[i].born);
			atomic_fetch_add(&forks, 1);
			break;
		}
		usleep(FORK_EVERY_US);
	}
	for (int i = 0; i < CHILDREN; i++)
		while (kids[i].pid && !reap(&kids[i], false))
			usleep(1000);
	return NULL;
}

static void start_workers(void)
{
	for (int i = 0; i < WORKERS; i++) {
		struct worker *w = &workers[i];

		w->seed = (unsigned)(i * 7919 + time(NULL));
		w->slot = calloc(SLOTS, sizeof(*w->slot));
		w->size = calloc(SLOTS, sizeof(*w->size));
		w->live_bytes = (long)(malloc_usable_size(w->slot) + malloc_usable_size(w->size));
		pthread_create(&w->thread, NULL, work, w);
	}
}

/* With every thread joined: the blocks still held are intact, and
 * freeing them takes exactly their bytes off mem_alloc. */
static void check_live_bytes(void)
{
	long own = 0, allocs = 0, frees = 0;
	int64_t before, after;

	for (int i = 0; i < WORKERS; i++) {
		own += workers[i].live_bytes;
		allocs += workers[i].allocs;
		frees += workers[i].frees;
	}
	before = gcshim_mem_alloc ? gcshim_mem_alloc() : 0;
	for (int i = 0; i < WORKERS; i++) {
		for (size_t s = 0; s < SLOTS; s++)
			release(&workers[i], s);
		free(workers[i].slot);
		free(workers[i].size);
	}
	after = gcshim_mem_alloc ? gcshim_mem_alloc() : 0;
	printf("allocations: %ld, frees: %ld, live at the end: %ld bytes\n", allocs, frees, own);
	printf("mem_alloc: %ld before freeing them, %ld after: %ld bytes freed\n", (long)before,
	       (long)after, (long)(before - after));
	if (gcshim_mem_alloc && before - after != own)
		failure("mem_alloc dropped by %s%ld bytes, not by the program's own count\n", "",
			(long)(before - after));
}

static void print_stats(void)
{
	struct gcshim_stats st = { .size = sizeof(st) };

	if (!gcshim_get_stats || gcshim_get_stats(&st) < 0)
		return;
	printf("collections: %ld (%ld by threshold, %ld abandoned), max pause: %.3f ms, "
	       "p99 pause: %.3f ms\n", (long)st.collections, (long)st.threshold_triggers,
	       (long)st.collections_abandoned, (double)st.pause_max_ns / 1e6,
	       (double)st.pause_p99_ns / 1e6);
	printf("unreachable blocks found: %ld, false garbage: %ld\n", (long)st.collected_blocks,
	       (long)st.false_garbage);
	printf("control connections: %ld, bad requests: %ld\n", (long)st.ctl_connections,
	       (long)st.ctl_bad_requests);
	if (st.false_garbage)
		failure("%s%ld blocks were found unreachable and then freed by the program\n", "",
			(long)st.false_garbage);
}

/* sleep() returns early whenever a collection stops this thread */
static void wait_seconds(int seconds)
{
	struct timespec end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += seconds;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) == EINTR)
		;
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 10;
	pthread_t pool, forker;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("torture: %d seconds, %d workers, pid %d\n", seconds, WORKERS, (int)getpid());
	start_workers();
	pthread_create(&pool, NULL, run_pool, NULL);
	pthread_create(&forker, NULL, run_forks, NULL);
	wait_seconds(seconds);
	atomic_store(&stop, true);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(workers[i].thread, NULL);
	pthread_join(pool, NULL);
	pthread_join(forker, NULL);
	printf("forks: %ld (%ld failed), thread pool rounds: %ld\n", atomic_load(&forks),
	       atomic_load(&child_failures), atomic_load(&pool_rounds));
	check_live_bytes();
	print_stats();
	printf("torture: %s\n", atomic_load(&failures) ? "FAILED" : "passed");
	return atomic_load(&failures) ? 1 : 0;
}
