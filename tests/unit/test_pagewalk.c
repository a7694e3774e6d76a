/* The page walker every hypercall's addresses go through: each paging mode on tables built by
 * hand, and the access rules (U/S, R/W with CR0.WP, SMAP with RFLAGS.AC). */
#include "unit.h"

#include "pagewalk.h"
#include "x86.h"

#define MEM_SIZE (1u << 20)
static uint8_t mem[MEM_SIZE];

static bool read_mem(void *ctx, uint64_t gpa, void *buf, size_t len)
{
    (void)ctx;
    if (gpa >= MEM_SIZE || len > MEM_SIZE - gpa)
        return false;
    memcpy(buf, mem + gpa, len);
    return true;
}

static const struct pagewalk_memory memory = {read_mem, NULL};

static void put64(uint64_t at, uint64_t v) { memcpy(mem + at, &v, 8); }
static void put32(uint64_t at, uint32_t v) { memcpy(mem + at, &v, 4); }

static struct kvm_sregs long_mode(void)
{
    struct kvm_sregs s = {0};
    s.cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_WP;
    s.cr4 = X86_CR4_PAE;
    s.efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE;
    s.cr3 = 0x1000;
    return s;
}

static void four_level(void **state)
{
    (void)state;
    memset(mem, 0, sizeof(mem));
    put64(0x1000, 0x2000 | 7);                     /* PML4[0]: user, writable */
    put64(0x2000, 0x3000 | 7);                     /* PDPT[0] */
    put64(0x3000, 0x4000 | 7);                     /* PD[0] -> a page table */
    put64(0x3008, 0x200000 | 0x83);                /* PD[1]: a 2 MiB page, supervisor */
    put64(0x4000 + 5 * 8, 0x9000 | 5);             /* PT[5]: user, read-only */
    put64(0x4000 + 6 * 8, 0xA000 | 3 | 1ULL << 63); /* PT[6]: supervisor, writable, NX */
    struct kvm_sregs s = long_mode();
    struct page_rights p;
    assert_true(pagewalk(&memory, &s, 0x5123, &p));
    assert_int_equal(p.pa, 0x9123);
    assert_true(p.user && !p.writable && p.executable);
    assert_int_equal(p.page_size, 4096);
    assert_true(pagewalk(&memory, &s, 0x6010, &p));
    assert_true(!p.user && p.writable && !p.executable);
    assert_true(pagewalk(&memory, &s, 0x212345, &p));
    assert_int_equal(p.pa, 0x212345);
    assert_int_equal(p.page_size, 2u << 20);
    assert_false(pagewalk(&memory, &s, 0x7000, &p));              /* not present */
    assert_false(pagewalk(&memory, &s, 0x0000800000000000ULL, &p)); /* not canonical */
}

static void five_level(void **state)
{
    (void)state;
    memset(mem, 0, sizeof(mem));
    put64(0x1000, 0x2000 | 7); /* PML5[0] */
    put64(0x2000, 0x3000 | 7);
    put64(0x3000, 0x4000 | 7);
    put64(0x4000, 0x5000 | 7);
    put64(0x5000 + 8, 0x6000 | 7); /* PT[1] */
    struct kvm_sregs s = long_mode();
    s.cr4 |= 1ULL << 12; /* LA57 */
    struct page_rights p;
    assert_true(pagewalk(&memory, &s, 0x1ABC, &p));
    assert_int_equal(p.pa, 0x6ABC);
    assert_true(pagewalk(&memory, &s, 0x0000800000000000ULL, &p) == false); /* canonical, unmapped */
}

static void pae_and_32bit(void **state)
{
    (void)state;
    memset(mem, 0, sizeof(mem));
    struct kvm_sregs s = {0};
    s.cr0 = X86_CR0_PE | X86_CR0_PG;
    s.cr4 = X86_CR4_PAE;
    s.cr3 = 0x1020; /* PDPTEs are 32-byte aligned */
    put64(0x1020 + 3 * 8, 0x2000 | 1); /* PDPTE[3]: 3-4 GiB */
    put64(0x2000 + 8, 0x3000 | 7);     /* PD[1] */
    put64(0x3000 + 2 * 8, 0x8000 | 7); /* PT[2] */
    struct page_rights p;
    assert_true(pagewalk(&memory, &s, 0xC0202ABCULL, &p));
    assert_int_equal(p.pa, 0x8ABC);
    assert_true(p.user && p.writable);

    memset(mem, 0, sizeof(mem));
    s.cr4 = 1ULL << 4; /* PSE, no PAE: 32-bit paging */
    s.cr3 = 0x1000;
    put32(0x1000 + 1 * 4, 0x2000 | 7);         /* PDE[1]: 4-8 MiB through a table */
    put32(0x2000 + 3 * 4, 0x9000 | 5);         /* PTE[3]: user, read-only */
    put32(0x1000 + 2 * 4, 0x00C00000u | 0x83); /* PDE[2]: a 4 MiB page, supervisor */
    assert_true(pagewalk(&memory, &s, 0x403123, &p));
    assert_int_equal(p.pa, 0x9123);
    assert_true(p.user && !p.writable);
    assert_true(pagewalk(&memory, &s, 0x812345, &p));
    assert_int_equal(p.pa, 0xC12345);
    assert_int_equal(p.page_size, 4u << 20);
    assert_false(p.user);

    s.cr0 = X86_CR0_PE; /* paging off: identity, 32 bits wide */
    assert_true(pagewalk(&memory, &s, 0x1234567890ULL, &p));
    assert_int_equal(p.pa, 0x34567890);
}

static void access_rules(void **state)
{
    (void)state;
    struct kvm_sregs s = long_mode();
    struct page_rights user_ro = {.user = true, .writable = false};
    struct page_rights user_rw = {.user = true, .writable = true};
    struct page_rights super_rw = {.user = false, .writable = true};
    struct page_rights super_ro = {.user = false, .writable = false};
    const uint64_t flags = 0x2, ac = 1ULL << 18;
    assert_true(pagewalk_allows(&user_rw, &s, flags, 3, true));
    assert_true(pagewalk_allows(&user_ro, &s, flags, 3, false));
    assert_false(pagewalk_allows(&user_ro, &s, flags, 3, true));
    assert_false(pagewalk_allows(&super_rw, &s, flags, 3, false));
    /* supervisor: CR0.WP decides read-only pages */
    assert_false(pagewalk_allows(&super_ro, &s, flags, 0, true));
    s.cr0 &= ~X86_CR0_WP;
    assert_true(pagewalk_allows(&super_ro, &s, flags, 0, true));
    /* SMAP: a supervisor access to a user page needs RFLAGS.AC */
    assert_true(pagewalk_allows(&user_rw, &s, flags, 0, false));
    s.cr4 |= 1ULL << 21;
    assert_false(pagewalk_allows(&user_rw, &s, flags, 0, false));
    assert_true(pagewalk_allows(&user_rw, &s, flags | ac, 0, false));
    assert_true(pagewalk_allows(&super_rw, &s, flags, 0, true));
    /* the privilege: SS.DPL in protected mode, 3 in virtual-8086 mode, 0 in real mode */
    s.ss.dpl = 3;
    assert_int_equal(pagewalk_cpl(&s, flags), 3);
    s.ss.dpl = 0;
    assert_int_equal(pagewalk_cpl(&s, flags | 1ULL << 17), 3);
    s.cr0 = 0;
    s.ss.dpl = 3;
    assert_int_equal(pagewalk_cpl(&s, flags), 0);
    assert_true(pagewalk_allows(&super_ro, &s, flags, 0, true)); /* paging off */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(four_level),
        cmocka_unit_test(five_level),
        cmocka_unit_test(pae_and_32bit),
        cmocka_unit_test(access_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
