/* Start-up, exit and fork. */
#ifndef GCSHIM_INIT_H
#define GCSHIM_INIT_H

#include <stdbool.h>

bool shim_heap_ready(void);

#endif
