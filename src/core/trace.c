/* trace.c - the --trace log and the --stats table. */
#include "trace.h"

#include "exits.h"
#include "vm.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


void trace_event(struct vm *vm, struct vcpu *cpu, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    FILE *out = vm->trace_out ? vm->trace_out : stderr;
    if (cpu)
        fprintf(out, "slate: trace: cpu %u rip=%#llx: %s\n", cpu->index,
                (unsigned long long)cpu->run->s.regs.regs.rip, line);
    else
        fprintf(out, "slate: trace: %s\n", line);
}

static const char *reason_name(uint32_t reason)
{
    struct kvm_run run = {.exit_reason = reason};
    const char *what = "?";
    exit_classify(&run, &what);
    return what;
}

static void print_ranges(struct vm *vm, const struct vcpu_stats *sum, int kind)
{
    const struct bus *bus = kind ? &vm->mmio : &vm->pio;
    for (unsigned i = 0; i < bus->count; i++) {
        if (!sum->range_count[kind][i])
            continue;
        const struct bus_range *r = &bus->ranges[i];
        char where[64];
        snprintf(where, sizeof(where), "%s %s %#" PRIx64, r->name, kind ? "at" : "port", r->base);
        fprintf(stderr, "  %-36s %12" PRIu64 " %12.3f %10.2f\n", where, sum->range_count[kind][i],
                sum->range_ns[kind][i] / 1e6, sum->range_ns[kind][i] / 1e3 / sum->range_count[kind][i]);
    }
}

void stats_print(struct vm *vm)
{
    static struct vcpu_stats sum;
    memset(&sum, 0, sizeof(sum));
    uint64_t total = 0, total_ns = 0;
    for (unsigned c = 0; c < vm->vcpu_count; c++) {
        const struct vcpu_stats *s = vm->vcpus[c].stats;
        if (!s)
            continue;
        for (int i = 0; i < STATS_REASONS; i++) {
            sum.exits[i] += s->exits[i];
            sum.exit_ns[i] += s->exit_ns[i];
            total += s->exits[i];
            total_ns += s->exit_ns[i];
        }
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < BUS_MAX_RANGES; i++) {
                sum.range_count[k][i] += s->range_count[k][i];
                sum.range_ns[k][i] += s->range_ns[k][i];
            }
        sum.unclaimed += s->unclaimed;
    }
    fprintf(stderr, "slate: exit statistics: %" PRIu64 " exits to slate on %u CPUs, %.3f ms handling them\n",
            total, vm->vcpu_count, total_ns / 1e6);
    fprintf(stderr, "  %-36s %12s %12s %10s\n", "by reason", "count", "total ms", "mean us");
    for (int i = 0; i < STATS_REASONS; i++)
        if (sum.exits[i])
            fprintf(stderr, "  %-36s %12" PRIu64 " %12.3f %10.2f\n", reason_name((uint32_t)i),
                    sum.exits[i], sum.exit_ns[i] / 1e6, sum.exit_ns[i] / 1e3 / sum.exits[i]);
    fprintf(stderr, "  %-36s %12s %12s %10s\n", "by device", "count", "total ms", "mean us");
    print_ranges(vm, &sum, 0);
    print_ranges(vm, &sum, 1);
    if (sum.unclaimed)
        fprintf(stderr, "  %-36s %12" PRIu64 "\n", "unclaimed ports and addresses", sum.unclaimed);
    fprintf(stderr, "  %-36s %12" PRIu64 "\n", "interrupt routing updates",
            (uint64_t)atomic_load(&vm->routing_updates));
}
