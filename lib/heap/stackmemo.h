/* A memo of the allocation stacks each thread saw lately, so that an
 * allocation made again from where an earlier one was made does not
 * unwind its stack again.
 *
 * An entry is found by the allocation's return address and stack pointer
 * and is trusted only after every return address of its stack is read
 * back from the stack slot where it was found, and is still there.  The
 * slots come from each function's frame size at that return address,
 * learned once per address from libunwind and checked against the stack
 * each time an entry is made.  Frames whose size can change from one call
 * to the next (a frame pointer, alloca, a signal frame) are never
 * memoized: stacks through them are unwound every time.
 *
 * x86-64 only: elsewhere the memo stays off and every stack is unwound. */
#ifndef GCSHIM_STACKMEMO_H
#define GCSHIM_STACKMEMO_H

#include <stdbool.h>
#include <stdint.h>

struct thread_rec;

/* From the constructor, with libunwind's handle and the deepest stack a
 * site keeps; false when the memo cannot work (the functions it needs are
 * missing, no memory). */
bool memo_init(void *libunwind, int depth);

/* The site recorded for the stack whose innermost frame returns to ra
 * with its stack pointer at sp, if that stack is still the one on the
 * thread's stack; 0 otherwise. */
uint32_t memo_find(struct thread_rec *t, uintptr_t ra, uintptr_t sp);

/* After memo_init succeeded: remember frames f[0..n-1] (f[0] the return address of the frame whose
 * stack pointer is sp) as site id, if every frame size is known. */
void memo_add(struct thread_rec *t, uintptr_t sp, const uintptr_t *f, int n, uint32_t id);

#endif
