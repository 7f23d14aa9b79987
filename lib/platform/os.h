/* The operating-system layer: every system call the shim makes outside the
 * socket code goes through here, so the rest stays portable and testable. */
#ifndef GCSHIM_OS_H
#define GCSHIM_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OS_PAGE 4096UL

void *os_reserve(size_t *size);
void *os_map(size_t size);
void os_unmap(void *p, size_t size);
bool os_commit(void *p, size_t size);
bool os_decommit(void *p, size_t size);
bool os_purge(void *p, size_t size, bool forced);
uint64_t os_rss(void);
pid_t os_gettid(void);
uint64_t os_now_ns(void);
size_t os_ncpus(void);
size_t os_read_small(const char *path, char *buf, size_t cap);
int os_high_fd(int fd);
int os_close(int fd);
ssize_t os_copy_from_self(void *dst, const void *src, size_t n);
void os_written_runs(int pagemap, uintptr_t lo, uintptr_t hi, bool shared,
		     void (*fn)(uintptr_t a, uintptr_t b, void *arg), void *arg);

#endif
