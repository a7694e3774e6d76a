/* ui_vnc.c - the VNC front end: libvncserver serves the display's surface, with slate's own
 * accept loop (limits on viewers, password lockout) on the --vnc port and on --display web's,
 * where ui_web.c serves noVNC's page and hands its WebSocket to libvncserver. Its state lives in one struct vnc_front per
 * display; keys and pointer moves go to the machine's input sinks through device.h. */
#include "display.h"
#include "listen.h"
#include "web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <rfb/rfb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct vnc_front {
    struct display *d;
    rfbScreenInfoPtr screen;
    bool running;          /* its listener started: only then may it be shut down */
    int listen_fd, web_fd, stop_fd; /* -1 when not listening there */
    struct web_site web;
    pthread_t thread;      /* vnc_listener */
    _Atomic int starting;  /* clients being set up by vnc_start_client threads */
    _Atomic int web_starting; /* connections on the web port not yet known to be a WebSocket */
    char *passwords[2];    /* libvncserver's list: the password, then NULL */
    pthread_mutex_t auth_lock; /* guards the client serial and the lockout */
    uint64_t client_serial;    /* order of arrival, in each client's clientData */
    unsigned auth_failures;
    int64_t locked_until_ns;
    struct ratelimit limit;
};

/* Points VNC at a framebuffer. Never with the display's lock held: it may wait for viewers. */
static void vnc_show(struct vnc_front *v, char *fb, uint32_t width, uint32_t height)
{
    rfbNewFramebuffer(v->screen, fb, (int)width, (int)height, 8, 3, 4);
    v->screen->serverFormat.redShift = 16; /* 0x00RRGGBB, as the guest writes it */
    v->screen->serverFormat.greenShift = 8;
    v->screen->serverFormat.blueShift = 0;
    rfbMarkRectAsModified(v->screen, 0, 0, (int)width, (int)height);
}

static void vnc_front_tell(struct display *d)
{
    struct vnc_front *v = d->vnc;
    pthread_mutex_lock(&d->lock);
    struct display_mark marks[sizeof(d->marks) / sizeof(d->marks[0])];
    unsigned count = d->mark_count;
    bool all = d->mark_all, fb_switch = d->fb_switch;
    char *fb = (char *)display_pixels(d);
    uint32_t width = d->width, height = d->height;
    memcpy(marks, d->marks, count * sizeof(marks[0]));
    d->mark_count = 0, d->mark_all = d->fb_switch = false;
    pthread_mutex_unlock(&d->lock);
    if (fb_switch)
        vnc_show(v, fb, width, height);
    else if (all)
        rfbMarkRectAsModified(v->screen, 0, 0, (int)width, (int)height);
    else
        for (unsigned i = 0; i < count; i++)
            rfbMarkRectAsModified(v->screen, marks[i].x0, marks[i].y0, marks[i].x1, marks[i].y1);
}

static void vnc_key(rfbBool down, rfbKeySym keysym, rfbClientPtr client)
{
    struct vnc_front *v = client->screen->screenData;
    device_input_key(v->d->dev, (uint32_t)keysym, down);
}

static void vnc_pointer(int mask, int x, int y, rfbClientPtr client)
{
    struct vnc_front *v = client->screen->screenData;
    device_input_pointer(v->d->dev, x, y, (uint32_t)mask);
}

/* libvncserver 0.9.14 (Debian 12's) never frees a WebSocket client's context (45 KB) when the
 * client goes (LibVNC/libvncserver#571, fixed upstream by #575): each browser that came and went
 * would leak it. Freed here; a fixed library finds NULL and skips its own free. */
static void vnc_client_gone(rfbClientPtr cl)
{
    free(cl->wsctx);
    cl->wsctx = NULL;
}

static enum rfbNewClientAction vnc_new_client(rfbClientPtr cl)
{
    cl->clientGoneHook = vnc_client_gone;
    return RFB_CLIENT_ACCEPT;
}

static void vnc_quiet(const char *format, ...)
{
    (void)format; /* libvncserver's chatter would drown the guest's console */
}


/* ---- who may connect ---------------------------------------------------------------------------
 * libvncserver gives every client a thread and a pipe, and polls with FD_SET, which aborts past
 * 1024 descriptors: a few hundred idle connections would end slate. So at most VNC_MAX_CLIENTS
 * are kept. When full, a newcomer takes the place of the oldest client that has not finished its
 * handshake (an idle connection must not lock real viewers out); when all have, it is refused
 * before the library allocates anything more for it. */
#define VNC_MAX_CLIENTS 16
#define VNC_AUTH_FAILURES 5     /* wrong passwords in a row ...          */
#define VNC_AUTH_LOCKOUT_S 60   /* ... then every attempt fails for this long */

#define VNC_EVICTED ((void *)UINTPTR_MAX) /* clientData of a client closed to make room */

/* Makes room for one more client: true when there is room, evicting the oldest client still in
 * its handshake if need be. */
static bool vnc_make_room(struct vnc_front *v)
{
    rfbScreenInfoPtr screen = v->screen;
    unsigned count = 0;
    rfbClientPtr oldest_waiting = NULL;
    rfbClientIteratorPtr it = rfbGetClientIterator(screen);
    for (rfbClientPtr cl; (cl = rfbClientIteratorNext(it));) {
        if (cl->sock == RFB_INVALID_SOCKET || cl->clientData == VNC_EVICTED)
            continue; /* leaving: its thread has yet to notice */
        count++;
        if (cl->state != RFB_NORMAL && cl->clientData && /* NULL: being set up right now */
            (!oldest_waiting || (uintptr_t)cl->clientData < (uintptr_t)oldest_waiting->clientData))
            oldest_waiting = cl;
    }
    rfbReleaseClientIterator(it);
    if (count < VNC_MAX_CLIENTS)
        return true;
    if (oldest_waiting) {
        oldest_waiting->clientData = VNC_EVICTED;
        rfbCloseClient(oldest_waiting); /* its thread sees the closed socket and leaves */
        return true;
    }
    log_warn_limited(&v->limit, "VNC: %u viewers are connected (the most slate keeps); refused "
                     "another", count);
    return false;
}

/* libvncserver's rfbNewClient waits up to 100 ms for a WebSocket greeting that an ordinary viewer
 * never sends: done on the accept thread, 500 idle connections would keep a real viewer waiting
 * for 50 s. So each new client is set up on a short-lived thread of its own, at most
 * VNC_STARTERS at once; beyond that the accept loop waits and the kernel's backlog queues. */
#define VNC_STARTERS 8

struct vnc_start {
    struct vnc_front *v;
    int fd;
    bool web; /* from the web port: a page, a file, or the page's WebSocket */
};

static void *vnc_start_client(void *arg)
{
    struct vnc_start start = *(struct vnc_start *)arg;
    free(arg);
    struct vnc_front *v = start.v;
    if (start.web && !web_take(&v->web, start.fd)) { /* a file, served (and closed) there */
        atomic_fetch_sub(&v->web_starting, 1);
        return NULL;
    }
    if (start.web) { /* the page's WebSocket: a VNC client from here on */
        atomic_fetch_add(&v->starting, 1);
        atomic_fetch_sub(&v->web_starting, 1);
    }
    /* libvncserver's client thread waits on a pipe the library takes in rfbStartOnHoldClient:
     * it is taken now, below FD_SETSIZE, and handed over there (listen_hand_pipe). */
    if (!listen_hand_pipe(FD_SETSIZE - 16)) {
        log_warn_limited(&v->limit, "VNC: out of descriptors; refused a viewer");
        close(start.fd);
        atomic_fetch_sub(&v->starting, 1);
        return NULL;
    }
    pthread_mutex_lock(&v->auth_lock);
    bool room = vnc_make_room(v);
    pthread_mutex_unlock(&v->auth_lock);
    rfbClientPtr cl = room ? rfbNewClient(v->screen, start.fd) : NULL;
    if (!room)
        close(start.fd);
    if (cl) {
        pthread_mutex_lock(&v->auth_lock);
        cl->clientData = (void *)(uintptr_t)++v->client_serial;
        pthread_mutex_unlock(&v->auth_lock);
        if (!cl->onHold)
            rfbStartOnHoldClient(cl); /* takes the reserved pipe */
    }
    listen_hand_pipe_cancel();
    atomic_fetch_sub(&v->starting, 1);
    return NULL;
}

static void *vnc_shutdown_waiter(void *arg)
{
    rfbScreenInfoPtr screen = arg;
    char byte;
    while (read(screen->pipe_notify_listener_thread[0], &byte, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

/* slate's own accept loop instead of libvncserver's, so a connection beyond the limits is closed
 * before the library allocates a client, a pipe and two threads for it. */
static void *vnc_listener(void *arg)
{
    struct vnc_front *v = arg;
    struct pollfd fds[3] = {{.fd = v->stop_fd, .events = POLLIN},
                            {.fd = v->listen_fd, .events = POLLIN}, /* (-1: not polled) */
                            {.fd = v->web_fd, .events = POLLIN}};
    pthread_attr_t detached;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    while (!(fds[0].revents & POLLIN)) {
        if (poll(fds, 3, -1) < 0 && errno != EINTR)
            break;
        bool web = fds[2].revents & POLLIN;
        if (!(fds[1].revents & POLLIN) && !web)
            continue;
        int fd = listen_accept(web ? v->web_fd : v->listen_fd, &v->limit, web ? "--display web" : "VNC");
        if (fd < 0)
            continue;
        /* libvncserver waits with select(): a descriptor past FD_SETSIZE would overflow it. */
        struct vnc_start *start = NULL;
        if (fd >= FD_SETSIZE - 16 || !(start = malloc(sizeof(*start)))) {
            log_warn_limited(&v->limit, "VNC: out of descriptors or memory; refused a viewer");
            close(fd);
            continue;
        }
        /* All starters busy: wait, and let the kernel's backlog hold (then refuse) the rest. The
         * web port's requests have their own limit (web_admit). */
        while (!web && atomic_load(&v->starting) >= VNC_STARTERS && !atomic_load(&v->d->stop))
            nanosleep(&(struct timespec){0, 5000000}, NULL);
        if (web && !web_admit(&v->web, fd)) {
            free(start);
            continue;
        }
        *start = (struct vnc_start){v, fd, web};
        if (web)
            listen_client_timeout(fd); /* a browser that stops reading a file is dropped */
        pthread_t thread;
        _Atomic int *count = web ? &v->web_starting : &v->starting;
        atomic_fetch_add(count, 1);
        if (pthread_create(&thread, &detached, vnc_start_client, start)) {
            atomic_fetch_sub(count, 1);
            free(start);
            if (web)
                web_client_update(&v->web, fd, true);
            close(fd);
        }
    }
    pthread_attr_destroy(&detached);
    /* No client may be half set up when the server shuts down, nor a request half answered
     * (they use the front end's state). */
    if (v->web_fd >= 0)
        web_drop_all(&v->web);
    while (atomic_load(&v->web_starting)) /* (each ends at once now: its socket is shut) */
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    for (int i = 0; i < 500 && atomic_load(&v->starting); i++)
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    return NULL;
}

/* VNC authentication is DES with the password cut to 8 characters: weak, so guessing is limited
 * to VNC_AUTH_FAILURES wrong answers, then a lockout during which every answer is wrong. */
static rfbBool vnc_check_password(rfbClientPtr cl, const char *response, int len)
{
    struct vnc_front *v = cl->screen->screenData;
    pthread_mutex_lock(&v->auth_lock);
    int64_t now = clock_now_ns();
    bool locked = now < v->locked_until_ns;
    pthread_mutex_unlock(&v->auth_lock);
    rfbBool ok = !locked && rfbCheckPasswordByList(cl, response, len);
    pthread_mutex_lock(&v->auth_lock);
    if (ok) {
        v->auth_failures = 0;
    } else if (!locked && ++v->auth_failures >= VNC_AUTH_FAILURES) {
        v->locked_until_ns = now + (int64_t)VNC_AUTH_LOCKOUT_S * 1000000000;
        v->auth_failures = 0;
        log_warn("VNC: %d wrong passwords; every attempt fails for the next %d s",
                 VNC_AUTH_FAILURES, VNC_AUTH_LOCKOUT_S);
    }
    pthread_mutex_unlock(&v->auth_lock);
    return ok;
}

/* --vnc-password FILE: the first line is the password. */
static int vnc_load_password(struct vnc_front *v, const char *path)
{
    FILE *f = fopen(path, "re");
    char line[128] = "";
    if (!f || !fgets(line, sizeof(line), f)) {
        log_error("--vnc-password %s: %s", path, f ? "empty file" : strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    if (!(v->passwords[0] = strdup(line))) {
        log_error("out of memory");
        return -1;
    }
    v->screen->authPasswdData = v->passwords;
    v->screen->passwordCheck = vnc_check_password;
    return 0;
}

/* One of slate's own listening sockets (vnc_listener accepts on them). The fd, or -1 logged. */
static int listen_tcp(const char *host, int port, const char *option)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || inet_pton(AF_INET, host, &addr.sin_addr) != 1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 32) < 0) {
        log_error("%s %s:%d: cannot listen: %s", option, host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* --display web: noVNC's files, and the port that serves them and the page's WebSocket. */
static int web_listen(struct vnc_front *v, const struct slate_config *cfg)
{
    struct in_addr host;
    inet_pton(AF_INET, cfg->web_host, &host); /* (checked at start-up) */
    v->web = (struct web_site){.dir_fd = -1, .port = cfg->web_port, .limit = &v->limit,
                               .loopback_only = (ntohl(host.s_addr) >> 24) == 127};
    if (web_site_open(&v->web) || (v->web_fd = listen_tcp(cfg->web_host, cfg->web_port, "--display web")) < 0)
        return -1;
    log_info("the screen is in a browser at http://%s:%d/", cfg->web_host, cfg->web_port);
    return 0;
}

/* The server: libvncserver's screen, with slate's listener. */
static int vnc_serve(struct vnc_front *v, const struct slate_config *cfg)
{
    struct display *d = v->d;
    v->screen->desktopName = "slate";
    v->screen->frameBuffer = (char *)d->text_fb;
    v->screen->alwaysShared = TRUE;
    v->screen->cursor = NULL; /* no arrow painted over the guest's pixels: the guest draws its own */
    v->screen->autoPort = FALSE;
    v->screen->port = cfg->vnc_port;
    v->screen->ipv6port = 0;
    v->screen->listen6Interface = NULL;
    v->screen->screenData = v;
    v->screen->kbdAddEvent = vnc_key;
    v->screen->maxClientWait = 5000; /* a client silent mid-message for 5 s is dropped */
    v->screen->ptrAddEvent = vnc_pointer;
    v->screen->newClientHook = vnc_new_client;
    if (cfg->vnc_password_file && vnc_load_password(v, cfg->vnc_password_file))
        return -1;
    vnc_show(v, (char *)d->text_fb, d->width, d->height); /* no viewer yet: safe here */
    v->screen->socketState = RFB_SOCKET_READY; /* slate listens itself: vnc_listener */
    rfbInitServer(v->screen);
    if (cfg->vnc_host[0] && (v->listen_fd = listen_tcp(cfg->vnc_host, cfg->vnc_port, "--vnc")) < 0)
        return -1;
    if (cfg->web_host[0] && web_listen(v, cfg))
        return -1;
    v->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    v->screen->backgroundLoop = TRUE; /* each client gets its own threads, as with rfbRunEventLoop */
    /* rfbShutdownServer wakes and joins the library's own listener thread: give it one that only
     * waits for that (slate's listener is vnc_listener). */
    if (pipe2(v->screen->pipe_notify_listener_thread, O_CLOEXEC) < 0 ||
        pthread_create(&v->screen->listener_thread, NULL, vnc_shutdown_waiter, v->screen) != 0) {
        log_error("VNC: cannot start: %s", strerror(errno));
        v->screen->backgroundLoop = FALSE;
        return -1;
    }
    int rc = v->stop_fd < 0 ? errno : pthread_create(&v->thread, NULL, vnc_listener, v);
    if (rc) {
        log_error("VNC: cannot start the listener: %s", strerror(rc));
        return -1;
    }
    v->running = true;
    return 0;
}

static int vnc_front_start(struct display *d)
{
    struct vnc_front *v = calloc(1, sizeof(*v));
    if (!v) {
        log_error("out of memory");
        return -1;
    }
    *v = (struct vnc_front){.d = d, .listen_fd = -1, .web_fd = -1, .stop_fd = -1, .web.dir_fd = -1,
                            .limit = RATELIMIT_INIT};
    pthread_mutex_init(&v->auth_lock, NULL);
    d->vnc = v;
    rfbLog = vnc_quiet;
    rfbErr = vnc_quiet;
    int argc = 0;
    v->screen = rfbGetScreen(&argc, NULL, (int)d->width, (int)d->height, 8, 3, 4);
    if (!v->screen) {
        log_error("VNC: cannot create the server");
        return -1;
    }
    return vnc_serve(v, device_config(d->dev));
}

/* libvncserver frees a client twice (or reads a freed one) if the server shuts down while that
 * client's own thread is tearing it down (LibVNC/libvncserver#456, #211; seen here as a crash in
 * rfbShutdownServer when a viewer left as the guest exited). So every client is told to leave
 * first (its socket shut: its thread notices, unlinks and frees it) and the shutdown waits, up to
 * two seconds, until none is left; rfbShutdownServer then has nobody to race with. */
static void vnc_disconnect_all(rfbScreenInfoPtr screen)
{
    for (int tries = 0; tries < 200; tries++) {
        unsigned left = 0;
        rfbClientIteratorPtr it = rfbGetClientIterator(screen);
        for (rfbClientPtr cl; (cl = rfbClientIteratorNext(it));) {
            left++;
            if (cl->sock != RFB_INVALID_SOCKET && tries == 0)
                rfbCloseClient(cl);
        }
        rfbReleaseClientIterator(it);
        if (!left)
            return;
        struct timespec pause = {0, 10000000};
        nanosleep(&pause, NULL);
    }
}

static void vnc_front_stop(struct display *d)
{
    struct vnc_front *v = d->vnc;
    if (!v)
        return;
    if (v->screen) {
        if (v->running) {
            eventfd_write(v->stop_fd, 1);
            pthread_join(v->thread, NULL); /* no new client from here on */
            vnc_disconnect_all(v->screen);
            rfbShutdownServer(v->screen, TRUE);
        }
        rfbScreenCleanup(v->screen);
    }
    if (v->listen_fd >= 0)
        close(v->listen_fd);
    if (v->web_fd >= 0)
        close(v->web_fd);
    web_site_close(&v->web);
    if (v->stop_fd >= 0)
        close(v->stop_fd);
    free(v->passwords[0]);
    pthread_mutex_destroy(&v->auth_lock);
    free(v);
    d->vnc = NULL;
}

const struct vnc_module slate_vnc_module = {
    .start = vnc_front_start,
    .tell = vnc_front_tell,
    .stop = vnc_front_stop,
};
