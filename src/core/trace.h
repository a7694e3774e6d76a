/* trace.h - --trace (one line per event, with the vCPU and RIP) and --stats (a table of exits
 * at the end). Both cost one predictable branch per exit when they are off. */
#ifndef SLATE_TRACE_H
#define SLATE_TRACE_H

#include "bus.h"
#include "options.h"

#include <stdint.h>
#include <stdio.h>


struct vm;
struct vcpu;

/* Writes "slate: trace: cpu N rip=...: <message>" to the trace file. */
void trace_event(struct vm *vm, struct vcpu *cpu, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define STATS_REASONS 64

/* Per vCPU, so counting takes no lock; summed at the end. */
struct vcpu_stats {
    uint64_t exits[STATS_REASONS];
    uint64_t exit_ns[STATS_REASONS];
    uint64_t range_count[2][BUS_MAX_RANGES]; /* [0] ports, [1] MMIO, by bus range index */
    uint64_t range_ns[2][BUS_MAX_RANGES];
    uint64_t unclaimed;
};

/* Prints the --stats table for the machine to stderr. */
void stats_print(struct vm *vm);

#endif
