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

/* The program's handlers, for the signals whose action is our relay. */
static struct {
	_Atomic(void *) fn;
	_Atomic int flags;
} program[_NSIG];
static __thread unsigned long handlers_run __attribute__((tls_model("initial-exec")));

unsigned long sigguard_handlers_run(void)
{
	return handlers_run;
}

/* A handler being replaced by another thread as the signal comes may be
 * found SIG_DFL or SIG_IGN here: the signal is then dropped. */
static void relay(int sig, siginfo_t *si, void *uc)
{
	void *fn = atomic_load(&program[sig].fn);

	handlers_run++;
	if (fn == (void *)SIG_DFL || fn == (void *)SIG_IGN)
		return;
	if (atomic_load(&program[sig].flags) & SA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))fn)(sig, si, uc);
	else
		((void (*)(int))fn)(sig);
}

static bool relayed(const struct sigaction *sa)
{
	return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == relay;
}

/* What the program set, where the kernel holds our relay. */
static void program_view(int sig, struct sigaction *old)
{
	old->sa_flags = atomic_load(&program[sig].flags);
	if (old->sa_flags & SA_SIGINFO)
		old->sa_sigaction = (void (*)(int, siginfo_t *, void *))atomic_load(&program[sig].fn);
	else
		old->sa_handler = (__sighandler_t)atomic_load(&program[sig].fn);
}

static int set_relayed(int sig, const struct sigaction *act, struct sigaction *old)
{
	struct sigaction mine, prev = { 0 };
	bool relay_now = act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN &&
			 sig > 0 && sig < _NSIG;
	int r;

	if (sig > 0 && sig < _NSIG)
		program_view(sig, &prev);
	if (relay_now) {
		mine = *act;
		mine.sa_flags |= SA_SIGINFO;
		mine.sa_sigaction = relay;
		atomic_store(&program[sig].flags, act->sa_flags);
		atomic_store(&program[sig].fn, (act->sa_flags & SA_SIGINFO) ?
			     (void *)act->sa_sigaction : (void *)act->sa_handler);
		act = &mine;
	}
	r = real.sigaction(sig, act, old);
	if (r == 0 && old && relayed(old)) {
		prev.sa_mask = old->sa_mask;
		prev.sa_restorer = old->sa_restorer;
		*old = prev;
	}
	return r;
}

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
		return set_relayed(sig, act, old);
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
