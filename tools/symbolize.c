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

void symbolize_names(struct symbolizer *s, uintptr_t pc, struct frame_names *out)
{
	Dwfl_Module *m = s ? dwfl_addrmodule(s->dwfl, pc - 1) : NULL;
	Dwarf_Addr start = 0;
	Dwfl_Line *line;

	*out = (struct frame_names){ 0 };
	if (!m)
		return;
	out->function = dwfl_module_addrname(m, pc - 1);
	line = dwfl_module_getsrc(m, pc - 1);
	if (line)
		out->file = dwfl_lineinfo(line, NULL, &out->line, NULL, NULL, NULL);
	out->module = dwfl_module_info(m, NULL, &start, NULL, NULL, NULL, NULL, NULL);
	out->offset = pc - start;
}

void symbolize(struct symbolizer *s, uintptr_t pc, char *out, size_t cap)
{
	struct frame_names n;
	int len = 0;

	*out = '\0';
	symbolize_names(s, pc, &n);
	if (n.function)
		len = snprintf(out, cap, "in %s ", n.function);
	if (len < 0 || (size_t)len >= cap)
		return;
	if (n.file && n.line > 0)
		snprintf(out + len, cap - (size_t)len, "%s:%d", n.file, n.line);
	else if (n.module)
		snprintf(out + len, cap - (size_t)len, "(%s+0x%lx)", n.module, (unsigned long)n.offset);
}
