/* dev_display.c - the display (type 2): a text mode slate renders with an 8x16 font, and a linear
 * 32-bit framebuffer, both in the device's window. A refresh thread asks KVM which pages of the
 * window the guest wrote (KVM_GET_DIRTY_LOG), compares just those rows with a copy of what it
 * last showed, and tells libvncserver the rectangle that really changed, so a small change costs a
 * small update. PNG screenshots go through libpng. */
#include "display_sdl.h"
#include "input.h"
#include "preflight.h"
#include "vm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <stdatomic.h>
#include <rfb/rfb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_W 1920
#define MAX_H 1080
#define WINDOW_BYTES ((uint64_t)MAX_W * MAX_H * 4)
#define TEXT_W (SLATE_DISPLAY_TEXT_COLUMNS * 8)
#define TEXT_H (SLATE_DISPLAY_TEXT_ROWS * 16)
#define REFRESH_NS 16000000 /* about 60 updates a second at most */
/* The window's KVM slot is rounded up to 1 MiB, and KVM writes its dirty bitmap in longs. */
#define SLOT_PAGES (((WINDOW_BYTES + 0xFFFFF) & ~0xFFFFFULL) / 4096)
#define BITMAP_BYTES (((SLOT_PAGES + 63) / 64) * 8)

extern const uint8_t font8x16[256][16];

static const uint32_t vga_palette[16] = {
    0x000000, 0x0000AA, 0x00AA00, 0x00AAAA, 0xAA0000, 0xAA00AA, 0xAA5500, 0xAAAAAA,
    0x555555, 0x5555FF, 0x55FF55, 0x55FFFF, 0xFF5555, 0xFF55FF, 0xFFFF55, 0xFFFFFF,
};

struct display {
    struct device *dev;
    pthread_mutex_t lock; /* guards the mode, the text shadow and the VNC framebuffer switch */
    uint32_t mode, width, height; /* what the screen shows now */
    uint32_t req_width, req_height;
    bool error;
    uint32_t cursor;
    uint32_t shown_cursor;
    uint8_t *text_fb;   /* TEXT_W x TEXT_H x 4, rendered text */
    uint16_t shadow[SLATE_DISPLAY_TEXT_COLUMNS * SLATE_DISPLAY_TEXT_ROWS];
    bool shadow_valid;
    rfbScreenInfoPtr vnc;
    pthread_t thread;
    bool thread_started;
    _Atomic bool stop;
    unsigned long *dirty; /* the dirty-log bitmap */
    uint32_t *shown;      /* graphics: the pixels as last announced, to find what changed */
    bool changed;         /* something was redrawn since the SDL window last showed it */
    bool vnc_running;     /* its listener started: only then may it be shut down */
    /* What VNC must be told, queued under `lock` and told by the refresh thread after it lets
     * go of it: libvncserver may block on a viewer that stopped reading, and neither a vCPU
     * (a MODE write) nor anyone waiting for `lock` may wait with it. */
    struct vnc_mark { int x0, y0, x1, y1; } marks[64];
    unsigned mark_count;
    bool mark_all;
    bool fb_switch;       /* the mode changed: rfbNewFramebuffer with the current size */
    int vnc_listen_fd, vnc_stop_fd;
    pthread_t vnc_thread;
    _Atomic int vnc_starting; /* clients being set up by vnc_start_client threads */
    struct sdl_window *sdl;
    int sdl_result;       /* 1 once the window is open, -1 if it cannot be: setup waits for it */
    pthread_cond_t sdl_opened;
};

static struct display *the_display; /* for the screenshot hypercall */

/* ---- rendering ------------------------------------------------------------------------------ */

static void render_cell(struct display *d, unsigned col, unsigned row, uint16_t cell, bool cursor)
{
    const uint8_t *glyph = font8x16[cell & 0xFF];
    uint32_t fg = vga_palette[(cell >> 8) & 15], bg = vga_palette[(cell >> 12) & 15];
    /* The cursor is an underline in the cell's colour, or light grey where that is invisible. */
    uint32_t cursor_colour = fg != bg ? fg : vga_palette[7];
    for (unsigned y = 0; y < 16; y++) {
        uint8_t bits = glyph[y];
        uint32_t *px = (uint32_t *)(d->text_fb + ((row * 16 + y) * TEXT_W + col * 8) * 4);
        for (unsigned x = 0; x < 8; x++)
            px[x] = cursor && y >= 14 ? cursor_colour : (bits & (0x80 >> x)) ? fg : bg;
    }
}

static uint32_t cursor_index(uint32_t cursor)
{
    uint32_t col = cursor & 0xFFFF, row = cursor >> 16;
    return col < SLATE_DISPLAY_TEXT_COLUMNS && row < SLATE_DISPLAY_TEXT_ROWS
               ? row * SLATE_DISPLAY_TEXT_COLUMNS + col
               : UINT32_MAX;
}

/* Lock held. A rectangle for VNC to send; too many become the whole screen. */
static void queue_mark(struct display *d, int x0, int y0, int x1, int y1)
{
    if (!d->vnc)
        return;
    if (d->mark_count == sizeof(d->marks) / sizeof(d->marks[0]))
        d->mark_all = true;
    else
        d->marks[d->mark_count++] = (struct vnc_mark){x0, y0, x1, y1};
}

/* Renders the cells that changed since the last look; marks them for VNC. Lock held. */
static void refresh_text(struct display *d)
{
    const uint16_t *cells = d->dev->window;
    uint32_t cur = cursor_index(d->cursor), old_cur = cursor_index(d->shown_cursor);
    for (uint32_t i = 0; i < SLATE_DISPLAY_TEXT_COLUMNS * SLATE_DISPLAY_TEXT_ROWS; i++) {
        uint16_t cell = __atomic_load_n(&cells[i], __ATOMIC_RELAXED);
        if (d->shadow_valid && cell == d->shadow[i] && i != cur && i != old_cur)
            continue;
        d->shadow[i] = cell;
        unsigned col = i % SLATE_DISPLAY_TEXT_COLUMNS, row = i / SLATE_DISPLAY_TEXT_COLUMNS;
        render_cell(d, col, row, cell, i == cur);
        d->changed = true;
        queue_mark(d, (int)col * 8, (int)row * 16, (int)col * 8 + 8, (int)row * 16 + 16);
    }
    d->shadow_valid = true;
    d->shown_cursor = d->cursor;
}

/* Compares rows [y0, y1) with what was last shown, updates the copy, and marks the rectangle
 * that bounds the pixels that changed. A page holds parts of one or two rows of a wide screen, so
 * the dirty log alone would send whole rows; the comparison narrows it to the changed columns. */
static void mark_changed(struct display *d, uint64_t y0, uint64_t y1)
{
    const uint32_t *fb = d->dev->window;
    uint32_t w = d->width, left = w, right = 0, top = UINT32_MAX, bottom = 0;
    for (uint64_t y = y0; y < y1; y++) {
        const uint32_t *now = fb + y * w;
        uint32_t *was = d->shown + y * w, x0 = 0, x1 = w;
        while (x0 < w && now[x0] == was[x0])
            x0++;
        if (x0 == w)
            continue;
        while (x1 > x0 && now[x1 - 1] == was[x1 - 1])
            x1--;
        memcpy(was + x0, now + x0, (x1 - x0) * 4);
        left = x0 < left ? x0 : left, right = x1 > right ? x1 : right;
        top = top == UINT32_MAX ? (uint32_t)y : top, bottom = (uint32_t)y + 1;
    }
    if (top == UINT32_MAX)
        return;
    d->changed = true;
    queue_mark(d, (int)left, (int)top, (int)right, (int)bottom);
}

/* The rows of the framebuffer on the pages marked in d->dirty. Lock held. */
static void refresh_dirty_rows(struct display *d)
{
    uint64_t pages = WINDOW_BYTES / 4096;
    uint64_t pitch = (uint64_t)d->width * 4, bits = 8 * sizeof(unsigned long);
    for (uint64_t p = 0; p < pages; p++) {
        if (!(d->dirty[p / bits] & (1UL << (p % bits))))
            continue;
        uint64_t first = p;
        while (p + 1 < pages && (d->dirty[(p + 1) / bits] & (1UL << ((p + 1) % bits))))
            p++;
        uint64_t y0 = first * 4096 / pitch, y1 = ((p + 1) * 4096 + pitch - 1) / pitch;
        if (y0 >= d->height)
            break;
        mark_changed(d, y0, y1 < d->height ? y1 : d->height);
    }
}

/* Asks KVM which pages of the window the guest wrote since the last look. Lock held. */
static void refresh_graphics(struct display *d)
{
    struct kvm_dirty_log log = {.slot = d->dev->window_slot, .dirty_bitmap = d->dirty};
    memset(d->dirty, 0, BITMAP_BYTES);
    if (ioctl(d->dev->vm->vm_fd, KVM_GET_DIRTY_LOG, &log) == 0)
        refresh_dirty_rows(d);
}

/* Points VNC at a framebuffer. Never with `lock` held: it may wait for viewers. */
static void vnc_show(struct display *d, char *fb, uint32_t width, uint32_t height)
{
    rfbNewFramebuffer(d->vnc, fb, (int)width, (int)height, 8, 3, 4);
    d->vnc->serverFormat.redShift = 16; /* 0x00RRGGBB, as the guest writes it */
    d->vnc->serverFormat.greenShift = 8;
    d->vnc->serverFormat.blueShift = 0;
    rfbMarkRectAsModified(d->vnc, 0, 0, (int)width, (int)height);
}

/* The current mode is what the screen shows now; VNC follows from the refresh thread. Lock
 * held. */
static void switch_framebuffer(struct display *d)
{
    d->shadow_valid = false;
    d->changed = true;
    if (d->mode == SLATE_DISPLAY_GRAPHICS)
        memcpy(d->shown, d->dev->window, (size_t)d->width * d->height * 4);
    d->fb_switch = d->vnc != NULL;
    d->mark_count = 0, d->mark_all = false; /* the switch sends everything */
}

/* Tells VNC what was queued under the lock, with the lock released. Refresh thread only. */
static void tell_vnc(struct display *d)
{
    pthread_mutex_lock(&d->lock);
    struct vnc_mark marks[sizeof(d->marks) / sizeof(d->marks[0])];
    unsigned count = d->mark_count;
    bool all = d->mark_all, fb_switch = d->fb_switch;
    char *fb = d->mode == SLATE_DISPLAY_GRAPHICS ? d->dev->window : (char *)d->text_fb;
    uint32_t width = d->width, height = d->height;
    memcpy(marks, d->marks, count * sizeof(marks[0]));
    d->mark_count = 0, d->mark_all = d->fb_switch = false;
    pthread_mutex_unlock(&d->lock);
    if (fb_switch)
        vnc_show(d, fb, width, height);
    else if (all)
        rfbMarkRectAsModified(d->vnc, 0, 0, (int)width, (int)height);
    else
        for (unsigned i = 0; i < count; i++)
            rfbMarkRectAsModified(d->vnc, marks[i].x0, marks[i].y0, marks[i].x1, marks[i].y1);
}

/* The SDL window belongs to this thread: SDL wants one thread to do all its work. */
static bool open_sdl(struct display *d)
{
    struct sdl_window *w = sdl_open(d->dev->vm, d->width, d->height);
    pthread_mutex_lock(&d->lock);
    d->sdl = w;
    d->sdl_result = w ? 1 : -1;
    pthread_cond_signal(&d->sdl_opened);
    pthread_mutex_unlock(&d->lock);
    return w != NULL;
}

static void show_in_sdl(struct display *d)
{
    if (!d->sdl)
        return;
    if (d->changed) {
        d->changed = false;
        const void *fb = d->mode == SLATE_DISPLAY_GRAPHICS ? d->dev->window : (void *)d->text_fb;
        sdl_show(d->sdl, fb, d->width, d->height);
    }
    if (!sdl_poll(d->sdl)) {
        log_info("the window was closed: stopping the machine");
        vm_request_stop(d->dev->vm, 130);
    }
}

static void *refresh_thread(void *arg)
{
    struct display *d = arg;
    if (d->dev->vm->cfg->sdl && !open_sdl(d))
        return NULL;
    while (!atomic_load(&d->stop)) {
        pthread_mutex_lock(&d->lock);
        if (d->mode == SLATE_DISPLAY_TEXT)
            refresh_text(d);
        else
            refresh_graphics(d);
        show_in_sdl(d);
        pthread_mutex_unlock(&d->lock);
        if (d->vnc)
            tell_vnc(d);
        struct timespec pause = {0, REFRESH_NS};
        nanosleep(&pause, NULL);
    }
    sdl_close(d->sdl);
    d->sdl = NULL;
    return NULL;
}

/* ---- screenshots ----------------------------------------------------------------------------- */

/* The screen as RGB rows, taken under the lock. NULL when out of memory. */
static uint8_t *screen_rgb(struct display *d, uint32_t *w, uint32_t *h)
{
    pthread_mutex_lock(&d->lock);
    if (d->mode == SLATE_DISPLAY_TEXT)
        refresh_text(d);
    const uint8_t *src = d->mode == SLATE_DISPLAY_GRAPHICS ? d->dev->window : d->text_fb;
    *w = d->width, *h = d->height;
    uint8_t *rgb = malloc((size_t)*w * *h * 3);
    if (rgb) {
        for (size_t i = 0; i < (size_t)*w * *h; i++) {
            uint32_t px;
            memcpy(&px, src + i * 4, 4);
            rgb[i * 3] = (uint8_t)(px >> 16), rgb[i * 3 + 1] = (uint8_t)(px >> 8), rgb[i * 3 + 2] = (uint8_t)px;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return rgb;
}

static int write_png(int fd, const uint8_t *rgb, uint32_t w, uint32_t h)
{
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = -1;
    if (info && !setjmp(png_jmpbuf(png))) {
        png_init_io(png, f);
        png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (uint32_t y = 0; y < h; y++)
            png_write_row(png, rgb + (size_t)y * w * 3);
        png_write_end(png, NULL);
        rc = 0;
    }
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int display_screenshot_at(int dirfd, const char *name, bool replace)
{
    struct display *d = the_display;
    if (!d || !name || !*name || strchr(name, '/'))
        return -EINVAL;
    uint32_t w, h;
    uint8_t *rgb = screen_rgb(d, &w, &h);
    if (!rgb)
        return -ENOMEM;
    /* A temporary file of slate's own beside the target (O_EXCL: never an existing file or a
     * planted link), renamed into place, so a reader never sees half a PNG. */
    static _Atomic unsigned serial;
    char tmp[300];
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        snprintf(tmp, sizeof(tmp), ".%.200s.%d.%u.part", name, (int)getpid(), atomic_fetch_add(&serial, 1));
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    int rc = fd < 0 ? -errno : write_png(fd, rgb, w, h) < 0 ? -EIO : 0;
    free(rgb);
    if (rc == 0 && (replace ? renameat(dirfd, tmp, dirfd, name)
                            : renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE)) < 0)
        rc = -errno;
    if (fd >= 0 && rc < 0)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

int display_screenshot(const char *path)
{
    char *copy = strdup(path ? path : "");
    if (!copy)
        return -ENOMEM;
    const char *slash = strrchr(copy, '/');
    const char *name = slash ? slash + 1 : copy;
    if (slash)
        copy[slash - copy] = 0;
    int dirfd = open(slash ? (copy[0] ? copy : "/") : ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    int rc = dirfd < 0 ? -errno : display_screenshot_at(dirfd, name, true);
    if (dirfd >= 0)
        close(dirfd);
    if (rc < 0)
        log_warn("--screenshot %s: %s", path, strerror(-rc));
    free(copy);
    return rc;
}

/* ---- VNC --------------------------------------------------------------------------------------- */

static void vnc_key(rfbBool down, rfbKeySym keysym, rfbClientPtr client)
{
    input_key(client->screen->screenData, (uint32_t)keysym, down);
}

static void vnc_pointer(int mask, int x, int y, rfbClientPtr client)
{
    input_pointer(client->screen->screenData, x, y, (uint32_t)mask);
}

static void vnc_quiet(const char *format, ...)
{
    (void)format; /* libvncserver's chatter would drown the guest's console */
}

static char *vnc_passwords[2];

/* ---- who may connect ---------------------------------------------------------------------------
 * libvncserver gives every client a thread and a pipe, and polls with FD_SET, which aborts past
 * 1024 descriptors: a few hundred idle connections would end slate. So at most VNC_MAX_CLIENTS
 * are kept. When full, a newcomer takes the place of the oldest client that has not finished its
 * handshake (an idle connection must not lock real viewers out); when all have, it is refused
 * before the library allocates anything more for it. */
#define VNC_MAX_CLIENTS 16
#define VNC_AUTH_FAILURES 5     /* wrong passwords in a row ...          */
#define VNC_AUTH_LOCKOUT_S 60   /* ... then every attempt fails for this long */

static pthread_mutex_t vnc_auth_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t vnc_client_serial; /* order of arrival, in each client's clientData */
#define VNC_EVICTED ((void *)UINTPTR_MAX) /* clientData of a client closed to make room */
static unsigned vnc_auth_failures;
static int64_t vnc_locked_until_ns;
static struct ratelimit vnc_limit = RATELIMIT_INIT;

/* Makes room for one more client: true when there is room, evicting the oldest client still in
 * its handshake if need be. */
static bool vnc_make_room(rfbScreenInfoPtr screen)
{
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
    log_warn_limited(&vnc_limit, "VNC: %u viewers are connected (the most slate keeps); refused "
                     "another", count);
    return false;
}

/* libvncserver's rfbNewClient waits up to 100 ms for a WebSocket greeting that an ordinary viewer
 * never sends: done on the accept thread, 500 idle connections would keep a real viewer waiting
 * for 50 s. So each new client is set up on a short-lived thread of its own, at most
 * VNC_STARTERS at once; beyond that the accept loop waits and the kernel's backlog queues. */
#define VNC_STARTERS 8

struct vnc_start {
    struct display *d;
    int fd;
};

static void *vnc_start_client(void *arg)
{
    struct vnc_start start = *(struct vnc_start *)arg;
    free(arg);
    struct display *d = start.d;
    pthread_mutex_lock(&vnc_auth_lock);
    bool room = vnc_make_room(d->vnc);
    pthread_mutex_unlock(&vnc_auth_lock);
    rfbClientPtr cl = room ? rfbNewClient(d->vnc, start.fd) : NULL;
    if (!room)
        close(start.fd);
    if (cl) {
        pthread_mutex_lock(&vnc_auth_lock);
        cl->clientData = (void *)(uintptr_t)++vnc_client_serial;
        pthread_mutex_unlock(&vnc_auth_lock);
        if (!cl->onHold)
            rfbStartOnHoldClient(cl);
    }
    atomic_fetch_sub(&d->vnc_starting, 1);
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
    struct display *d = arg;
    struct pollfd fds[2] = {{.fd = d->vnc_listen_fd, .events = POLLIN},
                            {.fd = d->vnc_stop_fd, .events = POLLIN}};
    pthread_attr_t detached;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    while (!(fds[1].revents & POLLIN)) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (!(fds[0].revents & POLLIN))
            continue;
        int fd = accept4(d->vnc_listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        /* libvncserver waits with select(): a descriptor past FD_SETSIZE would overflow it. */
        struct vnc_start *start = NULL;
        if (fd >= FD_SETSIZE - 16 || !(start = malloc(sizeof(*start)))) {
            log_warn_limited(&vnc_limit, "VNC: out of descriptors or memory; refused a viewer");
            close(fd);
            continue;
        }
        /* All starters busy: wait, and let the kernel's backlog hold (then refuse) the rest. */
        while (atomic_load(&d->vnc_starting) >= VNC_STARTERS && !atomic_load(&d->stop))
            nanosleep(&(struct timespec){0, 5000000}, NULL);
        *start = (struct vnc_start){d, fd};
        pthread_t thread;
        atomic_fetch_add(&d->vnc_starting, 1);
        if (pthread_create(&thread, &detached, vnc_start_client, start)) {
            atomic_fetch_sub(&d->vnc_starting, 1);
            free(start);
            close(fd);
        }
    }
    pthread_attr_destroy(&detached);
    /* No client may be half set up when the server shuts down. */
    for (int i = 0; i < 500 && atomic_load(&d->vnc_starting); i++)
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    return NULL;
}

/* VNC authentication is DES with the password cut to 8 characters: weak, so guessing is limited
 * to VNC_AUTH_FAILURES wrong answers, then a lockout during which every answer is wrong. */
static rfbBool vnc_check_password(rfbClientPtr cl, const char *response, int len)
{
    pthread_mutex_lock(&vnc_auth_lock);
    int64_t now = clock_now_ns();
    bool locked = now < vnc_locked_until_ns;
    pthread_mutex_unlock(&vnc_auth_lock);
    rfbBool ok = !locked && rfbCheckPasswordByList(cl, response, len);
    pthread_mutex_lock(&vnc_auth_lock);
    if (ok) {
        vnc_auth_failures = 0;
    } else if (!locked && ++vnc_auth_failures >= VNC_AUTH_FAILURES) {
        vnc_locked_until_ns = now + (int64_t)VNC_AUTH_LOCKOUT_S * 1000000000;
        vnc_auth_failures = 0;
        log_warn("VNC: %d wrong passwords; every attempt fails for the next %d s",
                 VNC_AUTH_FAILURES, VNC_AUTH_LOCKOUT_S);
    }
    pthread_mutex_unlock(&vnc_auth_lock);
    return ok;
}

static int vnc_start(struct display *d)
{
    const struct slate_config *cfg = d->dev->vm->cfg;
    rfbLog = vnc_quiet;
    rfbErr = vnc_quiet;
    int argc = 0;
    d->vnc = rfbGetScreen(&argc, NULL, (int)d->width, (int)d->height, 8, 3, 4);
    if (!d->vnc) {
        log_error("VNC: cannot create the server");
        return -1;
    }
    d->vnc->desktopName = "slate";
    d->vnc->frameBuffer = (char *)d->text_fb;
    d->vnc->alwaysShared = TRUE;
    d->vnc->cursor = NULL; /* no arrow painted over the guest's pixels: the guest draws its own */
    d->vnc->autoPort = FALSE;
    d->vnc->port = cfg->vnc_port;
    d->vnc->ipv6port = 0;
    d->vnc->listen6Interface = NULL;
    d->vnc->screenData = d->dev->vm;
    d->vnc->kbdAddEvent = vnc_key;
    d->vnc->maxClientWait = 5000; /* a client silent mid-message for 5 s is dropped */
    d->vnc->ptrAddEvent = vnc_pointer;
    if (inet_pton(AF_INET, cfg->vnc_host, &d->vnc->listenInterface) != 1) {
        log_error("--vnc %s: not an IPv4 address", cfg->vnc_host);
        return -1;
    }
    if (cfg->vnc_password_file) {
        FILE *f = fopen(cfg->vnc_password_file, "r");
        char line[128] = "";
        if (!f || !fgets(line, sizeof(line), f)) {
            log_error("--vnc-password %s: %s", cfg->vnc_password_file, f ? "empty file" : strerror(errno));
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
        line[strcspn(line, "\r\n")] = 0;
        vnc_passwords[0] = strdup(line);
        d->vnc->authPasswdData = vnc_passwords;
        d->vnc->passwordCheck = vnc_check_password;
    }
    vnc_show(d, (char *)d->text_fb, d->width, d->height); /* no viewer yet: safe here */
    d->vnc->socketState = RFB_SOCKET_READY; /* slate listens itself: vnc_listener */
    rfbInitServer(d->vnc);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->vnc_port),
                               .sin_addr.s_addr = d->vnc->listenInterface};
    d->vnc_listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (d->vnc_listen_fd < 0 ||
        setsockopt(d->vnc_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(d->vnc_listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(d->vnc_listen_fd, 32) < 0) {
        log_error("--vnc %s:%d: cannot listen (in use?)", cfg->vnc_host, cfg->vnc_port);
        return -1;
    }
    d->vnc_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    d->vnc->backgroundLoop = TRUE; /* each client gets its own threads, as with rfbRunEventLoop */
    /* rfbShutdownServer wakes and joins the library's own listener thread: give it one that only
     * waits for that (slate's listener is vnc_listener). */
    if (pipe2(d->vnc->pipe_notify_listener_thread, O_CLOEXEC) < 0 ||
        pthread_create(&d->vnc->listener_thread, NULL, vnc_shutdown_waiter, d->vnc) != 0) {
        log_error("VNC: cannot start: %s", strerror(errno));
        d->vnc->backgroundLoop = FALSE;
        return -1;
    }
    int rc = d->vnc_stop_fd < 0 ? errno : pthread_create(&d->vnc_thread, NULL, vnc_listener, d);
    if (rc) {
        log_error("VNC: cannot start the listener: %s", strerror(rc));
        return -1;
    }
    d->vnc_running = true;
    return 0;
}

/* ---- registers --------------------------------------------------------------------------------- */

static void set_mode(struct display *d, uint32_t mode)
{
    if (mode == SLATE_DISPLAY_TEXT) {
        d->mode = mode, d->width = TEXT_W, d->height = TEXT_H, d->error = false;
    } else if (mode == SLATE_DISPLAY_GRAPHICS && d->req_width >= 1 && d->req_width <= MAX_W &&
               d->req_height >= 1 && d->req_height <= MAX_H) {
        d->mode = mode, d->width = d->req_width, d->height = d->req_height, d->error = false;
    } else {
        log_warn_limited(&d->dev->vm->guest_limit, "%s: mode %u at %ux%u refused (1..%dx1..%d)",
                         d->dev->name, mode, d->req_width, d->req_height, MAX_W, MAX_H);
        d->error = true;
        return;
    }
    switch_framebuffer(d);
}

static void display_pio(struct device *dev, struct bus_io *io)
{
    struct display *d = dev->state;
    uint32_t v = (uint32_t)io->value;
    pthread_mutex_lock(&d->lock);
    bool text = d->mode == SLATE_DISPLAY_TEXT;
    if (io->is_write) {
        switch (io->offset) {
        case SLATE_DISPLAY_MODE: set_mode(d, v); break;
        case SLATE_DISPLAY_WIDTH: d->req_width = v; break;
        case SLATE_DISPLAY_HEIGHT: d->req_height = v; break;
        case SLATE_DISPLAY_CURSOR: d->cursor = v; break;
        }
    } else {
        switch (io->offset) {
        case SLATE_DISPLAY_MODE: io->value = d->mode; break;
        case SLATE_DISPLAY_WIDTH: io->value = text ? SLATE_DISPLAY_TEXT_COLUMNS : d->width; break;
        case SLATE_DISPLAY_HEIGHT: io->value = text ? SLATE_DISPLAY_TEXT_ROWS : d->height; break;
        case SLATE_DISPLAY_PITCH: io->value = text ? SLATE_DISPLAY_TEXT_COLUMNS * 2 : d->width * 4; break;
        case SLATE_DISPLAY_MAX_WIDTH: io->value = MAX_W; break;
        case SLATE_DISPLAY_MAX_HEIGHT: io->value = MAX_H; break;
        case SLATE_DISPLAY_STATUS: io->value = d->error ? SLATE_DISPLAY_ERROR : 0; break;
        case SLATE_DISPLAY_CURSOR: io->value = d->cursor; break;
        default: io->value = 0;
        }
    }
    pthread_mutex_unlock(&d->lock);
}

static unsigned display_instances(const struct slate_config *cfg) { return cfg->display ? 1 : 0; }

/* Before KVM: the VNC address parses, the password file has a first line, the screenshot's
 * directory is writable. */
static int display_check(const struct slate_config *cfg, unsigned index)
{
    (void)index;
    struct in_addr addr;
    if (cfg->vnc_host[0] && inet_pton(AF_INET, cfg->vnc_host, &addr) != 1) {
        log_error("--vnc %s: not an IPv4 address", cfg->vnc_host);
        return -1;
    }
    if (cfg->vnc_password_file) {
        FILE *f = fopen(cfg->vnc_password_file, "re");
        char line[128] = "";
        bool ok = f && fgets(line, sizeof(line), f);
        if (!ok)
            log_error("--vnc-password %s: %s", cfg->vnc_password_file, f ? "empty file" : strerror(errno));
        if (f)
            fclose(f);
        if (!ok)
            return -1;
    }
    return cfg->screenshot ? preflight_output_file("--screenshot", cfg->screenshot) : 0;
}

/* The device's state in text mode, without VNC, SDL or the refresh thread. NULL if out of memory. */
static struct display *display_new(struct device *dev)
{
    struct display *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    dev->state = d;
    d->dev = dev;
    d->vnc_listen_fd = d->vnc_stop_fd = -1;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->sdl_opened, NULL);
    d->mode = SLATE_DISPLAY_TEXT, d->width = TEXT_W, d->height = TEXT_H;
    d->cursor = 0;
    d->text_fb = calloc(TEXT_W * TEXT_H, 4);
    d->dirty = calloc(BITMAP_BYTES, 1);
    d->shown = calloc(WINDOW_BYTES, 1); /* untouched pages cost nothing until a mode uses them */
    return d->text_fb && d->dirty && d->shown ? d : NULL;
}

static int display_setup(struct device *dev, unsigned index)
{
    (void)index;
    struct display *d = display_new(dev);
    if (!d) {
        log_error("out of memory");
        return -ENOMEM;
    }
    the_display = d;
    if (dev->vm->cfg->vnc_host[0] && vnc_start(d))
        return -EIO;
    int rc = pthread_create(&d->thread, NULL, refresh_thread, d);
    if (rc) {
        log_error("%s: cannot start its refresh thread: %s", dev->name, strerror(rc));
        return -EIO;
    }
    d->thread_started = true;
    if (dev->vm->cfg->sdl) {
        pthread_mutex_lock(&d->lock);
        while (!d->sdl_result)
            pthread_cond_wait(&d->sdl_opened, &d->lock);
        pthread_mutex_unlock(&d->lock);
        if (d->sdl_result < 0)
            return -EIO;
    }
    return 0;
}

/* libvncserver frees a client twice if the server shuts down while that client's own thread is
 * tearing it down (LibVNC/libvncserver#456, #211): give clients that are leaving up to half a
 * second to be gone first. A client whose socket is closed is on its way out. */
static void vnc_wait_for_departures(rfbScreenInfoPtr screen)
{
    for (int tries = 0; tries < 50; tries++) {
        bool leaving = false;
        rfbClientIteratorPtr it = rfbGetClientIterator(screen);
        for (rfbClientPtr cl; (cl = rfbClientIteratorNext(it));)
            leaving |= cl->sock == RFB_INVALID_SOCKET;
        rfbReleaseClientIterator(it);
        if (!leaving)
            return;
        struct timespec pause = {0, 10000000};
        nanosleep(&pause, NULL);
    }
}

static void display_teardown(struct device *dev)
{
    struct display *d = dev->state;
    if (!d)
        return;
    if (d->thread_started) {
        atomic_store(&d->stop, true);
        pthread_join(d->thread, NULL);
    }
    const char *shot = dev->vm->cfg->screenshot;
    if (shot && atomic_load(&dev->vm->status) != VM_STATUS_RESET)
        display_screenshot(shot);
    if (d->vnc) {
        if (d->vnc_running) {
            eventfd_write(d->vnc_stop_fd, 1);
            pthread_join(d->vnc_thread, NULL); /* no new client from here on */
            vnc_wait_for_departures(d->vnc);
            rfbShutdownServer(d->vnc, TRUE);
        }
        rfbScreenCleanup(d->vnc);
    }
    if (d->vnc_listen_fd >= 0)
        close(d->vnc_listen_fd);
    if (d->vnc_stop_fd >= 0)
        close(d->vnc_stop_fd);
    the_display = NULL;
    free(vnc_passwords[0]);
    vnc_passwords[0] = NULL;
    free(d->text_fb);
    free(d->dirty);
    free(d->shown);
    pthread_cond_destroy(&d->sdl_opened);
    pthread_mutex_destroy(&d->lock);
    free(d);
    dev->state = NULL;
}

const struct device_ops display_device = {
    .name = "display",
    .type = SLATE_DEV_DISPLAY,
    .version = 1,
    .port_count = 0x20,
    .window_size = WINDOW_BYTES,
    .window_dirty_log = true,
    .instances = display_instances,
    .check = display_check,
    .setup = display_setup,
    .pio = display_pio,
    .teardown = display_teardown,
};
