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

/* Writes the screen as a PNG. Returns 0, or -1 (logged). */
int display_screenshot(const char *path);

#endif
