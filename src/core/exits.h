/* exits.h - what to do with each KVM exit reason: one decision function, testable without KVM. */
#ifndef SLATE_EXITS_H
#define SLATE_EXITS_H

#include <linux/kvm.h>

enum exit_action {
    EXIT_ACTION_RESUME,   /* nothing to do: run the vCPU again */
    EXIT_ACTION_PIO,      /* dispatch run->io on the port bus */
    EXIT_ACTION_MMIO,     /* dispatch run->mmio on the MMIO bus */
    EXIT_ACTION_MSR,      /* refuse run->msr with #GP */
    EXIT_ACTION_CRASH,    /* the guest cannot continue: crash report, status 126 */
    EXIT_ACTION_SHUTDOWN, /* the guest powered off: status 0 */
    EXIT_ACTION_RESET,    /* the guest asked for a reset */
    EXIT_ACTION_DEBUG,    /* a breakpoint, single step or watchpoint for the gdb stub */
};

/* Classifies the exit in *run. *what names the reason (for reports), always set. */
enum exit_action exit_classify(const struct kvm_run *run, const char **what);

#endif
