/* Stopping the world: every other thread of the process (found in
 * /proc/self/task, however it was created) is held still until the
 * collector resumes it.  Where the process may be traced, a helper task
 * holds the threads in ptrace stops (tracer.h) and copies out their
 * registers: blocking calls are not interrupted.  Otherwise each thread
 * is sent the stop signal and waits in its handler, its registers saved
 * in its signal frame on its own stack. */
#ifndef GCSHIM_STOP_H
#define GCSHIM_STOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* General and vector registers of a traced thread, as the kernel's
 * register sets lay them out (x86-64: 216 + 512 bytes; aarch64: 272 +
 * 528). */
#define STOP_REG_WORDS 104

struct stopped {
	pid_t tid;
	_Atomic uint32_t acked;  /* collection number it stopped for */
	uintptr_t sp;            /* lowest live address: handler frame or red zone */
	uintptr_t isp;           /* stack pointer where it was interrupted */
	uintptr_t tp;            /* thread pointer (TCB, static TLS) */
	bool traced;             /* held by the tracer: regs are its registers */
	int inject;              /* signal it was stopped for, delivered on release */
	size_t nregs;            /* words of regs in use; 0 when signalled */
	uintptr_t regs[STOP_REG_WORDS];
};

struct world {
	struct stopped *threads;
	size_t n;
	uintptr_t self_sp, self_tp;
	uint64_t stop_ns;        /* time taken to stop everyone */
	uint64_t released_at;    /* os_now_ns() as resume_world let them go */
};

bool stop_init(int sig, int timeout_ms, bool trace);
int stop_signal(void);
/* While the world is stopped, blocks in the threads' caches are hidden
 * from the object map (bcache.h): it shows live blocks only. */
bool stop_world(struct world *w);
void resume_world(struct world *w);
bool stop_in_handler(void);
/* The thread that did not stop when a collection last gave up, or 0. */
pid_t stop_laggard(void);

/* Threads of the shim that cooperate with the collector (they touch no
 * heap memory while the world is stopped) are left running by
 * stop_world.  A fork child starts with none. */
bool stop_exclude(pid_t tid);
void stop_include(pid_t tid);
void stop_fork_child(void);

/* The control thread spends its life waiting for requests, holding
 * nothing of the heap but what its stack above the wait holds.  Parked in
 * such a wait (wait(arg), its result returned), it is left running
 * through a stop of the world, its stack scanned from where it parked
 * with its registers spilled there: a ptrace stop of it cost more than
 * many a collection of a small heap.  A wait that ends while the world
 * is stopped waits again, until the world resumes.  One thread at a time
 * parks. */
int stop_parked(int (*wait)(void *arg), void *arg);

#endif
