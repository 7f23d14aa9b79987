/* C++ operator new and delete, all twenty forms, so that a program or a
 * library that brings its own (libjemalloc.so does) cannot allocate
 * around the shim.  Written in C to keep libstdc++ out of every process:
 * the new-handler and std::bad_alloc are reached through dlsym, and only
 * on the failure path, when a C++ runtime is necessarily loaded. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>

#include "account.h"
#include "shim.h"
#include "sites.h"

#define EXPORT __attribute__((visibility("default")))

typedef void (*new_handler)(void);

/* RTLD_DEFAULT misses a libstdc++ that was dlopen'ed RTLD_LOCAL (a C++
 * extension of a C program): ask for that one by name. */
static void *cxx_symbol(const char *name)
{
	void *f = dlsym(RTLD_DEFAULT, name), *lib;

	if (!f && (lib = dlopen("libstdc++.so.6", RTLD_NOLOAD | RTLD_LAZY))) {
		f = dlsym(lib, name);
		dlclose(lib);
	}
	return f;
}

static new_handler current_handler(void)
{
	new_handler (*get)(void) = (new_handler (*)(void))cxx_symbol("_ZSt15get_new_handlerv");

	return get ? get() : NULL;
}

static void throw_bad_alloc(void)
{
	void (*thr)(void) = (void (*)(void))cxx_symbol("_ZSt17__throw_bad_allocv");

	if (thr)
		thr();
	abort();
}

static void *new_attempt(size_t n, size_t align)
{
	return align ? shim_memalign(align, n) : malloc(n);
}

/* The standard's loop: ask the new-handler for memory until it gives up. */
static void *new_impl(size_t n, size_t align, int nothrow)
{
	for (;;) {
		void *p = new_attempt(n, align);
		new_handler h;

		if (p)
			return p;
		h = current_handler();
		if (!h) {
			if (nothrow)
				return NULL;
			throw_bad_alloc();
		}
		h();
	}
}

/* With allocation sites on, the first attempt is made between
 * sites_enter and sites_leave (see alloc_sited in shim.c); the standard's
 * loop, which may throw, runs after. */
static __attribute__((noinline)) void *new_sited(size_t n, size_t align, int nothrow)
{
	struct site_caller prev;
	void *p;

	sites_enter(&prev, __builtin_return_address(0), __builtin_frame_address(0));
	p = new_attempt(n, align);
	sites_leave(&prev);
	return p ? p : new_impl(n, align, nothrow);
}

static inline __attribute__((always_inline)) void *new_entry(size_t n, size_t align, int nothrow)
{
	if (__builtin_expect(gc_mode_now() & MODE_SITES, 0))
		return new_sited(n, align, nothrow);
	return new_impl(n, align, nothrow);
}

EXPORT void *_Znwm(size_t n) { return new_entry(n, 0, 0); }
EXPORT void *_Znam(size_t n) { return new_entry(n, 0, 0); }
EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *t) { (void)t; return new_entry(n, 0, 1); }
EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *t) { (void)t; return new_entry(n, 0, 1); }
EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t a) { return new_entry(n, a, 0); }
EXPORT void *_ZnamSt11align_val_t(size_t n, size_t a) { return new_entry(n, a, 0); }
EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) { (void)t; return new_entry(n, a, 1); }
EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) { (void)t; return new_entry(n, a, 1); }

/* Sized and aligned deletes all free the same way: the object map knows
 * every block's size, and a wrong size from the caller must not matter. */
EXPORT void _ZdlPv(void *p) { free(p); }
EXPORT void _ZdaPv(void *p) { free(p); }
EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *t) { (void)t; free(p); }
EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *t) { (void)t; free(p); }
EXPORT void _ZdlPvm(void *p, size_t n) { (void)n; free(p); }
EXPORT void _ZdaPvm(void *p, size_t n) { (void)n; free(p); }
EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a) { (void)a; free(p); }
EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a) { (void)a; free(p); }
EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) { (void)a, (void)t; free(p); }
EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) { (void)a, (void)t; free(p); }
EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n, (void)a; free(p); }
EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n, (void)a; free(p); }
