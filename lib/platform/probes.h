/* Static probes (USDT) for bpftrace, perf, SystemTap and gdb, at the
 * points where CPython and HotSpot have theirs.  Each is a nop in the
 * code and a note in the ELF file (readelf -n): nothing runs unless a
 * tracer attaches.  Provider "gcshim":
 *
 *   gc__start(int generation)
 *   gc__done(int generation, long collected, long collected_bytes, unsigned long pause_ns)
 *   gc__abandoned(int generation)                  nothing was freed
 *   stop__failed(int tid, int timeout_ms)          the thread that did not stop
 *   limit__refused(unsigned long bytes)            an allocation the heap limit refused
 *   false__garbage(void *block, unsigned long size, unsigned collection)
 *
 * Arguments are values already at hand: a probe never computes anything. */
#ifndef GCSHIM_PROBES_H
#define GCSHIM_PROBES_H

#define SDT_USE_VARIADIC 1
#include <sys/sdt.h>

#define PROBE(name, ...) STAP_PROBEV(gcshim, name, ##__VA_ARGS__)

#endif
