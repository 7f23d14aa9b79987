/* The control thread must never be what keeps a process alive.  Linux
 * ends a process with its last thread, and glibc calls exit(0) when the
 * last thread it knows leaves; our thread would be that last one.  So the
 * end of the leader thread's user code is watched (pthread_exit, or the
 * return of a thread start routine in a child forked from a thread), and
 * after it the control thread leaves as soon as it is alone. */
#ifndef GCSHIM_EXITWATCH_H
#define GCSHIM_EXITWATCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* wake is called from the ending thread, once the leader's code ended. */
void exitwatch_init(void (*wake)(void));
bool exitwatch_leader_done(void);
uint64_t exitwatch_endings(void);
bool exitwatch_alone(void);
int exitwatch_spawn(pthread_t *t, void *(*fn)(void *), void *arg);
void exitwatch_fork_child(void);

#endif
