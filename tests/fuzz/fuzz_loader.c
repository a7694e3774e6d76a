/* libFuzzer harness: the kernel loader (ELF and flat) against arbitrary files, into 16 MiB of
 * guest RAM. Every field read from the file must be checked before use. */
#include "loader.h"
#include "memory.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_memory mem;
    static int mapped;
    if (!mapped) {
        memory_layout(&mem, 16ULL << 20);
        if (memory_map(&mem))
            abort();
        mapped = 1;
    }
    struct boot_plan plan = {0};
    char err[256];
    enum entry_mode mode = size ? (enum entry_mode)(data[size - 1] % 4) : ENTRY_DEFAULT;
    if (loader_load_kernel(&mem, "fuzz.elf", data, size, mode, &plan, err, sizeof(err)) == 0)
        loader_check_boot_stack(&mem, &plan, err, sizeof(err));
    return 0;
}
