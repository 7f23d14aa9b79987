/* Helpers the suites that talk to live processes share. */
#ifndef GCSHIM_TESTS_SUPPORT_H
#define GCSHIM_TESTS_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

long long now_ms(void);

/* NAME's value, or FALLBACK when it is unset or empty. */
const char *env_or(const char *name, const char *fallback);

/* REL under the build directory ($top_builddir, else "."): one of eight
 * buffers, reused in turn. */
char *build_path(const char *rel);

/* One line from fd into line (without its newline), buffering what comes
 * after it in buf/len; false on end of file, a full buffer or timeout. */
bool read_line_fd(int fd, char *buf, size_t *len, size_t cap, char *line, size_t lcap,
		  int timeout_ms);

#endif
