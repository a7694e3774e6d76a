/* event.c - epoll loop: each source carries its own callback; a stop eventfd ends the loop. */
#include "event.h"

#include <errno.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

int event_loop_init(struct event_loop *loop)
{
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epoll_fd < 0)
        return -errno;
    loop->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->stop_fd < 0) {
        int err = -errno;
        close(loop->epoll_fd);
        return err;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->stop_fd, &ev) < 0) {
        int err = -errno;
        event_loop_close(loop);
        return err;
    }
    return 0;
}

void event_loop_close(struct event_loop *loop)
{
    if (loop->epoll_fd >= 0)
        close(loop->epoll_fd);
    if (loop->stop_fd >= 0)
        close(loop->stop_fd);
    loop->epoll_fd = loop->stop_fd = -1;
}

int event_add(struct event_loop *loop, struct event_source *src, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = src};
    return epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, src->fd, &ev) < 0 ? -errno : 0;
}

int event_modify(struct event_loop *loop, struct event_source *src, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = src};
    return epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, src->fd, &ev) < 0 ? -errno : 0;
}

void event_remove(struct event_loop *loop, struct event_source *src)
{
    epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, src->fd, NULL);
}

int event_loop_run(struct event_loop *loop)
{
    struct epoll_event events[16];
    for (;;) {
        int n = epoll_wait(loop->epoll_fd, events, 16, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (int i = 0; i < n; i++) {
            struct event_source *src = events[i].data.ptr;
            if (!src)
                return 0; /* the stop eventfd */
            src->fn(src->opaque, events[i].events);
        }
    }
}

int event_loop_run_once(struct event_loop *loop, int timeout_ms)
{
    struct epoll_event events[16];
    int n = epoll_wait(loop->epoll_fd, events, 16, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    int served = 0;
    for (int i = 0; i < n; i++) {
        struct event_source *src = events[i].data.ptr;
        if (src) {
            src->fn(src->opaque, events[i].events);
            served++;
        }
    }
    return served;
}

void event_loop_stop(struct event_loop *loop)
{
    uint64_t one = 1;
    ssize_t rc = write(loop->stop_fd, &one, sizeof(one));
    (void)rc; /* a full counter already means "stop" */
}
