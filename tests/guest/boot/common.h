/* common.h - what the protocol test kernels share, written as a tutorial kernel would: COM1
 * (initialised and self-tested as OSDev's "Serial Ports" page shows), the VGA text buffer, and
 * QEMU's isa-debug-exit at port 0xf4 to end the run. 32-bit and 64-bit. No slate headers: these
 * kernels know only their boot protocol. */
#ifndef BOOT_COMMON_H
#define BOOT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define COM1 0x3F8
#define EXIT_PORT 0xF4

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* 38400 baud, 8N1, FIFO on; then the loopback self-test. Returns 0 when the chip answers. */
static inline int com1_init(void)
{
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x80);
    outb(COM1 + 0, 0x03);
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);
    outb(COM1 + 2, 0xC7);
    outb(COM1 + 4, 0x0B);
    outb(COM1 + 4, 0x1E); /* loopback */
    outb(COM1 + 0, 0xAE);
    if (inb(COM1 + 0) != 0xAE)
        return -1;
    outb(COM1 + 4, 0x0F);
    return 0;
}

static inline void putc_com1(char c)
{
    while (!(inb(COM1 + 5) & 0x20))
        ;
    outb(COM1, (uint8_t)c);
}

static inline void puts_com1(const char *s)
{
    while (*s)
        putc_com1(*s++);
}

static inline void put_hex(uint64_t v)
{
    puts_com1("0x");
    int shift = 60;
    while (shift > 0 && !((v >> shift) & 0xF))
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        putc_com1("0123456789abcdef"[(v >> shift) & 0xF]);
}

static inline void put_dec(uint32_t v)
{
    char buf[12];
    int n = 0;
    do
        buf[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < 11);
    while (n)
        putc_com1(buf[--n]);
}

/* Text at the top-left of the VGA buffer, in colour attribute attr. */
static inline void vga_puts(volatile uint16_t *vga, const char *s, uint8_t attr)
{
    for (int i = 0; s[i]; i++)
        vga[i] = (uint16_t)((uint8_t)s[i] | attr << 8);
}

static inline void fill_rect(uintptr_t fb, uint32_t pitch, uint32_t w, uint32_t h, uint32_t rgb)
{
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            ((volatile uint32_t *)(fb + y * pitch))[x] = rgb;
}

/* What many kernels do first, before they read the boot information: their first page tables,
 * a stack canary or a per-CPU block at 0x1000. GRUB never puts the information there (it uses
 * 0x10000 and up), so kernels are written expecting that page free. */
static inline void scribble_low_page(void)
{
    for (uintptr_t a = 0x1000; a < 0x2000; a += 4)
        *(volatile uint32_t *)a = 0xDEADC0DE;
}

static inline __attribute__((noreturn)) void exit_qemu(uint8_t code)
{
    outb(EXIT_PORT, code); /* status (code << 1) | 1 under --exit-port 0xf4 */
    for (;;)
        __asm__ volatile("cli; hlt");
}

static inline int str_eq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

#endif
