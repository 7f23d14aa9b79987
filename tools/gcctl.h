/* gcctl: what the files of the command-line client share.  gcctl.c reads
 * the command line and picks a verb from the table; each cmd-*.c file holds
 * a verb or a family of verbs; session.c talks to the process; output.c
 * shows numbers and tables as people read them. */
#ifndef GCCTL_H
#define GCCTL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "client.h"
#include <jansson.h>

struct symbolizer;

enum exit_code {
	EXIT_OK = 0,
	EXIT_REPLY_ERROR = 1, /* the process answered with an error */
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3, /* no such process, no socket, no answer */
	EXIT_DENIED = 4,
	EXIT_CANNOT_EXEC = 126,
	EXIT_NOT_FOUND = 127,
};

struct ctx {
	pid_t pid; /* from -p; 0 to pick the only process there is */
	bool json;
	bool connected;
	struct client client;
	int status;
};

/* What a verb accepts besides its own arguments. */
enum verb_flags {
	VERB_PID = 1,      /* -p PID: it talks to one process */
	VERB_JSON = 2,     /* --json */
	VERB_TIMEOUT = 4,  /* --timeout */
	VERB_REMOTE = VERB_PID | VERB_JSON | VERB_TIMEOUT,
};

struct verb {
	const char *name;
	const char *args;
	int min_args, max_args;
	int (*run)(struct ctx *cx, int argc, char **argv);
	unsigned flags;
	const char *help;
	const char *options; /* its own options, one per line, for help VERB */
};

/* Verbs: cmd-*.c */
int cmd_query(struct ctx *cx, int argc, char **argv);
int cmd_threshold(struct ctx *cx, int argc, char **argv);
int cmd_set_threshold(struct ctx *cx, int argc, char **argv);
int cmd_collect(struct ctx *cx, int argc, char **argv);
int cmd_get_stats(struct ctx *cx, int argc, char **argv);
int cmd_garbage(struct ctx *cx, int argc, char **argv);
int cmd_stats(struct ctx *cx, int argc, char **argv);
int cmd_ps(struct ctx *cx, int argc, char **argv);
int cmd_is_tracked(struct ctx *cx, int argc, char **argv);
int cmd_get_referents(struct ctx *cx, int argc, char **argv);
int cmd_get_referrers(struct ctx *cx, int argc, char **argv);
int cmd_get_objects(struct ctx *cx, int argc, char **argv);
int cmd_watch(struct ctx *cx, int argc, char **argv);
int cmd_leaks(struct ctx *cx, int argc, char **argv);
int cmd_run(struct ctx *cx, int argc, char **argv);
int cmd_metrics(struct ctx *cx, int argc, char **argv);
int cmd_exporter(struct ctx *cx, int argc, char **argv);
int cmd_record(struct ctx *cx, int argc, char **argv);
int cmd_plot(struct ctx *cx, int argc, char **argv);
int cmd_top(struct ctx *cx, int argc, char **argv);
void run_help(void);

/* Messages: session.c */
void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reports an error and records how gcctl ends. */
int fail_with(struct ctx *cx, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int client_exit(enum client_status st);
/* "5", "5s", "250ms", "2m": a duration in milliseconds (gcctl.c). */
bool parse_duration_ms(const char *s, long *out);
/* An integer argument from min to max, in the library's syntax. */
bool arg_long(const char *s, long min, long max, long *out);

/* Talking to the process: session.c */
void command_line(pid_t pid, char *buf, size_t cap);
/* Without -p: the only process there is; 0 after an error. */
pid_t the_only_process(struct ctx *cx);
void truncate_text(char *s, size_t max);
const char *reply_error(const json_t *r);
json_t *ask(struct ctx *cx, int argc, char **argv);
json_t *ask_first(struct ctx *cx, int argc, char **argv);
bool reply_ints(struct ctx *cx, const json_t *r, const char *const *keys, int64_t *out,
		size_t n);
/* True if v is an integer; *out receives it. */
bool json_int_of(const json_t *v, int64_t *out);
/* The "stats" object of process pid, or NULL and the reason in err. */
json_t *fetch_stats(pid_t pid, char *err, size_t cap);
const char *str_of(const json_t *obj, const char *key);
long long int_of(const json_t *obj, const char *key);
bool true_of(const json_t *obj, const char *key);

/* The metrics of pids in Prometheus' text format, to be freed (cmd-metrics.c). */
char *metrics_text(const pid_t *pids, size_t n, size_t *len);

/* Showing numbers and tables: output.c */
#define MAX_COLS 9

/* Rows of text printed in aligned columns, two spaces apart. */
struct table {
	size_t cols, rows, cap;
	char *(*cell)[MAX_COLS];
	bool right[MAX_COLS];
};

void table_add(struct table *t, ...);
/* A row of t->cols cells. */
void table_add_row(struct table *t, const char *const *cells);
void table_print(struct table *t);
void human_size(char *buf, size_t cap, int64_t v);
void human_duration(char *buf, size_t cap, int64_t ns);
void show_bytes(char *buf, size_t cap, int64_t v);
void show_duration(char *buf, size_t cap, int64_t v);
void show_blocks(char *buf, size_t cap, int64_t blocks, int64_t bytes);
void show_value(char *buf, size_t cap, const char *key, const json_t *v);
void print_reply(const json_t *r);
void print_frames(struct symbolizer *sym, const json_t *frames);
/* s as a JSON string, quotes and escapes included. */
void put_json_string(FILE *f, const char *s);
/* The size the program asked for, or the usable size said to be one. */
void block_size(char *buf, size_t cap, const json_t *b);

#endif
