#define _GNU_SOURCE
#include "stop.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "bcache.h"
#include "log.h"
#include "os.h"
#include "probes.h"
#include "sigguard.h"
#include "events.h"
#include "tracer.h"

#define MAX_THREADS 65536
#define WAIT_STEP_MS 10
#define MAX_OWNED 64

static int stop_sig;
static int timeout_ms;
static _Atomic pid_t laggard;   /* the last thread that did not stop */
static struct stopped *slots;
static pid_t *tids;
static _Atomic size_t nslots;
static _Atomic uint32_t stop_seq, resume_seq, nacked;
static _Atomic pid_t owned[MAX_OWNED];
static bool trace;        /* try the tracer first */
static bool traced_now;   /* the threads stopped last are held by the tracer */
static _Atomic bool signalling;   /* a stop by signal is under way */
static __thread bool in_handler __attribute__((tls_model("initial-exec")));

enum { RUNNING, PARKED, HELD };

static struct {
	_Atomic uint32_t state;
	pid_t tid;
	uintptr_t sp, tp;
} park;
static pid_t held_tid;    /* the parked thread this stop left running */

static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

static uintptr_t interrupted_sp(const ucontext_t *uc)
{
#if defined(__x86_64__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
	return (uintptr_t)uc->uc_mcontext.sp;
#else
#error "unsupported architecture"
#endif
}

static struct stopped *my_slot(pid_t tid)
{
	size_t n = atomic_load_explicit(&nslots, memory_order_acquire);

	for (size_t i = 0; i < n; i++)
		if (slots[i].tid == tid)
			return &slots[i];
	return NULL;
}

/* Runs in the stopped thread.  Only async-signal-safe work: a few atomic
 * stores and futex calls.  Its own frame and the kernel's signal frame,
 * which holds every register, lie above `here` on this thread's stack. */
static void on_stop(int sig, siginfo_t *si, void *ucv)
{
	uint32_t seq = atomic_load(&stop_seq);
	int saved = errno;
	volatile uintptr_t here = 0;
	struct stopped *s;

	(void)sig;
	if (si->si_code != SI_TKILL || si->si_pid != getpid() || !atomic_load(&signalling) ||
	    atomic_load(&resume_seq) == seq || !(s = my_slot(os_gettid()))) {
		errno = saved;
		return;
	}
	in_handler = true;
	s->sp = (uintptr_t)&here;
	s->isp = interrupted_sp(ucv);
	s->tp = (uintptr_t)pthread_self();
	atomic_store_explicit(&s->acked, seq, memory_order_release);
	atomic_fetch_add(&nacked, 1);
	futex(&nacked, FUTEX_WAKE_PRIVATE, 1, NULL);
	for (uint32_t r; (r = atomic_load(&resume_seq)) != seq;)
		futex(&resume_seq, FUTEX_WAIT_PRIVATE, r, NULL);
	in_handler = false;
	errno = saved;
}

bool stop_in_handler(void)
{
	return in_handler;
}

int stop_signal(void)
{
	return stop_sig;
}

/* SA_RESTART: interrupted read, write, accept, waitpid, futex waits and
 * the like resume by themselves.  Every other signal is held off while a
 * thread is stopped, so no program handler runs on a frozen thread. */
bool stop_init(int sig, int tmo_ms, bool use_tracer)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_stop;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask);
	slots = os_map((MAX_THREADS + 1) * sizeof(*slots));   /* + the parked one */
	tids = os_map(MAX_THREADS * sizeof(*tids));
	if (!slots || !tids || !tracer_init() || sigguard_install(sig, &sa) < 0)
		return false;
	stop_sig = sig;
	timeout_ms = tmo_ms;
	trace = use_tracer;
	return true;
}

/* Thread ids, read with raw getdents64: opendir would allocate, and a
 * thread stopped already may hold the allocator's locks. */
static size_t list_tasks(pid_t *out, size_t cap)
{
	char buf[4096];
	size_t n = 0;
	int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long got;

	if (fd < 0)
		return 0;
	while ((got = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < got;) {
			struct { uint64_t ino; int64_t off; unsigned short reclen;
				 unsigned char type; char name[]; } *d = (void *)(buf + off);
			long tid = strtol(d->name, NULL, 10);

			if (tid > 0 && n < cap)
				out[n++] = (pid_t)tid;
			off += d->reclen;
		}
	}
	os_close(fd);
	return n;
}

static bool known(pid_t tid)
{
	return my_slot(tid) != NULL;
}

static bool owned_by_shim(pid_t tid)
{
	if (tid == held_tid)
		return true;
	for (int i = 0; i < MAX_OWNED; i++)
		if (atomic_load_explicit(&owned[i], memory_order_relaxed) == tid)
			return true;
	return false;
}

bool stop_exclude(pid_t tid)
{
	for (int i = 0; i < MAX_OWNED; i++) {
		pid_t free_ = 0;

		if (atomic_compare_exchange_strong(&owned[i], &free_, tid))
			return true;
	}
	return false;
}

void stop_include(pid_t tid)
{
	for (int i = 0; i < MAX_OWNED; i++) {
		pid_t t = tid;

		atomic_compare_exchange_strong(&owned[i], &t, 0);
	}
}

/* The shim's threads did not follow the fork; their ids may come back
 * as the child's own threads. */
void stop_fork_child(void)
{
	atomic_store(&park.state, RUNNING);
	for (int i = 0; i < MAX_OWNED; i++)
		atomic_store(&owned[i], 0);
}

/* Whether the collecting thread is the program's only one: then there is
 * nothing to stop, and no thread can appear, with no other to create it.
 * Sparing the tracer's round trip matters to a single-threaded program
 * that collects hundreds of times. */
static bool alone(pid_t self)
{
	size_t n = list_tasks(tids, MAX_THREADS);

	if (n == 0 || n == MAX_THREADS)
		return false;
	for (size_t i = 0; i < n; i++)
		if (tids[i] != self && !owned_by_shim(tids[i]))
			return false;
	return true;
}

/* Adds the threads not yet in the stop set; returns how many, or -1 when
 * the threads cannot be listed or are too many to stop. */
static long add_new(pid_t self)
{
	size_t n = list_tasks(tids, MAX_THREADS);
	long added = 0;

	if (n == 0 || n == MAX_THREADS)
		return -1;   /* not even ourselves: no /proc */
	for (size_t i = 0; i < n; i++) {
		size_t k = atomic_load(&nslots);

		if (tids[i] == self || known(tids[i]) || owned_by_shim(tids[i]))
			continue;
		if (k == MAX_THREADS)
			return -1;
		slots[k] = (struct stopped){ .tid = tids[i] };
		atomic_store_explicit(&nslots, k + 1, memory_order_release);
		added++;
	}
	return added;
}

static void signal_range(size_t from, size_t to, uint32_t seq)
{
	for (size_t i = from; i < to; i++)
		if (syscall(SYS_tgkill, getpid(), slots[i].tid, stop_sig) < 0)
			atomic_store(&slots[i].acked, seq);  /* already gone */
}

static bool task_gone(pid_t tid)
{
	char path[64], buf[256];
	const char *p;

	fmt_s(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	if (!os_read_small(path, buf, sizeof(buf)))
		return true;
	p = strrchr(buf, ')');
	return p && (p[2] == 'Z' || p[2] == 'X');
}

/* The first thread that did not acknowledge: it is named when a
 * collection gives up. */
static bool note_laggard(uint32_t seq)
{
	for (size_t i = 0, n = atomic_load(&nslots); i < n; i++)
		if (atomic_load(&slots[i].acked) != seq) {
			atomic_store(&laggard, slots[i].tid);
			PROBE(stop__failed, (int)slots[i].tid, timeout_ms);
			break;
		}
	return false;
}

pid_t stop_laggard(void)
{
	return atomic_load(&laggard);
}

/* Waits until every listed thread has acknowledged (or has ended). */
static bool wait_acks(uint32_t seq, uint64_t deadline)
{
	for (;;) {
		size_t n = atomic_load(&nslots), pending = 0;
		struct timespec step = { 0, WAIT_STEP_MS * 1000000L };
		uint32_t seen = atomic_load(&nacked);

		for (size_t i = 0; i < n; i++) {
			if (atomic_load_explicit(&slots[i].acked, memory_order_acquire) == seq)
				continue;
			if (task_gone(slots[i].tid)) {
				atomic_store(&slots[i].acked, seq);
				slots[i].sp = slots[i].isp = slots[i].tp = 0;
				continue;
			}
			pending++;
		}
		if (!pending)
			return true;
		if (os_now_ns() > deadline)
			return note_laggard(seq);
		futex(&nacked, FUTEX_WAIT_PRIVATE, seen, &step);
	}
}

/* Repeat until a listing finds no thread we have not stopped: a thread
 * may have been created by one that was still running. */
static bool stop_signalled(pid_t self, uint32_t seq, uint64_t deadline)
{
	bool ok = true;

	for (long added; ok && (added = add_new(self)) != 0;) {
		size_t to = atomic_load(&nslots);

		if (added > 0)
			signal_range(to - (size_t)added, to, seq);
		ok = added > 0 && wait_acks(seq, deadline);
	}
	return ok;
}

static enum tracer_status stop_traced(pid_t self, uint64_t deadline)
{
	enum tracer_status st;
	long added;

	if (!tracer_begin(&st))
		return st;
	while ((added = add_new(self)) > 0) {
		size_t to = atomic_load(&nslots);

		if ((st = tracer_stop(slots, to - (size_t)added, to, deadline)) != TRACER_OK) {
			if (st == TRACER_TIMEOUT && tracer_waiting_on()) {
				atomic_store(&laggard, tracer_waiting_on());
				PROBE(stop__failed, (int)tracer_waiting_on(), timeout_ms);
			}
			return st;
		}
	}
	if (added < 0) {
		tracer_end(slots, atomic_load(&nslots));
		return TRACER_TIMEOUT;
	}
	return TRACER_OK;
}

/* Said once per reason; `stops_signalled` counts every such stop. */
static void note_fallback(enum tracer_status why)
{
	switch (why) {
	case TRACER_TRACED:
		log_once(w_traced, "the process is traced by another program: threads "
			 "are stopped with signal %d while it is, and blocking calls "
			 "may fail with EINTR", stop_sig);
		break;
	case TRACER_DENIED:
		log_once(w_denied, "ptrace is not permitted here (kernel.yama.ptrace_scope, "
			 "or the process is not dumpable): threads are stopped with "
			 "signal %d, and blocking calls may fail with EINTR", stop_sig);
		break;
	case TRACER_FILTERED:
		log_once(w_filtered, "a seccomp filter is installed: threads are stopped "
			 "with signal %d, and blocking calls may fail with EINTR", stop_sig);
		break;
	default:
		log_once(w_noclone, "cannot start the task that stops threads: they are "
			 "stopped with signal %d, and blocking calls may fail with EINTR",
			 stop_sig);
		break;
	}
}

/* The registers are spilled into this frame, above `here`, which stays
 * while wait() runs below it. */
int stop_parked(int (*wait)(void *arg), void *arg)
{
	volatile uintptr_t here = 0;
	uint32_t s;
	int r, saved;

	__builtin_unwind_init();
	park.tid = os_gettid();
	park.sp = (uintptr_t)&here;
	park.tp = (uintptr_t)pthread_self();
	atomic_store(&park.state, PARKED);
	r = wait(arg);
	saved = errno;
	for (s = PARKED; !atomic_compare_exchange_strong(&park.state, &s, RUNNING); s = PARKED)
		futex(&park.state, FUTEX_WAIT_PRIVATE, HELD, NULL);
	errno = saved;
	return r;
}

static bool hold_parked(void)
{
	uint32_t s = PARKED;

	return atomic_compare_exchange_strong(&park.state, &s, HELD);
}

static void release_parked(void)
{
	uint32_t s = HELD;

	held_tid = 0;
	if (atomic_compare_exchange_strong(&park.state, &s, PARKED))
		futex(&park.state, FUTEX_WAKE_PRIVATE, 1, NULL);
}

/* Every thread but the caller and the shim's own; st says how. */
static bool stop_others(pid_t self, uint32_t seq, uint64_t deadline, enum tracer_status *st)
{
	*st = trace ? stop_traced(self, deadline) : TRACER_OFF;
	traced_now = *st == TRACER_OK;
	if (traced_now) {
		stat_inc(EV_stops_traced);
		return true;
	}
	if (*st == TRACER_TIMEOUT) {
		atomic_store(&resume_seq, seq);   /* the tracer let every thread go */
		return false;
	}
	if (*st != TRACER_OFF)
		note_fallback(*st);
	atomic_store(&nslots, 0);
	atomic_store(&signalling, true);
	stat_inc(EV_stops_signalled);
	return stop_signalled(self, seq, deadline);
}

bool stop_world(struct world *w)
{
	uint64_t t0 = os_now_ns(), deadline = t0 + (uint64_t)timeout_ms * 1000000;
	uint32_t seq = atomic_load(&stop_seq) + 1;
	pid_t self = os_gettid();
	enum tracer_status st = TRACER_OFF;
	bool ok;

	atomic_store(&nslots, 0);
	atomic_store(&stop_seq, seq);
	traced_now = false;
	held_tid = hold_parked() ? park.tid : 0;
	ok = alone(self) || stop_others(self, seq, deadline, &st);
	w->threads = slots;
	w->n = atomic_load(&nslots);
	if (ok && held_tid)   /* after the others: no stop or release sees it */
		slots[w->n++] = (struct stopped){ .tid = park.tid, .sp = park.sp,
						  .isp = park.sp, .tp = park.tp };
	if (ok)
		bcache_hide();
	w->stop_ns = os_now_ns() - t0;
	if (!ok && st != TRACER_TIMEOUT)
		resume_world(w);
	else if (!ok)
		release_parked();   /* the tracer let the others go */
	return ok;
}

void resume_world(struct world *w)
{
	uint64_t traced_released = 0;

	bcache_unhide();
	if (traced_now)
		traced_released = tracer_end(slots, atomic_load(&nslots));
	traced_now = false;
	release_parked();
	atomic_store(&signalling, false);
	atomic_store(&resume_seq, atomic_load(&stop_seq));
	/* the threads run from here: the wake-up may give them this
	 * processor, and the caller's wait for it (or for the tracer's
	 * end) is no part of the stop */
	w->released_at = traced_released ? traced_released : os_now_ns();
	futex(&resume_seq, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL);
}
