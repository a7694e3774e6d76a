/* A Multiboot (1) kernel as the Multiboot Specification's example and OSDev's "Bare Bones" show
 * it: EAX = 0x2BADB002, EBX = struct multiboot_info, whose flags say which fields are there. It
 * prints them through COM1, writes the VGA text buffer and exits through isa-debug-exit. */
#include "common.h"

struct multiboot_info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr, drives_length, drives_addr, config_table, boot_loader_name;
    uint32_t apm_table, vbe_control_info, vbe_mode_info;
    uint16_t vbe_mode, vbe_interface_seg, vbe_interface_off, vbe_interface_len;
    uint64_t framebuffer_addr;
    uint32_t framebuffer_pitch, framebuffer_width, framebuffer_height;
    uint8_t framebuffer_bpp, framebuffer_type;
} __attribute__((packed));

struct module {
    uint32_t mod_start, mod_end, string, reserved;
};

/* The CMOS clock as OSDev's "CMOS" page reads it: wait out an update, then BCD registers. */
static uint8_t cmos(uint8_t reg)
{
    outb(0x70, reg);
    return inb(0x71);
}

static void put_bcd(uint8_t v) { putc_com1((char)('0' + (v >> 4))), putc_com1((char)('0' + (v & 15))); }

static void show_cmos_time(void)
{
    while (cmos(0x0A) & 0x80) /* update in progress */
        ;
    uint8_t sec = cmos(0), min = cmos(2), hour = cmos(4), day = cmos(7), month = cmos(8), year = cmos(9);
    uint8_t century = cmos(0x32), status_b = cmos(0x0B);
    puts_com1("cmos: "), put_bcd(century), put_bcd(year), putc_com1('-'), put_bcd(month), putc_com1('-');
    put_bcd(day), putc_com1(' '), put_bcd(hour), putc_com1(':'), put_bcd(min), putc_com1(':'), put_bcd(sec);
    puts_com1(status_b & 0x04 ? " binary" : " bcd"), puts_com1(status_b & 0x02 ? " 24h\n" : " 12h\n");
}

void kmain(uint32_t magic, const struct multiboot_info *mbi);
void kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    if (com1_init())
        exit_qemu(2);
    if (magic != 0x2BADB002) {
        puts_com1("bad magic "), put_hex(magic), puts_com1("\n");
        exit_qemu(1);
    }
    scribble_low_page();
    puts_com1("info at "), put_hex((uintptr_t)mbi), puts_com1("\n");
    puts_com1("multiboot: magic ok, flags "), put_hex(mbi->flags), puts_com1("\n");
    if (mbi->flags & (1 << 0))
        puts_com1("meminfo: lower "), put_dec(mbi->mem_lower), puts_com1(" KiB, upper "), put_dec(mbi->mem_upper), puts_com1(" KiB\n");
    if (mbi->flags & (1 << 2))
        puts_com1("cmdline: "), puts_com1((const char *)(uintptr_t)mbi->cmdline), puts_com1("\n");
    if (mbi->flags & (1 << 3)) {
        const struct module *m = (const struct module *)(uintptr_t)mbi->mods_addr;
        for (uint32_t i = 0; i < mbi->mods_count; i++) {
            puts_com1("module: "), puts_com1((const char *)(uintptr_t)m[i].string);
            puts_com1(" size "), put_dec(m[i].mod_end - m[i].mod_start);
            puts_com1(m[i].mod_start & 0xFFF ? " unaligned" : " page-aligned");
            puts_com1(" starts "), putc_com1(*(const char *)(uintptr_t)m[i].mod_start), puts_com1("\n");
        }
    }
    if (mbi->flags & (1 << 6))
        for (uint32_t off = 0; off < mbi->mmap_length;) {
            const uint8_t *e = (const uint8_t *)(uintptr_t)(mbi->mmap_addr + off);
            puts_com1("mmap: "), put_hex(*(const uint64_t *)(e + 4)), puts_com1(" + "), put_hex(*(const uint64_t *)(e + 12));
            puts_com1(" type "), put_dec(*(const uint32_t *)(e + 20)), puts_com1("\n");
            off += *(const uint32_t *)e + 4;
        }
    if (mbi->flags & (1 << 9))
        puts_com1("loader: "), puts_com1((const char *)(uintptr_t)mbi->boot_loader_name), puts_com1("\n");
    if (mbi->flags & (1 << 12))
        puts_com1("framebuffer: type "), put_dec(mbi->framebuffer_type), puts_com1(" at "), put_hex(mbi->framebuffer_addr), puts_com1("\n");
    show_cmos_time();
    outb(0x21, 0xFF), outb(0xA1, 0xFF); /* mask the 8259 PICs, as tutorials do first */
    (void)inb(0x64);                    /* and look at the PS/2 controller */
    vga_puts((volatile uint16_t *)0xB8000, "Hello from Multiboot", 0x2F);
    puts_com1("done\n");
    exit_qemu(0x11);
}
