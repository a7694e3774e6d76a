/* trace.h - --trace (one line per event, with the vCPU and RIP) and --stats (a table of exits
 * at the end). Both cost one predictable branch per exit when they are off. */
#ifndef SLATE_TRACE_H
#define SLATE_TRACE_H

#include "bus.h"

#include <stdint.h>
#include <stdio.h>

enum trace_kind { TRACE_IO = 1, TRACE_MMIO = 2, TRACE_HYPERCALL = 4, TRACE_IRQ = 8, TRACE_EXC = 16 };

/* "io,mmio,hypercall,irq,exc[=VECTORS]" or "all" into a mask, and exc's vectors (exctrace.h:
 * names joined with '+', default df+pf+gp+ud) into *exc_vectors; 0, or -1 and a message in err on
 * a bad name. */
int trace_parse(const char *list, unsigned *mask, uint32_t *exc_vectors, char *err, size_t errlen);

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
