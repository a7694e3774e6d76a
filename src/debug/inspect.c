/* inspect.c - looking at a stopped vCPU: registers, disassembly, page walks, the page-table map,
 * and the crash report built from them, so the author sees where the kernel died without a
 * debugger. The monitor uses the same pieces. */
#include "inspect.h"
#include "timetravel.h"

#include "disasm.h"
#include "backtrace.h"
#include "cpu_state.h"
#include "debug_room.h"
#include "exctrace.h"
#include "explain.h"
#include "module.h"
#include "replay.h"

#include "vm.h"

#include "symbols.h"
#include "x86.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static void print_segment(FILE *out, const char *name, const struct kvm_segment *s)
{
    fprintf(out, "  %-3s sel=%04x base=%016llx limit=%08x type=%x%s%s%s%s dpl=%u\n", name,
            s->selector, (unsigned long long)s->base, s->limit, s->type, s->present ? " P" : "",
            s->l ? " L" : "", s->db ? " DB" : "", s->g ? " G" : "", s->dpl);
}

static void print_regs(FILE *out, const struct kvm_regs *r)
{
    fprintf(out,
            "  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n"
            "  rsi=%016llx rdi=%016llx rbp=%016llx rsp=%016llx\n"
            "  r8 =%016llx r9 =%016llx r10=%016llx r11=%016llx\n"
            "  r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n"
            "  rip=%016llx rflags=%08llx\n",
            r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rbp, r->rsp, r->r8, r->r9, r->r10,
            r->r11, r->r12, r->r13, r->r14, r->r15, r->rip, r->rflags);
}

static void print_sregs(FILE *out, const struct kvm_sregs *s)
{
    print_segment(out, "cs", &s->cs);
    print_segment(out, "ds", &s->ds);
    print_segment(out, "es", &s->es);
    print_segment(out, "ss", &s->ss);
    print_segment(out, "fs", &s->fs);
    print_segment(out, "gs", &s->gs);
    print_segment(out, "tr", &s->tr);
    fprintf(out, "  gdt base=%016llx limit=%04x   idt base=%016llx limit=%04x\n",
            s->gdt.base, s->gdt.limit, s->idt.base, s->idt.limit);
    fprintf(out, "  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx\n"
                    "  cr8=%016llx efer=%016llx apic_base=%016llx\n",
            s->cr0, s->cr2, s->cr3, s->cr4, s->cr8, s->efer, s->apic_base);
}

static bool in_long_mode(const struct kvm_sregs *s) { return (s->efer & X86_EFER_LMA) && s->cs.l; }

static uint64_t linear_rip(const struct kvm_regs *r, const struct kvm_sregs *s)
{
    return in_long_mode(s) ? r->rip : (s->cs.base + r->rip) & 0xFFFFFFFFULL;
}

void inspect_disasm(FILE *out, struct vcpu *cpu, const struct kvm_sregs *s, uint64_t from,
                    uint64_t mark, unsigned before, unsigned after, struct symbols *syms)
{
    uint8_t code[1024];
    size_t want = (size_t)(mark - from) + 16 * (size_t)after;
    size_t len = vcpu_read_virtual(cpu, from, code, want < sizeof(code) ? want : sizeof(code));
    if (len <= mark - from) {
        fprintf(out, "  %#" PRIx64 ": not mapped to memory\n", mark);
        return;
    }
    const struct disasm_module *dis =
        module_load("disasm", "slate_disasm_module", &slate_disasm_module, "disassembly");
    struct disasm_insn *insn = dis ? calloc(sizeof(code), sizeof(*insn)) : NULL;
    if (!insn)
        return;
    size_t count = dis->decode(code, len, from, in_long_mode(s) ? 64 : s->cs.db ? 32 : 16, insn, sizeof(code));
    size_t at = 0;
    while (at < count && insn[at].address < mark)
        at++;
    for (size_t i = at > before ? at - before : 0; i < count && i < at + after; i++) {
        char hex[40] = "";
        for (size_t b = 0; b < insn[i].size && b < 10; b++)
            snprintf(hex + 3 * b, sizeof(hex) - 3 * b, "%02x ", insn[i].bytes[b]);
        struct symbol_info fn;
        if (symbols_lookup(syms, insn[i].address, &fn) && fn.offset == 0)
            fprintf(out, "  %016" PRIx64 " <%s>:\n", insn[i].address, fn.function);
        fprintf(out, "  %s %016" PRIx64 "  %-30s %s %s\n", insn[i].address == mark && before ? "=>" : "  ",
                insn[i].address, hex, insn[i].mnemonic, insn[i].operands);
    }
    if (at == count)
        fprintf(out, "     (no instruction starts at %#" PRIx64 ": the bytes are not code)\n", mark);
    free(insn);
}

/* Disassembles from the start of RIP's function when it is known and near (so instruction
 * boundaries are right), else from RIP; shows a few instructions before RIP and after it. */
static void print_code(FILE *out, struct vcpu *cpu, const struct kvm_regs *r, const struct kvm_sregs *s,
                       struct symbols *syms)
{
    uint64_t rip = linear_rip(r, s);
    struct symbol_info fn;
    uint64_t start = rip;
    if (symbols_lookup(syms, rip, &fn) && fn.offset <= 512)
        start = fn.function_start;
    fprintf(out, "  code:\n");
    inspect_disasm(out, cpu, s, start, rip, 6, 4, syms);
}

/* Walks the page tables for va as the CPU would, and says where the walk ends. */
void inspect_page_walk(FILE *out, struct vcpu *cpu, const struct kvm_sregs *s, const char *what, uint64_t va)
{
    fprintf(out, "  page walk for %s %#" PRIx64 ":", what, va);
    if (!(s->cr0 & X86_CR0_PG)) {
        fprintf(out, " paging is off (linear = physical)\n");
        return;
    }
    if (!(s->efer & X86_EFER_LMA)) {
        fprintf(out, " 32-bit paging: not walked\n");
        return;
    }
    static const char *const level_names[4] = {"PML4E", "PDPTE", "PDE", "PTE"};
    uint64_t table = s->cr3 & 0x000FFFFFFFFFF000ULL;
    for (int level = 0; level < 4; level++) {
        unsigned index = (unsigned)(va >> (39 - 9 * level)) & 511;
        const uint64_t *entry = memory_readable_ptr(&cpu->vm->mem, table + index * 8, 8);
        if (!entry) {
            fprintf(out, " %s table at %#" PRIx64 " is not in RAM\n", level_names[level], table);
            return;
        }
        fprintf(out, " %s[%u]=%#" PRIx64, level_names[level], index, *entry);
        if (!(*entry & 1)) {
            fprintf(out, " NOT PRESENT\n");
            return;
        }
        uint64_t frame = *entry & 0x000FFFFFFFFFF000ULL;
        if ((level == 1 || level == 2) && (*entry & (1u << 7))) { /* a 1 GiB or 2 MiB page */
            uint64_t size = level == 1 ? 1ULL << 30 : 1ULL << 21;
            fprintf(out, " (%s page) -> %#" PRIx64 "\n", level == 1 ? "1G" : "2M",
                    (frame & ~(size - 1)) | (va & (size - 1)));
            return;
        }
        table = frame;
    }
    fprintf(out, " -> %#" PRIx64 "\n", table | (va & 0xFFF));
}

/* Values on the stack that point into a kernel function: the likely return addresses. */
/* The call stack (backtrace.c); where it is no deeper than RIP, the code addresses found on the
 * stack instead. */
static void print_stack_calls(FILE *out, struct vcpu *cpu, const struct kvm_regs *r, const struct kvm_sregs *s,
                              struct symbols *syms)
{
    if (!syms)
        return;
    struct bt_frame frames[BACKTRACE_MAX];
    unsigned n = backtrace_of(cpu, r, s, syms, frames, BACKTRACE_MAX);
    if (n > 1) {
        fprintf(out, "  backtrace:\n");
        for (unsigned i = 0; i < n; i++) {
            char where[256];
            fprintf(out, "    #%u %#" PRIx64 " %s%s\n", i, frames[i].pc,
                    backtrace_describe(syms, &frames[i], where, sizeof(where)),
                    i && frames[i].activation ? " (interrupted here)" : "");
        }
        return;
    }
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
            fprintf(out, "  return addresses on the stack:\n");
        fprintf(out, "    [rsp+%#zx] %#" PRIx64 " %s\n", i * width, v, where);
    }
}

static void print_events(FILE *out, struct vcpu *cpu)
{
    struct cpu_state st = {0};
    if (cpu_state_get(cpu, CPU_EVENTS, &st, NULL))
        return;
    const struct kvm_vcpu_events ev = st.events;
    if (ev.exception.injected || ev.exception.pending)
        fprintf(out, "  exception being delivered: vector %u%s error code %#x\n", ev.exception.nr,
                ev.exception.has_error_code ? "," : " (no error code),", ev.exception.error_code);
}

static void print_exit_details(FILE *out, const struct kvm_run *run)
{
    if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
        fprintf(out, "  internal error suberror %u", run->internal.suberror);
        for (unsigned i = 0; i < run->internal.ndata && i < 16; i++)
            fprintf(out, " %llx", (unsigned long long)run->internal.data[i]);
        fputc('\n', out);
    } else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY) {
        fprintf(out, "  hardware entry failure reason %#llx\n",
                (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
    } else if (run->exit_reason == KVM_EXIT_UNKNOWN) {
        fprintf(out, "  hardware exit reason %#llx\n",
                (unsigned long long)run->hw.hardware_exit_reason);
    }
}

void inspect_registers(FILE *out, struct vcpu *cpu)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    if (cpu_state_regs(cpu, &regs, &sregs) < 0) {
        fprintf(out, "  (registers unavailable: %s)\n", strerror(errno));
        return;
    }
    print_regs(out, &regs);
    print_sregs(out, &sregs);
}

static bool read_guest(void *ctx, uint64_t gpa, void *buf, size_t len)
{
    const void *p = memory_readable_ptr(ctx, gpa, len);
    if (p)
        memcpy(buf, p, len);
    return p != NULL;
}

/* What the instruction at RIP does that faults: a memory access that page-faults (#PF) or is not
 * canonical (#GP, #SS for the stack), or a division by zero (#DE). */
struct faulting_access {
    unsigned vector;
    uint64_t addr;
    bool write;
    char insn[32]; /* its mnemonic */
    char why[48];  /* "not mapped", "read-only", "a supervisor page" */
};

/* Register `name` ("rax", "r8d", "eip") of r; RIP-relative addresses count from next_rip. */
static bool reg_value(const struct kvm_regs *r, const char *name, uint64_t next_rip, uint64_t *v)
{
    static const struct { const char *name[3]; size_t off; } gprs[] = {
        {{"rax", "eax", "ax"}, offsetof(struct kvm_regs, rax)}, {{"rbx", "ebx", "bx"}, offsetof(struct kvm_regs, rbx)},
        {{"rcx", "ecx", "cx"}, offsetof(struct kvm_regs, rcx)}, {{"rdx", "edx", "dx"}, offsetof(struct kvm_regs, rdx)},
        {{"rsi", "esi", "si"}, offsetof(struct kvm_regs, rsi)}, {{"rdi", "edi", "di"}, offsetof(struct kvm_regs, rdi)},
        {{"rsp", "esp", "sp"}, offsetof(struct kvm_regs, rsp)}, {{"rbp", "ebp", "bp"}, offsetof(struct kvm_regs, rbp)},
        {{"r8", "r8d", "r8w"}, offsetof(struct kvm_regs, r8)},  {{"r9", "r9d", "r9w"}, offsetof(struct kvm_regs, r9)},
        {{"r10", "r10d", "r10w"}, offsetof(struct kvm_regs, r10)}, {{"r11", "r11d", "r11w"}, offsetof(struct kvm_regs, r11)},
        {{"r12", "r12d", "r12w"}, offsetof(struct kvm_regs, r12)}, {{"r13", "r13d", "r13w"}, offsetof(struct kvm_regs, r13)},
        {{"r14", "r14d", "r14w"}, offsetof(struct kvm_regs, r14)}, {{"r15", "r15d", "r15w"}, offsetof(struct kvm_regs, r15)},
    };
    static const uint64_t masks[3] = {~0ULL, 0xFFFFFFFFULL, 0xFFFFULL};
    if (!strcmp(name, "rip") || !strcmp(name, "eip")) {
        *v = next_rip;
        return true;
    }
    for (size_t i = 0; i < sizeof(gprs) / sizeof(gprs[0]); i++)
        for (int w = 0; w < 3; w++)
            if (!strcmp(name, gprs[i].name[w])) {
                uint64_t full;
                memcpy(&full, (const char *)r + gprs[i].off, sizeof(full));
                *v = full & masks[w];
                return true;
            }
    return false;
}

static bool canonical(const struct kvm_sregs *s, uint64_t va)
{
    unsigned bits = (s->cr4 & (1ULL << 12)) ? 57 : 48;
    return (uint64_t)((int64_t)(va << (64 - bits)) >> (64 - bits)) == va;
}

/* div or idiv by a register or memory operand that is 0: #DE. */
static bool divides_by_zero(struct vcpu *cpu, const struct kvm_regs *r, const struct disasm_insn *insn,
                            const uint64_t *mem_addr, struct faulting_access *fa)
{
    if (strcmp(insn->mnemonic, "div") && strcmp(insn->mnemonic, "idiv"))
        return false;
    uint64_t v = 1;
    if (insn->mem_count && mem_addr) {
        unsigned size = insn->mem[0].size && insn->mem[0].size <= 8 ? insn->mem[0].size : 8;
        v = 0;
        if (vcpu_read_virtual(cpu, *mem_addr, &v, size) != size)
            return false;
    } else if (!reg_value(r, insn->operands, r->rip + insn->size, &v)) {
        return false;
    }
    if (v)
        return false;
    *fa = (struct faulting_access){.vector = 0};
    snprintf(fa->insn, sizeof(fa->insn), "%s", insn->mnemonic);
    snprintf(fa->why, sizeof(fa->why), "%.47s", insn->operands);
    return true;
}

/* The instruction at the CPU's RIP, decoded in its mode. False when it cannot be read or decoded
 * (or there is no disassembler). */
static bool decode_at_rip(struct vcpu *cpu, const struct kvm_regs *r, const struct kvm_sregs *s,
                          struct disasm_insn *insn)
{
    uint8_t code[16];
    size_t len = vcpu_read_virtual(cpu, linear_rip(r, s), code, sizeof(code));
    const struct disasm_module *dis =
        len ? module_load("disasm", "slate_disasm_module", &slate_disasm_module, "disassembly") : NULL;
    unsigned bits = in_long_mode(s) ? 64 : s->cs.db ? 32 : 16;
    return dis && dis->decode(code, len, r->rip, bits, insn, 1) == 1;
}

/* Whether the instruction at RIP (a long-mode kernel's) faults, and how: a memory access that is
 * not canonical (#GP, or #SS through RSP or RBP), not mapped or not writable (#PF), or a
 * division by zero (#DE). Its explicit memory operands are decoded with capstone; a push or call
 * writes below RSP, a pop or ret reads at RSP. */
static bool find_faulting_access(struct vcpu *cpu, const struct kvm_regs *r, const struct kvm_sregs *s,
                                 struct faulting_access *fa)
{
    struct disasm_insn insn;
    if (!in_long_mode(s) || !(s->cr0 & X86_CR0_PG) || !decode_at_rip(cpu, r, s, &insn))
        return false;
    struct { uint64_t addr; bool write, stack; } access[4];
    unsigned n = 0;
    for (unsigned i = 0; i < insn.mem_count; i++) {
        const struct disasm_mem *m = &insn.mem[i];
        uint64_t base = 0, index = 0, next = r->rip + insn.size;
        if ((*m->base && !reg_value(r, m->base, next, &base)) || (*m->index && !reg_value(r, m->index, next, &index)))
            continue;
        uint64_t seg = !strcmp(m->segment, "fs") ? s->fs.base : !strcmp(m->segment, "gs") ? s->gs.base : 0;
        access[n].addr = seg + base + index * (uint64_t)m->scale + (uint64_t)m->disp;
        access[n].stack = !strcmp(m->base, "rsp") || !strcmp(m->base, "rbp");
        access[n++].write = m->write;
    }
    if (divides_by_zero(cpu, r, &insn, n ? &access[0].addr : NULL, fa))
        return true;
    if (!strncmp(insn.mnemonic, "push", 4) || !strcmp(insn.mnemonic, "call"))
        access[n].addr = r->rsp - 8, access[n].stack = true, access[n++].write = true;
    else if (!strncmp(insn.mnemonic, "pop", 3) || !strcmp(insn.mnemonic, "ret"))
        access[n].addr = r->rsp, access[n].stack = true, access[n++].write = false;
    struct explain_memory mem = {read_guest, &cpu->vm->mem};
    for (unsigned i = 0; i < n; i++) {
        *fa = (struct faulting_access){.vector = 14, .addr = access[i].addr, .write = access[i].write};
        snprintf(fa->insn, sizeof(fa->insn), "%s", insn.mnemonic);
        if (!canonical(s, access[i].addr)) {
            fa->vector = access[i].stack ? 12 : 13;
            snprintf(fa->why, sizeof(fa->why), "not canonical");
            return true;
        }
        if (explain_page_fault(&mem, s, access[i].addr, access[i].write, fa->why, sizeof(fa->why)))
            return true;
    }
    return false;
}

/* How the report knows which exception came first. */
enum first_basis { FIRST_UNKNOWN, FIRST_TRACED, FIRST_INSTRUCTION, FIRST_ACCESS, FIRST_CR2 };

/* The exception the CPU most likely raised first, from the instruction at RIP (a fault leaves
 * RIP on it): int3, int n, ud2, or a memory access that page-faults; else a page fault when CR2
 * is set (a guess). -1 when there is no telling. */
static int first_exception(struct vcpu *cpu, const struct kvm_regs *r, const struct kvm_sregs *s,
                           const struct faulting_access *fa, enum first_basis *basis)
{
    uint8_t code[2] = {0};
    size_t got = vcpu_read_virtual(cpu, linear_rip(r, s), code, 2);
    *basis = FIRST_INSTRUCTION;
    if (got >= 1 && code[0] == 0xCC)
        return 3;
    if (got == 2 && code[0] == 0xCD)
        return code[1];
    if (got == 2 && code[0] == 0x0F && code[1] == 0x0B)
        return 6;
    *basis = fa ? FIRST_ACCESS : s->cr2 ? FIRST_CR2 : FIRST_UNKNOWN;
    return fa ? (int)fa->vector : *basis == FIRST_UNKNOWN ? -1 : 14;
}

/* "why: KVM could not emulate the instruction at RIP: ..." with the instruction decoded in the
 * CPU's mode. False when it cannot be read or decoded. */
static bool print_unemulated(FILE *out, struct vcpu *cpu, const struct kvm_regs *r, const struct kvm_sregs *s)
{
    struct disasm_insn insn;
    if (!decode_at_rip(cpu, r, s, &insn))
        return false;
    char bytes[3 * 16 + 1] = "";
    for (unsigned i = 0, used = 0; i < insn.size && i < 16; i++)
        used += (unsigned)snprintf(bytes + used, sizeof(bytes) - used, "%s%02x", i ? " " : "", insn.bytes[i]);
    char *why = debug_room(cpu->vm)->crash_why;
    snprintf(why, sizeof(debug_room(cpu->vm)->crash_why), "KVM could not emulate the instruction at RIP: %s%s%s (%s)",
             insn.mnemonic, *insn.operands ? " " : "", insn.operands, bytes);
    fprintf(out, "  why: %s\n", why);
    fprintf(out, "       (not a triple fault: this host's KVM cannot run that instruction for the guest; "
                 "docs/debugging.md, What depends on the host)\n");
    return true;
}

/* Why the CPU could not go on: the exception delivery that failed, step by step. `stale` says
 * the state is from the CPU's last exit before the fault, not from the fault itself; fa is the
 * instruction's faulting access, if it has one. */
static void print_why(FILE *out, struct vcpu *cpu, const struct kvm_regs *r, const struct kvm_sregs *s,
                      const char *reason, bool stale, const struct faulting_access *fa)
{
    bool triple = strstr(reason, "triple fault") != NULL;
    if (!triple && !strstr(reason, "internal error"))
        return; /* a --strict stop or an entry failure: nothing was being delivered */
    if (vcpu_is_reset_state(r, s)) {
        fprintf(out, "  note: KVM reset this CPU before slate saw the %s (KVM on AMD does), and it "
                     "made no exit before: the state below is the CPU after RESET, not at the crash\n",
                triple ? "triple fault" : "failure");
        return;
    }
    struct explain_memory mem = {read_guest, &cpu->vm->mem};
    char why[160], chain[512], name[24];
    int first = exc_trace_last_vector(cpu->vm, cpu->index); /* --trace exc saw it */
    enum first_basis basis = first >= 0 ? FIRST_TRACED : FIRST_UNKNOWN;
    if (first < 0 && !stale)
        first = first_exception(cpu, r, s, fa, &basis);
    /* KVM's emulator gave up, and the instruction raises nothing slate can see: not a failed
     * delivery but an instruction this host's KVM cannot run (PVM: x87 and SSE loads, xgetbv). */
    if (!triple && !stale && cpu->run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
        (basis == FIRST_UNKNOWN || basis == FIRST_CR2) && print_unemulated(out, cpu, r, s))
        return;
    /* An internal error is a triple fault when no exception could be delivered (nested KVM
     * reports it so); anything else is not for the explainer. */
    if (!triple && explain_delivery(&mem, s, r->rsp, 8, why, sizeof(why)))
        return;
    explain_triple_fault(&mem, s, r->rsp, first, chain, sizeof(chain));
    fprintf(out, "  why: %s\n", chain);
    snprintf(debug_room(cpu->vm)->crash_why, sizeof(debug_room(cpu->vm)->crash_why), "%s", chain);
    if (basis == FIRST_ACCESS && fa->vector == 0)
        fprintf(out, "       (#DE: %s divides by %s, which is 0)\n", fa->insn, fa->why);
    else if (basis == FIRST_ACCESS)
        fprintf(out, "       (%s: %s %s %#" PRIx64 ", which is %s)\n",
                explain_vector_name(fa->vector, name, sizeof(name)), fa->insn, fa->write ? "writes" : "reads",
                fa->addr, fa->why);
    else if (basis == FIRST_CR2)
        fprintf(out, "       (%s is a guess from CR2)\n", explain_vector_name((unsigned)first, name, sizeof(name)));
    else if (first < 0 && stale)
        fprintf(out, "       (with the IDT, GDT and stack of the last exit; which exception came first "
                     "is not known: --trace exc records it)\n");
    else if (first < 0)
        fprintf(out, "       (which exception came first is not known)\n");
}

struct flight_print {
    FILE *out;
    struct vm *vm;
    int64_t now;
};

static void print_event(void *ctx, const struct flight_event *e)
{
    struct flight_print *p = ctx;
    char where[64] = "";
    const struct bus_range *r = NULL;
    if (e->kind == FLIGHT_IN || e->kind == FLIGHT_OUT)
        r = bus_find(&p->vm->pio, e->addr);
    else if (e->kind == FLIGHT_MMIO_READ || e->kind == FLIGHT_MMIO_WRITE)
        r = bus_find(&p->vm->mmio, e->addr);
    if (r)
        snprintf(where, sizeof(where), " (%s+%#" PRIx64 ")", r->name, e->addr - r->base);
    double ms = (double)(p->now - e->ns) / 1e6;
    if (e->kind == FLIGHT_HYPERCALL)
        fprintf(p->out, "    -%.3f ms cpu%u hypercall %" PRIu64 " = %" PRId64 "\n", ms, e->cpu, e->addr,
                (int64_t)e->value);
    else if (e->kind == FLIGHT_EXCEPTION)
        fprintf(p->out, "    -%.3f ms cpu%u exception %s at rip=%#" PRIx64 "\n", ms, e->cpu,
                explain_vector_name((unsigned)e->addr, where, sizeof(where)), e->value);
    else if (e->kind == FLIGHT_IRQ)
        fprintf(p->out, "    -%.3f ms cpu%u irq vector %#" PRIx64 " (gsi %" PRIu64 ")\n", ms, e->cpu, e->addr,
                e->value);
    else if (e->text_len > 1) { /* console output, one event for the run of bytes */
        char text[4 * FLIGHT_TEXT + 8];
        flight_text(e, text, sizeof(text));
        fprintf(p->out, "    -%.3f ms cpu%u out %#" PRIx64 "%s \"%s\" (%u bytes)\n", ms, e->cpu, e->addr, where,
                text, e->text_len);
    }
    else
        fprintf(p->out, "    -%.3f ms cpu%u %s %#" PRIx64 "%s %s %#" PRIx64 " (%u bytes)\n", ms, e->cpu,
                flight_kind_name((enum flight_kind)e->kind), e->addr, where,
                e->kind == FLIGHT_OUT || e->kind == FLIGHT_MMIO_WRITE ? "<-" : "->", e->value, e->width);
}

void inspect_flight(FILE *out, struct vm *vm)
{
    if (!atomic_load(&vm->flight.next))
        return;
    fprintf(out, "  the last events, oldest first (flight recorder):\n");
    struct flight_print p = {out, vm, clock_now_ns()};
    flight_each(&vm->flight, print_event, &p);
}

/* A replay's crash: the instructions that led to it, run again from its last checkpoint. */
static void print_trail(FILE *out, struct vcpu *cpu, struct symbols *syms)
{
    struct trail_insn trail[TT_TRAIL_LEN];
    uint64_t replayed = 0;
    unsigned n = timetravel_trail(debug_room(cpu->vm)->timetravel, trail, &replayed);
    const struct disasm_module *dis =
        n ? module_load("disasm", "slate_disasm_module", &slate_disasm_module, "disassembly") : NULL;
    if (!n && cpu->vm->cfg->record_path)
        fprintf(out, "  (recorded, but the instructions before the fault could not be run again; gdb on\n"
                     "   `slate --replay %s` can go back from the last checkpoint)\n", cpu->vm->cfg->record_path);
    if (!n)
        return;
    fprintf(out, "  the last %u instructions, oldest first (%" PRIu64 " run again from the last checkpoint):\n",
            n, replayed);
    for (unsigned i = 0; i < n; i++) {
        struct disasm_insn insn;
        char where[256];
        bool decoded = dis && dis->decode(trail[i].bytes, sizeof(trail[i].bytes), trail[i].rip, trail[i].bits, &insn, 1) == 1;
        fprintf(out, "  %s %016" PRIx64 "  %-34s %s %s\n", i + 1 == n ? "=>" : "  ", trail[i].rip,
                symbols_describe(syms, trail[i].rip, where, sizeof(where)), decoded ? insn.mnemonic : "?",
                decoded ? insn.operands : "");
    }
}

void crash_report(struct vcpu *cpu, const char *reason)
{
    FILE *out = cpu->vm->report_out ? cpu->vm->report_out : stderr;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    fprintf(out, "slate: guest crashed on cpu %u: %s (KVM exit reason %u)\n", cpu->index,
            reason, cpu->run->exit_reason);
    print_exit_details(out, cpu->run);
    if (cpu_state_regs(cpu, &regs, &sregs) < 0) {
        fprintf(out, "  (registers unavailable: %s)\n", strerror(errno));
        return;
    }
    const struct replay_crash rc = replay_crash_of(cpu);
    bool stale = rc.state == CRASH_STATE_RESUMED;
    const char *from = rc.from_entry ? "its start" : "its last exit";
    if (rc.state == CRASH_STATE_REPLAYED)
        fprintf(out, "  note: KVM reset this CPU at the fault (KVM on AMD does); slate replayed it from %s,\n"
                     "        %u instructions by single steps, to the instruction that faulted\n",
                from, rc.steps);
    else if (stale)
        fprintf(out, "  note: KVM reset this CPU at the fault (KVM on AMD does), and a replay from %s did\n"
                     "        not reach it in %d steps: what follows is the CPU there, %.3f ms before the crash\n",
                from, REPLAY_MAX_STEPS, (double)rc.after_ns / 1e6);
    struct symbols *syms = symbols_open(config_symbols(cpu->vm->cfg));
    uint64_t rip = linear_rip(&regs, &sregs);
    char where[256];
    if (*symbols_describe(syms, rip, where, sizeof(where)))
        fprintf(out, "  %s %s\n", stale ? "last exit at" : "at", where);
    print_events(out, cpu);
    struct faulting_access access;
    bool faulting = !stale && find_faulting_access(cpu, &regs, &sregs, &access);
    print_why(out, cpu, &regs, &sregs, reason, stale, faulting ? &access : NULL);
    print_regs(out, &regs);
    print_sregs(out, &sregs);
    print_code(out, cpu, &regs, &sregs, syms);
    print_trail(out, cpu, syms);
    inspect_page_walk(out, cpu, &sregs, "rip", rip);
    inspect_page_walk(out, cpu, &sregs, "rsp", regs.rsp);
    if (faulting && access.vector == 14)
        inspect_page_walk(out, cpu, &sregs, "access", access.addr);
    if (sregs.cr2 && !(faulting && sregs.cr2 == access.addr))
        inspect_page_walk(out, cpu, &sregs, "cr2", sregs.cr2);
    print_stack_calls(out, cpu, &regs, &sregs, syms);
    exc_trace_history(cpu->vm, out);
    inspect_flight(out, cpu->vm);
    symbols_close(syms);
}

/* A run of virtual memory mapped contiguously with the same permissions. */
struct mapping_run {
    uint64_t va, pa, size, flags;
    unsigned lines, max_lines, skipped;
    unsigned tables_left; /* the walk's budget */
    FILE *out;
};

#define PTE_FLAGS (2ULL | 4ULL | (1ULL << 63)) /* writable, user, no-execute */
/* Page tables are the guest's: every entry of every level may point at the same table, which
 * would make a walk visit 512^4 entries. 8192 tables map 16 GiB in 4 KiB pages and take a few
 * milliseconds; past that the listing says where it stopped. */
#define MAX_TABLES_WALKED 8192

static void run_flush(struct mapping_run *r)
{
    if (!r->size)
        return;
    if (r->lines++ < r->max_lines)
        fprintf(r->out, "  %016" PRIx64 "-%016" PRIx64 " -> %016" PRIx64 " %c%c%c\n", r->va,
                r->va + r->size, r->pa, 'r', r->flags & 2 ? 'w' : '-', r->flags & (1ULL << 63) ? '-' : 'x');
    else
        r->skipped++;
    r->size = 0;
}

static void run_add(struct mapping_run *r, uint64_t va, uint64_t pa, uint64_t size, uint64_t flags)
{
    if (r->size && r->va + r->size == va && r->pa + r->size == pa && r->flags == flags) {
        r->size += size;
        return;
    }
    run_flush(r);
    r->va = va, r->pa = pa, r->size = size, r->flags = flags;
}

static void walk_table(const struct guest_memory *mem, struct mapping_run *r, uint64_t table,
                       int level, uint64_t va_base, uint64_t inherited)
{
    if (r->tables_left == 0)
        return;
    r->tables_left--;
    const uint64_t *entries = memory_readable_ptr(mem, table, 4096);
    if (!entries)
        return;
    for (unsigned i = 0; i < 512 && r->tables_left; i++) {
        uint64_t e = entries[i];
        if (!(e & 1))
            continue;
        uint64_t va = va_base + ((uint64_t)i << (39 - 9 * level));
        if (level == 0 && i >= 256)
            va |= 0xFFFF000000000000ULL; /* canonical upper half */
        uint64_t flags = level == 0 ? (e & PTE_FLAGS) : (inherited & e & 6) | ((inherited | e) & (1ULL << 63));
        uint64_t frame = e & 0x000FFFFFFFFFF000ULL;
        if (level == 3 || ((level == 1 || level == 2) && (e & (1u << 7)))) {
            uint64_t size = 1ULL << (39 - 9 * level);
            run_add(r, va, frame & ~(size - 1), size, flags);
        } else if (level < 3) {
            walk_table(mem, r, frame, level + 1, va, flags);
        }
    }
}

void inspect_mappings_at(FILE *out, const struct guest_memory *mem, const struct kvm_sregs *s,
                         unsigned max_lines)
{
    if (!(s->cr0 & X86_CR0_PG)) {
        fprintf(out, "  paging is off: linear addresses are physical\n");
        return;
    }
    if (!(s->efer & X86_EFER_LMA)) {
        fprintf(out, "  32-bit paging: not listed\n");
        return;
    }
    struct mapping_run r = {.max_lines = max_lines, .tables_left = MAX_TABLES_WALKED, .out = out};
    walk_table(mem, &r, s->cr3 & 0x000FFFFFFFFFF000ULL, 0, 0, 6);
    run_flush(&r);
    if (r.skipped)
        fprintf(out, "  ... and %u more runs\n", r.skipped);
    if (!r.tables_left)
        fprintf(out, "  ... the walk stopped after %d page tables (tables that point back at "
                "themselves, or more than 16 GiB in 4 KiB pages)\n", MAX_TABLES_WALKED);
    if (!r.lines)
        fprintf(out, "  nothing is mapped\n");
}

void inspect_mappings(FILE *out, struct vcpu *cpu, unsigned max_lines)
{
    struct cpu_state st = {0};
    int rc = cpu_state_get(cpu, CPU_SREGS, &st, NULL);
    if (rc) {
        fprintf(out, "  (registers unavailable: %s)\n", strerror(-rc));
        return;
    }
    inspect_mappings_at(out, &cpu->vm->mem, &st.sregs, max_lines);
}
