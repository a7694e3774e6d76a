/* core.c - see core.h. The layout is the one Linux writes for a process (and Solo5's dumpcore for
 * a unikernel): an ELF header, a PT_NOTE with one NT_PRSTATUS per CPU, then PT_LOAD segments. */
#include "core.h"

#include "cpu_state.h"
#include "outfile.h"
#include "vm.h"
#include "x86.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/procfs.h>
#include <unistd.h>

#define MAX_SEGMENTS 512
#define PTE_ADDR 0x000FFFFFFFFFF000ULL

struct segment {
    uint64_t vaddr, paddr, size, offset;
    uint32_t flags;
};

struct layout {
    struct segment seg[MAX_SEGMENTS];
    unsigned count;
    uint64_t ram_offset[MEM_MAX_RAM]; /* where each RAM region's bytes start in the file */
};

/* The file offset of guest-physical [pa, pa+size) if it lies in one RAM region, else 0. */
static uint64_t file_offset(const struct vm *vm, const struct layout *l, uint64_t pa, uint64_t size)
{
    for (unsigned i = 0; i < vm->mem.ram_count; i++) {
        const struct mem_region *r = &vm->mem.ram[i];
        if (pa >= r->gpa && size <= r->size && pa - r->gpa <= r->size - size)
            return l->ram_offset[i] + (pa - r->gpa);
    }
    return 0;
}

static void add_virtual(const struct vm *vm, struct layout *l, uint64_t va, uint64_t pa, uint64_t size)
{
    struct segment *last = l->count ? &l->seg[l->count - 1] : NULL;
    if (last && last->vaddr != last->paddr && last->vaddr + last->size == va && last->paddr + last->size == pa &&
        file_offset(vm, l, last->paddr, last->size + size)) {
        last->size += size;
        return;
    }
    uint64_t off = file_offset(vm, l, pa, size);
    if (va == pa || !off || l->count == MAX_SEGMENTS)
        return; /* identity-mapped (already there), not RAM, or too many */
    l->seg[l->count++] = (struct segment){va, pa, size, off, PF_R | PF_W | PF_X};
}

/* CPU 0's 4-level page tables, as runs of virtual memory; `budget` bounds a walk over tables
 * that point back at themselves. */
static void walk(const struct vm *vm, struct layout *l, uint64_t table, int level, uint64_t va_base,
                 unsigned *budget)
{
    const uint64_t *e = *budget ? memory_readable_ptr(&vm->mem, table, 4096) : NULL;
    if (!e)
        return;
    (*budget)--;
    for (unsigned i = 0; i < 512; i++) {
        if (!(e[i] & 1))
            continue;
        uint64_t va = va_base + ((uint64_t)i << (39 - 9 * level));
        if (level == 0 && i >= 256)
            va |= 0xFFFF000000000000ULL;
        uint64_t size = 1ULL << (39 - 9 * level);
        if (level == 3 || ((level == 1 || level == 2) && (e[i] & (1u << 7))))
            add_virtual(vm, l, va, (e[i] & PTE_ADDR) & ~(size - 1), size);
        else if (level < 3)
            walk(vm, l, e[i] & PTE_ADDR, level + 1, va, budget);
    }
}

static void prstatus_of(struct vcpu *cpu, struct elf_prstatus *st)
{
    struct cpu_state cs = {0}; /* zeros where KVM would not say */
    cpu_state_get(cpu, CPU_REGS | CPU_SREGS, &cs, NULL);
    const struct kvm_regs r = cs.regs;
    const struct kvm_sregs s = cs.sregs;
    memset(st, 0, sizeof(*st));
    st->pr_pid = (int)cpu->index + 1; /* gdb's thread N+1, as the gdb stub numbers them */
    /* struct user_regs_struct order */
    const uint64_t regs[27] = {r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8,
                               r.rax, r.rcx, r.rdx, r.rsi, r.rdi, r.rax, r.rip, s.cs.selector,
                               r.rflags, r.rsp, s.ss.selector, s.fs.base, s.gs.base, s.ds.selector,
                               s.es.selector, s.fs.selector, s.gs.selector};
    memcpy(&st->pr_reg, regs, sizeof(regs));
}

static bool write_at(int fd, const void *buf, size_t len, uint64_t off)
{
    while (len) {
        ssize_t n = pwrite(fd, buf, len, (off_t)off);
        if (n <= 0)
            return false;
        buf = (const uint8_t *)buf + n, len -= (size_t)n, off += (uint64_t)n;
    }
    return true;
}

/* A CPU's NT_PRSTATUS note: its header, "CORE", and the registers. */
static void write_note(struct vcpu *cpu, uint8_t *n)
{
    Elf64_Nhdr nh = {.n_namesz = 5, .n_descsz = sizeof(struct elf_prstatus), .n_type = NT_PRSTATUS};
    memcpy(n, &nh, sizeof(nh));
    memcpy(n + sizeof(nh), "CORE", 5);
    struct elf_prstatus st; /* built aligned, then copied to its unaligned place in the note */
    prstatus_of(cpu, &st);
    memcpy(n + sizeof(nh) + 8, &st, sizeof(st));
}

/* RAM a page at a time; pages of zeros (never touched, most of it) stay holes. */
static bool write_ram(struct vm *vm, int fd, const struct layout *l)
{
    static const uint8_t zero[4096];
    for (unsigned i = 0; i < vm->mem.ram_count; i++)
        for (uint64_t p = 0; p < vm->mem.ram[i].size; p += 4096) {
            const uint8_t *page = vm->mem.ram[i].host + p;
            if (memcmp(page, zero, 4096) && !write_at(fd, page, 4096, l->ram_offset[i] + p))
                return false;
        }
    return true;
}

static int write_core(struct vm *vm, int fd)
{
    static struct layout l;
    l.count = 0;
    unsigned cpus = vm->vcpu_count;
    size_t note_one = sizeof(Elf64_Nhdr) + 8 + sizeof(struct elf_prstatus);
    size_t notes_size = note_one * cpus;
    /* RAM first (physical = virtual), then the page tables' other views of it. */
    uint64_t header = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) * (1 + MAX_SEGMENTS);
    uint64_t off = (header + notes_size + 4095) & ~4095ULL;
    for (unsigned i = 0; i < vm->mem.ram_count; i++) {
        l.ram_offset[i] = off;
        l.seg[l.count++] = (struct segment){vm->mem.ram[i].gpa, vm->mem.ram[i].gpa, vm->mem.ram[i].size, off,
                                            PF_R | PF_W | PF_X};
        off += vm->mem.ram[i].size;
    }
    struct cpu_state cs = {0};
    unsigned budget = 4096;
    if (cpu_state_get(&vm->vcpus[0], CPU_SREGS, &cs, NULL) == 0 && (cs.sregs.cr0 & X86_CR0_PG) &&
        (cs.sregs.efer & X86_EFER_LMA))
        walk(vm, &l, cs.sregs.cr3 & PTE_ADDR, 0, 0, &budget);

    Elf64_Ehdr eh = {.e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT,
                                 ELFOSABI_NONE},
                     .e_type = ET_CORE, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
                     .e_phoff = sizeof(Elf64_Ehdr), .e_ehsize = sizeof(Elf64_Ehdr),
                     .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = (Elf64_Half)(1 + l.count)};
    Elf64_Phdr *ph = calloc(1 + l.count, sizeof(*ph));
    uint8_t *notes = calloc(1, notes_size);
    if (!ph || !notes) {
        free(ph), free(notes);
        return -ENOMEM;
    }
    uint64_t notes_off = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) * (1 + l.count);
    ph[0] = (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = notes_off, .p_filesz = notes_size, .p_align = 4};
    for (unsigned i = 0; i < l.count; i++)
        ph[1 + i] = (Elf64_Phdr){.p_type = PT_LOAD, .p_flags = l.seg[i].flags, .p_offset = l.seg[i].offset,
                                 .p_vaddr = l.seg[i].vaddr, .p_paddr = l.seg[i].paddr,
                                 .p_filesz = l.seg[i].size, .p_memsz = l.seg[i].size, .p_align = 4096};
    for (unsigned c = 0; c < cpus; c++)
        write_note(&vm->vcpus[c], notes + c * note_one);
    bool ok = write_at(fd, &eh, sizeof(eh), 0) && write_at(fd, ph, sizeof(*ph) * (1 + l.count), sizeof(eh)) &&
              write_at(fd, notes, notes_size, notes_off) && ftruncate(fd, (off_t)off) == 0;
    free(ph), free(notes);
    return ok && write_ram(vm, fd, &l) ? 0 : -errno;
}

int core_dump_at(struct vm *vm, int dirfd, const char *name, bool replace)
{
    struct outfile o;
    int fd = dirfd >= 0 ? outfile_create_at(&o, dirfd, name) : outfile_create(&o, name);
    if (fd < 0)
        return fd;
    int rc = write_core(vm, fd);
    if (close(fd) < 0 && !rc)
        rc = -errno;
    if (!rc)
        rc = outfile_place(&o, replace);
    outfile_finish(&o);
    return rc;
}

int core_dump(struct vm *vm, const char *path)
{
    int rc = core_dump_at(vm, -1, path, true);
    if (rc)
        log_error("--dump-core %s: %s", path, strerror(-rc));
    return rc;
}
