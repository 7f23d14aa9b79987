/* Thread stacks that are no longer roots.  glibc keeps the stacks of
 * joined threads mapped, in a cache, for the next threads; in a child of
 * fork() the other threads of the parent are gone but their stacks stay.
 * The frames below where a thread's own code began hold only stale words
 * once the thread has ended: they are left out of the roots until a new
 * thread runs on that stack.  The thread's descriptor and static TLS,
 * above that point, stay roots (a joiner still reads its result).
 *
 * Threads are known by their thread pointer (the same for a stack reused
 * from glibc's cache); the table is fixed, lock-free, and read while the
 * world is stopped. */
#ifndef GCSHIM_TSTACKS_H
#define GCSHIM_TSTACKS_H

#include <stdbool.h>
#include <stdint.h>

/* The calling thread's own frames lie below floor (for the main thread:
 * below its argument vector). */
void tstacks_started(uintptr_t floor);
void tstacks_main_started(uintptr_t floor);

/* The same for a thread of the shim's own (the control thread): its
 * frames are never roots, since it runs only the shim's code, and its
 * stack keeps stale block addresses from the requests it served. */
void tstacks_shim_started(uintptr_t floor);

/* The calling thread's own code has ended. */
void tstacks_ended(void);

/* In a child of fork: every thread but the caller has ended. */
void tstacks_fork_child(void);

/* World stopped: the floor of a stack in the mapping [lo, hi) whose
 * frames are not roots, 0 if there is none: a shim thread's stack, or,
 * when no thread's stack pointer is in the mapping (running: false), an
 * ended thread's.  main_stack: the mapping is the main thread's. */
uintptr_t tstacks_dead_floor(uintptr_t lo, uintptr_t hi, bool main_stack, bool running);

#endif
