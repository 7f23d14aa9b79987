#define _GNU_SOURCE
#include "sigguard.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/signalfd.h>

#include "log.h"

#define EXPORT __attribute__((visibility("default")))

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef int (*sigmask_fn)(int, const sigset_t *, sigset_t *);
typedef int (*sigsuspend_fn)(const sigset_t *);
typedef int (*signalfd_fn)(int, const sigset_t *, int);
typedef int (*sigwait_fn)(const sigset_t *, int *);
typedef int (*sigwaitinfo_fn)(const sigset_t *, siginfo_t *);
typedef int (*sigtimedwait_fn)(const sigset_t *, siginfo_t *, const struct timespec *);

static struct {
	sigaction_fn sigaction;
	sigmask_fn sigprocmask, pthread_sigmask;
	sigsuspend_fn sigsuspend;
	signalfd_fn signalfd;
	sigwait_fn sigwait;
	sigwaitinfo_fn sigwaitinfo;
	sigtimedwait_fn sigtimedwait;
} real;

static int guarded;               /* 0 until the collector owns a signal */
static struct sigaction shadow;   /* what the program believes is set */

/* Resolved from the constructor, before any signal handler can run:
 * dlsym is not async-signal-safe. */
void sigguard_init(void)
{
	real.sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
	real.sigprocmask = (sigmask_fn)dlsym(RTLD_NEXT, "sigprocmask");
	real.pthread_sigmask = (sigmask_fn)dlsym(RTLD_NEXT, "pthread_sigmask");
	real.sigsuspend = (sigsuspend_fn)dlsym(RTLD_NEXT, "sigsuspend");
	real.signalfd = (signalfd_fn)dlsym(RTLD_NEXT, "signalfd");
	real.sigwait = (sigwait_fn)dlsym(RTLD_NEXT, "sigwait");
	real.sigwaitinfo = (sigwaitinfo_fn)dlsym(RTLD_NEXT, "sigwaitinfo");
	real.sigtimedwait = (sigtimedwait_fn)dlsym(RTLD_NEXT, "sigtimedwait");
}

int sigguard_install(int sig, const struct sigaction *sa)
{
	if (!real.sigaction)
		sigguard_init();
	if (!real.sigaction || real.sigaction(sig, sa, NULL) < 0)
		return -1;
	shadow.sa_handler = SIG_DFL;
	guarded = sig;
	return 0;
}

/* A copy of the set without the stop signal, or the set itself. */
static const sigset_t *without_ours(const sigset_t *set, sigset_t *copy)
{
	if (!guarded || !set || !sigismember(set, guarded))
		return set;
	*copy = *set;
	sigdelset(copy, guarded);
	return copy;
}

EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (!real.sigaction)
		sigguard_init();
	if (!guarded || sig != guarded)
		return real.sigaction(sig, act, old);
	if (old)
		*old = shadow;
	if (act) {
		if (act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN)
			log_once(w_sig, "the program set a handler for signal %d, which "
				 "gcshim uses to stop threads; it will not run (choose "
				 "another with GCSHIM_SIGNAL)", sig);
		shadow = *act;
	}
	return 0;
}

/* glibc's signal() calls its sigaction internally, out of our reach. */
static __sighandler_t set_handler(int sig, __sighandler_t h, int flags)
{
	struct sigaction sa, old;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = h;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, &old) < 0 ? SIG_ERR : old.sa_handler;
}

EXPORT __sighandler_t signal(int sig, __sighandler_t h)
{
	return set_handler(sig, h, SA_RESTART);
}

EXPORT __sighandler_t bsd_signal(int sig, __sighandler_t h)
{
	return set_handler(sig, h, SA_RESTART);
}

EXPORT __sighandler_t sysv_signal(int sig, __sighandler_t h)
{
	return set_handler(sig, h, SA_RESETHAND | SA_NODEFER);
}

EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t copy;

	if (!real.sigprocmask)
		sigguard_init();
	return real.sigprocmask(how, how == SIG_UNBLOCK ? set : without_ours(set, &copy), old);
}

EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t copy;

	if (!real.pthread_sigmask)
		sigguard_init();
	return real.pthread_sigmask(how, how == SIG_UNBLOCK ? set : without_ours(set, &copy), old);
}

EXPORT int sigsuspend(const sigset_t *mask)
{
	sigset_t copy;

	if (!real.sigsuspend)
		sigguard_init();
	return real.sigsuspend(without_ours(mask, &copy));
}

EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	sigset_t copy;

	if (!real.signalfd)
		sigguard_init();
	return real.signalfd(fd, without_ours(mask, &copy), flags);
}

EXPORT int sigwait(const sigset_t *set, int *sig)
{
	sigset_t copy;

	if (!real.sigwait)
		sigguard_init();
	return real.sigwait(without_ours(set, &copy), sig);
}

EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	sigset_t copy;

	if (!real.sigwaitinfo)
		sigguard_init();
	return real.sigwaitinfo(without_ours(set, &copy), info);
}

EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *ts)
{
	sigset_t copy;

	if (!real.sigtimedwait)
		sigguard_init();
	return real.sigtimedwait(without_ours(set, &copy), info, ts);
}
