/* limine.c - the Limine boot protocol (limine-protocol's PROTOCOL.md), base revisions 0 to 6, for
 * x86-64. The kernel's requests are found in its loaded image between the request markers and
 * answered in memory marked bootloader-reclaimable; a request slate cannot answer gets no
 * response, as the protocol says. Every CPU starts in 64-bit mode on slate's page tables: the
 * kernel at its linked addresses, the higher-half direct map (HHDM) over all of physical memory
 * up to the top of the device hole, and for base revision 0 the identity map as well. Other CPUs
 * park in a stub that waits for their goto_address. */
#include "limine.h"

#include "device.h"
#include "log.h"
#include "slate/slate.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KERNEL_PHYS_BASE 0x100000ULL
#define PAGE 0x1000ULL
#define PAGE_2M 0x200000ULL
#define PAGE_1G 0x40000000ULL
#define DEFAULT_STACK 0x10000ULL
#define MAX_STACK (16ULL << 20)

#define PTE_P (1ULL << 0)
#define PTE_W (1ULL << 1)
#define PTE_A (1ULL << 5)
#define PTE_D (1ULL << 6)
#define PTE_PS (1ULL << 7)
#define PTE_NX (1ULL << 63)

/* Request IDs: the last two words after LIMINE_COMMON_MAGIC. */
enum request_kind {
    REQ_BOOTLOADER_INFO,
    REQ_CMDLINE,
    REQ_STACK_SIZE,
    REQ_HHDM,
    REQ_FRAMEBUFFER,
    REQ_PAGING_MODE,
    REQ_MP,
    REQ_MEMMAP,
    REQ_ENTRY_POINT,
    REQ_EXECUTABLE_FILE,
    REQ_MODULE,
    REQ_EXECUTABLE_ADDRESS,
    REQ_BOOT_TIME,
    REQ_KINDS,
};

static const struct {
    uint64_t id[2];
    const char *name;
} request_ids[REQ_KINDS] = {
    [REQ_BOOTLOADER_INFO] = {{0xf55038d8e2a1202fULL, 0x279426fcf5f59740ULL}, "bootloader info"},
    [REQ_CMDLINE] = {{0x4b161536e598651eULL, 0xb390ad4a2f1f303aULL}, "executable command line"},
    [REQ_STACK_SIZE] = {{0x224ef0460a8e8926ULL, 0xe1cb0fc25f46ea3dULL}, "stack size"},
    [REQ_HHDM] = {{0x48dcf1cb8ad2b852ULL, 0x63984e959a98244bULL}, "HHDM"},
    [REQ_FRAMEBUFFER] = {{0x9d5827dcd881dd75ULL, 0xa3148604f6fab11bULL}, "framebuffer"},
    [REQ_PAGING_MODE] = {{0x95c1a0edab0944cbULL, 0xa4e5cb3842f7488aULL}, "paging mode"},
    [REQ_MP] = {{0x95a67b819a1b857eULL, 0xa0b61b723b6a73e0ULL}, "MP"},
    [REQ_MEMMAP] = {{0x67cf3d9d378a806fULL, 0xe304acdfc50c3c62ULL}, "memory map"},
    [REQ_ENTRY_POINT] = {{0x13d86c035a1cd3e1ULL, 0x2b0caa89d8f3026aULL}, "entry point"},
    [REQ_EXECUTABLE_FILE] = {{0xad97e90e83f1ed67ULL, 0x31eb5d1c5ff23b69ULL}, "executable file"},
    [REQ_MODULE] = {{0x3e7e279702be32afULL, 0xca1c4f3bd1280ceeULL}, "module"},
    [REQ_EXECUTABLE_ADDRESS] = {{0x71ba76863cc55f63ULL, 0xb2644a48c516a487ULL}, "executable address"},
    [REQ_BOOT_TIME] = {{0x502746e184c088aaULL, 0xfbc5ec83e6327893ULL}, "boot time"},
};

static const uint64_t start_marker[4] = {0xf6b8f4b39de7d1aeULL, 0xfab91a6940fcb9cfULL,
                                         0x785c6ed015d3e316ULL, 0x181e920a7852b9d9ULL};
static const uint64_t end_marker[2] = {0xadc0e0531bb10d03ULL, 0x9572709f31764c62ULL};

/* Limine memory map types */
enum { LM_USABLE = 0, LM_RESERVED = 1, LM_RECLAIMABLE = 5, LM_EXEC_AND_MODULES = 6, LM_FRAMEBUFFER = 7 };

/* A parked CPU: while goto_address ([RDI+16]) is 0, pause and look again; then load the stack
 * from `reserved` ([RDI+8]), push the invalid return address 0 and jump there with RAX zeroed:
 *   0: mov 16(%rdi),%rax; test %rax,%rax; jne 1f; pause; jmp 0b
 *   1: mov 8(%rdi),%rsp; push $0; push %rax; xor %eax,%eax; ret */
static const uint8_t park_stub[] = {0x48, 0x8b, 0x47, 0x10, 0x48, 0x85, 0xc0, 0x75, 0x04, 0xf3, 0x90, 0xeb,
                                    0xf3, 0x48, 0x8b, 0x67, 0x08, 0x6a, 0x00, 0x50, 0x31, 0xc0, 0xc3};

/* null, 16-bit code and data, 32-bit code and data, 64-bit code (0x28) and data (0x30); the
 * accessed bits preset so the CPU never writes the table */
static const uint64_t limine_gdt[] = {
    0,
    0x00009B000000FFFFULL, 0x000093000000FFFFULL,
    0x00CF9B000000FFFFULL, 0x00CF93000000FFFFULL,
    0x00AF9B000000FFFFULL, 0x00CF93000000FFFFULL,
};

int limine_load(struct guest_memory *mem, const char *name, const uint8_t *data, size_t size,
                struct boot_plan *plan, char *err, size_t errlen)
{
    struct boot_paging *pg = &plan->paging;
    uint64_t entry;
    if (loader_load_elf_contiguous(mem, name, data, size, KERNEL_PHYS_BASE, plan, &pg->kernel_virt,
                                   &pg->kernel_size, &entry, err, errlen))
        return -1;
    pg->kernel_phys = KERNEL_PHYS_BASE;
    if (entry < pg->kernel_virt || entry - pg->kernel_virt >= pg->kernel_size)
        return error_text(err, errlen, "entry point %#llx is outside the kernel",
                          (unsigned long long)entry);
    plan->entry = ENTRY_LONG;
    plan->entry_point = entry;
    plan->screen.vga_text = true;
    /* The file itself, for the executable-file response. */
    pg->file_size = size;
    uint64_t at;
    if (loader_alloc(mem, plan, (size + PAGE - 1) & ~(PAGE - 1), PAGE,
                     loader_end_of_images(plan), &at, err, errlen))
        return -1;
    memcpy(memory_ram_ptr(mem, at, size), data, size);
    pg->file_gpa = at;
    return 0;
}

/* ---- finding the requests ---------------------------------------------------------------------- */

struct requests {
    uint64_t at[REQ_KINDS];  /* guest-physical address of each request found, or 0 */
    uint64_t revision_tag;   /* of the base revision tag, or 0 */
    uint64_t base_revision;
};

static uint64_t word(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* [*from, *to): between the last start marker and the first end marker, when they are there. */
static void delimit(const uint8_t *img, uint64_t size, uint64_t *from, uint64_t *to)
{
    *from = 0, *to = size;
    for (uint64_t off = 0; off + 32 <= size; off += 8)
        if (!memcmp(img + off, start_marker, 32))
            *from = off + 32;
    for (uint64_t off = *from; off + 16 <= size; off += 8)
        if (!memcmp(img + off, end_marker, 16)) {
            *to = off;
            break;
        }
}

static int find_requests(const uint8_t *img, uint64_t phys, uint64_t size, struct requests *r,
                         char *err, size_t errlen)
{
    uint64_t from, to;
    delimit(img, size, &from, &to);
    *r = (struct requests){0};
    for (uint64_t off = from; off + 24 <= to; off += 8) {
        uint64_t w0 = word(img + off), w1 = word(img + off + 8);
        if (w0 == LIMINE_BASE_REVISION_MAGIC_0 && w1 == LIMINE_BASE_REVISION_MAGIC_1) {
            r->revision_tag = phys + off;
            r->base_revision = word(img + off + 16);
            continue;
        }
        if (w0 != LIMINE_COMMON_MAGIC_0 || w1 != LIMINE_COMMON_MAGIC_1 || off + 48 > to)
            continue;
        for (unsigned k = 0; k < REQ_KINDS; k++) {
            if (word(img + off + 16) != request_ids[k].id[0] || word(img + off + 24) != request_ids[k].id[1])
                continue;
            if (r->at[k])
                return error_text(err, errlen, "two %s requests (at %#llx and %#llx): the protocol "
                                  "allows one", request_ids[k].name, (unsigned long long)r->at[k],
                                  (unsigned long long)(phys + off));
            r->at[k] = phys + off;
        }
    }
    return 0;
}

/* ---- building ------------------------------------------------------------------------------- */

/* The bootloader-reclaimable area the responses are written to: a bump allocator over guest RAM
 * that hands out HHDM addresses. */
struct area {
    uint8_t *host;
    uint64_t gpa, used, cap;
};

static uint64_t hhdm(uint64_t gpa) { return gpa + LIMINE_HHDM_OFFSET; }

/* size zeroed bytes, 16-byte aligned (page-aligned when size is a page: the page tables);
 * returns their guest-physical address. */
static uint64_t take(struct area *a, uint64_t size)
{
    uint64_t align = size == PAGE ? PAGE : 16;
    a->used = (a->used + align - 1) & ~(align - 1);
    uint64_t at = a->gpa + a->used;
    if (size > a->cap - a->used)
        abort(); /* the area is sized from the same counts before any of it is taken */
    a->used += size;
    return at;
}

static void *host_of(struct area *a, uint64_t gpa) { return a->host + (gpa - a->gpa); }

static void put64(struct area *a, uint64_t gpa, uint64_t v) { memcpy(host_of(a, gpa), &v, 8); }

static uint64_t put_string(struct area *a, const char *s)
{
    uint64_t at = take(a, strlen(s) + 1);
    memcpy(host_of(a, at), s, strlen(s) + 1);
    return at;
}

struct build {
    struct guest_memory *mem;
    const struct slate_config *cfg;
    struct boot_plan *plan;
    struct requests req;
    struct area area;
    uint8_t *image; /* host view of the loaded kernel */
    uint64_t stack_size;
    uint64_t fb_gpa, fb_size;
};

/* Reads a request's field at `offset` (48: the first after id, revision and response), if the
 * request is that long within the image; else `fallback`. */
static uint64_t request_field(const struct build *b, enum request_kind k, unsigned offset, uint64_t fallback)
{
    uint64_t off = b->req.at[k] - b->plan->paging.kernel_phys;
    return off + offset + 8 <= b->plan->paging.kernel_size ? word(b->image + off + offset) : fallback;
}

static void respond(struct build *b, enum request_kind k, uint64_t response_gpa)
{
    uint64_t off = b->req.at[k] - b->plan->paging.kernel_phys;
    uint64_t ptr = hhdm(response_gpa);
    memcpy(b->image + off + 40, &ptr, 8);
}

/* struct limine_file (112 bytes) for a file at gpa. */
static uint64_t put_file(struct build *b, uint64_t gpa, uint64_t size, const char *path, const char *string)
{
    uint64_t f = take(&b->area, 112);
    char slashed[SLATE_NAME_MAX + 2];
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    snprintf(slashed, sizeof(slashed), "/%s", base);
    uint64_t p = put_string(&b->area, slashed), s = put_string(&b->area, string);
    put64(&b->area, f + 8, hhdm(gpa));
    put64(&b->area, f + 16, size);
    put64(&b->area, f + 24, hhdm(p));
    put64(&b->area, f + 32, hhdm(s));
    return f;
}

static void answer_simple(struct build *b)
{
    struct area *a = &b->area;
    const struct boot_paging *pg = &b->plan->paging;
    const char *cmdline = b->cfg->append ? b->cfg->append : "";
    uint64_t file = put_file(b, pg->file_gpa, pg->file_size, b->cfg->kernel, cmdline);
    if (b->req.at[REQ_BOOTLOADER_INFO]) {
        uint64_t r = take(a, 24);
        put64(a, r + 8, hhdm(put_string(a, "slate")));
        put64(a, r + 16, hhdm(put_string(a, SLATE_VERSION)));
        respond(b, REQ_BOOTLOADER_INFO, r);
    }
    if (b->req.at[REQ_CMDLINE]) {
        uint64_t r = take(a, 16);
        memcpy(host_of(a, r + 8), host_of(a, file + 32), 8); /* the file's string */
        respond(b, REQ_CMDLINE, r);
    }
    if (b->req.at[REQ_EXECUTABLE_FILE]) {
        uint64_t r = take(a, 16);
        put64(a, r + 8, hhdm(file));
        respond(b, REQ_EXECUTABLE_FILE, r);
    }
    if (b->req.at[REQ_EXECUTABLE_ADDRESS]) {
        uint64_t r = take(a, 24);
        put64(a, r + 8, pg->kernel_phys);
        put64(a, r + 16, pg->kernel_virt);
        respond(b, REQ_EXECUTABLE_ADDRESS, r);
    }
    if (b->req.at[REQ_HHDM]) {
        uint64_t r = take(a, 16);
        put64(a, r + 8, LIMINE_HHDM_OFFSET);
        respond(b, REQ_HHDM, r);
    }
    if (b->req.at[REQ_BOOT_TIME]) { /* the "date at boot": the host's Unix time, in seconds */
        uint64_t r = take(a, 16);
        put64(a, r + 8, (uint64_t)(int64_t)time(NULL));
        respond(b, REQ_BOOT_TIME, r);
    }
    if (b->req.at[REQ_STACK_SIZE])
        respond(b, REQ_STACK_SIZE, take(a, 8));
    if (b->req.at[REQ_PAGING_MODE]) {
        uint64_t r = take(a, 16); /* mode 0: 4-level, the only one slate sets up */
        respond(b, REQ_PAGING_MODE, r);
    }
}

static void answer_modules(struct build *b)
{
    const struct boot_plan *plan = b->plan;
    unsigned count = plan->image_count - 1;
    if (!b->req.at[REQ_MODULE] || count == 0)
        return; /* "If no modules are available, no response will be provided." */
    struct area *a = &b->area;
    uint64_t r = take(a, 24), list = take(a, 8 * count);
    for (unsigned i = 0; i < count; i++) {
        const struct loaded_image *img = &plan->images[i + 1];
        put64(a, list + 8 * i, hhdm(put_file(b, img->base, img->size, b->cfg->loads[i].path, b->cfg->loads[i].string)));
    }
    put64(a, r + 8, count);
    put64(a, r + 16, hhdm(list));
    respond(b, REQ_MODULE, r);
}

static void answer_framebuffer(struct build *b)
{
    if (!b->fb_size)
        return;
    struct area *a = &b->area;
    const struct boot_screen *s = &b->plan->screen;
    /* struct limine_framebuffer is 80 bytes, struct limine_video_mode 40 (33 and padding) */
    uint64_t r = take(a, 24), list = take(a, 8), fb = take(a, 80), modes = take(a, 8), mode = take(a, 40);
    put64(a, r + 0, 1); /* response revision 1: with the mode list */
    put64(a, r + 8, 1);
    put64(a, r + 16, hhdm(list));
    put64(a, list, hhdm(fb));
    /* bpp (16 bits) 32, memory model 1 (RGB), then each mask's size and shift: red 8 at 16, green
     * 8 at 8, blue 8 at 0 - nine bytes, at offset 32 of the framebuffer and 24 of a mode */
    static const uint8_t format[9] = {32, 0, 1, 8, 16, 8, 8, 8, 0};
    put64(a, fb, hhdm(b->fb_gpa));
    put64(a, fb + 8, s->width);
    put64(a, fb + 16, s->height);
    put64(a, fb + 24, (uint64_t)s->width * 4);
    memcpy(host_of(a, fb + 32), format, sizeof(format));
    put64(a, fb + 64, 1);                 /* mode_count (edid_size and edid stay 0) */
    put64(a, fb + 72, hhdm(modes));
    put64(a, modes, hhdm(mode));
    put64(a, mode, (uint64_t)s->width * 4);
    put64(a, mode + 8, s->width);
    put64(a, mode + 16, s->height);
    memcpy(host_of(a, mode + 24), format, sizeof(format));
    respond(b, REQ_FRAMEBUFFER, r);
}

/* The memory map, once everything has its place. Its own space was taken before. */
static void answer_memmap(struct build *b, uint64_t r, uint64_t list, uint64_t entries)
{
    struct boot_mem_entry map[BOOT_MEM_MAX];
    unsigned n = loader_memory_map(b->mem, b->plan, true, b->fb_gpa, b->fb_size, map);
    static const uint64_t types[] = {[BOOT_MEM_USABLE] = LM_USABLE, [BOOT_MEM_RESERVED] = LM_RESERVED,
                                     [BOOT_MEM_KERNEL] = LM_EXEC_AND_MODULES,
                                     [BOOT_MEM_BOOT_DATA] = LM_RECLAIMABLE,
                                     [BOOT_MEM_FRAMEBUFFER] = LM_FRAMEBUFFER};
    struct area *a = &b->area;
    for (unsigned i = 0; i < n; i++) {
        uint64_t e = entries + 24 * i;
        put64(a, e, map[i].base);
        put64(a, e + 8, map[i].size);
        put64(a, e + 16, types[map[i].type]);
        put64(a, list + 8 * i, hhdm(e));
    }
    put64(a, r + 8, n);
    put64(a, r + 16, hhdm(list));
    respond(b, REQ_MEMMAP, r);
}

/* ---- page tables ---------------------------------------------------------------------------- */

static uint64_t *table(struct area *a, uint64_t gpa) { return host_of(a, gpa); }

/* 4 KiB pages for the kernel's segments at their virtual addresses (PML4 slot 511). */
static void map_kernel(struct build *b, uint64_t *pml4)
{
    struct area *a = &b->area;
    const struct boot_paging *pg = &b->plan->paging;
    const uint64_t link = PTE_P | PTE_W | PTE_A;
    uint64_t pdpt = take(a, PAGE);
    pml4[511] = pdpt | link;
    for (unsigned s = 0; s < pg->segment_count; s++) {
        const struct boot_segment *seg = &pg->segments[s];
        for (uint64_t va = seg->vaddr & ~(PAGE - 1); va < seg->vaddr + seg->size; va += PAGE) {
            uint64_t *l3 = table(a, pdpt), i3 = (va >> 30) & 511, i2 = (va >> 21) & 511, i1 = (va >> 12) & 511;
            if (!l3[i3])
                l3[i3] = take(a, PAGE) | link;
            uint64_t *l2 = table(a, l3[i3] & ~(PAGE - 1) & ~PTE_NX);
            if (!l2[i2])
                l2[i2] = take(a, PAGE) | link;
            uint64_t *l1 = table(a, l2[i2] & ~(PAGE - 1) & ~PTE_NX);
            uint64_t pte = l1[i1] ? l1[i1] : (pg->kernel_phys + (va - pg->kernel_virt)) | PTE_P | PTE_A | PTE_D | PTE_NX;
            if (seg->flags & PF_W)
                pte |= PTE_W;
            if (seg->flags & PF_X)
                pte &= ~PTE_NX;
            l1[i1] = pte;
        }
    }
}

/* Pages the kernel mapping can need: a PDPT, and per 1 GiB and per 2 MiB a table, plus one of
 * each per segment for crossings. */
static uint64_t kernel_table_pages(const struct boot_paging *pg)
{
    return 1 + 2 + pg->kernel_size / PAGE_1G + pg->kernel_size / PAGE_2M + 2 * pg->segment_count + 2;
}

/* The HHDM (PML4 slot 256) over [0, map_top) in 2 MiB pages; base revision 0 also gets the
 * identity map (slot 0) through the same tables. Returns CR3. */
static uint64_t build_page_tables(struct build *b, unsigned revision)
{
    struct area *a = &b->area;
    const uint64_t link = PTE_P | PTE_W | PTE_A;
    uint64_t pml4_gpa = take(a, PAGE), pdpt = take(a, PAGE);
    uint64_t *pml4 = table(a, pml4_gpa);
    uint64_t gigs = (b->mem->map_top + PAGE_1G - 1) / PAGE_1G;
    for (uint64_t g = 0; g < gigs; g++) {
        uint64_t pd = take(a, PAGE);
        table(a, pdpt)[g] = pd | link;
        for (uint64_t j = 0; j < 512; j++)
            table(a, pd)[j] = (g * PAGE_1G + j * PAGE_2M) | link | PTE_D | PTE_PS;
    }
    pml4[256] = pdpt | link;
    if (revision == 0)
        pml4[0] = pdpt | link;
    map_kernel(b, pml4);
    return pml4_gpa;
}

/* ---- CPUs ----------------------------------------------------------------------------------- */

/* The MP response, the parking stub and each CPU's mp_info (32 bytes apart) and stack. */
static void answer_mp(struct build *b, uint64_t stacks)
{
    struct area *a = &b->area;
    struct boot_paging *pg = &b->plan->paging;
    unsigned cpus = b->cfg->smp;
    if (!b->req.at[REQ_MP])
        return;
    uint64_t stub = take(a, sizeof(park_stub)), infos = take(a, 32ULL * cpus);
    memcpy(host_of(a, stub), park_stub, sizeof(park_stub));
    for (unsigned i = 0; i < cpus; i++) {
        uint32_t ids[2] = {i, i}; /* processor_id, lapic_id (slate's APIC IDs are the indexes) */
        memcpy(host_of(a, infos + 32 * i), ids, 8);
        put64(a, infos + 32 * i + 8, hhdm(stacks + (i + 1) * b->stack_size) - 8); /* reserved: RSP */
    }
    uint64_t r = take(a, 32), list = take(a, 8ULL * cpus);
    for (unsigned i = 0; i < cpus; i++)
        put64(a, list + 8 * i, hhdm(infos + 32 * i));
    put64(a, r + 16, cpus);
    put64(a, r + 24, hhdm(list));
    respond(b, REQ_MP, r);
    if (cpus > 1)
        pg->ap_rip = hhdm(stub), pg->ap_info = hhdm(infos), pg->ap_info_stride = 32;
}

/* ---- putting it together -------------------------------------------------------------------- */

static int check_requests(struct build *b, char *err, size_t errlen)
{
    if (b->req.revision_tag && b->req.base_revision > LIMINE_MAX_BASE_REVISION)
        return error_text(err, errlen, "the kernel asks for Limine base revision %llu; slate "
                          "supports 0 to %d", (unsigned long long)b->req.base_revision,
                          LIMINE_MAX_BASE_REVISION);
    if (b->req.at[REQ_PAGING_MODE]) {
        uint64_t revision = request_field(b, REQ_PAGING_MODE, 32, 0);
        uint64_t min = revision >= 1 ? request_field(b, REQ_PAGING_MODE, 64, 0) : 0;
        if (min > 0)
            return error_text(err, errlen, "the kernel requires 5-level paging (min_mode %llu); "
                              "slate sets up 4-level", (unsigned long long)min);
    }
    b->stack_size = DEFAULT_STACK;
    if (b->req.at[REQ_STACK_SIZE]) {
        uint64_t want = request_field(b, REQ_STACK_SIZE, 48, DEFAULT_STACK);
        if (want > MAX_STACK)
            return error_text(err, errlen, "the stack-size request asks for %llu bytes; at most %llu",
                              (unsigned long long)want, (unsigned long long)MAX_STACK);
        b->stack_size = want > DEFAULT_STACK ? (want + PAGE - 1) & ~(PAGE - 1) : DEFAULT_STACK;
    }
    if (b->req.at[REQ_ENTRY_POINT]) {
        const struct boot_paging *pg = &b->plan->paging;
        uint64_t entry = request_field(b, REQ_ENTRY_POINT, 48, 0);
        if (entry < pg->kernel_virt || entry - pg->kernel_virt >= pg->kernel_size)
            return error_text(err, errlen, "the entry-point request's entry %#llx is outside the "
                              "kernel", (unsigned long long)entry);
        b->plan->entry_point = entry;
    }
    return 0;
}

/* Where the display's framebuffer is, if the kernel asked for one and the machine has one. */
static void place_framebuffer(struct build *b)
{
    if (!b->req.at[REQ_FRAMEBUFFER] || !loader_display_window(b->cfg, &b->fb_gpa))
        return;
    b->plan->screen.width = BOOT_FB_DEFAULT_W, b->plan->screen.height = BOOT_FB_DEFAULT_H;
    b->fb_size = (uint64_t)BOOT_FB_DEFAULT_W * BOOT_FB_DEFAULT_H * 4;
}

static uint64_t area_size(const struct build *b)
{
    uint64_t cpus = b->cfg->smp, modules = b->plan->image_count - 1;
    uint64_t gigs = (b->mem->map_top + PAGE_1G - 1) / PAGE_1G;
    uint64_t tables = PAGE * (2 + gigs + kernel_table_pages(&b->plan->paging)) + PAGE;
    uint64_t strings = 256 + (b->cfg->append ? strlen(b->cfg->append) : 0) + 64 * (modules + 1);
    for (unsigned i = 0; i < b->cfg->load_count; i++)
        strings += strlen(b->cfg->loads[i].string) + 1;
    uint64_t fixed = 2048 + sizeof(limine_gdt) + 24 * BOOT_MEM_MAX + 8 * BOOT_MEM_MAX;
    uint64_t per = 48 * cpus + 128 * (modules + 1);
    return (tables + strings + fixed + per + 16 * 64 + PAGE - 1) & ~(PAGE - 1);
}

int limine_finish(struct guest_memory *mem, const struct slate_config *cfg, struct boot_plan *plan,
                  char *err, size_t errlen)
{
    struct boot_paging *pg = &plan->paging;
    struct build b = {.mem = mem, .cfg = cfg, .plan = plan};
    b.image = memory_ram_ptr(mem, pg->kernel_phys, pg->kernel_size);
    if (!b.image || find_requests(b.image, pg->kernel_phys, pg->kernel_size, &b.req, err, errlen) ||
        check_requests(&b, err, errlen))
        return -1;
    place_framebuffer(&b);
    unsigned cpus_with_stacks = b.req.at[REQ_MP] ? cfg->smp : 1;
    uint64_t stacks, cap = area_size(&b), floor = loader_end_of_images(plan);
    if (loader_alloc(mem, plan, b.stack_size * cpus_with_stacks, PAGE, floor, &stacks, err, errlen) ||
        loader_alloc(mem, plan, cap, PAGE, floor, &b.area.gpa, err, errlen))
        return -1;
    b.area.host = memory_ram_ptr(mem, b.area.gpa, cap);
    b.area.cap = cap;
    memset(b.area.host, 0, cap);
    unsigned revision = (unsigned)(b.req.revision_tag ? b.req.base_revision : 0);
    pg->cr3 = build_page_tables(&b, revision); /* first: its pages need no padding */
    uint64_t gdt = take(&b.area, sizeof(limine_gdt));
    memcpy(host_of(&b.area, gdt), limine_gdt, sizeof(limine_gdt));
    uint64_t memmap = take(&b.area, 24), list = take(&b.area, 8 * BOOT_MEM_MAX),
             entries = take(&b.area, 24 * BOOT_MEM_MAX);
    answer_simple(&b);
    answer_modules(&b);
    answer_framebuffer(&b);
    answer_mp(&b, stacks);
    if (b.req.at[REQ_MEMMAP])
        answer_memmap(&b, memmap, list, entries);
    if (b.req.revision_tag) {
        /* Supported: the third word becomes 0, the second the revision used. */
        uint8_t *tag = memory_ram_ptr(mem, b.req.revision_tag, 24);
        uint64_t used = revision, zero = 0;
        memcpy(tag + 8, &used, 8);
        memcpy(tag + 16, &zero, 8);
    }
    pg->gdt_base = hhdm(gdt);
    pg->gdt_limit = sizeof(limine_gdt) - 1;
    pg->code_sel = 0x28, pg->data_sel = 0x30;
    memset(memory_ram_ptr(mem, stacks + b.stack_size - 8, 8), 0, 8); /* the return address 0 */
    plan->rsp = hhdm(stacks + b.stack_size) - 8;
    plan->rbx = 0;
    return 0;
}
