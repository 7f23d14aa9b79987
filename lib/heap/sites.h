/* Allocation sites: the call stack of an allocation, captured with
 * libunwind when GCSHIM_BACKTRACE is set or recording is switched on in a
 * running process (for one allocation in GCSHIM_BACKTRACE_SAMPLE), stored
 * once per distinct stack in a table of its own mappings, and remembered
 * per block, with the size the program asked for, in a side table indexed
 * by the block's heap granule.  Also the pin bits of gcshim_pin().
 *
 * Nothing here calls malloc or takes a lock: the stack table is filled
 * with compare-and-swap, the side tables are written by the thread that
 * owns the block. */
#ifndef GCSHIM_SITES_H
#define GCSHIM_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SITES_MAX_DEPTH 64
#define SITES_MAX (1u << 18)   /* distinct stacks; site numbers are 1 to this */

/* The symbol of a libunwind function, for dlsym: libunwind.h's macros
 * give each name its architecture's prefix. */
#define UNW_SYMBOL_(x) #x
#define UNW_SYMBOL(x) UNW_SYMBOL_(x)

/* Set up from the options, in the constructor (libunwind is warmed up
 * there, so that its own first-time work is not done inside malloc). */
void sites_init(void);
/* Around fork (init.c): no thread is inside libunwind as it forks. */
void sites_fork_prepare(void);
void sites_fork_parent(void);
void sites_fork_child(void);

/* Where the program called the shim: its return address and stack
 * pointer, the key of the thread's memo of stacks (stackmemo.h). */
struct site_caller {
	uintptr_t ra, sp;
};

/* Around an allocation the program asked for, from a function entered by
 * tail calls only from the exported one (ra and fp: its
 * __builtin_return_address(0) and __builtin_frame_address(0)); prev keeps
 * the caller of an allocation this one interrupted (a signal handler). */
void sites_enter(struct site_caller *prev, void *ra, void *fp);
void sites_leave(const struct site_caller *prev);

struct thread_rec;

/* Recording on with stacks DEPTH frames deep, or off (0): stacks stop,
 * requested sizes go on being recorded.  Returns the previous depth, or
 * -1 when DEPTH is out of range or libunwind cannot be loaded.  Not from
 * inside malloc. */
int sites_set_depth(int depth);

/* After an allocation of n bytes at p by thread t (MODE_SITES is set):
 * its request, and its site when the allocation is sampled. */
void sites_alloc(struct thread_rec *t, void *p, size_t n);

/* Before the block at p is released, once blocks were pinned
 * (MODE_PINNED): its pin goes. */
void sites_unpin_freed(void *p);

/* The site of the block at p: 0 when none was recorded. */
uint32_t sites_of(uintptr_t p);

/* The size the program asked for when it allocated the block at p (of
 * usable size usable), 0 when it was not recorded. */
size_t sites_request(uintptr_t p, size_t usable);

/* Whether requests are being recorded (recording was on once). */
bool sites_sizes_recorded(void);

/* The frames of a site (return addresses, innermost first). */
size_t sites_frames(uint32_t site, const uintptr_t **frames);

int sites_depth(void);

bool sites_pin(void *p, bool on);
bool sites_pinned(uintptr_t p);

#endif
