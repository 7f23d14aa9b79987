/* Messages of the shim.  Safe inside malloc and signal handlers: the
 * formatter writes into a stack buffer and the line leaves in one write(2). */
#ifndef GCSHIM_LOG_H
#define GCSHIM_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>

void log_open(const char *path);
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(const char *fmt, va_list ap);
size_t fmt_v(char *buf, size_t cap, const char *fmt, va_list ap);
size_t fmt_s(char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One message per flag for the life of the process (per kind of event). */
#define log_once(flag, ...)                                                   \
	do {                                                                  \
		static atomic_flag flag = ATOMIC_FLAG_INIT;                   \
		if (!atomic_flag_test_and_set_explicit(&flag,                 \
						       memory_order_relaxed)) \
			log_msg(__VA_ARGS__);                                 \
	} while (0)

#endif
