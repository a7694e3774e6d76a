/* input.h - what the display's front ends (VNC) hand to the keyboard and pointer devices, and the
 * screenshot the display can take. */
#ifndef SLATE_INPUT_H
#define SLATE_INPUT_H

#include <stdbool.h>
#include <stdint.h>

struct vm;

/* An X11 keysym (as VNC sends them) pressed or released. Any thread. */
void input_key(struct vm *vm, uint32_t keysym, bool down);

/* The pointer at (x, y) with VNC's button mask: bit 0 left, 1 middle, 2 right, 3 wheel up,
 * 4 wheel down. Any thread. */
void input_pointer(struct vm *vm, int x, int y, uint32_t buttons);

/* Writes the screen as a PNG at path (replacing what is there, never following a link). Returns
 * 0, or -errno (logged). */
int display_screenshot(const char *path);

/* Writes the screen as PNG file `name` (no '/') in directory dirfd, through a temporary file
 * there (never following a link) renamed into place; an existing `name` is replaced only when
 * `replace`. Returns 0 or -errno (-EEXIST: the file exists). */
int display_screenshot_at(int dirfd, const char *name, bool replace);

#endif
