/* The triple-fault explainer on tables built by hand: each step of an exception's delivery in
 * long mode (IDT limit, gate, code segment, handler page, TSS, IST/RSP0, stack) fails with its
 * own message, and a sound setup is delivered. */
#include "unit.h"

#include "explain.h"
#include "x86.h"

#include <stdlib.h>

#define MEM_BYTES (4u << 20)
#define PML4 0x1000
#define PDPT 0x2000
#define PD 0x3000
#define GDT 0x10000
#define IDT 0x11000
#define TSS 0x12000
#define HANDLER 0x200000 /* in the second 2 MiB page, which a test may make no-execute */
#define STACK 0x300000

static uint8_t *mem;

static bool read_mem(void *ctx, uint64_t gpa, void *buf, size_t len)
{
    (void)ctx;
    if (gpa >= MEM_BYTES || len > MEM_BYTES - gpa)
        return false;
    memcpy(buf, mem + gpa, len);
    return true;
}

static const struct explain_memory memory = {read_mem, NULL};

static void put64(uint64_t at, uint64_t v) { memcpy(mem + at, &v, 8); }

/* A 64-bit gate for `vector` to HANDLER through selector 0x8, with `ist`. */
static void set_gate(unsigned vector, uint8_t type_attr, uint8_t ist)
{
    uint8_t *g = mem + IDT + 16 * vector;
    memset(g, 0, 16);
    g[0] = HANDLER & 0xFF, g[1] = (HANDLER >> 8) & 0xFF, g[6] = (HANDLER >> 16) & 0xFF;
    g[2] = 0x08;
    g[4] = ist;
    g[5] = type_attr;
}

/* Long mode, identity-mapped 2 MiB pages over the first 4 MiB, a 64-bit code segment at 0x8, an
 * IDT with every exception's gate present, no TSS. */
static struct kvm_sregs setup(void)
{
    memset(mem, 0, MEM_BYTES);
    put64(PML4, PDPT | 3);
    put64(PDPT, PD | 3);
    put64(PD, 0x000000 | 0x83);
    put64(PD + 8, 0x200000 | 0x83);
    put64(GDT + 8, 0x00AF9A000000FFFFULL); /* present 64-bit code, DPL 0 */
    for (unsigned v = 0; v < 32; v++)
        set_gate(v, 0x8E, 0);
    struct kvm_sregs s = {0};
    s.cr0 = X86_CR0_PE | X86_CR0_PG;
    s.cr3 = PML4;
    s.efer = X86_EFER_LMA | (1ULL << 8) | (1ULL << 11);
    s.cs.selector = 0x8;
    s.gdt.base = GDT, s.gdt.limit = 15;
    s.idt.base = IDT, s.idt.limit = 32 * 16 - 1;
    return s;
}

static void expect(const struct kvm_sregs *s, uint64_t rsp, unsigned vector, bool ok, const char *text)
{
    char why[160];
    assert_int_equal(explain_delivery(&memory, s, rsp, vector, why, sizeof(why)), ok);
    assert_contains(why, text);
}

static void a_sound_setup_delivers(void **state)
{
    (void)state;
    struct kvm_sregs s = setup();
    expect(&s, STACK, 14, true, "delivered to 0x200000");
}

static void the_idt_limit(void **state)
{
    (void)state;
    struct kvm_sregs s = setup();
    s.idt.limit = 0;
    expect(&s, STACK, 14, false, "IDT[14] is past the IDT's limit (0)");
    char chain[512];
    explain_triple_fault(&memory, &s, STACK, 14, chain, sizeof(chain));
    assert_string_equal(chain, "#PF: IDT[14] is past the IDT's limit (0) -> #DF: IDT[8] is past the "
                               "IDT's limit (0) -> triple fault");
}

static void the_gate(void **state)
{
    (void)state;
    struct kvm_sregs s = setup();
    set_gate(13, 0x0E, 0); /* not present */
    expect(&s, STACK, 13, false, "IDT[13] is not present");
    set_gate(13, 0x8C, 0); /* a call gate */
    expect(&s, STACK, 13, false, "IDT[13] has type 0xc");
    s.idt.base = 0x7FFFF000; /* not mapped */
    expect(&s, STACK, 13, false, "IDT[13] at 0x7ffff0d0 is not mapped");
}

static void the_code_segment(void **state)
{
    (void)state;
    struct kvm_sregs s = setup();
    mem[IDT + 16 * 6 + 2] = 0; /* selector 0 */
    expect(&s, STACK, 6, false, "IDT[6]'s code segment selector is null");
    mem[IDT + 16 * 6 + 2] = 0x20; /* past the GDT */
    expect(&s, STACK, 6, false, "IDT[6]'s code segment 0x20 is not in the GDT");
    put64(GDT + 8, 0x00CF9A000000FFFFULL); /* 32-bit code */
    expect(&s, STACK, 14, false, "is not a present 64-bit code segment");
}

static void the_handler_page(void **state)
{
    (void)state;
    struct kvm_sregs s = setup();
    put64(PD + 8, 0); /* the handler's page is gone */
    expect(&s, STACK, 14, false, "IDT[14]'s handler 0x200000 is not mapped");
    put64(PD + 8, 0x200000 | 0x83 | (1ULL << 63));
    expect(&s, STACK, 14, false, "is on a no-execute page");
}

static void the_tss_and_ist(void **state)
{
    (void)state;
    struct kvm_sregs s = setup();
    set_gate(8, 0x8E, 1);
    expect(&s, STACK, 8, false, "its IST entry needs the TSS, and none is loaded");
    s.tr.selector = 0x10, s.tr.present = 1, s.tr.base = TSS, s.tr.limit = 0x67;
    expect(&s, STACK, 8, false, "its stack (IST1) is 0");
    put64(TSS + 0x24, 0x7FF00000); /* IST1 unmapped */
    expect(&s, STACK, 8, false, "its stack (IST1=0x7ff00000) is not mapped");
    put64(TSS + 0x24, STACK);
    expect(&s, STACK, 8, true, "delivered");
}

static void the_stack(void **state)
{
    (void)state;
    struct kvm_sregs s = setup();
    expect(&s, 0, 3, false, "its stack (RSP) is 0");
    expect(&s, 0x7FF00000, 3, false, "its stack (RSP=0x7ff00000) is not mapped");
    put64(PD + 8, 0x200000 | 0x81); /* read-only: the stack at 3 MiB is in it */
    expect(&s, STACK, 3, false, "is read-only");
    /* From user mode the CPU switches to RSP0 from the TSS. */
    s = setup();
    s.cs.selector = 0x1B;
    expect(&s, STACK, 3, false, "a privilege change needs the TSS");
}

/* A stack in 4 KiB pages, [0x10f000, 0x110000) mapped and nothing below: an RSP at its bottom
 * overflows, and the message names the push that fails, not RSP (which is mapped). */
static void a_stack_overflow(void **state)
{
    (void)state;
    struct kvm_sregs s = setup();
    const uint64_t pt = 0x4000;
    put64(PD, pt | 3); /* the first 2 MiB in 4 KiB pages: only the low ones and the stack page */
    for (uint64_t a = 0; a < 0x20000; a += 0x1000)
        put64(pt + (a >> 12) * 8, a | 3);
    put64(pt + (0x10e000 >> 12) * 8, 0); /* the page below the stack */
    put64(pt + (0x10f000 >> 12) * 8, 0x10f000 | 3);
    expect(&s, 0x110000, 14, true, "delivered");
    expect(&s, 0x10f000, 14, false, "a stack overflow: its stack (RSP=0x10f000) ran off the bottom of its "
                                    "pages: the push at 0x10eff8 is not mapped");
    /* Part of the frame fits: the fifth push is the one that fails; 48 bytes above the bottom,
     * the whole frame with its error code fits. */
    expect(&s, 0x10f020, 3, false, "a stack overflow: its stack (RSP=0x10f020) ran off the bottom of its "
                                   "pages: the push at 0x10eff8 is not mapped");
    expect(&s, 0x10f030, 14, true, "delivered");
    /* A stack that is wholly elsewhere is simply not mapped. */
    expect(&s, 0x10e800, 14, false, "its stack (RSP=0x10e800) is not mapped");
}

static void when_df_could_be_delivered(void **state)
{
    (void)state;
    struct kvm_sregs s = setup();
    char chain[512];
    explain_triple_fault(&memory, &s, STACK, -1, chain, sizeof(chain));
    assert_string_equal(chain, "#DF: delivered to 0x200000, so the #DF handler itself faulted -> triple fault");
}

int main(void)
{
    mem = calloc(1, MEM_BYTES);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_sound_setup_delivers), cmocka_unit_test(the_idt_limit),
        cmocka_unit_test(the_gate),               cmocka_unit_test(the_code_segment),
        cmocka_unit_test(the_handler_page),       cmocka_unit_test(the_tss_and_ist),
        cmocka_unit_test(the_stack),
        cmocka_unit_test(a_stack_overflow),              cmocka_unit_test(when_df_could_be_delivered),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(mem);
    return rc;
}
