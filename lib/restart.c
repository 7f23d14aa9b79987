/* Linux ends a few blocking calls with EINTR whenever their thread is
 * stopped, even by ptrace and with no handler run (signal(7): epoll_wait
 * and epoll_pwait among them), where poll, select and nanosleep resume by
 * themselves.  When the tracer saw that a stop of the world alone ended
 * such a call, the call is made again for the time that remains, which
 * is what the kernel does for the others. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <time.h>

#include "os.h"
#include "sigguard.h"
#include "events.h"
#include "tracer.h"

#define EXPORT __attribute__((visibility("default")))
#define NS 1000000000ULL

typedef int (*epoll_wait_fn)(int, struct epoll_event *, int, int);
typedef int (*epoll_pwait_fn)(int, struct epoll_event *, int, int, const sigset_t *);
typedef int (*epoll_pwait2_fn)(int, struct epoll_event *, int, const struct timespec *,
			       const sigset_t *);

static void *next_symbol(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (!f)
		errno = ENOSYS;
	return f;
}

static uint64_t deadline_ms(int timeout)
{
	return timeout > 0 ? os_now_ns() + (uint64_t)timeout * 1000000 : 0;
}

/* Rounded up, as the kernel rounds a timeout. */
static int left_ms(int timeout, uint64_t deadline)
{
	uint64_t now;

	if (timeout <= 0)
		return timeout;
	now = os_now_ns();
	return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* Made again only if it failed with EINTR, the stop was the cause, and
 * none of the program's signal handlers ran since the program made the
 * call (handled: the count then).  A handler that ran between two waits
 * of one call must end it all the same: a program sets a flag in the
 * handler and checks it only when the call returns. */
static bool again(int r, unsigned long handled)
{
	bool fired = tracer_fired();

	if (r >= 0 || errno != EINTR || !fired || sigguard_handlers_run() != handled)
		return false;
	stat_inc(EV_calls_restarted);
	return true;
}

EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	static epoll_wait_fn real;
	uint64_t deadline = deadline_ms(timeout);
	unsigned long handled;
	int r;

	if (!real && !(real = (epoll_wait_fn)next_symbol("epoll_wait")))
		return -1;
	handled = sigguard_handlers_run();
	do {
		int ms = left_ms(timeout, deadline);

		tracer_arm();
		r = real(epfd, ev, max, ms);
	} while (again(r, handled));
	return r;
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout,
		       const sigset_t *mask)
{
	static epoll_pwait_fn real;
	uint64_t deadline = deadline_ms(timeout);
	unsigned long handled;
	int r;

	if (!real && !(real = (epoll_pwait_fn)next_symbol("epoll_pwait")))
		return -1;
	handled = sigguard_handlers_run();
	do {
		int ms = left_ms(timeout, deadline);

		tracer_arm();
		r = real(epfd, ev, max, ms, mask);
	} while (again(r, handled));
	return r;
}

EXPORT int epoll_pwait2(int epfd, struct epoll_event *ev, int max,
			const struct timespec *timeout, const sigset_t *mask)
{
	static epoll_pwait2_fn real;
	uint64_t deadline = 0;
	struct timespec left;
	unsigned long handled;
	int r;

	if (!real && !(real = (epoll_pwait2_fn)next_symbol("epoll_pwait2")))
		return -1;
	if (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= (long)NS))
		return real(epfd, ev, max, timeout, mask);   /* the kernel's EINVAL */
	if (timeout)
		deadline = os_now_ns() + (uint64_t)timeout->tv_sec * NS + (uint64_t)timeout->tv_nsec;
	handled = sigguard_handlers_run();
	do {
		uint64_t now = timeout ? os_now_ns() : 0;
		uint64_t ns = now < deadline ? deadline - now : 0;

		left = (struct timespec){ (time_t)(ns / NS), (long)(ns % NS) };
		tracer_arm();
		r = real(epfd, ev, max, timeout ? &left : NULL, mask);
	} while (again(r, handled));
	return r;
}
