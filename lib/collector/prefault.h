/* The collector's side tables (mark bits and bytes, ages) cover the whole
 * heap range and are written with the world stopped.  Their pages for a
 * part of the heap no collection has seen yet fault in one at a time
 * there: where a fault costs as much as on some virtual machines (13 us a
 * page here, against under 1 us for the same page made resident by
 * MADV_POPULATE_WRITE), the faults of a heap that grew since the last
 * collection were a third of its pause.  So before each stop, the pages of
 * every table that cover heap pages where blocks start are made resident,
 * in runs, while the program still runs.  Those that cover only the inside
 * of large blocks are left alone, as a collection leaves them. */
#ifndef GCSHIM_PREFAULT_H
#define GCSHIM_PREFAULT_H

#include <stdbool.h>
#include <stdint.h>

/* table: a byte for every 2^lg bytes of the heap range (6 for a bitmap of
 * the heap's granules), mapped for as long as the process runs and never
 * purged below the heap's top. */
void prefault_add(void *table, unsigned lg);
void prefault_tables(void);
/* Whether tables can be made resident ahead: false on kernels without
 * MADV_POPULATE_WRITE, where their first writes fault in the pause. */
bool prefault_possible(void);
/* Pages made resident so far, of all the tables. */
uint64_t prefault_pages(void);

#endif
