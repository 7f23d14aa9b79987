/* Collection events: the `watch` stream of the control socket and the
 * callbacks of gcshim_callback_add().  The collector (any thread, maybe
 * inside malloc) writes each event into one ring per watching client
 * without ever blocking: a full ring drops the event and counts it.  The
 * control thread, woken through an eventfd, turns events into lines. */
#ifndef GCSHIM_WATCH_H
#define GCSHIM_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "gcshim.h"

#define WATCH_RINGS 8        /* one per control client slot */
#define WATCH_ENTRIES 64

struct collection;

bool watch_init(void);
void watch_fork_child(void);

/* The collector's side, in the collecting thread, never while stopped. */
void watch_collection_start(int generation);
void watch_collection_stop(const struct collection *c, bool ok);
bool watch_in_callback(void);

/* The control thread's side. */
int watch_fd(void);
void watch_clear_fd(void);
void watch_open(int ring);
void watch_close(int ring);
bool watch_pending(int ring);
size_t watch_drain(int ring, char *buf, size_t cap);

int watch_callback_add(gcshim_callback_fn fn, void *arg);
int watch_callback_remove(gcshim_callback_fn fn, void *arg);
void watch_lock(void);
void watch_unlock(void);

#endif
