/* Roots: where the collector looks for pointers into the heap.
 *  all (default): every writable private mapping of the process,
 *      anonymous shared memory, and the resident pages of writable shared
 *      file mappings, minus the heap itself and the shim's own memory;
 *      thread stacks from their stack pointer up, and the registers of
 *      threads stopped by the tracer.
 *  minimal: data and bss of loaded objects, the brk heap, thread stacks
 *      and static TLS only (faster, misses pointers kept in mmap'd memory).
 * Plus the pointers only the kernel holds that the shim can see (epoll). */
#ifndef GCSHIM_ROOTS_H
#define GCSHIM_ROOTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "regions.h"
#include "stop.h"

enum roots_mode { ROOTS_ALL, ROOTS_MINIMAL };

/* What a root range is, for inspection (roots_enumerate). */
enum root_kind {
	ROOT_STACK,      /* a thread's stack: tid */
	ROOT_DATA,       /* data or bss of a loaded object: path, offset from its base */
	ROOT_MMAP,       /* any other mapping (brk heap, anonymous mmap, shared memory) */
	ROOT_EPOLL,      /* data registered with epoll_ctl */
	ROOT_GARBAGE,    /* the garbage list */
	ROOT_FROZEN,     /* never reported: frozen blocks are heap blocks */
};

struct root_desc {
	enum root_kind kind;
	uintptr_t lo, hi;          /* the range to scan */
	uintptr_t map_lo, map_hi;  /* the whole mapping it belongs to */
	bool shared, code, resident_only;
	pid_t tid;                 /* ROOT_STACK */
	const char *path;          /* ROOT_DATA, ROOT_MMAP: not NUL-terminated */
	size_t path_len;
	uintptr_t base;            /* ROOT_DATA: load base of the object */
};

typedef void (*root_range_fn)(uintptr_t lo, uintptr_t hi, void *arg);
typedef void (*root_desc_fn)(const struct root_desc *d, void *arg);

bool roots_init(void);
void roots_prepare(void);
bool roots_scan(const struct world *w, enum roots_mode mode);
void roots_add_extra(void (*fn)(void));
/* Before the stop, after roots_prepare: fn for every piece of min_size
 * bytes or more of the private writable mappings that write tracking may
 * take (rtrack.h), the shim's own regions left out; false if the
 * mappings could not be read. */
bool roots_each_trackable(uintptr_t min_size, root_range_fn fn, void *arg);

/* Inspection: the ranges roots_scan would scan, described, without
 * marking.  With the world stopped; skip_self leaves out the calling
 * thread's stack (the control thread holds no program data).  `each`
 * of a described source calls its fn for every range it holds. */
void roots_add_described(enum root_kind kind, void (*each)(root_range_fn fn, void *arg));
bool roots_enumerate(const struct world *w, enum roots_mode mode, bool skip_self,
		     root_desc_fn fn, void *arg);

#endif
