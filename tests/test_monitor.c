/* gcctl for operators, on real processes: python3 under the shim, made
 * to allocate and collect, watched with metrics (checked by promtool),
 * the exporter (scraped by curl), record and plot (the SVG parsed by
 * python3's XML parser, and rendered by headless Chromium where one is
 * installed), top's plain mode, watch's events and the static probes
 * (listed by readelf, attached to by perf where it can run). */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "monitor_support.h"
#include "support.h"

/* Allocates 2 MB every 20 ms and drops the previous 2 MB: with a 1 MiB
 * threshold, it collects about 50 times a second. */
static const char workload[] =
	"import ctypes, time\n"
	"libc = ctypes.CDLL(None)\n"
	"libc.malloc.restype = ctypes.c_void_p\n"
	"while True:\n"
	"    b = [libc.malloc(100000) for _ in range(20)]\n"
	"    time.sleep(0.02)\n";

TestSuite(monitor, .init = mon_setup, .fini = mon_teardown, .timeout = 120);

/* A C program whose every collection frees blocks. */
static pid_t start_churn(void)
{
	char *argv[] = { build_path("tests/fixtures/churn"), NULL };

	return mon_start(argv, (char *[]){ "GCSHIM_THRESHOLD=1M", NULL });
}

static pid_t start_workload(void)
{
	char *argv[] = { "/usr/bin/python3", "-c", (char *)workload, NULL };
	char *env[] = { "GCSHIM_THRESHOLD=1M", NULL };

	return mon_start(argv, env);
}

/* promtool check metrics on text: its verdict, with what it said. */
static void expect_promtool_accepts(const char *text)
{
	char *argv[] = { "promtool", "check", "metrics", NULL };
	struct mon_result *r = mon_run(argv, NULL, text);

	cr_assert_eq(r->status, 0, "promtool refused the metrics: %s%s\n%s", r->out, r->err, text);
}

static bool has_line(const char *text, const char *prefix)
{
	for (const char *s = text; s && *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : NULL)
		if (!strncmp(s, prefix, strlen(prefix)))
			return true;
	return false;
}

Test(monitor, metrics_of_one_process_pass_promtool)
{
	pid_t pid = start_workload();
	char up[128], gen[128];
	struct mon_result *r;

	mon_wait_collections(pid, 3);
	r = mon_gcctl("-p", mon_pid(pid), "metrics", NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	expect_promtool_accepts(r->out);
	snprintf(up, sizeof(up), "gcshim_up{pid=\"%d\",comm=\"python3\"} 1", (int)pid);
	cr_assert(has_line(r->out, up), "no '%s' in\n%s", up, r->out);
	snprintf(gen, sizeof(gen), "gcshim_gc_collections_total{pid=\"%d\",comm=\"python3\","
		 "generation=\"2\"} ", (int)pid);
	cr_assert(has_line(r->out, gen), "%s", r->out);
	cr_assert(has_line(r->out, "# TYPE gcshim_gc_duration_seconds summary"));
	cr_assert(has_line(r->out, "# TYPE gcshim_allocated_bytes_total counter"));
	cr_assert(has_line(r->out, "# TYPE gcshim_mem_alloc_bytes gauge"));
	cr_assert(!strstr(r->out, "_ns"), "a name in nanoseconds:\n%s", r->out);
}

Test(monitor, metrics_all_for_the_textfile_collector)
{
	pid_t a = start_workload(), b = start_workload();
	char la[96], lb[96];
	struct mon_result *r;

	mon_wait_answering(a);
	mon_wait_answering(b);
	r = mon_gcctl("metrics", "--all", NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	expect_promtool_accepts(r->out);
	snprintf(la, sizeof(la), "gcshim_up{pid=\"%d\",", (int)a);
	snprintf(lb, sizeof(lb), "gcshim_up{pid=\"%d\",", (int)b);
	cr_assert(has_line(r->out, la) && has_line(r->out, lb), "%s", r->out);
	r = mon_gcctl("-p", mon_pid(a), "metrics", "--all", NULL);
	cr_assert_eq(r->status, 2);
}

/* A port nobody listens on, from the kernel. */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	getsockname(fd, (struct sockaddr *)&a, &len);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static struct mon_result *scrape(int port)
{
	char url[64];
	char *argv[] = { "curl", "-sS", "--max-time", "20", "-D", "/dev/stderr", url, NULL };

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
	return mon_run(argv, NULL, NULL);
}

Test(monitor, exporter_is_scraped_and_skips_a_stopped_process)
{
	pid_t live = start_workload(), stopped = start_workload(), gone = start_workload();
	int port = free_port();
	char listen[32], line[96];
	struct mon_result *r;
	long long t0, took;

	mon_wait_answering(live);
	mon_wait_answering(stopped);
	mon_wait_answering(gone);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	mon_start_gcctl((char *[]){ "--timeout", "1s", "exporter", "--listen", listen, NULL });
	mon_wait_port(port);

	r = scrape(port);
	cr_assert_eq(r->status, 0, "curl: %s", r->err);
	cr_assert(strstr(r->err, "200 OK") && strstr(r->err, "text/plain; version=0.0.4"),
		  "%s", r->err);
	expect_promtool_accepts(r->out);

	/* stopped: skipped within the timeout; gone: drops out */
	kill(stopped, SIGSTOP);
	mon_kill(gone);
	t0 = now_ms();
	r = scrape(port);
	took = now_ms() - t0;
	kill(stopped, SIGCONT);
	cr_assert_eq(r->status, 0, "curl: %s", r->err);
	expect_promtool_accepts(r->out);
	snprintf(line, sizeof(line), "gcshim_up{pid=\"%d\",comm=\"python3\"} 1", (int)live);
	cr_assert(has_line(r->out, line), "%s", r->out);
	snprintf(line, sizeof(line), "gcshim_up{pid=\"%d\",comm=\"python3\"} 0", (int)stopped);
	cr_assert(has_line(r->out, line), "%s", r->out);
	snprintf(line, sizeof(line), "pid=\"%d\"", (int)gone);
	cr_assert(!strstr(r->out, line), "a process that ended is still listed:\n%s", r->out);
	cr_assert_lt(took, 10000, "the scrape took %lld ms with a 1 s timeout", took);

	r = mon_run((char *[]){ "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
				(char *)(snprintf(line, sizeof(line), "http://127.0.0.1:%d/other", port),
					 line), NULL }, NULL, NULL);
	cr_assert_str_eq(r->out, "404");
}

Test(monitor, watch_events_carry_time_and_mem_alloc)
{
	pid_t pid = start_churn();
	struct mon_result *r;
	struct json *e;
	char err[128];
	long long now = (long long)time(NULL) * 1000000000LL;
	int64_t t, before, after;
	int freed = 0;

	mon_wait_answering(pid);
	r = mon_gcctl("-p", mon_pid(pid), "--json", "watch", "--count", "5", NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	/* after the line that says it watches, a start and a stop per collection */
	for (const char *line = strchr(r->out, '\n') + 1; *line; line = strchr(line, '\n') + 1) {
		e = json_parse(line, strcspn(line, "\n"), err, sizeof(err));
		cr_assert(e, "%s: %s", err, line);
		cr_assert(json_int(json_get(e, "time_ns"), &t));
		cr_assert(t > now - 60000000000LL && t < now + 60000000000LL, "time_ns %lld",
			  (long long)t);
		if (!strcmp(json_get(e, "event")->str, "stop")) {
			cr_assert(json_int(json_get(e, "mem_alloc_before"), &before));
			cr_assert(json_int(json_get(e, "mem_alloc_after"), &after));
			cr_assert(before > 0 && after >= 0 && after <= before, "%s", line);
			freed += after < before;
		}
		json_free(e);
	}
	cr_assert_geq(freed, 1, "no collection of dropped blocks lowered mem_alloc:\n%s", r->out);

	r = mon_gcctl("-p", mon_pid(pid), "watch", "--count", "1", NULL);
	cr_assert(strstr(r->out, "stop   generation ") && strstr(r->out, "mem_alloc ") &&
		  strstr(r->out, " -> "), "%s", r->out);
	{
		int h, m, sec, ms;

		cr_assert_eq(sscanf(strchr(r->out, '\n') + 1, "%d:%d:%d.%d  ", &h, &m, &sec, &ms), 4,
			     "no clock time at the start of the event lines:\n%s", r->out);
	}
}

/* Counts the lines of a recording of each type. */
static void count_record(const char *path, int *samples, int *collections)
{
	FILE *f = fopen(path, "r");
	char line[4096], err[128];

	cr_assert(f);
	*samples = *collections = 0;
	while (fgets(line, sizeof(line), f)) {
		struct json *o = json_parse(line, strlen(line), err, sizeof(err));
		const struct json *type = json_get(o, "type");

		cr_assert(o && type, "not a JSON object: %s", line);
		*samples += !strcmp(type->str, "sample");
		*collections += !strcmp(type->str, "collection");
		json_free(o);
	}
	fclose(f);
}

/* Five samples and five collections in the record at path, read in the
 * killer's process: no assertion there. */
static bool recorded_enough(void *path)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int samples = 0, collections = 0;

	while (f && fgets(line, sizeof(line), f)) {
		samples += !!strstr(line, "\"type\":\"sample\"");
		collections += !!strstr(line, "\"type\":\"collection\"");
	}
	if (f)
		fclose(f);
	return samples >= 5 && collections >= 5;
}

static const char svg_check[] =
	"import sys, xml.etree.ElementTree as ET\n"
	"ns = {'s': 'http://www.w3.org/2000/svg'}\n"
	"root = ET.parse(sys.argv[1]).getroot()\n"
	"assert root.tag == '{http://www.w3.org/2000/svg}svg', root.tag\n"
	"paths = {p.get('class'): p.get('d') for p in root.iter('{http://www.w3.org/2000/svg}path')}\n"
	"assert paths.get('mem_alloc', '').startswith('M'), paths\n"
	"assert paths.get('rss', '').startswith('M'), paths\n"
	"marks = root.findall(\".//s:g[@id='collections']/s:circle\", ns)\n"
	"bars = root.findall(\".//s:g[@id='pauses']/s:rect\", ns)\n"
	"ticks = [t.text for t in root.iter('{http://www.w3.org/2000/svg}text') if 'y' in (t.get('class') or '').split()]\n"
	"assert any(t.endswith(('K', 'M')) for t in ticks), ticks\n"
	"assert all(m.find('s:title', ns).text.startswith('generation') for m in marks)\n"
	"print(len(marks), len(bars))\n";

Test(monitor, record_then_plot_draws_every_collection)
{
	pid_t pid = start_churn();
	char rec[PATH_MAX], svg[PATH_MAX];
	struct mon_result *r;
	int samples, collections, marks = -1, bars = -1;

	mon_wait_collections(pid, 1);
	snprintf(rec, sizeof(rec), "%s/heap.jsonl", mon_dir());
	snprintf(svg, sizeof(svg), "%s/heap.svg", mon_dir());
	/* until the process ends: it is killed while recorded, once the
	 * record holds enough of both */
	mon_kill_when(pid, recorded_enough, rec, 60000);
	r = mon_gcctl("-p", mon_pid(pid), "record", "--interval", "50ms", "-o", rec, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	count_record(rec, &samples, &collections);
	cr_assert_geq(samples, 5, "%d samples recorded", samples);
	cr_assert_geq(collections, 5, "%d collections recorded", collections);

	r = mon_gcctl("plot", rec, "-o", svg, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	r = mon_run((char *[]){ "python3", "-c", (char *)svg_check, svg, NULL }, NULL, NULL);
	cr_assert_eq(r->status, 0, "the SVG does not parse as expected: %s", r->err);
	cr_assert_eq(sscanf(r->out, "%d %d", &marks, &bars), 2);
	cr_assert_eq(marks, collections, "%d markers for %d collections", marks, collections);
	cr_assert_eq(bars, collections);

	r = mon_gcctl("plot", "/nonexistent.jsonl", "-o", svg, NULL);
	cr_assert_eq(r->status, 2);
	r = mon_gcctl("plot", svg, "-o", rec, NULL);
	cr_assert_eq(r->status, 2, "an SVG taken for a recording");
	cr_assert(strstr(r->err, "not a line of a gcctl recording"), "%s", r->err);
}

Test(monitor, plot_renders_in_a_browser)
{
	static const char *const browsers[] = { "/usr/bin/chromium", "/usr/bin/chromium-browser" };
	const char *browser = NULL;
	char rec[PATH_MAX], svg[PATH_MAX], png[PATH_MAX], shot[PATH_MAX + 16];
	struct mon_result *r;
	struct stat st;
	int samples, collections;
	pid_t pid;

	for (size_t i = 0; i < sizeof(browsers) / sizeof(*browsers); i++)
		if (access(browsers[i], X_OK) == 0)
			browser = browsers[i];
	if (!browser)
		cr_skip_test("no headless browser installed (Debian package chromium)");
	pid = start_workload();
	mon_wait_collections(pid, 1);
	snprintf(rec, sizeof(rec), "%s/heap.jsonl", mon_dir());
	snprintf(svg, sizeof(svg), "%s/heap.svg", mon_dir());
	snprintf(png, sizeof(png), "%s/heap.png", mon_dir());
	mon_kill_after(pid, 1500);
	cr_assert_eq(mon_gcctl("-p", mon_pid(pid), "record", "-o", rec, NULL)->status, 0);
	cr_assert_eq(mon_gcctl("plot", rec, "-o", svg, NULL)->status, 0);
	snprintf(shot, sizeof(shot), "--screenshot=%s", png);
	r = mon_run((char *[]){ (char *)browser, "--headless", "--no-sandbox", "--disable-gpu",
				shot, "--window-size=960,610", svg, NULL }, NULL, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(stat(png, &st) == 0 && st.st_size > 5000, "no picture rendered: %s", r->err);
	/* the document the browser built: an SVG, no parser error, every marker */
	r = mon_run((char *[]){ (char *)browser, "--headless", "--no-sandbox", "--disable-gpu",
				"--dump-dom", svg, NULL }, NULL, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(strstr(r->out, "<svg") && !strstr(r->out, "parsererror"), "%s", r->out);
	cr_assert(strstr(r->out, "class=\"mem_alloc\"") && strstr(r->out, "class=\"rss\""));
	count_record(rec, &samples, &collections);
	cr_assert_eq(mon_count(r->out, "<circle class=\"collection gen"), collections, "%s", r->out);
}

Test(monitor, top_plain_lists_every_process)
{
	pid_t a = start_workload(), b = start_workload();
	struct mon_result *r;
	char pa[16], pb[16];

	mon_wait_collections(a, 2);
	mon_wait_answering(b);
	r = mon_gcctl("top", "--plain", "--count", "2", "--interval", "300ms", "--sort", "pid", NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	snprintf(pa, sizeof(pa), "\n%d ", (int)a);
	snprintf(pb, sizeof(pb), "%d ", (int)b);
	cr_assert(strstr(r->out, "MEM_ALLOC") && strstr(r->out, "MAX_PAUSE"), "%s", r->out);
	cr_assert(strstr(r->out, pb) && strstr(r->out, "python3"), "%s", r->out);
	cr_assert_eq(mon_count(r->out, "gcctl top "), 2, "%s", r->out);
	r = mon_gcctl("top", "--sort", "size", NULL);
	cr_assert_eq(r->status, 2);
}

/* ---- static probes ------------------------------------------------------------ */

Test(monitor, probes_are_in_the_elf_notes)
{
	static const char *const probes[] = {
		"gc__start", "gc__done", "gc__abandoned", "stop__failed", "limit__refused",
		"false__garbage",
	};
	struct mon_result *r = mon_run((char *[]){ "readelf", "-n", (char *)mon_lib(), NULL },
				       NULL, NULL);

	cr_assert_eq(r->status, 0, "%s", r->err);
	for (size_t i = 0; i < sizeof(probes) / sizeof(*probes); i++) {
		char name[64];
		const char *at;

		snprintf(name, sizeof(name), "Name: %s\n", probes[i]);
		at = strstr(r->out, name);
		cr_assert(at, "probe %s missing:\n%s", probes[i], r->out);
		cr_assert(strstr(at, "Provider: gcshim") || strstr(r->out, "Provider: gcshim"));
		cr_assert(strstr(at, "Arguments: ") && strchr(strstr(at, "Arguments: "), '@'),
			  "probe %s without arguments", probes[i]);
	}
}

/* perf attaches to gc__start and counts the collections of a real run. */
Test(monitor, perf_attaches_to_gc_start)
{
	char event[] = "sdt_gcshim:gc__start", preload[PATH_MAX + 16];
	struct mon_result *r;
	int hits = 0;

	r = mon_run((char *[]){ "perf", "buildid-cache", "--add", (char *)mon_lib(), NULL }, NULL, NULL);
	if (r->status != 0)
		cr_skip_test("perf cannot run here: %s", r->err);
	r = mon_run((char *[]){ "perf", "probe", "-q", "-x", (char *)mon_lib(), "-a", event, NULL },
		    NULL, NULL);
	if (r->status != 0 && !strstr(r->err, "already exists"))
		cr_skip_test("perf cannot place uprobes here: %s", r->err);
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", mon_lib());
	r = mon_run((char *[]){ "perf", "stat", "-x,", "-e", event, "env", preload,
				"GCSHIM_THRESHOLD=1M", "GCSHIM_SOCKET=0", "python3", "-c",
				"import ctypes\nlibc = ctypes.CDLL(None)\n"
				"for i in range(50): libc.malloc(100000)\n", NULL }, NULL, NULL);
	mon_run((char *[]){ "perf", "probe", "-q", "-d", event, NULL }, NULL, NULL);
	if (r->status != 0)
		cr_skip_test("perf cannot count uprobes here: %s", r->err);
	cr_assert(sscanf(r->err, "%d,", &hits) == 1, "%s", r->err);
	cr_assert_geq(hits, 3, "5 MB allocated with a 1 MiB threshold: %d collections seen", hits);
}
