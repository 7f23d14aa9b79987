/* Pointers that only the kernel holds, which the shim can see by
 * interposing the calls that hand them over: epoll_ctl's data, kept from
 * EPOLL_CTL_ADD/MOD until EPOLL_CTL_DEL or the close of the epoll fd. */
#ifndef GCSHIM_KROOTS_H
#define GCSHIM_KROOTS_H

#include <stdbool.h>

#include "roots.h"

void kroots_init(void);
void kroots_scan(void);
bool kroots_complete(void);
void kroots_each_root(root_range_fn fn, void *arg);   /* inspection */
void kroots_lock(void);
void kroots_unlock(void);

#endif
