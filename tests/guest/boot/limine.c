/* A Limine kernel as the protocol's specification and limine-c-template write one: requests in
 * their own section between the markers, base revision 3, entered in 64-bit mode in the higher
 * half. It prints every response through COM1, draws on the framebuffer, starts the other CPUs
 * through their goto_address, and exits through isa-debug-exit. */
#include "common.h"

#define COMMON_MAGIC 0xc7b1dd30df4c8b88, 0x0a82e883a194f07b
#define REQUEST __attribute__((used, section(".limine_requests"))) static volatile

struct file {
    uint64_t revision;
    void *address;
    uint64_t size;
    char *path, *string;
    uint32_t media_type, unused;
    uint8_t rest[64];
};
struct memmap_entry {
    uint64_t base, length, type;
};
struct framebuffer {
    void *address;
    uint64_t width, height, pitch;
    uint16_t bpp;
    uint8_t memory_model, red_size, red_shift, green_size, green_shift, blue_size, blue_shift;
};
struct mp_info {
    uint32_t processor_id, lapic_id;
    uint64_t reserved;
    void (*goto_address)(struct mp_info *);
    uint64_t extra_argument;
};

struct request {
    uint64_t id[4];
    uint64_t revision;
    void *response;
    uint64_t extra[3];
};

__attribute__((used, section(".limine_requests_start"))) static volatile uint64_t start_marker[4] = {
    0xf6b8f4b39de7d1ae, 0xfab91a6940fcb9cf, 0x785c6ed015d3e316, 0x181e920a7852b9d9};
REQUEST uint64_t base_revision[3] = {0xf9562b2d5c95a6c8, 0x6a7b384944536bdc, 3};
REQUEST struct request bootloader_info = {{COMMON_MAGIC, 0xf55038d8e2a1202f, 0x279426fcf5f59740}, 0, 0, {0}};
REQUEST struct request hhdm = {{COMMON_MAGIC, 0x48dcf1cb8ad2b852, 0x63984e959a98244b}, 0, 0, {0}};
REQUEST struct request memmap = {{COMMON_MAGIC, 0x67cf3d9d378a806f, 0xe304acdfc50c3c62}, 0, 0, {0}};
REQUEST struct request framebuffer = {{COMMON_MAGIC, 0x9d5827dcd881dd75, 0xa3148604f6fab11b}, 0, 0, {0}};
REQUEST struct request modules = {{COMMON_MAGIC, 0x3e7e279702be32af, 0xca1c4f3bd1280cee}, 0, 0, {0}};
REQUEST struct request exec_address = {{COMMON_MAGIC, 0x71ba76863cc55f63, 0xb2644a48c516a487}, 0, 0, {0}};
REQUEST struct request exec_file = {{COMMON_MAGIC, 0xad97e90e83f1ed67, 0x31eb5d1c5ff23b69}, 0, 0, {0}};
REQUEST struct request cmdline = {{COMMON_MAGIC, 0x4b161536e598651e, 0xb390ad4a2f1f303a}, 0, 0, {0}};
REQUEST struct request mp = {{COMMON_MAGIC, 0x95a67b819a1b857e, 0xa0b61b723b6a73e0}, 0, 0, {0}};
REQUEST struct request stack_size = {{COMMON_MAGIC, 0x224ef0460a8e8926, 0xe1cb0fc25f46ea3d}, 0, 0, {128 * 1024}};
REQUEST struct request paging_mode = {{COMMON_MAGIC, 0x95c1a0edab0944cb, 0xa4e5cb3842f7488a}, 1, 0, {0, 0, 0}};
REQUEST struct request boot_time = {{COMMON_MAGIC, 0x502746e184c088aa, 0xfbc5ec83e6327893}, 0, 0, {0}};
REQUEST struct request rsdp = {{COMMON_MAGIC, 0xc5e77b6b397e7b43, 0x27637845accdcf3c}, 0, 0, {0}};
__attribute__((used, section(".limine_requests_end"))) static volatile uint64_t end_marker[2] = {
    0xadc0e0531bb10d03, 0x9572709f31764c62};

static volatile uint32_t aps_up;
static const char in_rodata[] = "rodata";

static void ap_main(struct mp_info *info)
{
    __atomic_fetch_add(&aps_up, (uint32_t)info->extra_argument, __ATOMIC_SEQ_CST);
    for (;;)
        __asm__ volatile("cli; hlt");
}

#define RESPONSE(req, type) ((type *)(req).response)

static void show_memmap(void)
{
    uint64_t *r = RESPONSE(memmap, uint64_t);
    struct memmap_entry **e = (struct memmap_entry **)r[2];
    uint64_t usable = 0, last = 0;
    int sorted = 1, aligned = 1;
    for (uint64_t i = 0; i < r[1]; i++) {
        if (e[i]->type == 0)
            usable += e[i]->length;
        if ((e[i]->type == 0 || e[i]->type == 5) && ((e[i]->base | e[i]->length) & 0xFFF))
            aligned = 0;
        sorted &= e[i]->base >= last;
        last = e[i]->base + e[i]->length;
        puts_com1("memmap: "), put_hex(e[i]->base), puts_com1(" + "), put_hex(e[i]->length);
        puts_com1(" type "), put_dec((uint32_t)e[i]->type), puts_com1("\n");
    }
    puts_com1(sorted ? "memmap: sorted" : "memmap: NOT sorted");
    puts_com1(aligned ? ", usable and reclaimable page-aligned\n" : ", misaligned\n");
    puts_com1("memmap: usable MiB "), put_dec((uint32_t)(usable >> 20)), puts_com1("\n");
}

static void start_aps(void)
{
    uint64_t *r = RESPONSE(mp, uint64_t);
    uint64_t count = r[2]; /* revision, flags and bsp_lapic_id, cpu_count, cpus */
    struct mp_info **cpus = (struct mp_info **)r[3];
    puts_com1("mp: "), put_dec((uint32_t)count), puts_com1(" CPUs, BSP LAPIC ID "), put_dec(((uint32_t *)r)[3]);
    puts_com1("\n");
    for (uint64_t i = 1; i < count; i++) {
        cpus[i]->extra_argument = 1;
        __atomic_store_n(&cpus[i]->goto_address, ap_main, __ATOMIC_SEQ_CST);
    }
    for (uint64_t spins = 0; aps_up < count - 1 && spins < 100000000; spins++)
        __asm__ volatile("pause");
    puts_com1("mp: "), put_dec(aps_up), puts_com1(" APs ran their goto_address\n");
}

void kmain(void);
void kmain(void)
{
    if (com1_init())
        exit_qemu(2);
    uint64_t rsp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(rsp));
    puts_com1("limine: entered at "), put_hex((uint64_t)kmain), puts_com1("\n");
    /* An absolute pointer in data: in a position-independent kernel, a relocation the boot loader
     * must apply (with the slide) before the first instruction. */
    static const char *volatile relocated = "data pointers relocated";
    puts_com1("pointer: "), puts_com1(relocated), puts_com1("\n");
    puts_com1(base_revision[2] == 0 ? "base revision 3 supported" : "base revision NOT supported");
    puts_com1(", loaded revision "), put_dec((uint32_t)base_revision[1]), puts_com1("\n");
    if (bootloader_info.response) {
        char **bi = (char **)bootloader_info.response;
        puts_com1("bootloader: "), puts_com1(bi[1]), puts_com1(" "), puts_com1(bi[2]), puts_com1("\n");
    }
    if (boot_time.response) /* int64_t seconds since 1970, after the revision */
        puts_com1("boot time: "), put_dec((uint32_t)RESPONSE(boot_time, int64_t)[1]), puts_com1("\n");
    uint64_t off = hhdm.response ? RESPONSE(hhdm, uint64_t)[1] : 0;
    puts_com1("hhdm: "), put_hex(off), puts_com1("\n");
    puts_com1("stack: "), puts_com1(rsp >= off && rsp < 0xffffffff80000000 ? "in the HHDM" : "elsewhere");
    puts_com1(stack_size.response ? ", size request answered\n" : "\n");
    if (exec_address.response)
        puts_com1("kernel: phys "), put_hex(RESPONSE(exec_address, uint64_t)[1]), puts_com1(" virt "),
            put_hex(RESPONSE(exec_address, uint64_t)[2]), puts_com1("\n");
    if (exec_file.response) {
        struct file *f = RESPONSE(exec_file, struct file *)[1];
        const uint8_t *elf = f->address;
        puts_com1("file: "), puts_com1(f->path), puts_com1(elf[1] == 'E' && elf[2] == 'L' ? " (ELF)" : " (?)");
        puts_com1(" string '"), puts_com1(f->string), puts_com1("'\n");
    }
    if (cmdline.response)
        puts_com1("cmdline: "), puts_com1(RESPONSE(cmdline, char *)[1]), puts_com1("\n");
    if (modules.response) {
        uint64_t *r = RESPONSE(modules, uint64_t);
        struct file **m = (struct file **)r[2];
        for (uint64_t i = 0; i < r[1]; i++) {
            puts_com1("module: "), puts_com1(m[i]->path), puts_com1(" size "), put_dec((uint32_t)m[i]->size);
            puts_com1(" starts "), putc_com1(*(const char *)m[i]->address);
            puts_com1(" string '"), puts_com1(m[i]->string), puts_com1("'\n");
        }
    }
    if (memmap.response)
        show_memmap();
    puts_com1(paging_mode.response ? "paging: 4-level\n" : "paging: no response\n");
    puts_com1(rsdp.response ? "rsdp: answered\n" : "rsdp: no response (no ACPI)\n");
    const char *info = (const char *)(off + 0xC0000000);
    puts_com1(info[0] == 'S' && info[7] == 'H' ? "slate info block: through the HHDM\n" : "slate info block: missing\n");
    puts_com1("rodata: "), puts_com1(in_rodata), puts_com1("\n");
    if (framebuffer.response) {
        uint64_t *r = RESPONSE(framebuffer, uint64_t);
        struct framebuffer *fb = ((struct framebuffer **)r[2])[0];
        puts_com1("framebuffer: "), put_dec((uint32_t)fb->width), puts_com1("x"), put_dec((uint32_t)fb->height);
        puts_com1(" bpp "), put_dec(fb->bpp), puts_com1(" red at "), put_dec(fb->red_shift), puts_com1("\n");
        fill_rect((uintptr_t)fb->address, (uint32_t)fb->pitch, 100, 100, 0x00FF00);
    } else {
        puts_com1("framebuffer: none\n");
    }
    if (mp.response)
        start_aps();
    puts_com1("done\n");
    exit_qemu(0x12);
}
