/* multiboot.c - Multiboot 1 and Multiboot2 kernels, as GRUB boots them (the Multiboot
 * Specification 0.6.96 and the Multiboot2 Specification 2.0). Every field read from the file is
 * checked against the file's size before use; the boot information is written to low RAM that
 * no image occupies. */
#include "multiboot.h"

#include "device.h"
#include "log.h"
#include "slate/slate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The lowest address of the boot information, as GRUB 2 places it. */
#define MB_INFO_FLOOR 0x10000

#define MB2_SEARCH 32768
#define MB1_SEARCH 8192

/* Multiboot 1 header flags */
#define MB1_PAGE_ALIGN (1u << 0)
#define MB1_MEMORY_INFO (1u << 1)
#define MB1_VIDEO_MODE (1u << 2)
#define MB1_AOUT_KLUDGE (1u << 16)
#define MB1_KNOWN_REQUIRED (MB1_PAGE_ALIGN | MB1_MEMORY_INFO | MB1_VIDEO_MODE)

/* Multiboot 1 information flags */
#define MB1_INFO_MEMORY (1u << 0)
#define MB1_INFO_CMDLINE (1u << 2)
#define MB1_INFO_MODS (1u << 3)
#define MB1_INFO_MMAP (1u << 6)
#define MB1_INFO_LOADER_NAME (1u << 9)
#define MB1_INFO_FRAMEBUFFER (1u << 12)
#define MB1_INFO_SIZE 116

/* Multiboot2 header tags */
enum {
    MB2_HT_END = 0,
    MB2_HT_INFO_REQUEST = 1,
    MB2_HT_ADDRESS = 2,
    MB2_HT_ENTRY = 3,
    MB2_HT_CONSOLE = 4,
    MB2_HT_FRAMEBUFFER = 5,
    MB2_HT_MODULE_ALIGN = 6,
    MB2_HT_EFI_BS = 7,
    MB2_HT_EFI_I386_ENTRY = 8,
    MB2_HT_EFI_AMD64_ENTRY = 9,
    MB2_HT_RELOCATABLE = 10,
};
#define MB2_HT_OPTIONAL 1u

/* Multiboot2 information tags slate writes */
enum {
    MB2_IT_END = 0,
    MB2_IT_CMDLINE = 1,
    MB2_IT_LOADER_NAME = 2,
    MB2_IT_MODULE = 3,
    MB2_IT_BASIC_MEMINFO = 4,
    MB2_IT_MMAP = 6,
    MB2_IT_FRAMEBUFFER = 8,
    MB2_IT_LOAD_BASE = 21,
};

#define FB_TYPE_RGB 1
#define FB_TYPE_EGA_TEXT 2

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

bool multiboot_find_header(const uint8_t *data, size_t size, bool v2, size_t *offset)
{
    size_t limit = size < (v2 ? MB2_SEARCH : MB1_SEARCH) ? size : (v2 ? MB2_SEARCH : MB1_SEARCH);
    for (size_t off = 0; off + (v2 ? 16 : 12) <= limit; off += v2 ? 8 : 4) {
        const uint8_t *h = data + off;
        if (get32(h) != (v2 ? MB2_HEADER_MAGIC : MB1_HEADER_MAGIC))
            continue;
        uint32_t sum = get32(h) + get32(h + 4) + get32(h + 8) + (v2 ? get32(h + 12) : 0);
        if (sum != 0)
            continue;
        if (v2 && (get32(h + 8) < 16 || get32(h + 8) > size - off))
            continue; /* header_length must cover the fixed part and lie inside the file */
        *offset = off;
        return true;
    }
    return false;
}

/* The "a.out kludge": the header's physical addresses say what part of the file goes where. */
struct load_addresses {
    uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

static int load_by_addresses(struct guest_memory *mem, const char *name, const uint8_t *data,
                             size_t size, size_t header_off, const struct load_addresses *a,
                             struct boot_plan *plan, char *err, size_t errlen)
{
    if (a->header_addr < a->load_addr || a->header_addr - a->load_addr > header_off)
        return error_text(err, errlen, "header_addr %#x and load_addr %#x put the load before the "
                          "start of the file", a->header_addr, a->load_addr);
    size_t file_start = header_off - (a->header_addr - a->load_addr);
    uint64_t filesz = size - file_start;
    if (a->load_end_addr) {
        if (a->load_end_addr < a->load_addr || a->load_end_addr - a->load_addr > size - file_start)
            return error_text(err, errlen, "load_end_addr %#x is outside the file", a->load_end_addr);
        filesz = a->load_end_addr - a->load_addr;
    }
    uint64_t memsz = filesz;
    if (a->bss_end_addr) {
        if (a->bss_end_addr < a->load_addr + filesz)
            return error_text(err, errlen, "bss_end_addr %#x is below the end of the load",
                              a->bss_end_addr);
        memsz = a->bss_end_addr - a->load_addr;
    }
    if (memsz == 0)
        return error_text(err, errlen, "the header's addresses load nothing");
    if (a->entry_addr < a->load_addr || a->entry_addr - a->load_addr >= memsz)
        return error_text(err, errlen, "entry_addr %#x is outside the loaded [%#x, %#llx)",
                          a->entry_addr, a->load_addr, (unsigned long long)(a->load_addr + memsz));
    plan->entry = ENTRY_PROTECTED;
    plan->entry_point = a->entry_addr;
    return loader_copy_image(mem, plan, name, data + file_start, filesz, a->load_addr, memsz,
                             SLATE_IMAGE_KERNEL, err, errlen);
}

static int load_elf_kernel(struct guest_memory *mem, const char *name, const uint8_t *data,
                           size_t size, const char *which, struct boot_plan *plan, char *err,
                           size_t errlen)
{
    if (size < 4 || memcmp(data, "\177ELF", 4))
        return error_text(err, errlen, "the %s header has no load addresses and the file is not ELF",
                          which);
    /* GRUB's rule: the segments go to their physical addresses, entered in 32-bit protected
     * mode, ELF64 included (the kernel switches to long mode itself). */
    return loader_load_elf(mem, name, data, size, ENTRY_PROTECTED, plan, err, errlen);
}

/* A requested mode: graphics at width x height (0: slate's default), clamped to the display's. */
static void want_graphics(struct boot_plan *plan, uint32_t width, uint32_t height)
{
    plan->screen.width = width ? width : BOOT_FB_DEFAULT_W;
    plan->screen.height = height ? height : BOOT_FB_DEFAULT_H;
    if (plan->screen.width > DISPLAY_MAX_W)
        plan->screen.width = DISPLAY_MAX_W;
    if (plan->screen.height > DISPLAY_MAX_H)
        plan->screen.height = DISPLAY_MAX_H;
}

static int load_v1(struct guest_memory *mem, const char *name, const uint8_t *data, size_t size,
                   size_t off, struct boot_plan *plan, char *err, size_t errlen)
{
    uint32_t flags = get32(data + off + 4);
    if (flags & 0xFFFF & ~MB1_KNOWN_REQUIRED)
        return error_text(err, errlen, "the Multiboot header's flags %#x require features slate does "
                          "not know (bits %#x)", flags, flags & 0xFFFF & ~MB1_KNOWN_REQUIRED);
    if ((flags & MB1_VIDEO_MODE) && size - off >= 48) {
        uint32_t mode_type = get32(data + off + 32);
        if (mode_type == 0)
            want_graphics(plan, get32(data + off + 36), get32(data + off + 40));
    }
    if (!(flags & MB1_AOUT_KLUDGE))
        return load_elf_kernel(mem, name, data, size, "Multiboot", plan, err, errlen);
    if (size - off < 32)
        return error_text(err, errlen, "the Multiboot header's address fields run past the end of "
                          "the file");
    struct load_addresses a = {get32(data + off + 12), get32(data + off + 16), get32(data + off + 20),
                               get32(data + off + 24), get32(data + off + 28)};
    return load_by_addresses(mem, name, data, size, off, &a, plan, err, errlen);
}

static bool mb2_info_provided(uint32_t type)
{
    return type == MB2_IT_CMDLINE || type == MB2_IT_LOADER_NAME || type == MB2_IT_MODULE ||
           type == MB2_IT_BASIC_MEMINFO || type == MB2_IT_MMAP || type == MB2_IT_FRAMEBUFFER ||
           type == MB2_IT_LOAD_BASE;
}

static const char *mb2_info_name(uint32_t type)
{
    static const char *const names[] = {
        [5] = "BIOS boot device", [7] = "VBE", [9] = "ELF sections", [10] = "APM",
        [11] = "EFI 32-bit system table", [12] = "EFI 64-bit system table", [13] = "SMBIOS",
        [14] = "ACPI 1.0 RSDP", [15] = "ACPI 2.0 RSDP", [16] = "networking",
        [17] = "EFI memory map", [18] = "EFI boot services", [19] = "EFI 32-bit image handle",
        [20] = "EFI 64-bit image handle"};
    return type < sizeof(names) / sizeof(names[0]) && names[type] ? names[type] : "unknown";
}

/* One header tag; *a and *has_address collect the address and entry tags. */
static int mb2_header_tag(const uint8_t *t, uint32_t tsize, struct load_addresses *a,
                          bool *has_address, bool *has_entry, struct boot_plan *plan, char *err,
                          size_t errlen)
{
    uint16_t type = (uint16_t)get32(t), tflags = (uint16_t)(get32(t) >> 16);
    bool optional = tflags & MB2_HT_OPTIONAL;
    switch (type) {
    case MB2_HT_INFO_REQUEST:
        for (uint32_t i = 8; i + 4 <= tsize; i += 4) {
            uint32_t want = get32(t + i);
            if (!mb2_info_provided(want) && !optional)
                return error_text(err, errlen, "the Multiboot2 header requires information tag %u "
                                  "(%s), which this machine does not have (mark the request "
                                  "optional to boot without it)", want, mb2_info_name(want));
        }
        return 0;
    case MB2_HT_ADDRESS:
        if (tsize < 24)
            return error_text(err, errlen, "the Multiboot2 address tag is %u bytes, not 24", tsize);
        a->header_addr = get32(t + 8), a->load_addr = get32(t + 12);
        a->load_end_addr = get32(t + 16), a->bss_end_addr = get32(t + 20);
        *has_address = true;
        return 0;
    case MB2_HT_ENTRY:
        if (tsize < 12)
            return error_text(err, errlen, "the Multiboot2 entry tag is %u bytes, not 12", tsize);
        a->entry_addr = get32(t + 8);
        *has_entry = true;
        return 0;
    case MB2_HT_FRAMEBUFFER:
        if (tsize >= 20)
            want_graphics(plan, get32(t + 8), get32(t + 12));
        return 0;
    case MB2_HT_CONSOLE:
    case MB2_HT_MODULE_ALIGN:    /* modules are always page-aligned */
    case MB2_HT_EFI_I386_ENTRY:  /* used only when booted from EFI */
    case MB2_HT_EFI_AMD64_ENTRY:
    case MB2_HT_RELOCATABLE:     /* loaded where it was linked, which the tag allows */
        return 0;
    default:
        if (optional)
            return 0;
        return error_text(err, errlen, "the Multiboot2 header requires %s (tag %u), which slate "
                          "does not support", type == MB2_HT_EFI_BS ? "EFI boot services" : "a feature",
                          type);
    }
}

static int load_v2(struct guest_memory *mem, const char *name, const uint8_t *data, size_t size,
                   size_t off, struct boot_plan *plan, char *err, size_t errlen)
{
    uint32_t arch = get32(data + off + 4), length = get32(data + off + 8);
    if (arch != 0)
        return error_text(err, errlen, "the Multiboot2 header is for architecture %u, not i386 (0)", arch);
    struct load_addresses a = {0};
    bool has_address = false, has_entry = false;
    for (uint32_t pos = 16; pos + 8 <= length;) {
        const uint8_t *t = data + off + pos;
        uint32_t tsize = get32(t + 4);
        if ((uint16_t)get32(t) == MB2_HT_END)
            break;
        if (tsize < 8 || tsize > length - pos)
            return error_text(err, errlen, "the Multiboot2 header's tag at +%u has a bad size %u", pos,
                              tsize);
        if (mb2_header_tag(t, tsize, &a, &has_address, &has_entry, plan, err, errlen))
            return -1;
        pos += (tsize + 7) & ~7u;
    }
    if (has_address) {
        if (!has_entry)
            return error_text(err, errlen, "the Multiboot2 header has an address tag but no entry tag");
        return load_by_addresses(mem, name, data, size, off, &a, plan, err, errlen);
    }
    if (load_elf_kernel(mem, name, data, size, "Multiboot2", plan, err, errlen))
        return -1;
    if (has_entry)
        plan->entry_point = a.entry_addr;
    return 0;
}

int multiboot_load(struct guest_memory *mem, const char *name, const uint8_t *data, size_t size,
                   bool v2, struct boot_plan *plan, char *err, size_t errlen)
{
    size_t off;
    if (!multiboot_find_header(data, size, v2, &off))
        return error_text(err, errlen, "no %s header (magic %#x, with a valid checksum) in the first "
                          "%d KiB", v2 ? "Multiboot2" : "Multiboot", v2 ? MB2_HEADER_MAGIC : MB1_HEADER_MAGIC,
                          (v2 ? MB2_SEARCH : MB1_SEARCH) / 1024);
    plan->screen.vga_text = true;
    return v2 ? load_v2(mem, name, data, size, off, plan, err, errlen)
              : load_v1(mem, name, data, size, off, plan, err, errlen);
}

/* ---- the boot information ---------------------------------------------------------------------- */

/* Bytes written into the information area, which lives at guest-physical `gpa`. */
struct writer {
    uint8_t *host;
    uint64_t gpa;
    size_t used, cap;
};

static uint64_t w_put(struct writer *w, const void *src, size_t len)
{
    uint64_t at = w->gpa + w->used;
    if (len <= w->cap - w->used) {
        memcpy(w->host + w->used, src, len);
        w->used += len;
    }
    return at;
}

static void w_u32(struct writer *w, uint32_t v) { w_put(w, &v, 4); }
static void w_u64(struct writer *w, uint64_t v) { w_put(w, &v, 8); }
static void w_align(struct writer *w, size_t a) { w->used = (w->used + a - 1) & ~(a - 1); }
static uint64_t w_str(struct writer *w, const char *s) { return w_put(w, s, strlen(s) + 1); }

static const char loader_name[] = "slate " SLATE_VERSION;

/* The display's framebuffer, if the machine has one: where it is and how the kernel finds it. */
struct fb_info {
    bool present;
    uint64_t addr;
    uint32_t pitch, width, height;
    uint8_t bpp, type;
};

static struct fb_info framebuffer_info(const struct slate_config *cfg, const struct boot_plan *plan)
{
    uint64_t window;
    if (!loader_display_window(cfg, &window))
        return (struct fb_info){0};
    if (plan->screen.width)
        return (struct fb_info){true, window, plan->screen.width * 4, plan->screen.width,
                                plan->screen.height, 32, FB_TYPE_RGB};
    return (struct fb_info){true, 0xB8000, 160, 80, 25, 16, FB_TYPE_EGA_TEXT};
}

/* mem_lower and mem_upper, in KiB: below 640 KiB, and from 1 MiB to the first hole. */
static void basic_meminfo(const struct guest_memory *mem, uint32_t *lower, uint32_t *upper)
{
    uint64_t low_end = mem->ram[0].gpa + mem->ram[0].size;
    *lower = (uint32_t)((low_end < 0xA0000 ? low_end : 0xA0000) >> 10);
    *upper = low_end > 0x100000 ? (uint32_t)((low_end - 0x100000) >> 10) : 0;
}

static uint32_t mb_mem_type(enum boot_mem_type t) { return t == BOOT_MEM_RESERVED ? 2 : 1; }

static void mb2_tag_header(struct writer *w, uint32_t type, uint32_t size)
{
    w_align(w, 8);
    w_u32(w, type);
    w_u32(w, size);
}

static void mb2_string_tag(struct writer *w, uint32_t type, const char *s)
{
    mb2_tag_header(w, type, (uint32_t)(8 + strlen(s) + 1));
    w_str(w, s);
}

static void mb2_framebuffer_tag(struct writer *w, const struct fb_info *fb)
{
    bool rgb = fb->type == FB_TYPE_RGB;
    mb2_tag_header(w, MB2_IT_FRAMEBUFFER, rgb ? 38 : 32);
    w_u64(w, fb->addr);
    w_u32(w, fb->pitch);
    w_u32(w, fb->width);
    w_u32(w, fb->height);
    uint8_t tail[10] = {fb->bpp, fb->type, 0, 0, 16, 8, 8, 8, 0, 8}; /* bpp, type, reserved, RGB */
    w_put(w, tail, rgb ? 10 : 4);
}

static void write_v2(struct writer *w, const struct guest_memory *mem, const struct slate_config *cfg,
                     const struct boot_plan *plan, const struct boot_mem_entry *map, unsigned entries,
                     const struct fb_info *fb)
{
    w_u32(w, 0); /* total_size, filled in at the end */
    w_u32(w, 0);
    mb2_string_tag(w, MB2_IT_CMDLINE, cfg->append ? cfg->append : "");
    mb2_string_tag(w, MB2_IT_LOADER_NAME, loader_name);
    for (unsigned i = 1; i < plan->image_count; i++) {
        const char *string = cfg->loads[i - 1].string;
        mb2_tag_header(w, MB2_IT_MODULE, (uint32_t)(16 + strlen(string) + 1));
        w_u32(w, (uint32_t)plan->images[i].base);
        w_u32(w, (uint32_t)(plan->images[i].base + plan->images[i].size));
        w_str(w, string);
    }
    uint32_t lower, upper;
    basic_meminfo(mem, &lower, &upper);
    mb2_tag_header(w, MB2_IT_BASIC_MEMINFO, 16);
    w_u32(w, lower);
    w_u32(w, upper);
    mb2_tag_header(w, MB2_IT_MMAP, 16 + 24 * entries);
    w_u32(w, 24); /* entry_size */
    w_u32(w, 0);  /* entry_version */
    for (unsigned i = 0; i < entries; i++) {
        w_u64(w, map[i].base);
        w_u64(w, map[i].size);
        w_u32(w, mb_mem_type(map[i].type));
        w_u32(w, 0);
    }
    if (fb->present)
        mb2_framebuffer_tag(w, fb);
    mb2_tag_header(w, MB2_IT_LOAD_BASE, 12);
    w_u32(w, (uint32_t)plan->images[0].base);
    mb2_tag_header(w, SLATE_MULTIBOOT2_TAG_INFO, 16);
    w_u64(w, SLATE_INFO_ADDR);
    mb2_tag_header(w, MB2_IT_END, 8);
    uint32_t total = (uint32_t)w->used;
    memcpy(w->host, &total, 4);
}

static void write_v1(struct writer *w, const struct guest_memory *mem, const struct slate_config *cfg,
                     const struct boot_plan *plan, const struct boot_mem_entry *map, unsigned entries,
                     const struct fb_info *fb)
{
    uint8_t info[MB1_INFO_SIZE] = {0};
    w_put(w, info, sizeof(info)); /* filled in below, once the pointers are known */
    uint32_t flags = MB1_INFO_MEMORY | MB1_INFO_CMDLINE | MB1_INFO_MODS | MB1_INFO_MMAP |
                     MB1_INFO_LOADER_NAME;
    uint32_t lower, upper;
    basic_meminfo(mem, &lower, &upper);
    uint32_t cmdline = (uint32_t)w_str(w, cfg->append ? cfg->append : "");
    uint32_t name = (uint32_t)w_str(w, loader_name);
    uint32_t strings[MAX_LOADS];
    for (unsigned i = 1; i < plan->image_count; i++)
        strings[i - 1] = (uint32_t)w_str(w, cfg->loads[i - 1].string);
    w_align(w, 8);
    uint32_t mods = (uint32_t)(w->gpa + w->used);
    for (unsigned i = 1; i < plan->image_count; i++) {
        w_u32(w, (uint32_t)plan->images[i].base);
        w_u32(w, (uint32_t)(plan->images[i].base + plan->images[i].size));
        w_u32(w, strings[i - 1]);
        w_u32(w, 0);
    }
    uint32_t mmap = (uint32_t)(w->gpa + w->used);
    for (unsigned i = 0; i < entries; i++) {
        w_u32(w, 20); /* size of the entry, not counting this field */
        w_u64(w, map[i].base);
        w_u64(w, map[i].size);
        w_u32(w, mb_mem_type(map[i].type));
    }
    uint32_t fields[] = {lower, upper, 0, cmdline, plan->image_count - 1, mods};
    memcpy(info + 4, fields, sizeof(fields));
    uint32_t mmap_fields[] = {24 * entries, mmap};
    memcpy(info + 44, mmap_fields, sizeof(mmap_fields));
    memcpy(info + 64, &name, 4);
    if (fb->present) {
        flags |= MB1_INFO_FRAMEBUFFER;
        uint32_t dims[] = {fb->pitch, fb->width, fb->height};
        memcpy(info + 88, &fb->addr, 8);
        memcpy(info + 96, dims, sizeof(dims));
        uint8_t tail[8] = {fb->bpp, fb->type, 16, 8, 8, 8, 0, 8};
        memcpy(info + 108, tail, fb->type == FB_TYPE_RGB ? 8 : 2);
    }
    memcpy(info, &flags, 4);
    memcpy(w->host, info, sizeof(info));
}

int multiboot_finish(struct guest_memory *mem, const struct slate_config *cfg,
                     struct boot_plan *plan, char *err, size_t errlen)
{
    bool v2 = plan->protocol == BOOT_MULTIBOOT2;
    struct fb_info fb = framebuffer_info(cfg, plan);
    if (!fb.present)
        plan->screen.width = plan->screen.height = 0;
    struct boot_mem_entry map[BOOT_MEM_MAX];
    unsigned entries = loader_memory_map(mem, plan, false, 0, 0, map);
    /* An upper bound of what is written: fixed parts, strings, modules, the map. */
    size_t cap = 1024 + (cfg->append ? strlen(cfg->append) : 0) + 24 * BOOT_MEM_MAX;
    for (unsigned i = 0; i < cfg->load_count; i++)
        cap += 32 + strlen(cfg->loads[i].string) + 8;
    cap = (cap + 0xFFF) & ~(size_t)0xFFF;
    uint64_t gpa;
    /* Where GRUB 2 puts it (0x10000 and up), never lower: kernels use the page at 0x1000 for
     * their first page tables or a canary before they read the information. */
    if (loader_alloc(mem, plan, cap, 0x1000, MB_INFO_FLOOR, &gpa, err, errlen))
        return -1;
    struct writer w = {memory_ram_ptr(mem, gpa, cap), gpa, 0, cap};
    if (!w.host)
        return error_text(err, errlen, "internal: the boot information is not in RAM");
    memset(w.host, 0, cap);
    if (v2)
        write_v2(&w, mem, cfg, plan, map, entries, &fb);
    else
        write_v1(&w, mem, cfg, plan, map, entries, &fb);
    plan->rax = v2 ? MB2_BOOT_MAGIC : MB1_BOOT_MAGIC;
    plan->rbx = gpa;
    return 0;
}
