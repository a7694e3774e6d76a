/* flamegraph.h - folded stacks ("root;caller;callee COUNT" lines) to a flame graph SVG: one box
 * per frame, as wide as its share of the samples, callers below callees, each with a tooltip
 * (<title>) naming the function, its samples and its share. Pure: unit-tested. */
#ifndef SLATE_FLAMEGRAPH_H
#define SLATE_FLAMEGRAPH_H

#include <stdio.h>

/* Reads folded lines from `folded` (a NUL-terminated text) and writes the SVG to out; `title`
 * heads it. Returns 0, or -1 when there is nothing to draw. */
int flamegraph_svg(const char *folded, const char *title, FILE *out);

#endif
