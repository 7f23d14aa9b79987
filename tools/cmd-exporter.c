/* exporter: the metrics of every process of the user under gcshim, served
 * over HTTP at /metrics for Prometheus to scrape, by libmicrohttpd.  Each
 * scrape lists the processes afresh: one that ended drops out, one that
 * does not answer within --timeout shows as gcshim_up 0. */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gcctl.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static const char index_page[] =
	"<html><head><title>gcshim exporter</title></head><body>"
	"<h1>gcshim exporter</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	stopping = 1;
}

/* "127.0.0.1:9464", "[::1]:9464", ":9464" (every address, IPv6 and IPv4). */
static bool parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	const char *colon = strrchr(s, ':');
	char host[64];
	long port;
	size_t hlen;

	if (!colon || !arg_long(colon + 1, 1, 65535, &port))
		return false;
	hlen = (size_t)(colon - s);
	if (hlen >= sizeof(host))
		return false;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		memmove(host, host + 1, hlen - 1);
	}
	if (!*host || strchr(host, ':')) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return !*host || inet_pton(AF_INET6, host, &in6->sin6_addr) == 1;
	}
	in4->sin_family = AF_INET;
	in4->sin_port = htons((uint16_t)port);
	*len = sizeof(*in4);
	return inet_pton(AF_INET, host, &in4->sin_addr) == 1;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned code, const char *type,
			       void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result serve_metrics(struct MHD_Connection *conn)
{
	pid_t *pids;
	size_t n, len;
	char *text;

	if (client_find_all(&pids, &n) < 0)
		return respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
			       "out of memory\n", 14, MHD_RESPMEM_PERSISTENT);
	text = metrics_text(pids, n, &len);
	free(pids);
	if (!text)
		return respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
			       "out of memory\n", 14, MHD_RESPMEM_PERSISTENT);
	return respond(conn, MHD_HTTP_OK, CONTENT_TYPE, text, len, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **state)
{
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
			       "only GET\n", 9, MHD_RESPMEM_PERSISTENT);
	if (!strcmp(url, "/metrics"))
		return serve_metrics(conn);
	if (!strcmp(url, "/"))
		return respond(conn, MHD_HTTP_OK, "text/html", (void *)index_page,
			       sizeof(index_page) - 1, MHD_RESPMEM_PERSISTENT);
	return respond(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found: try /metrics\n", 24,
		       MHD_RESPMEM_PERSISTENT);
}

static struct MHD_Daemon *start(const struct sockaddr_storage *ss)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (ss->ss_family == AF_INET6)
		flags |= MHD_USE_IPv6 | MHD_USE_DUAL_STACK;
	return MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL,
				MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)ss,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				MHD_OPTION_END);
}

int cmd_exporter(struct ctx *cx, int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct sockaddr_storage ss;
	struct MHD_Daemon *d;
	socklen_t len;

	if (strcmp(argv[1], "--listen") || !parse_listen(argv[2], &ss, &len))
		return fail_with(cx, EXIT_USAGE, "usage: gcctl exporter --listen ADDR:PORT "
				 "(like 127.0.0.1:9464, [::1]:9464 or :9464)");
	d = start(&ss);
	if (!d)
		return fail_with(cx, EXIT_UNREACHABLE, "cannot listen on %s: %s", argv[2],
				 strerror(errno ? errno : EADDRINUSE));
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fprintf(stderr, "gcctl: serving metrics at http://%s/metrics\n", argv[2]);
	while (!stopping)
		pause();
	MHD_stop_daemon(d);
	return EXIT_OK;
}
