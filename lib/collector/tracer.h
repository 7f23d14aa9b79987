/* Stopping threads with ptrace.  A thread held in a ptrace stop is
 * stopped the way SIGSTOP stops it: no handler runs on it, and the
 * blocking call it was in resumes by itself afterwards.  A thread cannot
 * trace its own thread group, so the tracing is done by a helper task
 * that shares the address space but is a process of its own (clone with
 * CLONE_VM, exit signal 0: no SIGCHLD, invisible to wait(2) without
 * __WALL).  It lives for one stop only: made when the world stops, gone
 * before stop_world's caller resumes, so a fork, an exec or the end of
 * the process never finds one. */
#ifndef GCSHIM_TRACER_H
#define GCSHIM_TRACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stop.h"

enum tracer_status {
	TRACER_OK,
	TRACER_OFF,        /* not to be used (GCSHIM_TRACE=0) */
	TRACER_TRACED,     /* a thread has another tracer (debugger, strace) */
	TRACER_DENIED,     /* ptrace not permitted (Yama, not dumpable) */
	TRACER_FILTERED,   /* a seccomp filter could turn ptrace into a signal */
	TRACER_FAILED,     /* no helper task */
	TRACER_TIMEOUT,    /* a thread did not stop in time: all were let go */
};

bool tracer_init(void);
/* Starts the helper; false with a status when tracing is impossible. */
bool tracer_begin(enum tracer_status *why);
/* Stops s[from..to) (tids set), fills their registers or marks them gone. */
enum tracer_status tracer_stop(struct stopped *s, size_t from, size_t to,
			       uint64_t deadline_ns);
/* Lets s[0..n) go and ends the helper, which lets most of them go as it
 * ends, all at once; returns os_now_ns() as it began to end. */
uint64_t tracer_end(struct stopped *s, size_t n);
/* After TRACER_TIMEOUT: the thread the helper was still waiting for. */
pid_t tracer_waiting_on(void);

/* For the calls the kernel ends with EINTR even under a ptrace stop
 * (epoll_wait and its kind): armed before the call, fired after it when
 * a stop of the world was the only cause of its EINTR. */
void tracer_arm(void);
bool tracer_fired(void);

#endif
