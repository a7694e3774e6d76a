/* guest.h - helpers for slate's 64-bit test kernels: port I/O, hypercalls, the info block,
 * printing, asserts that report file:line, and interrupt plumbing (IDT, local APIC). Freestanding:
 * every test kernel is a single C file that includes this and defines kmain. */
#ifndef SLATE_TEST_GUEST_H
#define SLATE_TEST_GUEST_H

#include "slate/guest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KMAIN __attribute__((section(".text.kmain"), used)) void

static inline uint32_t mmio_read32(uint64_t addr) { return *(volatile uint32_t *)addr; }
static inline void mmio_write32(uint64_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }

/* The three-argument hypercall most tests make (RBX 0). */
static inline int64_t hypercall(uint32_t fn, uint64_t a, uint64_t b, uint64_t c)
{
    return slate_hypercall(fn, a, b, c, 0);
}

static inline size_t str_len(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static inline bool str_eq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static inline void puts_hc(const char *s) { hypercall(SLATE_HC_CONSOLE_WRITE, (uint64_t)s, str_len(s), 0); }

static inline void put_hex(uint64_t v)
{
    char buf[19] = "0x";
    int n = 0;
    uint64_t t = v;
    do
        n++;
    while (t >>= 4);
    for (int i = 0; i < n; i++)
        buf[2 + n - 1 - i] = "0123456789abcdef"[(v >> (4 * i)) & 15];
    buf[2 + n] = 0;
    puts_hc(buf);
}

static inline void put_dec(int64_t v)
{
    char buf[24];
    int i = 23;
    bool neg = v < 0;
    uint64_t u = neg ? (uint64_t)-v : (uint64_t)v;
    buf[i] = 0;
    do
        buf[--i] = (char)('0' + u % 10);
    while (u /= 10);
    if (neg)
        buf[--i] = '-';
    puts_hc(buf + i);
}

static inline __attribute__((noreturn)) void guest_exit(uint32_t code)
{
    hypercall(SLATE_HC_EXIT, code, 0, 0);
    for (;;)
        __asm__ volatile("cli; hlt");
}

#define GUEST_ASSERT(cond)                                                                          \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            puts_hc("ASSERT FAILED " __FILE__ ":");                                               \
            put_dec(__LINE__);                                                                      \
            puts_hc(": " #cond "\n");                                                               \
            guest_exit(99);                                                                         \
        }                                                                                           \
    } while (0)

/* ---- the info block ---- */

/* ---- interrupts ---- */
struct idt_entry {
    uint16_t offset_lo, selector;
    uint8_t ist, type;
    uint16_t offset_mid;
    uint32_t offset_hi, zero;
};
static struct idt_entry idt[256] __attribute__((aligned(16)));

struct interrupt_frame;

static inline void idt_set(uint8_t vector, void (*handler)(struct interrupt_frame *))
{
    uint64_t a = (uint64_t)handler;
    idt[vector] = (struct idt_entry){(uint16_t)a, SLATE_SEL_CODE64, 0, 0x8E, (uint16_t)(a >> 16),
                                     (uint32_t)(a >> 32), 0};
}

static inline void idt_load(void)
{
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } d = {sizeof(idt) - 1, (uint64_t)idt};
    __asm__ volatile("lidt %0" ::"m"(d));
}

#define LAPIC_ID 0x20
#define LAPIC_EOI 0xB0
#define LAPIC_SVR 0xF0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CURRENT 0x390
#define LAPIC_TIMER_DIVIDE 0x3E0
static inline void lapic_enable(void) { mmio_write32(SLATE_LAPIC_ADDR + LAPIC_SVR, 0x1FF); }
static inline void lapic_eoi(void) { mmio_write32(SLATE_LAPIC_ADDR + LAPIC_EOI, 0); }

/* Sends ICR command `low` (vector, delivery mode, level) to the CPU with APIC ID `apic_id`. */
static inline void lapic_send(uint32_t apic_id, uint32_t low)
{
    mmio_write32(SLATE_LAPIC_ADDR + LAPIC_ICR_HI, apic_id << 24);
    mmio_write32(SLATE_LAPIC_ADDR + LAPIC_ICR_LO, low);
}
static inline void send_ipi(uint32_t apic_id, uint8_t vector) { lapic_send(apic_id, 0x4000 | vector); }

static inline uint32_t cpu_index(void) { return slate_inl(SLATE_CPU_INDEX_PORT); }

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* Halts until `cond` holds; interrupts do the waking. sti;hlt is atomic: no wake-up is lost. */
#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        __asm__ volatile("cli");                                                                   \
        while (!(cond)) {                                                                          \
            __asm__ volatile("sti; hlt; cli" ::: "memory");                                        \
        }                                                                                          \
        __asm__ volatile("sti");                                                                   \
    } while (0)

static inline const char *cmdline(const struct slate_info *info) { return slate_cmdline(info); }

static inline bool str_starts(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return false;
    return true;
}

/* The decimal number after `key` ("ops=") in the command line, or fallback when it is absent. */
static inline uint64_t cmdline_number(const char *cmd, const char *key, uint64_t fallback)
{
    for (const char *p = cmd; *p; p++) {
        if ((p == cmd || p[-1] == ' ') && str_starts(p, key)) {
            uint64_t v = 0;
            for (p += str_len(key); *p >= '0' && *p <= '9'; p++)
                v = v * 10 + (uint64_t)(*p - '0');
            return v;
        }
    }
    return fallback;
}

#endif
