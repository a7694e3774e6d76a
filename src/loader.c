/* loader.c - loads flat binaries and ELF32/ELF64 kernels (elfutils libelf) into guest RAM. */
#include "loader.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
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

int loader_load_raw(struct guest_memory *mem, const char *name, const void *data, size_t size,
                    uint64_t addr, struct boot_plan *plan, char *err, size_t errlen)
{
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
static int load_segment(struct guest_memory *mem, const GElf_Phdr *ph, const uint8_t *data,
                        size_t size, unsigned index, char *err, size_t errlen)
{
    if (ph->p_filesz > ph->p_memsz)
        return error_text(err, errlen, "segment %u: file size %#llx exceeds memory size %#llx", index,
                    (unsigned long long)ph->p_filesz, (unsigned long long)ph->p_memsz);
    if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset)
        return error_text(err, errlen, "segment %u: bytes [%#llx, +%#llx) lie past the end of the file "
                    "(%zu bytes): truncated?", index, (unsigned long long)ph->p_offset,
                    (unsigned long long)ph->p_filesz, size);
    uint8_t *dst = memory_ram_ptr(mem, ph->p_paddr, ph->p_memsz);
    if (!dst) {
        char what[32];
        snprintf(what, sizeof(what), "segment %u", index);
        return describe_outside_ram(mem, ph->p_paddr, ph->p_memsz, what, err, errlen);
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

static int check_elf_header(Elf *elf, GElf_Ehdr *eh, int *elf_class, char *err, size_t errlen)
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
    if (eh->e_type != ET_EXEC)
        return error_text(err, errlen, "ELF type %u is not an executable (ET_EXEC): link the kernel "
                    "with a fixed address", eh->e_type);
    return 0;
}

static int load_elf_segments(struct guest_memory *mem, Elf *elf, const uint8_t *data, size_t size,
                             size_t phnum, uint64_t *lo, uint64_t *hi, char *err, size_t errlen)
{
    *lo = UINT64_MAX;
    *hi = 0;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph))
            return error_text(err, errlen, "program header %zu: %s", i, elf_errmsg(-1));
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        if (load_segment(mem, &ph, data, size, (unsigned)i, err, errlen))
            return -1;
        for (size_t j = 0; j < i; j++) {
            GElf_Phdr other;
            if (gelf_getphdr(elf, (int)j, &other) && other.p_type == PT_LOAD &&
                ranges_overlap(ph.p_paddr, ph.p_memsz, other.p_paddr, other.p_memsz))
                return error_text(err, errlen, "segments %zu and %zu overlap in physical memory", j, i);
        }
        if (ph.p_paddr < *lo)
            *lo = ph.p_paddr;
        if (ph.p_paddr + ph.p_memsz > *hi)
            *hi = ph.p_paddr + ph.p_memsz;
    }
    if (*lo == UINT64_MAX)
        return error_text(err, errlen, "no loadable segment (PT_LOAD) in the ELF file");
    return 0;
}

static int load_elf(struct guest_memory *mem, const char *name, const uint8_t *data, size_t size,
                    enum entry_mode requested, struct boot_plan *plan, char *err, size_t errlen)
{
    if (elf_version(EV_CURRENT) == EV_NONE)
        return error_text(err, errlen, "libelf is out of date");
    Elf *elf = elf_memory((char *)data, size);
    if (!elf)
        return error_text(err, errlen, "not a readable ELF file: %s", elf_errmsg(-1));
    int rc = -1, elf_class = ELFCLASSNONE;
    GElf_Ehdr eh;
    size_t phnum;
    uint64_t lo, hi, entry;
    if (check_elf_header(elf, &eh, &elf_class, err, errlen))
        goto out;
    if (elf_getphdrnum(elf, &phnum) || phnum > 4096) {
        error_text(err, errlen, "bad program header table: %s", elf_errmsg(-1));
        goto out;
    }
    /* libelf quietly reports no program headers when they are cut off: say what happened. */
    if (eh.e_phoff > size || (size_t)eh.e_phnum * eh.e_phentsize > size - eh.e_phoff) {
        error_text(err, errlen, "truncated: the program header table ends past the end of the file");
        goto out;
    }
    if (load_elf_segments(mem, elf, data, size, phnum, &lo, &hi, err, errlen))
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
    elf_end(elf);
    return rc;
}

int loader_load_kernel(struct guest_memory *mem, const char *name, const void *data, size_t size,
                       enum entry_mode requested, struct boot_plan *plan, char *err, size_t errlen)
{
    if (size >= 4 && !memcmp(data, ELFMAG, SELFMAG))
        return load_elf(mem, name, data, size, requested, plan, err, errlen);
    return load_flat(mem, name, data, size, requested, plan, err, errlen);
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

static int load_file(struct guest_memory *mem, const char *path, bool kernel, uint64_t addr,
                     enum entry_mode requested, struct boot_plan *plan, char *err, size_t errlen)
{
    void *data = NULL;
    size_t size = 0;
    if (map_file(path, &data, &size, err, errlen))
        return -1;
    char why[400];
    int rc = kernel ? loader_load_kernel(mem, path, data, size, requested, plan, why, sizeof(why))
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
    if (load_file(mem, cfg->kernel, true, 0, cfg->entry, plan, err, errlen))
        return -1;
    for (unsigned i = 0; i < cfg->load_count; i++)
        if (load_file(mem, cfg->loads[i].path, false, cfg->loads[i].addr, ENTRY_DEFAULT, plan,
                      err, errlen))
            return -1;
    return loader_check_boot_stack(mem, plan, err, errlen);
}
