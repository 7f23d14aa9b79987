/* The control socket: one per process, served by one thread that only
 * ever blocks in poll() and never holds a lock across I/O. */
#ifndef GCSHIM_CTL_H
#define GCSHIM_CTL_H

#include <stddef.h>

void ctl_start(void);
void ctl_stop(void);
void ctl_fork_child(void);
int ctl_socket_dir(char *buf, size_t cap);

#endif
