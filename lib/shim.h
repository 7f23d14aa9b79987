/* Layer 5 of 5, the surfaces (lib/, top): the malloc entry points, the
 * C++ operators, the C API, the protocol, the control socket, exit and
 * start-up.  They may call every layer; nothing calls them. */
/* Entry points shared between the C and C++ allocation functions. */
#ifndef GCSHIM_SHIM_H
#define GCSHIM_SHIM_H

#include <stddef.h>

void *shim_memalign(size_t align, size_t n);

#endif
