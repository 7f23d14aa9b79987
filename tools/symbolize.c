#define _GNU_SOURCE
#include "symbolize.h"

#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>

struct symbolizer {
	Dwfl *dwfl;
	Dwfl_Callbacks cb;
	char *debuginfo_path;
};

struct symbolizer *symbolizer_open(pid_t pid)
{
	struct symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cb.find_elf = dwfl_linux_proc_find_elf;
	s->cb.find_debuginfo = dwfl_standard_find_debuginfo;
	s->cb.debuginfo_path = &s->debuginfo_path;
	s->dwfl = dwfl_begin(&s->cb);
	if (!s->dwfl || dwfl_linux_proc_report(s->dwfl, pid) != 0 ||
	    dwfl_report_end(s->dwfl, NULL, NULL) != 0) {
		symbolizer_close(s);
		return NULL;
	}
	return s;
}

void symbolizer_close(struct symbolizer *s)
{
	if (!s)
		return;
	if (s->dwfl)
		dwfl_end(s->dwfl);
	free(s);
}

void symbolize(struct symbolizer *s, uintptr_t pc, char *out, size_t cap)
{
	Dwfl_Module *m = s ? dwfl_addrmodule(s->dwfl, pc - 1) : NULL;
	const char *func, *file = NULL, *mod;
	Dwarf_Addr start = 0;
	Dwfl_Line *line;
	int lno = 0, n = 0;

	*out = '\0';
	if (!m)
		return;
	func = dwfl_module_addrname(m, pc - 1);
	line = dwfl_module_getsrc(m, pc - 1);
	if (line)
		file = dwfl_lineinfo(line, NULL, &lno, NULL, NULL, NULL);
	mod = dwfl_module_info(m, NULL, &start, NULL, NULL, NULL, NULL, NULL);
	if (func)
		n = snprintf(out, cap, "in %s ", func);
	if (n < 0 || (size_t)n >= cap)
		return;
	if (file && lno > 0)
		snprintf(out + n, cap - (size_t)n, "%s:%d", file, lno);
	else if (mod)
		snprintf(out + n, cap - (size_t)n, "(%s+0x%lx)", mod, (unsigned long)(pc - start));
}
