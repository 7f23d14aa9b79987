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

int exitwatch_init(void);
int exitwatch_fd(void);
bool exitwatch_leader_done(void);
void exitwatch_drain(void);
bool exitwatch_alone(void);
int exitwatch_spawn(pthread_t *t, void *(*fn)(void *), void *arg);
void exitwatch_fork_child(void);

#endif
