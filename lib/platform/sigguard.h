/* The stop signal belongs to the collector: the program can neither
 * replace its handler nor block it.  Its attempts succeed from its point
 * of view (a shadow action is kept and reported back), so a program that
 * happens to use the same signal is told once how to move ours. */
#ifndef GCSHIM_SIGGUARD_H
#define GCSHIM_SIGGUARD_H

#include <signal.h>

void sigguard_init(void);
int sigguard_install(int sig, const struct sigaction *sa);

#endif
