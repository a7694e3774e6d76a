/* ui_sdl.h - the display's local front end: an SDL2 window showing the framebuffer, with the
 * window's keyboard and mouse feeding the keyboard and pointer devices. Every call is made from
 * the display's refresh thread, the only thread that touches SDL. */
#ifndef SLATE_DISPLAY_SDL_H
#define SLATE_DISPLAY_SDL_H

#include <stdbool.h>
#include <stdint.h>

struct device;
struct sdl_window;

/* Opens the window at width x height. NULL (logged, naming the cause) when there is no screen. */
/* Input goes to the machine's sinks through `display` (device_input_key). */
struct sdl_window *sdl_open(struct device *display, uint32_t width, uint32_t height);

/* Shows `pixels` (width x height, 0x00RRGGBB words, rows width * 4 bytes apart). */
void sdl_show(struct sdl_window *w, const void *pixels, uint32_t width, uint32_t height);

/* Hands the window's pending input to the devices. Returns false when the user closed it. */
bool sdl_poll(struct sdl_window *w);

void sdl_close(struct sdl_window *w);

#endif
