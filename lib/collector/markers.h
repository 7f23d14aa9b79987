/* The marker threads: helpers that share the marking with the collecting
 * thread while the world is stopped.  They are the shim's own: made with
 * clone() for the length of one mark and gone before the world resumes,
 * so they are never stopped, never outlive a collection (nor keep the
 * process alive, nor meet a fork), and take no lock the program can
 * hold.  They share the collecting thread's thread pointer, so what they
 * run touches no thread-local storage: the marking loop only. */
#ifndef GCSHIM_MARKERS_H
#define GCSHIM_MARKERS_H

#include <stdbool.h>

#define MARK_MAX_MARKERS 64

bool markers_init(void);
/* GCSHIM_MARKERS, or the CPUs this process may run on. */
unsigned markers_wanted(void);
bool markers_chosen(void);
/* Starts up to n threads running run(1) .. run(n); returns how many
 * started.  markers_join waits for every one to have exited. */
unsigned markers_start(unsigned n, void (*run)(unsigned i));
void markers_join(void);
/* A marker waiting for work, for the spins-th time in a row: a short
 * spin, then the core goes to a thread that has work (with more threads
 * than cores, a marker may be waiting for one that is not running). */
void markers_pause(unsigned spins);

#endif
