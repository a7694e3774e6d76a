/* kernel.h - the slate demo OS: what its files share.
 *
 * The demo is a small, complete kernel for the slate machine (docs/machine.md). boot.S takes the
 * CPU from real mode to long mode; main.c finds the devices through the info block and starts
 * everything; one file per device holds its driver; shell.c is the command line that runs on the
 * serial console and on the screen. It is written to be read: each driver is what a guest author
 * needs to drive that device, and nothing more.
 */
#ifndef DEMO_KERNEL_H
#define DEMO_KERNEL_H

#include "slate/guest.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_CPUS 64

/* Interrupt vectors. Each device gets its own; the timer ticks CPU 0, which passes the tick on to
 * the others with an IPI. */
#define VEC_TICK 0x20
#define VEC_TICK_IPI 0x21
#define VEC_SERIAL 0x30
#define VEC_KEYBOARD 0x31
#define VEC_POINTER 0x32
#define VEC_NET 0x33
#define VEC_BLOCK 0x34

#define TICK_HZ 100

/* ---- CPU primitives (x86.h in a bigger kernel) ---- */
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void pause(void) { __asm__ volatile("pause"); }

/* Sleeps until an interrupt arrives, unless `cond` already holds. Interrupts must be off when it
 * is called (so no wake-up slips in between the test and the HLT: `sti; hlt` is atomic). */
#define WAIT_UNTIL(cond)                                                                           \
    do {                                                                                           \
        cli();                                                                                     \
        while (!(cond))                                                                            \
            __asm__ volatile("sti; hlt; cli" ::: "memory");                                        \
        sti();                                                                                     \
    } while (0)

/* ---- lib.c: strings and formatting ---- */
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
const char *skip_spaces(const char *s);
bool parse_u64(const char **s, uint64_t *out);
bool parse_ipv4(const char **s, uint32_t *out);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- main.c: the machine ---- */
extern const struct slate_info *info;
const struct slate_device *device_find(uint16_t type);
const char *cmdline_option(const char *key);
void power_off(uint32_t code) __attribute__((noreturn));
void power_reset(void) __attribute__((noreturn));
void print_devices(void);
void print_memory(void);

/* ---- interrupts.c: IDT and local APIC ---- */
struct interrupt_frame;
void idt_init(void);
void idt_set(uint8_t vector, void (*handler)(struct interrupt_frame *));
void idt_load(void);
void lapic_init(void);
void lapic_eoi(void);
void lapic_send_ipi_others(uint8_t vector);
void irq_route(const struct slate_device *dev, unsigned line, uint8_t vector, uint32_t cpu);

/* ---- cpus.c: starting CPUs, per-CPU ticks ---- */
struct percpu {
    struct percpu *self; /* first, so %gs:0 gives the CPU its own struct */
    uint32_t index;
    uint32_t apic_id;
    volatile uint64_t ticks;
    volatile bool online;
};
extern struct percpu cpus[MAX_CPUS];
extern unsigned cpus_started;
void cpus_start_all(void);
void cpu_count_tick(void);
void print_cpus(void);

/* ---- timer.c: the scheduler tick and the clocks ---- */
void timer_init(void);
uint64_t clock_ns(void);
uint64_t wall_ns(void);
void sleep_ms(uint64_t ms);
void print_time(void);

/* ---- console.c: output to serial and screen, input from serial and keyboard ---- */
void console_init(void);
void console_write(const char *s, size_t len);
void console_put_input(char c);
int console_get_input(void);
bool console_input_pending(void);
bool console_input_ended(void);
void serial_init(void);
void serial_write(const char *s, size_t len);

/* ---- screen.c: text console and graphics on the display ---- */
bool screen_init(void);
void screen_write(const char *s, size_t len);
void screen_status(const char *text);
void screen_draw_demo(void);

/* ---- input.c: keyboard and pointer ---- */
void keyboard_init(void);
struct pointer_state {
    uint32_t x, y, buttons;
    int32_t wheel;
};
bool pointer_init(void);
bool pointer_take(struct pointer_state *out);

/* ---- net.c: the network card and a tiny IPv4 stack ---- */
void net_init(void);
void net_poll(void);
void net_ping(uint32_t dst, unsigned count);
void print_net(void);

/* ---- disk.c: the block device ---- */
void disk_init(void);
void disk_command(const char *args);

/* ---- shell.c ---- */
void shell_run(void) __attribute__((noreturn));

/* Everything the kernel waits for comes through here, so the network keeps answering while a
 * command waits (main.c). */
void kernel_poll(void);

#endif
