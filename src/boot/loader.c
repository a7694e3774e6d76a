/* loader.c - loads flat binaries and ELF32/ELF64 kernels (elfutils libelf) into guest RAM. */
#include "loader.h"
#include "device.h"
#include "limine.h"
#include "log.h"
#include "multiboot.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* Records an image after checking it against the ones already placed. */
static int plan_add(struct boot_plan *plan, const char *name, uint64_t base, uint64_t size,
                    uint32_t flags, char *err, size_t errlen)
{
    for (unsigned i = 0; i < plan->image_count; i++) {
        const struct loaded_image *o = &plan->images[i];
        if (size && ranges_overlap(base, size, o->base, o->size))
            return error_text(err, errlen, "[%#llx, %#llx) overlaps %s at [%#llx, %#llx)",
                        (unsigned long long)base, (unsigned long long)(base + size), o->name,
                        (unsigned long long)o->base, (unsigned long long)(o->base + o->size));
    }
    if (plan->image_count == sizeof(plan->images) / sizeof(plan->images[0]))
        return error_text(err, errlen, "too many images");
    struct loaded_image *img = &plan->images[plan->image_count++];
    *img = (struct loaded_image){.base = base, .size = size, .flags = flags};
    snprintf(img->name, sizeof(img->name), "%s", base_name(name));
    return 0;
}

static int describe_outside_ram(const struct guest_memory *mem, uint64_t gpa, uint64_t len,
                                const char *what, char *err, size_t errlen)
{
    if (len > UINT64_MAX - gpa)
        return error_text(err, errlen, "%s at %#llx: size %#llx wraps around the address space", what,
                    (unsigned long long)gpa, (unsigned long long)len);
    bool starts_in_hole = gpa >= SLATE_HOLE_BASE && gpa < SLATE_HOLE_END;
    if (starts_in_hole || (ranges_overlap(gpa, len, SLATE_HOLE_BASE, SLATE_HOLE_END - SLATE_HOLE_BASE) &&
                           mem->ram_total > SLATE_LOW_RAM_MAX))
        return error_text(err, errlen, "%s [%#llx, %#llx) lies in the device hole [3 GiB, 4 GiB)",
                    what, (unsigned long long)gpa, (unsigned long long)(gpa + len));
    return error_text(err, errlen, "%s [%#llx, %#llx) does not fit in RAM (%llu MiB: see -m)", what,
                (unsigned long long)gpa, (unsigned long long)(gpa + len),
                (unsigned long long)(mem->ram_total >> 20));
}

bool loader_display_window(const struct slate_config *cfg, uint64_t *gpa)
{
    struct device_place places[DEVICE_MAX];
    char err[128];
    int n = device_plan(cfg, places, err, sizeof(err));
    for (int i = 0; i < n; i++)
        if (places[i].ops->type == SLATE_DEV_DISPLAY) {
            *gpa = places[i].window_gpa;
            return true;
        }
    return false;
}

uint64_t loader_end_of_images(const struct boot_plan *plan)
{
    uint64_t end = 0;
    for (unsigned i = 0; i < plan->image_count; i++)
        if (plan->images[i].base + plan->images[i].size > end)
            end = plan->images[i].base + plan->images[i].size;
    for (unsigned i = 0; i < plan->data_count; i++)
        if (plan->data[i].base + plan->data[i].size > end)
            end = plan->data[i].base + plan->data[i].size;
    return (end + 0xFFF) & ~0xFFFULL;
}

int loader_load_raw(struct guest_memory *mem, const char *name, const void *data, size_t size,
                    uint64_t addr, struct boot_plan *plan, char *err, size_t errlen)
{
    if (addr == LOAD_ADDR_AUTO)
        addr = loader_end_of_images(plan);
    if (plan->protocol == BOOT_LIMINE && addr & 0xFFF)
        return error_text(err, errlen, "at %#llx: a Limine module must start on a 4 KiB page",
                          (unsigned long long)addr);
    void *dst = memory_ram_ptr(mem, addr, size);
    if (!dst)
        return describe_outside_ram(mem, addr, size, "image", err, errlen);
    if (plan_add(plan, name, addr, size, 0, err, errlen))
        return -1;
    memcpy(dst, data, size);
    return 0;
}

static int load_flat(struct guest_memory *mem, const char *name, const void *data, size_t size,
                     enum entry_mode requested, struct boot_plan *plan, char *err, size_t errlen)
{
    if (size == 0)
        return error_text(err, errlen, "the kernel file is empty");
    void *dst = memory_ram_ptr(mem, 0, size);
    if (!dst)
        return describe_outside_ram(mem, 0, size, "flat image", err, errlen);
    if (plan_add(plan, name, 0, size, SLATE_IMAGE_KERNEL, err, errlen))
        return -1;
    memcpy(dst, data, size);
    plan->entry = requested == ENTRY_DEFAULT ? ENTRY_REAL : requested;
    plan->entry_point = 0;
    return 0;
}

/* One PT_LOAD segment, validated against the file and guest RAM. */
static int load_segment(struct guest_memory *mem, const GElf_Phdr *ph, uint64_t paddr,
                        const uint8_t *data, size_t size, unsigned index, char *err, size_t errlen)
{
    if (ph->p_filesz > ph->p_memsz)
        return error_text(err, errlen, "segment %u: file size %#llx exceeds memory size %#llx", index,
                    (unsigned long long)ph->p_filesz, (unsigned long long)ph->p_memsz);
    if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset)
        return error_text(err, errlen, "segment %u: bytes [%#llx, +%#llx) lie past the end of the file "
                    "(%zu bytes): truncated?", index, (unsigned long long)ph->p_offset,
                    (unsigned long long)ph->p_filesz, size);
    uint8_t *dst = memory_ram_ptr(mem, paddr, ph->p_memsz);
    if (!dst) {
        char what[32];
        snprintf(what, sizeof(what), "segment %u", index);
        return describe_outside_ram(mem, paddr, ph->p_memsz, what, err, errlen);
    }
    memcpy(dst, data + ph->p_offset, ph->p_filesz);
    /* The bss is zero already: RAM is fresh anonymous memory each boot, and touching it here
     * would allocate pages the guest may never use. */
    return 0;
}

/* GRUB's rule: an entry inside a segment's virtual range is moved to the physical copy. */
static int entry_to_physical(Elf *elf, size_t phnum, uint64_t entry, uint64_t *phys)
{
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
            continue;
        if (entry >= ph.p_paddr && entry - ph.p_paddr < ph.p_memsz) {
            *phys = entry;
            return 0;
        }
        if (entry >= ph.p_vaddr && entry - ph.p_vaddr < ph.p_memsz) {
            *phys = ph.p_paddr + (entry - ph.p_vaddr);
            return 0;
        }
    }
    return -1;
}

static int check_elf_header(Elf *elf, GElf_Ehdr *eh, int *elf_class, bool pie_ok, char *err, size_t errlen)
{
    if (!gelf_getehdr(elf, eh))
        return error_text(err, errlen, "bad ELF header: %s", elf_errmsg(-1));
    *elf_class = gelf_getclass(elf);
    if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
        return error_text(err, errlen, "big-endian ELF file: slate runs x86 kernels");
    if (*elf_class == ELFCLASS32 && eh->e_machine != EM_386)
        return error_text(err, errlen, "ELF32 file for machine %u, expected i386 (3)", eh->e_machine);
    if (*elf_class == ELFCLASS64 && eh->e_machine != EM_X86_64)
        return error_text(err, errlen, "ELF64 file for machine %u, expected x86-64 (62)", eh->e_machine);
    if (*elf_class != ELFCLASS32 && *elf_class != ELFCLASS64)
        return error_text(err, errlen, "unknown ELF class %d", *elf_class);
    if (eh->e_type == ET_DYN && !pie_ok)
        return error_text(err, errlen, "a position-independent ELF (ET_DYN) is loaded only as a Limine "
                          "kernel; link this one with a fixed address");
    if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
        return error_text(err, errlen, "ELF type %u is not an executable (ET_EXEC): link the kernel "
                    "with a fixed address", eh->e_type);
    return 0;
}

/* Where segments go: at their physical addresses (p_paddr), or for Limine physically contiguous
 * from phys_base, each as far from it as its virtual address is from the lowest one. */
struct elf_placement {
    bool contiguous;
    uint64_t phys_base;
    uint64_t min_vaddr; /* (contiguous) as linked */
    uint64_t slide;     /* (contiguous) added to every virtual address: a PIE kernel linked low */
    struct boot_plan *plan; /* (contiguous: the segments are recorded for the page tables) */
};

static uint64_t segment_paddr(const struct elf_placement *at, const GElf_Phdr *ph)
{
    return at->contiguous ? at->phys_base + (ph->p_vaddr - at->min_vaddr) : ph->p_paddr;
}

static int load_elf_segments(struct guest_memory *mem, Elf *elf, const uint8_t *data, size_t size,
                             size_t phnum, const struct elf_placement *at, uint64_t *lo,
                             uint64_t *hi, char *err, size_t errlen)
{
    *lo = UINT64_MAX;
    *hi = 0;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph))
            return error_text(err, errlen, "program header %zu: %s", i, elf_errmsg(-1));
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        uint64_t paddr = segment_paddr(at, &ph);
        if (load_segment(mem, &ph, paddr, data, size, (unsigned)i, err, errlen))
            return -1;
        for (size_t j = 0; j < i; j++) {
            GElf_Phdr other;
            if (gelf_getphdr(elf, (int)j, &other) && other.p_type == PT_LOAD &&
                ranges_overlap(paddr, ph.p_memsz, segment_paddr(at, &other), other.p_memsz))
                return error_text(err, errlen, "segments %zu and %zu overlap in physical memory", j, i);
        }
        if (at->contiguous && at->plan->paging.segment_count < BOOT_SEGMENTS_MAX)
            at->plan->paging.segments[at->plan->paging.segment_count++] =
                (struct boot_segment){ph.p_vaddr + at->slide, ph.p_memsz, ph.p_flags};
        else if (at->contiguous)
            return error_text(err, errlen, "more than %d loadable segments", BOOT_SEGMENTS_MAX);
        if (paddr < *lo)
            *lo = paddr;
        if (paddr + ph.p_memsz > *hi)
            *hi = paddr + ph.p_memsz;
    }
    if (*lo == UINT64_MAX)
        return error_text(err, errlen, "no loadable segment (PT_LOAD) in the ELF file");
    return 0;
}

/* The lowest virtual address of any PT_LOAD segment, page-aligned down; and that every segment
 * lies in the top 2 GiB (where Limine maps a kernel that is not relocatable). A position-
 * independent kernel (pie) linked lower is slid there, as Limine does without KASLR: *slide. */
static int elf_min_vaddr(Elf *elf, size_t phnum, bool pie, uint64_t *min, uint64_t *slide,
                         char *err, size_t errlen)
{
    const uint64_t top = 0xFFFFFFFF80000000ULL;
    *min = UINT64_MAX;
    *slide = 0;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_memsz && ph.p_vaddr < *min)
            *min = ph.p_vaddr;
    }
    if (*min == UINT64_MAX)
        return error_text(err, errlen, "no loadable segment (PT_LOAD) in the ELF file");
    *min &= ~0xFFFULL;
    if (pie && *min < top)
        *slide = top - *min;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        uint64_t v = ph.p_vaddr + *slide;
        if (v < top || ph.p_memsz > -v)
            return error_text(err, errlen, "segment %zu at %#llx: a Limine kernel is linked in the "
                              "top 2 GiB (0xffffffff80000000 and up)%s", i, (unsigned long long)ph.p_vaddr,
                              pie ? ", and a position-independent one fits in 2 GiB" : "");
    }
    return 0;
}

/* Opens and checks the ELF file; *elf is for elf_end. */
static int elf_open(const uint8_t *data, size_t size, Elf **elf, GElf_Ehdr *eh, int *elf_class,
                    size_t *phnum, bool pie_ok, char *err, size_t errlen)
{
    if (elf_version(EV_CURRENT) == EV_NONE)
        return error_text(err, errlen, "libelf is out of date");
    *elf = elf_memory((char *)data, size);
    if (!*elf)
        return error_text(err, errlen, "not a readable ELF file: %s", elf_errmsg(-1));
    if (check_elf_header(*elf, eh, elf_class, pie_ok, err, errlen))
        return -1;
    if (elf_getphdrnum(*elf, phnum) || *phnum > 4096)
        return error_text(err, errlen, "bad program header table: %s", elf_errmsg(-1));
    /* libelf quietly reports no program headers when they are cut off: say what happened. */
    if (eh->e_phoff > size || (size_t)eh->e_phnum * eh->e_phentsize > size - eh->e_phoff)
        return error_text(err, errlen, "truncated: the program header table ends past the end of the file");
    return 0;
}

int loader_load_elf(struct guest_memory *mem, const char *name, const uint8_t *data, size_t size,
                    enum entry_mode requested, struct boot_plan *plan, char *err, size_t errlen)
{
    Elf *elf = NULL;
    int rc = -1, elf_class = ELFCLASSNONE;
    GElf_Ehdr eh;
    size_t phnum;
    uint64_t lo, hi, entry;
    const struct elf_placement at = {.contiguous = false};
    if (elf_open(data, size, &elf, &eh, &elf_class, &phnum, false, err, errlen) ||
        load_elf_segments(mem, elf, data, size, phnum, &at, &lo, &hi, err, errlen))
        goto out;
    if (entry_to_physical(elf, phnum, eh.e_entry, &entry)) {
        error_text(err, errlen, "entry point %#llx is outside every loadable segment",
             (unsigned long long)eh.e_entry);
        goto out;
    }
    plan->entry = requested != ENTRY_DEFAULT ? requested
                  : elf_class == ELFCLASS64  ? ENTRY_LONG
                                             : ENTRY_PROTECTED;
    if (plan->entry != ENTRY_LONG && entry > 0xFFFFFFFFULL) {
        error_text(err, errlen, "entry point %#llx is above 4 GiB: use --entry long",
             (unsigned long long)entry);
        goto out;
    }
    if (plan->entry == ENTRY_REAL && entry > 0xFFFF) {
        error_text(err, errlen, "entry point %#llx is beyond real mode's reach (CS:IP = 0:IP)",
             (unsigned long long)entry);
        goto out;
    }
    plan->entry_point = entry;
    rc = plan_add(plan, name, lo, hi - lo, SLATE_IMAGE_KERNEL, err, errlen);
out:
    if (elf)
        elf_end(elf);
    return rc;
}

/* The host view of [vaddr, vaddr + len) of a contiguously loaded kernel whose image ends at
 * guest-physical `end`, or NULL when that is outside it. */
static uint8_t *image_ptr(struct guest_memory *mem, const struct elf_placement *at, uint64_t end,
                          uint64_t vaddr, uint64_t len)
{
    uint64_t gpa = at->phys_base + (vaddr - at->min_vaddr);
    if (vaddr < at->min_vaddr || gpa < at->phys_base || gpa > end || len > end - gpa)
        return NULL;
    return memory_ram_ptr(mem, gpa, len);
}

static const char *reloc_name(uint32_t type)
{
    static const char *const names[] = {"R_X86_64_NONE", "R_X86_64_64", "R_X86_64_PC32", "R_X86_64_GOT32",
                                        "R_X86_64_PLT32", "R_X86_64_COPY", "R_X86_64_GLOB_DAT",
                                        "R_X86_64_JUMP_SLOT", "R_X86_64_RELATIVE"};
    return type < sizeof(names) / sizeof(names[0]) ? names[type] : "a relocation slate does not know";
}

/* A position-independent Limine kernel (ET_DYN), loaded where it is linked or, linked below the
 * top 2 GiB, slid to 0xffffffff80000000: its dynamic relocations are applied, as Limine does. Only R_X86_64_RELATIVE (what a static PIE
 * kernel has) is applied; any other type, and RELR or REL tables, are refused by name. */
static int apply_relocations(struct guest_memory *mem, Elf *elf, const uint8_t *data, size_t size,
                             size_t phnum, const struct elf_placement *at, uint64_t end, char *err,
                             size_t errlen)
{
    GElf_Phdr dyn = {0};
    for (size_t i = 0; i < phnum && dyn.p_type != PT_DYNAMIC; i++)
        if (!gelf_getphdr(elf, (int)i, &dyn))
            dyn.p_type = PT_NULL;
    if (dyn.p_type != PT_DYNAMIC)
        return 0; /* nothing to relocate */
    if (dyn.p_offset > size || dyn.p_filesz > size - dyn.p_offset)
        return error_text(err, errlen, "the dynamic section (PT_DYNAMIC) lies past the end of the file");
    uint64_t rela = 0, rela_size = 0, rela_ent = sizeof(Elf64_Rela);
    for (uint64_t off = 0; off + sizeof(Elf64_Dyn) <= dyn.p_filesz; off += sizeof(Elf64_Dyn)) {
        Elf64_Dyn d;
        memcpy(&d, data + dyn.p_offset + off, sizeof(d));
        if (d.d_tag == DT_NULL)
            break;
        if (d.d_tag == DT_RELA)
            rela = d.d_un.d_ptr;
        else if (d.d_tag == DT_RELASZ)
            rela_size = d.d_un.d_val;
        else if (d.d_tag == DT_RELAENT)
            rela_ent = d.d_un.d_val;
        else if (d.d_tag == DT_REL || d.d_tag == DT_RELR || d.d_tag == DT_JMPREL)
            return error_text(err, errlen, "its dynamic section has %s relocations; slate applies RELA "
                              "tables of R_X86_64_RELATIVE only (link with -z nopack-relative-relocs "
                              "and no shared libraries)",
                              d.d_tag == DT_REL ? "REL" : d.d_tag == DT_RELR ? "RELR (packed)" : "PLT");
    }
    if (!rela_size)
        return 0;
    if (rela_ent != sizeof(Elf64_Rela))
        return error_text(err, errlen, "DT_RELAENT is %llu, not %zu", (unsigned long long)rela_ent,
                          sizeof(Elf64_Rela));
    const uint8_t *table = image_ptr(mem, at, end, rela, rela_size);
    if (!table)
        return error_text(err, errlen, "its relocation table [%#llx, +%#llx) is outside the kernel's image",
                          (unsigned long long)rela, (unsigned long long)rela_size);
    for (uint64_t off = 0; off + sizeof(Elf64_Rela) <= rela_size; off += sizeof(Elf64_Rela)) {
        Elf64_Rela r;
        memcpy(&r, table + off, sizeof(r));
        uint32_t type = (uint32_t)ELF64_R_TYPE(r.r_info);
        if (type == R_X86_64_NONE)
            continue;
        if (type != R_X86_64_RELATIVE)
            return error_text(err, errlen, "relocation %llu at %#llx is %s (type %u): slate applies "
                              "R_X86_64_RELATIVE only", (unsigned long long)(off / sizeof(r)),
                              (unsigned long long)r.r_offset, reloc_name(type), type);
        uint8_t *target = image_ptr(mem, at, end, r.r_offset, 8);
        if (!target)
            return error_text(err, errlen, "relocation %llu writes %#llx, outside the kernel's image",
                              (unsigned long long)(off / sizeof(r)), (unsigned long long)r.r_offset);
        uint64_t value = (uint64_t)r.r_addend + at->slide;
        memcpy(target, &value, 8);
    }
    return 0;
}

int loader_load_elf_contiguous(struct guest_memory *mem, const char *name, const uint8_t *data,
                               size_t size, uint64_t phys_base, struct boot_plan *plan,
                               uint64_t *virt_base, uint64_t *image_size, uint64_t *entry,
                               char *err, size_t errlen)
{
    Elf *elf = NULL;
    int rc = -1, elf_class = ELFCLASSNONE;
    GElf_Ehdr eh;
    size_t phnum;
    uint64_t lo, hi;
    struct elf_placement at = {.contiguous = true, .phys_base = phys_base, .plan = plan};
    if (elf_open(data, size, &elf, &eh, &elf_class, &phnum, true, err, errlen))
        goto out;
    if (elf_class != ELFCLASS64) {
        error_text(err, errlen, "a Limine kernel is an ELF64 file");
        goto out;
    }
    if (elf_min_vaddr(elf, phnum, eh.e_type == ET_DYN, &at.min_vaddr, &at.slide, err, errlen) ||
        load_elf_segments(mem, elf, data, size, phnum, &at, &lo, &hi, err, errlen) ||
        (eh.e_type == ET_DYN && apply_relocations(mem, elf, data, size, phnum, &at, hi, err, errlen)))
        goto out;
    *virt_base = at.min_vaddr + at.slide;
    *image_size = ((hi + 0xFFF) & ~0xFFFULL) - phys_base;
    *entry = eh.e_entry + at.slide;
    rc = plan_add(plan, name, phys_base, *image_size, SLATE_IMAGE_KERNEL, err, errlen);
out:
    if (elf)
        elf_end(elf);
    return rc;
}

/* A 64-bit word at each 8-byte-aligned offset: is it the first word of a Limine request ID or of a
 * base revision tag? */
static bool has_limine_magic(const uint8_t *data, size_t size)
{
    for (size_t off = 0; off + 16 <= size; off += 8) {
        uint64_t w[2];
        memcpy(w, data + off, 16);
        if ((w[0] == LIMINE_COMMON_MAGIC_0 && w[1] == LIMINE_COMMON_MAGIC_1) ||
            (w[0] == LIMINE_BASE_REVISION_MAGIC_0 && w[1] == LIMINE_BASE_REVISION_MAGIC_1))
            return true;
    }
    return false;
}

enum boot_protocol loader_detect_protocol(const void *data, size_t size)
{
    bool elf64 = size >= EI_NIDENT && !memcmp(data, ELFMAG, SELFMAG) &&
                 ((const uint8_t *)data)[EI_CLASS] == ELFCLASS64;
    size_t offset;
    if (elf64 && has_limine_magic(data, size))
        return BOOT_LIMINE;
    if (multiboot_find_header(data, size, true, &offset))
        return BOOT_MULTIBOOT2;
    if (multiboot_find_header(data, size, false, &offset))
        return BOOT_MULTIBOOT;
    return BOOT_NATIVE;
}

static const char *protocol_name(enum boot_protocol p)
{
    return p == BOOT_MULTIBOOT2 ? "Multiboot2" : p == BOOT_MULTIBOOT ? "Multiboot" : "Limine";
}

int loader_load_kernel(struct guest_memory *mem, const struct slate_config *cfg, const char *name,
                       const void *data, size_t size, struct boot_plan *plan, char *err,
                       size_t errlen)
{
    plan->protocol = cfg->boot != BOOT_DETECT ? cfg->boot : loader_detect_protocol(data, size);
    plan->rbx = SLATE_INFO_ADDR;
    if (plan->protocol != BOOT_NATIVE && cfg->entry != ENTRY_DEFAULT)
        return error_text(err, errlen, "--entry does not apply to a %s kernel: the protocol says how "
                          "it starts (see --boot)", protocol_name(plan->protocol));
    switch (plan->protocol) {
    case BOOT_MULTIBOOT2:
    case BOOT_MULTIBOOT:
        return multiboot_load(mem, name, data, size, plan->protocol == BOOT_MULTIBOOT2, plan, err,
                              errlen);
    case BOOT_LIMINE: return limine_load(mem, name, data, size, plan, err, errlen);
    default: break;
    }
    if (size >= 4 && !memcmp(data, ELFMAG, SELFMAG))
        return loader_load_elf(mem, name, data, size, cfg->entry, plan, err, errlen);
    return load_flat(mem, name, data, size, cfg->entry, plan, err, errlen);
}

int loader_copy_image(struct guest_memory *mem, struct boot_plan *plan, const char *name,
                      const void *src, uint64_t filesz, uint64_t addr, uint64_t memsz,
                      uint32_t flags, char *err, size_t errlen)
{
    uint8_t *dst = memory_ram_ptr(mem, addr, memsz);
    if (!dst)
        return describe_outside_ram(mem, addr, memsz, "image", err, errlen);
    if (plan_add(plan, name, addr, memsz, flags, err, errlen))
        return -1;
    memcpy(dst, src, filesz);
    return 0;
}

/* ---- memory for the boot protocols ------------------------------------------------------------ */

#define LEGACY_HOLE_BASE 0xA0000ULL
#define LEGACY_HOLE_END 0x100000ULL

/* The first thing in the way of [base, base + size), or NULL. */
static bool range_taken(const struct guest_memory *mem, const struct boot_plan *plan, uint64_t base,
                        uint64_t size, uint64_t *next)
{
    uint64_t stack_top = loader_boot_stack_top(mem);
    struct boot_range fixed[] = {{LEGACY_HOLE_BASE, LEGACY_HOLE_END - LEGACY_HOLE_BASE},
                                 {stack_top - SLATE_BOOT_STACK_SIZE, SLATE_BOOT_STACK_SIZE}};
    for (unsigned i = 0; i < 2; i++)
        if (ranges_overlap(base, size, fixed[i].base, fixed[i].size))
            return *next = fixed[i].base + fixed[i].size, true;
    for (unsigned i = 0; i < plan->image_count; i++)
        if (ranges_overlap(base, size, plan->images[i].base, plan->images[i].size))
            return *next = plan->images[i].base + plan->images[i].size, true;
    for (unsigned i = 0; i < plan->data_count; i++)
        if (ranges_overlap(base, size, plan->data[i].base, plan->data[i].size))
            return *next = plan->data[i].base + plan->data[i].size, true;
    return false;
}

int loader_alloc(const struct guest_memory *mem, struct boot_plan *plan, uint64_t size,
                 uint64_t align, uint64_t floor, uint64_t *gpa, char *err, size_t errlen)
{
    if (plan->data_count == BOOT_DATA_MAX)
        return error_text(err, errlen, "internal: too many boot-data ranges");
    uint64_t low_end = mem->ram[0].gpa + mem->ram[0].size, base = (floor + align - 1) & ~(align - 1);
    uint64_t next;
    while (base + size <= low_end && base + size > base) {
        if (!range_taken(mem, plan, base, size, &next)) {
            plan->data[plan->data_count++] = (struct boot_range){base, size};
            *gpa = base;
            return 0;
        }
        base = (next + align - 1) & ~(align - 1);
    }
    return error_text(err, errlen, "no room for %llu KiB of boot information in low RAM: give more "
                      "RAM (-m)", (unsigned long long)((size + 1023) >> 10));
}

/* ---- the memory map ---------------------------------------------------------------------------- */

struct paint {
    uint64_t base, end;
    enum boot_mem_type type; /* later paints win */
};

static unsigned collect_paints(const struct guest_memory *mem, const struct boot_plan *plan,
                               bool detailed, uint64_t fb_base, uint64_t fb_size, struct paint *p)
{
    unsigned n = 0;
    for (unsigned i = 0; i < mem->ram_count; i++)
        p[n++] = (struct paint){mem->ram[i].gpa, mem->ram[i].gpa + mem->ram[i].size, BOOT_MEM_USABLE};
    if (detailed) {
        for (unsigned i = 0; i < plan->image_count; i++)
            p[n++] = (struct paint){plan->images[i].base & ~0xFFFULL,
                                    (plan->images[i].base + plan->images[i].size + 0xFFF) & ~0xFFFULL,
                                    BOOT_MEM_KERNEL};
        for (unsigned i = 0; i < plan->data_count; i++)
            p[n++] = (struct paint){plan->data[i].base, plan->data[i].base + plan->data[i].size,
                                    BOOT_MEM_BOOT_DATA};
        p[n++] = (struct paint){0, 0x1000, BOOT_MEM_RESERVED};
    }
    p[n++] = (struct paint){LEGACY_HOLE_BASE, LEGACY_HOLE_END, BOOT_MEM_RESERVED};
    if (fb_size)
        p[n++] = (struct paint){fb_base, fb_base + fb_size, BOOT_MEM_FRAMEBUFFER};
    return n;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

unsigned loader_memory_map(const struct guest_memory *mem, const struct boot_plan *plan,
                           bool detailed, uint64_t fb_base, uint64_t fb_size,
                           struct boot_mem_entry *out)
{
    struct paint p[MEM_MAX_RAM + 1 + MAX_LOADS + BOOT_DATA_MAX + 3];
    unsigned n = collect_paints(mem, plan, detailed, fb_base, fb_size, p), count = 0;
    uint64_t cuts[2 * (sizeof(p) / sizeof(p[0]))];
    for (unsigned i = 0; i < n; i++)
        cuts[2 * i] = p[i].base, cuts[2 * i + 1] = p[i].end;
    qsort(cuts, 2 * n, sizeof(cuts[0]), compare_u64);
    /* Each piece between two cuts takes the type of the last paint that covers it; a piece only
     * the legacy hole or page 0 covers (no RAM under it) is left out. */
    for (unsigned c = 0; c + 1 < 2 * n; c++) {
        uint64_t a = cuts[c], b = cuts[c + 1];
        if (a == b)
            continue;
        int type = -1;
        bool ram = false;
        for (unsigned i = 0; i < n; i++)
            if (p[i].base <= a && b <= p[i].end) {
                type = (int)p[i].type;
                ram |= i < mem->ram_count || p[i].type == BOOT_MEM_FRAMEBUFFER;
            }
        if (type < 0 || !ram)
            continue;
        if (count && out[count - 1].type == (enum boot_mem_type)type &&
            out[count - 1].base + out[count - 1].size == a)
            out[count - 1].size += b - a;
        else if (count < BOOT_MEM_MAX)
            out[count++] = (struct boot_mem_entry){a, b - a, (enum boot_mem_type)type};
    }
    return count;
}

uint64_t loader_boot_stack_top(const struct guest_memory *mem)
{
    return (mem->ram[0].gpa + mem->ram[0].size) & ~0xFULL;
}

int loader_check_boot_stack(const struct guest_memory *mem, const struct boot_plan *plan,
                            char *err, size_t errlen)
{
    if (plan->entry == ENTRY_REAL)
        return 0;
    uint64_t top = loader_boot_stack_top(mem);
    uint64_t base = top - SLATE_BOOT_STACK_SIZE;
    for (unsigned i = 0; i < plan->image_count; i++) {
        const struct loaded_image *img = &plan->images[i];
        if (ranges_overlap(img->base, img->size, base, SLATE_BOOT_STACK_SIZE))
            return error_text(err, errlen, "%s: [%#llx, %#llx) overlaps the boot stack [%#llx, %#llx) "
                        "at the top of low RAM: give more RAM (-m) or load it lower", img->name,
                        (unsigned long long)img->base,
                        (unsigned long long)(img->base + img->size), (unsigned long long)base,
                        (unsigned long long)top);
    }
    return 0;
}

/* Maps a whole file read-only (copy-on-write, so libelf may scribble). */
static int map_file(const char *path, void **data, size_t *size, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return error_text(err, errlen, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        error_text(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        error_text(err, errlen, "%s: %s", path,
             S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file");
        close(fd);
        return -1;
    }
    *size = (size_t)st.st_size;
    *data = NULL;
    if (*size) {
        *data = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (*data == MAP_FAILED) {
            error_text(err, errlen, "%s: cannot map: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

static int load_file(struct guest_memory *mem, const struct slate_config *cfg, const char *path,
                     bool kernel, uint64_t addr, struct boot_plan *plan, char *err, size_t errlen)
{
    void *data = NULL;
    size_t size = 0;
    if (map_file(path, &data, &size, err, errlen))
        return -1;
    char why[400];
    int rc = kernel ? loader_load_kernel(mem, cfg, path, data, size, plan, why, sizeof(why))
                    : loader_load_raw(mem, path, data, size, addr, plan, why, sizeof(why));
    if (rc)
        error_text(err, errlen, "%s: %s", path, why);
    if (size)
        munmap(data, size);
    return rc;
}

int loader_load_all(struct guest_memory *mem, const struct slate_config *cfg,
                    struct boot_plan *plan, char *err, size_t errlen)
{
    *plan = (struct boot_plan){0};
    if (load_file(mem, cfg, cfg->kernel, true, 0, plan, err, errlen))
        return -1;
    for (unsigned i = 0; i < cfg->load_count; i++)
        if (load_file(mem, cfg, cfg->loads[i].path, false, cfg->loads[i].addr, plan, err, errlen))
            return -1;
    if (plan->protocol != BOOT_LIMINE && loader_check_boot_stack(mem, plan, err, errlen))
        return -1;
    char why[400];
    int rc = 0;
    if (plan->protocol == BOOT_MULTIBOOT2 || plan->protocol == BOOT_MULTIBOOT)
        rc = multiboot_finish(mem, cfg, plan, why, sizeof(why));
    else if (plan->protocol == BOOT_LIMINE)
        rc = limine_finish(mem, cfg, plan, why, sizeof(why));
    if (rc)
        error_text(err, errlen, "%s: %s", cfg->kernel, why);
    return rc;
}
