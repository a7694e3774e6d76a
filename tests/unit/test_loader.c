/* The kernel loader against well-formed and hostile images: every field read from the file is
 * checked before it is used, and each refusal says why. */
#include "unit.h"

#include "loader.h"
#include "guest_ram.h"
#include "slate/slate.h"

#include <elf.h>

static char err[256];

/* An ELF64 executable built in memory: `nseg` PT_LOAD segments, each 16 bytes of file data. */
struct segment {
    uint64_t paddr, vaddr, offset, filesz, memsz;
    uint32_t type;
};

static uint8_t image[8192];

static size_t build_elf64(const struct segment *segs, unsigned nseg, uint64_t entry)
{
    memset(image, 0, sizeof(image));
    Elf64_Ehdr *eh = (Elf64_Ehdr *)image;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_EXEC;
    eh->e_machine = EM_X86_64;
    eh->e_version = EV_CURRENT;
    eh->e_entry = entry;
    eh->e_phoff = sizeof(*eh);
    eh->e_ehsize = sizeof(*eh);
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = (uint16_t)nseg;
    Elf64_Phdr *ph = (Elf64_Phdr *)(image + sizeof(*eh));
    for (unsigned i = 0; i < nseg; i++) {
        ph[i] = (Elf64_Phdr){.p_type = segs[i].type ? segs[i].type : PT_LOAD,
                             .p_flags = PF_R | PF_X,
                             .p_offset = segs[i].offset,
                             .p_vaddr = segs[i].vaddr ? segs[i].vaddr : segs[i].paddr,
                             .p_paddr = segs[i].paddr,
                             .p_filesz = segs[i].filesz,
                             .p_memsz = segs[i].memsz,
                             .p_align = 16};
    }
    for (unsigned i = 0; i < 16; i++)
        image[4096 + i] = (uint8_t)(0xA0 + i);
    return 4096 + 16;
}

static int load(size_t size, enum entry_mode mode, struct boot_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    err[0] = 0;
    struct slate_config cfg = {.entry = mode, .boot = BOOT_NATIVE};
    return loader_load_kernel(&mem, &cfg, "k.elf", image, size, plan, err, sizeof(err));
}

static void elf64_loads_and_zeroes_bss(void **state)
{
    (void)state;
    struct boot_plan plan;
    uint8_t *dst = memory_ram_ptr(&mem, 0x100000, 64); /* fresh RAM: the bss is left as zeroes */
    size_t size = build_elf64(&(struct segment){.paddr = 0x100000, .offset = 4096, .filesz = 16, .memsz = 64}, 1, 0x100004);
    assert_int_equal(load(size, ENTRY_DEFAULT, &plan), 0);
    assert_int_equal(plan.entry, ENTRY_LONG);
    assert_int_equal(plan.entry_point, 0x100004);
    assert_int_equal(dst[0], 0xA0);
    assert_int_equal(dst[15], 0xAF);
    assert_int_equal(dst[16], 0); /* bss */
    assert_int_equal(dst[63], 0);
    assert_int_equal(plan.image_count, 1);
    assert_int_equal(plan.images[0].base, 0x100000);
    assert_int_equal(plan.images[0].size, 64);
    assert_true(plan.images[0].flags & SLATE_IMAGE_KERNEL);
    assert_string_equal(plan.images[0].name, "k.elf");
}

static void higher_half_kernels_load_at_paddr(void **state)
{
    (void)state;
    struct boot_plan plan;
    size_t size = build_elf64(&(struct segment){.paddr = 0x200000, .vaddr = 0xFFFFFFFF80200000ULL,
                                                .offset = 4096, .filesz = 16, .memsz = 16},
                              1, 0xFFFFFFFF80200008ULL);
    assert_int_equal(load(size, ENTRY_DEFAULT, &plan), 0);
    assert_int_equal(plan.entry_point, 0x200008); /* the entry translated through its segment */
    assert_int_equal(*(uint8_t *)memory_ram_ptr(&mem, 0x200000, 1), 0xA0);
}

struct hostile {
    const char *what;
    struct segment segs[2];
    unsigned nseg;
    uint64_t entry;
    const char *message;
};

static void hostile_elf_files_are_refused(void **state)
{
    (void)state;
    static const struct hostile cases[] = {
        {"file size > memory size", {{0x100000, 0, 4096, 32, 16, 0}}, 1, 0x100000, "exceeds memory size"},
        {"data past the end of the file", {{0x100000, 0, 4096, 4096, 4096, 0}}, 1, 0x100000, "past the end of the file"},
        {"offset that wraps", {{0x100000, 0, UINT64_MAX - 4, 16, 16, 0}}, 1, 0x100000, "past the end of the file"},
        {"segment past the end of RAM", {{15ULL << 20, 0, 4096, 16, 2 << 20, 0}}, 1, 15ULL << 20, "does not fit in RAM"},
        {"segment in the device hole", {{SLATE_INFO_ADDR, 0, 4096, 16, 16, 0}}, 1, SLATE_INFO_ADDR, "device hole"},
        {"address that wraps", {{UINT64_MAX - 8, 0, 4096, 16, 16, 0}}, 1, UINT64_MAX - 8, "wraps"},
        {"overlapping segments", {{0x100000, 0, 4096, 16, 4096, 0}, {0x100800, 0, 4096, 16, 16, 0}}, 2, 0x100000, "overlap"},
        {"entry outside every segment", {{0x100000, 0, 4096, 16, 16, 0}}, 1, 0x300000, "outside every loadable segment"},
        {"no PT_LOAD at all", {{0x100000, 0, 4096, 16, 16, PT_NOTE}}, 1, 0x100000, "no loadable segment"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct boot_plan plan;
        size_t size = build_elf64(cases[i].segs, cases[i].nseg, cases[i].entry);
        if (load(size, ENTRY_DEFAULT, &plan) == 0)
            fail_msg("%s: was loaded", cases[i].what);
        if (!strstr(err, cases[i].message))
            fail_msg("%s: message '%s' lacks '%s'", cases[i].what, err, cases[i].message);
    }
}

static void hostile_headers_are_refused(void **state)
{
    (void)state;
    struct boot_plan plan;
    size_t size = build_elf64(&(struct segment){.paddr = 0x100000, .offset = 4096, .filesz = 16, .memsz = 16}, 1, 0x100000);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)image;

    eh->e_phnum = 60000; /* the table runs far past the end of the file */
    assert_int_not_equal(load(size, ENTRY_DEFAULT, &plan), 0);
    assert_contains(err, "truncated");
    eh->e_phnum = 1;

    eh->e_phoff = UINT64_MAX - 8;
    assert_int_not_equal(load(size, ENTRY_DEFAULT, &plan), 0);
    eh->e_phoff = sizeof(*eh);

    eh->e_machine = EM_AARCH64;
    assert_int_not_equal(load(size, ENTRY_DEFAULT, &plan), 0);
    assert_contains(err, "expected x86-64");
    eh->e_machine = EM_X86_64;

    eh->e_type = ET_DYN;
    assert_int_not_equal(load(size, ENTRY_DEFAULT, &plan), 0);
    assert_contains(err, "position-independent ELF (ET_DYN) is loaded only as a Limine kernel");
    eh->e_type = ET_EXEC;

    eh->e_ident[EI_DATA] = ELFDATA2MSB;
    assert_int_not_equal(load(size, ENTRY_DEFAULT, &plan), 0);
    eh->e_ident[EI_DATA] = ELFDATA2LSB;

    assert_int_not_equal(load(40, ENTRY_DEFAULT, &plan), 0); /* cut inside the ELF header */
    assert_int_not_equal(load(100, ENTRY_DEFAULT, &plan), 0); /* cut inside the program headers */
    assert_contains(err, "truncated");
    assert_int_equal(load(size, ENTRY_DEFAULT, &plan), 0); /* and the repaired file loads */
}

static void real_mode_needs_a_reachable_entry(void **state)
{
    (void)state;
    struct boot_plan plan;
    size_t size = build_elf64(&(struct segment){.paddr = 0x200000, .offset = 4096, .filesz = 16, .memsz = 16}, 1, 0x200000);
    assert_int_not_equal(load(size, ENTRY_REAL, &plan), 0);
    assert_contains(err, "real mode");
}

static void flat_images_load_at_zero(void **state)
{
    (void)state;
    struct boot_plan plan;
    memcpy(image, "\xFA\xF4 flat kernel", 14);
    assert_int_equal(load(14, ENTRY_DEFAULT, &plan), 0);
    assert_int_equal(plan.entry, ENTRY_REAL);
    assert_int_equal(plan.entry_point, 0);
    assert_memory_equal(memory_ram_ptr(&mem, 0, 14), "\xFA\xF4 flat kernel", 14);
    assert_int_not_equal(load(0, ENTRY_DEFAULT, &plan), 0);
    assert_contains(err, "empty");
}

static void extra_images_are_checked(void **state)
{
    (void)state;
    struct boot_plan plan;
    size_t size = build_elf64(&(struct segment){.paddr = 0x100000, .offset = 4096, .filesz = 16, .memsz = 0x1000}, 1, 0x100000);
    assert_int_equal(load(size, ENTRY_DEFAULT, &plan), 0);
    static const uint8_t initrd[100] = {1, 2, 3};
    assert_int_equal(loader_load_raw(&mem, "initrd", initrd, sizeof(initrd), 0x400000, &plan, err, sizeof(err)), 0);
    assert_int_equal(plan.image_count, 2);
    assert_int_equal(plan.images[1].base, 0x400000);
    assert_int_equal(plan.images[1].size, 100);
    assert_int_equal(*(uint8_t *)memory_ram_ptr(&mem, 0x400002, 1), 3);
    assert_int_not_equal(loader_load_raw(&mem, "x", initrd, sizeof(initrd), 0x100F80, &plan, err, sizeof(err)), 0);
    assert_contains(err, "overlaps");
    assert_int_not_equal(loader_load_raw(&mem, "x", initrd, sizeof(initrd), (16 << 20) - 50, &plan, err, sizeof(err)), 0);
    assert_contains(err, "does not fit in RAM");
    assert_int_not_equal(loader_load_raw(&mem, "x", initrd, sizeof(initrd), UINT64_MAX - 10, &plan, err, sizeof(err)), 0);
    /* the boot stack at the top of low RAM must stay clear */
    assert_int_equal(loader_check_boot_stack(&mem, &plan, err, sizeof(err)), 0);
    assert_int_equal(loader_load_raw(&mem, "late", initrd, sizeof(initrd), (16 << 20) - 0x1000, &plan, err, sizeof(err)), 0);
    assert_int_not_equal(loader_check_boot_stack(&mem, &plan, err, sizeof(err)), 0);
    assert_contains(err, "boot stack");
    assert_int_equal(loader_boot_stack_top(&mem), 16 << 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(elf64_loads_and_zeroes_bss, setup, teardown),
        cmocka_unit_test_setup_teardown(higher_half_kernels_load_at_paddr, setup, teardown),
        cmocka_unit_test_setup_teardown(hostile_elf_files_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(hostile_headers_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(real_mode_needs_a_reachable_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(flat_images_load_at_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(extra_images_are_checked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
