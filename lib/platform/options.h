/* Options: one table, read once from GCSHIM_* environment variables.
 * Adding an option is one line in GCSHIM_OPTIONS. */
#ifndef GCSHIM_OPTIONS_H
#define GCSHIM_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "parse.h"

/* X(ID, kind, default, min, max, default as shown, description) */
#define GCSHIM_OPTIONS(X)                                                     \
	X(LOG, OPT_PATH, 0, 0, 0, "stderr",                                   \
	  "file that receives the shim's messages")                          \
	X(ENABLE, OPT_BOOL, 1, 0, 1, "1",                                     \
	  "automatic collections allowed (gc.enable)")                        \
	X(HEAP_LIMIT, OPT_SIZE, 0, 0, INT64_MAX, "0 (no limit)",              \
	  "largest mem_alloc; an allocation beyond it fails")                 \
	X(GROWTH, OPT_PERCENT_OR_ON, -1, -1, 100000, "off",                   \
	  "collect when the heap grew by this percent over the last live heap (on: 100)") \
	X(MARKERS, OPT_INT, 0, 0, 64, "0 (the CPUs it may run on)",            \
	  "threads that mark during a collection")                            \
	X(THRESHOLD, OPT_SIZE_OR_OFF, -1, -1, INT64_MAX, "-1 (off)",          \
	  "collect each time this many bytes were allocated")                 \
	X(GEN_THRESHOLD, OPT_TRIPLE, 0, 0, INT32_MAX, "0,10,10",              \
	  "CPython-style thresholds t0,t1,t2; t0 = 0 turns them off")         \
	X(DEBUG, OPT_FLAGS, 0, 0, 0x27, "0",                                  \
	  "debug flags: stats,collectable,uncollectable,saveall,leak")        \
	X(SOCKET, OPT_BOOL, 1, 0, 1, "1",                                     \
	  "serve the control socket")                                          \
	X(SOCKET_DIR, OPT_PATH, 0, 0, 0, "$XDG_RUNTIME_DIR/gcshim",           \
	  "directory of the control socket")                                   \
	X(HEAP_RESERVE, OPT_SIZE, 256LL << 30, 64LL << 20, 1LL << 46, "256G", \
	  "address space reserved for the heap")                              \
	X(ARENAS, OPT_INT, 0, 0, 256, "0 (1 per 4 CPUs)",                     \
	  "number of allocation arenas")                                      \
	X(SIGNAL, OPT_SIGNO, 61, 1, 64, "SIGRTMAX-3 (61)",                         \
	  "signal that stops threads for a collection")                      \
	X(TRACE, OPT_BOOL, 1, 0, 1, "1",                                      \
	  "stop threads with ptrace where possible; 0: always with the signal") \
	X(STOP_TIMEOUT, OPT_INT, 2000, 10, 600000, "2000",                    \
	  "milliseconds to wait for threads to stop before giving up")       \
	X(ROOTS, OPT_ROOTSET, 0, 0, 1, "all",                                   \
	  "root set: all (every writable mapping) or minimal")               \
	X(VERIFY, OPT_BOOL, 0, 0, 1, "0",                                     \
	  "keep unreachable blocks and report frees of them (false garbage)") \
	X(MINOR, OPT_BOOL, 1, 0, 1, "1",                                      \
	  "minor collections, where the kernel reports written pages")       \
	GCSHIM_SITE_OPTIONS(X)

/* Allocation sites and leak reports (sites.c, leaks.c). */
#define GCSHIM_SITE_OPTIONS(X)                                                \
	X(BACKTRACE, OPT_INT, -1, -1, 64, "0 (16 with GCSHIM_REPORT=exit)",   \
	  "frames recorded per sampled allocation, 0 = no backtraces")        \
	X(BACKTRACE_SAMPLE, OPT_INT, 1, 1, INT32_MAX, "1",                    \
	  "record the stack of one allocation in N, per thread")              \
	X(REPORT, OPT_PATH, 0, 0, 0, "(none)",                                \
	  "exit: report leaked blocks by allocation site at exit")            \
	X(REPORT_FILE, OPT_PATH, 0, 0, 0, "stderr",                           \
	  "file that receives the exit report")                               \
	X(REPORT_EXITCODE, OPT_INT, 23, 0, 255, "23",                         \
	  "exit status when the exit report found leaks, 0 = unchanged")     \
	X(SUPPRESSIONS, OPT_PATH, 0, 0, 0, "(none)",                          \
	  "LeakSanitizer suppression file applied to the exit report")

enum opt_id {
#define OPT_ENUM(id, ...) OPT_##id,
	GCSHIM_OPTIONS(OPT_ENUM)
#undef OPT_ENUM
	OPT_COUNT
};

struct opt_def {
	const char *env;
	enum opt_kind kind;
	int64_t def, min, max;
	const char *def_text, *help;
};

extern const struct opt_def opt_defs[OPT_COUNT];

void options_load(char **envp);
int64_t opt_int(enum opt_id id);
const char *opt_str(enum opt_id id);
const int64_t *opt_triple(enum opt_id id);

#endif
