/* libFuzzer harness: the monitor's and the crash report's walks over the guest's page tables,
 * which the guest writes as it likes: entries pointing back at their own table, at each other,
 * past RAM, into the hole, with any flags. The walks must stay inside RAM and end quickly (the
 * fuzzer's -timeout catches one that does not). */
#include "fake_machine.h"
#include "inspect.h"
#include "x86.h"

#include <assert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TABLES 16 /* the guest's page tables: the first 64 KiB of RAM */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *out;
    struct fake_machine *m = fake_machine();
    if (!out)
        out = fopen("/dev/null", "w");
    assert(out);
    fake_machine_reset(m);
    uint64_t *ram = memory_ram_ptr(&m->vm.mem, 0, TABLES * 4096);
    assert(ram);

    struct fuzz_input in = {data, size};
    struct kvm_sregs s = {.cr0 = X86_CR0_PE | X86_CR0_PG, .cr4 = X86_CR4_PAE,
                          .efer = X86_EFER_LME | X86_EFER_LMA};
    s.cr3 = fuzz_take(&in, 1) & 0x80 ? fuzz_address(&in, m) : (fuzz_take(&in, 1) % TABLES) * 4096;
    while (in.left > 1) {
        unsigned table = (unsigned)fuzz_take(&in, 1) % TABLES, index = (unsigned)fuzz_take(&in, 2) % 512;
        uint64_t flags = fuzz_take(&in, 1) | (fuzz_take(&in, 1) & 1) << 63;
        /* Mostly another of the tables (or the same one), sometimes anywhere at all. */
        uint64_t frame = flags & 0x40 ? fuzz_address(&in, m) & ~0xFFFULL : (fuzz_take(&in, 1) % TABLES) * 4096;
        uint64_t entry = frame | (flags & 0xFFF & ~0x40ULL) | (flags & (1ULL << 63));
        if (fuzz_take(&in, 1) == 0xFF) /* a run of identical entries: one table aliased many times */
            for (unsigned i = 0; i < 512; i++)
                ram[table * 512 + i] = entry;
        else
            ram[table * 512 + index] = entry;
    }
    inspect_mappings_at(out, &m->vm.mem, &s, 200);
    inspect_page_walk(out, &m->cpu, &s, "va", fuzz_take(&in, 1) * 0x8040201000ULL);
    return 0;
}
