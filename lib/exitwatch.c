#define _GNU_SOURCE
#include "exitwatch.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap.h"
#include "log.h"
#include "os.h"
#include "thread.h"
#include "tstacks.h"

#define EXPORT __attribute__((visibility("default")))

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
typedef void (*exit_fn)(void *) __attribute__((noreturn));

static void (*waker)(void);
static _Atomic bool leader_done;
static _Atomic uint64_t endings;   /* threads ended after the leader's code */

static void *next_symbol(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (!f)
		log_msg("cannot find %s in the libraries after gcshim", name);
	return f;
}

void exitwatch_init(void (*wake)(void))
{
	waker = wake;
}

bool exitwatch_leader_done(void)
{
	return atomic_load(&leader_done);
}

uint64_t exitwatch_endings(void)
{
	return atomic_load(&endings);
}

/* Called as a thread's user code ends.  Cheap unless it matters: only the
 * leader's end, and thread ends after it, wake the control thread. */
static void thread_ending(void *unused)
{
	(void)unused;
	tstacks_ended();
	heap_thread_leaving();
	if (os_gettid() == getpid())
		atomic_store(&leader_done, true);
	if (atomic_load(&leader_done) && waker) {
		atomic_fetch_add(&endings, 1);
		waker();
	}
}

/* What a new thread is to run, handed over in memory of our own: a block
 * of the program's heap would be ours among its blocks, and be reported
 * as a leak in a child forked before the thread took it over. */
#define START_SLOTS 1024

struct start {
	void *(*fn)(void *);
	void *arg;
	_Atomic bool used;
};

static struct start starts[START_SLOTS];

static struct start *new_start(void)
{
	for (size_t i = 0; i < START_SLOTS; i++) {
		bool no = false;

		if (!atomic_load_explicit(&starts[i].used, memory_order_relaxed) &&
		    atomic_compare_exchange_strong(&starts[i].used, &no, true))
			return &starts[i];
	}
	return NULL;
}

static void free_start(struct start *s)
{
	s->arg = NULL;
	atomic_store_explicit(&s->used, false, memory_order_release);
}

static void *trampoline(void *p)
{
	struct start s = *(struct start *)p;
	void *ret;

	free_start(p);
	thread_get();   /* counted among the threads from its start */
	tstacks_started((uintptr_t)__builtin_frame_address(0));
	pthread_cleanup_push(thread_ending, NULL);
	ret = s.fn(s.arg);
	pthread_cleanup_pop(1);
	return ret;
}

EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg)
{
	static create_fn real;
	struct start *s;
	int rc;

	if (!real && !(real = (create_fn)next_symbol("pthread_create")))
		return EAGAIN;
	s = new_start();
	if (!s)   /* a thousand threads starting at once */
		return real(t, attr, fn, arg);
	s->fn = fn;
	s->arg = arg;
	rc = real(t, attr, trampoline, s);
	if (rc)
		free_start(s);
	return rc;
}

EXPORT void pthread_exit(void *ret)
{
	static exit_fn real;

	thread_ending(NULL);
	if (!real)
		real = (exit_fn)next_symbol("pthread_exit");
	if (real)
		real(ret);
	abort();
}

/* The control thread: created unwrapped, with every signal blocked so
 * that signals meant for the program are never delivered to it. */
int exitwatch_spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	static create_fn real;
	sigset_t all, old;
	pthread_attr_t attr;
	int rc;

	if (!real && !(real = (create_fn)next_symbol("pthread_create")))
		return EAGAIN;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = real(t, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return rc;
}

static bool task_alive(const char *tid)
{
	char path[64], buf[256];
	const char *paren;

	fmt_s(path, sizeof(path), "/proc/self/task/%s/stat", tid);
	if (!os_read_small(path, buf, sizeof(buf)))
		return false;
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

struct alone {
	char self[24];
	bool alone;
};

static bool other_alive(const char *name, void *arg)
{
	struct alone *a = arg;

	if (name[0] != '.' && strcmp(name, a->self) && task_alive(name))
		a->alone = false;
	return a->alone;
}

/* True when every other thread of the process has ended. */
bool exitwatch_alone(void)
{
	struct alone a = { .alone = true };

	fmt_s(a.self, sizeof(a.self), "%d", (int)os_gettid());
	return os_each_name("/proc/self/task", other_alive, &a) && a.alone;
}

void exitwatch_fork_child(void)
{
	atomic_store(&leader_done, false);
}
