/* display.h - the display room: the display device's surface (dev_display.c) and the front ends
 * attached to it: the VNC server (ui_vnc.c), PNG screenshots (ui_png.c) and the SDL window
 * (ui_sdl.c). Front ends reach the machine only through device.h. */
#ifndef SLATE_DISPLAY_H
#define SLATE_DISPLAY_H

#include "device.h"
#include "loader.h"
#include "options.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* (DISPLAY_MAX_W x DISPLAY_MAX_H, the largest mode, is loader.h's: boot protocols clamp to it.) */

struct vnc_front;
struct sdl_window;

/* A rectangle a front end must send again. */
struct display_mark {
    int x0, y0, x1, y1;
};

struct display {
    struct device *dev;
    pthread_mutex_t lock; /* guards the mode, the text shadow and the queued marks */
    uint32_t mode, width, height; /* what the screen shows now */
    uint32_t req_width, req_height;
    bool error;
    uint32_t cursor;
    uint32_t shown_cursor;
    uint8_t *text_fb;   /* text mode's pixels, rendered from the cells */
    const uint16_t *vga_cells; /* the cells in RAM at 0xB8000 (protocol boots), else NULL: the window's */
    uint16_t shadow[SLATE_DISPLAY_TEXT_COLUMNS * SLATE_DISPLAY_TEXT_ROWS];
    bool shadow_valid;
    pthread_t thread;
    bool thread_started;
    _Atomic bool stop;
    unsigned long *dirty; /* the dirty-log bitmap */
    uint32_t *shown;      /* graphics: the pixels as last announced, to find what changed */
    bool changed;         /* something was redrawn since the SDL window last showed it */
    /* What VNC must be told, queued under `lock` and told by the refresh thread after it lets
     * go of it: libvncserver may block on a viewer that stopped reading, and neither a vCPU
     * (a MODE write) nor anyone waiting for `lock` may wait with it. */
    struct display_mark marks[64];
    unsigned mark_count;
    bool mark_all;
    bool fb_switch;       /* the mode changed: the front end takes the new size */
    struct vnc_front *vnc; /* NULL without VNC */
    const struct vnc_module *vnc_ops;
    struct sdl_window *sdl;
    const struct sdl_module *sdl_ops;
    int sdl_result;       /* 1 once the window is open, -1 if it cannot be: setup waits for it */
    pthread_cond_t sdl_opened;
};

/* The pixels the screen shows now (0x00RRGGBB), and their size. Lock held. */
const void *display_pixels(struct display *d);

/* The screen as RGB rows (taken under the lock). NULL when out of memory. */
uint8_t *display_rgb(struct display *d, uint32_t *w, uint32_t *h);

/* noVNC's files for --display web: $SLATE_NOVNC_DIR when set, else Debian's /usr/share/novnc,
 * copied to out (may be NULL). 0, or -1 after logging which package to install. */
int web_files_dir(char *out, size_t outlen);

/* The front ends in modules (module.h): ui_vnc.c is slate-vnc.so, ui_sdl.c slate-sdl.so. */
struct vnc_module {
    /* A VNC server on cfg's --vnc address, in d->vnc. 0, or -1 after logging why. */
    int (*start)(struct display *d);
    /* From the refresh thread, without `lock`: sends what was queued (fb_switch, marks). */
    void (*tell)(struct display *d);
    void (*stop)(struct display *d); /* (d->vnc may be NULL or half set up) */
};
extern const struct vnc_module slate_vnc_module __attribute__((weak));

/* The SDL window. Every call comes from the display's refresh thread, the only thread that
 * touches SDL. */
struct sdl_module {
    /* Opens the window at width x height; input goes to the machine's sinks through `display`
     * (device_input_key). NULL (logged, naming the cause) when there is no screen. */
    struct sdl_window *(*open)(struct device *display, uint32_t width, uint32_t height);
    /* Shows `pixels` (width x height, 0x00RRGGBB words, rows width * 4 bytes apart). */
    void (*show)(struct sdl_window *w, const void *pixels, uint32_t width, uint32_t height);
    /* Hands the window's pending input to the devices. Returns false when the user closed it. */
    bool (*poll)(struct sdl_window *w);
    void (*close)(struct sdl_window *w);
};
extern const struct sdl_module slate_sdl_module __attribute__((weak));

/* ui_png.c: writes the screen as PNG file `name` (no '/') in directory dirfd, through a
 * temporary file there (never following a link) renamed into place; an existing `name` is
 * replaced only when `replace`. Returns 0 or -errno (-EEXIST: the file exists). */
int display_png_at(struct display *d, int dirfd, const char *name, bool replace);
/* The same at a path (replacing what is there); a failure is logged. 0 or -errno. */
int display_png(struct display *d, const char *path);

#endif
