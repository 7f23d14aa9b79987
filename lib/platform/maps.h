/* Lines of /proc/PID/maps, as the kernel prints them:
 *
 *     START-END PERMS OFFSET MAJOR:MINOR INODE   PATH
 *     7f0c2a400000-7f0c2a422000 r--p 00000000 fe:01 1318 /usr/lib/libc.so.6
 *
 * START, END, OFFSET and the device in hexadecimal, INODE in decimal,
 * PERMS four characters ("rw-p"), PATH the rest of the line, blanks
 * before it skipped (absent for anonymous memory; "[stack]", "[heap]",
 * " (deleted)" after a removed file).  Parsed in place, without
 * allocating: the collector reads the listing while the world is
 * stopped. */
#ifndef GCSHIM_MAPS_H
#define GCSHIM_MAPS_H

#include <stdint.h>

struct mapping {
	uintptr_t start, end, offset;
	char perms[5];
	const char *path;   /* into the line; ends at its '\n' or NUL */
};

/* Parses the line at s, in a NUL-terminated listing.  Returns where the
 * next line starts (the listing's NUL after the last one), or NULL when
 * the line is not a maps line: nothing is read beyond the NUL. */
const char *maps_parse_line(const char *s, struct mapping *m);

#endif
