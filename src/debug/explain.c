/* explain.c - see explain.h. The steps follow the Intel SDM vol. 3, 6.12 (exception and
 * interrupt handling in protected mode) and 6.14 (64-bit mode): the gate from the IDT, the code
 * segment from the GDT, the stack from the TSS (IST or RSP0) or the current one. */
#include "explain.h"

#include "pagewalk.h"
#include "x86.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


static bool fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return false;
}

const char *explain_vector_name(unsigned vector, char *buf, size_t len)
{
    static const char *const names[32] = {
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "coprocessor overrun",
        "#TS", "#NP", "#SS", "#GP", "#PF", "vector 15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
        [28] = "#HV", [29] = "#VC", [30] = "#SX"};
    if (vector < 32 && names[vector])
        snprintf(buf, len, "%s", names[vector]);
    else
        snprintf(buf, len, "vector %u", vector);
    return buf;
}

/* A linear address as the CPU sees it (pagewalk.c): the physical address, and whether the page
 * is writable, executable and a user page. */
struct page {
    uint64_t pa;
    bool writable, executable, user;
};

static bool translate(const struct explain_memory *mem, const struct kvm_sregs *s, uint64_t va,
                      struct page *p)
{
    const struct pagewalk_memory walk_mem = {mem->read, mem->ctx};
    struct page_rights r;
    if (!pagewalk(&walk_mem, s, va, &r))
        return false;
    *p = (struct page){r.pa, r.writable, r.executable, r.user};
    return true;
}

static bool read_linear(const struct explain_memory *mem, const struct kvm_sregs *s, uint64_t va,
                        void *buf, size_t len)
{
    struct page p;
    return ((va & 0xFFF) + len <= 0x1000 || !(s->cr0 & X86_CR0_PG)) && translate(mem, s, va, &p) &&
           mem->read(mem->ctx, p.pa, buf, len);
}

/* Whether the stack's byte at va takes a push: mapped and writable. */
static bool pushable(const struct explain_memory *mem, const struct kvm_sregs *s, uint64_t va, bool *mapped)
{
    struct page p;
    *mapped = translate(mem, s, va, &p);
    return *mapped && p.writable;
}

/* Vectors whose frame carries an error code. */
static bool has_error_code(unsigned v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

/* The stack the handler gets must take the frame (SS, RSP, RFLAGS, CS, RIP and maybe an error
 * code, pushed from RSP aligned down to 16): every slot mapped and writable. The first push that
 * cannot go is named; a stack whose own top is fine but whose frame runs into a page below is a
 * stack overflow. */
static bool check_stack(const struct explain_memory *mem, const struct kvm_sregs *s, uint64_t rsp,
                        unsigned vector, const char *which, char *why, size_t len)
{
    if (rsp == 0)
        return fail(why, len, "its stack (%s) is 0", which);
    uint64_t top = rsp & ~15ULL;
    unsigned slots = has_error_code(vector) ? 6 : 5;
    for (unsigned i = 1; i <= slots; i++) {
        uint64_t at = top - 8ULL * i;
        bool mapped, above_mapped;
        if (pushable(mem, s, at, &mapped))
            continue;
        bool overflow = pushable(mem, s, at + 8, &above_mapped) && ((at + 8) & 0xFFF) == 0;
        if (overflow)
            return fail(why, len, "a stack overflow: its stack (%s=%#" PRIx64 ") ran off the bottom "
                        "of its pages: the push at %#" PRIx64 " is %s", which, rsp, at,
                        mapped ? "read-only" : "not mapped");
        if (i == 1 && !mapped)
            return fail(why, len, "its stack (%s=%#" PRIx64 ") is not mapped", which, rsp);
        return fail(why, len, "its stack (%s=%#" PRIx64 ") cannot take the frame: the push at %#" PRIx64
                    " is %s", which, rsp, at, mapped ? "read-only" : "not mapped");
    }
    return true;
}

static bool deliver_long(const struct explain_memory *mem, const struct kvm_sregs *s, uint64_t rsp,
                         unsigned vector, char *why, size_t len)
{
    uint8_t gate[16];
    if ((uint64_t)vector * 16 + 15 > s->idt.limit)
        return fail(why, len, "IDT[%u] is past the IDT's limit (%#x)", vector, s->idt.limit);
    if (!read_linear(mem, s, s->idt.base + (uint64_t)vector * 16, gate, sizeof(gate)))
        return fail(why, len, "IDT[%u] at %#" PRIx64 " is not mapped", vector,
                    (uint64_t)(s->idt.base + (uint64_t)vector * 16));
    unsigned type = gate[5] & 0xF, ist = gate[4] & 7;
    if (!(gate[5] & 0x80))
        return fail(why, len, "IDT[%u] is not present", vector);
    if (type != 0xE && type != 0xF)
        return fail(why, len, "IDT[%u] has type %#x, not a 64-bit interrupt or trap gate", vector, type);
    uint16_t selector = (uint16_t)(gate[2] | gate[3] << 8);
    uint64_t handler = (uint64_t)gate[0] | (uint64_t)gate[1] << 8 | (uint64_t)gate[6] << 16 |
                       (uint64_t)gate[7] << 24 | (uint64_t)gate[8] << 32 | (uint64_t)gate[9] << 40 |
                       (uint64_t)gate[10] << 48 | (uint64_t)gate[11] << 56;
    uint8_t desc[8];
    if ((selector & ~7u) == 0)
        return fail(why, len, "IDT[%u]'s code segment selector is null", vector);
    if ((selector & 4) || (selector | 7u) > s->gdt.limit ||
        !read_linear(mem, s, s->gdt.base + (selector & ~7u), desc, 8))
        return fail(why, len, "IDT[%u]'s code segment %#x is not in the GDT (limit %#x)", vector,
                    selector, s->gdt.limit);
    bool present = desc[5] & 0x80, code = (desc[5] & 0x18) == 0x18, l = desc[6] & 0x20;
    if (!present || !code || !l)
        return fail(why, len, "IDT[%u]'s code segment %#x is not a present 64-bit code segment", vector,
                    selector);
    struct page p;
    if ((int64_t)(handler << 16) >> 16 != (int64_t)handler)
        return fail(why, len, "IDT[%u]'s handler %#" PRIx64 " is not canonical", vector, handler);
    if (!translate(mem, s, handler, &p))
        return fail(why, len, "IDT[%u]'s handler %#" PRIx64 " is not mapped", vector, handler);
    if (!p.executable)
        return fail(why, len, "IDT[%u]'s handler %#" PRIx64 " is on a no-execute page", vector, handler);
    unsigned cpl = s->cs.selector & 3, dpl = (desc[5] >> 5) & 3;
    if (ist || dpl < cpl) {
        if (!s->tr.present || (s->tr.selector & ~7u) == 0)
            return fail(why, len, "%s needs the TSS, and none is loaded (LTR)",
                        ist ? "its IST entry" : "a privilege change");
        uint64_t off = ist ? 0x24 + 8ULL * (ist - 1) : 4, stack;
        if (off + 8 > (uint64_t)s->tr.limit + 1 || !read_linear(mem, s, s->tr.base + off, &stack, 8))
            return fail(why, len, "the TSS at %#" PRIx64 " is not readable", (uint64_t)s->tr.base);
        char which[16];
        snprintf(which, sizeof(which), ist ? "IST%u" : "RSP0", ist);
        if (!check_stack(mem, s, stack, vector, which, why, len))
            return false;
    } else if (!check_stack(mem, s, rsp, vector, "RSP", why, len)) {
        return false;
    }
    snprintf(why, len, "delivered to %#" PRIx64, handler);
    return true;
}

bool explain_delivery(const struct explain_memory *mem, const struct kvm_sregs *s, uint64_t rsp,
                      unsigned vector, char *why, size_t whylen)
{
    if (!(s->cr0 & X86_CR0_PE)) { /* real mode: the IVT's 4-byte entries */
        if ((uint64_t)vector * 4 + 3 > s->idt.limit)
            return fail(why, whylen, "IVT[%u] is past the IDT's limit (%#x)", vector, s->idt.limit);
        snprintf(why, whylen, "delivered through the IVT");
        return true;
    }
    if (s->efer & X86_EFER_LMA)
        return deliver_long(mem, s, rsp, vector, why, whylen);
    uint8_t gate[8];
    if ((uint64_t)vector * 8 + 7 > s->idt.limit)
        return fail(why, whylen, "IDT[%u] is past the IDT's limit (%#x)", vector, s->idt.limit);
    if (!read_linear(mem, s, s->idt.base + (uint64_t)vector * 8, gate, sizeof(gate)))
        return fail(why, whylen, "IDT[%u] is not mapped", vector);
    if (!(gate[5] & 0x80))
        return fail(why, whylen, "IDT[%u] is not present", vector);
    snprintf(why, whylen, "delivered through a 32-bit gate");
    return true;
}

bool explain_page_fault(const struct explain_memory *mem, const struct kvm_sregs *s, uint64_t va, bool write,
                        char *why, size_t whylen)
{
    struct page p;
    bool user = (s->cs.selector & 3) == 3;
    if (!(s->cr0 & X86_CR0_PG) || !(s->efer & X86_EFER_LMA))
        return false; /* (only long-mode paging is walked) */
    if (!translate(mem, s, va, &p))
        return !fail(why, whylen, "not mapped");
    if (user && !p.user)
        return !fail(why, whylen, "a supervisor page");
    if (write && !p.writable && (user || (s->cr0 & (1ULL << 16)))) /* CR0.WP */
        return !fail(why, whylen, "read-only");
    return false;
}

void explain_triple_fault(const struct explain_memory *mem, const struct kvm_sregs *s, uint64_t rsp,
                          int first, char *out, size_t outlen)
{
    char why[160], name[24];
    size_t used = 0;
    out[0] = 0;
    if (first >= 0 && first != 8) {
        bool ok = explain_delivery(mem, s, rsp, (unsigned)first, why, sizeof(why));
        used += (size_t)snprintf(out + used, outlen - used, "%s: %s -> ",
                                 explain_vector_name((unsigned)first, name, sizeof(name)),
                                 ok ? "its handler faulted" : why);
        if (used >= outlen)
            return;
    }
    if (explain_delivery(mem, s, rsp, 8, why, sizeof(why)))
        snprintf(out + used, outlen - used, "#DF: %s, so the #DF handler itself faulted -> triple fault", why);
    else
        snprintf(out + used, outlen - used, "#DF: %s -> triple fault", why);
}
