/* The boot protocols' loader side, without KVM: Multiboot headers (the a.out kludge, tags slate
 * must refuse), the boot information as a kernel reads it, and a Limine kernel's requests answered
 * in RAM (the test kernel from tests/guest/boot, built by `make guests`). */
#include "unit.h"

#include <elf.h>

#include "limine.h"
#include "loader.h"
#include "guest_ram.h"
#include "multiboot.h"
#include "slate/slate.h"

#include <stdio.h>
#include <stdlib.h>

static char err[512];
static uint8_t file[65536];

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(uint64_t gpa) { uint32_t v; memcpy(&v, memory_ram_ptr(&mem, gpa, 4), 4); return v; }
static uint64_t get64(uint64_t gpa) { uint64_t v; memcpy(&v, memory_ram_ptr(&mem, gpa, 8), 8); return v; }

static int boot(const struct slate_config *cfg, size_t size, struct boot_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    err[0] = 0;
    if (loader_load_kernel(&mem, cfg, "k", file, size, plan, err, sizeof(err)))
        return -1;
    if (plan->protocol == BOOT_MULTIBOOT || plan->protocol == BOOT_MULTIBOOT2)
        return multiboot_finish(&mem, cfg, plan, err, sizeof(err));
    if (plan->protocol == BOOT_LIMINE)
        return limine_finish(&mem, cfg, plan, err, sizeof(err));
    return 0;
}

/* A flat Multiboot 1 kernel: the header's address fields say where it goes (flag 16). */
static void multiboot_aout_kludge(void **state)
{
    (void)state;
    memset(file, 0x90, 4096);
    uint8_t *h = file + 64; /* the header at file offset 64, loaded at 0x200040 */
    put32(h, MB1_HEADER_MAGIC);
    put32(h + 4, 0x00010003);
    put32(h + 8, (uint32_t)-(MB1_HEADER_MAGIC + 0x00010003));
    uint32_t addrs[] = {0x200040, 0x200000, 0x201000, 0x208000, 0x200100};
    memcpy(h + 12, addrs, sizeof(addrs));
    struct slate_config cfg = {.append = "quiet", .smp = 1};
    struct boot_plan plan;
    assert_int_equal(boot(&cfg, 4096, &plan), 0);
    assert_int_equal(plan.protocol, BOOT_MULTIBOOT);
    assert_int_equal(plan.entry, ENTRY_PROTECTED);
    assert_int_equal(plan.entry_point, 0x200100);
    assert_int_equal(plan.images[0].base, 0x200000);
    assert_int_equal(plan.images[0].size, 0x8000); /* to bss_end_addr */
    assert_int_equal(plan.rax, MB1_BOOT_MAGIC);
    uint64_t mbi = plan.rbx;
    assert_true(mbi >= 0x1000 && mbi < 0xA0000);
    assert_int_equal(get32(mbi) & 0x24F, 0x24D); /* memory, cmdline, mods, mmap, loader name */
    assert_int_equal(get32(mbi + 4), 640);
    assert_int_equal(get32(mbi + 8), 15 * 1024);
    assert_string_equal((const char *)memory_ram_ptr(&mem, get32(mbi + 16), 6), "quiet");
    assert_int_equal(get32(mbi + 20), 0); /* no modules */
    assert_int_equal(get32(mbi + 44), 3 * 24); /* RAM below 640K, the legacy hole, RAM from 1M */
    uint64_t mmap = get32(mbi + 48);
    assert_int_equal(get32(mmap), 20);
    assert_int_equal(get64(mmap + 4 + 48), 0x100000);
    assert_int_equal(get64(mmap + 12 + 48), 15 << 20);
}

static size_t multiboot2_header(uint32_t extra_tag_words[], unsigned nwords)
{
    memset(file, 0, sizeof(file));
    uint8_t *h = file + 32;
    uint32_t len = 16 + 4 * nwords + 8;
    put32(h, MB2_HEADER_MAGIC);
    put32(h + 4, 0);
    put32(h + 8, len);
    put32(h + 12, (uint32_t)-(MB2_HEADER_MAGIC + len));
    memcpy(h + 16, extra_tag_words, 4 * nwords);
    put32(h + 16 + 4 * nwords, 0); /* end tag */
    put32(h + 20 + 4 * nwords, 8);
    return 4096;
}

/* Tags slate cannot honour are refused when required, and pass when optional. */
static void multiboot2_refusals(void **state)
{
    (void)state;
    struct slate_config cfg = {.smp = 1};
    struct boot_plan plan;
    uint32_t acpi_request[] = {1, 12, 14};
    size_t size = multiboot2_header(acpi_request, 3);
    assert_int_not_equal(boot(&cfg, size, &plan), 0);
    assert_contains(err, "requires information tag 14 (ACPI 1.0 RSDP), which this machine does not have");
    uint32_t optional_acpi[] = {1 | 1 << 16, 12, 14};
    multiboot2_header(optional_acpi, 3);
    assert_int_not_equal(boot(&cfg, size, &plan), 0);
    assert_contains(err, "no load addresses and the file is not ELF"); /* got past the tags */
    uint32_t efi_bs[] = {7, 8};
    multiboot2_header(efi_bs, 2);
    assert_int_not_equal(boot(&cfg, size, &plan), 0);
    assert_contains(err, "requires EFI boot services (tag 7)");
    uint32_t bad_size[] = {3, 4000};
    multiboot2_header(bad_size, 2);
    assert_int_not_equal(boot(&cfg, size, &plan), 0);
    assert_contains(err, "bad size 4000");
    file[32 + 12] ^= 1; /* a wrong checksum: no header at all */
    assert_int_equal(loader_detect_protocol(file, size), BOOT_NATIVE);
}

static size_t read_test_kernel(const char *name)
{
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char path[256];
    snprintf(path, sizeof(path), "%s/guest/%s", build, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("%s: not built (make guests)", path);
    size_t n = fread(file, 1, sizeof(file), f);
    fclose(f);
    assert_true(n > 0 && n < sizeof(file));
    return n;
}

/* The offset of the 24-byte base revision tag in the file. */
static size_t revision_tag(size_t size)
{
    for (size_t off = 0; off + 24 <= size; off += 8) {
        uint64_t w[2];
        memcpy(w, file + off, 16);
        if (w[0] == LIMINE_BASE_REVISION_MAGIC_0 && w[1] == LIMINE_BASE_REVISION_MAGIC_1)
            return off;
    }
    fail_msg("no base revision tag");
    return 0;
}

/* A position-independent kernel linked at 0: slid to the top 2 GiB, every R_X86_64_RELATIVE
 * relocation applied with the slide (compared with the relocation table read from the file). */
static void limine_pie_kernel(void **state)
{
    (void)state;
    size_t size = read_test_kernel("boot-limine-pie.elf");
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;
    assert_int_equal(eh->e_type, ET_DYN);
    struct slate_config cfg = {.smp = 1, .kernel = "pie.elf"};
    struct boot_plan plan;
    assert_int_equal(boot(&cfg, size, &plan), 0);
    const uint64_t slide = 0xffffffff80000000ULL;
    assert_int_equal(plan.paging.kernel_virt, slide);
    assert_int_equal(plan.entry_point, eh->e_entry + slide);
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(file + eh->e_shoff);
    unsigned applied = 0;
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_RELA)
            continue;
        const Elf64_Rela *r = (const Elf64_Rela *)(file + sh[i].sh_offset);
        for (size_t k = 0; k < sh[i].sh_size / sizeof(*r); k++, applied++) {
            assert_int_equal(ELF64_R_TYPE(r[k].r_info), R_X86_64_RELATIVE);
            /* the kernel's first segment is at virtual 0, physical 1 MiB */
            assert_int_equal(get64(0x100000 + r[k].r_offset), (uint64_t)r[k].r_addend + slide);
        }
    }
    assert_true(applied > 0);
}

static void limine_kernel(void **state)
{
    (void)state;
    size_t size = read_test_kernel("boot-limine.elf");
    assert_int_equal(loader_detect_protocol(file, size), BOOT_LIMINE);
    struct slate_config cfg = {.smp = 3, .append = "a b", .kernel = "k.elf"};
    struct boot_plan plan;
    assert_int_equal(boot(&cfg, size, &plan), 0);
    const struct boot_paging *pg = &plan.paging;
    assert_int_equal(plan.entry, ENTRY_LONG);
    assert_true(plan.entry_point >= 0xffffffff80000000ULL);
    assert_int_equal(pg->kernel_phys, 0x100000);
    assert_int_equal(pg->kernel_virt, 0xffffffff80000000ULL);
    assert_int_equal(pg->code_sel, 0x28);
    assert_int_equal(pg->cr3 & 0xFFF, 0);
    assert_int_equal(plan.rsp & 15, 8); /* as after a call: [rsp] is the return address 0 */
    assert_true(plan.rsp > LIMINE_HHDM_OFFSET);
    assert_int_equal(get64(plan.rsp - LIMINE_HHDM_OFFSET), 0);
    assert_int_not_equal(pg->ap_rip, 0); /* the MP request: the others park */
    /* the tag in RAM: supported (third word 0), loaded revision in the second */
    uint64_t tag = pg->kernel_phys + (revision_tag(size) - 0x1000); /* first segment at file offset 0x1000 */
    assert_int_equal(get64(tag + 16), 0);
    assert_int_equal(get64(tag + 8), 3);
    /* the page tables map the entry point to its physical copy */
    uint64_t va = plan.entry_point, t = pg->cr3;
    for (int level = 39; level >= 12; level -= 9) {
        uint64_t e = get64(t + ((va >> level) & 511) * 8);
        assert_true(e & 1);
        t = e & 0x000FFFFFFFFFF000ULL;
    }
    assert_int_equal(t, pg->kernel_phys + (va - pg->kernel_virt) - ((va - pg->kernel_virt) & 0xFFF));
}

/* The Limine protocol's own structures (limine.h, as the specification defines them), so the
 * answers are checked against the spec's layout, not against slate's offsets. */
struct spec_limine_framebuffer {
    uint64_t address, width, height, pitch;
    uint16_t bpp;
    uint8_t memory_model, red_mask_size, red_mask_shift, green_mask_size, green_mask_shift,
        blue_mask_size, blue_mask_shift, unused[7];
    uint64_t edid_size, edid, mode_count, modes;
};
struct spec_limine_video_mode {
    uint64_t pitch, width, height;
    uint16_t bpp;
    uint8_t memory_model, red_mask_size, red_mask_shift, green_mask_size, green_mask_shift,
        blue_mask_size, blue_mask_shift;
};
_Static_assert(offsetof(struct spec_limine_framebuffer, blue_mask_shift) == 40, "limine.h layout");
_Static_assert(sizeof(struct spec_limine_video_mode) == 40, "limine.h layout");

/* The framebuffer response of the test kernel's request, read through the spec's structures:
 * the masks say RGB with 8-bit fields at 16, 8 and 0, the mode's too. */
static void limine_framebuffer_layout(void **state)
{
    (void)state;
    size_t size = read_test_kernel("boot-limine.elf");
    struct slate_config cfg = {.smp = 1, .kernel = "k.elf", .display = true};
    struct boot_plan plan;
    assert_int_equal(boot(&cfg, size, &plan), 0);
    static const uint64_t id[4] = {LIMINE_COMMON_MAGIC_0, LIMINE_COMMON_MAGIC_1, 0x9d5827dcd881dd75ULL,
                                   0xa3148604f6fab11bULL};
    uint64_t response = 0;
    for (uint64_t off = 0; off + 48 <= size; off += 8)
        if (!memcmp(file + off, id, sizeof(id)))
            response = get64(plan.paging.kernel_phys + off - 0x1000 + 40);
    assert_true(response > LIMINE_HHDM_OFFSET);
    uint64_t list = get64(response - LIMINE_HHDM_OFFSET + 16) - LIMINE_HHDM_OFFSET;
    struct spec_limine_framebuffer fb;
    memcpy(&fb, memory_ram_ptr(&mem, get64(list) - LIMINE_HHDM_OFFSET, sizeof(fb)), sizeof(fb));
    assert_int_equal(fb.bpp, 32);
    assert_int_equal(fb.memory_model, 1);
    assert_int_equal(fb.red_mask_size, 8), assert_int_equal(fb.red_mask_shift, 16);
    assert_int_equal(fb.green_mask_size, 8), assert_int_equal(fb.green_mask_shift, 8);
    assert_int_equal(fb.blue_mask_size, 8), assert_int_equal(fb.blue_mask_shift, 0);
    assert_int_equal(fb.pitch, fb.width * 4);
    assert_int_equal(fb.mode_count, 1);
    struct spec_limine_video_mode m;
    memcpy(&m, memory_ram_ptr(&mem, get64(fb.modes - LIMINE_HHDM_OFFSET) - LIMINE_HHDM_OFFSET, sizeof(m)), sizeof(m));
    assert_int_equal(m.width, fb.width), assert_int_equal(m.height, fb.height), assert_int_equal(m.bpp, 32);
    assert_int_equal(m.red_mask_shift, 16), assert_int_equal(m.green_mask_shift, 8);
    assert_int_equal(m.blue_mask_size, 8), assert_int_equal(m.blue_mask_shift, 0);
}

/* Every other response the test kernel asks for, read through limine.h's own structures. */
struct spec_limine_uuid {
    uint32_t a;
    uint16_t b, c;
    uint8_t d[8];
};
struct spec_limine_file {
    uint64_t revision, address, size, path, string;
    uint32_t media_type, unused, tftp_ip, tftp_port, partition_index, mbr_disk_id;
    struct spec_limine_uuid gpt_disk_uuid, gpt_part_uuid, part_uuid;
};
struct spec_limine_bootloader_info_response { uint64_t revision, name, version; };
struct spec_limine_executable_cmdline_response { uint64_t revision, cmdline; };
struct spec_limine_hhdm_response { uint64_t revision, offset; };
struct spec_limine_paging_mode_response { uint64_t revision, mode; };
struct spec_limine_date_at_boot_response { uint64_t revision; int64_t timestamp; };
struct spec_limine_executable_file_response { uint64_t revision, executable_file; };
struct spec_limine_module_response { uint64_t revision, module_count, modules; };
struct spec_limine_executable_address_response { uint64_t revision, physical_base, virtual_base; };
struct spec_limine_memmap_entry { uint64_t base, length, type; };
struct spec_limine_memmap_response { uint64_t revision, entry_count, entries; };
struct spec_limine_mp_info {
    uint32_t processor_id, lapic_id;
    uint64_t reserved, goto_address, extra_argument;
};
struct spec_limine_mp_response {
    uint64_t revision;
    uint32_t flags, bsp_lapic_id;
    uint64_t cpu_count, cpus;
};
_Static_assert(sizeof(struct spec_limine_file) == 112, "limine.h layout");
_Static_assert(offsetof(struct spec_limine_file, media_type) == 40, "limine.h layout");
_Static_assert(offsetof(struct spec_limine_mp_response, cpu_count) == 16, "limine.h layout");
_Static_assert(sizeof(struct spec_limine_mp_info) == 32, "limine.h layout");

/* The response to the request with id (its third and fourth words), copied into out as the spec's
 * structure of `len` bytes; its address (0: none). */
static uint64_t response_of(size_t size, const struct boot_plan *plan, uint64_t id2, uint64_t id3, void *out,
                            size_t len)
{
    const uint64_t id[4] = {LIMINE_COMMON_MAGIC_0, LIMINE_COMMON_MAGIC_1, id2, id3};
    for (uint64_t off = 0; off + 48 <= size; off += 8) {
        if (memcmp(file + off, id, sizeof(id)))
            continue;
        uint64_t response = get64(plan->paging.kernel_phys + off - 0x1000 + 40);
        if (response)
            memcpy(out, memory_ram_ptr(&mem, response - LIMINE_HHDM_OFFSET, len), len);
        return response;
    }
    return 0;
}

static void *hhdm_ptr(uint64_t va, size_t len) { return memory_ram_ptr(&mem, va - LIMINE_HHDM_OFFSET, len); }

static void limine_response_layouts(void **state)
{
    (void)state;
    size_t size = read_test_kernel("boot-limine.elf");
    struct slate_config cfg = {.smp = 2, .append = "a b", .kernel = "dir/k.elf", .load_count = 1};
    snprintf(cfg.loads[0].path, sizeof(cfg.loads[0].path), "mods/initrd.tar");
    snprintf(cfg.loads[0].string, sizeof(cfg.loads[0].string), "the initrd");
    struct boot_plan plan;
    memset(&plan, 0, sizeof(plan));
    static const uint8_t module[5000] = {1, 2, 3};
    assert_int_equal(loader_load_kernel(&mem, &cfg, "k", file, size, &plan, err, sizeof(err)), 0);
    assert_int_equal(loader_load_raw(&mem, "mods/initrd.tar", module, sizeof(module), LOAD_ADDR_AUTO, &plan, err,
                                     sizeof(err)), 0);
    assert_int_equal(limine_finish(&mem, &cfg, &plan, err, sizeof(err)), 0);

    struct spec_limine_bootloader_info_response info;
    assert_true(response_of(size, &plan, 0xf55038d8e2a1202fULL, 0x279426fcf5f59740ULL, &info, sizeof(info)));
    assert_string_equal(hhdm_ptr(info.name, 6), "slate");
    struct spec_limine_executable_cmdline_response cmd;
    assert_true(response_of(size, &plan, 0x4b161536e598651eULL, 0xb390ad4a2f1f303aULL, &cmd, sizeof(cmd)));
    assert_string_equal(hhdm_ptr(cmd.cmdline, 4), "a b");
    struct spec_limine_hhdm_response hh;
    assert_true(response_of(size, &plan, 0x48dcf1cb8ad2b852ULL, 0x63984e959a98244bULL, &hh, sizeof(hh)));
    assert_int_equal(hh.offset, LIMINE_HHDM_OFFSET);
    struct spec_limine_paging_mode_response pm;
    assert_true(response_of(size, &plan, 0x95c1a0edab0944cbULL, 0xa4e5cb3842f7488aULL, &pm, sizeof(pm)));
    assert_int_equal(pm.mode, 0); /* 4-level */
    struct spec_limine_date_at_boot_response t;
    assert_true(response_of(size, &plan, 0x502746e184c088aaULL, 0xfbc5ec83e6327893ULL, &t, sizeof(t)));
    assert_true(t.timestamp > 1700000000 && t.timestamp < 4000000000);
    struct spec_limine_executable_address_response ea;
    assert_true(response_of(size, &plan, 0x71ba76863cc55f63ULL, 0xb2644a48c516a487ULL, &ea, sizeof(ea)));
    assert_int_equal(ea.physical_base, plan.paging.kernel_phys);
    assert_int_equal(ea.virtual_base, plan.paging.kernel_virt);

    struct spec_limine_executable_file_response ef;
    struct spec_limine_file f;
    assert_true(response_of(size, &plan, 0xad97e90e83f1ed67ULL, 0x31eb5d1c5ff23b69ULL, &ef, sizeof(ef)));
    memcpy(&f, hhdm_ptr(ef.executable_file, sizeof(f)), sizeof(f));
    assert_int_equal(f.size, size);
    assert_memory_equal(hhdm_ptr(f.address, 4), "\177ELF", 4);
    assert_string_equal(hhdm_ptr(f.path, 7), "/k.elf");
    assert_string_equal(hhdm_ptr(f.string, 4), "a b");
    assert_int_equal(f.media_type, 0);

    struct spec_limine_module_response mods;
    assert_true(response_of(size, &plan, 0x3e7e279702be32afULL, 0xca1c4f3bd1280ceeULL, &mods, sizeof(mods)));
    assert_int_equal(mods.module_count, 1);
    memcpy(&f, hhdm_ptr(*(uint64_t *)hhdm_ptr(mods.modules, 8), sizeof(f)), sizeof(f));
    assert_int_equal(f.size, sizeof(module));
    assert_memory_equal(hhdm_ptr(f.address, 3), module, 3);
    assert_string_equal(hhdm_ptr(f.path, 12), "/initrd.tar");
    assert_string_equal(hhdm_ptr(f.string, 11), "the initrd");

    struct spec_limine_memmap_response mm;
    assert_true(response_of(size, &plan, 0x67cf3d9d378a806fULL, 0xe304acdfc50c3c62ULL, &mm, sizeof(mm)));
    assert_true(mm.entry_count >= 3);
    uint64_t end = 0;
    for (uint64_t i = 0; i < mm.entry_count; i++) {
        struct spec_limine_memmap_entry e;
        memcpy(&e, hhdm_ptr(((uint64_t *)hhdm_ptr(mm.entries, 8 * mm.entry_count))[i], sizeof(e)), sizeof(e));
        assert_true(e.base >= end && e.length > 0 && e.type <= 7); /* sorted, no overlaps, known types */
        end = e.base + e.length;
    }

    struct spec_limine_mp_response mp;
    assert_true(response_of(size, &plan, 0x95a67b819a1b857eULL, 0xa0b61b723b6a73e0ULL, &mp, sizeof(mp)));
    assert_int_equal(mp.cpu_count, 2);
    assert_int_equal(mp.bsp_lapic_id, 0);
    for (uint64_t i = 0; i < mp.cpu_count; i++) {
        struct spec_limine_mp_info cpu;
        memcpy(&cpu, hhdm_ptr(((uint64_t *)hhdm_ptr(mp.cpus, 16))[i], sizeof(cpu)), sizeof(cpu));
        assert_int_equal(cpu.processor_id, i);
        assert_int_equal(cpu.lapic_id, i);
        assert_int_equal(cpu.goto_address, 0);
    }
}

static void limine_refusals(void **state)
{
    (void)state;
    size_t size = read_test_kernel("boot-limine.elf");
    uint64_t too_new = 99;
    memcpy(file + revision_tag(size) + 16, &too_new, 8);
    struct slate_config cfg = {.smp = 1, .kernel = "k.elf"};
    struct boot_plan plan;
    assert_int_not_equal(boot(&cfg, size, &plan), 0);
    assert_contains(err, "asks for Limine base revision 99; slate supports 0 to 6");
    size = read_test_kernel("boot-mb2.elf");
    cfg.boot = BOOT_LIMINE;
    assert_int_not_equal(boot(&cfg, size, &plan), 0);
    assert_contains(err, "a Limine kernel is an ELF64 file");
}

/* The memory map: sorted, without overlaps, the legacy hole reserved. */
static void memory_map_is_sorted(void **state)
{
    (void)state;
    struct boot_plan plan = {0};
    uint64_t at;
    assert_int_equal(loader_alloc(&mem, &plan, 0x3000, 0x1000, 0x100000, &at, err, sizeof(err)), 0);
    assert_int_equal(at, 0x100000);
    struct boot_mem_entry map[BOOT_MEM_MAX];
    unsigned n = loader_memory_map(&mem, &plan, true, 0xD0000000, 0x1000, map);
    assert_int_equal(n, 6); /* page 0, low RAM, hole, boot data, RAM, framebuffer */
    for (unsigned i = 1; i < n; i++)
        assert_true(map[i].base >= map[i - 1].base + map[i - 1].size);
    assert_int_equal(map[2].type, BOOT_MEM_RESERVED);
    assert_int_equal(map[3].type, BOOT_MEM_BOOT_DATA);
    assert_int_equal(map[5].type, BOOT_MEM_FRAMEBUFFER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(multiboot_aout_kludge, setup, teardown),
        cmocka_unit_test_setup_teardown(multiboot2_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(limine_kernel, setup, teardown),
        cmocka_unit_test_setup_teardown(limine_pie_kernel, setup, teardown),
        cmocka_unit_test_setup_teardown(limine_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(limine_framebuffer_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(limine_response_layouts, setup, teardown),
        cmocka_unit_test_setup_teardown(memory_map_is_sorted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
