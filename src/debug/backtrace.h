/* backtrace.h - a CPU's call stack for the reports (crash, hang, --report): unwound with the
 * kernel's call frame information through libdw where the kernel has symbols, so functions
 * without a frame pointer appear too; else by the frame-pointer chain, which recognises the
 * frames interrupts and exceptions push and walks on into the interrupted code. */
#ifndef SLATE_BACKTRACE_H
#define SLATE_BACKTRACE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vcpu;
struct symbols;

#define BACKTRACE_MAX 24

struct bt_frame {
    uint64_t pc;
    bool activation; /* where the CPU is, or was interrupted; false for a return address */
};

/* Long mode only (0 frames otherwise). frames[0] is RIP. Returns how many. */
unsigned backtrace_of(struct vcpu *cpu, const struct kvm_regs *r, const struct kvm_sregs *s,
                      struct symbols *syms, struct bt_frame *frames, unsigned max);

/* "func+0x1c (file.c:47)": a return address is named by its call (pc - 1). */
const char *backtrace_describe(struct symbols *syms, const struct bt_frame *f, char *buf, size_t len);

#endif
