/* top: every process of the user under gcshim, refreshed: mem_alloc,
 * RSS, use of the heap limit, collections per second, last and longest
 * pause, and, when asked (key l), the leaks found.  Drawn with ncurses on
 * a terminal; with --plain, or when standard output is not a terminal,
 * one plain table per refresh. */
#define _GNU_SOURCE

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gcctl.h"

enum sort_key { SORT_PID, SORT_MEM, SORT_RSS, SORT_RATE, SORT_PAUSE };

static const char *const sort_names[] = { "pid", "mem", "rss", "rate", "pause" };

struct row {
	pid_t pid;
	char command[64];
	bool up;
	int64_t mem, rss, limit, collections, last_pause, max_pause;
	double rate;          /* collections per second since the last refresh */
	long long leaks;      /* bytes found by the last leak check, -1 none */
};

struct top {
	enum sort_key sort;
	long interval_ms, count;
	bool plain;
	struct row *rows;
	size_t n;
};

static int64_t stat_int(const json_t *s, const char *key)
{
	int64_t v = 0;

	json_int_of(json_object_get(s, key), &v);
	return v;
}

static const struct row *previous(const struct top *t, pid_t pid)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->rows[i].pid == pid)
			return &t->rows[i];
	return NULL;
}

static void fill_row(const struct top *t, struct row *r, pid_t pid)
{
	json_t *s = fetch_stats(pid, NULL, 0);
	const struct row *old = previous(t, pid);

	memset(r, 0, sizeof(*r));
	r->pid = pid;
	r->leaks = old ? old->leaks : -1;
	command_line(pid, r->command, sizeof(r->command));
	truncate_text(r->command, 30);
	r->up = s != NULL;
	if (!s)
		return;
	r->mem = stat_int(s, "mem_alloc");
	r->rss = stat_int(s, "rss");
	r->limit = stat_int(s, "heap_limit");
	r->collections = stat_int(s, "collections");
	r->last_pause = stat_int(s, "pause_last_ns");
	r->max_pause = stat_int(s, "pause_max_ns");
	if (old && old->up)
		r->rate = (double)(r->collections - old->collections) * 1000.0 / (double)t->interval_ms;
	json_decref(s);
}

static int64_t sort_value(const struct row *r, enum sort_key k)
{
	switch (k) {
	case SORT_PID: return -r->pid;
	case SORT_MEM: return r->mem;
	case SORT_RSS: return r->rss;
	case SORT_RATE: return (int64_t)(r->rate * 1000);
	case SORT_PAUSE: return r->max_pause;
	}
	return 0;
}

static enum sort_key sorting;

static int by_key(const void *a, const void *b)
{
	int64_t x = sort_value(a, sorting), y = sort_value(b, sorting);

	return x < y ? 1 : x > y ? -1 : 0;
}

/* A new list of the processes, each compared with its previous row. */
static void refresh_rows(struct top *t)
{
	pid_t *pids;
	size_t n;
	struct row *rows;

	if (client_find_all(&pids, &n) < 0)
		return;
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows) {
		free(pids);
		return;
	}
	for (size_t i = 0; i < n; i++)
		fill_row(t, &rows[i], pids[i]);
	free(pids);
	free(t->rows);
	t->rows = rows;
	t->n = n;
	sorting = t->sort;
	qsort(t->rows, t->n, sizeof(*t->rows), by_key);
}

static void format_row(const struct row *r, char cells[9][48])
{
	snprintf(cells[0], 48, "%d", (int)r->pid);
	snprintf(cells[1], 48, "%.47s", r->command);
	if (!r->up) {
		for (int c = 2; c < 9; c++)
			snprintf(cells[c], 48, "%s", c == 2 ? "no answer" : "");
		return;
	}
	human_size(cells[2], 48, r->mem);
	human_size(cells[3], 48, r->rss);
	if (r->limit > 0)
		snprintf(cells[4], 48, "%.0f%%", 100.0 * (double)r->mem / (double)r->limit);
	else
		snprintf(cells[4], 48, "-");
	snprintf(cells[5], 48, "%.1f", r->rate);
	human_duration(cells[6], 48, r->last_pause);
	human_duration(cells[7], 48, r->max_pause);
	if (r->leaks >= 0)
		human_size(cells[8], 48, r->leaks);
	else
		snprintf(cells[8], 48, "-");
}

static const char *const header[9] = {
	"PID", "COMMAND", "MEM_ALLOC", "RSS", "LIMIT", "GC/S", "PAUSE", "MAX_PAUSE", "LEAKS",
};

static void print_plain(const struct top *t)
{
	struct table tb = { .cols = 9 };
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	for (int c = 0; c < 9; c++)
		tb.right[c] = c != 1;
	strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime_r(&now, &tm));
	printf("gcctl top  %s  %zu process%s, sorted by %s\n", stamp, t->n, t->n == 1 ? "" : "es",
	       sort_names[t->sort]);
	table_add_row(&tb, header);
	for (size_t i = 0; i < t->n; i++) {
		char cells[9][48];
		const char *p[9];

		format_row(&t->rows[i], cells);
		for (int c = 0; c < 9; c++)
			p[c] = cells[c];
		table_add_row(&tb, p);
	}
	table_print(&tb);
	putchar('\n');
	fflush(stdout);
}

/* The leak report's total for the process on the first line. */
static void check_leaks(struct top *t)
{
	struct client c;
	json_t *r = NULL;

	if (!t->n || client_open(&c, t->rows[0].pid) != CLIENT_OK)
		return;
	if (client_request(&c, "leaks", &r) == CLIENT_OK && json_is_true(json_object_get(r, "ok")))
		t->rows[0].leaks = stat_int(r, "direct_bytes") + stat_int(r, "indirect_bytes");
	json_decref(r);
	client_close(&c);
}

static void draw_screen(const struct top *t)
{
	int widths[9] = { 7, 30, 10, 10, 6, 6, 10, 10, 10 };

	erase();
	mvprintw(0, 0, "gcctl top: %zu process%s, sorted by %s   "
		 "keys: p m r g s sort, l leaks of the first, q quit", t->n, t->n == 1 ? "" : "es",
		 sort_names[t->sort]);
	attron(A_REVERSE);
	move(2, 0);
	for (int c = 0; c < 9; c++)
		printw(c == 1 ? "%-*s " : "%*s ", widths[c], header[c]);
	attroff(A_REVERSE);
	for (size_t i = 0; i < t->n && (int)i + 3 < LINES; i++) {
		char cells[9][48];

		format_row(&t->rows[i], cells);
		move((int)i + 3, 0);
		for (int c = 0; c < 9; c++)
			if (c == 1)
				printw("%-*.*s ", widths[c], widths[c], cells[c]);
			else
				printw("%*s ", widths[c], cells[c]);
	}
	refresh();
}

/* A key: false to quit. */
static bool key(struct top *t, int ch)
{
	static const char keys[] = "pmrgs";

	if (ch == 'q' || ch == 'Q')
		return false;
	if (ch == 'l')
		check_leaks(t);
	else if (ch != ERR && strchr(keys, ch))
		t->sort = (enum sort_key)(strchr(keys, ch) - keys);
	return true;
}

static void run_curses(struct top *t)
{
	initscr();
	cbreak();
	noecho();
	curs_set(0);
	timeout((int)t->interval_ms);
	for (long i = 0; t->count < 0 || i < t->count; i++) {
		int ch;

		refresh_rows(t);
		draw_screen(t);
		ch = getch();
		if (!key(t, ch))
			break;
		if (ch != ERR)
			draw_screen(t);
	}
	endwin();
}

static int parse_top_args(struct ctx *cx, int argc, char **argv, struct top *t)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		size_t k;

		if (!strcmp(a, "--plain")) {
			t->plain = true;
			continue;
		}
		if (!v)
			return fail_with(cx, EXIT_USAGE, "bad argument '%s' for top (gcctl help top)", a);
		i++;
		if (!strcmp(a, "--interval") && parse_duration_ms(v, &t->interval_ms))
			continue;
		if (!strcmp(a, "--count") && arg_long(v, 1, 1000000, &t->count))
			continue;
		for (k = 0; !strcmp(a, "--sort") && k < sizeof(sort_names) / sizeof(*sort_names); k++)
			if (!strcmp(v, sort_names[k]))
				break;
		if (!strcmp(a, "--sort") && k < sizeof(sort_names) / sizeof(*sort_names)) {
			t->sort = (enum sort_key)k;
			continue;
		}
		return fail_with(cx, EXIT_USAGE, "bad argument '%s %s' for top (gcctl help top)", a, v);
	}
	return EXIT_OK;
}

int cmd_top(struct ctx *cx, int argc, char **argv)
{
	struct top t = { .sort = SORT_MEM, .interval_ms = 1000, .count = -1 };
	int st = parse_top_args(cx, argc, argv, &t);

	if (st != EXIT_OK)
		return st;
	if (!t.plain && !isatty(STDOUT_FILENO))
		t.plain = true;
	if (t.plain) {
		for (long i = 0; t.count < 0 || i < t.count; i++) {
			if (i)
				usleep((useconds_t)t.interval_ms * 1000);
			refresh_rows(&t);
			print_plain(&t);
		}
	} else {
		run_curses(&t);
	}
	free(t.rows);
	return EXIT_OK;
}
