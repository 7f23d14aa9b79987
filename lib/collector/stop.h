/* Stopping the world: every other thread of the process (found in
 * /proc/self/task, however it was created) is sent the stop signal and
 * waits in its handler, its registers saved in its signal frame on its
 * own stack, until the collector resumes it. */
#ifndef GCSHIM_STOP_H
#define GCSHIM_STOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct stopped {
	pid_t tid;
	_Atomic uint32_t acked;  /* collection number it stopped for */
	uintptr_t sp;            /* lowest live address: the handler frame */
	uintptr_t isp;           /* stack pointer where it was interrupted */
	uintptr_t tp;            /* thread pointer (TCB, static TLS) */
};

struct world {
	struct stopped *threads;
	size_t n;
	uintptr_t self_sp, self_tp;
	uint64_t stop_ns;        /* time taken to stop everyone */
};

bool stop_init(int sig, int timeout_ms);
int stop_signal(void);
/* While the world is stopped, blocks in the threads' caches are hidden
 * from the object map (bcache.h): it shows live blocks only. */
bool stop_world(struct world *w);
void resume_world(struct world *w);
bool stop_in_handler(void);
/* The thread that did not stop when a collection last gave up, or 0. */
pid_t stop_laggard(void);

#endif
