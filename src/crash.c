/* crash.c - what slate prints when the guest cannot go on: exit reason, registers, control state
 * and the bytes at RIP, so the author sees where it died without a debugger. */
#include "vm.h"

#include "symbols.h"
#include "x86.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

static void print_segment(const char *name, const struct kvm_segment *s)
{
    fprintf(stderr, "  %-3s sel=%04x base=%016llx limit=%08x type=%x%s%s%s%s dpl=%u\n", name,
            s->selector, (unsigned long long)s->base, s->limit, s->type, s->present ? " P" : "",
            s->l ? " L" : "", s->db ? " DB" : "", s->g ? " G" : "", s->dpl);
}

static void print_regs(const struct kvm_regs *r)
{
    fprintf(stderr,
            "  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n"
            "  rsi=%016llx rdi=%016llx rbp=%016llx rsp=%016llx\n"
            "  r8 =%016llx r9 =%016llx r10=%016llx r11=%016llx\n"
            "  r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n"
            "  rip=%016llx rflags=%08llx\n",
            r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rbp, r->rsp, r->r8, r->r9, r->r10,
            r->r11, r->r12, r->r13, r->r14, r->r15, r->rip, r->rflags);
}

static void print_sregs(const struct kvm_sregs *s)
{
    print_segment("cs", &s->cs);
    print_segment("ds", &s->ds);
    print_segment("es", &s->es);
    print_segment("ss", &s->ss);
    print_segment("fs", &s->fs);
    print_segment("gs", &s->gs);
    print_segment("tr", &s->tr);
    fprintf(stderr, "  gdt base=%016llx limit=%04x   idt base=%016llx limit=%04x\n",
            s->gdt.base, s->gdt.limit, s->idt.base, s->idt.limit);
    fprintf(stderr, "  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx\n"
                    "  cr8=%016llx efer=%016llx apic_base=%016llx\n",
            s->cr0, s->cr2, s->cr3, s->cr4, s->cr8, s->efer, s->apic_base);
}

static bool in_long_mode(const struct kvm_sregs *s) { return (s->efer & X86_EFER_LMA) && s->cs.l; }

static uint64_t linear_rip(const struct kvm_regs *r, const struct kvm_sregs *s)
{
    return in_long_mode(s) ? r->rip : (s->cs.base + r->rip) & 0xFFFFFFFFULL;
}

/* Disassembles from the start of RIP's function when it is known and near (so instruction
 * boundaries are right), else from RIP; shows a few instructions before RIP and after it. */
static void print_code(struct vcpu *cpu, const struct kvm_regs *r, const struct kvm_sregs *s,
                       struct symbols *syms)
{
    uint64_t rip = linear_rip(r, s);
    struct symbol_info fn;
    uint64_t start = rip;
    if (symbols_lookup(syms, rip, &fn) && fn.offset <= 512)
        start = fn.function_start;
    uint8_t code[512 + 64];
    size_t len = vcpu_read_virtual(cpu, start, code, (size_t)(rip - start) + 48);
    if (len <= rip - start) {
        fprintf(stderr, "  code at %#" PRIx64 ": not mapped to memory\n", rip);
        return;
    }
    csh cs;
    cs_mode mode = in_long_mode(s) ? CS_MODE_64 : s->cs.db ? CS_MODE_32 : CS_MODE_16;
    if (cs_open(CS_ARCH_X86, mode, &cs) != CS_ERR_OK)
        return;
    cs_insn *insn;
    size_t count = cs_disasm(cs, code, len, start, 0, &insn);
    size_t at = 0;
    while (at < count && insn[at].address < rip)
        at++;
    fprintf(stderr, "  code:\n");
    for (size_t i = at > 6 ? at - 6 : 0; i < count && i < at + 4; i++) {
        char hex[40] = "";
        for (size_t b = 0; b < insn[i].size && b < 10; b++)
            snprintf(hex + 3 * b, sizeof(hex) - 3 * b, "%02x ", insn[i].bytes[b]);
        fprintf(stderr, "  %s %016" PRIx64 "  %-30s %s %s\n", insn[i].address == rip ? "=>" : "  ",
                insn[i].address, hex, insn[i].mnemonic, insn[i].op_str);
    }
    if (at == count)
        fprintf(stderr, "     (no instruction starts at RIP: the bytes are not code)\n");
    cs_free(insn, count);
    cs_close(&cs);
}

/* Walks the page tables for va as the CPU would, and says where the walk ends. */
static void print_page_walk(struct vcpu *cpu, const struct kvm_sregs *s, const char *what, uint64_t va)
{
    fprintf(stderr, "  page walk for %s %#" PRIx64 ":", what, va);
    if (!(s->cr0 & X86_CR0_PG)) {
        fprintf(stderr, " paging is off (linear = physical)\n");
        return;
    }
    if (!(s->efer & X86_EFER_LMA)) {
        fprintf(stderr, " 32-bit paging: not walked\n");
        return;
    }
    static const char *const level_names[4] = {"PML4E", "PDPTE", "PDE", "PTE"};
    uint64_t table = s->cr3 & 0x000FFFFFFFFFF000ULL;
    for (int level = 0; level < 4; level++) {
        unsigned index = (unsigned)(va >> (39 - 9 * level)) & 511;
        const uint64_t *entry = memory_readable_ptr(&cpu->vm->mem, table + index * 8, 8);
        if (!entry) {
            fprintf(stderr, " %s table at %#" PRIx64 " is not in RAM\n", level_names[level], table);
            return;
        }
        fprintf(stderr, " %s[%u]=%#" PRIx64, level_names[level], index, *entry);
        if (!(*entry & 1)) {
            fprintf(stderr, " NOT PRESENT\n");
            return;
        }
        uint64_t frame = *entry & 0x000FFFFFFFFFF000ULL;
        if ((level == 1 || level == 2) && (*entry & (1u << 7))) { /* a 1 GiB or 2 MiB page */
            uint64_t size = level == 1 ? 1ULL << 30 : 1ULL << 21;
            fprintf(stderr, " (%s page) -> %#" PRIx64 "\n", level == 1 ? "1G" : "2M",
                    (frame & ~(size - 1)) | (va & (size - 1)));
            return;
        }
        table = frame;
    }
    fprintf(stderr, " -> %#" PRIx64 "\n", table | (va & 0xFFF));
}

/* Values on the stack that point into a kernel function: the likely return addresses. */
static void print_stack_calls(struct vcpu *cpu, const struct kvm_regs *r, const struct kvm_sregs *s,
                              struct symbols *syms)
{
    if (!syms)
        return;
    uint64_t words[64];
    unsigned width = in_long_mode(s) ? 8 : 4;
    size_t got = vcpu_read_virtual(cpu, r->rsp, words, sizeof(words)) / width;
    unsigned shown = 0;
    for (size_t i = 0; i < got && shown < 8; i++) {
        uint64_t v = width == 8 ? words[i] : ((uint32_t *)words)[i];
        char where[256];
        if (v == linear_rip(r, s) || !*symbols_describe(syms, v, where, sizeof(where)))
            continue;
        if (!shown++)
            fprintf(stderr, "  return addresses on the stack:\n");
        fprintf(stderr, "    [rsp+%#zx] %#" PRIx64 " %s\n", i * width, v, where);
    }
}

static void print_events(struct vcpu *cpu)
{
    struct kvm_vcpu_events ev;
    if (ioctl(cpu->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
        return;
    if (ev.exception.injected || ev.exception.pending)
        fprintf(stderr, "  exception being delivered: vector %u%s error code %#x\n", ev.exception.nr,
                ev.exception.has_error_code ? "," : " (no error code),", ev.exception.error_code);
}

static void print_exit_details(const struct kvm_run *run)
{
    if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
        fprintf(stderr, "  internal error suberror %u", run->internal.suberror);
        for (unsigned i = 0; i < run->internal.ndata && i < 16; i++)
            fprintf(stderr, " %llx", (unsigned long long)run->internal.data[i]);
        fputc('\n', stderr);
    } else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY) {
        fprintf(stderr, "  hardware entry failure reason %#llx\n",
                (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
    } else if (run->exit_reason == KVM_EXIT_UNKNOWN) {
        fprintf(stderr, "  hardware exit reason %#llx\n",
                (unsigned long long)run->hw.hardware_exit_reason);
    }
}

void crash_report(struct vcpu *cpu, const char *reason)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    fprintf(stderr, "slate: guest crashed on cpu %u: %s (KVM exit reason %u)\n", cpu->index,
            reason, cpu->run->exit_reason);
    print_exit_details(cpu->run);
    if (ioctl(cpu->fd, KVM_GET_REGS, &regs) < 0 || ioctl(cpu->fd, KVM_GET_SREGS, &sregs) < 0) {
        fprintf(stderr, "  (registers unavailable: %s)\n", strerror(errno));
        return;
    }
    struct symbols *syms = symbols_open(cpu->vm->cfg->kernel);
    uint64_t rip = linear_rip(&regs, &sregs);
    char where[256];
    if (*symbols_describe(syms, rip, where, sizeof(where)))
        fprintf(stderr, "  at %s\n", where);
    print_events(cpu);
    print_regs(&regs);
    print_sregs(&sregs);
    print_code(cpu, &regs, &sregs, syms);
    print_page_walk(cpu, &sregs, "rip", rip);
    print_page_walk(cpu, &sregs, "rsp", regs.rsp);
    if (sregs.cr2)
        print_page_walk(cpu, &sregs, "cr2", sregs.cr2);
    print_stack_calls(cpu, &regs, &sregs, syms);
    symbols_close(syms);
}
