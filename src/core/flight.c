/* flight.c - see flight.h. */
#include "flight.h"

#include <stdlib.h>

#include "log.h"

bool flight_init(struct flight_recorder *fr, unsigned size)
{
    *fr = (struct flight_recorder){.size = size};
    if (!size)
        return true;
    fr->events = calloc(size, sizeof(*fr->events));
    return fr->events != NULL;
}

void flight_free(struct flight_recorder *fr)
{
    free(fr->events);
    *fr = (struct flight_recorder){0};
}

void flight_record(struct flight_recorder *fr, enum flight_kind kind, uint32_t cpu, uint64_t addr,
                   uint64_t value, uint8_t width)
{
    if (!fr->size)
        return;
    uint64_t n = atomic_fetch_add_explicit(&fr->next, 1, memory_order_relaxed);
    fr->events[n % fr->size] = (struct flight_event){clock_now_ns(), cpu, (uint8_t)kind, width, addr, value};
}

unsigned flight_each(const struct flight_recorder *fr, void (*fn)(void *ctx, const struct flight_event *e),
                     void *ctx)
{
    uint64_t next = atomic_load(&fr->next);
    uint64_t first = next > fr->size ? next - fr->size : 0;
    for (uint64_t i = first; i < next; i++)
        fn(ctx, &fr->events[i % fr->size]);
    return (unsigned)(next - first);
}

const char *flight_kind_name(enum flight_kind kind)
{
    static const char *const names[] = {"in", "out", "mmio read", "mmio write", "hypercall", "irq", "exception"};
    return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}
