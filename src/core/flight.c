/* flight.c - see flight.h. */
#include "flight.h"

#include <stdio.h>
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

/* A byte written to the port the CPU's last event wrote bytes to: added to that event. Only the
 * CPU that owns the newest event appends to it, so no other CPU writes that slot meanwhile. */
static bool fold_byte(struct flight_recorder *fr, uint32_t cpu, uint64_t port, uint8_t byte)
{
    uint64_t n = atomic_load_explicit(&fr->next, memory_order_relaxed);
    if (!n)
        return false;
    struct flight_event *last = &fr->events[(n - 1) % fr->size];
    if (last->kind != FLIGHT_OUT || last->cpu != cpu || last->addr != port || !last->text_len ||
        last->text_len == FLIGHT_TEXT || last->text[last->text_len - 1] == '\n')
        return false;
    last->text[last->text_len++] = (char)byte;
    last->value = byte;
    last->ns = clock_now_ns();
    return true;
}

void flight_record(struct flight_recorder *fr, enum flight_kind kind, uint32_t cpu, uint64_t addr,
                   uint64_t value, uint8_t width)
{
    if (!fr->size)
        return;
    bool byte_out = kind == FLIGHT_OUT && width == 1;
    if (byte_out && fold_byte(fr, cpu, addr, (uint8_t)value))
        return;
    uint64_t n = atomic_fetch_add_explicit(&fr->next, 1, memory_order_relaxed);
    fr->events[n % fr->size] = (struct flight_event){clock_now_ns(), cpu, (uint8_t)kind, width, addr, value,
                                                     byte_out, {(char)(byte_out ? value : 0)}};
}

void flight_text(const struct flight_event *e, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < e->text_len && used + 5 < len; i++) {
        unsigned char c = (unsigned char)e->text[i];
        const char *esc = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '"' ? "\\\"" : c == '\\' ? "\\\\" : NULL;
        if (esc)
            used += (size_t)snprintf(buf + used, len - used, "%s", esc);
        else if (c >= 0x20 && c < 0x7F)
            buf[used++] = (char)c, buf[used] = 0;
        else
            used += (size_t)snprintf(buf + used, len - used, "\\x%02x", c);
    }
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
