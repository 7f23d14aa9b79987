/* Entry points shared between the C and C++ allocation functions. */
#ifndef GCSHIM_SHIM_H
#define GCSHIM_SHIM_H

#include <stddef.h>

void *shim_memalign(size_t align, size_t n);

#endif
