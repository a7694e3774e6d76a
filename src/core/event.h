/* event.h - the one epoll thread that serves every backend fd, with a stop eventfd. */
#ifndef SLATE_EVENT_H
#define SLATE_EVENT_H

#include <stdint.h>

struct event_source {
    int fd;
    void (*fn)(void *opaque, uint32_t events); /* runs on the event thread */
    void *opaque;
};

struct event_loop {
    int epoll_fd;
    int stop_fd; /* an eventfd: written once to end event_loop_run */
};

int event_loop_init(struct event_loop *loop); /* 0 or -errno */
void event_loop_close(struct event_loop *loop);
/* The source must stay valid until removed or the loop is closed. 0 or -errno. */
int event_add(struct event_loop *loop, struct event_source *src, uint32_t events);
int event_modify(struct event_loop *loop, struct event_source *src, uint32_t events);
void event_remove(struct event_loop *loop, struct event_source *src);
/* Serves events until event_loop_stop is called (from any thread). 0 or -errno. */
int event_loop_run(struct event_loop *loop);
void event_loop_stop(struct event_loop *loop); /* async-signal-safe */
/* One round: waits up to timeout_ms (-1: for ever) and serves what is ready. Returns how many
 * sources it served, 0 on a timeout or a stop, or -errno. (Tests drive a loop by hand with it.) */
int event_loop_run_once(struct event_loop *loop, int timeout_ms);

#endif
