/* preflight.h - everything slate can check before it opens /dev/kvm: the options' files and
 * addresses, the kernel and every --load image (loaded into scratch memory), every --disk (opened
 * and locked), the output files. A user on a machine without KVM still learns what is wrong with
 * their kernel, and `slate --check` reports what would boot. */
#ifndef SLATE_PREFLIGHT_H
#define SLATE_PREFLIGHT_H

#include "loader.h"
#include "memory.h"
#include "options.h"

#include <stdio.h>

/* The oldest Linux whose KVM has every capability slate requires: KVM_CAP_SYNC_REGS on x86
 * came last (4.17), after KVM_CAP_SPLIT_IRQCHIP (4.4) and KVM_CAP_IMMEDIATE_EXIT (4.11). */
#define SLATE_MIN_LINUX "4.17"

struct preflight {
    struct guest_memory layout; /* the RAM map (host pointers NULL: nothing stays mapped) */
    struct boot_plan plan;      /* entry mode, entry point and every image's range */
};

/* Runs every check that needs no KVM. Logs one line naming the file or option that is wrong
 * and returns -1; 0 when all passed. */
int preflight_check(const struct slate_config *cfg, struct preflight *pf);

/* Opens /dev/kvm read-write. On failure logs why, telling a missing module from a CPU or VM
 * without hardware virtualization and from a permission problem, and returns -1. */
int preflight_open_kvm(void);

/* Whether /dev/kvm could be opened; when not, `why` receives the same reason as above. */
int preflight_kvm_usable(char *why, size_t whylen);

/* What `slate --check` prints: entry, images, RAM map, CPUs, devices, whether KVM is here. */
void preflight_report(FILE *out, const struct slate_config *cfg, const struct preflight *pf);

#endif
