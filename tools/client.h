/* Talking to processes under libgcshim.so: finding their control sockets,
 * connecting, the hello handshake, one request line in, one reply line out. */
#ifndef GCCTL_CLIENT_H
#define GCCTL_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>
#include "proto_desc.h"

#define CLIENT_TIMEOUT_MS 5000

/* How long to wait for a connection and for each reply (gcctl --timeout). */
extern int client_timeout_ms;

enum client_status {
	CLIENT_OK,
	CLIENT_NO_PROCESS, /* no process has that PID */
	CLIENT_NO_SOCKET,  /* the process serves no control socket */
	CLIENT_DENIED,     /* the process belongs to another user */
	CLIENT_FAILED,     /* the connection broke or made no sense */
	CLIENT_TIMED_OUT,  /* no answer in time */
};

struct client {
	int fd;
	pid_t pid;
	char *in;          /* bytes received and not yet returned */
	size_t inlen, incap;
	char *line;        /* the last reply line, without its newline */
	char error[512];   /* what went wrong, for "gcctl: ..." */
};

/* Connects to process pid and says hello.  On failure c->error explains. */
enum client_status client_open(struct client *c, pid_t pid);

/* Sends one request line; *reply receives the parsed reply (to be freed
 * with json_free) and c->line the raw text.  CLIENT_OK also when the
 * process answered with an error: look at "ok". */
enum client_status client_request(struct client *c, const char *request, json_t **reply);

/* The next line of a reply that goes on (get-objects, watch); timeout_ms
 * -1 waits for ever. */
enum client_status client_next(struct client *c, int timeout_ms, json_t **reply);

void client_close(struct client *c);

/* The PIDs of the user's processes with a listening socket, sorted, in an
 * array to free.  Sockets of processes that are gone are removed on the way. */
int client_find_all(pid_t **pids, size_t *n);

#endif
