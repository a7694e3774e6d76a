/* flight.c - see flight.h. */
#include "flight.h"

#include "log.h"

void flight_record(struct flight_recorder *fr, enum flight_kind kind, uint32_t cpu, uint64_t addr,
                   uint64_t value, uint8_t width)
{
    uint64_t n = atomic_fetch_add_explicit(&fr->next, 1, memory_order_relaxed);
    fr->events[n % FLIGHT_EVENTS] = (struct flight_event){clock_now_ns(), cpu, (uint8_t)kind, width, addr, value};
}

unsigned flight_each(const struct flight_recorder *fr, void (*fn)(void *ctx, const struct flight_event *e),
                     void *ctx)
{
    uint64_t next = atomic_load(&fr->next);
    uint64_t first = next > FLIGHT_EVENTS ? next - FLIGHT_EVENTS : 0;
    for (uint64_t i = first; i < next; i++)
        fn(ctx, &fr->events[i % FLIGHT_EVENTS]);
    return (unsigned)(next - first);
}

const char *flight_kind_name(enum flight_kind kind)
{
    static const char *const names[] = {"in", "out", "mmio read", "mmio write", "hypercall", "irq", "exception"};
    return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}
