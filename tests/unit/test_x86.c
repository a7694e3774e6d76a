/* The architectural start state: boot GDT, identity page tables, registers for each entry mode. */
#include "unit.h"

#include "slate/slate.h"
#include "x86.h"

static uint8_t area[SLATE_BOOT_TABLES_SIZE];

static void page_tables_identity_map_everything(void **state)
{
    (void)state;
    uint64_t top = SLATE_HIGH_RAM_BASE + (4ULL << 30); /* 8 GiB: RAM above the hole */
    uint64_t cr3 = x86_write_boot_tables(area, sizeof(area), SLATE_BOOT_TABLES, top);
    assert_int_equal(cr3, SLATE_BOOT_TABLES + BOOT_PML4_OFFSET);
    const uint64_t *pml4 = (const void *)(area + BOOT_PML4_OFFSET);
    const uint64_t *pdpt = (const void *)(area + BOOT_PDPT_OFFSET);
    assert_int_equal(pml4[0] & ~0xFFFULL, SLATE_BOOT_TABLES + BOOT_PDPT_OFFSET);
    assert_int_equal(pml4[1], 0);
    /* walk a few addresses as the MMU would: PML4 -> PDPT -> PD (2 MiB pages) */
    const uint64_t probes[] = {0, 0x1FFFFF, 0x200000, SLATE_INFO_ADDR + 5, SLATE_LAPIC_ADDR,
                               SLATE_HIGH_RAM_BASE + 0x123456, top - 1};
    for (unsigned i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        uint64_t va = probes[i];
        uint64_t pdpte = pdpt[(va >> 30) & 511];
        assert_true(pdpte & 1);
        const uint64_t *pd = (const void *)(area + ((pdpte & ~0xFFFULL) - SLATE_BOOT_TABLES));
        uint64_t pde = pd[(va >> 21) & 511];
        assert_true(pde & 1);
        assert_true(pde & (1 << 7)); /* large page */
        assert_int_equal((pde & ~0x1FFFFFULL & ~(1ULL << 63)) + (va & 0x1FFFFF), va);
    }
    assert_int_equal(pdpt[top >> 30], 0); /* nothing beyond map_top */
    const uint64_t *gdt = (const void *)(area + BOOT_GDT_OFFSET);
    assert_int_equal(gdt[SLATE_SEL_CODE64 / 8] >> 53 & 1, 1); /* L bit */
    assert_int_equal(gdt[SLATE_SEL_CODE32 / 8] >> 54 & 1, 1); /* D bit */
}

static void too_much_memory_for_the_area_fails(void **state)
{
    (void)state;
    assert_int_equal(x86_write_boot_tables(area, 0x4000, SLATE_BOOT_TABLES, 8ULL << 30), 0);
    assert_int_equal(x86_write_boot_tables(area, sizeof(area), SLATE_BOOT_TABLES, 1ULL << 40), 0);
    assert_true(x86_boot_tables_size(260ULL << 30) <= SLATE_BOOT_TABLES_SIZE);
}

static void long_mode_registers(void **state)
{
    (void)state;
    struct kvm_sregs s = {0};
    x86_entry_sregs(&s, ENTRY_LONG, SLATE_BOOT_TABLES, 0xC0101000);
    assert_true(s.cr0 & X86_CR0_PG && s.cr0 & X86_CR0_PE);
    assert_true(s.cr4 & X86_CR4_PAE);
    assert_true(s.efer & X86_EFER_LMA && s.efer & X86_EFER_LME);
    assert_int_equal(s.cr3, 0xC0101000);
    assert_int_equal(s.cs.selector, SLATE_SEL_CODE64);
    assert_int_equal(s.cs.l, 1);
    assert_int_equal(s.cs.db, 0);
    assert_int_equal(s.ss.selector, SLATE_SEL_DATA);
    struct kvm_regs r;
    x86_entry_regs(&r, ENTRY_LONG, 0x100000, 0x7FFFFF8, SLATE_INFO_ADDR);
    assert_int_equal(r.rip, 0x100000);
    assert_int_equal(r.rdi, SLATE_INFO_ADDR);
    assert_int_equal(r.rbx, SLATE_INFO_ADDR);
    assert_int_equal(r.rflags & (1 << 9), 0); /* interrupts off */
}

static void protected_and_real_mode_registers(void **state)
{
    (void)state;
    struct kvm_sregs s = {.cs = {.selector = 0xF000, .base = 0xFFFF0000}};
    x86_entry_sregs(&s, ENTRY_PROTECTED, SLATE_BOOT_TABLES, 0);
    assert_true(s.cr0 & X86_CR0_PE);
    assert_false(s.cr0 & X86_CR0_PG);
    assert_int_equal(s.efer, 0);
    assert_int_equal(s.cs.selector, SLATE_SEL_CODE32);
    assert_int_equal(s.cs.db, 1);
    s = (struct kvm_sregs){.cs = {.selector = 0xF000, .base = 0xFFFF0000}};
    x86_entry_sregs(&s, ENTRY_REAL, SLATE_BOOT_TABLES, 0);
    assert_int_equal(s.cs.selector, 0);
    assert_int_equal(s.cs.base, 0);
}

static void the_boot_stack_looks_like_a_call(void **state)
{
    (void)state;
    uint8_t stack[64] = {0};
    uint8_t *top = stack + sizeof(stack);
    uint64_t rsp = x86_entry_stack(top, ENTRY_LONG, 0x8000000, 0xC0100800, SLATE_INFO_ADDR);
    assert_int_equal(rsp, 0x8000000 - 8);
    assert_int_equal((rsp + 8) % 16, 0);
    uint64_t ret;
    memcpy(&ret, top - 8, 8);
    assert_int_equal(ret, 0xC0100800);

    uint32_t esp = (uint32_t)x86_entry_stack(top, ENTRY_PROTECTED, 0x8000000, 0xC0100800, SLATE_INFO_ADDR);
    assert_int_equal((esp + 4) % 16, 0);
    uint32_t frame[2];
    memcpy(frame, top - (0x8000000 - esp), 8);
    assert_int_equal(frame[0], 0xC0100800);
    assert_int_equal(frame[1], SLATE_INFO_ADDR);
    assert_int_equal(x86_entry_stack(top, ENTRY_REAL, 0x8000000, 0, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(page_tables_identity_map_everything),
        cmocka_unit_test(too_much_memory_for_the_area_fails),
        cmocka_unit_test(long_mode_registers),
        cmocka_unit_test(protected_and_real_mode_registers),
        cmocka_unit_test(the_boot_stack_looks_like_a_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
