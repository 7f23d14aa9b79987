/* The Boehm collector in its collecting mode under an unmodified program,
 * for comparison: preloaded, this library sends the malloc family to
 * GC_malloc and its relatives, as a build of the collector configured with
 * --enable-redirect-malloc does.  Debian's libgc1 is not built that way
 * (its libgc.so defines no malloc), so the benchmarks build this instead,
 * against libgc-dev.
 *
 * What the redirecting build does besides, done here too:
 *  - blocks the dynamic loader allocates (thread-local storage, and the
 *    vectors pointing to it, reachable only from memory the collector does
 *    not scan) are uncollectable;
 *  - threads are created by GC_pthread_create, so that the collector
 *    knows them;
 *  - free() frees at once, as GC_free does;
 *  - what the collector's own start-up allocates (its first look at the
 *    main thread's stack opens /proc/self/maps) comes from a static
 *    arena, since the collector cannot serve it yet. */
#define _GNU_SOURCE
#define GC_THREADS
#include <dlfcn.h>
#include <errno.h>
#include <gc/gc.h>
#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* gc.h names GC_pthread_create pthread_create for the program's code;
 * here the name is the one being defined. */
#undef pthread_create

#define EXPORT __attribute__((visibility("default")))

static uintptr_t loader_lo, loader_hi;
static bool starting;
static _Alignas(16) char boot[1 << 16];
static size_t boot_used;

static void *boot_alloc(size_t n)
{
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (n > sizeof(boot) - boot_used)
		return NULL;
	p = boot + boot_used;
	boot_used += n;
	return p;   /* static storage: zeroed */
}

static bool boot_owns(const void *p)
{
	return (const char *)p >= boot && (const char *)p < boot + sizeof(boot);
}

static int find_loader(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size, (void)arg;
	if (!strstr(info->dlpi_name, "/ld-linux"))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		loader_lo = lo;
		loader_hi = lo + ph->p_memsz;
	}
	return 1;
}

__attribute__((constructor)) static void start(void)
{
	starting = true;
	GC_init();
	starting = false;
	GC_allow_register_threads();
	dl_iterate_phdr(find_loader, NULL);
}

static bool from_loader(const void *caller)
{
	return (uintptr_t)caller - loader_lo < loader_hi - loader_lo;
}

EXPORT void *malloc(size_t n)
{
	if (starting)
		return boot_alloc(n);
	if (from_loader(__builtin_return_address(0)))
		return GC_malloc_uncollectable(n);
	return GC_malloc(n);
}

EXPORT void *calloc(size_t n, size_t m)
{
	size_t total;

	if (__builtin_mul_overflow(n, m, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	/* the collector's blocks come zeroed */
	if (starting)
		return boot_alloc(total);
	if (from_loader(__builtin_return_address(0)))
		return GC_malloc_uncollectable(total);
	return GC_malloc(total);
}

EXPORT void free(void *p)
{
	if (!boot_owns(p))
		GC_free(p);
}

EXPORT void *realloc(void *p, size_t n)
{
	void *q;

	if (!boot_owns(p) && !starting)
		return GC_realloc(p, n);
	q = malloc(n);   /* the old size is unknown: copy what the arena allows */
	if (q && p)
		memcpy(q, p, n < (size_t)(boot + sizeof(boot) - (char *)p) ? n : (size_t)(boot + sizeof(boot) - (char *)p));
	return q;
}

EXPORT void *memalign(size_t align, size_t n)
{
	return GC_memalign(align, n);
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
	return GC_memalign(align, n);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	return GC_posix_memalign(out, align, n);
}

EXPORT void *valloc(size_t n)
{
	return GC_memalign((size_t)sysconf(_SC_PAGESIZE), n);
}

EXPORT size_t malloc_usable_size(void *p)
{
	return p && !boot_owns(p) ? GC_size(p) : 0;
}

/* ---- threads ---- */

/* What gc_pthread_redirects.h does for a program built against the
 * collector: pthread_create becomes GC_pthread_create, which registers
 * the thread before it runs.  That function calls pthread_create in turn,
 * which is this one again: the flag sends that call to the C library. */
static __thread bool in_gc_create;

EXPORT int pthread_create(pthread_t *id, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg)
{
	static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	int err;

	if (in_gc_create) {
		if (!real)
			real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
					void *))dlsym(RTLD_NEXT, "pthread_create");
		return real(id, attr, fn, arg);
	}
	in_gc_create = true;
	err = GC_pthread_create(id, attr, fn, arg);
	in_gc_create = false;
	return err;
}
