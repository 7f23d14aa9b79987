/* Time to stop the world, per thread: THREADS threads block in nanosleep
 * while ROUNDS collections of an almost empty heap run; prints the median
 * of stop_world's time (last_stop_ns) and of the whole pause, each also
 * divided by the number of threads stopped.  Run under LD_PRELOAD with
 * GCSHIM_TRACE=1 (ptrace stops) or 0 (the stop signal). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "gcshim.h"

#pragma weak gcshim_collect
#pragma weak gcshim_get_stats

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec ts = { 3600, 0 };

		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 4, rounds = argc > 2 ? atoi(argv[2]) : 200;
	int64_t *stop = calloc((size_t)rounds, sizeof(*stop)), *pause = calloc((size_t)rounds, sizeof(*pause));
	struct gcshim_stats st = { .size = sizeof(st) };
	pthread_t t;

	if (!gcshim_collect || !gcshim_get_stats || !stop || !pause) {
		fprintf(stderr, "stopbench: run under LD_PRELOAD=libgcshim.so\n");
		return 1;
	}
	for (int i = 0; i < threads; i++)
		pthread_create(&t, NULL, sleeper, NULL);
	usleep(100 * 1000);
	for (int i = 0; i < rounds; i++) {
		gcshim_collect(2);
		gcshim_get_stats(&st);
		stop[i] = st.last_stop_ns;
		pause[i] = st.pause_last_ns;
		usleep(1000);
	}
	qsort(stop, (size_t)rounds, sizeof(*stop), cmp);
	qsort(pause, (size_t)rounds, sizeof(*pause), cmp);
	printf("%-7s %4d threads  stop %8.1f us (%6.1f us/thread)  pause %8.1f us (%6.1f us/thread)  traced %ld signalled %ld\n",
	       getenv("GCSHIM_TRACE") && atoi(getenv("GCSHIM_TRACE")) == 0 ? "signal" : "trace",
	       threads, stop[rounds / 2] / 1e3, stop[rounds / 2] / 1e3 / threads,
	       pause[rounds / 2] / 1e3, pause[rounds / 2] / 1e3 / threads,
	       (long)st.stops_traced, (long)st.stops_signalled);
	return 0;
}
