#include "maps.h"

#include <stddef.h>

/* A hexadecimal number of at most the width of an address, then the
 * character `sep`; where the text after sep starts, or NULL. */
static const char *hex_then(const char *s, uintptr_t *out, char sep)
{
	const char *from = s;
	uintptr_t v = 0;

	for (;; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			break;
		if (v >> (sizeof(v) * 8 - 4))
			return NULL;
		v = v << 4 | d;
	}
	if (s == from || *s != sep)
		return NULL;
	*out = v;
	return s + 1;
}

/* "rwxp" and the blank after it. */
static const char *perms_then(const char *s, char perms[5])
{
	for (int i = 0; i < 4; i++) {
		if (!s[i] || s[i] == '\n' || s[i] == ' ')
			return NULL;
		perms[i] = s[i];
	}
	perms[4] = '\0';
	return s[4] == ' ' ? s + 5 : NULL;
}

/* The inode's digits; what follows them must end the field. */
static const char *inode_end(const char *s)
{
	const char *from = s;

	while (*s >= '0' && *s <= '9')
		s++;
	return s > from && (*s == ' ' || *s == '\n' || !*s) ? s : NULL;
}

const char *maps_parse_line(const char *s, struct mapping *m)
{
	uintptr_t dev;

	if (!(s = hex_then(s, &m->start, '-')) || !(s = hex_then(s, &m->end, ' ')) ||
	    !(s = perms_then(s, m->perms)) || !(s = hex_then(s, &m->offset, ' ')) ||
	    !(s = hex_then(s, &dev, ':')) || !(s = hex_then(s, &dev, ' ')) ||
	    !(s = inode_end(s)) || m->end <= m->start)
		return NULL;
	while (*s == ' ')
		s++;
	m->path = s;
	while (*s && *s != '\n')
		s++;
	return *s ? s + 1 : s;
}
