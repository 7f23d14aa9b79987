#define _GNU_SOURCE
#include "tracer.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "os.h"

#define EXPORT __attribute__((visibility("default")))
#define HELPER_STACK (64 * 1024)
#define STATUS_MAX 4096
#define WAIT_STEP_NS 10000000L

enum op { OP_STOP, OP_RELEASE };

/* Shared between the collecting thread and the helper, which runs on its
 * own stack in our address space. */
static struct {
	char *stack;
	pid_t helper, tgid;
	_Atomic uint32_t cmd, done;
	enum op op;
	struct stopped *s;
	size_t from, to;
	enum tracer_status status;
	intptr_t flag_offset;     /* of `interrupted`, from the thread pointer */
	_Atomic bool program_chose;     /* the program set PR_SET_PTRACER */
	_Atomic unsigned long program_ptracer;
	_Atomic pid_t waiting_on;       /* the thread the helper waits to stop */
	uint64_t released_ns;           /* when the helper let the threads go */
} tr;

/* Armed by a thread entering a call the kernel would end on a stop; set
 * to FIRED by the helper when it held the thread as that call ended with
 * EINTR and no signal with a handler was waiting for it.  The helper finds
 * it from the thread pointer in the registers, which a program may have
 * moved: it reads and writes it with PEEKDATA/POKEDATA, which fail where
 * a plain access would fault, and only where it finds ARMED. */
#define ARMED 0x676373686d617277UL
#define FIRED 0x676373686d666972UL
static __thread _Atomic unsigned long interrupted __attribute__((tls_model("initial-exec")));

/* ---- the helper: raw system calls only ---------------------------------
 * It shares the thread pointer of the thread that made it, so it must not
 * touch errno or any other thread-local data: no libc call at all. */

static inline long raw6(long n, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall" : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b,
		x2 __asm__("x2") = c, x3 __asm__("x3") = d, x4 __asm__("x4") = e,
		x5 __asm__("x5") = f;

	__asm__ volatile("svc #0" : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
#else
#error "unsupported architecture"
#endif
}

#define raw(n, a, b, c, d) raw6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

static size_t put_dec(char *p, long v)
{
	char tmp[24];
	size_t n = 0, k = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (n)
		p[k++] = tmp[--n];
	return k;
}

/* "/proc/TGID/task/TID/" + leaf, read into buf: /proc/self would name
 * the helper, not the program. */
static long read_task_file(pid_t tid, const char *leaf, char *buf, size_t cap)
{
	char path[80];
	size_t n = 0;
	long fd, got, len = 0;

	for (const char *s = "/proc/"; *s;)
		path[n++] = *s++;
	n += put_dec(path + n, tr.tgid);
	for (const char *s = "/task/"; *s;)
		path[n++] = *s++;
	n += put_dec(path + n, tid);
	path[n++] = '/';
	while (*leaf && n < sizeof(path) - 1)
		path[n++] = *leaf++;
	path[n] = '\0';
	fd = raw(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	while (len < (long)cap - 1 && (got = raw(SYS_read, fd, buf + len, cap - 1 - len, 0)) > 0)
		len += got;
	raw(SYS_close, fd, 0, 0, 0);
	buf[len] = '\0';
	return len;
}

/* The hexadecimal or decimal number after "key" at a line start, or 0. */
static unsigned long field(const char *buf, const char *key, unsigned base)
{
	for (const char *line = buf; *line;) {
		const char *k = key, *p = line;
		unsigned long v = 0;

		while (*k && *p == *k)
			k++, p++;
		if (!*k) {
			while (*p == ' ' || *p == '\t')
				p++;
			for (;; p++) {
				unsigned d = *p >= '0' && *p <= '9' ? (unsigned)(*p - '0') :
					     *p >= 'a' && *p <= 'f' ? (unsigned)(*p - 'a' + 10) : 99;
				if (d >= base)
					return v;
				v = v * base + d;
			}
		}
		while (*line && *line != '\n')
			line++;
		if (*line)
			line++;
	}
	return 0;
}

/* Why a thread could not be seized: ending (then it is simply gone),
 * traced by someone else, or not ours to trace. */
static enum tracer_status seize_refused(pid_t tid)
{
	char buf[STATUS_MAX];
	long n = read_task_file(tid, "stat", buf, sizeof(buf));

	while (n > 0 && buf[n - 1] != ')')
		n--;
	if (n <= 0 || buf[n + 1] == 'Z' || buf[n + 1] == 'X')
		return TRACER_OK;
	if (read_task_file(tid, "status", buf, sizeof(buf)) <= 0)
		return TRACER_OK;
	return field(buf, "TracerPid:", 10) ? TRACER_TRACED : TRACER_DENIED;
}

static void mark_gone(struct stopped *s)
{
	s->traced = false;
	s->sp = s->isp = s->tp = 0;
	s->nregs = 0;
}

static bool read_regs(struct stopped *s)
{
	struct user_regs_struct *gp = (void *)s->regs;
	struct iovec v = { s->regs, sizeof(*gp) };
	size_t words;

	if (raw(SYS_ptrace, PTRACE_GETREGSET, s->tid, NT_PRSTATUS, &v) < 0)
		return false;
	words = (v.iov_len + 7) / 8;
	v = (struct iovec){ s->regs + words, (STOP_REG_WORDS - words) * 8 };
	if (raw(SYS_ptrace, PTRACE_GETREGSET, s->tid, NT_PRFPREG, &v) == 0)
		words += v.iov_len / 8;
	s->nregs = words;
#if defined(__x86_64__)
	s->isp = gp->rsp;
	s->sp = gp->rsp - 128;        /* the red zone may hold live data */
	s->tp = gp->fs_base;
#elif defined(__aarch64__)
	s->isp = s->sp = gp->sp;
	v = (struct iovec){ &s->tp, sizeof(s->tp) };
	raw(SYS_ptrace, PTRACE_GETREGSET, s->tid, NT_ARM_TLS, &v);
#endif
	return true;
}

/* A stop on the way out of a system call that failed with EINTR. */
static bool ended_with_eintr(const struct stopped *s)
{
	const struct user_regs_struct *gp = (const void *)s->regs;

#if defined(__x86_64__)
	return (long)gp->orig_rax >= 0 && (long)gp->rax == -EINTR;
#elif defined(__aarch64__)
	int nr = -1;
	struct iovec v = { &nr, sizeof(nr) };

	raw(SYS_ptrace, PTRACE_GETREGSET, s->tid, NT_ARM_SYSTEM_CALL, &v);
	return nr >= 0 && (long)gp->regs[0] == -EINTR;
#endif
}

static bool handled_signal_pending(pid_t tid)
{
	char buf[STATUS_MAX];

	if (read_task_file(tid, "status", buf, sizeof(buf)) <= 0)
		return true;
	return ((field(buf, "SigPnd:", 16) | field(buf, "ShdPnd:", 16)) &
		field(buf, "SigCgt:", 16)) != 0;
}

/* Seize and interrupt every thread first, then collect the stops: the
 * threads come to a halt together rather than one after another. */
static void helper_stop(void)
{
	struct stopped *s = tr.s;

	for (size_t i = tr.from; i < tr.to; i++) {
		long r = raw(SYS_ptrace, PTRACE_SEIZE, s[i].tid, 0, 0);

		s[i].inject = 0;
		s[i].traced = r == 0;
		if (r == -EPERM && tr.status == TRACER_OK)
			tr.status = seize_refused(s[i].tid);
		if (r == 0)
			raw(SYS_ptrace, PTRACE_INTERRUPT, s[i].tid, 0, 0);
		else
			mark_gone(&s[i]);
	}
	for (size_t i = tr.from; i < tr.to; i++) {
		int status = 0;
		long r;

		if (!s[i].traced)
			continue;
		atomic_store(&tr.waiting_on, s[i].tid);
		while ((r = raw6(SYS_wait4, s[i].tid, (long)&status, __WALL, 0, 0, 0)) == -EINTR)
			;
		if (r != s[i].tid || !WIFSTOPPED(status) || !read_regs(&s[i])) {
			mark_gone(&s[i]);   /* it ended: the kernel untraced it */
			continue;
		}
		/* A signal it was about to take is handed back on release. */
		if ((status >> 16) == 0)
			s[i].inject = WSTOPSIG(status);
	}
}

static void fire(const struct stopped *s)
{
	uintptr_t at = s->tp + (uintptr_t)tr.flag_offset;
	unsigned long v = 0;

	if (!s->inject && raw(SYS_ptrace, PTRACE_PEEKDATA, s->tid, at, &v) == 0 &&
	    v == ARMED && !handled_signal_pending(s->tid))
		raw(SYS_ptrace, PTRACE_POKEDATA, s->tid, at, FIRED);
}

/* The threads that must get a signal back are let go one by one; the
 * others go all at once, untraced by the kernel as the helper ends (see
 * helper_main).  Let go one by one, each woken thread would take a
 * processor from the helper before it reached the next on a machine with
 * fewer processors than threads, and the last would wait a time slice. */
static void helper_release(void)
{
	struct stopped *s = tr.s;

	for (size_t i = 0; i < tr.to; i++) {
		if (!s[i].traced)
			continue;
		if (ended_with_eintr(&s[i]) && s[i].tp)
			fire(&s[i]);
		if (s[i].inject)
			raw(SYS_ptrace, PTRACE_DETACH, s[i].tid, 0, s[i].inject);
		s[i].traced = false;
	}
}

static uint64_t raw_now_ns(void)
{
	struct timespec ts;

	raw(SYS_clock_gettime, CLOCK_MONOTONIC, &ts, 0, 0);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int helper_main(void *arg)
{
	uint32_t seen = 0;

	(void)arg;
	/* The thread that made us waits for us; if it dies, so must we,
	 * and the kernel then lets every thread we hold go. */
	raw(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0);
	if (raw(SYS_getppid, 0, 0, 0, 0) != tr.tgid)
		return 0;
	for (;;) {
		uint32_t cmd;
		enum op op;

		while ((cmd = atomic_load(&tr.cmd)) == seen)
			raw(SYS_futex, &tr.cmd, FUTEX_WAIT_PRIVATE, seen, 0);
		op = tr.op;   /* read before done: the next command may follow at once */

		seen = cmd;
		if (op == OP_STOP)
			helper_stop();
		else
			helper_release();
		if (op == OP_RELEASE) {
			/* the threads still held go as the helper ends, a few
			 * microseconds on: the caller waits for that end */
			tr.released_ns = raw_now_ns();
			return 0;
		}
		atomic_store(&tr.done, cmd);
		raw(SYS_futex, &tr.done, FUTEX_WAKE_PRIVATE, 1, 0);
	}
}

/* ---- the collecting thread's side -------------------------------------- */

bool tracer_init(void)
{
	tr.stack = os_map(HELPER_STACK);
	return tr.stack != NULL;
}

/* A filter of the calling thread passes to the helper, and one that
 * answers ptrace with a signal would end the whole process (the helper
 * shares its memory, and a core dump takes every task that does). */
static enum tracer_status thread_status(void)
{
	char buf[STATUS_MAX];
	const char *p;

	if (!os_read_small("/proc/thread-self/status", buf, sizeof(buf)))
		return TRACER_FAILED;
	p = strstr(buf, "\nSeccomp:");
	if (p && field(p + 1, "Seccomp:", 10) != 0)
		return TRACER_FILTERED;
	p = strstr(buf, "\nTracerPid:");
	return p && field(p + 1, "TracerPid:", 10) ? TRACER_TRACED : TRACER_OK;
}

static void reap_helper(void)
{
	int status;

	while (waitpid(tr.helper, &status, __WALL) < 0 && errno == EINTR)
		;
	tr.helper = 0;
	if (atomic_load(&tr.program_chose))
		syscall(SYS_prctl, PR_SET_PTRACER, atomic_load(&tr.program_ptracer), 0, 0, 0);
}

/* Killing the helper makes the kernel untrace everything it holds, each
 * thread with the signal it was stopped for. */
static void abort_helper(void)
{
	syscall(SYS_kill, tr.helper, SIGKILL);
	reap_helper();
}

bool tracer_begin(enum tracer_status *why)
{
	sigset_t all, old;
	int saved = errno;
	pid_t pid;

	if (!tr.stack || (*why = thread_status()) != TRACER_OK)
		return false;
	tr.tgid = getpid();
	tr.flag_offset = (intptr_t)&interrupted - (intptr_t)__builtin_thread_pointer();
	atomic_store(&tr.cmd, 0);
	atomic_store(&tr.done, 0);
	/* Made with every signal blocked, it never runs a handler. */
	sigfillset(&all);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, _NSIG / 8);
	pid = clone(helper_main, tr.stack + HELPER_STACK,
		    CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED, NULL);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, _NSIG / 8);
	errno = saved;
	if (pid < 0) {
		*why = TRACER_FAILED;
		return false;
	}
	tr.helper = pid;
	/* Yama: the helper is no ancestor of ours; the program's own choice
	 * of tracer is put back when the helper is gone. */
	syscall(SYS_prctl, PR_SET_PTRACER, pid, 0, 0, 0);
	errno = saved;
	return true;
}

static uint32_t post(enum op op)
{
	uint32_t cmd = atomic_load(&tr.cmd) + 1;

	tr.op = op;
	atomic_store(&tr.cmd, cmd);
	syscall(SYS_futex, &tr.cmd, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	return cmd;
}

static bool command(enum op op, uint64_t deadline_ns)
{
	uint32_t cmd = post(op);

	while (atomic_load(&tr.done) != cmd) {
		struct timespec step = { 0, WAIT_STEP_NS };
		uint32_t seen = atomic_load(&tr.done);

		if (seen == cmd)
			break;
		if (os_now_ns() > deadline_ns)
			return false;
		syscall(SYS_futex, &tr.done, FUTEX_WAIT_PRIVATE, seen, &step, NULL, 0);
	}
	return true;
}

enum tracer_status tracer_stop(struct stopped *s, size_t from, size_t to,
			       uint64_t deadline_ns)
{
	int saved = errno;

	tr.s = s;
	tr.from = from;
	tr.to = to;
	tr.status = TRACER_OK;
	atomic_store(&tr.waiting_on, 0);
	if (!command(OP_STOP, deadline_ns)) {
		abort_helper();
		errno = saved;
		return TRACER_TIMEOUT;
	}
	if (tr.status != TRACER_OK)
		abort_helper();
	errno = saved;
	return tr.status;
}

pid_t tracer_waiting_on(void)
{
	return atomic_load(&tr.waiting_on);
}

uint64_t tracer_end(struct stopped *s, size_t n)
{
	int saved = errno;
	uint64_t released;

	if (!tr.helper)
		return os_now_ns();
	tr.s = s;
	tr.to = n;
	tr.released_ns = 0;
	post(OP_RELEASE);
	reap_helper();
	released = tr.released_ns ? tr.released_ns : os_now_ns();
	errno = saved;
	return released;
}

void tracer_arm(void)
{
	atomic_store_explicit(&interrupted, ARMED, memory_order_relaxed);
}

bool tracer_fired(void)
{
	return atomic_exchange(&interrupted, 0) == FIRED;
}

/* The program's own PR_SET_PTRACER is kept, to be put back after each
 * stop (Yama holds one tracer per process). */
EXPORT int prctl(int option, ...)
{
	unsigned long a[4];
	va_list ap;
	long r;

	va_start(ap, option);
	for (int i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	r = syscall(SYS_prctl, option, a[0], a[1], a[2], a[3]);
	if (option == PR_SET_PTRACER && r == 0) {
		atomic_store(&tr.program_ptracer, a[0]);
		atomic_store(&tr.program_chose, true);
	}
	return (int)r;
}
