/* inspect.h - printing a stopped vCPU's state: for crash reports and the monitor. The vCPU must
 * be outside KVM_RUN (crashed, or the machine paused). */
#ifndef SLATE_INSPECT_H
#define SLATE_INSPECT_H

#include "symbols.h"

#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>

struct vcpu;

/* General, segment and control registers. */
void inspect_registers(FILE *out, struct vcpu *cpu);

/* Disassembles (capstone, in the CPU's current mode) from `from`, which must be an instruction
 * boundary: up to `before` instructions before `mark` (marked "=>" when before > 0) and `after`
 * from it. syms may be NULL. */
void inspect_disasm(FILE *out, struct vcpu *cpu, const struct kvm_sregs *s, uint64_t from,
                    uint64_t mark, unsigned before, unsigned after, struct symbols *syms);

/* The page-table walk for va, and where it stops. */
void inspect_page_walk(FILE *out, struct vcpu *cpu, const struct kvm_sregs *s, const char *what,
                       uint64_t va);

/* Every present mapping of the CPU's page tables (long mode), merged into runs: at most
 * max_lines lines, and a bounded walk however the guest's tables point. */
void inspect_mappings(FILE *out, struct vcpu *cpu, unsigned max_lines);

/* The same for the page tables that the control registers in s select in mem. */
struct guest_memory;
void inspect_mappings_at(FILE *out, const struct guest_memory *mem, const struct kvm_sregs *s,
                         unsigned max_lines);

/* Prints the crash report for cpu (registers, control state, bytes at RIP) to stderr. */
void crash_report(struct vcpu *cpu, const char *reason);

/* The flight recorder's last events, oldest first, each named (the device and register for a
 * port, the hypercall's number), with its time before now. */
struct vm;
void inspect_flight(FILE *out, struct vm *vm);

#endif
