/* plot: a recording (gcctl record) drawn as one standalone SVG file that
 * any browser opens: mem_alloc and RSS over time, each collection as a
 * marker at what it left with what it freed in its tooltip, and the
 * pauses in a second panel; axes in human units.  Elements carry ids
 * and classes (mem_alloc, rss, collection, pause) for tools and tests. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcctl.h"

#define WIDTH 960
#define LEFT 90          /* room for the y labels */
#define RIGHT 20
#define MEM_TOP 50
#define MEM_HEIGHT 330
#define PAUSE_TOP 440
#define PAUSE_HEIGHT 120
#define HEIGHT 610
#define TICKS 5

struct point {
	double t;        /* seconds since the header */
	double mem, rss;
};

struct gc_mark {
	double t;
	double after, pause_ms;
	long long generation, collected, freed;
	bool completed;
};

struct recording {
	long long start_ns;
	long long pid;
	char command[256];
	struct point *p;
	size_t np, cap_p;
	struct gc_mark *g;
	size_t ng, cap_g;
	double t_max, mem_max, pause_max;
};

static bool grow(void **v, size_t *cap, size_t n, size_t size)
{
	void *more;

	if (n < *cap)
		return true;
	more = realloc(*v, (*cap ? *cap * 2 : 256) * size);
	if (!more)
		return false;
	*v = more;
	*cap = *cap ? *cap * 2 : 256;
	return true;
}

static double seconds(const struct recording *r, const json_t *o)
{
	return (double)(int_of(o, "time_ns") - r->start_ns) / 1e9;
}

static void note_max(struct recording *r, double t, double mem)
{
	if (t > r->t_max)
		r->t_max = t;
	if (mem > r->mem_max)
		r->mem_max = mem;
}

static bool add_line(struct recording *r, const json_t *o)
{
	const char *type = str_of(o, "type");

	if (!strcmp(type, "header")) {
		r->start_ns = int_of(o, "time_ns");
		r->pid = int_of(o, "pid");
		snprintf(r->command, sizeof(r->command), "%s", str_of(o, "command"));
	} else if (!strcmp(type, "sample")) {
		if (!grow((void **)&r->p, &r->cap_p, r->np, sizeof(*r->p)))
			return false;
		r->p[r->np] = (struct point){ seconds(r, o), (double)int_of(o, "mem_alloc"),
					      (double)int_of(o, "rss") };
		note_max(r, r->p[r->np].t, r->p[r->np].mem > r->p[r->np].rss ? r->p[r->np].mem :
								    r->p[r->np].rss);
		r->np++;
	} else if (!strcmp(type, "collection")) {
		if (!grow((void **)&r->g, &r->cap_g, r->ng, sizeof(*r->g)))
			return false;
		r->g[r->ng] = (struct gc_mark){ seconds(r, o), (double)int_of(o, "mem_alloc_after"),
						(double)int_of(o, "pause_ns") / 1e6,
						int_of(o, "generation"), int_of(o, "collected"),
						int_of(o, "collected_bytes"), true_of(o, "completed") };
		note_max(r, r->g[r->ng].t, (double)int_of(o, "mem_alloc_before"));
		if (r->g[r->ng].pause_ms > r->pause_max)
			r->pause_max = r->g[r->ng].pause_ms;
		r->ng++;
	}
	return true;
}

/* Reads the file; an error names the line. */
static bool load(struct ctx *cx, const char *path, struct recording *r)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	bool ok = true;

	if (!f)
		return fail_with(cx, EXIT_USAGE, "cannot read %s: %s", path, strerror(errno)), false;
	while (ok && getline(&line, &cap, f) > 0) {
		json_error_t err;
		json_t *o = json_loads(line, 0, &err);

		lineno++;
		if (!json_is_object(o) || (lineno == 1 && strcmp(str_of(o, "type"), "header")))
			ok = fail_with(cx, EXIT_USAGE, "%s:%zu: not a line of a gcctl recording", path,
				       lineno) == EXIT_OK;
		else if (!add_line(r, o))
			ok = fail_with(cx, EXIT_UNREACHABLE, "out of memory") == EXIT_OK;
		json_decref(o);
	}
	free(line);
	fclose(f);
	if (ok && !lineno)
		ok = fail_with(cx, EXIT_USAGE, "%s: empty recording", path) == EXIT_OK;
	return ok;
}

/* A round step for an axis: 1, 2 or 5 times a power of ten (or of 1024
 * for bytes) that divides max into about TICKS parts. */
static double axis_step(double max, double base)
{
	double step = 1;

	if (max <= 0)
		return 1;
	while (step * base <= max / TICKS)
		step *= base;
	while (step > max / TICKS && step / base >= 1)
		step /= base;
	if (step * 5 <= max / TICKS)
		return step * 5;
	if (step * 2 <= max / TICKS)
		return step * 2;
	return step;
}

static double x_of(const struct recording *r, double t)
{
	return LEFT + (r->t_max > 0 ? t / r->t_max : 0) * (WIDTH - LEFT - RIGHT);
}

static double y_mem(const struct recording *r, double v)
{
	return MEM_TOP + MEM_HEIGHT - (r->mem_max > 0 ? v / r->mem_max : 0) * MEM_HEIGHT;
}

static double y_pause(const struct recording *r, double ms)
{
	return PAUSE_TOP + PAUSE_HEIGHT - (r->pause_max > 0 ? ms / r->pause_max : 0) * PAUSE_HEIGHT;
}

static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++)
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
}

static void time_axis(FILE *f, const struct recording *r, int top, int height)
{
	double step = axis_step(r->t_max, 10);

	for (double t = 0; t <= r->t_max + step / 1000; t += step)
		fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
			"<text class=\"tick x\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%gs</text>\n",
			x_of(r, t), top, x_of(r, t), top + height, x_of(r, t), top + height + 16, t);
}

static void memory_panel(FILE *f, const struct recording *r)
{
	double step = axis_step(r->mem_max, 1024);
	static const char *const series[] = { "mem_alloc", "rss" };

	fprintf(f, "<g id=\"memory\">\n<text class=\"title\" x=\"%d\" y=\"%d\">memory</text>\n",
		LEFT, MEM_TOP - 10);
	for (double v = 0; v <= r->mem_max + step / 1000; v += step) {
		char label[32];

		human_size(label, sizeof(label), (int64_t)v);
		fprintf(f, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
			"<text class=\"tick y\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			LEFT, y_mem(r, v), WIDTH - RIGHT, y_mem(r, v), LEFT - 6, y_mem(r, v) + 4, label);
	}
	time_axis(f, r, MEM_TOP, MEM_HEIGHT);
	for (int s = 0; s < 2; s++) {
		fprintf(f, "<path class=\"%s\" d=\"", series[s]);
		for (size_t i = 0; i < r->np; i++)
			fprintf(f, "%c%.1f,%.1f ", i ? 'L' : 'M', x_of(r, r->p[i].t),
				y_mem(r, s ? r->p[i].rss : r->p[i].mem));
		fputs("\"/>\n", f);
	}
	fputs("</g>\n<g id=\"collections\">\n", f);
	for (size_t i = 0; i < r->ng; i++) {
		char freed[32];

		human_size(freed, sizeof(freed), r->g[i].freed);
		fprintf(f, "<circle class=\"collection gen%lld%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\">"
			"<title>generation %lld at %.3fs: %lld blocks freed (%s), pause %.3f ms%s</title>"
			"</circle>\n", r->g[i].generation, r->g[i].completed ? "" : " abandoned",
			x_of(r, r->g[i].t), y_mem(r, r->g[i].after), r->g[i].generation, r->g[i].t,
			r->g[i].collected, freed, r->g[i].pause_ms,
			r->g[i].completed ? "" : " (abandoned)");
	}
	fputs("</g>\n", f);
}

static void pause_panel(FILE *f, const struct recording *r)
{
	double step = axis_step(r->pause_max, 10);

	fprintf(f, "<g id=\"pauses\">\n<text class=\"title\" x=\"%d\" y=\"%d\">pauses</text>\n",
		LEFT, PAUSE_TOP - 10);
	for (double v = 0; r->pause_max > 0 && v <= r->pause_max + step / 1000; v += step)
		fprintf(f, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
			"<text class=\"tick y\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g ms</text>\n",
			LEFT, y_pause(r, v), WIDTH - RIGHT, y_pause(r, v), LEFT - 6, y_pause(r, v) + 4, v);
	time_axis(f, r, PAUSE_TOP, PAUSE_HEIGHT);
	for (size_t i = 0; i < r->ng; i++)
		fprintf(f, "<rect class=\"pause\" x=\"%.1f\" y=\"%.1f\" width=\"3\" height=\"%.1f\">"
			"<title>%.3f ms</title></rect>\n", x_of(r, r->g[i].t) - 1.5,
			y_pause(r, r->g[i].pause_ms), PAUSE_TOP + PAUSE_HEIGHT - y_pause(r, r->g[i].pause_ms),
			r->g[i].pause_ms);
	fputs("</g>\n", f);
}

static void draw(FILE *f, const struct recording *r)
{
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
		"<style>.grid{stroke:#ddd}.mem_alloc{fill:none;stroke:#1f77b4;stroke-width:2}"
		".rss{fill:none;stroke:#ff7f0e;stroke-width:2}.collection{fill:#d62728}"
		".abandoned{fill:#999}.pause{fill:#9467bd}.title{font-weight:bold}"
		".legend{font-size:12px}</style>\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<title>", WIDTH, HEIGHT,
		WIDTH, HEIGHT);
	xml_text(f, r->command);
	fprintf(f, " (pid %lld)</title>\n<text class=\"title\" x=\"%d\" y=\"20\">", r->pid, LEFT);
	xml_text(f, r->command);
	fprintf(f, " (pid %lld): %zu samples, %zu collections</text>\n", r->pid, r->np, r->ng);
	fprintf(f, "<g class=\"legend\"><line class=\"mem_alloc\" x1=\"%d\" y1=\"30\" x2=\"%d\" "
		"y2=\"30\"/><text x=\"%d\" y=\"34\">mem_alloc</text><line class=\"rss\" x1=\"%d\" "
		"y1=\"30\" x2=\"%d\" y2=\"30\"/><text x=\"%d\" y=\"34\">RSS</text>"
		"<circle class=\"collection\" cx=\"%d\" cy=\"30\" r=\"4\"/><text x=\"%d\" y=\"34\">"
		"collection</text></g>\n", WIDTH - 330, WIDTH - 310, WIDTH - 305, WIDTH - 230,
		WIDTH - 210, WIDTH - 205, WIDTH - 150, WIDTH - 142);
	memory_panel(f, r);
	pause_panel(f, r);
	fputs("</svg>\n", f);
}

int cmd_plot(struct ctx *cx, int argc, char **argv)
{
	struct recording r = { 0 };
	const char *in = NULL, *out = NULL;
	FILE *f;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			out = argv[++i];
		else if (!in)
			in = argv[i];
		else
			return fail_with(cx, EXIT_USAGE, "usage: gcctl plot FILE -o SVG");
	if (!in || !out)
		return fail_with(cx, EXIT_USAGE, "usage: gcctl plot FILE -o SVG");
	if (load(cx, in, &r)) {
		f = fopen(out, "we");
		if (!f) {
			fail_with(cx, EXIT_USAGE, "cannot write %s: %s", out, strerror(errno));
		} else {
			draw(f, &r);
			if (fclose(f) != 0)
				fail_with(cx, EXIT_USAGE, "cannot write %s: %s", out, strerror(errno));
		}
	}
	free(r.p);
	free(r.g);
	return cx->status;
}
