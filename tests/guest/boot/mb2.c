/* A Multiboot2 kernel as the Multiboot2 Specification's example shows: 32-bit protected mode,
 * EAX = 0x36d76289, EBX = the boot information, walked tag by tag. It prints what it was given
 * through COM1, shows it on the screen (the VGA text buffer, or the framebuffer it asked for with
 * WANT_FB), and exits through QEMU's isa-debug-exit. Built as ELF32, and as ELF64 (objcopy) with
 * WANT_FB. */
#include "common.h"

struct tag {
    uint32_t type, size;
};

#define SLATE_TAG 0x534C4154u

static uint32_t fb_type = 2;
static uint64_t fb_addr = 0xB8000;
static uint32_t fb_pitch, fb_width, fb_height;

static void show_tag(const struct tag *t)
{
    const uint8_t *body = (const uint8_t *)t + 8;
    const uint32_t *w = (const uint32_t *)body;
    switch (t->type) {
    case 1: puts_com1("cmdline: "), puts_com1((const char *)body), puts_com1("\n"); break;
    case 2: puts_com1("loader: "), puts_com1((const char *)body), puts_com1("\n"); break;
    case 3:
        puts_com1("module: "), puts_com1((const char *)(body + 8)), puts_com1(" size "), put_dec(w[1] - w[0]);
        puts_com1(w[0] & 0xFFF ? " unaligned" : " page-aligned");
        puts_com1(" starts "), putc_com1(*(const char *)(uintptr_t)w[0]), puts_com1("\n");
        break;
    case 4: puts_com1("meminfo: lower "), put_dec(w[0]), puts_com1(" KiB, upper "), put_dec(w[1]), puts_com1(" KiB\n"); break;
    case 6: {
        uint32_t entry_size = w[0], n = (t->size - 16) / entry_size;
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *e = body + 8 + i * entry_size;
            puts_com1("mmap: "), put_hex(*(const uint64_t *)e), puts_com1(" + "), put_hex(*(const uint64_t *)(e + 8));
            puts_com1(" type "), put_dec(*(const uint32_t *)(e + 16)), puts_com1("\n");
        }
        break;
    }
    case 8:
        fb_addr = *(const uint64_t *)body, fb_pitch = w[2], fb_width = w[3], fb_height = w[4];
        fb_type = body[21];
        puts_com1("framebuffer: type "), put_dec(fb_type), puts_com1(" "), put_dec(fb_width), puts_com1("x");
        put_dec(fb_height), puts_com1(" bpp "), put_dec(body[20]), puts_com1("\n");
        break;
    case SLATE_TAG: {
        const char *magic = (const char *)(uintptr_t) * (const uint64_t *)body;
        puts_com1("slate tag: info block at "), put_hex((uintptr_t)magic);
        puts_com1(magic[0] == 'S' && magic[7] == 'H' ? " (SLATEMCH)\n" : " (bad magic)\n");
        break;
    }
    default: puts_com1("tag "), put_dec(t->type), puts_com1("\n");
    }
}

void kmain(uint32_t magic, uint32_t info);
void kmain(uint32_t magic, uint32_t info)
{
    if (com1_init())
        exit_qemu(2);
    if (magic != 0x36D76289) {
        puts_com1("bad magic "), put_hex(magic), puts_com1("\n");
        exit_qemu(1);
    }
    puts_com1(sizeof(void *) == 4 ? "multiboot2: magic ok, 32-bit code\n" : "?\n");
    scribble_low_page();
    puts_com1("info at "), put_hex(info), puts_com1("\n");
    puts_com1(info & 7 ? "info: misaligned\n" : "info: 8-byte aligned\n");
    uint32_t total = *(const uint32_t *)(uintptr_t)info;
    for (uint32_t off = 8; off + 8 <= total;) {
        const struct tag *t = (const struct tag *)(uintptr_t)(info + off);
        if (t->type == 0)
            break;
        show_tag(t);
        off += (t->size + 7) & ~7u;
    }
    if (fb_type == 1)
        fill_rect((uintptr_t)fb_addr, fb_pitch, 100, 100, 0xFF0000);
    else
        vga_puts((volatile uint16_t *)(uintptr_t)fb_addr, "Hello from Multiboot2", 0x1F);
    puts_com1("done\n");
    exit_qemu(0x10);
}
