/* ui_sdl.c - the display in a local SDL2 window. SDL key codes become the X11 keysyms the
 * keyboard device takes from VNC too (US layout for shifted symbols), so both front ends type the
 * same characters. The window is the guest's size; closing it stops the machine like Ctrl-A x. */
#include "display.h"
#include "log.h"

#include <SDL.h>
#include <string.h>
#include <rfb/keysym.h>
#include <stdlib.h>

struct sdl_window {
    struct device *display;
    SDL_Window *window;
    SDL_Renderer *renderer;
    SDL_Texture *texture;
    uint32_t width, height;
    uint32_t buttons; /* VNC-style mask: bit 0 left, 1 middle, 2 right */
};

static void sdl_close(struct sdl_window *w);

static SDL_Texture *make_texture(struct sdl_window *w, uint32_t width, uint32_t height)
{
    SDL_Texture *t = SDL_CreateTexture(w->renderer, SDL_PIXELFORMAT_XRGB8888, SDL_TEXTUREACCESS_STREAMING,
                                       (int)width, (int)height);
    if (!t)
        log_warn("SDL: cannot make a %ux%u texture: %s", width, height, SDL_GetError());
    return t;
}

static struct sdl_window *sdl_open(struct device *display, uint32_t width, uint32_t height)
{
    /* With no X11 or Wayland display SDL would fall back to drawing nowhere; say so instead
     * (SDL_VIDEODRIVER still picks any driver on purpose, e.g. offscreen for tests). */
    bool chosen = getenv("SDL_VIDEODRIVER") != NULL;
    if (!chosen && !getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY")) {
        log_error("--display sdl: no screen to open a window on (neither DISPLAY nor WAYLAND_DISPLAY is "
                  "set); use --display vnc");
        return NULL;
    }
    if (!chosen) /* the display that is set, and only that one: no noise from probing the other */
        SDL_SetHint(SDL_HINT_VIDEODRIVER, getenv("WAYLAND_DISPLAY") ? "wayland" : "x11");
    if (SDL_Init(SDL_INIT_VIDEO) != 0) {
        log_error("--display sdl: no screen to open a window on (%s); use --display vnc", SDL_GetError());
        return NULL;
    }
    const char *driver = SDL_GetCurrentVideoDriver();
    if (!chosen && driver && (!strcmp(driver, "offscreen") || !strcmp(driver, "dummy"))) {
        SDL_Quit();
        log_error("--display sdl: SDL found no screen (only its %s driver); use --display vnc", driver);
        return NULL;
    }
    struct sdl_window *w = calloc(1, sizeof(*w));
    if (!w) {
        SDL_Quit();
        log_error("out of memory");
        return NULL;
    }
    w->display = display;
    w->window = SDL_CreateWindow("slate", SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED, (int)width,
                                 (int)height, 0);
    /* Software rendering: one texture copy per frame needs no GPU driver, works over ssh -X. */
    w->renderer = w->window ? SDL_CreateRenderer(w->window, -1, SDL_RENDERER_SOFTWARE) : NULL;
    if (!w->renderer || !(w->texture = make_texture(w, width, height))) {
        log_error("--display sdl: cannot open a window: %s", SDL_GetError());
        sdl_close(w);
        return NULL;
    }
    w->width = width, w->height = height;
    SDL_ShowCursor(SDL_DISABLE); /* the guest draws its own pointer, if it wants one */
    return w;
}

static void sdl_show(struct sdl_window *w, const void *pixels, uint32_t width, uint32_t height)
{
    if (width != w->width || height != w->height) {
        SDL_Texture *t = make_texture(w, width, height);
        if (!t)
            return;
        SDL_DestroyTexture(w->texture);
        w->texture = t, w->width = width, w->height = height;
        SDL_SetWindowSize(w->window, (int)width, (int)height);
    }
    SDL_UpdateTexture(w->texture, NULL, pixels, (int)(width * 4));
    SDL_RenderClear(w->renderer);
    SDL_RenderCopy(w->renderer, w->texture, NULL, NULL);
    SDL_RenderPresent(w->renderer);
}

/* SDL's key codes are ASCII for printable keys (unshifted); the rest map one to one. */
static uint32_t keysym_of(SDL_Keycode key, uint16_t mod)
{
    static const char shifted_from[] = "1234567890-=[]\\;',./`", shifted_to[] = "!@#$%^&*()_+{}|:\"<>?~";
    static const struct {
        SDL_Keycode key;
        uint32_t keysym;
    } special[] = {
        {SDLK_RETURN, XK_Return}, {SDLK_BACKSPACE, XK_BackSpace}, {SDLK_TAB, XK_Tab},
        {SDLK_ESCAPE, XK_Escape}, {SDLK_DELETE, XK_Delete}, {SDLK_INSERT, XK_Insert},
        {SDLK_HOME, XK_Home}, {SDLK_END, XK_End}, {SDLK_PAGEUP, XK_Page_Up},
        {SDLK_PAGEDOWN, XK_Page_Down}, {SDLK_RIGHT, XK_Right}, {SDLK_LEFT, XK_Left},
        {SDLK_DOWN, XK_Down}, {SDLK_UP, XK_Up}, {SDLK_LCTRL, XK_Control_L},
        {SDLK_RCTRL, XK_Control_R}, {SDLK_LSHIFT, XK_Shift_L}, {SDLK_RSHIFT, XK_Shift_R},
        {SDLK_LALT, XK_Alt_L}, {SDLK_RALT, XK_Alt_R}, {SDLK_LGUI, XK_Super_L}, {SDLK_RGUI, XK_Super_R},
    };
    bool shift = mod & KMOD_SHIFT;
    if (key >= SDLK_F1 && key <= SDLK_F12)
        return XK_F1 + (uint32_t)(key - SDLK_F1);
    if (key >= 'a' && key <= 'z')
        return (uint32_t)(shift ? key - 'a' + 'A' : key);
    if (key >= ' ' && key < 0x7F) {
        const char *p = shift && key != ' ' ? strchr(shifted_from, (int)key) : NULL;
        return (uint32_t)(p ? (unsigned char)shifted_to[p - shifted_from] : (uint32_t)key);
    }
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (special[i].key == key)
            return special[i].keysym;
    return 0;
}

static uint32_t button_bit(uint8_t button)
{
    switch (button) {
    case SDL_BUTTON_LEFT: return 1;
    case SDL_BUTTON_MIDDLE: return 2;
    case SDL_BUTTON_RIGHT: return 4;
    default: return 0;
    }
}

static void send_pointer(struct sdl_window *w, int x, int y, uint32_t extra)
{
    device_input_pointer(w->display, x, y, w->buttons | extra);
}

static bool sdl_poll(struct sdl_window *w)
{
    SDL_Event e;
    while (SDL_PollEvent(&e)) {
        switch (e.type) {
        case SDL_QUIT:
            return false;
        case SDL_KEYDOWN:
        case SDL_KEYUP: {
            uint32_t ks = keysym_of(e.key.keysym.sym, e.key.keysym.mod);
            if (ks)
                device_input_key(w->display, ks, e.type == SDL_KEYDOWN);
            break;
        }
        case SDL_MOUSEMOTION:
            send_pointer(w, e.motion.x, e.motion.y, 0);
            break;
        case SDL_MOUSEBUTTONDOWN:
        case SDL_MOUSEBUTTONUP:
            if (e.type == SDL_MOUSEBUTTONDOWN)
                w->buttons |= button_bit(e.button.button);
            else
                w->buttons &= ~button_bit(e.button.button);
            send_pointer(w, e.button.x, e.button.y, 0);
            break;
        case SDL_MOUSEWHEEL: {
            int x, y;
            SDL_GetMouseState(&x, &y);
            send_pointer(w, x, y, e.wheel.y > 0 ? 8 : 16); /* VNC's buttons 4 and 5 */
            send_pointer(w, x, y, 0);
            break;
        }
        }
    }
    return true;
}

static void sdl_close(struct sdl_window *w)
{
    if (!w)
        return;
    if (w->texture)
        SDL_DestroyTexture(w->texture);
    if (w->renderer)
        SDL_DestroyRenderer(w->renderer);
    if (w->window)
        SDL_DestroyWindow(w->window);
    free(w);
    SDL_Quit();
}

const struct sdl_module slate_sdl_module = {
    .open = sdl_open,
    .show = sdl_show,
    .poll = sdl_poll,
    .close = sdl_close,
};
