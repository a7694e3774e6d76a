/* expr.h - the addresses people type in the monitor: numbers, registers and function names,
 * added and subtracted ("$rsp+16", "kmain+0x20", "$cr3", "0x100000 - 8"). Pure: registers and
 * symbols come through callbacks, so the unit tests need no machine. */
#ifndef SLATE_EXPR_H
#define SLATE_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct expr_env {
    /* "rax" (without the $): its value, or false when there is no such register. */
    bool (*reg)(void *ctx, const char *name, uint64_t *value);
    /* A function name: its address, or false when the kernel has no such symbol (or none). */
    bool (*sym)(void *ctx, const char *name, uint64_t *value);
    void *ctx;
};

/* Evaluates `text` (the whole of it). 0, or -1 with what was not understood in err. */
int expr_eval(const char *text, const struct expr_env *env, uint64_t *value, char *err, size_t errlen);

#endif
