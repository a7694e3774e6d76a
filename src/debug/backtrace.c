/* backtrace.c - see backtrace.h. */
#include "backtrace.h"

#include "symbols.h"
#include "vcpu.h"
#include "x86.h"

#include "slate/slate.h"

#include <stdio.h>

static bool read_word(void *ctx, uint64_t addr, uint64_t *v)
{
    return vcpu_read_virtual(ctx, addr, v, 8) == 8;
}

/* The words an interrupt or exception pushes: RIP, CS, RFLAGS (then RSP, SS). */
static bool interrupt_frame(uint64_t rip, uint64_t cs, uint64_t rflags)
{
    return rip && cs >= 8 && cs < 0x10000 && (cs & ~7ULL) && (rflags & 2) && !(rflags >> 22);
}

/* The frame-pointer chain: each frame [saved RBP, return address]; a handler's frame instead
 * holds [saved RBP, (error code,) RIP, CS, RFLAGS, ...], whose RIP is the interrupted one. */
static unsigned by_frame_pointers(struct vcpu *cpu, uint64_t rbp, struct bt_frame *frames, unsigned n,
                                  unsigned max)
{
    while (n < max && rbp) {
        uint64_t w[5];
        if (vcpu_read_virtual(cpu, rbp, w, sizeof(w)) < 16 || !w[1])
            break;
        if (interrupt_frame(w[1], w[2], w[3]))
            frames[n++] = (struct bt_frame){w[1], true};
        else if (w[1] < 0x10000 && interrupt_frame(w[2], w[3], w[4]))
            frames[n++] = (struct bt_frame){w[2], true}; /* (w[1] is the error code) */
        else
            frames[n++] = (struct bt_frame){w[1], false};
        if (w[0] <= rbp)
            break;
        rbp = w[0];
    }
    return n;
}

unsigned backtrace_of(struct vcpu *cpu, const struct kvm_regs *r, const struct kvm_sregs *s,
                      struct symbols *syms, struct bt_frame *frames, unsigned max)
{
    if (!(s->efer & X86_EFER_LMA) || !s->cs.l || !max)
        return 0;
    const uint64_t regs[SYMBOLS_UNWIND_REGS] = {r->rax, r->rdx, r->rcx, r->rbx, r->rsi, r->rdi,
                                                r->rbp, r->rsp, r->r8,  r->r9,  r->r10, r->r11,
                                                r->r12, r->r13, r->r14, r->r15, r->rip};
    const struct symbols_stack stack = {regs, read_word, cpu};
    uint64_t pcs[BACKTRACE_MAX];
    bool activation[BACKTRACE_MAX];
    if (max > BACKTRACE_MAX)
        max = BACKTRACE_MAX;
    unsigned n = symbols_unwind(syms, &stack, pcs, activation, max);
    if (n > 1) { /* (one frame: no unwind information; frame pointers may know more) */
        for (unsigned i = 0; i < n; i++)
            frames[i] = (struct bt_frame){pcs[i], activation[i]};
        return n;
    }
    frames[0] = (struct bt_frame){r->rip, true};
    return by_frame_pointers(cpu, r->rbp, frames, 1, max);
}

const char *backtrace_describe(struct symbols *syms, const struct bt_frame *f, char *buf, size_t len)
{
    if (f->pc == SLATE_BOOT_TABLES + BOOT_EXIT_STUB_OFFSET) {
        snprintf(buf, len, "(slate's exit stub: the kernel's entry function returns here)");
        return buf;
    }
    return f->activation ? symbols_describe(syms, f->pc, buf, len) : symbols_describe_return(syms, f->pc, buf, len);
}
