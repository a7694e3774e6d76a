/* dev_display.c - the display (type 2): a text mode slate renders with an 8x16 font, and a linear
 * 32-bit framebuffer, both in the device's window. A refresh thread asks which pages of the
 * window the guest wrote (the window's dirty log), compares just those rows with a copy of what it
 * last showed, and queues the rectangle that really changed for the front ends (ui_vnc.c, the SDL
 * window), so a small change costs a small update. Screenshots are ui_png.c's. */
#include "display.h"
#include "module.h"
#include "outfile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_W DISPLAY_MAX_W
#define MAX_H DISPLAY_MAX_H
#define WINDOW_BYTES ((uint64_t)MAX_W * MAX_H * 4)
#define TEXT_W (SLATE_DISPLAY_TEXT_COLUMNS * 8)
#define TEXT_H (SLATE_DISPLAY_TEXT_ROWS * 16)
#define VGA_TEXT_ADDR 0xB8000
#define REFRESH_NS 16000000 /* about 60 updates a second at most */
/* The window's KVM slot is rounded up to 1 MiB, and KVM writes its dirty bitmap in longs. */
#define SLOT_PAGES (((WINDOW_BYTES + 0xFFFFF) & ~0xFFFFFULL) / 4096)
#define BITMAP_BYTES (((SLOT_PAGES + 63) / 64) * 8)

extern const uint8_t font8x16[256][16];

static const uint32_t vga_palette[16] = {
    0x000000, 0x0000AA, 0x00AA00, 0x00AAAA, 0xAA0000, 0xAA00AA, 0xAA5500, 0xAAAAAA,
    0x555555, 0x5555FF, 0x55FF55, 0x55FFFF, 0xFF5555, 0xFF55FF, 0xFFFF55, 0xFFFFFF,
};

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
        d->marks[d->mark_count++] = (struct display_mark){x0, y0, x1, y1};
}

/* Renders the cells that changed since the last look; marks them for VNC. Lock held. */
static void refresh_text(struct display *d)
{
    const uint16_t *cells = d->vga_cells ? d->vga_cells : d->dev->window;
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

/* Asks which pages of the window the guest wrote since the last look. Lock held. */
static void refresh_graphics(struct display *d)
{
    memset(d->dirty, 0, BITMAP_BYTES);
    if (device_window_dirty(d->dev, d->dirty))
        refresh_dirty_rows(d);
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

/* The SDL window belongs to this thread: SDL wants one thread to do all its work. */
static bool open_sdl(struct display *d)
{
    struct sdl_window *w = d->sdl_ops->open(d->dev, d->width, d->height);
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
        const void *fb = display_pixels(d);
        d->sdl_ops->show(d->sdl, fb, d->width, d->height);
    }
    if (!d->sdl_ops->poll(d->sdl)) {
        log_info("the window was closed: stopping the machine");
        device_stop_machine(d->dev, 130);
    }
}

static void *refresh_thread(void *arg)
{
    struct display *d = arg;
    if (device_config(d->dev)->sdl && !open_sdl(d))
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
            d->vnc_ops->tell(d);
        struct timespec pause = {0, REFRESH_NS};
        nanosleep(&pause, NULL);
    }
    if (d->sdl)
        d->sdl_ops->close(d->sdl);
    d->sdl = NULL;
    return NULL;
}

/* ---- the surface, for the front ends ------------------------------------------------------ */

const void *display_pixels(struct display *d)
{
    return d->mode == SLATE_DISPLAY_GRAPHICS ? d->dev->window : (const void *)d->text_fb;
}

uint8_t *display_rgb(struct display *d, uint32_t *w, uint32_t *h)
{
    pthread_mutex_lock(&d->lock);
    if (d->mode == SLATE_DISPLAY_TEXT)
        refresh_text(d);
    const uint8_t *src = display_pixels(d);
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

/* The screenshot hypercall: the screen to --screenshot's file. */
static int64_t display_screenshot_call(struct device *dev, const uint64_t args[4])
{
    (void)args;
    const char *path = device_config(dev)->screenshot;
    if (!path)
        return SLATE_EINVAL;
    return display_png(dev->state, path) == 0 ? 0 : SLATE_EIO;
}

/* The monitor's screendump. */
static int display_screendump(struct device *dev, int dirfd, const char *name, bool replace)
{
    return display_png_at(dev->state, dirfd, name, replace);
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
        device_warn(d->dev, "%s: mode %u at %ux%u refused (1..%dx1..%d)",
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

/* ---- options --------------------------------------------------------------------------------- */

/* [HOST:]PORT, the host loopback unless named: anything else must be asked for. */
static bool parse_address(const char *arg, char *host, size_t host_size, int *port_out)
{
    const char *colon = strrchr(arg, ':');
    const char *port_text = colon ? colon + 1 : arg;
    char *end;
    long port = strtol(port_text, &end, 10);
    size_t host_len = colon ? (size_t)(colon - arg) : 0;
    if (!*port_text || *end || port < 1 || port > 65535 || host_len >= host_size || (colon && host_len == 0))
        return false;
    snprintf(host, host_size, "%.*s", colon ? (int)host_len : 9, colon ? arg : "127.0.0.1");
    *port_out = (int)port;
    return true;
}

/* --display vnc|web[=[HOST:]PORT]|sdl|none, each one more way to see the screen (none: no
 * display at all). sdl opens a local window; VNC stays off unless --vnc or vnc asks for it. */
static int parse_display(struct slate_config *cfg, const char *arg, char *err, size_t errlen)
{
    if (!strcmp(arg, "none")) {
        cfg->display = false;
        cfg->sdl = false;
        cfg->vnc_host[0] = cfg->web_host[0] = 0;
    } else if (!strcmp(arg, "vnc")) {
        cfg->display = true;
        if (!cfg->vnc_host[0]) {
            snprintf(cfg->vnc_host, sizeof(cfg->vnc_host), "127.0.0.1");
            cfg->vnc_port = 5900;
        }
    } else if (!strcmp(arg, "web")) {
        cfg->display = true;
        snprintf(cfg->web_host, sizeof(cfg->web_host), "127.0.0.1");
        cfg->web_port = 6080;
    } else if (!strncmp(arg, "web=", 4)) {
        if (!parse_address(arg + 4, cfg->web_host, sizeof(cfg->web_host), &cfg->web_port))
            return error_text(err, errlen, "--display %s: expected web=[HOST:]PORT", arg);
        cfg->display = true;
    } else if (!strcmp(arg, "sdl")) {
        cfg->display = true;
        cfg->sdl = true;
    } else {
        return error_text(err, errlen, "--display %s: expected vnc, web[=[HOST:]PORT], sdl or none", arg);
    }
    return 0;
}

/* --vnc [HOST:]PORT|none. */
static int parse_vnc(struct slate_config *cfg, const char *arg, char *err, size_t errlen)
{
    if (!strcmp(arg, "none")) {
        cfg->vnc_host[0] = 0;
        return 0;
    }
    if (!parse_address(arg, cfg->vnc_host, sizeof(cfg->vnc_host), &cfg->vnc_port))
        return error_text(err, errlen, "--vnc %s: expected [HOST:]PORT or none", arg);
    cfg->display = true;
    return 0;
}

static int parse_vnc_password(struct slate_config *cfg, const char *arg, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    cfg->vnc_password_file = arg;
    return 0;
}

static int parse_screenshot(struct slate_config *cfg, const char *arg, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    cfg->screenshot = arg;
    cfg->display = true;
    return 0;
}

static const struct device_option display_options[] = {
    {"display", true,
     "  --display vnc|web[=[HOST:]PORT]|sdl|none\n"
     "                         a display, keyboard and pointer, served over VNC, as a web\n"
     "                         page (noVNC; default 127.0.0.1:6080) or shown in a local\n"
     "                         SDL window; give it more than once for more than one\n",
     parse_display},
    {"vnc", true,
     "  --vnc [HOST:]PORT|none where VNC listens (default 127.0.0.1:5900 with --display vnc)\n",
     parse_vnc},
    {"vnc-password", true,
     "  --vnc-password FILE    VNC clients must give the password on the file's first line\n",
     parse_vnc_password},
    {"screenshot", true,
     "  --screenshot PATH.png  write the screen as a PNG when the guest exits\n",
     parse_screenshot},
    {0},
};

static unsigned display_instances(const struct slate_config *cfg) { return cfg->display ? 1 : 0; }

int web_files_dir(char *out, size_t outlen)
{
    const char *env = getenv("SLATE_NOVNC_DIR");
    const char *dir = env && env[0] ? env : "/usr/share/novnc";
    char page[512], script[512];
    snprintf(page, sizeof(page), "%s/vnc.html", dir);
    snprintf(script, sizeof(script), "%s/core/rfb.js", dir);
    if (access(page, R_OK) || access(script, R_OK)) {
        log_error("--display web: noVNC's files are not in %s (install Debian's novnc package: "
                  "apt-get install novnc, or run `make deps`)", dir);
        return -1;
    }
    if (out)
        snprintf(out, outlen, "%s", dir);
    return 0;
}

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
    if (cfg->web_host[0] && inet_pton(AF_INET, cfg->web_host, &addr) != 1) {
        log_error("--display web=%s:%d: not an IPv4 address", cfg->web_host, cfg->web_port);
        return -1;
    }
    if (cfg->web_host[0] && cfg->vnc_host[0] && cfg->web_port == cfg->vnc_port) {
        log_error("--display web: port %d is --vnc's too; give web=PORT another", cfg->web_port);
        return -1;
    }
    if (cfg->web_host[0] && web_files_dir(NULL, 0) < 0)
        return -1;
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
    return cfg->screenshot ? outfile_check("--screenshot", cfg->screenshot) : 0;
}

/* The device's state in text mode, without VNC, SDL or the refresh thread. NULL if out of memory. */
static struct display *display_new(struct device *dev)
{
    struct display *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    dev->state = d;
    d->dev = dev;
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
    const struct slate_config *cfg = device_config(dev);
    const struct boot_screen *boot = device_boot_screen(dev);
    if (boot->vga_text) {
        /* A kernel booted through a PC protocol writes text to the VGA buffer; no cursor shows
         * until it sets one through CURSOR (VGA's CRTC registers are not there). */
        d->vga_cells = device_ram(dev, VGA_TEXT_ADDR, SLATE_DISPLAY_TEXT_COLUMNS * SLATE_DISPLAY_TEXT_ROWS * 2);
        d->cursor = 0xFFFFFFFF;
    }
    if (boot->width) {
        d->req_width = boot->width, d->req_height = boot->height;
        set_mode(d, SLATE_DISPLAY_GRAPHICS);
    }
    if (device_add_hypercall(dev, SLATE_HC_SCREENSHOT, display_screenshot_call))
        return -EEXIST;
    device_offer_screenshot(dev, display_screendump);
    if ((cfg->vnc_host[0] || cfg->web_host[0]) &&
        (!(d->vnc_ops = module_load("vnc", "slate_vnc_module", &slate_vnc_module,
                                    cfg->vnc_host[0] ? "--vnc" : "--display web")) ||
         d->vnc_ops->start(d)))
        return -EIO;
    if (cfg->sdl &&
        !(d->sdl_ops = module_load("sdl", "slate_sdl_module", &slate_sdl_module, "--display sdl")))
        return -EIO;
    int rc = pthread_create(&d->thread, NULL, refresh_thread, d);
    if (rc) {
        log_error("%s: cannot start its refresh thread: %s", dev->name, strerror(rc));
        return -EIO;
    }
    d->thread_started = true;
    if (cfg->sdl) {
        pthread_mutex_lock(&d->lock);
        while (!d->sdl_result)
            pthread_cond_wait(&d->sdl_opened, &d->lock);
        pthread_mutex_unlock(&d->lock);
        if (d->sdl_result < 0)
            return -EIO;
    }
    return 0;
}

static void display_teardown(struct device *dev)
{
    struct display *d = dev->state;
    if (!d)
        return;
    device_offer_screenshot(dev, NULL);
    if (d->thread_started) {
        atomic_store(&d->stop, true);
        pthread_join(d->thread, NULL);
    }
    const char *shot = device_config(dev)->screenshot;
    if (shot && device_machine_status(dev) != DEVICE_RESET)
        display_png(d, shot);
    if (d->vnc_ops)
        d->vnc_ops->stop(d);
    free(d->text_fb);
    free(d->dirty);
    free(d->shown);
    pthread_cond_destroy(&d->sdl_opened);
    pthread_mutex_destroy(&d->lock);
    free(d);
    dev->state = NULL;
}

/* The mode registers; what the screen shows is the window's memory, which the core saves. */
static int display_save(struct device *dev, struct device_state *out)
{
    struct display *d = dev->state;
    pthread_mutex_lock(&d->lock);
    uint32_t regs[7] = {d->mode, d->width, d->height, d->req_width, d->req_height, d->error, d->cursor};
    device_state_put(out, regs, sizeof(regs));
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static int display_load(struct device *dev, struct device_state *in)
{
    struct display *d = dev->state;
    uint32_t r[7];
    device_state_get(in, r, sizeof(r));
    bool text = r[0] == SLATE_DISPLAY_TEXT && r[1] == TEXT_W && r[2] == TEXT_H;
    bool graphics = r[0] == SLATE_DISPLAY_GRAPHICS && r[1] >= 1 && r[1] <= MAX_W && r[2] >= 1 && r[2] <= MAX_H;
    if (!device_state_done(in) || !(text || graphics) || r[5] > 1) {
        log_error("%s: the saved mode is malformed", dev->name);
        return -1;
    }
    pthread_mutex_lock(&d->lock);
    d->mode = r[0], d->width = r[1], d->height = r[2], d->req_width = r[3], d->req_height = r[4];
    d->error = r[5], d->cursor = r[6];
    switch_framebuffer(d); /* the front ends take the restored screen whole */
    pthread_mutex_unlock(&d->lock);
    return 0;
}

const struct device_ops display_device = {
    .name = "display",
    .type = SLATE_DEV_DISPLAY,
    .version = 1,
    .port_count = 0x20,
    .window_size = WINDOW_BYTES,
    .window_dirty_log = true,
    .options = display_options,
    .instances = display_instances,
    .check = display_check,
    .setup = display_setup,
    .pio = display_pio,
    .teardown = display_teardown,
    .state_version = 1,
    .save = display_save,
    .load = display_load,
};