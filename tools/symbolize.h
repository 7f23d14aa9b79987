/* Return addresses of another process to function, file:line, with
 * elfutils' libdw, from the process's memory map. */
#ifndef GCCTL_SYMBOLIZE_H
#define GCCTL_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct symbolizer;

/* The names of a frame; each NULL (line 0) when not known.  They belong
 * to the symbolizer and live as long as it does. */
struct frame_names {
	const char *function, *file, *module;
	int line;
	uintptr_t offset;   /* pc - the module's load address */
};

/* NULL when the process's modules cannot be read. */
struct symbolizer *symbolizer_open(pid_t pid);
void symbolizer_close(struct symbolizer *s);

/* The names of the frame whose return address is pc (looked up one byte
 * back, inside the call). */
void symbolize_names(struct symbolizer *s, uintptr_t pc, struct frame_names *out);

/* "in func file:line", "in func (module+0xoff)", "(module+0xoff)" or "". */
void symbolize(struct symbolizer *s, uintptr_t pc, char *out, size_t cap);

#endif
