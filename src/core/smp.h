/* smp.h - starting application processors with one hypercall (smp.c). */
#ifndef SLATE_SMP_H
#define SLATE_SMP_H

#include "vcpu.h"

#include <stdint.h>

/* On a vCPU's own thread: applies a start request posted to it, if any. */
void smp_serve_start(struct vcpu *cpu);

/* The start-CPU hypercall: starts CPU `index` at `entry` with stack `stack` and `arg` in RDI, in
 * the caller's mode (`view`: its registers, and the privilege its stack frame is written with).
 * Returns 0 or a SLATE_E* code. Called on the caller's vCPU thread. */
int64_t smp_start_cpu(struct vcpu *caller, const struct caller_view *view, uint64_t index,
                      uint64_t entry, uint64_t stack, uint64_t arg);

#endif
