/* Return addresses of another process to function, file:line, with
 * elfutils' libdw, from the process's memory map. */
#ifndef GCCTL_SYMBOLIZE_H
#define GCCTL_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct symbolizer;

/* NULL when the process's modules cannot be read. */
struct symbolizer *symbolizer_open(pid_t pid);
void symbolizer_close(struct symbolizer *s);

/* "in func file:line", "in func (module+0xoff)", "(module+0xoff)" or ""
 * for the return address pc (looked up one byte back, inside the call). */
void symbolize(struct symbolizer *s, uintptr_t pc, char *out, size_t cap);

#endif
